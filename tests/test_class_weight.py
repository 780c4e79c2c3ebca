"""class_weight on MLPClassifier and MLP, with scikit-learn's semantics."""

import warnings

import numpy as np
import pytest

import fastbp
from fastbp import MLP, MLPClassifier


def _data(n=150, n_classes=2, seed=0, labels=None):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = np.digitize(X[:, 0] + 0.5 * rng.randn(n),
                    np.quantile(X[:, 0], np.linspace(0, 1, n_classes + 1)[1:-1] + 0.15))
    if labels is not None:
        y = np.asarray(labels)[y]
    return X, y


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _assert_same_model(a, b, rtol=1e-12):
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(ca, cb, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", early_stopping=True),
    dict(solver="lbfgs"),
])
def test_dict_equals_sample_weight(params):
    X, y = _data(n_classes=3)
    base = dict(hidden_layer_sizes=(5,), max_iter=15, random_state=0, **params)
    weighted = _fit(MLPClassifier(class_weight={0: 2.0, 2: 0.5}, **base), X, y)
    sw = np.select([y == 0, y == 2], [2.0, 0.5], 1.0)  # class 1 is not named: weight 1
    reference = _fit(MLPClassifier(**base), X, y, sample_weight=sw)
    _assert_same_model(weighted, reference)
    if params.get("early_stopping"):
        assert weighted.validation_scores_ == reference.validation_scores_


def test_dict_multiplies_sample_weight():
    X, y = _data()
    sw = np.random.RandomState(1).uniform(0.2, 3, size=len(y))
    a = _fit(MLPClassifier((4,), max_iter=10, random_state=0, class_weight={1: 3}), X, y,
             sample_weight=sw)
    b = _fit(MLPClassifier((4,), max_iter=10, random_state=0), X, y,
             sample_weight=sw * np.where(y == 1, 3.0, 1.0))
    _assert_same_model(a, b)


def test_weight_two_equals_duplicating_samples():
    # full-batch L-BFGS: weight 2 on class 0 is the same objective as
    # repeating every class-0 sample
    X, y = _data(n=80)
    dup = np.concatenate([np.arange(len(y)), np.flatnonzero(y == 0)])
    kwargs = dict(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=25, random_state=0)
    weighted = _fit(MLPClassifier(class_weight={0: 2}, **kwargs), X, y)
    repeated = _fit(MLPClassifier(**kwargs), X[dup], y[dup])
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-9)
    _assert_same_model(weighted, repeated, rtol=1e-7)
    # and the inspected objective applies the class weights too
    loss_w = weighted.loss_and_gradients(X, y)[0]
    repeated.class_weight = None
    assert loss_w == pytest.approx(repeated.loss_and_gradients(X[dup], y[dup])[0],
                                   rel=1e-12)


@pytest.mark.parametrize("labels", [None, ["cat", "dog", "eel"]])
@pytest.mark.parametrize("with_sw", [False, True])
def test_balanced_matches_compute_class_weight(labels, with_sw):
    cw = pytest.importorskip("sklearn.utils.class_weight")
    X, y = _data(n=200, n_classes=3, labels=labels)
    sw = np.random.RandomState(2).uniform(0.5, 2, size=len(y)) if with_sw else None
    classes = np.unique(y)
    weights = cw.compute_class_weight("balanced", classes=classes, y=y, sample_weight=sw)
    expected_sw = weights[np.searchsorted(classes, y)] * (1 if sw is None else sw)
    a = _fit(MLPClassifier((4,), max_iter=8, random_state=0, class_weight="balanced"), X, y,
             sample_weight=sw)
    b = _fit(MLPClassifier((4,), max_iter=8, random_state=0), X, y, sample_weight=expected_sw)
    _assert_same_model(a, b)


def test_balanced_changes_the_model_on_imbalanced_data():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 2)
    y = (X[:, 0] > 1.2).astype(int)  # about 12% positives
    plain = _fit(MLPClassifier((8,), max_iter=60, random_state=0), X, y)
    balanced = _fit(MLPClassifier((8,), max_iter=60, random_state=0,
                                  class_weight="balanced"), X, y)
    # balancing moves probability mass to the rare class
    assert balanced.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.1


def test_dict_keys_and_missing_classes_follow_sklearn():
    X, y = _data(n_classes=3)
    # a key that is not a class, while class 2 is unweighted: sklearn's error
    with pytest.raises(ValueError, match=r"The classes, \[2\], are not in class_weight"):
        MLPClassifier((3,), max_iter=2, class_weight={0: 1, 1: 2, 7: 3}).fit(X, y)
    # extra keys are fine when every class is named
    _fit(MLPClassifier((3,), max_iter=2, class_weight={0: 1, 1: 2, 2: 1, 7: 3}), X, y)
    # string labels are keyed by themselves
    Xs, ys = _data(labels=["no", "yes"])
    a = _fit(MLPClassifier((3,), max_iter=4, random_state=0, class_weight={"yes": 4}),
             Xs, ys)
    b = _fit(MLPClassifier((3,), max_iter=4, random_state=0), Xs, ys,
             sample_weight=np.where(ys == "yes", 4.0, 1.0))
    _assert_same_model(a, b)


def test_multilabel_follows_compute_sample_weight():
    csw = pytest.importorskip("sklearn.utils.class_weight").compute_sample_weight
    rng = np.random.RandomState(3)
    X = rng.randn(120, 3)
    # the last label is never on: 'balanced' counts only the classes present
    Y = np.column_stack([X[:, 0] > 0.8, X[:, 1] > 0, X[:, 2] > -0.5, 0 * X[:, 0]]).astype(int)
    for class_weight in ("balanced", [{0: 1, 1: 3}, {1: 0.5}, {0: 2, 1: 1}, {0: 1.5}]):
        a = _fit(MLPClassifier((4,), max_iter=6, random_state=0, class_weight=class_weight),
                 X, Y)
        b = _fit(MLPClassifier((4,), max_iter=6, random_state=0), X, Y,
                 sample_weight=csw(class_weight, Y))
        _assert_same_model(a, b)
    with pytest.raises(ValueError, match="For multilabel y, class_weight must be 'balanced' "
                       "or a list of one dict per label"):
        MLPClassifier((3,), class_weight={0: 1, 1: 2}).fit(X, Y)
    with pytest.raises(ValueError, match="number of elements in class_weight should match "
                       "number of outputs. Got 1 element"):
        MLPClassifier((3,), class_weight=[{1: 2}]).fit(X, Y)


def test_partial_fit():
    X, y = _data()
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for "
                       "partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    a = MLPClassifier((4,), random_state=0, class_weight={0: 3})
    b = MLPClassifier((4,), random_state=0)
    for _ in range(3):
        a.partial_fit(X, y, classes=[0, 1])
        b.partial_fit(X, y, classes=[0, 1], sample_weight=np.where(y == 0, 3.0, 1.0))
    _assert_same_model(a, b)


@pytest.mark.parametrize("bad, match", [
    ("auto", "The 'class_weight' parameter of MLPClassifier must be an instance of 'dict', "
             "a list of dicts"),
    ([1, 2], "The 'class_weight' parameter of MLPClassifier must be"),
    ({0: -1.0}, r"class_weight\[0\] must be a finite number >= 0, got -1.0"),
    ({1: np.nan}, r"class_weight\[1\] must be a finite number >= 0"),
    ({0: 0, 1: 0}, "gives every sample a weight of 0"),
    ([{0: 1}], "class_weight is a list, which is only valid for multilabel y"),
])
def test_invalid_class_weight(bad, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        MLPClassifier((3,), class_weight=bad).fit(X, y)


def test_mlp_class_weight_only_for_classification():
    X, y = _data()
    a = _fit(MLP((4,), max_iter=5, random_state=0, class_weight={1: 2}), X, y)
    b = _fit(MLP((4,), max_iter=5, random_state=0), X, y,
             sample_weight=np.where(y == 1, 2.0, 1.0))
    _assert_same_model(a, b)
    with pytest.raises(ValueError, match="class_weight=.* is only used for classification, "
                       "but this MLP has loss='squared_error'"):
        MLP((3,), loss="squared_error", class_weight="balanced").fit(X, y.astype(float))
    assert "class_weight" not in fastbp.MLPRegressor().get_params()


@pytest.mark.parametrize("class_weight", [{0: 2.5, 1: 1}, {"a": 2.0}, "balanced",
                                          [{0: 1, 1: 2}, {1: 3}]])
def test_save_load_keeps_class_weight(tmp_path, class_weight):
    if isinstance(class_weight, list):
        X = np.random.RandomState(0).randn(60, 3)
        y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    elif "a" in class_weight:
        X, y = _data(n=60, labels=["a", "b"])
    else:
        X, y = _data(n=60)
    clf = _fit(MLPClassifier((3,), max_iter=3, random_state=0, class_weight=class_weight),
               X, y)
    clf.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    assert loaded.class_weight == class_weight
    assert type(loaded.class_weight) is type(class_weight)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLP])
def test_sklearn_class_weight_checks(Estimator):
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    checks.check_class_weight_classifiers(Estimator.__name__, Estimator())
    checks.check_parameters_default_constructible(Estimator.__name__, Estimator())
