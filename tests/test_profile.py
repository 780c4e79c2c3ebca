"""The engine's per-phase timers (diagnosis): off by default, and when on,
every thread's phases add up to the training calls' own time."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import quiet_warnings

import fastbp
from fastbp import _engine, _profile


@pytest.fixture
def profiling():
    old = _engine.set_profiling(True)
    _engine.phase_times(reset=True)
    try:
        yield
    finally:
        _engine.set_profiling(old)
        _engine.phase_times(reset=True)


def _fit(hidden, n, n_features, batch, solver="adam", **kw):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, n_features))
    y = rng.randint(0, 3, n)
    with quiet_warnings():
        return fastbp.MLPClassifier(hidden, solver=solver, batch_size=batch, max_iter=3,
                                    random_state=0, tol=0, n_iter_no_change=99,
                                    **kw).fit(X, y)


def test_profiling_is_off_by_default():
    assert "FASTBP_PROFILE" in os.environ or not _engine.set_profiling(False)
    before = _engine.phase_times()
    _fit((32,), 200, 10, 50)
    assert _engine.phase_times() == before


@pytest.mark.parametrize("case", ["rows", "data-parallel", "one-thread", "lbfgs"])
def test_phase_times_add_up_to_the_calls_time(case, profiling):
    if case == "rows":            # rows then parameters (parameters outweigh activations)
        _fit((256, 128), 600, 300, 128)
        n_calls, n_batches = 3, 3 * 5
    elif case == "data-parallel":
        assert _engine.data_parallel(_engine.NetSpec([64, 100, 3], "relu", "softmax"), 200)
        _fit((100,), 1000, 64, 200)
        n_calls, n_batches = 3, 3 * 5
    elif case == "one-thread":    # too small to thread
        _fit((16,), 300, 4, 32, solver="sgd")
        n_calls, n_batches = 3, 3 * 10
    else:
        model = _fit((64,), 600, 30, 200, solver="lbfgs")
        n_calls, n_batches = None, None
    times = _engine.phase_times()
    assert times["phases"] == _engine.PHASE_NAMES
    if n_calls is not None:
        assert times["calls"] == n_calls and times["batches"] == n_batches
    else:
        assert times["calls"] >= model.n_iter_ and times["batches"] == times["calls"] * 2
    ns = np.array(times["ns"], dtype=np.int64)
    assert ns.shape[1] == len(_engine.PHASE_NAMES) and (ns >= 0).all()
    phase = dict(zip(times["phases"], ns[0]))
    for name in ("forward gemm", "loss", "backward gemm" if case != "one-thread" else "loss",
                 "gradient gemm"):
        assert phase[name] > 0, name
    if case != "lbfgs":
        assert phase["optimizer"] > 0
    else:
        assert phase["optimizer"] == 0
    # every thread's phases within the calls' time; the calling thread's
    # (thread 0) add up to it, less the handing out of segments
    totals = ns.sum(axis=1)
    assert (totals <= times["call_ns"]).all()
    assert totals[0] >= 0.9 * times["call_ns"], (totals, times["call_ns"])
    table = _profile.format_phase_times(times)
    assert "forward gemm" in table and "total" in table and _engine.simd_level() in table
    # reset zeroes the totals
    _engine.phase_times(reset=True)
    assert _engine.phase_times()["calls"] == 0


def test_fastbp_profile_prints_the_table_at_exit():
    env = dict(os.environ, FASTBP_PROFILE="1")
    code = ("import numpy as np, fastbp\n"
            "X = np.random.RandomState(0).normal(size=(200, 5)); y = X[:, 0] > 0\n"
            "fastbp.MLPClassifier((8,), max_iter=2).fit(X, y)\n")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fastbp phase times" in out.stderr and "optimizer" in out.stderr
    assert "2 calls" in out.stderr
