"""Targets: y checked and encoded into the (n_samples, n_outputs) matrix the
engine trains on, and network outputs turned back into predictions.

One encoder for every entry point: ``fit`` and ``partial_fit`` (with
``classes=``) through :func:`encode_fit_targets` / :func:`partial_fit_encoding`,
``loss_and_gradients`` through :func:`encode_known_targets`, ``predict`` and
the early-stopping score through :func:`decode` / :func:`score`.
Classification labels are encoded by a :class:`~fastbp._compat.LabelEncoding`
(scikit-learn's ``LabelBinarizer`` as its MLP uses it), the estimator's
fitted encoding; regression targets need no state. The functions take the
current encoding and return the new one: the estimator keeps it.
"""

import numpy as np

from ._compat import (
    LabelEncoding,
    accuracy_score,
    r2_score,
    target_type_and_labels,
    type_of_target,
)
from ._validation import (
    check_consistent_length,
    check_labels_present,
    check_y_regression,
    column_or_2d,
)

__all__ = ["partial_fit_encoding", "encode_fit_targets", "encode_known_targets",
           "quantile_targets", "decode", "probabilities", "score"]

_LABEL_TYPES = ("binary", "multiclass", "multilabel-indicator")


def _class_labels(y, n_samples):
    """y as class labels, its target type and, for one column of labels,
    ``(classes, positions)`` (``target_type_and_labels``); errors for
    anything else."""
    y = column_or_2d(y)
    check_consistent_length(n_samples, y.shape[0])
    check_labels_present(y)
    y_type, labels = target_type_and_labels(y)
    if y_type not in _LABEL_TYPES:
        if y_type.startswith("continuous"):
            raise ValueError(
                f"Unknown label type: {y_type}. Maybe you are trying to fit a "
                "classifier, which expects discrete classes on a regression target "
                "with continuous values."
            )
        if y_type == "multiclass-multioutput":
            raise ValueError("Multioutput target data is not supported with label "
                             "binarization")
        raise ValueError(f"Unknown label type: {y_type!r}")
    return y, y_type, labels


def partial_fit_encoding(encoding, y, classes):
    """The encoding ``partial_fit(..., classes=classes)`` trains with:
    built from ``classes`` on the first call (``encoding`` None), which
    needs them; later calls may repeat the same classes."""
    if classes is None and encoding is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is None:
        return encoding
    given, classes = classes, np.unique(np.asarray(classes))
    if encoding is not None:
        if not np.array_equal(encoding.classes_, classes):
            raise ValueError(
                f"`classes={given!r}` is not the same as on last call to "
                f"partial_fit, was: {encoding.classes_!r}"
            )
        return encoding
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] > 1 and \
            type_of_target(y_arr).startswith("multilabel"):
        return LabelEncoding().fit(y_arr)
    return LabelEncoding().fit_classes(classes,
                                       "multiclass" if len(classes) > 2 else "binary")


def quantile_targets(Y, quantiles):
    """Regression targets ``Y`` for loss='quantile' with ``quantiles`` (a
    float: one per output; a sequence: one output each, so y must be one
    column, repeated for every quantile)."""
    if quantiles is None or np.ndim(quantiles) == 0:
        return Y
    n_quantiles = len(np.asarray(quantiles).reshape(-1))
    if Y.shape[1] != 1:
        raise ValueError(
            f"loss='quantile' with quantile={quantiles!r} predicts {n_quantiles} quantiles "
            f"of one target, but y has {Y.shape[1]} columns; pass a single target, or a "
            "single quantile for every column."
        )
    return np.ascontiguousarray(np.repeat(Y, n_quantiles, axis=1))


def encode_fit_targets(y, n_samples, dtype, *, loss, encoding, continuing, estimator_name,
                       quantiles=None):
    """``(Y, encoding)`` for training: Y of shape (n_samples, n_outputs) in
    ``dtype``. Classification (``loss='log_loss'``) learns a new encoding
    from y, unless ``continuing`` ('warm_start' or 'partial_fit') an
    existing ``encoding``: then y must have the same classes (warm start)
    or only known ones (partial_fit). Regression returns ``encoding``
    unchanged (loss='quantile': y repeated for each of ``quantiles``)."""
    if y is None:
        raise ValueError(
            f"This {estimator_name} estimator requires y to be passed, but the "
            "target y is None."
        )
    if loss != "log_loss":
        Y = check_y_regression(y, dtype=dtype, require_non_negative=loss == "poisson")
        check_consistent_length(n_samples, Y.shape[0])
        return quantile_targets(Y, quantiles), encoding
    y, y_type, labels = _class_labels(y, n_samples)
    positions = None
    if encoding is None or continuing is None:
        encoding = LabelEncoding().fit(y, y_type, labels)
        positions = None if labels is None else labels[1]
    else:
        _check_known_classes(y, y_type, encoding.classes_, continuing, labels)
    if encoding.y_type_ != "multilabel-indicator" and len(encoding.classes_) < 2:
        raise ValueError(
            f"{estimator_name} needs samples of at least 2 classes in the data, "
            f"but the data contains only one class: {encoding.classes_[0].item()!r}."
        )
    return encoding.transform(y, dtype, positions), encoding


def _check_known_classes(y, y_type, known, why, labels=None):
    if y_type == "multilabel-indicator":
        classes = np.arange(y.shape[1])
    else:
        classes = labels[0] if labels is not None else np.unique(y)
    if why == "warm_start":
        if set(classes.tolist()) != set(known.tolist()):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in "
                f"the previous call to fit. Previously got {known}, `y` has {classes}"
            )
    elif len(np.setdiff1d(classes, known, assume_unique=True)):
        raise ValueError(
            f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. "
            f"'y' has {classes}."
        )


def encode_known_targets(y, n_samples, dtype, *, loss, encoding, n_outputs, quantiles=None):
    """Y for evaluating a fitted model (``loss_and_gradients``, validation
    data): labels must be among the known classes, regression targets have
    ``n_outputs`` (loss='quantile': after repeating y for each quantile)."""
    if loss != "log_loss":
        Y = check_y_regression(y, dtype=dtype)
        check_consistent_length(n_samples, Y.shape[0])
        Y = quantile_targets(Y, quantiles)
        if Y.shape[1] != n_outputs:
            raise ValueError(f"y has {Y.shape[1]} outputs, but the model has {n_outputs}.")
        return Y
    y = column_or_2d(y)
    check_consistent_length(n_samples, y.shape[0])
    return encoding.transform(y, dtype)


def decode(P, encoding):
    """Predictions from output activations ``P``: class labels (with an
    ``encoding``) or values, 1-D for a single output."""
    if encoding is not None:
        return encoding.inverse(P)
    return P.ravel() if P.shape[1] == 1 else P


def probabilities(P, log=False):
    """A classifier's class probabilities from output activations ``P``
    (``[1 - p, p]`` for one logistic output), or their logs (``-inf`` for 0)."""
    if P.shape[1] == 1:
        p = P[:, 0]
        P = np.vstack([1 - p, p]).T
    if log:
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)
    return P


def score(P, y_true, sample_weight, encoding):
    """Accuracy (classification) or R² (regression) of outputs ``P``; NaN
    when the outputs are not finite."""
    y_pred = decode(P, encoding)
    if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and \
            not np.isfinite(y_pred).all():
        return np.nan
    if encoding is not None:
        return accuracy_score(y_true, y_pred, sample_weight)
    return r2_score(y_true, y_pred, sample_weight)
