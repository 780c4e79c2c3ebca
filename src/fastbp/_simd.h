/* Kernel sets (AVX-512, AVX2, baseline) and the markers setup.py puts on
 * fastbp's generated C.
 *
 * setup.py compiles each element-wise kernel it lists (VECTOR_KERNELS) three
 * times where FASTBP_DISPATCH holds: NAME__avx512 (target "avx512f"),
 * NAME__avx2 (target "avx2") and NAME__base (the build's baseline), and
 * declares NAME as a function pointer through which every call goes
 * (FASTBP_KERNEL). fastbp_simd_dispatch(level), which setup.py appends to
 * the module, points every NAME at one set; each module calls it once when
 * imported, with the CPU's best set or the one FASTBP_SIMD asks for (_simd.pxi).
 * Elsewhere (other compilers and CPU families, FASTBP_NO_CLONES) NAME is
 * the one baseline function and the only set is "baseline".
 *
 * Every set does the same arithmetic per element: -ffp-contract=off keeps
 * a * b + c unfused, so results do not depend on the set.
 *
 * FASTBP_ALWAYS_INLINE marks the engine's ``cdef inline`` functions: they
 * are inlined wherever they are called, so a helper of a kernel is compiled
 * with that kernel's instruction set (GCC's inliner otherwise gives up on
 * some once the translation unit has grown). */
#ifndef FASTBP_SIMD_H
#define FASTBP_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && !defined(FASTBP_NO_CLONES)
#define FASTBP_DISPATCH 1
#define FASTBP_TARGET_AVX512 __attribute__((target("avx512f")))
#define FASTBP_TARGET_AVX2 __attribute__((target("avx2")))
/* the three versions, and the pointer every call goes through (baseline
 * until fastbp_simd_dispatch runs) */
#define FASTBP_KERNEL(ret, name, args) \
    static FASTBP_TARGET_AVX512 ret name##__avx512 args; \
    static FASTBP_TARGET_AVX2 ret name##__avx2 args; \
    static ret name##__base args; \
    static ret (*name) args = name##__base;
#else
#define FASTBP_DISPATCH 0
#define FASTBP_KERNEL(ret, name, args) static ret name args;
#endif

/* the best set this CPU runs: 2 AVX-512, 1 AVX2, 0 baseline */
static int fastbp_cpu_simd_level(void) {
#if FASTBP_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    if (__builtin_cpu_supports("avx2"))
        return 1;
#endif
    return 0;
}

#if defined(__GNUC__)
#define FASTBP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FASTBP_ALWAYS_INLINE
#endif

#endif
