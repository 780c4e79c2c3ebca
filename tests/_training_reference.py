"""Test helper: an independent numpy (float64) reference of fastbp's training
with its options: the smooth activations, the Huber, absolute-error and pinball
losses, label smoothing, dropout (masks taken from the engine's generator, the
one thing not re-derived here), decoupled weight decay, per-step learning-rate
schedules with warm-up, gradient clipping; sgd (with momentum or Nesterov's)
and Adam, scikit-learn's arithmetic.

Written from the definitions (PyTorch's for the activations, HuberLoss,
label smoothing, AdamW and clip_grad_norm_; scikit-learn's for the pinball loss,
the optimizers and the reported loss), not from the engine's code.
"""

import numpy as np
from scipy.special import expit, logsumexp, ndtr

from fastbp import _engine

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def softplus(z):
    return np.logaddexp(0.0, z)


def activation(name, z):
    """(act(z), act'(z)) of a hidden activation."""
    if name == "identity":
        return z, np.ones_like(z)
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01)
    if name == "tanh":
        return np.tanh(z), 1 - np.tanh(z) ** 2
    if name == "logistic":
        return expit(z), expit(z) * (1 - expit(z))
    if name == "gelu":
        pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
        return z * ndtr(z), ndtr(z) + z * pdf
    if name == "silu":
        return z * expit(z), expit(z) * (1 + z * expit(-z))
    if name == "selu":
        below = SELU_SCALE * SELU_ALPHA * np.expm1(np.minimum(z, 0))
        return (np.where(z > 0, SELU_SCALE * z, below),
                np.where(z > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(z, 0))))
    if name == "mish":
        t = np.tanh(softplus(z))
        return z * t, t + z * expit(z) * (1 - t * t)
    if name == "softplus":
        return softplus(z), expit(z)
    raise ValueError(name)


def output(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return expit(z)
    if name == "softmax":
        return np.exp(z - logsumexp(z, axis=1, keepdims=True))
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def data_loss(loss, out, Z, Y, settings, eps=np.finfo(float).eps):
    """(per-row loss summed over outputs, its gradient with respect to the
    output layer's pre-activation Z)."""
    P = output(out, Z)
    E = P - Y
    if loss == "squared_error":
        return 0.5 * (E ** 2).sum(1), E
    if loss == "poisson":
        return (np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1) / P), 0) - Y + P).sum(1), E
    if loss == "huber":
        d = settings["huber_delta"]
        a = np.abs(E)
        return np.where(a <= d, 0.5 * E * E, d * (a - 0.5 * d)).sum(1), np.clip(E, -d, d)
    if loss == "absolute_error":
        return np.abs(E).sum(1), np.sign(E)
    if loss == "quantile":
        q = np.asarray(settings["quantiles"], dtype=float)
        return (np.where(E >= 0, (1 - q) * E, -q * E)).sum(1), np.where(
            E > 0, 1 - q, np.where(E < 0, -q, 0.0))
    # log_loss
    s = settings.get("label_smoothing", 0.0)
    if s == 0:  # scikit-learn's: probabilities clipped to [eps, 1 - eps]
        low, high = -np.log1p(-eps), -np.log(eps)
        if out == "softmax":
            neg_log_p = np.clip(logsumexp(Z, axis=1, keepdims=True) - Z, low, high)
            return (Y * neg_log_p).sum(1), E
        return (Y * np.clip(softplus(-Z), low, high)
                + (1 - Y) * np.clip(softplus(Z), low, high)).sum(1), E
    if out == "softmax":  # PyTorch's CrossEntropyLoss(label_smoothing=s)
        T = Y * (1 - s) + s / Y.shape[1]
        return (T * (logsumexp(Z, axis=1, keepdims=True) - Z)).sum(1), P - T
    T = Y * (1 - s) + s / 2  # binary / multilabel: two-class problems
    return (softplus(Z) - T * Z).sum(1), P - T


def loss_and_gradients(layers, X, Y, w, alpha, hidden, out, loss, settings, masks=None,
                       rates=None):
    """(data term sum_r w_r loss_r, sum ||W||^2, [(dW, db)] of the objective
    sum_r w_r loss_r / sum w + alpha / (2 sum w) sum ||W||^2), with dropout
    masks (one 0/1 array per hidden layer, or None) applied as inverted
    dropout."""
    acts, derivs = [X], []
    for i, (W, b) in enumerate(layers[:-1]):
        a, da = activation(hidden, acts[-1] @ W + b)
        if masks is not None and masks[i] is not None:
            keep = masks[i] / (1 - rates[i])
            a, da = a * keep, da * keep
        acts.append(a)
        derivs.append(da)
    W, b = layers[-1]
    per_row, dZ = data_loss(loss, out, acts[-1] @ W + b, Y, settings)
    sw = w.sum()
    delta = dZ * w[:, None]
    grads = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        W = layers[i][0]
        grads[i] = ((acts[i].T @ delta + alpha * W) / sw, delta.sum(0) / sw)
        if i > 0:
            delta = (delta @ W.T) * derivs[i - 1]
    return float(w @ per_row), sum(float((W ** 2).sum()) for W, _ in layers), grads


def schedule_factor(t, kind, warmup_steps, total_steps):
    """The learning-rate factor of step t (from 1): linear warm-up, then the
    schedule over the remaining steps (PyTorch's CosineAnnealingLR for 'cosine',
    RealMLP's flat_cos for 'flat_cosine')."""
    warm = t / warmup_steps if t <= warmup_steps else 1.0
    if kind not in ("cosine", "flat_cosine"):
        return warm
    x = min(max((t - warmup_steps - 1) / max(total_steps - warmup_steps, 1), 0.0), 1.0)
    if kind == "cosine":
        return warm * 0.5 * (1 + np.cos(np.pi * x))
    return warm * (1.0 if x <= 0.5 else 0.5 * (1 + np.cos(np.pi * (2 * x - 1))))


def glorot(sizes, rng, hidden):
    """scikit-learn's initialisation, draw for draw."""
    factor = 2.0 if hidden == "logistic" else 6.0
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
        layers.append((W, rng.uniform(-bound, bound, fan_out)))
    return layers


def dropout_seed(rng):
    """The fit's mask seed: fastbp's two draws of 31 bits."""
    high = int(rng.randint(np.iinfo(np.int32).max))
    low = int(rng.randint(np.iinfo(np.int32).max))
    return (high << 31) | low


def fit(layers, X, Y, w, *, batch, epochs, solver, lr, alpha, hidden, out, loss, settings,
        loss_scale, momentum=0.9, nesterov=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
        weight_decay=0.0, max_grad_norm=None, schedule="constant", warmup=0.0, rates=None,
        seed=0):
    """Train in order (no shuffle); returns (layers, loss curve)."""
    layers = [(W.copy(), b.copy()) for W, b in layers]
    n = X.shape[0]
    total_steps = epochs * -(-n // batch)
    warmup_steps = int(round(warmup * total_steps))
    state1 = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
    state2 = [(np.zeros_like(W), np.zeros_like(b)) for W, b in layers]
    t = 0
    curve = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, batch):
            t += 1
            rows = slice(start, min(start + batch, n))
            masks = None
            if rates is not None and any(rates):
                masks = [_engine.dropout_mask(seed, t, i + 1, len(w[rows]), W.shape[1], r, start)
                         if r > 0 else None for i, ((W, _), r) in enumerate(zip(layers, rates))]
            data, sumsq, grads = loss_and_gradients(layers, X[rows], Y[rows], w[rows], alpha,
                                                    hidden, out, loss, settings, masks, rates)
            sw = w[rows].sum()
            total += (data * loss_scale / sw + 0.5 * alpha * sumsq / sw) * len(w[rows])
            if max_grad_norm is not None:  # PyTorch's clip_grad_norm_
                norm = np.sqrt(sum(float((g ** 2).sum()) for pair in grads for g in pair))
                clip = min(1.0, max_grad_norm / (norm + 1e-6))
                grads = [(gW * clip, gb * clip) for gW, gb in grads]
            rate = lr * schedule_factor(t, schedule, warmup_steps, total_steps)
            updated = []
            for k, ((W, b), (gW, gb)) in enumerate(zip(layers, grads)):
                W = W * (1 - rate * weight_decay)  # AdamW / SGDW: weights only
                params = []
                for j, (p, g) in enumerate(((W, gW), (b, gb))):
                    if solver == "sgd":
                        v = momentum * state1[k][j] - rate * g
                        state1[k] = tuple(v if jj == j else s for jj, s in enumerate(state1[k]))
                        p = p + (momentum * v - rate * g if nesterov else v)
                    else:
                        m = beta_1 * state1[k][j] + (1 - beta_1) * g
                        v = beta_2 * state2[k][j] + (1 - beta_2) * g * g
                        state1[k] = tuple(m if jj == j else s for jj, s in enumerate(state1[k]))
                        state2[k] = tuple(v if jj == j else s for jj, s in enumerate(state2[k]))
                        step = rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
                        p = p - step * m / (np.sqrt(v) + epsilon)
                    params.append(p)
                updated.append(tuple(params))
            layers = updated
        curve.append(total / n)
    return layers, curve
