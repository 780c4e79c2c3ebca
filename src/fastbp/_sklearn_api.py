"""scikit-learn's estimator protocol, without importing scikit-learn, and the
constructor parameters of every estimator, written once.

:data:`PARAMETERS` is the one list of constructor parameters. Each
estimator's ``__init__`` is generated from it by :func:`make_init` as
``dataclasses`` generates theirs: a real function with a real signature, so
``inspect.signature``, scikit-learn's ``get_params``/``clone``/
``check_estimator`` and positional calls such as ``MLPClassifier((16,))`` or
``MLPRegressor("poisson")`` work as with a hand-written one. A new parameter
is one row here (plus its entry in the MLPClassifier docstring).
"""

import inspect
import numbers

import numpy as np

from . import _engine
from ._sklearn_compat import adopted
from ._losses import LOSSES, REGRESSION_LOSSES
from ._optimizers import SCHEDULES, SOLVERS
from ._validation import (ARRAY_LIKE, BOOLEAN, NONE, instance_of, integer, one_of, real,
                          reals)

__all__ = ["PARAMETERS", "HIDDEN_ACTIVATIONS", "make_init", "parameter_constraints",
           "EstimatorAPI", "available_if"]

_CLF, _REG, _MLP = "MLPClassifier", "MLPRegressor", "MLP"
_ALL = (_CLF, _REG, _MLP)
_POSITIONAL, _KEYWORD = "positional", "keyword"

# the hidden activations the estimators accept: the engine's registry (the CLI
# offers them in this order)
HIDDEN_ACTIVATIONS = _engine.HIDDEN_ACTIVATIONS

# (name, default, the estimators taking it, how it is passed, accepted values:
# a value is valid when one of them accepts it; None: checked where used), in
# the order of each estimator's signature: scikit-learn's order, fastbp's
# additions last, each defaulting to scikit-learn's behaviour. The constraints
# of scikit-learn's parameters are scikit-learn 1.9's, plus fastbp's values
# (activations, regression losses, learning-rate schedules).
PARAMETERS = (
    ("loss", "squared_error", (_REG,), _POSITIONAL, [one_of(*REGRESSION_LOSSES)]),
    ("hidden_layer_sizes", (100,), _ALL, _POSITIONAL, [ARRAY_LIKE, integer(1)]),
    ("activation", "relu", _ALL, _POSITIONAL, [one_of(*HIDDEN_ACTIVATIONS)]),
    ("loss", "log_loss", (_MLP,), _KEYWORD, [one_of(*LOSSES)]),
    ("solver", "adam", _ALL, _KEYWORD, [one_of("lbfgs", *SOLVERS)]),
    ("alpha", 0.0001, _ALL, _KEYWORD, [real(0, None, "left")]),
    ("batch_size", "auto", _ALL, _KEYWORD, [one_of("auto"), integer(1)]),
    ("learning_rate", "constant", _ALL, _KEYWORD, [one_of(*SCHEDULES)]),
    ("learning_rate_init", 0.001, _ALL, _KEYWORD, [real(0, None, "neither")]),
    ("power_t", 0.5, _ALL, _KEYWORD, [real(0, None, "left")]),
    ("max_iter", 200, _ALL, _KEYWORD, [integer(1)]),
    ("shuffle", True, _ALL, _KEYWORD, BOOLEAN),
    ("random_state", None, _ALL, _KEYWORD,
     [integer(0, 2**32 - 1, "both"),
      instance_of(np.random.RandomState, "numpy.random.mtrand.RandomState"), NONE]),
    ("tol", 1e-4, _ALL, _KEYWORD, [real(0, None, "left")]),
    ("verbose", False, _ALL, _KEYWORD, [integer(0)] + BOOLEAN),
    ("warm_start", False, _ALL, _KEYWORD, BOOLEAN),
    ("momentum", 0.9, _ALL, _KEYWORD, [real(0, 1, "both")]),
    ("nesterovs_momentum", True, _ALL, _KEYWORD, BOOLEAN),
    ("early_stopping", False, _ALL, _KEYWORD, BOOLEAN),
    ("validation_fraction", 0.1, _ALL, _KEYWORD, [real(0, 1, "left")]),
    ("beta_1", 0.9, _ALL, _KEYWORD, [real(0, 1, "left")]),
    ("beta_2", 0.999, _ALL, _KEYWORD, [real(0, 1, "left")]),
    ("epsilon", 1e-8, _ALL, _KEYWORD, [real(0, None, "neither")]),
    ("n_iter_no_change", 10, _ALL, _KEYWORD, [integer(1), one_of(np.inf, kind=numbers.Real)]),
    ("max_fun", 15000, _ALL, _KEYWORD, [integer(1)]),
    ("class_weight", None, (_CLF, _MLP), _KEYWORD, None),  # _class_weight checks it
    ("callbacks", None, _ALL, _KEYWORD, None),  # callbacks._make_runner checks it
    # fastbp's training options (the length of a dropout sequence is checked by fit)
    ("dropout", 0.0, _ALL, _KEYWORD, [real(0, 1, "left"), reals(0, 1, "left")]),
    ("weight_decay", 0.0, _ALL, _KEYWORD, [real(0, None, "left")]),
    ("warmup", 0.0, _ALL, _KEYWORD, [real(0, 1, "left")]),
    ("max_grad_norm", None, _ALL, _KEYWORD, [real(0, None, "neither"), NONE]),
    ("label_smoothing", 0.0, (_CLF, _MLP), _KEYWORD, [real(0, 1, "left")]),
    ("huber_delta", 1.0, (_REG, _MLP), _KEYWORD, [real(0, None, "neither")]),
    ("quantile", 0.5, (_REG, _MLP), _KEYWORD, [real(0, 1, "both"), reals(0, 1, "both")]),
    ("scoring", None, _ALL, _KEYWORD, [one_of("loss"), NONE]),
)


def parameter_constraints(estimator_name, parameters=PARAMETERS):
    """name -> accepted values, for the parameters of ``estimator_name``
    that have constraints (``_validation.validate_params`` checks them).
    ``parameters``: a table laid out as :data:`PARAMETERS` (the tabular
    presets have their own)."""
    return {name: accepted for name, _, taken_by, _, accepted in parameters
            if estimator_name in taken_by and accepted is not None}


def make_init(estimator_name, module, parameters=PARAMETERS):
    """The ``__init__`` of ``estimator_name`` (a class of ``module``): each
    parameter of ``parameters`` (a table laid out as :data:`PARAMETERS`) it
    takes, stored unchanged under its own name (as scikit-learn requires)."""
    rows = [(name, default, kind) for name, default, taken_by, kind, _ in parameters
            if estimator_name in taken_by]
    defaults = {f"_default_{name}": default for name, default, _ in rows}
    args = [f"{name}=_default_{name}" for name, _, kind in rows if kind == _POSITIONAL]
    args += ["*"] + [f"{name}=_default_{name}" for name, _, kind in rows if kind == _KEYWORD]
    body = "".join(f"    self.{name} = {name}\n" for name, _, _ in rows)
    source = f"def __init__(self, {', '.join(args)}):\n{body}"
    namespace = {}
    exec(source, defaults, namespace)  # noqa: S102 - fixed source built from the table
    init = namespace["__init__"]
    init.__qualname__ = f"{estimator_name}.__init__"
    init.__module__ = module
    return init


class _AvailableIf:
    """Descriptor: the method exists only when ``check(instance)`` is true
    (``hasattr`` is False otherwise), like scikit-learn's ``available_if``."""

    def __init__(self, fn, check):
        self.fn = fn
        self.check = check
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        if not self.check(obj):
            raise AttributeError(
                f"This {type(obj).__name__} has no attribute {self.fn.__name__!r}: "
                + self.check.__doc__
            )
        return self.fn.__get__(obj, owner)


def available_if(check):
    """Decorator: the method exists only when ``check(instance)`` is true;
    ``check.__doc__`` says why when it does not."""
    return lambda fn: _AvailableIf(fn, check)


class EstimatorAPI:
    """get_params, set_params, repr, tags and the fitted check of a
    scikit-learn estimator. Subclasses define ``_is_classifier()``,
    ``_loss_name()`` and ``_is_fitted()``."""

    @classmethod
    def _get_param_names(cls):
        # the constructor's signature, read once per class (every fit asks)
        names = cls.__dict__.get("_param_names")
        if names is None:
            sig = inspect.signature(cls.__init__)
            names = tuple(sorted(p.name for p in sig.parameters.values()
                                 if p.name != "self" and p.kind != p.VAR_KEYWORD))
            cls._param_names = names
        return list(names)

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (an MLP holds no sub-estimators); kept for scikit-learn.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Returns
        -------
        self : estimator instance
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {self!r}. Valid parameters "
                    f"are: {valid!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__)
                    .parameters.values() if p.name != "self"}
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            same = False
            try:
                same = bool(value == default) if not isinstance(value, np.ndarray) else False
            except Exception:
                same = False
            if default is inspect.Parameter.empty or not same or type(value) is not type(default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        adopted()  # scikit-learn is imported: be its BaseEstimator (if no hook saw it)

        classifier = self._is_classifier()
        tags = Tags(
            estimator_type="classifier" if classifier else "regressor",
            target_tags=TargetTags(required=True, multi_output=True,
                                   single_output=True,
                                   positive_only=self._loss_name() == "poisson"),
            classifier_tags=ClassifierTags(multi_label=True) if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )
        tags.input_tags.sparse = True
        return tags

    @property
    def _estimator_type(self):
        return "classifier" if self._is_classifier() else "regressor"

    def __sklearn_is_fitted__(self):
        return self._is_fitted()
