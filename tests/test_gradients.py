"""Backpropagation against central finite differences and an independent numpy
implementation: every hidden activation x output/loss pair x dtype, depths 1-3."""

import numpy as np
import pytest
from conftest import quiet_warnings
from scipy.special import expit, logsumexp, ndtr

import fastbp

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "gelu", "silu", "selu",
               "mish", "softplus"]
OUTPUTS = ["binary", "multilabel", "multiclass", "squared", "squared_multi", "poisson",
           "huber", "absolute_error", "quantile", "quantiles", "binary_smoothed",
           "multilabel_smoothed", "multiclass_smoothed"]
HIDDEN = {1: (5,), 2: (4, 3), 3: (4, 3, 3)}
# the settings of the losses that have some, per problem
SETTINGS = {"huber": dict(huber_delta=0.7), "quantile": dict(quantile=0.3),
            "quantiles": dict(quantile=[0.2, 0.5, 0.9]),
            "binary_smoothed": dict(label_smoothing=0.1),
            "multilabel_smoothed": dict(label_smoothing=0.2),
            "multiclass_smoothed": dict(label_smoothing=0.15)}
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def make_problem(output, n=24, n_features=3, seed=0):
    if output.endswith("_smoothed"):
        return make_problem(output[:-len("_smoothed")], n, n_features, seed)
    if output in ("huber", "absolute_error", "quantile", "quantiles"):
        X, y, _ = make_problem("squared", n, n_features, seed)
        return X, y, "quantile" if output == "quantiles" else output
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    if output == "binary":
        y = (X[:, 0] + rng.normal(size=n) > 0).astype(int)
        y[:2] = [0, 1]
        return X, y, "log_loss"
    if output == "multilabel":
        y = (X[:, :3] + rng.normal(size=(n, 3)) > 0).astype(int)
        return X, y, "log_loss"
    if output == "multiclass":
        y = np.argmax(X @ rng.normal(size=(n_features, 3)) + rng.normal(size=(n, 3)), 1)
        y[:3] = [0, 1, 2]
        return X, y, "log_loss"
    if output == "squared":
        return X, X[:, 0] ** 2 - X[:, 1] + 0.1 * rng.normal(size=n), "squared_error"
    if output == "squared_multi":
        return X, np.c_[X[:, 0] * X[:, 1], np.sin(X[:, 2])], "squared_error"
    if output == "poisson":
        return X, rng.poisson(np.exp(0.5 * X[:, 0])).astype(float), "poisson"
    raise ValueError(output)


def fitted_model(activation, output, depth, dtype=np.float64, alpha=1e-2, seed=0):
    X, y, loss = make_problem(output, seed=seed)
    model = fastbp.MLP(hidden_layer_sizes=HIDDEN[depth], activation=activation, loss=loss,
                       alpha=alpha, random_state=seed, max_iter=1, **SETTINGS.get(output, {}))
    rng = np.random.RandomState(seed + 1)
    sizes = [X.shape[1], *HIDDEN[depth], None]
    # weights large enough that every layer matters and outputs are not saturated

    with quiet_warnings():
        model.fit(X.astype(dtype), y)
    sizes[-1] = model.n_outputs_
    model.coefs_ = [rng.uniform(-1, 1, (a, b)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    model.intercepts_ = [rng.uniform(-0.5, 0.5, b).astype(dtype) for b in sizes[1:]]
    return model, X.astype(dtype), y


# ---------------------------------------------------------------------------
# an independent reference: plain numpy, float64, scikit-learn's definitions
# ---------------------------------------------------------------------------

def _act(name, z):
    return {
        "identity": lambda: z,
        "logistic": lambda: 1 / (1 + np.exp(-z)),
        "tanh": lambda: np.tanh(z),
        "relu": lambda: np.maximum(z, 0),
        "leaky_relu": lambda: np.where(z > 0, z, 0.01 * z),
        "gelu": lambda: z * ndtr(z),
        "silu": lambda: z * expit(z),
        "selu": lambda: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
        "mish": lambda: z * np.tanh(np.logaddexp(0, z)),
        "softplus": lambda: np.logaddexp(0, z),
    }[name]()


def _act_grad(name, z):
    return {
        "identity": lambda: np.ones_like(z),
        "logistic": lambda: _act("logistic", z) * (1 - _act("logistic", z)),
        "tanh": lambda: 1 - np.tanh(z) ** 2,
        "relu": lambda: (z > 0).astype(float),
        "leaky_relu": lambda: np.where(z > 0, 1.0, 0.01),
        "gelu": lambda: ndtr(z) + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi),
        "silu": lambda: expit(z) * (1 + z * (1 - expit(z))),
        "selu": lambda: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0))),
        "mish": lambda: (np.tanh(np.logaddexp(0, z))
                         + z * expit(z) * (1 - np.tanh(np.logaddexp(0, z)) ** 2)),
        "softplus": lambda: expit(z),
    }[name]()


def _robust_loss(loss, settings, z, Y):
    """(per-row loss, d loss / dz) of the identity-output losses beyond squared error."""
    e = z - Y
    if loss == "huber":
        d = settings["huber_delta"]
        return np.where(np.abs(e) <= d, 0.5 * e * e, d * (np.abs(e) - 0.5 * d)).sum(1), \
            np.clip(e, -d, d)
    if loss == "absolute_error":
        return np.abs(e).sum(1), np.sign(e)
    q = np.broadcast_to(np.asarray(settings["quantile"], dtype=float), (Y.shape[1],))
    return np.maximum(q * -e, (q - 1) * -e).sum(1), np.where(e > 0, 1 - q, -q)


def _smoothed_log_loss(out, z, Y, s):
    """PyTorch's label smoothing, from the logits (no clip)."""
    if out == "softmax":
        T = Y * (1 - s) + s / Y.shape[1]
        lse = logsumexp(z, axis=1, keepdims=True)
        return (T * (lse - z)).sum(1), np.exp(z - lse) - T
    T = Y * (1 - s) + s / 2
    return (np.logaddexp(0, z) - T * z).sum(1), expit(z) - T


def reference_loss_and_gradients(coefs, intercepts, X, Y, sw, alpha, activation, out,
                                 loss=None, settings=None):
    """Objective sum_i w_i l_i / sum w + alpha/(2 sum w) sum ||W||^2 and its
    gradient, by the chain rule written out with pre-activations z (``loss``
    and ``settings``: the losses an output activation does not imply)."""
    settings = settings or {}
    coefs = [np.asarray(c, float) for c in coefs]
    intercepts = [np.asarray(b, float) for b in intercepts]
    X = np.asarray(X, float)
    w = np.ones(len(X)) if sw is None else np.asarray(sw, float)
    zs, acts = [], [X]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = acts[-1] @ W + b
        zs.append(z)
        if i < len(coefs) - 1:
            acts.append(_act(activation, z))
    z = zs[-1]
    eps = np.finfo(float).eps
    if loss in ("huber", "absolute_error", "quantile"):
        per, dz = _robust_loss(loss, settings, z, Y)
    elif settings.get("label_smoothing"):
        per, dz = _smoothed_log_loss(out, z, Y, settings["label_smoothing"])
    elif out == "logistic":
        p = np.clip(1 / (1 + np.exp(-z)), eps, 1 - eps)
        per = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(1)
        dz = 1 / (1 + np.exp(-z)) - Y
    elif out == "softmax":
        e = np.exp(z - z.max(1, keepdims=True))
        prob = e / e.sum(1, keepdims=True)
        per = -(Y * np.log(np.clip(prob, eps, 1 - eps))).sum(1)
        dz = prob - Y
    elif out == "identity":
        per = 0.5 * ((z - Y) ** 2).sum(1)
        dz = z - Y
    elif out == "exp":
        mu = np.exp(z)
        per = (np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / mu), 0) - Y + mu).sum(1)
        dz = mu - Y
    sw_sum = w.sum()
    loss = (w * per).sum() / sw_sum + 0.5 * alpha * sum((W ** 2).sum() for W in coefs) / sw_sum
    delta = dz * w[:, None]
    cg, ig = [None] * len(coefs), [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        cg[i] = (acts[i].T @ delta + alpha * coefs[i]) / sw_sum
        ig[i] = delta.sum(0) / sw_sum
        if i > 0:
            delta = (delta @ coefs[i].T) * _act_grad(activation, zs[i - 1])
    return loss, cg, ig


def _encoded_targets(model, y):
    if model._is_classifier():
        return model._label_encoding.transform(np.asarray(y), np.float64)
    y = np.asarray(y, float).reshape(len(y), -1)
    return np.repeat(y, model.n_outputs_, axis=1) if model.loss == "quantile" else y


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_finite_differences(activation, output, depth):
    model, X, y = fitted_model(activation, output, depth)
    _, coef_grads, intercept_grads = model.loss_and_gradients(X, y)
    # every layer gets a gradient: a zero gradient would make the check vacuous
    for g in coef_grads + intercept_grads:
        assert np.abs(g).max() > 1e-6
    assert fastbp.check_gradients(model, X, y) < 1e-6


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_match_numpy_reference(dtype, activation, output, depth):
    model, X, y = fitted_model(activation, output, depth, dtype=dtype)
    sw = np.random.RandomState(3).uniform(0.2, 2.0, len(X))
    loss, cg, ig = model.loss_and_gradients(X, y, sample_weight=sw)
    assert cg[0].dtype == dtype and ig[-1].dtype == dtype
    ref_loss, ref_cg, ref_ig = reference_loss_and_gradients(
        model.coefs_, model.intercepts_, X, _encoded_targets(model, y), sw, model.alpha,
        activation, model.out_activation_, model.loss, SETTINGS.get(output))
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (2e-4, 2e-6)
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol)
    for got, want in zip(cg + ig, ref_cg + ref_ig):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * max(1, np.abs(want).max()))


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity", "gelu", "silu", "mish",
                                        "softplus"])
@pytest.mark.parametrize("output", ["binary", "multiclass", "squared", "huber",
                                    "quantiles", "binary_smoothed", "multiclass_smoothed"])
def test_float32_gradients_pass_their_own_finite_difference_check(activation, output):
    model, X, y = fitted_model(activation, output, 2, dtype=np.float32)
    assert fastbp.check_gradients(model, X, y) < 5e-3


def test_check_gradients_detects_a_wrong_gradient(monkeypatch):
    # the checker must be able to fail: corrupt the analytic gradient
    model, X, y = fitted_model("tanh", "multiclass", 2)
    real = model.loss_and_gradients

    def wrong(*args, **kwargs):
        loss, cg, ig = real(*args, **kwargs)
        cg[0] = cg[0] * 1.01
        return loss, cg, ig

    monkeypatch.setattr(model, "loss_and_gradients", wrong)
    assert fastbp.check_gradients(model, X, y) > 1e-3


def test_check_gradients_refuses_all_zero_gradients():
    model, X, y = fitted_model("relu", "squared", 1, alpha=0.0)
    model.coefs_ = [np.zeros_like(c) for c in model.coefs_]
    model.intercepts_ = [np.full_like(b, -1.0) if i == 0 else b
                         for i, b in enumerate(model.intercepts_)]
    model.intercepts_[-1] = np.asarray([float(np.mean(y))])
    # all hidden units dead, output fits the mean: nothing to check
    y_const = np.full(len(X), float(np.mean(y)))
    with pytest.raises(ValueError, match="every gradient is zero"):
        fastbp.check_gradients(model, X, y_const)


def test_max_params_subsamples_and_restores_parameters():
    model, X, y = fitted_model("tanh", "squared_multi", 2)
    before = [c.copy() for c in model.coefs_]
    assert fastbp.check_gradients(model, X, y, max_params=10) < 1e-5
    for a, b in zip(before, model.coefs_):
        np.testing.assert_array_equal(a, b)
