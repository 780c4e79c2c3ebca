"""The benchmarks' data: small synthetic problems and scikit-learn's digits, the same
in ``fastbp bench``, its throughput head-to-head and asv."""

import numpy as np


def moons(n, seed=0):
    """Two interleaving half circles with noise (the seed's toy problem)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    lab = rng.integers(0, 2, n)
    x = np.where(lab == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(lab == 0, np.sin(t), 0.5 - np.sin(t))
    return np.c_[x, y] + rng.normal(0, 0.1, (n, 2)), lab


def synth(n, d, k, seed=0, dtype=np.float32):
    """Gaussian inputs, labels from a random linear map plus Gumbel noise.

    The map is applied with ``np.einsum``, which runs on the calling thread:
    ``X @ W`` would wake OpenBLAS's threads, which then spin for about 0.1 s
    (2^28 clock cycles) on the cores of the fit timed next; asv re-runs a
    benchmark's setup before every timed call. The labels are the same as
    ``argmax(X @ W + G)`` gives (tested)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    X = rng.normal(size=(n, d)).astype(dtype)
    return X, np.argmax(np.einsum("ij,jk->ik", X, W) + rng.gumbel(size=(n, k)), 1)


def digits():
    """scikit-learn's 8x8 digits scaled to [0, 1] (a synthetic stand-in of
    the same shape when scikit-learn is not installed)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return synth(1797, 64, 10, seed=1, dtype=np.float64)
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def sparse_data(n=20000, d=50000, density=0.001, k=5, seed=0):
    """A TF-IDF-like CSR matrix (float64) and labels that depend on it."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = max(1, int(round(d * density)))
    indices = rng.integers(0, d, size=(n, per_row))
    indices.sort(axis=1)
    X = sp.csr_matrix((rng.random(n * per_row), indices.ravel(),
                       np.arange(0, n * per_row + 1, per_row)), shape=(n, d))
    X.sum_duplicates()
    W = rng.normal(size=(d, k))
    y = np.argmax(np.asarray(X @ W) + 0.1 * rng.gumbel(size=(n, k)), 1)
    return X, y
