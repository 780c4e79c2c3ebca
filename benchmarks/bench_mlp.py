"""asv benchmarks: fastbp fit and predict, with scikit-learn and PyTorch as
parameterised peers (a peer that is not installed is skipped).

Sizes are smaller than the head-to-head's (``benchmarks/head_to_head.py``) so
that ``asv run --python=same --quick`` finishes in a few minutes; the
workloads are the same shapes, solvers and batch sizes.

Every benchmark has a ``kernels`` parameter: the kernel set fastbp runs
('avx512', 'avx2' or 'baseline', as FASTBP_SIMD or the CPU chooses), so that
asv never compares figures of different sets as one benchmark; ``Machine``
records it (and whether the CPU has AVX-512) as numbers beside asv's own
machine description.
"""

import numpy as np

from fastbp import _bench as hb

try:  # the suite also times commits from before these existed (asv continuous)
    from fastbp import _bench_throughput as tp
except ImportError:
    tp = None

KERNEL_SETS = ("baseline", "avx2", "avx512")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return line.split()
    except OSError:
        pass
    return []


def kernel_set():
    """The kernel set fastbp runs (builds before FASTBP_SIMD existed ran the
    CPU's best, which the CPU's flags tell)."""
    from fastbp import _engine

    if hasattr(_engine, "simd_level"):
        return _engine.simd_level()
    flags = _cpu_flags()
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"


KERNELS = [kernel_set()]

# rows and epochs per workload under asv (the head-to-head uses the full sizes)
ASV_SIZES = {
    "tiny": (2000, 20),
    "digits": (None, 20),
    "wide": (4000, 1),
}
LIBS = ["fastbp", "sklearn", "torch"]


def _require(lib):
    if not hb.available(lib):
        raise NotImplementedError(f"{lib} is not installed")


def _workload(workload, dtype=None):
    """``(X, y, fit arguments)`` of a workload at its asv size (``dtype``: the
    workload's when None)."""
    _, hidden, solver, batch, _, workload_dtype = hb.WORKLOADS[workload]
    dtype = dtype or workload_dtype
    rows, epochs = ASV_SIZES[workload]
    X, y = hb.workload_data(workload, rows)
    return np.ascontiguousarray(X, dtype=dtype), y, (hidden, solver, batch, epochs, dtype)


class Fit:
    """Training time and peak memory: workload x dtype x solver x library."""

    params = (["tiny", "digits", "wide"], ["float32", "float64"], ["sgd", "adam"], LIBS, KERNELS)
    param_names = ["workload", "dtype", "solver", "library", "kernels"]
    timeout = 600

    def setup(self, workload, dtype, solver, library, kernels):
        _require(library)
        self.X, self.y, (hidden, _, batch, epochs, _) = _workload(workload, dtype)
        self.args = (hidden, solver, batch, epochs, dtype)

    def time_fit(self, workload, dtype, solver, library, kernels):
        hb.fit(library, self.X, self.y, *self.args)

    def peakmem_fit(self, workload, dtype, solver, library, kernels):
        hb.fit(library, self.X, self.y, *self.args)


class Predict:
    """predict latency (one row) and throughput (the whole digits set x 10)."""

    params = (["one_row", "many_rows"], ["float32", "float64"], LIBS, KERNELS)
    param_names = ["rows", "dtype", "library", "kernels"]

    def setup(self, rows, dtype, library, kernels):
        _require(library)
        X, y = hb.digits()
        X = np.ascontiguousarray(X, dtype=dtype)
        _, _, self.model = hb.fit(library, X, y, (100,), "adam", 200, 5, dtype)
        self.X = X[:1].copy() if rows == "one_row" else np.tile(X, (10, 1))
        if library == "torch":
            import torch

            Xt = torch.from_numpy(self.X)
            net = self.model

            def predict(_):
                with torch.no_grad():
                    return net(Xt).argmax(1)

            self.predict = predict
        else:
            self.predict = self.model.predict
        self.predict(self.X)  # first call builds fastbp's small-input path

    def time_predict(self, rows, dtype, library, kernels):
        self.predict(self.X)

    def peakmem_predict(self, rows, dtype, library, kernels):
        self.predict(self.X)


class SizeSweep:
    """How one epoch of training grows with rows and layer width (adam,
    batch 200, two hidden layers of ``width`` units, 64 features)."""

    params = ([1000, 4000, 16000], [16, 128, 512], ["fastbp", "sklearn"], KERNELS)
    param_names = ["rows", "width", "library", "kernels"]
    timeout = 600

    def setup(self, rows, width, library, kernels):
        _require(library)
        self.X, self.y = hb.synth(rows, 64, 5, seed=2, dtype=np.float32)

    def time_fit_one_epoch(self, rows, width, library, kernels):
        hb.fit(library, self.X, self.y, (width, width), "adam", 200, 1, "float32")


class Activations:
    """Each hidden activation, both dtypes: the exp-based ones (tanh,
    logistic) should cost little more than relu; a loop that stops
    vectorising shows here first (regression 20-64-64-1, sgd, batch 32)."""

    params = (["relu", "leaky_relu", "tanh", "logistic", "identity"], ["float32", "float64"],
              ["fastbp", "sklearn"], KERNELS)
    param_names = ["activation", "dtype", "library", "kernels"]
    timeout = 600

    def setup(self, activation, dtype, library, kernels):
        _require(library)
        rng = np.random.default_rng(5)
        X = rng.normal(size=(4000, 20))
        self.y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
        self.X = np.ascontiguousarray(X, dtype=dtype)
        if library == "sklearn" and activation == "leaky_relu":
            raise NotImplementedError("scikit-learn has no leaky_relu")

    def time_fit(self, activation, dtype, library, kernels):
        hb.fit(library, self.X, self.y, (64, 64), "sgd", 32, 3, dtype, True, activation)


class ThreadingModes:
    """Both ways of splitting a batch between threads, forced, on shapes
    either side of the data-parallel threshold (activations / parameters =
    1): where the engine's choice by shape should be the faster one."""

    params = (["digits 64-100-10 b200", "32-128-4 b128", "deep-narrow 32-(64x6)-4 b64",
               "wide 784-256-128-10 b128"], ["data-parallel", "row/parameter split"], KERNELS)
    param_names = ["shape", "mode", "kernels"]
    timeout = 600
    SHAPES = {
        "digits 64-100-10 b200": (None, (100,), 200, 20),
        "32-128-4 b128": ((4000, 32, 4), (128,), 128, 3),
        "deep-narrow 32-(64x6)-4 b64": ((4000, 32, 4), (64,) * 6, 64, 3),
        "wide 784-256-128-10 b128": ((4000, 784, 10), (256, 128), 128, 1),
    }

    def setup(self, shape, mode, kernels):
        from fastbp import _engine

        data, self.hidden, self.batch, self.epochs = self.SHAPES[shape]
        if data is None:
            self.X, self.y = hb.digits()
        else:
            self.X, self.y = hb.synth(*data, seed=3, dtype=np.float64)
        self.old = _engine.set_data_parallel_ratio(0.0 if mode == "data-parallel" else 1e300)

    def teardown(self, shape, mode, kernels):
        from fastbp import _engine

        _engine.set_data_parallel_ratio(self.old)

    def time_fit(self, shape, mode, kernels):
        hb.fit("fastbp", self.X, self.y, self.hidden, "adam", self.batch, self.epochs, "float64")


class SparseFit:
    """CSR input (TF-IDF-like, 0.1% dense): the first layer reads the sparse
    rows in place. The head-to-head's ``--sparse`` runs 20000 x 50000."""

    params = (["fastbp", "sklearn"], KERNELS)
    param_names = ["library", "kernels"]
    timeout = 600

    def setup(self, library, kernels):
        _require(library)
        self.X, self.y = hb.sparse_data(n=5000, d=20000, density=0.001)

    def time_fit(self, library, kernels):
        hb.fit(library, self.X, self.y, (100,), "adam", 200, 1, "float64")

    def peakmem_fit(self, library, kernels):
        hb.fit(library, self.X, self.y, (100,), "adam", 200, 1, "float64")


class Threads:
    """fastbp training with its threads limited by threadpoolctl (1) or not."""

    params = (["digits", "wide"], [1, 0], KERNELS)
    param_names = ["workload", "thread_limit", "kernels"]
    timeout = 600

    def setup(self, workload, thread_limit, kernels):
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            raise NotImplementedError("threadpoolctl is not installed")
        self.X, self.y, self.args = _workload(workload)

    def time_fit(self, workload, thread_limit, kernels):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=thread_limit or None, user_api="blas"):
            hb.fit("fastbp", self.X, self.y, *self.args)


class TrainingOptions:
    """Each training option's own cost (issue 10) on the digits (64-100-10 adam
    b200 f64) and wide (784-256-128-10 adam b128 f32) shapes: the same fit with
    one option on. Targets: the new activations within 1.3x of tanh's time;
    dropout <= +15% over the same fit without it; weight decay, the per-step
    schedules and label smoothing <= +3%; clipping <= +8%. 'modern' is the
    head-to-head's row (GELU, dropout 0.1, AdamW 0.01, cosine, alpha 0)."""

    OPTIONS = {
        "baseline": {},
        "tanh": dict(activation="tanh"),
        "gelu": dict(activation="gelu"),
        "silu": dict(activation="silu"),
        "selu": dict(activation="selu"),
        "mish": dict(activation="mish"),
        "softplus": dict(activation="softplus"),
        "dropout": dict(dropout=0.1),
        "weight_decay": dict(weight_decay=0.01),
        "cosine": dict(learning_rate="cosine"),
        "warmup": dict(warmup=0.1),
        "label_smoothing": dict(label_smoothing=0.1),
        "clipping": dict(max_grad_norm=1.0),
        "modern": getattr(hb, "MODERN_OPTIONS", None),
    }
    params = (["digits", "wide"], list(OPTIONS), KERNELS)
    param_names = ["workload", "option", "kernels"]
    timeout = 600

    def setup(self, workload, option, kernels):
        if self.OPTIONS[option] is None:
            raise NotImplementedError("this fastbp has no modern-training row")
        self.X, self.y, self.args = _workload(workload)

    def time_fit(self, workload, option, kernels):
        hb.fit("fastbp", self.X, self.y, *self.args, **self.OPTIONS[option])


class ModernHeadToHead:
    """The head-to-head's modern-training rows: fastbp against the same PyTorch
    loop (GELU, dropout, AdamW, per-batch cosine schedule)."""

    params = (["digits", "wide"], ["fastbp", "torch"], KERNELS)
    param_names = ["workload", "library", "kernels"]
    timeout = 600

    def setup(self, workload, library, kernels):
        _require(library)
        self.X, self.y, args = _workload(workload)
        self.epochs = args[3]

    def time_fit(self, workload, library, kernels):
        hb.fit_modern(library, workload, self.X, self.y, self.epochs)


class Machine:
    """What the figures were measured on, as numbers asv keeps per run: the
    kernel set fastbp ran (0 baseline, 1 AVX2, 2 AVX-512) and whether the CPU
    has AVX-512 (asv's machine.json has the CPU model)."""

    params = (KERNELS,)
    param_names = ["kernels"]

    def track_kernel_set(self, kernels):
        return KERNEL_SETS.index(kernels)

    track_kernel_set.unit = "set (0 baseline, 1 avx2, 2 avx512)"

    def track_cpu_avx512f(self, kernels):
        return int("avx512f" in _cpu_flags())

    track_cpu_avx512f.unit = "has AVX-512F"


class PredictProbaThroughput:
    """``predict_proba`` throughput (issue 12): the digits (64-100-10) and wide
    (784-256-128-10) networks in float32, batches of 1, 8, 64, 256, 1,000 and 20,000 rows, in
    fastbp, scikit-learn, PyTorch (``inference_mode``) and ONNX Runtime
    (``intra_op_num_threads`` = cores), all on the same weights (the head-to-head's
    ``fastbp bench`` rows, from ``fastbp._bench_throughput``)."""

    params = (["digits", "wide"], [1, 8, 64, 256, 1000, 20000],
              ["fastbp", "sklearn", "torch", "onnxruntime"], KERNELS)
    param_names = ["network", "batch", "library", "kernels"]
    timeout = 600

    def setup(self, network, batch, library, kernels):
        if tp is None:
            raise NotImplementedError("this fastbp has no throughput head-to-head")
        if not tp.available(library):
            raise NotImplementedError(f"{library} is not installed")
        self.predict_proba = tp.predict_proba_function(library, tp.throughput_model(network))
        self.X = tp.network_rows(network, batch)
        self.predict_proba(self.X)  # first call: fastbp's small-input path, ORT's arena

    def time_predict_proba(self, network, batch, library, kernels):
        self.predict_proba(self.X)
