/* Prediction's products by fastbp's own AVX-512 kernel, where it gives the
 * BLAS's bits (_own_gemm.pxi decides, by probing each product shape).
 *
 * Row-major C (M x N) = A (M x K) @ B (K x N). Every element of C is, for
 * each block of k (the split: block lengths in order), a chain of fused
 * multiply-adds over the block's k in order from +0, and the blocks' chains
 * are added in order: C = ((b_0) + b_1) + ... That is OpenBLAS's arithmetic
 * on its AVX-512 (SkylakeX) kernels, whose split of K depends on K alone;
 * the probe finds the split, or finds that the BLAS computes otherwise.
 *
 * B is packed first (fb_gemm_pack_*; in prediction by each thread, once per
 * call): for each block of k, panels of NR = 2 vectors of columns, each
 * kc x NR contiguous, zero-padded past N; or, for products of a few rows,
 * read in place (fb_gemm_*_nn_in_place: the same arithmetic). The
 * kernel keeps MR = 12 rows x NR columns of C in 24 registers, broadcasting
 * A's elements from its rows in place; the last columns are stored through a
 * mask. Where the compiler or CPU lacks AVX-512 (fb_gemm_available() is 0),
 * nothing here runs. */
#ifndef FASTBP_GEMM_NN_H
#define FASTBP_GEMM_NN_H

#include <stddef.h>
#include <string.h>

#define FB_GEMM_MAX_BLOCKS 32   /* blocks of k a split may have */

typedef struct {
    int n;                          /* blocks */
    int len[FB_GEMM_MAX_BLOCKS];    /* their lengths, in order (sum: K) */
} fb_ksplit;

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8 && defined(__x86_64__) \
    && !defined(FASTBP_NO_CLONES)
#define FB_HAVE_GEMM_NN 1
#include <immintrin.h>

static int fb_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

#define FB_GEMM_TARGET __attribute__((target("avx512f,fma")))
#define FB_GEMM_MR 12

/* NAME_in_place_R: a tile of R rows on B read in place (NAME_rows, inlined) */
#define FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, R)                                           \
FB_GEMM_TARGET __attribute__((noinline)) static void NAME##_in_place_##R(                 \
        Py_ssize_t kc, const T *a, Py_ssize_t lda, const T *b, Py_ssize_t ldb, T *c,      \
        Py_ssize_t ldc, int first, MASK m0, MASK m1) {                                    \
    if (m0 == (MASK)~0 && m1 == (MASK)~0)                                                 \
        NAME##_rows(R, kc, a, lda, b, ldb, 1, c, ldc, first, m0, m1);                     \
    else                                                                                  \
        NAME##_rows(R, kc, a, lda, b, ldb, 2, c, ldc, first, m0, m1);                     \
}

/* NAME_pack(K, N, B, ldb, split, P), NAME_nn(M, N, K, A, lda, P, split, C, ldc)
 * and NAME_dot(...): one scalar element by the same arithmetic (the probe's).
 * T: float or double; W: lanes per vector; V, MASK: vector and mask types;
 * S: intrinsic suffix (ps, pd); FMA: the scalar fused multiply-add. */
#define FB_DEFINE_GEMM_NN(NAME, T, W, V, MASK, S, FMA)                                     \
static size_t NAME##_packed_size(Py_ssize_t K, Py_ssize_t N) {                           \
    return (size_t)K * (size_t)(((N + 2 * W - 1) / (2 * W)) * (2 * W));                  \
}                                                                                         \
                                                                                          \
static void NAME##_pack(Py_ssize_t K, Py_ssize_t N, const T *B, Py_ssize_t ldb,           \
                        const fb_ksplit *split, T *P) {                                   \
    Py_ssize_t np_ = (N + 2 * W - 1) / (2 * W), k0 = 0, jr, k, nj;                        \
    int blk;                                                                              \
    for (blk = 0; blk < split->n; blk++) {                                                \
        Py_ssize_t kc = split->len[blk];                                                  \
        for (jr = 0; jr < np_; jr++) {                                                    \
            nj = N - jr * 2 * W < 2 * W ? N - jr * 2 * W : 2 * W;                         \
            for (k = 0; k < kc; k++) {                                                    \
                /* a whole panel's row: a copy of constant size, inlined */               \
                if (nj == 2 * W) {                                                        \
                    memcpy(P + k * 2 * W, B + (k0 + k) * ldb + jr * 2 * W,                \
                           2 * W * sizeof(T));                                            \
                    continue;                                                             \
                }                                                                         \
                memcpy(P + k * 2 * W, B + (k0 + k) * ldb + jr * 2 * W, nj * sizeof(T));  \
                memset(P + k * 2 * W + nj, 0, (2 * W - nj) * sizeof(T));                  \
            }                                                                             \
            P += kc * 2 * W;                                                              \
        }                                                                                 \
        k0 += kc;                                                                         \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* C rows [0, mr) x one panel, over one block of k: C = acc (first block) or */          \
/* C + acc; b: the panel's kc x 2W values, packed (in_place 0) or the */                \
/* weights' own rows ldb apart (1; 2: a narrower last panel, masked). */                 \
/* Inlined with mr = MR, the row */                                                      \
/* loops unroll and the 2 MR sums stay in registers; with a smaller mr (a */             \
/* short product's one tile) the same code runs as loops */                              \
FB_GEMM_TARGET static inline __attribute__((always_inline)) void NAME##_rows(            \
        int mr, Py_ssize_t kc, const T *a, Py_ssize_t lda, const T *b, Py_ssize_t ldb,   \
        int in_place, T *c, Py_ssize_t ldc, int first, MASK m0, MASK m1) {               \
    V acc0[FB_GEMM_MR], acc1[FB_GEMM_MR], b0, b1, t;                                     \
    Py_ssize_t k;                                                                        \
    int r;                                                                               \
    _Pragma("GCC unroll 12")                                                             \
    for (r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_##S();                   \
    for (k = 0; k < kc; k++) {                                                           \
        if (in_place == 1) {             /* the weights' own rows, ldb apart */          \
            b0 = _mm512_loadu_##S(b + k * ldb);                                          \
            b1 = _mm512_loadu_##S(b + k * ldb + W);                                      \
        } else if (in_place) {           /* a narrower last panel: masked loads, */      \
            /* slower (with them GCC keeps the sums in memory) */                        \
            b0 = _mm512_maskz_loadu_##S(m0, b + k * ldb);                                \
            b1 = _mm512_maskz_loadu_##S(m1, b + k * ldb + W);                            \
        } else {                         /* a packed panel, zero-padded */               \
            b0 = _mm512_load_##S(b + k * 2 * W);                                         \
            b1 = _mm512_load_##S(b + k * 2 * W + W);                                     \
        }                                                                                \
        _Pragma("GCC unroll 12")                                                         \
        for (r = 0; r < mr; r++) {                                                       \
            t = _mm512_set1_##S(a[r * lda + k]);                                         \
            acc0[r] = _mm512_fmadd_##S(t, b0, acc0[r]);                                  \
            acc1[r] = _mm512_fmadd_##S(t, b1, acc1[r]);                                  \
        }                                                                                \
    }                                                                                    \
    for (r = 0; r < mr; r++) {                                                           \
        T *cr = c + r * ldc;                                                             \
        if (!first) {                                                                    \
            acc0[r] = _mm512_add_##S(acc0[r], _mm512_maskz_loadu_##S(m0, cr));           \
            acc1[r] = _mm512_add_##S(acc1[r], _mm512_maskz_loadu_##S(m1, cr + W));       \
        }                                                                                \
        _mm512_mask_storeu_##S(cr, m0, acc0[r]);                                         \
        _mm512_mask_storeu_##S(cr + W, m1, acc1[r]);                                     \
    }                                                                                    \
}                                                                                        \
                                                                                         \
FB_GEMM_TARGET static void NAME##_tile(                                                  \
        int mr, Py_ssize_t kc, const T *a, Py_ssize_t lda, const T *b, T *c,             \
        Py_ssize_t ldc, int first, MASK m0, MASK m1) {                                   \
    if (mr == FB_GEMM_MR)                                                                \
        NAME##_rows(FB_GEMM_MR, kc, a, lda, b, 0, 0, c, ldc, first, m0, m1);             \
    else                                                                                 \
        NAME##_rows(mr, kc, a, lda, b, 0, 0, c, ldc, first, m0, m1);                     \
}                                                                                        \
                                                                                         \
/* The same tiles reading B's rows in place, one function per row count so */         \
/* that each keeps its sums in registers (one function holding every count */          \
/* kept them in memory: GCC gave up scalarising the sums) */                           \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 1) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 2)                      \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 3) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 4)                      \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 5) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 6)                      \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 7) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 8)                      \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 9) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 10)                     \
FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 11) FB_GEMM_IN_PLACE_TILE(NAME, T, MASK, 12)                    \
                                                                                         \
FB_GEMM_TARGET static void NAME##_tile_in_place(                                         \
        int mr, Py_ssize_t kc, const T *a, Py_ssize_t lda, const T *b, Py_ssize_t ldb,   \
        T *c, Py_ssize_t ldc, int first, MASK m0, MASK m1) {                             \
    static void (*const tiles[FB_GEMM_MR])(Py_ssize_t, const T *, Py_ssize_t, const T *, \
                                           Py_ssize_t, T *, Py_ssize_t, int, MASK,      \
                                           MASK) = {                                    \
        NAME##_in_place_1, NAME##_in_place_2, NAME##_in_place_3, NAME##_in_place_4,      \
        NAME##_in_place_5, NAME##_in_place_6, NAME##_in_place_7, NAME##_in_place_8,      \
        NAME##_in_place_9, NAME##_in_place_10, NAME##_in_place_11, NAME##_in_place_12};  \
    tiles[mr - 1](kc, a, lda, b, ldb, c, ldc, first, m0, m1);                            \
}                                                                                        \
                                                                                         \
/* the store masks of a panel whose first column has rem columns of C left */        \
static inline void NAME##_panel_masks(Py_ssize_t rem, MASK *m0, MASK *m1) {              \
    Py_ssize_t nj = rem < 2 * W ? rem : 2 * W;                                            \
    *m0 = nj >= W ? (MASK)~0 : (MASK)((1u << nj) - 1);                                    \
    *m1 = nj >= 2 * W ? (MASK)~0 : nj <= W ? (MASK)0 : (MASK)((1u << (nj - W)) - 1);      \
}                                                                                         \
                                                                                          \
/* Row tiles of MR rows, each through every block of k before the next (so a */     \
/* last tile can overlap the previous one: its rows are computed again, the  */       \
/* same values); a product of fewer than MR rows in one short tile */                 \
FB_GEMM_TARGET static void NAME##_nn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,            \
        const T *A, Py_ssize_t lda, const T *P, const fb_ksplit *split, T *C,             \
        Py_ssize_t ldc) {                                                                 \
    Py_ssize_t np_ = (N + 2 * W - 1) / (2 * W), i, i0, k0, jr;                            \
    const T *Pb;                                                                          \
    int blk, mr;                                                                          \
    MASK m0, m1;                                                                          \
    (void)K;                                                                              \
    for (i = 0; i < M; i += FB_GEMM_MR) {                                                 \
        i0 = i;                                                                           \
        mr = FB_GEMM_MR;                                                                  \
        if (M - i < FB_GEMM_MR) {                                                         \
            if (M >= FB_GEMM_MR) i0 = M - FB_GEMM_MR;                                     \
            else mr = (int)(M - i);                                                       \
        }                                                                                 \
        Pb = P;                                                                           \
        k0 = 0;                                                                           \
        for (blk = 0; blk < split->n; blk++) {                                            \
            Py_ssize_t kc = split->len[blk];                                              \
            for (jr = 0; jr < np_; jr++) {                                                \
                NAME##_panel_masks(N - jr * 2 * W, &m0, &m1);                             \
                NAME##_tile(mr, kc, A + i0 * lda + k0, lda, Pb + jr * kc * 2 * W,         \
                            C + i0 * ldc + jr * 2 * W, ldc, blk == 0, m0, m1);            \
            }                                                                             \
            Pb += np_ * kc * 2 * W;                                                       \
            k0 += kc;                                                                     \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* NAME_nn's product with B read in place (rows ldb apart), no packing: for */        \
/* products of few rows, which would read each packed panel only once or */          \
/* twice. Row tiles of MR rows and one of the rest; per tile and block of k, */        \
/* the panels in turn (a panel: kc rows of 2 W values, ldb apart) */                   \
FB_GEMM_TARGET static void NAME##_nn_in_place(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,   \
        const T *A, Py_ssize_t lda, const T *B, Py_ssize_t ldb, const fb_ksplit *split,   \
        T *C, Py_ssize_t ldc) {                                                           \
    Py_ssize_t np_ = (N + 2 * W - 1) / (2 * W), i, k0, jr;                                \
    int blk, mr;                                                                          \
    MASK m0, m1;                                                                          \
    (void)K;                                                                              \
    for (i = 0; i < M; i += FB_GEMM_MR) {                                                 \
        mr = M - i < FB_GEMM_MR ? (int)(M - i) : FB_GEMM_MR;                              \
        k0 = 0;                                                                           \
        for (blk = 0; blk < split->n; blk++) {                                            \
            Py_ssize_t kc = split->len[blk];                                              \
            for (jr = 0; jr < np_; jr++) {                                                \
                NAME##_panel_masks(N - jr * 2 * W, &m0, &m1);                             \
                NAME##_tile_in_place(mr, kc, A + i * lda + k0, lda,                       \
                                     B + k0 * ldb + jr * 2 * W, ldb,                      \
                                     C + i * ldc + jr * 2 * W, ldc, blk == 0, m0, m1);    \
            }                                                                             \
            k0 += kc;                                                                     \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* C[i, j] by the same arithmetic, one element (the probe's candidates) */               \
FB_GEMM_TARGET static T NAME##_dot(Py_ssize_t K, const T *a, const T *B, Py_ssize_t ldb,  \
                                   Py_ssize_t j, const fb_ksplit *split) {                \
    Py_ssize_t k0 = 0, k;                                                                 \
    int blk;                                                                              \
    T c = 0, s;                                                                           \
    (void)K;                                                                              \
    for (blk = 0; blk < split->n; blk++) {                                                \
        s = 0;                                                                            \
        for (k = k0; k < k0 + split->len[blk]; k++)                                       \
            s = FMA(a[k], B[k * ldb + j], s);                                             \
        c = blk == 0 ? s : c + s;                                                         \
        k0 += split->len[blk];                                                            \
    }                                                                                     \
    return c;                                                                             \
}

FB_DEFINE_GEMM_NN(fb_gemm_f, float, 16, __m512, __mmask16, ps, __builtin_fmaf)
FB_DEFINE_GEMM_NN(fb_gemm_d, double, 8, __m512d, __mmask8, pd, __builtin_fma)

#else
#define FB_HAVE_GEMM_NN 0
static int fb_gemm_available(void) { return 0; }
static size_t fb_gemm_f_packed_size(Py_ssize_t K, Py_ssize_t N) { return 0; }
static size_t fb_gemm_d_packed_size(Py_ssize_t K, Py_ssize_t N) { return 0; }
static void fb_gemm_f_pack(Py_ssize_t K, Py_ssize_t N, const float *B, Py_ssize_t ldb,
                           const fb_ksplit *split, float *P) {}
static void fb_gemm_d_pack(Py_ssize_t K, Py_ssize_t N, const double *B, Py_ssize_t ldb,
                           const fb_ksplit *split, double *P) {}
static void fb_gemm_f_nn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                         Py_ssize_t lda, const float *P, const fb_ksplit *split, float *C,
                         Py_ssize_t ldc) {}
static void fb_gemm_d_nn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                         Py_ssize_t lda, const double *P, const fb_ksplit *split, double *C,
                         Py_ssize_t ldc) {}
static void fb_gemm_f_nn_in_place(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                                  Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                                  const fb_ksplit *split, float *C, Py_ssize_t ldc) {}
static void fb_gemm_d_nn_in_place(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                                  Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                                  const fb_ksplit *split, double *C, Py_ssize_t ldc) {}
static float fb_gemm_f_dot(Py_ssize_t K, const float *a, const float *B, Py_ssize_t ldb,
                           Py_ssize_t j, const fb_ksplit *split) { return 0; }
static double fb_gemm_d_dot(Py_ssize_t K, const double *a, const double *B, Py_ssize_t ldb,
                            Py_ssize_t j, const fb_ksplit *split) { return 0; }
#endif

#endif
