"""MLP, MLPClassifier and MLPRegressor.

The data path runs one way: ``fit`` validates once, encodes the targets
(``_targets``), builds the network once, then trains with the solver's unit:
``_training`` (sgd, adam: one GIL-free engine call per epoch, the per-epoch
rules in Python) or ``_lbfgs``. ``_BaseMLP`` composes those units with the
estimator protocol (``_sklearn_api``) and the state (``_state``); the three
classes only add their parameters and documentation.

The behaviour mirrors scikit-learn 1.9's ``sklearn.neural_network`` where it
is observable (parameters, defaults, attributes, messages, random draws,
stopping rules), so swapping the import gives the same model.
"""

import operator

import numpy as np

from . import _engine_calls, _targets
from ._class_weight import check_class_weight_param, class_sample_weight
from ._compat import accuracy_score, check_random_state, r2_score
from ._exceptions import not_fitted_error
from ._lbfgs import LbfgsTraining
from ._losses import loss_settings, output_activation
from ._network import Network
from ._optimizers import SOLVERS, Optimizer
from ._sklearn_api import EstimatorAPI, available_if, make_init, parameter_constraints
from ._sklearn_compat import SklearnBase, adopt_when_imported
from ._state import StateMixin, register
from ._training import Checkpoint, StochasticTraining
from ._validation import (
    check_feature_names,
    check_sample_weight,
    check_training_options,
    check_X,
    choose_dtype,
    validate_params,
)

__all__ = ["MLP", "MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = SOLVERS
# the optimizer's class under its fastbp 0.1.0 name, for pickles written by it
_Optimizer = Optimizer


def _stochastic(est):
    """partial_fit is only available for the stochastic solvers 'sgd' and 'adam'."""
    return est.solver in _STOCHASTIC_SOLVERS


def _classifies(est):
    """probabilities exist only for classification (loss='log_loss')."""
    return est._is_classifier()


class _BaseMLP(EstimatorAPI, StateMixin, StochasticTraining, LbfgsTraining, SklearnBase):
    """Shared implementation of MLP, MLPClassifier and MLPRegressor.

    Private state: ``_net`` (the network and its flat parameter buffer;
    ``coefs_`` and ``intercepts_`` are views into it), ``_label_encoding``
    (classifiers), ``_random_state`` (the generator of the last fit), and
    the solvers' ``_optimizer``, ``_best_params`` and
    ``_no_improvement_count``.
    """

    # name -> accepted values of the constructor parameters (set per class)
    _parameter_constraints = {}

    # ------------------------------------------------------------------
    # task and fitted state
    # ------------------------------------------------------------------

    def _is_classifier(self):
        raise NotImplementedError

    def _loss_name(self):
        return "log_loss" if self._is_classifier() else self.loss

    def _is_fitted(self):
        return hasattr(self, "_net")

    def _check_fitted(self):
        if not hasattr(self, "_net"):
            raise not_fitted_error(self)

    def _encoding(self):
        """The label encoding of a classifier; None for regression."""
        return self._label_encoding if self._is_classifier() else None

    def _validate_params(self):
        """Check every constructor parameter (fit and load call this); returns
        the dropout rate of each hidden layer."""
        validate_params(self, self._parameter_constraints)
        check_class_weight_param(getattr(self, "class_weight", None), type(self).__name__,
                                 self._loss_name())
        return check_training_options(self, self._loss_name())

    def _hidden_sizes(self):
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        return [int(h) for h in hidden]

    def _sync(self):
        """The network, with any user assignment to coefs_/intercepts_ copied in."""
        net = self._net
        coefs, intercepts = self.coefs_, self.intercepts_
        if (len(coefs) != len(net.coefs) or len(intercepts) != len(net.intercepts)
                or not all(map(operator.is_, coefs, net.coefs))
                or not all(map(operator.is_, intercepts, net.intercepts))):
            net.sync_from(list(coefs), list(intercepts))
            self.coefs_ = list(net.coefs)
            self.intercepts_ = list(net.intercepts)
        return net

    def _validate_X(self, X, reset, check_finite=True):
        """X in the model dtype, C-contiguous, as an ``EngineInput``
        (``check_finite=False``: dense values unchecked, see ``_forward``)."""
        name = type(self).__name__
        check_feature_names(self, X, reset=reset)
        dtype = choose_dtype(X) if reset else self._net.dtype
        X, _ = check_X(X, dtype=dtype, estimator_name=name, check_finite=check_finite)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {name} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return _engine_calls.EngineInput(X)

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
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
        X_val, y_val, sample_weight_val : default=None
            Validation data (sgd, adam), as scikit-learn 1.7's gradient
            boosting takes it. With ``early_stopping=True`` it replaces the
            ``validation_fraction`` split: training stops when its score
            (``scoring='loss'``: its loss) stops improving and the best
            epoch's weights are kept. Without early stopping it is recorded
            in ``validation_scores_`` and ``validation_loss_curve_``, and
            training runs as without it. ``class_weight`` weighs it too.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validation = None
        if X_val is not None or y_val is not None or sample_weight_val is not None:
            validation = (X_val, y_val, sample_weight_val)
        return self._fit(X, y, sample_weight, incremental=False, validation=validation)

    def _fit(self, X, y, sample_weight, incremental, classes=None, validation=None):
        dropout_rates = self._validate_params()
        runner = None
        if getattr(self, "callbacks", None) is not None:
            from .callbacks import _make_runner

            runner = _make_runner(self)
        net = self.__dict__.get("_net")
        if net is not None:
            net.spec.predictor = None  # predict's fast path is rebuilt for the new fit
        # a failed fit leaves the estimator exactly as it was before the call
        before = Checkpoint(self, self.__dict__.get("_optimizer"), self._arrays_written())
        try:
            return self._fit_unguarded(X, y, sample_weight, incremental, classes, runner,
                                       validation, dropout_rates)
        except BaseException:
            before.restore()
            raise

    def _arrays_written(self):
        """The existing arrays a fit writes in place."""
        arrays = [self._net.params] if "_net" in self.__dict__ else []
        optimizer = self.__dict__.get("_optimizer")
        if optimizer is not None:
            arrays += optimizer.written_buffers()
        if "_best_params" in self.__dict__:
            arrays.append(self._best_params)
        return arrays

    def _fit_unguarded(self, X, y, sample_weight, incremental, classes, runner=None,
                       validation=None, dropout_rates=None):
        hidden_layer_sizes = self._hidden_sizes()
        self._check_validation_arguments(validation)
        first_pass = not hasattr(self, "_net") or (not self.warm_start and not incremental)
        if self._is_classifier() and (classes is not None or incremental):
            self._set_encoding(_targets.partial_fit_encoding(
                self.__dict__.get("_label_encoding"), y, classes))
        inp = self._validate_X(X, reset=first_pass)
        Y, sw = self._training_targets(y, sample_weight, inp, incremental)
        n_outputs = Y.shape[1]
        layer_units = [inp.n_features] + hidden_layer_sizes + [n_outputs]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, inp.dtype, validation is not None)
        else:
            self._check_compatible(layer_units)
        self.n_outputs_ = n_outputs
        epochs_before = len(getattr(self, "loss_curve_", None) or ())
        held_out = self._validation_set(*validation) if validation is not None else None
        settings = loss_settings(self, n_outputs)

        if runner is not None:
            runner.fit_begin(self, 1 if incremental else self.max_iter)
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(inp, Y, sw, incremental, runner, held_out, settings,
                                     dropout_rates)
            else:
                self._fit_lbfgs(inp, Y, sw, runner, settings)
        finally:
            if runner is not None:
                runner.fit_end(self)
        self._check_finite_result()
        self._warn_if_diverged(epochs_before)
        return self

    def _set_encoding(self, encoding):
        self._label_encoding = encoding
        self.classes_ = encoding.classes_

    def _training_targets(self, y, sample_weight, inp, incremental):
        """(Y, sample weights) the engine trains on; classifiers learn or
        check their classes here and weigh samples by ``class_weight``."""
        continuing = "partial_fit" if incremental else "warm_start" if self.warm_start else None
        Y, encoding = _targets.encode_fit_targets(
            y, inp.n_rows, inp.dtype, loss=self._loss_name(),
            encoding=self.__dict__.get("_label_encoding"), continuing=continuing,
            estimator_name=type(self).__name__, quantiles=self._quantiles())
        sw = check_sample_weight(sample_weight, inp.n_rows, inp.dtype)
        if self._is_classifier():
            self._set_encoding(encoding)
            sw = class_sample_weight(getattr(self, "class_weight", None), encoding, Y, sw,
                                     incremental)
        return Y, sw

    def _quantiles(self):
        """loss='quantile': its quantiles as given (a float or a sequence), else None."""
        return self.quantile if self._loss_name() == "quantile" else None

    def _initialize(self, layer_units, dtype, validating=False):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        y_type = self._label_encoding.y_type_ if self._is_classifier() else None
        self.out_activation_ = output_activation(self._loss_name(), y_type)
        self._net = Network(layer_units, self.activation, self.out_activation_, dtype)
        self._net.init_glorot(self._random_state, self.activation)
        self.coefs_ = list(self._net.coefs)
        self.intercepts_ = list(self._net.intercepts)
        self._best_params = self._net.params.copy()
        self.__dict__.pop("loss_", None)
        self._reset_training_record(self.solver in _STOCHASTIC_SOLVERS, validating)

    def _check_compatible(self, layer_units):
        if list(self._net.sizes) != list(layer_units):
            raise ValueError(
                f"The network was built with layer sizes {self._net.sizes}, but this call "
                f"needs {layer_units}: hidden_layer_sizes or the number of outputs changed. "
                "Set warm_start=False (or use a new estimator) to start over."
            )

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------

    def _forward(self, X):
        """Output-layer activations for X, shape (n_samples, n_outputs).

        Dense X's values are checked by the engine as it takes each chunk of
        rows (one pass over X fewer: X is read once, while its rows are in
        cache); only when it finds NaN or infinity is X validated again, with
        the check, for the usual error."""
        self._check_fitted()
        net = self._sync()
        P = _engine_calls.forward(net, self._validate_X(X, reset=False, check_finite=False),
                                  check_finite=True)
        if P is None:
            self._validate_X(X, reset=False)     # raises the error for NaN or infinity
            raise AssertionError("the engine found a non-finite value that validation did not")
        return P

    def _predict_from_output(self, P):
        return _targets.decode(P, self._encoding())

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
        attributes = self.__dict__
        net = attributes.get("_net")
        fast = net.spec.predictor if net is not None else None
        if fast is not None:
            y = fast.predict(X, attributes.get("coefs_"), attributes.get("intercepts_"),
                             attributes.get("classes_"))
            if y is not None:
                return y
        y = self._predict_from_output(self._forward(X))
        if fast is None:
            self._cache_fast_predictor()
        return y

    def _cache_fast_predictor(self):
        # cached on the network's spec, not on the estimator (predict must
        # not change the estimator's __dict__); a fit drops it
        self._net.spec.predictor = self._fast_predictor()

    def _fast_predictor(self):
        """The small-input path of ``predict``, or None for models it does
        not serve (multilabel, object labels, feature names)."""
        if "feature_names_in_" in self.__dict__:
            return None
        if not self._is_classifier():
            return _engine_calls.fast_predictor(self._net, None, "regression")
        y_type = self._label_encoding.y_type_
        if y_type not in ("binary", "multiclass") or self.classes_.dtype.kind == "O":
            return None
        return _engine_calls.fast_predictor(self._net, self.classes_, y_type)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (classification; subset accuracy for multilabel) or the
        coefficient of determination R² (regression) on the given data. With
        several quantiles (``loss='quantile'``), y is compared with each
        quantile's prediction and the R² averaged over them.

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
        if self._quantiles() is not None and np.ndim(self._quantiles()):
            y = _targets.quantile_targets(y.reshape(len(y), -1), self._quantiles())
        return r2_score(y, y_pred, sample_weight)

    @available_if(_classifies)
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
        return self._probabilities(X, False)

    @available_if(_classifies)
    def predict_log_proba(self, X):
        """Logarithm of the probability estimates (``-inf`` where a probability
        is exactly 0).

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        return self._probabilities(X, True)

    def _probabilities(self, X, log):
        # predict_proba (log: its logs): small inputs through the engine's
        # Predictor, which takes the same steps in one call
        attributes = self.__dict__
        net = attributes.get("_net")
        fast = net.spec.predictor if net is not None else None
        if fast is not None:
            P = fast.predict_proba(X, attributes.get("coefs_"), attributes.get("intercepts_"),
                                   attributes.get("classes_"), log)
            if P is not None:
                return P
        P = self._forward(X)
        if fast is None:
            self._cache_fast_predictor()
        return _targets.probabilities(P, log)

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
        inp = self._validate_X(X, reset=False)
        Y = _targets.encode_known_targets(y, inp.n_rows, net.dtype, loss=self._loss_name(),
                                          encoding=self._encoding(),
                                          n_outputs=self.n_outputs_, quantiles=self._quantiles())
        sw = check_sample_weight(sample_weight, inp.n_rows, net.dtype)
        if self._is_classifier():
            check_class_weight_param(getattr(self, "class_weight", None), type(self).__name__,
                                     self._loss_name())
            sw = class_sample_weight(getattr(self, "class_weight", None),
                                     self._label_encoding, Y, sw, incremental=False)
        objective = _engine_calls.FullBatchObjective(
            net, inp, Y, sw, self.alpha, self._loss_name(), loss_settings(self, self.n_outputs_))
        loss = objective()
        grad = objective.grad
        coef_grads = [grad[a:b].reshape(shape) for a, b, shape in net.spec.weight_slices()]
        intercept_grads = [grad[a:b] for a, b in net.spec.bias_slices()]
        return loss, coef_grads, intercept_grads

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


@register
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
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'gelu', 'silu', \
'selu', 'mish', 'softplus'}, default='relu'
        Activation of the hidden layers. fastbp adds ``'leaky_relu'`` (slope
        0.01 below zero), ``'gelu'`` (exact, ``z Phi(z)``: PyTorch's
        default), ``'silu'`` (``z sigmoid(z)``), ``'selu'`` (PyTorch's
        constants), ``'mish'`` (``z tanh(softplus(z))``) and
        ``'softplus'`` (``log(1 + exp(z))``, exact). Weights start as
        scikit-learn's Glorot uniform draws for every activation.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimizer.
    alpha : float, default=0.0001
        Strength of the L2 penalty (divided by the sample-weight sum).
    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine', 'flat_cosine'}, \
default='constant'
        Learning-rate schedule. scikit-learn's three change the rate between
        epochs and apply to solver='sgd' only; fastbp's ``'cosine'``
        (``learning_rate_init`` to 0 along half a cosine over ``max_iter``
        epochs) and ``'flat_cosine'`` (constant for the first half, then
        the cosine) change it at every mini-batch step, for 'sgd' and
        'adam'.
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
    dropout : float or sequence of float, default=0.0
        Inverted dropout on the hidden layers' outputs while training (sgd,
        adam): each unit is dropped with this probability, in [0, 1), and
        kept ones are scaled by 1 / (1 - dropout); one float for every
        hidden layer or one per hidden layer. Prediction,
        ``loss_and_gradients`` and validation scores use the whole network.
        The masks come from a counter-based generator seeded by
        ``random_state`` (one extra draw per fit, only when dropout is on):
        the same seed gives the same model, whatever the thread count.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW, SGDW; sgd, adam): at every step the
        weights, never the intercepts, are multiplied by ``1 - lr *
        weight_decay``, ``lr`` the step's scheduled rate, as PyTorch's
        ``AdamW``. ``alpha`` keeps its meaning (an L2 term in the loss); it
        must stay below ``1 / learning_rate_init``.
    warmup : float, default=0.0
        Fraction of the training steps (``max_iter`` epochs of mini-batches)
        over which the learning rate rises linearly to its value (the first
        step at ``1 / warmup_steps`` of it); any ``learning_rate`` schedule
        then runs over the remaining steps.
    max_grad_norm : float or None, default=None
        Clip each step's gradient (all layers together, L2 term included)
        to this Euclidean norm, as PyTorch's ``clip_grad_norm_`` (sgd, adam).
    label_smoothing : float, default=0.0
        Classification: train on the targets ``(1 - label_smoothing) *
        onehot + label_smoothing / K`` (K classes; binary and multilabel
        outputs are two-class problems: ``y * (1 - e) + e / 2``), as
        PyTorch's ``CrossEntropyLoss``; the loss is then computed exactly
        from the logits. ``loss_curve_`` and ``validation_loss_curve_``
        report the smoothed loss.
    huber_delta : float, default=1.0
        ``loss='huber'`` (MLPRegressor, MLP): the error at which the loss
        turns from quadratic (``e**2 / 2``) to linear (``delta * (|e| -
        delta / 2)``), as PyTorch's ``HuberLoss``.
    quantile : float or sequence of float, default=0.5
        ``loss='quantile'`` (MLPRegressor, MLP): the quantile(s) to
        predict, in [0, 1], with scikit-learn's ``mean_pinball_loss``. A
        float predicts that quantile of every target column; a sequence
        predicts each quantile of a single target, one output column each
        (prediction intervals in one model).
    scoring : {'loss'} or None, default=None
        What early stopping monitors on the validation data: None, the
        score (accuracy or R², as scikit-learn); ``'loss'``, the validation
        loss (``validation_scores_`` then holds minus the loss, as
        HistGradientBoosting's ``validation_score_`` with
        ``scoring='loss'``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
        Training loss per epoch (sgd, adam), L2 penalty included.
    validation_scores_ : list of float or None
        Score on the held-out data per epoch (``early_stopping=True``, or
        ``X_val`` given to ``fit``); with ``scoring='loss'``, minus the loss.
    validation_loss_curve_ : list of float or None
        Loss on the held-out data per epoch when ``early_stopping=True`` or
        ``X_val`` was given, else None (a fastbp addition). It is the
        training loss (the same per-sample loss as ``loss_curve_``,
        weighted by ``sample_weight`` and ``class_weight``) without the L2
        penalty, which does not depend on the data; at the default
        ``alpha`` the penalty is negligible.
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

    __init__ = make_init("MLPClassifier", __name__)
    _parameter_constraints = parameter_constraints("MLPClassifier")

    def _is_classifier(self):
        return True

    def _loss_name(self):
        return "log_loss"

    @available_if(_stochastic)
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


@register
class MLPRegressor(_BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for scikit-learn's.

    Optimizes half the squared error (``loss='squared_error'``) or half the
    Poisson deviance with a log link (``loss='poisson'``, needs ``y >= 0``)
    with L-BFGS, SGD or Adam. Parameters, defaults, attributes and behaviour
    are those of ``sklearn.neural_network.MLPRegressor`` (scikit-learn 1.9);
    see :class:`MLPClassifier` for the shared parameters and attributes
    (``callbacks``, the training options and ``validation_loss_curve_``
    included). fastbp adds the losses ``loss='huber'`` (``huber_delta``),
    ``loss='absolute_error'`` and ``loss='quantile'`` (``quantile``: one
    output per quantile), each on an identity output and reported, like
    squared error, averaged over outputs.

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

    __init__ = make_init("MLPRegressor", __name__)
    _parameter_constraints = parameter_constraints("MLPRegressor")

    def _is_classifier(self):
        return False

    @available_if(_stochastic)
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


@register
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
    * ``loss='huber'``, ``'absolute_error'``, ``'quantile'``: robust and
      quantile regression on an identity output (see :class:`MLPRegressor`).

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

    __init__ = make_init("MLP", __name__)
    _parameter_constraints = parameter_constraints("MLP")

    def _is_classifier(self):
        return self.loss == "log_loss"

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data (``classes``
        is required on the first call for classification).

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)


# scikit-learn BaseEstimators as soon as scikit-learn is imported (_sklearn_compat)
adopt_when_imported(MLPClassifier, MLPRegressor, MLP)
