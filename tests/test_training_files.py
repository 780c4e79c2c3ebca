"""Every training option saves and loads (model-file format 2, and pickle), and
training continues from a loaded model exactly as from the original; a file
written in format 2 (tests/fixtures/format_2/, made by its make.py) keeps
loading and predicting as it did."""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import quiet_warnings

import fastbp
from _model_state import assert_same_state, model_state

FORMAT_2 = Path(__file__).parent / "fixtures" / "format_2"


def _fit(model, X, y, **kwargs):
    with quiet_warnings():
        return model.fit(X, y, **kwargs)


def _models():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 5))
    y_class = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(150, 3)), axis=1)
    y_reg = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=150)
    every = dict(dropout=[0.2, 0.1], weight_decay=0.01, warmup=0.1, max_grad_norm=2.0,
                 learning_rate="cosine", max_iter=4, random_state=0)
    yield "classifier", fastbp.MLPClassifier((8, 6), activation="gelu", label_smoothing=0.1,
                                             early_stopping=True, scoring="loss",
                                             **every), X, y_class
    yield "quantiles", fastbp.MLPRegressor(hidden_layer_sizes=(8, 6), activation="mish",
                                           loss="quantile", quantile=[0.1, 0.5, 0.9],
                                           solver="sgd", **every), X, y_reg
    yield "huber", fastbp.MLP((8, 6), activation="selu", loss="huber", huber_delta=0.3,
                              **dict(every, learning_rate="flat_cosine")), X, y_reg
    yield "absolute", fastbp.MLPRegressor(hidden_layer_sizes=(8, 6), activation="softplus",
                                          loss="absolute_error", **every), X, y_reg


MODELS = list(_models())


@pytest.mark.parametrize("name, model, X, y", MODELS, ids=[m[0] for m in MODELS])
def test_every_option_saves_loads_and_trains_on(name, model, X, y, tmp_path):
    _fit(model, X[:100], y[:100], X_val=X[100:], y_val=y[100:])
    path = tmp_path / "model.fbp"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        header = json.loads(np.lib.format.read_array(z.open("header.npy")).tobytes())
    assert header["version"] == 2
    loaded = fastbp.load(path)
    unpickled = pickle.loads(pickle.dumps(model))
    for other in (loaded, unpickled):
        assert other.get_params() == model.get_params()
        assert_same_state(model_state(other), model_state(model))
        np.testing.assert_array_equal(other.predict(X), model.predict(X))
    assert loaded._optimizer.total_steps == model._optimizer.total_steps > 0
    # training continues exactly: partial_fit (the same optimizer, its schedule
    # and step count) and a warm-started fit
    for continued in (loaded, unpickled):
        original = pickle.loads(pickle.dumps(model))
        with quiet_warnings():
            if not model.early_stopping:
                continued.partial_fit(X[:100], y[:100])
                original.partial_fit(X[:100], y[:100])
            continued.set_params(warm_start=True, max_iter=2)
            original.set_params(warm_start=True, max_iter=2)
            continued.fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
            original.fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
        assert_same_state(model_state(continued), model_state(original))


def test_files_of_format_1_take_the_options_defaults(tmp_path):
    # a model saved as fastbp 0.1.0 saved it: no training options in its header
    model = _fit(fastbp.MLPClassifier((5,), max_iter=3, random_state=0),
                 *MODELS[0][2:])
    path = tmp_path / "old.fbp"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        entries = {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()}
    header = json.loads(entries["header"].tobytes())
    header["version"] = 1
    for name in ("dropout", "weight_decay", "warmup", "max_grad_norm", "label_smoothing",
                 "scoring"):
        del header["params"][name]
    for name in ("weight_decay", "max_grad_norm", "warmup", "total_steps"):
        del header["optimizer"][name]
    entries["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path.with_suffix(".npz"), **entries)
    loaded = fastbp.load(path.with_suffix(".npz"))
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(MODELS[0][2]), model.predict(MODELS[0][2]))
    assert loaded._optimizer.weight_decay == 0.0 and loaded._optimizer.total_steps == 0
    # a version-1 header with the new parameters is not a file fastbp ever wrote
    header["params"]["dropout"] = 0.0
    entries["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path.with_suffix(".npz"), **entries)
    with pytest.raises(ValueError, match="the estimator parameters are missing or unknown"):
        fastbp.load(path.with_suffix(".npz"))


@pytest.mark.parametrize("field, value", [("weight_decay", -1.0), ("warmup", 1.0),
                                          ("max_grad_norm", -0.5), ("total_steps", -3),
                                          ("lr_schedule", "linear")])
def test_invalid_optimizer_options_in_a_file_are_refused(field, value, tmp_path):
    model = _fit(fastbp.MLPClassifier((5,), max_iter=2, random_state=0), *MODELS[0][2:])
    path = tmp_path / "model.fbp"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        entries = {n[:-4]: np.lib.format.read_array(z.open(n)) for n in z.namelist()}
    header = json.loads(entries["header"].tobytes())
    header["optimizer"][field] = value
    entries["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path.with_suffix(".npz"), **entries)
    with pytest.raises(ValueError, match="the optimizer state is invalid"):
        fastbp.load(path.with_suffix(".npz"))


def _fixture_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_format_2", FORMAT_2 / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make


def test_a_format_2_file_predicts_as_it_did():
    make = _fixture_models()
    with np.load(FORMAT_2 / "expected.npz", allow_pickle=False) as f:
        expected = {k: f[k] for k in f.files}
    for name in make.NAMES:
        model = fastbp.load(FORMAT_2 / f"{name}.fbp")
        X = expected[f"{name}/X"]
        pred = model.predict(X)
        want = expected[f"{name}/predict"]
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(pred, want)
        else:  # bit for bit here; rounding where another BLAS computes
            np.testing.assert_allclose(pred, want, rtol=0,
                                       atol=1e-12 * max(1.0, float(np.abs(want).max())))
        assert model.get_params() == make.params(name)
