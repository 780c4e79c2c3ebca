# Prediction's products of a few rows over a large layer by fastbp's own
# kernel (_gemm_rows.h), where it gives the BLAS's bits.
#
# Notes
# -----
# * ``predict_gemm`` sends 2..ROWWISE_MAX_ROWS_FLOAT rows over a large layer
#   to the BLAS one row at a time (gemv), so that each row has the bits it
#   has alone; each of those calls streams all of the layer's weights. The
#   kernel computes every row in gemv's arithmetic (OpenBLAS's sgemv_n, on its
#   SkylakeX and Haswell kernels: blocks of 8 k) and reads each vector of
#   weights once for up to 8 rows (float32, 784 x 256, one thread, Zen 4: 4
#   rows 23 against 57 us, 8 rows 54 against 90; docs/performance.md).
# * Not assumed: each layer shape (N, K) is probed (``_probe_rows``) before a
#   prediction that may take it (``probe_rows_layers``, holding the GIL;
#   prediction's threads read the verdicts without it): 15 synthetic rows
#   through gemm_rm one row at a time, as predict_gemm calls it, against the
#   kernel, bit for bit. A shape that differs (N not a multiple of 16 on
#   OpenBLAS: its gemv sums the first columns otherwise) stays on gemv.
# * float32 only (OpenBLAS's dgemv sums otherwise: 6-46% of elements equal
#   with any block length tried), with the AVX2 or AVX-512 kernel set, and
#   never for one row (gemv is as fast there).

cdef extern from "_gemm_rows.h" nogil:
    enum: FB_HAVE_GEMM_ROWS
    int fb_rows_level()
    void fb_rows_f(int level, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                   Py_ssize_t lda, const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc)

cdef enum:
    OWN_ROWS_SHAPES = 256          # layer shapes whose verdict is kept (then: gemv)
    OWN_ROWS_PROBE_ROWS = 15       # rows of a probe: every row block of the kernel (8, 4, 2, 1)


cdef struct RowsVerdict:
    Py_ssize_t N, K
    bint own                       # the kernel gives gemv's bits for (N, K)


cdef RowsVerdict _rows_verdicts[OWN_ROWS_SHAPES]
cdef int _n_rows_verdicts = 0      # entries [0, n) are complete (published with release)
cdef int _rows_cpu = fb_rows_level()


cdef inline int rows_level() noexcept nogil:
    # the kernels the rows kernel runs here (2: AVX-512, 1: AVX2; the kernel
    # set chosen, as far as the CPU has it), 0: none
    if not FB_HAVE_GEMM_ROWS or not _own_gemm_on or _simd_level == 0:
        return 0
    return _simd_level if _simd_level < _rows_cpu else _rows_cpu


cdef inline int _rows_find(Py_ssize_t N, Py_ssize_t K, int n) noexcept nogil:
    # the verdict among the first n entries: 1, 0, or -1 (not probed)
    cdef int i
    for i in range(n):
        if _rows_verdicts[i].N == N and _rows_verdicts[i].K == K:
            return _rows_verdicts[i].own
    return -1


cdef inline bint own_rows_product(int M, int N, int K, const floating *A, int lda,
                                  const floating *B, int ldb, floating *C,
                                  int ldc) noexcept nogil:
    """``C = A @ B`` by the kernel when its verdict for (N, K) says it gives
    gemv's bits row by row; returns whether it ran (an unprobed shape does
    not: gemv)."""
    cdef int level
    if floating is float:
        level = rows_level()
        if (M >= 2 and level > 0
                and _rows_find(N, K, fb_step_load_count(&_n_rows_verdicts)) == 1):
            fb_rows_f(level, M, N, K, A, lda, B, ldb, C, ldc)
            return True
    return False


cdef bint _probe_rows(Py_ssize_t N, Py_ssize_t K) except -1:
    """Whether the kernel gives ``gemm_rm``'s bits for rows over a K x N
    layer, each row alone (OpenBLAS on one thread, as prediction runs it):
    synthetic operands, compared whole."""
    cdef Py_ssize_t M = OWN_ROWS_PROBE_ROWS, r
    rng = np.random.default_rng(20261202)
    cdef cnp.ndarray A = np.ascontiguousarray(rng.uniform(-1, 1, (M, K)), dtype=np.float32)
    cdef cnp.ndarray B = np.ascontiguousarray(rng.uniform(-1, 1, (K, N)), dtype=np.float32)
    cdef cnp.ndarray C = np.empty((M, N), dtype=np.float32)
    cdef cnp.ndarray D = np.empty((M, N), dtype=np.float32)
    cdef float *a = <float *> cnp.PyArray_DATA(A)
    cdef float *b = <float *> cnp.PyArray_DATA(B)
    cdef float *c = <float *> cnp.PyArray_DATA(C)
    with _BlasSerial():
        for r in range(M):
            gemm_rm(False, False, 1, <int> N, <int> K, <float> 1.0, a + r * K, <int> K, b,
                    <int> N, <float> 0.0, c + r * N, <int> N)
    fb_rows_f(rows_level(), M, N, K, a, K, b, N, <float *> cnp.PyArray_DATA(D), N)
    return memcmp(c, cnp.PyArray_DATA(D), M * N * sizeof(float)) == 0


cdef int _rows_verdict(Py_ssize_t N, Py_ssize_t K) except -1:
    # the verdict for (N, K), probed and published if new (while the table has room)
    cdef int n = _n_rows_verdicts
    cdef int own = _rows_find(N, K, n)
    if own >= 0 or n == OWN_ROWS_SHAPES:
        return own
    own = _probe_rows(N, K)
    # the probe runs Python code: another thread may have added entries; the
    # new one goes after them (prediction's threads may be reading those)
    n = _n_rows_verdicts
    if n == OWN_ROWS_SHAPES:
        return own
    _rows_verdicts[n].N = N
    _rows_verdicts[n].K = K
    _rows_verdicts[n].own = own
    fb_step_store_count(&_n_rows_verdicts, n + 1)
    return own


cdef int probe_rows_layers(bint is_float, const Net *net) except -1:
    """Probe, where not yet done, the shapes of ``net``'s layers that a
    prediction of a few rows sends row by row (``rowwise_product``): each
    whole layer and the two column blocks a one-row prediction splits it
    into (``split_column``). Holds the GIL; call before such a prediction."""
    cdef int i
    cdef Py_ssize_t K, N, j
    if not is_float or rows_level() == 0:
        return 0
    for i in range(net.n_layers):
        K = net.sizes[i]
        N = net.sizes[i + 1]
        if not rowwise_product(2, K, N, sizeof(float)):
            continue
        _rows_verdict(N, K)
        j = split_column(N, True)
        if 0 < j < N:
            _rows_verdict(j, K)
            _rows_verdict(N - j, K)
    return 0
