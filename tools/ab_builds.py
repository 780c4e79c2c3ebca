"""Time two fastbp builds against each other in one process, their fits
interleaved, so that a shared machine's load falls on both alike.

    python tools/ab_builds.py OLD_SRC NEW_SRC [--solver adam] [--dtype float32]
                              [--batch-size 32] [--rounds 40]

OLD_SRC and NEW_SRC are directories holding a built ``fastbp`` package
(e.g. a worktree's ``src`` after ``python setup.py build_ext --inplace``).
Each is copied under another name (``fastbp_a``, ``fastbp_b``) and imported
side by side. Every round fits each build once for 1 epoch and once for 40
(moons 2000 x 2, hidden (16,), asv's tiny fit); the per-epoch time is the
difference of the two fits' 10th percentiles over 39. Prints both and their
ratio (above 1: NEW is slower). Run it with ``OPENBLAS_NUM_THREADS=1`` for a
one-thread comparison.
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import warnings


def load(tag, src, workdir):
    dst = os.path.join(workdir, tag)
    shutil.copytree(os.path.join(src, "fastbp"), os.path.join(dst, f"fastbp_{tag}"),
                    ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    sys.path.insert(0, dst)
    return importlib.import_module(f"fastbp_{tag}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--solver", default="adam")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=40)
    args = p.parse_args()
    from sklearn.datasets import make_moons

    X, y = make_moons(2000, noise=0.3, random_state=0)
    X = X.astype(args.dtype)
    with tempfile.TemporaryDirectory() as workdir:
        builds = {"a": load("a", args.old, workdir), "b": load("b", args.new, workdir)}
        times = {(tag, epochs): [] for tag in builds for epochs in (1, 40)}
        warnings.simplefilter("ignore")
        for _ in range(args.rounds):
            for tag, module in builds.items():
                for epochs in (1, 40):
                    model = module.MLPClassifier(
                        hidden_layer_sizes=(16,), solver=args.solver,
                        batch_size=args.batch_size, max_iter=epochs, tol=0,
                        n_iter_no_change=10**6, random_state=0)
                    start = time.perf_counter()
                    model.fit(X, y)
                    times[(tag, epochs)].append(time.perf_counter() - start)
    per_epoch = {}
    for tag, src in (("a", args.old), ("b", args.new)):
        one, forty = (sorted(times[(tag, e)])[args.rounds // 10] for e in (1, 40))
        per_epoch[tag] = (forty - one) / 39
        print(f"{src}: 1-epoch fit {one * 1e3:.3f} ms, per epoch {per_epoch[tag] * 1e6:.1f} us")
    print(f"new / old per epoch: {per_epoch['b'] / per_epoch['a']:.3f}")


if __name__ == "__main__":
    main()
