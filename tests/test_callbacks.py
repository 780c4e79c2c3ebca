"""Seeing training: verbose output, callbacks, the progress bar and
validation_loss_curve_."""

import io
import re
import warnings

import numpy as np
import pytest
from conftest import hide_module

import fastbp
from fastbp import MLP, MLPClassifier, MLPRegressor, _training
from fastbp.callbacks import Callback, EpochInfo, History, ProgressBar, StopTraining

NUMBER = re.compile(r"-?\d+\.\d+")


def _binary(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = (X[:, 0] + 0.5 * rng.randn(n) > 0).astype(int)
    return X, y


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ---------------------------------------------------------------------------
# verbose
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    # early stopping, adaptive schedule: "Validation score", "Setting learning
    # rate to", "Learning rate too small. Stopping." lines
    dict(solver="sgd", learning_rate="adaptive", early_stopping=True, n_iter_no_change=2,
         max_iter=60, learning_rate_init=0.5),
    # training-loss stopping with Adam
    dict(solver="adam", max_iter=40, n_iter_no_change=3, tol=1e-2),
])
def test_verbose_prints_what_sklearn_prints(params, capsys):
    sk_nn = pytest.importorskip("sklearn.neural_network")
    X, y = _binary()
    _quiet_fit(sk_nn.MLPClassifier((5,), random_state=1, verbose=True, **params), X, y)
    expected = capsys.readouterr().out
    _quiet_fit(MLPClassifier((5,), random_state=1, verbose=True, **params), X, y)
    got = capsys.readouterr().out
    assert "Iteration 1, loss = " in got
    # same lines, same words; numbers equal to the printed precision (the
    # models agree to ~1e-15, a last-digit rounding flip is not a regression)
    assert NUMBER.sub("#", got) == NUMBER.sub("#", expected)
    np.testing.assert_allclose([float(v) for v in NUMBER.findall(got)],
                               [float(v) for v in NUMBER.findall(expected)], atol=2e-8)


def test_verbose_lbfgs_prints_each_iteration_loss(capsys):
    X, _ = _binary()
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2]])  # two outputs: loss_ != objective
    reg = _quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=7,
                                  random_state=0, verbose=True), X, Y)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(",")[0] for ln in lines] == [f"Iteration {i}" for i in range(1, 8)]
    assert reg.n_iter_ == 7
    assert lines[-1] == "Iteration 7, loss = %.8f" % reg.loss_


def test_verbose_off_prints_nothing(capsys):
    X, y = _binary()
    _quiet_fit(MLPClassifier((4,), max_iter=5, random_state=0, early_stopping=True), X, y)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------

def test_callback_sees_every_epoch_figures():
    X, y = _binary(200)
    seen = []

    def record(info):
        assert isinstance(info, EpochInfo)
        # the estimator holds the weights after this epoch
        seen.append((info, info.estimator.coefs_[0].copy(), info.estimator.n_iter_))

    clf = _quiet_fit(MLPClassifier((6,), solver="sgd", learning_rate="invscaling",
                                   learning_rate_init=0.1, max_iter=12, random_state=0,
                                   early_stopping=True, n_iter_no_change=50, callbacks=record),
                     X, y)
    assert [s[0].epoch for s in seen] == list(range(1, clf.n_iter_ + 1)) == \
        [s[2] for s in seen]
    assert [s[0].loss for s in seen] == clf.loss_curve_
    assert [s[0].validation_score for s in seen] == clf.validation_scores_
    assert [s[0].validation_loss for s in seen] == clf.validation_loss_curve_
    assert all(s[0].estimator is clf for s in seen)
    # invscaling: the rate used in epoch k is lr0 / (t_{k-1} + 1) ** power_t
    n_train = 200 - int(np.ceil(0.1 * 200))
    t_before = np.arange(clf.n_iter_) * n_train
    expected_lr = [0.1] + list(0.1 / (t_before[1:] + 1) ** 0.5)
    np.testing.assert_allclose([s[0].learning_rate for s in seen], expected_lr, rtol=1e-12)
    elapsed = [s[0].elapsed for s in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
    # weights change between epochs, so the callback saw live weights
    assert not np.array_equal(seen[0][1], seen[-1][1])


def test_callbacks_do_not_change_training():
    X, y = _binary(150)
    a = _quiet_fit(MLPClassifier((5,), max_iter=15, random_state=3), X, y)
    b = _quiet_fit(MLPClassifier((5,), max_iter=15, random_state=3,
                                 callbacks=[History(), lambda info: None]), X, y)
    assert a.loss_curve_ == b.loss_curve_
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


@pytest.mark.parametrize("how", ["return", "raise"])
def test_callback_stops_training(how):
    X, y = _binary()

    def stop_at_3(info):
        if info.epoch == 3:
            if how == "raise":
                raise StopTraining
            return True
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: stopping was asked for
        clf = MLPClassifier((4,), max_iter=50, random_state=0, callbacks=stop_at_3).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3


def test_stop_keeps_best_weights_with_early_stopping():
    X, y = _binary(200)
    snapshots = {}

    def stop_at_6(info):
        snapshots[info.epoch] = [c.copy() for c in info.estimator.coefs_]
        return info.epoch == 6

    clf = MLPClassifier((4,), solver="sgd", learning_rate_init=0.05, max_iter=50,
                        random_state=0, early_stopping=True, callbacks=stop_at_6).fit(X, y)
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    assert clf.n_iter_ == 6
    for c, s in zip(clf.coefs_, snapshots[best_epoch]):
        np.testing.assert_array_equal(c, s)


def test_all_callbacks_run_even_after_one_asks_to_stop():
    X, y = _binary()
    history = History()
    clf = MLPClassifier((4,), max_iter=50, random_state=0,
                        callbacks=[lambda info: True, history]).fit(X, y)
    assert clf.n_iter_ == 1 and history.epoch == [1]


def test_callback_error_propagates_and_fit_is_undone():
    X, y = _binary()

    def broken(info):
        if info.epoch == 2:
            raise RuntimeError("callback bug")

    clf = MLPClassifier((4,), max_iter=10, random_state=0, callbacks=broken)
    with pytest.raises(RuntimeError, match="callback bug"):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")


class _Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_begin(self, estimator, max_epochs):
        self.events.append(("begin", max_epochs))

    def on_epoch_end(self, info):
        self.events.append(("epoch", info.epoch))

    def on_fit_end(self, estimator):
        self.events.append(("end", estimator.n_iter_))


def test_callback_object_lifecycle_fit_and_partial_fit():
    X, y = _binary()
    rec = _Recorder()
    clf = _quiet_fit(MLPClassifier((4,), max_iter=3, random_state=0, callbacks=rec), X, y)
    assert rec.events == [("begin", 3), ("epoch", 1), ("epoch", 2), ("epoch", 3), ("end", 3)]
    rec.events.clear()
    clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert rec.events == [("begin", 1), ("epoch", 1), ("end", 1)] * 2


def test_fit_end_runs_when_fit_fails():
    X, y = _binary()
    rec = _Recorder()
    clf = MLPClassifier((4,), max_iter=3, random_state=0, callbacks=[rec, _boom])
    with pytest.raises(ZeroDivisionError):
        clf.fit(X, y)
    assert rec.events[0] == ("begin", 3) and rec.events[-1][0] == "end"


def _boom(info):
    return 1 / 0


def test_lbfgs_callbacks_per_iteration_and_stop():
    X, y = _binary(150)
    losses_at_iterate = []

    def check_iterate(info):
        # the estimator holds the accepted iterate, not a line-search trial point
        losses_at_iterate.append(info.estimator.loss_and_gradients(X, y)[0])
        return info.epoch == 4

    history = History()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = MLPClassifier((5,), solver="lbfgs", max_iter=100, random_state=0,
                            callbacks=[history, check_iterate]).fit(X, y)
    assert clf.n_iter_ == 4 and history.epoch == [1, 2, 3, 4]
    np.testing.assert_allclose(history.loss, losses_at_iterate, rtol=1e-12)
    assert history.loss[-1] == pytest.approx(clf.loss_, rel=1e-12)
    assert history.learning_rate == [None] * 4 and history.validation_score == [None] * 4
    assert all(b < a for a, b in zip(history.loss, history.loss[1:]))


def test_history_accumulates_fits_and_repr():
    X, y = _binary()
    h = History()
    clf = MLPClassifier((3,), max_iter=2, random_state=0, callbacks=h)
    _quiet_fit(clf, X, y)
    _quiet_fit(clf, X, y)
    assert h.fit_starts == [0, 2] and h.epoch == [1, 2, 1, 2]
    assert repr(h) == "History(epochs=4)"


@pytest.mark.parametrize("bad", [3, [History(), "tqdm"]])
def test_invalid_callbacks_parameter(bad):
    X, _ = _binary()
    with pytest.raises(ValueError, match="The 'callbacks' parameter of MLPRegressor must be "
                       "None, a callback or a list of callbacks"):
        MLPRegressor(callbacks=bad).fit(X, X[:, 0])


def test_callbacks_with_clone_pipeline_and_grid_search():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _binary(120)
    history = History()
    clf = MLPClassifier((4,), max_iter=4, random_state=0, callbacks=[history])
    cloned = clone(clf)
    assert isinstance(cloned.callbacks[0], History) and cloned.callbacks[0] is not history
    search = GridSearchCV(make_pipeline(StandardScaler(), clf),
                          {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2)
    _quiet_fit(search, X, y)
    # each clone trained with its own copy; the refit model's copy holds its epochs
    refit_history = search.best_estimator_[-1].callbacks[0]
    assert refit_history.epoch == [1, 2, 3, 4]
    assert history.epoch == []


# ---------------------------------------------------------------------------
# progress bar
# ---------------------------------------------------------------------------

def test_progress_bar_with_tqdm():
    pytest.importorskip("tqdm")
    X, y = _binary()
    out = io.StringIO()
    _quiet_fit(MLPClassifier((4,), max_iter=7, random_state=0,
                             callbacks=ProgressBar(file=out, mininterval=0)), X, y)
    text = out.getvalue()
    assert "MLPClassifier" in text and "7/7" in text and "loss=" in text
    assert text.endswith("\n")


def test_progress_bar_plain_text_without_tqdm(monkeypatch):
    hide_module(monkeypatch, "tqdm")
    X, y = _binary()
    out = io.StringIO()
    bar = ProgressBar("training", file=out, mininterval=0)
    clf = _quiet_fit(MLPClassifier((4,), max_iter=6, random_state=0, early_stopping=True,
                                   n_iter_no_change=50, callbacks=bar), X, y)
    frames = out.getvalue().split("\r")
    assert frames[1].startswith("training:   0%|") and "0/6 epochs" in frames[1]
    last = frames[-1]
    assert "100%" in last and "6/6 epochs" in last and last.endswith("\n")
    assert f"loss={clf.loss_curve_[-1]:.4g}" in last
    assert f"val_score={clf.validation_scores_[-1]:.4g}" in last
    with pytest.raises(ImportError, match="pip install tqdm"):
        ProgressBar(use_tqdm=True, file=out).on_fit_begin(clf, 10)


def test_progress_bar_quiet_for_partial_fit_and_cloneable():
    X, y = _binary()
    out = io.StringIO()
    bar = ProgressBar(file=out, use_tqdm=False)
    clf = MLPClassifier((4,), random_state=0, callbacks=bar)
    clf.partial_fit(X, y, classes=[0, 1])
    assert out.getvalue() == ""
    import copy
    bar.on_fit_begin(clf, 5)
    copied = copy.deepcopy(bar)  # an open bar is not copied along
    assert copied._bar is None and bar._bar is not None
    bar.on_fit_end(clf)


# ---------------------------------------------------------------------------
# validation_loss_curve_
# ---------------------------------------------------------------------------

def _record_split(monkeypatch):
    """Capture the held-out indices early stopping draws."""
    split = {}
    real = _training.train_test_split_indices

    def recording(*args, **kwargs):
        train, val = real(*args, **kwargs)
        split["val"] = val
        return train, val

    monkeypatch.setattr(_training, "train_test_split_indices", recording)
    return split


@pytest.mark.parametrize("n_classes, dtype", [(3, np.float64), (2, np.float64),
                                               (2, np.float32)])
def test_validation_loss_curve_is_log_loss_of_held_out_data(monkeypatch, n_classes, dtype):
    metrics = pytest.importorskip("sklearn.metrics")
    split = _record_split(monkeypatch)
    rng = np.random.RandomState(1)
    X = rng.randn(240, 4).astype(dtype)
    y = np.digitize(X[:, 0] + 0.3 * rng.randn(240), [-0.5, 0.5][:n_classes - 1])
    sw = rng.uniform(0.5, 2.0, size=240)
    probas = []
    clf = MLPClassifier((8,), max_iter=8, random_state=0, early_stopping=True,
                        n_iter_no_change=50,
                        callbacks=lambda info: probas.append(
                            info.estimator.predict_proba(X[split["val"]])))
    _quiet_fit(clf, X, y, sample_weight=sw)
    val = split["val"]
    expected = [metrics.log_loss(y[val], p, sample_weight=sw[val], labels=clf.classes_)
                for p in probas]
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == 8
    np.testing.assert_allclose(clf.validation_loss_curve_, expected,
                               rtol=1e-10 if dtype == np.float64 else 1e-5)
    # without the L2 penalty the held-out loss sits near the training loss
    assert abs(clf.validation_loss_curve_[0] - clf.loss_curve_[0]) < 0.5


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_validation_loss_curve_regression_numpy(monkeypatch, loss):
    split = _record_split(monkeypatch)
    rng = np.random.RandomState(2)
    X = rng.uniform(-1, 1, size=(200, 3))
    Y = np.column_stack([np.exp(X[:, 0]), np.exp(X[:, 1] - X[:, 2])])
    preds = []
    reg = MLP((6,), loss=loss, max_iter=6, random_state=0, early_stopping=True,
              n_iter_no_change=50, learning_rate_init=0.01,
              callbacks=lambda info: preds.append(info.estimator.predict(X[split["val"]])))
    _quiet_fit(reg, X, Y)
    Yv = Y[split["val"]]
    if loss == "squared_error":
        # half squared error, averaged over outputs as loss_curve_ reports it
        expected = [0.5 * np.mean(np.mean((P - Yv) ** 2, axis=0)) for P in preds]
    else:
        expected = [np.mean(np.sum(Yv * np.log(Yv / P) - Yv + P, axis=1)) for P in preds]
    np.testing.assert_allclose(reg.validation_loss_curve_, expected, rtol=1e-10)


def test_validation_loss_curve_none_without_early_stopping_and_saved(tmp_path):
    X, y = _binary()
    clf = _quiet_fit(MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    assert clf.validation_loss_curve_ is None and clf.validation_scores_ is None
    es = _quiet_fit(MLPClassifier((4,), max_iter=3, random_state=0, early_stopping=True,
                                  callbacks=History()), X, y)
    es.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    assert loaded.validation_loss_curve_ == es.validation_loss_curve_
    assert loaded.callbacks is None  # code is not data: set callbacks again after load


# ---------------------------------------------------------------------------
# the README text for these features runs as written
# ---------------------------------------------------------------------------

def test_training_doc_snippets_run(tmp_path, monkeypatch):
    import pathlib

    pytest.importorskip("matplotlib")
    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "training.md"
    # this page's sections on callbacks, class weights and dask (the training
    # options' section is tests/test_training_options.py's)
    text = doc.read_text(encoding="utf-8").split("\n## Modern training\n")[0]
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)  # the plot snippet saves a PNG
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastbp.ConvergenceWarning)  # snippets stay clean
        for block in blocks[:3]:
            exec(compile(block, str(doc), "exec"), namespace)
        assert (tmp_path / "learning_curve.png").stat().st_size > 0
        assert namespace["balanced"].predict(namespace["X"]).mean() > \
            namespace["plain"].predict(namespace["X"]).mean()
        for module in ("dask.array", "distributed", "sklearn"):
            pytest.importorskip(module)
        exec(compile(blocks[3], str(doc), "exec"), namespace)
    assert namespace["accuracy"] > 0.95
    import matplotlib.pyplot as plt
    plt.close("all")


def test_module_examples():
    import doctest

    import fastbp.callbacks

    result = doctest.testmod(fastbp.callbacks, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
