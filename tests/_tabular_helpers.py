"""Helpers of the tabular tests: an independent reference of the tabular
preprocessing, written with pandas from the rules in docs/tabular.md (not
from fastbp's code: robust scaling from pandas' quantiles, categories from
``value_counts``, the output columns in the documented order), and the
benchmark harness (fastbp._bench_tabular).
"""

import importlib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def benchmark_harness():
    """The tabular benchmark's harness (fastbp._bench_tabular)."""
    return importlib.import_module("fastbp._bench_tabular")


def column_kind(column):
    """'numeric', 'datetime', 'bool' or 'categorical', from pandas' own type
    inference."""
    types = pd.api.types
    dtype = column.dtype
    if types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.StringDtype):
        return "categorical"
    if types.is_datetime64_any_dtype(dtype) or types.is_timedelta64_dtype(dtype):
        return "datetime"
    if dtype != object and types.is_numeric_dtype(dtype):
        return "numeric"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred == "boolean":
        return "bool"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date"):
        return "datetime"
    return "categorical"


def as_numbers(column, kind):
    if kind == "datetime":
        if pd.api.types.is_timedelta64_dtype(column.dtype):
            return (column / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
        stamps = pd.to_datetime(column, utc=True)
        epoch = pd.Timestamp(0, tz="UTC")
        return ((stamps - epoch) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(column, dtype=object).map(
        lambda v: np.nan if v is None or v is pd.NA else float(v)).to_numpy(dtype=float)


def numeric_rule(values):
    """(median, scale) by RealMLP's rule, from pandas' quantiles."""
    finite = pd.Series(values[np.isfinite(values)])
    if finite.empty:
        return 0.0, 0.0
    spread = finite.quantile(0.75) - finite.quantile(0.25)
    if spread == 0:
        spread = (finite.max() - finite.min()) / 2
    return finite.median(), (1 / spread if spread > 0 else 0.0)


def clip(z):
    return z / np.sqrt(1 + (z / 3) ** 2)


def texts(column):
    """The column's values as text (None where missing)."""
    return pd.Series(column, dtype=object).map(
        lambda v: None if v is None or v is pd.NA or v is pd.NaT
        or (isinstance(v, float) and np.isnan(v)) else str(v))


def kept_levels(text, max_categories, min_frequency):
    counts = text.dropna().value_counts()
    frequent = counts[counts >= min_frequency]
    order = sorted(frequent.index, key=lambda level: (-frequent[level], level))
    kept = sorted(order[:max_categories])
    return kept, len(kept) < len(counts)


def reference_transform(fitted_on, frame, max_categories=100, min_frequency=2,
                        categorical=()):
    """The dense float64 output for ``frame`` of the preprocessing fitted on
    ``fitted_on`` (pandas DataFrames with the same columns)."""
    blocks = {"numeric": [], "indicator": [], "bool": [], "binary": [], "onehot": []}
    for name in fitted_on.columns:
        kind = "categorical" if name in categorical else column_kind(fitted_on[name])
        if kind in ("numeric", "datetime"):
            fit_values = as_numbers(fitted_on[name], kind)
            if np.isnan(fit_values).all():
                continue  # an empty column gives no feature
            median, scale = numeric_rule(fit_values)
            values = as_numbers(frame[name], kind)
            with np.errstate(invalid="ignore", over="ignore"):
                out = clip((values - median) * scale)
            out[np.isinf(values)] = np.sign(values[np.isinf(values)]) * (3.0 if scale else 0)
            out[np.isnan(values)] = 0.0
            blocks["numeric"].append(out)
            if np.isnan(fit_values).any():
                blocks["indicator"].append(np.isnan(values).astype(float))
        elif kind == "bool":
            fit_values = pd.Series(fitted_on[name], dtype=object)
            if fit_values.isna().all():
                continue
            values = pd.Series(frame[name], dtype=object)
            blocks["bool"].append(values.map(
                lambda v: 0.0 if v is None or v is pd.NA or v != v else (1.0 if v else -1.0))
                .to_numpy(dtype=float))
        else:
            fit_text = texts(fitted_on[name])
            if fit_text.isna().all():
                continue
            kept, other = kept_levels(fit_text, max_categories, min_frequency)
            text = texts(frame[name])
            if len(kept) <= 2 and not other:
                signs = {kept[0]: 1.0} if len(kept) == 1 else {kept[0]: -1.0, kept[1]: 1.0}
                blocks["binary"].append(text.map(lambda v: signs.get(v, 0.0))
                                        .to_numpy(dtype=float))
                continue
            missing_slot = bool(fit_text.isna().any())
            slots = kept + ["<missing>"] * missing_slot + ["<other>"] * other
            for slot in slots:
                if slot == "<missing>":
                    hit = text.isna()
                elif slot == "<other>":
                    hit = text.notna() & ~text.isin(kept)
                else:
                    hit = text == slot
                blocks["onehot"].append(hit.to_numpy(dtype=float))
    columns = [c for key in ("numeric", "indicator", "bool", "binary", "onehot")
               for c in blocks[key]]
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))
