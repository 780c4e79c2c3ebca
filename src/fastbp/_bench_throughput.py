"""Prediction throughput head-to-head (issue 12): ``predict_proba`` of one network in
fastbp, scikit-learn, PyTorch and ONNX Runtime, on the same weights and rows.

The networks are the digits (64-100-10) and wide (784-256-128-10) shapes in float32,
trained briefly by fastbp (the weights only need to be the same everywhere); each peer
gets those weights: scikit-learn's MLPClassifier with ``coefs_`` / ``intercepts_``
replaced, a PyTorch ``nn.Sequential`` called under ``torch.inference_mode()``, and the
model exported by ``fastbp.onnx.to_onnx`` in an onnxruntime session with
``intra_op_num_threads`` = the machine's cores. Every peer's probabilities are checked
against fastbp's before it is timed. A peer that is not installed is skipped.

``run_throughput`` returns the figures; ``_bench.main`` prints them with the rest of
``fastbp bench`` and ``benchmarks/bench_mlp.py`` times the same callables under asv.
"""

import os
import time
import warnings

import numpy as np

from ._bench_data import digits

# network -> (description, hidden layers, input width)
NETWORKS = {
    "digits": ("digits 64-100-10", (100,), 64),
    "wide": ("wide 784-256-128-10", (256, 128), 784),
}
BATCHES = (1, 8, 64, 256, 1000, 20000)
PEERS = ("fastbp", "sklearn", "torch", "onnxruntime")
AGREEMENT = 1e-4   # most |probability difference| a peer may show against fastbp (float32)
MIN_SECONDS = 0.05  # each timing repeats the call for at least this long


def available(lib):
    """Whether the peer ``lib`` can run here (onnxruntime needs onnx to export too)."""
    modules = {"fastbp": ["fastbp"], "sklearn": ["sklearn"], "torch": ["torch"],
               "onnxruntime": ["onnxruntime", "onnx"]}[lib]
    try:
        for module in modules:
            __import__(module)
    except ImportError:
        return False
    return True


def network_rows(network, n_rows, seed=0):
    """``n_rows`` float32 rows of the network's input width (digits: the digits
    set, repeated; wide: Gaussian rows)."""
    if network == "digits":
        X = digits()[0]
        X = np.tile(X, (-(-n_rows // len(X)), 1))[:n_rows]
    else:
        X = np.random.default_rng(seed).normal(size=(n_rows, NETWORKS[network][2]))
    return np.ascontiguousarray(X, dtype=np.float32)


def throughput_model(network, n_train=2000, epochs=2):
    """A fastbp float32 MLPClassifier of the network's shape, ten classes."""
    from . import MLPClassifier

    X = network_rows(network, n_train, seed=1)
    y = np.arange(n_train) % 10  # every class present; the fit only sets weights
    model = MLPClassifier(NETWORKS[network][1], max_iter=epochs, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def _sklearn_peer(model):
    from sklearn.neural_network import MLPClassifier

    peer = MLPClassifier(model.hidden_layer_sizes, activation=model.activation, max_iter=1)
    X = np.zeros((len(model.classes_), model.n_features_in_), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.fit(X, model.classes_)  # the structure; the weights are replaced next
    peer.coefs_ = [np.array(c) for c in model.coefs_]
    peer.intercepts_ = [np.array(b) for b in model.intercepts_]
    return peer.predict_proba


def _torch_peer(model):
    import torch

    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
                  "logistic": torch.nn.Sigmoid, "identity": torch.nn.Identity}[model.activation]
    layers = []
    for i, (weights, bias) in enumerate(zip(model.coefs_, model.intercepts_)):
        linear = torch.nn.Linear(*weights.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights.T)))
            linear.bias.copy_(torch.from_numpy(np.asarray(bias)))
        layers.append(linear)
        layers.append(activation() if i < len(model.coefs_) - 1 else torch.nn.Softmax(dim=1))
    net = torch.nn.Sequential(*layers).eval()

    def predict_proba(X):
        with torch.inference_mode():
            return net(torch.from_numpy(X)).numpy()

    return predict_proba


def _onnxruntime_peer(model):
    import onnxruntime

    from .onnx import to_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])

    def predict_proba(X):
        return session.run(["probabilities"], {"X": X})[0]

    return predict_proba


def predict_proba_function(lib, model):
    """``lib``'s ``predict_proba`` on ``model``'s weights: a callable taking float32
    rows and returning the probability matrix."""
    if lib == "fastbp":
        return model.predict_proba
    builders = {"sklearn": _sklearn_peer, "torch": _torch_peer,
                "onnxruntime": _onnxruntime_peer}
    if lib not in builders:
        raise ValueError(f"unknown peer {lib!r}; expected one of {list(PEERS)}")
    return builders[lib](model)


def seconds_per_call(function, X, repeat=3, min_seconds=MIN_SECONDS):
    """Best, over ``repeat`` runs, of the mean seconds per ``function(X)`` over
    enough calls to last ``min_seconds`` (one warm-up call first)."""
    t = time.perf_counter()
    function(X)
    first = max(time.perf_counter() - t, 1e-7)
    n_calls = max(1, int(min_seconds / first))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n_calls):
            function(X)
        best = min(best, (time.perf_counter() - t) / n_calls)
    return best


def run_throughput(libs, networks=tuple(NETWORKS), batches=BATCHES, repeat=3,
                   min_seconds=MIN_SECONDS, settle=None, model_rows=2000, out=print):
    """Time every peer's ``predict_proba`` per network and batch size.

    Returns ``{"libs": [...], "rows": [{"network", "desc", "batch", lib: {"s",
    "rows_per_s", "max_diff"}, ...}, ...]}``; ``max_diff`` is the peer's largest
    probability difference against fastbp on the timed rows. A peer whose
    probabilities differ by more than ``AGREEMENT`` raises RuntimeError.
    """
    libs = ["fastbp"] + [lib for lib in libs if lib != "fastbp" and available(lib)]
    rows = []
    for network in networks:
        model = throughput_model(network, model_rows)
        functions = {lib: predict_proba_function(lib, model) for lib in libs}
        for batch in batches:
            X = network_rows(network, batch)
            expected = functions["fastbp"](X)
            row = {"network": network, "desc": NETWORKS[network][0], "batch": batch}
            for lib in libs:
                difference = float(np.abs(functions[lib](X) - expected).max())
                if difference > AGREEMENT:
                    raise RuntimeError(f"{lib}'s probabilities differ from fastbp's by "
                                       f"{difference:.2e} on {network}, batch {batch}")
                row[lib] = {"s": float("inf"), "max_diff": difference}
            # the libraries take turns, ``repeat`` rounds, each keeping its best:
            # a library's idle thread pools can slow the next one's calls for a
            # while, and taking turns gives every library the same chances
            for _ in range(repeat):
                for lib in libs:
                    if settle is not None:
                        settle()
                    row[lib]["s"] = min(row[lib]["s"],
                                        seconds_per_call(functions[lib], X, 1, min_seconds))
            for lib in libs:
                row[lib]["rows_per_s"] = batch / row[lib]["s"]
            rows.append(row)
            out(throughput_line(row, libs))
    return {"libs": libs, "rows": rows}


def _duration(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def throughput_line(row, libs):
    text = f"predict_proba {row['desc']:20s} f32 batch {row['batch']:<6d}"
    for lib in libs:
        text += f" {lib} {_duration(row[lib]['s']):>10s}"
    return text


def throughput_table(result):
    """The figures as a Markdown table: time per call, each peer's time over
    fastbp's (above 1: fastbp is faster), fastbp's rows per second."""
    libs = result["libs"]
    lines = ["| predict_proba, float32 | batch | " + " | ".join(libs) + " | "
             + " | ".join(f"{lib}/fastbp" for lib in libs[1:]) + " | fastbp rows/s |",
             "|---" * (2 * len(libs) + 2) + "|"]
    for row in result["rows"]:
        fastbp = row["fastbp"]["s"]
        cells = [_duration(row[lib]["s"]) for lib in libs]
        ratios = [f"{row[lib]['s'] / fastbp:.2f}x" for lib in libs[1:]]
        lines.append(f"| {row['desc']} | {row['batch']} | " + " | ".join(cells) + " | "
                     + " | ".join(ratios) + f" | {row['fastbp']['rows_per_s']:,.0f} |")
    return "\n".join(lines)
