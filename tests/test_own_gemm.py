"""Prediction's own product kernel (_gemm_nn.h, _own_gemm.pxi).

The kernel computes each element of ``A @ B`` as chains of fused multiply-adds
over blocks of k, the blocks' sums added in order; prediction uses it only for
product shapes where a probe found it gives the BLAS's bits. Here: the kernel
against a float64 reference and its own block arithmetic, the probe's search
(it finds a split the kernel reproduces and rejects an arithmetic it does not),
and predictions bit for bit with and without it. Needs the AVX-512 kernel set;
elsewhere the kernel never runs (checked too)."""

import subprocess
import sys

import numpy as np
import pytest

from fastbp import MLP, MLPClassifier, MLPRegressor, _engine
from _subprocess_env import package_env

needs_kernel = pytest.mark.skipif(not _engine.own_gemm_available(),
                                  reason="the own kernel needs AVX-512 (and the AVX-512 set)")

# product shapes whose verdict the engine keeps (_own_gemm.pxi)
OWN_GEMM_SHAPES = 1024


def _operands(seed, M, K, N, dtype):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (M, K)).astype(dtype), rng.uniform(-1, 1, (K, N)).astype(dtype))


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M", [1, 5, 12, 13, 25, 100])
@pytest.mark.parametrize("N", [1, 7, 8, 16, 17, 31, 32, 33, 100])
def test_kernel_is_a_product_within_its_error_bound(dtype, M, N):
    for K, blocks in ((1, None), (3, None), (64, None), (200, (120, 80)), (200, (50, 50, 100))):
        A, B = _operands(M * 1000 + N * 10 + K, M, K, N, dtype)
        C = _engine.own_gemm(A, B, blocks)
        assert C.dtype == dtype and C.shape == (M, N)
        exact = A.astype(np.float64) @ B.astype(np.float64)
        # a sum of K products rounded K + 1 times at most, each by half an ulp
        bound = (K + 1) * np.finfo(dtype).eps * (np.abs(A).astype(np.float64)
                                                 @ np.abs(B).astype(np.float64))
        assert np.all(np.abs(C - exact) <= bound), (K, blocks)


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_rows_do_not_depend_on_their_tile(dtype):
    # every row the same bits alone as in any batch: the last tile overlaps the
    # previous one, and short products take one short tile
    A, B = _operands(1, 41, 150, 70, dtype)
    C = _engine.own_gemm(A, B, (80, 70))
    for i in range(41):
        np.testing.assert_array_equal(_engine.own_gemm(A[i:i + 1], B, (80, 70))[0], C[i])
    for lo, hi in ((0, 12), (3, 29), (17, 41), (30, 41)):
        np.testing.assert_array_equal(_engine.own_gemm(A[lo:hi], B, (80, 70)), C[lo:hi])


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [16, 31, 32, 33, 64, 100, 128])
def test_in_place_kernel_gives_the_packed_kernels_bits(dtype, N):
    # every row count of a tile (1..12) and several tiles, whole and narrower
    # last panels (masked loads), one block of k and several
    for M in (*range(1, 14), 25, 64, 100):
        for K, blocks in ((5, None), (150, (80, 70)), (300, (100, 100, 100))):
            A, B = _operands(M * 100 + N + K, M, K, N, dtype)
            packed = _engine.own_gemm(A, B, blocks)
            in_place = _engine.own_gemm(A, B, blocks, in_place=True)
            assert in_place.dtype == dtype and in_place.shape == (M, N)
            np.testing.assert_array_equal(in_place.view(np.uint8), packed.view(np.uint8),
                                          err_msg=f"M={M} K={K}")


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_adds_the_blocks_sums_in_order(dtype):
    A, B = _operands(2, 30, 90, 40, dtype)
    whole = [_engine.own_gemm(A[:, a:b].copy(), B[a:b].copy()) for a, b in ((0, 20), (20, 55),
                                                                            (55, 90))]
    expected = (whole[0] + whole[1]) + whole[2]
    np.testing.assert_array_equal(_engine.own_gemm(A, B, (20, 35, 35)), expected)
    # a chain over all of k is another arithmetic: not the same bits here
    assert not np.array_equal(_engine.own_gemm(A, B), expected)


@needs_kernel
def test_kernel_rejects_bad_blocks():
    A = np.ones((3, 10), np.float32)
    B = np.ones((10, 4), np.float32)
    with pytest.raises(ValueError, match="summing to K = 10"):
        _engine.own_gemm(A, B, (4, 4))
    with pytest.raises(ValueError, match="positive lengths"):
        _engine.own_gemm(A, B, (10, 0))
    with pytest.raises(ValueError, match="do not multiply"):
        _engine.own_gemm(A, np.ones((9, 4), np.float32))


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probe_finds_the_split_a_product_was_computed_with(dtype):
    A, B = _operands(3, 40, 784, 64, dtype)
    # OpenBLAS's rule for K = 784 with blocks of Q in (392, 784) and unroll 16
    C = _engine.own_gemm(A, B, (400, 384))
    assert _engine.own_gemm_find_split(A, B, C) == (400, 384)
    assert _engine.own_gemm_find_split(A, B, _engine.own_gemm(A, B)) == (784,)


@needs_kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probe_rejects_an_arithmetic_it_does_not_reproduce(dtype):
    A, B = _operands(4, 40, 300, 64, dtype)
    # the exact product, rounded once: no chain of fused multiply-adds gives it
    rounded = (A.astype(np.longdouble) @ B.astype(np.longdouble)).astype(dtype)
    assert _engine.own_gemm_find_split(A, B, rounded) is None
    # nor does a sum with one element off by an ulp
    C = _engine.own_gemm(A, B)
    C[-1, -1] = np.nextafter(C[-1, -1], np.inf)
    assert _engine.own_gemm_find_split(A, B, C) is None


def _fitted(kind, dtype):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 300)).astype(dtype)
    if kind == "regressor":
        y = X[:, :3] @ rng.normal(size=(3, 2))
        return MLPRegressor(hidden_layer_sizes=(160, 96), max_iter=2, random_state=0).fit(X, y)
    y = rng.integers(0, 4, 600)
    if kind == "mlp":
        return MLP(hidden_layer_sizes=(160, 96), max_iter=2, random_state=0).fit(X, y)
    return MLPClassifier((160, 96), max_iter=2, random_state=0).fit(X, y)


@pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor", "mlp"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predictions_bit_for_bit_with_and_without_the_kernel(kind, dtype):
    model = _fitted(kind, dtype)
    rng = np.random.default_rng(6)
    predict = model.predict if kind == "regressor" else model.predict_proba
    ns = (700, 1024, 1500, 2100)
    for n in ns:
        X = rng.normal(size=(n, 300)).astype(dtype)
        old = _engine.set_own_gemm(False)
        try:
            blas = predict(X)
        finally:
            _engine.set_own_gemm(old)
        own = predict(X)
        np.testing.assert_array_equal(own.view(np.uint8), blas.view(np.uint8))
    if _engine.own_gemm_available() and len(_engine.own_gemm_verdicts()) < OWN_GEMM_SHAPES:
        # every product of these predictions was probed (a split, or None: the
        # BLAS), unless the process's table of shapes has filled up
        name = np.dtype(dtype).name
        shapes = {(d, M, N, K) for d, M, N, K, _ in _engine.own_gemm_verdicts()}
        for n in ns:
            for M in {min(n, 512), n - (n - 1) // 512 * 512}:
                for N, K in ((160, 300), (96, 160)):
                    # products from 2**20 multiply-adds up are probed
                    assert (M * N * K < 2**20) != ((name, M, N, K) in shapes), (n, M, N, K)


@needs_kernel
@pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")
def test_verdicts_describe_the_probed_shapes():
    model = _fitted("classifier", np.float32)
    X = np.random.default_rng(7).normal(size=(1300, 300)).astype(np.float32)
    model.predict_proba(X)
    shapes = {(d, M, N, K) for d, M, N, K, _ in _engine.own_gemm_verdicts()}
    # chunks of 512 rows and the last of 276, through 300 -> 160 -> 96 (-> 4: too narrow)
    for M in (512, 276):
        assert ("float32", M, 160, 300) in shapes
        assert ("float32", M, 96, 160) in shapes
    for d, M, N, K, split in _engine.own_gemm_verdicts():
        assert split is None or sum(split) == K


@needs_kernel
@pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")
@pytest.mark.parametrize("dtype, filled, padded", [(np.float32, 128, 100), (np.float64, 104, 100)])
def test_layers_that_pad_the_panels_stay_on_the_blas(dtype, filled, padded):
    # the kernel's panels are 32 (float32) or 16 (float64) columns: 100 columns
    # pad to 128 or 112, more than a tenth over, and are not worth probing;
    # 128 and 104 (of 112) columns are (73 inputs: a K no other test uses)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(1300, 73)).astype(dtype)
    y = rng.integers(0, 3, 1300)
    name = np.dtype(dtype).name
    for width in (filled, padded):
        MLPClassifier((width,), max_iter=1, random_state=0).fit(X[:300], y[:300]).predict_proba(X)
    shapes = {(d, M, N, K) for d, M, N, K, _ in _engine.own_gemm_verdicts()}
    if len(shapes) < OWN_GEMM_SHAPES:       # (the process's table may have filled up)
        assert (name, 512, filled, 73) in shapes
    assert (name, 512, padded, 73) not in shapes


def test_set_own_gemm_switches_it_off_and_returns_the_previous_setting():
    old = _engine.set_own_gemm(False)
    try:
        assert not _engine.own_gemm_available()
        assert _engine.set_own_gemm(False) is False
    finally:
        _engine.set_own_gemm(old)


def test_the_kernel_never_runs_outside_the_avx512_set():
    code = ("from fastbp import _engine; import sys; "
            "sys.exit(1 if _engine.own_gemm_available() else 0)")
    result = subprocess.run([sys.executable, "-c", code], env=package_env(FASTBP_SIMD="avx2"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
