"""fastbp on Dask: out-of-core partial_fit over blocks, parallel predict, and a
hyper-parameter search on a distributed.LocalCluster started here."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask[array] is not installed "
                         "(pip install 'fastbp[dask]')")
distributed = pytest.importorskip("distributed", reason="distributed is not installed "
                                  "(pip install 'fastbp[dask]')")

import fastbp  # noqa: E402
from fastbp import MLPClassifier, MLPRegressor  # noqa: E402
from fastbp.dask import partial_fit_blocks, predict, predict_proba  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # in-process workers start in well under a second and need no spawning
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _blocks(n=1200, chunk=300, seed=0):
    X = da.random.RandomState(seed).normal(size=(n, 4), chunks=(chunk, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


class _Recording:
    """Wrap partial_fit to record what each call received."""

    def __init__(self, model):
        self.model = model
        self.calls = []
        real = model.partial_fit

        def partial_fit(X, y, sample_weight=None, classes=None):
            given = [k for k, v in (("classes", classes), ("sample_weight", sample_weight))
                     if v is not None]
            self.calls.append((X.shape, float(X[0, 0]), given))
            return real(X, y, sample_weight=sample_weight, classes=classes)

        model.partial_fit = partial_fit


def test_partial_fit_blocks_streams_blocks_in_order(client):
    X, y = _blocks()
    rec = _Recording(MLPClassifier((8,), random_state=0))
    with distributed.get_task_stream(client) as tasks:
        partial_fit_blocks(rec.model, X, y, epochs=2, shuffle_blocks=False)
    assert tasks.data, "the blocks were computed on the cluster"
    # one call per block per epoch, each with one block only: never the whole array
    assert [c[0] for c in rec.calls] == [(300, 4)] * 8
    # classes were found from y and passed on the first call only
    assert rec.calls[0][2] == ["classes"] and all(c[2] == [] for c in rec.calls[1:])
    np.testing.assert_array_equal(rec.model.classes_, [0, 1])
    # the same as calling partial_fit on the blocks by hand
    Xn, yn = X.compute(), y.compute()
    by_hand = MLPClassifier((8,), random_state=0)
    for _ in range(2):
        for s in range(0, 1200, 300):
            by_hand.partial_fit(Xn[s:s + 300], yn[s:s + 300], classes=[0, 1])
    for a, b in zip(rec.model.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_blocks_shuffles_block_order(client):
    X, y = _blocks()
    firsts = X[::300, 0].compute().tolist()
    orders = []
    for seed in (0, 0, 1):
        rec = _Recording(MLPClassifier((4,), random_state=0))
        partial_fit_blocks(rec.model, X, y, classes=[0, 1], epochs=3, random_state=seed)
        visited = [firsts.index(c[1]) for c in rec.calls]
        # every epoch visits every block once
        assert all(sorted(visited[e * 4:(e + 1) * 4]) == [0, 1, 2, 3] for e in range(3))
        orders.append(visited)
    assert orders[0] == orders[1] != orders[2]
    assert orders[0] != [0, 1, 2, 3] * 3


def test_partial_fit_blocks_learns_and_aligns_inputs(client):
    # column blocks, y and sample weights chunked differently, in-memory y
    X, y = _blocks(n=3000, chunk=500)
    X = X.rechunk((500, 2))
    w = da.ones(3000, chunks=700)
    clf = MLPClassifier((16,), learning_rate_init=0.01, random_state=0)
    partial_fit_blocks(clf, X, y.rechunk(400), sample_weight=w, epochs=3, random_state=0)
    Xn, yn = X.compute(), y.compute()
    assert clf.score(Xn, yn) > 0.93
    reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    target = Xn[:, 0] - 0.5 * Xn[:, 2]
    partial_fit_blocks(reg, X, target, epochs=3, random_state=0)
    assert reg.score(Xn, target) > 0.9


def test_partial_fit_blocks_errors():
    X, y = _blocks()
    with pytest.raises(TypeError, match="X must be a dask array"):
        partial_fit_blocks(MLPClassifier(), X.compute(), y)
    with pytest.raises(TypeError, match="has no partial_fit"):
        partial_fit_blocks(MLPClassifier(solver="lbfgs"), X, y)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        partial_fit_blocks(MLPClassifier(), X, y, epochs=0)
    with pytest.raises(ValueError, match="y has 1000 rows but X has 1200"):
        partial_fit_blocks(MLPClassifier(), X, np.zeros(1000))


def test_parallel_predict_matches_in_memory(client):
    X, y = _blocks()
    Xn, yn = X.compute(), y.compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        clf = MLPClassifier((8,), max_iter=20, random_state=0).fit(Xn, yn)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(
            Xn, np.column_stack([Xn[:, 0], Xn[:, 1]]))
    labels = predict(clf, X)
    proba = predict_proba(clf, X)
    values = predict(reg, X.rechunk((250, 2)))
    assert isinstance(labels, da.Array) and labels.chunks == (X.chunks[0],)
    assert proba.chunks == (X.chunks[0], (2,)) and values.shape == (1200, 2)
    with distributed.get_task_stream(client) as tasks:
        got = da.compute(labels, proba, values)
    assert tasks.data
    np.testing.assert_array_equal(got[0], clf.predict(Xn))
    np.testing.assert_array_equal(got[1], clf.predict_proba(Xn))
    np.testing.assert_array_equal(got[2], reg.predict(Xn))
    assert got[1].dtype == clf.predict_proba(Xn).dtype
    with pytest.raises(AttributeError, match="has no predict_proba"):
        predict_proba(reg, X)


def test_grid_search_on_the_cluster_with_joblib(client):
    joblib = pytest.importorskip("joblib")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = _blocks(n=400)
    Xn, yn = X.compute(), y.compute()
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}

    def search():
        return model_selection.GridSearchCV(MLPClassifier(max_iter=15, random_state=0), grid,
                                            cv=2, n_jobs=2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning in the fits
        local = search().fit(Xn, yn)
        with distributed.get_task_stream(client) as tasks, \
                joblib.parallel_backend("dask"):
            remote = search().fit(Xn, yn)
    ran = [t["key"] for t in tasks.data]
    assert any("fit_and_score" in str(k) for k in ran), ran
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_


def test_dask_ml_wrappers(client):
    wrappers = pytest.importorskip("dask_ml.wrappers", reason="dask-ml is not installed")
    X, y = _blocks(n=2000, chunk=500)
    inc = wrappers.Incremental(MLPClassifier((8,), learning_rate_init=0.01, random_state=0),
                               scoring="accuracy")
    inc.fit(X, y, classes=[0, 1])  # one pass: partial_fit on each block once
    assert inc.estimator_.t_ == 2000
    Xn, yn = X.compute(), y.compute()
    assert inc.score(X, y) == pytest.approx(np.mean(inc.estimator_.predict(Xn) == yn))
    assert inc.score(X, y) > 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        ppf = wrappers.ParallelPostFit(MLPClassifier((8,), max_iter=30, random_state=0))
        ppf.fit(Xn, yn)
    np.testing.assert_array_equal(ppf.predict_proba(X).compute(),
                                  ppf.estimator.predict_proba(Xn))
    # under scikit-learn 1.9 the wrappers are not recognised as classifiers
    # (is_classifier is False), so pass cv=StratifiedKFold(...) explicitly in
    # searches; fastbp's estimators themselves are classifiers
    assert ppf.estimator.__sklearn_tags__().estimator_type == "classifier"


def test_docstring_example(client):
    import doctest

    import fastbp.dask

    result = doctest.testmod(fastbp.dask)
    assert result.attempted > 0 and result.failed == 0


def test_predict_ships_the_weights_without_optimizer_state():
    import pickle

    from fastbp.dask import _prediction_copy

    X, y = _blocks(n=300)
    Xn, yn = X.compute(), y.compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        clf = MLPClassifier((200, 200), max_iter=2, random_state=0,
                            early_stopping=True).fit(Xn, yn)
    lean = _prediction_copy(clf)
    assert hasattr(clf, "_optimizer") and not hasattr(lean, "_optimizer")
    # Adam's two moments and the early-stopping snapshot stay home
    assert len(pickle.dumps(lean)) < 0.4 * len(pickle.dumps(clf))
    np.testing.assert_array_equal(lean.predict_proba(Xn), clf.predict_proba(Xn))
