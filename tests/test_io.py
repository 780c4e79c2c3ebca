"""Model files: exact round trips (and exact continued training) with
``save``/``load``, pickle and joblib; bad files of every kind are rejected
with a clear ValueError and never run code."""

import io
import json
import os
import pickle
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from conftest import quiet_warnings
import scipy.sparse as sp
from _model_state import assert_same_state, model_state

import fastbp
from fastbp import MLP, MLPClassifier, MLPRegressor

RNG = np.random.RandomState(0)
X = RNG.normal(size=(80, 4))
Y_BIN = (X[:, 0] > 0).astype(int)
Y_STR = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
Y_ML = np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 1].astype(int)
Y_REG = np.c_[X[:, 0] - X[:, 1], X[:, 2] * X[:, 3]]


# short fits on purpose: their convergence warnings are expected
pytestmark = pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")


def _cases():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    return {
        "clf-binary-adam": (lambda: MLPClassifier((5,), max_iter=4, random_state=0), X, Y_BIN),
        "clf-str-sgd-f32": (lambda: MLPClassifier((5, 3), solver="sgd", learning_rate="adaptive",
                                                  max_iter=4, random_state=1),
                            X.astype(np.float32), Y_STR),
        "clf-object-labels": (lambda: MLPClassifier((4,), max_iter=3, random_state=2), X,
                              Y_STR.astype(object)),
        "clf-multilabel-lbfgs": (lambda: MLPClassifier((6,), solver="lbfgs", max_iter=5,
                                                       random_state=3), X, Y_ML),
        "clf-dataframe-early-stopping": (
            lambda: MLPClassifier((5,), early_stopping=True, max_iter=6, random_state=4),
            df, Y_BIN),
        "reg-multi-sgd": (lambda: MLPRegressor(hidden_layer_sizes=(7,), solver="sgd",
                                               learning_rate="invscaling", max_iter=4,
                                               random_state=5), X, Y_REG),
        "reg-poisson-f32": (lambda: MLPRegressor(loss="poisson", hidden_layer_sizes=(3,),
                                                 max_iter=3, random_state=6),
                            X.astype(np.float32), np.abs(Y_REG[:, 0])),
        "reg-sparse-lbfgs": (lambda: MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs",
                                                  max_iter=5, random_state=7),
                             sp.csr_matrix(np.where(X > 0.5, X, 0)), Y_REG[:, 0]),
        "mlp-logloss-tanh": (lambda: MLP((4, 4), activation="tanh", max_iter=3,
                                         n_iter_no_change=np.inf, random_state=8), X, Y_STR),
        "mlp-squared-leaky": (lambda: MLP((4,), activation="leaky_relu", loss="squared_error",
                                          max_iter=3, random_state=9), X, Y_REG),
        "rng-instance": (lambda: MLPClassifier((4,), max_iter=3,
                                               random_state=np.random.RandomState(5)),
                         X, Y_BIN),
        "global-rng": (lambda: MLPClassifier((4,), max_iter=3, random_state=None), X, Y_BIN),
        "class-weight-dict": (lambda: MLPClassifier((4,), max_iter=3, random_state=10,
                                                    class_weight={"cat": 2.0, "emu": 0.5}),
                              X, Y_STR),
        "class-weight-multilabel": (lambda: MLP((4,), max_iter=3, random_state=11,
                                                class_weight=[{0: 1.0, 1: 3.0}] * 3),
                                    X, Y_ML),
    }


CASE_NAMES = ["clf-binary-adam", "clf-str-sgd-f32", "clf-object-labels", "clf-multilabel-lbfgs",
              "clf-dataframe-early-stopping", "reg-multi-sgd", "reg-poisson-f32",
              "reg-sparse-lbfgs", "mlp-logloss-tanh", "mlp-squared-leaky", "rng-instance",
              "global-rng", "class-weight-dict", "class-weight-multilabel"]


def _through_file(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return fastbp.load(path)


def _through_pickle(model, tmp_path):
    return pickle.loads(pickle.dumps(model))


def _through_joblib(model, tmp_path):
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return joblib.load(path)


ROUTES = {"save-load": _through_file, "pickle": _through_pickle, "joblib": _through_joblib}


def _predictions(model, Xd):
    out = [model.predict(Xd)]
    if hasattr(model, "predict_proba"):
        out.append(model.predict_proba(Xd))
    return out


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("case", CASE_NAMES)
def test_round_trip_is_exact(case, route, tmp_path):
    make, Xd, yd = _cases()[case]
    model = make().fit(Xd, yd)
    copy = ROUTES[route](model, tmp_path)
    assert type(copy) is type(model)
    if case == "global-rng" and route != "save-load":
        # pickle copies numpy's global generator into a private one
        model.__dict__.pop("_random_state"), copy.__dict__.pop("_random_state")
    assert_same_state(model_state(copy), model_state(model))
    assert np.shares_memory(copy.coefs_[0], copy._net.params)
    for a, b in zip(_predictions(copy, Xd), _predictions(model, Xd)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    if not isinstance(model.random_state, np.random.RandomState):  # repr shows its address
        assert repr(copy) == repr(model)


def _continue(model, Xd, yd, how):
    if how == "partial_fit":
        for _ in range(3):
            model.partial_fit(Xd, yd)
    else:
        model.set_params(warm_start=True, max_iter=3)
        model.fit(Xd, yd)
    return model


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("case, how", [
    ("clf-binary-adam", "partial_fit"), ("clf-str-sgd-f32", "partial_fit"),
    ("reg-multi-sgd", "partial_fit"), ("mlp-squared-leaky", "partial_fit"),
    ("rng-instance", "partial_fit"), ("clf-dataframe-early-stopping", "warm_start"),
    ("clf-multilabel-lbfgs", "warm_start"), ("reg-poisson-f32", "warm_start"),
])
def test_training_continues_exactly(case, how, route, tmp_path):
    make, Xd, yd = _cases()[case]
    model = make().fit(Xd, yd)
    copy = ROUTES[route](model, tmp_path)
    _continue(model, Xd, yd, how)
    _continue(copy, Xd, yd, how)
    assert_same_state(model_state(copy), model_state(model))


def test_callbacks_are_not_saved(tmp_path):
    seen = []
    model = MLPClassifier((4,), max_iter=3, random_state=0, callbacks=seen.append)
    model.fit(X, Y_BIN)
    assert seen
    model.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    assert loaded.callbacks is None  # code, not data: set it again after loading
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(fastbp.NotFittedError):
        MLPClassifier().save(tmp_path / "m.npz")
    # labels that are Python floats in an object array
    mixed = MLPClassifier((3,), max_iter=2, random_state=0).fit(
        X, np.array([0.5, 1.5] * 40, dtype=object))
    with pytest.raises(TypeError, match="cannot be saved without pickle"):
        mixed.save(tmp_path / "m.npz")
    assert not os.path.exists(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)  # no temporary file left behind


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    a = MLPClassifier((3,), max_iter=2, random_state=0).fit(X, Y_BIN)
    b = MLPClassifier((5,), max_iter=2, random_state=1).fit(X, Y_BIN)
    a.save(path)
    b.save(str(path))
    np.testing.assert_array_equal(fastbp.load(str(path)).coefs_[0], b.coefs_[0])
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_pickle_records_the_fastbp_version():
    model = MLPClassifier((3,), max_iter=2, random_state=0).fit(X, Y_BIN)
    state = model.__getstate__()
    assert state["_fastbp_version"] == fastbp.__version__
    assert "coefs_" not in state  # views: rebuilt from the flat buffer on load


PICKLES_0_1_0 = os.path.join(os.path.dirname(__file__), "fixtures", "pickles_0.1.0")


@pytest.mark.parametrize("name", ["classifier_adam_early_stopping", "regressor_lbfgs",
                                  "mlp_sgd_f32"])
def test_pickles_written_by_0_1_0_load(name):
    # 0.1.0 pickled the attribute dict; this fastbp pickles its state. An old
    # pickle loads into the model its model file (written alongside) holds,
    # and trains on exactly as that one does
    with open(os.path.join(PICKLES_0_1_0, f"{name}.pkl"), "rb") as fh:
        old = pickle.load(fh)  # our own fixture, made by make.py in that folder
    from_file = fastbp.load(os.path.join(PICKLES_0_1_0, f"{name}.fbp"))
    assert_same_state(model_state(old), model_state(from_file))
    Xd = X[:30].astype(old.coefs_[0].dtype)
    yd = old.predict(Xd)
    for model in (old, from_file):
        model.set_params(warm_start=True, max_iter=3).fit(Xd, yd)
    assert_same_state(model_state(old), model_state(from_file))


# ---------------------------------------------------------------------------
# bad files
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Bytes of a valid file of a classifier with string labels, feature
    names, Adam state and early-stopping weights."""
    pd = pytest.importorskip("pandas")
    path = tmp_path_factory.mktemp("io") / "model.npz"
    model = MLPClassifier((5,), early_stopping=True, max_iter=3, random_state=0)
    with quiet_warnings():
        model.fit(pd.DataFrame(X, columns=list("abcd")), Y_STR)
    model.save(path)
    return path.read_bytes(), model


def _entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name[:-4]: np.lib.format.read_array(z.open(name), allow_pickle=False)
                for name in z.namelist()}


def _pack(entries):
    buf = io.BytesIO()
    np.savez(buf, **entries)
    return buf.getvalue()


def _with_header(data, change):
    entries = _entries(data)
    header = json.loads(entries["header"].tobytes())
    change(header)
    entries["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return _pack(entries)


def _with_entry(data, name, value):
    entries = _entries(data)
    if value is None:
        del entries[name]
    else:
        entries[name] = value
    return _pack(entries)


def _load_bytes(tmp_path, data, name="bad.npz"):
    path = tmp_path / name
    path.write_bytes(data)
    return fastbp.load(path)


def _expect_rejected(tmp_path, data, why):
    with pytest.raises(ValueError, match="bad.npz is not a valid fastbp model file: "
                       + why):
        _load_bytes(tmp_path, data)


def test_valid_file_loads(saved, tmp_path):
    data, model = saved
    loaded = _load_bytes(tmp_path, data)
    assert_same_state(model_state(loaded), model_state(model))


def _set(path, value):
    def change(header):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _delete(path):
    def change(header):
        node = header
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


HEADER_TAMPERING = [
    (_set(["version"], 4), "format version 4; this fastbp reads versions 1, 2, 3"),
    # version 3 holds models made of parts (tests/test_tabular_files.py), not an MLP alone
    (_set(["version"], 3), "unknown estimator 'MLPClassifier' for format version 3"),
    (_set(["version"], "1"), "format version '1'"),
    (_set(["version"], True), "format version True"),
    (_set(["format"], "other-model"), "it is not a fastbp model"),
    (_set(["estimator"], "os.system"), "unknown estimator 'os.system'"),
    (_set(["dtype"], "float16"), "unsupported dtype 'float16'"),
    (_set(["dtype"], "float32"), "entry 'params' has dtype float64"),
    (_set(["sizes"], [4, 6, 1]), "the layer sizes do not match hidden_layer_sizes"),
    (_set(["sizes"], [4, 5, 2]), "entry 'params' has shape"),
    (_set(["sizes"], [4, -5, 1]), "the layer sizes are malformed"),
    (_set(["sizes"], [4, 5.0, 1]), "the layer sizes are malformed"),
    (_set(["sizes"], "4,5,1"), "the layer sizes are malformed"),
    (_set(["params", "hidden_layer_sizes"], [10**9]), "the layer sizes do not match"),
    (_set(["params", "activation"], "__import__('os')"), "invalid parameters"),
    (_set(["params", "alpha"], -1), "invalid parameters"),
    (_set(["params", "evil"], 1), "the estimator parameters are missing or unknown"),
    (_delete(["params", "alpha"]), "the estimator parameters are missing or unknown"),
    (_set(["hidden_activation"], "tanh"), "the hidden activation does not match"),
    (_set(["output_activation"], "identity"), "output activation 'identity'"),
    (_set(["attrs", "n_features_in_"], 5), "the fitted attribute n_features_in_ = 5 is invalid"),
    (_set(["attrs", "n_iter_"], -1), "the fitted attribute n_iter_ = -1 is invalid"),
    (_set(["attrs", "loss_"], {"float": "nan"}), "the fitted attribute loss_ = nan is invalid"),
    (_set(["attrs", "loss_"], "0.3"), "the fitted attribute loss_ = '0.3' is invalid"),
    (_delete(["attrs", "t_"]), "the fitted attribute t_ is missing"),
    (_set(["attrs", "coefs_"], 1), "unknown fitted attributes"),
    (_set(["lists", "loss_curve_"], [0.5, "x"]), "the fitted attribute loss_curve_ is invalid"),
    (_set(["feature_names_in_"], ["a", "b"]), "the feature names are invalid"),
    (_set(["y_type"], "continuous"), "unknown target type 'continuous'"),
    (_set(["y_type"], "binary"), "the target type does not match the network"),
    (_set(["optimizer", "solver"], "lbfgs"), "the optimizer state is invalid"),
    (_set(["optimizer", "t"], -3), "the optimizer state is invalid"),
    (_set(["optimizer", "learning_rate"], {"float": "inf"}), "the optimizer state is invalid"),
    (_delete(["optimizer", "beta_1"]), "the optimizer state is malformed"),
    (_set(["rngs", "_random_state", "pos"], 10**6), "the random state is invalid"),
    (_set(["rngs", "other"], {}), "the random state is malformed"),
    (_set(["params", "class_weight"], {"dict": [["cat", -1.0]]}), "invalid parameters"),
    (_set(["params", "class_weight"], {"dict": [[["cat"], 1.0]]}), "a stored mapping is "
                                                                   "malformed"),
    (_set(["params", "class_weight"], {"dict": "cat"}), "a stored mapping is malformed"),
    (_set(["lists", "validation_loss_curve_"], ["x"]),
     "the fitted attribute validation_loss_curve_ is invalid"),
]


@pytest.mark.parametrize("change, why", HEADER_TAMPERING,
                         ids=[w[:40] for _, w in HEADER_TAMPERING])
def test_tampered_header(saved, tmp_path, change, why):
    _expect_rejected(tmp_path, _with_header(saved[0], change), why)


def test_header_that_is_not_a_json_object(saved, tmp_path):
    data = saved[0]
    for raw, why in [(b"\xff\xfe", "the header is not valid JSON"),
                     (b"{'format': 1}", "the header is not valid JSON"),
                     (b"[1, 2]", "it is not a fastbp model"),
                     (b"[" * 100_000 + b"]" * 100_000, "the header is not valid JSON")]:
        header = np.frombuffer(raw, dtype=np.uint8)
        _expect_rejected(tmp_path, _with_entry(data, "header", header), why)
    _expect_rejected(tmp_path, _with_entry(data, "header", np.zeros((2, 2), np.uint8)),
                     "entry 'header' has shape")
    _expect_rejected(tmp_path, _with_entry(data, "header", np.zeros(4)),
                     "entry 'header' has dtype float64")


def test_tampered_arrays(saved, tmp_path):
    data, model = saved
    params = _entries(data)["params"]
    nan_params = params.copy()
    nan_params[3] = np.nan
    cases = [
        ("params", params.astype(np.float32), "entry 'params' has dtype float32"),
        ("params", params[:-1], "entry 'params' has shape"),
        ("params", params.reshape(1, -1), "entry 'params' has shape"),
        ("params", params.astype(np.int64), "entry 'params' has dtype int64"),
        ("params", nan_params, "the parameters contain NaN or infinity"),
        ("params", None, "the entry 'params' is missing"),
        ("header", None, "the entry 'header' is missing"),
        ("best_params", nan_params, "best_params contain NaN or infinity"),
        ("opt_state1", nan_params, "the optimizer state contains NaN or infinity"),
        ("opt_state2", params[:4], "entry 'opt_state2' has shape"),
        ("classes", np.array(["emu", "dog", "cat"]), "the class labels are not sorted and "
                                                     "unique"),
        ("classes", np.array(["cat", "dog"]), "entry 'classes' has shape"),
        ("classes", np.array([0.0, np.nan, 1.0]), "the class labels contain NaN"),
        ("classes", np.array([b"a", b"b", b"c"]), "entry 'classes' has dtype"),
        ("rng_keys", np.zeros((1, 10), np.uint32), "entry 'rng_keys' has shape"),
        ("evil", np.zeros(3), "unexpected entry 'evil.npy'"),
    ]
    for name, value, why in cases:
        _expect_rejected(tmp_path, _with_entry(data, name, value), why)


def test_object_arrays_are_never_unpickled(saved, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    for name in ("params", "header", "classes", "extra"):
        entries = _entries(saved[0])
        entries[name] = evil
        with pytest.raises(ValueError) as info:
            _load_bytes(tmp_path, _pack(entries))
        assert "holds Python objects" in str(info.value) or "unexpected entry" in str(info.value)
    # a pickle file, and one disguised as a model file
    pickled = pickle.dumps(Payload())
    for name in ("model.pkl", "model.npz"):
        (tmp_path / name).write_bytes(pickled)
        with pytest.raises(ValueError, match="it is not a zip/npz archive"):
            fastbp.load(tmp_path / name)
    # a real pickled model is rejected the same way
    (tmp_path / "real.npz").write_bytes(pickle.dumps(saved[1]))
    with pytest.raises(ValueError, match="it is not a zip/npz archive"):
        fastbp.load(tmp_path / "real.npz")
    assert not marker.exists()


def test_foreign_files(tmp_path):
    np.save(tmp_path / "plain.npy", X)
    with pytest.raises(ValueError, match="plain.npy is not a valid fastbp model file: it is "
                                         "not a zip/npz archive"):
        fastbp.load(tmp_path / "plain.npy")
    with zipfile.ZipFile(tmp_path / "random.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="unexpected entry 'readme.txt'"):
        fastbp.load(tmp_path / "random.zip")
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="unexpected entry 'a.npy'"):
        fastbp.load(tmp_path / "other.npz")
    np.savez(tmp_path / "arrays.npz", header=np.zeros(3, np.uint8), params=np.zeros(3))
    with pytest.raises(ValueError, match="the header is not valid JSON"):
        fastbp.load(tmp_path / "arrays.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not a zip/npz archive"):
        fastbp.load(tmp_path / "empty.npz")
    (tmp_path / "noise.npz").write_bytes(RNG.bytes(5000))
    with pytest.raises(ValueError, match="not a zip/npz archive"):
        fastbp.load(tmp_path / "noise.npz")
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        fastbp.load(tmp_path)


def test_compressed_encrypted_and_duplicate_entries(saved, tmp_path):
    data = saved[0]
    entries = _entries(data)
    buf = io.BytesIO()
    np.savez_compressed(buf, **entries)
    _expect_rejected(tmp_path, buf.getvalue(), r"entry '\w+\.npy' is compressed")

    def rezip(extra):
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info))
            extra(dst)
        return out.getvalue()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        duplicate = rezip(lambda z: z.writestr("params.npy", b"\x93NUMPY"))
    _expect_rejected(tmp_path, duplicate, "entry 'params.npy' appears twice")
    encrypted = bytearray(data)
    # set the "encrypted" flag of every central-directory record
    pos = encrypted.find(b"PK\x01\x02")
    while pos != -1:
        encrypted[pos + 8] |= 0x1
        pos = encrypted.find(b"PK\x01\x02", pos + 4)
    _expect_rejected(tmp_path, bytes(encrypted), r"entry '\w+\.npy' is encrypted")


def _raw_npy_entry(header_dict, payload):
    """A .npy entry whose header is written by hand (any declared shape)."""
    text = repr(header_dict).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


def test_huge_declared_sizes_allocate_nothing(saved, tmp_path):
    data = saved[0]
    entries = _entries(data)
    n = entries["params"].size
    # 1) the JSON header claims a network of 10**12 parameters
    huge = _with_header(data, _set(["sizes"], [10**6, 5, 10**6]))
    # 2) the params entry's own .npy header claims 10**12 elements
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, value in entries.items():
            if name == "params":
                z.writestr("params.npy", _raw_npy_entry(
                    {"descr": "<f8", "fortran_order": False, "shape": (10**12,)},
                    entries["params"].tobytes()))
            else:
                buf = io.BytesIO()
                np.save(buf, value)
                z.writestr(name + ".npy", buf.getvalue())
    declared = out.getvalue()
    # 3) the zip directory claims an entry bigger than the file
    lying = bytearray(data)
    cd = lying.find(b"PK\x01\x02")
    lying[cd + 24:cd + 28] = (2**32 - 1).to_bytes(4, "little")
    tracemalloc.start()
    try:
        for bad, why in [(huge, "entry 'params' has shape \\(43,\\), expected "
                                "\\(11000005,\\)"),
                         (declared, "entry 'params' has shape \\(1000000000000,\\)"),
                         (bytes(lying), "its entries declare more data than the file holds")]:
            tracemalloc.reset_peak()
            _expect_rejected(tmp_path, bad, why)
            assert tracemalloc.get_traced_memory()[1] < 50 * n * 8 + 2**20
    finally:
        tracemalloc.stop()


def test_truncated_files(saved, tmp_path):
    data = saved[0]
    for cut in np.linspace(1, len(data) - 1, 40).astype(int):
        with pytest.raises(ValueError, match="is not a valid fastbp model file"):
            _load_bytes(tmp_path, data[:cut])


def test_bit_flips_are_caught_or_harmless(saved, tmp_path):
    pd = pytest.importorskip("pandas")
    data, model = saved
    rng = np.random.RandomState(1)
    frame = pd.DataFrame(X, columns=list("abcd"))
    expected = model.predict_proba(frame)
    outcomes = {"rejected": 0, "harmless": 0}
    for _ in range(150):
        flipped = bytearray(data)
        pos = rng.randint(len(flipped))
        flipped[pos] ^= 1 << rng.randint(8)
        try:
            loaded = _load_bytes(tmp_path, bytes(flipped))
        except ValueError as exc:
            assert "is not a valid fastbp model file" in str(exc)
            outcomes["rejected"] += 1
            continue
        # a flip that loads hit bytes the format does not use (zip timestamps
        # and the like): the model must be the saved one
        assert_same_state(model_state(loaded), model_state(model))
        np.testing.assert_array_equal(loaded.predict_proba(frame), expected)
        outcomes["harmless"] += 1
    print(outcomes)
    assert outcomes["rejected"] > 100, outcomes


def test_reliability_doc_example_runs(tmp_path, monkeypatch):
    import pathlib
    import re

    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(doc), "exec"), {})
    assert (tmp_path / "model.npz").exists()
