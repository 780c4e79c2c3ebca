"""The CSV file ``fastbp train`` preprocesses, read into compact columns.

pyarrow's streaming reader parses a few MB of text at a time; each batch is
decoded at once into the rows of a block of a
:class:`~fastbp.tabular._blocks.BlockTable` and dropped: numbers (and bools)
in the training dtype, dates and durations as float64 days, text as int32
codes into the column's distinct values. The values are those the
DataFrame reader gives the preprocessing (the same decoding per batch),
numbers then rounded to the training dtype: with ``--dtype float32`` the
preprocessing sees each number as float32. The target column is kept as
read (its values exactly as before); ``--drop`` columns are not stored.

``fastbp train`` then fits the preprocessing on the table, transforms it
block by block and lets each block go (``_cli_train``): the parsed columns
and the matrix are held together one block at a time.
"""

import numpy as np

from ._cli_data import (ARROW_BLOCK_BYTES, CLIError, DataTable, arrow_reading_errors,
                        csv_error, open_arrow_csv)

__all__ = ["read_csv_columns", "ColumnsTable", "BLOCK_BYTES"]

# text parsed per batch (the DataFrame reader's too: both infer the column types from
# the first batch)
BLOCK_BYTES = ARROW_BLOCK_BYTES


class ColumnsTable(DataTable):
    """The rows of a CSV file as ``fastbp train`` keeps them: the feature
    columns in ``blocks`` (a BlockTable; ``positions`` maps a file column to
    its column there), the target column's values as read."""

    def __init__(self, path, names, width):
        super().__init__(path, names=names)
        self.width = width
        self.blocks = None
        self.positions = {}
        self.target_index = self.target_values = None

    @property
    def n_columns(self):
        return self.width

    @property
    def n_rows(self):
        return len(self.target_values)

    def column(self, index):
        if index != self.target_index:
            raise ValueError(f"column {index} was read into the feature blocks; only the "
                             f"target column ({self.target_index}) is kept as read")
        return self.target_values

    def columns(self, indices):
        return self.blocks.select([self.positions[j] for j in indices])

    def drop_frame(self):
        self.blocks = None
        super().drop_frame()


def read_csv_columns(path, sep, has_header, encoding, markers, *, dtype, target, drop=()):
    """A :class:`ColumnsTable` of the CSV file ``path`` (numbers in
    ``dtype``); ``target``: the target column's name or index (None: the
    last), kept as read; ``drop``: columns not stored. None when a column's
    type is one the preprocessing does not read (the DataFrame reader then
    reads the file, and the preprocessing says what is wrong)."""
    import pandas as pd
    import pyarrow as pa

    from .tabular._tables import as_table

    reader = open_arrow_csv(path, sep, has_header, encoding, markers, BLOCK_BYTES)
    names = [str(name) for name in reader.schema.names]
    table = ColumnsTable(path, names if has_header else None, len(names))
    table.target_index = table.column_index(target if target is not None else "-1")
    skipped = {table.target_index} | {table.column_index(name) for name in drop}
    stored = [j for j in range(len(names)) if j not in skipped]
    probe = as_table(_batch_frame(pd, [pa.array([], type=t) for t in reader.schema.types]))
    try:
        kinds = {j: probe.kind(j) for j in stored}
    except (TypeError, ValueError):
        return None
    decoder = _BatchDecoder(kinds, np.dtype(dtype))
    target_chunks = []
    try:
        for batch in reader:
            decoder.add(as_table(_batch_frame(pd, batch.columns)), batch.num_rows)
            target_chunks.append(batch.column(table.target_index))
    except arrow_reading_errors() as exc:
        raise csv_error(path, exc) from None
    if not target_chunks or sum(len(chunk) for chunk in target_chunks) == 0:
        raise CLIError(f"{path}: no data rows")
    target_type = reader.schema.field(table.target_index).type
    target_frame = _batch_frame(pd, [pa.chunked_array(target_chunks, type=target_type)])
    table.target_values = DataTable(path, frame=target_frame).column(0)
    table.blocks = decoder.table(names if has_header else None, stored)
    table.positions = {j: k for k, j in enumerate(stored)}
    pa.default_memory_pool().release_unused()  # the batches' memory, kept by pyarrow's pool
    return table


def _batch_frame(pd, columns):
    """A DataFrame of Arrow arrays, without a copy (columns by position)."""
    return pd.DataFrame({str(k): pd.Series(pd.arrays.ArrowExtensionArray(column), copy=False)
                         for k, column in enumerate(columns)}, copy=False)


class _BatchDecoder:
    """Decodes batches (as Tables) into the blocks of a BlockTable."""

    def __init__(self, kinds, dtype):
        from .tabular._blocks import STORES

        self.kinds, self.dtype = kinds, dtype
        self.slots, counts = {}, {"floats": 0, "days": 0, "codes": 0}
        for j, kind in kinds.items():
            store = STORES[kind]
            self.slots[j] = (store, counts[store])
            counts[store] += 1
        self.counts = counts
        # per categorical column: its distinct texts -> their codes, in order of appearance
        self.text_codes = {j: {} for j, (store, _) in self.slots.items() if store == "codes"}
        self.blocks = []

    def add(self, batch, n_rows):
        from .tabular._blocks import Block, released_array

        dtypes = {"floats": self.dtype, "days": np.float64, "codes": np.int32}
        arrays = {store: released_array((count, n_rows), dtypes[store]) if count else None
                  for store, count in self.counts.items()}
        for j, (store, slot) in self.slots.items():
            if store == "floats":
                with np.errstate(over="ignore"):  # beyond float32's range: ±inf, as a cast
                    arrays[store][slot] = batch.numbers(j)
            elif store == "days":
                arrays[store][slot] = batch.days(j)
            else:
                arrays[store][slot] = self._codes(j, *batch.codes(j))
        self.blocks.append(Block(n_rows, arrays["floats"], arrays["days"], arrays["codes"]))

    def _codes(self, j, codes, texts):
        """A batch's codes (into its own ``texts``) as codes into the column's
        texts so far."""
        known = self.text_codes[j]
        if texts.size == 0:
            return -1
        lookup = np.array([known.setdefault(text, len(known)) for text in texts.tolist()],
                          dtype=np.int32)
        return np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1)

    def table(self, names, columns):
        from .tabular._blocks import BlockTable

        texts = {k: list(self.text_codes[j]) for k, j in enumerate(columns)
                 if j in self.text_codes}
        blocks, self.blocks = self.blocks, []
        return BlockTable(None if names is None else [names[j] for j in columns],
                          [self.kinds[j] for j in columns],
                          [self.slots[j][1] for j in columns], texts, blocks)
