"""The tabular presets' parameters, written once, and their defaults.

:data:`RECIPE` is the training recipe: every default of the two presets,
per task, in one place. :data:`PARAMETERS` lists each parameter once with
the presets that take it, where it goes (``ROUTES``) and the values it
accepts; the presets' ``__init__`` is generated from it by
``_sklearn_api.make_init``, as for the MLPs. A new parameter is one row of
``_ROWS`` and its default in ``RECIPE`` (plus its doc in the preset's
docstring).

The recipe is provisional (the first baseline, built from what fastbp's
engine has today; docs/tabular.md has its scores): a research step on the
public benchmark chooses the final one.
"""

import numpy as np

from .._optimizers import SCHEDULES
from .._sklearn_api import HIDDEN_ACTIVATIONS
from .._validation import (
    ARRAY_LIKE,
    BOOLEAN,
    NONE,
    instance_of,
    integer,
    one_of,
    real,
)
from ._preprocessor import FLOAT_DTYPE

__all__ = ["CLASSIFIER", "REGRESSOR", "RECIPE", "PARAMETERS", "ROUTES", "routed"]

CLASSIFIER, REGRESSOR = "TabularMLPClassifier", "TabularMLPRegressor"
_BOTH = (CLASSIFIER, REGRESSOR)

# where a parameter goes: the inner MLPs (same name), the preprocessing
# (same name), the periodic features (_periodic), the held-out split and
# best-epoch rule, the ensemble, the seed
MLP, PREPROCESSING, PERIODIC, HELD_OUT, ENSEMBLE, SEED = (
    "mlp", "preprocessing", "periodic", "held_out", "ensemble", "seed")
ROUTES = (MLP, PREPROCESSING, PERIODIC, HELD_OUT, ENSEMBLE, SEED)

_NETWORK = {
    "hidden_layer_sizes": (128, 128, 128),
    "activation": "relu",
    "alpha": 1e-4,
    "batch_size": 256,
    "learning_rate_init": 1e-3,
    "learning_rate": "constant",
    "warmup": 0.0,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "beta_1": 0.9,
    "beta_2": 0.95,
    "epsilon": 1e-8,
    "max_iter": 100,
    "validation_fraction": 0.2,
    "n_iter_no_change": 16,
}
_SHARED = {
    "n_ensemble": 1,
    "n_jobs": None,
    "max_categories": 100,
    "min_frequency": 2,
    "categorical_features": None,
    "periodic_features": 0,
    "periodic_scale": 0.3,
    "dtype": "float32",
    "random_state": None,
    "verbose": False,
    "callbacks": None,
}
# the training recipe: each preset's defaults
RECIPE = {
    CLASSIFIER: {**_NETWORK, "label_smoothing": 0.0, **_SHARED},
    REGRESSOR: {**_NETWORK, **_SHARED, "activation": "mish", "periodic_features": 8,
                "dropout": 0.15, "learning_rate_init": 2e-3},
}

_SEEDS = [integer(0, 2**32 - 1, "both"),
          instance_of(np.random.RandomState, "numpy.random.mtrand.RandomState"), NONE]

# (name, the presets taking it, where it goes, accepted values: a value is
# valid when one of them accepts it; None: checked where used), in the order
# of the presets' signatures
_ROWS = (
    ("hidden_layer_sizes", _BOTH, MLP, [ARRAY_LIKE, integer(1)]),
    ("activation", _BOTH, MLP, [one_of(*HIDDEN_ACTIVATIONS)]),
    ("alpha", _BOTH, MLP, [real(0, None, "left")]),
    ("batch_size", _BOTH, MLP, [integer(1)]),
    ("learning_rate_init", _BOTH, MLP, [real(0, None, "neither")]),
    ("learning_rate", _BOTH, MLP, [one_of(*SCHEDULES)]),
    ("warmup", _BOTH, MLP, [real(0, 1, "left")]),
    ("weight_decay", _BOTH, MLP, [real(0, None, "left")]),
    ("dropout", _BOTH, MLP, [real(0, 1, "left")]),
    ("label_smoothing", (CLASSIFIER,), MLP, [real(0, 1, "left")]),
    ("beta_1", _BOTH, MLP, [real(0, 1, "left")]),
    ("beta_2", _BOTH, MLP, [real(0, 1, "left")]),
    ("epsilon", _BOTH, MLP, [real(0, None, "neither")]),
    ("max_iter", _BOTH, MLP, [integer(1)]),
    ("validation_fraction", _BOTH, HELD_OUT, [real(0, 1, "neither")]),
    ("n_iter_no_change", _BOTH, HELD_OUT, [integer(1), NONE]),
    ("n_ensemble", _BOTH, ENSEMBLE, [integer(1)]),
    ("n_jobs", _BOTH, ENSEMBLE, [integer(1), NONE]),
    ("max_categories", _BOTH, PREPROCESSING, [integer(1)]),
    ("min_frequency", _BOTH, PREPROCESSING, [integer(1)]),
    ("categorical_features", _BOTH, PREPROCESSING, [ARRAY_LIKE, NONE]),
    ("periodic_features", _BOTH, PERIODIC, [integer(0)]),
    ("periodic_scale", _BOTH, PERIODIC, [real(0, None, "neither")]),
    ("dtype", _BOTH, PREPROCESSING, [FLOAT_DTYPE]),
    ("random_state", _BOTH, SEED, _SEEDS),
    ("verbose", _BOTH, MLP, [integer(0)] + BOOLEAN),
    ("callbacks", _BOTH, MLP, None),  # fastbp.callbacks checks it
)

# the table _sklearn_api.make_init reads: (name, default, taken by, how
# passed, accepted values), one row per preset
PARAMETERS = tuple(
    (name, RECIPE[preset][name], (preset,), "keyword", accepted)
    for preset in _BOTH for name, taken_by, _, accepted in _ROWS if preset in taken_by)


def routed(route, preset=None):
    """Names of the parameters that go to ``route`` (one of ROUTES); with
    ``preset`` (CLASSIFIER or REGRESSOR), those that preset takes."""
    return tuple(name for name, taken_by, where, _ in _ROWS
                 if where == route and (preset is None or preset in taken_by))

