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
    # errno and floating-point exception flags are never read: without these
    # flags sqrt and the compare-and-select loops (exp's clamps, tanh's and
    # logistic's sign choices) do not vectorise. Neither changes a computed
    # value; a * b + c stays unfused so float64 follows scikit-learn's rounding.
    compile_args += ["-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
    if os.environ.get("FASTBP_NATIVE") == "1":
        compile_args.append("-march=native")
    if sanitize:
        compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]
        link_args += ["-fsanitize=address"]

HEADERS = ["src/fastbp/_threads.h", "src/fastbp/_simd.h"]
no_clones = os.environ.get("FASTBP_NO_CLONES") == "1" or debug or sanitize


def _extension(name, sources, depends):
    return Extension(
        name,
        sources,
        include_dirs=[np.get_include(), "src/fastbp"],
        depends=depends,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([("FASTBP_NO_CLONES", "1")] if no_clones else []),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


extensions = [
    # the engine is one translation unit, _engine.pyx including its .pxi units
    # (inlining across units, the clone marking and NetSpec's pickling need it)
    _extension("fastbp._engine", ["src/fastbp/_engine.pyx"],
               sorted(glob.glob("src/fastbp/_*.pxi")) + HEADERS),
    _extension("fastbp._shuffle", ["src/fastbp/_shuffle.pyx"], ["src/fastbp/_simd.h"]),
]

# Element-wise kernels, per module, that get AVX-512 and AVX2 clones picked by
# the CPU at load time (GCC target_clones, see _simd.h): wheels stay baseline
# x86-64 and still use wide vectors. Without contraction each element rounds
# the same in every clone. Every ``cdef inline`` function of the module is
# always inlined (FASTBP_ALWAYS_INLINE), so that the helpers of a cloned kernel
# take its instruction set. Cython cannot attach an attribute to a function,
# so the markers go into the generated C.
VECTOR_KERNELS = {
    "fastbp._engine": ("update_range", "bias_activation", "exp_activation",
                       "activation_derivative", "output_loss_delta", "_log_of_product",
                       "small_gemm", "_column_sums", "_epoch_body", "dropout_forward",
                       "dropout_backward", "_clipped_parameters_phase"),
    "fastbp._shuffle": ("_mt_twist", "_mt_temper"),
}


def _mark_vector_kernels(c_file, module, kernels):
    # Cython names a module's C functions __pyx_f_<len><part>_<len><part>_<name>
    # (fused specialisations prefixed with __pyx_fuse_<n>)
    prefix = "__pyx_f_" + "_".join(f"{len(part)}{part}" for part in module.split("."))
    with open(c_file, encoding="utf-8") as fh:
        text = fh.read()
    kernel = re.compile(r"^static (\w+) ((?:__pyx_fuse_\d+)?%s_(?:%s)\()"
                        % (prefix, "|".join(kernels)), re.M)
    marked = kernel.sub(r"static FASTBP_VECTOR_CLONES \1 \2", text)
    inline = re.compile(r"^static CYTHON_INLINE (?!FASTBP_ALWAYS_INLINE)([^(;]*?%s_\w+\()"
                        % prefix, re.M)
    marked = inline.sub(r"static CYTHON_INLINE FASTBP_ALWAYS_INLINE \1", marked)
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
            _mark_vector_kernels(source, ext.name, VECTOR_KERNELS[ext.name])

setup(ext_modules=ext_modules)
