"""Same random_state, same answers: fastbp against scikit-learn 1.9, epoch by epoch."""

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_moons, quiet_warnings

import fastbp
from fastbp import _compat

sknn = pytest.importorskip("sklearn.neural_network")
sklearn = pytest.importorskip("sklearn")

PAIRS = [(fastbp.MLPClassifier, sknn.MLPClassifier), (fastbp.MLPRegressor, sknn.MLPRegressor)]
ATOL = 1e-11  # measured agreement is ~1e-15; leave room for BLAS kernel differences


def fit_both(pair, X, y, sample_weight=None, **params):
    ours_cls, theirs_cls = pair
    out = []
    for cls in (ours_cls, theirs_cls):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            est = cls(**params).fit(X, y, sample_weight=sample_weight)
        out.append((est, [str(x.message) for x in w]))
    return out


def assert_same_model(a, b, atol=ATOL):
    rtol = 1e-12 if a.coefs_[0].dtype == np.float64 else 1e-5
    assert len(a.coefs_) == len(b.coefs_)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_allclose(a.loss_, b.loss_, rtol=rtol)
    if hasattr(b, "loss_curve_"):
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
        if b.best_loss_ is None:
            assert a.best_loss_ is None
        else:
            assert a.best_loss_ == pytest.approx(b.best_loss_, rel=rtol)
    if getattr(b, "validation_scores_", None) is not None:
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=rtol)
        assert a.best_validation_score_ == pytest.approx(b.best_validation_score_)
    if hasattr(b, "classes_"):
        np.testing.assert_array_equal(a.classes_, b.classes_)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def test_initial_weights_are_sklearns():
    X, y = make_moons(100)
    # a step size of 1e-300 leaves every weight at its initial value
    (a, _), (b, _) = fit_both(PAIRS[0], X, y, hidden_layer_sizes=(7, 5), solver="sgd",
                              learning_rate_init=1e-300, momentum=0.0, max_iter=1,
                              random_state=42)
    for x, y_ in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y_)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_weights_follow_sklearn_epoch_by_epoch(digits, solver, shuffle):
    X, y = digits
    for epochs in (1, 2, 3, 5):
        (a, wa), (b, wb) = fit_both(PAIRS[0], X, y, hidden_layer_sizes=(20,), solver=solver,
                                    shuffle=shuffle, batch_size=64, max_iter=epochs,
                                    learning_rate_init=0.01, random_state=0)
        assert_same_model(a, b)
        assert wa == wb


@pytest.mark.parametrize("task", ["binary", "multilabel", "regression", "multi_regression",
                                  "poisson"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_tasks_and_activations_match(task, activation):
    X, y = make_moons(150, seed=1)
    rng = np.random.RandomState(0)
    pair, params = PAIRS[0], {}
    if task == "multilabel":
        y = np.c_[y, (X[:, 0] > 0.5).astype(int), rng.randint(0, 2, len(y))]
    elif task == "regression":
        pair, y = PAIRS[1], X[:, 0] ** 2 + X[:, 1]
    elif task == "multi_regression":
        pair, y = PAIRS[1], np.c_[X[:, 0] ** 2, X[:, 1]]
    elif task == "poisson":
        pair, y, params = PAIRS[1], rng.poisson(np.exp(X[:, 0])), {"loss": "poisson"}
    (a, _), (b, _) = fit_both(pair, X, y, hidden_layer_sizes=(6, 4), activation=activation,
                              solver="sgd", max_iter=6, random_state=3, batch_size=25,
                              learning_rate_init=0.005, **params)
    assert_same_model(a, b)
    np.testing.assert_array_equal(a.predict(X), b.predict(X)) if pair is PAIRS[0] else \
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("params", [
    {"solver": "sgd", "nesterovs_momentum": False},
    {"solver": "sgd", "momentum": 0.0},
    {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3},
    {"solver": "sgd", "learning_rate": "adaptive", "tol": 0.05, "n_iter_no_change": 2},
    {"solver": "adam", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "alpha": 0.3},
    {"solver": "adam", "tol": 1e-2, "n_iter_no_change": 2, "max_iter": 60},
    {"solver": "sgd", "early_stopping": True, "n_iter_no_change": 3, "max_iter": 40},
    {"solver": "adam", "early_stopping": True, "validation_fraction": 0.3, "max_iter": 30},
    {"solver": "adam", "batch_size": 7},
    {"solver": "sgd", "batch_size": 1000},
])
def test_schedules_stopping_and_batching_match(digits, params):
    X, y = digits
    kw = dict(hidden_layer_sizes=(15,), max_iter=12, random_state=5, learning_rate_init=0.02)
    kw.update(params)
    (a, wa), (b, wb) = fit_both(PAIRS[0], X, y, **kw)
    assert_same_model(a, b)
    assert wa == wb


def test_early_stopping_binary_is_stratified_like_sklearn():
    X, y = make_moons(203, seed=4)
    (a, _), (b, _) = fit_both(PAIRS[0], X, y, hidden_layer_sizes=(8,), early_stopping=True,
                              max_iter=15, random_state=2, validation_fraction=0.2)
    assert_same_model(a, b)


def test_sample_weight_fit_matches(digits):
    X, y = digits
    sw = np.random.RandomState(0).uniform(0.1, 3, len(X))
    (a, _), (b, _) = fit_both(PAIRS[0], X, y, sample_weight=sw, hidden_layer_sizes=(12,),
                              solver="adam", max_iter=4, random_state=1)
    assert_same_model(a, b)
    Xr, yr = make_moons(120)
    swr = np.random.RandomState(1).uniform(0.1, 3, len(Xr))
    (a, _), (b, _) = fit_both(PAIRS[1], Xr, yr.astype(float), sample_weight=swr,
                              hidden_layer_sizes=(5,), solver="sgd", max_iter=4, random_state=1)
    assert_same_model(a, b)


def test_partial_fit_and_warm_start_sequences_match(digits):
    X, y = digits
    models = []
    for cls in (fastbp.MLPClassifier, sknn.MLPClassifier):
        est = cls(hidden_layer_sizes=(10,), solver="sgd", random_state=0, batch_size=50)
        est.partial_fit(X[:200], y[:200], classes=np.unique(y))
        est.partial_fit(X[200:], y[200:])
        est.partial_fit(X, y)
        models.append(est)
    assert_same_model(*models)
    models = []
    for cls in (fastbp.MLPClassifier, sknn.MLPClassifier):
        est = cls(hidden_layer_sizes=(10,), warm_start=True, max_iter=2, random_state=0)
        with quiet_warnings():
            est.fit(X, y)
            est.fit(X, y)
        models.append(est)
    assert_same_model(*models)
    assert len(models[0].loss_curve_) == 4


def test_lbfgs_reaches_the_same_loss(digits):
    X, y = digits
    (a, wa), (b, wb) = fit_both(PAIRS[0], X, y, hidden_layer_sizes=(15,), solver="lbfgs",
                                max_iter=40, random_state=0)
    assert a.n_iter_ == b.n_iter_
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-6)
    assert wa == wb  # the same ConvergenceWarning text
    Xr, yr = make_moons(200)
    (a, _), (b, _) = fit_both(PAIRS[1], Xr, np.c_[yr, Xr[:, 0]], hidden_layer_sizes=(10,),
                              solver="lbfgs", max_iter=30, random_state=0)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-6)


def test_float32_trains_in_float32_like_sklearn(digits):
    X, y = digits
    X = X.astype(np.float32)
    (a, _), (b, _) = fit_both(PAIRS[0], X, y, hidden_layer_sizes=(20,), max_iter=3,
                              random_state=0)
    for c in a.coefs_ + a.intercepts_:
        assert c.dtype == np.float32
    assert a.predict_proba(X).dtype == np.float32
    assert_same_model(a, b, atol=2e-5)


def test_sparse_input_matches_sklearn_and_dense(digits):
    X, y = digits
    Xs = sp.csr_matrix(X)
    (a, _), (b, _) = fit_both(PAIRS[0], Xs, y, hidden_layer_sizes=(10,), max_iter=3,
                              random_state=0)
    assert_same_model(a, b, atol=1e-10)
    dense = fastbp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    with quiet_warnings():
        dense.fit(X, y)
    assert_same_model(a, dense, atol=1e-10)
    np.testing.assert_allclose(a.predict_proba(sp.csc_matrix(X)), dense.predict_proba(X),
                               rtol=1e-10)


def test_string_labels_and_predict_proba_match():
    X, y = make_moons(120, seed=3)
    labels = np.array(["cat", "dog"])[y]
    (a, _), (b, _) = fit_both(PAIRS[0], X, labels, hidden_layer_sizes=(5,), max_iter=5,
                              random_state=0)
    assert_same_model(a, b)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(a.predict_log_proba(X), b.predict_log_proba(X), rtol=1e-12)
    assert a.score(X, labels) == b.score(X, labels)


# ---------------------------------------------------------------------------
# the public surface: parameters, defaults, attributes
# ---------------------------------------------------------------------------

# fastbp's own parameters whose default is not None, at the value that turns
# them off (or that scikit-learn's losses never read): the defaults keep
# scikit-learn's behaviour (test_fastbp_options_at_their_defaults_are_sklearns)
OFF_VALUES = {"dropout": 0.0, "weight_decay": 0.0, "warmup": 0.0, "label_smoothing": 0.0,
              "huber_delta": 1.0, "quantile": 0.5}


@pytest.mark.parametrize("pair", PAIRS)
def test_constructor_parameters_and_defaults_are_sklearns(pair):
    ours, theirs = (inspect.signature(c.__init__).parameters for c in pair)
    for name, p in theirs.items():
        assert name in ours, f"missing parameter {name}"
        assert ours[name].default == p.default, name
        assert ours[name].kind == p.kind, name
    # scikit-learn's parameters first, in scikit-learn's order; fastbp's after
    assert list(ours)[:len(theirs)] == list(theirs)
    # fastbp's own additions must keep the old behaviour by default
    extra = set(ours) - set(theirs)
    assert all(ours[n].default is None or (n in OFF_VALUES and ours[n].default == OFF_VALUES[n]
                                           and type(ours[n].default) is float)
               for n in extra), extra


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("pair", PAIRS)
def test_fastbp_options_at_their_defaults_are_sklearns(pair, solver, digits):
    X, y = digits
    ours_cls, theirs_cls = pair
    if ours_cls is fastbp.MLPRegressor:
        y = y / 10.0
    params = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=4, random_state=0,
                  early_stopping=True)
    extra = set(inspect.signature(ours_cls.__init__).parameters) - set(
        inspect.signature(theirs_cls.__init__).parameters) - {"self"}
    given = {n: OFF_VALUES.get(n) for n in extra}
    with quiet_warnings():
        ours = ours_cls(**params, **given).fit(X, y)
        theirs = theirs_cls(**params).fit(X, y)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("pair", PAIRS)
def test_fitted_attributes_are_sklearns(pair):
    X, y = make_moons(80)
    (a, _), (b, _) = fit_both(pair, X, y, hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    public = {k for k in vars(b) if k.endswith("_") and not k.startswith("_")}
    assert public <= set(vars(a)), public - set(vars(a))


# ---------------------------------------------------------------------------
# the re-implemented scikit-learn utilities
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [10, 57, 400])
@pytest.mark.parametrize("test_size", [0.1, 0.33])
def test_train_test_split_draws_are_sklearns(n, test_size):
    from sklearn.model_selection import train_test_split

    rng = np.random.RandomState(n)
    y2 = rng.randint(0, 2, n).reshape(-1, 1).astype(bool)
    y2[:2, 0] = [False, True]
    y2[2:4, 0] = [False, True]
    for stratify in (None, y2):
        try:
            theirs = train_test_split(np.arange(n), test_size=test_size,
                                      random_state=np.random.RandomState(7), stratify=stratify)
        except ValueError as exc:  # e.g. fewer test samples than classes
            with pytest.raises(ValueError) as ours_exc:
                _compat.train_test_split_indices(n, test_size, np.random.RandomState(7),
                                                 stratify)
            assert str(ours_exc.value) == str(exc)
            continue
        ours = _compat.train_test_split_indices(n, test_size, np.random.RandomState(7), stratify)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])


def test_shuffle_and_random_state_are_sklearns():
    from sklearn.utils import check_random_state, shuffle

    for dtype in (np.intp, np.int32):  # typed swaps, and numpy's shuffle + indexing
        idx = np.arange(50, dtype=dtype) * 3
        b = shuffle(idx, random_state=np.random.RandomState(3))
        a = _compat.shuffle_indices(idx, np.random.RandomState(3))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(idx, b)  # the input is left alone
        assert _compat.shuffle_indices(idx, np.random.RandomState(3), inplace=True) is idx
        np.testing.assert_array_equal(idx, b)
    for seed in (None, 5, np.random.RandomState(1)):
        assert type(_compat.check_random_state(seed)) is type(check_random_state(seed))
    with pytest.raises(ValueError, match="cannot be used to seed"):
        _compat.check_random_state("x")


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31, 2**32 - 1, np.int64(7), np.uint32(9),
                                  np.int8(3)])
def test_seeded_random_state_is_numpys(seed):
    # the fast construction leaves the same state, gauss cache included, and
    # draws the same values as np.random.RandomState(seed)
    ours, theirs = _compat.check_random_state(seed), np.random.RandomState(seed)
    assert type(ours) is np.random.RandomState
    for a, b in zip(ours.get_state(), theirs.get_state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.normal(size=7), theirs.normal(size=7))
    np.testing.assert_array_equal(ours.uniform(-1, 1, size=(40, 3)),
                                  theirs.uniform(-1, 1, size=(40, 3)))
    np.testing.assert_array_equal(ours.permutation(1000), theirs.permutation(1000))
    # each call is a new generator: drawing from one leaves another alone
    again = _compat.check_random_state(seed)
    assert again is not ours
    np.testing.assert_array_equal(again.uniform(size=3), np.random.RandomState(seed).uniform(size=3))


@pytest.mark.parametrize("seed", [-1, 2**32, np.int64(-5)])
def test_seeded_random_state_rejects_what_numpy_rejects(seed):
    with pytest.raises(ValueError) as theirs:
        np.random.RandomState(seed)
    with pytest.raises(ValueError) as ours:
        _compat.check_random_state(seed)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("y", [
    [0, 1, 1], [1.0, 2.0], ["a", "b", "c"], [0.5, 1.5], [[0, 1], [1, 1]],
    [[0.5, 1.0], [1, 2]], [[1, 2], [3, 4]], [3, 3, 3],
])
def test_type_of_target_is_sklearns(y):
    from sklearn.utils.multiclass import type_of_target

    assert _compat.type_of_target(np.asarray(y)) == type_of_target(np.asarray(y))


def test_scores_are_sklearns():
    from sklearn.metrics import accuracy_score, r2_score

    rng = np.random.RandomState(0)
    a, b, w = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)), rng.uniform(size=30)
    assert _compat.r2_score(a, b, w) == pytest.approx(r2_score(a, b, sample_weight=w))
    assert _compat.r2_score(a[:, 0], b[:, 0]) == pytest.approx(r2_score(a[:, 0], b[:, 0]))
    const = np.ones(5)
    assert _compat.r2_score(const, const) == r2_score(const, const)
    assert _compat.r2_score(const, const + 1) == r2_score(const, const + 1)
    la, lb = rng.randint(0, 3, 30), rng.randint(0, 3, 30)
    assert _compat.accuracy_score(la, lb, w) == pytest.approx(accuracy_score(la, lb,
                                                                             sample_weight=w))
