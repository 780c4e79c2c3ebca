"""PyTorch as a second oracle for fastbp's training options (when torch is
installed; never a dependency): the activations and their derivatives, the
losses' gradients by autograd (Huber, L1, pinball, label smoothing, dropout
under a fixed mask), and a few steps of AdamW with clipping and a warmed-up
cosine schedule from the same weights."""


import numpy as np
import pytest
from conftest import quiet_warnings

import fastbp
from fastbp import _engine

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_ACTIVATIONS = {
    "gelu": lambda z: F.gelu(z),  # exact (erf) form, approximate='none'
    "silu": F.silu,
    "selu": F.selu,
    "mish": F.mish,
    # exp overflows past 709: PyTorch's switch to z, late enough for 1e-14 (e^-30 = 1e-13)
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=30.0),
    "tanh": torch.tanh,
    "relu": F.relu,
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["gelu", "silu", "selu", "mish", "softplus"])
def test_activations_and_derivatives_match_pytorch(name, dtype):
    z = np.concatenate([[-1e4, -100.0, -30.0, -1e-7, 0.0, 1e-7, 30.0, 100.0, 1e4],
                        np.linspace(-12, 12, 2401)]).astype(dtype).reshape(1, -1)
    out = z.copy()
    _engine.apply_activation(out, name)
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    at = TORCH_ACTIVATIONS[name](zt)
    at.sum().backward()
    d = np.ones_like(z)
    _engine.apply_activation_derivative(d, out, name, z)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    expected = at.detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(d, zt.grad.numpy(), rtol=tol, atol=tol)
    assert np.isfinite(out).all() and np.isfinite(d).all()


def _torch_network(model):
    """The model's network in torch (float64), its parameters as leaves."""
    params = []
    for W, b in zip(model.coefs_, model.intercepts_):
        params.append(torch.tensor(W.astype(np.float64), requires_grad=True))
        params.append(torch.tensor(b.astype(np.float64), requires_grad=True))
    return params


def _torch_forward(params, X, activation, masks=None, rates=None):
    a = torch.tensor(X.astype(np.float64))
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = a @ params[2 * i] + params[2 * i + 1]
        if i == n_layers - 1:
            return z
        a = TORCH_ACTIVATIONS[activation](z)
        if masks is not None:
            a = a * torch.tensor(masks[i].astype(np.float64)) / (1 - rates[i])


def _objective(model, params, data_term, n):
    """fastbp's objective: the data term + alpha / (2 n) sum ||W||^2."""
    penalty = sum((W ** 2).sum() for W in params[::2])
    return data_term + model.alpha / (2 * n) * penalty


def _assert_same_gradients(model, X, y, objective, params, rtol=1e-10):
    loss, coef_grads, intercept_grads = model.loss_and_gradients(X, y)
    objective.backward()
    assert loss == pytest.approx(objective.item(), rel=rtol)
    for ours, theirs in zip([g for pair in zip(coef_grads, intercept_grads) for g in pair],
                            params):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=rtol,
                                   atol=rtol * float(theirs.grad.abs().max()))


def _fitted(cls, X, y, **params):
    model = cls(max_iter=1, random_state=0, **params)
    with quiet_warnings():
        model.fit(X, y)
    rng = np.random.RandomState(1)
    model.coefs_ = [rng.uniform(-1, 1, c.shape) for c in model.coefs_]
    model.intercepts_ = [rng.uniform(-0.5, 0.5, b.shape) for b in model.intercepts_]
    return model


@pytest.mark.parametrize("activation", ["gelu", "silu", "selu", "mish", "softplus"])
@pytest.mark.parametrize("loss", ["huber", "absolute_error", "quantile", "quantiles"])
def test_regression_losses_match_autograd(activation, loss):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 4))
    y = X[:, 0] - X[:, 1] * X[:, 2] + 0.2 * rng.normal(size=30)
    settings = {"huber": dict(loss="huber", huber_delta=0.6),
                "absolute_error": dict(loss="absolute_error"),
                "quantile": dict(loss="quantile", quantile=0.3),
                "quantiles": dict(loss="quantile", quantile=[0.1, 0.5, 0.95])}[loss]
    model = _fitted(fastbp.MLPRegressor, X, y, hidden_layer_sizes=(6, 5), activation=activation,
                    alpha=0.01, **settings)
    params = _torch_network(model)
    out = _torch_forward(params, X, activation)
    target = torch.tensor(y).reshape(-1, 1).expand_as(out)
    n = len(X)
    if loss == "huber":  # summed over outputs, averaged over rows
        data = F.huber_loss(out, target, reduction="sum", delta=0.6) / n
    elif loss == "absolute_error":
        data = F.l1_loss(out, target, reduction="sum") / n
    else:
        q = torch.tensor(np.broadcast_to(settings["quantile"], (out.shape[1],)).copy())
        diff = target - out
        data = torch.maximum(q * diff, (q - 1) * diff).sum() / n
    _assert_same_gradients(model, X, y, _objective(model, params, data, n), params)


@pytest.mark.parametrize("activation", ["gelu", "silu", "mish", "softplus", "selu"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_label_smoothing_matches_autograd(activation, task):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 4))
    if task == "binary":
        y = (X[:, 0] > 0).astype(int)
    elif task == "multiclass":
        y = np.argmax(X[:, :3], axis=1)
    else:
        y = (X[:, :3] > 0).astype(int)
    model = _fitted(fastbp.MLPClassifier, X, y, hidden_layer_sizes=(7,), activation=activation,
                    alpha=0.02, label_smoothing=0.15)
    params = _torch_network(model)
    # confident logits: the output layer three times larger
    params[-2].data *= 3.0
    params[-1].data *= 3.0
    model.coefs_[-1] *= 3.0
    model.intercepts_[-1] *= 3.0
    logits = _torch_forward(params, X, activation)
    n = len(X)
    if task == "multiclass":
        data = F.cross_entropy(logits, torch.tensor(y), label_smoothing=0.15, reduction="sum") / n
    else:  # binary and multilabel: two-class problems, y (1 - e) + e / 2
        target = torch.tensor(y.reshape(n, -1).astype(np.float64)) * 0.85 + 0.075
        data = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / n
    _assert_same_gradients(model, X, y, _objective(model, params, data, n), params)


def test_dropout_under_a_fixed_mask_matches_autograd():
    from fastbp import _losses, _targets
    from fastbp._engine_calls import FullBatchObjective

    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 5))
    y = np.argmax(X[:, :3], axis=1)
    model = _fitted(fastbp.MLPClassifier, X, y, hidden_layer_sizes=(9, 8), activation="gelu",
                    alpha=0.01, dropout=[0.2, 0.4])
    rates, seed, step = [0.2, 0.4], 77, 3
    masks = [_engine.dropout_mask(seed, step, i + 1, 50, width, r)
             for i, (width, r) in enumerate(zip((9, 8), rates))]
    params = _torch_network(model)
    logits = _torch_forward(params, X, "gelu", masks, rates)
    objective = _objective(model, params, F.cross_entropy(logits, torch.tensor(y),
                                                          reduction="sum") / 50, 50)
    objective.backward()
    net = model._sync()
    inp = model._validate_X(X, reset=False)
    Y = _targets.encode_known_targets(y, 50, net.dtype, loss="log_loss",
                                      encoding=model._label_encoding, n_outputs=3)
    fb = FullBatchObjective(net, inp, Y, None, model.alpha, "log_loss",
                            _losses.LossSettings(), _engine.DropoutRecord(rates, seed, step))
    assert fb() == pytest.approx(objective.item(), rel=1e-10)
    for (a, b), theirs in zip([s[:2] for s in net.spec.weight_slices()] + net.spec.bias_slices(),
                              params[::2] + params[1::2]):
        np.testing.assert_allclose(fb.grad[a:b], theirs.grad.numpy().ravel(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("schedule", ["cosine", "flat_cosine"])
def test_adamw_with_clipping_and_a_warmed_up_schedule_matches_pytorch(schedule):
    # Adam with epsilon ~ 0: scikit-learn's Adam and PyTorch's differ only in
    # where epsilon enters; weight decay, clipping and the schedule are PyTorch's
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 5))
    y = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(64, 3)), axis=1)
    lr, wd, clip, epochs, batch = 0.02, 0.1, 0.5, 4, 16
    model = fastbp.MLPClassifier((8,), activation="silu", solver="adam", batch_size=batch,
                                 learning_rate_init=lr, epsilon=1e-300, alpha=0.0,
                                 weight_decay=wd, max_grad_norm=clip, learning_rate=schedule,
                                 warmup=0.25, max_iter=1, shuffle=False, random_state=0,
                                 label_smoothing=0.1)
    with quiet_warnings():
        model.fit(X, y)  # builds the network; its weights are the starting point
    start = [p.copy() for pair in zip(model.coefs_, model.intercepts_) for p in pair]
    model.set_params(warm_start=True, max_iter=epochs)
    with quiet_warnings():
        model.fit(X, y)

    params = [torch.tensor(p, requires_grad=True) for p in start]
    decayed = {id(p) for p in params[::2]}
    opt = torch.optim.AdamW([{"params": params[::2], "weight_decay": wd},
                             {"params": params[1::2], "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-300)
    total = epochs * (64 // batch)
    warmup = round(0.25 * total)

    def factor(k):  # k = steps taken before this one
        t = k + 1
        warm = t / warmup if t <= warmup else 1.0
        x = min(max((t - warmup - 1) / (total - warmup), 0.0), 1.0)
        if schedule == "cosine":
            return warm * 0.5 * (1 + np.cos(np.pi * x))
        return warm * (1.0 if x <= 0.5 else 0.5 * (1 + np.cos(np.pi * (2 * x - 1))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    assert len(decayed) == len(params) // 2
    for _ in range(epochs):
        for start_row in range(0, 64, batch):
            rows = slice(start_row, start_row + batch)
            logits = _torch_forward(params, X[rows], "silu")
            loss = F.cross_entropy(logits, torch.tensor(y[rows]), label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            scheduler.step()
    ours = [p for pair in zip(model.coefs_, model.intercepts_) for p in pair]
    for a, b in zip(ours, params):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-11)
