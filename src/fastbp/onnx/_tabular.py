"""The tabular presets as ONNX graphs: the table's columns in, the members' average out.

``tabular_spec(model)`` reads a fitted ``TabularMLPClassifier`` / ``TabularMLPRegressor``
(its ``preprocessor_``'s fitted attributes, its members' weights, ``classes_`` or the
target's standardisation) into a :class:`TabularGraphSpec`; ``add_tabular`` writes:

1. the preprocessing (``TabularPreprocessor.transform``, in float64 as fastbp computes
   it, then cast to the model dtype): robust scaling and smooth clipping of the numbers,
   missing-value indicators, bools as +1 / -1, two-valued categories as +1 / -1 and the
   one-hot block with its "missing" and "other" slots (``ai.onnx.ml`` LabelEncoder maps
   each text to its slot; texts unseen at fit take the "other" slot or none);
   then the preset's periodic features of the numbers (``member_inputs``: ``cos(2 pi w x
   + b)`` with its fixed frequencies and phases, in float64);
2. every member's network on those features (``_mlp.add_network``);
3. the average: classifiers sum the members' probabilities into the preset's classes and
   divide by the row sums, as ``predict_proba`` does; regressors average the members'
   outputs and undo the target's standardisation.

The inputs (see docs/onnx.md): a preset fitted on a table with named columns, or with
categorical columns, takes one input per column, ``[n, 1]``: ``tensor(double)`` for
numbers, bools (1 / 0, NaN missing), dates (days since 1970-01-01 UTC) and durations
(days); ``tensor(string)`` for categories (``str(value)``, the empty string missing), as
skl2onnx takes DataFrames. A preset fitted on a numeric array or sparse matrix takes one
input ``X``, ``tensor(double)`` of shape ``[n, n_features_in_]``. Columns entirely
missing at fit give no feature and no input.
"""

from dataclasses import dataclass

import numpy as np

from ._graph import tensor_type
from ._mlp import add_network, export_labels, graph_spec

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 2          # LabelEncoder with keys_strings / values_int64s / default_int64
MISSING_TEXT = ""     # a missing category, as the graph reads it
CLIP_GUARD = 1e100    # |z| clamped here first: (z / 3)^2 cannot overflow; the clip is 3
_NUMBER_KINDS = ("numeric", "datetime", "timedelta", "bool")


@dataclass(frozen=True)
class TabularGraphSpec:
    """What the graph of a fitted tabular preset is made of.

    ``inputs`` is ``[(name, numpy dtype, shape, columns), ...]``: the input's name, its
    element type (float64 or object for strings), shape and the positions of the
    preset's input columns it holds. ``members`` are the members' ``MLPGraphSpec``;
    ``member_classes`` their ``classes_`` (codes into ``labels``).
    """

    estimator_name: str
    task: str                # "classification" or "regression"
    dtype: np.dtype
    preprocessor: object
    inputs: tuple
    members: tuple
    member_classes: tuple = ()
    labels: object = None
    target_mean: object = None
    target_scale: object = None
    periodic: object = None  # (frequencies, phases) of the periodic features, or None

    @property
    def output_names(self):
        return output_names(self.task)

    def output_signature(self):
        if self.task == "regression":
            return [("variable", self.dtype, [None, len(self.target_mean)])]
        return [("label", self.labels.dtype, [None]),
                ("probabilities", self.dtype, [None, len(self.labels)])]


def output_names(task):
    """The graph's outputs: the MLPs' names (``to_onnx``)."""
    return ("variable",) if task == "regression" else ("label", "probabilities")


def is_tabular_preset(model):
    """Whether ``model`` is a tabular preset or a ``TabularPipeline`` (the
    preprocessing in front of one MLP: the graph of a one-member preset)."""
    from ..tabular import TabularMLPClassifier, TabularMLPRegressor, TabularPipeline

    return isinstance(model, (TabularMLPClassifier, TabularMLPRegressor, TabularPipeline))


def _column_names(pre):
    if hasattr(pre, "feature_names_in_"):
        return [str(name) for name in pre.feature_names_in_]
    return [f"x{j}" for j in range(pre.n_features_in_)]


def _graph_inputs(pre, name, output_names):
    """The graph's inputs (see TabularGraphSpec), checked against the outputs' names."""
    kinds = list(pre.column_kinds_)
    if not hasattr(pre, "feature_names_in_") and all(
            kind in _NUMBER_KINDS + ("empty",) for kind in kinds):
        return (("X", np.dtype(np.float64), [None, len(kinds)], tuple(range(len(kinds)))),)
    names = _column_names(pre)
    clashes = sorted(set(names) & set(output_names))
    if clashes:
        raise ValueError(f"{name} has input column(s) named {clashes}, which are the names "
                         f"of the graph's outputs {list(output_names)}; rename the column(s) "
                         "and fit again to export it.")
    return tuple((names[j], np.dtype(np.float64 if kind != "categorical" else object),
                  [None, 1], (j,)) for j, kind in enumerate(kinds) if kind != "empty")


def _check_categories(pre, name):
    names = _column_names(pre)
    for j, levels in zip(pre.categorical_columns_, pre.categories_):
        if MISSING_TEXT in set(levels.tolist()):
            raise ValueError(
                f"{name} cannot be exported to ONNX: categorical column {names[j]!r} has "
                "the empty string as a category, and the graph reads an empty string as "
                "a missing value. Replace empty strings (with a missing value or a text) "
                "and fit again.")


def tabular_spec(model):
    """The :class:`TabularGraphSpec` of a fitted tabular preset."""
    from .. import NotFittedError

    name = type(model).__name__
    if not hasattr(model, "preprocessor_"):
        raise NotFittedError(
            f"This {name} instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before exporting it to ONNX.")
    pre = model.preprocessor_
    _check_categories(pre, name)
    from ..tabular import TabularMLPClassifier, TabularPipeline

    if isinstance(model, TabularPipeline):
        return _pipeline_spec(model, name, pre)
    members = tuple(graph_spec(member) for member in model.estimators_)
    dtype = members[0].dtype
    if isinstance(model, TabularMLPClassifier):
        labels = export_labels(model.classes_)
        common = dict(task="classification", labels=labels,
                      member_classes=tuple(np.asarray(m.classes_, dtype=np.intp)
                                           for m in model.estimators_))
    else:
        common = dict(task="regression",
                      target_mean=np.asarray(model.target_mean_, dtype=np.float64),
                      target_scale=np.asarray(model.target_scale_, dtype=np.float64))
    return TabularGraphSpec(name, dtype=dtype, preprocessor=pre, members=members,
                            inputs=_graph_inputs(pre, name, output_names(common["task"])),
                            periodic=_periodic_table(model, pre), **common)


def _periodic_table(model, pre):
    """The preset's periodic features (``member_inputs``): its fixed
    frequencies and phases, or None when it has none."""
    from ..tabular._periodic import periodic_numbers, periodic_table

    n_numeric = periodic_numbers(pre, model.periodic_features)
    if n_numeric == 0:
        return None
    return periodic_table(n_numeric, model.periodic_features, model.periodic_scale)


def _pipeline_spec(model, name, pre):
    """A ``TabularPipeline``: its MLP as the one member; a regressor's target
    mapped back when the pipeline standardised it (else scale 1, centre 0)."""
    member = graph_spec(model.mlp_)
    inputs = dict(inputs=_graph_inputs(pre, name, output_names(
        "regression" if member.task == "regression" else "classification")))
    if member.task == "multilabel":
        raise ValueError(f"{name} with a multilabel {type(model.mlp_).__name__} cannot be "
                         "exported to ONNX yet (single-label classifiers and regressors can).")
    if member.task == "classification":
        n_classes = len(member.labels)
        return TabularGraphSpec(name, task="classification", dtype=member.dtype,
                                preprocessor=pre, members=(member,),
                                member_classes=(np.arange(n_classes, dtype=np.intp),),
                                labels=member.labels, **inputs)
    n_outputs = member.n_outputs
    mean = model.__dict__.get("target_mean_", np.zeros(n_outputs))
    scale = model.__dict__.get("target_scale_", np.ones(n_outputs))
    return TabularGraphSpec(name, task="regression", dtype=member.dtype, preprocessor=pre,
                            members=(member,),
                            target_mean=np.asarray(mean, dtype=np.float64).reshape(n_outputs),
                            target_scale=np.asarray(scale, dtype=np.float64).reshape(n_outputs),
                            **inputs)


# ---------------------------------------------------------------------------
# the preprocessing
# ---------------------------------------------------------------------------

class _Columns:
    """The graph's input columns by position: ``take(positions)`` is an ``[n, k]``
    tensor of those columns (a Gather from ``X``, or a Concat of column inputs)."""

    def __init__(self, g, inputs):
        self.g = g
        self.where = {}
        for name, _, _, columns in inputs:
            for offset, j in enumerate(columns):
                self.where[j] = (name, offset, len(columns))

    def take(self, positions):
        g = self.g
        places = [self.where[int(j)] for j in positions]
        if places[0][2] > 1:  # the input X holds every column: one Gather
            offsets = np.array([offset for _, offset, _ in places], dtype=np.int64)
            return g.op("Gather", [places[0][0], g.initializer(offsets, "columns")], axis=1)
        names = [name for name, _, _ in places]
        return names[0] if len(names) == 1 else g.op("Concat", names, axis=1)


def _numbers(g, columns, pre, float64):
    """Scaled, clipped numbers (missing -> 0) and the missing indicators, in float64."""
    if not len(pre.numeric_columns_):
        return []
    x = columns.take(pre.numeric_columns_)
    centre = g.initializer(np.asarray(pre.centre_, dtype=np.float64), "centre")
    scale = g.initializer(np.asarray(pre.scale_, dtype=np.float64), "scale")
    z = g.op("Mul", [g.op("Sub", [x, centre]), scale])
    # NaN: missing, or inf * a constant column's 0 scale; both give 0
    nan = g.op("IsNaN", [z])
    guarded = g.op("Min", [g.op("Max", [z, g.constant(-CLIP_GUARD, float64)]),
                           g.constant(CLIP_GUARD, float64)])
    ratio = g.op("Div", [guarded, g.constant(3.0, float64)])
    norm = g.op("Sqrt", [g.op("Add", [g.constant(1.0, float64),
                                      g.op("Mul", [ratio, ratio])])])
    clipped = g.op("Where", [nan, g.constant(0.0, float64),
                             g.op("Div", [guarded, norm])])
    blocks = [clipped]
    if len(pre.indicator_columns_):
        within = np.searchsorted(pre.numeric_columns_, pre.indicator_columns_)
        picked = g.op("Gather", [x, g.initializer(within.astype(np.int64), "indicator")],
                      axis=1)
        blocks.append(g.op("Cast", [g.op("IsNaN", [picked])], to=tensor_type(float64)))
    return blocks


def _bools(g, columns, pre, float64):
    """+1 / -1 for 1 / 0, missing -> 0."""
    if not len(pre.bool_columns_):
        return []
    b = columns.take(pre.bool_columns_)
    signs = g.op("Sub", [g.op("Mul", [b, g.constant(2.0, float64)]),
                         g.constant(1.0, float64)])
    return [g.op("Where", [g.op("IsNaN", [b]), g.constant(0.0, float64), signs])]


def _label_encoder(g, column, keys, values, default):
    return g.op("LabelEncoder", [column], domain=ML_DOMAIN, keys_strings=list(keys),
                values_int64s=[int(v) for v in values], default_int64=int(default))


def _categories(g, columns, pre, float64):
    """The two-valued columns (+1 / -1, else 0), then the one-hot block."""
    binary, onehot = [], []
    for j, levels, encoding, missing, other in zip(
            pre.categorical_columns_, pre.categories_, pre.categorical_encoding_,
            pre.missing_slot_, pre.other_slot_):
        column = columns.take([j])
        levels = [str(level) for level in levels]
        if encoding == "binary":
            signs = [1] if len(levels) == 1 else [-1, 1]
            binary.append(_label_encoder(g, column, levels, signs, 0))
            continue
        n_levels = len(levels)
        width = n_levels + int(missing) + int(other)
        missing_slot = n_levels if missing else -1
        other_slot = n_levels + int(missing) if other else -1
        slot = _label_encoder(g, column, levels + [MISSING_TEXT],
                              list(range(n_levels)) + [missing_slot], other_slot)
        hot = g.op("Equal", [slot, g.initializer(np.arange(width, dtype=np.int64), "slots")])
        onehot.append(g.op("Cast", [hot], to=tensor_type(float64)))
    if binary:
        merged = binary[0] if len(binary) == 1 else g.op("Concat", binary, axis=1)
        binary = [g.op("Cast", [merged], to=tensor_type(float64))]
    return binary + onehot


def add_preprocessing(g, spec):
    """``TabularPreprocessor.transform`` of the inputs: the features, ``[n,
    n_features_out_]`` in the model dtype."""
    float64 = np.dtype(np.float64)
    pre = spec.preprocessor
    columns = _Columns(g, spec.inputs)
    blocks = (_numbers(g, columns, pre, float64) + _bools(g, columns, pre, float64)
              + _categories(g, columns, pre, float64))
    features = blocks[0] if len(blocks) == 1 else g.op("Concat", blocks, axis=1)
    if spec.dtype != float64:
        features = g.op("Cast", [features], to=tensor_type(spec.dtype))
    return features


def add_periodic_features(g, spec, features):
    """``member_inputs``: the features with ``cos(2 pi w x + b)`` of their
    first (numeric) columns appended, computed in float64 as fastbp does."""
    if spec.periodic is None:
        return features
    float64 = np.dtype(np.float64)
    frequencies, phases = spec.periodic
    n_numeric, n_per_column = frequencies.shape
    ints = lambda values, hint: g.initializer(np.array(values, dtype=np.int64), hint)  # noqa: E731
    numbers = g.op("Slice", [features, ints([0], "starts"), ints([n_numeric], "ends"),
                             ints([1], "axes")])
    if spec.dtype != float64:
        numbers = g.op("Cast", [numbers], to=tensor_type(float64))
    numbers = g.op("Unsqueeze", [numbers, ints([2], "axes")])          # [n, k, 1]
    angles = g.op("Mul", [g.op("Mul", [numbers, g.constant(2 * np.pi, float64)]),
                          g.initializer(frequencies, "frequencies")])
    angles = g.op("Add", [angles, g.initializer(phases, "phases")])     # [n, k, m]
    periodic = g.op("Reshape", [g.op("Cos", [angles]),
                                ints([0, n_numeric * n_per_column], "shape")])
    if spec.dtype != float64:
        periodic = g.op("Cast", [periodic], to=tensor_type(spec.dtype))
    return g.op("Concat", [features, periodic], axis=1)


# ---------------------------------------------------------------------------
# the members and their average
# ---------------------------------------------------------------------------

def _member_probabilities(g, member, classes, n_classes, features):
    """A member's ``predict_proba`` spread over the preset's classes."""
    y = add_network(g, member, features)
    if member.n_outputs == 1:
        y = g.op("Concat", [g.op("Sub", [g.constant(1.0), y]), y], axis=1)
    if np.array_equal(classes, np.arange(n_classes)):
        return y
    spread = np.zeros((len(classes), n_classes), dtype=member.dtype)
    spread[np.arange(len(classes)), classes] = 1.0
    return g.op("MatMul", [y, g.initializer(spread, "member_classes")])


def _sum(g, tensors):
    return tensors[0] if len(tensors) == 1 else g.op("Sum", list(tensors))


def add_tabular(g, spec, outputs):
    """The whole preset on its inputs, written to ``outputs`` (``spec.output_names``)."""
    features = add_periodic_features(g, spec, add_preprocessing(g, spec))
    if spec.task == "regression":
        total = _sum(g, [add_network(g, member, features) for member in spec.members])
        mean = g.op("Div", [total, g.constant(len(spec.members))])
        scale = g.initializer(spec.target_scale.astype(spec.dtype), "target_scale")
        centre = g.initializer(spec.target_mean.astype(spec.dtype), "target_mean")
        g.op("Add", [g.op("Mul", [mean, scale]), centre], output=outputs[0])
        return
    label, probabilities = outputs
    n_classes = len(spec.labels)
    total = _sum(g, [_member_probabilities(g, member, classes, n_classes, features)
                     for member, classes in zip(spec.members, spec.member_classes)])
    row_sums = g.op("ReduceSum", [total, g.initializer(np.array([1], dtype=np.int64),
                                                       "axis")], keepdims=1)
    g.op("Div", [total, row_sums], output=probabilities)
    index = g.op("ArgMax", [probabilities], axis=1, keepdims=0)
    g.op("Gather", [g.initializer(spec.labels, "classes"), index], output=label, axis=0)


# ---------------------------------------------------------------------------
# the inputs of a table
# ---------------------------------------------------------------------------

def _input_column(table, kind, p):
    """Table column ``p`` as the graph takes it: float64 numbers / days, or texts
    (``str(value)``, missing -> the empty string)."""
    if kind == "categorical":
        codes, texts = table.codes(p)
        texts = np.asarray(texts, dtype=object)
        return np.where(codes >= 0, texts[np.maximum(codes, 0)] if texts.size else "",
                        MISSING_TEXT).astype(object)
    if kind in ("datetime", "timedelta"):
        return table.days(p)
    return table.numbers(p)


def tabular_inputs(model, X):
    """The inputs of a tabular preset's ONNX graph for the table ``X``.

    ``X`` is read exactly as the preset reads it (numpy, pandas, polars or
    scipy.sparse; columns matched by name when the preset was fitted with
    names): numbers, bools (1 / 0), dates and durations (days) as float64 with
    NaN for missing values; categories as their text, ``""`` for missing.

    Parameters
    ----------
    model : TabularMLPClassifier, TabularMLPRegressor or TabularPipeline
        The fitted preset or pipeline the graph was exported from.
    X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)

    Returns
    -------
    dict
        ``{input name: array of shape (n_samples, 1), or (n_samples,
        n_features_in_) for the input X}``, ready for ``session.run(None, feed)``.

    Examples
    --------
    >>> import numpy as np, fastbp, fastbp.onnx
    >>> X = np.empty((200, 2), dtype=object)
    >>> X[:, 0] = np.random.RandomState(0).normal(size=200)
    >>> X[:, 1] = np.where(X[:, 0] > 0.5, "tall", "short")
    >>> preset = fastbp.TabularMLPRegressor(hidden_layer_sizes=(8,), max_iter=3).fit(X, X[:, 0])
    >>> {name: column.dtype for name, column in fastbp.onnx.tabular_inputs(preset, X).items()}
    {'x0': dtype('float64'), 'x1': dtype('O')}
    """
    if not is_tabular_preset(model):
        raise TypeError("fastbp.onnx.tabular_inputs takes a fitted TabularMLPClassifier, "
                        f"TabularMLPRegressor or TabularPipeline; got "
                        f"{type(model).__module__}.{type(model).__qualname__}.")
    import scipy.sparse as sp

    from ..tabular._preprocessor import _column_positions
    from ..tabular._tables import as_table

    spec = tabular_spec(model)
    pre, name = spec.preprocessor, spec.estimator_name
    if pre.sparse_input_ or sp.issparse(X):
        if not pre.sparse_input_:
            raise TypeError(f"{name} was fitted on a dense table; got a sparse matrix.")
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        return {"X": np.ascontiguousarray(dense, dtype=np.float64)}
    table = as_table(X)
    positions = _column_positions(pre, table, name)
    kinds = pre.column_kinds_
    feed = {}
    for input_name, _, _, columns in spec.inputs:
        values = [_input_column(table, kinds[j], positions[j])
                  if kinds[j] != "empty" else np.full(table.n_rows, np.nan)
                  for j in columns]
        feed[input_name] = np.stack(values, axis=1)
        if feed[input_name].dtype != object:
            feed[input_name] = feed[input_name].astype(np.float64)
    return feed
