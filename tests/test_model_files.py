"""Model files are forever: files written by fastbp 0.1.0 (tests/fixtures/,
made by their make.py at commit 645c717) load in this fastbp and predict as
0.1.0 predicted; training continues from them as it did in 0.1.0.

Predictions must be equal bit for bit on a machine with the BLAS the files
were made on (the signature in expected.npz) and to rounding elsewhere
(float64 1e-12, float32 1e-5 relative to the largest value); labels are
always equal.
"""

import json
import platform
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastbp

FIXTURES = Path(__file__).parent / "fixtures" / "models_0.1.0"


def _expected():
    with np.load(FIXTURES / "expected.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


EXPECTED = _expected()
NAMES = sorted({k.split("/")[0] for k in EXPECTED if "/" in k})


def _same_machine():
    blas = sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                  for i in threadpool_info() if i.get("user_api") == "blas")
    return json.loads(str(EXPECTED["signature"])) == {
        "blas": blas, "numpy": np.__version__, "machine": platform.machine()}


def _close(got, want, what):
    assert got.shape == want.shape, what
    if _same_machine():
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        tol = 1e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=0,
                                   atol=tol * max(1.0, float(np.max(np.abs(want)))),
                                   err_msg=what)


def _inputs(model, X):
    if hasattr(model, "feature_names_in_"):
        pd = pytest.importorskip("pandas")
        return pd.DataFrame(X, columns=list(model.feature_names_in_))
    return X


def test_every_fixture_is_checked():
    files = sorted(p.stem for p in FIXTURES.glob("*.fbp"))
    assert files == NAMES and len(NAMES) >= 11


@pytest.mark.parametrize("name", NAMES)
def test_file_from_0_1_0_predicts_as_it_did(name):
    model = fastbp.load(FIXTURES / f"{name}.fbp")
    X = _inputs(model, EXPECTED[f"{name}/X"])
    pred = model.predict(X)
    want = EXPECTED[f"{name}/predict"]
    if want.dtype.kind == "U":
        np.testing.assert_array_equal(np.asarray(pred).astype(str), want)
    elif want.dtype.kind in "biu" or name.startswith("classifier") or "multiclass" in name:
        np.testing.assert_array_equal(pred, want)
    else:
        assert pred.dtype == want.dtype
        _close(pred, want, f"{name} predict")
    if f"{name}/predict_proba" in EXPECTED:
        proba = model.predict_proba(X)
        assert proba.dtype == EXPECTED[f"{name}/predict_proba"].dtype
        _close(proba, EXPECTED[f"{name}/predict_proba"], f"{name} predict_proba")


def _fit_data(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_0_1_0", FIXTURES / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for n, est, X, y, opts in make.models():
        if n == name:
            return X, y, opts
    raise KeyError(name)


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if f"{n}/params_after_partial_fit" in EXPECTED])
def test_training_continues_from_a_0_1_0_file(name):
    model = fastbp.load(FIXTURES / f"{name}.fbp")
    X, y, opts = _fit_data(name)
    lo, hi = EXPECTED[f"{name}/X_more_rows"]
    Xm = _inputs(model, X[lo:hi]) if opts.get("feature_names") else X[lo:hi]
    model.partial_fit(Xm, y[lo:hi])
    params = np.concatenate([np.concatenate([c.ravel(), b])
                             for c, b in zip(model.coefs_, model.intercepts_)])
    _close(params, EXPECTED[f"{name}/params_after_partial_fit"], f"{name} after partial_fit")
