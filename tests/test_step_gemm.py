"""Training steps' own float64 product kernel (_gemm_step.h, _step_gemm.pxi).

The kernel computes each element of ``op(A) @ op(B)`` as one chain of fused
multiply-adds over k in order; a training step uses it only for product
shapes where a probe found it gives the BLAS's bits. Here: the kernel against
its scalar arithmetic and a float64 error bound for every edge shape, the
verdicts against the BLAS, and fits bit for bit with and without it. The
kernel runs with the AVX2 kernel set only (checked too): on a CPU with
AVX-512 the module's tests force the AVX2 set, as FASTBP_SIMD=avx2 would, so
that they run on every CPU that has AVX2 and FMA."""

import contextlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastbp import MLP, MLPClassifier, MLPRegressor, _engine
from _subprocess_env import package_env


@contextlib.contextmanager
def _avx2_kernel_set():
    # the AVX2 kernel set (the step kernel's only set) where the CPU has it,
    # then the previous set
    if "avx2" not in _engine.cpu_simd_levels():
        yield
        return
    old = _engine.set_simd_level("avx2")
    try:
        yield
    finally:
        _engine.set_simd_level(old)


def _kernel_runs_here():
    # whether the kernel runs with the AVX2 set here (a build with the kernel
    # sets, an x86-64 CPU with AVX2 and FMA)
    with _avx2_kernel_set():
        return _engine.step_gemm_available()


needs_kernel = pytest.mark.skipif(not _kernel_runs_here(),
                                  reason="the step kernel needs the AVX2 kernel set (a build with "
                                         "the kernel sets, a CPU with AVX2 and FMA)")


@pytest.fixture(autouse=True)
def _avx2_set():
    with _avx2_kernel_set():
        yield


def _operands(seed, M, K, N, trans_a, trans_b=False):
    rng = np.random.default_rng(seed)
    A = rng.uniform(-1, 1, (K, M) if trans_a else (M, K))
    return A, rng.uniform(-1, 1, (N, K) if trans_b else (K, N))


@needs_kernel
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("M", [1, 2, 3, 4, 5, 7, 8, 13, 100])
@pytest.mark.parametrize("N", [1, 3, 4, 5, 8, 9, 11, 12, 13, 24, 25, 100])
def test_kernel_is_its_scalar_chain_and_within_its_error_bound(trans_a, trans_b, M, N):
    for K in (1, 2, 7, 64, 256):
        A, B = _operands(M * 1000 + N * 10 + K, M, K, N, trans_a, trans_b)
        C = _engine.step_gemm(A, B, trans_a, trans_b)
        assert C.shape == (M, N) and C.dtype == np.float64
        # every element the scalar chain's bits (the arithmetic the probe relies on)
        np.testing.assert_array_equal(C, _engine.step_gemm_reference(A, B, trans_a, trans_b))
        opA = A.T if trans_a else A
        opB = B.T if trans_b else B
        bound = (K + 1) * np.finfo(np.float64).eps * (np.abs(opA) @ np.abs(opB))
        assert np.all(np.abs(C - opA @ opB) <= bound), K


@needs_kernel
def test_kernel_rejects_shapes_that_do_not_multiply():
    with pytest.raises(ValueError, match="do not multiply"):
        _engine.step_gemm(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="do not multiply"):
        _engine.step_gemm(np.ones((3, 4)), np.ones((4, 2)), trans_a=True)
    with pytest.raises(ValueError, match="do not multiply"):
        _engine.step_gemm(np.ones((3, 4)), np.ones((4, 2)), trans_b=True)
    # op(B) = B^T: the kernel copies a strip of B^T of at most 256 rows
    with pytest.raises(ValueError, match="K up to 256"):
        _engine.step_gemm(np.ones((3, 257)), np.ones((2, 257)), trans_b=True)


def _fit_all():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(700, 40))
    y = (X[:, 0] + np.sin(X[:, 1]) > 0).astype(int) + (X[:, 2] > 1)
    y_reg = np.c_[X[:, 0] * X[:, 1], np.abs(X[:, 2])]
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    kw = dict(max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [
            MLPClassifier((100,), batch_size=200, **kw).fit(X, y),          # data-parallel
            MLPClassifier((64, 33), activation="tanh", batch_size=150, **kw).fit(X, y),
            MLPClassifier((64, 64), batch_size=100, **kw).fit(Xs, y),       # sparse first layer
            MLPRegressor(hidden_layer_sizes=(48,), solver="sgd", batch_size=256,
                         **kw).fit(X, y_reg),
            MLP(hidden_layer_sizes=(30, 20), batch_size=97, **kw).fit(X, y),
            # parameters outweigh activations: row blocks, then weight blocks
            MLPClassifier((256, 128), batch_size=64, **kw).fit(X, y),
        ]
    return [[p.copy() for p in m.coefs_ + m.intercepts_] for m in models]


def test_fits_bit_for_bit_with_and_without_the_kernel():
    assert not _engine.data_parallel(_engine.NetSpec([40, 256, 128, 3], "relu", "softmax"), 64)
    old_gain = _engine.set_step_gemm_gain(0.0)     # every exact shape the fits meet takes it
    try:
        with_kernel = _fit_all()
    finally:
        _engine.set_step_gemm_gain(old_gain)
    old = _engine.set_own_gemm(False)
    try:
        without = _fit_all()
    finally:
        _engine.set_own_gemm(old)
    for a, b in zip(with_kernel, without):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@needs_kernel
def test_each_verdict_says_whether_the_kernel_gives_the_blas_bits():
    _fit_all()
    verdicts = _engine.step_gemm_verdicts()
    assert verdicts, "the fits' products were not probed"
    assert len(set(v[:5] for v in verdicts)) == len(verdicts)      # one entry per shape
    # the fits' hidden deltas (delta W^T) were probed too, unless the table
    # (256 shapes) filled up earlier in the process
    assert any(trans_b for _, trans_b, *_ in verdicts) or len(verdicts) == 256
    for trans_a, trans_b, M, N, K, exact, own in verdicts:
        A, B = _operands(M + N + K, M, K, N, trans_a, trans_b)
        blas = np.empty((M, N))
        _engine.matmul(A, B, blas, trans_a=trans_a, trans_b=trans_b, path="blas")
        assert np.array_equal(_engine.step_gemm(A, B, trans_a, trans_b), blas) == exact, (
            trans_a, trans_b, M, N, K, exact)
        assert exact or not own         # only exact shapes run the kernel


@needs_kernel
def test_the_kernel_takes_an_exact_shape_only_if_it_was_faster():
    old = _engine.set_step_gemm_gain(1e9)          # never that much faster
    try:
        A, B = _operands(4, 42, 70, 30, False)
        _engine.matmul(A, B, np.empty((42, 30)), path="auto")
    finally:
        _engine.set_step_gemm_gain(0.0)            # always faster than 0 x the BLAS
    try:
        A, B = _operands(5, 46, 70, 30, False)
        _engine.matmul(A, B, np.empty((46, 30)), path="auto")
    finally:
        _engine.set_step_gemm_gain(old)
    verdicts = {v[:5]: v[5:] for v in _engine.step_gemm_verdicts()}
    if (False, False, 42, 30, 70) not in verdicts or (False, False, 46, 30, 70) not in verdicts:
        assert len(verdicts) == 256                # only a full table leaves a shape out
        pytest.skip("the verdict table was full")
    exact, own = verdicts[(False, False, 42, 30, 70)]
    assert not own
    exact, own = verdicts[(False, False, 46, 30, 70)]
    assert own == exact
    with pytest.raises(ValueError, match="gain must be"):
        _engine.set_step_gemm_gain(-1.0)


@needs_kernel
@pytest.mark.parametrize("trans_a, trans_b, M, N, K", [(False, False, 120, 100, 64),
                                                       (True, False, 64, 100, 120),
                                                       (False, True, 120, 100, 10),
                                                       (False, True, 121, 100, 10)])
def test_a_step_product_is_probed_and_gives_the_blas_bits(trans_a, trans_b, M, N, K):
    A, B = _operands(9, M, K, N, trans_a, trans_b)
    got = np.empty((M, N))
    _engine.matmul(A, B, got, trans_a=trans_a, trans_b=trans_b, path="auto")   # a step's
    verdicts = _engine.step_gemm_verdicts()
    # probed, unless the table (256 shapes) was full
    assert (trans_a, trans_b, M, N, K) in {v[:5] for v in verdicts} or len(verdicts) == 256
    blas = np.empty((M, N))
    _engine.matmul(A, B, blas, trans_a=trans_a, trans_b=trans_b, path="blas")
    np.testing.assert_array_equal(got, blas)        # whichever ran, the BLAS's bits


def test_set_own_gemm_switches_the_step_kernel_off():
    old = _engine.set_own_gemm(False)
    try:
        assert not _engine.step_gemm_available()
        with pytest.raises(RuntimeError, match="cannot run here"):
            _engine.step_gemm(np.ones((2, 2)), np.ones((2, 2)))
    finally:
        _engine.set_own_gemm(old)


@pytest.mark.parametrize("level", ["baseline", "avx512"])
def test_the_kernel_runs_with_the_avx2_set_only(level):
    if level not in _engine.cpu_simd_levels():
        pytest.skip(f"this CPU does not run the {level} set")
    code = ("from fastbp import _engine; import sys; "
            "sys.exit(1 if _engine.step_gemm_available() else 0)")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code],
                            env=package_env(FASTBP_SIMD=level),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
