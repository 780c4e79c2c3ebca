"""The wheel: built from the sdist, carrying the right files, installed into
a clean virtual environment outside the source tree, and working there.

The build-and-install test is marked ``slow`` (~6 minutes on 2 cores: a
second compile of the engine and a venv with numpy and scipy); the README's
test command deselects it with ``-m "not slow"`` and CI runs it as a group of
its own (``.ci/run``). It runs the
quick path of ``tools/check_wheel.py``; ``python tools/check_wheel.py --full``
adds ``auditwheel repair`` and the whole test suite against the installed
wheel (run it before a release).
"""

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "tools" / "check_wheel.py"

if not CHECKER.is_file():
    pytest.skip("tools/check_wheel.py is not here (tests copied out of the source tree)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_wheel", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_content_rules_catch_a_bad_wheel_and_sdist(checker):
    good_wheel = ["fastbp/_engine.cpython-311-x86_64-linux-gnu.so", "fastbp/_engine.pyi",
                  "fastbp/_shuffle.cpython-311-x86_64-linux-gnu.so", "fastbp/_shuffle.pyi",
                  "fastbp/py.typed", "fastbp/__main__.py", "fastbp/_cli.py",
                  "fastbp/onnx/__init__.py",
                  "fastbp-0.1.0.dist-info/licenses/LICENSE",
                  "fastbp-0.1.0.dist-info/entry_points.txt"]
    assert checker.check_members("wheel", good_wheel, checker.WHEEL_MUST,
                                 checker.WHEEL_MUST_NOT) == []
    bad = checker.check_members("wheel", good_wheel[1:] + ["fastbp/_engine.c"],
                                checker.WHEEL_MUST, checker.WHEEL_MUST_NOT)
    assert any("_engine" in p and "lacks" in p for p in bad)
    assert "wheel must not carry fastbp/_engine.c" in bad
    sdist = [f"fastbp-0.1.0/{n}" for n in (
        "src/fastbp/_engine.c", "setup.py", "pyproject.toml", "README.md", "LICENSE",
        "MANIFEST.in", "tests/conftest.py", "src/fastbp/_engine.pyi", "src/fastbp/py.typed")]
    problems = checker.check_members("sdist", sdist, checker.SDIST_MUST,
                                     checker.SDIST_MUST_NOT)
    assert any(r"_engine\.pyx" in p for p in problems)
    assert "sdist must not carry fastbp-0.1.0/src/fastbp/_engine.c" in problems


@pytest.mark.slow
def test_wheel_builds_installs_and_runs_outside_the_tree(checker, tmp_path):
    if importlib.util.find_spec("build") is None:
        pytest.skip("needs PyPA's build (pip install build)")
    # build with this interpreter's compiler toolchain when it has the build
    # requirements (no download); otherwise in build's isolated environment
    have_requirements = all(importlib.util.find_spec(m) for m in
                            ("setuptools", "Cython", "numpy", "scipy"))
    try:
        sdist, wheel = checker.build(tmp_path / "dist", isolation=not have_requirements)
        checker.check_contents(sdist, wheel)
        checker.make_venv(tmp_path / "venv", str(wheel))
        work = tmp_path / "work"
        work.mkdir()
        checker.smoke_test(tmp_path / "venv", work)
    except SystemExit as exc:
        pytest.fail(str(exc))
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{exc.cmd} failed with status {exc.returncode}")
    # nothing but numpy, scipy and fastbp went into the clean environment
    python = checker.venv_python(tmp_path / "venv")
    listing = subprocess.run([python, "-m", "pip", "list", "--format=freeze"],
                             capture_output=True, text=True, check=True).stdout
    installed = {line.split("==")[0].lower() for line in listing.split()}
    assert {"fastbp", "numpy", "scipy"} <= installed
    assert not installed & {"scikit-learn", "pandas", "torch", "cython"}
