"""TabularMLPClassifier and TabularMLPRegressor: the preprocessing
(:class:`TabularPreprocessor`) in front of one or more fastbp MLPs
(``_members``), with the recipe's defaults (``_params``).

fit: fit the preprocessing on X and transform X (and ``X_val``) once ->
encode the targets (class codes; standardised values for regression) ->
train the members (each on its own held-out split and seeds) -> keep
everything as fitted attributes at the end (a failed fit changes nothing).
predict: transform X -> average the members' probabilities (or
predictions) -> labels (or values on the target's scale).
"""

import os

import numpy as np

from .._compat import accuracy_score, check_random_state, r2_score
from .._estimators import MLPClassifier, MLPRegressor
from .._exceptions import not_fitted_error
from .._sklearn_api import EstimatorAPI, make_init, parameter_constraints
from .._sklearn_compat import SklearnBase, adopt_when_imported
from .._state import register
from .._targets import encode_fit_targets
from .._validation import (
    check_consistent_length,
    check_sample_weight,
    column_or_2d,
    validate_params,
)
from ..callbacks import _make_runner
from ._periodic import periodic_numbers, with_periodic_features
from ._members import HeldOut, TrainingData, fit_members, member_plans
from ._params import CLASSIFIER, MLP, PARAMETERS, PREPROCESSING, REGRESSOR, routed
from ._preprocessor import TabularPreprocessor
from ._statistics import standardise_target, unstandardise_target

__all__ = ["TabularMLPClassifier", "TabularMLPRegressor"]

# the inner MLPs' settings that are not the presets' parameters: Adam, and no
# stop rule of their own (the members' BestEpoch decides when to stop)
_INNER_FIXED = {"solver": "adam", "shuffle": True, "early_stopping": False,
                "n_iter_no_change": np.inf}


class _TabularMLP(EstimatorAPI, SklearnBase):
    """What the two presets share: fit, predict and the estimator protocol.

    Fitted attributes: ``preprocessor_`` (TabularPreprocessor),
    ``estimators_`` (the members: fastbp MLPs), ``best_epochs_`` and
    ``validation_scores_`` (per member), ``n_features_in_``,
    ``feature_names_in_``; classifiers ``classes_``; regressors
    ``target_mean_`` and ``target_scale_``.
    """

    _inner_class = None
    _parameter_constraints = {}

    def _loss_name(self):
        return "log_loss" if self._is_classifier() else "squared_error"

    def _is_fitted(self):
        return hasattr(self, "estimators_")

    def _check_fitted(self):
        if not self._is_fitted():
            raise not_fitted_error(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.multi_output = not self._is_classifier()
        if self._is_classifier():
            tags.classifier_tags.multi_label = False
        return tags

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the preprocessing and the network(s) to a table.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
            numpy arrays, scipy.sparse matrices, pandas or polars DataFrames;
            numeric, bool, categorical / text, datetime columns; missing values
            allowed (see :class:`~fastbp.tabular.TabularPreprocessor`).
        y : array-like of shape (n_samples,)
            Class labels of any kind (classifier), or finite values
            (regressor; shape (n_samples, n_outputs) for several outputs).
        sample_weight : array-like of shape (n_samples,), default=None
        X_val, y_val : held-out data, default=None
            When given, every member trains on all of X and picks its best
            epoch on ``X_val`` (transformed by the preprocessing fitted on
            X); otherwise each member holds out ``validation_fraction`` of X.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Weights of the held-out score.

        Returns
        -------
        self : object
        """
        validate_params(self, self._parameter_constraints)
        _make_runner(self)  # checks `callbacks`, naming this estimator
        name = type(self).__name__
        if (X_val is None) != (y_val is None):
            raise ValueError(f"{name}.fit takes X_val and y_val together; got only "
                             f"{'X_val' if y_val is None else 'y_val'}.")
        preprocessor = TabularPreprocessor(
            **{key: getattr(self, key) for key in routed(PREPROCESSING)})
        X_train = self._features(preprocessor._fit(X, name)._transform(X, name), preprocessor)
        n_rows = X_train.shape[0]
        targets, fitted = self._fit_targets(y, n_rows)
        sample_weight = check_sample_weight(sample_weight, n_rows, np.float64)
        held_out = None
        if X_val is not None:
            held_out = self._held_out(preprocessor, fitted, X_val, y_val, sample_weight_val)
        elif n_rows < 2:
            raise ValueError(f"{name} holds out validation_fraction={self.validation_fraction} "
                             f"of the rows to choose its best epoch and needs at least 2 "
                             f"samples; got {n_rows} sample.")
        data = TrainingData(X_train, targets, sample_weight, held_out,
                            targets if self._is_classifier() else None)
        members = fit_members(self._plans(), data, self._user_callbacks(), self._n_jobs())
        self._commit(preprocessor, fitted, members)
        return self

    def _plans(self):
        preset = CLASSIFIER if self._is_classifier() else REGRESSOR
        params = {key: getattr(self, key) for key in routed(MLP, preset) if key != "callbacks"}
        return member_plans(
            self.n_ensemble, check_random_state(self.random_state),
            estimator_class=self._inner_class, params={**params, **_INNER_FIXED},
            validation_fraction=self.validation_fraction, patience=self.n_iter_no_change,
            classifies=self._is_classifier())

    def _n_jobs(self):
        """Members trained at once: ``n_jobs``, or None: the cores this process may use."""
        if self.n_jobs is not None:
            return self.n_jobs
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)

    def _user_callbacks(self):
        callbacks = self.callbacks
        if callbacks is None:
            return None
        return list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]

    def _commit(self, preprocessor, fitted, members):
        """Set every fitted attribute at once (a failed fit set none)."""
        self.__dict__.pop("feature_names_in_", None)
        self.preprocessor_ = preprocessor
        self.n_features_in_ = preprocessor.n_features_in_
        if hasattr(preprocessor, "feature_names_in_"):
            self.feature_names_in_ = preprocessor.feature_names_in_
        self.__dict__.update(fitted)
        self.estimators_ = [estimator for estimator, _ in members]
        self.best_epochs_ = [best.best_epoch for _, best in members]
        self.validation_scores_ = [best.scores for _, best in members]
        self.n_iter_ = np.array([estimator.n_iter_ for estimator, _ in members])

    def _features(self, X, preprocessor):
        """The preprocessing's output ``X`` with the periodic features of its
        numbers appended (none for a preprocessing fitted on sparse input)."""
        return with_periodic_features(X, periodic_numbers(preprocessor, self.periodic_features),
                                      self.periodic_features, self.periodic_scale)

    def _held_out(self, preprocessor, fitted, X_val, y_val, sample_weight_val):
        X_held = self._features(preprocessor._transform(X_val, type(self).__name__),
                                preprocessor)
        y_held = self._known_targets(y_val, X_held.shape[0], fitted)
        weights = check_sample_weight(sample_weight_val, X_held.shape[0], np.float64)
        return HeldOut(X_held, y_held, weights)

    # ------------------------------------------------------------------
    # model files
    # ------------------------------------------------------------------

    def save(self, path):
        """Save the fitted preset (preprocessing and members) to ``path``
        in fastbp's pickle-free format; ``fastbp.load(path)`` gives a preset
        that predicts exactly the same.

        Parameters
        ----------
        path : str or path-like
            Where to write the file (replaced atomically if it exists).
        """
        from .._io_parts import save_parts

        save_parts(self, path)

    def _to_state(self):
        from ._state import to_state

        return to_state(self)

    def _set_state(self, state):
        """Take the fitted parts of ``state`` (from a checked model file)."""
        from ._state import set_state

        set_state(self, state)

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------

    def member_inputs(self, X):
        """What the members read for ``X``: ``preprocessor_.transform(X)``
        followed by the periodic features of its numbers
        (``periodic_features`` per numeric column).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        inputs : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_inputs)
        """
        self._check_fitted()
        return self._features(self.preprocessor_._transform(X, type(self).__name__),
                              self.preprocessor_)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy (classifier) or R² (regressor) on the given data.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y_pred = self.predict(X)
        y = column_or_2d(y) if self._is_classifier() else np.asarray(
            y.to_numpy() if hasattr(y, "to_numpy") else y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if self._is_classifier():
            return accuracy_score(y, y_pred, sample_weight)
        return r2_score(y, y_pred, sample_weight)


@register  # model files name it
class TabularMLPClassifier(_TabularMLP):
    """A multilayer-perceptron classifier for tables, preprocessing built in.

    ``TabularMLPClassifier().fit(df, y)`` takes numpy arrays, scipy.sparse
    matrices or pandas / polars DataFrames with numeric, bool, categorical /
    text and datetime columns and missing values: the preprocessing
    (:class:`~fastbp.tabular.TabularPreprocessor`) scales numbers robustly,
    encodes categories one-hot for fastbp's sparse first layer and handles
    missing and unseen values. Then ``n_ensemble`` fastbp MLPs train, each
    holding out ``validation_fraction`` of the rows (its own split) and
    keeping the weights of its best epoch on them; their probabilities are
    averaged. See docs/tabular.md.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(128, 128, 128)
    activation : str, default='relu'
        A hidden activation of fastbp's MLPs (the regressor's default: 'mish').
    alpha : float, default=1e-4
        L2 penalty of the MLPs.
    batch_size : int, default=256
        Mini-batch size (at most the training rows).
    learning_rate_init : float, default=1e-3
        Adam's step size (the regressor's default: 2e-3).
    learning_rate : {'constant', 'cosine', 'flat_cosine', ...}, default='constant'
        The step size's schedule over the ``max_iter`` epochs (the MLPs').
    warmup : float, default=0.0
        Share of the steps with a linear warm-up (the MLPs').
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW) of the MLPs.
    dropout : float, default=0.0
        Dropout rate after every hidden layer (the MLPs'; the regressor's
        default: 0.15).
    label_smoothing : float, default=0.0
        Soft targets ``(1 - label_smoothing) * one_hot + label_smoothing / n_classes``
        (classifier only).
    beta_1, beta_2, epsilon : float, default=0.9, 0.95, 1e-8
        Adam's settings.
    max_iter : int, default=100
        Most epochs per member.
    validation_fraction : float, default=0.2
        Share of the rows each member holds out to choose its best epoch
        (unused when ``X_val`` is passed to ``fit``).
    n_iter_no_change : int or None, default=16
        A member stops after this many epochs without a better held-out
        score; None runs all ``max_iter`` epochs.
    n_ensemble : int, default=1
        Members (different seeds and held-out splits); their probabilities
        are averaged.
    n_jobs : int or None, default=None
        Members trained at once, side by side in threads, each on one core
        (its weights are those it gets trained alone on one thread, bit for
        bit); None: as many as the cores this process may use. 1, or
        ``callbacks``, trains them one after the other, each on the cores
        fastbp chooses.
    max_categories, min_frequency, categorical_features
        The preprocessing's (see :class:`~fastbp.tabular.TabularPreprocessor`).
    periodic_features : int, default=0
        Periodic features per numeric column (the regressor's default: 8),
        appended to the preprocessing's output: ``cos(2 pi w x + b)`` of the
        scaled number ``x``, with fixed frequencies ``w ~ N(0, periodic_scale**2)`` and phases ``b ~ U(-pi, pi)``
        (RealMLP-TD's PBLD embedding with untrained frequencies). None for a
        table fitted as a scipy.sparse matrix. See :meth:`member_inputs`.
    periodic_scale : float, default=0.3
        Standard deviation of the periodic features' frequencies.
    random_state : int, RandomState instance or None, default=None
        Seeds the members' splits and initial weights.
    verbose : bool or int, default=False
        The MLPs print their loss every epoch.
    callbacks : callable, Callback or list of them, default=None
        Called after every epoch of every member (see :mod:`fastbp.callbacks`),
        with that member's :class:`~fastbp.callbacks.EpochInfo`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    preprocessor_ : TabularPreprocessor
    estimators_ : list of MLPClassifier
        The members, each with its best epoch's weights; they predict from
        ``member_inputs(X)`` and the class codes 0..n_classes-1.
    best_epochs_ : list of int
        The epoch each member kept.
    validation_scores_ : list of list of float
        Each member's held-out accuracy after every epoch.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X had string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import TabularMLPClassifier
    >>> rng = np.random.RandomState(0)
    >>> colour = rng.choice(["red", "green", "blue"], size=1000)
    >>> size = rng.normal(size=1000)
    >>> X = np.empty((1000, 2), dtype=object)      # a number and a text column
    >>> X[:, 0], X[:, 1] = size, colour
    >>> y = np.where((colour == "red") ^ (size > 0), "yes", "no")
    >>> clf = TabularMLPClassifier(random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.95, clf.predict(np.array([[1.5, "red"], [1.5, "blue"]], dtype=object))
    (True, array(['no', 'yes'], dtype='<U3'))
    """

    __init__ = make_init(CLASSIFIER, __name__, PARAMETERS)
    _parameter_constraints = parameter_constraints(CLASSIFIER, PARAMETERS)
    _inner_class = MLPClassifier

    def _is_classifier(self):
        return True

    def _fit_targets(self, y, n_rows):
        """(class codes 0..n_classes-1, {'classes_': ...})."""
        Y, encoding = encode_fit_targets(y, n_rows, np.float64, loss="log_loss",
                                         encoding=None, continuing=None,
                                         estimator_name=type(self).__name__)
        if encoding.y_type_ not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__} takes one label per sample; got a "
                             f"{encoding.y_type_} target.")
        codes = Y[:, 0].astype(np.intp) if Y.shape[1] == 1 else Y.argmax(axis=1)
        return codes, {"classes_": encoding.classes_}

    def _known_targets(self, y, n_rows, fitted):
        y = column_or_2d(y, "y_val")
        check_consistent_length(n_rows, y.shape[0])
        classes = fitted["classes_"]
        codes = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        unknown = classes[codes] != y
        if unknown.any():
            raise ValueError(f"y_val holds labels not in y: {np.unique(y[unknown]).tolist()[:10]}"
                             f"; the classes are {classes.tolist()[:10]}.")
        return codes

    def predict_proba(self, X):
        """Class probabilities, averaged over the members.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``.
        """
        features = self.member_inputs(X)  # checks that the estimator is fitted
        total = np.zeros((features.shape[0], len(self.classes_)))
        for member in self.estimators_:
            total[:, member.classes_] += member.predict_proba(features)
        # float64, summing to 1 (the members' float32 probabilities do within 1e-7)
        return total / total.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (-inf where it is 0)."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_.take(proba.argmax(axis=1))


@register
class TabularMLPRegressor(_TabularMLP):
    """A multilayer-perceptron regressor for tables, preprocessing built in.

    As :class:`TabularMLPClassifier` (same parameters and input handling;
    the defaults differ: ``activation='mish'``, ``dropout=0.15``,
    ``periodic_features=8``, ``learning_rate_init=2e-3``, measured on the
    benchmark, docs/tabular.md),
    for real targets: the members train on the target standardised with
    its mean and standard deviation, their predictions are averaged and
    mapped back. NaN or infinite targets are an error. The held-out score is
    R².

    Attributes
    ----------
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The standardisation of the target (scale 1 for a constant target).
    preprocessor_, estimators_, best_epochs_, validation_scores_,
    n_features_in_, feature_names_in_
        As for :class:`TabularMLPClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import TabularMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(400, 2))
    >>> y = 1000 + 300 * np.sin(X[:, 0]) + 100 * X[:, 1]
    >>> reg = TabularMLPRegressor(hidden_layer_sizes=(64,), random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    """

    __init__ = make_init(REGRESSOR, __name__, PARAMETERS)
    _parameter_constraints = parameter_constraints(REGRESSOR, PARAMETERS)
    _inner_class = MLPRegressor

    def _is_classifier(self):
        return False

    def _target_values(self, y, n_rows, input_name):
        y = column_or_2d(y, input_name)
        check_consistent_length(n_rows, y.shape[0])
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{type(self).__name__} needs numeric targets; {input_name} holds "
                             f"{y.dtype} values such as {y.flat[0]!r}.") from None
        bad = ~np.isfinite(values)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1) if bad.ndim == 2 else bad)
            raise ValueError(f"{input_name} has {rows.size} row(s) with a missing (NaN) or "
                             f"infinite target, e.g. rows {rows[:5].tolist()}: every sample "
                             f"needs a finite target; drop those rows first.")
        return values

    def _fit_targets(self, y, n_rows):
        """(standardised targets, {'target_mean_': ..., 'target_scale_': ...})."""
        return standardise_target(self._target_values(y, n_rows, "y"))

    def _known_targets(self, y, n_rows, fitted):
        values = self._target_values(y, n_rows, "y_val")
        columns = values.reshape(n_rows, -1)
        if columns.shape[1] != fitted["target_mean_"].shape[0]:
            raise ValueError(f"y_val has {columns.shape[1]} outputs, y has "
                             f"{fitted['target_mean_'].shape[0]}.")
        return ((columns - fitted["target_mean_"]) / fitted["target_scale_"]).reshape(
            values.shape)

    def predict(self, X):
        """Predicted values, averaged over the members, on the target's scale.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        features = self.member_inputs(X)
        total = 0.0
        for member in self.estimators_:
            total = total + member.predict(features)
        return unstandardise_target(total / len(self.estimators_), self.target_mean_,
                                    self.target_scale_)


# scikit-learn BaseEstimators as soon as scikit-learn is imported (_sklearn_compat)
adopt_when_imported(TabularMLPClassifier, TabularMLPRegressor)
