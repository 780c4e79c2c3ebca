"""fastbp's estimators are scikit-learn BaseEstimators once scikit-learn is
imported (whichever is imported first), without fastbp importing it: HTML
repr, metadata routing, scikit-learn's checks without warnings; and nothing
of this without scikit-learn."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastbp
from _subprocess_env import package_env  # noqa: E402

pytest.importorskip("sklearn")


def _run(code):
    env = package_env()
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("first", ["fastbp", "sklearn", "sklearn.pipeline"])
def test_base_estimator_whichever_is_imported_first(first):
    result = _run(f"""
        import sys
        import {first}
        import fastbp, sklearn.base
        assert "sklearn" in sys.modules
        est = fastbp.MLPClassifier()
        print(isinstance(est, sklearn.base.BaseEstimator),
              all(isinstance(c(), sklearn.base.BaseEstimator)
                  for c in (fastbp.MLP, fastbp.MLPRegressor)),
              hasattr(est, "set_fit_request"), hasattr(est, "set_score_request"))
    """)
    assert result == ["True", "True", "True", "True"]


def test_import_fastbp_imports_neither_sklearn_nor_scipy_optimize():
    result = _run("""
        import sys
        import fastbp
        m = fastbp.MLPClassifier((3,), max_iter=5).fit([[0.0], [1.0], [0.5], [0.2]], [0, 1, 1, 0])
        m.predict([[0.3]])
        fastbp.MLPClassifier((3,), solver="lbfgs", max_iter=5)
        print("sklearn" in sys.modules, "scipy.optimize" in sys.modules)
    """)
    assert result == ["False", "False"]


def test_without_sklearn_nothing_changes():
    # scikit-learn made unimportable: the estimators work and are plain classes
    result = _run("""
        import sys
        sys.modules["sklearn"] = None
        import fastbp
        est = fastbp.MLPClassifier((3,), max_iter=20, random_state=0)
        est.fit([[0.0], [1.0], [0.5], [0.2]], [0, 1, 1, 0])
        bases = [c.__name__ for c in type(est).__mro__]
        print("BaseEstimator" in bases, hasattr(est, "set_fit_request"), repr(est))
    """)
    assert result == ["False", "False", "MLPClassifier(hidden_layer_sizes=(3,),",
                      "max_iter=20,", "random_state=0)"]


def test_html_repr_and_text_repr():
    est = fastbp.MLPClassifier((7,), alpha=0.1)
    html = est._repr_html_()
    assert "MLPClassifier" in html and "hidden_layer_sizes" in html
    assert repr(est) == "MLPClassifier(alpha=0.1, hidden_layer_sizes=(7,))"


def _weighted_problem():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    sw = rng.uniform(0.1, 3.0, size=120)
    return X, y, sw


def test_metadata_routing_reaches_fit_through_pipeline_and_searches():
    import sklearn
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, sw = _weighted_problem()
    kw = dict(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", fastbp.ConvergenceWarning)
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        pipe = make_pipeline(scaler, fastbp.MLPClassifier(**kw).set_fit_request(
            sample_weight=True))
        pipe.fit(X, y, sample_weight=sw)
        # the weights reached the MLP: the same as fitting it directly with them
        direct = fastbp.MLPClassifier(**kw).fit(StandardScaler().fit_transform(X), y,
                                                sample_weight=sw)
        np.testing.assert_array_equal(pipe[-1].coefs_[0], direct.coefs_[0])
        unweighted = fastbp.MLPClassifier(**kw).fit(StandardScaler().fit_transform(X), y)
        assert not np.array_equal(pipe[-1].coefs_[0], unweighted.coefs_[0])

        cv = KFold(3)
        est = fastbp.MLPClassifier(**kw).set_fit_request(sample_weight=True) \
            .set_score_request(sample_weight=False)
        routed = cross_val_score(est, X, y, cv=cv, params={"sample_weight": sw})
        plain = cross_val_score(fastbp.MLPClassifier(**kw), X, y, cv=cv)
        assert not np.array_equal(routed, plain)
        by_hand = [fastbp.MLPClassifier(**kw).fit(X[tr], y[tr], sample_weight=sw[tr])
                   .score(X[te], y[te]) for tr, te in cv.split(X)]
        np.testing.assert_allclose(routed, by_hand)

        search = GridSearchCV(fastbp.MLPClassifier(**kw).set_fit_request(sample_weight=True)
                              .set_score_request(sample_weight=True),
                              {"alpha": [1e-4, 1.0]}, cv=cv)
        search.fit(X, y, sample_weight=sw)
        assert search.best_params_["alpha"] in (1e-4, 1.0)


def test_routing_without_a_request_raises_as_scikit_learn_does():
    import sklearn
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.model_selection import cross_val_score

    X, y, sw = _weighted_problem()
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            cross_val_score(fastbp.MLPClassifier((3,), max_iter=5), X, y, cv=3,
                            params={"sample_weight": sw})


def test_estimator_checks_emit_no_base_estimator_warning():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=fastbp.ConvergenceWarning)
        check_estimator(fastbp.MLPRegressor(max_iter=20, random_state=0))
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "BaseEstimator" in m], messages
