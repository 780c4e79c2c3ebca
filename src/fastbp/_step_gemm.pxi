# A training step's products (``gemm_rm_step``): tiny ones in typed loops
# (``small_gemm``), float64 ones by fastbp's own AVX2 kernel (_gemm_step.h)
# where it gives the BLAS's bits, the rest as ``gemm_rm``.
#
# Notes
# -----
# * OpenBLAS's Haswell/Zen dgemm kernels compute each element as one chain of
#   fused multiply-adds over k in order (for K up to their k-block); so does
#   the kernel, without the BLAS's packing and call overhead, which weigh on a
#   step's small products (digits: 100 x 64 @ 64 x 100 in 29 against 33 us,
#   100 x 100 @ 100 x 10 in 6.1 against 9.2 us; docs/performance.md).
# * Not assumed: the first product of each shape (transposed or not, M, N, K)
#   is probed once per process (``_probe_step_shape``): synthetic operands
#   through ``gemm_rm`` (the call the step would make), the whole product by
#   the kernel compared bit for bit. Only shapes that match take the kernel,
#   so the weights are those of the BLAS (the sklearn parity, golden and
#   determinism tests hold either way); and only where it was faster than the
#   BLAS when probed (OpenBLAS wins some larger products: which one runs
#   changes the speed only). The verdicts live in a table that the
#   epoch's threads read without a lock; a thread that meets a new shape
#   probes it under a spin lock (once per shape and process), and only
#   while OpenBLAS runs on one thread, as in the epoch: threaded, it tiles
#   a product otherwise and computes the edge tiles in another order.
# * Only with the AVX2 kernel set (on AVX-512 CPUs OpenBLAS's SkylakeX
#   kernels and prediction's own kernel are the faster pair), float64, alpha
#   1 and beta 0, and from STEP_GEMM_MIN_WORK multiply-adds with K at most
#   FB_STEP_MAX_K (one k-block). op(B) = B^T (the hidden deltas, delta
#   W^T) copies each 12-column strip of B^T first, as the BLAS packs it.

cdef extern from "_gemm_step.h" nogil:
    enum: FB_HAVE_GEMM_STEP
    int fb_step_gemm_available()
    enum: FB_STEP_MAX_K
    void fb_step_gemm_d(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                        Py_ssize_t sai, Py_ssize_t sak, const double *B, Py_ssize_t ldb,
                        int trans_b, double *C, Py_ssize_t ldc)
    double fb_step_gemm_d_dot(Py_ssize_t K, const double *a, Py_ssize_t sak,
                              const double *b, Py_ssize_t ldb)
    void fb_step_lock()
    void fb_step_unlock()
    int fb_step_load_count(const int *n)
    void fb_step_store_count(int *n, int v)


cdef enum:
    STEP_GEMM_SHAPES = 256         # product shapes whose verdict is kept (then: the BLAS)
    STEP_GEMM_MIN_WORK = 1 << 13   # multiply-adds from which a step's product may take it
    STEP_GEMM_TIMINGS = 3          # timed runs of each, alternating, when a shape is probed

# the kernel takes a shape only if at least this much faster than the BLAS
cdef double STEP_GEMM_GAIN = 1.05


cdef struct StepVerdict:
    bint trans_a
    bint trans_b
    int M, N, K
    bint exact                     # the kernel gives the BLAS's bits for this shape
    bint own                       # ... and is faster: the step's products of it take it


cdef StepVerdict _step_verdicts[STEP_GEMM_SHAPES]
cdef int _n_step_verdicts = 0      # entries [0, n) are complete (published with release)
cdef bint _step_gemm_cpu = fb_step_gemm_available()


cdef inline bint _step_gemm_ready() noexcept nogil:
    # the kernel may run: built, on this CPU, the AVX2 set chosen, not switched off
    return FB_HAVE_GEMM_STEP and _own_gemm_on and _simd_level == 1 and _step_gemm_cpu


cdef inline bint step_gemm_eligible(int M, int N, int K) noexcept nogil:
    """Whether a step's float64 product (alpha 1, beta 0) of this shape may
    take the kernel: M, N, K >= 2 (``gemm_rm`` sends the rest to its own
    loops or to gemv), enough work, one k-block."""
    return (M >= 2 and N >= 2 and 2 <= K <= FB_STEP_MAX_K
            and <Py_ssize_t> M * N * K >= STEP_GEMM_MIN_WORK and _step_gemm_ready())


cdef inline int _step_find(bint trans_a, bint trans_b, int M, int N, int K,
                           int n) noexcept nogil:
    # the verdict among the first n entries: 1, 0, or -1 (not probed)
    cdef int i
    cdef StepVerdict *v
    for i in range(n):
        v = &_step_verdicts[i]
        if (v.M == M and v.N == N and v.K == K and v.trans_a == trans_a
                and v.trans_b == trans_b):
            return v.own
    return -1


cdef inline double _probe_value(uint64_t *state) noexcept nogil:
    # a uniform value in [-1, 1) (xorshift64*), the probe's operands
    state[0] ^= state[0] >> 12
    state[0] ^= state[0] << 25
    state[0] ^= state[0] >> 27
    return <double> ((state[0] * 2685821657736338717ULL) >> 11) * (2.0 / 9007199254740992.0) - 1.0


cdef inline void _own_step_gemm(bint trans_a, bint trans_b, int M, int N, int K,
                                const double *A, int lda, const double *B, int ldb, double *C,
                                int ldc) noexcept nogil:
    # C = op(A) @ op(B) by the kernel
    if trans_a:
        fb_step_gemm_d(M, N, K, A, 1, lda, B, ldb, trans_b, C, ldc)
    else:
        fb_step_gemm_d(M, N, K, A, lda, 1, B, ldb, trans_b, C, ldc)


cdef inline bint _blas_serial_now() noexcept nogil:
    # OpenBLAS runs on one thread now, as in the epoch (_BlasSerial): threaded,
    # it splits a product into other tiles, whose edges it computes in
    # another order (so a verdict holds for one thread only, and only a
    # one-thread BLAS is probed)
    return _blas_get_threads == NULL or _blas_get_threads() == 1


cdef void _probe_step_shape(bint trans_a, bint trans_b, int M, int N, int K,
                            StepVerdict *v) noexcept nogil:
    """Fill ``v.exact`` (the kernel gives ``gemm_rm``'s bits for this shape:
    synthetic operands through both, compared whole) and ``v.own`` (exact,
    and faster than the BLAS by STEP_GEMM_GAIN: the best of STEP_GEMM_TIMINGS
    alternating runs each). Both False if memory runs out."""
    cdef Py_ssize_t na = <Py_ssize_t> M * K, nb = <Py_ssize_t> K * N, nc = <Py_ssize_t> M * N
    cdef Py_ssize_t i
    cdef double *buf = <double *> malloc((na + nb + 2 * nc) * sizeof(double))
    cdef double *A = buf
    cdef double *B = buf + na
    cdef double *C = B + nb
    cdef double *D = C + nc
    cdef uint64_t state = 0x9E3779B97F4A7C15ULL ^ (<uint64_t> M * 1000003 + N * 1009 + K)
    cdef int lda = M if trans_a else K, ldb = K if trans_b else N, r
    cdef long long t0, blas_ns = 1LL << 62, own_ns = 1LL << 62
    v.exact = v.own = False
    if buf == NULL:
        return
    for i in range(na + nb):
        buf[i] = _probe_value(&state)
    gemm_rm(trans_a, trans_b, M, N, K, <double> 1.0, A, lda, B, ldb, <double> 0.0, C, N)
    _own_step_gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, D, N)
    v.exact = memcmp(C, D, nc * sizeof(double)) == 0
    if v.exact:
        # which is faster here: on a Zen 3 the kernel wins on a step's small
        # products (1.1-2.4x: no packing) and loses on some larger ones with
        # 64-wide multiples of columns (0.77-0.97x); the same bits either way
        for r in range(STEP_GEMM_TIMINGS):
            t0 = fb_now_ns()
            gemm_rm(trans_a, trans_b, M, N, K, <double> 1.0, A, lda, B, ldb, <double> 0.0, C, N)
            blas_ns = min(blas_ns, fb_now_ns() - t0)
            t0 = fb_now_ns()
            _own_step_gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, D, N)
            own_ns = min(own_ns, fb_now_ns() - t0)
        v.own = own_ns * STEP_GEMM_GAIN < blas_ns
    free(buf)


cdef bint own_step_product(bint trans_a, bint trans_b, int M, int N, int K, const double *A,
                           int lda, const double *B, int ldb, double *C,
                           int ldc) noexcept nogil:
    """``C = op(A) @ op(B)`` by the kernel if it gives the BLAS's bits for this
    shape (the verdict kept, else a probe while the table has room): returns
    whether it ran. The caller checked ``step_gemm_eligible``."""
    cdef int n = fb_step_load_count(&_n_step_verdicts)
    cdef int own = _step_find(trans_a, trans_b, M, N, K, n)
    cdef StepVerdict *v
    if own < 0:
        if n >= STEP_GEMM_SHAPES or not _blas_serial_now():
            return False
        fb_step_lock()
        n = _n_step_verdicts
        own = _step_find(trans_a, trans_b, M, N, K, n)
        if own < 0 and n < STEP_GEMM_SHAPES:
            v = &_step_verdicts[n]
            v.trans_a = trans_a
            v.trans_b = trans_b
            v.M = M
            v.N = N
            v.K = K
            _probe_step_shape(trans_a, trans_b, M, N, K, v)
            own = v.own
            fb_step_store_count(&_n_step_verdicts, n + 1)
        fb_step_unlock()
    if own != 1:
        return False
    _own_step_gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc)
    return True


cdef inline void gemm_rm_step(bint trans_a, bint trans_b, int M, int N, int K,
                              floating alpha, const floating *A, int lda,
                              const floating *B, int ldb, floating beta,
                              floating *C, int ldc) noexcept nogil:
    """A training step's product: as ``gemm_rm``, and whole products of at most
    SMALL_PRODUCT_WORK multiply-adds with 8 or more columns (a tiny network's
    batch) in typed loops too: OpenBLAS's AVX2 builds take 2-5x their time.
    Prediction keeps ``gemm_rm``, so a saved model predicts bit for bit as it
    did (tests/test_model_files.py). Larger float64 products (op(B) = B or
    B^T) take the own AVX2 kernel where it gives the BLAS's bits and was the
    faster
    (``own_step_product``)."""
    if (beta == 0 and alpha == 1 and not trans_b and N >= 8
            and <Py_ssize_t> M * N * K <= SMALL_PRODUCT_WORK):
        small_gemm(M, N, K, A, 1 if trans_a else lda, lda if trans_a else 1, B, ldb, C, ldc)
        return
    if (floating is double and beta == 0 and alpha == 1
            and step_gemm_eligible(M, N, K)
            and own_step_product(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc)):
        return      # the own AVX2 kernel, where it gives the BLAS's bits (_step_gemm.pxi)
    gemm_rm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
