"""Writing ONNX nodes: element types, opsets and the builders that name every tensor once.

The network (``_mlp.py``) and the activation table (``_activations.py``) add nodes
through one small interface, ``constant``, ``initializer`` and ``op``, so the same code
writes a standalone model (:class:`GraphBuilder`, used by ``to_onnx``) and a fastbp
operator inside a skl2onnx conversion (``_skl2onnx.ContainerBuilder``).
"""

import numpy as np

# Softmax, ArgMax, Gather and the elementwise ops used here have had their current
# semantics since opset 13; 17 (onnxruntime >= 1.12) is what to_onnx writes by default.
MIN_OPSET = 13
DEFAULT_OPSET = 17

INSTALL_HINT = 'pip install "fastbp[onnx]"'


def require_onnx():
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401  (used through onnx.numpy_helper)
    except ImportError as error:
        raise ImportError(
            f"Exporting to ONNX needs the onnx package: {INSTALL_HINT}") from error
    return onnx


def tensor_type(dtype):
    """The ONNX element type (``onnx.TensorProto`` enum) of a numpy dtype."""
    from onnx import TensorProto

    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return TensorProto.STRING
    types = {np.dtype(np.float32): TensorProto.FLOAT,
             np.dtype(np.float64): TensorProto.DOUBLE,
             np.dtype(np.int64): TensorProto.INT64,
             np.dtype(np.bool_): TensorProto.BOOL}
    if dtype not in types:
        raise ValueError(f"no ONNX element type for numpy dtype {dtype}")
    return types[dtype]


def check_opset(target_opset):
    """``target_opset`` (None: the default) validated against what onnx knows."""
    onnx = require_onnx()
    latest = onnx.defs.onnx_opset_version()
    if target_opset is None:
        return min(DEFAULT_OPSET, latest)
    if (isinstance(target_opset, bool) or not isinstance(target_opset, (int, np.integer))
            or not MIN_OPSET <= target_opset <= latest):
        raise ValueError(f"target_opset must be an integer from {MIN_OPSET} to {latest} "
                         f"(the installed onnx's latest); got {target_opset!r}.")
    return int(target_opset)


def string_values(array):
    """An array of labels as ONNX strings (UTF-8 bytes), flattened."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.ravel(array)]


class _Builder:
    """What both builders share: scalar constants (of the model dtype unless
    asked otherwise), made once."""

    def __init__(self, dtype, opset):
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self._constants = {}

    def constant(self, value, dtype=None):
        """The name of a scalar initializer holding ``value`` in ``dtype`` (default:
        the model dtype)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        key = (float(value), dtype.str)
        if key not in self._constants:
            self._constants[key] = self.initializer(np.array(value, dtype=dtype), "c")
        return self._constants[key]

    def initializer(self, array, hint):
        raise NotImplementedError

    def op(self, op_type, inputs, *, output=None, **attributes):
        raise NotImplementedError


class GraphBuilder(_Builder):
    """Collects the nodes and initializers of a standalone graph.

    ``op`` adds one node and returns the name of its output (a fresh name, or
    ``output`` when the node writes a graph output).
    """

    def __init__(self, dtype, opset):
        super().__init__(dtype, opset)
        self.onnx = require_onnx()
        self.nodes = []
        self.initializers = []
        self._names = set()

    def reserve(self, *names):
        """Keep ``names`` (the graph's inputs and outputs) from being generated."""
        self._names.update(names)

    def unique(self, hint):
        name, k = hint, 0
        while name in self._names:
            k += 1
            name = f"{hint}_{k}"
        self._names.add(name)
        return name

    def initializer(self, array, hint):
        array = np.asarray(array)
        name = self.unique(hint)
        if array.dtype.kind in "OUS":
            array = np.array(string_values(array), dtype=object).reshape(array.shape)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, inputs, *, output=None, **attributes):
        output = output if output is not None else self.unique(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(
            op_type, list(inputs), [output], name=self.unique(f"{op_type}_node"),
            **attributes))
        return output
