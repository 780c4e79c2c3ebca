"""Numerical faults: saturated outputs stay finite and warning-free, and a fit
that blows up raises a clear error without leaving NaN weights behind (a
failed fit restores the estimator exactly; a failed first fit leaves it
unfitted).

pytest's configuration turns RuntimeWarning into errors, so any overflow,
division by zero or invalid operation in these paths fails the test.
"""

import warnings

import numpy as np
import pytest
from _model_state import assert_same_state as _assert_same_state
from _model_state import model_state as _state
from scipy.special import expit, softmax

from fastbp import MLP, ConvergenceWarning, MLPClassifier, MLPRegressor, NotFittedError, _engine

RNG = np.random.RandomState(0)
X = RNG.normal(size=(40, 3))
Y_CLF = (X[:, 0] > 0).astype(int)
Y_REG = 10 * X[:, 1]


# ---------------------------------------------------------------------------
# saturation in the kernels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_saturated_activations_are_exact_and_finite(dtype, scale):
    z = np.array([[-scale, -1.0, 0.0, 1.0, scale]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logistic = z.copy()
        _engine.apply_activation(logistic, "logistic")
        tanh = z.copy()
        _engine.apply_activation(tanh, "tanh")
        soft = z.copy()
        _engine.apply_activation(soft, "softmax")
    for out in (logistic, tanh, soft):
        assert np.all(np.isfinite(out))
    assert logistic[0, 0] == 0 and logistic[0, -1] == 1
    np.testing.assert_allclose(logistic, expit(z.astype(np.float64)), rtol=1e-6)
    assert tanh[0, 0] == -1 and tanh[0, -1] == 1
    np.testing.assert_allclose(soft.sum(), 1.0, rtol=1e-6)
    assert soft[0, -1] == 1 and soft[0, 0] == 0


def _identity_net(model_cls, X, y, out_logits, **kw):
    """A fitted 1-hidden-layer identity network whose output logits are
    ``out_logits`` (n_samples, n_outputs): hidden = X, output = X @ W with W
    solved in least squares."""
    model = model_cls(hidden_layer_sizes=(X.shape[1],), activation="identity", max_iter=1,
                      random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    model.coefs_[0][...] = np.eye(X.shape[1])
    model.intercepts_[0][...] = 0
    W, *_ = np.linalg.lstsq(X, out_logits, rcond=None)
    model.coefs_[1][...] = W
    model.intercepts_[1][...] = 0
    return model


def _reference_log_loss(logits, Y, kind):
    """scikit-learn's clipped log-losses, computed in float64 numpy."""
    eps = np.finfo(np.float64).eps
    if kind == "softmax":
        p = np.clip(softmax(logits, axis=1), eps, 1 - eps)
        return -(Y * np.log(p)).sum() / len(Y)
    p = np.clip(expit(logits), eps, 1 - eps)
    return -(Y * np.log(p) + (1 - Y) * np.log1p(-p)).sum() / len(Y)


@pytest.mark.parametrize("kind", ["binary", "softmax", "multilabel"])
def test_loss_and_gradients_with_logits_of_1e4(kind):
    Xs = np.eye(4) + 0.5 * np.eye(4, k=1)   # invertible: the logits are reached exactly
    if kind == "binary":
        y = np.array([1, 0, 1, 0])
        Y = y.reshape(-1, 1).astype(float)
        # right and confident, right and confident, wrong and confident, undecided
        logits = np.array([[1e4], [-1e4], [-1e4], [0.0]])
    elif kind == "softmax":
        y = np.array([0, 1, 2, 0])
        Y = np.eye(3)[y]
        logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [1e4, 0.0, -1e4],
                           [0.0, 0.0, 0.0]])
    else:
        y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        Y = y.astype(float)
        logits = np.array([[1e4, -1e4], [1e4, 1e4], [-1e4, 1e4], [-1e4, 0.0]])
    model = _identity_net(MLPClassifier, Xs, y, logits, alpha=0.0)
    logits = Xs @ model.coefs_[1]    # what the least-squares solve reached (to rounding)
    assert np.abs(logits).max() > 9e3
    loss, coef_grads, intercept_grads = model.loss_and_gradients(Xs, y)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, _reference_log_loss(logits, Y, "softmax" if kind ==
                                                         "softmax" else "logistic"),
                               rtol=1e-12)
    # output delta is p - y: exactly 0 or +-1 where saturated
    P = softmax(logits, axis=1) if kind == "softmax" else expit(logits)
    np.testing.assert_allclose(intercept_grads[1], (P - Y).mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(coef_grads[1], Xs.T @ (P - Y) / len(Xs), atol=1e-15)
    for g in coef_grads + intercept_grads:
        assert np.all(np.isfinite(g))

    proba = model.predict_proba(Xs)
    assert np.all(np.isfinite(proba)) and proba.min() >= 0 and proba.max() <= 1
    if kind != "multilabel":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    log_proba = model.predict_log_proba(Xs)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(log_proba, np.log(proba))
    # -inf exactly where the probability is 0, finite elsewhere
    np.testing.assert_array_equal(np.isneginf(log_proba), proba == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_into_saturation_keeps_loss_finite(dtype):
    # separable data scaled up: L-BFGS drives the logits to saturation
    Xs = (X * 1e3).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((4,), activation="logistic", solver="lbfgs", alpha=0.0,
                              max_iter=50, random_state=0).fit(Xs, Y_CLF)
    assert np.isfinite(model.loss_)
    loss, cg, ig = model.loss_and_gradients(Xs, Y_CLF)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in cg + ig)
    proba = model.predict_proba(Xs)
    assert np.all(np.isfinite(proba))
    model.predict_log_proba(Xs)
    assert model.score(Xs, Y_CLF) == 1.0


def test_poisson_and_squared_error_with_zero_targets():
    y = np.where(X[:, 0] > 0, 0.0, 3.0)
    for loss in ("poisson", "squared_error"):
        model = MLPRegressor(loss=loss, hidden_layer_sizes=(3,), max_iter=20,
                             learning_rate_init=0.01, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        value, cg, ig = model.loss_and_gradients(X, y)
        assert np.isfinite(value) and value >= 0
        assert all(np.all(np.isfinite(g)) for g in cg + ig)


# ---------------------------------------------------------------------------
# divergence: a clear error, and never NaN weights in a "fitted" model
# ---------------------------------------------------------------------------

DIVERGING = dict(solver="sgd", learning_rate_init=1e3, momentum=0.9, max_iter=50)
NON_FINITE = "Solver produced non-finite parameter weights"


@pytest.mark.parametrize("model_cls, y", [(MLPRegressor, Y_REG), (MLPClassifier, Y_CLF)])
def test_diverging_first_fit_raises_and_leaves_estimator_unfitted(model_cls, y):
    Xbig = X * 1e100 if model_cls is MLPClassifier else X
    model = model_cls(hidden_layer_sizes=(5,), random_state=0, **DIVERGING)
    params_before = model.get_params()
    with pytest.raises(ValueError, match=NON_FINITE) as info:
        model.fit(Xbig, y)
    assert "learning_rate_init=1000.0 may be too large" in str(info.value)
    assert model.get_params() == params_before
    for attr in ("coefs_", "intercepts_", "loss_curve_", "n_iter_", "classes_",
                 "n_features_in_", "loss_"):
        assert not hasattr(model, attr), attr
    with pytest.raises(NotFittedError):
        model.predict(X)


@pytest.mark.parametrize("how", ["fit", "warm_start", "partial_fit"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_diverging_refit_restores_the_previous_model(how, solver):
    model = MLPRegressor(hidden_layer_sizes=(5,), solver=solver, max_iter=5,
                         random_state=0, early_stopping=how == "warm_start")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y_REG)
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.set_params(learning_rate_init=1e3, warm_start=how == "warm_start")
    Xbig = X * 1e100
    before = _state(model)
    prediction = model.predict(X)
    with pytest.raises(ValueError, match="Solver produced (a )?non-finite"):
        if how == "partial_fit":
            # calls that succeed are kept; the one that fails is rolled back
            for _ in range(20):
                before = _state(model)
                prediction = model.predict(X)
                model.partial_fit(Xbig, Y_REG)
        else:
            model.fit(Xbig, Y_REG)
    _assert_same_state(_state(model), before)
    np.testing.assert_array_equal(model.predict(X), prediction)
    assert np.all(np.isfinite(model._net.params))
    # the coefs_ views still point into the model's buffer
    assert np.shares_memory(model.coefs_[0], model._net.params)


def test_overflowing_adam_state_is_an_error():
    # the squared gradient overflows to inf: Adam's steps become 0 and the
    # weights stay finite, but the model could never train again
    model = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.raises(ValueError, match="Solver produced a non-finite optimizer state"):
        model.partial_fit(X * 1e100, Y_REG * 1e100)
    assert not hasattr(model, "coefs_")


def test_lbfgs_overflow_raises_and_restores():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, random_state=0)
    model.fit(X, Y_REG)
    before = _state(model)
    with pytest.raises(ValueError, match="The training loss is nan: the network's outputs "
                                         "overflow on the training data"):
        model.fit(X * 1e200, Y_REG)
    _assert_same_state(_state(model), before)
    fresh = MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="overflow on the training data"):
        fresh.fit(X * 1e200, Y_CLF)
    assert not hasattr(fresh, "coefs_")


def test_finite_divergence_warns():
    model = MLPClassifier((5,), solver="sgd", learning_rate_init=1e3, max_iter=30,
                          random_state=0)
    with pytest.warns(ConvergenceWarning, match="Training diverged: the training loss rose "
                                                "from"):
        model.fit(X, Y_CLF)
    assert np.all(np.isfinite(model._net.params))
    assert model.loss_curve_[-1] > 10 * model.loss_curve_[0]


def test_healthy_fit_does_not_warn_about_divergence():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPClassifier((5,), max_iter=400, random_state=0, tol=1e-3).fit(X, Y_CLF)
        MLP((5,), loss="squared_error", solver="sgd", max_iter=300, random_state=0,
            tol=1e-3).fit(X, Y_REG / 10)


def test_any_exception_inside_fit_restores_state(monkeypatch):
    # a failure outside the solvers' own checks (here: the engine raising
    # mid-fit after some epochs) rolls back too
    model = MLPClassifier((5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y_CLF)
    before = _state(model)
    real_train_epoch = _engine.train_epoch
    calls = []

    def failing_train_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("simulated")
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(_engine, "train_epoch", failing_train_epoch)
    model.set_params(warm_start=True)
    before["warm_start"] = True
    with pytest.raises(MemoryError, match="simulated"):
        model.fit(X, Y_CLF)
    assert len(calls) == 3
    _assert_same_state(_state(model), before)


def test_failed_fit_restores_early_stopping_best_weights(monkeypatch):
    # early stopping writes its best weights in place during the call: a
    # failed warm-start fit must put them back too
    rng = np.random.RandomState(0)
    X2 = rng.normal(size=(200, 4))
    y2 = (X2[:, 0] + X2[:, 1] > 0).astype(int)
    model = MLPClassifier((5,), early_stopping=True, max_iter=5, random_state=0,
                          learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X2, y2)
    before = _state(model)
    real_train_epoch = _engine.train_epoch
    calls = []

    def failing_train_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise MemoryError("simulated")
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(_engine, "train_epoch", failing_train_epoch)
    model.set_params(warm_start=True)
    before["warm_start"] = True
    with pytest.raises(MemoryError, match="simulated"):
        model.fit(X2, y2)
    assert len(calls) == 4
    _assert_same_state(_state(model), before)
