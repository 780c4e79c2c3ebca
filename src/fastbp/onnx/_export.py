"""``to_onnx``: a fitted fastbp estimator as a standalone ``onnx.ModelProto``."""

from ._graph import GraphBuilder, check_opset, require_onnx, tensor_type
from ._mlp import add_mlp, graph_spec
from ._tabular import ML_DOMAIN, ML_OPSET, add_tabular, is_tabular_preset, tabular_spec


def _value_info(onnx, name, dtype, shape):
    return onnx.helper.make_tensor_value_info(name, tensor_type(dtype), shape)


def to_onnx(model, *, target_opset=None, name=None):
    """Export a fitted fastbp estimator to an ONNX model.

    The graph has one input ``X``, a dense matrix of shape ``(n_samples,
    n_features_in_)`` in the model's dtype (``tensor(float)`` for float32
    models, ``tensor(double)`` for float64), and the outputs skl2onnx gives
    scikit-learn's MLPs with ``zipmap=False``:

    * classifiers: ``label`` (shape ``(n_samples,)``: int64 for integer and
      boolean classes, strings for text classes; for multilabel models the
      0/1 indicator matrix, int64 of shape ``(n_samples, n_labels)``) and
      ``probabilities`` (``predict_proba``, shape ``(n_samples, n_classes)``);
    * regressors: ``variable``, the predictions, shape ``(n_samples, n_outputs)``.

    Every activation fastbp trains is supported, in float32 and float64; the
    graph runs on onnxruntime's CPU provider in both.

    A tabular preset (``TabularMLPClassifier``, ``TabularMLPRegressor``) exports
    with its preprocessing and all its members: one input per column of the
    table, ``[n, 1]`` (``tensor(double)`` for numbers, bools, dates and
    durations in days; ``tensor(string)`` for categories, ``""`` missing), or
    one ``tensor(double)`` input ``X`` when it was fitted on a numeric array or
    sparse matrix; the outputs above. A ``fastbp.tabular.TabularPipeline`` (the
    command line's default model) exports the same way, as a one-member preset.
    :func:`tabular_inputs` builds the feed from a table; docs/onnx.md gives the
    rules for building it without fastbp.

    Parameters
    ----------
    model : fastbp estimator
        A fitted ``MLP``, ``MLPClassifier``, ``MLPRegressor``,
        ``TabularMLPClassifier``, ``TabularMLPRegressor`` or ``TabularPipeline``.
    target_opset : int, default=None
        The ONNX opset of the graph (from 13 to the installed onnx's latest);
        None writes opset 17, which onnxruntime 1.12 and later run.
    name : str, default=None
        The graph's name (default: the estimator's class name).

    Returns
    -------
    onnx.ModelProto
        Save it with ``model.SerializeToString()`` or ``onnx.save``.

    Raises
    ------
    ValueError
        A tabular preset with the empty string among a column's categories
        (the graph reads it as missing), or a column named like an output.
    TypeError
        ``model`` is not a fastbp estimator (for scikit-learn pipelines holding
        one, import ``fastbp.onnx`` and use ``skl2onnx.to_onnx``).
    fastbp.NotFittedError
        ``model`` is not fitted.
    ImportError
        onnx is not installed (``pip install "fastbp[onnx]"``).

    Examples
    --------
    >>> import numpy as np, fastbp, fastbp.onnx
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> clf = fastbp.MLPClassifier((8,), solver="lbfgs", random_state=0).fit(X, X[:, 0] > 0)
    >>> onx = fastbp.onnx.to_onnx(clf)
    >>> [o.name for o in onx.graph.output]
    ['label', 'probabilities']
    """
    if is_tabular_preset(model):
        return build_tabular_model(tabular_spec(model), target_opset=target_opset,
                                   name=name)
    return build_model(graph_spec(model), target_opset=target_opset, name=name)


def build_model(spec, *, target_opset=None, name=None):
    """The ``onnx.ModelProto`` of an :class:`~fastbp.onnx._mlp.MLPGraphSpec`."""
    onnx = require_onnx()
    g = GraphBuilder(spec.dtype, check_opset(target_opset))
    g.reserve("X", *spec.output_names)
    add_mlp(g, spec, "X", spec.output_names)
    inputs = [_value_info(onnx, "X", spec.dtype, [None, spec.n_features])]
    return _finish(g, spec, inputs, name)


def build_tabular_model(spec, *, target_opset=None, name=None):
    """The ``onnx.ModelProto`` of a :class:`~fastbp.onnx._tabular.TabularGraphSpec`."""
    onnx = require_onnx()
    g = GraphBuilder(spec.dtype, check_opset(target_opset))
    g.reserve(*(name for name, _, _, _ in spec.inputs), *spec.output_names)
    add_tabular(g, spec, spec.output_names)
    inputs = [_value_info(onnx, name, dtype, shape) for name, dtype, shape, _ in spec.inputs]
    return _finish(g, spec, inputs, name, ml_opset=ML_OPSET)


def _finish(g, spec, inputs, name, ml_opset=None):
    """The checked model of builder ``g``'s nodes, with these inputs and the spec's
    outputs; ``ml_opset``: the ai.onnx.ml opset its nodes need (None: none used)."""
    onnx = g.onnx
    outputs = [_value_info(onnx, *signature) for signature in spec.output_signature()]
    from .. import __version__

    graph = onnx.helper.make_graph(
        g.nodes, name or spec.estimator_name, inputs, outputs, g.initializers,
        doc_string=f"{spec.estimator_name} exported by fastbp {__version__}")
    opset_ids = [onnx.helper.make_opsetid("", g.opset)]
    if ml_opset is not None:
        opset_ids.append(onnx.helper.make_opsetid(ML_DOMAIN, ml_opset))
    proto = onnx.helper.make_model(
        graph, opset_imports=opset_ids, producer_name="fastbp",
        producer_version=__version__,
        ir_version=onnx.helper.find_min_ir_version_for(opset_ids))
    onnx.checker.check_model(proto)
    return proto
