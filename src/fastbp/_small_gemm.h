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
        FB_UNROLL for (r = 0; r < R; r++)                                               \
            FB_UNROLL for (q = 0; q < NV; q++)                                          \
                s[r][q] = t[r][q] = (vec){0};                                           \
        b = B + j0;                                                                     \
        for (k = 0; k < K - 1; k += 2) {                                                \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + q * W);       \
            FB_UNROLL for (r = 0; r < R; r++)                                           \
                FB_UNROLL for (q = 0; q < NV; q++)                                      \
                    s[r][q] = s[r][q] + a[r * sam + k * sak] * v[q];                    \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + ldb + q * W); \
            FB_UNROLL for (r = 0; r < R; r++)                                           \
                FB_UNROLL for (q = 0; q < NV; q++)                                      \
                    t[r][q] = t[r][q] + a[r * sam + (k + 1) * sak] * v[q];              \
            b += 2 * ldb;                                                               \
        }                                                                               \
        if (K % 2) {                                                                    \
            FB_UNROLL for (q = 0; q < NV; q++) v[q] = *(const uvec *)(b + q * W);       \
            FB_UNROLL for (r = 0; r < R; r++)                                           \
                FB_UNROLL for (q = 0; q < NV; q++)                                      \
                    s[r][q] = s[r][q] + a[r * sam + (K - 1) * sak] * v[q];              \
        }                                                                               \
        FB_UNROLL for (r = 0; r < R; r++)                                               \
            FB_UNROLL for (q = 0; q < NV; q++)                                          \
                *(uvec *)(c + r * ldc + j0 + q * W) = s[r][q] + t[r][q];                \
        if (j0 + 8 >= N)                                                                \
            break;                                                                      \
        j0 += 8;                                                                        \
    }                                                                                   \
}
/* fb_blocks_{T}_{VB}(M, N, K, a, sam, sak, B, ldb, c, ldc): small_gemm's M
 * rows in blocks of 4 (when MAXR is 4), then 2, then 1 rows, in VB-byte
 * vectors; the kernel set picks the instance (_gemm.pxi) */
#define FB_DEFINE_SET(T, VB, MAXR)                                                      \
FB_DEFINE_ROWS(fb_rows4_##T##_##VB, T, 4, VB)                                           \
FB_DEFINE_ROWS(fb_rows2_##T##_##VB, T, 2, VB)                                           \
FB_DEFINE_ROWS(fb_rows1_##T##_##VB, T, 1, VB)                                           \
static inline __attribute__((always_inline)) void fb_blocks_##T##_##VB(                 \
        Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const T *a, Py_ssize_t sam,           \
        Py_ssize_t sak, const T *B, Py_ssize_t ldb, T *c, Py_ssize_t ldc) {             \
    Py_ssize_t m = 0;                                                                   \
    if ((MAXR) == 4)                                                                    \
        for (; m + 4 <= M; m += 4)                                                      \
            fb_rows4_##T##_##VB(N, K, a + m * sam, sam, sak, B, ldb, c + m * ldc, ldc); \
    for (; m + 2 <= M; m += 2)                                                          \
        fb_rows2_##T##_##VB(N, K, a + m * sam, sam, sak, B, ldb, c + m * ldc, ldc);     \
    for (; m < M; m++)                                                                  \
        fb_rows1_##T##_##VB(N, K, a + m * sam, sam, sak, B, ldb, c + m * ldc, ldc);     \
}
#else
#define FB_HAVE_ROW_BLOCKS 0
#define FB_DEFINE_SET(T, VB, MAXR)                                                      \
static void fb_blocks_##T##_##VB(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const T *a,  \
        Py_ssize_t sam, Py_ssize_t sak, const T *B, Py_ssize_t ldb, T *c,               \
        Py_ssize_t ldc) {}
#endif

/* the sets: 64-byte vectors for AVX-512 float64, 32 for AVX2 and float32,
 * 16 for the baseline, whose 16 SSE2 registers hold two rows' sums */
FB_DEFINE_SET(float, 32, 4)
FB_DEFINE_SET(float, 16, 2)
FB_DEFINE_SET(double, 64, 4)
FB_DEFINE_SET(double, 32, 4)
FB_DEFINE_SET(double, 16, 2)

#endif
