"""fastbp: fast multilayer perceptrons for CPUs.

``MLPClassifier`` and ``MLPRegressor`` are drop-in replacements for
scikit-learn's (same parameters, attributes and random draws); ``MLP`` is one
class for both tasks. Training runs in a typed Cython engine, one GIL-free
call per epoch.
"""

__version__ = "0.1.0"

from ._estimators import MLP, MLPClassifier, MLPRegressor
from ._exceptions import ConvergenceWarning, NotFittedError
from ._gradcheck import check_gradients
from ._io import load

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
