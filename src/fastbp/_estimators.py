"""MLP, MLPClassifier and MLPRegressor: parameters, fit loop per epoch.

The data path runs one way: ``fit`` validates once, encodes the targets,
allocates the network and the workspace once, then per epoch Python draws the
shuffle from the seeded RandomState (the same draws as scikit-learn) and calls
one GIL-free Cython function that runs every mini-batch of the epoch. Python
only sees the epoch loss and does the per-epoch work: tolerance and early
stopping, learning-rate schedule, verbose output, callbacks.

The behaviour mirrors scikit-learn 1.9's ``sklearn.neural_network`` line by
line where it is observable (parameters, defaults, attributes, messages,
random draws, stopping rules), so swapping the import gives the same model.
"""

import copy
import inspect
import warnings

import numpy as np
import scipy.optimize

from . import _engine
from ._class_weight import check_class_weight_param, class_sample_weight
from ._compat import (
    LabelEncoding,
    accuracy_score,
    check_random_state,
    r2_score,
    shuffle_indices,
    train_test_split_indices,
    type_of_target,
)
from ._exceptions import convergence_warning, not_fitted_error
from ._network import Network
from ._validation import (
    check_consistent_length,
    check_feature_names,
    check_labels_present,
    check_sample_weight,
    check_X,
    check_y_regression,
    choose_dtype,
    column_or_2d,
    validate_params,
)

__all__ = ["MLP", "MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_HIDDEN_ACTIVATIONS = {"identity", "logistic", "tanh", "relu", "leaky_relu"}
_CHUNK_ROWS = _engine.DEFAULT_CHUNK_ROWS


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


def _available_if(check):
    return lambda fn: _AvailableIf(fn, check)


def _stochastic(est):
    """partial_fit is only available for the stochastic solvers 'sgd' and 'adam'."""
    return est.solver in _STOCHASTIC_SOLVERS


def _classifies(est):
    """probabilities exist only for classification (loss='log_loss')."""
    return est._is_classifier()


class _Optimizer:
    """SGD (momentum, Nesterov, schedules) or Adam state over the flat buffer;
    the per-step arithmetic runs in the engine, the per-epoch rules here."""

    def __init__(self, est, n_params, dtype):
        self.solver = est.solver
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = float(est.learning_rate_init)
        self.lr_schedule = est.learning_rate
        self.momentum = float(est.momentum)
        self.nesterov = bool(est.nesterovs_momentum)
        self.power_t = float(est.power_t)
        self.beta_1 = float(est.beta_1)
        self.beta_2 = float(est.beta_2)
        self.epsilon = float(est.epsilon)
        self.t = 0
        self.state1 = np.zeros(n_params, dtype=dtype)  # velocity, or Adam's m
        self.state2 = np.zeros(n_params if self.solver == "adam" else 1, dtype=dtype)

    def engine_args(self):
        return {
            "solver": self.solver,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "t": self.t,
        }

    def state2_for_engine(self):
        # SGD keeps no second moment; the engine still wants a buffer of n_params
        return self.state2 if self.state2.size == self.state1.size else self.state1

    def iteration_ends(self, time_step):
        if self.solver == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        if self.solver != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class _BaseMLP:
    """Shared implementation of MLP, MLPClassifier and MLPRegressor."""

    # ------------------------------------------------------------------
    # parameters (scikit-learn's estimator protocol, without scikit-learn)
    # ------------------------------------------------------------------

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
        return hasattr(self, "_net")

    def __getstate__(self):
        state = self.__dict__.copy()
        # coefs_ / intercepts_ are views into the flat buffer: rebuilt on load
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        if "_net" in state:
            state["_net"] = self._sync()
        from . import __version__
        state["_fastbp_version"] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("_fastbp_version", None)
        self.__dict__.update(state)
        if "_net" in state:
            if not self._net.params.flags.writeable:  # e.g. loaded from a read-only memmap
                self._net = self._net.copy()
            self.coefs_ = list(self._net.coefs)
            self.intercepts_ = list(self._net.intercepts)

    # ------------------------------------------------------------------
    # task
    # ------------------------------------------------------------------

    # loss values accepted by the constructor (None: fixed by the class)
    _loss_options = None

    def _is_classifier(self):
        raise NotImplementedError

    def _loss_name(self):
        return "log_loss" if self._is_classifier() else self.loss

    def _check_fitted(self):
        if not hasattr(self, "_net"):
            raise not_fitted_error(self)

    def _sync(self):
        """The network, with any user assignment to coefs_/intercepts_ copied in."""
        net = self._net
        coefs, intercepts = self.coefs_, self.intercepts_
        if (len(coefs) != len(net.coefs) or len(intercepts) != len(net.intercepts)
                or any(a is not b for a, b in zip(coefs, net.coefs))
                or any(a is not b for a, b in zip(intercepts, net.intercepts))):
            net.sync_from(list(coefs), list(intercepts))
            self.coefs_ = list(net.coefs)
            self.intercepts_ = list(net.intercepts)
        return net

    # ------------------------------------------------------------------
    # input validation
    # ------------------------------------------------------------------

    def _validate_X(self, X, reset):
        """X in the model dtype, C-contiguous; ``(X, csr_parts)``."""
        name = type(self).__name__
        check_feature_names(self, X, reset=reset)
        dtype = choose_dtype(X) if reset else self._net.dtype
        X, csr = check_X(X, dtype=dtype, estimator_name=name)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {name} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X, csr

    def _validate_targets(self, y, n_samples, dtype, incremental):
        """Encode y into the (n_samples, n_outputs) target matrix the engine trains on."""
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} estimator requires y to be passed, but the "
                "target y is None."
            )
        if not self._is_classifier():
            Y = check_y_regression(y, dtype=dtype,
                                   require_non_negative=self._loss_name() == "poisson")
            check_consistent_length(n_samples, Y.shape[0])
            return Y
        y = column_or_2d(y)
        check_consistent_length(n_samples, y.shape[0])
        check_labels_present(y)
        y_type = type_of_target(y)
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            if y_type.startswith("continuous"):
                raise ValueError(
                    f"Unknown label type: {y_type}. Maybe you are trying to fit a "
                    "classifier, which expects discrete classes on a regression target "
                    "with continuous values."
                )
            if y_type == "multiclass-multioutput":
                raise ValueError("Multioutput target data is not supported with label "
                                 "binarization")
            raise ValueError(f"Unknown label type: {y_type!r}")
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_encoding = LabelEncoding().fit(y, y_type)
            self.classes_ = self._label_encoding.classes_
        else:
            classes = (np.arange(y.shape[1]) if y_type == "multilabel-indicator"
                       else np.unique(y))
            if self.warm_start and not incremental:
                if set(classes.tolist()) != set(self.classes_.tolist()):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        if (self._label_encoding.y_type_ != "multilabel-indicator"
                and len(self.classes_) < 2):
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {self.classes_[0].item()!r}."
            )
        return self._label_encoding.transform(y, dtype)

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 input trains a float32 model; any other
            numeric input trains in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification; a 0/1 indicator matrix for
            multilabel) or real targets (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _partial_fit(self, X, y, sample_weight=None):
        return self._fit(X, y, sample_weight, incremental=True)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        validate_params(self, _HIDDEN_ACTIVATIONS, self._loss_options)
        check_class_weight_param(self)
        runner = None
        if getattr(self, "callbacks", None) is not None:
            from .callbacks import _make_runner

            runner = _make_runner(self)
        saved = self._save_state()
        try:
            return self._fit_unguarded(X, y, sample_weight, incremental, classes, runner)
        except BaseException:
            # a failed fit leaves the estimator exactly as it was before the call
            self._restore_state(saved)
            raise

    def _save_state(self):
        state = {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}
        arrays = {}
        if "_net" in state:
            arrays["params"] = self._net.params.copy()
        opt = state.get("_optimizer")
        if opt is not None:
            state["_optimizer"] = copy.deepcopy(opt)
        return state, arrays

    def _restore_state(self, saved):
        state, arrays = saved
        net = state.get("_net")
        self.__dict__.clear()
        self.__dict__.update(state)
        if net is not None:
            net.params[...] = arrays["params"]

    def _fit_unguarded(self, X, y, sample_weight, incremental, classes, runner=None):
        hidden_layer_sizes = self._hidden_sizes()
        first_pass = not hasattr(self, "_net") or (not self.warm_start and not incremental)
        if classes is not None or (incremental and self._is_classifier()):
            self._partial_fit_classes(y, classes)
        X, csr = self._validate_X(X, reset=first_pass)
        dtype = X.dtype
        Y = self._validate_targets(y, X.shape[0], dtype, incremental)
        sw = check_sample_weight(sample_weight, X.shape[0], dtype)
        if self._is_classifier():
            sw = class_sample_weight(self, Y, sw, incremental)

        n_outputs = Y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [n_outputs]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, layer_units, dtype)
        else:
            self._check_compatible(layer_units)
        self.n_outputs_ = n_outputs
        epochs_before = len(getattr(self, "loss_curve_", None) or ())

        if runner is not None:
            runner.fit_begin(self, 1 if incremental else self.max_iter)
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, csr, Y, sw, incremental, runner)
            else:
                self._fit_lbfgs(X, csr, Y, sw, runner)
        finally:
            if runner is not None:
                runner.fit_end(self)

        if not np.all(np.isfinite(self._net.params)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        opt = getattr(self, "_optimizer", None)
        if opt is not None and not (np.all(np.isfinite(opt.state1))
                                    and np.all(np.isfinite(opt.state2))):
            # e.g. Adam's second moment overflowing: the weights would silently
            # stop moving in every later epoch
            raise ValueError(
                "Solver produced a non-finite optimizer state (the gradients overflowed). "
                "The input data may contain large values and need to be preprocessed, or "
                f"learning_rate_init={self.learning_rate_init} may be too large."
            )
        if not np.isfinite(getattr(self, "loss_", 0.0)):
            # finite weights whose outputs overflow on the training data
            raise ValueError(
                f"The training loss is {self.loss_}: the network's outputs overflow on the "
                "training data. The input data may contain large values and need to be "
                "preprocessed."
            )
        self._warn_if_diverged(epochs_before)
        return self

    def _warn_if_diverged(self, epochs_before):
        """Warn when the loss of this call ends far above its first epoch: the
        weights are finite, but training went the wrong way."""
        curve = (getattr(self, "loss_curve_", None) or [])[epochs_before:]
        if len(curve) >= 2 and curve[0] > 0 and curve[-1] > 10 * curve[0]:
            warnings.warn(
                f"Training diverged: the training loss rose from {curve[0]:.6g} after the "
                f"first epoch to {curve[-1]:.6g} after epoch {len(curve)} of this call. "
                f"learning_rate_init={self.learning_rate_init} is probably too large, or "
                "the input data needs to be scaled.",
                convergence_warning(),
            )

    def _hidden_sizes(self):
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        return [int(h) for h in hidden]

    def _partial_fit_classes(self, y, classes):
        if not self._is_classifier():
            return
        first_call = not hasattr(self, "classes_")
        if classes is None and first_call:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            given, classes = classes, np.unique(np.asarray(classes))
            if not first_call and not np.array_equal(self.classes_, classes):
                raise ValueError(
                    f"`classes={given!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_!r}"
                )
            if first_call:
                y_arr = np.asarray(y)
                if y_arr.ndim == 2 and y_arr.shape[1] > 1 and \
                        type_of_target(y_arr).startswith("multilabel"):
                    self._label_encoding = LabelEncoding().fit(y_arr)
                else:
                    self._label_encoding = LabelEncoding().fit_classes(
                        classes, "multiclass" if len(classes) > 2 else "binary")
                self.classes_ = self._label_encoding.classes_

    def _check_compatible(self, layer_units):
        if list(self._net.sizes) != list(layer_units):
            raise ValueError(
                f"The network was built with layer sizes {self._net.sizes}, but this call "
                f"needs {layer_units}: hidden_layer_sizes or the number of outputs changed. "
                "Set warm_start=False (or use a new estimator) to start over."
            )

    def _output_activation(self, Y):
        if not self._is_classifier():
            return "exp" if self._loss_name() == "poisson" else "identity"
        if self._label_encoding.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _initialize(self, Y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation(Y)
        self._net = Network(layer_units, self.activation, self.out_activation_, dtype)
        self._net.init_glorot(self._random_state, self.activation)
        self.coefs_ = list(self._net.coefs)
        self.intercepts_ = list(self._net.intercepts)
        self._best_params = self._net.params.copy()
        for name in ("_optimizer", "loss_curve_", "best_loss_", "validation_scores_",
                     "validation_loss_curve_", "best_validation_score_", "loss_"):
            self.__dict__.pop(name, None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _loss_scale(self):
        # scikit-learn reports squared error averaged over outputs (its
        # gradient is that of the sum); every other loss sums over outputs
        return 1.0 / self.n_outputs_ if self._loss_name() == "squared_error" else 1.0

    def _fit_stochastic(self, X, csr, Y, sw, incremental, runner=None):
        net = self._sync()
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _Optimizer(self, net.spec.n_params, net.dtype)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # as scikit-learn: stratify on the encoded target, binary problems only
            stratify = (Y.astype(bool) if (self._is_classifier() and self.n_outputs_ == 1)
                        else None)
            train, val = train_test_split_indices(X.shape[0], self.validation_fraction,
                                                  self._random_state, stratify)
            if val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or "
                    "the size of your dataset."
                )
            X_train, X_val = X[train], X[val]
            Y_train = np.ascontiguousarray(Y[train])
            sw_train = None if sw is None else np.ascontiguousarray(sw[train])
            sw_val = None if sw is None else sw[val]
            Y_val = Y[val]
            if self._is_classifier():
                y_val = self._label_encoding.inverse(Y[val])
            else:
                y_val = Y[val]
            if csr is not None:
                X_train = X_train.tocsr()
                X_val = X_val.tocsr()
            csr_train = _engine._csr_parts(X_train) if csr is not None else None
            csr_val = _engine._csr_parts(X_val) if csr is not None else None
        else:
            X_train, Y_train, sw_train, csr_train = X, Y, sw, csr
            X_val = y_val = Y_val = sw_val = csr_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.intp)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going "
                    "to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        opt = self._optimizer
        spec = net.spec
        grads = np.empty_like(net.params)
        work = np.empty(spec.train_workspace_size(batch_size, self.shuffle and csr is None),
                        dtype=net.dtype)
        # parameters and optimizer state at the start of the epoch, restored if
        # Ctrl-C stops the epoch midway (the model then holds whole epochs only)
        snap_params = np.empty_like(net.params)
        snap_s1 = np.empty_like(opt.state1)
        snap_s2 = np.empty_like(opt.state2)
        loss_scale = self._loss_scale()
        alpha = float(self.alpha)
        X_engine = X_train if csr is None else None

        snap = None  # (n_iter_, t_, loss_, len(loss_curve_)) once the snapshot is whole
        try:
            self.n_iter_ = 0
            for it in range(self.max_iter):
                order = None
                if self.shuffle:
                    shuffle_indices(sample_idx, self._random_state, inplace=True)
                    order = sample_idx
                snap = None
                np.copyto(snap_params, net.params)
                np.copyto(snap_s1, opt.state1)
                np.copyto(snap_s2, opt.state2)
                snap_t = opt.t
                snap = (self.n_iter_, self.t_, getattr(self, "loss_", None),
                        len(self.loss_curve_))
                epoch_learning_rate = opt.learning_rate
                args = opt.engine_args()
                try:
                    loss_sum = _engine.train_epoch(
                        spec, net.params, grads, opt.state1, opt.state2_for_engine(),
                        X_engine, csr_train, Y_train, sw_train, order, batch_size, args,
                        alpha, loss_scale, work)
                except BaseException:
                    # stopped mid-epoch (Ctrl-C): keep whole epochs only
                    np.copyto(net.params, snap_params)
                    np.copyto(opt.state1, snap_s1)
                    np.copyto(opt.state2, snap_s2)
                    opt.t = snap_t
                    raise
                opt.t = args["t"]

                self.n_iter_ += 1
                self.loss_ = loss_sum / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if not np.isfinite(self.loss_):
                    raise ValueError(
                        "Solver produced non-finite parameter weights (the training loss "
                        f"became {self.loss_} in epoch {self.n_iter_}). The input data may "
                        "contain large values and need to be preprocessed, or "
                        f"learning_rate_init={self.learning_rate_init} may be too large."
                    )

                self._update_no_improvement_count(early_stopping, X_val, csr_val, y_val,
                                                  sw_val, Y_val)
                opt.iteration_ends(self.t_)

                if runner is not None and runner.epoch_end(
                        self, self.n_iter_, self.loss_,
                        self.validation_scores_[-1] if early_stopping else None,
                        self.validation_loss_curve_[-1] if early_stopping else None,
                        epoch_learning_rate) and not incremental:
                    if self.verbose:
                        print("Training stopped by a callback after epoch %d." % self.n_iter_)
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (
                            "Validation score did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    else:
                        msg = (
                            "Training loss did not improve more than tol=%f for %d "
                            "consecutive epochs." % (self.tol, self.n_iter_no_change)
                        )
                    if opt.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break

                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        convergence_warning(),
                    )
        except KeyboardInterrupt:
            if snap is not None and len(self.loss_curve_) == snap[3]:
                # Ctrl-C reached Python after the engine's epoch but before the
                # epoch was recorded: drop that epoch too, so the weights, the
                # optimizer state and the counters describe the same epoch
                np.copyto(net.params, snap_params)
                np.copyto(opt.state1, snap_s1)
                np.copyto(opt.state2, snap_s2)
                opt.t = snap_t
                self.n_iter_, self.t_ = snap[0], snap[1]
                if snap[2] is None:
                    self.__dict__.pop("loss_", None)
                else:
                    self.loss_ = snap[2]
            warnings.warn(
                f"Training interrupted by user. The model holds the weights after epoch "
                f"{self.n_iter_} of this call."
            )

        if early_stopping:
            np.copyto(net.params, self._best_params)

    def _update_no_improvement_count(self, early_stopping, X_val, csr_val, y_val, sw_val,
                                     Y_val=None):
        if early_stopping:
            P = self._forward_validated(self._net, X_val, csr_val)
            val_score = self._score_internal(X_val, csr_val, y_val, sw_val, P)
            self.validation_scores_.append(val_score)
            if getattr(self, "validation_loss_curve_", None) is None:
                # a model fitted by an older fastbp, or without early stopping before
                self.validation_loss_curve_ = [np.nan] * (len(self.validation_scores_) - 1)
            self.validation_loss_curve_.append(self._validation_loss(P, Y_val, sw_val))
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                np.copyto(self._best_params, self._net.params)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, X, csr, Y, sw, runner=None):
        net = self._sync()
        spec = net.spec
        params = net.params
        chunk = min(_CHUNK_ROWS, X.shape[0])
        work = np.empty(spec.train_workspace_size(chunk, False), dtype=net.dtype)
        grad = np.empty_like(params)
        alpha = float(self.alpha)
        X_engine = X if csr is None else None
        last = {"x": params.astype(np.float64), "fun": None, "nit": 0, "stopped": False}

        def loss_grad(x):
            params[...] = x
            loss = _engine.loss_and_grad(spec, params, X_engine, csr, Y, sw, alpha, 1.0,
                                         grad, work, chunk)
            return loss, grad.astype(np.float64)

        def callback(intermediate_result):
            # one update call, so Ctrl-C cannot separate the iterate from its loss
            last.update({"x": np.array(intermediate_result.x),
                         "fun": float(intermediate_result.fun), "nit": last["nit"] + 1})
            if not (self.verbose or runner is not None):
                return
            # the buffer holds the last point the line search tried; show the
            # iterate itself to the loss report and to the callbacks
            params[...] = last["x"]
            loss = self._reported_loss(last["fun"], sw, X.shape[0])
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (last["nit"], loss))
            if runner is not None and runner.epoch_end(self, last["nit"], loss):
                last["stopped"] = True
                if self.verbose:
                    print("Training stopped by a callback after iteration %d."
                          % last["nit"])
                raise StopIteration

        try:
            opt_res = scipy.optimize.minimize(
                loss_grad, params.astype(np.float64), method="L-BFGS-B", jac=True,
                callback=callback,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        except KeyboardInterrupt:
            warnings.warn(
                f"Training interrupted by user. The model holds the L-BFGS iterate after "
                f"{last['nit']} iteration(s)."
            )
            params[...] = last["x"]
            self.n_iter_ = last["nit"]
            self.loss_ = self._reported_loss(
                last["fun"] if last["fun"] is not None else loss_grad(last["x"])[0], sw,
                X.shape[0])
            params[...] = last["x"]
            return
        n_iter = min(opt_res.nit, self.max_iter)
        if opt_res.status != 0 and not last["stopped"]:
            msg = (f"lbfgs failed to converge after {n_iter} iteration(s) "
                   f"(status={opt_res.status}):\n{opt_res.message}\n")
            if n_iter == self.max_iter:
                msg += ("\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={self.max_iter}).")
            warnings.warn(msg, convergence_warning(), stacklevel=3)
        self.n_iter_ = n_iter
        params[...] = opt_res.x
        self.loss_ = self._reported_loss(float(opt_res.fun), sw, X.shape[0])

    def _reported_loss(self, objective, sw, n_samples):
        """The objective as scikit-learn reports it in ``loss_`` (for squared
        error with several outputs, the data term averaged over outputs)."""
        scale = self._loss_scale()
        if scale == 1.0:
            return objective
        sw_sum = n_samples if sw is None else float(sw.sum())
        penalty = 0.5 * self.alpha * sum(float(np.dot(c.ravel(), c.ravel()))
                                         for c in self._net.coefs) / sw_sum
        return (objective - penalty) * scale + penalty

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------

    def _forward(self, X):
        """Output-layer activations for X, shape (n_samples, n_outputs)."""
        self._check_fitted()
        net = self._sync()
        X, csr = self._validate_X(X, reset=False)
        return self._forward_validated(net, X, csr)

    def _forward_validated(self, net, X, csr):
        n = X.shape[0]
        out = np.empty((n, net.sizes[-1]), dtype=net.dtype)
        chunk = max(1, min(_CHUNK_ROWS, n))
        work = np.empty(net.spec.predict_workspace_size(chunk), dtype=net.dtype)
        _engine.forward(net.spec, net.params, X if csr is None else None, csr, out, work, chunk)
        return out

    def _predict_from_output(self, P):
        if self._is_classifier():
            return self._label_encoding.inverse(P)
        return P.ravel() if P.shape[1] == 1 else P

    def predict(self, X):
        """Predict with the multilayer perceptron.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or predicted values (regression).
        """
        net = self.__dict__.get("_net")
        fast = net.spec.predictor if net is not None else None
        if fast is not None:
            y = fast.predict(X, self.__dict__)
            if y is not None:
                return y
        y = self._predict_from_output(self._forward(X))
        if fast is None or fast.net is not self._net:
            # cached on the network's spec, not on the estimator (predict must
            # not change the estimator's __dict__)
            self._net.spec.predictor = self._fast_predictor()
        return y

    def _fast_predictor(self):
        """The small-input path of ``predict`` (``_engine.Predictor``), or None
        for models it does not serve (multilabel, feature names)."""
        if "feature_names_in_" in self.__dict__:
            return None
        net = self._net
        if not self._is_classifier():
            return _engine.Predictor(net, None, "regression")
        y_type = self._label_encoding.y_type_
        if y_type not in ("binary", "multiclass") or self.classes_.dtype.kind == "O":
            return None
        return _engine.Predictor(net, self.classes_, y_type)

    def _score_internal(self, X, csr, y, sample_weight, P=None):
        if P is None:
            P = self._forward_validated(self._net, X, csr)
        y_pred = self._predict_from_output(P)
        if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and \
                not np.isfinite(y_pred).all():
            return np.nan
        if self._is_classifier():
            return accuracy_score(y, y_pred, sample_weight)
        return r2_score(y, y_pred, sample_weight)

    def _validation_loss(self, P, Y, sample_weight):
        """The training loss of held-out data, from the output activations ``P``:
        the sample-weighted mean over rows of the per-row loss (summed over
        outputs; squared error averaged over outputs, as ``loss_curve_``),
        without the L2 penalty, which describes the weights, not the data.
        Few numpy calls: it runs every epoch, where tiny nets take ~50 us."""
        eps = np.finfo(self._net.dtype).eps
        if P.dtype != np.float64:
            P, Y = P.astype(np.float64), Y.astype(np.float64)
        out = self.out_activation_
        sign = 1.0
        if out == "identity":
            D = P - Y
            losses = np.square(D, out=D) * (0.5 * self._loss_scale())
        elif out == "exp":
            with np.errstate(divide="ignore", invalid="ignore"):
                ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / P), 0.0)
            losses = ylogy - Y + P
        else:
            # log-losses: minus the log-probability of the observed labels, the
            # probability clipped at the model dtype's eps as the engine and
            # scikit-learn clip it (the sign is applied once, at the end)
            sign = -1.0
            if out == "softmax":
                losses = Y * np.log(np.maximum(P, eps))
            else:  # logistic: one probability per 0/1 label
                losses = np.where(Y != 0, P, 1.0 - P)
                np.log(np.maximum(losses, eps, out=losses), out=losses)
        if sample_weight is None:
            return sign * float(losses.sum()) / losses.shape[0]
        row_losses = losses[:, 0] if losses.shape[1] == 1 else losses.sum(axis=1)
        return sign * float(np.dot(sample_weight, row_losses)) / float(sample_weight.sum())

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (classification; subset accuracy for multilabel) or the
        coefficient of determination R² (regression) on the given data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y_pred = self.predict(X)
        y = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if self._is_classifier():
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.ravel()
            return accuracy_score(y, y_pred, sample_weight)
        return r2_score(y, y_pred, sample_weight)

    @_available_if(_classifies)
    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``.
        """
        P = self._forward(X)
        if P.shape[1] == 1:
            p = P[:, 0]
            return np.vstack([1 - p, p]).T
        return P

    @_available_if(_classifies)
    def predict_log_proba(self, X):
        """Logarithm of the probability estimates (``-inf`` where a probability
        is exactly 0).

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(y_prob, out=y_prob)

    # ------------------------------------------------------------------
    # inspection
    # ------------------------------------------------------------------

    def loss_and_gradients(self, X, y, sample_weight=None):
        """Loss and its gradients at the current parameters, by backpropagation.

        Runs the same Cython kernels that train the model on the whole of X
        (no mini-batches, no update). The loss is the training objective
        ``sum_i w_i loss_i / sum_i w_i + alpha / (2 sum_i w_i) * sum ||W||²``
        with the per-sample loss summed over outputs (``w_i`` includes the
        ``class_weight`` of sample i's class); its gradients are what the
        solvers step along. (For squared error with several outputs,
        scikit-learn's ``loss_`` reports the data term averaged over outputs
        while its gradients are those of the sum; this method returns the
        objective that matches the gradients.)

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        loss : float
        coef_grads : list of ndarray
            ``coef_grads[i]`` has the shape of ``coefs_[i]``.
        intercept_grads : list of ndarray
            ``intercept_grads[i]`` has the shape of ``intercepts_[i]``.
        """
        self._check_fitted()
        net = self._sync()
        X, csr = self._validate_X(X, reset=False)
        Y = self._encode_for_inspection(y, X.shape[0], net.dtype)
        sw = check_sample_weight(sample_weight, X.shape[0], net.dtype)
        if self._is_classifier():
            check_class_weight_param(self)
            sw = class_sample_weight(self, Y, sw, incremental=False)
        grad = np.empty_like(net.params)
        chunk = min(_CHUNK_ROWS, X.shape[0])
        work = np.empty(net.spec.train_workspace_size(chunk, False), dtype=net.dtype)
        loss = _engine.loss_and_grad(net.spec, net.params, X if csr is None else None, csr,
                                     Y, sw, float(self.alpha), 1.0, grad, work, chunk)
        coef_grads = [grad[a:b].reshape(shape) for a, b, shape in net.spec.weight_slices()]
        intercept_grads = [grad[a:b] for a, b in net.spec.bias_slices()]
        return loss, coef_grads, intercept_grads

    def _encode_for_inspection(self, y, n_samples, dtype):
        if not self._is_classifier():
            Y = check_y_regression(y, dtype=dtype)
            check_consistent_length(n_samples, Y.shape[0])
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {Y.shape[1]} outputs, but the model has "
                                 f"{self.n_outputs_}.")
            return Y
        y = column_or_2d(y)
        check_consistent_length(n_samples, y.shape[0])
        return self._label_encoding.transform(y, dtype)

    def save(self, path):
        """Save the fitted model to ``path`` in fastbp's pickle-free format.

        The file is a NumPy ``.npz`` archive (loaded with
        ``allow_pickle=False``) holding the parameters, the optimizer state
        and a JSON header; ``fastbp.load(path)`` restores an identical model
        that predicts the same and can continue training.

        Parameters
        ----------
        path : str or path-like
            Where to write the file (replaced atomically if it exists).

        Notes
        -----
        ``pickle`` and ``joblib`` work too, but loading a pickle runs code
        chosen by whoever wrote the file: never unpickle a model from a
        source you do not trust. ``fastbp.load`` never runs code from the
        file.
        """
        from ._io import save_model

        save_model(self, path)


class MLPClassifier(_BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for scikit-learn's.

    Optimizes the log-loss with L-BFGS, SGD or Adam. Parameters, defaults,
    fitted attributes and behaviour are those of
    ``sklearn.neural_network.MLPClassifier`` (scikit-learn 1.9): with the
    same ``random_state`` it draws the same initial weights and the same
    mini-batch order. Training runs in fastbp's typed Cython engine, one
    GIL-free call per epoch.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu'}, default='relu'
        Activation of the hidden layers. ``'leaky_relu'`` (slope 0.01 below
        zero) is a fastbp addition.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimizer.
    alpha : float, default=0.0001
        Strength of the L2 penalty (divided by the sample-weight sum).
    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule (solver='sgd' only).
    learning_rate_init : float, default=0.001
        Initial step size (sgd, adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum epochs (sgd, adam) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle the samples every epoch (sgd, adam).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the early-stopping split and shuffling.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no improvement.
    verbose : bool, default=False
        Print the loss every epoch.
    warm_start : bool, default=False
        Reuse the previous solution as the starting point of ``fit``.
    momentum : float, default=0.9
        Momentum of SGD.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd, momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when its score
        stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
        Share of training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping (sgd, adam).
    max_fun : int, default=15000
        Maximum loss evaluations (lbfgs).
    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes (a fastbp addition; scikit-learn semantics):
        each sample's weight is its class's weight times its
        ``sample_weight``. A dict maps labels to weights (classes it does not
        name weigh 1). ``'balanced'`` uses ``n_samples / (n_classes *
        np.bincount(y))`` (counts weighted by ``sample_weight`` when given),
        as ``sklearn.utils.class_weight.compute_class_weight``; it is not
        supported by ``partial_fit``. Multilabel y takes ``'balanced'`` or a
        list of one dict per label (keys 0 and 1), as scikit-learn's
        ``compute_sample_weight``. With ``early_stopping``, the held-out
        data is weighted the same way for its score and loss.
    callbacks : callable, Callback or list of them, default=None
        Called after every epoch (L-BFGS: every iteration) with a
        :class:`fastbp.callbacks.EpochInfo`; returning True or raising
        :class:`fastbp.callbacks.StopTraining` stops training. See
        :mod:`fastbp.callbacks` (``ProgressBar``, ``History``). Not stored
        by ``save``: set it again after ``fastbp.load``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
        Training loss per epoch (sgd, adam), L2 penalty included.
    validation_scores_ : list of float or None
        Score on the held-out data per epoch (``early_stopping=True``).
    validation_loss_curve_ : list of float or None
        Loss on the held-out data per epoch when ``early_stopping=True``,
        else None (a fastbp addition). It is the training loss (the same
        per-sample loss as ``loss_curve_``, weighted by ``sample_weight`` and
        ``class_weight``) without the L2 penalty, which does not depend on
        the data; at the default ``alpha`` the penalty is negligible.
    best_validation_score_ : float or None
    t_ : int
        Training samples seen by the solver.
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (n_units_i, n_units_{i+1}); views into the
        model's flat parameter buffer.
    intercepts_ : list of ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only when X had string column names.
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str

    Examples
    --------
    >>> from fastbp import MLPClassifier
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 4)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=1).fit(X, y)
    >>> clf.score(X, y) > 0.95
    True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.callbacks = callbacks

    def _is_classifier(self):
        return True

    def _loss_name(self):
        return "log_loss"

    @_available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Every class of the whole data; required on the first call.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)


class MLPRegressor(_BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    Optimizes half the squared error (``loss='squared_error'``) or half the
    Poisson deviance with a log link (``loss='poisson'``, needs ``y >= 0``)
    with L-BFGS, SGD or Adam. Parameters, defaults, attributes and behaviour
    are those of ``sklearn.neural_network.MLPRegressor`` (scikit-learn 1.9);
    see :class:`MLPClassifier` for the shared parameters and attributes
    (``callbacks`` and ``validation_loss_curve_`` included). ``activation``
    also accepts ``'leaky_relu'``.

    Examples
    --------
    >>> from fastbp import MLPRegressor
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(300, 2)); y = X[:, 0] ** 2 + X[:, 1]
    >>> reg = MLPRegressor((32,), max_iter=500, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        callbacks=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.callbacks = callbacks

    _loss_options = frozenset({"squared_error", "poisson"})

    def _is_classifier(self):
        return False

    @_available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True)


class MLP(_BaseMLP):
    """A multilayer perceptron trained by backpropagation: one class for
    classification and regression.

    The seed's network, made general: layers compute ``A @ W + b`` followed
    by an activation; the output layer and loss are paired so that the
    output error is simply ``y_hat - y`` (backpropagation by the chain rule):

    * ``loss='log_loss'`` (default): classification. Two classes use one
      sigmoid output with binary cross-entropy, more classes a softmax with
      cross-entropy; a 0/1 indicator matrix y trains a multilabel model.
    * ``loss='squared_error'``: regression with an identity output.
    * ``loss='poisson'``: regression of counts/rates with an exp output and
      the Poisson deviance (``y >= 0``).

    Every other parameter and attribute is the one of :class:`MLPClassifier`
    / :class:`MLPRegressor`; ``predict_proba`` exists for classification.
    ``class_weight`` applies to classification only (any other value than
    None with a regression loss is an error).

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import MLP
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]] * 25)
    >>> y = np.array([0, 1, 1, 0] * 25)                    # XOR
    >>> net = MLP((8,), activation="tanh", solver="lbfgs", random_state=0).fit(X, y)
    >>> net.predict([[0., 1.], [1., 1.]])
    array([1, 0])
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="log_loss",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.callbacks = callbacks

    _loss_options = frozenset({"log_loss", "squared_error", "poisson"})

    def _is_classifier(self):
        return self.loss == "log_loss"

    @_available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data (``classes``
        is required on the first call for classification).

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)
