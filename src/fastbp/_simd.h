/* Code-generation markers that setup.py puts on fastbp's generated C.
 *
 * FASTBP_VECTOR_CLONES marks the element-wise kernels for GCC's
 * target_clones: each is compiled for AVX-512, AVX2 and baseline x86-64, and
 * one is picked when the module loads (the ifunc mechanism). It is empty
 * where the compiler, CPU family or platform has no such dispatch.
 *
 * FASTBP_ALWAYS_INLINE marks the engine's ``cdef inline`` functions: they
 * are inlined wherever they are called, so a helper of a cloned kernel is
 * compiled with that kernel's instruction set (GCC's inliner otherwise gives
 * up on some once the translation unit has grown). */
#ifndef FASTBP_SIMD_H
#define FASTBP_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && defined(__linux__) && !defined(FASTBP_NO_CLONES)
#define FASTBP_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTBP_VECTOR_CLONES
#endif

#if defined(__GNUC__)
#define FASTBP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FASTBP_ALWAYS_INLINE
#endif

#endif
