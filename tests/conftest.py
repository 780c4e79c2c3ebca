import warnings

import numpy as np
import pytest


def make_moons(n, noise=0.15, seed=0):
    from fastbp._demo import two_moons

    return two_moons(n, noise=noise, random_state=seed)


def with_weights(est, X, y, coefs, intercepts):
    """Fit ``est`` once to build its network, then install the given weights
    (the way scikit-learn's own worked-example test sets them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
