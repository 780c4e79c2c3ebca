"""The documentation's code runs, and prints what the documentation says.

``docs/backprop_by_hand.rst`` is executed block by block in one namespace;
the standard output of each ``python`` block must equal the ``text`` block
that follows it, so every number the page shows is asserted, and the page's
own ``assert`` statements compare the hand computation with fastbp's engine.
"""

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastbp
from _subprocess_env import package_env  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"


def rst_code_blocks(text):
    """``[(language, code, line_number), ...]`` of every ``.. code-block::``."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)\.\. code-block::\s*(\w+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, language, start = len(m.group(1)), m.group(2), i + 1
        i += 1
        while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):  # options
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        blocks.append((language, textwrap.dedent("\n".join(body)).strip("\n"), start))
    return blocks


def run_blocks(blocks, source):
    """Run the python blocks in order in one namespace; check each printed
    output against the text block right after it. Returns the namespace."""
    namespace = {"__name__": "__doc_walkthrough__"}
    for k, (language, code, line) in enumerate(blocks):
        if language != "python":
            continue
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(code, f"{source}:{line}", "exec"), namespace)
        printed = "\n".join(s.rstrip() for s in stdout.getvalue().strip("\n").splitlines())
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        if following is not None and following[0] == "text":
            expected = "\n".join(s.rstrip() for s in following[1].splitlines())
            assert printed == expected, (
                f"{source}:{line}: the block printed\n{printed}\n"
                f"but the page shows (line {following[2]})\n{expected}")
        else:
            assert printed == "", (
                f"{source}:{line}: the block printed output the page does not show:\n"
                f"{printed}")
    return namespace


def test_rst_extractor_reads_blocks_and_options():
    text = (".. code-block:: python\n   :caption: x\n\n   a = 1\n\n   print(a)\n"
            "\nprose\n\n.. code-block:: text\n\n   1\n")
    assert rst_code_blocks(text) == [("python", "a = 1\n\nprint(a)", 1), ("text", "1", 10)]


def test_run_blocks_fails_on_a_wrong_number():
    blocks = [("python", "print(0.5 + 0.25)", 1), ("text", "0.7", 2)]
    with pytest.raises(AssertionError, match="the block printed"):
        run_blocks(blocks, "example")


@pytest.fixture(scope="module")
def walkthrough():
    path = DOCS / "backprop_by_hand.rst"
    blocks = rst_code_blocks(path.read_text(encoding="utf-8"))
    with np.printoptions():  # the page must not leak numpy settings
        return run_blocks(blocks, path.name), blocks


def test_walkthrough_runs_and_prints_what_it_shows(walkthrough):
    _, blocks = walkthrough
    n_python = sum(language == "python" for language, _, _ in blocks)
    n_checked = sum(1 for a, b in zip(blocks, blocks[1:])
                    if a[0] == "python" and b[0] == "text")
    assert n_python >= 10 and n_checked >= 9


def test_walkthrough_scalar_graph_is_the_notes_example(walkthrough):
    ns, _ = walkthrough
    # L = c * (a + 2b): dL/da = c, dL/db = 2c, dL/dc = a + 2b
    a, b, c = ns["a"], ns["b"], ns["c"]
    assert (ns["dL_da"], ns["dL_db"], ns["dL_dc"]) == (c, 2 * c, a + 2 * b)


def test_walkthrough_gradients_match_the_engine(walkthrough):
    """Independently of the page's own asserts: rebuild the 2-2-1 network from
    the page's weights and compare the page's gradients with the engine's."""
    ns, _ = walkthrough
    x, W1, b1, W2, b2 = (ns[k] for k in ("x", "W1", "b1", "W2", "b2"))
    model = fastbp.MLP(hidden_layer_sizes=(2,), activation="relu", alpha=0.0)
    model.partial_fit([x], [1], classes=[0, 1])
    model.coefs_ = [W1.T.copy(), W2.T.copy()]
    model.intercepts_ = [b1.copy(), b2.copy()]
    loss, coef_grads, intercept_grads = model.loss_and_gradients([x], [1])
    assert loss == pytest.approx(ns["L"], rel=1e-12)
    np.testing.assert_allclose(coef_grads[0], ns["dW1"].T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(coef_grads[1], ns["dW2"].T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(intercept_grads[0], ns["db1"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(intercept_grads[1], ns["db2"], rtol=1e-12, atol=1e-15)
    # the example exercises both ReLU branches and a non-zero gradient
    assert (ns["z1"] > 0).any() and (ns["z1"] < 0).any()
    assert np.abs(ns["dW1"]).max() > 0.1
    assert ns["worst_relative_error"] < 1e-6
    assert ns["new_loss"] < ns["L"]


@pytest.mark.skipif(importlib.util.find_spec("sphinx") is None
                    or importlib.util.find_spec("numpydoc") is None,
                    reason="the docs extra (sphinx, numpydoc) is not installed")
def test_sphinx_builds_the_docs_without_warnings(tmp_path):
    """The API reference, CLI page and walkthrough build with warnings as
    errors (a broken docstring or cross-reference fails here)."""
    env = package_env()
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
           str(DOCS), str(tmp_path / "html")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in ("MLPClassifier", "MLPRegressor", "loss_and_gradients", "check_gradients",
                 "ProgressBar", "learning_curve", "partial_fit_blocks"):
        assert f"fastbp.{name}" in api or name in api
    assert "usage: fastbp train" in (tmp_path / "html" / "cli.html").read_text(
        encoding="utf-8")


def markdown_code_blocks(text):
    """``[(language, code), ...]`` of every fenced block."""
    return re.findall(r"^```(\w+)\n(.*?)^```", text, re.M | re.S)


def test_readme_tour_runs(tmp_path, monkeypatch, capsys):
    """README.md's "A 20-line tour": its Python runs, its command lines
    succeed, and what it shows is what happens."""
    for module in ("sklearn", "matplotlib"):
        pytest.importorskip(module)
    if importlib.util.find_spec("fastbp.plot") is None:
        pytest.skip("fastbp.plot is not part of this fastbp")
    import shlex

    import matplotlib

    from fastbp._cli import main

    matplotlib.use("Agg")
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("## A 20-line tour")
    tour = readme[start:readme.index("\n## ", start + 1)]
    blocks = markdown_code_blocks(tour)
    assert [language for language, _ in blocks] == ["python", "python", "bash"]
    # a tour, not a manual: about twenty lines of code in all
    assert sum(1 for _, code in blocks for line in code.splitlines() if line.strip()) <= 22
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for language, code in blocks:
        if language == "python":
            exec(compile(code, "README.md", "exec"), namespace)
            continue
        for line in code.strip().splitlines():
            argv = shlex.split(line)
            assert argv[0] == "fastbp"
            assert main(argv[1:]) == 0, capsys.readouterr().err
    scores = [float(s) for s in re.findall(r"^(0\.\d+|1\.0)$", capsys.readouterr().out, re.M)]
    assert len(scores) == 2 and min(scores) > 0.9
    assert (tmp_path / "moons.png").stat().st_size > 0
    predictions = (tmp_path / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "prediction,proba_0,proba_1" and len(predictions) == 1001
    import matplotlib.pyplot as plt

    plt.close("all")


def markdown_blocks_with_lines(text):
    """``[(language, code, line_number), ...]`` of every fenced block."""
    return [(m.group(1), m.group(2).strip("\n"), text.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.M | re.S)]


def test_onnx_page_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    """docs/onnx.md: export, save, serve with onnxruntime and compare, the tabular
    preset, the pipeline conversion and the float64 regression; each prints what the
    page shows."""
    import warnings

    for module in ("onnx", "onnxruntime", "skl2onnx", "sklearn", "pandas"):
        pytest.importorskip(module)
    path = DOCS / "onnx.md"
    blocks = markdown_blocks_with_lines(path.read_text(encoding="utf-8"))
    python = [k for k, (language, _, _) in enumerate(blocks) if language == "python"]
    assert len(python) == 4
    assert all(blocks[k + 1][0] == "text" for k in python)  # every output is shown
    # the first snippet stands alone (the README's): its own imports, about 20 lines
    first = blocks[python[0]][1]
    assert "import fastbp.onnx" in first and len(first.splitlines()) <= 20
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastbp.ConvergenceWarning)  # the page shows none
        run_blocks(blocks, path.name)
    assert (tmp_path / "digits.onnx").stat().st_size > 0
