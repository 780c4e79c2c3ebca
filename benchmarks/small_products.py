"""Where typed loops beat a BLAS call: the measurement behind the engine's
``_small_row_work`` limits.

    python benchmarks/small_products.py [--float32]

For a row times a matrix (``1 x K`` times ``K x N``, a batch of one) and for
one output's weight gradient (``A^T d``: a sum of K rows of length N), prints
the time of the engine's typed loops divided by the time of the BLAS call
(gemv) it would otherwise make, for a grid of N and K: below 1 the typed loops
win. BLAS is held at one thread, as during training. Run it on an idle core.
"""

import sys
import time

import numpy as np

from fastbp import _engine

NS = [8, 16, 32, 64, 128, 256, 512]
KS = [2, 8, 32, 64, 128, 256, 784]


def seconds(A, B, C, trans_a, path, repeat=2000):
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        _engine.matmul(A, B, C, trans_a, path, repeat)
        best = min(best, time.perf_counter() - t)
    return best / repeat


def grid(dtype, one_row):
    rng = np.random.RandomState(0)
    print(("row times matrix (1 x K) @ (K x N)" if one_row else
           "one output's weight gradient (K x N)^T @ (K x 1)")
          + f", {np.dtype(dtype).name}: typed / BLAS")
    print("   N \\ K " + "".join(f"{k:7d}" for k in KS))
    for n in NS:
        row = []
        for k in KS:
            if one_row:
                A, B, C, ta = rng.normal(size=(1, k)), rng.normal(size=(k, n)), np.empty((1, n)), False
            else:
                A, B, C, ta = rng.normal(size=(k, n)), rng.normal(size=(k, 1)), np.empty((n, 1)), True
            A, B, C = A.astype(dtype), B.astype(dtype), C.astype(dtype)
            row.append(seconds(A, B, C, ta, "small") / seconds(A, B, C, ta, "blas"))
        print(f"{n:8d} " + "".join(f"{r:7.2f}" for r in row))


def main():
    from threadpoolctl import threadpool_limits  # imported here: asv imports this module

    dtype = np.float32 if "--float32" in sys.argv else np.float64
    with threadpool_limits(limits=1, user_api="blas"):
        grid(dtype, True)
        grid(dtype, False)


if __name__ == "__main__":
    main()
