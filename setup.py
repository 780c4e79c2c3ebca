"""Build the compiled core of fastbp (everything else lives in pyproject.toml).

Environment switches:
  FASTBP_DEBUG=1      bounds checks and wraparound back on, -O0 -g (debugging).
  FASTBP_SANITIZE=1   compile and link with AddressSanitizer (see tools/asan.sh).
  FASTBP_NATIVE=1     add -march=native (local builds only; wheels stay portable).
  FASTBP_NO_CLONES=1  no AVX2/AVX-512 clones of the element-wise kernels.
"""
import glob
import os
import re
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTBP_DEBUG") == "1"
sanitize = os.environ.get("FASTBP_SANITIZE") == "1"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": debug,
    "cdivision": True,
    "embedsignature": True,
}

compile_args = []
link_args = []
if sys.platform == "win32":
    compile_args += ["/O2", "/fp:precise"]
else:
    compile_args += ["-O0", "-g"] if debug else ["-O3"]
    # errno from sqrt/exp is never read; without this sqrt cannot vectorise.
    # Floating-point exception flags are never read either: without
    # -fno-trapping-math GCC will not turn a comparison-and-select (the
    # clamps in exp, the sign choices in tanh and logistic) into a vector
    # blend, so those loops stayed scalar below AVX-512. Neither flag changes
    # a computed value. Keep a * b + c unfused so float64 results follow
    # scikit-learn's rounding.
    compile_args += ["-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    if os.environ.get("FASTBP_NATIVE") == "1":
        compile_args.append("-march=native")
    if sanitize:
        compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]
        link_args += ["-fsanitize=address"]

extensions = [
    Extension(
        "fastbp._engine",
        ["src/fastbp/_engine.pyx"],
        include_dirs=[np.get_include(), "src/fastbp"],
        depends=sorted(glob.glob("src/fastbp/*.pxi")) + ["src/fastbp/_threads.h", "src/fastbp/_simd.h"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([("FASTBP_NO_CLONES", "1")] if os.environ.get("FASTBP_NO_CLONES") == "1"
           or debug or sanitize else []),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

# Element-wise kernels (optimizer step, bias + activation, exp-based
# activations, output loss and delta, activation derivative, bias-gradient
# sums, the epoch body, the shuffle's generator) get AVX-512 and AVX2 clones
# chosen at load time by the CPU (GCC target_clones, see _simd.h), so wheels
# stay portable (baseline x86-64) and still use wide vectors where the CPU
# has them. Each element's arithmetic is the same in every clone (no
# contraction: -ffp-contract=off), so results do not depend on the clone.
# Cython cannot attach an attribute to a function, so the marker goes into
# the generated C.
VECTOR_KERNELS = ("update_range", "bias_activation", "exp_activation", "activation_derivative",
                  "output_loss_delta", "_log_of_product", "small_gemm", "_column_sums", "_epoch_body",
                  "_mt_twist", "_mt_temper")


def _mark_vector_kernels(c_file):
    with open(c_file, encoding="utf-8") as fh:
        text = fh.read()
    pattern = re.compile(r"^static (\w+) ((?:__pyx_fuse_[01])?__pyx_f_6fastbp_7_engine_(?:%s)\()"
                         % "|".join(VECTOR_KERNELS), re.M)
    marked = pattern.sub(r"static FASTBP_VECTOR_CLONES \1 \2", text)
    if marked != text:
        with open(c_file, "w", encoding="utf-8") as fh:
            fh.write(marked)


ext_modules = cythonize(
    extensions,
    compiler_directives=directives,
    annotate=os.environ.get("FASTBP_ANNOTATE") == "1",
)
for ext in ext_modules:
    for source in ext.sources:
        if source.endswith(".c"):
            _mark_vector_kernels(source)

setup(ext_modules=ext_modules)
