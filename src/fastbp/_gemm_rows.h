/* Prediction's products of a few rows over a large layer by fastbp's own
 * kernel, where it gives the BLAS's bits (_own_rows.pxi decides, by probing
 * each layer shape).
 *
 * Row-major float32 C (M x N) = A (M x K) @ B (K x N, rows ldb apart), each
 * row of C as OpenBLAS's gemv computes a row alone (its sgemv_n kernels,
 * SkylakeX and Haswell): for each block of FB_ROWS_KB consecutive k (the
 * last one shorter), t = a_k0 b_k0 then t = fma(a_k, b_k, t) over the
 * block's other k in order, and c = c + t from c = +0. One row through gemv
 * streams all of B; here a tile of R rows x NV vectors of columns reads each
 * vector of B once for its R rows, so 2-8 rows cost little more than one.
 * Columns past the last whole vector go one at a time, by the same
 * arithmetic. Where the compiler or CPU lacks AVX2 and FMA (fb_rows_level()
 * is 0), nothing here runs. */
#ifndef FASTBP_GEMM_ROWS_H
#define FASTBP_GEMM_ROWS_H

#include <stddef.h>

#define FB_ROWS_KB 8    /* k per block of a chain */

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && !defined(FASTBP_NO_CLONES)
#define FB_HAVE_GEMM_ROWS 1
#include <immintrin.h>

/* 2: the AVX-512 kernels can run here, 1: the AVX2 ones, 0: none */
static int fb_rows_level(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("fma") || !__builtin_cpu_supports("avx2")) return 0;
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
}

#define FB_ROWS_UNROLL _Pragma("GCC unroll 16")

/* NAME##_tile: R rows x NV vectors (W values each) of C; NAME##_dot: one
 * element (scalar, the same arithmetic); NAME: the whole product. V: the
 * vector type; LOAD, STORE, SET1, MUL, FMA, ADD: its unaligned load and
 * store, broadcast, multiply, fused multiply-add, add; SFMA: the scalar
 * fused multiply-add; NV8 .. NV1: vectors of columns in a tile of 8, 4, 2
 * and 1 rows (the R x NV sums and NV vectors of B within the registers). */
#define FB_DEFINE_GEMM_ROWS(NAME, T, W, V, TARGET, LOAD, STORE, SET1, MUL, FMA, ADD, SFMA,  \
                            NV8, NV4, NV2, NV1)                                           \
TARGET static inline __attribute__((always_inline)) void NAME##_tile(                     \
        int R, int NV, Py_ssize_t K, const T *A, Py_ssize_t lda, const T *B,               \
        Py_ssize_t ldb, T *C, Py_ssize_t ldc) {                                            \
    V t[8][8], w[8], a;                                                                    \
    Py_ssize_t k0, k, kb;                                                                  \
    const T *b;                                                                            \
    int r, q;                                                                              \
    FB_ROWS_UNROLL for (r = 0; r < R; r++)                                                 \
        FB_ROWS_UNROLL for (q = 0; q < NV; q++) STORE(C + r * ldc + q * W, SET1((T)0));   \
    for (k0 = 0; k0 < K; k0 += FB_ROWS_KB) {                                               \
        kb = K - k0 < FB_ROWS_KB ? K - k0 : FB_ROWS_KB;                                    \
        b = B + k0 * ldb;                                                                  \
        FB_ROWS_UNROLL for (q = 0; q < NV; q++) w[q] = LOAD(b + q * W);                    \
        FB_ROWS_UNROLL for (r = 0; r < R; r++) {                                           \
            a = SET1(A[r * lda + k0]);                                                     \
            FB_ROWS_UNROLL for (q = 0; q < NV; q++) t[r][q] = MUL(a, w[q]);                \
        }                                                                                  \
        for (k = 1; k < kb; k++) {                                                         \
            b += ldb;                                                                      \
            FB_ROWS_UNROLL for (q = 0; q < NV; q++) w[q] = LOAD(b + q * W);                \
            FB_ROWS_UNROLL for (r = 0; r < R; r++) {                                       \
                a = SET1(A[r * lda + k0 + k]);                                             \
                FB_ROWS_UNROLL for (q = 0; q < NV; q++) t[r][q] = FMA(a, w[q], t[r][q]);   \
            }                                                                              \
        }                                                                                  \
        FB_ROWS_UNROLL for (r = 0; r < R; r++)                                             \
            FB_ROWS_UNROLL for (q = 0; q < NV; q++)                                        \
                STORE(C + r * ldc + q * W, ADD(LOAD(C + r * ldc + q * W), t[r][q]));       \
    }                                                                                      \
}                                                                                          \
                                                                                           \
TARGET static T NAME##_dot(Py_ssize_t K, const T *a, const T *b, Py_ssize_t ldb) {         \
    T c = 0, t;                                                                            \
    Py_ssize_t k0, k, kb;                                                                  \
    for (k0 = 0; k0 < K; k0 += FB_ROWS_KB) {                                               \
        kb = K - k0 < FB_ROWS_KB ? K - k0 : FB_ROWS_KB;                                    \
        t = a[k0] * b[k0 * ldb];                                                           \
        for (k = 1; k < kb; k++) t = SFMA(a[k0 + k], b[(k0 + k) * ldb], t);                \
        c = c + t;                                                                         \
    }                                                                                      \
    return c;                                                                              \
}                                                                                          \
                                                                                           \
/* R rows: whole tiles of NV vectors, then single vectors, then single     */           \
/* columns */                                                                             \
TARGET static inline __attribute__((always_inline)) void NAME##_rowblock(                 \
        int R, int NV, Py_ssize_t N, Py_ssize_t K, const T *A, Py_ssize_t lda,             \
        const T *B, Py_ssize_t ldb, T *C, Py_ssize_t ldc) {                                \
    Py_ssize_t j = 0;                                                                      \
    int r;                                                                                 \
    for (; j + NV * W <= N; j += NV * W)                                                   \
        NAME##_tile(R, NV, K, A, lda, B + j, ldb, C + j, ldc);                             \
    for (; j + W <= N; j += W)                                                             \
        NAME##_tile(R, 1, K, A, lda, B + j, ldb, C + j, ldc);                              \
    for (; j < N; j++)                                                                     \
        for (r = 0; r < R; r++) C[r * ldc + j] = NAME##_dot(K, A + r * lda, B + j, ldb);   \
}                                                                                          \
                                                                                           \
TARGET static void NAME(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const T *A,              \
                        Py_ssize_t lda, const T *B, Py_ssize_t ldb, T *C, Py_ssize_t ldc) { \
    Py_ssize_t i = 0;                                                                      \
    /* eight rows share each vector of B; fewer rows take wider tiles */                   \
    for (; i + 8 <= M; i += 8) NAME##_rowblock(8, NV8, N, K, A + i * lda, lda, B, ldb,      \
                                               C + i * ldc, ldc);                          \
    if (i + 4 <= M) { NAME##_rowblock(4, NV4, N, K, A + i * lda, lda, B, ldb, C + i * ldc, \
                                      ldc); i += 4; }                                      \
    if (i + 2 <= M) { NAME##_rowblock(2, NV2, N, K, A + i * lda, lda, B, ldb, C + i * ldc, \
                                      ldc); i += 2; }                                      \
    if (i < M) NAME##_rowblock(1, NV1, N, K, A + i * lda, lda, B, ldb, C + i * ldc, ldc);   \
}

#define FB_T512 __attribute__((target("avx512f,avx2,fma")))
#define FB_T256 __attribute__((target("avx2,fma")))
FB_DEFINE_GEMM_ROWS(fb_rows_f_512, float, 16, __m512, FB_T512, _mm512_loadu_ps, _mm512_storeu_ps,
               _mm512_set1_ps, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_add_ps, __builtin_fmaf,
               2, 4, 8, 8)
FB_DEFINE_GEMM_ROWS(fb_rows_f_256, float, 8, __m256, FB_T256, _mm256_loadu_ps, _mm256_storeu_ps,
               _mm256_set1_ps, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_add_ps, __builtin_fmaf,
               1, 3, 6, 8)

/* C = A @ B by the kernels of ``level`` (2: AVX-512, else AVX2); float32 only:
 * OpenBLAS's dgemv sums otherwise (_own_rows.pxi) */
static void fb_rows_f(int level, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                      Py_ssize_t lda, const float *B, Py_ssize_t ldb, float *C,
                      Py_ssize_t ldc) {
    if (level == 2) fb_rows_f_512(M, N, K, A, lda, B, ldb, C, ldc);
    else fb_rows_f_256(M, N, K, A, lda, B, ldb, C, ldc);
}

#else
#define FB_HAVE_GEMM_ROWS 0
static int fb_rows_level(void) { return 0; }
static void fb_rows_f(int level, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                      Py_ssize_t lda, const float *B, Py_ssize_t ldb, float *C,
                      Py_ssize_t ldc) {}
#endif

#endif
