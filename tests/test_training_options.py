"""fastbp's training options (issue 10) against an independent numpy reference
(tests/_training_reference.py), and their behaviour: dropout, decoupled weight
decay, per-step learning-rate schedules and warm-up, gradient clipping, label
smoothing, the Huber, absolute-error and pinball losses, the smooth activations,
validation data passed to fit; determinism, validation messages and extremes.
Save/load of every option is in tests/test_training_files.py, the PyTorch oracle
in tests/test_torch_oracle.py."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import _training_reference as ref
import fastbp
from fastbp import _engine
from fastbp._engine_calls import FullBatchObjective
from fastbp._validation import InvalidParameterError

NEW_ACTIVATIONS = ["gelu", "silu", "selu", "mish", "softplus"]


def quiet_fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return model.fit(*args, **kwargs)


def problem(task, n=90, n_features=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    if task == "binary":
        return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    if task == "multiclass":
        return X, np.argmax(X[:, :3] + 0.5 * rng.normal(size=(n, 3)), axis=1)
    if task == "multilabel":
        return X, (X[:, :3] + 0.5 * rng.normal(size=(n, 3)) > 0).astype(int)
    return X, X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + 0.3 * rng.normal(size=n)


# ---------------------------------------------------------------------------
# training, epoch by epoch, against the numpy reference
# ---------------------------------------------------------------------------

CASES = {
    # name: (task, estimator parameters)
    "adam-gelu-multiclass-all": ("multiclass", dict(
        hidden_layer_sizes=(12, 9), activation="gelu", solver="adam", loss="log_loss",
        dropout=[0.2, 0.1], weight_decay=0.05, learning_rate="cosine", warmup=0.2,
        max_grad_norm=0.5, label_smoothing=0.1, alpha=1e-3, learning_rate_init=0.01)),
    "sgd-mish-binary-all": ("binary", dict(
        hidden_layer_sizes=(10,), activation="mish", solver="sgd", loss="log_loss",
        dropout=0.3, weight_decay=0.1, learning_rate="flat_cosine", warmup=0.1,
        max_grad_norm=1.0, label_smoothing=0.2, learning_rate_init=0.05)),
    "adam-silu-quantiles": ("regression", dict(
        hidden_layer_sizes=(11,), activation="silu", solver="adam", loss="quantile",
        quantile=[0.1, 0.5, 0.9], dropout=0.15, weight_decay=0.02, learning_rate="cosine",
        max_grad_norm=0.3, learning_rate_init=0.02)),
    "sgd-softplus-huber": ("regression", dict(
        hidden_layer_sizes=(8, 8), activation="softplus", solver="sgd", loss="huber",
        huber_delta=0.5, dropout=[0.1, 0.25], warmup=0.3, nesterovs_momentum=False,
        learning_rate_init=0.02)),
    "adam-selu-multilabel": ("multilabel", dict(
        hidden_layer_sizes=(9,), activation="selu", solver="adam", loss="log_loss",
        dropout=0.2, label_smoothing=0.05, max_grad_norm=0.2, learning_rate_init=0.01)),
    "adam-tanh-absolute": ("regression", dict(
        hidden_layer_sizes=(7,), activation="tanh", solver="adam", loss="absolute_error",
        dropout=0.25, weight_decay=0.3, learning_rate="flat_cosine", warmup=0.05,
        learning_rate_init=0.03)),
    "sgd-relu-squared-clip": ("regression", dict(
        hidden_layer_sizes=(6,), activation="relu", solver="sgd", loss="squared_error",
        dropout=0.4, max_grad_norm=0.1, weight_decay=0.01, learning_rate_init=0.05)),
}


def _reference_fit(model, X, Y, sw, epochs):
    """The reference's model after ``epochs`` epochs from the same draws."""
    p = model.get_params()
    rng = np.random.RandomState(p["random_state"])
    sizes = [X.shape[1], *p["hidden_layer_sizes"], Y.shape[1]]
    layers = ref.glorot(sizes, rng, p["activation"])
    n_hidden = len(p["hidden_layer_sizes"])
    rates = p["dropout"] if np.ndim(p["dropout"]) else [p["dropout"]] * n_hidden
    seed = ref.dropout_seed(rng) if any(rates) else 0
    loss = model._loss_name()
    out = model.out_activation_
    quantiles = p.get("quantile")
    settings = dict(huber_delta=p.get("huber_delta", 1.0),
                    quantiles=np.broadcast_to(quantiles, (Y.shape[1],)) if quantiles is not None
                    else None, label_smoothing=p.get("label_smoothing", 0.0))
    averaged = loss in ("squared_error", "huber", "absolute_error", "quantile")
    return ref.fit(
        layers, X.astype(np.float64), Y, sw, batch=p["batch_size"], epochs=epochs,
        solver=p["solver"], lr=p["learning_rate_init"], alpha=p["alpha"],
        hidden=p["activation"], out=out, loss=loss, settings=settings,
        loss_scale=1.0 / Y.shape[1] if averaged else 1.0, momentum=p["momentum"],
        nesterov=p["nesterovs_momentum"], weight_decay=p["weight_decay"],
        max_grad_norm=p["max_grad_norm"], schedule=p["learning_rate"], warmup=p["warmup"],
        rates=rates, seed=seed)


def _encoded(model, y):
    if model._is_classifier():
        return model._label_encoding.transform(np.asarray(y), np.float64)
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    q = model.quantile if model.loss == "quantile" else None
    return np.repeat(Y, len(q), axis=1) if np.ndim(q) else Y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_training_matches_the_numpy_reference(case, sparse, dtype):
    task, params = CASES[case]
    X, y = problem(task)
    if sparse:
        X[np.abs(X) < 0.6] = 0.0
    X = X.astype(dtype)
    sw = np.random.RandomState(7).uniform(0.3, 2.0, len(X))
    epochs = 3
    model = fastbp.MLP(batch_size=16, max_iter=epochs, shuffle=False, random_state=3,
                       tol=0, n_iter_no_change=100, **params)
    quiet_fit(model, sp.csr_matrix(X) if sparse else X, y, sample_weight=sw)
    Y = _encoded(model, y)
    w = sw.astype(dtype).astype(np.float64)
    layers, curve = _reference_fit(model, X, Y, w, epochs)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-3, atol=2e-4)
    for (W, b), coef, intercept in zip(layers, model.coefs_, model.intercepts_):
        assert coef.dtype == dtype
        np.testing.assert_allclose(coef, W, **tol)
        np.testing.assert_allclose(intercept, b, **tol)
    np.testing.assert_allclose(model.loss_curve_, curve, rtol=tol["rtol"])
    assert model.t_ == epochs * len(X) and model._optimizer.t == epochs * -(-len(X) // 16)


def test_the_data_parallel_mode_matches_the_reference():
    # activations outweigh the parameters: each batch is split into two fixed
    # halves, each with its own gradient; dropout and clipping must see the batch
    rng = np.random.RandomState(1)
    X = rng.normal(size=(300, 32))
    y = np.argmax(X[:, :4] + 0.3 * rng.normal(size=(300, 4)), axis=1)
    params = dict(hidden_layer_sizes=(128,), activation="relu", solver="adam",
                  batch_size=128, dropout=0.25, max_grad_norm=0.3, weight_decay=0.05,
                  learning_rate="cosine", warmup=0.1, label_smoothing=0.1,
                  learning_rate_init=0.01)
    model = fastbp.MLPClassifier(max_iter=2, shuffle=False, random_state=0, **params)
    quiet_fit(model, X, y)
    assert _engine.data_parallel(model._net.spec, 128)
    layers, curve = _reference_fit(model, X, _encoded(model, y), np.ones(len(X)), 2)
    for (W, b), coef, intercept in zip(layers, model.coefs_, model.intercepts_):
        np.testing.assert_allclose(coef, W, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(intercept, b, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(model.loss_curve_, curve, rtol=1e-9)


# ---------------------------------------------------------------------------
# gradients: finite differences and the reference, with a fixed dropout mask
# ---------------------------------------------------------------------------

def _with_random_weights(model, scale=1.0, seed=5):
    rng = np.random.RandomState(seed)
    model.coefs_ = [rng.uniform(-scale, scale, c.shape).astype(c.dtype) for c in model.coefs_]
    model.intercepts_ = [rng.uniform(-0.5, 0.5, b.shape).astype(b.dtype)
                         for b in model.intercepts_]
    return model


def _fixed_mask_objective(model, rates, seed, step):
    """``model.loss_and_gradients`` under the dropout masks of ``step`` (the
    engine's test hook), for fastbp.check_gradients."""
    from fastbp import _losses, _targets

    record = _engine.DropoutRecord(rates, seed, step)

    def loss_and_gradients(X, y, sample_weight=None):
        net = model._sync()
        inp = model._validate_X(X, reset=False)
        Y = _targets.encode_known_targets(y, inp.n_rows, net.dtype, loss=model._loss_name(),
                                          encoding=model._encoding(),
                                          n_outputs=model.n_outputs_,
                                          quantiles=model._quantiles())
        objective = FullBatchObjective(net, inp, Y, None, model.alpha, model._loss_name(),
                                       _losses.loss_settings(model, model.n_outputs_), record)
        value = objective()
        grad = objective.grad
        return (value, [grad[a:b].reshape(s) for a, b, s in net.spec.weight_slices()],
                [grad[a:b] for a, b in net.spec.bias_slices()])

    return loss_and_gradients


@pytest.mark.parametrize("activation, dtype", [
    (a, d) for a in NEW_ACTIVATIONS + ["relu", "tanh"] for d in (np.float64, np.float32)
    # float32's finite differences (steps of 1e-2) need activations without kinks
    if d == np.float64 or a not in ("relu", "selu")])
def test_gradients_under_a_fixed_dropout_mask(activation, dtype, monkeypatch):
    X, y = problem("multiclass", n=40)
    X = X.astype(dtype)
    model = quiet_fit(fastbp.MLPClassifier((7, 5), activation=activation, max_iter=1,
                                           random_state=0, dropout=[0.3, 0.5], alpha=1e-2,
                                           label_smoothing=0.1), X, y)
    _with_random_weights(model)
    rates, seed, step = [0.3, 0.5], 12345, 7
    objective = _fixed_mask_objective(model, rates, seed, step)
    monkeypatch.setattr(model, "loss_and_gradients", objective)
    assert fastbp.check_gradients(model, X, y) < (1e-6 if dtype == np.float64 else 5e-3)
    # and the reference with the same masks
    masks = [_engine.dropout_mask(seed, step, i + 1, len(X), width, r)
             for i, (width, r) in enumerate(zip((7, 5), rates))]
    layers = [(W.astype(np.float64), b.astype(np.float64))
              for W, b in zip(model.coefs_, model.intercepts_)]
    data, sumsq, grads = ref.loss_and_gradients(
        layers, X.astype(np.float64), _encoded(model, y), np.ones(len(X)), 1e-2, activation,
        "softmax", "log_loss", dict(label_smoothing=0.1), masks, rates)
    value, coef_grads, intercept_grads = objective(X, y)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(value, data / len(X) + 0.5e-2 * sumsq / len(X), rtol=tol)
    for (gW, gb), cg, ig in zip(grads, coef_grads, intercept_grads):
        np.testing.assert_allclose(cg, gW, rtol=tol, atol=tol * np.abs(gW).max())
        np.testing.assert_allclose(ig, gb, rtol=tol, atol=tol * np.abs(gb).max())
    # the masks really drop units, and the hook does not change the model's own pass
    assert 0 < masks[1].mean() < 1
    plain = model.__class__.loss_and_gradients(model, X, y)[0]
    assert plain != value


def test_the_dropout_mask_generator():
    rate = 0.3
    mask = _engine.dropout_mask(99, 5, 1, 2000, 300, rate)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    # the keep rate, per row, per unit and overall (600000 draws: 4 sigma is 0.0024)
    assert abs(mask.mean() - (1 - rate)) < 0.0025
    assert np.abs(mask.mean(axis=1) - (1 - rate)).max() < 0.12
    assert np.abs(mask.mean(axis=0) - (1 - rate)).max() < 0.05
    # neighbouring units and rows are not correlated
    m = mask.astype(float) - mask.mean()
    assert abs((m[:, 1:] * m[:, :-1]).mean()) < 0.003
    assert abs((m[1:] * m[:-1]).mean()) < 0.003
    # a pure function of (seed, step, layer, row position, unit)
    np.testing.assert_array_equal(mask, _engine.dropout_mask(99, 5, 1, 2000, 300, rate))
    np.testing.assert_array_equal(mask[700:900], _engine.dropout_mask(99, 5, 1, 200, 300, rate,
                                                                      700))
    for other in [(98, 5, 1), (99, 6, 1), (99, 5, 2)]:
        assert (_engine.dropout_mask(*other, 2000, 300, rate) != mask).mean() > 0.3
    assert _engine.dropout_mask(1, 1, 1, 10, 10, 0.0).all()
    assert _engine.dropout_mask(1, 1, 1, 100, 100, 0.99).mean() < 0.02


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------

def _engine_epochs(spec, params, X, Y, order, batch, n_threads, dropout, loss, epochs=2,
                   dtype=np.float64):
    params = params.copy()
    grads = np.empty_like(params)
    s1, s2 = np.zeros_like(params), np.zeros_like(params)
    record = _engine.OptimizerRecord("adam", 0.01, weight_decay=0.05, max_grad_norm=0.5,
                                     schedule="cosine", warmup_steps=2,
                                     total_steps=epochs * -(-len(Y) // batch))
    work = np.empty(spec.train_workspace_size(batch, True, True, True), dtype=dtype)
    losses = [_engine.train_epoch(spec, params, grads, s1, s2, _engine.InputMatrix(X), Y, None,
                                  order, batch, record, 1e-3, 1.0, work, n_threads, loss,
                                  dropout) for _ in range(epochs)]
    return params, losses


@pytest.mark.parametrize("sizes, batch, sparse",
                         [([40, 96, 64, 5], 50, False), ([32, 128, 4], 128, False),
                          ([32, 128, 4], 128, True), ([400, 128, 128, 5], 100, False),
                          ([400, 128, 128, 5], 100, True)],
                         ids=["row-split", "data-parallel", "data-parallel-shape-csr",
                              "kernel-sizes", "kernel-sizes-csr"])
@pytest.mark.parametrize("activation", ["gelu", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_option_gives_the_same_weights_on_1_to_3_threads(sizes, batch, sparse,
                                                               activation, dtype):
    # bit for bit: every BLAS call's shape is fixed by the shapes (the blocks),
    # and clipping's norm is summed over fixed parts in a fixed order. The
    # 400-128-128 network takes another OpenBLAS kernel for half a batch of
    # 100 on SkylakeX (see test_golden's kernelsizes fits)
    import scipy.sparse as sp

    from fastbp._network import Network

    rng = np.random.RandomState(0)
    net = Network(sizes, activation, "softmax", dtype)
    net.init_glorot(rng, activation)
    n = 400
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    if sparse:
        X = sp.random(n, sizes[0], density=0.05, format="csr", random_state=rng, dtype=dtype)
    Y = np.zeros((n, sizes[-1]), dtype=dtype)
    Y[np.arange(n), rng.randint(0, sizes[-1], n)] = 1
    order = rng.permutation(n).astype(np.intp)
    dropout = _engine.DropoutRecord([0.2] * (len(sizes) - 2), 2024)
    loss = _engine.LossRecord("log_loss", "softmax", label_smoothing=0.1)
    runs = [_engine_epochs(net.spec, net.params, X, Y, order, batch, t, dropout, loss,
                           dtype=dtype) for t in (1, 2, 3)]
    assert not np.array_equal(runs[0][0], net.params)
    for params, losses in runs[1:]:
        np.testing.assert_array_equal(params, runs[0][0])
        assert losses == runs[0][1]


def test_the_same_seed_gives_the_same_model_and_dropout_draws_only_when_on():
    X, y = problem("multiclass", n=200)
    params = dict(hidden_layer_sizes=(16, 8), activation="mish", dropout=[0.2, 0.4],
                  weight_decay=0.01, learning_rate="cosine", warmup=0.1, max_grad_norm=1.0,
                  label_smoothing=0.1, max_iter=4, random_state=11)
    a = quiet_fit(fastbp.MLPClassifier(**params), X, y)
    b = quiet_fit(fastbp.MLPClassifier(**params), X, y)
    np.testing.assert_array_equal(a._net.params, b._net.params)
    assert a.loss_curve_ == b.loss_curve_
    # dropout draws its seed from the fit's random state (two draws); without it,
    # nothing more is drawn than scikit-learn draws (no shuffle: the draws are
    # the initialisation's and these)
    common = dict(hidden_layer_sizes=(16, 8), max_iter=2, random_state=11, shuffle=False)
    off = quiet_fit(fastbp.MLPClassifier(**common), X, y)
    zero = quiet_fit(fastbp.MLPClassifier(dropout=0.0, **common), X, y)
    on = quiet_fit(fastbp.MLPClassifier(dropout=0.1, **common), X, y)
    position = lambda m: m._random_state.get_state()[2]  # noqa: E731
    assert position(zero) == position(off) and position(on) == position(off) + 2
    np.testing.assert_array_equal(zero._net.params, off._net.params)
    assert not np.array_equal(on._net.params, off._net.params)


# ---------------------------------------------------------------------------
# schedules, weight decay, clipping, label smoothing: what each does
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["constant", "cosine", "flat_cosine"])
@pytest.mark.parametrize("warmup_steps", [0, 7])
def test_schedule_factors(kind, warmup_steps):
    record = _engine.OptimizerRecord("adam", 0.5, schedule=kind, warmup_steps=warmup_steps,
                                     total_steps=40)
    rates = [record.step_learning_rate(t) for t in range(1, 46)]
    expected = [0.5 * ref.schedule_factor(t, kind, warmup_steps, 40) for t in range(1, 46)]
    np.testing.assert_allclose(rates, expected, rtol=1e-15, atol=1e-17)
    if warmup_steps:
        np.testing.assert_allclose(rates[:warmup_steps],
                                   0.5 * np.arange(1, warmup_steps + 1) / warmup_steps)
    if kind == "cosine":  # from the rate down to 0 at the end of the fit
        assert rates[warmup_steps] == 0.5 and rates[39] < 0.01 and rates[44] == 0
        assert np.all(np.diff(rates[warmup_steps:]) <= 0)
    if kind == "flat_cosine":  # flat for the first half of the steps after the warm-up
        assert rates[warmup_steps] == rates[warmup_steps + 15] == 0.5 and rates[39] < 0.01
        assert rates[44] == 0


def test_per_step_schedules_follow_max_iter_and_keep_the_per_epoch_ones():
    X, y = problem("binary", n=100)
    model = quiet_fit(fastbp.MLPClassifier((5,), solver="sgd", learning_rate="cosine",
                                           max_iter=10, batch_size=25, tol=0,
                                           n_iter_no_change=100, random_state=0), X, y)
    assert model._optimizer.total_steps == 40 and model._optimizer.t == 40
    # the per-epoch schedules still move between epochs (invscaling after each)
    inv = quiet_fit(fastbp.MLPClassifier((5,), solver="sgd", learning_rate="invscaling",
                                         warmup=0.5, max_iter=3, random_state=0), X, y)
    assert inv._optimizer.learning_rate == pytest.approx(0.001 / 301 ** 0.5)


def test_weight_decay_leaves_the_intercepts_alone():
    # no data term (zero targets, zero weights into the output): the decay is all
    # that moves the weights, and the intercepts do not move at all
    X = np.zeros((20, 3))
    y = np.zeros(20)
    model = fastbp.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, alpha=0.0,
                                learning_rate_init=0.1, weight_decay=0.5, max_iter=1,
                                batch_size=20, random_state=0)
    quiet_fit(model, X, y)
    model.coefs_[1][...] = 0.0
    model.intercepts_[1][...] = 0.0
    before = [c.copy() for c in model.coefs_], [b.copy() for b in model.intercepts_]
    model.partial_fit(X, y)  # one step: w *= 1 - 0.1 * 0.5
    for c, c0 in zip(model.coefs_, before[0]):
        np.testing.assert_allclose(c, c0 * 0.95, rtol=1e-15)
    for b, b0 in zip(model.intercepts_, before[1]):
        np.testing.assert_array_equal(b, b0)


def test_clipping_bounds_each_step():
    # plain SGD without momentum: each step moves the parameters by lr * the
    # clipped gradient, whose norm is at most max_grad_norm
    X, y = problem("regression", n=64)
    model = fastbp.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0,
                                learning_rate_init=0.1, max_grad_norm=0.01, batch_size=64,
                                max_iter=1, random_state=0)
    quiet_fit(model, X, y * 100)  # large gradients
    before = model._net.params.copy()
    _, cg, ig = model.loss_and_gradients(X, y * 100)
    norm = np.sqrt(sum((g ** 2).sum() for g in cg + ig))
    assert norm > 1.0
    model.partial_fit(X, y * 100)
    step = np.linalg.norm(model._net.params - before)
    assert step == pytest.approx(0.1 * 0.01 * norm / (norm + 1e-6), rel=1e-9)


def test_label_smoothing_is_pytorch_s():
    # the smoothed log-loss at given weights: targets y (1 - e) + e / K
    X, y = problem("multiclass", n=30)
    for task, y_task in (("multiclass", y), ("binary", (y == 1).astype(int)),
                         ("multilabel", np.c_[y == 0, y == 1].astype(int))):
        model = quiet_fit(fastbp.MLPClassifier((4,), max_iter=1, random_state=0,
                                               label_smoothing=0.2, alpha=0.0), X, y_task)
        _with_random_weights(model, scale=3.0)
        layers = [(W, b) for W, b in zip(model.coefs_, model.intercepts_)]
        data, _, _ = ref.loss_and_gradients(layers, X, _encoded(model, y_task), np.ones(30), 0.0,
                                            "relu", model.out_activation_, "log_loss",
                                            dict(label_smoothing=0.2))
        assert model.loss_and_gradients(X, y_task)[0] == pytest.approx(data / 30, rel=1e-12)


# ---------------------------------------------------------------------------
# regression losses
# ---------------------------------------------------------------------------

def test_quantiles_give_prediction_intervals_and_report_the_pinball_loss():
    from sklearn.metrics import mean_pinball_loss

    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(3000, 1))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.3, size=3000)
    model = fastbp.MLPRegressor(hidden_layer_sizes=(32,), loss="quantile",
                                quantile=[0.1, 0.5, 0.9], max_iter=60, learning_rate_init=0.01,
                                random_state=0)
    quiet_fit(model, X[:2000], y[:2000], X_val=X[2000:], y_val=y[2000:])
    pred = model.predict(X[2000:])
    assert pred.shape == (1000, 3)
    coverage = [(y[2000:] <= pred[:, j]).mean() for j in range(3)]
    assert abs(coverage[0] - 0.1) < 0.04 and abs(coverage[1] - 0.5) < 0.06
    assert abs(coverage[2] - 0.9) < 0.04
    # the validation loss is scikit-learn's mean_pinball_loss, averaged over quantiles
    pinball = np.mean([mean_pinball_loss(y[2000:], pred[:, j], alpha=q)
                       for j, q in enumerate([0.1, 0.5, 0.9])])
    assert model.validation_loss_curve_[-1] == pytest.approx(pinball, rel=1e-10)
    assert len(model.validation_scores_) == model.n_iter_
    # a single quantile predicts it for every target column
    single = quiet_fit(fastbp.MLPRegressor(hidden_layer_sizes=(8,), loss="quantile",
                                           quantile=0.8, max_iter=5, random_state=0),
                       X[:200], np.c_[y[:200], -y[:200]])
    assert single.predict(X[:5]).shape == (5, 2)


@pytest.mark.parametrize("loss, metric", [("absolute_error", "mean_absolute_error"),
                                          ("huber", None), ("squared_error", None)])
def test_regression_losses_report_their_mean(loss, metric):
    import sklearn.metrics

    X, y = problem("regression", n=300)
    model = fastbp.MLPRegressor(hidden_layer_sizes=(8,), loss=loss, huber_delta=0.4,
                                max_iter=5, random_state=0)
    quiet_fit(model, X[:200], y[:200], X_val=X[200:], y_val=y[200:])
    error = model.predict(X[200:]) - y[200:]
    if metric is not None:
        expected = getattr(sklearn.metrics, metric)(y[200:], model.predict(X[200:]))
    elif loss == "huber":  # PyTorch's HuberLoss(delta=0.4), mean over samples
        a = np.abs(error)
        expected = np.mean(np.where(a <= 0.4, 0.5 * a * a, 0.4 * (a - 0.2)))
    else:
        expected = 0.5 * np.mean(error ** 2)
    assert model.validation_loss_curve_[-1] == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------
# validation data given to fit
# ---------------------------------------------------------------------------

def test_x_val_replaces_early_stopping_s_split_and_restores_the_best_epoch():
    X, y = problem("multiclass", n=400)
    model = fastbp.MLPClassifier((16,), early_stopping=True, max_iter=200,
                                 n_iter_no_change=5, random_state=0, learning_rate_init=0.05)
    quiet_fit(model, X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    # every training row trained (no split) and the scores are X_val's
    assert model.t_ == 300 * model.n_iter_
    assert len(model.validation_scores_) == len(model.validation_loss_curve_) == model.n_iter_
    assert model.n_iter_ < 200  # it stopped
    best = int(np.argmax(model.validation_scores_))
    assert model.best_validation_score_ == model.validation_scores_[best]
    # the best epoch's weights are the model's
    assert model.score(X[300:], y[300:]) == model.best_validation_score_


def test_scoring_loss_monitors_the_validation_loss():
    X, y = problem("multiclass", n=400)
    model = fastbp.MLPClassifier((16,), early_stopping=True, scoring="loss", max_iter=200,
                                 n_iter_no_change=4, random_state=0, learning_rate_init=0.05)
    quiet_fit(model, X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    np.testing.assert_array_equal(model.validation_scores_,
                                  -np.asarray(model.validation_loss_curve_))
    best = int(np.argmax(model.validation_scores_))
    assert model.best_validation_score_ == -min(model.validation_loss_curve_)
    from fastbp import _losses

    P = model.predict_proba(X[300:])
    Y = model._label_encoding.transform(y[300:], np.float64)
    restored = _losses.validation_loss(P, Y, None, "log_loss", _losses.LossSettings(),
                                       "softmax", 1.0, np.finfo(float).eps)
    assert restored == pytest.approx(model.validation_loss_curve_[best], rel=1e-12)


def test_x_val_without_early_stopping_records_the_curves_and_changes_nothing_else():
    X, y = problem("binary", n=300)
    params = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=0, dropout=0.1,
                  learning_rate="cosine")
    plain = quiet_fit(fastbp.MLPClassifier(**params), X[:200], y[:200])
    watched = quiet_fit(fastbp.MLPClassifier(**params), X[:200], y[:200], X_val=X[200:],
                        y_val=y[200:])
    np.testing.assert_array_equal(plain._net.params, watched._net.params)
    assert plain.loss_curve_ == watched.loss_curve_ and plain.n_iter_ == watched.n_iter_
    assert plain.validation_scores_ is None and plain.validation_loss_curve_ is None
    assert len(watched.validation_scores_) == len(watched.validation_loss_curve_) == 15
    assert watched.validation_scores_[-1] == watched.score(X[200:], y[200:])
    assert watched.best_validation_score_ is None and watched.best_loss_ == plain.best_loss_


def test_x_val_is_weighted_and_class_weighted():
    X, y = problem("binary", n=300)
    sw_val = np.random.RandomState(1).uniform(0.1, 3, 100)
    model = quiet_fit(fastbp.MLPClassifier((8,), max_iter=3, random_state=0,
                                           class_weight={0: 1.0, 1: 3.0}),
                      X[:200], y[:200], X_val=X[200:], y_val=y[200:],
                      sample_weight_val=sw_val)
    weights = sw_val * np.where(y[200:] == 1, 3.0, 1.0)
    assert model.validation_scores_[-1] == pytest.approx(
        model.score(X[200:], y[200:], sample_weight=weights))


@pytest.mark.parametrize("kwargs, message", [
    (dict(X_val=np.zeros((5, 6))), "X_val and y_val must be given together"),
    (dict(y_val=np.zeros(5)), "X_val and y_val must be given together"),
    (dict(sample_weight_val=np.ones(5)), "X_val and y_val must be given together"),
    (dict(X_val=np.zeros((5, 4)), y_val=np.zeros(5)),
     r"Invalid validation data \(X_val, y_val, sample_weight_val\): X has 4 features, but "
     "MLPClassifier is expecting 6 features as input."),
    (dict(X_val=np.zeros((5, 6)), y_val=np.array([0, 1, 5, 0, 1])),
     r"Invalid validation data \(X_val, y_val, sample_weight_val\): "),
    (dict(X_val=np.zeros((5, 6)), y_val=np.zeros(5, int), sample_weight_val=np.ones(3)),
     r"Invalid validation data .*sample_weight.shape == \(3,\), expected \(5,\)"),
])
def test_invalid_validation_data(kwargs, message):
    X, y = problem("binary", n=50)
    with pytest.raises(ValueError, match=message):
        fastbp.MLPClassifier((3,), max_iter=2).fit(X, y, **kwargs)


def test_x_val_needs_a_stochastic_solver():
    X, y = problem("binary", n=50)
    with pytest.raises(ValueError, match="X_val applies to solver='sgd' or 'adam'.*"
                                         "solver='lbfgs' has no epochs to validate"):
        fastbp.MLPClassifier((3,), solver="lbfgs").fit(X, y, X_val=X, y_val=y)


# ---------------------------------------------------------------------------
# parameters: validation messages
# ---------------------------------------------------------------------------

INVALID = [
    ("MLPClassifier", dict(dropout=1.0), InvalidParameterError,
     "The 'dropout' parameter of MLPClassifier must be a float in the range [0.0, 1.0) or a "
     "non-empty sequence of floats in the range [0.0, 1.0). Got 1.0 instead."),
    ("MLPClassifier", dict(dropout=[0.1, -0.1]), InvalidParameterError,
     "The 'dropout' parameter of MLPClassifier must be a float in the range [0.0, 1.0) or a "
     "non-empty sequence of floats in the range [0.0, 1.0). Got [0.1, -0.1] instead."),
    ("MLPClassifier", dict(dropout=[0.1, 0.2]), ValueError,
     "dropout=[0.1, 0.2] gives 2 rate(s), but hidden_layer_sizes=(3,) has 1 hidden layer(s): "
     "give one rate per hidden layer, or one float for all of them."),
    ("MLPClassifier", dict(weight_decay=-1.0), InvalidParameterError,
     "The 'weight_decay' parameter of MLPClassifier must be a float in the range [0.0, inf). "
     "Got -1.0 instead."),
    ("MLPClassifier", dict(weight_decay=1000.0), ValueError,
     "weight_decay=1000.0 with learning_rate_init=0.001 multiplies the weights by 1 - "
     "learning_rate * weight_decay = 0 at every step, which zeroes or flips them: "
     "weight_decay must be below 1 / learning_rate_init = 1000."),
    ("MLPClassifier", dict(warmup=1.0), InvalidParameterError,
     "The 'warmup' parameter of MLPClassifier must be a float in the range [0.0, 1.0). Got "
     "1.0 instead."),
    ("MLPClassifier", dict(max_grad_norm=0.0), InvalidParameterError,
     "The 'max_grad_norm' parameter of MLPClassifier must be a float in the range (0.0, inf) "
     "or None. Got 0.0 instead."),
    ("MLPClassifier", dict(label_smoothing=1.0), InvalidParameterError,
     "The 'label_smoothing' parameter of MLPClassifier must be a float in the range "
     "[0.0, 1.0). Got 1.0 instead."),
    ("MLPClassifier", dict(scoring="accuracy"), InvalidParameterError,
     "The 'scoring' parameter of MLPClassifier must be a str among {'loss'} or None. Got "
     "'accuracy' instead."),
    ("MLPClassifier", dict(learning_rate="step"), InvalidParameterError,
     "The 'learning_rate' parameter of MLPClassifier must be a str among {'adaptive', "
     "'constant', 'cosine', 'flat_cosine', 'invscaling'}. Got 'step' instead."),
    ("MLPRegressor", dict(huber_delta=0.0), InvalidParameterError,
     "The 'huber_delta' parameter of MLPRegressor must be a float in the range (0.0, inf). "
     "Got 0.0 instead."),
    ("MLPRegressor", dict(quantile=1.5), InvalidParameterError,
     "The 'quantile' parameter of MLPRegressor must be a float in the range [0.0, 1.0] or a "
     "non-empty sequence of floats in the range [0.0, 1.0]. Got 1.5 instead."),
    ("MLPRegressor", dict(quantile=[]), InvalidParameterError,
     "The 'quantile' parameter of MLPRegressor must be a float in the range [0.0, 1.0] or a "
     "non-empty sequence of floats in the range [0.0, 1.0]. Got [] instead."),
    ("MLP", dict(loss="squared_error", label_smoothing=0.1), ValueError,
     "label_smoothing=0.1 applies to classification (loss='log_loss'), but this MLP has "
     "loss='squared_error'; set label_smoothing=0.0."),
]


@pytest.mark.parametrize("estimator, params, error, message", INVALID,
                         ids=[f"{e}-{p}" for e, p, _, _ in INVALID])
def test_invalid_training_options(estimator, params, error, message):
    import re

    X, y = problem("binary", n=30)
    model = getattr(fastbp, estimator)(hidden_layer_sizes=(3,), **params)
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        model.fit(X, y)


@pytest.mark.parametrize("option", [dict(dropout=0.2), dict(weight_decay=0.1),
                                    dict(max_grad_norm=1.0)])
def test_options_of_the_stochastic_solvers_refuse_lbfgs(option):
    X, y = problem("binary", n=30)
    name, value = next(iter(option.items()))
    with pytest.raises(ValueError, match=f"^{name}={value!r} applies to the stochastic "
                                         "solvers: solver='sgd' or 'adam'"):
        fastbp.MLPClassifier((3,), solver="lbfgs", **option).fit(X, y)


def test_several_quantiles_need_one_target():
    X, y = problem("regression", n=30)
    with pytest.raises(ValueError, match=r"loss='quantile' with quantile=\[0.1, 0.9\] predicts "
                                         "2 quantiles of one target, but y has 2 columns"):
        fastbp.MLPRegressor(loss="quantile", quantile=[0.1, 0.9]).fit(X, np.c_[y, y])


def test_lbfgs_trains_the_new_losses_and_label_smoothing():
    X, y = problem("regression", n=100)
    for loss in ("huber", "absolute_error", "quantile"):
        model = quiet_fit(fastbp.MLPRegressor(hidden_layer_sizes=(6,), loss=loss,
                                              solver="lbfgs", max_iter=50, random_state=0),
                          X, y)
        assert np.isfinite(model.loss_) and model.score(X, y) > 0.3
    Xc, yc = problem("multiclass", n=100)
    model = quiet_fit(fastbp.MLPClassifier((6,), solver="lbfgs", label_smoothing=0.1,
                                           max_iter=50, random_state=0), Xc, yc)
    assert model.loss_ == pytest.approx(model.loss_and_gradients(Xc, yc)[0], rel=1e-6)


# ---------------------------------------------------------------------------
# extremes: finite losses or a clear error, never NaN weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["gelu", "mish", "softplus", "silu", "selu"])
def test_huge_pre_activations_stay_finite(activation, dtype):
    X, y = problem("multiclass", n=40)
    X = X.astype(dtype)
    model = quiet_fit(fastbp.MLPClassifier((6,), activation=activation, max_iter=1,
                                           random_state=0, label_smoothing=0.1), X, y)
    model.coefs_[0][...] = np.where(np.arange(6) % 2, 1e4, -1e4).astype(dtype)
    model.coefs_[0][1:] = 0
    X[:, 0] = np.sign(X[:, 0])  # pre-activations +-1e4
    model.coefs_[1][...] = 1e2  # logits up to about +-1e6 (gelu, softplus, ...)
    loss, cg, ig = model.loss_and_gradients(X, y)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in cg + ig)
    assert np.isfinite(model.predict_proba(X)).all()
    model.set_params(warm_start=True, max_iter=2, learning_rate_init=1e-6)
    quiet_fit(model, X, y)
    assert np.isfinite(model._net.params).all() and np.isfinite(model.loss_)


@pytest.mark.parametrize("params", [
    dict(dropout=0.99), dict(weight_decay=999.0), dict(weight_decay=999.0, solver="sgd"),
    dict(max_grad_norm=1e-12), dict(max_grad_norm=1e12), dict(label_smoothing=0.999),
    dict(warmup=0.999, learning_rate="cosine"),
], ids=str)
def test_extreme_options_train_to_finite_weights(params):
    X, y = problem("multiclass", n=120)
    model = quiet_fit(fastbp.MLPClassifier((8, 8), max_iter=5, random_state=0, **params), X, y)
    assert np.isfinite(model._net.params).all() and np.isfinite(model.loss_curve_).all()


@pytest.mark.parametrize("params", [
    dict(loss="quantile", quantile=0.0), dict(loss="quantile", quantile=1.0),
    dict(loss="quantile", quantile=[0.0, 1.0]), dict(loss="huber", huber_delta=1e-12),
    dict(loss="huber", huber_delta=1e12), dict(loss="absolute_error"),
], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_regression_settings_train_to_finite_weights(params, dtype):
    X, y = problem("regression", n=120)
    model = quiet_fit(fastbp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0,
                                          learning_rate_init=0.01, **params), X.astype(dtype), y)
    assert np.isfinite(model._net.params).all() and np.isfinite(model.loss_curve_).all()
    if params.get("quantile") == [0.0, 1.0]:  # pushed below, and above, the targets
        pred = model.predict(X.astype(dtype))
        assert (pred[:, 0] < pred[:, 1]).mean() > 0.9
        assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


# ---------------------------------------------------------------------------
# the documentation's examples run and show what they say
# ---------------------------------------------------------------------------

def test_training_doc_modern_section_runs_as_written(capsys):
    import pathlib
    import re

    pytest.importorskip("sklearn")
    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "training.md"
    section = doc.read_text(encoding="utf-8").split("\n## Modern training\n")[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 3
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)  # max_iter=30 reached
        for block in blocks:
            exec(compile(block, str(doc), "exec"), namespace)
    clf, X_val, y_val = namespace["clf"], namespace["X_val"], namespace["y_val"]
    assert clf.n_iter_ < 100 and clf.score(X_val, y_val) > 0.9
    # early stopping on the loss kept the best epoch's weights
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_validation_score_ == -min(clf.validation_loss_curve_)
    low, high = namespace["low"], namespace["high"]
    y_reg = namespace["y_reg"]
    inside = np.mean((y_reg >= low) & (y_reg <= high))
    assert 0.85 < inside < 0.95  # "about 0.9 of the rows inside"
    assert namespace["robust"].score(namespace["X_reg"], y_reg) > 0.6
    watched = namespace["watched"]
    assert len(watched.validation_loss_curve_) == 30 == watched.n_iter_
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(clf.n_iter_) and printed[3] == "30"
