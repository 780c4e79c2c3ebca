"""Property-based fuzzing of the engine against a plain numpy reference.

Hypothesis draws the shapes (1 sample, 1 feature, width-1 layers, up to four
hidden layers), dtypes, dense or sparse input, batch sizes (down to one
sample), activations, output kinds, sample weights, the penalty and the
optimizer; the reference below, written independently in float64 numpy,
computes the forward pass, the losses, backpropagation and one epoch of
SGD/Adam. The engine must agree on

* ``loss_and_gradients`` (loss and every gradient),
* ``predict`` / ``predict_proba`` (the forward pass),
* one epoch of training via ``partial_fit`` (weights, optimizer state, loss).

Under AddressSanitizer (``tools/asan.sh``) this doubles as a memory-safety
fuzzer for the kernels' pointer arithmetic.
"""


import numpy as np
import pytest
from conftest import quiet_warnings
import scipy.sparse as sp
from scipy.special import expit, softmax, xlogy

from fastbp import MLP

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LEAKY_SLOPE = 0.01


# ---------------------------------------------------------------------------
# the reference: one screen of numpy, float64
# ---------------------------------------------------------------------------

def _act(name, Z):
    if name == "identity":
        return Z
    if name == "logistic":
        return expit(Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "relu":
        return np.maximum(Z, 0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, LEAKY_SLOPE * Z)
    if name == "softmax":
        return softmax(Z, axis=1)
    if name == "exp":
        return np.exp(Z)
    raise AssertionError(name)


def _act_derivative(name, A):
    """d act / dz written with the activation's output A."""
    if name == "identity":
        return np.ones_like(A)
    if name == "logistic":
        return A * (1 - A)
    if name == "tanh":
        return 1 - A * A
    if name == "relu":
        return (A > 0).astype(A.dtype)
    if name == "leaky_relu":
        return np.where(A > 0, 1.0, LEAKY_SLOPE)
    raise AssertionError(name)


def _layers(flat, sizes):
    out, off = [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        W = flat[off:off + a * b].reshape(a, b)
        off += a * b
        out.append((W, flat[off:off + b]))
        off += b
    return out


def ref_forward(flat, sizes, X, hidden, output):
    A = [X]
    layers = _layers(flat, sizes)
    for i, (W, b) in enumerate(layers):
        A.append(_act(output if i == len(layers) - 1 else hidden, A[-1] @ W + b))
    return A


def ref_sample_losses(P, Z_out, Y, output, eps):
    """Per-sample losses summed over outputs. The log-losses are scikit-learn's
    (probabilities clipped to [eps, 1 - eps]) written with the logits, so
    that saturated outputs are exact: -log p = log(1 + exp(-z)) etc."""
    if output == "identity":
        return 0.5 * ((P - Y) ** 2).sum(axis=1)
    if output == "exp":
        return (xlogy(Y, Y) - Y * Z_out + P - Y).sum(axis=1)
    low, high = -np.log1p(-eps), -np.log(eps)
    if output == "softmax":
        neg_log_p = np.logaddexp.reduce(Z_out, axis=1, keepdims=True) - Z_out
        return (Y * np.clip(neg_log_p, low, high)).sum(axis=1)
    neg_log_p = np.clip(np.logaddexp(0, -Z_out), low, high)
    neg_log_1mp = np.clip(np.logaddexp(0, Z_out), low, high)
    return (Y * neg_log_p + (1 - Y) * neg_log_1mp).sum(axis=1)


def ref_loss_and_grad(flat, sizes, X, Y, w, alpha, hidden, output, eps):
    """(data term sum_r w_r loss_r, objective, flat gradient) as the engine defines them."""
    A = ref_forward(flat, sizes, X, hidden, output)
    layers = _layers(flat, sizes)
    Z_out = A[-2] @ layers[-1][0] + layers[-1][1]
    data = float((w * ref_sample_losses(A[-1], Z_out, Y, output, eps)).sum())
    sw_sum = w.sum()
    sumsq = sum(float((W ** 2).sum()) for W, _ in layers)
    grads = []
    delta = (A[-1] - Y) * w[:, None]
    for i in range(len(layers) - 1, -1, -1):
        W, _ = layers[i]
        grads.append(((A[i].T @ delta + alpha * W) / sw_sum, delta.sum(axis=0) / sw_sum))
        if i > 0:
            delta = (delta @ W.T) * _act_derivative(hidden, A[i])
    flat_grad = np.concatenate([g for gW, gb in grads[::-1] for g in (gW.ravel(), gb)])
    return data, data / sw_sum + 0.5 * alpha * sumsq / sw_sum, flat_grad, sumsq


def ref_gradient_resolution(flat, sizes, X, Y, w, hidden, output, eps):
    """Componentwise, how far a gradient computed in a dtype of machine
    epsilon ``eps`` may be from the exact one through its output delta alone:
    each output's ``P - Y`` is known to a few eps of ``|P| + |Y|`` at best (a
    probability near 1 is stored to eps / 2 of 1, so a saturated softmax's
    1 - p of ~1e-7 is off by tens of percent in float32, in scikit-learn's
    arithmetic as in fastbp's), and that error reaches the gradient through
    ``|W|`` and ``|act'|`` (no cancellation assumed). Same layout as the
    gradient."""
    A = ref_forward(flat, sizes, X, hidden, output)
    layers = _layers(flat, sizes)
    delta = 4 * eps * (np.abs(A[-1]) + np.abs(Y)) * w[:, None]
    sw_sum = w.sum()
    parts = []
    for i in range(len(layers) - 1, -1, -1):
        W, _ = layers[i]
        parts.append((np.abs(A[i]).T @ delta / sw_sum, delta.sum(axis=0) / sw_sum))
        if i > 0:
            delta = (delta @ np.abs(W).T) * np.abs(_act_derivative(hidden, A[i]))
    return np.concatenate([g for gW, gb in parts[::-1] for g in (gW.ravel(), gb)])


def ref_epoch(flat, s1, s2, t, sizes, X, Y, w, batch, opt, alpha, hidden, output, eps,
              loss_scale):
    """One epoch in order (no shuffle); returns (params, s1, s2, t, loss_,
    resolution): ``resolution`` bounds, per parameter, how much the epoch's
    steps may move when each step's gradient is off by its
    ``ref_gradient_resolution`` (Adam divides by the root of its second
    moment: where that is as small as such a gradient, the error reaches the
    step whole, and stays in the moments for the later steps)."""
    flat, s1, s2 = flat.copy(), s1.copy(), s2.copy()
    n = X.shape[0]
    total = 0.0
    resolution = np.zeros_like(flat)
    m_box, v_box = (s1, s1), (s2, s2)   # Adam's moments under the gradients' resolution
    mu = opt["momentum"]
    for start in range(0, n, batch):
        rows = slice(start, min(start + batch, n))
        wb = w[rows]
        data, _, g, sumsq = ref_loss_and_grad(flat, sizes, X[rows], Y[rows], wb, alpha,
                                              hidden, output, eps)
        dg = ref_gradient_resolution(flat, sizes, X[rows], Y[rows], wb, hidden, output, eps)
        sw_sum = wb.sum()
        total += (data * loss_scale / sw_sum + 0.5 * alpha * sumsq / sw_sum) * len(wb)
        if opt["solver"] == "sgd":
            s1 = mu * s1 - opt["lr"] * g
            update = mu * s1 - opt["lr"] * g if opt["nesterov"] else s1
            # this step's gradient moves this and every later step (momentum)
            resolution += opt["lr"] * dg * (1 + mu if opt["nesterov"] else 1) / (1 - mu)
        else:
            t += 1
            lr_t = opt["lr"] * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            s1 = 0.9 * s1 + 0.1 * g
            s2 = 0.999 * s2 + (1 - 0.999) * g * g
            update = -lr_t * s1 / (np.sqrt(s2) + 1e-8)
            # the moments' ranges over every gradient within dg of each step's
            # (an error stays in them for the later steps), and the step's
            # range over the box they span
            low, high = g - dg, g + dg
            g2_low = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(low * low, high * high))
            m_box = (0.9 * m_box[0] + 0.1 * low, 0.9 * m_box[1] + 0.1 * high)
            v_box = (0.999 * v_box[0] + (1 - 0.999) * g2_low,
                     0.999 * v_box[1] + (1 - 0.999) * np.maximum(low * low, high * high))
            corners = [-lr_t * m / (np.sqrt(v) + 1e-8) for m in m_box for v in v_box]
            resolution += np.max([np.abs(c - update) for c in corners], axis=0)
        flat = flat + update
    return flat, s1, s2, t, total / n, resolution


# ---------------------------------------------------------------------------
# the fuzzed problems
# ---------------------------------------------------------------------------

@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    n_features = draw(st.integers(1, 5))
    hidden_sizes = draw(st.lists(st.integers(1, 6), min_size=0, max_size=4))
    kind = draw(st.sampled_from(["binary", "multiclass", "multilabel", "regression",
                                 "poisson"]))
    learning_rate = 1e-3
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.RandomState(seed)
    # the exp output of Poisson regression overflows quickly: milder inputs there
    scales = [0.5, 1.0] if kind == "poisson" else [0.5, 1.0, 4.0]
    X = rng.normal(size=(n, n_features)) * draw(st.sampled_from(scales))
    sparse = draw(st.booleans())
    if sparse:
        X[rng.rand(n, n_features) < 0.5] = 0.0
    if kind == "binary":
        y, classes = rng.randint(0, 2, n), [0, 1]
    elif kind == "multiclass":
        k = draw(st.integers(3, 4))
        y, classes = rng.randint(0, k, n), list(range(k))
    elif kind == "multilabel":
        k = draw(st.integers(2, 3))
        y, classes = rng.randint(0, 2, (n, k)), list(range(k))
    elif kind == "regression":
        n_outputs = draw(st.integers(1, 3))
        y = rng.normal(size=(n, n_outputs)) if n_outputs > 1 else rng.normal(size=n)
        classes = None
    else:
        y = rng.poisson(2.0, size=n).astype(float)
        classes = None
    return {
        "X": X, "y": y, "classes": classes, "kind": kind, "sparse": sparse,
        "hidden_sizes": tuple(hidden_sizes),
        "activation": draw(st.sampled_from(["identity", "logistic", "tanh", "relu",
                                            "leaky_relu"])),
        "dtype": draw(st.sampled_from([np.float64, np.float32])),
        "batch_size": draw(st.integers(1, n + 2)),
        "sample_weight": None if draw(st.booleans()) else rng.uniform(0.1, 2.0, n),
        "alpha": draw(st.sampled_from([0.0, 1e-4, 0.3])),
        "solver": draw(st.sampled_from(["sgd", "adam"])),
        "nesterov": draw(st.booleans()),
        "momentum": draw(st.sampled_from([0.0, 0.9])),
        "param_scale": draw(st.sampled_from([0.1, 0.5] if kind == "poisson" else
                                            [0.1, 1.0, 2.0])),
        "learning_rate": learning_rate,
        "rng": rng,
    }


def _targets(model, y, dtype):
    if model._is_classifier():
        return model._label_encoding.transform(y, np.float64)
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def _model_with_random_weights(p):
    """The fuzzed problem's model, its optimizer state built by a first tiny
    step, then its weights replaced by random ones; (model, X as passed, X as
    float64, targets, sample weights as float64, loss)."""
    dtype = p["dtype"]
    X = p["X"].astype(dtype)
    X_in = sp.csr_matrix(X) if p["sparse"] else X
    loss = {"regression": "squared_error", "poisson": "poisson"}.get(p["kind"], "log_loss")
    model = MLP(p["hidden_sizes"], activation=p["activation"], loss=loss, solver=p["solver"],
                batch_size=p["batch_size"], shuffle=False, alpha=p["alpha"],
                learning_rate_init=p["learning_rate"], momentum=p["momentum"],
                nesterovs_momentum=p["nesterov"], random_state=0)
    sw = p["sample_weight"]
    fit_kw = {"classes": p["classes"]} if p["classes"] is not None else {}
    # the first call builds the network and the optimizer state (a tiny step,
    # so it cannot diverge); then the weights are replaced by random ones
    model.set_params(learning_rate_init=1e-9)
    with quiet_warnings():
        model.partial_fit(X_in, p["y"], sample_weight=sw, **fit_kw)
    model.set_params(learning_rate_init=p["learning_rate"])
    model._optimizer.learning_rate = p["learning_rate"]

    net = model._net
    for W, b in zip(net.coefs, net.intercepts):  # about norm-preserving per layer
        W[...] = p["rng"].normal(size=W.shape) * p["param_scale"] / np.sqrt(W.shape[0])
        b[...] = p["rng"].normal(size=b.shape) * p["param_scale"] / np.sqrt(W.shape[0])
    Y = _targets(model, p["y"], dtype)
    w = np.ones(X.shape[0]) if sw is None else sw.astype(dtype).astype(np.float64)
    return model, X_in, X.astype(np.float64), Y, w, loss


def _reference_epoch(model, p, X64, Y, w, loss, learning_rate):
    """The reference's epoch from the model's current weights and optimizer
    state (float64), at ``learning_rate``."""
    net, opt = model._net, model._optimizer
    s1 = opt.state1.astype(np.float64)
    s2 = (opt.state2 if opt.state2.size == s1.size else np.zeros_like(opt.state1))
    s2 = s2.astype(np.float64)
    loss_scale = 1.0 / Y.shape[1] if loss == "squared_error" else 1.0
    return ref_epoch(net.params.astype(np.float64), s1, s2, opt.t, net.sizes, X64, Y, w,
                     min(p["batch_size"], X64.shape[0]),
                     {"solver": p["solver"], "lr": learning_rate, "momentum": p["momentum"],
                      "nesterov": p["nesterov"]},
                     p["alpha"], net.spec.hidden_activation, net.spec.output_activation,
                     float(np.finfo(p["dtype"]).eps), loss_scale)


def _step_error(before, after, ref, n_steps, eps):
    """(error of the engine's step, its bound). ``ref`` is ``ref_epoch``'s
    result; the step is ``after - before`` and the reference's ``ref[0] -
    before`` (all float64). Storing the parameters in the model's dtype after
    each of the ``n_steps`` steps rounds each by at most eps/2 of its size:
    that, twice over, plus 1e-3 of the step for the dtype's error in the
    gradient, plus the steps' movement under the gradients' resolution
    (``ref[5]``: where Adam's second moment is as small as the output
    delta's resolution, a saturated float32 softmax), bounds a right step
    (float32: measured at most the rounding term alone over 650 fuzzed
    problems; over 1,500 the resolution term is a median 0.1% of the rest,
    at most 14%, but where a saturated output leaves Adam's second moment at
    the delta's resolution); a step 1% off (learning rate, bias correction,
    momentum) is ten times outside."""
    ref_after = ref[0]
    step_error = float(np.linalg.norm((after - before) - (ref_after - before)))
    rounding = n_steps * eps * float(np.linalg.norm(ref_after))
    return step_error, (2 * rounding + 1e-3 * float(np.linalg.norm(ref_after - before))
                        + float(np.linalg.norm(ref[5])))


@settings(max_examples=40, deadline=None)
@given(problems())
def test_engine_matches_numpy_reference(p):
    dtype = p["dtype"]
    model, X_in, X64, Y, w, loss = _model_with_random_weights(p)
    net = model._net
    sizes = net.sizes
    hidden, output = net.spec.hidden_activation, net.spec.output_activation
    sw = p["sample_weight"]
    flat = net.params.astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    if dtype == np.float64:
        tol = dict(rtol=1e-9, atol=1e-12)
    else:
        tol = dict(rtol=2e-3, atol=2e-4)

    # forward pass
    A = ref_forward(flat, sizes, X64, hidden, output)
    if model._is_classifier():
        proba = model.predict_proba(X_in)
        ref_proba = A[-1] if A[-1].shape[1] > 1 else np.c_[1 - A[-1], A[-1]]
        np.testing.assert_allclose(proba, ref_proba, **tol)
    else:
        pred = model.predict(X_in)
        ref_pred = A[-1].ravel() if A[-1].shape[1] == 1 else A[-1]
        np.testing.assert_allclose(pred, ref_pred, **tol)

    # loss and gradients on the whole data
    _, ref_loss, ref_grad, _ = ref_loss_and_grad(flat, sizes, X64, Y, w, p["alpha"], hidden,
                                                 output, eps)
    loss_value, coef_grads, intercept_grads = model.loss_and_gradients(X_in, p["y"],
                                                                       sample_weight=sw)
    grad = np.concatenate([g for cg, ig in zip(coef_grads, intercept_grads)
                           for g in (cg.ravel(), ig)])
    np.testing.assert_allclose(loss_value, ref_loss, **tol)
    scale = max(1.0, float(np.abs(ref_grad).max()))
    np.testing.assert_allclose(grad, ref_grad, rtol=tol["rtol"], atol=tol["atol"] * scale)

    # one epoch of training from the current weights and optimizer state
    opt = model._optimizer
    with np.errstate(over="ignore", invalid="ignore"):
        ref = _reference_epoch(model, p, X64, Y, w, loss, p["learning_rate"])
    t_before = opt.t
    if not (np.isfinite(ref[0]).all() and np.isfinite(ref[4])):
        # the problem diverges in exact arithmetic too (large weights and
        # inputs, batches of one; the parameters or the epoch's loss
        # overflow): the engine must say so, not return NaN
        with quiet_warnings(), pytest.raises(ValueError, match="non-finite"):
            model.partial_fit(X_in, p["y"], sample_weight=sw)
        return
    with quiet_warnings():
        model.partial_fit(X_in, p["y"], sample_weight=sw)
    np.testing.assert_allclose(net.params, ref[0], rtol=tol["rtol"],
                               atol=tol["atol"] * max(1.0, float(np.abs(ref[0]).max())))
    # the step itself, in either dtype, to the rounding of the parameters
    n_steps = -(-X64.shape[0] // min(p["batch_size"], X64.shape[0]))
    step_error, bound = _step_error(flat, net.params.astype(np.float64), ref, n_steps, eps)
    assert step_error <= bound, (step_error, bound)
    np.testing.assert_allclose(opt.state1, ref[1], rtol=tol["rtol"],
                               atol=tol["atol"] * max(1e-3, float(np.abs(ref[1]).max())))
    if p["solver"] == "adam":
        np.testing.assert_allclose(opt.state2, ref[2], rtol=tol["rtol"],
                                   atol=tol["atol"] * max(1e-6, float(np.abs(ref[2]).max())))
        assert opt.t == ref[3] == t_before + n_steps
    np.testing.assert_allclose(model.loss_, ref[4], **tol)


@pytest.mark.parametrize("solver, momentum", [("sgd", 0.9), ("adam", 0.0)])
def test_float32_step_check_catches_a_step_one_percent_off(solver, momentum):
    # the bound of _step_error holds for the right reference and fails for
    # one whose learning rate is 1% off (what rtol 2e-3 on the weights let by)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(12, 4))
    p = {"X": X, "y": rng.randint(0, 3, 12), "classes": [0, 1, 2], "kind": "multiclass",
         "sparse": False, "hidden_sizes": (5, 3), "activation": "tanh", "dtype": np.float32,
         "batch_size": 4, "sample_weight": None, "alpha": 1e-4, "solver": solver,
         "nesterov": False, "momentum": momentum, "param_scale": 1.0,
         "learning_rate": 1e-3, "rng": rng}
    model, X_in, X64, Y, w, loss = _model_with_random_weights(p)
    before = model._net.params.astype(np.float64)
    right = _reference_epoch(model, p, X64, Y, w, loss, p["learning_rate"])
    wrong = _reference_epoch(model, p, X64, Y, w, loss, 1.01 * p["learning_rate"])
    model.partial_fit(X_in, p["y"])
    after = model._net.params.astype(np.float64)
    eps = float(np.finfo(np.float32).eps)
    step_error, bound = _step_error(before, after, right, 3, eps)
    assert step_error <= bound, (step_error, bound)
    step_error, bound = _step_error(before, after, wrong, 3, eps)
    assert step_error > 3 * bound, (step_error, bound)
    # the old float32 tolerance alone passes the wrong step
    np.testing.assert_allclose(after, wrong[0], rtol=2e-3,
                               atol=2e-4 * max(1.0, float(np.abs(wrong[0]).max())))
