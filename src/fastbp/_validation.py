"""Input and hyper-parameter checks, done once at the boundary.

The Cython engine runs with bounds checks off and the GIL released, so every
array that reaches it is validated here: dtype, shape, contiguity and
finiteness. Messages follow scikit-learn's wording so that code (and tests)
written against scikit-learn keep working; each names the argument, what was
expected and what was received.
"""

import numbers
import warnings

import numpy as np
import scipy.sparse as sp

from ._exceptions import data_conversion_warning

__all__ = [
    "InvalidParameterError",
    "check_X",
    "check_y_regression",
    "check_sample_weight",
    "check_consistent_length",
    "validate_params",
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

def _assert_finite(values, input_name, dtype):
    # np.isfinite on the whole array is one fast vectorised pass; only
    # when it fails do we look for which kind of bad value it was.
    if values.size == 0 or np.isfinite(values).all():
        return
    if np.isnan(values).any():
        raise ValueError(f"Input {input_name} contains NaN.")
    raise ValueError(
        f"Input {input_name} contains infinity or a value too large for {np.dtype(dtype)!r}."
    )


def _to_numeric(array, input_name, dtype):
    """Convert an array-like of any numeric kind to ``dtype``; clear errors for
    complex, string and object data that is not numeric."""
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported\n{array}\n")
    if kind in "USV":
        raise ValueError(
            f"{input_name} has dtype {array.dtype}: dtype='numeric' is not compatible "
            "with arrays of bytes/strings. Convert your data to numeric values explicitly "
            "instead."
        )
    if kind == "O":
        if any(isinstance(v, complex) for v in array.flat):
            raise ValueError(f"Complex data not supported\n{array}\n")
        try:
            return array.astype(dtype)
        except (TypeError, ValueError) as exc:
            # keep numpy's exception type (TypeError for non-numbers such as
            # dicts, ValueError for unparsable strings), with a clearer message
            raise type(exc)(
                f"{input_name} holds objects that are not numbers ({exc}). Convert "
                f"{input_name} to a numeric array first."
            ) from exc
    if kind not in "biuf":
        raise ValueError(f"{input_name} has unsupported dtype {array.dtype}.")
    return array


def choose_dtype(X):
    """float32 stays float32; everything else trains in float64."""
    dt = getattr(X, "dtype", None)
    if dt is not None and np.dtype(dt) == np.float32:
        return np.dtype(np.float32)
    if _is_dataframe(X):
        dts = list(X.dtypes)
        if dts and all(np.dtype(d) == np.float32 for d in dts if _is_numpy_dtype(d)) \
                and all(_is_numpy_dtype(d) for d in dts):
            return np.dtype(np.float32)
    return np.dtype(np.float64)


def _is_numpy_dtype(d):
    try:
        np.dtype(d)
        return True
    except TypeError:
        return False


def check_X(X, *, dtype, estimator_name, input_name="X", allow_sparse=True):
    """Validate X and return ``(X, csr_parts)``.

    Dense X comes back C-contiguous in ``dtype`` (no copy when it already is);
    sparse X comes back as a CSR matrix with ``dtype`` values, and
    ``csr_parts = (data, indices, indptr)`` with intp indices for the engine.
    """
    if sp.issparse(X):
        if not allow_sparse:
            raise TypeError(f"{estimator_name} does not accept sparse {input_name}; "
                            "pass a dense array.")
        X = sp.csr_matrix(X) if X.format != "csr" else X
        if X.data.dtype.kind not in "biuf":
            _to_numeric(X.data, input_name, dtype)
        _check_shape(X.shape, 2, input_name, estimator_name, X)
        data = np.ascontiguousarray(X.data, dtype=dtype)
        _assert_finite(data, input_name, dtype)
        indices = np.ascontiguousarray(X.indices, dtype=np.intp)
        indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
        if indices.size and (indices.min() < 0 or indices.max() >= X.shape[1]):
            raise ValueError(f"Sparse {input_name} has column indices outside [0, {X.shape[1]}).")
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] > data.size:
            raise ValueError(f"Sparse {input_name} has an invalid indptr array.")
        X = sp.csr_matrix((data, indices, indptr), shape=X.shape)
        return X, (data, indices, indptr)

    if _is_dataframe(X):
        X = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    array = np.asarray(X)
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
    array = _to_numeric(array, input_name, dtype)
    _check_shape(array.shape, array.ndim, input_name, estimator_name, array)
    array = np.ascontiguousarray(array, dtype=dtype)
    _assert_finite(array, input_name, dtype)
    return array, None


def _check_shape(shape, ndim, input_name, estimator_name, array):
    if ndim > 2:
        raise ValueError(f"Found array with dim {ndim}. {estimator_name} expected <= 2.")
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


def check_consistent_length(*lengths):
    unique = set(lengths)
    if len(unique) > 1:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"{list(lengths)}"
        )


def check_sample_weight(sample_weight, n_samples, dtype):
    """None, or a finite, non-negative 1-D array of length n_samples in ``dtype``
    with a positive sum (scalars broadcast)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        sw = column_like_1d(sample_weight, "sample_weight")
        sw = _to_numeric(sw, "sample_weight", dtype)
        sw = np.ascontiguousarray(sw, dtype=dtype)
        if sw.shape != (n_samples,):
            raise ValueError(
                f"sample_weight.shape == {sw.shape}, expected {(n_samples,)}!"
            )
    _assert_finite(sw, "sample_weight", dtype)
    if sw.size and sw.min() < 0:
        raise ValueError("Negative values in data passed to sample_weight: weights must be "
                         ">= 0.")
    if not sw.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive "
                         "weight.")
    return sw


def column_like_1d(v, input_name):
    if hasattr(v, "to_numpy") and not isinstance(v, np.ndarray):
        v = v.to_numpy()
    v = np.asarray(v)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v.ravel()
    if v.ndim != 1:
        raise ValueError(f"{input_name} must be 1D array or scalar, got shape {v.shape}.")
    return v


# ---------------------------------------------------------------------------
# Hyper-parameters
# ---------------------------------------------------------------------------

def _interval_text(low, high, closed):
    left = "[" if closed in ("left", "both") else "("
    right = "]" if closed in ("right", "both") else ")"
    lo = "-inf" if low is None else repr(float(low)) if not isinstance(low, int) else str(low)
    hi = "inf" if high is None else repr(float(high)) if not isinstance(high, int) else str(high)
    return f"{left}{lo}, {hi}{right}"


def _in_interval(v, low, high, closed):
    if low is not None:
        if closed in ("left", "both"):
            if v < low:
                return False
        elif v <= low:
            return False
    if high is not None:
        if closed in ("right", "both"):
            if v > high:
                return False
        elif v >= high:
            return False
    return True


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_real(est, name, value, low=None, high=None, closed="neither", allow_inf=False):
    if not _is_real(value) or (np.isnan(value)):
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(est).__name__} must be a float in the range "
            f"{_interval_text(low, high, closed)}. Got {value!r} instead."
        )
    if allow_inf and value == np.inf:
        return
    if not _in_interval(value, low, high, closed):
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(est).__name__} must be a float in the range "
            f"{_interval_text(low, high, closed)}. Got {value!r} instead."
        )


def check_int(est, name, value, low=None, high=None, closed="left", extra=""):
    if not _is_int(value) or not _in_interval(value, low, high, closed):
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(est).__name__} must be an int in the range "
            f"{_interval_text(low, high, closed)}{extra}. Got {value!r} instead."
        )


def check_options(est, name, value, options):
    if not isinstance(value, str) or value not in options:
        opts = ", ".join(repr(o) for o in sorted(options))
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(est).__name__} must be a str among "
            f"{{{opts}}}. Got {value!r} instead."
        )


def check_bool(est, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(
            f"The '{name}' parameter of {type(est).__name__} must be an instance of "
            f"'bool' or an instance of 'numpy.bool'. Got {value!r} instead."
        )


def check_hidden_layer_sizes(est, value):
    """A positive int or a sequence of positive ints, returned as a list."""
    if _is_int(value):
        sizes = [value]
    else:
        try:
            sizes = list(value)
        except TypeError:
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(est).__name__} must be an "
                f"int in the range [1, inf) or an array-like of such ints. Got {value!r} "
                "instead."
            ) from None
    for s in sizes:
        if not _is_int(s):
            raise InvalidParameterError(
                f"hidden_layer_sizes must hold integers, got {value!r}."
            )
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


def check_random_state_param(est, value):
    if value is None or _is_int(value) or isinstance(value, np.random.RandomState):
        return
    raise InvalidParameterError(
        f"The 'random_state' parameter of {type(est).__name__} must be an int, an "
        f"instance of 'numpy.random.mtrand.RandomState' or None. Got {value!r} instead."
    )


def validate_params(est, activations, losses=None):
    """Check every constructor parameter of an MLP estimator (called by fit)."""
    check_hidden_layer_sizes(est, est.hidden_layer_sizes)
    check_options(est, "activation", est.activation, activations)
    check_options(est, "solver", est.solver, {"lbfgs", "sgd", "adam"})
    check_real(est, "alpha", est.alpha, 0, None, "left")
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        check_int(est, "batch_size", est.batch_size, 1, None, "left", " or a str among {'auto'}")
    check_options(est, "learning_rate", est.learning_rate, {"constant", "invscaling", "adaptive"})
    check_real(est, "learning_rate_init", est.learning_rate_init, 0, None, "neither")
    check_real(est, "power_t", est.power_t, 0, None, "left")
    check_int(est, "max_iter", est.max_iter, 1, None, "left")
    check_bool(est, "shuffle", est.shuffle)
    check_random_state_param(est, est.random_state)
    check_real(est, "tol", est.tol, 0, None, "left")
    if not isinstance(est.verbose, (bool, np.bool_, numbers.Integral)):
        raise InvalidParameterError(
            f"The 'verbose' parameter of {type(est).__name__} must be an int or a bool. "
            f"Got {est.verbose!r} instead."
        )
    check_bool(est, "warm_start", est.warm_start)
    check_real(est, "momentum", est.momentum, 0, 1, "both")
    check_bool(est, "nesterovs_momentum", est.nesterovs_momentum)
    check_bool(est, "early_stopping", est.early_stopping)
    check_real(est, "validation_fraction", est.validation_fraction, 0, 1, "left")
    check_real(est, "beta_1", est.beta_1, 0, 1, "left")
    check_real(est, "beta_2", est.beta_2, 0, 1, "left")
    check_real(est, "epsilon", est.epsilon, 0, None, "neither")
    if not (est.n_iter_no_change == np.inf and _is_real(est.n_iter_no_change)):
        check_int(est, "n_iter_no_change", est.n_iter_no_change, 1, None, "left",
                  " or numpy.inf")
    check_int(est, "max_fun", est.max_fun, 1, None, "left")
    if losses is not None:
        check_options(est, "loss", est.loss, losses)
