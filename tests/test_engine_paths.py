"""The engine's alternative code paths agree with each other.

* threads: an epoch split over several threads gives the weights of one thread,
  bit for bit, float32 and float64, also where OpenBLAS picks its kernel by a
  product's size (every product's shape is fixed by the shapes alone);
* the segmenting thread tuner (n_threads=0) gives the same weights too;
* CSR input (sparse first-layer kernels, gradient rows left unzeroed) gives
  the weights of the same data dense;
* matrix-vector products (gemv: batch of one, one output) agree with numpy;
* predict's small-input fast path agrees with the general path, and steps
  aside for inputs it does not serve;
* the typed epoch shuffle makes RandomState.shuffle's draws.
"""

import pickle

import numpy as np
import pytest
from conftest import quiet_warnings
import scipy.sparse as sp

import fastbp
from fastbp import _engine, _engine_calls, _shuffle
from fastbp._network import Network


def _epoch_setup(sizes, dtype, solver, n=300, seed=0, out_act="softmax"):
    rng = np.random.RandomState(seed)
    net = Network(sizes, "relu", out_act, dtype)
    net.init_glorot(rng, "relu")
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    Y = np.zeros((n, sizes[-1]), dtype=dtype)
    Y[np.arange(n), rng.randint(0, sizes[-1], n)] = 1
    order = rng.permutation(n).astype(np.intp)
    return net, X, Y, order


def _run_epochs(net, X, Y, order, solver, batch, n_threads, epochs=2, segment_work=None):
    params = net.params.copy()
    grads = np.empty_like(params)
    s1 = np.zeros_like(params)
    s2 = np.zeros_like(params)
    work = np.empty(net.spec.train_workspace_size(batch, True), dtype=params.dtype)
    opt = _engine.OptimizerRecord("nesterov" if solver == "sgd" else solver, 0.01,
                                  momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    rows = _engine.InputMatrix(X)
    losses = []
    old = _engine.set_segment_work(segment_work) if segment_work else None
    try:
        for _ in range(epochs):
            loss = _engine.train_epoch(
                net.spec, params, grads, s1, s2, rows, Y, None,
                order, batch, opt, 1e-3, 1.0, work, n_threads)
            losses.append(loss)
    finally:
        if old is not None:
            _engine.set_segment_work(old)
    return params, losses


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_thread_counts_give_the_same_weights(dtype, solver):
    # wide enough that every thread owns a block of every layer
    net, X, Y, order = _epoch_setup([40, 96, 64, 5], dtype, solver)
    p1, l1 = _run_epochs(net, X, Y, order, solver, 50, 1)
    p2, l2 = _run_epochs(net, X, Y, order, solver, 50, 2)
    p3, l3 = _run_epochs(net, X, Y, order, solver, 50, 3)
    assert not np.array_equal(p1, net.params)  # it trained
    # every product is a fixed block, whichever thread runs it: bit for bit
    np.testing.assert_array_equal(p2, p1)
    np.testing.assert_array_equal(p3, p1)
    assert l2 == l1 and l3 == l1


@pytest.mark.parametrize("batch", [1, 3, 7, 32])
def test_thread_counts_agree_for_small_networks_and_lone_rows(batch):
    # one output (its weight gradient in typed loops), and batches whose rows
    # do not split evenly
    net, X, Y, order = _epoch_setup([6, 20, 1], np.float64, "sgd", n=61, out_act="logistic")
    runs = [_run_epochs(net, X, Y, order, "sgd", batch, nt) for nt in (1, 2, 3)]
    assert not np.array_equal(runs[0][0], net.params)
    for p, loss in runs[1:]:
        np.testing.assert_array_equal(p, runs[0][0])
        assert loss == runs[0][1]


# Shapes whose products OpenBLAS sends to different kernels by size: its
# SkylakeX build has small-matrix d/sgemm kernels (another order of summation)
# for M*N*K up to 100**3, so half a batch of 100 rows through a 128-wide layer
# takes one and the whole batch does not; on other CPUs the shapes are merely
# ordinary. name -> (layer sizes, batch, rows, CSR input).
CROSSING = {
    "rows-dense": ([400, 128, 128, 3], 100, 500, False),
    "rows-csr": ([400, 128, 128, 3], 100, 500, True),
    "rows-wide": ([784, 256, 128, 10], 128, 400, False),
    "data-parallel": ([64, 100, 10], 200, 700, False),
    "lone-rows": ([300, 100, 10], 33, 200, False),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(CROSSING))
def test_weights_do_not_depend_on_threads_where_blas_kernels_change(name, solver, dtype):
    sizes, batch, n, csr = CROSSING[name]
    net, X, Y, order = _epoch_setup(sizes, dtype, solver, n=n)
    spec = net.spec
    assert _engine.epoch_threads(spec, batch) > 1 or _engine.blas_threads() == 1
    assert _engine.data_parallel(spec, batch) == (name == "data-parallel")
    if csr:
        X = sp.csr_matrix(np.where(np.abs(X) > 1.6, X, 0).astype(dtype))
    one = _run_epochs(net, X, Y, order, solver, batch, 1)
    assert not np.array_equal(one[0], net.params)  # it trained
    runs = [_run_epochs(net, X, Y, order, solver, batch, nt) for nt in (2, 3)]
    # the thread tuner, switching between one thread and the maximum
    runs.append(_run_epochs(net, X, Y, order, solver, batch, 0, segment_work=2e5))
    for params, losses in runs:
        np.testing.assert_array_equal(params, one[0])
        assert losses == one[1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_batch_gradient_does_not_depend_on_threads(dtype):
    net, X, Y, _ = _epoch_setup([400, 128, 128, 3], dtype, "adam", n=900)
    out = []
    for nt in (1, 2, 3):
        g = np.empty_like(net.params)
        work = np.empty(net.spec.train_workspace_size(512, False), dtype)
        loss = _engine.loss_and_grad(net.spec, net.params, _engine.InputMatrix(X), Y, None,
                                     1e-3, 1.0, g, work, 512, nt)
        out.append((loss, g))
    for loss, g in out[1:]:
        assert loss == out[0][0]
        np.testing.assert_array_equal(g, out[0][1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_products_match_blas(dtype):
    # the typed loops for small products (one row times a matrix; one output's
    # weight gradient) against BLAS, and the automatic choice against both
    rng = np.random.RandomState(9)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    for M, N, K, trans_a in [(1, 16, 2, False), (1, 8, 33, False), (1, 21, 7, True),
                             (1, 3, 5, False), (5, 1, 32, True), (17, 1, 9, True),
                             (7, 13, 4, False), (3, 40, 1, False), (6, 9, 31, True)]:
        A = rng.normal(size=(K, M) if trans_a else (M, K)).astype(dtype)
        B = rng.normal(size=(K, N)).astype(dtype)
        out = {}
        for path in ("blas", "small", "auto"):
            C = np.full((M, N), np.nan, dtype)
            _engine.matmul(A, B, C, trans_a, path)
            out[path] = C
        ref = (A.T if trans_a else A).astype(np.float64) @ B.astype(np.float64)
        scale = np.abs(A).max() * np.abs(B).max() * K
        for path, C in out.items():
            np.testing.assert_allclose(C, ref, rtol=0, atol=tol * scale, err_msg=path)
        assert (np.array_equal(out["auto"], out["small"])
                or np.array_equal(out["auto"], out["blas"]))


def _two_chain_product(A, B):
    # C = A @ B summed as small_gemm sums every element: (even terms from 0, in
    # order) + (odd terms from 0, in order), each multiply and add rounded
    K = A.shape[1]
    even = np.zeros((A.shape[0], B.shape[1]), A.dtype)
    odd = np.zeros_like(even)
    for k in range(0, K - 1, 2):
        even = even + A[:, k:k + 1] * B[k]
        odd = odd + A[:, k + 1:k + 2] * B[k + 1]
    if K % 2:
        even = even + A[:, K - 1:K] * B[K - 1]
    return even + odd


@pytest.mark.parametrize("level", _engine.cpu_simd_levels())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_products_sum_every_element_in_the_same_order(dtype, level):
    # blocks of 4, 2 and 1 rows and 8 columns (the last block overlapping), in
    # each kernel set's vector width, give every element the same bits; a
    # training step's whole products of at most 1024 multiply-adds with 8 or
    # more columns run in these loops, larger ones and every prediction's in
    # BLAS
    old = _engine.set_simd_level(level)
    try:
        _check_small_products(dtype)
    finally:
        _engine.set_simd_level(old)


def _check_small_products(dtype):
    rng = np.random.RandomState(4)
    for M in range(1, 10):
        for N in (8, 11, 16, 19):
            for K in (1, 2, 3, 6):
                for trans_a in (False, True):
                    A = rng.normal(size=(K, M) if trans_a else (M, K)).astype(dtype)
                    B = rng.normal(size=(K, N)).astype(dtype)
                    ref = _two_chain_product(A.T if trans_a else A, B)
                    for path in ("small", "auto") if M * N * K <= 1024 else ("small",):
                        C = np.full((M, N), np.nan, dtype)
                        _engine.matmul(A, B, C, trans_a, path)
                        np.testing.assert_array_equal(C, ref, err_msg=f"{path} {M, N, K}")
    for M, N, K in [(32, 16, 2), (2, 16, 32), (4, 8, 32), (5, 16, 13), (9, 19, 6)]:
        A = rng.normal(size=(M, K)).astype(dtype)
        B = rng.normal(size=(K, N)).astype(dtype)
        out = {}
        for path in ("small", "blas", "auto", "predict"):
            out[path] = np.full((M, N), np.nan, dtype)
            _engine.matmul(A, B, out[path], False, path)
        np.testing.assert_array_equal(out["small"], _two_chain_product(A, B))
        expected = "small" if M * N * K <= 1024 else "blas"
        np.testing.assert_array_equal(out["auto"], out[expected], err_msg=f"{M, N, K}")
        # prediction keeps BLAS: saved models predict as they did
        np.testing.assert_array_equal(out["predict"], out["blas"], err_msg=f"{M, N, K}")


def test_thread_tuner_segments_give_the_same_weights():
    net, X, Y, order = _epoch_setup([64, 256, 128, 10], np.float64, "adam", n=1200)
    old = _engine.set_segment_work(2e5)  # many segments, so both choices run
    try:
        p_auto, l_auto = _run_epochs(net, X, Y, order, "adam", 64, 0, epochs=3)
    finally:
        _engine.set_segment_work(old)
    p_one, l_one = _run_epochs(net, X, Y, order, "adam", 64, 1, epochs=3)
    np.testing.assert_array_equal(p_auto, p_one)
    assert l_auto == l_one


def test_loss_and_grad_threads_agree():
    net, X, Y, _ = _epoch_setup([30, 80, 4], np.float64, "adam", n=700)
    grads = []
    for nt in (1, 2):
        g = np.empty_like(net.params)
        work = np.empty(net.spec.train_workspace_size(256, False))
        loss = _engine.loss_and_grad(net.spec, net.params, _engine.InputMatrix(X), Y, None, 1e-3, 1.0,
                                     g, work, 256, nt)
        grads.append((loss, g))
    assert grads[0][0] == grads[1][0]
    np.testing.assert_array_equal(grads[1][1], grads[0][1])
    assert np.abs(grads[0][1]).max() > 0


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("hidden", [(12,), (150, 20)])
def test_sparse_and_dense_input_train_the_same(solver, hidden):
    rng = np.random.RandomState(3)
    Xs = sp.random(240, 90, density=0.04, random_state=4, format="csr")
    Xs = (Xs @ sp.diags((np.arange(90) >= 10).astype(float))).tocsr()  # 10 unused features
    Xs.eliminate_zeros()
    y = rng.randint(0, 3, 240)
    kw = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=16, max_iter=3,
              random_state=0, learning_rate_init=0.01)
    with quiet_warnings():
        a = fastbp.MLPClassifier(**kw).fit(Xs, y)
        b = fastbp.MLPClassifier(**kw).fit(Xs.toarray(), y)
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    # rows of W0 for features no sample has still moved (L2 + momentum/Adam)
    unused = np.asarray(Xs.sum(axis=0)).ravel() == 0
    assert unused.any()
    fresh = fastbp.MLPClassifier(**{**kw, "max_iter": 1})
    with quiet_warnings():
        fresh.fit(Xs, y)
    start = Network(a._net.sizes, "relu", "softmax", np.float64)
    start.init_glorot(np.random.RandomState(0), "relu")
    moved, before = fresh.coefs_[0][unused], start.coefs[0][unused]
    assert not np.any(moved == before)
    if solver == "sgd":  # only the L2 term acts on them: they shrink
        assert np.all(np.abs(moved) < np.abs(before))


def test_matrix_vector_products_match_numpy():
    # one sample (gemv over W) and one output unit (gemv over A)
    rng = np.random.RandomState(5)
    for sizes, out_act in (([7, 5, 3], "identity"), ([6, 9, 1], "identity")):
        net = Network(sizes, "tanh", out_act, np.float64)
        net.init_glorot(rng, "tanh")
        for n in (1, 4):
            X = rng.normal(size=(n, sizes[0]))
            out = np.empty((n, sizes[-1]))
            work = np.empty(net.spec.predict_workspace_size(n))
            _engine.forward(net.spec, net.params, _engine.InputMatrix(X), out, work, n)
            ref = np.tanh(X @ net.coefs[0] + net.intercepts[0]) @ net.coefs[1] + \
                net.intercepts[1]
            np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-14)


def _fitted(kind, dtype=np.float64):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6)).astype(dtype)
    with quiet_warnings():
        if kind == "binary":
            y = np.where(X[:, 0] > 0, "yes", "no")
            return fastbp.MLPClassifier((8,), max_iter=30, random_state=0).fit(X, y), X
        if kind == "multiclass":
            y = np.digitize(X[:, 0], [-0.5, 0.5])
            return fastbp.MLPClassifier((8,), max_iter=30, random_state=0).fit(X, y), X
        Y = X[:, :2] * 2 if kind == "regression2" else X[:, 0] * 2
        return fastbp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=30,
                                   random_state=0).fit(X, Y), X


def _fast_predict(model, X):
    # predict's small-input path, as the estimator calls it
    return model._net.spec.predictor.predict(X, model.coefs_, model.intercepts_,
                                             getattr(model, "classes_", None))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "regression2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predict_fast_path_matches_general_path(kind, dtype):
    model, X = _fitted(kind, dtype)
    model.predict(X)  # the general path; builds the fast one
    assert model._net.spec.predictor is not None
    for rows in (X[:1], X[:5], X[:64]):
        rows = np.ascontiguousarray(rows)
        fast = _fast_predict(model, rows)
        assert fast is not None
        general = model._predict_from_output(model._forward(rows))
        np.testing.assert_array_equal(fast, general)
        assert fast.dtype == general.dtype and fast.shape == general.shape
        np.testing.assert_array_equal(model.predict(rows), general)


def _general_proba(model, rows, log):
    # predict_proba / predict_log_proba as the general path computes them
    P = model._forward(rows)
    if P.shape[1] == 1:
        P = np.vstack([1 - P[:, 0], P[:, 0]]).T
    if log:
        with np.errstate(divide="ignore"):
            P = np.log(P)
    return P


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("log", [False, True])
def test_predict_proba_fast_path_matches_general_path(kind, dtype, log):
    model, X = _fitted(kind, dtype)
    # saturated rows too: probabilities of exactly 0 and 1 (log: -inf)
    X = np.ascontiguousarray(np.r_[X[:60], X[:4] * 1e4]).astype(dtype)
    model.predict(X)  # builds the fast path
    fast_path = model._net.spec.predictor
    for rows in (X[:1], X[:5], X[:64], X[60:64]):
        rows = np.ascontiguousarray(rows)
        fast = fast_path.predict_proba(rows, model.coefs_, model.intercepts_, model.classes_,
                                       log)
        assert fast is not None
        general = _general_proba(model, rows, log)
        np.testing.assert_array_equal(fast, general)
        assert fast.dtype == general.dtype == dtype and fast.shape == general.shape
        public = model.predict_log_proba(rows) if log else model.predict_proba(rows)
        np.testing.assert_array_equal(public, general)
    saturated = fast_path.predict_proba(X[60:64], model.coefs_, model.intercepts_,
                                        model.classes_, log)
    assert (np.isneginf(saturated) if log else saturated == 0).any()
    # steps aside as predict does, and regressors have no probabilities
    assert fast_path.predict_proba(X[:1].astype(np.float16), model.coefs_, model.intercepts_,
                                   model.classes_) is None
    regressor, Xr = _fitted("regression2", dtype)
    regressor.predict(Xr)
    assert regressor._net.spec.predictor.predict_proba(
        np.ascontiguousarray(Xr[:1]), regressor.coefs_, regressor.intercepts_, None) is None


@pytest.mark.parametrize("n_outputs", [1, 2, 5])
@pytest.mark.parametrize("estimator", ["MLPRegressor", "MLP", "MLP-poisson"])
def test_regressors_take_the_fast_path_for_any_output_count(estimator, n_outputs):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 7))
    Y = np.abs(X[:, :n_outputs] * 2 + 1) if n_outputs > 1 else np.abs(X[:, 0] * 2 + 1)
    with quiet_warnings():
        if estimator == "MLPRegressor":
            model = fastbp.MLPRegressor(hidden_layer_sizes=(9,), max_iter=5, random_state=0)
        else:
            model = fastbp.MLP((9,), loss="poisson" if "poisson" in estimator else
                               "squared_error", max_iter=5, random_state=0)
        model.fit(X, Y)
    model.predict(X)  # builds the fast path
    rows = np.ascontiguousarray(X[:3])
    fast = _fast_predict(model, rows)
    assert fast is not None
    general = model._predict_from_output(model._forward(rows))
    np.testing.assert_array_equal(fast, general)
    assert fast.shape == general.shape == ((3,) if n_outputs == 1 else (3, n_outputs))


def test_predict_fast_path_steps_aside():
    model, X = _fitted("multiclass")
    model.predict(X[:1])
    assert _fast_predict(model, X[:1]) is not None
    assert _fast_predict(model, X[:1].astype(np.float32)) is None     # other dtype
    assert _fast_predict(model, np.asfortranarray(X[:3])) is None      # not C-contiguous
    assert _fast_predict(model, X[:1].tolist()) is None                # not an ndarray
    assert _fast_predict(model, X[:100]) is None                       # more rows than it serves
    bad = X[:2].copy()
    bad[1, 3] = np.nan
    assert _fast_predict(model, bad) is None
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:1, :4])
    # coefs_ replaced by the user: the general path copies them in first
    new = [c * 0 for c in model.coefs_]
    model.coefs_ = new
    assert _fast_predict(model, X[:2]) is None
    # zero weights: every row gets the label of the output layer's bias
    expected = model.classes_[np.argmax(model.intercepts_[-1])]
    np.testing.assert_array_equal(model.predict(X[:2]), [expected, expected])
    model.classes_ = model.classes_.copy()   # other classes: the general path again
    assert _fast_predict(model, X[:2]) is None
    # pickling drops the cache, and the reloaded model predicts the same
    clone = pickle.loads(pickle.dumps(model))
    assert clone._net.spec.predictor is None
    np.testing.assert_array_equal(clone.predict(X[:3]), model.predict(X[:3]))


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000, 5003])
@pytest.mark.parametrize("bit_generator", [None, np.random.PCG64])
def test_typed_shuffle_makes_randomstate_draws(n, bit_generator):
    # MT19937 is read in place (blocks of 624 draws generated at once); other
    # bit generators are called draw by draw. Either way: RandomState.shuffle's
    # permutation, and the generator left exactly where numpy leaves it.
    for seed in (7, 2**32 - 1, 123456):
        a = np.random.RandomState(seed if bit_generator is None else bit_generator(seed))
        b = np.random.RandomState(seed if bit_generator is None else bit_generator(seed))
        for warm in (0, 1, 623 - seed % 7, 624 * 2):
            a.random_sample(warm)    # start anywhere in a block of 624 words
            b.random_sample(warm)
            idx = np.arange(n, dtype=np.intp)[::-1].copy()
            mine = idx.copy()
            for _ in range(3):
                perm = np.arange(n)
                a.shuffle(perm)
                idx = idx[perm]
                direct = _shuffle.shuffle_inplace(mine, b)
                assert direct == (bit_generator is None and n > 1)
                np.testing.assert_array_equal(mine, idx)
            _assert_same_state(a.get_state(legacy=False), b.get_state(legacy=False))
        assert a.randint(2**31) == b.randint(2**31)


def _assert_same_state(sa, sb):
    assert sa.keys() == sb.keys()
    for key in sa:
        if isinstance(sa[key], dict):
            _assert_same_state(sa[key], sb[key])
        else:
            np.testing.assert_array_equal(sa[key], sb[key])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_bad_value(dtype):
    x = np.linspace(-1e30, 1e30, 1001).astype(dtype)
    assert _engine.all_finite(x)
    assert _engine.all_finite(x[:0])
    for bad in (np.nan, np.inf, -np.inf):
        for pos in (0, 1, 500, 1000):
            y = x.copy()
            y[pos] = bad
            assert not _engine.all_finite(y)
    # the largest finite value is finite
    assert _engine.all_finite(np.array([np.finfo(dtype).max, -np.finfo(dtype).max], dtype))


def test_threadpoolctl_limits_fastbp_threads_and_blas_is_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if _engine._blas_library is None:
        pytest.skip("scipy's OpenBLAS was not found: fastbp trains on one thread")
    spec = Network([64, 256, 10], "relu", "softmax", np.float64).spec
    scipy_blas = [i for i in threadpoolctl.threadpool_info()
                  if i["filepath"] == _engine._blas_library[0]]
    assert scipy_blas, "threadpoolctl sees the OpenBLAS fastbp uses"
    before = scipy_blas[0]["num_threads"]
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert _engine.blas_threads() == 1
        assert _engine.epoch_threads(spec, 200) == 1
    assert _engine.epoch_threads(spec, 200) == min(before, 64)
    assert _engine.epoch_threads(spec, 1) == 1  # too little work per batch
    # a fit leaves scipy's OpenBLAS thread count as it found it
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 64))
    y = rng.randint(0, 10, 400)
    with quiet_warnings():
        fastbp.MLPClassifier((256,), max_iter=2, random_state=0).fit(X, y)
    after = [i for i in threadpoolctl.threadpool_info()
             if i["filepath"] == _engine._blas_library[0]][0]["num_threads"]
    assert after == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_chunks_on_several_threads_match_one(dtype):
    rng = np.random.RandomState(8)
    net = Network([20, 64, 32, 3], "relu", "softmax", dtype)
    net.init_glorot(rng, "relu")
    X = rng.normal(size=(1000, 20)).astype(dtype)
    outs = []
    for nt in (1, 2, 3):
        out = np.empty((1000, 3), dtype=dtype)
        work = np.empty(net.spec.predict_workspace_size(64), dtype=dtype)
        _engine.forward(net.spec, net.params, _engine.InputMatrix(X), out, work, 64, nt)
        outs.append(out)
    np.testing.assert_array_equal(outs[1], outs[0])  # each row computed the same way
    np.testing.assert_array_equal(outs[2], outs[0])
    np.testing.assert_allclose(outs[0].sum(axis=1), 1, rtol=1e-5)


def test_concurrent_fits_leave_blas_threads_as_found():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import threading

    if _engine._blas_library is None:
        pytest.skip("scipy's OpenBLAS was not found")

    def blas_threads_now():
        return [i for i in threadpoolctl.threadpool_info()
                if i["filepath"] == _engine._blas_library[0]][0]["num_threads"]

    before = blas_threads_now()
    rng = np.random.RandomState(1)
    X = rng.normal(size=(600, 64))
    y = rng.randint(0, 10, 600)
    errors = []

    def fit():
        try:
            fastbp.MLPClassifier((256,), max_iter=3, random_state=0).fit(X, y)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fit) for _ in range(3)]
    with quiet_warnings():  # not thread-safe: set once, around all threads
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert blas_threads_now() == before


@pytest.mark.parametrize("dtype, max_ulp", [(np.float64, 2), (np.float32, 1)])
def test_tanh_is_accurate_everywhere(dtype, max_ulp):
    # the engine's tanh: a rational approximation below |x| = 0.625, one exp above
    x = np.concatenate([np.linspace(-25, 25, 200001), np.logspace(-30, 1.5, 20001),
                        -np.logspace(-30, 1.5, 20001), [0.6249999, 0.625, 0.6250001]])
    x = x.astype(dtype)
    z = x.reshape(1, -1).copy()
    _engine.apply_activation(z, "tanh")
    ref = np.tanh(x.astype(np.float64))
    ulp = np.abs(z[0].astype(np.float64) - ref) / np.spacing(np.abs(ref).astype(dtype))
    assert ulp.max() <= max_ulp
    special = np.array([[0.0, np.inf, -np.inf, np.nan]], dtype=dtype)
    _engine.apply_activation(special, "tanh")
    assert list(special[0, :3]) == [0.0, 1.0, -1.0] and np.isnan(special[0, 3])


@pytest.mark.parametrize("out_act, n_out", [("logistic", 1), ("logistic", 3), ("softmax", 4)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_with_one_log_per_block_matches_the_reference(out_act, n_out, weighted, dtype):
    # unweighted rows take their logs as one log of a product; weighted rows one
    # each; both must give scikit-learn's clipped log-loss, saturated outputs too
    # (float32 clips at its own eps: -log(eps) is 15.9 there)
    rng = np.random.RandomState(11)
    net = Network([5, 7, n_out], "relu", out_act, dtype)
    net.init_glorot(rng, "relu")
    net.coefs[1][...] *= 60  # some outputs saturate: the clipping bounds apply
    n = 700
    X = rng.normal(size=(n, 5)).astype(dtype)
    if out_act == "softmax":
        Y = np.zeros((n, n_out), dtype)
        Y[np.arange(n), rng.randint(0, n_out, n)] = 1
    else:
        Y = (rng.rand(n, n_out) < 0.5).astype(dtype)
    sw = rng.uniform(0.5, 2, n).astype(dtype) if weighted else None
    # the reference from the logits (stable at saturation), clipped as
    # scikit-learn clips probabilities to [eps, 1 - eps]
    c, b = [x.astype(float) for x in net.coefs], [x.astype(float) for x in net.intercepts]
    V = np.maximum(X.astype(float) @ c[0] + b[0], 0) @ c[1] + b[1]
    eps = float(np.finfo(dtype).eps)
    lo, hi = -np.log1p(-eps), -np.log(eps)
    if out_act == "softmax":
        nlogp = np.logaddexp.reduce(V, axis=1, keepdims=True) - V
        per_row = (Y * np.clip(nlogp, lo, hi)).sum(axis=1)
    else:
        per_row = (Y * np.clip(np.logaddexp(0, -V), lo, hi)
                   + (1 - Y) * np.clip(np.logaddexp(0, V), lo, hi)).sum(axis=1)
    w = np.ones(n) if sw is None else sw.astype(float)
    ref = (per_row * w).sum() / w.sum()
    g = np.empty_like(net.params)
    work = np.empty(net.spec.train_workspace_size(256, False), dtype)
    loss = _engine.loss_and_grad(net.spec, net.params, _engine.InputMatrix(X), Y, sw, 0.0, 1.0,
                                 g, work, 256, 1)
    if dtype == np.float64:
        assert loss == pytest.approx(ref, rel=1e-9, abs=1e-12)
    else:
        assert loss == pytest.approx(ref, rel=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_is_accurate_everywhere(dtype):
    # the engine's exp (a polynomial, vectorised) against a reference with more
    # precision: within 1 ulp in float64, correctly rounded but for ties in float32
    rng = np.random.RandomState(3)
    hi = 709.7 if dtype == np.float64 else 88.7
    lo = -745.1 if dtype == np.float64 else -103.9
    x = np.concatenate([rng.uniform(lo, hi, 100001), rng.uniform(-1, 1, 20001),
                        np.linspace(lo, hi, 20001)]).astype(dtype)
    z = x.reshape(1, -1).copy()
    _engine.apply_activation(z, "exp")
    wide = np.longdouble if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps \
        else np.float64
    ref = np.exp(x.astype(wide))
    ulp = np.abs(z[0].astype(wide) - ref) / np.spacing(np.abs(ref).astype(dtype)).astype(wide)
    assert ulp.max() <= (1.0 if dtype == np.float64 else 0.5001) + (wide is np.float64)
    with np.errstate(over="ignore"):
        special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1000.0, -1000.0,
                            np.log(np.finfo(dtype).max) * 1.0001, -np.log(np.finfo(dtype).max)],
                           dtype)
        expected = np.exp(special.astype(np.float64)).astype(dtype)
    z = special.reshape(1, -1).copy()
    _engine.apply_activation(z, "exp")
    np.testing.assert_array_equal(z[0], expected)
    # subnormal results (float64): within one subnormal step
    tiny = np.linspace(-745.0, -709.0, 101)
    z = tiny.reshape(1, -1).copy()
    _engine.apply_activation(z, "exp")
    assert np.all(np.abs(z[0] - np.exp(tiny)) <= np.maximum(2 * np.spacing(np.exp(tiny)),
                                                            5e-324))


@pytest.mark.parametrize("name", ["gelu", "silu", "selu", "mish", "softplus"])
def test_smooth_activations_in_float32_are_accurate(name):
    # their float path computes in float (its own exp, expm1, log1p and normal
    # CDF): each value within 6 ulp of a float64 reference; a derivative,
    # a sum of O(1) terms, within 6 ulp plus 4 ulp of 1 (it cancels near its
    # zeros, as any float evaluation does); nothing but float32's underflow
    # below 1e-30, and gelu is 0 below z = -6 sqrt 2 in both dtypes (as is its
    # normal CDF's tail: |gelu| < 1e-16 there)
    from scipy.special import expit, ndtr

    rng = np.random.RandomState(5)
    z = np.concatenate([np.linspace(-30, 30, 300001), rng.normal(size=100000) * 5,
                        np.linspace(-120, 100, 4001), [-1e4, -1e-7, 0.0, 1e-7, 1e4]])
    z = z.astype(np.float32)
    x = z.astype(np.float64)
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    sp_ = np.logaddexp(0, x)
    value, derivative = {
        "gelu": (x * ndtr(x), ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),
        "silu": (x * expit(x), expit(x) * (1 + x * (1 - expit(x)))),
        "selu": (scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
                 scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))),
        "mish": (x * np.tanh(sp_), np.tanh(sp_) + x * expit(x) * (1 - np.tanh(sp_) ** 2)),
        "softplus": (sp_, expit(x)),
    }[name]
    out = z.reshape(1, -1).copy()
    _engine.apply_activation(out, name)
    d = np.ones_like(out)
    _engine.apply_activation_derivative(d, out, name, z.reshape(1, -1))
    for got, ref, slack in ((out[0], value, 0.0), (d[0], derivative, 4.0)):
        err = np.abs(got.astype(np.float64) - ref)
        ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
        bound = 6 * ulp + slack * np.spacing(np.float32(1))
        tiny = 1e-16 if name == "gelu" else 1e-30
        assert np.all((err <= bound) | (np.abs(ref) < tiny) & (err < tiny)), \
            (name, z[np.argmax(err / bound)], got[np.argmax(err / bound)],
             ref[np.argmax(err / bound)])


@pytest.mark.parametrize("name", ["exp", "tanh", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_activations_match_one_value_at_a_time(name, dtype):
    # the loops over a block run in vector lanes; each value must come out as
    # it does alone (same arithmetic in every lane, remainder loop and clone)
    rng = np.random.RandomState(4)
    for n_rows, n_cols in ((1, 37), (13, 3), (5, 16)):
        Z = (rng.normal(size=(n_rows, n_cols)) * 8).astype(dtype)
        block = Z.copy()
        _engine.apply_activation(block, name)
        if name == "softmax":
            alone = np.vstack([_apply(Z[i:i + 1], name) for i in range(n_rows)])
        else:
            alone = np.array([[_apply(Z[i:i + 1, j:j + 1], name)[0, 0]
                               for j in range(n_cols)] for i in range(n_rows)])
        np.testing.assert_array_equal(block, alone)
    if name == "logistic":
        from scipy.special import expit

        x = np.linspace(-40, 40, 8001).astype(dtype)
        z = _apply(x.reshape(1, -1), name)[0]
        ref = expit(x.astype(np.float64))
        ulp = np.abs(z - ref) / np.spacing(ref.astype(dtype))
        assert ulp.max() <= 3  # exp within 1 ulp, then a sum and a division


def _apply(Z, name):
    out = np.ascontiguousarray(Z).copy()
    _engine.apply_activation(out, name)
    return out


def test_thread_tuner_ignores_one_preempted_segment():
    # a single slow measurement (a worker preempted once) must not move the
    # estimate; a lasting slowdown shows after two; a faster one at once
    t = _engine.ThreadTuner()
    t.record(1, 250.0)
    assert t.ns_per_sample == (0.0, 250.0)
    t.record(1, 900.0)                      # one spike
    assert t.ns_per_sample[1] == 250.0
    t.record(1, 260.0)
    assert t.ns_per_sample[1] == 260.0
    t.record(1, 800.0)                      # the load changed: two in a row
    t.record(1, 820.0)
    assert t.ns_per_sample[1] == 800.0
    t.record(1, 240.0)                      # the load left
    assert t.ns_per_sample[1] == 240.0
    t.record(0, 530.0)
    assert t.ns_per_sample == (530.0, 240.0)
    assert t.measured == (1, 2)  # counted up to 2 each
    with pytest.raises(ValueError, match="threads must be 0 or 1"):
        t.record(2, 1.0)
    with pytest.raises(ValueError):
        t.record(0, float("nan"))


def test_data_parallel_mode_is_chosen_by_shape_alone():
    spec = _engine.NetSpec
    # activations outweigh the parameters and the batch is worth threading
    assert _engine.data_parallel(spec([64, 100, 10], "relu", "softmax"), 200)
    assert _engine.data_parallel(spec([32, 128, 4], "relu", "softmax"), 128)
    # parameters outweigh the activations: the row/parameter split stays
    assert not _engine.data_parallel(spec([784, 256, 128, 10], "relu", "softmax"), 128)
    assert not _engine.data_parallel(spec([784, 1024, 10], "relu", "softmax"), 128)
    # too little work per batch to thread, or too few rows to halve
    assert not _engine.data_parallel(spec([2, 16, 1], "relu", "logistic"), 32)
    assert not _engine.data_parallel(spec([64, 100, 10], "relu", "softmax"), 3)
    # the second half's gradient has room in the workspace
    s = spec([64, 100, 10], "relu", "softmax")
    n_params = 64 * 100 + 100 + 100 * 10 + 10
    assert (s.train_workspace_size(200, True) - n_params
            == 2 * 200 + 2 * 200 * 10 + 200 * 64 + 200 * (100 + 10) + 200 * 100)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("n", [1201, 1203, 1350])
def test_data_parallel_weights_do_not_depend_on_the_thread_count(dtype, solver, n):
    # n = 1201 ends each epoch on a batch of one row (the second half is
    # empty), 1203 on three rows, 1350 on 150; shuffled (rows gathered)
    sizes = [64, 100, 10]
    assert _engine.data_parallel(_engine.NetSpec(sizes, "relu", "softmax"), 200)
    net, X, Y, order = _epoch_setup(sizes, dtype, solver, n=n)
    runs = [_run_epochs(net, X, Y, order, solver, 200, nt) for nt in (1, 2, 3)]
    assert not np.array_equal(runs[0][0], net.params)  # it trained
    for p, loss in runs[1:]:
        np.testing.assert_array_equal(p, runs[0][0])
        assert loss == runs[0][1]
    # X in its own order (no gather) as well
    a = _run_epochs(net, X, Y, None, solver, 200, 1)
    b = _run_epochs(net, X, Y, None, solver, 200, 2)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_data_parallel_mode_matches_sklearn(solver):
    # the gradient of two half-batches added equals scikit-learn's one
    # product over the whole batch to rounding
    sknn = pytest.importorskip("sklearn.neural_network")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    sw = np.random.RandomState(0).uniform(0.1, 3, len(X))
    kw = dict(hidden_layer_sizes=(100,), solver=solver, batch_size=200, max_iter=8,
              random_state=0, tol=0, n_iter_no_change=100)
    assert _engine.data_parallel(_engine.NetSpec([64, 100, 10], "relu", "softmax"), 200)
    for weights in (None, sw):
        with quiet_warnings():
            a = fastbp.MLPClassifier(**kw).fit(X, y, sample_weight=weights)
            b = sknn.MLPClassifier(**kw).fit(X, y, sample_weight=weights)
        for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_allclose(ca, cb, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


def test_data_parallel_ratio_hook_restores():
    old = _engine.set_data_parallel_ratio(1e9)
    try:
        assert not _engine.data_parallel(_engine.NetSpec([64, 100, 10], "relu", "softmax"), 200)
    finally:
        assert _engine.set_data_parallel_ratio(old) == 1e9
    assert old == 1.0
    assert _engine.data_parallel(_engine.NetSpec([64, 100, 10], "relu", "softmax"), 200)


def test_data_parallel_mode_trains_float32_like_sklearn():
    sknn = pytest.importorskip("sklearn.neural_network")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    kw = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=200, max_iter=5,
              random_state=0, tol=0, n_iter_no_change=100)
    with quiet_warnings():
        a = fastbp.MLPClassifier(**kw).fit(X, y)
        b = sknn.MLPClassifier(**kw).fit(X, y)
    assert a.coefs_[0].dtype == np.float32 and b.coefs_[0].dtype == np.float32
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=0, atol=2e-5)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-5)


def _at_offset(values, offset):
    # a copy of the 1-D ``values`` starting ``offset`` bytes after a 64-byte boundary
    raw = np.empty(values.size + 128 // values.itemsize, values.dtype)
    skip = ((-raw.ctypes.data % 64) + offset) // values.itemsize
    out = raw[skip:skip + values.size]
    out[...] = values
    assert out.ctypes.data % 64 == offset
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_buffers_start_on_a_cache_line_and_their_start_changes_no_result(
        tmp_path, dtype):
    X, y = _digits_like(dtype)
    with quiet_warnings():
        model = fastbp.MLPClassifier((48, 24), max_iter=2, batch_size=64,
                                     random_state=0).fit(X, y)
    # the parameters (every coefs_ and intercepts_ is a view into them) and
    # the optimizer's state
    assert model._net.params.ctypes.data % 64 == 0
    assert model.coefs_[0].ctypes.data % 64 == 0
    assert model._optimizer.state1.ctypes.data % 64 == 0
    assert model._optimizer.state2.ctypes.data % 64 == 0
    # a loaded or unpickled model's buffer is re-homed onto a line, values kept
    path = tmp_path / "m.fbp"
    model.save(path)
    for other in (fastbp.load(path), pickle.loads(pickle.dumps(model))):
        assert other._net.params.ctypes.data % 64 == 0
        np.testing.assert_array_equal(other._net.params, model._net.params)
        for name in ("state1", "state2"):        # the optimizer's state, for warm starts
            buffer = getattr(other._optimizer, name)
            assert buffer.ctypes.data % 64 == 0 and buffer.flags.writeable
            np.testing.assert_array_equal(buffer, getattr(model._optimizer, name))
        np.testing.assert_array_equal(other.predict_proba(X), model.predict_proba(X))
    # a buffer handed to Network off a line is copied onto one
    shifted = _at_offset(model._net.params, 16)
    net = Network(model._net.sizes, "relu", "softmax", dtype, shifted)
    assert net.params.ctypes.data % 64 == 0 and not np.shares_memory(net.params, shifted)
    np.testing.assert_array_equal(net.params, shifted)
    # where the parameters start changes no prediction (a batch by gemm, one row by gemv)
    inputs = [_engine_calls.EngineInput(np.ascontiguousarray(X[:n])) for n in (len(X), 1)]
    want = [_engine_calls.forward(model._net, inp) for inp in inputs]
    for offset in (8 if dtype == np.float64 else 4, 16, 32, 48):
        class Moved:
            spec, dtype, sizes = model._net.spec, model._net.dtype, model._net.sizes
            params = _at_offset(model._net.params, offset)
        for inp, expected in zip(inputs, want):
            np.testing.assert_array_equal(_engine_calls.forward(Moved, inp), expected)


def _digits_like(dtype):
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, size=(300, 64)).astype(dtype)
    return X, (X[:, :10].sum(1) > 5).astype(int) + (X[:, 10] > 0.5)
