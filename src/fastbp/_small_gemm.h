/* Blocks of R = 4, 2 or 1 rows of small_gemm (_gemm.pxi), in GCC/Clang
 * vector types.
 *
 * C rows c, c + ldc, ..., c + (R - 1) ldc (N >= 8 columns) of A @ B, A's rows
 * a, a + sam, ... with A[r, k] at a[r * sam + k * sak], B's rows contiguous.
 * Eight columns at a time; every element is (sum over even k) + (sum over odd
 * k), each sum in order from 0, exactly as small_gemm's one-row loop sums
 * it, so every block size gives the same bits. The compiler's own vectoriser
 * does not keep several rows' sums in registers (it unrolls the column loops
 * first), hence explicit vectors, as wide as the registers of the kernel set
 * they are inlined into (small_gemm picks the block that set runs).
 * -ffp-contract=off keeps
 * each multiply and add apart, as in the scalar code. Other compilers:
 * FB_HAVE_ROW_BLOCKS is 0 and small_gemm runs its scalar loop for every row. */
#ifndef FASTBP_SMALL_GEMM_H
#define FASTBP_SMALL_GEMM_H

#include <string.h>

#if defined(__GNUC__)
#define FB_HAVE_ROW_BLOCKS 1
/* the row and vector loops unrolled whole: their sums then live in registers */
#define FB_UNROLL _Pragma("GCC unroll 8")

/* NAME(N, K, a, sam, sak, B, ldb, c, ldc): R rows, the eight columns in
 * vectors of VB bytes (8 * sizeof(T) / VB of them), loaded and stored as
 * vectors (memcpy into a vector variable went through the stack, 16 bytes at
 * a time: a store-forwarding stall per load, AVX2 float64 7x slower); R and
 * VB are constants, so the loops unroll and the 2 R sums stay in registers.
 * VB is at most the running kernel set's register width: a wider vector
 * type is emulated in pieces. */
#define FB_DEFINE_ROWS(NAME, T, R, VB)                                                  \
static inline __attribute__((always_inline)) void NAME(                                 \
        Py_ssize_t N, Py_ssize_t K, const T *a, Py_ssize_t sam, Py_ssize_t sak,         \
        const T *B, Py_ssize_t ldb, T *c, Py_ssize_t ldc) {                             \
    typedef T vec __attribute__((vector_size(VB)));                                     \
    typedef T uvec __attribute__((vector_size(VB), aligned(sizeof(T)), may_alias));     \
    enum { NV = 8 * sizeof(T) / (VB), W = (VB) / sizeof(T) };                           \
    Py_ssize_t j0 = 0, k;                                                               \
    int r, q;                                                                           \
    for (;;) {                                                                          \
        vec s[R][NV], t[R][NV], v[NV];                                                  \
        const T *b;                                                                     \
        if (j0 > N - 8)                                                                 \
            j0 = N - 8;                                                                 \
        FB_UNROLL for (r = 0; r < R; r++)                                                         \
            FB_UNROLL for (q = 0; q < NV; q++)                                                    \
                s[r][q] = t[r][q] = (vec){0};                                           \
        b = B + j0;                                                                     \
        for (k = 0; k < K - 1; k += 2) {                                                \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + q * W);                                    \
            FB_UNROLL for (r = 0; r < R; r++)                                                     \
                FB_UNROLL for (q = 0; q < NV; q++)                                                \
                    s[r][q] = s[r][q] + a[r * sam + k * sak] * v[q];                    \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + ldb + q * W);                                    \
            FB_UNROLL for (r = 0; r < R; r++)                                                     \
                FB_UNROLL for (q = 0; q < NV; q++)                                                \
                    t[r][q] = t[r][q] + a[r * sam + (k + 1) * sak] * v[q];              \
            b += 2 * ldb;                                                               \
        }                                                                               \
        if (K % 2) {                                                                    \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + q * W);                                    \
            FB_UNROLL for (r = 0; r < R; r++)                                                     \
                FB_UNROLL for (q = 0; q < NV; q++)                                                \
                    s[r][q] = s[r][q] + a[r * sam + (K - 1) * sak] * v[q];              \
        }                                                                               \
        FB_UNROLL for (r = 0; r < R; r++)                                                         \
            FB_UNROLL for (q = 0; q < NV; q++)                                          \
                *(uvec *)(c + r * ldc + j0 + q * W) = s[r][q] + t[r][q];                \
        if (j0 + 8 >= N)                                                                \
            break;                                                                      \
        j0 += 8;                                                                        \
    }                                                                                   \
}
/* fb_rows{R}_{type}_{VB}: the blocks each kernel set runs (_gemm.pxi) */
FB_DEFINE_ROWS(fb_rows4_float_32, float, 4, 32)
FB_DEFINE_ROWS(fb_rows2_float_32, float, 2, 32)
FB_DEFINE_ROWS(fb_rows1_float_32, float, 1, 32)
FB_DEFINE_ROWS(fb_rows2_float_16, float, 2, 16)
FB_DEFINE_ROWS(fb_rows1_float_16, float, 1, 16)
FB_DEFINE_ROWS(fb_rows4_double_64, double, 4, 64)
FB_DEFINE_ROWS(fb_rows2_double_64, double, 2, 64)
FB_DEFINE_ROWS(fb_rows1_double_64, double, 1, 64)
FB_DEFINE_ROWS(fb_rows4_double_32, double, 4, 32)
FB_DEFINE_ROWS(fb_rows2_double_32, double, 2, 32)
FB_DEFINE_ROWS(fb_rows1_double_32, double, 1, 32)
FB_DEFINE_ROWS(fb_rows2_double_16, double, 2, 16)
FB_DEFINE_ROWS(fb_rows1_double_16, double, 1, 16)

#else
#define FB_HAVE_ROW_BLOCKS 0
#define FB_NO_ROWS(NAME, T)                                                             \
static void NAME(Py_ssize_t N, Py_ssize_t K, const T *a, Py_ssize_t sam, Py_ssize_t sak, \
                 const T *B, Py_ssize_t ldb, T *c, Py_ssize_t ldc) {}
FB_NO_ROWS(fb_rows4_float_32, float)
FB_NO_ROWS(fb_rows2_float_32, float)
FB_NO_ROWS(fb_rows1_float_32, float)
FB_NO_ROWS(fb_rows2_float_16, float)
FB_NO_ROWS(fb_rows1_float_16, float)
FB_NO_ROWS(fb_rows4_double_64, double)
FB_NO_ROWS(fb_rows2_double_64, double)
FB_NO_ROWS(fb_rows1_double_64, double)
FB_NO_ROWS(fb_rows4_double_32, double)
FB_NO_ROWS(fb_rows2_double_32, double)
FB_NO_ROWS(fb_rows1_double_32, double)
FB_NO_ROWS(fb_rows2_double_16, double)
FB_NO_ROWS(fb_rows1_double_16, double)
#endif

#endif
