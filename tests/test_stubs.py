"""The shipped type stubs (``_engine.pyi``) describe the compiled module.

``mypy.stubtest`` is the full check (names, parameters, kinds, properties)
and runs when mypy is installed. The light check below needs nothing but the
standard library, so even a minimal test environment catches a stub that
drifted from ``_engine.pyx`` (a renamed, added or removed argument).
"""

import ast
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import fastbp
from fastbp import _engine, _shuffle
from _subprocess_env import package_env  # noqa: E402

PACKAGE_DIR = Path(fastbp.__file__).resolve().parent
STUB = PACKAGE_DIR / "_engine.pyi"
# every compiled module, with the number of its functions the light check must reach
COMPILED = [(_engine, 8), (_shuffle, 1)]
ALLOWLIST = Path(__file__).resolve().parent.parent / "tools" / "stubtest_allowlist.txt"


def test_stub_and_marker_ship_with_the_package():
    assert STUB.is_file()
    for module, _ in COMPILED:
        assert (PACKAGE_DIR / (module.__name__.split(".")[-1] + ".pyi")).is_file()
    assert (PACKAGE_DIR / "py.typed").is_file()


def _stub_functions(tree):
    """{qualified name: [parameter names]} of every def in the stub."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not any(
                        isinstance(d, ast.Name) and d.id == "property"
                        for d in item.decorator_list):
                    found[f"{node.name}.{item.name}"] = [a.arg for a in item.args.args]
    return found


@pytest.mark.parametrize("module, min_checked", COMPILED)
def test_stub_parameters_match_the_compiled_module(module, min_checked):
    stub_file = PACKAGE_DIR / (module.__name__.split(".")[-1] + ".pyi")
    stub = _stub_functions(ast.parse(stub_file.read_text(encoding="utf-8")))
    runtime_public = {name for name, obj in vars(module).items()
                      if callable(obj) and not name.startswith("__")
                      and getattr(obj, "__module__", None) == module.__name__}
    assert runtime_public <= {n.split(".")[0] for n in stub}, (
        f"not in the stub: {sorted(runtime_public - set(stub))}")
    checked = 0
    for name, stub_params in stub.items():
        obj = module
        for part in name.split("."):
            assert hasattr(obj, part), f"the stub declares {name}, the module has no such name"
            obj = getattr(obj, part)
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values()):
            continue  # the cdef class's __new__ shows only (*args, **kwargs)
        runtime_params = list(signature.parameters)
        if stub_params[:1] in (["self"], ["cls"]) and runtime_params[:1] != stub_params[:1]:
            stub_params = stub_params[1:]
        assert stub_params == runtime_params, f"{name}: stub {stub_params}, runtime {runtime_params}"
        checked += 1
    assert checked >= min_checked


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_stubtest(tmp_path):
    env = package_env()     # the rest of the path kept: mypy may live there
    # run in an empty directory: no project config, no cache left in the tree
    cmd = [sys.executable, "-m", "mypy.stubtest", "fastbp._engine", "fastbp._shuffle",
           "--allowlist", str(ALLOWLIST)]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
