/* Blocks of R = 4, 2 or 1 rows of small_gemm (_gemm.pxi), in GCC/Clang
 * vector types.
 *
 * C rows c, c + ldc, ..., c + (R - 1) ldc (N >= 8 columns) of A @ B, A's rows
 * a, a + sam, ... with A[r, k] at a[r * sam + k * sak], B's rows contiguous.
 * Eight columns at a time; every element is (sum over even k) + (sum over odd
 * k), each sum in order from 0, exactly as small_gemm's one-row loop sums
 * it, so every block size gives the same bits. The compiler's own vectoriser
 * does not keep several rows' sums in registers (it unrolls the column loops
 * first), hence
 * explicit vectors; they become one AVX-512 register, two AVX2 ones or four
 * SSE2 ones for the kernel set they are inlined into. -ffp-contract=off keeps
 * each multiply and add apart, as in the scalar code. Other compilers:
 * FB_HAVE_ROW_BLOCKS is 0 and small_gemm runs its scalar loop for every row. */
#ifndef FASTBP_SMALL_GEMM_H
#define FASTBP_SMALL_GEMM_H

#include <string.h>

#if defined(__GNUC__)
#define FB_HAVE_ROW_BLOCKS 1

/* NAME(N, K, a, sam, sak, B, ldb, c, ldc): R rows; R is a constant, so the
 * row loops unroll and the 2 R sums stay in registers */
#define FB_DEFINE_ROWS(NAME, T, R)                                                      \
static inline __attribute__((always_inline)) void NAME(                                 \
        Py_ssize_t N, Py_ssize_t K, const T *a, Py_ssize_t sam, Py_ssize_t sak,         \
        const T *B, Py_ssize_t ldb, T *c, Py_ssize_t ldc) {                             \
    typedef T vec __attribute__((vector_size(8 * sizeof(T))));                          \
    Py_ssize_t j0 = 0, k;                                                               \
    int r;                                                                              \
    for (;;) {                                                                          \
        vec s[R], t[R], v;                                                              \
        const T *b;                                                                     \
        if (j0 > N - 8)                                                                 \
            j0 = N - 8;                                                                 \
        for (r = 0; r < R; r++)                                                         \
            s[r] = t[r] = (vec){0};                                                     \
        b = B + j0;                                                                     \
        for (k = 0; k < K - 1; k += 2) {                                                \
            memcpy(&v, b, sizeof v);                                                    \
            for (r = 0; r < R; r++)                                                     \
                s[r] = s[r] + a[r * sam + k * sak] * v;                                 \
            memcpy(&v, b + ldb, sizeof v);                                              \
            for (r = 0; r < R; r++)                                                     \
                t[r] = t[r] + a[r * sam + (k + 1) * sak] * v;                           \
            b += 2 * ldb;                                                               \
        }                                                                               \
        if (K % 2) {                                                                    \
            memcpy(&v, b, sizeof v);                                                    \
            for (r = 0; r < R; r++)                                                     \
                s[r] = s[r] + a[r * sam + (K - 1) * sak] * v;                           \
        }                                                                               \
        for (r = 0; r < R; r++) {                                                       \
            v = s[r] + t[r];                                                            \
            memcpy(c + r * ldc + j0, &v, sizeof v);                                     \
        }                                                                               \
        if (j0 + 8 >= N)                                                                \
            break;                                                                      \
        j0 += 8;                                                                        \
    }                                                                                   \
}
FB_DEFINE_ROWS(fb_rows4_float, float, 4)
FB_DEFINE_ROWS(fb_rows4_double, double, 4)
FB_DEFINE_ROWS(fb_rows2_float, float, 2)
FB_DEFINE_ROWS(fb_rows2_double, double, 2)
FB_DEFINE_ROWS(fb_rows1_float, float, 1)
FB_DEFINE_ROWS(fb_rows1_double, double, 1)

#else
#define FB_HAVE_ROW_BLOCKS 0
#define FB_NO_ROWS(NAME, T)                                                             \
static void NAME(Py_ssize_t N, Py_ssize_t K, const T *a, Py_ssize_t sam, Py_ssize_t sak, \
                 const T *B, Py_ssize_t ldb, T *c, Py_ssize_t ldc) {}
FB_NO_ROWS(fb_rows4_float, float)
FB_NO_ROWS(fb_rows4_double, double)
FB_NO_ROWS(fb_rows2_float, float)
FB_NO_ROWS(fb_rows2_double, double)
FB_NO_ROWS(fb_rows1_float, float)
FB_NO_ROWS(fb_rows1_double, double)
#endif

#endif
