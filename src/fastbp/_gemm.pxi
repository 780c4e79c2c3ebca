# Matrix products: BLAS dispatch and the measured small-product loops.
#
# Notes
# -----
# * Batches are row-major: ``Z = A @ W``. ``gemm_rm`` is the one entry: a
#   row-major product with optional transposes. It runs outer products, a
#   row times a small matrix and one output's weight gradient in typed loops
#   (``small_gemm``; the limits were measured by
#   benchmarks/small_products.py), the rest through ``scipy.linalg.cython_blas``.
# * ``_blas_rm`` uses the transpose trick (a row-major matrix read as
#   column-major is its transpose) and sends matrix-vector products to gemv,
#   as numpy's matmul does, so that the rounding follows numpy.
# * ``small_gemm`` sums in two chains (even and odd terms) for every element,
#   whichever block or thread computes it. Besides one-row products it runs a
#   training step's whole products of at most SMALL_PRODUCT_WORK multiply-adds
#   (``gemm_rm_step``, _step_gemm.pxi: a tiny network's batch), where a BLAS
#   call costs more than the work.

cdef extern from "_small_gemm.h" nogil:
    # small_gemm's rows in blocks of 4, 2 and 1 in vectors of 64, 32 or 16
    # bytes (GCC, Clang; elsewhere FB_HAVE_ROW_BLOCKS is 0)
    const bint FB_HAVE_ROW_BLOCKS
    void fb_blocks_float_32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *a,
        Py_ssize_t sam, Py_ssize_t sak, const float *B, Py_ssize_t ldb, float *c,
        Py_ssize_t ldc)
    void fb_blocks_float_16(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *a,
        Py_ssize_t sam, Py_ssize_t sak, const float *B, Py_ssize_t ldb, float *c,
        Py_ssize_t ldc)
    void fb_blocks_double_64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *a,
        Py_ssize_t sam, Py_ssize_t sak, const double *B, Py_ssize_t ldb, double *c,
        Py_ssize_t ldc)
    void fb_blocks_double_32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *a,
        Py_ssize_t sam, Py_ssize_t sak, const double *B, Py_ssize_t ldb, double *c,
        Py_ssize_t ldc)
    void fb_blocks_double_16(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *a,
        Py_ssize_t sam, Py_ssize_t sak, const double *B, Py_ssize_t ldb, double *c,
        Py_ssize_t ldc)


cdef inline void _gemv(char trans, int m, int n, floating alpha, const floating *A, int lda,
                       const floating *x, int incx, floating beta, floating *y,
                       int incy) noexcept nogil:
    """Column-major ``y = alpha * op(A) @ x + beta * y``, A (m x n)."""
    if floating is float:
        sgemv(&trans, &m, &n, &alpha, <float *> A, &lda, <float *> x, &incx, &beta, y, &incy)
    else:
        dgemv(&trans, &m, &n, &alpha, <double *> A, &lda, <double *> x, &incx, &beta, y,
              &incy)


cdef void small_gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating *A,
                     Py_ssize_t sam, Py_ssize_t sak, const floating *B, Py_ssize_t ldb,
                     floating *C, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C (M x N) = A @ B`` in typed loops, for products too
    small to pay for a BLAS call: ``A[m, k]`` is ``A[m * sam + k * sak]`` (A,
    A^T, or a vector with sam 0), rows of B are contiguous.

    Every element is ``sum over even k + sum over odd k`` of ``A[m, k] B[k,
    j]`` (two dependency chains; for K <= 2 exactly the sum BLAS gives),
    whichever block it falls in: four rows by eight columns at a time in
    registers (two on the baseline kernel set; a last partial column block
    overlaps the previous one, writing the same values again), then two
    rows, then one (``_small_gemm.h``); one column at a time when N < 8, and
    where the compiler has no vector types."""
    cdef Py_ssize_t m = 0
    if FB_HAVE_ROW_BLOCKS and N >= 8:
        # vectors as wide as the running kernel set's registers (a wider vector
        # type is emulated in pieces)
        if _simd_level == 0:
            if floating is float:
                fb_blocks_float_16(M, N, K, A, sam, sak, B, ldb, C, ldc)
            else:
                fb_blocks_double_16(M, N, K, A, sam, sak, B, ldb, C, ldc)
        elif floating is float:
            fb_blocks_float_32(M, N, K, A, sam, sak, B, ldb, C, ldc)
        elif _simd_level == 1:
            fb_blocks_double_32(M, N, K, A, sam, sak, B, ldb, C, ldc)
        else:
            fb_blocks_double_64(M, N, K, A, sam, sak, B, ldb, C, ldc)
        return
    while m < M:
        _one_row(N, K, A + m * sam, sak, B, ldb, C + m * ldc)
        m += 1


cdef inline void _one_row(Py_ssize_t N, Py_ssize_t K, const floating *a, Py_ssize_t sak,
                          const floating *B, Py_ssize_t ldb, floating *c) noexcept nogil:
    # small_gemm's row a: eight columns at a time (one at a time when N < 8)
    cdef floating s0, s1, s2, s3, s4, s5, s6, s7, t0, t1, t2, t3, t4, t5, t6, t7, x, y
    cdef const floating *b
    cdef Py_ssize_t j0 = 0, j, k
    if N < 8:
        for j in range(N):
            s0 = t0 = 0
            for k in range(0, K - 1, 2):
                s0 = s0 + a[k * sak] * B[k * ldb + j]
                t0 = t0 + a[(k + 1) * sak] * B[(k + 1) * ldb + j]
            if K % 2:
                s0 = s0 + a[(K - 1) * sak] * B[(K - 1) * ldb + j]
            c[j] = s0 + t0
        return
    while True:
        if j0 > N - 8:
            j0 = N - 8
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
        t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0
        b = B + j0
        for k in range(0, K - 1, 2):
            x = a[k * sak]
            y = a[(k + 1) * sak]
            s0 = s0 + x * b[0]; s1 = s1 + x * b[1]; s2 = s2 + x * b[2]; s3 = s3 + x * b[3]
            s4 = s4 + x * b[4]; s5 = s5 + x * b[5]; s6 = s6 + x * b[6]; s7 = s7 + x * b[7]
            b = b + ldb
            t0 = t0 + y * b[0]; t1 = t1 + y * b[1]; t2 = t2 + y * b[2]; t3 = t3 + y * b[3]
            t4 = t4 + y * b[4]; t5 = t5 + y * b[5]; t6 = t6 + y * b[6]; t7 = t7 + y * b[7]
            b = b + ldb
        if K % 2:
            x = a[(K - 1) * sak]
            s0 = s0 + x * b[0]; s1 = s1 + x * b[1]; s2 = s2 + x * b[2]; s3 = s3 + x * b[3]
            s4 = s4 + x * b[4]; s5 = s5 + x * b[5]; s6 = s6 + x * b[6]; s7 = s7 + x * b[7]
        c[j0] = s0 + t0; c[j0 + 1] = s1 + t1; c[j0 + 2] = s2 + t2; c[j0 + 3] = s3 + t3
        c[j0 + 4] = s4 + t4; c[j0 + 5] = s5 + t5; c[j0 + 6] = s6 + t6; c[j0 + 7] = s7 + t7
        if j0 + 8 >= N:
            break
        j0 += 8


# multiply-adds up to which a training step's whole product runs in typed
# loops (gemm_rm_step)
cdef enum:
    SMALL_PRODUCT_WORK = 1024


cdef inline bint _small_row_work(Py_ssize_t n, Py_ssize_t K, floating *dtype_tag) noexcept nogil:
    # a row of n values summed over K terms: typed loops beat a BLAS gemv call
    # up to here (measured by benchmarks/small_products.py)
    if floating is float:
        return n <= 128 and n * K <= 512     # BLAS's float kernels are twice as wide
    else:
        return n * K <= (8192 if K <= 64 else 4096)


cdef inline void gemm_rm(bint trans_a, bint trans_b, int M, int N, int K,
                         floating alpha, const floating *A, int lda,
                         const floating *B, int ldb, floating beta,
                         floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M x N) = alpha * op(A) @ op(B) + beta * C``: outer
    products and products of one row (or one output's weight gradient) that
    are small enough in typed loops, the rest through BLAS (``_blas_rm``)."""
    cdef Py_ssize_t i, j
    cdef floating ai
    cdef floating *c
    if M == 0 or N == 0:
        return
    if K == 1 and alpha == 1 and (beta == 0 or beta == 1):
        # an outer product: one rounded multiply per element, as BLAS gives it
        # (op(B) is a row of B, or a column: contiguous when ldb is 1)
        for i in range(M):
            ai = A[i * lda] if not trans_a else A[i]
            c = C + i * ldc
            if not trans_b or ldb == 1:
                if beta == 0:
                    for j in range(N):
                        c[j] = ai * B[j]
                else:
                    for j in range(N):
                        c[j] = c[j] + ai * B[j]
            else:
                if beta == 0:
                    for j in range(N):
                        c[j] = ai * B[j * ldb]
                else:
                    for j in range(N):
                        c[j] = c[j] + ai * B[j * ldb]
        return
    if beta == 0 and alpha == 1 and not trans_b:
        # a row times a small matrix, or one output's weight gradient (a sum of
        # rows of A; lda, the full row length, bounds it whatever this thread's
        # share): a gemv call costs more than the work
        if M == 1 and _small_row_work(N, K, C):
            small_gemm(1, N, K, A, 0, lda if trans_a else 1, B, ldb, C, ldc)
            return
        if N == 1 and trans_a and ldc == 1 and _small_row_work(lda, K, C):
            small_gemm(1, M, K, B, 0, ldb, A, lda, C, ldc)
            return
    _blas_rm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)


cdef void _blas_rm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
                   const floating *A, int lda, const floating *B, int ldb, floating beta,
                   floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M x N) = alpha * op(A) @ op(B) + beta * C`` through BLAS.

    A row-major matrix read as column-major is its transpose, so the
    column-major call computes ``C^T = op(B)^T @ op(A)^T``.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef char tv
    cdef int m, n, incx, incy
    if M == 1 or N == 1:
        # matrix-vector products go to gemv, as numpy's matmul does (OpenBLAS's
        # gemm would pack the whole matrix first; the rounding follows numpy)
        if M == 1:
            # c (1 x N) = a @ op(B); a is row 0 of op(A)
            incx = lda if trans_a else 1
            incy = 1
            if trans_b:
                tv = b'T'; m = K; n = N
            else:
                tv = b'N'; m = N; n = K
            _gemv(tv, m, n, alpha, B, ldb, A, incx, beta, C, incy)
        else:
            # c (M x 1) = op(A) @ b; b is column 0 of op(B)
            incx = 1 if trans_b else ldb
            incy = ldc
            if trans_a:
                tv = b'N'; m = M; n = K
            else:
                tv = b'T'; m = K; n = M
            _gemv(tv, m, n, alpha, A, lda, B, incx, beta, C, incy)
        return
    if floating is float:
        sgemm(&ta, &tb, &N, &M, &K, &alpha, <float *> B, &ldb, <float *> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &N, &M, &K, &alpha, <double *> B, &ldb, <double *> A, &lda,
              &beta, C, &ldc)


# ---------------------------------------------------------------------------
# Prediction's products: a few rows of a large layer one row at a time
# ---------------------------------------------------------------------------

cdef enum:
    # prediction products of 2..8 rows (float32; float64: 2..4) over at least
    # ROWWISE_MIN_BYTES of weights go row by row: OpenBLAS (one thread, Zen 3)
    # took ~170-190 us for 2-8 rows @ 784 x 256 whatever the rows (packing the
    # weights), one row by gemv 18 (float32) and 35 us (float64); 256 x 128
    # and 200 x 400 cross over at the same row counts
    ROWWISE_MAX_ROWS_FLOAT = 8
    ROWWISE_MAX_ROWS_DOUBLE = 4
    ROWWISE_MIN_BYTES = 131072


cdef inline bint rowwise_product(Py_ssize_t M, Py_ssize_t K, Py_ssize_t ldb,
                                 Py_ssize_t itemsize) noexcept nogil:
    # a prediction's product of M rows over the K x ldb weights of a layer
    # (ldb: the layer's width, also for a block of its columns) goes row by row
    return (2 <= M <= (ROWWISE_MAX_ROWS_FLOAT if itemsize == 4 else ROWWISE_MAX_ROWS_DOUBLE)
            and K * ldb * itemsize >= ROWWISE_MIN_BYTES)


cdef inline void predict_gemm(int M, int N, int K, const floating *A, int lda,
                              const floating *B, int ldb, floating *C,
                              int ldc) noexcept nogil:
    """Row-major ``C (M x N) = A @ B`` for prediction (B: columns of a
    layer's weights, rows ``ldb`` apart): ``gemm_rm``, except that a few rows
    over a large layer go one row at a time, each with the bits of that row
    predicted alone. OpenBLAS's gemm packs the whole of B first, slowly for
    so few rows (``rowwise_product``); fastbp's rows kernel computes those
    rows with gemv's bits where a probe found it does (``own_rows_product``).
    Other products take fastbp's own kernel on B in place where a probe found
    that it gives the BLAS's bits (``own_in_place_product``)."""
    cdef int r
    if rowwise_product(M, K, ldb, sizeof(floating)):
        if own_rows_product(M, N, K, A, lda, B, ldb, C, ldc):
            return
        for r in range(M):
            gemm_rm(False, False, 1, N, K, <floating> 1.0, A + r * lda, lda, B, ldb,
                    <floating> 0.0, C + r * ldc, ldc)
        return
    if own_in_place_product(M, N, K, A, lda, B, ldb, C, ldc):
        return
    gemm_rm(False, False, M, N, K, <floating> 1.0, A, lda, B, ldb, <floating> 0.0, C, ldc)
