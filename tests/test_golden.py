"""Golden outputs: the weights, curves and predictions of ~35 fixed fits,
compared with the values recorded at a reference commit.

The configurations cover every solver, hidden activation, output kind, both
dtypes, dense and sparse input, sample and class weights, early stopping,
partial_fit, warm_start and 1, 2 and 3 threads (both ways of splitting a batch
between threads, and products whose OpenBLAS kernel depends on their size);
the thread variants of a configuration must agree bit for bit on any machine. The recorded file holds the machine signature it was made
on (OpenBLAS kernel and version, the SIMD clone fastbp's kernels run, numpy's
version). On a machine with the same signature every value must be equal bit
for bit; elsewhere BLAS sums in another order, and the values must agree to
rounding (float64 1e-9, float32 2e-3 relative to each array's largest value:
a few epochs of rounding differences, far below any change of arithmetic).

Record anew (only when a change of results is intended and explained in the
commit message): ``FASTBP_RECORD_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

import json
import os
import platform
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from fastbp import MLP, ConvergenceWarning, MLPClassifier, MLPRegressor

GOLDEN = Path(__file__).parent / "golden" / "outputs.npz"
RECORD = os.environ.get("FASTBP_RECORD_GOLDEN") == "1"


def _data(seed, n, n_features, kind, n_out=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    w = rng.normal(size=(n_features, max(n_out, 3)))
    s = X @ w
    if kind == "binary":
        y = (s[:, 0] > 0).astype(int)
    elif kind == "multiclass":
        y = np.array(["a", "b", "c"])[np.argmax(s[:, :3], axis=1)]
    elif kind == "multilabel":
        y = (s[:, :3] > 0).astype(int)
    elif kind == "regression":
        y = s[:, 0] if n_out == 1 else s[:, :n_out]
    elif kind == "counts":
        y = rng.poisson(np.exp(0.3 * np.tanh(s[:, 0])))
    return X, y


def _sparse(X, seed):
    rng = np.random.RandomState(seed)
    X = X * (rng.uniform(size=X.shape) < 0.2)
    return sp.csr_matrix(X)


# name -> (estimator factory, data kind, n, n_features, n_out, options)
# options: dtype, sparse, threads, sw (sample weights), fits ("fit", "warm",
# "partial"), y kind for MLP
def _configs():
    C = {}

    def add(name, make, kind, n=120, nf=6, n_out=1, **opts):
        C[name] = (make, kind, n, nf, n_out, opts)

    add("clf_binary_adam_relu_f64", lambda: MLPClassifier((8,), max_iter=15, random_state=0),
        "binary")
    add("clf_multi_sgd_nesterov_tanh", lambda: MLPClassifier(
        (10, 7), activation="tanh", solver="sgd", learning_rate_init=0.05, max_iter=12,
        random_state=1), "multiclass")
    add("clf_multi_sgd_momentum_logistic_invscaling", lambda: MLPClassifier(
        (9,), activation="logistic", solver="sgd", nesterovs_momentum=False,
        learning_rate="invscaling", learning_rate_init=0.2, max_iter=12, random_state=2),
        "multiclass")
    add("clf_binary_sgd_adaptive_identity", lambda: MLPClassifier(
        (5,), activation="identity", solver="sgd", learning_rate="adaptive", momentum=0.0,
        learning_rate_init=0.05, max_iter=40, n_iter_no_change=2, tol=1e-2, random_state=3),
        "binary")
    add("clf_multi_adam_leaky_f32", lambda: MLPClassifier(
        (12,), activation="leaky_relu", max_iter=10, random_state=4), "multiclass",
        dtype=np.float32)
    add("clf_multilabel_adam", lambda: MLPClassifier((11,), max_iter=10, random_state=5),
        "multilabel")
    add("clf_lbfgs_tanh", lambda: MLPClassifier((6,), activation="tanh", solver="lbfgs",
                                                max_iter=40, random_state=6), "multiclass")
    add("clf_lbfgs_relu_f32", lambda: MLPClassifier((6,), solver="lbfgs", max_iter=25,
                                                    random_state=7), "binary",
        dtype=np.float32)
    add("reg_adam_relu", lambda: MLPRegressor(hidden_layer_sizes=(10,), max_iter=15,
                                             random_state=8),
        "regression")
    add("reg_multiout_sgd_tanh", lambda: MLPRegressor(
        hidden_layer_sizes=(8,), activation="tanh", solver="sgd", learning_rate_init=0.01,
        max_iter=10, random_state=9), "regression", n_out=2)
    add("reg_poisson_adam", lambda: MLPRegressor(loss="poisson", hidden_layer_sizes=(7,),
                                                 max_iter=12, random_state=10), "counts")
    add("reg_lbfgs_identity_multiout", lambda: MLPRegressor(
        hidden_layer_sizes=(4,), activation="identity", solver="lbfgs", max_iter=30,
        random_state=11), "regression", n_out=3)
    add("clf_sparse_adam", lambda: MLPClassifier((9,), max_iter=10, random_state=12),
        "multiclass", sparse=True)
    add("clf_sparse_sgd_f32", lambda: MLPClassifier((9,), solver="sgd", max_iter=10,
                                                    learning_rate_init=0.05,
                                                    random_state=13),
        "binary", sparse=True, dtype=np.float32)
    add("reg_sparse_lbfgs", lambda: MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs",
                                                 max_iter=20, random_state=14),
        "regression", sparse=True)
    add("clf_sample_weight_adam", lambda: MLPClassifier((8,), max_iter=10, random_state=15),
        "binary", sw=True)
    add("reg_sample_weight_sgd", lambda: MLPRegressor(hidden_layer_sizes=(8,), solver="sgd",
                                                      learning_rate_init=0.01, max_iter=10,
                                                      random_state=16),
        "regression", sw=True)
    add("clf_early_stopping_binary", lambda: MLPClassifier(
        (8,), early_stopping=True, max_iter=30, n_iter_no_change=3, random_state=17),
        "binary", n=200)
    add("reg_early_stopping_sgd", lambda: MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", early_stopping=True, learning_rate_init=0.01,
        max_iter=20, n_iter_no_change=3, random_state=18), "regression", n=200)
    add("clf_early_stopping_multi_sw", lambda: MLPClassifier(
        (8,), early_stopping=True, max_iter=15, random_state=19), "multiclass", n=200,
        sw=True)
    add("clf_partial_fit_adam", lambda: MLPClassifier((8,), random_state=20), "multiclass",
        fits="partial")
    add("reg_partial_fit_sgd_f32", lambda: MLPRegressor(hidden_layer_sizes=(8,), solver="sgd",
                                                        learning_rate_init=0.01,
                                                        random_state=21),
        "regression", fits="partial", dtype=np.float32)
    add("clf_warm_start_adam", lambda: MLPClassifier((8,), warm_start=True, max_iter=5,
                                                     random_state=22), "binary", fits="warm")
    add("clf_class_weight_balanced", lambda: MLPClassifier(
        (8,), class_weight="balanced", max_iter=10, random_state=23), "multiclass")
    add("mlp_log_loss_batch7_noshuffle", lambda: MLP(
        (6,), batch_size=7, shuffle=False, max_iter=8, random_state=24), "binary")
    add("mlp_squared_error_batch1_sgd", lambda: MLP(
        (5,), loss="squared_error", solver="sgd", batch_size=1, learning_rate_init=0.005,
        max_iter=3, random_state=25), "regression", n=60)
    add("mlp_deep_relu_adam", lambda: MLP((16, 12, 8), max_iter=8, random_state=26),
        "multiclass")
    # batches worth two threads: data-parallel mode (activations outweigh the
    # parameters) and the row/parameter split (parameters outweigh them)
    for t in (1, 2, 3):
        add(f"dataparallel_64_100_10_t{t}", lambda: MLPClassifier(
            (100,), max_iter=4, random_state=27), "multiclass", n=700, nf=64, threads=t)
        add(f"rowsplit_256_256_t{t}", lambda: MLPRegressor(
            hidden_layer_sizes=(256,), batch_size=32, max_iter=2, random_state=28),
            "regression", n=256, nf=256, n_out=4, threads=t)
    # products whose OpenBLAS kernel depends on their size (on SkylakeX a
    # small-matrix kernel takes half a batch of 100 through 128-wide layers,
    # not the whole batch): every thread count must still agree bit for bit
    for t in (1, 2, 3):
        add(f"kernelsizes_dense_adam_t{t}", lambda: MLPClassifier(
            (128, 128), batch_size=100, max_iter=2, random_state=31), "multiclass", n=300,
            nf=400, threads=t)
        add(f"kernelsizes_csr_sgd_f32_t{t}", lambda: MLPClassifier(
            (128, 128), solver="sgd", batch_size=100, max_iter=2, random_state=32),
            "binary", n=300, nf=400, sparse=True, dtype=np.float32, threads=t)
    for t in (1, 2):
        add(f"kernelsizes_lbfgs_t{t}", lambda: MLPRegressor(
            hidden_layer_sizes=(128,), solver="lbfgs", max_iter=8, random_state=33),
            "regression", n=300, nf=400, threads=t)
    add("dataparallel_f32_t1", lambda: MLPClassifier((100,), max_iter=4, random_state=29),
        "multiclass", n=700, nf=64, threads=1, dtype=np.float32)
    add("rowsplit_sparse_t2", lambda: MLPClassifier((128,), batch_size=32, max_iter=2,
                                                    random_state=30),
        "multiclass", n=256, nf=300, sparse=True, threads=2)
    return C


CONFIGS = _configs()


def _signature():
    """What decides the last bits: BLAS kernel and version, fastbp's SIMD
    clone (by the CPU's flags), numpy, the platform."""
    blas = sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                  for i in threadpool_info() if i.get("user_api") == "blas")
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    f = line.split()
                    flags = "avx512f" if "avx512f" in f else ("avx2" if "avx2" in f else "")
                    break
    except OSError:
        pass
    return json.dumps({"blas": blas, "simd": flags, "numpy": np.__version__,
                       "machine": platform.machine(), "system": platform.system()},
                      sort_keys=True)


def _run(name):
    make, kind, n, nf, n_out, opts = CONFIGS[name]
    dtype = opts.get("dtype", np.float64)
    # the thread variants of one configuration see the same data
    X, y = _data(sum(map(ord, name.rsplit("_t", 1)[0])), n, nf, kind, n_out)
    X = X.astype(dtype)
    X_test = X[: min(50, n)]
    if opts.get("sparse"):
        X = _sparse(X, 1)
        X_test = X[: min(50, n)]
    sw = None
    if opts.get("sw"):
        sw = np.random.RandomState(3).uniform(0.2, 2.0, size=n)
    est = make()
    fits = opts.get("fits", "fit")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        with threadpool_limits(limits=opts.get("threads", 1), user_api="blas"):
            if fits == "fit":
                est.fit(X, y, sample_weight=sw)
            elif fits == "warm":
                est.fit(X, y, sample_weight=sw)
                est.fit(X[::-1], y[::-1])
            elif fits == "partial":
                classes = np.unique(y) if kind in ("binary", "multiclass") else None
                for i in range(4):
                    part = slice((i * n) // 4, ((i + 1) * n) // 4)
                    extra = {"classes": classes} if classes is not None else {}
                    est.partial_fit(X[part], y[part], **extra)
    out = {
        "params": np.concatenate([np.concatenate([c.ravel(), b])
                                  for c, b in zip(est.coefs_, est.intercepts_)]),
        "n_iter": np.array([est.n_iter_]),
        "loss": np.array([est.loss_], dtype=np.float64),
    }
    for attr in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        value = getattr(est, attr, None)
        if value is not None:
            out[attr] = np.asarray(value, dtype=np.float64)
    if hasattr(est, "t_"):
        out["t"] = np.array([est.t_])
    if kind in ("binary", "multiclass", "multilabel"):
        out["proba"] = est.predict_proba(X_test)
    else:
        out["pred"] = np.asarray(est.predict(X_test))
    return out


@pytest.fixture(scope="module")
def golden():
    if RECORD:
        return None
    with np.load(GOLDEN, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_recorded_configurations_match(golden):
    if RECORD:
        pytest.skip("recording")
    recorded = {k.split("/")[0] for k in golden if "/" in k}
    assert recorded == set(CONFIGS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden(name, golden):
    out = _run(name)
    if RECORD:
        _record(name, out)
        return
    exact = str(golden["signature"]) == _signature()
    keys = sorted(k.split("/", 1)[1] for k in golden if k.startswith(name + "/"))
    assert keys == sorted(out), (keys, sorted(out))
    for key in keys:
        want = golden[f"{name}/{key}"]
        got = out[key]
        assert got.dtype == want.dtype and got.shape == want.shape, (key, got.dtype, want.dtype)
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=f"{name}/{key}")
        else:
            rtol = 2e-3 if got.dtype == np.float32 or CONFIGS[name][5].get(
                "dtype") is np.float32 else 1e-9
            scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
            np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale,
                                       err_msg=f"{name}/{key}")


def _thread_variants():
    # configuration -> its names with 1, 2 (and 3) threads
    groups = {}
    for name in CONFIGS:
        base, _, t = name.rpartition("_t")
        if t.isdigit():
            groups.setdefault(base, []).append(name)
    return {base: names for base, names in groups.items() if len(names) > 1}


@pytest.mark.parametrize("base", sorted(_thread_variants()))
def test_thread_variants_are_identical(base):
    # on any machine: the same fit on 1, 2 or 3 threads, bit for bit
    names = sorted(_thread_variants()[base])
    outs = [_run(name) for name in names]
    for name, out in zip(names[1:], outs[1:]):
        assert sorted(out) == sorted(outs[0])
        for key in out:
            np.testing.assert_array_equal(out[key], outs[0][key], err_msg=f"{name}/{key}")


_recorded = {}


def _record(name, out):
    for k, v in out.items():
        _recorded[f"{name}/{k}"] = v
    if len({k.split("/")[0] for k in _recorded}) == len(CONFIGS):
        GOLDEN.parent.mkdir(exist_ok=True)
        np.savez_compressed(GOLDEN, signature=np.array(_signature()), **_recorded)
