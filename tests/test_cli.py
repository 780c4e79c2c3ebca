"""The command line: ``fastbp train / predict / bench / demo`` and ``python -m fastbp``.

Run in-process through ``fastbp._cli.main(argv)`` on tiny files, and once
as a subprocess (the README's demo command).
"""

import csv
import json
import importlib.util
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fastbp
from _subprocess_env import package_env  # noqa: E402
from fastbp._cli import main

pd = pytest.importorskip("pandas")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    with open("labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "label"])
        for row, label in zip(X, labels):
            w.writerow([f"{v:.6f}" for v in row] + [label])
    # no header, integer classes in the last column
    with open("plain.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        for row in X:
            w.writerow([f"{v:.6f}" for v in row] + [int(row[2] > 0)])
    np.save("reg.npy", np.column_stack([X[:, 0] - 2 * X[:, 1], X]))  # target first
    np.savez("xy.npz", X=X, y=(X[:, 0] > 0).astype(int))
    # the features as the CSV files hold them (six decimals)
    X_csv = np.loadtxt("labels.csv", delimiter=",", skiprows=1, usecols=(0, 1, 2))
    return X_csv, X, labels


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_csv_text(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def test_help_everywhere(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("train", "predict", "evaluate", "info", "bench", "demo"):
        assert command in out
    for command in ("train", "predict", "evaluate", "info", "demo"):
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: fastbp {command}")
    code, out, _ = run_cli(capsys, "bench", "--help")
    assert code == 0 and "usage:" in out
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"fastbp {fastbp.__version__}"


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_train_csv_with_class_names_then_predict(workdir, capsys):
    X, _, _ = workdir
    code, out, err = run_cli(capsys, "train", "labels.csv", "--target", "label",
                             "--hidden", "8,4", "--epochs", "7", "--random-state", "0",
                             "--progress", "lines", "-o", "m.fbp")
    assert code == 0, err
    model = fastbp.load("m.fbp")
    assert list(model.classes_) == ["no", "yes"]
    assert model.mlp_.hidden_layer_sizes == (8, 4) and model.mlp_.n_iter_ == 7
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    X = pd.DataFrame(X, columns=["a", "b", "c"])
    # one progress line per epoch, then the summary
    assert re.findall(r"^epoch +(\d+)/7  loss \d\.\d{6}$", out, re.M) == [
        str(i) for i in range(1, 8)]
    assert "model saved to m.fbp" in out
    assert "Maximum iterations (7) reached" in err  # the ConvergenceWarning, one line

    code, out, err = run_cli(capsys, "predict", "m.fbp", "labels.csv", "--proba")
    assert code == 0, err
    header, rows = read_csv_text(out)
    assert header == ["prediction", "proba_no", "proba_yes"]
    assert len(rows) == len(X)
    expected = model.predict(X)
    assert [r[0] for r in rows] == list(expected)
    proba = np.array([[float(p) for p in r[1:]] for r in rows])
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-15)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_cli_trains_what_the_python_api_trains(workdir, capsys):
    X, _, labels = workdir
    code, _, err = run_cli(capsys, "train", "labels.csv", "-t", "3", "--hidden", "5",
                           "--solver", "sgd", "--activation", "tanh", "--epochs", "4",
                           "--batch-size", "16", "--learning-rate", "0.05", "--alpha",
                           "0.001", "--random-state", "3", "--quiet", "--no-preprocessing",
                           "-o", "m.fbp")
    assert code == 0, err
    assert err == ""  # --quiet: not even the convergence warning
    cli = fastbp.load("m.fbp")
    api = fastbp.MLP((5,), activation="tanh", solver="sgd", max_iter=4, batch_size=16,
                     learning_rate_init=0.05, alpha=0.001, random_state=3)
    with pytest.warns(fastbp.ConvergenceWarning):
        api.fit(X, labels)
    for a, b in zip(cli.coefs_ + cli.intercepts_, api.coefs_ + api.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert cli.get_params()["learning_rate_init"] == 0.05


@pytest.mark.skipif(importlib.util.find_spec("tqdm") is None, reason="needs tqdm")
def test_progress_bar(workdir, capsys):
    code, out, err = run_cli(capsys, "train", "plain.csv", "--epochs", "6",
                             "--progress", "bar", "-o", "p.fbp")
    assert code == 0, err
    assert "6/6" in err and "training" in err       # tqdm draws on stderr
    assert not re.search(r"^epoch", out, re.M)
    saved = fastbp.load("p.fbp")  # the progress bar is not saved with the model
    assert saved.mlp_.get_params()["callbacks"] is None
    assert saved.mlp.get_params()["callbacks"] is None


def test_headerless_csv_integer_labels_and_prediction_to_file(workdir, capsys):
    X, _, _ = workdir
    code, out, err = run_cli(capsys, "train", "plain.csv", "--epochs", "3", "--quiet",
                             "-o", "p.fbp")
    assert code == 0, err
    model = fastbp.load("p.fbp")
    assert list(model.classes_) == [0, 1]
    assert not hasattr(model, "feature_names_in_")
    # a file with the label column still in it: skip it with --target
    code, out, err = run_cli(capsys, "predict", "p.fbp", "plain.csv", "--target", "-1",
                             "-o", "pred.csv")
    assert code == 0 and out == "", err
    header, rows = read_csv_text(Path("pred.csv").read_text())
    assert header == ["prediction"]
    assert [int(r[0]) for r in rows] == list(model.predict(X))


def test_regression_from_npy_in_float32(workdir, capsys):
    _, X, _ = workdir
    code, out, err = run_cli(capsys, "train", "reg.npy", "--target", "0", "--task",
                             "regress", "--solver", "lbfgs", "--epochs", "30", "--hidden",
                             "6", "--dtype", "float32", "--random-state", "0", "-o", "r.fbp")
    assert code == 0, err
    assert "regression" in out and "training R^2" in out
    model = fastbp.load("r.fbp")
    assert model.mlp_.coefs_[0].dtype == np.float32 and not hasattr(model, "classes_")
    code, out, err = run_cli(capsys, "predict", "r.fbp", "reg.npy", "-t", "0")
    assert code == 0, err
    header, rows = read_csv_text(out)
    assert header == ["prediction"]
    expected = model.predict(X)  # the file's float64 values, preprocessed into float32
    # float32 network outputs mapped back to the target's scale in float64, printed exactly
    assert expected.dtype == np.float64
    np.testing.assert_array_equal(np.array([float(r[0]) for r in rows]), expected)


def test_npz_and_early_stopping(workdir, capsys):
    code, out, err = run_cli(capsys, "train", "xy.npz", "--early-stopping",
                             "--validation-fraction", "0.25", "--epochs", "5",
                             "--random-state", "0", "-o", "z.fbp")
    assert code == 0, err
    model = fastbp.load("z.fbp")
    assert model.mlp_.early_stopping and model.mlp_.validation_fraction == 0.25
    assert len(model.mlp_.validation_scores_) == model.mlp_.n_iter_
    assert "best validation accuracy" in out
    code, out, err = run_cli(capsys, "predict", "z.fbp", "xy.npz")
    assert code == 0 and len(read_csv_text(out)[1]) == 80


@pytest.mark.parametrize("argv, message", [
    (["train", "missing.csv"], "missing.csv: no such file"),
    (["train", "labels.csv", "--target", "colour"], "no column 'colour'"),
    (["train", "labels.csv", "--target", "9"], "column index 9 is out of range"),
    (["train", "labels.csv", "--target", "a", "--no-preprocessing"],
     "column 'label' holds text such as 'yes'; a model without preprocessing reads numbers"),
    (["train", "labels.csv", "-t", "label", "--task", "regress"], "needs a numeric target"),
    (["train", "reg.npy", "-t", "0", "--task", "classify"], "Unknown label type"),
    (["train", "labels.csv", "--hidden", "8,0"], "argument --hidden"),
    (["train", "labels.csv", "--epochs", "-3"], "argument --epochs"),
    (["train", "labels.csv", "--activation", "swish"], "argument --activation"),
    (["train", "xy.npz", "--target", "0"], "--target applies to CSV"),
    (["train", "labels.csv", "-t", "label", "-o", "no/such/dir/m.fbp", "-q"],
     "cannot write the model"),
    (["predict", "missing.fbp", "labels.csv"], "missing.fbp: no such model file"),
    (["predict", "labels.csv", "labels.csv"], "not a fastbp model file"),
    (["frobnicate"], "invalid choice"),
    (["train"], "required: DATA"),
    (["train", "labels.csv", "--preset", "tabular", "--solver", "sgd"],
     "--solver does not apply to --preset tabular"),
    (["train", "labels.csv", "--preset", "tabular", "--batch-size", "auto"],
     "--batch-size auto does not apply to --preset tabular"),
    (["train", "labels.csv", "--preset", "tabular", "--no-preprocessing"],
     "--no-preprocessing does not apply to --preset tabular"),
    (["train", "labels.csv", "--ensemble", "2"], "--ensemble applies to --preset tabular only"),
    (["train", "labels.csv", "--drop", "nope"], "no column 'nope'"),
    (["evaluate", "missing.fbp", "labels.csv", "-t", "label"], "no such model file"),
    (["evaluate", "labels.csv", "labels.csv"], "required: -t/--target"),
    (["info", "labels.csv"], "not a fastbp model file"),
])
def test_user_errors_are_one_line_without_traceback(workdir, capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code in (1, 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastbp") and "error:" in lines[0]
    assert message in lines[0]
    assert "Traceback" not in err


def test_predict_errors(workdir, capsys):
    assert run_cli(capsys, "train", "reg.npy", "-t", "0", "--epochs", "2", "-q",
                   "-o", "r.fbp")[0] == 0
    assert run_cli(capsys, "train", "plain.csv", "--epochs", "2", "-q", "-o", "p.fbp")[0] == 0
    for argv, message in [
        (["predict", "r.fbp", "reg.npy", "-t", "0", "--proba"], "needs a classifier"),
        (["predict", "p.fbp", "reg.npy"], "4 feature columns, but the model expects 3; "
                                          "if one column is the target, name it"),
        (["predict", "p.fbp", "labels.csv", "-t", "a"],
         "column 2 (by position) holds str values such as 'yes' where numbers are expected"),
    ]:
        code, _, err = run_cli(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and message in err, err


def test_predict_matches_columns_by_name(workdir, capsys):
    assert run_cli(capsys, "train", "labels.csv", "-t", "label", "--epochs", "2", "-q",
                   "-o", "m.fbp")[0] == 0
    with open("labels.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    # columns shuffled, label dropped: still the same predictions
    with open("shuffled.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([[r[2], r[0], r[1]] for r in rows])
    with open("short.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([[r[0], r[1]] for r in rows])
    _, full, _ = run_cli(capsys, "predict", "m.fbp", "labels.csv")
    code, shuffled, err = run_cli(capsys, "predict", "m.fbp", "shuffled.csv")
    assert code == 0 and shuffled == full, err
    code, _, err = run_cli(capsys, "predict", "m.fbp", "short.csv")
    assert code == 1 and "short.csv: no column 'c', which the model needs" in err


def test_bench_dispatches_to_the_benchmark_module(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("fastbp._bench")
    fake.main = lambda argv=None: calls.append(argv) or 3
    monkeypatch.setitem(sys.modules, "fastbp._bench", fake)
    assert main(["bench", "--quick", "--help"]) == 3
    assert calls == [["--quick", "--help"]]

    def exits(argv=None):  # an argparse-based benchmark exits on --help
        raise SystemExit(0 if "--help" in argv else 2)

    fake.main = exits
    assert main(["bench", "--help"]) == 0
    assert main(["bench", "--bad"]) == 2


def test_bench_without_the_benchmark_module(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastbp._bench", None)  # import fails
    code, _, err = run_cli(capsys, "bench")
    assert code == 1
    assert err == ("fastbp bench: error: the benchmark (fastbp._bench) is not part of this "
                   "fastbp installation\n")


def test_demo_command(capsys):
    code, out, err = run_cli(capsys, "demo", "--samples", "300", "--epochs", "3",
                             "--hidden", "4")
    assert code == 0, err
    assert "2-4-1 network" in out and "test accuracy" in out
    assert "--help' lists the commands" not in out  # the hint is for bare `fastbp` only


def test_python_dash_m_fastbp_runs_the_demo(tmp_path):
    """README command 1, as a real process (outside the source tree)."""
    env = package_env()
    result = subprocess.run([sys.executable, "-m", "fastbp"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", result.stdout).group(1))
    assert accuracy > 0.95
    assert "'fastbp --help' lists the commands" in result.stdout
    assert result.stderr == ""


def test_info_on_a_file_of_fastbp_0_1_0(capsys):
    fixture = Path(__file__).parent / "fixtures" / "models_0.1.0" / \
        "classifier_sgd_f32_multiclass_str.fbp"
    code, out, err = run_cli(capsys, "info", str(fixture))
    assert code == 0, err
    assert "format version 1, written by fastbp 0.1.0 or earlier (not recorded)" in out
    assert "estimator: MLPClassifier" in out and "float32" in out
    assert "preprocessing: none (the network reads the numbers as they are)" in out
    code, out, err = run_cli(capsys, "info", str(fixture), "--json")
    info = json.loads(out)
    model = fastbp.load(fixture)
    assert info["classes"] == [str(c) for c in model.classes_]
    assert info["networks"][0]["layers"] == [model.n_features_in_] + [
        c.shape[1] for c in model.coefs_]
