"""Tables as the preprocessing reads them: numpy arrays and pandas or polars
DataFrames behind one small interface.

A :class:`Table` has ``names`` (the column names, or None for an array),
``n_rows`` and ``n_columns``, and per column (by position):

* ``kind(j)``: what the column holds, from its dtype (object columns from
  their values): ``NUMERIC``, ``BOOL``, ``CATEGORICAL``, ``DATETIME`` or
  ``TIMEDELTA``;
* ``numbers(j)``: float64 values, NaN where missing (numbers and bools);
* ``days(j)``: float64 days, NaN where missing (datetimes: since
  1970-01-01 UTC; durations: their length);
* ``codes(j)``: the column as text categories: ``(codes, texts)``, where
  ``texts`` holds the distinct values as ``str(value)``, sorted, and
  ``codes`` the position of each row's text in it (-1: missing).

pandas and polars are never imported here: a DataFrame is recognised by the
module its type comes from, and only the library that made it works on it.
"""

import datetime
import numbers

import numpy as np

from .._validation import get_feature_names

__all__ = ["NUMERIC", "BOOL", "CATEGORICAL", "DATETIME", "TIMEDELTA", "KINDS", "Table",
           "as_table", "check_shape", "is_dataframe_of"]

NUMERIC, BOOL, CATEGORICAL, DATETIME, TIMEDELTA = (
    "numeric", "bool", "categorical", "datetime", "timedelta")
KINDS = (NUMERIC, BOOL, CATEGORICAL, DATETIME, TIMEDELTA)

_US_PER_DAY = 86_400_000_000.0


def is_dataframe_of(X, library):
    """Whether ``X`` is a DataFrame of ``library`` ('pandas' or 'polars'),
    without importing it."""
    module = type(X).__module__ or ""
    return (module == library or module.startswith(library + ".")) and \
        type(X).__name__ == "DataFrame"


def as_table(X, input_name="X"):
    """``X`` (a 2-D array-like, a pandas or polars DataFrame, or a Table) as a
    Table."""
    if isinstance(X, Table):
        return X
    if is_dataframe_of(X, "pandas"):
        return _PandasTable(X)
    if is_dataframe_of(X, "polars"):
        return _PolarsTable(X)
    if hasattr(X, "columns") and hasattr(X, "dtypes") and not isinstance(X, np.ndarray):
        raise TypeError(f"{input_name} is a {type(X).__module__}.{type(X).__name__}; the "
                        "tabular preprocessing reads numpy arrays, scipy.sparse matrices and "
                        "pandas or polars DataFrames: convert it to one of those first.")
    try:
        array = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{input_name} could not be read as a 2-D array ({exc}); every row "
                         "needs the same number of columns.") from None
    if array.ndim != 2:
        raise ValueError(f"Expected a 2D {input_name} (rows x columns), got an array of shape "
                         f"{array.shape} instead. Reshape your data either using "
                         "array.reshape(-1, 1) if your data has a single feature or "
                         "array.reshape(1, -1) if it contains a single sample.")
    return _ArrayTable(array)


def check_shape(n_rows, n_columns, owner, input_name="X"):
    """At least one row and one column (scikit-learn's messages)."""
    shape = (n_rows, n_columns)
    if n_rows < 1:
        raise ValueError(f"Found array with {n_rows} sample(s) (shape={shape}) while a "
                         f"minimum of 1 is required by {owner}.")
    if n_columns < 1:
        raise ValueError(f"Found array with {n_columns} feature(s) (shape={shape}) while a "
                         f"minimum of 1 is required by {owner}.")


# ---------------------------------------------------------------------------
# values shared by every kind of table
# ---------------------------------------------------------------------------

def _is_missing(value):
    # None, NaN, pandas.NA / NaT and numpy NaT, without importing pandas
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    return type(value).__name__ in ("NAType", "NaTType")


_missing_ufunc = np.frompyfunc(_is_missing, 1, 1)


def missing_mask(values):
    """Where an object array holds a missing value."""
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return _missing_ufunc(values).astype(bool)


def _is_date(value):
    return isinstance(value, (datetime.date, np.datetime64))


def _is_duration(value):
    return isinstance(value, (datetime.timedelta, np.timedelta64))


def infer_object_kind(values):
    """The kind of an object column from its non-missing values: bools,
    numbers, dates or durations; anything else (text, or a mix of kinds) is
    categorical. A column with no value is NUMERIC (all missing)."""
    present = values[~missing_mask(values)]
    types = {type(v) for v in present}
    if not types:
        return NUMERIC
    if all(issubclass(t, (bool, np.bool_)) for t in types):
        return BOOL
    if all(issubclass(t, (numbers.Real, np.bool_)) for t in types):
        return NUMERIC
    if all(issubclass(t, (datetime.timedelta, np.timedelta64)) for t in types):
        return TIMEDELTA
    if all(issubclass(t, (datetime.date, np.datetime64)) for t in types):
        return DATETIME
    return CATEGORICAL


def object_numbers(values, label):
    """An object column of numbers (and bools) as float64, NaN where missing."""
    missing = missing_mask(values)
    out = np.full(values.shape, np.nan)
    present = values[~missing]
    try:
        out[~missing] = present.astype(np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in present if not isinstance(v, (numbers.Real, np.bool_)))
        raise ValueError(f"column {label} holds {type(bad).__name__} values such as "
                         f"{bad!r} where numbers are expected (it was numeric when the "
                         "preprocessing was fitted)") from None
    return out


def datetime64_days(values):
    """datetime64 / timedelta64 values as float64 days (NaT -> NaN)."""
    unit = "datetime64[us]" if values.dtype.kind == "M" else "timedelta64[us]"
    micro = values.astype(unit)
    out = micro.view(np.int64).astype(np.float64) / _US_PER_DAY
    out[np.isnat(micro)] = np.nan
    return out


def object_days(values, kind, label):
    """An object column of dates or durations as float64 days."""
    missing = missing_mask(values)
    present = values[~missing]
    check = _is_date if kind == DATETIME else _is_duration
    bad = [v for v in present[:1000] if not check(v)]
    if bad:
        raise ValueError(f"column {label} holds {type(bad[0]).__name__} values such as "
                         f"{bad[0]!r} where {'dates' if kind == DATETIME else 'durations'} "
                         "are expected")
    unit = "datetime64[us]" if kind == DATETIME else "timedelta64[us]"
    out = np.full(values.shape, np.nan)
    if present.size:
        out[~missing] = datetime64_days(np.array(
            [_naive_utc(v) for v in present] if kind == DATETIME else list(present),
            dtype=unit))
    return out


def _naive_utc(value):
    # an aware datetime in UTC without its zone (numpy refuses aware datetimes)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def texts_and_codes(codes, uniques):
    """``(codes, texts)`` from a factorisation whose distinct values are
    ``uniques``: each unique as ``str(value)``; values with the same text
    (1 and '1') merge; texts sorted."""
    texts = np.array([str(u) for u in uniques], dtype=object)
    if texts.size == 0:
        return np.full(codes.shape, -1, dtype=np.int64), texts.astype(str)
    sorted_texts, position = np.unique(texts.astype(str), return_inverse=True)
    codes = np.asarray(codes, dtype=np.int64)
    out = np.where(codes >= 0, position[np.maximum(codes, 0)], -1)
    return out.astype(np.int64), sorted_texts


def array_codes(values):
    """``(codes, texts)`` of a numpy column (any dtype)."""
    if values.dtype.kind in "US":
        texts, codes = np.unique(values.astype(str), return_inverse=True)
        return codes.astype(np.int64).reshape(-1), texts
    if values.dtype.kind in "fc":
        missing = np.isnan(values)
    elif values.dtype.kind in "mM":
        missing = np.isnat(values)
    elif values.dtype.kind == "O":
        missing = missing_mask(values)
    else:
        missing = np.zeros(values.shape, dtype=bool)
    present = values[~missing]
    if values.dtype.kind != "O":
        present = present.astype(object)  # str() of numpy scalars: '7', '7.5', 'True'
    texts, inverse = np.unique(present.astype(str), return_inverse=True)
    codes = np.full(values.shape, -1, dtype=np.int64)
    codes[~missing] = inverse.reshape(-1)
    return codes, texts


def _arrow_kind(arrow_type, label):
    """The kind of a pyarrow-backed pandas column."""
    import pyarrow as pa

    types = pa.types
    if types.is_boolean(arrow_type):
        return BOOL
    if types.is_integer(arrow_type) or types.is_floating(arrow_type) or \
            types.is_decimal(arrow_type) or types.is_null(arrow_type):
        return NUMERIC
    if types.is_string(arrow_type) or types.is_large_string(arrow_type) or \
            types.is_dictionary(arrow_type) or getattr(types, "is_string_view", bool)(arrow_type):
        return CATEGORICAL
    if types.is_timestamp(arrow_type) or types.is_date(arrow_type):
        return DATETIME
    if types.is_duration(arrow_type):
        return TIMEDELTA
    raise _dtype_kind_error(label, arrow_type)


def _dtype_kind_error(label, dtype):
    if "complex" in str(dtype):
        return ValueError(f"Complex data not supported: column {label} has dtype {dtype}.")
    return TypeError(f"column {label} has dtype {dtype}, which the tabular preprocessing "
                     "cannot read: it takes numbers, bools, text or categories, dates and "
                     "durations. Convert or drop the column.")


# ---------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------

class Table:
    """The interface (see the module docstring); ``label(j)`` names a column
    in messages."""

    names = None
    # numbers(j) and days(j) return a new array each time, the caller's to reorder
    numbers_are_copies = False

    def feature_names(self):
        """The column names kept as ``feature_names_in_`` (all strings), or None."""
        return None

    def label(self, j):
        return repr(self.names[j]) if self.names is not None else f"{j} (by position)"


class _ArrayTable(Table):
    """A 2-D numpy array: columns by position; an object array is read
    column by column."""

    numbers_are_copies = True  # astype and the object conversions make new arrays

    def __init__(self, array):
        if array.dtype.kind in "cV":
            raise _dtype_kind_error("0 (every column: the array's dtype)", array.dtype)
        self.array = array
        self.n_rows, self.n_columns = array.shape

    def kind(self, j):
        code = self.array.dtype.kind
        if code == "O":
            return infer_object_kind(self.array[:, j])
        return {"b": BOOL, "i": NUMERIC, "u": NUMERIC, "f": NUMERIC, "M": DATETIME,
                "m": TIMEDELTA, "U": CATEGORICAL, "S": CATEGORICAL}[code]

    def numbers(self, j):
        column = self.array[:, j]
        if column.dtype.kind in "biuf":
            return column.astype(np.float64)
        if column.dtype.kind == "O":
            return object_numbers(column, self.label(j))
        raise ValueError(f"column {self.label(j)} holds {column.dtype} values where numbers "
                         "are expected")

    def days(self, j):
        column = self.array[:, j]
        if column.dtype.kind in "mM":
            return datetime64_days(column)
        if column.dtype.kind == "O":
            return object_days(column, DATETIME if self.kind(j) == DATETIME else TIMEDELTA,
                               self.label(j))
        raise ValueError(f"column {self.label(j)} holds {column.dtype} values where dates "
                         "or durations are expected")

    def codes(self, j):
        return array_codes(self.array[:, j])


class _PandasTable(Table):
    """A pandas DataFrame: columns by name."""

    def __init__(self, frame):
        import pandas as pd

        self.pd = pd
        self.frame = frame
        self.n_rows, self.n_columns = frame.shape
        self.names = list(frame.columns)

    def feature_names(self):
        return get_feature_names(self.frame)

    def column(self, j):
        return self.frame.iloc[:, j]

    def kind(self, j):
        types = self.pd.api.types
        dtype = self.column(j).dtype
        if isinstance(dtype, self.pd.ArrowDtype):  # pyarrow-backed (read_csv(dtype_backend=...))
            return _arrow_kind(dtype.pyarrow_dtype, self.label(j))
        if types.is_bool_dtype(dtype):
            return BOOL
        if isinstance(dtype, self.pd.CategoricalDtype):
            return CATEGORICAL
        if types.is_datetime64_any_dtype(dtype):
            return DATETIME
        if types.is_timedelta64_dtype(dtype):
            return TIMEDELTA
        if dtype == object:
            return infer_object_kind(self.column(j).to_numpy())
        if types.is_complex_dtype(dtype):
            raise _dtype_kind_error(self.label(j), dtype)
        if types.is_numeric_dtype(dtype):
            return NUMERIC
        if isinstance(dtype, self.pd.StringDtype):
            return CATEGORICAL
        raise _dtype_kind_error(self.label(j), dtype)

    def numbers(self, j):
        column = self.column(j)
        if column.dtype == object:
            return object_numbers(column.to_numpy(), self.label(j))
        try:
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"column {self.label(j)} has dtype {column.dtype} where numbers "
                             "are expected (it was numeric when the preprocessing was "
                             "fitted)") from None

    def days(self, j):
        column = self.column(j)
        types = self.pd.api.types
        if isinstance(column.dtype, self.pd.ArrowDtype):
            column = self._arrow_as_numpy_time(column)
        if types.is_datetime64_any_dtype(column.dtype):
            if getattr(column.dtype, "tz", None) is not None:
                column = column.dt.tz_convert("UTC").dt.tz_localize(None)
            return datetime64_days(column.to_numpy())
        if types.is_timedelta64_dtype(column.dtype):
            return datetime64_days(column.to_numpy())
        if column.dtype == object:
            kind = infer_object_kind(column.to_numpy())
            if kind in (DATETIME, TIMEDELTA):
                return object_days(column.to_numpy(), kind, self.label(j))
        raise ValueError(f"column {self.label(j)} has dtype {column.dtype} where dates or "
                         "durations are expected")

    def _arrow_as_numpy_time(self, column):
        """A pyarrow-backed date, time stamp or duration column as numpy's."""
        kind = _arrow_kind(column.dtype.pyarrow_dtype, column.name)
        if kind == TIMEDELTA:
            return column.astype("timedelta64[us]")
        if kind != DATETIME:
            return column
        if getattr(column.dtype.pyarrow_dtype, "tz", None) is not None:
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        return column.astype("datetime64[us]")

    def codes(self, j):
        codes, uniques = self.pd.factorize(self.column(j), use_na_sentinel=True)
        return texts_and_codes(codes, list(uniques))


class _PolarsTable(Table):
    """A polars DataFrame: columns by name."""

    def __init__(self, frame):
        import polars as pl

        self.pl = pl
        self.frame = frame
        self.n_rows, self.n_columns = frame.shape
        self.names = list(frame.columns)

    def feature_names(self):
        return get_feature_names(self.frame)

    def column(self, j):
        return self.frame.to_series(j)

    def kind(self, j):
        pl = self.pl
        dtype = self.column(j).dtype
        if dtype == pl.Boolean:
            return BOOL
        if dtype.is_numeric() or dtype == pl.Null:
            return NUMERIC
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            return CATEGORICAL
        if dtype in (pl.Date, pl.Datetime):
            return DATETIME
        if dtype == pl.Duration:
            return TIMEDELTA
        if dtype == pl.Object:
            return infer_object_kind(self.column(j).to_numpy())
        raise _dtype_kind_error(self.label(j), dtype)

    def numbers(self, j):
        pl = self.pl
        column = self.column(j)
        if column.dtype == pl.Object:
            return object_numbers(column.to_numpy(), self.label(j))
        if not (column.dtype.is_numeric() or column.dtype in (pl.Boolean, pl.Null)):
            raise ValueError(f"column {self.label(j)} has dtype {column.dtype} where numbers "
                             "are expected (it was numeric when the preprocessing was "
                             "fitted)")
        return column.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)

    def days(self, j):
        pl = self.pl
        column = self.column(j)
        if column.dtype in (pl.Date, pl.Datetime):
            micro = column.dt.epoch("us")
        elif column.dtype == pl.Duration:
            micro = column.dt.total_microseconds()
        else:
            raise ValueError(f"column {self.label(j)} has dtype {column.dtype} where dates "
                             "or durations are expected")
        return micro.cast(pl.Float64).fill_null(np.nan).to_numpy() / _US_PER_DAY

    def codes(self, j):
        pl = self.pl
        column = self.column(j)
        if column.dtype in (pl.String, pl.Categorical) or isinstance(column.dtype, pl.Enum):
            text = column.cast(pl.String)
            texts = text.drop_nulls().unique().sort()
            codes = text.cast(pl.Enum(texts.to_list())).to_physical().cast(pl.Int64)
            return (codes.fill_null(-1).to_numpy().astype(np.int64),
                    np.asarray(texts.to_list(), dtype=str))
        values = column.to_numpy()
        if values.dtype.kind != "O" and column.null_count():
            values = np.asarray(column.to_list(), dtype=object)
        return array_codes(values)
