import contextlib
import warnings

import numpy as np
import pytest


@contextlib.contextmanager
def quiet_warnings():
    """Ignore the warnings of a deliberately short or odd fit, all but
    RuntimeWarning: the suite's ``error::RuntimeWarning`` (overflow, invalid
    values in the kernels' numpy twins) still fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        yield


def make_moons(n, noise=0.15, seed=0):
    from fastbp._demo import two_moons

    return two_moons(n, noise=noise, random_state=seed)


def with_weights(est, X, y, coefs, intercepts):
    """Fit ``est`` once to build its network, then install the given weights
    (the way scikit-learn's own worked-example test sets them)."""
    with quiet_warnings():
        est.set_params(max_iter=1).fit(X, y)
    dtype = est.coefs_[0].dtype
    est.coefs_ = [np.array(c, dtype=dtype) for c in coefs]
    est.intercepts_ = [np.array(b, dtype=dtype) for b in intercepts]
    return est


@pytest.fixture
def rng():
    return np.random.RandomState(0)


def hide_module(monkeypatch, name):
    """Make ``import name`` (and its submodules) raise ImportError for one
    test, as on a machine where the optional dependency is not installed."""
    import builtins
    import sys

    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    real_import = builtins.__import__

    def fake_import(module, *args, **kwargs):
        if module == name or module.startswith(name + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def pytest_addoption(parser):
    parser.addoption("--fail-on-skip", action="store_true",
                     help="report a skipped test as failed (for CI groups that install "
                          "the optional dependency the test needs)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and not hasattr(report, "wasxfail")
            and item.config.getoption("--fail-on-skip")):
        report.outcome = "failed"
        report.longrepr = f"skipped under --fail-on-skip: {report.longrepr}"
