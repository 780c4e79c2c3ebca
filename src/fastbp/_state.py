"""An estimator's state as plain data: the one source for model files
(``_io``) and for pickle.

:meth:`StateMixin._to_state` describes a fitted estimator with Python
values and numpy arrays only (no fastbp objects), :meth:`StateMixin._set_state`
rebuilds it; ``__getstate__``/``__setstate__`` pickle through them, and
``_io`` turns the same description into a file and back (with every check a
file from an untrusted source needs). The state::

    estimator   class name ('MLP', 'MLPClassifier', 'MLPRegressor')
    params      the constructor parameters (get_params())
    -- fitted estimators only --
    network     sizes, hidden_activation, output_activation, params (the flat buffer)
    attrs       the fitted scalars of FITTED_SCALARS that are set
    lists       the fitted lists of FITTED_LISTS that are set (or None)
    feature_names_in_                      when fitted on named columns
    targets     classes, y_type            classifiers
    optimizer   Optimizer fields + state1, state2   sgd/adam
    best_params early stopping's best weights
    fit_random_state                       the generator the last fit drew from

A new fitted scalar or list is one entry of :data:`FITTED_SCALARS` or
:data:`FITTED_LISTS` (saved, loaded, checked and pickled from there).
"""

import copy

import numpy as np

from ._compat import LabelEncoding
from ._losses import output_activation
from ._network import Network, parameter_count
from ._optimizers import FIELDS as OPTIMIZER_FIELDS
from ._optimizers import FIELDS_0_1 as OPTIMIZER_FIELDS_0_1
from ._optimizers import FLOAT_FIELDS as OPTIMIZER_FLOATS
from ._optimizers import SCHEDULES as OPTIMIZER_SCHEDULES
from ._optimizers import SOLVERS as OPTIMIZER_SOLVERS
from ._optimizers import Optimizer

__all__ = ["StateMixin", "register", "estimator_class", "FITTED_SCALARS", "FITTED_LISTS",
           "REQUIRED_SCALARS", "OPTIMIZER_FIELDS", "OPTIMIZER_FIELDS_0_1", "OPTIMIZER_FLOATS",
           "OPTIMIZER_SCHEDULES", "OPTIMIZER_SOLVERS", "PARAMETERS_SINCE_0_1_0", "Optimizer",
           "output_activation", "parameter_count", "is_count", "is_number"]


def is_count(value, low=0, high=None):
    """An int (not a bool) in [low, high]."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def is_number(value, finite=True):
    """A float (finite unless told otherwise) or an int."""
    return (isinstance(value, float) and (not finite or np.isfinite(value))) or \
        is_count(value, -2**63)


def _number_or_none(value, sizes, out_act):
    return value is None or is_number(value, finite=False)


# fitted scalar attributes: name -> check(value, layer sizes, output activation)
FITTED_SCALARS = {
    "n_features_in_": lambda v, sizes, out_act: v == sizes[0],
    "n_iter_": lambda v, sizes, out_act: is_count(v),
    "n_layers_": lambda v, sizes, out_act: v == len(sizes),
    "n_outputs_": lambda v, sizes, out_act: v == sizes[-1],
    "t_": lambda v, sizes, out_act: is_count(v),
    "loss_": lambda v, sizes, out_act: is_number(v),
    "best_loss_": _number_or_none,
    "best_validation_score_": _number_or_none,
    "out_activation_": lambda v, sizes, out_act: v == out_act,
    "_no_improvement_count": lambda v, sizes, out_act: is_count(v),
}
# those every fitted estimator has, in the order a file is checked for them
REQUIRED_SCALARS = ("n_features_in_", "n_layers_", "n_outputs_", "out_activation_", "n_iter_",
                    "t_")
# fitted lists of floats (NaN allowed), or None
FITTED_LISTS = ("loss_curve_", "validation_scores_", "validation_loss_curve_")

# constructor parameters fastbp 0.1.0 did not have: models it saved or
# pickled take their defaults (which train as 0.1.0 did)
PARAMETERS_SINCE_0_1_0 = ("dropout", "weight_decay", "warmup", "max_grad_norm",
                          "label_smoothing", "huber_delta", "quantile", "scoring")

_ESTIMATOR_CLASSES = {}


def register(cls):
    """Class decorator: ``cls`` can be saved, loaded and unpickled by name."""
    _ESTIMATOR_CLASSES[cls.__name__] = cls
    return cls


def estimator_class(name):
    """The registered estimator class called ``name``, or None."""
    return _ESTIMATOR_CLASSES.get(name)


def _fitted_attributes(state):
    """Every attribute of an estimator in ``state``, by name."""
    attributes = dict(state["params"])
    network = state.get("network")
    if network is None:
        return attributes
    params = network["params"]
    if not params.flags.writeable:  # e.g. loaded from a read-only memmap
        params = params.copy()
    net = Network(network["sizes"], network["hidden_activation"],
                  network["output_activation"], params.dtype, params)
    attributes.update(_net=net, coefs_=list(net.coefs), intercepts_=list(net.intercepts))
    attributes.update(state["attrs"])
    attributes.update(state["lists"])
    if "feature_names_in_" in state:
        attributes["feature_names_in_"] = state["feature_names_in_"]
    if "targets" in state:
        encoding = LabelEncoding()
        encoding.classes_ = state["targets"]["classes"]
        encoding.y_type_ = state["targets"]["y_type"]
        attributes.update(_label_encoding=encoding, classes_=encoding.classes_)
    if "optimizer" in state:
        attributes["_optimizer"] = Optimizer.from_state(state["optimizer"])
    if "best_params" in state:
        attributes["_best_params"] = state["best_params"]
    if "fit_random_state" in state:
        attributes["_random_state"] = state["fit_random_state"]
    return attributes


class StateMixin:
    """to_state / set_state and pickling of the MLP estimators (a mixin of
    ``_BaseMLP``)."""

    def _to_state(self):
        """This estimator as plain data (see the module docstring); arrays
        are the estimator's own, not copies."""
        state = {"estimator": type(self).__name__, "params": self.get_params()}
        if not self._is_fitted():
            return state
        net = self._sync()
        state["network"] = {"sizes": net.sizes, "hidden_activation": net.spec.hidden_activation,
                            "output_activation": net.spec.output_activation,
                            "params": net.params}
        state["attrs"] = {k: getattr(self, k) for k in FITTED_SCALARS if hasattr(self, k)}
        state["lists"] = {k: getattr(self, k) for k in FITTED_LISTS if hasattr(self, k)}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = self.feature_names_in_
        if self._is_classifier():
            encoding = self._label_encoding
            state["targets"] = {"classes": encoding.classes_, "y_type": encoding.y_type_}
        if hasattr(self, "_optimizer"):
            state["optimizer"] = self._optimizer.to_state()
        if hasattr(self, "_best_params"):
            state["best_params"] = self._best_params
        if hasattr(self, "_random_state"):
            state["fit_random_state"] = self._random_state
        return state

    def _prediction_copy(self):
        """A copy sharing the weights, without what only training needs
        (the optimizer state and early stopping's weights: up to three times
        the weights): ``fastbp.dask`` ships it to the workers."""
        lean = copy.copy(self)
        for name in ("_optimizer", "_best_params"):
            lean.__dict__.pop(name, None)
        return lean

    def _set_state(self, state):
        """Take the parameters and fitted attributes of ``state`` (from
        ``_to_state``, or from a checked model file)."""
        self.__dict__.update(_fitted_attributes(state))
        self._default_missing_parameters()

    def _default_missing_parameters(self):
        """Parameters added after fastbp 0.1.0 that a model it pickled lacks
        take their defaults."""
        defaults = type(self)().get_params() if any(
            name not in self.__dict__ for name in PARAMETERS_SINCE_0_1_0) else {}
        for name in PARAMETERS_SINCE_0_1_0:
            if name in defaults and name not in self.__dict__:
                self.__dict__[name] = defaults[name]

    def __getstate__(self):
        from . import __version__

        state = self._to_state()
        # attributes the state does not describe (set by the user): kept as they are
        described = _fitted_attributes(state)
        other = {k: v for k, v in self.__dict__.items() if k not in described}
        return {"_fastbp_version": __version__, "state": state, "other_attributes": other}

    def __setstate__(self, pickled):
        if "state" not in pickled:  # written by fastbp 0.1.0: the attributes themselves
            self._set_legacy_state(pickled)
            return
        self._set_state(pickled["state"])
        self.__dict__.update(pickled["other_attributes"])

    def _set_legacy_state(self, attributes):
        attributes = dict(attributes)
        attributes.pop("_fastbp_version", None)
        self.__dict__.update(attributes)
        self._default_missing_parameters()
        if "_net" in attributes:
            if not self._net.params.flags.writeable:
                self._net = self._net.copy()
            self.coefs_ = list(self._net.coefs)
            self.intercepts_ = list(self._net.intercepts)
