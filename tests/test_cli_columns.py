"""``fastbp train``'s CSV reading for its preprocessing: compact columns in
row blocks (``fastbp._cli_columns``, ``fastbp.tabular._blocks``), transformed
block by block with each block let go (``fastbp._cli_train.transform_blocks``).

The memory design is checked by what it holds, not by timing or RSS: the
stored dtypes, that no Arrow column of the features is kept, and that a
block is let go before the next one is transformed. The results are checked
against the DataFrame reader's: bit for bit in float64; in float32, equal to
the in-memory preprocessing of the frame with its number columns cast to
float32 (what the block reader stores).
"""

import functools
import gc
import weakref

import numpy as np
import pytest

import fastbp
from fastbp import _cli_columns
from fastbp._cli import main
from fastbp._cli_columns import read_csv_columns
from fastbp._cli_data import read_table
from fastbp._cli_train import transform_blocks
from fastbp.tabular import TabularPreprocessor

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

N_ROWS = 3000


def _write_table(path, header=True):
    """A text column of 400 values (quoted commas; more values than a test
    block has rows), numbers (with missing cells), integers, a constant and
    an all-missing column, bools with missing cells, dates, two- and
    many-valued text with missing cells, a text target."""
    rng = np.random.RandomState(0)
    size = rng.normal(size=N_ROWS) * 1e3 + 0.1
    lines = ["name,size,count,constant,empty,flag,day,member,city,label"]
    for k in range(N_ROWS):
        flag = "" if k % 13 == 0 else ("true" if rng.rand() < 0.3 else "false")
        city = ["Paris", "Lyon", '"Saint-Étienne, Loire"', "Nice", ""][k % 5]
        number = "NA" if k % 7 == 0 else f"{size[k]:.6f}"
        lines.append(f'"Smith, J{k % 400}",{number},{rng.randint(0, 50)},7,,'
                     f"{flag},2020-01-{1 + k % 28:02d},{'yes' if rng.rand() < 0.4 else 'no'},"
                     f"{city},{'A' if size[k] > 0 else 'B'}")
    path.write_text("\n".join(lines[0 if header else 1:]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    # a few KB of text per batch: the test tables read in many blocks
    monkeypatch.setattr(_cli_columns, "BLOCK_BYTES", 16 << 10)


def _read_blocks(path, dtype, target="label", header="auto"):
    reader = functools.partial(read_csv_columns, dtype=dtype, target=target, drop=())
    return read_table(str(path), header=header, arrow_csv_reader=reader)


def _features(table, target="label"):
    target_index = table.column_index(target)
    return table.columns([j for j in range(table.n_columns) if j != target_index])


def _states_equal(a, b):
    state_a, state_b = a.to_state(), b.to_state()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        left, right = state_a[key], state_b[key]
        if isinstance(left, list):
            assert len(left) == len(right)
            for x, y in zip(left, right):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=key)
        elif isinstance(left, dict):
            assert left == right, key
        else:
            np.testing.assert_array_equal(np.asarray(left), np.asarray(right), err_msg=key)


def _as_dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else matrix


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_reader_stores_compact_columns_in_blocks(tmp_path, small_blocks, dtype):
    table = _read_blocks(_write_table(tmp_path / "t.csv"), dtype)
    blocks = table.blocks._blocks
    assert len(blocks) > 5 and sum(b.n_rows for b in blocks) == N_ROWS
    for block in blocks:
        # numbers and bools (size, count, constant, empty, flag) in the training dtype,
        # dates as float64 days, text as int32 codes; nothing else is kept
        assert block.floats.dtype == dtype and block.floats.shape == (5, block.n_rows)
        assert block.days.dtype == np.float64 and block.days.shape == (1, block.n_rows)
        assert block.codes.dtype == np.int32 and block.codes.shape == (3, block.n_rows)
    assert table.frame is None and table.array is None
    assert table.blocks.names == ["name", "size", "count", "constant", "empty", "flag",
                                  "day", "member", "city"]
    # the target as the DataFrame reader gives it
    expected = read_table(str(tmp_path / "t.csv"))
    np.testing.assert_array_equal(table.column(9), expected.column(9))
    assert table.column(9).dtype == expected.column(9).dtype


@pytest.mark.parametrize("sparse_output", ["auto", True, False])
def test_float64_fit_and_matrix_equal_the_dataframe_readers(tmp_path, small_blocks,
                                                            sparse_output):
    path = _write_table(tmp_path / "t.csv")
    frame = read_table(str(path)).frame.drop(columns="label")
    in_memory = TabularPreprocessor(dtype="float64", sparse_output=sparse_output).fit(frame)
    features = _features(_read_blocks(path, "float64"))
    blocked = TabularPreprocessor(dtype="float64", sparse_output=sparse_output).fit(features)
    _states_equal(blocked, in_memory)
    assert blocked.column_kinds_.tolist() == ["categorical", "numeric", "numeric",
                                              "numeric", "empty", "bool", "datetime",
                                              "categorical", "categorical"]
    assert blocked.categories_[0].size == 100 and blocked.other_slot_[0]  # max_categories
    expected = in_memory.transform(frame)
    matrix = transform_blocks(blocked, features)
    assert type(matrix) is type(expected) and matrix.dtype == np.float64
    assert not features._blocks  # every block taken and let go
    if hasattr(expected, "indptr"):
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(matrix, part), getattr(expected, part))
            assert getattr(matrix, part).dtype == getattr(expected, part).dtype
    np.testing.assert_array_equal(_as_dense(matrix), _as_dense(expected))


def test_float32_reads_the_numbers_as_float32(tmp_path, small_blocks):
    # what the block reader computes in float32: the in-memory preprocessing of the
    # frame whose number columns are float32 (each number rounded once, on reading)
    path = _write_table(tmp_path / "t.csv")
    frame = read_table(str(path)).frame.drop(columns="label")
    numbers = ["size", "count", "constant"]
    rounded = frame.astype({name: "float32" for name in numbers})
    in_memory = TabularPreprocessor(dtype="float32").fit(rounded)
    features = _features(_read_blocks(path, "float32"))
    blocked = TabularPreprocessor(dtype="float32").fit(features)
    _states_equal(blocked, in_memory)
    np.testing.assert_array_equal(_as_dense(transform_blocks(blocked, features)),
                                  _as_dense(in_memory.transform(rounded)))
    # against the float64 frame: the statistics differ by the rounding of the numbers
    # only, and the matrices by a few float32 units in the last place at most
    exact = TabularPreprocessor(dtype="float32").fit(frame)
    np.testing.assert_allclose(blocked.centre_, exact.centre_, rtol=2**-23)
    np.testing.assert_allclose(blocked.scale_, exact.scale_, rtol=2**-22)
    np.testing.assert_allclose(_as_dense(in_memory.transform(rounded)),
                               _as_dense(exact.transform(frame)), rtol=0, atol=1e-5)


def test_each_block_is_let_go_before_the_next_is_transformed(tmp_path, small_blocks):
    table = _read_blocks(_write_table(tmp_path / "t.csv"), "float32")
    features = _features(table)
    buffers = [[weakref.ref(array.base.obj if isinstance(array.base, memoryview)
                            else array.base) for array in (b.floats, b.days, b.codes)]
               for b in features._blocks]
    preprocessor = TabularPreprocessor(dtype="float32").fit(features)
    table.drop_frame()
    transform = preprocessor.transform
    seen = []

    def transform_and_check(block):
        gc.collect()
        alive = [k for k, refs in enumerate(buffers) if any(ref() is not None for ref in refs)]
        seen.append(alive)
        return transform(block)

    preprocessor.transform = transform_and_check
    matrix = transform_blocks(preprocessor, features)
    assert matrix.shape == (N_ROWS, preprocessor.n_features_out_)
    # transforming block k, blocks 0..k-1 are gone (their memory maps closed)
    assert seen == [list(range(k, len(buffers))) for k in range(len(buffers))]
    gc.collect()
    assert all(ref() is None for refs in buffers for ref in refs)


def test_a_file_without_header_reads_by_position(tmp_path, small_blocks):
    path = _write_table(tmp_path / "t.csv", header=False)
    table = _read_blocks(path, "float64", target="-1", header="no")
    features = _features(table, "-1")
    assert features.names is None and features.feature_names() is None
    frame_table = read_table(str(path), header="no")
    by_position = frame_table.frame.iloc[:, :9].to_numpy()  # what train gives it today
    _states_equal(TabularPreprocessor(dtype="float64").fit(features),
                  TabularPreprocessor(dtype="float64").fit(by_position))


def test_train_through_blocks_equals_train_through_the_dataframe_reader(
        tmp_path, small_blocks, monkeypatch, capsys):
    path = _write_table(tmp_path / "t.csv")
    argv = ["train", str(path), "-t", "label", "--drop", "day", "--hidden", "4",
            "--epochs", "3", "--random-state", "0", "-q"]
    assert main(argv + ["-o", str(tmp_path / "blocks.fbp")]) == 0
    from fastbp import _cli_train

    monkeypatch.setattr(_cli_train, "_training_reader", lambda args: None)
    assert main(argv + ["-o", str(tmp_path / "frame.fbp")]) == 0
    blocks, frame = fastbp.load(tmp_path / "blocks.fbp"), fastbp.load(tmp_path / "frame.fbp")
    _states_equal(blocks.preprocessor_, frame.preprocessor_)
    assert "day" not in blocks.feature_names_in_
    for a, b in zip(blocks.mlp_.coefs_ + blocks.mlp_.intercepts_,
                    frame.mlp_.coefs_ + frame.mlp_.intercepts_):
        np.testing.assert_array_equal(a, b)
