"""Build the compiled core of fastbp (everything else lives in pyproject.toml).

Environment switches:
  FASTBP_DEBUG=1      bounds checks and wraparound back on, -O0 -g (debugging).
  FASTBP_SANITIZE=1   compile and link with AddressSanitizer (see tools/asan.sh).
  FASTBP_NATIVE=1     add -march=native (local builds only; wheels stay portable).
"""
import os
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
    # Keep a * b + c unfused so float64 results follow scikit-learn's rounding.
    compile_args += ["-fno-math-errno", "-ffp-contract=off"]
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
        depends=["src/fastbp/_threads.h"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=os.environ.get("FASTBP_ANNOTATE") == "1",
    ),
)
