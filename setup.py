"""Build the compiled core of fastbp (everything else lives in pyproject.toml).

Environment switches:
  FASTBP_DEBUG=1      bounds checks and wraparound back on, -O0 -g (debugging).
  FASTBP_SANITIZE=1   compile and link with AddressSanitizer (see tools/asan.sh).
  FASTBP_NATIVE=1     add -march=native (local builds only; wheels stay portable).
  FASTBP_NO_CLONES=1  no AVX2/AVX-512 versions of the element-wise kernels.
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

HEADERS = ["src/fastbp/_threads.h", "src/fastbp/_simd.h", "src/fastbp/_small_gemm.h",
           "src/fastbp/_gemm_nn.h", "src/fastbp/_gemm_step.h", "src/fastbp/_gemm_rows.h"]
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
    _extension("fastbp._shuffle", ["src/fastbp/_shuffle.pyx"],
               ["src/fastbp/_simd.h", "src/fastbp/_simd.pxi"]),
]

# Element-wise kernels, per module, compiled for AVX-512, AVX2 and the
# baseline, one set chosen when the module is imported (the CPU's best, or
# FASTBP_SIMD; _simd.h, _simd.pxi): wheels stay baseline x86-64 and still use
# wide vectors. Without contraction each element rounds the same in every
# set. Every ``cdef inline`` function of the module is always inlined
# (FASTBP_ALWAYS_INLINE), so that the helpers of a kernel take its
# instruction set. Cython cannot attach an attribute to a function, so the
# versions are written into the generated C.
VECTOR_KERNELS = {
    "fastbp._engine": ("update_range", "bias_activation", "exp_activation", "tanh_activation",
                       "activation_derivative", "output_loss_delta", "_log_of_product",
                       "small_gemm", "_column_sums", "_epoch_body", "dropout_forward",
                       "dropout_backward", "_clipped_parameters_phase", "_rows_finite"),
    "fastbp._shuffle": ("_mt_twist", "_mt_temper"),
}
SIMD_SETS = ("avx512", "avx2")   # the versions besides __base, as in _simd.h


def _function_end(text, start):
    """The index just past the brace that closes the one opening at ``start``
    (comments and string or character literals skipped)."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            i = text.index("*/", i + 2) + 2
            continue
        if text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if c in "\"'":
            j = i + 1
            while text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced braces in the generated C")


def _write_kernel_sets(c_file, module, kernels):
    """Give each kernel of ``kernels`` its versions (NAME__avx512, NAME__avx2,
    NAME__base) behind the pointer NAME (_simd.h's FASTBP_KERNEL), append
    fastbp_simd_dispatch, and mark every ``cdef inline`` always-inline."""
    # Cython names a module's C functions __pyx_f_<len><part>_<len><part>_<name>
    # (fused specialisations prefixed with __pyx_fuse_<n>)
    prefix = "__pyx_f_" + "_".join(f"{len(part)}{part}" for part in module.split("."))
    names = r"(?:__pyx_fuse_\d+)?%s_(?:%s)" % (prefix, "|".join(kernels))
    with open(c_file, encoding="utf-8") as fh:
        text = fh.read()
    if "fastbp_simd_dispatch(int level) {" in text:
        return  # written already (an unchanged .c file kept by cythonize)
    proto = re.compile(r"^static ([\w *]+?) ?\b(%s)\(([^;{]*)\); /\*proto\*/$" % names, re.M)
    text, n_protos = proto.subn(r"FASTBP_KERNEL(\1, \2, (\3))", text)
    found = []
    out = []
    pos = 0
    head = re.compile(r"^static ([\w *]+?) ?\b(%s)\(([^;{]*)\) \{" % names, re.M)
    for m in head.finditer(text):
        ret, name, params = m.groups()
        end = _function_end(text, m.end() - 1)
        body = text[m.end() - 1:end]
        out.append(text[pos:m.start()])
        out.append("#if FASTBP_DISPATCH\n")
        for simd in SIMD_SETS:
            out.append(f"static FASTBP_TARGET_{simd.upper()} {ret} {name}__{simd}({params}) "
                       f"{body}\n")
        out.append(f"static {ret} {name}__base({params})\n#else\n"
                   f"static {ret} {name}({params})\n#endif\n{body}")
        pos = end
        found.append(name)
    out.append(text[pos:])
    text = "".join(out)
    if len(found) != n_protos or not found:
        raise RuntimeError(f"{module}: {len(found)} kernel definitions for {n_protos} "
                           f"prototypes of {kernels}")
    cases = "".join(
        f"    case {level}:\n" + "".join(f"        {name} = {name}__{simd};\n" for name in found)
        + "        break;\n" for level, simd in ((2, "avx512"), (1, "avx2"), (0, "base")))
    text += ("\n/* Point every kernel at one set: 2 AVX-512, 1 AVX2, 0 baseline (setup.py) */\n"
             "static int fastbp_simd_dispatch(int level) {\n#if FASTBP_DISPATCH\n"
             f"    switch (level) {{\n{cases}    default:\n        return -1;\n    }}\n"
             "    return level;\n#else\n    return level == 0 ? 0 : -1;\n#endif\n}\n")
    inline = re.compile(r"^static CYTHON_INLINE (?!FASTBP_ALWAYS_INLINE)([^(;]*?%s_\w+\()"
                        % prefix, re.M)
    text = inline.sub(r"static CYTHON_INLINE FASTBP_ALWAYS_INLINE \1", text)
    with open(c_file, "w", encoding="utf-8") as fh:
        fh.write(text)


ext_modules = cythonize(
    extensions,
    compiler_directives=directives,
    annotate=os.environ.get("FASTBP_ANNOTATE") == "1",
)
for ext in ext_modules:
    for source in ext.sources:
        if source.endswith(".c"):
            _write_kernel_sets(source, ext.name, VECTOR_KERNELS[ext.name])

setup(ext_modules=ext_modules)
