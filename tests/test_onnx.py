"""fastbp.onnx: exported graphs compute what fastbp computes, in onnxruntime.

Every estimator kind x output kind x hidden activation x dtype is fitted on a real
table and its graph compared with ``predict`` / ``predict_proba`` on that table and on
random inputs: probabilities within 1e-5 (float32) / 1e-10 (float64), labels equal.
The activation table is also checked entry by entry against numpy formulas (the
activations the engine does not have yet included), and scikit-learn pipelines holding
fastbp estimators convert through skl2onnx.
"""

import dataclasses
import functools
import warnings

import numpy as np
import pytest
from scipy.special import erf as scipy_erf
from scipy.special import expit

import fastbp
from conftest import hide_module, quiet_warnings

ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime publishes no wheel for this platform and Python")
import onnx  # noqa: E402  (in the test extra)

import fastbp.onnx  # noqa: E402
from fastbp.onnx._activations import ACTIVATIONS, erf  # noqa: E402
from fastbp.onnx._export import build_model  # noqa: E402
from fastbp.onnx._graph import GraphBuilder  # noqa: E402
from fastbp.onnx._mlp import graph_spec  # noqa: E402

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]
CLASSIFIER_TASKS = ("binary", "multiclass", "multilabel")
REGRESSOR_TASKS = ("regression", "multioutput", "poisson")
ESTIMATOR_TASKS = ([("MLPClassifier", t) for t in CLASSIFIER_TASKS]
                   + [("MLPRegressor", t) for t in REGRESSOR_TASKS]
                   + [("MLP", t) for t in CLASSIFIER_TASKS + REGRESSOR_TASKS])
OUTPUT_ONLY = ("softmax", "exp")


def _engine_accepts(activation):
    model = fastbp.MLP((2,), activation=activation, max_iter=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
            model.fit([[0.0], [1.0]], [0, 1])
    except ValueError:
        return False
    return True


# the hidden activations fastbp trains today, each end to end; the table's other
# entries (ready for the engine's new activations) are checked on their own below
ENGINE_ACTIVATIONS = [a for a in ACTIVATIONS if a not in OUTPUT_ONLY and _engine_accepts(a)]


def test_every_activation_fastbp_trains_is_in_the_table_and_exported():
    assert {"identity", "logistic", "tanh", "relu", "leaky_relu"} <= set(ENGINE_ACTIVATIONS)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def run(model_proto, X):
    session = ort.InferenceSession(model_proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return model.fit(X, y)


def assert_same_predictions(model, X, outputs=None):
    """The graph's outputs on X against the model's: labels equal, probabilities and
    predictions within the dtype's tolerance; output dtypes and shapes as documented."""
    dtype = model.coefs_[0].dtype.type
    tolerance = TOLERANCE[dtype]
    outputs = run(fastbp.onnx.to_onnx(model), X) if outputs is None else outputs
    if "variable" in outputs:
        expected = model.predict(X).reshape(len(X), -1)
        assert outputs["variable"].dtype == dtype
        assert outputs["variable"].shape == expected.shape
        np.testing.assert_allclose(outputs["variable"], expected, rtol=tolerance,
                                   atol=tolerance)
        return
    probabilities, labels = outputs["probabilities"], outputs["label"]
    assert probabilities.dtype == dtype
    assert not np.isnan(probabilities).any()
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=0,
                               atol=tolerance)
    expected = np.asarray(model.predict(X))
    assert labels.shape == expected.shape
    if expected.dtype.kind in "OUS":
        assert labels.dtype == object
        np.testing.assert_array_equal(labels.astype(str), expected.astype(str))
    else:
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, expected.astype(np.int64))


@functools.lru_cache(maxsize=None)
def real_table(task):
    """``(X, y)`` of a real table for the task (X standardised, float64)."""
    from sklearn import datasets

    if task == "binary":
        data = datasets.load_breast_cancer()
        X, y = data.data, data.target
    elif task in ("multiclass", "multilabel"):
        X, y = datasets.load_digits(return_X_y=True)
        if task == "multilabel":  # even, five or more, a closed loop (0, 6, 8, 9)
            y = np.column_stack([y % 2 == 0, y >= 5, np.isin(y, [0, 6, 8, 9])]).astype(int)
    elif task == "multioutput":
        X, y = datasets.load_linnerud(return_X_y=True)
    else:  # regression, poisson: disease progression (counts-like, 25-346)
        X, y = datasets.load_diabetes(return_X_y=True)
        y = y / 100 if task == "regression" else y
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1)
    return X, y


def string_labels(y):
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    return names[y]


def fitted(estimator, task, activation, dtype, label_kind="int"):
    X, y = real_table(task)
    if label_kind == "str" and task in ("binary", "multiclass"):
        y = string_labels(y)
    cls = getattr(fastbp, estimator)
    params = dict(hidden_layer_sizes=(8, 6), activation=activation, max_iter=15,
                  learning_rate_init=0.01, random_state=0)
    if estimator == "MLP":
        params["loss"] = ("log_loss" if task in CLASSIFIER_TASKS
                          else "poisson" if task == "poisson" else "squared_error")
    elif estimator == "MLPRegressor":
        params["loss"] = "poisson" if task == "poisson" else "squared_error"
    return fit(cls(**params), X[:300].astype(dtype), y[:300]), X.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("params", [
    dict(loss="huber", huber_delta=0.5), dict(loss="absolute_error"),
    dict(loss="quantile", quantile=0.8), dict(loss="quantile", quantile=[0.1, 0.5, 0.9]),
], ids=lambda p: "-".join(str(v) for v in p.values()))
def test_robust_and_quantile_regressors_export_as_identity_outputs(params, dtype):
    # the training options change the training only: the graph is the network
    X, y = real_table("regression")
    model = fit(fastbp.MLPRegressor(hidden_layer_sizes=(8, 6), activation="mish",
                                    dropout=0.1, weight_decay=0.01, learning_rate="cosine",
                                    max_iter=15, learning_rate_init=0.01, random_state=0,
                                    **params), X[:300].astype(dtype), y[:300])
    assert model.out_activation_ == "identity"
    outputs = run(fastbp.onnx.to_onnx(model), X.astype(dtype))
    n_quantiles = len(np.atleast_1d(params.get("quantile", 0.5)))
    assert outputs["variable"].shape == (len(X), n_quantiles)
    assert_same_predictions(model, X.astype(dtype), outputs)


def random_inputs(n_features, dtype, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(scale=3.0, size=(64, n_features))
    X[0] = 0.0
    return X.astype(dtype)


# ---------------------------------------------------------------------------
# every estimator kind x output kind x hidden activation x dtype
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("activation", ENGINE_ACTIVATIONS)
@pytest.mark.parametrize("estimator, task", ESTIMATOR_TASKS)
def test_graph_matches_fastbp_on_a_real_table_and_random_inputs(estimator, task,
                                                                activation, dtype):
    # MLP classifies string labels, MLPClassifier integer ones
    label_kind = "str" if estimator == "MLP" else "int"
    model, X_real = fitted(estimator, task, activation, dtype, label_kind)
    expected_output = {"binary": "logistic", "multiclass": "softmax",
                       "multilabel": "logistic", "regression": "identity",
                       "multioutput": "identity", "poisson": "exp"}[task]
    assert model.out_activation_ == expected_output
    session_outputs = run(fastbp.onnx.to_onnx(model), X_real)
    assert_same_predictions(model, X_real, session_outputs)
    assert_same_predictions(model, random_inputs(X_real.shape[1], dtype))


def test_graph_interface_is_skl2onnx_s():
    model, _ = fitted("MLPClassifier", "multiclass", "relu", np.float32)
    onx = fastbp.onnx.to_onnx(model)
    (x,) = onx.graph.input
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = x.type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value") and dims[1].dim_value == 64
    assert [(o.name, o.type.tensor_type.elem_type) for o in onx.graph.output] == [
        ("label", onnx.TensorProto.INT64), ("probabilities", onnx.TensorProto.FLOAT)]
    assert onx.opset_import[0].version == 17 and onx.producer_name == "fastbp"
    regressor, _ = fitted("MLPRegressor", "multioutput", "tanh", np.float64)
    onx = fastbp.onnx.to_onnx(regressor, name="linnerud")
    assert onx.graph.name == "linnerud"
    (variable,) = onx.graph.output
    assert variable.name == "variable"
    assert variable.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert variable.type.tensor_type.shape.dim[1].dim_value == 3


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_labels_are_the_exact_class_values(dtype):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(120, 3)).astype(dtype)
    index = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    for classes in (np.array([-7, 3, 2**40]), np.array([10.0, 20.0, 30.0]),
                    np.array(["négatif", "zéro", "positif"]),
                    np.array(["a", "b", "c"], dtype=object)):
        y = classes[index]
        model = fit(fastbp.MLPClassifier((5,), max_iter=30, random_state=0), X, y)
        outputs = run(fastbp.onnx.to_onnx(model), X)
        assert_same_predictions(model, X, outputs)
        assert set(outputs["label"].tolist()) <= set(classes.tolist())
    boolean = fit(fastbp.MLPClassifier((5,), max_iter=30, random_state=0), X, X[:, 0] > 0)
    outputs = run(fastbp.onnx.to_onnx(boolean), X)
    assert outputs["label"].dtype == np.int64  # as skl2onnx exports boolean classes
    np.testing.assert_array_equal(outputs["label"], boolean.predict(X).astype(np.int64))


def test_label_values_fastbp_cannot_fit_are_refused_with_the_reason():
    # fit refuses continuous labels itself; the exporter still names what it takes
    from fastbp.onnx._mlp import export_labels

    np.testing.assert_array_equal(export_labels(np.array([1.0, 2.0])), [1, 2])
    for classes in (np.array([0.5, 1.5]), np.array([1, "a", None], dtype=object)):
        with pytest.raises(ValueError, match="integral floats or strings; got classes_"):
            export_labels(classes)


# ---------------------------------------------------------------------------
# ties and large logits
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("task", CLASSIFIER_TASKS)
def test_ties_resolve_as_predict_does(task, dtype):
    # a zero output layer: p = 0.5 for one logistic output (predict says class 0,
    # as p > 0.5 is false), equal probabilities for softmax (the first class wins)
    model, X = fitted("MLPClassifier", task, "relu", dtype)
    model.coefs_[-1][:] = 0
    model.intercepts_[-1][:] = 0
    outputs = run(fastbp.onnx.to_onnx(model), X)
    assert_same_predictions(model, X, outputs)
    if task == "multilabel":
        assert not outputs["label"].any()
        assert (outputs["probabilities"] == 0.5).all()
    else:
        assert (outputs["label"] == model.classes_[0]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("task", CLASSIFIER_TASKS)
@pytest.mark.parametrize("activation", ["logistic", "tanh", "leaky_relu"])
def test_large_logits_stay_finite_and_agree(task, activation, dtype):
    model, X = fitted("MLPClassifier", task, activation, dtype)
    for coefs in model.coefs_:
        coefs *= 1e4 / np.abs(coefs).max()  # pre-activations and logits around +-1e4
    n_out = model.intercepts_[-1].shape[0]
    model.intercepts_[-1][:] = np.resize([1e4, -1e4, 1e4], n_out)  # ties at 1e4 too
    outputs = run(fastbp.onnx.to_onnx(model), X)
    assert np.isfinite(outputs["probabilities"]).all()
    assert_same_predictions(model, X, outputs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_poisson_output_with_large_logits(dtype):
    model, X = fitted("MLPRegressor", "poisson", "relu", dtype)
    model.intercepts_[-1][:] = 50.0  # e^50 ~ 5e21
    outputs = run(fastbp.onnx.to_onnx(model), X)
    assert np.isfinite(outputs["variable"]).all() and outputs["variable"].min() > 1e20
    assert_same_predictions(model, X, outputs)


# ---------------------------------------------------------------------------
# the activation table, entry by entry (also the activations the engine lacks)
# ---------------------------------------------------------------------------

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


REFERENCES = {
    "identity": lambda x: x,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "gelu": lambda x: 0.5 * x * (1 + scipy_erf(x / np.sqrt(2))),
    "silu": lambda x: x * expit(x),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
    "softplus": lambda x: np.logaddexp(0, x),
    "softmax": _softmax,
    "exp": np.exp,
}


def activation_graph(build, dtype):
    """A graph ``y = build(g, x)`` on a matrix x of the given dtype."""
    g = GraphBuilder(dtype, 17)
    g.reserve("x", "y")
    g.op("Identity", [build(g, "x")], output="y")
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    graph = onnx.helper.make_graph(
        g.nodes, "activation", [onnx.helper.make_tensor_value_info("x", elem, [None, None])],
        [onnx.helper.make_tensor_value_info("y", elem, [None, None])], g.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                   ir_version=8)
    onnx.checker.check_model(proto)
    return proto


def activation_inputs(dtype):
    extremes = [-1e4, -746.0, -100.0, -40.0, -20.0, -6.0, -1e-3, -1e-8, 0.0, 1e-8, 1e-3,
                6.0, 20.0, 40.0, 80.0, 100.0, 1e4]
    x = np.concatenate([extremes, np.linspace(-10, 10, 199)]).astype(dtype)
    return x.reshape(-1, 6)  # softmax: rows of six mixed values


def test_the_table_has_the_engine_s_planned_activations():
    assert set(REFERENCES) == set(ACTIVATIONS)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_table_entry_computes_its_formula(name, dtype):
    # also what runs onnxruntime's double kernels: a float-only operator fails here
    x = activation_inputs(dtype)
    if name == "exp":
        x = np.minimum(x, 80)  # beyond, float32's exp overflows (to inf, as fastbp's)
    y = run(activation_graph(ACTIVATIONS[name], dtype), x)["y"]
    assert y.dtype == dtype and y.shape == x.shape
    assert np.isfinite(y).all()
    with np.errstate(over="ignore"):
        expected = REFERENCES[name](x.astype(np.float64))
    error = np.abs(y - expected) / np.maximum(1.0, np.abs(expected))
    assert error.max() <= TOLERANCE[dtype], (name, x.ravel()[error.argmax()], error.max())


@pytest.mark.parametrize("dtype, bound", [(np.float32, 5e-7), (np.float64, 2e-15)],
                         ids=["float32", "float64"])
def test_the_composed_erf_is_accurate(dtype, bound):
    x = np.concatenate([np.linspace(-8, 8, 16001), [-1e4, -1e-300, 0.0, 1e-12, 1e4]])
    y = run(activation_graph(erf, dtype), x.astype(dtype).reshape(1, -1))["y"].ravel()
    expected = scipy_erf(x.astype(dtype).astype(np.float64))
    assert np.abs(y - expected).max() <= bound


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - set(OUTPUT_ONLY)))
def test_every_table_activation_runs_as_hidden_layers_of_a_network(activation, dtype):
    # the graph of a 2-hidden-layer network against a numpy forward pass with the
    # reference formula (for activations the engine cannot train yet)
    model, X = fitted("MLPClassifier", "multiclass", "relu", dtype)
    spec = dataclasses.replace(graph_spec(model), hidden_activation=activation)
    outputs = run(build_model(spec), X)
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(spec.coefs, spec.intercepts)):
        z = a @ W.astype(np.float64) + b
        a = REFERENCES[activation](z) if i < len(spec.coefs) - 1 else _softmax(z)
    np.testing.assert_allclose(outputs["probabilities"], a, rtol=0,
                               atol=TOLERANCE[dtype])


# ---------------------------------------------------------------------------
# files, opsets and errors
# ---------------------------------------------------------------------------

def test_a_saved_file_loads_in_a_fresh_session(tmp_path):
    model, X = fitted("MLP", "multiclass", "tanh", np.float32, label_kind="str")
    path = tmp_path / "digits.onnx"
    onnx.save(fastbp.onnx.to_onnx(model), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"X": X})
    assert_same_predictions(model, X, {"label": labels, "probabilities": probabilities})


@pytest.mark.parametrize("opset", [13, 21])
def test_target_opset(opset):
    model, X = fitted("MLPClassifier", "binary", "tanh", np.float64)
    onx = fastbp.onnx.to_onnx(model, target_opset=opset)
    assert onx.opset_import[0].version == opset
    assert onx.ir_version == onnx.helper.find_min_ir_version_for(list(onx.opset_import))
    assert_same_predictions(model, X, run(onx, X))


@pytest.mark.parametrize("opset", [12, 10_000, "17", 17.0, True])
def test_invalid_target_opset(opset):
    model, _ = fitted("MLPClassifier", "binary", "tanh", np.float64)
    with pytest.raises(ValueError, match=r"target_opset must be an integer from 13 to \d+"):
        fastbp.onnx.to_onnx(model, target_opset=opset)


def test_unfitted_model():
    for model in (fastbp.MLPClassifier(), fastbp.MLPRegressor(), fastbp.MLP()):
        with pytest.raises(fastbp.NotFittedError, match="is not fitted yet"):
            fastbp.onnx.to_onnx(model)


def test_objects_fastbp_cannot_export_are_named():
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    X, y = real_table("binary")
    with quiet_warnings():
        sk = MLPClassifier((3,), max_iter=2).fit(X, y)
    with pytest.raises(TypeError, match=r"got sklearn\.neural_network\..*MLPClassifier\. "
                       r"For scikit-learn.*skl2onnx\.to_onnx"):
        fastbp.onnx.to_onnx(sk)
    with pytest.raises(TypeError, match=r"got sklearn\.pipeline\.Pipeline"):
        fastbp.onnx.to_onnx(make_pipeline(fastbp.MLPClassifier()))
    with pytest.raises(TypeError, match=r"exports fastbp\.MLP, .* got builtins\.str"):
        fastbp.onnx.to_onnx("model.fbp")


def test_clear_error_without_onnx(monkeypatch):
    model, _ = fitted("MLPClassifier", "binary", "relu", np.float32)
    hide_module(monkeypatch, "onnx")
    with pytest.raises(ImportError, match=r'pip install "fastbp\[onnx\]"'):
        fastbp.onnx.to_onnx(model)


def test_import_fastbp_does_not_import_onnx():
    import os
    import subprocess
    import sys

    code = ("import sys, fastbp\n"
            "assert 'onnx' in dir(fastbp)\n"
            "assert not [m for m in ('onnx', 'skl2onnx', 'fastbp.onnx') if m in sys.modules]\n"
            "fastbp.onnx.to_onnx\n"
            "assert 'fastbp.onnx' in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# scikit-learn pipelines through skl2onnx
# ---------------------------------------------------------------------------

def _pipeline(estimator, task, dtype, label_kind="int"):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = real_table(task)
    X = (X * 3 + 1).astype(dtype)  # something for the scaler to undo
    if label_kind == "str":
        y = string_labels(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return make_pipeline(StandardScaler(), estimator).fit(X[:300], y[:300]), X


def assert_pipeline_outputs(pipe, X, outputs):
    tolerance = TOLERANCE[pipe[-1].coefs_[0].dtype.type]
    if "variable" in outputs:
        np.testing.assert_allclose(outputs["variable"], pipe.predict(X).reshape(len(X), -1),
                                   rtol=tolerance, atol=tolerance)
        return
    np.testing.assert_allclose(outputs["probabilities"], pipe.predict_proba(X), rtol=0,
                               atol=tolerance)
    expected = pipe.predict(X)
    np.testing.assert_array_equal(outputs["label"].astype(expected.dtype), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("task, label_kind", [("binary", "int"), ("multiclass", "str"),
                                              ("multilabel", "int")])
def test_pipeline_classifier_converts_with_skl2onnx(task, label_kind, dtype):
    import skl2onnx

    clf = fastbp.MLPClassifier((16,), max_iter=20, random_state=0)
    pipe, X = _pipeline(clf, task, dtype, label_kind)
    onx = skl2onnx.to_onnx(pipe, X[:1], options={id(clf): {"zipmap": False}})
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"]
    assert_pipeline_outputs(pipe, X, run(onx, X))


@pytest.mark.parametrize("estimator", [
    fastbp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0),
    fastbp.MLP((16,), loss="poisson", max_iter=20, random_state=0)],
    ids=["MLPRegressor", "MLP-poisson"])
def test_pipeline_regressor_converts_with_skl2onnx(estimator):
    import skl2onnx

    pipe, X = _pipeline(estimator, "multioutput" if estimator.loss != "poisson"
                        else "poisson", np.float64)
    onx = skl2onnx.to_onnx(pipe, X[:1])
    assert [o.name for o in onx.graph.output] == ["variable"]
    assert_pipeline_outputs(pipe, X, run(onx, X))


def test_pipeline_with_convert_sklearn_options_by_class_and_a_cast_input():
    # a float32 model behind a double input: the converter casts X to the model dtype
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    pipe, X = _pipeline(fastbp.MLP((16,), max_iter=20, random_state=0), "multiclass",
                        np.float32, "str")
    onx = convert_sklearn(pipe, initial_types=[("X", DoubleTensorType([None, 64]))],
                          options={fastbp.MLP: {"zipmap": False}})
    outputs = run(onx, X.astype(np.float64))
    assert outputs["probabilities"].dtype == np.float32
    assert_pipeline_outputs(pipe, X, outputs)


def test_pipeline_with_skl2onnx_default_zipmap_and_columns():
    import skl2onnx

    clf = fastbp.MLPClassifier((16,), max_iter=20, random_state=0)
    pipe, X = _pipeline(clf, "multiclass", np.float32, "str")
    outputs = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert list(outputs) == ["output_label", "output_probability"]
    np.testing.assert_array_equal(outputs["output_label"], pipe.predict(X))
    maps = outputs["output_probability"]
    probabilities = np.array([[row[c] for c in clf.classes_] for row in maps])
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), rtol=0, atol=1e-5)
    outputs = run(skl2onnx.to_onnx(pipe, X[:1], options={id(clf): {"zipmap": "columns"}}),
                  X)
    assert list(outputs) == ["output_label"] + [f"s{c}" for c in clf.classes_]
    np.testing.assert_allclose(np.column_stack(list(outputs.values())[1:]),
                               pipe.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("task, dtype, reason", [
    ("multilabel", np.float32, "a multilabel model"),
    ("binary", np.float64, "float64 probabilities")])
def test_zipmap_where_it_cannot_apply_says_what_to_pass(task, dtype, reason):
    import skl2onnx

    pipe, X = _pipeline(fastbp.MLPClassifier((4,), max_iter=2), task, dtype)
    with pytest.raises(ValueError, match=rf"does not apply to {reason}.*'zipmap': False"):
        skl2onnx.to_onnx(pipe, X[:1])


def test_docstring_example():
    import doctest

    import fastbp.onnx._export

    result = doctest.testmod(fastbp.onnx._export)
    assert result.attempted >= 4 and result.failed == 0
