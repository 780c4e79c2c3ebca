"""Small-input prediction with a large layer's columns shared between cores
(_predict_split.pxi): the same bits as the whole products, on any number of
threads, and only where the probe found them equal. And a few rows over a
large layer go row by row (``predict_gemm``): each with its bits alone."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import quiet_warnings
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import _engine

# weights (bytes) from which a layer's product is split (_predict_split.pxi)
SPLIT_MIN_BYTES = 131072


def _model(kind, dtype):
    """A fitted model with layers above and below the split size: a
    classifier 200-400-300-3 (softmax output), or a regressor 120-300-600
    whose identity output layer is large."""
    rng = np.random.RandomState(0)
    with quiet_warnings():
        if kind == "classifier":
            X = rng.normal(size=(90, 200)).astype(dtype)
            model = fastbp.MLPClassifier((400, 300), max_iter=2, random_state=0)
            model.fit(X, np.arange(90) % 3)
        else:
            X = rng.normal(size=(90, 120)).astype(dtype)
            model = fastbp.MLPRegressor(hidden_layer_sizes=(300,), max_iter=2, random_state=0)
            model.fit(X, rng.normal(size=(90, 600)))
    model.predict(X[:1])   # builds the one-call path
    return model, X


def _one_call(model, rows):
    predictor = model._net.spec.predictor
    if model._is_classifier():
        return predictor.predict_proba(rows, model.coefs_, model.intercepts_, model.classes_)
    return predictor.predict(rows, model.coefs_, model.intercepts_, None)


def _qualifies(model, i):
    # layer i is large enough to split, and not a softmax output layer
    K, N = model.coefs_[i].shape
    last = i == len(model.coefs_) - 1
    return (K * N * model.coefs_[i].itemsize >= SPLIT_MIN_BYTES
            and not (last and model._is_classifier()))


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_predictions_have_the_whole_products_bits(kind, dtype):
    model, X = _model(kind, dtype)
    predictor = model._net.spec.predictor
    for n in (1, 2, 3, 5, 8, 13, 64):
        rows = np.ascontiguousarray(X[:n])
        split = _one_call(model, rows)
        previous = _engine.set_predict_split(False)
        try:
            whole = _one_call(model, rows)
            assert _engine.predictor_split_plan(predictor, n) == 0
        finally:
            _engine.set_predict_split(previous)
        np.testing.assert_array_equal(split, whole)
        # the general path (chunks of rows through the whole products) agrees too
        np.testing.assert_array_equal(split, model._forward(rows))
        # the plan: exactly the layers large enough whose shapes the probe passed
        verdicts = {(d, M, N, K): ok for d, M, N, K, ok in _engine.split_verdicts()}
        plan = _engine.predictor_split_plan(predictor, n)
        for i, W in enumerate(model.coefs_):
            K, N = W.shape
            expected = _qualifies(model, i) and verdicts[(np.dtype(dtype).name, n, N, K)]
            assert bool(plan >> i & 1) == expected, (n, i)
            if not _qualifies(model, i):
                assert (np.dtype(dtype).name, n, N, K) not in verdicts


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_job_gives_the_same_bits_on_any_thread_count(kind, dtype):
    # every layer the network allows split, whatever the probes say: the
    # blocks are the same whichever thread runs them
    model, X = _model(kind, dtype)
    net = model._net
    L = len(model.coefs_)
    mask = sum(1 << i for i in range(L) if not (i == L - 1 and model._is_classifier()))
    for n in (1, 4, 64):
        rows = np.ascontiguousarray(X[:n])
        alone = _engine.split_forward_rows(net.spec, net.params, rows, mask, 1)
        for _ in range(200 if n == 1 else 20):
            np.testing.assert_array_equal(
                _engine.split_forward_rows(net.spec, net.params, rows, mask, 2), alone)
        whole = model._forward(rows)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(alone, whole, rtol=tol, atol=tol)


def test_split_forward_rows_refuses_impossible_plans():
    model, X = _model("classifier", np.float64)
    net = model._net
    rows = np.ascontiguousarray(X[:2])
    with pytest.raises(ValueError, match="softmax"):
        _engine.split_forward_rows(net.spec, net.params, rows, 0b100, 2)
    with pytest.raises(ValueError, match="does not have"):
        _engine.split_forward_rows(net.spec, net.params, rows, 0b1000, 2)
    with pytest.raises(ValueError, match="features"):
        _engine.split_forward_rows(net.spec, net.params, np.ascontiguousarray(X[:2, :5]), 1, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_predictions_do_not_depend_on_blas_threads(dtype):
    model, X = _model("classifier", dtype)
    rows = np.ascontiguousarray(X[:1])
    expected = model.predict_proba(rows)
    with threadpool_limits(1, "blas"):
        np.testing.assert_array_equal(model.predict_proba(rows), expected)
    np.testing.assert_array_equal(model.predict_proba(rows), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_predicting_at_once_through_split_products(dtype):
    # four Python threads share one model and the engine's one worker pool
    model, X = _model("regressor", dtype)
    blocks = [np.ascontiguousarray(X[i:j]) for i, j in [(0, 1), (3, 5), (0, 64), (7, 8)]]
    serial = [model.predict(b) for b in blocks]

    def work(k):
        return [(i, model.predict(blocks[i])) for i in [(k + r) % 4 for r in range(60)]]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for per_thread in pool.map(work, range(4)):
            for i, got in per_thread:
                np.testing.assert_array_equal(got, serial[i])


@pytest.mark.parametrize("dtype, max_rows", [(np.float32, 8), (np.float64, 4)])
def test_a_few_rows_over_large_layers_predict_as_each_row_alone(dtype, max_rows):
    # the regressor's two layers (144 KiB and more) both go row by row
    model, X = _model("regressor", dtype)
    X = np.ascontiguousarray(X[:12])
    alone = np.vstack([model.predict(X[i:i + 1]) for i in range(12)])
    for n in range(2, max_rows + 1):
        for start in (0, 12 - n):
            rows = np.ascontiguousarray(X[start:start + n])
            np.testing.assert_array_equal(model.predict(rows), alone[start:start + n])
            np.testing.assert_array_equal(model._forward(rows), alone[start:start + n])
    # more rows take one product for all (the BLAS's bits, close to the rows')
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model.predict(X), alone, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_chunk_predictions_keep_the_blas_bits(kind, dtype):
    # up to a chunk of 512 rows (the general path from 65 rows on) large
    # layers are split between cores and products take the own kernel on
    # the weights in place where probes allow: the bits of the whole
    # products through the BLAS, on one thread or two
    model, _ = _model(kind, dtype)
    predict = model.predict_proba if kind == "classifier" else model.predict
    rng = np.random.default_rng(11)
    for n in (9, 16, 33, 64, 65, 130, 512):
        rows = rng.normal(size=(n, model.n_features_in_)).astype(dtype)
        fast = predict(rows)
        with threadpool_limits(1, "blas"):
            one_thread = predict(rows)
        own, split = _engine.set_own_gemm(False), _engine.set_predict_split(False)
        try:
            blas = predict(rows)
        finally:
            _engine.set_own_gemm(own)
            _engine.set_predict_split(split)
        np.testing.assert_array_equal(fast.view(np.uint8), blas.view(np.uint8), err_msg=str(n))
        np.testing.assert_array_equal(one_thread.view(np.uint8), blas.view(np.uint8))
        if _engine.own_gemm_available() and len(_engine.own_gemm_verdicts()) < 1024:
            # the first layer and its two column blocks were probed for n rows
            # where the kernel may read their weights in place
            K, N = model.coefs_[0].shape
            cut = (N // 2 + 15) // 16 * 16 if dtype == np.float32 else (N // 2 + 7) // 8 * 8
            shapes = {(d, M, c, k) for d, M, c, k, _ in _engine.own_gemm_verdicts()}
            for width in (N, cut, N - cut):
                if _engine.own_gemm_in_place_worth(dtype, n, width, K):
                    assert (np.dtype(dtype).name, n, width, K) in shapes, (n, width)
            assert _engine.own_gemm_in_place_worth(dtype, n, cut, K) == (n <= 64 or (
                cut % (32 if dtype == np.float32 else 16) == 0 and K * cut * rows.itemsize
                <= 512 * 1024))


@pytest.mark.parametrize("n", [30, 200])
def test_one_chunk_with_nan_or_infinity_raises_the_usual_error(n):
    model, _ = _model("classifier", np.float32)
    rows = np.random.default_rng(12).normal(size=(n, model.n_features_in_)).astype(np.float32)
    for bad in (np.nan, np.inf):
        rows[n // 2, 7] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            model.predict_proba(rows)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threads_probing_new_shapes_at_once(dtype):
    # four Python threads predict row counts nobody has predicted yet, so they
    # probe (and publish verdicts) while the others' predictions read them
    rng = np.random.RandomState(3)
    with quiet_warnings():
        model = fastbp.MLPRegressor(hidden_layer_sizes=(224,), max_iter=1, random_state=0)
        model.fit(rng.normal(size=(80, 176)).astype(dtype), rng.normal(size=(80, 96)))
    blocks = [rng.normal(size=(n, 176)).astype(dtype) for n in range(9, 49)]

    def work(k):
        return [(i, model.predict(blocks[i])) for i in range(k, len(blocks), 4)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for per_thread in pool.map(work, range(4)) for r in per_thread]
    own, split = _engine.set_own_gemm(False), _engine.set_predict_split(False)
    try:
        for i, got in results:
            np.testing.assert_array_equal(got.view(np.uint8),
                                          model.predict(blocks[i]).view(np.uint8))
    finally:
        _engine.set_own_gemm(own)
        _engine.set_predict_split(split)
    for _, M, N, K, blocks_of_k in _engine.own_gemm_verdicts():
        assert blocks_of_k is None or sum(blocks_of_k) == K
