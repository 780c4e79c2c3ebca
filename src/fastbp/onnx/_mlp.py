"""A fitted fastbp network as ONNX nodes.

``graph_spec(model)`` reads what the graph needs from the estimator's public fitted
attributes and parameters (``coefs_``, ``intercepts_``, ``classes_``,
``out_activation_``, ``n_features_in_``, ``activation``, ``loss``) into
an :class:`MLPGraphSpec`; ``add_mlp`` writes the layers and the output head from it. A
model with preprocessing in front (a tabular preset) builds its front with the same
builder and passes the front's dense output to ``add_mlp`` as ``x``.
"""

from dataclasses import dataclass

import numpy as np

from ._activations import ACTIVATIONS
from ._graph import string_values, tensor_type

_EXPORTABLE = ("fastbp.MLP, fastbp.MLPClassifier, fastbp.MLPRegressor and the tabular "
               "presets (TabularMLPClassifier, TabularMLPRegressor)")


@dataclass(frozen=True)
class MLPGraphSpec:
    """What the graph of a fitted network is made of.

    ``task`` is ``"classification"`` (labels from ``labels``, probabilities as
    ``predict_proba``), ``"multilabel"`` (the 0/1 indicator matrix and the
    probability of each label) or ``"regression"``.
    """

    estimator_name: str
    task: str
    dtype: np.dtype
    n_features: int
    coefs: tuple
    intercepts: tuple
    hidden_activation: str
    output_activation: str
    labels: object = None  # classification: the classes as exported (int64 or str)

    @property
    def n_outputs(self):
        return self.coefs[-1].shape[1]

    @property
    def output_names(self):
        return ("variable",) if self.task == "regression" else ("label", "probabilities")

    def output_signature(self):
        """``[(name, numpy dtype, shape), ...]`` of the outputs; None is the batch size."""
        if self.task == "regression":
            return [("variable", self.dtype, [None, self.n_outputs])]
        if self.task == "multilabel":
            label = ("label", np.dtype(np.int64), [None, self.n_outputs])
        else:
            label = ("label", self.labels.dtype, [None])
        n_columns = 2 if self.n_outputs == 1 else self.n_outputs
        return [label, ("probabilities", self.dtype, [None, n_columns])]


def _qualified_name(obj):
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_classifier(model):
    from .. import MLPClassifier, MLPRegressor

    if isinstance(model, MLPClassifier):
        return True
    if isinstance(model, MLPRegressor):
        return False
    return model.loss == "log_loss"  # fastbp.MLP: the loss decides the task


def export_labels(classes):
    """The classes as the label tensor holds them: int64 for integer, boolean and
    integral float classes (as skl2onnx exports scikit-learn's), strings for text."""
    classes = np.asarray(classes)
    values = classes.tolist()
    if classes.dtype.kind in "US" or all(isinstance(v, (str, bytes)) for v in values):
        return np.array(string_values(classes), dtype=object)
    if classes.dtype.kind in "biu":
        if classes.dtype.kind == "u" and classes.max() > np.iinfo(np.int64).max:
            raise ValueError(f"class labels above 2**63 - 1 cannot be exported as int64; "
                             f"got classes_ = {classes!r}.")
        return classes.astype(np.int64)
    try:
        as_float = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        as_float = None
    if (as_float is not None and np.isfinite(as_float).all()
            and (as_float == np.round(as_float)).all()
            and np.abs(as_float).max() < 2.0 ** 63):
        return as_float.astype(np.int64)
    raise ValueError("ONNX labels are exported as int64 or strings: the classes must be "
                     f"integers, booleans, integral floats or strings; got classes_ = "
                     f"{classes!r}.")


def _check_exportable(model):
    from .. import MLP, MLPClassifier, MLPRegressor, NotFittedError

    if not isinstance(model, (MLP, MLPClassifier, MLPRegressor)):
        hint = ""
        if hasattr(model, "steps") or _qualified_name(model).startswith("sklearn."):
            hint = (" For scikit-learn estimators and pipelines (with fastbp steps), "
                    "import fastbp.onnx and use skl2onnx.to_onnx.")
        raise TypeError(f"fastbp.onnx.to_onnx exports {_EXPORTABLE}; got "
                        f"{_qualified_name(model)}.{hint}")
    if not hasattr(model, "coefs_"):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before exporting it to ONNX.")
    for what, name in (("activation", model.activation),
                       ("out_activation_", model.out_activation_)):
        if name not in ACTIVATIONS:
            raise ValueError(f"fastbp.onnx cannot export {what}={name!r}; it knows "
                             f"{sorted(ACTIVATIONS)}.")


def graph_spec(model):
    """The :class:`MLPGraphSpec` of a fitted fastbp estimator (TypeError for other
    objects, ``fastbp.NotFittedError`` before ``fit``)."""
    _check_exportable(model)
    name = type(model).__name__
    output = model.out_activation_
    classifier = _is_classifier(model)
    if classifier != (output in ("logistic", "softmax")):
        raise ValueError(f"{name} was fitted with out_activation_={output!r}, which does "
                         f"not match its loss={getattr(model, 'loss', 'log_loss')!r}; "
                         "fit it again.")
    dtype = np.dtype(model.coefs_[0].dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}'s weights must be float32 or float64; got {dtype}.")
    coefs = tuple(np.ascontiguousarray(c, dtype=dtype) for c in model.coefs_)
    intercepts = tuple(np.ascontiguousarray(b, dtype=dtype) for b in model.intercepts_)
    if not classifier:
        task, labels = "regression", None
    elif output == "logistic" and coefs[-1].shape[1] > 1:
        task, labels = "multilabel", None
    else:
        task, labels = "classification", export_labels(model.classes_)
    return MLPGraphSpec(name, task, dtype, int(model.n_features_in_), coefs, intercepts,
                        model.activation, output, labels)


def add_network(g, spec, x):
    """The layers: ``act(x @ W + b)`` for each; returns the output layer's name."""
    a = x
    last = len(spec.coefs) - 1
    for i, (weights, bias) in enumerate(zip(spec.coefs, spec.intercepts)):
        z = g.op("Add", [g.op("MatMul", [a, g.initializer(weights, f"coefficient_{i}")]),
                         g.initializer(bias, f"intercept_{i}")])
        activation = spec.hidden_activation if i < last else spec.output_activation
        a = ACTIVATIONS[activation](g, z)
    return a


def add_mlp(g, spec, x, outputs):
    """The network on ``x`` (a dense tensor of the model dtype) and its head,
    written to ``outputs`` (``spec.output_names``, or the caller's names for them)."""
    y = add_network(g, spec, x)
    if spec.task == "regression":
        g.op("Identity", [y], output=outputs[0])
        return
    label, probabilities = outputs
    if spec.task == "multilabel":
        g.op("Identity", [y], output=probabilities)
        # predict's rule: a label is on when its probability is above 0.5
        g.op("Cast", [g.op("Greater", [probabilities, g.constant(0.5)])], output=label,
             to=tensor_type(np.int64))
        return
    if spec.n_outputs == 1:
        # [1 - p, p]; argmax then picks class 1 only when p > 0.5 (1 - p is exact
        # for p >= 0.5 and ties go to the first column), as predict does
        g.op("Concat", [g.op("Sub", [g.constant(1.0), y]), y], output=probabilities,
             axis=1)
    else:
        g.op("Identity", [y], output=probabilities)
    index = g.op("ArgMax", [probabilities], axis=1, keepdims=0)
    g.op("Gather", [g.initializer(spec.labels, "classes"), index], output=label, axis=0)
