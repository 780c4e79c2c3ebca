"""fastbp: fast multilayer perceptrons for CPUs.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
scikit-learn's (same parameters, attributes and random draws); ``MLP`` is one
class for both tasks. Training runs in a typed Cython engine, one GIL-free
call per epoch. Submodules: ``fastbp.callbacks`` (progress bar, history,
stopping), ``fastbp.plot`` (learning curves), ``fastbp.dask`` (out-of-core
training and parallel prediction) and ``fastbp.onnx`` (export to ONNX).
"""

__version__ = "0.1.0"

from ._estimators import MLP, MLPClassifier, MLPRegressor
from ._exceptions import ConvergenceWarning, NotFittedError
from ._gradcheck import check_gradients
from ._io import load
from ._profile import enable_from_environment as _enable_profiling

_enable_profiling()  # FASTBP_PROFILE=1: per-phase training times, printed at exit

__all__ = [
    "MLP",
    "MLPClassifier",
    "MLPRegressor",
    "check_gradients",
    "load",
    "ConvergenceWarning",
    "NotFittedError",
    "__version__",
]

# optional-dependency submodules, imported on first use so that `import fastbp`
# needs numpy and scipy only: fastbp.callbacks (tqdm optional), fastbp.plot
# (matplotlib), fastbp.dask (dask, distributed), fastbp.onnx (onnx, skl2onnx)
_LAZY_SUBMODULES = ("callbacks", "dask", "onnx", "plot")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
