"""skl2onnx converters for fastbp's estimators, so that scikit-learn pipelines holding
one convert with ``skl2onnx.to_onnx`` / ``convert_sklearn``.

``register()`` gives each estimator class a parser (declares ``label`` and
``probabilities`` for classifiers, ``variable`` for regressors, then applies skl2onnx's
``zipmap`` option), a shape calculator and a converter that writes the same nodes as
``fastbp.onnx.to_onnx`` through skl2onnx's scope and container.
"""

import numpy as np

from ._graph import MIN_OPSET, _Builder, string_values, tensor_type
from ._mlp import add_mlp, graph_spec

_ALIASES = {"MLP": "FastbpMLP", "MLPClassifier": "FastbpMLPClassifier",
            "MLPRegressor": "FastbpMLPRegressor"}


class ContainerBuilder(_Builder):
    """The builder interface of ``_graph.py`` over a skl2onnx scope and container."""

    def __init__(self, scope, container, dtype):
        super().__init__(dtype, container.target_opset)
        self.scope = scope
        self.container = container

    def initializer(self, array, hint):
        from onnx import TensorProto, numpy_helper

        array = np.asarray(array)
        name = self.scope.get_unique_variable_name(hint)
        if array.dtype.kind in "OUS":
            content = [s.encode("utf-8") for s in string_values(array)]
            self.container.add_initializer(name, TensorProto.STRING, list(array.shape),
                                           content)
        else:
            self.container.add_initializer(name, tensor_type(array.dtype),
                                           list(array.shape),
                                           numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, inputs, *, output=None, **attributes):
        output = output if output is not None else self.scope.get_unique_variable_name(
            op_type.lower())
        self.container.add_node(op_type, list(inputs), [output],
                                name=self.scope.get_unique_operator_name(op_type),
                                **attributes)
        return output


def _variable_type(dtype, shape):
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            Int64TensorType, StringTensorType)

    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return StringTensorType(shape)
    types = {np.dtype(np.float32): FloatTensorType, np.dtype(np.float64): DoubleTensorType,
             np.dtype(np.int64): Int64TensorType}
    return types[dtype](shape)


def _zipmap_error(spec, reason):
    return ValueError(
        f"skl2onnx's zipmap option (on by default) does not apply to {reason}: convert "
        f"with options={{id(model): {{'zipmap': False}}}} for this {spec.estimator_name} "
        "to get the 'label' and 'probabilities' tensors.")


def parse(scope, model, inputs, custom_parsers=None):
    """skl2onnx parser: the outputs of a fastbp operator."""
    spec = graph_spec(model)
    operator = scope.declare_local_operator(_ALIASES[type(model).__name__], model)
    operator.inputs = inputs
    for name, dtype, shape in spec.output_signature():
        operator.outputs.append(scope.declare_local_variable(
            name, _variable_type(dtype, shape)))
    if spec.task == "regression":
        return list(operator.outputs)
    zipmap = scope.get_options(model, dict(zipmap=True))["zipmap"]
    if zipmap is False:
        return list(operator.outputs)
    if spec.task == "multilabel":
        raise _zipmap_error(spec, "a multilabel model")
    if spec.dtype != np.float32:
        raise _zipmap_error(spec, "float64 probabilities (ONNX ZipMap takes float only)")
    try:  # the helper skl2onnx's own classifier parser uses (private to skl2onnx)
        from skl2onnx._parse import _apply_zipmap
    except ImportError:
        raise _zipmap_error(spec, "fastbp models with this skl2onnx version") from None
    return _apply_zipmap(zipmap, scope, model, operator.outputs[1].type,
                         list(operator.outputs))


def calculate_output_shapes(operator):
    """skl2onnx shape calculator: the output types, with the batch dimension of X."""
    spec = graph_spec(operator.raw_operator)
    if len(operator.inputs) != 1:
        raise RuntimeError(f"a fastbp {spec.estimator_name} takes one input; got "
                           f"{len(operator.inputs)}.")
    x = operator.inputs[0]
    shape = getattr(x.type, "shape", None)
    if shape is not None and len(shape) == 2 and isinstance(shape[1], (int, np.integer)) \
            and shape[1] != spec.n_features:
        raise RuntimeError(f"{spec.estimator_name} expects {spec.n_features} features; "
                           f"its input {x.onnx_name!r} has shape {shape}.")
    n_rows = x.get_first_dimension()
    for variable, (name, dtype, shape) in zip(operator.outputs, spec.output_signature()):
        variable.type = _variable_type(dtype, [n_rows] + shape[1:])


def convert(scope, operator, container):
    """skl2onnx converter: the network's nodes, on X cast to the model dtype."""
    spec = graph_spec(operator.raw_operator)
    if container.target_opset is not None and container.target_opset < MIN_OPSET:
        raise RuntimeError(f"fastbp's ONNX graphs need opset {MIN_OPSET} or later; this "
                           f"conversion targets opset {container.target_opset}.")
    from skl2onnx.common.data_types import guess_proto_type

    g = ContainerBuilder(scope, container, spec.dtype)
    x = operator.inputs[0].full_name
    if guess_proto_type(operator.inputs[0].type) != tensor_type(spec.dtype):
        x = g.op("Cast", [x], to=tensor_type(spec.dtype))
    add_mlp(g, spec, x, [variable.full_name for variable in operator.outputs])


def register():
    """Register fastbp's estimators with skl2onnx (idempotent)."""
    from skl2onnx import update_registered_converter

    from .. import MLP, MLPClassifier, MLPRegressor

    for cls in (MLP, MLPClassifier, MLPRegressor):
        update_registered_converter(
            cls, _ALIASES[cls.__name__], calculate_output_shapes, convert,
            parser=parse,
            # skl2onnx's zipmap helper reads 'nocl'; fastbp's labels are always the classes
            options={"zipmap": [True, False, "columns"], "nocl": [False]})
