"""fastbp: fast multilayer perceptrons for CPUs.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
scikit-learn's (same parameters, attributes and random draws); ``MLP`` is one
class for both tasks. ``TabularMLPClassifier`` and ``TabularMLPRegressor``
(``fastbp.tabular``) take tables as they come (DataFrames with categories and
missing values) with their preprocessing built in. Training runs in a typed
Cython engine, one GIL-free call per epoch. Submodules: ``fastbp.callbacks``
(progress bar, history, stopping), ``fastbp.plot`` (learning curves),
``fastbp.dask`` (out-of-core training and parallel prediction) and
``fastbp.onnx`` (export to ONNX).
"""

__version__ = "0.1.0"

from ._estimators import MLP, MLPClassifier, MLPRegressor
from ._exceptions import ConvergenceWarning, NotFittedError
from ._gradcheck import check_gradients
from ._io import load
from . import _io_parts  # noqa: F401, E402 - reads format version 3 (models made of parts)
from ._profile import enable_from_environment as _enable_profiling

_enable_profiling()  # FASTBP_PROFILE=1: per-phase training times, printed at exit

__all__ = [
    "MLP",
    "MLPClassifier",
    "MLPRegressor",
    "TabularMLPClassifier",
    "TabularMLPRegressor",
    "check_gradients",
    "load",
    "ConvergenceWarning",
    "NotFittedError",
    "__version__",
]

# optional-dependency submodules, imported on first use so that `import fastbp`
# needs numpy and scipy only: fastbp.callbacks (tqdm optional), fastbp.plot
# (matplotlib), fastbp.dask (dask, distributed), fastbp.onnx (onnx, skl2onnx)
_LAZY_SUBMODULES = ("callbacks", "dask", "onnx", "plot", "tabular")
# the tabular presets, from fastbp.tabular on first use (about 15 ms of imports)
_LAZY_ATTRIBUTES = {"TabularMLPClassifier": "tabular", "TabularMLPRegressor": "tabular"}


def __getattr__(name):
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_ATTRIBUTES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_ATTRIBUTES))
