#!/usr/bin/env bash
# Build fastbp's compiled engine with AddressSanitizer in a scratch copy of
# the source tree and run the test suite against it.
#
#   tools/asan.sh                      # the whole suite but the slow wheel build
#   tools/asan.sh tests/test_fuzz.py   # any pytest arguments
#   FASTBP_DEBUG=1 tools/asan.sh       # also turn Cython's bounds checks on
#
# PYTHON selects the interpreter (default: python3; it needs numpy, scipy,
# Cython, setuptools and pytest). FASTBP_ASAN_KEEP=1 keeps the scratch
# directory (its path is printed) for debugging. The scratch build never touches the
# in-place build of the checkout. The script exits non-zero when a test
# fails or when ASan reports an error (ASan aborts the process on its first
# report; the report is printed to stderr).
#
# Notes
# - CPython is not built with ASan, so the ASan runtime is preloaded
#   (LD_PRELOAD) ahead of everything else, as the sanitizer requires, with
#   libstdc++ (see below).
# - detect_leaks=0: CPython keeps objects alive until exit by design, and
#   LeakSanitizer would report those; leaks of the engine are checked by
#   tools/leak_check.py instead.
# - Subprocess tests (tests/test_interrupt.py, tests/test_determinism.py)
#   inherit the environment, so their child interpreters run the
#   instrumented engine too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
case "$PYTHON" in  # a relative path must survive the cd into the scratch copy
    /*) ;;
    */*) PYTHON="$PWD/$PYTHON" ;;
esac
CC="${CC:-$("$PYTHON" -c 'import sysconfig; print((sysconfig.get_config_var("CC") or "cc").split()[0])')}"

LIBASAN="$("$CC" -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "asan.sh: $CC has no libasan.so (install the compiler's ASan runtime)" >&2
    exit 2
fi
# ASan intercepts C++ exceptions; with CPython (a C program) it can only find
# the real __cxa_throw when libstdc++ is loaded up front too, or C++
# extensions that throw (matplotlib's ft2font) abort
LIBSTDCXX="$("$CC" -print-file-name=libstdc++.so)"
PRELOAD="$LIBASAN"
if [ -e "$LIBSTDCXX" ]; then
    PRELOAD="$PRELOAD:$LIBSTDCXX"
fi

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/fastbp-asan.XXXXXX")"
if [ -z "${FASTBP_ASAN_KEEP:-}" ]; then
    trap 'rm -rf "$SCRATCH"' EXIT
fi
cp -R "$ROOT/src" "$ROOT/setup.py" "$ROOT/pyproject.toml" "$SCRATCH/"
find "$SCRATCH/src" \( -name '*.so' -o -name '*.c' -o -name '__pycache__' \) -prune \
    -exec rm -rf {} +

echo "asan.sh: building the engine with FASTBP_SANITIZE=1 FASTBP_DEBUG=${FASTBP_DEBUG:-0} in $SCRATCH"
(cd "$SCRATCH" && FASTBP_SANITIZE=1 "$PYTHON" setup.py -q build_ext --inplace >build.log 2>&1) || {
    cat "$SCRATCH/build.log" >&2
    exit 2
}

export LD_PRELOAD="$PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export PYTHONPATH="$SCRATCH/src${PYTHONPATH:+:$PYTHONPATH}"
# tells tests/test_simd.py that this build has the baseline kernel set only
export FASTBP_SANITIZE=1

# the instrumented engine must be the one the tests import
"$PYTHON" - <<'EOF'
import os
import fastbp._engine as engine
path = engine.__file__
assert "fastbp-asan" in path, path
with open(path, "rb") as fh:
    binary = fh.read()
assert b"__asan_report_load" in binary, "the engine is not instrumented"
if os.environ.get("FASTBP_DEBUG") == "1":
    assert b"Out of bounds on buffer access" in binary, "bounds checks are off"
print("asan.sh: testing", path)
EOF

cd "$ROOT"
if [ "$#" -eq 0 ]; then
    # the slow tests build and test an uninstrumented wheel: nothing for ASan
    set -- -m "not slow" tests
fi
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
echo "asan.sh: no AddressSanitizer report"
