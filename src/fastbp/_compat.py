"""The pieces of scikit-learn's MLP behaviour fastbp must reproduce exactly,
re-implemented without importing scikit-learn.

* Random draws: the same ``RandomState`` calls in the same order as
  scikit-learn 1.9 (``check_random_state``, ``utils.shuffle``,
  ``train_test_split`` with and without stratification), so the same
  ``random_state`` gives the same initial weights, validation split and
  mini-batch order.
* Targets: ``type_of_target`` and ``LabelBinarizer``'s encoding for the
  classifier.
* Scores: ``accuracy_score`` and ``r2_score`` with sample weights (used by
  ``score`` and by early stopping).

``tests/test_sklearn_parity.py`` checks each against scikit-learn.
"""

import numbers
from math import ceil

import numpy as np

from . import _shuffle

__all__ = [
    "check_random_state",
    "shuffle_indices",
    "train_test_split_indices",
    "type_of_target",
    "target_type_and_labels",
    "LabelEncoding",
    "accuracy_score",
    "r2_score",
]


class _NoEntropy(np.random.bit_generator.ISeedSequence):
    """A seed sequence of zeros, for an MT19937 whose state is overwritten at
    once (``seeded_random_state``). A list: MT19937 copies it word by word,
    which costs ~30 us from an array and ~1 us from a list."""

    def generate_state(self, n_words, dtype=np.uint32):
        return [0] * n_words


_NO_ENTROPY = _NoEntropy()


def seeded_random_state(seed):
    """``np.random.RandomState(seed)``, state for state, in a twentieth of its
    time (~5 us instead of ~95: a sixth of a small fit's overhead).

    ``RandomState(seed)`` first seeds a new MT19937 from the operating
    system's entropy through a SeedSequence and then overwrites that state
    with the legacy seeding of ``seed``; here the first state is zeros and
    ``RandomState.seed`` does the same overwrite, with the same errors
    (tests/test_sklearn_parity.py compares the two)."""
    try:
        bit_generator = np.random.MT19937(_NO_ENTROPY)
    except Exception:   # a numpy whose MT19937 wants another seed sequence
        return np.random.RandomState(seed)
    rs = np.random.RandomState(bit_generator)
    rs.seed(seed)
    return rs


def check_random_state(seed):
    """``None`` → numpy's global RandomState; int → a new RandomState(seed);
    a RandomState → itself."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return seeded_random_state(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def shuffle_indices(indices, random_state, inplace=False):
    """``sklearn.utils.shuffle(indices, random_state=random_state)``; with
    ``inplace`` the result is written into ``indices`` (and returned)."""
    if (isinstance(random_state, np.random.RandomState) and indices.dtype == np.intp
            and indices.ndim == 1 and indices.flags.c_contiguous):
        # the same swaps as RandomState.shuffle, done on the indices directly
        # (one typed loop instead of shuffle + fancy indexing)
        out = indices if inplace else np.array(indices, copy=True)
        _shuffle.shuffle_inplace(out, random_state)
        return out
    order = np.arange(indices.shape[0])
    random_state.shuffle(order)
    if inplace:
        indices[...] = indices[order]
        return indices
    return indices[order]


def _approximate_mode(class_counts, n_draws, rng):
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def train_test_split_indices(n_samples, test_size, random_state, stratify=None):
    """``(train, test)`` index arrays of ``train_test_split(range(n),
    test_size=test_size, random_state=random_state, stratify=stratify)``."""
    n_test = ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train == 0:
        raise ValueError(
            f"With n_samples={n_samples}, test_size={test_size} and train_size=None, the "
            "resulting train set will be empty. Adjust any of the aforementioned "
            "parameters."
        )
    rng = random_state
    if stratify is None:
        permutation = rng.permutation(n_samples)
        return permutation[n_test:n_test + n_train], permutation[:n_test]

    y = np.asarray(stratify)
    if y.ndim == 2:
        y = np.array([" ".join(row.astype("str")) for row in y])
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    n_classes = classes.shape[0]
    if np.min(class_counts) < 2:
        raise ValueError(
            "The least populated classes in y have only 1 member, which is too few. The "
            "minimum number of groups for any class cannot be less than 2. Classes with "
            f"too few members are: {classes[class_counts < 2].tolist()}"
        )
    if n_train < n_classes:
        raise ValueError(
            f"The train_size = {n_train} should be greater or equal to the number of "
            f"classes = {n_classes}"
        )
    if n_test < n_classes:
        raise ValueError(
            f"The test_size = {n_test} should be greater or equal to the number of "
            f"classes = {n_classes}"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    class_counts_remaining = class_counts - n_i
    t_i = _approximate_mode(class_counts_remaining, n_test, rng)
    train, test = [], []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        perm_indices_class_i = class_indices[i].take(permutation, mode="clip")
        train.extend(perm_indices_class_i[: n_i[i]])
        test.extend(perm_indices_class_i[n_i[i]: n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _is_integral_float(y):
    return y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)


def type_of_target(y):
    """'binary', 'multiclass', 'multilabel-indicator', 'continuous',
    'continuous-multioutput', 'multiclass-multioutput' or 'unknown'."""
    return target_type_and_labels(y)[0]


def target_type_and_labels(y):
    """``(type_of_target(y), labels)``: for one column of labels ('binary',
    'multiclass') ``labels`` is ``np.unique(y, return_inverse=True)`` (the
    classes and each sample's position among them: the label encoding
    needs both, and this finds them in one pass); else None."""
    y = np.asarray(y)
    if y.ndim > 2 or (y.dtype == object and y.size and not isinstance(y.flat[0], str)
                      and not np.isscalar(y.flat[0])):
        return "unknown", None
    if y.ndim == 2 and y.shape[1] == 0:
        return "unknown", None
    if y.ndim == 2 and y.shape[1] > 1:
        if y.dtype.kind in "biuf" and y.size and np.isin(np.unique(y), [0, 1]).all():
            return "multilabel-indicator", None
        suffix = "-multioutput"
    else:
        suffix = ""
    if y.dtype.kind == "f" and y.size and not _is_integral_float(y):
        return "continuous" + suffix, None
    if y.dtype.kind == "c":
        return "unknown", None
    if suffix:
        if y.size:
            np.unique(y[:, 0])   # scikit-learn looks at the first column: its errors
        return "multiclass" + suffix, None
    labels = np.unique(y.reshape(-1), return_inverse=True)
    return ("multiclass" if labels[0].shape[0] > 2 else "binary"), labels


class LabelEncoding:
    """scikit-learn's ``LabelBinarizer`` as its MLP uses it.

    ``fit(y)`` finds ``classes_`` and the target type. ``transform(y)``
    gives the (n, n_outputs) 0/1 target matrix: one column for two classes
    (1 for ``classes_[1]``), one column per class for more, the indicator
    matrix itself for multilabel y. ``inverse(P)`` turns network outputs back
    into labels (threshold 0.5, or argmax over classes).
    """

    def fit(self, y, y_type=None, labels=None):
        """``y_type``, ``labels``: ``target_type_and_labels(y)`` when the
        caller already has them."""
        y = np.asarray(y)
        if y_type is None:
            y_type, labels = target_type_and_labels(y)
        self.y_type_ = y_type
        if self.y_type_ == "multilabel-indicator":
            self.classes_ = np.arange(y.shape[1])
        else:
            self.classes_ = labels[0] if labels is not None else np.unique(y)
        return self

    def fit_classes(self, classes, y_type):
        self.classes_ = np.unique(np.asarray(classes))
        self.y_type_ = y_type
        return self

    def transform(self, y, dtype, positions=None):
        """``positions``: each label's index in ``classes_``, when the caller
        has them (from ``target_type_and_labels``: every label known)."""
        y = np.asarray(y)
        if self.y_type_ == "multilabel-indicator":
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1] if y.ndim == 2 else 1} label columns, but the "
                    f"classifier was fitted with {len(self.classes_)}."
                )
            return np.ascontiguousarray(y != 0, dtype=dtype)
        if positions is None:
            positions = np.searchsorted(self.classes_, y)
            positions = np.clip(positions, 0, len(self.classes_) - 1)
            unseen = self.classes_[positions] != y
            if np.any(unseen):
                raise ValueError(
                    f"y contains labels not seen when the classes were set: "
                    f"{np.unique(y[unseen]).tolist()}; known classes are "
                    f"{self.classes_.tolist()}."
                )
        if len(self.classes_) <= 2:
            return np.ascontiguousarray((positions == 1).reshape(-1, 1), dtype=dtype)
        Y = np.zeros((y.shape[0], len(self.classes_)), dtype=dtype)
        Y[np.arange(y.shape[0]), positions] = 1
        return Y

    def inverse(self, P):
        if self.y_type_ == "multilabel-indicator":
            return (P > 0.5).astype(int)
        if P.shape[1] == 1:
            return self.classes_[(P[:, 0] > 0.5).astype(np.intp)]
        return self.classes_.take(P.argmax(axis=1))


def accuracy_score(y_true, y_pred, sample_weight=None):
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == 2:
        correct = np.all(y_true == y_pred, axis=1)
    else:
        correct = y_true == y_pred
    return float(np.average(correct, weights=sample_weight))


def r2_score(y_true, y_pred, sample_weight=None):
    """R², uniformly averaged over outputs; constant targets score 1.0 when
    predicted exactly and 0.0 otherwise (scikit-learn's force_finite)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true.reshape(-1, 1)
    if y_pred.ndim == 1:
        y_pred = y_pred.reshape(-1, 1)
    if y_true.shape[0] < 2:
        return float("nan")
    w = np.ones(y_true.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    w = w.reshape(-1, 1)
    numerator = (w * (y_true - y_pred) ** 2).sum(axis=0)
    mean = np.average(y_true, axis=0, weights=w[:, 0])
    denominator = (w * (y_true - mean) ** 2).sum(axis=0)
    nonzero_den = denominator != 0
    nonzero_num = numerator != 0
    scores = np.ones(y_true.shape[1])
    valid = nonzero_den & nonzero_num
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[nonzero_num & ~nonzero_den] = 0.0
    return float(np.mean(scores))
