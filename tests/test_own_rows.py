"""Prediction's rows kernel (_gemm_rows.h, _own_rows.pxi).

A prediction of 2 to 8 float32 rows over a large layer goes row by row
through gemv (each row with the bits it has alone); the kernel computes those
rows in gemv's arithmetic (blocks of 8 k: a product, fused multiply-adds, the
blocks' sums added in order), reading the weights once. Prediction takes it
only for layer shapes where a probe found it gives gemv's bits. Here: the
kernel against a float64 reference and against its own arithmetic row by row,
predictions bit for bit with and without it, and the probe's verdicts. Needs
the AVX2 or AVX-512 kernel set; elsewhere the kernel never runs (checked
too)."""

import warnings

import numpy as np
import pytest
import threadpoolctl

from fastbp import ConvergenceWarning, MLPClassifier, MLPRegressor, _engine

needs_kernel = pytest.mark.skipif(_engine.own_rows_level() == 0,
                                  reason="the rows kernel needs the AVX2 or AVX-512 set")


def _operands(seed, M, K, N):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (M, K)).astype(np.float32),
            rng.uniform(-1, 1, (K, N)).astype(np.float32))


def _blocks_of_eight(a, B):
    # one row in the kernel's arithmetic, in float64 with float32 rounding: a
    # product rounded, then fused multiply-adds (exact product, one rounding:
    # float64 holds a float32 product exactly; the sum's double rounding can
    # differ from a true fma in the last bit, rarely), the blocks' sums added
    c = np.zeros(B.shape[1], np.float32)
    for k0 in range(0, len(a), 8):
        t = (np.float64(a[k0]) * B[k0].astype(np.float64)).astype(np.float32)
        for k in range(k0 + 1, min(k0 + 8, len(a))):
            t = (np.float64(a[k]) * B[k].astype(np.float64) + t).astype(np.float32)
        c = c + t
    return c


@needs_kernel
@pytest.mark.parametrize("M", [1, 2, 3, 5, 8, 9, 15])
@pytest.mark.parametrize("N", [1, 7, 8, 16, 17, 40, 100, 130])
def test_kernel_is_a_product_within_its_error_bound(M, N):
    for K in (1, 7, 8, 9, 64, 300):
        A, B = _operands(M * 1000 + N * 10 + K, M, K, N)
        C = _engine.own_rows(A, B)
        assert C.dtype == np.float32 and C.shape == (M, N)
        exact = A.astype(np.float64) @ B.astype(np.float64)
        bound = (K + 1) * np.finfo(np.float32).eps * (np.abs(A).astype(np.float64)
                                                      @ np.abs(B).astype(np.float64))
        assert np.all(np.abs(C - exact) <= bound), K


@needs_kernel
def test_kernel_sums_blocks_of_eight_and_rows_do_not_depend_on_their_tile():
    A, B = _operands(3, 15, 203, 75)      # a short last block, a scalar column tail
    C = _engine.own_rows(A, B)
    for i in range(15):
        row = _engine.own_rows(A[i:i + 1], B)[0]
        np.testing.assert_array_equal(row, C[i])
        # the emulation's double rounding may differ in the last bit, rarely
        assert np.mean(_blocks_of_eight(A[i], B) == row) >= 0.98
    # a chain over all of k is another arithmetic: not the same bits
    chain = np.zeros(75, np.float32)
    for k in range(203):
        chain = (np.float64(A[0, k]) * B[k].astype(np.float64) + chain).astype(np.float32)
    assert not np.array_equal(chain, C[0])


@needs_kernel
def test_kernel_refuses_operands_that_do_not_multiply():
    with pytest.raises(ValueError, match="do not multiply"):
        _engine.own_rows(np.ones((2, 5), np.float32), np.ones((4, 3), np.float32))


def _wide_model(dtype=np.float32, regressor=False, hidden=(256, 128)):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 784)).astype(dtype)
    y = rng.standard_normal(300) if regressor else rng.integers(0, 10, 300)
    cls = MLPRegressor if regressor else MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)     # two epochs: weights to use
        return cls(hidden_layer_sizes=hidden, max_iter=2, random_state=0).fit(X, y), X


@pytest.mark.parametrize("regressor", [False, True])
def test_few_row_predictions_have_the_bits_of_gemv_row_by_row(regressor):
    model, X = _wide_model(regressor=regressor)
    X[3] = 0.0                          # a row of zeros: the sums' signed zeros
    outputs = model.predict if regressor else model.predict_proba     # every bit shows
    old = _engine.set_own_gemm(False)
    try:
        expected = [outputs(X[:m]) for m in range(1, 9)]
        _engine.set_own_gemm(True)
        got = [outputs(X[:m]) for m in range(1, 9)]
    finally:
        _engine.set_own_gemm(old)
    for m, (a, b) in enumerate(zip(expected, got), start=1):
        np.testing.assert_array_equal(a, b, err_msg=f"{m} rows")


@needs_kernel
def test_probed_shapes_take_the_kernel_where_it_matches():
    model, X = _wide_model()
    model.predict_proba(X[:4])
    verdicts = {(N, K): own for N, K, own in _engine.own_rows_verdicts()}
    # the layers sent row by row (784 x 256, 256 x 128) and the column blocks
    # a one-row prediction splits them into
    assert {(256, 784), (128, 784), (128, 256), (64, 256)} <= set(verdicts)
    for (N, K), own in verdicts.items():
        A, B = _operands(N + K, 6, K, N)
        gemv = np.empty((6, N), np.float32)
        for i in range(6):          # one row at a time: prediction's gemv
            _engine.matmul(A[i:i + 1], B, gemv[i:i + 1], path="predict")
        assert np.array_equal(_engine.own_rows(A, B), gemv) == own, (N, K)
    openblas = [i for i in threadpoolctl.threadpool_info()
                if i.get("internal_api") == "openblas"
                and i.get("architecture") in ("SkylakeX", "Haswell", "Zen")]
    if openblas:
        # OpenBLAS's sgemv kernels on these cores sum in blocks of eight
        assert verdicts[(256, 784)] and verdicts[(128, 256)]


def test_float64_layers_are_not_probed():
    model, X = _wide_model(dtype=np.float64)
    before = list(_engine.own_rows_verdicts())
    model.predict(X[:4])
    assert _engine.own_rows_verdicts() == before      # nothing probed for float64


def test_the_kernel_never_runs_where_it_cannot():
    old = _engine.set_own_gemm(False)
    try:
        assert _engine.own_rows_level() == 0
        with pytest.raises(RuntimeError, match="cannot run here"):
            _engine.own_rows(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    finally:
        _engine.set_own_gemm(old)
