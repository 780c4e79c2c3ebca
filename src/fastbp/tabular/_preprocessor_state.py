"""The tabular preprocessing as plain data, and back (with every check a
state read from a file needs).

The state::

    params              the constructor parameters (get_params())
    -- fitted only --
    n_features_in       int
    feature_names_in    list of str, or None (columns by position)
    sparse_input        bool: fitted on a scipy.sparse matrix
    sparse_output       bool: transform returns a CSR matrix
    column_kinds        per input column: 'numeric', 'datetime', 'timedelta',
                        'bool', 'categorical' or 'empty'
    centre, scale       float64 arrays, one value per numeric / datetime /
                        timedelta column, in column order
    indicator_columns   input positions of the numeric columns with a
                        missing-value indicator, increasing
    categories          per categorical column (in column order): its kept
                        levels, sorted list of str
    categorical_encoding  per categorical column: 'binary' or 'onehot'
    missing_slot, other_slot  per categorical column: bool

The column positions of each kind follow from ``column_kinds``.
"""

import numpy as np

from ._tables import BOOL, CATEGORICAL, DATETIME, KINDS, NUMERIC, TIMEDELTA

__all__ = ["to_state", "attributes_of", "n_features_out", "dense_width", "onehot_widths",
           "FITTED_ATTRIBUTES", "EMPTY", "BINARY", "ONEHOT"]

EMPTY = "empty"                       # a column without any value at fit: no feature
BINARY, ONEHOT = "binary", "onehot"   # the two encodings of a categorical column
_MEASURED = (NUMERIC, DATETIME, TIMEDELTA)

# every fitted attribute of TabularPreprocessor
FITTED_ATTRIBUTES = (
    "n_features_in_", "feature_names_in_", "sparse_input_", "sparse_output_", "column_kinds_",
    "numeric_columns_", "centre_", "scale_", "indicator_columns_", "bool_columns_",
    "categorical_columns_", "categories_", "categorical_encoding_", "missing_slot_",
    "other_slot_", "n_features_out_",
)


def onehot_widths(fitted):
    """Slots per one-hot column (levels, plus missing and other slots), from
    the fitted attributes by name."""
    return [len(levels) + int(missing) + int(other) for levels, encoding, missing, other in
            zip(fitted["categories_"], fitted["categorical_encoding_"],
                fitted["missing_slot_"], fitted["other_slot_"]) if encoding == ONEHOT]


def dense_width(fitted):
    """Columns of the dense block."""
    n_binary = int(np.sum(np.asarray(fitted["categorical_encoding_"]) == BINARY))
    return (len(fitted["numeric_columns_"]) + len(fitted["indicator_columns_"])
            + len(fitted["bool_columns_"]) + n_binary)


def n_features_out(fitted):
    return dense_width(fitted) + sum(onehot_widths(fitted))


def to_state(pre):
    """``pre`` as plain data (see the module docstring)."""
    state = {"params": pre.get_params()}
    if not pre._is_fitted():
        return state
    names = getattr(pre, "feature_names_in_", None)
    state.update(
        n_features_in=int(pre.n_features_in_),
        feature_names_in=None if names is None else [str(n) for n in names],
        sparse_input=bool(pre.sparse_input_),
        sparse_output=bool(pre.sparse_output_),
        column_kinds=[str(k) for k in pre.column_kinds_],
        centre=np.array(pre.centre_, dtype=np.float64),
        scale=np.array(pre.scale_, dtype=np.float64),
        indicator_columns=[int(j) for j in pre.indicator_columns_],
        categories=[[str(level) for level in levels] for levels in pre.categories_],
        categorical_encoding=[str(e) for e in pre.categorical_encoding_],
        missing_slot=[bool(m) for m in pre.missing_slot_],
        other_slot=[bool(o) for o in pre.other_slot_],
    )
    return state


def _require(condition, message):
    if not condition:
        raise ValueError(f"invalid tabular preprocessing state: {message}")


def _check_columns(state):
    n = state["n_features_in"]
    _require(isinstance(n, int) and not isinstance(n, bool) and n >= 1,
             f"n_features_in must be an int >= 1, got {n!r}")
    kinds = state["column_kinds"]
    _require(isinstance(kinds, list) and len(kinds) == n
             and all(k in KINDS + (EMPTY,) for k in kinds),
             f"column_kinds must list one of {KINDS + (EMPTY,)} per column ({n})")
    names = state["feature_names_in"]
    _require(names is None or (isinstance(names, list) and len(names) == n
                               and all(isinstance(x, str) for x in names)
                               and len(set(names)) == n),
             "feature_names_in must be None or one distinct str per column")
    _require(isinstance(state["sparse_input"], bool) and isinstance(state["sparse_output"], bool),
             "sparse_input and sparse_output must be bools")
    _require(not state["sparse_input"] or (set(kinds) == {NUMERIC} and names is None),
             "a sparse-input state has numeric columns only, by position")


def _check_numeric(state):
    measured = [j for j, k in enumerate(state["column_kinds"]) if k in _MEASURED]
    for key in ("centre", "scale"):
        values = state[key]
        _require(isinstance(values, np.ndarray) and values.dtype == np.float64
                 and values.shape == (len(measured),) and np.isfinite(values).all(),
                 f"{key} must be {len(measured)} finite float64 values")
    _require((state["scale"] >= 0).all(), "scale must be >= 0")
    indicator = state["indicator_columns"]
    _require(isinstance(indicator, list) and indicator == sorted(set(indicator))
             and set(indicator) <= set(measured),
             "indicator_columns must be increasing positions of numeric columns")


def _check_categorical(state):
    n_categorical = state["column_kinds"].count(CATEGORICAL)
    keys = ("categories", "categorical_encoding", "missing_slot", "other_slot")
    for key in keys:
        _require(isinstance(state[key], list) and len(state[key]) == n_categorical,
                 f"{key} must have one entry per categorical column ({n_categorical})")
    for levels, encoding, missing, other in zip(*(state[key] for key in keys)):
        _require(isinstance(levels, list) and all(isinstance(v, str) for v in levels)
                 and levels == sorted(set(levels)),
                 "each category list must hold distinct str in sorted order")
        _require(isinstance(missing, bool) and isinstance(other, bool),
                 "missing_slot and other_slot must hold bools")
        _require(encoding == ONEHOT or (encoding == BINARY and 1 <= len(levels) <= 2
                                        and not other),
                 f"a categorical encoding is 'onehot', or 'binary' with 1 or 2 levels and "
                 f"no other slot; got {encoding!r} with {len(levels)} levels")


def attributes_of(state):
    """The attributes of a preprocessing in ``state`` (checked), by name."""
    attributes = dict(state["params"])
    if "column_kinds" not in state:
        return attributes
    _check_columns(state)
    _check_numeric(state)
    _check_categorical(state)
    kinds = np.asarray(state["column_kinds"], dtype=object)
    fitted = {
        "n_features_in_": state["n_features_in"],
        "sparse_input_": state["sparse_input"],
        "sparse_output_": state["sparse_output"],
        "column_kinds_": kinds,
        "numeric_columns_": np.flatnonzero(np.isin(kinds, _MEASURED)),
        "centre_": state["centre"].copy(),
        "scale_": state["scale"].copy(),
        "indicator_columns_": np.array(state["indicator_columns"], dtype=np.intp),
        "bool_columns_": np.flatnonzero(kinds == BOOL),
        "categorical_columns_": np.flatnonzero(kinds == CATEGORICAL),
        "categories_": [np.array(levels, dtype=str) for levels in state["categories"]],
        "categorical_encoding_": np.array(state["categorical_encoding"], dtype=object),
        "missing_slot_": np.array(state["missing_slot"], dtype=bool),
        "other_slot_": np.array(state["other_slot"], dtype=bool),
    }
    for key in ("numeric_columns_", "bool_columns_", "categorical_columns_"):
        fitted[key] = fitted[key].astype(np.intp)
    if state["feature_names_in"] is not None:
        fitted["feature_names_in_"] = np.array(state["feature_names_in"], dtype=object)
    fitted["n_features_out_"] = n_features_out(fitted)
    _require(fitted["n_features_out_"] >= 1, "the preprocessing gives no feature")
    attributes.update(fitted)
    return attributes
