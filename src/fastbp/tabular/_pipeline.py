"""TabularPipeline: the tabular preprocessing in front of one fastbp MLP
with the MLP's own settings (what ``fastbp train`` builds by default).

fit: copy the preprocessing and the MLP from the parameters -> fit the
preprocessing on X and transform X -> fit the MLP on the result. predict:
transform X -> the MLP's prediction. The model file keeps both
(``fastbp._io_parts``).
"""

import numpy as np

from .._compat import r2_score
from .._estimators import MLP
from .._exceptions import not_fitted_error
from .._sklearn_api import EstimatorAPI, available_if
from .._sklearn_compat import SklearnBase, adopt_when_imported
from .._state import register
from ._preprocessor import TabularPreprocessor
from ._statistics import standardise_target, unstandardise_target

__all__ = ["TabularPipeline"]


# regression losses trained on the target as it is (Poisson needs its counts)
_UNSCALED_LOSSES = ("poisson",)


def _float_target(y):
    """A regression target as float64 (the MLP checks it further)."""
    try:
        return np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("TabularPipeline needs numeric targets for regression; y holds "
                         f"values such as {np.asarray(y).ravel()[0]!r}.") from None


def _classifies(pipeline):
    """it holds a regression MLP."""
    return pipeline._is_classifier()


@register  # model files name it
class TabularPipeline(EstimatorAPI, SklearnBase):
    """A :class:`TabularPreprocessor` in front of one fastbp MLP.

    Takes the tables the presets take (numpy, scipy.sparse, pandas or
    polars; numbers, bools, text / categories, dates, missing values) and
    trains the MLP as configured, with none of the presets' recipe
    (no held-out best epoch, no ensemble). ``save`` / ``fastbp.load`` keep
    the preprocessing with the network.

    Parameters
    ----------
    mlp : MLP, MLPClassifier or MLPRegressor, default=None
        The network's settings (copied at fit; ``MLP()`` when None).
    preprocessor : TabularPreprocessor, default=None
        The preprocessing's settings (copied at fit;
        ``TabularPreprocessor()`` when None). Its ``dtype`` is the dtype
        the MLP trains in.
    scale_target : bool, default=True
        Regression: the MLP trains on the target standardised with its
        mean and standard deviation (as the presets do) and predictions
        are mapped back; not for ``loss='poisson'``, which needs the
        counts as they are.

    Attributes
    ----------
    preprocessor_ : TabularPreprocessor
        The fitted preprocessing.
    mlp_ : MLP, MLPClassifier or MLPRegressor
        The fitted network (it reads ``preprocessor_.transform(X)``).
    classes_ : ndarray
        The class labels (classifiers).
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The standardisation of a regression target (``scale_target``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X had string column names (matched by name at predict).

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import MLPClassifier
    >>> from fastbp.tabular import TabularPipeline
    >>> X = np.array([[1.0, "red"], [2.0, "blue"], [np.nan, "red"], [4.0, "blue"]] * 25,
    ...              dtype=object)
    >>> y = X[:, 1] == "red"
    >>> model = TabularPipeline(MLPClassifier((8,), max_iter=300, random_state=0)).fit(X, y)
    >>> model.predict(np.array([[3.0, "red"], [3.0, "blue"]], dtype=object))
    array([ True, False])
    """

    def __init__(self, mlp=None, preprocessor=None, scale_target=True):
        self.mlp = mlp
        self.preprocessor = preprocessor
        self.scale_target = scale_target

    def _mlp_settings(self):
        return MLP() if self.mlp is None else self.mlp

    def _is_classifier(self):
        if "mlp_" in self.__dict__:
            return self.mlp_._is_classifier()
        return self._mlp_settings()._is_classifier()

    def _loss_name(self):
        return self._mlp_settings()._loss_name()

    def _is_fitted(self):
        return "mlp_" in self.__dict__

    def _check_fitted(self):
        if not self._is_fitted():
            raise not_fitted_error(self)

    def fit(self, X, y, sample_weight=None):
        """Fit the preprocessing on ``X``, then the MLP on its output.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : TabularPipeline
        """
        self._settings()  # the parameters checked before the preprocessing's work
        name = type(self).__name__
        preprocessor = self._preprocessor_settings()
        features = preprocessor._fit(X, name)._transform(X, name)
        return self.fit_transformed(preprocessor, features, y, sample_weight)

    def fit_transformed(self, preprocessor, X_transformed, y, sample_weight=None):
        """The second half of :meth:`fit`: train the MLP on the output of a
        preprocessing already fitted (so that a caller can let the table go
        before the network trains, as ``fastbp train`` does).

        Parameters
        ----------
        preprocessor : TabularPreprocessor, fitted
            Kept as ``preprocessor_``.
        X_transformed : ndarray or CSR matrix
            ``preprocessor.transform(X)``.
        y, sample_weight
            As for :meth:`fit`.

        Returns
        -------
        self : TabularPipeline
        """
        if not isinstance(preprocessor, TabularPreprocessor) or not preprocessor._is_fitted():
            raise TypeError("fit_transformed takes a fitted TabularPreprocessor; got "
                            f"{preprocessor!r}.")
        mlp, scaled = self._settings()
        target, fitted = y, {}
        if scaled:
            target, fitted = standardise_target(_float_target(y))
        mlp.fit(X_transformed, target, sample_weight)
        self._commit(preprocessor, mlp)
        self.__dict__.update(fitted)
        return self

    def _settings(self):
        """(a fresh MLP with the ``mlp`` parameter's settings, whether the
        target is standardised)."""
        settings = self._mlp_settings()
        if not hasattr(settings, "_to_state"):
            raise TypeError(f"TabularPipeline's mlp must be a fastbp MLP, MLPClassifier or "
                            f"MLPRegressor; got {type(settings).__name__}.")
        if self.scale_target not in (True, False):
            raise ValueError(f"TabularPipeline's scale_target must be True or False; got "
                             f"{self.scale_target!r}.")
        mlp = type(settings)(**settings.get_params())
        scaled = (self.scale_target and not mlp._is_classifier()
                  and mlp._loss_name() not in _UNSCALED_LOSSES)
        return mlp, scaled

    def _preprocessor_settings(self):
        settings = TabularPreprocessor() if self.preprocessor is None else self.preprocessor
        return TabularPreprocessor(**settings.get_params())

    def _commit(self, preprocessor, mlp):
        """Set every fitted attribute at once (a failed fit set none)."""
        for name in ("feature_names_in_", "target_mean_", "target_scale_"):
            self.__dict__.pop(name, None)
        self.preprocessor_ = preprocessor
        self.mlp_ = mlp
        self.n_features_in_ = preprocessor.n_features_in_
        if hasattr(preprocessor, "feature_names_in_"):
            self.feature_names_in_ = preprocessor.feature_names_in_

    @property
    def classes_(self):
        """The class labels of the fitted classifier."""
        self._check_fitted()
        return self.mlp_.classes_

    def transform(self, X):
        """The MLP's input for ``X``: ``preprocessor_.transform(X)``."""
        self._check_fitted()
        return self.preprocessor_._transform(X, type(self).__name__)

    def predict(self, X):
        """The MLP's prediction for each row of ``X`` (labels, or values on
        the target's scale)."""
        return self.predict_transformed(self.transform(X))

    def predict_transformed(self, X_transformed):
        """The prediction for rows already transformed by ``preprocessor_``
        (labels, or values on the target's scale)."""
        self._check_fitted()
        predicted = self.mlp_.predict(X_transformed)
        if "target_mean_" not in self.__dict__:
            return predicted
        return unstandardise_target(predicted, self.target_mean_, self.target_scale_)

    @available_if(_classifies)
    def predict_proba(self, X):
        """Class probabilities, in the order of ``classes_``."""
        return self.mlp_.predict_proba(self.transform(X))

    @available_if(_classifies)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return self.mlp_.predict_log_proba(self.transform(X))

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifier) or R² on the target's scale (regressor)."""
        if "target_mean_" not in self.__dict__:
            return self.mlp_.score(self.transform(X), y, sample_weight)
        y = _float_target(y)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        return r2_score(y, self.predict(X), sample_weight)

    def save(self, path):
        """Save the fitted preprocessing and MLP to ``path`` without pickle
        (``fastbp.load`` reads it back)."""
        from .._io_parts import save_parts

        save_parts(self, path)

    def _to_state(self):
        from ._state import to_state

        return to_state(self)

    def _set_state(self, state):
        """Take the fitted parts of ``state`` (from a checked model file)."""
        from ._state import set_state

        set_state(self, state)


adopt_when_imported(TabularPipeline)
