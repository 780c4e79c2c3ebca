#!/bin/bash
# Cross-build fastbp for aarch64 (Linux, baseline armv8-a: NEON) and run the
# test suite under qemu-user, on a Debian 12 x86-64 machine.
#
#   tools/aarch64_qemu.sh setup           # once: packages, Python, wheels (~2 min)
#   tools/aarch64_qemu.sh build           # cross-compile the generated C (~1 min)
#   tools/aarch64_qemu.sh vec             # vectoriser report, mapped to the .pxi lines
#   tools/aarch64_qemu.sh test [ARGS...]  # pytest under qemu-aarch64 (ARGS: pytest's)
#
# Needs root for setup (dpkg --add-architecture arm64, apt-get install). The
# C is what setup.py generates on this machine (run `python setup.py
# build_ext --inplace` first): Cython's output is portable C, and setup.py's
# kernel sets compile to the one baseline set away from x86-64 (_simd.h).
# Work files go to $FASTBP_AARCH64_DIR (default: /tmp/fastbp-aarch64).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${FASTBP_AARCH64_DIR:-/tmp/fastbp-aarch64}"
PY="$DIR/python/usr/bin/python3.11"
mkdir -p "$DIR/bin"
# the interpreter as subprocesses start it too (sys.executable): qemu runs it
printf '#!/bin/sh\nexec qemu-aarch64-static -0 "%s" "%s" "$@"\n' "$DIR/bin/python3.11" "$PY" \
    > "$DIR/bin/python3.11"
chmod +x "$DIR/bin/python3.11"

setup() {
    dpkg --add-architecture arm64
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu \
        qemu-user-static libpython3.11-dev:arm64 libstdc++6:arm64
    # the interpreter itself would replace the x86-64 one: unpacked beside it
    (cd "$DIR" && apt-get download python3.11-minimal:arm64 \
        && dpkg -x python3.11-minimal_*_arm64.deb python)
    # the test dependencies as aarch64 wheels from PyPI, unpacked (no pip run
    # under emulation)
    python3 -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
        --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 -d "$DIR/wheels" \
        "numpy>=2" "scipy>=1.11" "scikit-learn>=1.9,<1.10" threadpoolctl pytest hypothesis \
        pandas tqdm matplotlib "dask[array]" distributed onnx skl2onnx onnxruntime mypy \
        sphinx numpydoc build typing_extensions
    mkdir -p "$DIR/site"
    for wheel in "$DIR"/wheels/*.whl; do
        python3 -m zipfile -e "$wheel" "$DIR/site"
    done
}

# the flags setup.py adds to Debian's own Python CFLAGS
CFLAGS="-Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -fstack-protector-strong -O3 \
-fno-math-errno -fno-trapping-math -ffp-contract=off -fPIC \
-DNPY_NO_DEPRECATED_API=NPY_1_9_API_VERSION"
INCLUDES="-I/usr/include/aarch64-linux-gnu/python3.11 -I/usr/include/python3.11 \
-I$DIR/site/numpy/_core/include -I$ROOT/src/fastbp"

build() {
    rm -rf "$DIR/stage" && mkdir -p "$DIR/stage"
    cp -r "$ROOT/src/fastbp" "$DIR/stage/fastbp"
    rm -f "$DIR"/stage/fastbp/*.so "$DIR"/stage/fastbp/*.c
    for module in _engine _shuffle; do
        # shellcheck disable=SC2086
        aarch64-linux-gnu-gcc $CFLAGS $INCLUDES -shared "$ROOT/src/fastbp/$module.c" \
            -o "$DIR/stage/fastbp/$module.cpython-311-aarch64-linux-gnu.so" $EXTRA_CFLAGS
    done
    # the package's metadata (entry points, version) for the tests that read it
    mkdir -p "$DIR/stage/fastbp-0.1.0.dist-info"
    printf 'Metadata-Version: 2.1\nName: fastbp\nVersion: 0.1.0\n' \
        > "$DIR/stage/fastbp-0.1.0.dist-info/METADATA"
    printf '[console_scripts]\nfastbp = fastbp._cli:main\n' \
        > "$DIR/stage/fastbp-0.1.0.dist-info/entry_points.txt"
}

case "${1:-}" in
    setup) setup ;;
    build) EXTRA_CFLAGS="" build ;;
    vec)
        # shellcheck disable=SC2086
        aarch64-linux-gnu-gcc $CFLAGS $INCLUDES -c "$ROOT/src/fastbp/_engine.c" \
            -o "$DIR/_engine.o" -fopt-info-vec-optimized="$DIR/vec_engine.txt"
        echo "report: $DIR/vec_engine.txt" ;;
    test)
        shift
        cd "$ROOT"
        PYTHONPATH="$DIR/stage:$DIR/site" PATH="$DIR/bin:$PATH" \
            "$DIR/bin/python3.11" -m pytest -p no:cacheprovider "$@" ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
esac
