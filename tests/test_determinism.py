"""The same ``random_state`` gives bit-identical models: twice in one
process, in separate processes, and with BLAS (and so fastbp) limited to 1,
2 or 3 threads.

Each case records a digest of the flat parameter buffer, the exact loss
curve (``float.hex``) and ``n_iter_``; any difference in any bit fails.
"""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import quiet_warnings
from test_interrupt import child_environment


def _data():
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 12))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    # 400 features: products whose OpenBLAS kernel depends on their size
    Xw = np.c_[X, rng.normal(size=(300, 388))]
    return {"X": X, "X32": X.astype(np.float32),
            "Xs": sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0)), "y": y,
            "y_reg": np.c_[X[:, 0] * X[:, 1], np.tanh(X[:, 2])],
            "Xw": Xw, "Xw32": Xw.astype(np.float32),
            "Xws": sp.csr_matrix(np.where(np.abs(Xw) > 1.6, Xw, 0.0))}


CASES = {
    "sgd-dense": ("MLPClassifier", dict(hidden_layer_sizes=(64, 64), solver="sgd",
                                         max_iter=8, batch_size=50), "X", "y"),
    "adam-sparse": ("MLPClassifier", dict(hidden_layer_sizes=(32,), solver="adam",
                                           max_iter=8), "Xs", "y"),
    "lbfgs-dense": ("MLPRegressor", dict(hidden_layer_sizes=(48, 48), solver="lbfgs",
                                          max_iter=15), "X", "y_reg"),
    "adam-float32-early-stopping": ("MLPRegressor", dict(hidden_layer_sizes=(64,),
                                                          early_stopping=True, max_iter=10),
                                    "X32", "y_reg"),
    "sgd-wide-blas": ("MLPRegressor", dict(hidden_layer_sizes=(256, 256), solver="sgd",
                                            max_iter=3, batch_size=200,
                                            learning_rate_init=1e-3), "X", "y_reg"),
    # half a batch of 100 through 128-wide layers takes OpenBLAS's small-matrix
    # kernel on SkylakeX, a whole batch does not
    "adam-kernel-sizes-dense": ("MLPClassifier", dict(hidden_layer_sizes=(128, 128),
                                                      batch_size=100, max_iter=2), "Xw", "y"),
    "sgd-kernel-sizes-csr": ("MLPClassifier", dict(hidden_layer_sizes=(128, 128), solver="sgd",
                                                   batch_size=100, max_iter=2), "Xws", "y"),
    "adam-kernel-sizes-float32": ("MLPRegressor", dict(hidden_layer_sizes=(128, 128),
                                                       batch_size=100, max_iter=2),
                                  "Xw32", "y_reg"),
    "lbfgs-kernel-sizes": ("MLPClassifier", dict(hidden_layer_sizes=(128, 128),
                                                 solver="lbfgs", max_iter=10), "Xw", "y"),
    # the data-parallel mode (activations outweigh the parameters)
    "adam-data-parallel": ("MLPClassifier", dict(hidden_layer_sizes=(100,), batch_size=200,
                                                 max_iter=3), "Xw", "y"),
}


def fingerprint(name, data=None):
    """(sha256 of the parameters, loss curve as hex floats, n_iter_) of one fit."""
    import fastbp

    data = _data() if data is None else data
    estimator, params, X_key, y_key = CASES[name]
    model = getattr(fastbp, estimator)(random_state=42, **params)
    with quiet_warnings():
        model.fit(data[X_key], data[y_key])
    curve = [float(v).hex() for v in getattr(model, "loss_curve_", None) or []]
    return [hashlib.sha256(model._net.params.tobytes()).hexdigest(), curve,
            model.n_iter_, float(model.loss_).hex()]


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import test_determinism as t
data = t._data()
print("RESULT " + json.dumps({name: t.fingerprint(name, data) for name in t.CASES}))
"""


def _in_subprocess(extra_env=None):
    import os

    env = child_environment()
    env.update(extra_env or {})
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", CHILD, here], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, out.stdout + out.stderr
    return json.loads(line[0][len("RESULT "):])


@pytest.fixture(scope="module")
def reference():
    data = _data()
    return {name: fingerprint(name, data) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_two_fits_in_one_process_are_identical(name, reference):
    assert fingerprint(name) == reference[name]


def test_separate_processes_give_identical_models(reference):
    # this process and a fresh one (new interpreter, new BLAS, new allocations)
    assert _in_subprocess() == reference


# Every case: fastbp splits each batch into blocks fixed by the shapes (so
# every BLAS call has the same shape whatever the thread count) and holds
# scipy's OpenBLAS at one thread around its kernels and around L-BFGS-B.


@pytest.mark.parametrize("name", list(CASES))
def test_weights_do_not_depend_on_the_thread_count(name, reference):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    default = {i["num_threads"] for i in threadpoolctl.threadpool_info()
               if i["user_api"] == "blas"}
    results = {}
    for n in (1, 2, 3):
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            results[n] = [fingerprint(name), fingerprint(name)]
        assert results[n][0] == results[n][1]
        if default == {n}:
            assert results[n][0] == reference[name]
    assert results[1][0] == results[2][0] == results[3][0]


def test_random_state_instances_and_ints_agree():
    import fastbp

    X, y = _data()["X"], _data()["y"]
    with quiet_warnings():
        a = fastbp.MLPClassifier((8,), max_iter=5, random_state=7).fit(X, y)
        b = fastbp.MLPClassifier((8,), max_iter=5,
                                 random_state=np.random.RandomState(7)).fit(X, y)
        c = fastbp.MLPClassifier((8,), max_iter=5, random_state=8).fit(X, y)
    np.testing.assert_array_equal(a._net.params, b._net.params)
    assert not np.array_equal(a._net.params, c._net.params)  # the seed matters
