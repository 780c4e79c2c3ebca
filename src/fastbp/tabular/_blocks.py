"""BlockTable: a table already decoded into compact columns, held in row
blocks, for tables too large to keep twice (``fastbp train`` reads big CSV
files into one).

Per row block, three 2-D arrays (one row per column, so that each column's
values in the block are contiguous):

* ``floats``: numbers and bools in the storage dtype (float32 or float64;
  NaN where missing; bools as 1 / 0);
* ``days``: dates and durations as float64 days (float32 would round them);
* ``codes``: categorical columns as int32 positions in the column's distinct
  texts (-1: missing), the texts kept once per column.

The preprocessing reads it through the :class:`~fastbp.tabular._tables.Table`
interface (whole columns, for the statistics); :meth:`BlockTable.pop_blocks`
then hands out the blocks one at a time and lets each go, so that a caller
writing the transformed rows of each block holds the table and the output
together only one block at a time. Block arrays made with
:func:`released_array` live in their own memory maps, whose pages go back to
the operating system as soon as the block is let go (the C allocator may
keep freed blocks of a few MB for later use).
"""

import mmap

import numpy as np

from ._tables import BOOL, CATEGORICAL, DATETIME, NUMERIC, TIMEDELTA, Table

__all__ = ["Block", "BlockTable", "released_array", "STORES"]

# where each kind of column is stored in a block
STORES = {NUMERIC: "floats", BOOL: "floats", DATETIME: "days", TIMEDELTA: "days",
          CATEGORICAL: "codes"}


def released_array(shape, dtype):
    """A zero-filled array in its own anonymous memory map (its pages are
    returned to the operating system when the array is let go); a plain
    array when the system refuses another map."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    try:
        buffer = mmap.mmap(-1, max(count * dtype.itemsize, 1))
    except OSError:  # e.g. the limit on the number of maps of a process
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


class Block:
    """The rows of one block: ``floats``, ``days`` and ``codes`` (see the
    module docstring) and their number of rows."""

    def __init__(self, n_rows, floats, days, codes):
        self.n_rows = n_rows
        self.floats, self.days, self.codes = floats, days, codes


class BlockTable(Table):
    """Columns ``names`` (None: by position) of ``kinds``; column ``j`` is
    row ``slots[j]`` of its kind's array in every block; ``texts[j]``: a
    categorical column's distinct texts in the order their codes number
    them. ``codes(j)`` gives int32 codes."""

    numbers_are_copies = True  # a column is put together from its blocks on each call

    def __init__(self, names, kinds, slots, texts, blocks):
        self.names = None if names is None else list(names)
        self.kinds, self.slots, self.texts = list(kinds), list(slots), dict(texts)
        self._blocks = list(blocks)
        self.n_rows = sum(block.n_rows for block in self._blocks)
        self.n_columns = len(self.kinds)
        self._sorted = {}

    def feature_names(self):
        return None if self.names is None else np.asarray(self.names, dtype=object)

    def kind(self, j):
        return self.kinds[j]

    def _column(self, j, store, dtype):
        if STORES[self.kinds[j]] != store:
            raise ValueError(f"column {self.label(j)} holds {self.kinds[j]} values; it "
                             f"cannot be read as {store}")
        parts = [getattr(block, store)[self.slots[j]] for block in self._blocks]
        if not parts:
            return np.empty(0, dtype=dtype)
        return np.concatenate(parts, dtype=dtype)

    def numbers(self, j):
        return self._column(j, "floats", np.float64)

    def days(self, j):
        return self._column(j, "days", np.float64)

    def codes(self, j):
        """``(codes, texts)``: texts sorted, as the other tables give them."""
        if j not in self._sorted:
            texts = np.asarray(self.texts[j], dtype=str)
            order = np.argsort(texts, kind="stable")
            rank = np.empty(order.size + 1, dtype=np.int32)
            rank[order] = np.arange(order.size)
            rank[-1] = -1  # code -1 (missing) indexes the last entry
            self._sorted[j] = (rank, texts[order])
        rank, texts = self._sorted[j]
        codes = rank[self._column(j, "codes", np.int32)]
        if texts.size <= codes.size:
            return codes, texts
        # more distinct values than rows (a block of a many-valued column): only the texts
        # of these rows, so that transforming a block costs what its rows do
        held = codes >= 0
        present, codes[held] = np.unique(codes[held], return_inverse=True)
        return codes, texts[present]

    def select(self, columns):
        """A BlockTable of the given columns (sharing the blocks)."""
        columns = list(columns)
        return BlockTable(None if self.names is None else [self.names[j] for j in columns],
                          [self.kinds[j] for j in columns], [self.slots[j] for j in columns],
                          {k: self.texts[j] for k, j in enumerate(columns) if j in self.texts},
                          self._blocks)

    def pop_blocks(self):
        """Each block as a one-block BlockTable, first to last, taken out of
        this table (which is empty afterwards): a block is let go as soon as
        the caller drops it."""
        self._blocks.reverse()
        while self._blocks:
            table = BlockTable(self.names, self.kinds, self.slots, self.texts,
                               [self._blocks.pop()])
            table._sorted = self._sorted
            yield table
            del table
