"""Model files of the tabular presets and of TabularPipeline (format version
3): save/load and pickle round trips predict bit for bit as the saved model
did, nothing is unpickled, MLP files stay version 2, and bad files are
rejected with a ValueError naming the problem."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import fastbp
from fastbp import MLPClassifier, MLPRegressor, TabularMLPClassifier, TabularMLPRegressor
from fastbp.tabular import TabularPipeline, TabularPreprocessor

pd = pytest.importorskip("pandas")

# short fits on purpose
pytestmark = pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")

SMALL = dict(hidden_layer_sizes=(8,), max_iter=4, batch_size=32)


def table(n=200, seed=0):
    """Numbers with NaN, a text column with missing values and many levels
    (a one-hot block), a bool, a date; labels and a two-column target."""
    rng = np.random.RandomState(seed)
    size = rng.normal(size=n)
    city = rng.choice([f"c{k}" for k in range(30)], size=n).astype(object)
    city[rng.rand(n) < 0.05] = None
    frame = pd.DataFrame({
        "size": np.where(rng.rand(n) < 0.1, np.nan, size),
        "city": city,
        "member": rng.rand(n) < 0.5,
        "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.randint(0, 900, n), "D"),
    })
    label = np.array(["low", "mid", "high"])[(size > -0.5).astype(int) + (size > 0.5)]
    value = np.c_[100 + 20 * size, rng.normal(size=n)]
    return frame, label, value


def _cases():
    X, label, value = table()
    codes = X.to_numpy(dtype=object)
    return {
        "classifier-ensemble-str": (TabularMLPClassifier(**SMALL, n_ensemble=3, random_state=0),
                                    X, label),
        "classifier-bool-labels": (TabularMLPClassifier(**SMALL, random_state=1), X,
                                   value[:, 0] > 100),
        "classifier-object-array-f64": (TabularMLPClassifier(**SMALL, dtype="float64",
                                                             random_state=2), codes[:, :3],
                                        (value[:, 0] > 100).astype(int)),
        "classifier-rng-instance": (TabularMLPClassifier(
            **SMALL, random_state=np.random.RandomState(4), categorical_features=["member"],
            max_categories=5), X, label),
        "regressor-two-outputs": (TabularMLPRegressor(**SMALL, n_ensemble=2, random_state=3),
                                  X, value),
        "regressor-one-output": (TabularMLPRegressor(**SMALL, random_state=5), X, value[:, 0]),
        "pipeline-classifier": (TabularPipeline(MLPClassifier((6,), max_iter=3,
                                                              random_state=0)), X, label),
        "pipeline-regressor-f64": (TabularPipeline(
            MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5, random_state=0),
            TabularPreprocessor(dtype="float64", min_frequency=1)), X, value[:, 0]),
    }


CASES = ["classifier-ensemble-str", "classifier-bool-labels", "classifier-object-array-f64",
         "classifier-rng-instance", "regressor-two-outputs", "regressor-one-output",
         "pipeline-classifier", "pipeline-regressor-f64"]


def _predictions(model, X):
    out = {"predict": model.predict(X)}
    if hasattr(model, "predict_proba"):
        out["predict_proba"] = model.predict_proba(X)
    return out


def _assert_same_predictions(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _through_file(model, tmp_path):
    model.save(tmp_path / "model.fbp")
    return fastbp.load(tmp_path / "model.fbp")


def _through_pickle(model, tmp_path):
    return pickle.loads(pickle.dumps(model))


@pytest.mark.parametrize("route", [_through_file, _through_pickle], ids=["save-load", "pickle"])
@pytest.mark.parametrize("case", CASES)
def test_round_trip_predicts_bit_for_bit(case, route, tmp_path):
    model, X, y = _cases()[case]
    model.fit(X, y)
    copy = route(model, tmp_path)
    assert type(copy) is type(model)
    _assert_same_predictions(_predictions(copy, X), _predictions(model, X))
    # unseen rows too (an unseen category, other values)
    other = table(60, seed=9)[0]
    if not isinstance(X, pd.DataFrame):
        other = other.to_numpy(dtype=object)[:, :X.shape[1]]
    _assert_same_predictions(_predictions(copy, other), _predictions(model, other))
    # a RandomState prints its address
    assert repr(copy).split(" at 0x")[0] == repr(model).split(" at 0x")[0]
    assert copy.n_features_in_ == model.n_features_in_
    assert list(getattr(copy, "feature_names_in_", [])) == list(
        getattr(model, "feature_names_in_", []))
    assert copy.preprocessor_.get_feature_names_out().tolist() == \
        model.preprocessor_.get_feature_names_out().tolist()
    if hasattr(model, "estimators_"):
        assert copy.best_epochs_ == model.best_epochs_
        assert copy.validation_scores_ == model.validation_scores_
        np.testing.assert_array_equal(copy.n_iter_, model.n_iter_)
        members = zip(copy.estimators_, model.estimators_)
    else:
        members = [(copy.mlp_, model.mlp_)]
    for a, b in members:
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v)
    if hasattr(model, "classes_"):
        assert copy.classes_.dtype == model.classes_.dtype
        np.testing.assert_array_equal(copy.classes_, model.classes_)


def test_loaded_model_pickles_and_saves_again(tmp_path):
    model, X, y = _cases()["classifier-ensemble-str"]
    model.fit(X, y)
    loaded = _through_file(model, tmp_path)
    again = _through_file(pickle.loads(pickle.dumps(loaded)), tmp_path / "..")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_random_state_instance_is_kept_with_its_state(tmp_path):
    model, X, y = _cases()["classifier-rng-instance"]
    model.fit(X, y)
    loaded = _through_file(model, tmp_path)
    assert isinstance(loaded.random_state, np.random.RandomState)
    assert loaded.random_state.randint(1 << 30) == model.random_state.randint(1 << 30)


def test_callbacks_are_not_saved_and_the_dtype_is_kept_by_name(tmp_path):
    X, label, _ = table()
    model = TabularMLPClassifier(**SMALL, dtype=np.float64, callbacks=[lambda info: False],
                                 random_state=0).fit(X, label)
    loaded = _through_file(model, tmp_path)
    assert loaded.callbacks is None and loaded.dtype == "float64"
    assert all(member.callbacks is None for member in loaded.estimators_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _entries(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _header(entries):
    return json.loads(entries["header"].tobytes().decode("utf-8"))


def test_versions_mlp_files_stay_2_and_members_keep_only_what_predicts(tmp_path):
    X, label, _ = table()
    MLPClassifier((4,), max_iter=2, random_state=0).fit(X[["size"]].fillna(0), label).save(
        tmp_path / "mlp.fbp")
    assert _header(_entries(tmp_path / "mlp.fbp"))["version"] == 2
    TabularMLPClassifier(**SMALL, n_ensemble=2, random_state=0).fit(X, label).save(
        tmp_path / "preset.fbp")
    entries = _entries(tmp_path / "preset.fbp")
    header = _header(entries)
    assert header["version"] == 3 and header["estimator"] == "TabularMLPClassifier"
    assert sorted(entries) == ["classes", "header", "members/0/classes", "members/0/params",
                               "members/1/classes", "members/1/params",
                               "preprocessor/centre", "preprocessor/scale"]
    assert all("optimizer" not in member for member in header["members"])


def test_saving_an_unfitted_model_is_an_error(tmp_path):
    for model in (TabularMLPRegressor(), TabularPipeline()):
        with pytest.raises(fastbp.NotFittedError):
            model.save(tmp_path / "m.fbp")


# ---------------------------------------------------------------------------
# bad files
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, label, value = table()
    path = tmp_path_factory.mktemp("saved") / "preset.fbp"
    TabularMLPClassifier(**SMALL, n_ensemble=2, random_state=0).fit(X, label).save(path)
    reg = path.with_name("reg.fbp")
    TabularMLPRegressor(**SMALL, random_state=0).fit(X, value).save(reg)
    return _entries(path), _entries(reg)


def _pack(entries):
    buf = io.BytesIO()
    np.savez(buf, **entries)
    return buf.getvalue()


def _expect_rejected(tmp_path, entries, why):
    path = tmp_path / "bad.fbp"
    path.write_bytes(_pack(entries))
    with pytest.raises(ValueError, match="is not a valid fastbp model file") as info:
        fastbp.load(path)
    assert why in str(info.value), str(info.value)


def _with_header(entries, change):
    header = _header(entries)
    change(header)
    out = dict(entries)
    out["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return out


def _set(path, value):
    def change(header):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


HEADER_TAMPERING = [
    (_set(["estimator"], "Trojan"), "unknown estimator 'Trojan' for format version 3"),
    (_set(["version"], 4), "format version 4"),
    (_set(["params", "n_ensemble"], 0), "invalid parameters"),
    (_set(["params", "surprise"], 1), "the estimator parameters are missing or unknown"),
    (_set(["members"], []), "the members are malformed"),
    (_set(["members", 0, "estimator"], "MLPRegressor"), "parameters are missing or unknown"),
    (_set(["members", 0, "estimator"], "MLPClassifierX"), "unknown estimator"),
    (_set(["members", 0, "sizes"], [5, 8, 3]), "entry 'members/0/params' has shape"),
    (_set(["attrs", "best_epochs_"], [99, 1]), "best epochs or held-out scores are invalid"),
    (_set(["preprocessor", "column_kinds"], ["numeric"] * 4),
     "invalid tabular preprocessing state"),
    (_set(["preprocessor", "n_features_in"], "4"), "invalid tabular preprocessing state"),
]


@pytest.mark.parametrize("change, why", HEADER_TAMPERING,
                         ids=[w[:40] for _, w in HEADER_TAMPERING])
def test_tampered_header(saved, tmp_path, change, why):
    _expect_rejected(tmp_path, _with_header(saved[0], change), why)


def test_tampered_arrays(saved, tmp_path):
    clf, reg = saved
    cases = [
        (clf, "classes", np.array(["mid", "low", "high"]), "not sorted and unique"),
        (clf, "members/1/params", None, "the entry 'members/1/params' is missing"),
        (clf, "members/0/params", clf["members/0/params"][:-1],
         "entry 'members/0/params' has shape"),
        (clf, "preprocessor/scale", np.r_[clf["preprocessor/scale"], 1.0],
         "invalid tabular preprocessing state"),
        (clf, "members/2/params", clf["members/0/params"], "unexpected entry"),
        (clf, "members/0/opt_state1", clf["members/0/params"], "unexpected entry"),
        (clf, "classes", np.array(["a", "b"]), "not codes of the preset's classes"),
        (reg, "target_scale", np.array([1.0, 0.0]), "the target scaling is invalid"),
        (reg, "target_mean", np.array([1.0]), "entry 'target_scale' has shape"),
    ]
    for entries, name, value, why in cases:
        changed = dict(entries)
        if value is None:
            del changed[name]
        else:
            changed[name] = value
        _expect_rejected(tmp_path, changed, why)


def test_parts_that_do_not_fit_together(saved, tmp_path):
    clf = saved[0]
    n_in = 5  # a member reading 5 features from a preprocessing that gives more

    def narrow(header):
        header["members"][0]["sizes"][0] = n_in
        header["members"][0]["attrs"]["n_features_in_"] = n_in
    entries = _with_header(clf, narrow)
    entries["members/0/params"] = np.zeros(n_in * 8 + 8 + 8 * 3 + 3, np.float32)
    _expect_rejected(tmp_path, entries, "a member reads 5 features, the preprocessing (and "
                                        "periodic features) give")
    # a regressor's member in a classifier
    reg = saved[1]

    def swap(header):
        header["members"][0] = _header(reg)["members"][0]
    entries = _with_header(clf, swap)
    entries["members/0/params"] = reg["members/0/params"]
    del entries["members/0/classes"]
    _expect_rejected(tmp_path, entries, "a member is a 'MLPRegressor', expected MLPClassifier")


def test_version_2_files_take_no_part_entries(tmp_path):
    X, label, _ = table()
    path = tmp_path / "mlp.fbp"
    MLPClassifier((4,), max_iter=2, random_state=0).fit(X[["size"]].fillna(0), label).save(path)
    entries = _entries(path)
    entries["members/0/params"] = entries["params"]
    _expect_rejected(tmp_path, entries, "unexpected entry 'members/0/params.npy'")


def test_nothing_is_unpickled(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    for name in ("members/0/params", "preprocessor/centre", "classes"):
        entries = dict(saved[0])
        entries[name] = evil
        _expect_rejected(tmp_path, entries, "holds Python objects")
    assert not marker.exists()
    with zipfile.ZipFile(io.BytesIO(_pack(saved[0]))) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
