"""Warnings and errors fastbp raises.

scikit-learn users filter ``sklearn.exceptions.ConvergenceWarning`` and catch
``sklearn.exceptions.NotFittedError``. fastbp does not import scikit-learn
(it is optional and slow to import), but when the user's program has imported
it, the classes raised here also derive from scikit-learn's, so such filters
and ``except`` clauses keep working after the import swap.
"""

import sys

__all__ = ["ConvergenceWarning", "DataConversionWarning", "NotFittedError"]


class ConvergenceWarning(UserWarning):
    """The solver stopped before the optimisation converged."""


class DataConversionWarning(UserWarning):
    """Input data was converted in a way the user may not expect."""


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit``."""


_bridged = {}


def _bridge(cls):
    """``cls``, or a subclass that also derives from scikit-learn's class of the
    same name when ``sklearn.exceptions`` is already imported."""
    sk = sys.modules.get("sklearn.exceptions")
    sk_cls = getattr(sk, cls.__name__, None) if sk is not None else None
    if sk_cls is None:
        return cls
    key = (cls, sk_cls)
    if key not in _bridged:
        _bridged[key] = type(cls.__name__, (cls, sk_cls), {"__module__": cls.__module__,
                                                           "__doc__": cls.__doc__})
    return _bridged[key]


def convergence_warning():
    return _bridge(ConvergenceWarning)


def data_conversion_warning():
    return _bridge(DataConversionWarning)


def not_fitted_error(estimator):
    cls = _bridge(NotFittedError)
    return cls(
        f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
        "appropriate arguments before using this estimator."
    )
