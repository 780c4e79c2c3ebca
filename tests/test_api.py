"""The public surface: parameters, sklearn interoperability, attributes, dtypes."""

import pickle
import warnings

import numpy as np
import pytest
from conftest import make_moons, quiet_warnings

import fastbp
from fastbp import _engine, _validation


def quiet_fit(est, *args, **kwargs):
    with quiet_warnings():
        return est.fit(*args, **kwargs)


def test_get_set_params_and_repr():
    est = fastbp.MLPClassifier(hidden_layer_sizes=(5,), alpha=0.1)
    params = est.get_params()
    assert params["hidden_layer_sizes"] == (5,) and params["alpha"] == 0.1
    # scikit-learn's 23 parameters plus fastbp's class_weight, callbacks and its six
    # training options (dropout, weight_decay, warmup, max_grad_norm, label_smoothing,
    # scoring)
    assert params["solver"] == "adam" and len(params) == 31
    assert params["class_weight"] is None and params["callbacks"] is None
    assert est.set_params(alpha=0.5) is est and est.alpha == 0.5
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        est.set_params(nope=1)
    assert repr(est) == "MLPClassifier(alpha=0.5, hidden_layer_sizes=(5,))"
    assert repr(fastbp.MLPRegressor()) == "MLPRegressor()"
    assert "loss" in fastbp.MLPRegressor().get_params()
    assert "loss" not in fastbp.MLPClassifier().get_params()


def test_every_constructor_parameter_is_documented():
    # the shared parameters are documented once, in MLPClassifier's
    # docstring; MLPRegressor and MLP describe their loss in their own
    import re

    section = fastbp.MLPClassifier.__doc__.split("Parameters\n    ----------\n")[1]
    section = section.split("\n    Attributes\n")[0]
    documented = {name for line in re.findall(r"^    (\w+(?:, \w+)*) :", section, re.M)
                  for name in line.split(", ")}
    for cls in (fastbp.MLPClassifier, fastbp.MLPRegressor, fastbp.MLP):
        for name in cls().get_params():
            if name == "loss":
                assert "``loss=" in cls.__doc__, cls.__name__
            else:
                assert name in documented, (cls.__name__, name)


def test_one_engine_call_per_epoch(monkeypatch):
    calls = []
    real = _engine.train_epoch

    def counting(*args):
        calls.append(args[9])  # batch size
        return real(*args)

    monkeypatch.setattr(_engine, "train_epoch", counting)
    X, y = make_moons(500)
    quiet_fit(fastbp.MLPClassifier((8,), batch_size=20, max_iter=3, random_state=0), X, y)
    assert calls == [20, 20, 20]  # 3 epochs of 25 mini-batches: 3 calls


def test_sklearn_clone_pipeline_and_grid_search():
    pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier, is_regressor
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_moons(200)
    est = fastbp.MLPClassifier(hidden_layer_sizes=(6,), max_iter=50, random_state=0)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert is_classifier(est) and is_regressor(fastbp.MLPRegressor())
    assert is_classifier(fastbp.MLP()) and is_regressor(fastbp.MLP(loss="poisson"))
    # swapping the import in an existing Pipeline + GridSearchCV gives sklearn's results
    from sklearn.neural_network import MLPClassifier

    results = []
    for cls in (fastbp.MLPClassifier, MLPClassifier):
        pipe = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(6,), solver="lbfgs",
                                                   max_iter=50, random_state=0))
        grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3)
        results.append(quiet_fit(grid, X, y).cv_results_)
    assert results[0]["mean_test_score"].min() > 0.8
    np.testing.assert_allclose(results[0]["mean_test_score"], results[1]["mean_test_score"])
    assert list(results[0]["param_mlpclassifier__alpha"]) == [1e-4, 1e-1]


def test_sklearn_warning_filters_and_exceptions_apply():
    sk_exc = pytest.importorskip("sklearn.exceptions")
    X, y = make_moons(100)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=sk_exc.ConvergenceWarning)
        fastbp.MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    assert not [x for x in w if "Maximum iterations" in str(x.message)]
    with pytest.warns(fastbp.ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        fastbp.MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    for exc in (sk_exc.NotFittedError, fastbp.NotFittedError, ValueError, AttributeError):
        with pytest.raises(exc, match="is not fitted yet"):
            fastbp.MLPRegressor().predict(X)


def test_pickle_round_trip_keeps_training_identically():
    X, y = make_moons(300)
    a = fastbp.MLPClassifier((6,), solver="sgd", random_state=0, max_iter=3)
    quiet_fit(a, X, y)
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    # the restored coefs_ are views of the restored buffer
    assert np.shares_memory(b.coefs_[0], b._net.params)


def test_assigning_coefs_updates_the_model():
    X, y = make_moons(100)
    est = quiet_fit(fastbp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0), X, y.astype(float))
    est.coefs_ = [np.zeros((2, 3)), np.zeros((3, 1))]
    est.intercepts_[1] = np.array([4.5])
    np.testing.assert_array_equal(est.predict(X), 4.5)
    est.coefs_[0][...] = 1.0  # in place, through the view
    assert np.all(est._net.params[:6] == 1.0)
    est.coefs_ = [np.zeros((3, 3)), np.zeros((3, 1))]
    with pytest.raises(ValueError, match=r"coefs_\[0\] has shape \(3, 3\), expected \(2, 3\)"):
        est.predict(X)


def test_mlp_class_tasks_and_method_availability():
    X, y = make_moons(200)
    clf = quiet_fit(fastbp.MLP((8,), max_iter=50, random_state=0), X, y)
    assert clf.out_activation_ == "logistic" and hasattr(clf, "predict_proba")
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)
    assert quiet_fit(fastbp.MLP((8,), max_iter=5), X, y3).out_activation_ == "softmax"
    reg = quiet_fit(fastbp.MLP((8,), loss="squared_error", max_iter=5), X, X[:, 0])
    assert reg.out_activation_ == "identity" and not hasattr(reg, "predict_proba")
    pois = quiet_fit(fastbp.MLP((8,), loss="poisson", max_iter=5), X, np.abs(X[:, 0]))
    assert pois.out_activation_ == "exp" and np.all(pois.predict(X) > 0)
    assert not hasattr(fastbp.MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(fastbp.MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(fastbp.MLPRegressor(solver="sgd"), "partial_fit")
    with pytest.raises(_validation.InvalidParameterError, match="'loss' parameter of MLP"):
        fastbp.MLP(loss="hinge").fit(X, y)


def test_leaky_relu_trains():
    X, y = make_moons(400)
    est = quiet_fit(fastbp.MLPClassifier((16,), activation="leaky_relu", solver="lbfgs",
                                         random_state=0), X, y)
    assert est.score(X, y) > 0.95
    Z = np.array([[-2.0, 0.0, 3.0]])
    _engine.apply_activation(Z, "leaky_relu")
    np.testing.assert_array_equal(Z, [[-0.02, 0.0, 3.0]])


def test_float32_end_to_end_and_no_copy_path():
    X, y = make_moons(200)
    X32 = X.astype(np.float32)
    est = quiet_fit(fastbp.MLPClassifier((8,), max_iter=5, random_state=0), X32, y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est._net.params.dtype == np.float32
    assert est.predict_proba(X32).dtype == np.float32
    assert est.predict_proba(X).dtype == np.float32  # float64 input, float32 model
    loss, cg, ig = est.loss_and_gradients(X32, y)
    assert cg[0].dtype == np.float32
    checked, _ = _validation.check_X(X32, dtype=np.float32, estimator_name="t")
    assert checked is X32  # C-contiguous input of the model dtype is not copied
    checked, _ = _validation.check_X(np.asfortranarray(X32), dtype=np.float32,
                                     estimator_name="t")
    assert checked.flags.c_contiguous


def test_warm_start_with_changed_architecture_is_refused():
    X, y = make_moons(100)
    est = quiet_fit(fastbp.MLPClassifier((4,), warm_start=True, max_iter=2), X, y)
    est.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match=r"built with layer sizes \[2, 4, 1\].*\[2, 5, 1\]"):
        est.fit(X, y)
    assert est.coefs_[0].shape == (2, 4)  # the failed call changed nothing


def test_failed_fit_leaves_previous_model_untouched():
    X, y = make_moons(200)
    est = quiet_fit(fastbp.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                                        activation="identity"), X, y.astype(float))
    before = [c.copy() for c in est.coefs_]
    curve = list(est.loss_curve_)
    est.set_params(learning_rate_init=1e3, solver="sgd", warm_start=True, max_iter=20)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, y.astype(float))
    for a, b in zip(before, est.coefs_):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == curve
    fresh = fastbp.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e3,
                                activation="identity")
    with pytest.raises(ValueError, match="non-finite"):
        fresh.fit(X, y.astype(float))
    assert not hasattr(fresh, "coefs_")


def test_save_and_load_round_trip(tmp_path):
    X, y = make_moons(150)
    labels = np.array(["no", "yes"])[y]
    est = quiet_fit(fastbp.MLPClassifier((5,), max_iter=4, random_state=0), X, labels)
    est.save(tmp_path / "m.fbp")
    back = fastbp.load(tmp_path / "m.fbp")
    assert type(back) is fastbp.MLPClassifier and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.loss_curve_ == est.loss_curve_ and back.n_iter_ == est.n_iter_
