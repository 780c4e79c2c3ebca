"""scipy.sparse input to the tabular preprocessing: numbers only, scaled
without densifying.

Centring would turn every implicit zero into a stored value, so a sparse
column is not centred (its centre is 0, as scikit-learn's scalers do for
sparse input); its scale is RealMLP's rule on the whole column, implicit
zeros included (computed without building it), and smooth clipping keeps 0
at 0, so the output has the input's sparsity. A stored NaN becomes 0 and,
when the column had one at fit, a 1 in its missing-value indicator column
(appended after the input's columns). The output is CSR in the
preprocessing's dtype.
"""

import numpy as np
import scipy.sparse as sp

from ._statistics import scale_and_clip, sparse_robust_scaling
from ._tables import NUMERIC, check_shape

__all__ = ["fit_state", "transform"]


def _numeric_csc(X):
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D, got a sparse array of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"A sparse X must hold numbers; got dtype {X.dtype}. Pass text or "
                        "categories in a DataFrame.")
    return sp.csc_matrix(X, dtype=np.float64)


def fit_state(X, owner, sparse_output):
    """The fitted attributes of the preprocessing for sparse ``X``."""
    X = _numeric_csc(X)
    n_rows, n_columns = X.shape
    check_shape(n_rows, n_columns, owner)
    scales, indicator = [], []
    for j in range(n_columns):
        stored = X.data[X.indptr[j]:X.indptr[j + 1]]
        scales.append(sparse_robust_scaling(stored, n_rows))
        if np.isnan(stored).any():
            indicator.append(j)
    return {"n_features_in_": n_columns, "sparse_input_": True,
            "sparse_output_": sparse_output is not False,
            "column_kinds_": np.array([NUMERIC] * n_columns, dtype=object),
            "numeric_columns_": np.arange(n_columns, dtype=np.intp),
            "centre_": np.zeros(n_columns), "scale_": np.array(scales, dtype=np.float64),
            "indicator_columns_": np.array(indicator, dtype=np.intp),
            "bool_columns_": np.array([], dtype=np.intp),
            "categorical_columns_": np.array([], dtype=np.intp), "categories_": [],
            "categorical_encoding_": np.array([], dtype=object),
            "missing_slot_": np.array([], dtype=bool), "other_slot_": np.array([], dtype=bool),
            "n_features_out_": n_columns + len(indicator)}


def transform(pre, X, owner):
    """The scaled CSR matrix of sparse (or dense numeric) ``X``."""
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise TypeError(f"{owner} was fitted on a sparse matrix: pass a sparse matrix or "
                            f"a 2-D numeric array, got {type(X).__name__}")
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    if X.shape[1] != pre.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {owner} is expecting "
                         f"{pre.n_features_in_} features as input.")
    X.sum_duplicates()
    scaled = scale_and_clip(X.data, 0.0, pre.scale_[X.indices])
    out = sp.csr_matrix((scaled, X.indices, X.indptr), shape=X.shape)
    if len(pre.indicator_columns_):
        out = sp.hstack([out, _indicators(pre, X)], format="csr")
    return sp.csr_matrix(out, dtype=pre._output_dtype())


def _indicators(pre, X):
    """The missing-value indicator columns (1 where a stored value is NaN)."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    nan = np.isnan(X.data)
    slot = np.full(pre.n_features_in_, -1)
    slot[pre.indicator_columns_] = np.arange(len(pre.indicator_columns_))
    hit = nan & (slot[X.indices] >= 0)
    return sp.csr_matrix((np.ones(int(hit.sum())), (rows[hit], slot[X.indices[hit]])),
                         shape=(X.shape[0], len(pre.indicator_columns_)))
