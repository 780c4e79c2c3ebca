/* Training steps' float64 products by fastbp's own AVX2 kernel, where it gives
 * the BLAS's bits (_step_gemm.pxi decides, by probing each product shape).
 *
 * Row-major C (M x N) = op(A) @ op(B), op(A)[i, k] at A[i * sai + k * sak] (A
 * itself: sai = lda, sak = 1; its transpose: sai = 1, sak = lda), B's rows
 * contiguous (ldb apart), op(B) = B or B^T (then each 12-column strip of
 * B^T is copied into a K x 12 block first, as the BLAS packs it: the hidden
 * deltas delta W^T, on the digits network 100 x 10 @ 10 x 100). Every element
 * of C is one chain of fused multiply-adds over k in order from +0:
 * OpenBLAS's arithmetic on its Haswell/Zen dgemm kernels for K up to its
 * k-block (measured: 100% of the elements of the digits network's products,
 * forward, weight gradient and hidden deltas). The probe checks it per shape;
 * shapes it does not hold for stay on the BLAS.
 *
 * No packing of op(B) = B (a step's product is too small to repay it): tiles
 * of 4 rows x 12 columns of C (12 accumulators, 3 vectors of B, a broadcast
 * of op(A): the 16 ymm registers), B's 12-column strip read in place across
 * all of k (K x 96 bytes: in L1 for the K this runs), then narrower tiles for the
 * last columns (8, 4, or through a mask) and rows. Why not the BLAS: for a
 * step's products (100 x 64 @ 64 x 100, 100 x 100 @ 100 x 10 on a Zen 3)
 * OpenBLAS spends 10-35% of the time in packing and call overhead.
 * Where the compiler or CPU lacks AVX2 and FMA, or the build has no clones
 * (fb_step_gemm_available() is 0), nothing here runs. */
#ifndef FASTBP_GEMM_STEP_H
#define FASTBP_GEMM_STEP_H

#include <stddef.h>

/* the longest K a product takes the kernel with: OpenBLAS's Haswell dgemm
 * k-block (one chain up to here), and what the stack copy of a strip of
 * op(B) = B^T holds (_step_gemm.pxi keeps a step's products within it) */
#define FB_STEP_MAX_K 256

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && !defined(FASTBP_NO_CLONES)
#define FB_HAVE_GEMM_STEP 1
#include <immintrin.h>

static int fb_step_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define FB_STEP_TARGET __attribute__((target("avx2,fma")))

/* R rows (<= 4) x V vectors (<= 3) of C; with MASKED, the last vector
 * through ``mask`` (plain loads otherwise: ~3% faster on a Zen 3). Inlined
 * with constant R, V and MASKED: the loops unroll, the sums stay in registers */
FB_STEP_TARGET static inline __attribute__((always_inline)) void fb_step_tile(
        int R, int V, int MASKED, __m256i mask, Py_ssize_t K, const double *a, Py_ssize_t sai,
        Py_ssize_t sak, const double *b, Py_ssize_t ldb, double *c, Py_ssize_t ldc) {
    __m256d s[4][3], v[3], x;
    Py_ssize_t k;
    int r, q;
    _Pragma("GCC unroll 4") for (r = 0; r < 4; r++)
        _Pragma("GCC unroll 3") for (q = 0; q < 3; q++) s[r][q] = _mm256_setzero_pd();
    for (k = 0; k < K; k++) {
        _Pragma("GCC unroll 3") for (q = 0; q < 3; q++)
            if (q < V)
                v[q] = MASKED && q == V - 1 ? _mm256_maskload_pd(b + q * 4, mask)
                                            : _mm256_loadu_pd(b + q * 4);
        _Pragma("GCC unroll 4") for (r = 0; r < 4; r++) {
            if (r < R) {
                x = _mm256_broadcast_sd(a + r * sai);
                _Pragma("GCC unroll 3") for (q = 0; q < 3; q++)
                    if (q < V) s[r][q] = _mm256_fmadd_pd(x, v[q], s[r][q]);
            }
        }
        a += sak;
        b += ldb;
    }
    _Pragma("GCC unroll 4") for (r = 0; r < 4; r++)
        _Pragma("GCC unroll 3") for (q = 0; q < 3; q++)
            if (r < R && q < V) {
                if (MASKED && q == V - 1)
                    _mm256_maskstore_pd(c + r * ldc + q * 4, mask, s[r][q]);
                else
                    _mm256_storeu_pd(c + r * ldc + q * 4, s[r][q]);
            }
}

/* one strip of V vectors of columns (the last one masked or not), every row:
 * tiles of 4 rows, then 3, 2 or 1 */
#define FB_STEP_STRIP(NAME, V, MASKED)                                                   \
FB_STEP_TARGET static void NAME(                                                         \
        Py_ssize_t M, Py_ssize_t K, const double *A, Py_ssize_t sai, Py_ssize_t sak,     \
        const double *b, Py_ssize_t ldb, double *c, Py_ssize_t ldc, __m256i mask) {      \
    Py_ssize_t i = 0;                                                                    \
    for (; i + 4 <= M; i += 4)                                                           \
        fb_step_tile(4, V, MASKED, mask, K, A + i * sai, sai, sak, b, ldb, c + i * ldc,  \
                     ldc);                                                               \
    switch (M - i) {                                                                     \
    case 3: fb_step_tile(3, V, MASKED, mask, K, A + i * sai, sai, sak, b, ldb,           \
                         c + i * ldc, ldc);                                              \
            break;                                                                       \
    case 2: fb_step_tile(2, V, MASKED, mask, K, A + i * sai, sai, sak, b, ldb,           \
                         c + i * ldc, ldc);                                              \
            break;                                                                       \
    case 1: fb_step_tile(1, V, MASKED, mask, K, A + i * sai, sai, sak, b, ldb,           \
                         c + i * ldc, ldc);                                              \
            break;                                                                       \
    }                                                                                    \
}
FB_STEP_STRIP(fb_step_strip12, 3, 0)
FB_STEP_STRIP(fb_step_strip1, 1, 1)
FB_STEP_STRIP(fb_step_strip2, 2, 1)
FB_STEP_STRIP(fb_step_strip3, 3, 1)

/* columns j .. j + n - 1 of op(B) = B^T as a K x 12 block (ldb 12) */
static inline void fb_step_copy_bt(Py_ssize_t K, Py_ssize_t n, const double *B, Py_ssize_t ldb,
                                   Py_ssize_t j, double *strip) {
    Py_ssize_t k, q;
    for (q = 0; q < n; q++)
        for (k = 0; k < K; k++)
            strip[k * 12 + q] = B[(j + q) * ldb + k];
}

/* C (M x N) = op(A) @ op(B), as above (M, N, K >= 1; K <= FB_STEP_MAX_K when
 * trans_b) */
FB_STEP_TARGET static void fb_step_gemm_d(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                                          const double *A, Py_ssize_t sai, Py_ssize_t sak,
                                          const double *B, Py_ssize_t ldb, int trans_b,
                                          double *C, Py_ssize_t ldc) {
    const __m256i all = _mm256_set1_epi64x(-1);
    __m256i mask;
    double strip[FB_STEP_MAX_K * 12] __attribute__((aligned(32)));
    const double *b;
    Py_ssize_t j = 0, rest, lds = trans_b ? 12 : ldb;
    for (; j + 12 <= N; j += 12) {
        if (trans_b)
            fb_step_copy_bt(K, 12, B, ldb, j, strip);
        fb_step_strip12(M, K, A, sai, sak, trans_b ? strip : B + j, lds, C + j, ldc, all);
    }
    rest = N - j;
    if (rest == 0)
        return;
    if (trans_b)
        fb_step_copy_bt(K, rest, B, ldb, j, strip);
    b = trans_b ? strip : B + j;
    /* the last 1-11 columns: whole vectors, the last one masked */
    mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x((rest - 1) % 4 + 1),
                              _mm256_setr_epi64x(0, 1, 2, 3));
    if (rest > 8)
        fb_step_strip3(M, K, A, sai, sak, b, lds, C + j, ldc, mask);
    else if (rest > 4)
        fb_step_strip2(M, K, A, sai, sak, b, lds, C + j, ldc, mask);
    else
        fb_step_strip1(M, K, A, sai, sak, b, lds, C + j, ldc, mask);
}

/* C[i, j] by the same arithmetic, one element (the tests' reference; op(B)'s
 * column j from b, its elements ldb apart) */
static double fb_step_gemm_d_dot(Py_ssize_t K, const double *a, Py_ssize_t sak,
                                 const double *b, Py_ssize_t ldb) {
    double s = 0;
    Py_ssize_t k;
    for (k = 0; k < K; k++)
        s = __builtin_fma(a[k * sak], b[k * ldb], s);
    return s;
}

/* The verdict table's lock (a spin lock: held only while a shape is probed,
 * once per shape and process) */
static char fb_step_lock_flag = 0;
static void fb_step_lock(void) {
    while (__atomic_test_and_set(&fb_step_lock_flag, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&fb_step_lock_flag, __ATOMIC_RELAXED))
            ;
}
static void fb_step_unlock(void) { __atomic_clear(&fb_step_lock_flag, __ATOMIC_RELEASE); }
static int fb_step_load_count(const int *n) { return __atomic_load_n(n, __ATOMIC_ACQUIRE); }
static void fb_step_store_count(int *n, int v) { __atomic_store_n(n, v, __ATOMIC_RELEASE); }

#else
#define FB_HAVE_GEMM_STEP 0
static int fb_step_gemm_available(void) { return 0; }
static void fb_step_gemm_d(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                           Py_ssize_t sai, Py_ssize_t sak, const double *B, Py_ssize_t ldb,
                           int trans_b, double *C, Py_ssize_t ldc) {}
static double fb_step_gemm_d_dot(Py_ssize_t K, const double *a, Py_ssize_t sak,
                                 const double *b, Py_ssize_t ldb) { return 0; }
static void fb_step_lock(void) {}
static void fb_step_unlock(void) {}
static int fb_step_load_count(const int *n) { return *n; }
static void fb_step_store_count(int *n, int v) { *n = v; }
#endif

#endif
