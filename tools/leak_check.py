"""Run many fit/predict cycles in one process and report the resident memory.

    python tools/leak_check.py                  # 1,000 cycles
    python tools/leak_check.py --cycles 200 --max-growth-mb 5

Each cycle trains and uses several small models so that every path that
allocates is exercised: dense float64/float32 and sparse input; SGD, Adam
and L-BFGS; classification (binary, multiclass, multilabel) and regression;
predict / predict_proba / score / loss_and_gradients; partial_fit; save and
load through a file and through pickle; and inputs that fail validation
(the error paths must free what they allocated too).

RSS is read after a warm-up (allocator pools, BLAS buffers and import-time
caches fill up in the first cycles) and at the end; a leak shows up as
growth proportional to the number of cycles. The script exits with status 1
when the growth after warm-up exceeds ``--max-growth-mb``.
"""

import argparse
import gc
import os
import pickle
import sys
import tempfile
import time
import warnings


def rss_mb():
    """Resident set size of this process in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_data():
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 10))
    data = {
        "X": X,
        "X32": X.astype(np.float32),
        "Xs": sp.csr_matrix(np.where(np.abs(X) > 1, X, 0.0)),
        "y_bin": (X[:, 0] > 0).astype(int),
        "y_multi": np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)],
        "y_ml": np.c_[X[:, 0] > 0, X[:, 1] > 0].astype(int),
        "y_reg": np.c_[X[:, 0] - X[:, 1], X[:, 2]],
        "X_bad": np.where(X > 2, np.nan, X),
    }
    return data


def one_cycle(d, i, path, bad_path):
    import numpy as np

    import fastbp

    clf = fastbp.MLPClassifier((16,), max_iter=5, random_state=i).fit(d["X"], d["y_bin"])
    clf.predict(d["X"])
    clf.predict_proba(d["X"])
    clf.score(d["X"], d["y_bin"])
    clf.loss_and_gradients(d["X"], d["y_bin"])
    clf.partial_fit(d["X"], d["y_bin"])

    multi = fastbp.MLPClassifier((8, 8), solver="sgd", max_iter=3, random_state=i)
    multi.fit(d["X32"], d["y_multi"]).predict_log_proba(d["X32"])

    ml = fastbp.MLPClassifier((8,), solver="lbfgs", max_iter=5, random_state=i)
    ml.fit(d["Xs"], d["y_ml"]).predict(d["Xs"])

    reg = fastbp.MLPRegressor(hidden_layer_sizes=(12,), max_iter=4, early_stopping=True,
                              random_state=i).fit(d["X"], d["y_reg"])
    reg.predict(d["X"][:1])
    reg.save(path)
    fastbp.load(path).predict(d["X"])
    pickle.loads(pickle.dumps(reg)).predict(d["X"])

    for bad in (lambda: clf.predict(d["X_bad"]),
                lambda: clf.predict(d["X"][:, :3]),
                lambda: fastbp.MLPClassifier(alpha=-1.0).fit(d["X"], d["y_bin"]),
                lambda: fastbp.load(bad_path)):
        try:
            bad()
        except (ValueError, TypeError, OSError):
            pass
        else:
            raise AssertionError("an invalid call succeeded")
    return np.isfinite(clf.coefs_[0]).all()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=None,
                        help="cycles before the baseline is read (default: cycles // 10)")
    parser.add_argument("--max-growth-mb", type=float, default=None,
                        help="exit with status 1 when RSS grows more than this after warm-up")
    args = parser.parse_args(argv)
    warmup = max(1, args.cycles // 10) if args.warmup is None else args.warmup

    warnings.simplefilter("ignore")
    before_import = rss_mb()
    data = make_data()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        bad_path = os.path.join(tmp, "bad.npz")
        with open(bad_path, "wb") as fh:
            fh.write(b"PK\x03\x04 not a model file")
        start = time.perf_counter()
        readings = []
        for i in range(args.cycles):
            one_cycle(data, i, path, bad_path)
            if i + 1 == warmup:
                gc.collect()
                baseline = rss_mb()
            if (i + 1) % max(1, args.cycles // 10) == 0:
                gc.collect()
                readings.append((i + 1, rss_mb()))
        gc.collect()
        end = rss_mb()
        seconds = time.perf_counter() - start

    growth = end - baseline
    print(f"cycles: {args.cycles} ({seconds:.1f} s; each: 4 fits, partial_fit, 8 predictions, "
          f"save/load, pickle, 4 rejected inputs)")
    print(f"RSS before imports and data: {before_import:.1f} MiB")
    print(f"RSS after {warmup} warm-up cycles: {baseline:.1f} MiB")
    print(f"RSS after {args.cycles} cycles: {end:.1f} MiB")
    print("RSS along the way: " + ", ".join(f"{n}: {mb:.1f}" for n, mb in readings))
    per_cycle_kb = growth * 1024 / max(1, args.cycles - warmup)
    print(f"growth after warm-up: {growth:+.2f} MiB ({per_cycle_kb:+.2f} KiB per cycle)")
    if args.max_growth_mb is not None and growth > args.max_growth_mb:
        print(f"FAIL: more than {args.max_growth_mb} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
