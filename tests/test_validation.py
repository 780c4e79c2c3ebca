"""Bad input is stopped at the boundary with a clear message; odd but valid
input (layouts, dtypes, sparse formats, dataframes) is accepted and gives the
same model as the clean float64 C array.

Messages follow scikit-learn 1.9; where fastbp deliberately differs (negative
sample weights, a single class, negative Poisson targets) the test says so.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastbp import MLP, ConvergenceWarning, MLPClassifier, MLPRegressor
from fastbp._validation import InvalidParameterError

pd = pytest.importorskip("pandas")

RNG = np.random.RandomState(0)
X = RNG.normal(size=(24, 3))
Y_CLF = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
Y_REG = X[:, 1] - X[:, 2]


def clf(**kw):
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    params.update(kw)
    return MLPClassifier(**params)


def reg(**kw):
    params = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    params.update(kw)
    return MLPRegressor(**params)


def exact(message):
    return "^" + re.escape(message) + "$"


# short fits on purpose: their convergence warnings are expected
pytestmark = pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")


def fitted_params(model):
    return np.concatenate([a.ravel() for pair in zip(model.coefs_, model.intercepts_)
                           for a in pair])


# ---------------------------------------------------------------------------
# non-finite values
# ---------------------------------------------------------------------------

NAN_MESSAGE = ("Input X contains NaN.\nMLPClassifier does not accept missing values encoded "
               "as NaN natively.")


@pytest.mark.parametrize("where", ["fit", "predict", "predict_proba", "partial_fit"])
def test_nan_in_X(where):
    Xn = X.copy()
    Xn[3, 1] = np.nan
    model = clf()
    if where == "partial_fit":
        with pytest.raises(ValueError, match=re.escape(NAN_MESSAGE)):
            model.partial_fit(Xn, Y_CLF, classes=[0, 1])
        return
    if where == "fit":
        with pytest.raises(ValueError, match=re.escape(NAN_MESSAGE)):
            model.fit(Xn, Y_CLF)
        return
    model.fit(X, Y_CLF)
    with pytest.raises(ValueError, match=re.escape(NAN_MESSAGE)):
        getattr(model, where)(Xn)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_X(value):
    Xi = X.copy()
    Xi[0, 0] = value
    with pytest.raises(ValueError, match=exact(
            "Input X contains infinity or a value too large for dtype('float64').")):
        clf().fit(Xi, Y_CLF)
    with pytest.raises(ValueError, match=exact(
            "Input X contains infinity or a value too large for dtype('float32').")):
        clf().fit(Xi.astype(np.float32), Y_CLF)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "score"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_prediction_finds_a_bad_value_in_any_chunk(dtype, method, bad):
    # prediction checks X's values in the engine, chunk by chunk: a bad value
    # in the first, a middle or the last chunk (1,500 rows: three chunks)
    # gives validation's own error, and nothing is returned; 1e300
    # overflows float32 only
    rng = np.random.RandomState(0)
    Xl = rng.normal(size=(1500, 4)).astype(dtype)
    yl = (Xl[:, 0] > 0).astype(int)
    # 200 hidden units: chunks worth a second thread (when the machine has one)
    model = MLPClassifier(hidden_layer_sizes=(200,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xl, yl)
    args = (yl,) if method == "score" else ()
    expected = getattr(model, method)(Xl, *args)
    for row in (0, 700, 1499):
        Xb = Xl.astype(np.float64)
        Xb[row, 2] = bad
        if bad == 1e300 and dtype == np.float64:
            getattr(model, method)(Xb, *args)      # finite in float64
            continue
        message = ("Input X contains NaN" if np.isnan(bad) else
                   "Input X contains infinity or a value too large for "
                   f"dtype('{np.dtype(dtype).name}')")
        with warnings.catch_warnings(), pytest.raises(ValueError, match=re.escape(message)):
            # numpy's own "overflow encountered in cast" for 1e300 to float32
            warnings.simplefilter("ignore", RuntimeWarning)
            getattr(model, method)(Xb, *args)
    # and the model still predicts as before
    np.testing.assert_array_equal(getattr(model, method)(Xl, *args), expected)


def test_nan_and_inf_in_sparse_X():
    S = sp.csr_matrix(X)
    S.data[4] = np.nan
    with pytest.raises(ValueError, match=re.escape(NAN_MESSAGE)):
        clf().fit(S, Y_CLF)
    S.data[4] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf().fit(S, Y_CLF)


@pytest.mark.parametrize("value, message", [
    (np.nan, "Input y contains NaN."),
    (np.inf, "Input y contains infinity or a value too large for dtype('float64')."),
])
def test_non_finite_y(value, message):
    y = Y_REG.copy()
    y[2] = value
    with pytest.raises(ValueError, match=exact(message)):
        reg().fit(X, y)
    # classification: the label check comes before the target type is
    # inferred, so NaN is not reported as "continuous" labels
    y = Y_CLF.astype(float)
    y[2] = value
    with pytest.raises(ValueError, match=exact(message)):
        clf().fit(X, y)


def test_missing_labels():
    y = np.array(["a", "b"] * 12, dtype=object)
    y[5] = None
    with pytest.raises(ValueError, match="Input y contains missing labels"):
        clf().fit(X, y)


@pytest.mark.parametrize("value, message", [
    (np.nan, "Input sample_weight contains NaN."),
    (np.inf, "Input sample_weight contains infinity or a value too large for "
             "dtype('float64')."),
])
def test_non_finite_sample_weight(value, message):
    sw = np.ones(len(X))
    sw[1] = value
    with pytest.raises(ValueError, match=exact(message)):
        reg().fit(X, Y_REG, sample_weight=sw)


@pytest.mark.parametrize("sw, error, message", [
    (np.ones(5), ValueError, "sample_weight.shape == (5,), expected (24,)!"),
    (np.ones((24, 2)), ValueError, "Sample weights must be 1D array or scalar, got 2D "
                                   "array. Expected either a scalar value or a 1D array of "
                                   "length 24."),
    (np.zeros(24), ValueError, "Sample weights must contain at least one non-zero number."),
    # fastbp rejects negative weights (scikit-learn's MLP trains on them and
    # its loss has no lower bound)
    (np.r_[-1.0, np.ones(23)], ValueError, "Negative values in data passed to "
                                           "sample_weight: weights must be >= 0."),
    (np.ones(24) + 1j, ValueError, None),
    (["w"] * 24, ValueError, None),
])
def test_bad_sample_weight(sw, error, message):
    with pytest.raises(error, match=None if message is None else exact(message)) as info:
        reg().fit(X, Y_REG, sample_weight=sw)
    if message is None:
        assert "Complex data not supported" in str(info.value) or \
            "sample_weight holds values that are not numbers" in str(info.value)


def test_scalar_and_list_sample_weight_match_array():
    ref = fitted_params(reg().fit(X, Y_REG, sample_weight=np.full(len(X), 2.0)))
    np.testing.assert_array_equal(fitted_params(reg().fit(X, Y_REG, sample_weight=2.0)), ref)
    np.testing.assert_array_equal(
        fitted_params(reg().fit(X, Y_REG, sample_weight=[2.0] * len(X))), ref)


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------

RESHAPE_HINT = ("Reshape your data either using array.reshape(-1, 1) if your data has a "
                "single feature or array.reshape(1, -1) if it contains a single sample.")


@pytest.mark.parametrize("bad, message", [
    (X[:, 0], "Expected 2D array, got 1D array instead"),
    (3.0, "Expected 2D array, got scalar array instead"),
])
def test_X_not_2d(bad, message):
    with pytest.raises(ValueError) as info:
        clf().fit(bad, Y_CLF)
    assert str(info.value).startswith(message)
    assert RESHAPE_HINT in str(info.value)


def test_X_3d():
    with pytest.raises(ValueError, match=exact(
            "Found array with dim 3, while dim <= 2 is required by MLPClassifier.")):
        clf().fit(X[:, :, None], Y_CLF)
    model = clf().fit(X, Y_CLF)
    with pytest.raises(ValueError, match="Found array with dim 3, while dim <= 2"):
        model.predict_proba(X[:, :, None])


@pytest.mark.parametrize("make", [np.asarray, sp.csr_matrix])
def test_empty_X(make):
    with pytest.raises(ValueError, match=exact(
            "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required "
            "by MLPClassifier.")):
        clf().fit(make(np.zeros((0, 3))), Y_CLF[:0])
    with pytest.raises(ValueError, match=exact(
            "Found array with 0 feature(s) (shape=(24, 0)) while a minimum of 1 is "
            "required by MLPClassifier.")):
        clf().fit(make(np.zeros((24, 0))), Y_CLF)
    model = clf().fit(X, Y_CLF)
    with pytest.raises(ValueError, match=re.escape("Found array with 0 sample(s)")):
        model.predict(make(np.zeros((0, 3))))


def test_ragged_X():
    with pytest.raises(ValueError, match="X could not be read as a 2-D array"):
        clf().fit([[1.0, 2.0], [3.0]] * 12, Y_CLF)


@pytest.mark.parametrize("model", [clf(), reg()])
def test_y_wrong_length(model):
    y = Y_CLF if model._is_classifier() else Y_REG
    with pytest.raises(ValueError, match=exact(
            "Found input variables with inconsistent numbers of samples: [24, 10]")):
        model.fit(X, y[:10])


def test_y_none():
    with pytest.raises(ValueError, match=exact(
            "This MLPClassifier estimator requires y to be passed, but the target y is "
            "None.")):
        clf().fit(X, None)


def test_column_y_warns_and_fits_like_1d():
    from fastbp._exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        column = clf().fit(X, Y_CLF[:, None])
    np.testing.assert_array_equal(fitted_params(column), fitted_params(clf().fit(X, Y_CLF)))


def test_continuous_labels_for_classifier():
    with pytest.raises(ValueError, match="^Unknown label type: continuous"):
        clf().fit(X, Y_REG)


def test_single_class():
    # scikit-learn's MLP trains a constant model here; fastbp refuses
    with pytest.raises(ValueError, match=exact(
            "MLPClassifier needs samples of at least 2 classes in the data, but the data "
            "contains only one class: 'a'.")):
        clf().fit(X, ["a"] * len(X))
    with pytest.raises(ValueError, match="only one class: 0"):
        clf(solver="lbfgs").fit(X, np.zeros(len(X), dtype=int))
    # MLP(loss='log_loss') says the same
    with pytest.raises(ValueError, match="MLP needs samples of at least 2 classes"):
        MLP((3,), max_iter=2).fit(X, np.ones(len(X)))


def test_unseen_classes_in_partial_fit():
    model = clf().partial_fit(X, Y_CLF, classes=[0, 1])
    with pytest.raises(ValueError, match=exact(
            "`y` has classes not in `self.classes_`. `self.classes_` has [0 1]. 'y' has "
            "[1 2].")):
        model.partial_fit(X, Y_CLF + 1)
    with pytest.raises(ValueError, match=exact(
            "`classes=[0, 1, 2]` is not the same as on last call to partial_fit, was: "
            "array([0, 1])")):
        model.partial_fit(X, Y_CLF, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=exact(
            "classes must be passed on the first call to partial_fit.")):
        clf().partial_fit(X, Y_CLF)


def test_warm_start_with_new_classes():
    model = clf(warm_start=True).fit(X, Y_CLF)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same "
                                         "classes as in the previous call to fit"):
        model.fit(X, Y_CLF + 5)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "score",
                                    "partial_fit"])
def test_different_number_of_features(method):
    model = clf().fit(X, Y_CLF)
    args = (X[:, :2], Y_CLF) if method in ("score", "partial_fit") else (X[:, :2],)
    with pytest.raises(ValueError, match=exact(
            "X has 2 features, but MLPClassifier is expecting 3 features as input.")):
        getattr(model, method)(*args)
    with pytest.raises(ValueError, match="X has 2 features"):
        getattr(model, method)(*((sp.csr_matrix(args[0]),) + args[1:]))


def test_warm_start_with_different_number_of_features():
    model = clf(warm_start=True).fit(X, Y_CLF)
    with pytest.raises(ValueError, match="X has 2 features, but MLPClassifier is expecting 3"):
        model.fit(X[:, :2], Y_CLF)


def test_unfitted():
    from fastbp import NotFittedError

    with pytest.raises(NotFittedError, match=exact(
            "This MLPClassifier instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before using this estimator.")):
        clf().predict(X)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (X + 1j, "Complex data not supported"),
    (X.astype(object) + 1j, "Complex data not supported"),
    (np.array([["a", "b", "c"]] * 24),
     "X holds values that are not numbers (could not convert string to float: "),
    (np.array([["a", "b", "c"]] * 24, dtype=object),
     "X holds values that are not numbers (could not convert string to float: 'a'). "
     "Convert X to a numeric array first (encode categories as numbers)."),
    (np.zeros((24, 3), dtype="datetime64[s]"),
     "X has dtype datetime64[s]; fastbp needs numbers (float, int or bool)."),
    (np.where(X > 1, None, X).astype(object), "Input X contains NaN."),
])
def test_non_numeric_X(bad, message):
    with pytest.raises(ValueError) as info:
        clf().fit(bad, Y_CLF)
    assert str(info.value).startswith(message)


def test_complex_sparse_X():
    with pytest.raises(ValueError, match="^Complex data not supported"):
        clf().fit(sp.csr_matrix(X + 1j), Y_CLF)


def test_regression_targets_must_be_numbers():
    with pytest.raises(ValueError, match=re.escape(
            "y holds values that are not numbers (could not convert string to float: 'a'). "
            "Convert y to a numeric array first.")):
        reg().fit(X, np.array(["a"] * len(X), dtype=object))
    with pytest.raises(ValueError, match="^Complex data not supported"):
        reg().fit(X, Y_REG + 1j)
    # numbers written as strings convert, as in scikit-learn
    np.testing.assert_array_equal(fitted_params(reg().fit(X, Y_REG.astype(str))),
                                  fitted_params(reg().fit(X, Y_REG.astype(str).astype(float))))


def test_poisson_needs_non_negative_targets():
    with pytest.raises(ValueError, match=exact(
            "Some value(s) of y are negative which is not allowed for Poisson regression.")):
        reg(loss="poisson").fit(X, Y_REG)


def _layouts(X64):
    """Valid inputs that hold the same numbers as the C-contiguous float64 X64."""
    big = np.zeros((X64.shape[0] * 2, X64.shape[1] + 2))
    big[::2, 1:-1] = X64
    read_only = X64.copy()
    read_only.flags.writeable = False
    return {
        "fortran": np.asfortranarray(X64),
        "strided": big[::2, 1:-1],
        "read-only": read_only,
        "big-endian": X64.astype(">f8"),
        "list": X64.tolist(),
        "object": X64.astype(object),
        "strings": X64.astype(str),
        "dataframe": pd.DataFrame(X64, columns=["a", "b", "c"]),
    }


INT_X = RNG.randint(-3, 4, size=X.shape)
LAYOUTS = list(_layouts(X))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_layouts_give_the_clean_float64_result(layout, solver):
    Xv = _layouts(X)[layout]
    ref = clf(solver=solver).fit(X, Y_CLF)
    got = clf(solver=solver).fit(Xv, Y_CLF)
    assert got.coefs_[0].dtype == np.float64
    np.testing.assert_array_equal(fitted_params(got), fitted_params(ref))
    np.testing.assert_array_equal(got.predict_proba(Xv), ref.predict_proba(X))


@pytest.mark.parametrize("kind", ["int64", "int32", "uint8-shifted", "bool", "float16"])
def test_int_bool_and_half_X_train_in_float64(kind):
    if kind == "bool":
        Xv = X > 0
    elif kind == "uint8-shifted":
        Xv = (INT_X + 3).astype(np.uint8)
    elif kind == "float16":
        Xv = X.astype(np.float16)
    else:
        Xv = INT_X.astype(kind)
    clean = np.ascontiguousarray(Xv, dtype=np.float64)
    got = reg().fit(Xv, Y_REG)
    ref = reg().fit(clean, Y_REG)
    assert got.coefs_[0].dtype == np.float64
    np.testing.assert_array_equal(fitted_params(got), fitted_params(ref))
    np.testing.assert_array_equal(got.predict(Xv), ref.predict(clean))


@pytest.mark.parametrize("layout", ["fortran", "strided", "big-endian", "read-only"])
def test_float32_layouts_train_in_float32(layout):
    X32 = X.astype(np.float32)
    if layout == "fortran":
        Xv = np.asfortranarray(X32)
    elif layout == "strided":
        Xv = np.repeat(X32, 2, axis=0)[::2]
    elif layout == "big-endian":
        Xv = X32.astype(">f4")
    else:
        Xv = X32.copy()
        Xv.flags.writeable = False
    ref = reg().fit(X32, Y_REG)
    got = reg().fit(Xv, Y_REG)
    assert got.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(fitted_params(got), fitted_params(ref))
    # predicting float64 input with a float32 model converts it
    np.testing.assert_array_equal(got.predict(X), ref.predict(X32))


def test_read_only_targets_and_weights():
    y = Y_REG.copy()
    sw = np.linspace(0.5, 2, len(X))
    ref = fitted_params(reg().fit(X, y, sample_weight=sw))
    y.flags.writeable = False
    sw.flags.writeable = False
    np.testing.assert_array_equal(fitted_params(reg().fit(X, y, sample_weight=sw)), ref)


def test_valid_input_is_not_modified():
    Xc, yc, swc = X.copy(), Y_REG.copy(), np.ones(len(X))
    reg().fit(Xc, yc, sample_weight=swc).predict(Xc)
    np.testing.assert_array_equal(Xc, X)
    np.testing.assert_array_equal(yc, Y_REG)
    np.testing.assert_array_equal(swc, np.ones(len(X)))


# ---------------------------------------------------------------------------
# sparse input
# ---------------------------------------------------------------------------

SPARSE_X = sp.random(30, 6, density=0.4, format="csr", random_state=1).toarray() * 3
SPARSE_Y = (SPARSE_X[:, 0] - SPARSE_X[:, 1] > 0).astype(int)


def _csr_with_duplicates(dense):
    """CSR holding each non-zero as two stored halves (non-canonical)."""
    coo = sp.coo_matrix(dense)
    rows = np.r_[coo.row, coo.row]
    cols = np.r_[coo.col, coo.col]
    vals = np.r_[coo.data * 0.5, coo.data * 0.5]
    order = np.argsort(rows, kind="stable")
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=dense.shape[0]))]
    m = sp.csr_matrix((vals[order], cols[order], indptr), shape=dense.shape)
    assert not m.has_canonical_format
    return m


def _csr_unsorted(dense):
    m = sp.csr_matrix(dense)
    for r in range(m.shape[0]):
        a, b = m.indptr[r], m.indptr[r + 1]
        m.indices[a:b] = m.indices[a:b][::-1].copy()
        m.data[a:b] = m.data[a:b][::-1].copy()
    m.has_sorted_indices = False
    return m


def _sparse_variants(dense):
    int32 = sp.csr_matrix(dense)
    int32.indices = int32.indices.astype(np.int32)
    int32.indptr = int32.indptr.astype(np.int32)
    int64 = sp.csr_matrix(dense)
    int64.indices = int64.indices.astype(np.int64)
    int64.indptr = int64.indptr.astype(np.int64)
    explicit_zeros = sp.csr_matrix(dense)
    explicit_zeros.data[::3] = 0.0
    return {
        "csr": sp.csr_matrix(dense),
        "csc": sp.csc_matrix(dense),
        "coo": sp.coo_matrix(dense),
        "csr_array": sp.csr_array(dense),
        "lil": sp.lil_matrix(dense),
        "int32-indices": int32,
        "int64-indices": int64,
        "duplicates": _csr_with_duplicates(dense),
        "unsorted": _csr_unsorted(dense),
    }


@pytest.mark.parametrize("variant", list(_sparse_variants(SPARSE_X)))
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sparse_formats_match_dense(variant, solver):
    S = _sparse_variants(SPARSE_X)[variant]
    dense_model = clf(solver=solver, batch_size=7).fit(SPARSE_X, SPARSE_Y)
    sparse_model = clf(solver=solver, batch_size=7).fit(S, SPARSE_Y)
    # the sparse path sums products in another order than BLAS: equal to rounding
    np.testing.assert_allclose(fitted_params(sparse_model), fitted_params(dense_model),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse_model.predict_proba(S),
                               dense_model.predict_proba(SPARSE_X), rtol=1e-10, atol=1e-12)


def test_sparse_input_not_modified():
    S = _csr_with_duplicates(SPARSE_X)
    before = (S.data.copy(), S.indices.copy(), S.indptr.copy())
    clf().fit(S, SPARSE_Y).predict(S)
    for a, b in zip((S.data, S.indices, S.indptr), before):
        np.testing.assert_array_equal(a, b)


def test_sparse_int_and_bool_data():
    dense = (SPARSE_X > 1).astype(np.int64)
    ref = clf().fit(dense.astype(float), SPARSE_Y)
    for S in (sp.csr_matrix(dense), sp.csr_matrix(dense.astype(bool))):
        np.testing.assert_allclose(fitted_params(clf().fit(S, SPARSE_Y)), fitted_params(ref),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("corrupt, message", [
    ("index-too-large", "it has column indices outside [0, 6)"),
    ("negative-index", "it has column indices outside [0, 6)"),
    ("indptr-decreasing", "its indptr array is not a non-decreasing sequence"),
    ("indptr-beyond-data", "its indptr array is not a non-decreasing sequence"),
])
def test_malformed_sparse_is_rejected_before_the_engine(corrupt, message):
    S = sp.csr_matrix(SPARSE_X)
    if corrupt == "index-too-large":
        S.indices[3] = 6
    elif corrupt == "negative-index":
        S.indices[3] = -1
    elif corrupt == "indptr-decreasing":
        S.indptr[5] = S.indptr[4] - 1
    else:
        S.indptr[-1] = S.data.size + 10
    with pytest.raises(ValueError, match=re.escape("Sparse X is malformed: " + message)):
        clf().fit(S, SPARSE_Y)
    model = clf().fit(SPARSE_X, SPARSE_Y)
    with pytest.raises(ValueError, match=re.escape("Sparse X is malformed")):
        model.predict(S)


# ---------------------------------------------------------------------------
# dataframes
# ---------------------------------------------------------------------------

DF = pd.DataFrame(X, columns=["a", "b", "c"])


def test_dataframe_feature_names_kept_and_checked():
    model = clf().fit(DF, pd.Series(Y_CLF))
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c"])
    assert model.feature_names_in_.dtype == object
    np.testing.assert_array_equal(model.predict_proba(DF), clf().fit(X, Y_CLF).predict_proba(X))

    with pytest.raises(ValueError, match=exact(
            "The feature names should match those that were passed during fit.\n"
            "Feature names must be in the same order as they were in fit.\n")):
        model.predict(DF[["b", "a", "c"]])
    with pytest.raises(ValueError, match=exact(
            "The feature names should match those that were passed during fit.\n"
            "Feature names unseen at fit time:\n- z\n"
            "Feature names seen at fit time, yet now missing:\n- a\n")):
        model.predict(DF.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match=exact(
            "X does not have valid feature names, but MLPClassifier was fitted with feature "
            "names")):
        model.predict(X)


def test_dataframe_after_array_fit_warns():
    model = clf().fit(X, Y_CLF)
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match=exact(
            "X has feature names, but MLPClassifier was fitted without feature names")):
        model.predict(DF)
    # refitting on an array forgets the names of an earlier fit
    named = clf().fit(DF, Y_CLF).fit(X, Y_CLF)
    assert not hasattr(named, "feature_names_in_")


def test_dataframe_column_names_of_mixed_types():
    with pytest.raises(TypeError, match="Feature names are only supported if all input "
                                        "features have string names"):
        clf().fit(pd.DataFrame(X, columns=["a", 1, "c"]), Y_CLF)
    # non-string names: no feature names, as in scikit-learn
    assert not hasattr(clf().fit(pd.DataFrame(X), Y_CLF), "feature_names_in_")


def test_dataframe_dtypes():
    # float32 columns train a float32 model
    assert clf().fit(DF.astype(np.float32), Y_CLF).coefs_[0].dtype == np.float32
    mixed = pd.DataFrame({"a": X[:, 0].astype(np.float32), "b": X[:, 1]})
    assert clf().fit(mixed, Y_CLF).coefs_[0].dtype == np.float64
    # pandas' nullable dtypes convert; their missing values are reported as NaN
    nullable = pd.DataFrame({"a": pd.array(INT_X[:, 0], dtype="Int64"),
                             "b": pd.array(X[:, 1] > 0, dtype="boolean")})
    ref = clf().fit(np.c_[INT_X[:, 0], X[:, 1] > 0].astype(float), Y_CLF)
    np.testing.assert_array_equal(fitted_params(clf().fit(nullable, Y_CLF)), fitted_params(ref))
    nullable.loc[3, "a"] = pd.NA
    with pytest.raises(ValueError, match=re.escape(NAN_MESSAGE)):
        clf().fit(nullable, Y_CLF)
    strings = pd.DataFrame({"a": pd.Categorical(["x", "y"] * 12), "b": X[:, 1]})
    with pytest.raises(ValueError, match="X holds values that are not numbers"):
        clf().fit(strings, Y_CLF)


# ---------------------------------------------------------------------------
# hyper-parameters
# ---------------------------------------------------------------------------

BAD_PARAMS = [
    ("alpha", -1.0, "a float in the range [0.0, inf)"),
    ("alpha", np.nan, "a float in the range [0.0, inf)"),
    ("alpha", np.inf, "a float in the range [0.0, inf)"),
    ("alpha", "0.1", "a float in the range [0.0, inf)"),
    ("batch_size", 0, "a str among {'auto'} or an int in the range [1, inf)"),
    ("batch_size", 2.5, "a str among {'auto'} or an int in the range [1, inf)"),
    ("batch_size", "big", "a str among {'auto'} or an int in the range [1, inf)"),
    ("hidden_layer_sizes", 0, "an array-like or an int in the range [1, inf)"),
    ("hidden_layer_sizes", "ab", "an array-like or an int in the range [1, inf)"),
    ("activation", "softmax",
     "a str among {'gelu', 'identity', 'leaky_relu', 'logistic', 'mish', 'relu', 'selu', "
     "'silu', 'softplus', 'tanh'}"),
    ("solver", "newton", "a str among {'adam', 'lbfgs', 'sgd'}"),
    ("learning_rate", "linear",
     "a str among {'adaptive', 'constant', 'cosine', 'flat_cosine', 'invscaling'}"),
    ("learning_rate_init", 0.0, "a float in the range (0.0, inf)"),
    ("learning_rate_init", np.inf, "a float in the range (0.0, inf)"),
    ("power_t", -0.5, "a float in the range [0.0, inf)"),
    ("max_iter", 0, "an int in the range [1, inf)"),
    ("max_iter", 10.0, "an int in the range [1, inf)"),
    ("shuffle", 1, "an instance of 'bool' or an instance of 'numpy.bool'"),
    ("random_state", -1, "an int in the range [0, 4294967295], an instance of "
                         "'numpy.random.mtrand.RandomState' or None"),
    ("random_state", np.random.default_rng(0), "an int in the range [0, 4294967295], an "
     "instance of 'numpy.random.mtrand.RandomState' or None"),
    ("tol", -1e-4, "a float in the range [0.0, inf)"),
    ("tol", np.inf, "a float in the range [0.0, inf)"),
    ("verbose", -1, "an int in the range [0, inf), an instance of 'bool' or an instance of "
                    "'numpy.bool'"),
    ("warm_start", "yes", "an instance of 'bool' or an instance of 'numpy.bool'"),
    ("momentum", 1.5, "a float in the range [0.0, 1.0]"),
    ("momentum", -0.1, "a float in the range [0.0, 1.0]"),
    ("nesterovs_momentum", None, "an instance of 'bool' or an instance of 'numpy.bool'"),
    ("early_stopping", 0, "an instance of 'bool' or an instance of 'numpy.bool'"),
    ("validation_fraction", 1.0, "a float in the range [0.0, 1.0)"),
    ("beta_1", 1.0, "a float in the range [0.0, 1.0)"),
    ("beta_1", -0.1, "a float in the range [0.0, 1.0)"),
    ("beta_2", 1.0, "a float in the range [0.0, 1.0)"),
    ("epsilon", 0.0, "a float in the range (0.0, inf)"),
    ("n_iter_no_change", 0, "an int in the range [1, inf) or a float among {inf}"),
    ("n_iter_no_change", 2.0, "an int in the range [1, inf) or a float among {inf}"),
    ("max_fun", 0, "an int in the range [1, inf)"),
]


@pytest.mark.parametrize("name, value, accepted", BAD_PARAMS,
                         ids=[f"{n}={v!r}" for n, v, _ in BAD_PARAMS])
def test_invalid_hyper_parameter(name, value, accepted):
    model = clf(**{name: value})
    with pytest.raises(InvalidParameterError, match=exact(
            f"The '{name}' parameter of MLPClassifier must be {accepted}. "
            f"Got {value!r} instead.")):
        model.fit(X, Y_CLF)
    # InvalidParameterError is both a ValueError and a TypeError, as in scikit-learn
    with pytest.raises(ValueError):
        model.fit(X, Y_CLF)
    with pytest.raises(TypeError):
        model.fit(X, Y_CLF)


# fastbp adds activations and learning-rate schedules, so those messages differ
SKLEARN_PARAMS = [p for p in BAD_PARAMS if p[0] not in ("activation", "learning_rate")]


@pytest.mark.parametrize("name, value, accepted", SKLEARN_PARAMS,
                         ids=[f"{n}={v!r}" for n, v, _ in SKLEARN_PARAMS])
def test_invalid_hyper_parameter_same_as_sklearn(name, value, accepted):
    sk_nn = pytest.importorskip("sklearn.neural_network")
    with pytest.raises(ValueError) as sk_info:
        params = dict(hidden_layer_sizes=(4,), max_iter=3)
        params[name] = value
        sk_nn.MLPClassifier(**params).fit(X, Y_CLF)
    with pytest.raises(ValueError) as fb_info:
        clf(**{name: value}).fit(X, Y_CLF)

    def canonical(message):
        # scikit-learn prints option sets in hash order; fastbp sorts them
        return re.sub(r"\{([^}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", ")))
                      + "}", message)

    assert canonical(str(fb_info.value)) == canonical(str(sk_info.value))


@pytest.mark.parametrize("sizes, message", [
    ((5, 0), "hidden_layer_sizes must be > 0, got [5, 0]."),
    ((5, -1), "hidden_layer_sizes must be > 0, got [5, -1]."),
    ((2.5,), "The 'hidden_layer_sizes' parameter of MLPClassifier must hold one int >= 1 per "
             "hidden layer. Got (2.5,) instead."),
])
def test_invalid_hidden_layer_sizes(sizes, message):
    with pytest.raises(ValueError, match=exact(message)):
        clf(hidden_layer_sizes=sizes).fit(X, Y_CLF)


def test_invalid_loss():
    with pytest.raises(InvalidParameterError, match=exact(
            "The 'loss' parameter of MLPRegressor must be a str among {'absolute_error', "
            "'huber', 'poisson', 'quantile', 'squared_error'}. Got 'hinge' instead.")):
        reg(loss="hinge").fit(X, Y_REG)
    with pytest.raises(InvalidParameterError, match="The 'loss' parameter of MLP must be"):
        MLP((3,), loss="hinge").fit(X, Y_REG)


@pytest.mark.parametrize("name, value", [
    ("hidden_layer_sizes", ()), ("hidden_layer_sizes", [3, 2]),
    ("hidden_layer_sizes", np.array([3])), ("hidden_layer_sizes", np.int64(3)),
    ("batch_size", np.int32(5)), ("alpha", np.float32(0.01)), ("alpha", 0),
    ("verbose", np.int64(0)), ("shuffle", np.bool_(False)), ("random_state", np.int64(7)),
    ("random_state", np.random.RandomState(3)), ("n_iter_no_change", np.inf),
    ("momentum", 1.0), ("beta_1", 0.0), ("activation", "leaky_relu"),
])
def test_valid_hyper_parameter_edge_values(name, value):
    model = clf(**{name: value}).fit(X, Y_CLF)
    assert np.all(np.isfinite(fitted_params(model)))


@pytest.mark.parametrize("name, good, bad", [
    ("max_iter", 5, 5.0), ("shuffle", True, 1), ("early_stopping", False, 0),
    ("batch_size", 8, 8.0), ("momentum", 0.5, "0.5"), ("tol", 1e-4, np.nan),
    ("dropout", (0, 0.5), (False, 0.5)),
])
def test_an_accepted_value_does_not_let_an_equal_value_of_another_type_through(
        name, good, bad):
    # validation remembers accepted scalars by type and value: a value equal to
    # an accepted one (5.0 == 5, 1 == True, (False, 0.5) == (0, 0.5)) is still
    # checked, and refused, every time
    for _ in range(2):
        MLP((3, 2), **{name: good})._validate_params()
        with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of MLP"):
            MLP((3, 2), **{name: bad})._validate_params()


def test_failed_validation_leaves_fitted_model_untouched():
    model = clf().fit(X, Y_CLF)
    before = fitted_params(model).copy()
    model.set_params(alpha=-1.0)
    with pytest.raises(InvalidParameterError):
        model.fit(X, Y_CLF)
    model.set_params(alpha=1e-4)
    with pytest.raises(ValueError):
        model.fit(X[:, :2], Y_CLF[:5])
    np.testing.assert_array_equal(fitted_params(model), before)
    assert model.n_features_in_ == 3


def test_clean_input_is_not_copied():
    from fastbp._validation import check_X

    checked, csr = check_X(X, dtype=np.dtype(np.float64), estimator_name="MLP")
    assert checked is X and csr is None
    X32 = X.astype(np.float32)
    assert check_X(X32, dtype=np.dtype(np.float32), estimator_name="MLP")[0] is X32
    S = sp.csr_matrix(X)
    S.indices = S.indices.astype(np.intp)
    S.indptr = S.indptr.astype(np.intp)
    _, (data, indices, indptr) = check_X(S, dtype=np.dtype(np.float64), estimator_name="MLP")
    assert np.shares_memory(data, S.data) and np.shares_memory(indices, S.indices)
