"""The head-to-head benchmark runs end to end on a small slice and writes the
JSON that benchmarks/plot_results.py turns into the README chart. (No
timings are asserted: speed lives in the benchmarks, not in tests.)"""

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from fastbp import _bench, _engine

ROOT = Path(__file__).resolve().parent.parent


def test_head_to_head_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "res.json"
    code = _bench.main(["--workloads", "tiny", "--libs", "fastbp,sklearn", "--repeat", "1",
                        "--no-predict", "--no-peak", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "machine:" in text and "| workload |" in text
    res = json.loads(out.read_text())
    # the kernel set that ran is recorded, in the header line and the JSON
    assert f"fastbp kernels {_engine.simd_level()}" in text.splitlines()[0]
    info = res["machine_info"]
    assert info["fastbp_kernels"] == _engine.simd_level() in _engine.cpu_simd_levels()
    assert info["cpu"] and info["cores"] >= 1 and info["avx512f"] in (True, False, None)
    tiny = res["fit"]["tiny"]
    libs = [lib for lib in ("fastbp", "sklearn") if _bench.available(lib)]
    assert res["libs"] == libs
    for lib in libs:
        assert tiny[lib]["s"] > 0 and 0.5 < tiny[lib]["acc"] <= 1
        # the host's steal over the library's runs (None: unknown or too short)
        assert tiny[lib]["steal"] is None or 0 <= tiny[lib]["steal"] <= 1
    assert res["steal"] is None or 0 <= res["steal"] <= 1
    if "sklearn" in libs:  # same draws, same arithmetic: the same accuracy
        assert tiny["fastbp"]["acc"] == pytest.approx(tiny["sklearn"]["acc"], abs=0.01)


def test_host_steal_share_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 20 300 4 0 1 10 0 0\ncpu0 50 2 10 150 2 0 1 5 0 0\n")
    before = _bench.host_cpu_ticks(stat)
    assert before == {"user": 100, "nice": 5, "system": 20, "idle": 300, "iowait": 4,
                      "irq": 0, "softirq": 1, "steal": 10}
    stat.write_text("cpu  160 5 30 320 4 0 1 20 0 0\n")
    after = _bench.host_cpu_ticks(stat)
    # 100 ticks went by on all CPUs together, 10 of them stolen
    assert _bench.steal_share(before, after) == pytest.approx(0.10)
    assert "steal 10.0%" in _bench._steal_note(_bench.steal_share(before, after))
    # too short an interval to tell, or nothing to read: no figure
    stat.write_text("cpu  101 5 20 305 4 0 1 10 0 0\n")
    assert _bench.steal_share(before, _bench.host_cpu_ticks(stat)) is None
    assert _bench._steal_note(None) == ""
    assert _bench.host_cpu_ticks(tmp_path / "missing") is None
    stat.write_text("intr 1 2 3\n")
    assert _bench.host_cpu_ticks(stat) is None
    assert _bench.steal_share(None, after) is None


def test_plot_script_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("plot_results",
                                                  ROOT / "benchmarks" / "plot_results.py")
    plot_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot_results)
    res = {"machine": "test", "libs": ["fastbp", "sklearn"],
           "fit": {"tiny": {"desc": "t", "fastbp": {"s": 0.01}, "sklearn": {"s": 0.5}}},
           "predict1": {"fastbp": 2.0, "sklearn": 100.0},
           "sweep": [{"problem": "deep-narrow x", "solver": "sgd", "dtype": "float64",
                      "batch": 64, "fastbp": 0.1, "sklearn": 0.3}]}
    src = tmp_path / "r.json"
    src.write_text(json.dumps(res))
    png = tmp_path / "chart.png"
    assert plot_results.main([str(src), str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ups = plot_results.speedups(res)
    assert ups["sklearn"] == [("tiny", pytest.approx(50.0)), ("predict1", pytest.approx(50.0))]


def test_results_tables_print_one_runs_figures(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("results_tables",
                                                  ROOT / "benchmarks" / "results_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    res = {"machine": "test box", "libs": ["fastbp", "sklearn", "torch"],
           "limit": {"float32": 400.0, "float64": 200.0},
           "fit": {"wide": {"desc": "w", "fastbp": {"s": 0.2, "acc": 0.9, "gflops": 250.0},
                            "sklearn": {"s": 0.6, "acc": 0.9}, "torch": {"s": 0.5, "acc": 0.8}}},
           "predict1": {"fastbp": 1.0, "sklearn": 100.0, "torch": 12.0},
           "memory": {"fastbp": {"added_mib": 10.0}, "sklearn": {"added_mib": 40.0}},
           "sparse": {"fastbp": {"s": 1.0, "acc": 0.99}, "sklearn": {"s": 12.0, "acc": 0.99}},
           "sweep": [{"problem": "p", "solver": "sgd", "dtype": "float32", "batch": 8,
                      "epochs": 1, "fastbp": 0.1, "sklearn": 0.35}]}
    src = tmp_path / "r.json"
    src.write_text(json.dumps(res))
    assert tables.main([str(src)]) == 0
    out = capsys.readouterr().out
    assert "machine: test box" in out
    assert "| 200.0 ms | 600.0 ms | 500.0 ms | **3.0×** | **2.5×** | 0.900 / 0.900 / 0.800 |" in out
    assert "| 1.00 µs | 100 µs | 12.0 µs | **100×** | **12×** |" in out
    assert "**12×**" in out and "+10.0 MiB | +40.0 MiB | –" in out
    assert "250 GFLOP/s, 62% of the measured sgemm peak" in out
    assert "| p | sgd | f32 | 8 | 1 | 0.1000 | 0.3500 | – | 3.5× |" in out


def test_sparse_benchmark_data_has_the_asked_density():
    X, y = _bench.sparse_data(n=500, d=4000, density=0.005, k=3)
    assert X.shape == (500, 4000) and X.format == "csr"
    assert abs(X.nnz / (500 * 4000) - 0.005) < 0.0005
    assert set(np.unique(y)) <= {0, 1, 2}


def test_synth_labels_are_those_of_the_linear_map():
    # synth applies its map with einsum; the data are those of X @ W
    X, y = _bench.synth(3000, 784, 10, seed=4)
    rng = np.random.default_rng(4)
    W = rng.normal(size=(784, 10))
    X_ref = rng.normal(size=(3000, 784)).astype(np.float32)
    y_ref = np.argmax(X_ref @ W + rng.gumbel(size=(3000, 10)), 1)
    assert np.array_equal(X, X_ref) and np.array_equal(y, y_ref)


def _other_threads_cpu_ns():
    import threading

    me = threading.get_native_id()
    out = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != me:
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as fh:
                    out += int(fh.read().split()[0])
            except OSError:  # a thread that ended meanwhile
                pass
    return out


def _others_busy_after(call, seconds=0.1):
    # CPU time the process's other threads spend in the ``seconds`` after ``call``
    time.sleep(0.3)  # spinning threads of earlier tests go to sleep
    before = _other_threads_cpu_ns()
    call()
    time.sleep(seconds)
    return (_other_threads_cpu_ns() - before) / 1e9


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux's /proc")
def test_synth_leaves_no_blas_thread_spinning():
    # asv re-runs setup (synth) before every timed call: a threaded product
    # there leaves OpenBLAS's workers spinning through the fit timed next
    X, W = np.ones((4000, 784)), np.ones((784, 10))
    if _others_busy_after(lambda: X @ W) < 0.02:
        pytest.skip("numpy's BLAS runs on one thread here: nothing would spin")
    assert _others_busy_after(lambda: _bench.synth(4000, 784, 10)) < 0.01


def test_benchmark_modules_import_with_runtime_dependencies_only():
    # asv imports every module in benchmarks/ to discover the suite; a
    # module-level import of an optional package (threadpoolctl, sklearn,
    # matplotlib, ...) breaks `asv run` where that package is missing
    import ast
    import pathlib
    import sys

    allowed = set(sys.stdlib_module_names) | {"numpy", "scipy", "fastbp", "benchmarks"}
    root = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    modules = sorted(root.glob("*.py"))
    assert len(modules) >= 3
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (
                    f"{path.name} imports {name} at module level; import it where it is used")


def test_modern_training_rows_run_fastbp_and_the_pytorch_loop(capsys):
    # digits with GELU, dropout, AdamW and a per-step cosine schedule in both
    X, y = _bench.digits()
    libs = ["fastbp"] + (["torch"] if _bench.available("torch") else [])
    row = _bench.run_modern("digits", X[:400], y[:400], libs + ["sklearn"], 1, epochs=8)
    assert "sklearn" not in row and set(libs) <= set(row)
    for lib in libs:
        assert row[lib]["s"] > 0 and row[lib]["acc"] > 0.15  # 10 classes: learning
    res = {"fit": {}, "predict1": {}, "limit": {}, "modern": {"digits": row}}
    _bench._print_summary(res, libs)
    out = capsys.readouterr().out
    assert "dropout 0.1, AdamW 0.01, cosine, GELU" in out and "torch >= 5x" in out
    model = _bench.fit_modern("fastbp", "digits", X[:200], y[:200], epochs=2)[2]
    assert (model.activation, model.dropout, model.weight_decay, model.learning_rate) == (
        "gelu", 0.1, 0.01, "cosine")


# ---------------------------------------------------------------------------
# the predict_proba throughput head-to-head (issue 12)
# ---------------------------------------------------------------------------

def test_throughput_peers_use_fastbp_s_weights_and_agree():
    from fastbp import _bench_throughput as tp

    model = tp.throughput_model("digits", n_train=200, epochs=1)
    X = tp.network_rows("digits", 37)
    expected = model.predict_proba(X)
    peers = [lib for lib in tp.PEERS if tp.available(lib)]
    assert peers[0] == "fastbp"
    for lib in peers:
        probabilities = tp.predict_proba_function(lib, model)(X)
        assert probabilities.shape == (37, 10) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=tp.AGREEMENT)
    with pytest.raises(ValueError, match="unknown peer 'mxnet'"):
        tp.predict_proba_function("mxnet", model)


def test_throughput_rows_and_table_from_one_run():
    from fastbp import _bench_throughput as tp

    lines = []
    res = tp.run_throughput(list(tp.PEERS), networks=("wide",), batches=(1, 9), repeat=1,
                            min_seconds=0, model_rows=100, out=lines.append)
    libs = [lib for lib in tp.PEERS if tp.available(lib)]
    assert res["libs"] == libs
    assert [(row["network"], row["batch"]) for row in res["rows"]] == [("wide", 1), ("wide", 9)]
    for row in res["rows"]:
        for lib in libs:
            assert row[lib]["s"] > 0 and row[lib]["max_diff"] <= tp.AGREEMENT
            assert row[lib]["rows_per_s"] == pytest.approx(row["batch"] / row[lib]["s"])
    assert len(lines) == 2 and all("predict_proba wide 784-256-128-10" in line for line in lines)
    table = tp.throughput_table(res).splitlines()
    assert table[0].startswith("| predict_proba, float32 | batch | fastbp |")
    assert len(table) == 4 and table[2].startswith("| wide 784-256-128-10 | 1 |")


def test_a_peer_that_disagrees_is_not_timed(monkeypatch):
    from fastbp import _bench_throughput as tp

    real = tp.predict_proba_function

    def off_by_a_little(lib, model):
        function = real(lib, model)
        return function if lib == "fastbp" else (lambda X: function(X) + 1e-3)

    monkeypatch.setattr(tp, "predict_proba_function", off_by_a_little)
    if not tp.available("sklearn"):
        pytest.skip("needs a peer")
    with pytest.raises(RuntimeError, match="sklearn's probabilities differ from fastbp's"):
        tp.run_throughput(["sklearn"], networks=("digits",), batches=(3,), repeat=1,
                          min_seconds=0, model_rows=100, out=lambda line: None)


def test_fastbp_bench_prints_the_throughput_table(tmp_path, capsys, monkeypatch):
    desc, hidden, solver, batch, _, dtype = _bench.WORKLOADS["digits"]
    monkeypatch.setitem(_bench.WORKLOADS, "digits", (desc, hidden, solver, batch, 1, dtype))
    out = tmp_path / "res.json"
    code = _bench.main(["--workloads", "digits", "--libs", "fastbp,onnxruntime", "--repeat",
                        "1", "--no-predict", "--no-peak", "--no-modern",
                        "--throughput-batches", "1,4", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "| predict_proba, float32 | batch | fastbp |" in text
    res = json.loads(out.read_text())
    assert res["libs"] == ["fastbp"]  # onnxruntime serves, it does not train
    throughput = res["throughput"]
    assert throughput["libs"] == ["fastbp"] + (
        ["onnxruntime"] if _bench.available("onnxruntime") else [])
    assert [row["batch"] for row in throughput["rows"]] == [1, 4]


def test_asv_throughput_benchmark_runs_every_installed_peer():
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.bench_mlp import PredictProbaThroughput
    finally:
        sys.path.remove(str(ROOT))
    bench = PredictProbaThroughput()
    network, batches, peers, kernels = PredictProbaThroughput.params
    assert (network, batches, peers) == (["digits", "wide"], [1, 8, 64, 256, 1000, 20000],
                                         ["fastbp", "sklearn", "torch", "onnxruntime"])
    assert kernels == [_engine.simd_level()]
    for lib in peers:
        if not _bench.available(lib):
            with pytest.raises(NotImplementedError):
                bench.setup("digits", 1, lib, kernels[0])
            continue
        bench.setup("digits", 1, lib, kernels[0])
        assert bench.predict_proba(bench.X).shape == (1, 10)
        bench.time_predict_proba("digits", 1, lib, kernels[0])


def test_step_bound_times_exactly_a_training_steps_products():
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import step_bound
    finally:
        sys.path.remove(str(ROOT))
    sizes, rows = [7, 5, 4, 3], 6
    products = step_bound.step_products(sizes, np.float64, rows, np.random.default_rng(0))
    step_bound.run_products(products, 1)
    # per layer: the forward product, the weight gradient, and (past the first) the deltas
    assert [(C.shape, ta, tb) for _, _, C, ta, tb in products] == [
        ((6, 5), False, False), ((7, 5), True, False),
        ((6, 4), False, False), ((5, 4), True, False), ((6, 5), False, True),
        ((6, 3), False, False), ((4, 3), True, False), ((6, 4), False, True)]
    for A, B, C, trans_a, trans_b in products:
        np.testing.assert_allclose(C, (A.T if trans_a else A) @ (B.T if trans_b else B),
                                   rtol=1e-12)
    # the bench's workloads as the harness runs them
    assert step_bound.workload_shape("digits") == ([64, 100, 10], np.float64, 200, 100, 1797)
    assert step_bound.workload_shape("wide") == ([784, 256, 128, 10], np.float32, 128, 3, 20000)
    # the harness's count: forward + weight gradient, + hidden deltas past the first layer
    assert _bench.flops_per_epoch(1797 * 100, [64, 100, 10]) == 1797 * 100 * (4 * 6400 + 6 * 1000)
