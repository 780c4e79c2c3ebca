"""``class_weight`` for the classifiers, with scikit-learn's semantics.

Class weights become per-sample weights that multiply ``sample_weight``,
exactly as scikit-learn's linear models and trees apply them:

* a dict maps class labels to weights; classes it does not name weigh 1;
  keys are matched as scikit-learn's ``compute_class_weight`` matches them
  (``int(label)``, or ``str(label)`` for labels that are not numbers);
* ``'balanced'`` gives class ``c`` the weight
  ``n_samples / (n_classes * count(c))``, with the counts weighted by
  ``sample_weight`` when it is given (as ``LogisticRegression`` does, so
  integer sample weights stay equivalent to repeated samples);
* multilabel targets follow ``compute_sample_weight``'s multi-output
  convention: ``'balanced'`` (per label column) or a list of one dict per
  label with keys 0 and 1; a sample's weight is the product over labels.
"""

import numbers

import numpy as np

from ._validation import InvalidParameterError

__all__ = ["check_class_weight_param", "class_sample_weight"]

_BALANCED_PARTIAL_FIT = (
    "class_weight 'balanced' is not supported for partial_fit. In order to use "
    "'balanced' weights, use compute_class_weight('balanced', classes=classes, y=y). "
    "In place of y you can use a large enough sample of the full training set target "
    "to properly estimate the class frequency distributions. Pass the resulting "
    "weights as the class_weight parameter."
)


def check_class_weight_param(cw, estimator_name, loss):
    """Type and value checks of the ``class_weight`` parameter ``cw`` of an
    estimator training ``loss`` (called by fit)."""
    if cw is None:
        return
    name = estimator_name
    if loss != "log_loss":
        raise ValueError(
            f"class_weight={cw!r} is only used for classification, but this {name} has "
            f"loss={loss!r}; set class_weight=None or loss='log_loss'."
        )
    if isinstance(cw, str) and cw == "balanced":
        return
    if isinstance(cw, dict):
        _check_weights(cw, "class_weight")
        return
    if isinstance(cw, list) and cw and all(isinstance(d, dict) for d in cw):
        for k, d in enumerate(cw):
            _check_weights(d, f"class_weight[{k}]")
        return
    raise InvalidParameterError(
        f"The 'class_weight' parameter of {name} must be an instance of 'dict', a list of "
        f"dicts (one per label, multilabel y only), a str among {{'balanced'}} or None. "
        f"Got {cw!r} instead."
    )


def _check_weights(mapping, what):
    for key, value in mapping.items():
        if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                or not np.isfinite(value) or value < 0):
            raise InvalidParameterError(
                f"{what}[{key!r}] must be a finite number >= 0, got {value!r}."
            )


def _dict_weights(class_weight, classes):
    """``compute_class_weight(dict, classes=classes)``: weights per class."""
    weight = np.ones(len(classes), dtype=np.float64)
    unweighted = []
    for i, c in enumerate(classes):
        try:
            c = int(c)
        except ValueError:  # labels that are not numbers
            c = str(c)
        if c in class_weight:
            weight[i] = class_weight[c]
        else:
            unweighted.append(c)
    if unweighted and len(classes) - len(unweighted) != len(class_weight):
        raise ValueError(
            f"The classes, {np.array(unweighted).tolist()}, are not in class_weight"
        )
    return weight


def _balanced_weights(class_index, n_classes, sample_weight):
    counts = np.bincount(class_index, weights=sample_weight, minlength=n_classes)
    present = counts > 0
    weight = np.zeros(n_classes, dtype=np.float64)
    # a class whose samples all weigh 0 gets weight 0, not inf (0 * inf is NaN)
    weight[present] = counts.sum() / (np.count_nonzero(np.bincount(
        class_index, minlength=n_classes)) * counts[present])
    return weight


def class_sample_weight(cw, encoding, Y, sample_weight, incremental):
    """Per-sample weights ``sample_weight * class weight of each sample``.

    Parameters
    ----------
    cw : the ``class_weight`` parameter (checked by ``check_class_weight_param``)
    encoding : LabelEncoding
        The classifier's label encoding (``classes_`` and ``y_type_``).
    Y : ndarray of shape (n_samples, n_outputs)
        The encoded targets the engine trains on (0/1 column for binary,
        one-hot for multiclass, indicator matrix for multilabel).
    sample_weight : ndarray of shape (n_samples,) or None
    incremental : bool
        True for partial_fit, which refuses 'balanced'.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,) in ``Y.dtype``, or None
        None when ``class_weight`` is None.
    """
    if cw is None:
        return sample_weight
    if incremental and isinstance(cw, str):
        raise ValueError(_BALANCED_PARTIAL_FIT)
    sw64 = None if sample_weight is None else sample_weight.astype(np.float64)
    y_type = encoding.y_type_
    if y_type == "multilabel-indicator":
        if isinstance(cw, dict):
            raise ValueError(
                "For multilabel y, class_weight must be 'balanced' or a list of one dict "
                "per label (keys 0 and 1), as scikit-learn's compute_sample_weight expects "
                "for multi-output targets; got a dict."
            )
        if isinstance(cw, list) and len(cw) != Y.shape[1]:
            raise ValueError(
                "For multi-output, number of elements in class_weight should match number "
                f"of outputs. Got {len(cw)} element(s) while having {Y.shape[1]} outputs."
            )
        weights = np.ones(Y.shape[0], dtype=np.float64)
        for k in range(Y.shape[1]):
            column = (Y[:, k] > 0.5).astype(np.intp)
            present = np.unique(column)
            if isinstance(cw, str):
                per_class = _balanced_weights(column, 2, sw64)
            else:
                per_class = np.ones(2)
                per_class[present] = _dict_weights(cw[k], present)
            weights *= per_class[column]
    else:
        if isinstance(cw, list):
            raise ValueError(
                "class_weight is a list, which is only valid for multilabel y (one dict "
                f"per label); for {y_type} y pass a dict or 'balanced'."
            )
        class_index = ((Y[:, 0] > 0.5).astype(np.intp) if Y.shape[1] == 1
                       else np.argmax(Y, axis=1))
        n_classes = len(encoding.classes_)
        if isinstance(cw, str):
            per_class = _balanced_weights(class_index, n_classes, sw64)
        else:
            per_class = _dict_weights(cw, encoding.classes_)
        weights = per_class[class_index]
    if sw64 is not None:
        weights *= sw64
    if not weights.sum() > 0:
        raise ValueError(
            "class_weight (times sample_weight) gives every sample a weight of 0: at least "
            "one sample needs a positive weight."
        )
    return np.ascontiguousarray(weights, dtype=Y.dtype)
