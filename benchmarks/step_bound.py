"""A floor under a training fit's time: its products alone, each at one core's speed.

    python benchmarks/step_bound.py

For ``fastbp bench``'s (and the harness's) digits (64-100-10, float64,
batches of 200, 100 epochs) and wide (784-256-128-10, float32, batches of
128, 3 epochs over 20,000 rows) fits, times every product one training step
makes (forward, weight gradient, hidden deltas) through the engine's own
product path, one thread, on half a batch (what each of two cores does), and
multiplies by the fit's steps. Two
cores can do no better than that with perfect overlap, no optimizer, no
activation, no loss and no synchronisation: a fit time a speed target asks
for below this figure cannot be reached on this machine. Also prints the
machine's 2048^3 gemm rate for scale. Run it on an idle machine, BLAS
override lifted (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``).
"""

import time

import numpy as np

from fastbp import _bench, _engine

NAMES = ("digits", "wide")      # fastbp bench's workloads (``_bench.WORKLOADS``) timed here


def workload_shape(name):
    """Layer sizes, dtype, batch size, epochs and training rows of a ``fastbp
    bench`` workload (its data loaded: digits needs scikit-learn)."""
    _, hidden, _, batch, epochs, dtype = _bench.WORKLOADS[name]
    X, y = _bench.workload_data(name)
    k = len(np.unique(y))
    return [X.shape[1], *hidden, 1 if k == 2 else k], np.dtype(dtype), batch, epochs, len(X)


def best_seconds(products, calls):
    run_products(products, calls)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        run_products(products, calls)
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def step_products(sizes, dtype, rows, rng):
    """One step's products on ``rows`` rows: ``(A, B, C, trans_a, trans_b)``
    with ``C = op(A) @ op(B)``."""
    acts = [rng.standard_normal((rows, s)).astype(dtype) for s in sizes]
    weights = [rng.standard_normal((a, b)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    products = []
    for i, W in enumerate(weights):
        a, b = W.shape
        # forward: acts[i] @ W; weight gradient: acts[i]^T @ deltas; hidden deltas:
        # deltas @ W^T (none for the first layer, whose input needs no gradient)
        products.append((acts[i], W, np.empty((rows, b), dtype), False, False))
        products.append((acts[i], acts[i + 1], np.empty((a, b), dtype), True, False))
        if i:
            products.append((acts[i + 1], W, np.empty((rows, a), dtype), False, True))
    return products


def run_products(products, calls):
    """Each product ``calls`` times through the engine's own product path
    (one thread, as a training step runs it)."""
    for A, B, C, trans_a, trans_b in products:
        _engine.matmul(A, B, C, trans_a, "auto", calls, trans_b)


def main():
    rng = np.random.default_rng(0)
    print(f"fastbp kernels {_engine.simd_level()}; gemm 2048^3: "
          f"float32 {_bench.gemm_peak(np.float32):.0f}, "
          f"float64 {_bench.gemm_peak(np.float64):.0f} GFLOP/s")
    for name in NAMES:
        sizes, dtype, batch, epochs, n = workload_shape(name)
        steps = epochs * -(-n // batch)
        per_step = best_seconds(step_products(sizes, dtype, batch // 2, rng), 200)
        floor = per_step * steps
        gflops = _bench.flops_per_epoch(n, sizes) * epochs / floor / 1e9
        print(f"{_bench.WORKLOADS[name][0]}: products of a half batch {per_step * 1e6:.0f} us a "
              f"step, x {steps} steps = {floor:.3f} s ({gflops:.0f} GFLOP/s); a peer must take "
              f"{2.5 * floor:.3f} s or more for 2.5x, {5 * floor:.3f} s for 5x")


if __name__ == "__main__":
    main()
