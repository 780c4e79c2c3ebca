/* FASTBP_VECTOR_CLONES: marks fastbp's element-wise kernels for GCC's
 * target_clones, which compiles them for AVX-512, AVX2 and baseline x86-64
 * and picks one when the module loads (the ifunc mechanism). setup.py puts
 * the marker on the generated C; here it is defined, or left empty where the
 * compiler, CPU family or platform has no such dispatch. */
#ifndef FASTBP_SIMD_H
#define FASTBP_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && defined(__linux__) && !defined(FASTBP_NO_CLONES)
#define FASTBP_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTBP_VECTOR_CLONES
#endif

#endif
