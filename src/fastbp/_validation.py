"""Input and hyper-parameter checks, done once at the boundary.

The Cython engine runs with bounds checks off and the GIL released, so every
array that reaches it is validated here: dtype, shape, contiguity and
finiteness. Messages follow scikit-learn's wording so that code (and tests)
written against scikit-learn keep working; each names the argument, what was
expected and what was received.
"""

import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp

from ._engine import all_finite
from ._exceptions import data_conversion_warning

__all__ = [
    "InvalidParameterError",
    "check_X",
    "check_y_regression",
    "check_sample_weight",
    "check_consistent_length",
    "validate_params",
    "check_training_options",
]


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter has a wrong type or value (raised by ``fit``)."""


# ---------------------------------------------------------------------------
# Feature names (pandas and other dataframes)
# ---------------------------------------------------------------------------

def _is_dataframe(X):
    return (
        not isinstance(X, np.ndarray)
        and not sp.issparse(X)
        and hasattr(X, "columns")
        and hasattr(X, "shape")
        and hasattr(X, "dtypes")
    )


def get_feature_names(X):
    """Column names of a dataframe when they are all strings, else None."""
    if not _is_dataframe(X):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if len(names) == 0:
        return None
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. "
            "If you want feature names to be stored and validated, you must convert "
            "them all to strings, by using X.columns = X.columns.astype(str) for "
            "example. Otherwise you can remove feature / column names from your input "
            "data, or convert them all to a non-string data type."
        )
    if types == ["str"]:
        return names
    return None


def check_feature_names(estimator, X, *, reset):
    """Record (``reset=True``) or compare ``feature_names_in_``, as scikit-learn does."""
    names = get_feature_names(X)
    if reset:
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None and names is None:
        return
    name = type(estimator).__name__
    if names is not None and fitted is None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names")
        return
    if names is None:
        warnings.warn(
            f"X does not have valid feature names, but {name} was fitted with feature names"
        )
        return
    if len(fitted) != len(names) or np.any(fitted != names):
        message = "The feature names should match those that were passed during fit.\n"
        unexpected = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))

        def listing(values):
            out = ""
            for i, value in enumerate(values):
                if i >= 5:
                    out += "- ...\n"
                    break
                out += f"- {value}\n"
            return out

        if unexpected:
            message += "Feature names unseen at fit time:\n" + listing(unexpected)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
        if not unexpected and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)


# ---------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------

def _assert_finite(values, input_name, dtype, estimator_name=None):
    # one vectorised pass (the engine's for float arrays: np.isfinite would
    # allocate a boolean array the size of X); only when it fails do we look
    # for which kind of bad value it was.
    if values.size == 0:
        return
    if (values.dtype in (np.float32, np.float64) and values.flags.c_contiguous
            and type(values) is np.ndarray):
        if all_finite(values.reshape(-1)):
            return
    elif np.isfinite(values).all():
        return
    if np.isnan(values).any():
        message = f"Input {input_name} contains NaN."
        if estimator_name is not None and input_name == "X":
            message += (
                f"\n{estimator_name} does not accept missing values encoded as NaN "
                "natively. Preprocess the data, for instance with an imputer "
                "(sklearn.impute.SimpleImputer) in a pipeline, or drop the samples with "
                "missing values."
            )
        raise ValueError(message)
    raise ValueError(
        f"Input {input_name} contains infinity or a value too large for {np.dtype(dtype)!r}."
    )


def _is_missing(v):
    # None, and pandas.NA without importing pandas
    return v is None or type(v).__name__ == "NAType"


def _to_numeric(array, input_name, dtype):
    """Convert an array of any numeric kind to ``dtype``; clear errors for
    complex data and for strings or objects that are not numbers. Strings
    holding numbers ("1.5") convert, as in scikit-learn; None and pandas.NA
    become NaN (and are then reported as missing values)."""
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c" or (kind == "O" and any(isinstance(v, complex) for v in array.flat)):
        raise ValueError(f"Complex data not supported\n{array}\n")
    if kind not in "USO":
        raise ValueError(
            f"{input_name} has dtype {array.dtype}; fastbp needs numbers (float, int or "
            f"bool). Convert {input_name} to a numeric array first."
        )
    if kind == "O" and any(_is_missing(v) for v in array.flat):
        array = np.where(np.frompyfunc(_is_missing, 1, 1)(array).astype(bool), np.nan, array)
    try:
        return array.astype(dtype)
    except (TypeError, ValueError) as exc:
        # keep numpy's exception type (TypeError for non-numbers such as dicts,
        # ValueError for unparsable strings), with a clearer message
        raise type(exc)(
            f"{input_name} holds values that are not numbers ({exc}). Convert "
            f"{input_name} to a numeric array first"
            + (" (encode categories as numbers)." if input_name == "X" else ".")
        ) from None


def choose_dtype(X):
    """float32 stays float32 (whatever its byte order); everything else trains
    in float64."""
    if _is_dataframe(X):
        dts = list(X.dtypes)
        if dts and all(_is_float32(d) for d in dts):
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    dt = getattr(X, "dtype", None)
    if dt is not None and _is_float32(dt):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _is_float32(d):
    try:
        d = np.dtype(d)
    except TypeError:  # pandas extension dtypes
        return False
    return d.kind == "f" and d.itemsize == 4


def _dataframe_to_array(X, dtype):
    """A dataframe's values as an ndarray: numeric columns (also pandas'
    nullable Int64/Float64/boolean, whose missing values become NaN) in
    ``dtype``; anything else as objects, converted (or rejected) later."""
    if hasattr(X, "to_numpy"):
        try:
            return X.to_numpy(dtype=dtype, na_value=np.nan)
        except (TypeError, ValueError):
            return X.to_numpy()
    return np.asarray(X)


def check_X(X, *, dtype, estimator_name, input_name="X", allow_sparse=True,
            check_finite=True):
    """Validate X and return ``(X, csr_parts)``.

    Dense X comes back C-contiguous in ``dtype`` (no copy when it already is);
    sparse X comes back as a CSR matrix with ``dtype`` values, and
    ``csr_parts = (data, indices, indptr)`` with intp indices for the engine.
    ``check_finite=False`` leaves dense X's values unchecked, for a caller
    whose engine pass checks them (prediction) and validates again with the
    check when it finds one.
    """
    if sp.issparse(X):
        if not allow_sparse:
            raise TypeError(f"{estimator_name} does not accept sparse {input_name}; "
                            "pass a dense array.")
        X = sp.csr_matrix(X) if X.format != "csr" else X
        _check_shape(X.shape, 2, input_name, estimator_name, X)
        n_rows, n_cols = X.shape
        data = np.ascontiguousarray(_to_numeric(np.asarray(X.data), input_name, dtype),
                                    dtype=dtype)
        indices = np.ascontiguousarray(X.indices, dtype=np.intp)
        indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
        # the engine reads these without bounds checks: a malformed matrix must
        # stop here, not in the kernels
        if data.ndim != 1 or indices.ndim != 1 or indptr.shape != (n_rows + 1,):
            raise ValueError(f"Sparse {input_name} is malformed: indptr has shape "
                             f"{indptr.shape}, expected ({n_rows + 1},).")
        if (indptr[0] != 0 or np.any(np.diff(indptr) < 0)
                or indptr[-1] > min(data.size, indices.size)):
            raise ValueError(f"Sparse {input_name} is malformed: its indptr array is not "
                             "a non-decreasing sequence from 0 to the number of stored "
                             "values.")
        stored = slice(0, int(indptr[-1]))
        data, indices = data[stored], indices[stored]
        if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
            raise ValueError(f"Sparse {input_name} is malformed: it has column indices "
                             f"outside [0, {n_cols}).")
        _assert_finite(data, input_name, dtype, estimator_name)
        X = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
        return X, (data, indices, indptr)

    if _is_dataframe(X):
        X = _dataframe_to_array(X, dtype)
    try:
        array = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(
            f"{input_name} could not be read as a 2-D array ({exc}). Every row needs the "
            "same number of features."
        ) from None
    if array.ndim == 0:
        raise ValueError(
            f"Expected 2D array, got scalar array instead:\narray={array}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a "
            "single feature or array.reshape(1, -1) if it contains a single sample."
        )
    if array.ndim == 1:
        raise ValueError(
            f"Expected 2D array, got 1D array instead:\narray={array}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a "
            "single feature or array.reshape(1, -1) if it contains a single sample."
        )
    _check_shape(array.shape, array.ndim, input_name, estimator_name, array)
    array = _to_numeric(array, input_name, dtype)
    array = np.ascontiguousarray(array, dtype=dtype)
    if check_finite:
        _assert_finite(array, input_name, dtype, estimator_name)
    return array, None


def _check_shape(shape, ndim, input_name, estimator_name, array):
    if ndim > 2:
        raise ValueError(
            f"Found array with dim {ndim}, while dim <= 2 is required by {estimator_name}."
        )
    if shape[0] < 1:
        raise ValueError(
            f"Found array with {shape[0]} sample(s) (shape={shape}) while a minimum of 1 "
            f"is required by {estimator_name}."
        )
    if shape[1] < 1:
        raise ValueError(
            f"Found array with {shape[1]} feature(s) (shape={shape}) while a minimum of 1 "
            f"is required by {estimator_name}."
        )


def column_or_2d(y, input_name="y"):
    """y as an array of ndim 1 or 2; a (n, 1) column becomes 1-D with a
    DataConversionWarning, as scikit-learn's MLP does."""
    if _is_dataframe(y):
        y = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    elif hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):  # pandas Series
        y = y.to_numpy()
    if sp.issparse(y):
        y = y.toarray()
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"{input_name} should be a 1d array, got a scalar instead.")
    if y.ndim > 2:
        raise ValueError(f"{input_name} should be a 1d or 2d array, got an array of "
                         f"shape {y.shape} instead.")
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change "
            "the shape of y to (n_samples, ), for example using ravel().",
            data_conversion_warning(),
            stacklevel=4,
        )
        y = y.ravel()
    return y


def check_y_regression(y, *, dtype, require_non_negative=False):
    """Numeric, finite regression targets as a C-contiguous (n, n_outputs) array."""
    y = column_or_2d(y)
    y = _to_numeric(y, "y", dtype)
    y = np.asarray(y, dtype=dtype)
    _assert_finite(y, "y", dtype)
    if require_non_negative and y.size and y.min() < 0:
        raise ValueError(
            "Some value(s) of y are negative which is not allowed for Poisson regression."
        )
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.shape[1] < 1:
        raise ValueError("y has 0 outputs; it needs at least one column.")
    return np.ascontiguousarray(y)


def check_labels_present(y):
    """Classification labels: no NaN, infinity, None or pandas.NA (checked
    before the target type is inferred, so the message says what is wrong)."""
    if y.dtype.kind == "f":
        _assert_finite(y, "y", y.dtype)
    elif y.dtype.kind == "O" and any(_is_missing(v) for v in y.flat):
        raise ValueError("Input y contains missing labels (None or pandas.NA); every "
                         "sample needs a label.")


def check_consistent_length(*lengths):
    unique = set(lengths)
    if len(unique) > 1:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"{list(lengths)}"
        )


def check_sample_weight(sample_weight, n_samples, dtype):
    """None, or a finite, non-negative 1-D array of length n_samples in ``dtype``
    with a positive sum (scalars broadcast).

    Unlike scikit-learn's MLP, negative weights are rejected: they turn the
    loss into one without a lower bound, so training diverges.
    """
    if sample_weight is None:
        return None
    if hasattr(sample_weight, "to_numpy") and not isinstance(sample_weight, np.ndarray):
        sample_weight = sample_weight.to_numpy()
    sw = np.asarray(sample_weight)
    if sw.ndim == 0:  # a scalar weighs every sample the same
        sw = np.full(n_samples, sw)
    if sw.ndim == 2 and sw.shape[1] == 1:
        sw = sw.ravel()
    if sw.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. "
            f"Expected either a scalar value or a 1D array of length {n_samples}."
        )
    sw = np.ascontiguousarray(_to_numeric(sw, "sample_weight", dtype), dtype=dtype)
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape == {sw.shape}, expected {(n_samples,)}!"
        )
    _assert_finite(sw, "sample_weight", dtype)
    if sw.size and sw.min() < 0:
        raise ValueError("Negative values in data passed to sample_weight: weights must be "
                         ">= 0.")
    if not sw.sum() > 0:
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sw


# ---------------------------------------------------------------------------
# Hyper-parameters
# ---------------------------------------------------------------------------
#
# Each parameter has a list of constraints (in _sklearn_api.PARAMETERS); a
# value is valid when it satisfies one of them, as with scikit-learn's
# ``_parameter_constraints``, with the same messages.


class _Interval:
    """Numbers of ``kind`` (numbers.Integral or numbers.Real) in an interval;
    ``None`` bounds are infinite and never included."""

    def __init__(self, kind, low, high, closed):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, v):
        if not isinstance(v, self.kind):
            return False
        if not isinstance(v, numbers.Integral) and math.isnan(v):
            return False
        low = -np.inf if self.low is None else self.low
        high = np.inf if self.high is None else self.high
        if (v < low) if self.closed in ("left", "both") else (v <= low):
            return False
        if (v > high) if self.closed in ("right", "both") else (v >= high):
            return False
        return True

    def __str__(self):
        integral = self.kind is numbers.Integral
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        low = "-inf" if self.low is None else self.low if integral else float(self.low)
        high = "inf" if self.high is None else self.high if integral else float(self.high)
        return f"{'an int' if integral else 'a float'} in the range {left}{low}, {high}{right}"


class _Options:
    """One of a finite set of values of ``kind``."""

    def __init__(self, kind, options):
        self.kind, self.options = kind, options

    def accepts(self, v):
        return isinstance(v, self.kind) and v in self.options

    def __str__(self):
        name = "str" if self.kind is str else "float"
        # sorted, so that the message does not depend on the hash seed
        return f"a {name} among {{{', '.join(repr(o) for o in sorted(self.options))}}}"


class _InstanceOf:
    def __init__(self, cls, name):
        self.cls, self.name = cls, name

    def accepts(self, v):
        return isinstance(v, self.cls)

    def __str__(self):
        return f"an instance of '{self.name}'"


class _ArrayLike:
    """A sequence or array (not a string or other scalar)."""

    def accepts(self, v):
        return ((hasattr(v, "__len__") or hasattr(v, "shape") or hasattr(v, "__array__"))
                and not np.isscalar(v))

    def __str__(self):
        return "an array-like"


class _RealSequence:
    """A non-empty 1-D sequence (or array) of numbers, each in an interval."""

    def __init__(self, low, high, closed):
        self.item = _Interval(numbers.Real, low, high, closed)

    def accepts(self, v):
        if isinstance(v, (str, bytes)) or np.isscalar(v) or not hasattr(v, "__len__"):
            return False
        items = list(np.asarray(v, dtype=object).reshape(-1)) if np.ndim(v) == 1 else None
        return bool(items) and all(self.item.accepts(x) and not isinstance(x, bool)
                                   for x in items)

    def __str__(self):
        return "a non-empty sequence of " + str(self.item).replace("a float", "floats")


class _NoneValue:
    def accepts(self, v):
        return v is None

    def __str__(self):
        return "None"


# constraint builders for the parameter table (_sklearn_api.PARAMETERS)
BOOLEAN = [_InstanceOf(bool, "bool"), _InstanceOf(np.bool_, "numpy.bool")]
ARRAY_LIKE = _ArrayLike()
NONE = _NoneValue()


def real(low, high, closed):
    """Floats (or ints) in an interval; ``closed``: 'left', 'right', 'both' or 'neither'."""
    return _Interval(numbers.Real, low, high, closed)


def reals(low, high, closed):
    """Non-empty sequences of floats, each in an interval (see :func:`real`)."""
    return _RealSequence(low, high, closed)


def integer(low, high=None, closed="left"):
    return _Interval(numbers.Integral, low, high, closed)


def one_of(*values, kind=str):
    return _Options(kind, set(values))


def instance_of(cls, name):
    return _InstanceOf(cls, name)


def _check_hidden_layer_sizes(est, value):
    """Beyond the type constraint: every layer is an int >= 1 (scikit-learn
    raises the same ValueError for sizes <= 0)."""
    sizes = [value] if isinstance(value, numbers.Integral) else list(value)
    if not all(isinstance(s, numbers.Integral) for s in sizes):
        raise InvalidParameterError(
            f"The 'hidden_layer_sizes' parameter of {type(est).__name__} must hold one int "
            f">= 1 per hidden layer. Got {value!r} instead."
        )
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")


# (estimator class, parameter, type, value) already accepted: a fit checks
# ~20 parameters, which costs more than a small fit's epoch. A constraint's
# verdict on a scalar of a built-in type depends on its type and value alone
# (not so for a sequence: (0, 0.5) == (False, 0.5), and bools are refused).
_ACCEPTED = set()
_ACCEPTED_MAX = 4096
_SCALARS = frozenset((int, float, str, bool, type(None)))


def validate_params(est, constraints):
    """Check every constructor parameter of an MLP estimator (called by fit)
    against ``constraints`` (name -> list of accepted kinds of values).

    Parameters are checked in alphabetical order, as scikit-learn does, and
    the first invalid one raises :class:`InvalidParameterError` naming the
    parameter, the accepted values and the value received. Parameters
    without a constraint (class_weight and callbacks: checked where they are
    used) are not checked here.
    """
    kind = type(est)
    for name, value in est.get_params(deep=False).items():
        options = constraints.get(name)
        if options is None:
            continue
        key = (kind, name, type(value), value) if type(value) in _SCALARS else None
        if key is not None and key in _ACCEPTED:
            continue
        if any(c.accepts(value) for c in options):
            if key is not None:
                if len(_ACCEPTED) >= _ACCEPTED_MAX:
                    _ACCEPTED.clear()
                _ACCEPTED.add(key)
            continue
        if len(options) == 1:
            accepted = str(options[0])
        else:
            accepted = f"{', '.join(str(c) for c in options[:-1])} or {options[-1]}"
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(est).__name__} must be {accepted}. "
            f"Got {value!r} instead."
        )
    if hasattr(est, "hidden_layer_sizes"):  # the tabular preprocessing has none
        _check_hidden_layer_sizes(est, est.hidden_layer_sizes)


def _dropout_rates(est, n_hidden):
    """The dropout rate of each hidden layer (``est.dropout`` is a float or
    one float per hidden layer; its values are checked by validate_params)."""
    dropout = est.dropout
    if np.ndim(dropout) == 0:
        return [float(dropout)] * n_hidden
    rates = [float(v) for v in np.asarray(dropout, dtype=np.float64).reshape(-1)]
    if len(rates) != n_hidden:
        raise ValueError(
            f"dropout={dropout!r} gives {len(rates)} rate(s), but hidden_layer_sizes="
            f"{est.hidden_layer_sizes!r} has {n_hidden} hidden layer(s): give one rate per "
            "hidden layer, or one float for all of them."
        )
    return rates


def check_training_options(est, loss):
    """fastbp's training options against the other parameters (each value on
    its own is checked by :func:`validate_params`); returns the dropout rate
    of each hidden layer. ``loss`` is the estimator's training loss."""
    hidden = est.hidden_layer_sizes
    n_hidden = 1 if isinstance(hidden, numbers.Integral) else len(list(hidden))
    rates = _dropout_rates(est, n_hidden)
    if est.solver == "lbfgs":
        for option, value, on in (("dropout", est.dropout, any(rates)),
                                  ("weight_decay", est.weight_decay, est.weight_decay > 0),
                                  ("max_grad_norm", est.max_grad_norm,
                                   est.max_grad_norm is not None)):
            if on:
                raise ValueError(
                    f"{option}={value!r} applies to the stochastic solvers: solver='sgd' or "
                    f"'adam' take a step per mini-batch with it, solver='lbfgs' minimises "
                    f"the full-batch objective. Use solver='adam', or leave {option} at "
                    "its default."
                )
    decay_per_step = est.weight_decay * est.learning_rate_init
    if decay_per_step >= 1:
        raise ValueError(
            f"weight_decay={est.weight_decay!r} with learning_rate_init="
            f"{est.learning_rate_init!r} multiplies the weights by 1 - learning_rate * "
            f"weight_decay = {1 - decay_per_step:.6g} at every step, which zeroes or flips "
            f"them: weight_decay must be below 1 / learning_rate_init = "
            f"{1 / est.learning_rate_init:.6g}."
        )
    smoothing = getattr(est, "label_smoothing", 0.0)
    if smoothing and loss != "log_loss":
        raise ValueError(
            f"label_smoothing={smoothing!r} applies to classification (loss='log_loss'), "
            f"but this {type(est).__name__} has loss={loss!r}; set label_smoothing=0.0."
        )
    return rates
