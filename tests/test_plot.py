"""fastbp.plot.learning_curve, drawn on matplotlib's Agg backend."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import hide_module

from fastbp import MLPClassifier, MLPRegressor
from fastbp.callbacks import History


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning (fastbp, sklearn)
        return est.fit(X, y)


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(150, 3)
    return X, (X[:, 0] + 0.3 * rng.randn(150) > 0).astype(int)


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_training_loss_only(plt):
    from fastbp.plot import learning_curve

    X, y = _data()
    clf = _fit(MLPClassifier((4,), max_iter=9, random_state=0), X, y)
    ax = learning_curve(clf)
    (line,) = ax.get_lines()
    assert line.get_label() == "training loss"
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 10))
    np.testing.assert_array_equal(line.get_ydata(), clf.loss_curve_)
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss"]


def test_early_stopping_curves_on_given_axes(plt):
    from fastbp.plot import learning_curve

    X, y = _data()
    clf = _fit(MLPClassifier((4,), max_iter=12, random_state=0, early_stopping=True,
                             n_iter_no_change=50), X, y)
    _, given = plt.subplots()
    ax = learning_curve(clf, ax=given)
    assert ax is given
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_array_equal(lines["validation loss"].get_ydata(),
                                  clf.validation_loss_curve_)
    best = int(np.argmax(clf.validation_scores_)) + 1
    assert f"best epoch ({best})" in lines
    (score,) = ax.right_ax.get_lines()
    assert score.get_label() == "validation accuracy"
    np.testing.assert_array_equal(score.get_ydata(), clf.validation_scores_)
    assert len(ax.get_legend().get_texts()) == 4


def test_history_from_lbfgs_and_regressor_label(plt):
    from fastbp.plot import learning_curve

    X, y = _data()
    history = History()
    reg = _fit(MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=15, random_state=0,
                            callbacks=history), X, y.astype(float))
    with pytest.raises(ValueError, match="only the 'sgd' and 'adam' solvers record one"):
        learning_curve(reg)
    ax = learning_curve(history)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), history.loss)
    es = _fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=0, early_stopping=True),
              X, y.astype(float))
    assert learning_curve(es).right_ax.get_ylabel() == "validation R²"


def test_unfitted_and_empty_history(plt):
    from fastbp.plot import learning_curve

    with pytest.raises(ValueError, match="is not fitted yet"):
        learning_curve(MLPClassifier())
    with pytest.raises(ValueError, match="recorded no epoch yet"):
        learning_curve(History())


def test_works_on_sklearn_models(plt):
    sk_nn = pytest.importorskip("sklearn.neural_network")
    from fastbp.plot import learning_curve

    X, y = _data()
    clf = _fit(sk_nn.MLPClassifier((4,), max_iter=6, random_state=0, early_stopping=True),
               X, y)
    labels = [ln.get_label() for ln in learning_curve(clf).get_lines()]
    assert labels[0] == "training loss" and "validation loss" not in labels


def test_clear_error_without_matplotlib(monkeypatch):
    import fastbp.plot

    hide_module(monkeypatch, "matplotlib")
    X, y = _data()
    clf = _fit(MLPClassifier((3,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ImportError, match=r"pip install matplotlib \(or pip install "
                       r"'fastbp\[plot\]'\)"):
        fastbp.plot.learning_curve(clf)


def test_import_fastbp_stays_light():
    # the optional dependencies load only when their submodule's functions run
    code = ("import sys, fastbp\n"
            "heavy = [m for m in ('matplotlib', 'dask', 'distributed', 'tqdm', 'sklearn')\n"
            "         if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(fastbp.plot.learning_curve) and 'matplotlib' not in sys.modules\n"
            "assert fastbp.callbacks.ProgressBar and 'tqdm' not in sys.modules\n"
            "assert 'plot' in dir(fastbp)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr


def test_docstring_example(plt):
    import doctest

    import fastbp.plot

    result = doctest.testmod(fastbp.plot)
    assert result.attempted > 0 and result.failed == 0
