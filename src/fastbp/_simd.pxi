# Which kernel set runs (AVX-512, AVX2 or baseline): chosen once when the
# module is imported, from the CPU or the FASTBP_SIMD environment variable.
# Included by both compiled modules (_engine, _shuffle); see _simd.h for how
# setup.py builds the sets.

cdef extern from "_simd.h" nogil:
    int fastbp_cpu_simd_level()
    enum: FASTBP_DISPATCH    # 1: this build holds the AVX2 and AVX-512 sets

cdef extern from *:
    """
    static int fastbp_simd_dispatch(int level);  /* appended by setup.py */
    """
    int fastbp_simd_dispatch(int level) nogil

# the sets, from the most portable
SIMD_LEVELS = ("baseline", "avx2", "avx512")

cdef int _simd_level = 0


cdef int _requested_simd_level(bint warn) except -1:
    """FASTBP_SIMD's set if this CPU (and build) runs it, else the best it
    runs; ``warn``: say so when FASTBP_SIMD names another set or none."""
    import os
    import warnings
    cdef int best = fastbp_cpu_simd_level()
    value = os.environ.get("FASTBP_SIMD", "").strip().lower()
    if not value:
        return best
    if value not in SIMD_LEVELS:
        if warn:
            warnings.warn(f"FASTBP_SIMD must be 'avx512', 'avx2' or 'baseline' (or unset: the "
                          f"CPU's best), got {value!r}; using {SIMD_LEVELS[best]}",
                          RuntimeWarning, stacklevel=2)
        return best
    if SIMD_LEVELS.index(value) > best:
        if warn:
            warnings.warn(f"FASTBP_SIMD={value}: this CPU (or this build of fastbp) runs "
                          f"{', '.join(SIMD_LEVELS[:best + 1])} kernels only; using "
                          f"{SIMD_LEVELS[best]}", RuntimeWarning, stacklevel=2)
        return best
    return SIMD_LEVELS.index(value)


def simd_level():
    """The kernel set this module runs: 'avx512', 'avx2' or 'baseline' (the
    CPU's best, or the one the FASTBP_SIMD environment variable asks for)."""
    return SIMD_LEVELS[_simd_level]


def cpu_simd_levels():
    """The kernel sets this CPU and build can run, from the most portable."""
    return SIMD_LEVELS[:fastbp_cpu_simd_level() + 1]


def build_simd_levels():
    """The kernel sets this build holds, whatever the CPU: all three, or the
    baseline alone (FASTBP_NO_CLONES=1, debug and AddressSanitizer builds,
    compilers other than GCC, CPUs other than x86-64)."""
    return SIMD_LEVELS if FASTBP_DISPATCH else SIMD_LEVELS[:1]


def set_simd_level(str name):
    """Test hook: run the kernel set ``name`` from now on (one of
    ``cpu_simd_levels()``); returns the previous one. Never while this
    module's kernels run in another thread."""
    global _simd_level
    if name not in cpu_simd_levels():
        raise ValueError(f"name must be one of {cpu_simd_levels()} on this CPU, got {name!r}")
    old = SIMD_LEVELS[_simd_level]
    _simd_level = fastbp_simd_dispatch(SIMD_LEVELS.index(name))
    return old
