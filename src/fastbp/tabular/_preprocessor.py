"""TabularPreprocessor: a table (numpy, scipy.sparse, pandas, polars) in,
the matrix the engine trains on out.

One pass per column at fit records plain statistics (medians, scales,
category lists); ``transform`` applies them row by row, so it gives every
row the same features whatever the other rows are. The fitted state is
plain data (:meth:`TabularPreprocessor.to_state`), laid out so that an ONNX
graph can be rebuilt from it: per-kind column indices, centre and scale
arrays, category lists.

The output's columns, in this order (``get_feature_names_out``):

1. the numeric columns (numbers, dates, durations), scaled and clipped;
2. a missing-value indicator (1 / 0) per numeric column that had missing
   values at fit;
3. the bool columns: +1 / -1, missing -> 0;
4. the two-valued categorical columns: +1 / -1 (levels in text order),
   missing or unseen -> 0;
5. the one-hot block: per other categorical column one slot per kept level,
   a "missing" slot when values were missing at fit and an "other" slot
   when some values were too rare to keep (unseen values go there too).

With a one-hot block the output is a CSR matrix (the engine's sparse first
layer reads it in place); without one, a C-contiguous array.
"""

import warnings

import numpy as np
import scipy.sparse as sp

from .._sklearn_api import EstimatorAPI
from .._sklearn_compat import SklearnBase, adopt_when_imported
from .._validation import (
    ARRAY_LIKE,
    BOOLEAN,
    NONE,
    InvalidParameterError,
    integer,
    one_of,
    validate_params,
)
from . import _sparse
from ._preprocessor_state import (
    BINARY,
    EMPTY,
    FITTED_ATTRIBUTES,
    ONEHOT,
    attributes_of,
    dense_width,
    onehot_widths,
    n_features_out,
    to_state,
)
from ._statistics import choose_levels, robust_scaling, scale_and_clip
from ._tables import BOOL, CATEGORICAL, DATETIME, NUMERIC, TIMEDELTA, as_table, check_shape

__all__ = ["TabularPreprocessor", "FLOAT_DTYPE", "SPARSE_DENSITY"]

_MEASURED = (NUMERIC, DATETIME, TIMEDELTA)   # kinds scaled as numbers
# 'auto' output: CSR when at most this share of the entries is stored (measured
# on the benchmark's tables: the engine's CSR first layer is up to 1.4x slower
# than its dense one on caravan, 64% stored, and as fast or faster below 45%)
SPARSE_DENSITY = 0.5


class _FloatDtype:
    """The constraint of ``dtype``: float32 or float64, by name or type."""

    def accepts(self, value):
        try:
            return value is not None and np.dtype(value) in (np.float32, np.float64)
        except TypeError:
            return False

    def __str__(self):
        return "'float32' or 'float64' (a name, a numpy type or dtype)"


FLOAT_DTYPE = _FloatDtype()


class TabularPreprocessor(EstimatorAPI, SklearnBase):
    """Turn a table into the matrix fastbp's tabular presets train on.

    Reads numpy arrays (columns by position; object arrays column by
    column), scipy.sparse matrices (numbers only), and pandas or polars
    DataFrames (columns by name) with numeric, bool, categorical / text,
    datetime and duration columns and missing values (NaN, None, pd.NA,
    NaT, null). Each column becomes:

    * **numbers** (and dates as days since 1970-01-01 UTC, durations as
      days): centred on the median, scaled by 1 / IQR (1 / (½ range) when
      the IQR is 0; 0 for a constant column), smoothly clipped with
      ``x / sqrt(1 + (x / 3)²)``; a missing value becomes 0 (the median)
      and, when the column had missing values at fit, a 1 in an indicator
      column; ±inf becomes ±3;
    * **bools**: +1 / -1, missing 0;
    * **categories** (categorical, text and mixed columns; values compared
      as text, ``str(value)``): two values -> one +1 / -1 feature (missing
      or unseen 0); more -> one-hot over the kept values (seen at least
      ``min_frequency`` times, at most ``max_categories`` of them, the most
      frequent first), plus a "missing" slot when values were missing at
      fit and an "other" slot for the values left out, which also takes
      values unseen at fit. Missing or unseen values without a slot give
      an all-zero row: never an error;
    * a column without any value at fit gives no feature.

    Parameters
    ----------
    max_categories : int, default=100
        Most one-hot slots per categorical column (besides "missing" and
        "other").
    min_frequency : int, default=2
        Values seen fewer times at fit share the "other" slot.
    categorical_features : list of str or int, default=None
        Columns (names, or positions for arrays) to treat as categorical
        whatever their dtype (integer codes, say).
    dtype : {'float32', 'float64'}, default='float32'
        Output dtype; fastbp trains in the dtype of its input.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame with string column names: at transform,
        columns are matched by name (any order; extra columns are ignored
        with a warning; a missing column is an error naming it).
    column_kinds_ : ndarray of str
        Per input column: 'numeric', 'datetime', 'timedelta', 'bool',
        'categorical' or 'empty'.
    n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp.tabular import TabularPreprocessor
    >>> X = np.array([[1.0, "red"], [2.0, "blue"], [np.nan, "red"], [4.0, "green"]],
    ...              dtype=object)
    >>> pre = TabularPreprocessor(min_frequency=1).fit(X)
    >>> pre.get_feature_names_out().tolist()
    ['x0', 'x0_missing', 'x1=blue', 'x1=green', 'x1=red']
    >>> pre.transform(X).round(3)       # median 2, IQR 1.5; then smoothly clipped
    array([[-0.651,  0.   ,  0.   ,  0.   ,  1.   ],
           [ 0.   ,  0.   ,  1.   ,  0.   ,  0.   ],
           [ 0.   ,  1.   ,  0.   ,  0.   ,  1.   ],
           [ 1.218,  0.   ,  0.   ,  1.   ,  0.   ]], dtype=float32)
    """

    _parameter_constraints = {
        "max_categories": [integer(1)],
        "min_frequency": [integer(1)],
        "categorical_features": [ARRAY_LIKE, NONE],
        "sparse_output": [one_of("auto")] + BOOLEAN,
        "dtype": [FLOAT_DTYPE],
    }

    def __init__(self, *, max_categories=100, min_frequency=2, categorical_features=None,
                 sparse_output="auto", dtype="float32"):
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.categorical_features = categorical_features
        self.sparse_output = sparse_output
        self.dtype = dtype

    # ------------------------------------------------------------------
    # the estimator protocol (a transformer)
    # ------------------------------------------------------------------

    def _is_fitted(self):
        return hasattr(self, "column_kinds_")

    def _check_fitted(self):
        if not self._is_fitted():
            from .._exceptions import not_fitted_error

            raise not_fitted_error(self)

    @property
    def _estimator_type(self):
        return None

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags, TransformerTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags())
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def _output_dtype(self):
        return np.dtype(self.dtype)

    # ------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------

    def fit(self, X, y=None):
        """Learn each column's kind and statistics from ``X``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : TabularPreprocessor
        """
        return self._fit(X, type(self).__name__)

    def _fit(self, X, owner):
        """``fit``, with messages naming ``owner`` (the estimator)."""
        validate_params(self, self._parameter_constraints)
        if sp.issparse(X):
            fitted = _sparse.fit_state(X, owner, self.sparse_output)
        else:
            fitted = _fit_table(as_table(X), self, owner)
        for key in FITTED_ATTRIBUTES:
            self.__dict__.pop(key, None)
        self.__dict__.update(fitted)
        return self

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------
    # transform
    # ------------------------------------------------------------------

    def transform(self, X):
        """The features of ``X``: a CSR matrix when some column is one-hot
        encoded (or ``X`` was sparse at fit), else a C-contiguous array,
        in ``dtype``.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
            The columns seen at fit (matched by name for DataFrames fitted
            with string column names, else by position).

        Returns
        -------
        X_out : ndarray or scipy.sparse.csr_matrix of shape (n_samples, `n_features_out_`)
        """
        return self._transform(X, type(self).__name__)

    def _transform(self, X, owner):
        """``transform``, with messages naming ``owner`` (the estimator)."""
        self._check_fitted()
        if self.sparse_input_:
            out = _sparse.transform(self, X, owner)
            return out if self.sparse_output_ else out.toarray()
        if sp.issparse(X):
            raise TypeError(f"{owner} was fitted on a dense table; got a sparse matrix. "
                            "Pass the columns seen at fit as an array or a DataFrame.")
        table = as_table(X)
        positions = _column_positions(self, table, owner)
        dense = _dense_block(self, table, positions)
        slots, widths = _onehot_slots(self, table, positions)
        if not widths:
            return dense
        if not self.sparse_output_:
            return _dense_with_onehot(dense, slots, widths)
        return _with_onehot_block(dense, slots, widths)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``name``, ``name_missing`` (missing
        indicator), ``name=level``, ``name=<missing>``, ``name=<other>``;
        array columns are named ``x0``, ``x1``, ...

        Returns
        -------
        names : ndarray of str
        """
        self._check_fitted()
        names = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else [
            f"x{j}" for j in range(self.n_features_in_)]
        if input_features is not None:
            names = [str(name) for name in input_features]
        out = [names[j] for j in self.numeric_columns_]
        out += [f"{names[j]}_missing" for j in self.indicator_columns_]
        out += [names[j] for j in self.bool_columns_]
        for j, levels, encoding, missing, other in self._categorical_rows():
            if encoding == BINARY:
                out.append(names[j])
        for j, levels, encoding, missing, other in self._categorical_rows():
            if encoding == ONEHOT:
                out += [f"{names[j]}={level}" for level in levels]
                out += [f"{names[j]}=<missing>"] * bool(missing)
                out += [f"{names[j]}=<other>"] * bool(other)
        return np.asarray(out, dtype=object)

    def _categorical_rows(self):
        return zip(self.categorical_columns_, self.categories_, self.categorical_encoding_,
                   self.missing_slot_, self.other_slot_)

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------

    def to_state(self):
        """The preprocessing as plain data (Python values and numpy arrays;
        the layout is documented in ``fastbp.tabular._preprocessor_state``);
        :meth:`from_state` rebuilds it exactly."""
        return to_state(self)

    @classmethod
    def from_state(cls, state):
        """A TabularPreprocessor from :meth:`to_state`'s data (checked first:
        a ``ValueError`` names what is wrong)."""
        if not (isinstance(state, dict) and isinstance(state.get("params"), dict)):
            raise ValueError("invalid tabular preprocessing state: expected a dict with "
                             f"'params', got {type(state).__name__}")
        pre = cls(**state["params"])
        pre.__dict__.update(attributes_of(state))
        return pre

    def __getstate__(self):
        return {"state": self.to_state(), "other_attributes": {
            k: v for k, v in self.__dict__.items()
            if k not in FITTED_ATTRIBUTES and k not in self._get_param_names()}}

    def __setstate__(self, pickled):
        self.__dict__.update(attributes_of(pickled["state"]))
        self.__dict__.update(pickled["other_attributes"])


# ---------------------------------------------------------------------------
# fit, column by column
# ---------------------------------------------------------------------------

def _forced_categorical(pre, table):
    """Positions of the columns ``categorical_features`` names."""
    chosen = pre.categorical_features
    if chosen is None:
        return set()
    positions = set()
    for key in list(chosen):
        if isinstance(key, str) and table.names is not None and key in table.names:
            positions.add(table.names.index(key))
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and \
                0 <= key < table.n_columns:
            positions.add(int(key))
        else:
            raise InvalidParameterError(
                f"The 'categorical_features' parameter of {type(pre).__name__} names column "
                f"{key!r}, which X does not have; X has "
                + (f"columns {table.names[:10]}" if table.names is not None
                   else f"{table.n_columns} columns (by position)") + ".")
    return positions


def _fit_table(table, pre, owner):
    """The fitted attributes of ``pre`` on ``table``."""
    check_shape(table.n_rows, table.n_columns, owner)
    names = table.feature_names()
    if names is not None and len(set(names)) != len(names):
        duplicated = sorted({n for n in names if list(names).count(n) > 1})
        raise ValueError(f"X has duplicated column names {duplicated}: columns are matched "
                         "by name, so each name must be unique.")
    forced = _forced_categorical(pre, table)
    fitted = {"n_features_in_": table.n_columns, "sparse_input_": False}
    if names is not None:
        fitted["feature_names_in_"] = names
    kinds, numeric, categorical = [], [], []
    for j in range(table.n_columns):
        kind = CATEGORICAL if j in forced else table.kind(j)
        kind, statistics = _fit_column(table, j, kind, pre)
        if statistics is not None:
            (numeric if kind in _MEASURED else categorical).append(statistics)
        kinds.append(kind)
    fitted["column_kinds_"] = np.asarray(kinds, dtype=object)
    fitted.update(_fit_numeric(numeric))
    fitted["bool_columns_"] = np.flatnonzero(fitted["column_kinds_"] == BOOL)
    fitted.update(_fit_categorical(categorical))
    fitted["n_features_out_"] = n_features_out(fitted)
    if fitted["n_features_out_"] == 0:
        raise ValueError(f"Every column of X ({table.n_columns}) is entirely missing: there "
                         "is nothing to learn from.")
    fitted["sparse_output_"] = _sparse_output(pre.sparse_output, fitted)
    return fitted


def _fit_column(table, j, kind, pre):
    """``(kind, statistics)`` of column ``j``: its kind (EMPTY when it holds
    no value) and, for numbers and categories, the entry of ``_fit_numeric``
    or ``_fit_categorical`` (else None). One column's values at a time, let
    go on return."""
    if kind in _MEASURED:
        values = table.numbers(j) if kind == NUMERIC else table.days(j)
        if np.isnan(values).all():
            return EMPTY, None
        has_missing = bool(np.isnan(values).any())
        return kind, (j, robust_scaling(values, reorder=table.numbers_are_copies), has_missing)
    if kind == BOOL:
        return (EMPTY if np.isnan(table.numbers(j)).all() else BOOL), None
    codes, texts = table.codes(j)
    if (codes < 0).all():
        return EMPTY, None
    return kind, _categorical_levels(j, codes, texts, pre)


def _sparse_output(choice, fitted):
    """Whether the output is CSR: with a one-hot block, when at most
    ``SPARSE_DENSITY`` of its entries are stored per row ('auto')."""
    widths = onehot_widths(fitted)
    if not widths or choice is False:
        return False
    stored = dense_width(fitted) + len(widths)
    return choice is True or stored <= SPARSE_DENSITY * fitted["n_features_out_"]


def _fit_numeric(columns):
    """The numeric attributes from ``(position, (centre, scale), has missing)``
    per numeric column."""
    return {"numeric_columns_": np.array([j for j, _, _ in columns], dtype=np.intp),
            "centre_": np.array([c for _, (c, _), _ in columns], dtype=np.float64),
            "scale_": np.array([s for _, (_, s), _ in columns], dtype=np.float64),
            "indicator_columns_": np.array([j for j, _, missing in columns if missing],
                                           dtype=np.intp)}


def _categorical_levels(j, codes, texts, pre):
    """``(position, kept levels, has other, has missing)`` of a categorical column."""
    kept, has_other = choose_levels(codes, texts.size, pre.max_categories, pre.min_frequency)
    return j, np.asarray(texts[kept], dtype=str), bool(has_other), bool((codes < 0).any())


def _fit_categorical(columns):
    """The categorical attributes from ``_categorical_levels`` per column."""
    levels, encodings, missing, other = [], [], [], []
    for _, kept, has_other, has_missing in columns:
        levels.append(kept)
        encodings.append(BINARY if kept.size <= 2 and not has_other else ONEHOT)
        missing.append(has_missing)
        other.append(has_other)
    return {"categorical_columns_": np.array([j for j, _, _, _ in columns], dtype=np.intp),
            "categories_": levels,
            "categorical_encoding_": np.array(encodings, dtype=object),
            "missing_slot_": np.array(missing, dtype=bool),
            "other_slot_": np.array(other, dtype=bool)}


# ---------------------------------------------------------------------------
# transform
# ---------------------------------------------------------------------------

def _column_positions(pre, table, owner):
    """Where each fitted column is in ``table``: by name when both have
    string column names, else by position."""
    fitted_names = getattr(pre, "feature_names_in_", None)
    names = table.feature_names()
    if fitted_names is not None and names is not None:
        index = {name: j for j, name in enumerate(names)}
        missing = [name for name in fitted_names if name not in index]
        if missing:
            raise ValueError(f"X is missing {len(missing)} column(s) {owner} was fitted with: "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''}. Columns "
                             "are matched by name; every column seen at fit is needed.")
        extra = sorted(set(names) - set(fitted_names))
        if extra:
            warnings.warn(f"X has {len(extra)} column(s) {owner} was not fitted with; they "
                          f"are ignored: {extra[:10]}{' ...' if len(extra) > 10 else ''}",
                          UserWarning, stacklevel=4)
        return np.array([index[name] for name in fitted_names], dtype=np.intp)
    if fitted_names is not None:
        warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                      "feature names", UserWarning, stacklevel=4)
    elif names is not None:
        warnings.warn(f"X has feature names, but {owner} was fitted without feature names",
                      UserWarning, stacklevel=4)
    if table.n_columns != pre.n_features_in_:
        raise ValueError(f"X has {table.n_columns} features, but {owner} is expecting "
                         f"{pre.n_features_in_} features as input.")
    return np.arange(table.n_columns, dtype=np.intp)


def _bool_signs(values, label):
    """+1 / -1 for true / false, 0 for missing; numbers must be 0 or 1."""
    present = ~np.isnan(values)
    if not np.isin(values[present], (0.0, 1.0)).all():
        bad = float(values[present][~np.isin(values[present], (0.0, 1.0))][0])
        raise ValueError(f"column {label} was bool at fit but holds {bad!r}; expected "
                         "True / False (or 1 / 0) and missing values")
    return np.where(present, 2.0 * values - 1.0, 0.0)


def _level_positions(pre, k, table, p):
    """Per row of table column ``p``: the index of its value among the kept
    levels of categorical column ``k``; -1 missing, -2 not kept or unseen."""
    codes, texts = table.codes(p)
    levels = pre.categories_[k]
    where = np.searchsorted(levels, texts)
    found = where < levels.size
    found[found] = levels[where[found]] == texts[found]
    text_level = np.where(found, where, -2)
    return np.where(codes >= 0, text_level[np.maximum(codes, 0)] if texts.size else -2, -1)


def _dense_block(pre, table, positions):
    """Columns 1-4 of the output (see the module docstring)."""
    dense = np.empty((table.n_rows, dense_width(vars(pre))), dtype=pre._output_dtype())
    column = 0
    for j, centre, scale in zip(pre.numeric_columns_, pre.centre_, pre.scale_):
        p = positions[j]
        values = table.numbers(p) if pre.column_kinds_[j] == NUMERIC else table.days(p)
        dense[:, column] = scale_and_clip(values, centre, scale)
        if j in pre.indicator_columns_:
            slot = len(pre.numeric_columns_) + int(np.searchsorted(pre.indicator_columns_, j))
            dense[:, slot] = np.isnan(values)
        column += 1
    column += len(pre.indicator_columns_)
    for j in pre.bool_columns_:
        dense[:, column] = _bool_signs(table.numbers(positions[j]), table.label(positions[j]))
        column += 1
    for k, (j, levels, encoding, _, _) in enumerate(pre._categorical_rows()):
        if encoding == BINARY:
            index = _level_positions(pre, k, table, positions[j])
            signs = np.array([1.0] if levels.size == 1 else [-1.0, 1.0])
            dense[:, column] = np.where(index >= 0, signs[np.maximum(index, 0)], 0.0)
            column += 1
    return dense


def _onehot_slots(pre, table, positions):
    """``(slots, widths)``: per one-hot column, each row's slot (-1: none)
    and the column's number of slots."""
    slots, widths = [], []
    for k, (j, levels, encoding, missing, other) in enumerate(pre._categorical_rows()):
        if encoding != ONEHOT:
            continue
        index = _level_positions(pre, k, table, positions[j])
        missing_slot = levels.size if missing else -1
        other_slot = levels.size + int(missing) if other else -1
        slots.append(np.where(index >= 0, index,
                              np.where(index == -1, missing_slot, other_slot)))
        widths.append(levels.size + int(missing) + int(other))
    return slots, widths


def _dense_with_onehot(dense, slots, widths):
    """The array [dense | one-hot]."""
    n_rows, n_dense = dense.shape
    out = np.zeros((n_rows, n_dense + int(sum(widths))), dtype=dense.dtype)
    out[:, :n_dense] = dense
    offset = n_dense
    rows = np.arange(n_rows)
    for slot, width in zip(slots, widths):
        has_slot = slot >= 0
        out[rows[has_slot], offset + slot[has_slot]] = 1.0
        offset += width
    return out


def _with_onehot_block(dense, slots, widths):
    """The CSR matrix [dense | one-hot]: every dense value stored (zeros
    included), then one entry per one-hot column that has a slot."""
    n_rows, n_dense = dense.shape
    offsets = n_dense + np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp)
    slot_matrix = np.stack(slots, axis=1)                       # (n_rows, n_onehot)
    has_slot = slot_matrix >= 0
    indices = np.concatenate([np.broadcast_to(np.arange(n_dense, dtype=np.intp),
                                              (n_rows, n_dense)),
                              slot_matrix + offsets], axis=1)
    data = np.concatenate([dense, np.ones(slot_matrix.shape, dtype=dense.dtype)], axis=1)
    keep = np.concatenate([np.ones((n_rows, n_dense), dtype=bool), has_slot], axis=1)
    indptr = np.zeros(n_rows + 1, dtype=np.intp)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    shape = (n_rows, n_dense + int(sum(widths)))
    out = sp.csr_matrix((data[keep], indices[keep], indptr), shape=shape)
    out.has_sorted_indices = True
    return out


adopt_when_imported(TabularPreprocessor)
