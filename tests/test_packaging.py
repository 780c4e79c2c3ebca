"""Packaging rules that the wheel build cannot check by itself.

cibuildwheel tests every wheel from copies of ``test-sources`` (pyproject.toml),
outside the source tree: a test that opens a file of the repository outside
those copies fails on every built wheel. This checks, from the tests' own
source, that every repository path they open is copied.
"""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# "<root> / 'name'" where <root> is the repository root as the tests spell it
_ROOT_PATH = re.compile(
    r"""(?:parent\.parent|parents\[1\]|\bROOT|DOCS\.parent)\s*/\s*["']([\w./-]+)["']""")


def _test_sources():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^test-sources\s*=\s*\[([^\]]*)\]", text, re.M)
    assert match, "pyproject.toml has no [tool.cibuildwheel] test-sources"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def _paths_the_tests_open():
    found = {}
    for path in sorted(TESTS.glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for name in _ROOT_PATH.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name.split("/")[0], path.name)
    return found


def test_the_pattern_finds_repository_paths():
    # the reference spellings used in tests/, and that it does not match others
    sample = ('ROOT / "benchmarks" / "x.py"; Path(__file__).resolve().parent.parent / '
              '"README.md"; pathlib.Path(__file__).resolve().parents[1] / "docs"; '
              'DOCS.parent / "README.md"; HERE / "fixtures"')
    assert _ROOT_PATH.findall(sample) == ["benchmarks", "README.md", "docs", "README.md"]


def test_cibuildwheel_copies_every_file_the_tests_open():
    sources = _test_sources()
    opened = _paths_the_tests_open()
    assert opened, "no repository path found: the pattern no longer matches the tests"
    missing = {name: test for name, test in opened.items() if name not in sources}
    assert not missing, (f"tests open {sorted(missing)} (in {sorted(set(missing.values()))}) "
                         f"but [tool.cibuildwheel] test-sources copies only {sorted(sources)}")
