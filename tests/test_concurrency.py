"""Threads: the engine releases the GIL, one fitted model serves many threads,
and models trained side by side do not interfere."""

import os
import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

from fastbp import MLPClassifier, MLPRegressor, _engine

RNG = np.random.RandomState(0)
X = RNG.normal(size=(600, 8))
Y_CLF = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
Y_REG = np.c_[X[:, 0] * X[:, 1], np.sin(X[:, 2])]


# short fits on purpose: their convergence warnings are expected
pytestmark = pytest.mark.filterwarnings("ignore::fastbp.ConvergenceWarning")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sparse", [False, True])
def test_eight_threads_predict_like_one(dtype, sparse):
    model = MLPClassifier((32, 16), max_iter=20, random_state=0).fit(X.astype(dtype), Y_CLF)
    data = sp.csr_matrix(X.astype(dtype)) if sparse else X.astype(dtype)
    # row blocks of different sizes, so threads run different chunkings at once
    blocks = [data[i:j] for i, j in [(0, 600), (0, 1), (5, 77), (100, 600), (1, 2), (0, 513)]]
    serial_proba = [model.predict_proba(b) for b in blocks]
    serial_labels = [model.predict(b) for b in blocks]

    def work(k):
        out = []
        for r in range(30):
            i = (k + r) % len(blocks)
            out.append((i, model.predict_proba(blocks[i]), model.predict(blocks[i])))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for per_thread in results:
        for i, proba, labels in per_thread:
            np.testing.assert_array_equal(proba, serial_proba[i])
            np.testing.assert_array_equal(labels, serial_labels[i])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eight_threads_small_inputs_of_a_large_model(dtype):
    # one-call path for up to 64 rows: from PREDICT_NOGIL_WORK multiply-adds
    # up it runs without the GIL in buffers of its own (64 rows here), below
    # it in the model's shared buffers holding the GIL (1 row): both correct
    Xw = np.repeat(X, 8, axis=1).astype(dtype)
    model = MLPClassifier((384, 128), max_iter=2, random_state=0).fit(Xw, Y_CLF)
    blocks = [np.ascontiguousarray(Xw[i:j]) for i, j in [(0, 64), (0, 1), (7, 40), (1, 2)]]
    model.predict(blocks[0])
    assert model._net.spec.predictor.predict(blocks[0], model.coefs_, model.intercepts_,
                                             model.classes_) is not None
    serial = [(model.predict(b), model.predict_proba(b), model.predict_log_proba(b))
              for b in blocks]

    def work(k):
        return [(i, model.predict(blocks[i]), model.predict_proba(blocks[i]),
                 model.predict_log_proba(blocks[i]))
                for i in [(k + r) % len(blocks) for r in range(40)]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for per_thread in results:
        for i, *outs in per_thread:
            for got, want in zip(outs, serial[i]):
                np.testing.assert_array_equal(got, want)


def _predictor_call(n_rows):
    # the one-call path (Predictor) of a 512-1024-1024-2 regressor, 1.6e6
    # multiply-adds per row, called directly on n_rows rows
    Xw = np.repeat(X, 64, axis=1)
    model = MLPRegressor(hidden_layer_sizes=(1024, 1024), max_iter=1, random_state=0)
    model.fit(Xw[:64], Y_REG[:64])
    rows = np.ascontiguousarray(Xw[:n_rows])
    model.predict(rows)   # builds the one-call path
    predictor = model._net.spec.predictor
    expected = model.predict(rows)

    def call():
        got = predictor.predict(rows, model.coefs_, model.intercepts_, None)
        np.testing.assert_array_equal(got, expected)  # served by the one-call path
    return call


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eight_threads_share_a_models_first_predictions(dtype):
    # the one-call path is built by the first predict: here 8 threads make
    # their first calls on an unused model at once (every thread switch after
    # 1 us), so several may build it, install it and use it concurrently
    Xw = np.repeat(X, 8, axis=1).astype(dtype)
    fitted = MLPClassifier((384, 128), max_iter=2, random_state=0).fit(Xw, Y_CLF)
    blocks = [np.ascontiguousarray(Xw[i:j]) for i, j in [(0, 64), (0, 1), (7, 40), (1, 2),
                                                         (0, 600)]]
    serial = [(fitted.predict(b), fitted.predict_proba(b)) for b in blocks]
    interval = sys.getswitchinterval()
    for round_ in range(4):
        model = pickle.loads(pickle.dumps(fitted))   # no one-call path yet
        assert model._net.spec.predictor is None
        barrier = threading.Barrier(8)

        def work(k):
            barrier.wait()
            order = [(k + round_ + r) % len(blocks) for r in range(10)]
            return [(i, model.predict(blocks[i]), model.predict_proba(blocks[i]))
                    for i in order]

        sys.setswitchinterval(1e-6)
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(work, range(8)))
        finally:
            sys.setswitchinterval(interval)
        assert model._net.spec.predictor is not None
        for per_thread in results:
            for i, labels, proba in per_thread:
                np.testing.assert_array_equal(labels, serial[i][0])
                np.testing.assert_array_equal(proba, serial[i][1])


def test_small_input_predict_of_a_large_model_releases_the_gil():
    # 64 rows x 1.6e6 weights: far above PREDICT_NOGIL_WORK (2e5 multiply-adds)
    assert _runs_python_during(_predictor_call(64))


def test_small_input_predict_with_little_work_holds_the_gil():
    # docs/reliability.md: below PREDICT_NOGIL_WORK the one-call path runs in
    # the model's own buffers holding the GIL (a handoff costs more than the
    # work); a small network, one row: ~150 multiply-adds
    model = MLPRegressor(hidden_layer_sizes=(16,), max_iter=1, random_state=0).fit(X, Y_REG)
    row = np.ascontiguousarray(X[:1])
    model.predict(row)
    predictor = model._net.spec.predictor

    def calls():
        for _ in range(2000):
            assert predictor.predict(row, model.coefs_, model.intercepts_, None) is not None
    assert not _runs_python_during(calls, attempts=5)


def _fit_all(specs):
    return [make().fit(Xd, yd) for make, Xd, yd in specs]


SPECS = [
    (lambda: MLPClassifier((24,), solver="adam", max_iter=15, batch_size=32, random_state=1),
     X, Y_CLF),
    (lambda: MLPRegressor(hidden_layer_sizes=(16, 8), solver="sgd", max_iter=15,
                          batch_size=50, random_state=2), X, Y_REG),
    (lambda: MLPClassifier((12,), solver="lbfgs", max_iter=30, random_state=3),
     sp.csr_matrix(np.where(np.abs(X) > 1, X, 0)), Y_CLF),
    (lambda: MLPRegressor(hidden_layer_sizes=(20,), solver="adam", max_iter=15,
                          random_state=4, early_stopping=True), X.astype(np.float32), Y_REG),
]


def test_models_fit_in_threads_match_serial_fits():
    serial = _fit_all(SPECS)
    barrier = threading.Barrier(len(SPECS))

    def fit(spec):
        make, Xd, yd = spec
        model = make()
        barrier.wait()  # start together, so the fits really overlap
        return model.fit(Xd, yd)

    with ThreadPoolExecutor(max_workers=len(SPECS)) as pool:
        threaded = list(pool.map(fit, SPECS))
    for a, b in zip(serial, threaded):
        np.testing.assert_array_equal(a._net.params, b._net.params)
        assert a.n_iter_ == b.n_iter_
        assert getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None)


def test_fitting_one_model_while_other_threads_predict_with_another():
    served = MLPRegressor(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X, Y_REG)
    expected = served.predict(X)
    stop = threading.Event()
    mismatches = []

    def serve():
        while not stop.is_set():
            if not np.array_equal(served.predict(X), expected):
                mismatches.append(1)

    readers = [threading.Thread(target=serve) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        trained = MLPRegressor(hidden_layer_sizes=(16,), max_iter=10, random_state=5).fit(X, Y_REG)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not mismatches
    reference = MLPRegressor(hidden_layer_sizes=(16,), max_iter=10, random_state=5).fit(X, Y_REG)
    np.testing.assert_array_equal(trained._net.params, reference._net.params)


def _runs_python_during(call, attempts=100):
    """True when another thread ran Python code while ``call`` was running.

    ``call`` runs (up to ``attempts`` times, until seen) in a worker thread
    with the interpreter's switch interval at 10 minutes, so that the worker
    never gives the GIL up on a timer: this thread then runs only when the
    worker releases the GIL itself, and it looks whether the worker is
    inside the call. A call that holds the GIL from start to end is never
    seen inside, however long it takes; one that releases it is seen as soon
    as this thread is scheduled during one release. No clock is read: the
    machine's speed and load cannot change the answer, only how many
    attempts it takes."""
    state = {"inside": False, "seen": False, "error": None}

    def worker():
        try:
            for _ in range(attempts):
                state["inside"] = True
                try:
                    call()
                finally:
                    state["inside"] = False
                if state["seen"]:
                    return
        except BaseException as error:   # re-raised by the caller, never seen inside
            state["error"] = error

    interval = sys.getswitchinterval()
    sys.setswitchinterval(600.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            if state["inside"]:
                state["seen"] = True
            time.sleep(1e-4)   # hands the GIL back to the worker
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    if state["error"] is not None:
        raise state["error"]
    return state["seen"]


def test_gil_probe_detects_a_call_that_holds_the_gil():
    # builtin sum over a range runs in C without ever releasing the GIL;
    # time.sleep releases it
    assert not _runs_python_during(lambda: sum(range(2_000_000)), attempts=5)
    assert _runs_python_during(lambda: time.sleep(0.01))


def _big_net():
    model = MLPRegressor(hidden_layer_sizes=(256, 256), max_iter=1, random_state=0)
    model.fit(X[:50], Y_REG[:50])
    return model


def test_predict_releases_the_gil():
    model = _big_net()
    net = model._net

    def make_call(copies):
        Xbig = np.repeat(X, copies, axis=0)
        out = np.empty((Xbig.shape[0], 2))
        work = np.empty(net.spec.predict_workspace_size(512))
        rows = _engine.InputMatrix(Xbig)

        def call():
            _engine.forward(net.spec, net.params, rows, out, work, 512)
        call.check = lambda: np.testing.assert_array_equal(out, model.predict(Xbig))
        return call

    call = make_call(20)
    assert _runs_python_during(call)
    call.check()


@pytest.mark.parametrize("entry", ["train_epoch", "loss_and_grad"])
def test_training_releases_the_gil(entry):
    model = _big_net()
    net = model._net
    grads = np.empty_like(net.params)

    def make_call(copies):
        Xbig = np.repeat(X, copies, axis=0)
        Ybig = np.ascontiguousarray(np.repeat(Y_REG, copies, axis=0))
        if entry == "train_epoch":
            state = np.zeros_like(net.params)
            work = np.empty(net.spec.train_workspace_size(200, False))
            record = _engine.OptimizerRecord("sgd", 1e-6, momentum=0.0)
            rows = _engine.InputMatrix(Xbig)
            return lambda: _engine.train_epoch(net.spec, net.params, grads, state, state,
                                               rows, Ybig, None, None, 200, record, 1e-4,
                                               0.5, work)
        work = np.empty(net.spec.train_workspace_size(512, False))
        rows = _engine.InputMatrix(Xbig)
        return lambda: _engine.loss_and_grad(net.spec, net.params, rows, Ybig, None,
                                             1e-4, 1.0, grads, work, 512)

    assert _runs_python_during(make_call(20))


_POOL_JOBS = r"""
import json, os
import numpy as np
from fastbp import _engine
counts = np.tile([2, 3, 2, 4, 3, 2], 5000)   # 30,000 jobs, the thread count changing
# SPMD jobs and shared ones (prediction's kind) mixed: a worker that skipped a
# shared job must not run a later one twice or with another job's count
shared = np.tile([False, True, True, False, True, False, False], 5000)[:counts.size]
runs, threads, taken = _engine.pool_job_runs(counts, shared)
in_job = np.arange(runs.shape[1])[None, :] < threads[:, None]
expected = in_job.astype(runs.dtype)
bad_spmd = np.argwhere((runs != expected) & ~shared[:, None])
# a shared job: once by its caller, at most once by each of its other threads,
# never by another; each item taken once, by one of the threads that ran it
bad_shared = np.argwhere(shared[:, None] & ((runs > 1) | (runs[:, :1] != 1) | ((runs > 0) & ~in_job)))
took = np.take_along_axis(runs, np.clip(taken - 1, 0, runs.shape[1] - 1), axis=1)
bad_items = np.argwhere(shared[:, None] & ((taken < 1) | (taken > threads[:, None]) | (took != 1)))
bad_items_spmd = np.argwhere(~shared[:, None] & (taken != 0))
bad = np.concatenate([bad_spmd, bad_shared, bad_items, bad_items_spmd])
forked_ok = None
if hasattr(os, "fork"):
    # a child forked after those jobs starts new workers and runs its own jobs
    # (the parent's last job, still in the pool's job word, is not theirs)
    pid = os.fork()
    if pid == 0:
        child_counts = np.tile([3, 2], 2000)
        child_runs, child_threads, _ = _engine.pool_job_runs(child_counts)
        child_expected = (np.arange(child_runs.shape[1])[None, :]
                          < child_threads[:, None]).astype(child_runs.dtype)
        os._exit(0 if (child_runs == child_expected).all() else 1)
    forked_ok = os.waitpid(pid, 0)[1] == 0
print(json.dumps({"as_asked": bool((threads == counts).all()),
                  "helped": int((shared[:, None] & (runs[:, 1:] > 0)).any(axis=1).sum()),
                  "one_thread": bool((threads == 1).all()), "n_bad": int(len(bad)),
                  "first": bad[:5].tolist(), "forked_ok": forked_ok}))
"""


def test_pool_runs_each_job_once_on_each_of_its_threads():
    # Jobs with changing thread counts, back to back, more threads than this
    # machine's cores: a worker left out of one job must not take the next
    # job's thread count for the job it saw, which ran the next job twice (a
    # training epoch's second run then waited at its barrier forever: the
    # suite hung); and a process forked after them must not run the parent's
    # last job on its new workers. Shared jobs (prediction's) mixed in: run
    # by their caller and by the workers that joined in time, each work item
    # once, and a worker that skipped one still runs the SPMD jobs after it.
    # In a child process, so that a hang fails the test.
    import json
    import subprocess

    result = subprocess.run([sys.executable, "-c", _POOL_JOBS], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # each job on the threads asked for (one, in a build without threads)
    assert report["as_asked"] or report["one_thread"], report
    assert report["n_bad"] == 0, report
    # workers do join shared jobs (thousands of the 15,000 on two cores, not
    # all: the caller may take every item first; on one core a worker only
    # runs when the caller is descheduled, so none may join)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert report["one_thread"] or (cores or 1) < 2 or report["helped"] > 0, report
    assert report["forked_ok"] in (True, None), report   # None: no fork() here


_PREDICT_DURING_FIT = r"""
import threading, warnings
import numpy as np
from fastbp import MLPClassifier, _engine
rng = np.random.RandomState(0)
# a 64-512-3 model: its first layer (128 KiB of float32 weights) is split
# between cores, and one row (~34,000 multiply-adds) runs holding the GIL
X = rng.normal(size=(200, 64)).astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    small = MLPClassifier((512,), max_iter=1, random_state=0).fit(X, np.arange(200) % 3)
row = np.ascontiguousarray(X[:1])
expected = small.predict_proba(row)
# meanwhile another thread fits a model whose epochs run on the engine's pool
Xw = rng.normal(size=(4000, 400)).astype(np.float32)
big = MLPClassifier((256, 256), batch_size=500, max_iter=6, random_state=0)
done = threading.Event()
def fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big.fit(Xw, np.arange(4000) % 5)
    done.set()
worker = threading.Thread(target=fit)
worker.start()
calls = 0
while not done.is_set():
    assert np.array_equal(small.predict_proba(row), expected)
    calls += 1
worker.join()
print(calls, _engine.predictor_split_plan(small._net.spec.predictor, 1))
"""


def test_split_predictions_holding_the_gil_during_another_threads_fit():
    # A one-row prediction that holds the GIL and splits a layer between cores
    # (a shared pool job) while another thread's fit runs its epochs on the
    # pool, whose threads take the GIL at each Ctrl-C check: the prediction
    # asks for as many threads as scipy's OpenBLAS has, which the fit holds at
    # one, so it never waits for the pool; both finish, the predictions exact.
    # In a child process, so that a hang fails the test.
    import subprocess

    result = subprocess.run([sys.executable, "-c", _PREDICT_DURING_FIT], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    calls, plan = (int(v) for v in result.stdout.split())
    assert calls > 0
