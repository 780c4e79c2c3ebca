"""Test helper: everything an estimator holds, copied, and compared exactly."""

import copy

import numpy as np


def model_state(model):
    """A deep copy of ``model.__dict__`` with the engine objects replaced by
    comparable values (arrays by value, random generators by their state)."""
    out = {}
    for key, value in model.__dict__.items():
        if key == "_net":
            out[key] = (value.sizes, value.dtype, value.spec.hidden_activation,
                        value.spec.output_activation, value.params.copy())
        elif key == "_optimizer":
            out[key] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                        for k, v in vars(value).items()}
        elif isinstance(value, np.random.RandomState):
            state = value.get_state()
            out[key] = ("RandomState", state[1].copy()) + tuple(state[2:])
        elif key == "_label_encoding":
            out[key] = copy.deepcopy(vars(value))
        else:
            out[key] = copy.deepcopy(value)
    return out


def assert_same_state(a, b):
    """Exact equality of two ``model_state`` results (dtypes included)."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    for key in a:
        _assert_equal(a[key], b[key], key)


def _assert_equal(a, b, where):
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_equal(u, v, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, (where, a.dtype,
                                                                 getattr(b, "dtype", None))
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert type(a) is type(b) and a == b, (where, a, b)
