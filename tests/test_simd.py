"""Kernel sets (AVX-512, AVX2, baseline): FASTBP_SIMD chooses one, the
modules report it, and every set computes the same weights bit for bit."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import quiet_warnings
import scipy.sparse as sp

import fastbp
from fastbp import _engine, _shuffle

LEVELS = ("baseline", "avx2", "avx512")


def _levels_in_child(value):
    env = dict(os.environ)
    env.pop("FASTBP_SIMD", None)
    if value is not None:
        env["FASTBP_SIMD"] = value
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from fastbp import _engine, _shuffle\n"
            "print(_engine.simd_level(), _shuffle.simd_level(), ','.join(_engine.cpu_simd_levels()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    engine, shuffle, available = out.stdout.split()
    return engine, shuffle, available.split(","), out.stderr


def test_the_cpu_best_set_runs_by_default():
    engine, shuffle, available, err = _levels_in_child(None)
    assert available == list(LEVELS[:len(available)])
    assert engine == shuffle == available[-1]
    assert "FASTBP_SIMD" not in err
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        with open("/proc/cpuinfo") as fh:
            flags = next(line for line in fh if line.startswith("flags")).split()
        # the wheel's builds run AVX-512 where the CPU has it, AVX2 where it has that;
        # builds without the sets (tools/asan.sh's, FASTBP_DEBUG=1) the baseline
        best = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"
        built = _engine.build_simd_levels()
        assert _shuffle.build_simd_levels() == built
        # GCC builds them on Linux x86-64 (the wheels' and CI's compiler) unless
        # told not to (tools/asan.sh exports FASTBP_SANITIZE=1 to the tests)
        if not any(os.environ.get(flag) == "1"
                   for flag in ("FASTBP_SANITIZE", "FASTBP_DEBUG", "FASTBP_NO_CLONES")):
            assert built == LEVELS
        expected = best if best in built else "baseline"
        assert engine == expected


@pytest.mark.parametrize("level", LEVELS)
def test_fastbp_simd_forces_a_set(level):
    engine, shuffle, available, err = _levels_in_child(level.upper() if level == "avx2" else level)
    if level in available:
        assert engine == shuffle == level
        assert "FASTBP_SIMD" not in err
    else:
        # a set this CPU cannot run: the best it can, and a warning that says so
        assert engine == available[-1]
        assert f"FASTBP_SIMD={level}" in err and f"using {available[-1]}" in err


def test_fastbp_simd_unknown_value_warns_and_uses_the_best():
    engine, _, available, err = _levels_in_child("avx-512")
    assert engine == available[-1]
    assert "FASTBP_SIMD must be 'avx512', 'avx2' or 'baseline'" in err and "'avx-512'" in err
    assert err.count("RuntimeWarning") == 1   # the engine warns, the shuffle module does not


def test_set_simd_level_hook_checks_its_argument():
    with pytest.raises(ValueError, match="name must be one of"):
        _engine.set_simd_level("sse9")
    old = _engine.set_simd_level("baseline")
    try:
        assert _engine.simd_level() == "baseline"
    finally:
        assert _engine.set_simd_level(old) == "baseline"


def _fits():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 40))
    y = (X[:, 0] + np.sin(X[:, 1]) > 0).astype(int) + (X[:, 2] > 1)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    y_reg = np.c_[X[:, 0] * X[:, 1], np.abs(X[:, 2])]
    counts = rng.poisson(np.exp(0.3 * np.tanh(X[:, 0])))
    kw = dict(max_iter=4, random_state=0)
    yield lambda: fastbp.MLPClassifier((37,), activation="tanh", **kw).fit(X, y)
    yield lambda: fastbp.MLPClassifier((21, 13), activation="logistic", solver="sgd",
                                       **kw).fit(X.astype(np.float32), y)
    yield lambda: fastbp.MLPClassifier((64, 64), batch_size=100, **kw).fit(Xs, y)
    yield lambda: fastbp.MLPClassifier((100,), batch_size=200, **kw).fit(
        np.tile(X, (3, 1)), np.tile(y, 3))   # the data-parallel mode
    yield lambda: fastbp.MLPClassifier((9,), **kw).fit(X, y == 1)
    yield lambda: fastbp.MLPRegressor(hidden_layer_sizes=(17,), activation="leaky_relu"
                                      if "leaky_relu" in _engine.HIDDEN_ACTIVATIONS else "relu",
                                      **kw).fit(X, y_reg)
    yield lambda: fastbp.MLPRegressor(loss="poisson", hidden_layer_sizes=(11,),
                                      **kw).fit(X.astype(np.float32), counts)
    yield lambda: fastbp.MLPRegressor(hidden_layer_sizes=(12,), solver="lbfgs",
                                      max_iter=10, random_state=0).fit(X, y_reg[:, 0])


def _outcome(model, X):
    return ([c.copy() for c in model.coefs_ + model.intercepts_],
            list(getattr(model, "loss_curve_", None) or [model.loss_]), model.predict(X))


def test_every_kernel_set_computes_the_same_weights():
    available = _engine.cpu_simd_levels()
    X = np.random.RandomState(1).normal(size=(64, 40))
    old = (_engine.simd_level(), _shuffle.simd_level())
    results = {}
    try:
        with quiet_warnings():
            for level in available:
                _engine.set_simd_level(level)
                _shuffle.set_simd_level(level)
                results[level] = [_outcome(fit(), X if i not in (1, 6) else X.astype(np.float32))
                                  for i, fit in enumerate(_fits())]
    finally:
        _engine.set_simd_level(old[0])
        _shuffle.set_simd_level(old[1])
    reference = results[available[0]]
    for level in available[1:]:
        for (params, curve, pred), (p0, c0, pr0) in zip(results[level], reference):
            for a, b in zip(params, p0):
                np.testing.assert_array_equal(a, b, err_msg=level)
            assert curve == c0, level
            np.testing.assert_array_equal(pred, pr0)
