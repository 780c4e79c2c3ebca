"""The head-to-head benchmark runs end to end on a small slice and writes the
JSON that benchmarks/plot_results.py turns into the README chart. (No
timings are asserted: speed lives in the benchmarks, not in tests.)"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fastbp import _bench

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
    from fastbp import _engine

    assert f"fastbp kernels {_engine.simd_level()}" in text.splitlines()[0]
    info = res["machine_info"]
    assert info["fastbp_kernels"] == _engine.simd_level() in _engine.cpu_simd_levels()
    assert info["cpu"] and info["cores"] >= 1 and info["avx512f"] in (True, False, None)
    tiny = res["fit"]["tiny"]
    libs = [lib for lib in ("fastbp", "sklearn") if _bench.available(lib)]
    assert res["libs"] == libs
    for lib in libs:
        assert tiny[lib]["s"] > 0 and 0.5 < tiny[lib]["acc"] <= 1
    if "sklearn" in libs:  # same draws, same arithmetic: the same accuracy
        assert tiny["fastbp"]["acc"] == pytest.approx(tiny["sklearn"]["acc"], abs=0.01)


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
