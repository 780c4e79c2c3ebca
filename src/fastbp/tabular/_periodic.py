"""Periodic features of the numeric columns: ``cos(2 pi w x + b)``.

RealMLP-TD's PBLD embedding feeds each (robustly scaled, smoothly clipped)
number ``x`` through ``cos(2 pi w x + b)`` for 16 random frequencies ``w ~
N(0, sigma^2)`` and phases ``b ~ U(-pi, pi)``, then a linear map and the
number itself into the network. Here the frequencies and phases are fixed
(RealMLP trains them at a tenth of the network's learning rate) and the
linear map is the first layer's: ``n_per_column`` features per numeric
column, appended after the preprocessing's output. They are a function of
the parameters and the number of numeric columns only (drawn from a fixed
seed), so a fitted preset holds no state for them.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["periodic_numbers", "periodic_table", "with_periodic_features",
           "periodic_feature_names"]

# the frequencies' and phases' seed: fixed, so that they follow from the parameters
_SEED = 0
# a CSR input with the (dense) periodic block appended stays CSR only when at
# most this share of its entries is stored: measured on hotel (15402 x 444 with
# 8 features per number, 31 % stored), a 3 x 256 mish MLP takes 0.70x the CPU
# time on the dense array that it takes on the CSR matrix
_MAX_CSR_DENSITY = 0.25


def periodic_numbers(preprocessor, n_per_column):
    """How many of a fitted preprocessing's numeric columns get periodic
    features: all of them, or none without features or when it was fitted on
    sparse input."""
    if n_per_column == 0 or preprocessor.sparse_input_:
        return 0
    return len(preprocessor.numeric_columns_)


def periodic_table(n_numeric, n_per_column, scale):
    """``(frequencies, phases)``, float64 arrays of shape (n_numeric, n_per_column)."""
    rng = np.random.RandomState(_SEED)
    frequencies = rng.normal(0.0, scale, size=(n_numeric, n_per_column))
    phases = rng.uniform(-np.pi, np.pi, size=(n_numeric, n_per_column))
    return frequencies, phases


def with_periodic_features(X, n_numeric, n_per_column, scale):
    """``X`` (the preprocessing's output, whose first ``n_numeric`` columns
    are the numbers) with the periodic features appended, in X's dtype; CSR
    stays CSR while at most ``_MAX_CSR_DENSITY`` of the result is stored."""
    if n_per_column == 0 or n_numeric == 0:
        return X
    frequencies, phases = periodic_table(n_numeric, n_per_column, scale)
    numbers = X[:, :n_numeric]
    numbers = numbers.toarray() if sp.issparse(numbers) else numbers
    angles = (2 * np.pi) * numbers.astype(np.float64)[:, :, None] * frequencies + phases
    features = np.cos(angles, out=angles).reshape(X.shape[0], -1).astype(X.dtype)
    n_columns = X.shape[1] + features.shape[1]
    if sp.issparse(X) and X.nnz + features.size <= _MAX_CSR_DENSITY * X.shape[0] * n_columns:
        out = sp.hstack([X, sp.csr_matrix(features)], format="csr")
        out.sort_indices()
        return out
    dense = X.toarray() if sp.issparse(X) else X
    return np.ascontiguousarray(np.hstack([dense, features]))


def periodic_feature_names(names, n_numeric, n_per_column):
    """Names of the periodic features: ``{number}_cos{i}``."""
    return [f"{name}_cos{i}" for name in names[:n_numeric] for i in range(n_per_column)]
