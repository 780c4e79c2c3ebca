"""A thread runs its consecutive fixed blocks of a product as one product
where that gives the blocks' bits (src/fastbp/_block_merge.pxi): the
blocks' grid, the verdicts against the products themselves, and fits on one,
two and three threads (each merging other runs of blocks) against fits that
run every block on its own, bit for bit."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from fastbp import MLP, MLPClassifier, MLPRegressor
from fastbp import _engine

ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "leaky_relu", "gelu", "silu", "selu",
               "mish", "softplus")


@pytest.mark.parametrize("n", [0, 1, 11, 12, 23, 24, 60, 100, 127, 128, 200, 255, 256, 784, 1000])
@pytest.mark.parametrize("n_blocks", [1, 2, 3, 4, 7, 8, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("balanced", [True, False])
def test_grid_blocks_cover_the_rows_on_the_grid(n, n_blocks, dtype, balanced):
    blocks = _engine.grid_blocks(n, n_blocks, dtype, balanced)
    assert len(blocks) == n_blocks
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    sizes = [hi - lo for lo, hi in blocks]
    even = [((n * b) // n_blocks, (n * (b + 1)) // n_blocks) for b in range(n_blocks)]
    on_grid = all(lo % 12 == 0 for lo, _ in blocks)
    nearly_even = all(16 * abs(size * n_blocks - n) <= n for size in sizes)
    if dtype == np.float64:
        # OpenBLAS's dgemm gives the same bits at any cut: even blocks
        assert blocks == even
    elif balanced:
        # a batch's rows: every cut on the 12-row grid where that keeps the
        # blocks within 1/16 of the even size (the threads' shares stay
        # even); else even blocks
        assert (on_grid and nearly_even and min(sizes) > 0) or blocks == even
    else:
        # a W_i's gradient rows (taken one block at a time): on the grid
        # wherever that leaves no block empty
        cuts = [0] + [min(n, ((n * b) // n_blocks + 6) // 12 * 12) for b in range(1, n_blocks)]
        grid_fits = all(hi > lo for lo, hi in zip(cuts, cuts[1:] + [n]))
        assert (on_grid and min(sizes) > 0) if grid_fits else blocks == even


@pytest.mark.parametrize("n, n_blocks, balanced, expected", [
    (128, 2, True, [(0, 60), (60, 128)]),
    (200, 2, True, [(0, 96), (96, 200)]),
    (100, 2, True, [(0, 48), (48, 100)]),
    (96, 2, True, [(0, 48), (48, 96)]),
    (32, 2, True, [(0, 16), (16, 32)]),                   # 12 | 20 would be too uneven
    (32, 2, False, [(0, 12), (12, 32)]),
    (256, 4, True, [(0, 64), (64, 128), (128, 192), (192, 256)]),  # 60 | 72 | 60 | 64 too
    (256, 4, False, [(0, 60), (60, 132), (132, 192), (192, 256)]),
    # the wide network's W_0: gradient rows on the grid, batch rows even
    (784, 7, False, [(0, 108), (108, 228), (228, 336), (336, 444), (444, 564), (564, 672),
                     (672, 784)]),
    (784, 7, True, [(0, 112), (112, 224), (224, 336), (336, 448), (448, 560), (560, 672),
                    (672, 784)]),
    (32, 4, False, [(0, 8), (8, 16), (16, 24), (24, 32)]),  # the grid would leave one empty
])
def test_float32_grid_cuts(n, n_blocks, balanced, expected):
    assert _engine.grid_blocks(n, n_blocks, np.float32, balanced) == expected


def test_grid_blocks_reject_bad_counts():
    with pytest.raises(ValueError, match="n_blocks >= 1"):
        _engine.grid_blocks(10, 0, np.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        _engine.grid_blocks(10, 2, np.float16)


def _product(A, B, lo, hi, trans_a, trans_b):
    # rows lo:hi of op(A) @ op(B) through the training step's path (a copy of
    # A's columns with trans_a)
    a = np.ascontiguousarray(A[:, lo:hi]) if trans_a else A[lo:hi]
    out = np.empty((hi - lo, B.shape[0] if trans_b else B.shape[1]), A.dtype)
    _engine.matmul(a, B, out, trans_a=trans_a, trans_b=trans_b)
    return out


def _blocks_give_whole(dtype, trans_a, trans_b, M, N, K, n_blocks, balanced, first=0,
                       stop=None):
    # the products themselves: blocks first..stop-1 as one product of their
    # rows, and each on its own
    rng = np.random.default_rng(M * 7 + N * 3 + K)
    A = rng.uniform(-1, 1, (K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.uniform(-1, 1, (N, K) if trans_b else (K, N)).astype(dtype)
    run = _engine.grid_blocks(M, n_blocks, dtype, balanced)[first:stop]
    lo, hi = run[0][0], run[-1][1]
    whole = _product(A, B, lo, hi, trans_a, trans_b)
    blocks = np.concatenate([_product(A, B, b0, b1, trans_a, trans_b) for b0, b1 in run])
    return whole.tobytes() == blocks.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [
    # (trans_a, trans_b, M, N, K, n_blocks, balanced)
    (False, False, 128, 256, 784, 2, True),   # the wide network's first layer, forward
    (False, False, 128, 128, 256, 2, True),
    (False, True, 128, 256, 128, 2, True),    # its hidden deltas
    (True, False, 784, 256, 128, 7, False),   # W_0's gradient (grid rows: 108 | 120 | ...)
    (True, False, 256, 128, 128, 4, False),
    (False, False, 200, 100, 64, 2, True),    # digits
    (False, False, 1000, 64, 96, 16, True),
    (False, False, 100, 37, 53, 2, True),     # a cut off the grid (100 // 12 = 8 steps: 48 | 52)
])
def test_verdict_is_what_the_products_give(dtype, shape):
    verdict = _engine.blocks_merge_verdict(dtype, *shape)
    assert verdict == _blocks_give_whole(dtype, *shape)
    # kept: the same answer again
    assert _engine.blocks_merge_verdict(dtype, *shape) == verdict


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [
    # (trans_a, trans_b, M, N, K, n_blocks, balanced, first, stop): one
    # thread's run of a W_i's gradient blocks
    (True, False, 784, 256, 128, 7, False, 0, 3),   # wide, two threads: W_0's runs
    (True, False, 784, 256, 128, 7, False, 3, 7),
    (True, False, 784, 256, 60, 7, False, 3, 7),    # ... the last batch of 60 rows
    (True, False, 784, 256, 128, 7, False, 2, 5),   # three threads: the middle run
    (True, False, 512, 512, 200, 7, False, 0, 4),   # 64-512-512-5
    (True, False, 512, 512, 200, 7, False, 4, 7),
    (True, False, 100, 37, 53, 4, False, 1, 3),     # 100 rows in four, on the grid
    (False, False, 100, 37, 53, 2, True, 0, 1),     # one block: nothing to merge
])
def test_run_verdict_is_what_the_products_give(dtype, shape):
    verdict = _engine.blocks_merge_verdict(dtype, *shape[:6], balanced=shape[6],
                                           first=shape[7], stop=shape[8])
    assert verdict == _blocks_give_whole(dtype, *shape)
    assert _engine.blocks_merge_verdict(dtype, *shape[:6], balanced=shape[6],
                                        first=shape[7], stop=shape[8]) == verdict


def test_verdict_hook_rejects_bad_input():
    with pytest.raises(ValueError, match="float32 or float64"):
        _engine.blocks_merge_verdict(np.int32, False, False, 10, 10, 10, 2)
    with pytest.raises(ValueError, match="must be >= 1"):
        _engine.blocks_merge_verdict(np.float64, False, False, 10, 0, 10, 2)
    with pytest.raises(ValueError, match="first and stop"):
        _engine.blocks_merge_verdict(np.float64, True, False, 10, 10, 10, 2, False, 1, 1)
    with pytest.raises(ValueError, match="first and stop"):
        _engine.blocks_merge_verdict(np.float64, True, False, 10, 10, 10, 2, False, 0, 3)


def _data(dtype, n=700, n_features=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    y = np.argmax(X[:, :5] @ rng.normal(size=(5, 4)) + rng.gumbel(size=(n, 4)), axis=1)
    return X, y


def _fit(make, X, y, n_threads):
    with threadpool_limits(limits=n_threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X, y)
    # the weights and the reported losses (summed per block: kept per block)
    return (b"".join(c.tobytes() for c in model.coefs_ + model.intercepts_),
            np.asarray(model.loss_curve_).tobytes())


def _fits_by_threads(make, X, y, threads=(1, 2, 3)):
    # "blocks": one thread running every block on its own, no product merged
    old = _engine.set_block_merging(False)
    try:
        out = {"blocks": _fit(make, X, y, 1)}
    finally:
        _engine.set_block_merging(old)
    for n in threads:
        out[n] = _fit(make, X, y, n)
    return out


# A network worth two threads whose batches take the row-split mode (more
# parameters than a batch's activations): one thread runs each batch's two
# row blocks and each W_i's gradient blocks as one product where the probe
# allowed it, two and three threads their runs of W_i's gradient blocks
# (other runs for each count); each fit must give the bits of every block
# run on its own. 700 rows in batches of 128 leave a last batch of 60.

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_gives_the_blocks_bits(activation, dtype):
    X, y = _data(dtype)
    got = _fits_by_threads(lambda: MLP(hidden_layer_sizes=(256, 128), activation=activation,
                                         batch_size=128, max_iter=2, random_state=0), X, y)
    assert got["blocks"] == got[1] == got[2] == got[3]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_gives_the_blocks_bits_with_the_modern_options(dtype):
    X, y = _data(dtype)
    got = _fits_by_threads(lambda: MLP(
        hidden_layer_sizes=(256, 128), activation="gelu", dropout=0.2, weight_decay=0.01,
        learning_rate="cosine", label_smoothing=0.1, batch_size=100, max_iter=2,
        random_state=0), X, y)
    assert got["blocks"] == got[1] == got[2] == got[3]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_thread_gives_the_blocks_bits_for_the_drop_ins(solver):
    X, y = _data(np.float32, n=650)
    got = _fits_by_threads(lambda: MLPClassifier(hidden_layer_sizes=(256, 128), solver=solver,
                                                   max_iter=2, random_state=0), X, y)
    assert got["blocks"] == got[1] == got[2]
    target = X[:, :3] @ np.arange(1.0, 4.0, dtype=np.float32)
    got = _fits_by_threads(lambda: MLPRegressor(hidden_layer_sizes=(256, 128), solver=solver,
                                                  batch_size=128, max_iter=2, random_state=0),
                             X, target)
    assert got["blocks"] == got[1] == got[2]


def test_one_thread_gives_the_blocks_bits_on_sparse_input():
    X, y = _data(np.float64)
    X = sp.csr_matrix(X * (np.random.default_rng(1).uniform(size=X.shape) < 0.3))
    got = _fits_by_threads(lambda: MLPClassifier(hidden_layer_sizes=(256, 128),
                                                   batch_size=128, max_iter=2, random_state=0),
                             X, y)
    assert got["blocks"] == got[1] == got[2] == got[3]
