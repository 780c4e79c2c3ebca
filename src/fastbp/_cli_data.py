"""Data files for the command line: CSV, Parquet, .npy and .npz in, a table
(a pandas DataFrame, or a numeric array with column names) out; the target
split off and the task guessed.

CSV and Parquet go through pyarrow and pandas when they are installed
(``pip install "fastbp[cli]"``): any delimiter, quoted fields, missing
markers, text, bool and date columns. pyarrow's streaming CSV reader holds
one block of text beyond the columns it has read (pandas' own reader
peaked at about three times the table's size on a generated 250 MB file);
with pandas alone, pandas reads CSV. Without pandas, CSV files of numbers
(and missing markers; text in the target column only) are read with the
``csv`` module and ``.npy`` / ``.npz`` files with numpy, so the numeric
path needs nothing beyond numpy and scipy. Every error is a
:class:`CLIError` with one line.
"""

import csv
import importlib.util
import math
import os

import numpy as np

__all__ = ["CLIError", "DataTable", "read_table", "MISSING_MARKERS", "guess_task",
           "INTEGER_CLASSES_MAX", "one_line", "open_arrow_csv", "csv_error",
           "arrow_reading_errors", "ARROW_BLOCK_BYTES"]

# the cells read as missing (plus '?' with --missing-question-mark)
MISSING_MARKERS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
# an integer target with at most this many distinct values is a class label
INTEGER_CLASSES_MAX = 20
_SNIFF_BYTES = 64 * 1024
# text pyarrow's CSV reader parses per batch (its default is 1 MB): the column types
# are inferred from the first batch; larger batches cost fewer Python calls
ARROW_BLOCK_BYTES = 4 << 20
_DELIMITERS = ",;\t|"


class CLIError(Exception):
    """A user error: reported as one line, no traceback."""


def have_pandas():
    return importlib.util.find_spec("pandas") is not None


def have_pyarrow():
    return importlib.util.find_spec("pyarrow") is not None


class DataTable:
    """The rows of a data file: ``frame`` (a pandas DataFrame) or ``array``
    (a 2-D float array) with ``names`` (column names, or None: by
    position); ``y`` when an .npz archive held one."""

    def __init__(self, path, frame=None, array=None, names=None, y=None, texts=None):
        self.path = path
        self.frame = frame
        self.array = array
        self.names = list(map(str, frame.columns)) if frame is not None else names
        self.y = y
        # without pandas: the columns of text, {index: (their cells, first text line)}
        self.texts = texts or {}

    @property
    def n_columns(self):
        return self.frame.shape[1] if self.frame is not None else self.array.shape[1]

    @property
    def n_rows(self):
        return self.frame.shape[0] if self.frame is not None else self.array.shape[0]

    def describe_columns(self):
        if self.names is not None:
            shown = ", ".join(repr(n) for n in self.names[:20])
            return shown + (f" and {len(self.names) - 20} more" if len(self.names) > 20 else "")
        return f"0 to {self.n_columns - 1} (no header row)"

    def column_index(self, spec):
        """Index of the column named or numbered by ``spec`` (negative counts
        from the end)."""
        if self.names is not None and spec in self.names:
            if self.names.count(spec) > 1:
                raise CLIError(f"{self.path}: more than one column is named {spec!r}")
            return self.names.index(spec)
        try:
            index = int(spec)
        except ValueError:
            raise CLIError(f"{self.path}: no column {spec!r} (its columns are "
                           f"{self.describe_columns()})") from None
        if not -self.n_columns <= index < self.n_columns:
            raise CLIError(f"{self.path}: column index {index} is out of range: the file has "
                           f"{self.n_columns} columns")
        return index % self.n_columns

    def column_name(self, index):
        return self.names[index] if self.names is not None else str(index)

    def column(self, index):
        """One column's values (a numpy array; text as fixed-width str, not
        one Python object per row)."""
        if self.frame is None:
            return self.texts[index][0] if index in self.texts else self.array[:, index]
        series = self.frame.iloc[:, index]
        kind = getattr(series.dtype, "kind", "O")
        has_missing = bool(series.isna().any())
        if kind in "iu" and not has_missing:
            return series.to_numpy(dtype=np.int64)
        if kind in "iuf":
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        if kind == "b" and not has_missing:
            return series.to_numpy(dtype=bool)
        if kind in "mM":
            return series.to_numpy()
        import pandas as pd

        codes, levels = pd.factorize(series)
        if (codes < 0).any():  # missing cells: as objects (None), for the message
            return series.to_numpy(dtype=object, na_value=None)
        return np.asarray([str(level) for level in levels], dtype=str)[codes]

    def columns(self, indices):
        """A table of the given columns (a DataFrame or a 2-D array)."""
        if self.frame is not None:
            return self.frame.iloc[:, list(indices)]
        for j in indices:
            if j in self.texts:
                cells, line = self.texts[j]
                text = str(cells[line - 1 - (self.names is not None)])
                raise CLIError(f"{self.path}, line {line}, column {self.column_name(j)!r}: "
                               f"{text!r} is not a number; text columns need pandas: pip "
                               "install 'fastbp[cli]'")
        return self.array[:, list(indices)]

    def drop_frame(self):
        """Let go of the rows (the training matrix is made)."""
        self.frame = self.array = None


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------

# a CSV up to this size, read for a model without preprocessing, goes through
# the csv module first: numbers only need no pandas (whose import costs more
# than predicting a few rows)
NUMBERS_FIRST_BYTES = 1 << 20


def read_table(path, *, header="auto", delimiter=None, encoding="utf-8",
               question_mark_missing=False, numbers_first=False, arrow_csv_reader=None):
    """Read a CSV (``.csv``, ``.tsv``, ``.txt``; gzip/bz2/zip/xz compressed
    too), Parquet, ``.npy`` or ``.npz`` file into a :class:`DataTable`.
    ``numbers_first``: a small CSV is read without pandas when all its cells
    are numbers (or missing). ``arrow_csv_reader(path, sep, has_header,
    encoding, markers)``: reads a CSV when pandas and pyarrow are installed,
    in place of the DataFrame reader (None from it: the DataFrame reader)."""
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, expected a data file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".npy", ".npz"):
        return _read_numpy(path, suffix)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    markers = MISSING_MARKERS + (("?",) if question_mark_missing else ())
    try:
        first_rows, sep = _sniff(path, encoding, delimiter, suffix)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    has_header = _has_header(first_rows, header, markers)
    if not have_pandas() or (numbers_first and os.path.getsize(path) <= NUMBERS_FIRST_BYTES):
        table = _read_csv_numbers(path, sep, has_header, encoding, markers)
        if not table.texts or not have_pandas():
            return table
    if have_pandas() and have_pyarrow():
        table = None
        if arrow_csv_reader is not None:
            table = arrow_csv_reader(path, sep, has_header, encoding, markers)
        return table or _read_csv_arrow(path, sep, has_header, encoding, markers)
    return _read_csv_pandas(path, sep, has_header, encoding, markers)


def _encoding_error(path, encoding, exc):
    return CLIError(f"{path}: not {encoding} text (byte 0x{exc.object[exc.start]:02x} at "
                    f"position {exc.start}); name the file's encoding with --encoding, e.g. "
                    "--encoding cp1252 for Windows-1252 or --encoding latin-1")


def _open_text(path, encoding):
    """A text stream of a (possibly compressed) file, BOM removed."""
    import bz2
    import gzip
    import lzma

    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(os.path.splitext(path)[1].lower(), open)
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    return opener(path, "rt", encoding=enc, newline="")


def _sniff(path, encoding, delimiter, suffix):
    """(the first rows as lists of fields, the delimiter)."""
    try:
        with _open_text(path, encoding) as fh:
            sample = fh.read(_SNIFF_BYTES)
    except LookupError:
        raise CLIError(f"unknown encoding {encoding!r} (try utf-8, cp1252 or latin-1)") from None
    except OSError as exc:
        raise CLIError(f"{path}: cannot read it ({exc})") from None
    if not sample.strip():
        raise CLIError(f"{path}: the file is empty")
    if delimiter is None:
        delimiter = "\t" if suffix == ".tsv" else _guess_delimiter(sample)
    lines = sample.splitlines()
    if len(sample) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    rows = [row for row in csv.reader(lines[:50], delimiter=delimiter) if row]
    return rows, delimiter


def _guess_delimiter(sample):
    """The candidate that splits the first lines into the same number (> 1)
    of fields most often; ',' when none does."""
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    best, best_score = ",", 0
    for candidate in _DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=candidate)]
        if not counts or counts[0] < 2:
            continue
        score = sum(c == counts[0] for c in counts) * 1000 + counts[0]
        if score > best_score:
            best, best_score = candidate, score
    return best


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _has_header(rows, header, markers):
    if header != "auto":
        return header == "yes"
    # a header row is names: no field is a number or a missing marker
    return bool(rows) and not any(_is_number(f) or f.strip() in markers[1:] for f in rows[0])


def _header_names(frame):
    """Column names as text; a header without names gets x0, x1, ..."""
    return [str(name) if isinstance(name, str) else f"x{name}" for name in frame.columns]


def open_arrow_csv(path, sep, has_header, encoding, markers, block_size=None):
    """pyarrow's streaming CSV reader over ``path`` with the command's
    options (``block_size``: bytes of text per batch, pyarrow's default when
    None); errors as CLIError."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read_options = pacsv.ReadOptions(encoding=encoding, autogenerate_column_names=not has_header)
    if block_size is not None:
        read_options.block_size = block_size
    try:
        reader = pacsv.open_csv(
            path, read_options=read_options,
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(null_values=list(markers),
                                                 strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
        raise csv_error(path, exc) from None
    for name, column_type in zip(reader.schema.names, reader.schema.types):
        if pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type):
            raise CLIError(f"{path}: not {encoding} text (column {name!r} holds bytes that "
                           f"are not {encoding}); name the file's encoding with --encoding, "
                           "e.g. --encoding cp1252 for Windows-1252 or --encoding latin-1")
    return reader


def csv_error(path, exc):
    """The CLIError of a file pyarrow or pandas cannot parse."""
    return CLIError(f"{path}: cannot read it as CSV ({one_line(exc)})")


def arrow_reading_errors():
    """The exceptions pyarrow raises on a file it cannot read."""
    import pyarrow as pa

    return (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError)


def _read_csv_arrow(path, sep, has_header, encoding, markers):
    """pyarrow's streaming CSV reader: one block of text at a time, each
    block's columns kept as Arrow arrays, and the DataFrame's columns made
    of them without a copy (pandas' ArrowDtype): the working set is one
    block, beyond the columns themselves."""
    import pandas as pd
    import pyarrow as pa

    reader = open_arrow_csv(path, sep, has_header, encoding, markers, ARROW_BLOCK_BYTES)
    names = reader.schema.names
    chunks = [[] for _ in names]
    try:
        for batch in reader:
            for j, column in enumerate(batch.columns):
                chunks[j].append(column)
    except arrow_reading_errors() as exc:
        raise csv_error(path, exc) from None
    columns = {}
    for j, name in enumerate(names):
        column = pa.chunked_array(chunks[j], type=reader.schema.field(j).type)
        chunks[j] = None
        columns[name] = pd.Series(pd.arrays.ArrowExtensionArray(column), copy=False)
    frame = pd.DataFrame(columns, copy=False)
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: no data rows")
    return _named(path, frame, has_header)


def _named(path, frame, has_header):
    frame.columns = _header_names(frame) if has_header else [str(j) for j in
                                                            range(frame.shape[1])]
    table = DataTable(path, frame=frame)
    table.names = list(frame.columns) if has_header else None
    return table


def _read_csv_pandas(path, sep, has_header, encoding, markers):
    import pandas as pd

    # correctly rounded numbers (pandas 3 parses them so by default)
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    try:
        frame = pd.read_csv(path, sep=sep, header=0 if has_header else None,
                            na_values=list(markers), keep_default_na=False,
                            encoding=encoding, skipinitialspace=True, **exact)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise csv_error(path, exc) from None
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: no data rows")
    return _named(path, frame, has_header)


def _read_csv_numbers(path, sep, has_header, encoding, markers):
    """Without pandas: a CSV of numbers (missing markers allowed); a column
    of text can only be the target (class names)."""
    try:
        with _open_text(path, encoding) as fh:
            rows = [row for row in csv.reader(fh, delimiter=sep) if row]
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, encoding, exc) from None
    except (OSError, csv.Error) as exc:
        raise CLIError(f"{path}: cannot read it ({one_line(exc)})") from None
    names = [name.strip() for name in rows[0]] if has_header else None
    body = rows[1:] if has_header else rows
    if not body:
        raise CLIError(f"{path}: no data rows")
    width = len(names) if names is not None else len(body[0])
    for line, row in enumerate(body, start=1 + has_header):
        if len(row) != width:
            raise CLIError(f"{path}, line {line}: {len(row)} fields, expected {width}")
    array = np.empty((len(body), width))
    texts = {}
    missing = set(markers)
    for j in range(width):
        cells = [row[j].strip() for row in body]
        try:
            array[:, j] = [math.nan if cell in missing else float(cell) for cell in cells]
        except ValueError:
            line = next(k for k, cell in enumerate(cells)
                        if cell not in missing and not _is_number(cell))
            texts[j] = (np.array(cells), line + 1 + has_header)
            array[:, j] = math.nan
    return DataTable(path, array=array, names=names, texts=texts)


def _read_parquet(path):
    if not have_pandas() or importlib.util.find_spec("pyarrow") is None:
        raise CLIError(f"{path}: reading Parquet needs pandas and pyarrow: pip install "
                       "'fastbp[cli]'")
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"{path}: cannot read it as Parquet ({one_line(exc)})") from None
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: no data rows")
    frame.columns = _header_names(frame)
    return DataTable(path, frame=frame)


def _numeric_array(path, array, what):
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} must be a 2-D numeric array, got shape {array.shape} "
                       f"and dtype {array.dtype}")
    return array


def _read_numpy(path, suffix):
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            return DataTable(path, array=_numeric_array(path, array, "the array"))
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise CLIError(f"{path}: cannot read it ({one_line(exc)})") from None
    if "X" in arrays:
        X = _numeric_array(path, arrays["X"], "X")
        y = arrays.get("y")
        if y is not None and len(y) != len(X):
            raise CLIError(f"{path}: X has {len(X)} rows but y has {len(y)}")
        return DataTable(path, array=X, y=y)
    if len(arrays) == 1:
        return DataTable(path, array=_numeric_array(path, next(iter(arrays.values())),
                                                    "the array"))
    raise CLIError(f"{path}: expected arrays 'X' and 'y' (or a single array), found "
                   f"{sorted(arrays)}")


def one_line(exc):
    """An exception's message on one line."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# ---------------------------------------------------------------------------
# the target and the task
# ---------------------------------------------------------------------------

def target_values(values, name, path):
    """A target column as numbers when it holds only numbers (ints when all
    are whole), else as it is; missing targets are an error."""
    values = np.asarray(values)
    if values.dtype.kind == "O":
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in values],
                           dtype=bool)
    elif values.dtype.kind in "fc":
        missing = np.isnan(values)
    else:
        missing = np.zeros(len(values), dtype=bool)
    if missing.any():
        rows = np.flatnonzero(missing)
        raise CLIError(f"{path}: the target {name!r} is missing in {rows.size} row(s) (data "
                       f"rows {', '.join(str(r + 1) for r in rows[:5])}"
                       f"{', ...' if rows.size > 5 else ''}); drop those rows first")
    if values.dtype.kind == "O" and all(isinstance(v, str) for v in values):
        values = values.astype(str)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and \
            np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
        return values.astype(np.int64)
    return values


def guess_task(y, name):
    """``(task, reason)``: 'classify' or 'regress', and the rule that chose it,
    said as a person would."""
    n = len(y)
    kind = y.dtype.kind
    if kind == "b":
        return "classify", f"{name}: true/false values"
    if kind not in "iuf":
        levels = np.unique(y.astype(str))
        shown = ", ".join(repr(str(v)) for v in levels[:4]) + (", ..." if levels.size > 4 else "")
        return "classify", f"{name}: text labels {shown}"
    distinct = np.unique(y).size
    if kind == "f":
        return "regress", f"{name}: numbers with decimals ({distinct:,} distinct in {n:,} rows)"
    if distinct <= INTEGER_CLASSES_MAX:
        return "classify", (f"{name}: {distinct} distinct integers in {n:,} rows, at most "
                            f"{INTEGER_CLASSES_MAX}")
    return "regress", (f"{name}: {distinct:,} distinct integers in {n:,} rows, more than "
                       f"{INTEGER_CLASSES_MAX}")
