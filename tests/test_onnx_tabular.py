"""fastbp.onnx exports the tabular presets with their preprocessing.

Each preset (classifier and regressor, one member and an ensemble, float32 and float64)
is fitted on frames with numbers, NaN, +-inf, bools, dates, durations, two-valued and
many-valued categories (missing values, rare values in the "other" slot) and its graph
run by onnxruntime on frames holding values unseen at fit: probabilities and predictions
within 1e-5 (float32) / 1e-10 (float64) of fastbp's, labels equal. The feed is built two
ways: by ``fastbp.onnx.tabular_inputs`` and by hand from pandas, following docs/onnx.md.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import TabularMLPClassifier, TabularMLPRegressor

ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime publishes no wheel for this platform and Python")
pd = pytest.importorskip("pandas")
import fastbp.onnx  # noqa: E402

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]
SMALL = dict(hidden_layer_sizes=(16, 8), max_iter=15, batch_size=32,
             learning_rate_init=0.01, random_state=0, min_frequency=3)


def frame(n=300, seed=0):
    """Numbers (NaN, +-inf), a constant column, a bool with missing values, a date, a
    duration, a two-valued text, a many-valued text (missing, rare values) and integer
    codes; a label and a target that depend on them."""
    rng = np.random.RandomState(seed)
    size = rng.lognormal(size=n) * 1000
    size[rng.rand(n) < 0.08] = np.nan
    size[:2] = [np.inf, -np.inf]
    city = rng.choice(["oslo", "rome", "lima", "kyiv", "doha"], size=n,
                      p=[0.4, 0.3, 0.2, 0.08, 0.02]).astype(object)
    city[rng.rand(n) < 0.06] = None
    city[3:6] = ["rare-1", "rare-2", "rare-3"]
    member = pd.array(rng.rand(n) < 0.5, dtype="boolean")
    member[rng.rand(n) < 0.1] = pd.NA
    side = rng.choice(["left", "right"], size=n).astype(object)
    side[rng.rand(n) < 0.05] = np.nan
    X = pd.DataFrame({
        "size": size,
        "weight": rng.normal(size=n),
        "constant": np.full(n, 7.0),
        "member": member,
        "joined": pd.Timestamp("2019-03-01") + pd.to_timedelta(rng.randint(0, 2000, n), "D"),
        "wait": pd.to_timedelta(rng.exponential(3, n), "h"),
        "side": side,
        "city": city,
        "code": rng.randint(0, 4, n),
    })
    score = np.nan_to_num(np.log1p(np.abs(size)), posinf=9, neginf=0) - 7 + X["weight"] \
        + (city == "rome") - (side == "left")
    label = np.where(score > 0.5, "high", np.where(score > -0.5, "mid", "low"))
    target = 50 + 10 * score + rng.normal(size=n)
    return X, label, np.c_[target, -2 * target + 5]


def unseen(X, seed=1):
    """``X`` with values fit never saw: new cities and sides, missing everywhere,
    numbers far outside the fitted range."""
    X = X.copy()
    rng = np.random.RandomState(seed)
    rows = rng.rand(len(X)) < 0.15
    X.loc[rows, "city"] = "atlantis"
    X.loc[rng.rand(len(X)) < 0.1, "side"] = "up"
    X.loc[rng.rand(len(X)) < 0.1, "weight"] = np.nan
    X.loc[rng.rand(len(X)) < 0.1, "constant"] = 8.0
    X.loc[rng.rand(len(X)) < 0.05, "size"] = 1e12
    X.loc[rng.rand(len(X)) < 0.05, "joined"] = pd.NaT
    X.loc[rng.rand(len(X)) < 0.05, "code"] = 9
    X.loc[4, "constant"] = np.inf
    return X


def fitted(cls, dtype, n_ensemble=1, **params):
    X, label, target = frame()
    y = label if cls is TabularMLPClassifier else params.pop("y", target[:, 0])
    model = cls(**{**SMALL, **params}, n_ensemble=n_ensemble, dtype=dtype,
                categorical_features=["code"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return model.fit(X, y), X


def session(model):
    return ort.InferenceSession(fastbp.onnx.to_onnx(model).SerializeToString(),
                                providers=["CPUExecutionProvider"])


def run(model, X, feed=None):
    sess = session(model)
    outputs = sess.run(None, feed if feed is not None else fastbp.onnx.tabular_inputs(model, X))
    return dict(zip([o.name for o in sess.get_outputs()], outputs))


def assert_same(model, X, outputs, dtype):
    tolerance = TOLERANCE[dtype]
    if isinstance(model, TabularMLPClassifier):
        assert outputs["probabilities"].dtype == dtype
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X),
                                   rtol=0, atol=tolerance)
        np.testing.assert_array_equal(outputs["label"], model.predict(X))
    else:
        assert outputs["variable"].dtype == dtype
        expected = model.predict(X).reshape(X.shape[0], -1)
        np.testing.assert_allclose(outputs["variable"], expected, rtol=tolerance,
                                   atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_ensemble", [1, 3])
def test_classifier_graph_matches_fastbp_on_seen_and_unseen_values(dtype, n_ensemble):
    model, X = fitted(TabularMLPClassifier, dtype, n_ensemble)
    assert model.classes_.tolist() == ["high", "low", "mid"]
    for rows in (X, unseen(X)):
        assert_same(model, rows, run(model, rows), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_ensemble, outputs", [(1, 1), (2, 1), (2, 2)])
def test_regressor_graph_matches_fastbp_on_seen_and_unseen_values(dtype, n_ensemble, outputs):
    target = frame()[2]
    model, X = fitted(TabularMLPRegressor, dtype, n_ensemble,
                      y=target[:, 0] if outputs == 1 else target)
    for rows in (X, unseen(X)):
        result = run(model, rows)
        assert result["variable"].shape == (len(rows), outputs)
        assert_same(model, rows, result, dtype)


def test_members_missing_a_class_are_spread_over_the_preset_s_classes():
    X, label, _ = frame(150)
    label = label.astype(object)
    label[7] = "rare"  # one row: some members' splits cannot hold it
    model = TabularMLPClassifier(**{**SMALL, "random_state": 1}, n_ensemble=4,
                                 validation_fraction=0.5).fit(X, label)
    assert any(len(m.classes_) < 4 for m in model.estimators_)
    assert_same(model, unseen(X), run(model, unseen(X)), np.float32)


def test_binary_labels_of_every_kind():
    X, label, _ = frame()
    for y in (label == "high", np.where(label == "high", 3, -1), label == "mid"):
        model = TabularMLPClassifier(**SMALL).fit(X, y)
        outputs = run(model, unseen(X))
        assert outputs["probabilities"].shape == (len(X), 2)
        assert_same(model, unseen(X), outputs, np.float32)


def _by_hand(X):
    """The feed built from pandas by docs/onnx.md's rules, without fastbp."""
    epoch = pd.Timestamp(0)
    feed = {}
    for name, column in X.items():
        if name in ("side", "city", "code"):
            texts = column.map(lambda v: "" if v is None or v is pd.NA or v != v else str(v))
            feed[name] = texts.to_numpy(dtype=object).reshape(-1, 1)
        elif pd.api.types.is_datetime64_any_dtype(column):
            feed[name] = ((column - epoch) / pd.Timedelta(days=1)).to_numpy(
                dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        elif pd.api.types.is_timedelta64_dtype(column):
            feed[name] = (column / pd.Timedelta(days=1)).to_numpy(
                dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        else:
            feed[name] = column.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
    return feed


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_feed_built_by_hand_from_the_documented_rules(dtype):
    model, X = fitted(TabularMLPClassifier, dtype)
    rows = unseen(X)
    feed = _by_hand(rows)
    assert set(feed) == {i.name for i in session(model).get_inputs()}
    assert_same(model, rows, run(model, rows, feed), dtype)


def test_the_inputs_are_one_per_column_numbers_double_categories_string():
    model, X = fitted(TabularMLPClassifier, np.float32)
    inputs = {i.name: (i.type, i.shape[1]) for i in session(model).get_inputs()}
    strings = {"side", "city", "code"}
    assert inputs == {name: ("tensor(string)" if name in strings else "tensor(double)", 1)
                      for name in X.columns}
    names = [o.name for o in session(model).get_outputs()]
    assert names == ["label", "probabilities"]


def test_a_column_missing_at_fit_has_no_input():
    X, label, _ = frame()
    X["nothing"] = np.nan
    model = TabularMLPClassifier(**SMALL).fit(X, label)
    assert model.preprocessor_.column_kinds_.tolist()[-1] == "empty"
    assert "nothing" not in {i.name for i in session(model).get_inputs()}
    assert_same(model, X, run(model, X), np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_numeric_matrix_is_one_input_x(dtype):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 6)) * [1, 10, 100, 1e3, 1e-3, 1]
    X[rng.rand(*X.shape) < 0.05] = np.nan
    X[:, 5] = rng.rand(300) < 0.5
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) / 10) > 0
    model = TabularMLPClassifier(**SMALL, dtype=dtype).fit(X, y)
    (x_input,) = session(model).get_inputs()
    assert (x_input.name, x_input.type, x_input.shape[1]) == ("X", "tensor(double)", 6)
    X_new = X.copy()
    X_new[0] = [np.inf, -np.inf, 1e300, np.nan, -1e300, 1]
    assert_same(model, X_new, run(model, X_new, {"X": X_new}), dtype)


def test_a_preset_fitted_on_a_sparse_matrix_takes_dense_rows():
    rng = np.random.RandomState(0)
    X = sp.random(300, 20, density=0.2, random_state=rng, format="csr") * 50
    X.data[::17] = np.nan
    y = np.asarray(X.sum(axis=1)).ravel() > 0
    model = TabularMLPRegressor(**SMALL).fit(X, np.nan_to_num(X[:, 0].toarray().ravel()))
    assert model.preprocessor_.sparse_input_
    feed = fastbp.onnx.tabular_inputs(model, X)
    np.testing.assert_array_equal(feed["X"], X.toarray())
    assert_same(model, X, run(model, X, feed), np.float32)
    assert y.any()


def test_a_frame_with_integer_column_names_and_a_numpy_object_array():
    X, label, _ = frame()
    objects = X[["weight", "city", "side"]].to_numpy(dtype=object)
    model = TabularMLPClassifier(**SMALL).fit(objects, label)
    assert [i.name for i in session(model).get_inputs()] == ["x0", "x1", "x2"]
    assert_same(model, objects, run(model, objects), np.float32)


def test_an_empty_string_category_cannot_be_exported_and_the_error_names_it():
    X, label, _ = frame()
    X["side"] = X["side"].fillna("")
    model = TabularMLPClassifier(**SMALL).fit(X, label)
    with pytest.raises(ValueError, match="'side' has the empty string as a category"):
        fastbp.onnx.to_onnx(model)


def test_a_column_named_like_an_output_is_refused_with_the_reason():
    X, label, _ = frame()
    model = TabularMLPRegressor(**SMALL).fit(X.rename(columns={"weight": "variable"}),
                                             frame()[2][:, 0])
    with pytest.raises(ValueError, match=r"named \['variable'\].*rename"):
        fastbp.onnx.to_onnx(model)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, periodic_features", [(TabularMLPClassifier, 4),
                                                    (TabularMLPRegressor, 0)])
def test_periodic_features_on_or_off_in_either_preset(dtype, cls, periodic_features):
    # the regressor's default has 8 per number (the tests above), the classifier's none
    model, X = fitted(cls, dtype, periodic_features=periodic_features, periodic_scale=0.5)
    n_numbers = len(model.preprocessor_.numeric_columns_)
    assert model.member_inputs(X).shape[1] == (model.preprocessor_.n_features_out_
                                               + n_numbers * periodic_features)
    for rows in (X, unseen(X)):
        assert_same(model, rows, run(model, rows), dtype)


def _pipeline(mlp, y, dtype, **params):
    from fastbp.tabular import TabularPipeline

    X = frame()[0]
    pipeline = TabularPipeline(mlp, fastbp.tabular.TabularPreprocessor(
        min_frequency=3, categorical_features=["code"], dtype=dtype), **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return pipeline.fit(X, y), X


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("labels", ["text", "binary"])
def test_a_classifier_pipeline_exports_as_a_one_member_preset(dtype, labels):
    # the command line's default model: the preprocessing in front of one MLP
    label = frame()[1]
    y = label if labels == "text" else (label == "high")
    model, X = _pipeline(fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=15, random_state=0), y, dtype)
    for rows in (X, unseen(X)):
        outputs = run(model, rows)
        assert outputs["probabilities"].dtype == dtype
        np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows),
                                   rtol=0, atol=TOLERANCE[dtype])
        np.testing.assert_array_equal(outputs["label"], model.predict(rows).astype(
            outputs["label"].dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale_target, outputs", [(True, 1), (True, 2), (False, 1)])
def test_a_regressor_pipeline_maps_its_target_back_in_the_graph(dtype, scale_target, outputs):
    target = frame()[2]
    y = target[:, 0] if outputs == 1 else target
    model, X = _pipeline(fastbp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=15, random_state=0), y, dtype,
                         scale_target=scale_target)
    assert ("target_mean_" in model.__dict__) == scale_target
    for rows in (X, unseen(X)):
        result = run(model, rows)
        assert result["variable"].shape == (len(rows), outputs)
        expected = model.predict(rows).reshape(len(rows), -1)
        np.testing.assert_allclose(result["variable"], expected, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype])


def test_a_multilabel_pipeline_is_refused_with_the_reason():
    label = frame()[1]
    y = np.c_[label == "high", label == "low"]
    model, _ = _pipeline(fastbp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), y, np.float64)
    with pytest.raises(ValueError, match="multilabel MLPClassifier cannot be exported"):
        fastbp.onnx.to_onnx(model)


def test_an_unfitted_preset():
    with pytest.raises(fastbp.NotFittedError, match="TabularMLPClassifier"):
        fastbp.onnx.to_onnx(TabularMLPClassifier())
    with pytest.raises(fastbp.NotFittedError, match="TabularPipeline"):
        fastbp.onnx.to_onnx(fastbp.tabular.TabularPipeline())


def test_target_opset_and_a_saved_file(tmp_path):
    model, X = fitted(TabularMLPClassifier, np.float32)
    proto = fastbp.onnx.to_onnx(model, target_opset=15, name="preset")
    assert {o.domain: o.version for o in proto.opset_import} == {"": 15, "ai.onnx.ml": 2}
    path = tmp_path / "preset.onnx"
    path.write_bytes(proto.SerializeToString())
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, probabilities = sess.run(None, fastbp.onnx.tabular_inputs(model, X))
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=0, atol=1e-5)


def test_tabular_inputs_takes_a_preset_only_and_its_example_runs():
    import doctest

    with pytest.raises(TypeError, match="takes a fitted TabularMLPClassifier, "
                                        "TabularMLPRegressor or TabularPipeline; got "
                                        "fastbp.*MLPClassifier"):
        fastbp.onnx.tabular_inputs(fastbp.MLPClassifier(), np.zeros((2, 2)))
    result = doctest.testmod(fastbp.onnx._tabular)
    assert result.attempted >= 3 and result.failed == 0


def test_a_polars_frame_gives_the_same_feed_and_outputs():
    pl = pytest.importorskip("polars")
    model, X = fitted(TabularMLPClassifier, np.float64)
    rows = unseen(X)
    polars_rows = pl.from_pandas(rows)
    feed = fastbp.onnx.tabular_inputs(model, polars_rows)
    expected = fastbp.onnx.tabular_inputs(model, rows)
    assert feed.keys() == expected.keys()
    for name in feed:
        np.testing.assert_array_equal(feed[name], expected[name], err_msg=name)
    assert_same(model, polars_rows, run(model, polars_rows, feed), np.float64)
