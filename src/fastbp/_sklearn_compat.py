"""scikit-learn citizenship without paying for scikit-learn's import.

When scikit-learn is imported, fastbp's estimators are
``sklearn.base.BaseEstimator`` subclasses: ``isinstance`` checks, the HTML
repr in notebooks, metadata routing (``set_fit_request`` and friends) and
scikit-learn's own checks treat them as native estimators. Importing
scikit-learn costs about a second, so fastbp never imports it itself:

* every estimator class derives, last in its bases, from
  :class:`SklearnBase`, a placeholder;
* when ``sklearn.base`` is imported (before or after fastbp), the
  placeholder's base becomes ``BaseEstimator`` (``__bases__`` assignment),
  and each estimator class gets what ``BaseEstimator`` gives its subclasses
  when they are defined (the ``set_*_request`` methods of metadata routing).

fastbp's own protocol methods (``get_params``, ``__repr__``, pickling, tags)
come first in the method order, so they stay in charge; ``BaseEstimator``
adds what fastbp does not define. Without scikit-learn nothing changes.
"""

import importlib.abc
import importlib.machinery
import sys
import warnings

__all__ = ["SklearnBase", "adopt_when_imported", "adopted"]


class _Root:
    """A plain class as the placeholder's original base: ``__bases__`` of a
    class deriving directly from ``object`` cannot be reassigned."""


class SklearnBase(_Root):
    """Stands for ``sklearn.base.BaseEstimator`` until scikit-learn is imported."""


_classes = []          # the estimator classes to finish when scikit-learn arrives
_state = {"adopted": False}


def adopted():
    """Whether fastbp's estimators derive from scikit-learn's BaseEstimator now."""
    if not _state["adopted"] and "sklearn.base" in sys.modules:
        _adopt(sys.modules["sklearn.base"])
    return _state["adopted"]


def _adopt(sklearn_base):
    if _state["adopted"]:
        return
    base = getattr(sklearn_base, "BaseEstimator", None)
    if base is None:  # sklearn.base is still importing (a circular import of its own)
        return
    try:
        SklearnBase.__bases__ = (base,)
        for cls in _classes:
            _finish(cls)
    except Exception as exc:  # noqa: BLE001 - an incompatible scikit-learn must not break it
        SklearnBase.__bases__ = (_Root,)
        warnings.warn(
            f"fastbp's estimators could not become scikit-learn BaseEstimators "
            f"({type(exc).__name__}: {exc}); they keep working, without metadata routing and "
            "the HTML repr. Please report this with your scikit-learn version.",
            stacklevel=2,
        )
        return
    _state["adopted"] = True
    _Watcher.remove()


def _finish(cls):
    # what BaseEstimator's __init_subclass__ (metadata routing's
    # _MetadataRequester) gives a subclass when it is defined: the
    # set_{fit,partial_fit,score,...}_request methods for its signatures
    super(SklearnBase, cls).__init_subclass__()


def adopt_when_imported(*classes):
    """Register the estimator classes: they become BaseEstimator subclasses
    now if ``sklearn.base`` is imported, else as soon as it is."""
    _classes.extend(classes)
    if "sklearn.base" in sys.modules:
        _adopt(sys.modules["sklearn.base"])
    else:
        _Watcher.install()


class _Watcher(importlib.abc.MetaPathFinder):
    """Finds ``sklearn.base`` with the usual path finder and adopts it once
    its module has run; removes itself afterwards."""

    _instance = None

    @classmethod
    def install(cls):
        if cls._instance is None:
            cls._instance = cls()
            sys.meta_path.insert(0, cls._instance)

    @classmethod
    def remove(cls):
        if cls._instance is not None:
            try:
                sys.meta_path.remove(cls._instance)
            except ValueError:
                pass
            cls._instance = None

    def find_spec(self, name, path=None, target=None):
        if name != "sklearn.base":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return None  # another import system: adopted() catches up later
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _adopt(module)

        loader.exec_module = exec_module
        return spec
