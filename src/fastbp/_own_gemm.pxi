# Prediction's products by fastbp's own kernel (_gemm_nn.h), where it gives
# the BLAS's bits.
#
# Notes
# -----
# * OpenBLAS's AVX-512 kernels compute each element of a product as chains of
#   fused multiply-adds over blocks of k (the split fixed by K), the blocks'
#   sums added in order. _gemm_nn.h does the same arithmetic faster for
#   prediction: each thread packs the weights once per call (a thread's own
#   copy: the other core's freshly written lines are slow to fetch), the rows
#   are read in place.
# * That it gives the BLAS's bits is not assumed: the first product of each
#   shape (dtype, M, N, K) probes (``_probe_shape``): synthetic operands through
#   the BLAS, a search of splits on a few elements, then the whole product by
#   the kernel compared bit for bit. The split depends on K alone: once found
#   (or not) for a K, later shapes over that K only confirm it. A shape that
#   does not match, and every shape once the tables are full, stays on the
#   BLAS; so saved models predict bit for bit as through the BLAS
#   (tests/test_model_files.py).
# * Only with the AVX-512 kernel set, on dense input, for products of at
#   least OWN_GEMM_MIN_WORK multiply-adds whose columns fill the panels (2
#   vectors wide) to at least 1 / 1.1: the padded columns cost what the kernel
#   gains (on a Zen 4, float32 512 x 64 @ 64 x 100, 100 of 128 columns, took
#   1.22x the BLAS's time; see docs/performance.md).

cdef extern from "_gemm_nn.h" nogil:
    enum: FB_HAVE_GEMM_NN
    enum: FB_GEMM_MAX_BLOCKS
    ctypedef struct fb_ksplit:
        int n
        int len[FB_GEMM_MAX_BLOCKS]
    int fb_gemm_available()
    size_t fb_gemm_f_packed_size(Py_ssize_t K, Py_ssize_t N)
    size_t fb_gemm_d_packed_size(Py_ssize_t K, Py_ssize_t N)
    void fb_gemm_f_pack(Py_ssize_t K, Py_ssize_t N, const float *B, Py_ssize_t ldb,
                        const fb_ksplit *split, float *P)
    void fb_gemm_d_pack(Py_ssize_t K, Py_ssize_t N, const double *B, Py_ssize_t ldb,
                        const fb_ksplit *split, double *P)
    void fb_gemm_f_nn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A, Py_ssize_t lda,
                      const float *P, const fb_ksplit *split, float *C, Py_ssize_t ldc)
    void fb_gemm_d_nn(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                      Py_ssize_t lda, const double *P, const fb_ksplit *split, double *C,
                      Py_ssize_t ldc)
    void fb_gemm_f_nn_in_place(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                               Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                               const fb_ksplit *split, float *C, Py_ssize_t ldc)
    void fb_gemm_d_nn_in_place(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                               Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                               const fb_ksplit *split, double *C, Py_ssize_t ldc)
    float fb_gemm_f_dot(Py_ssize_t K, const float *a, const float *B, Py_ssize_t ldb,
                        Py_ssize_t j, const fb_ksplit *split)
    double fb_gemm_d_dot(Py_ssize_t K, const double *a, const double *B, Py_ssize_t ldb,
                         Py_ssize_t j, const fb_ksplit *split)

cdef enum:
    OWN_GEMM_SHAPES = 1024         # product shapes whose verdict is kept (then: the BLAS)
    OWN_GEMM_MAX_LAYERS = 32       # layers a network may have for the kernel to take part
    OWN_GEMM_MIN_WORK = 1 << 20    # multiply-adds from which a product may take the kernel
    IN_PLACE_MIN_WORK = 1 << 16    # the same, the kernel reading the weights in place
    IN_PLACE_FEW_ROWS = 64         # rows up to which it reads any weights in place
    IN_PLACE_MAX_BYTES = 1 << 19   # and beyond, weights of whole panels up to this size
    OWN_GEMM_SAMPLE_COLUMNS = 8    # columns per sampled row when a split is searched


cdef struct OwnLayer:
    # one layer's product in a prediction call: by the kernel for full
    # chunks (use_full) and for the last, shorter one (use_last)
    Py_ssize_t offset              # of its weights, packed with ``split``, in a
                                   # thread's packed buffer (values)
    fb_ksplit split
    bint use_full
    bint use_last


cdef struct ShapeVerdict:
    bint is_float
    Py_ssize_t M, N, K
    bint own                       # the kernel gives the BLAS's bits, with ``split``
    fb_ksplit split


cdef ShapeVerdict _verdicts[OWN_GEMM_SHAPES]
cdef int _n_verdicts = 0           # entries [0, n) are complete (published with release)
cdef bint _own_gemm_on = True      # set_own_gemm (tests, benchmarks)
cdef bint _gemm_cpu = fb_gemm_available()


cdef inline bint _own_gemm_ready() noexcept nogil:
    # the kernel may run: built, on this CPU, the AVX-512 set chosen, not switched off
    return FB_HAVE_GEMM_NN and _own_gemm_on and _simd_level == 2 and _gemm_cpu


cdef bint _worth_own(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t panel = 32 if is_float else 16     # 2 vectors of 16 or 8 values
    cdef Py_ssize_t padded = (N + panel - 1) // panel * panel
    # (a few rows over a large layer go row by row instead: predict_gemm)
    return (10 * padded <= 11 * N and M * N * K >= OWN_GEMM_MIN_WORK
            and not rowwise_product(M, K, N, 4 if is_float else 8))


cdef inline bint _worth_in_place(bint is_float, Py_ssize_t M, Py_ssize_t N,
                                 Py_ssize_t K) noexcept nogil:
    # a product the in-place kernel may take (predict_gemm: after the row by
    # row case). One thread, Zen 4: ~100 GFLOP/s float32 where the weights
    # stay in L2 between its row tiles, the BLAS 40-100 (few rows: it packs
    # them); 512 x 784 x 256 (784 KiB) 1.17x the BLAS's time, and a last,
    # narrower panel (masked loads) up to 1.36x (docs/performance.md)
    cdef Py_ssize_t panel = 32 if is_float else 16
    cdef Py_ssize_t padded = (N + panel - 1) // panel * panel
    return (M >= 2 and 10 * padded <= 11 * N and M * N * K >= IN_PLACE_MIN_WORK
            and (M <= IN_PLACE_FEW_ROWS
                 or (padded == N and K * N * (4 if is_float else 8) <= IN_PLACE_MAX_BYTES)))


def _candidate_splits(Py_ssize_t K):
    """The splits of k a BLAS may use, likeliest first: none; then, for block
    sizes Q and unrolls U, OpenBLAS's rule (blocks of Q while at least 2 Q
    remain, then half of what remains rounded up to U, then the rest)."""
    seen = {(K,)}
    yield (K,)
    for Q in range(K - 1, 7, -1):
        for U in (1, 2, 4, 8, 16, 32, 64):
            blocks = []
            rem = K
            while rem > 0 and len(blocks) <= FB_GEMM_MAX_BLOCKS:
                if rem >= 2 * Q:
                    step = Q
                elif rem > Q:
                    step = ((rem // 2 + U - 1) // U) * U
                else:
                    step = rem
                step = min(step, rem)
                blocks.append(step)
                rem -= step
            key = tuple(blocks)
            if len(key) <= FB_GEMM_MAX_BLOCKS and key not in seen:
                seen.add(key)
                yield key


cdef void _set_split(fb_ksplit *split, tuple blocks):
    cdef int i
    memset(split, 0, sizeof(fb_ksplit))
    split.n = len(blocks)
    for i in range(split.n):
        split.len[i] = blocks[i]


cdef bint _same_split(const fb_ksplit *a, const fb_ksplit *b) noexcept nogil:
    cdef int i
    if a.n != b.n:
        return False
    for i in range(a.n):
        if a.len[i] != b.len[i]:
            return False
    return True


cdef bint _sampled_match(cnp.ndarray A, cnp.ndarray B, cnp.ndarray C, const fb_ksplit *split):
    # the kernel's arithmetic gives C's bits on a few elements: the first and
    # last rows, OWN_GEMM_SAMPLE_COLUMNS columns spread over the width
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1], i, j, q
    cdef bint is_float = A.dtype == np.float32
    for i in (0, M - 1):
        for q in range(OWN_GEMM_SAMPLE_COLUMNS):
            j = (q * (N - 1)) // (OWN_GEMM_SAMPLE_COLUMNS - 1)
            if is_float:
                if fb_gemm_f_dot(K, (<float *> cnp.PyArray_DATA(A)) + i * K,
                                 <float *> cnp.PyArray_DATA(B), N, j, split) \
                        != (<float *> cnp.PyArray_DATA(C))[i * N + j]:
                    return False
            elif fb_gemm_d_dot(K, (<double *> cnp.PyArray_DATA(A)) + i * K,
                               <double *> cnp.PyArray_DATA(B), N, j, split) \
                    != (<double *> cnp.PyArray_DATA(C))[i * N + j]:
                return False
    return True


cdef object _aligned_empty(Py_ssize_t n, object dtype):
    # n values of dtype, the first on a 64-byte boundary (the kernel's aligned loads)
    cdef Py_ssize_t itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n * itemsize + 64, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64
    return raw[offset:offset + n * itemsize].view(dtype)


cdef void _own_pack(bint is_float, Py_ssize_t K, Py_ssize_t N, const void *B,
                    const fb_ksplit *split, void *P) noexcept nogil:
    if is_float:
        fb_gemm_f_pack(K, N, <const float *> B, N, split, <float *> P)
    else:
        fb_gemm_d_pack(K, N, <const double *> B, N, split, <double *> P)


cdef inline void own_product(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating *A,
                             Py_ssize_t lda, const OwnLayer *own, const floating *packed,
                             floating *C, Py_ssize_t ldc) noexcept nogil:
    """``C = A @ W`` by the kernel, W packed at ``packed + own.offset``."""
    if floating is float:
        fb_gemm_f_nn(M, N, K, A, lda, packed + own.offset, &own.split, C, ldc)
    else:
        fb_gemm_d_nn(M, N, K, A, lda, packed + own.offset, &own.split, C, ldc)


cdef void pack_own_layers(const Net *net, const floating *params, const OwnLayer *own,
                          floating *packed) noexcept nogil:
    """Pack the weights of every layer the kernel takes into ``packed`` (a
    thread's buffer, ``plan_own_products``'s size)."""
    cdef int i
    for i in range(net.n_layers):
        if own[i].use_full or own[i].use_last:
            _own_pack(floating is float, net.sizes[i], net.sizes[i + 1],
                      params + net.off_w[i], &own[i].split, packed + own[i].offset)


cdef cnp.ndarray _own_matmul(cnp.ndarray A, cnp.ndarray B, const fb_ksplit *split):
    """``A @ B`` by the kernel with ``split`` (C-contiguous float32 or float64
    operands), W packed into a buffer of its own."""
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1]
    cdef bint is_float = A.dtype == np.float32
    cdef cnp.ndarray C = np.empty((M, N), dtype=A.dtype)
    cdef cnp.ndarray P = _aligned_empty(<Py_ssize_t> (fb_gemm_f_packed_size(K, N) if is_float
                                                     else fb_gemm_d_packed_size(K, N)),
                                        A.dtype)
    cdef OwnLayer own
    own.offset = 0
    own.split = split[0]
    _own_pack(is_float, K, N, cnp.PyArray_DATA(B), split, cnp.PyArray_DATA(P))
    if is_float:
        own_product(M, N, K, <float *> cnp.PyArray_DATA(A), K, &own,
                    <float *> cnp.PyArray_DATA(P), <float *> cnp.PyArray_DATA(C), N)
    else:
        own_product(M, N, K, <double *> cnp.PyArray_DATA(A), K, &own,
                    <double *> cnp.PyArray_DATA(P), <double *> cnp.PyArray_DATA(C), N)
    return C


cdef bint _reproduces(cnp.ndarray A, cnp.ndarray B, cnp.ndarray C,
                      const fb_ksplit *split) except -1:
    """Whether the kernel with ``split`` gives ``C = A @ B`` bit for bit
    (C-contiguous float32 or float64 operands): a few elements first, then
    the whole product."""
    if not _sampled_match(A, B, C, split):
        return False
    return memcmp(cnp.PyArray_DATA(C), cnp.PyArray_DATA(_own_matmul(A, B, split)),
                  C.shape[0] * C.shape[1] * C.itemsize) == 0


cdef bint _find_split(cnp.ndarray A, cnp.ndarray B, cnp.ndarray C, fb_ksplit *split) except -1:
    """Whether the kernel reproduces ``C = A @ B`` bit for bit, and with which
    split (into ``split``): the candidate splits in turn (``_reproduces``)."""
    for blocks in _candidate_splits(A.shape[1]):
        _set_split(split, blocks)
        if _reproduces(A, B, C, split):
            return True
    return False


cdef struct SplitFound:
    # the outcome of a split search for the products over K (the split depends on K alone)
    bint is_float
    Py_ssize_t K
    bint found
    fb_ksplit split


cdef SplitFound _searched[OWN_GEMM_SHAPES]
cdef int _n_searched = 0


cdef bint _probe_shape(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                       fb_ksplit *split) except -1:
    """Whether the kernel gives the BLAS's bits for this shape, and with which
    split, on synthetic operands through ``gemm_rm`` (the call prediction
    makes, OpenBLAS on one thread): the split found before for this K
    confirmed, or, the first time, searched (``_find_split``). A search that
    found none is not repeated for the K: the shape stays on the BLAS."""
    global _n_searched
    cdef int i
    dtype = np.float32 if is_float else np.float64
    rng = np.random.default_rng(20261201)
    cdef cnp.ndarray A = np.ascontiguousarray(rng.uniform(-1, 1, (M, K)), dtype=dtype)
    cdef cnp.ndarray B = np.ascontiguousarray(rng.uniform(-1, 1, (K, N)), dtype=dtype)
    cdef cnp.ndarray C = np.empty((M, N), dtype=dtype)
    with _BlasSerial():
        if is_float:
            gemm_rm(False, False, <int> M, <int> N, <int> K, <float> 1.0,
                    <float *> cnp.PyArray_DATA(A), <int> K, <float *> cnp.PyArray_DATA(B),
                    <int> N, <float> 0.0, <float *> cnp.PyArray_DATA(C), <int> N)
        else:
            gemm_rm(False, False, <int> M, <int> N, <int> K, <double> 1.0,
                    <double *> cnp.PyArray_DATA(A), <int> K, <double *> cnp.PyArray_DATA(B),
                    <int> N, <double> 0.0, <double *> cnp.PyArray_DATA(C), <int> N)
    for i in range(_n_searched):
        if _searched[i].is_float == is_float and _searched[i].K == K:
            split[0] = _searched[i].split
            return _searched[i].found and _reproduces(A, B, C, split)
    found = _find_split(A, B, C, split)
    if _n_searched < OWN_GEMM_SHAPES:
        _searched[_n_searched].is_float = is_float
        _searched[_n_searched].K = K
        _searched[_n_searched].found = found
        _searched[_n_searched].split = split[0]
        _n_searched += 1
    return found


cdef inline ShapeVerdict *_own_find(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                                    int n) noexcept nogil:
    # the verdict for the shape among the first n entries, or NULL
    cdef int i
    cdef ShapeVerdict *v
    for i in range(n):
        v = &_verdicts[i]
        if v.M == M and v.N == N and v.K == K and v.is_float == is_float:
            return v
    return NULL


cdef bint _shape_verdict(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                         fb_ksplit *split) except -1:
    """Whether the kernel gives the BLAS's bits for this shape (with
    ``split``): the verdict kept, else a probe, published (while the table
    has room). Holds the GIL."""
    cdef int n = _n_verdicts
    cdef ShapeVerdict *v = _own_find(is_float, M, N, K, n)
    if v != NULL:
        split[0] = v.split
        return v.own
    if n == OWN_GEMM_SHAPES:
        return False
    own = _probe_shape(is_float, M, N, K, split)
    # the probe runs Python code: another thread may have added entries; the
    # new one goes after them (prediction's threads may be reading those)
    n = _n_verdicts
    if n == OWN_GEMM_SHAPES:
        return own
    v = &_verdicts[n]
    v.is_float = is_float
    v.M = M
    v.N = N
    v.K = K
    v.own = own
    v.split = split[0]
    fb_step_store_count(&_n_verdicts, n + 1)
    return own


cdef bint own_split_for(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                        fb_ksplit *split) except -1:
    """Whether prediction's product of this shape takes the kernel on packed
    weights (with ``split``): the verdict kept for the shape, else a probe."""
    if not _own_gemm_ready() or not _worth_own(is_float, M, N, K):
        return False
    return _shape_verdict(is_float, M, N, K, split)


cdef int probe_in_place_layers(bint is_float, const Net *net, Py_ssize_t n) except -1:
    """Probe, where not yet done, the products a prediction of ``n`` dense
    rows as one chunk may send to the in-place kernel (``own_in_place_product``):
    each layer's whole product and, for a layer ``split_plan`` may cut, its
    two column blocks. Holds the GIL; call before such a prediction."""
    cdef fb_ksplit split
    cdef Py_ssize_t K, N, j
    cdef int i
    if not _own_gemm_ready() or net.n_layers > OWN_GEMM_MAX_LAYERS:
        return 0
    for i in range(net.n_layers):
        K = net.sizes[i]
        N = net.sizes[i + 1]
        if rowwise_product(n, K, N, sizeof(float) if is_float else sizeof(double)):
            continue
        if _worth_in_place(is_float, n, N, K):
            _shape_verdict(is_float, n, N, K, &split)
        if _worth_split(is_float, N, K):
            j = split_column(N, is_float)
            if _worth_in_place(is_float, n, j, K):
                _shape_verdict(is_float, n, j, K, &split)
            if _worth_in_place(is_float, n, N - j, K):
                _shape_verdict(is_float, n, N - j, K, &split)
    return 0


cdef inline bint own_in_place_product(int M, int N, int K, const floating *A, int lda,
                                      const floating *B, int ldb, floating *C,
                                      int ldc) noexcept nogil:
    """``C = A @ B`` by the kernel reading B in place, when the verdict for
    the shape says it gives the BLAS's bits; returns whether it ran (an
    unprobed shape does not: the BLAS)."""
    cdef ShapeVerdict *v
    if not _own_gemm_ready() or not _worth_in_place(floating is float, M, N, K):
        return False
    v = _own_find(floating is float, M, N, K, fb_step_load_count(&_n_verdicts))
    if v == NULL or not v.own:
        return False
    if floating is float:
        fb_gemm_f_nn_in_place(M, N, K, A, lda, B, ldb, &v.split, C, ldc)
    else:
        fb_gemm_d_nn_in_place(M, N, K, A, lda, B, ldb, &v.split, C, ldc)
    return True


cdef Py_ssize_t plan_own_products(bint is_float, const Net *net, Py_ssize_t n,
                                  Py_ssize_t chunk_rows, OwnLayer *own) except -1:
    """Fill ``own`` (one entry per layer, at most OWN_GEMM_MAX_LAYERS) for a
    prediction of ``n`` dense rows in chunks of ``chunk_rows``: which
    products take the kernel, with which split, where their packed weights
    go. Returns the size (values) of a thread's packed buffer: 0 when no
    product takes the kernel."""
    cdef Py_ssize_t last = n - ((n - 1) // chunk_rows) * chunk_rows
    cdef Py_ssize_t full = chunk_rows if n >= chunk_rows else 0
    cdef Py_ssize_t K, N, total = 0
    cdef fb_ksplit split_full, split_last
    cdef int i
    if not _own_gemm_ready() or net.n_layers > OWN_GEMM_MAX_LAYERS:
        return 0
    memset(own, 0, net.n_layers * sizeof(OwnLayer))
    for i in range(net.n_layers):
        K = net.sizes[i]
        N = net.sizes[i + 1]
        own[i].use_full = full > 0 and own_split_for(is_float, full, N, K, &split_full)
        if last == full:    # every chunk is full (_forward_chunk reads use_full)
            own[i].use_last = own[i].use_full
            split_last = split_full
        else:
            own[i].use_last = own_split_for(is_float, last, N, K, &split_last)
        if own[i].use_full and own[i].use_last and not _same_split(&split_full, &split_last):
            own[i].use_last = False     # one packing per layer: the full chunks'
        if own[i].use_full or own[i].use_last:
            own[i].split = split_full if own[i].use_full else split_last
            own[i].offset = total
            # whole panels of 2 vectors: every layer's weights start 64-byte aligned
            total += <Py_ssize_t> (fb_gemm_f_packed_size(K, N) if is_float
                                   else fb_gemm_d_packed_size(K, N))
    return total
