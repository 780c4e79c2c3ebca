# Prediction of one chunk of rows (the Predictor's small inputs, ``forward``'s
# calls of up to a chunk) with a large layer's columns shared between cores.
#
# Notes
# -----
# * A prediction of a few rows streams every weight once and is bound by
#   how fast the weights arrive (one row of the wide network, 784-256-128-10:
#   its first layer's 784 KiB come from L3 at each call), and OpenBLAS's
#   gemm for 2 to ~8 rows packs the whole weight matrix first. Cut into two
#   column blocks, each core reads and packs half: docs/performance.md has
#   the figures.
# * A layer is split when its weights reach SPLIT_MIN_BYTES (the output
#   layer too, unless softmax needs its whole rows), at a cache line past
#   half its columns (``split_column``). The blocks are the same whichever
#   threads run them: the caller alone runs every block when no worker is
#   free, with the same arithmetic.
# * That the two blocks give the whole product's bits is not assumed: the
#   first product of each shape (dtype, M, N, K) is probed on synthetic
#   operands (``_split_verdict``) and only a shape whose blocks match bit for
#   bit is split, so this path predicts exactly as ``_forward_chunk``.
# * The job (``SplitJob``) is a shared pool job: thread t first takes block
#   t of each split layer (so the same half stays in the same core's cache),
#   then any block nobody took. The caller runs the layers that are not
#   split and publishes each finished layer (``ready``); a worker waits for
#   the layer before its next block at most SPLIT_WAIT_NS and otherwise
#   leaves its blocks to the caller, which waits only for blocks taken.

cdef enum:
    SPLIT_BLOCKS = 2                # column blocks of a split layer
    SPLIT_MIN_BYTES = 131072        # weights (bytes) from which a layer's product is split
    SPLIT_SHAPES = 1024             # product shapes whose verdict is kept (then: not split)
    SPLIT_MAX_LAYERS = 32           # layers a network may have for this path
    SPLIT_WAIT_NS = 40000           # how long a worker waits for the layer its next block needs


cdef struct SplitVerdict:
    bint is_float
    Py_ssize_t M, N, K
    bint split                      # the blocks give the whole product's bits


cdef SplitVerdict _split_verdicts[SPLIT_SHAPES]
cdef int _n_split_verdicts = 0
cdef bint _split_on = True          # set_predict_split (tests, benchmarks)


cdef inline Py_ssize_t split_column(Py_ssize_t N, bint is_float) noexcept nogil:
    # where a split layer's columns are cut: past half, on a 64-byte line of values
    cdef Py_ssize_t line = 16 if is_float else 8
    return (N // 2 + line - 1) // line * line


cdef inline bint _worth_split(bint is_float, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t line = 16 if is_float else 8
    return K * N * (4 if is_float else 8) >= SPLIT_MIN_BYTES and N >= 2 * line


cdef void _product_of(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const void *A,
                      const void *B, Py_ssize_t ldb, void *C, Py_ssize_t ldc) noexcept nogil:
    # row-major C (M x N) = A (M x K) @ B (K x N, rows ldb apart) by predict_gemm
    if is_float:
        predict_gemm(<int> M, <int> N, <int> K, <const float *> A, <int> K, <const float *> B,
                     <int> ldb, <float *> C, <int> ldc)
    else:
        predict_gemm(<int> M, <int> N, <int> K, <const double *> A, <int> K,
                     <const double *> B, <int> ldb, <double *> C, <int> ldc)


cdef bint _probe_split(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) except -1:
    """Whether the product of this shape, cut at ``split_column``, gives the
    whole product's bits: synthetic operands through ``predict_gemm``
    (OpenBLAS on one thread, as prediction calls it)."""
    cdef Py_ssize_t j = split_column(N, is_float)
    cdef Py_ssize_t size = 4 if is_float else 8
    dtype = np.float32 if is_float else np.float64
    rng = np.random.default_rng(20261201)
    cdef cnp.ndarray A = np.ascontiguousarray(rng.uniform(-1, 1, (M, K)), dtype=dtype)
    cdef cnp.ndarray B = np.ascontiguousarray(rng.uniform(-1, 1, (K, N)), dtype=dtype)
    cdef cnp.ndarray whole = np.empty((M, N), dtype=dtype)
    cdef cnp.ndarray blocks = np.empty((M, N), dtype=dtype)
    cdef char *b = <char *> cnp.PyArray_DATA(B)
    cdef char *c = <char *> cnp.PyArray_DATA(blocks)
    with _BlasSerial():
        _product_of(is_float, M, N, K, cnp.PyArray_DATA(A), b, N, cnp.PyArray_DATA(whole), N)
        _product_of(is_float, M, j, K, cnp.PyArray_DATA(A), b, N, c, N)
        _product_of(is_float, M, N - j, K, cnp.PyArray_DATA(A), b + j * size, N,
                    c + j * size, N)
    return memcmp(cnp.PyArray_DATA(whole), c, M * N * size) == 0


cdef bint _split_verdict(bint is_float, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) except -1:
    """Whether prediction's product of this shape is split: the verdict kept
    for the shape, else a probe (while the table has room)."""
    global _n_split_verdicts
    cdef int i
    cdef SplitVerdict *v
    for i in range(_n_split_verdicts):
        v = &_split_verdicts[i]
        if v.is_float == is_float and v.M == M and v.N == N and v.K == K:
            return v.split
    if _n_split_verdicts == SPLIT_SHAPES:
        return False
    split = _probe_split(is_float, M, N, K)
    if _n_split_verdicts == SPLIT_SHAPES:   # filled by another thread meanwhile
        return split
    v = &_split_verdicts[_n_split_verdicts]
    v.is_float = is_float
    v.M = M
    v.N = N
    v.K = K
    v.split = split
    _n_split_verdicts += 1
    return split


cdef unsigned int split_plan(bint is_float, const Net *net, Py_ssize_t n) except? 0:
    """The layers whose product of ``n`` dense rows is split (bit i: layer
    i); 0 when none is."""
    cdef unsigned int mask = 0
    cdef int i, L = net.n_layers
    if L > SPLIT_MAX_LAYERS or not _split_on:
        return 0
    for i in range(L):
        if i == L - 1 and net.out_act == ACT_SOFTMAX:
            continue
        if _worth_split(is_float, net.sizes[i + 1], net.sizes[i]) and \
                _split_verdict(is_float, n, net.sizes[i + 1], net.sizes[i]):
            mask |= 1u << i
    return mask


cdef struct SplitJob:
    const Net *net
    const void *x                   # n dense rows
    Py_ssize_t n
    const void *params
    void *out                       # n x n_outputs
    void *work                      # the ping-pong buffers (_predict_ws_size(net, n))
    unsigned int mask               # split_plan's layers
    int ready                       # layers finished, from the first (atomic)
    int taken[SPLIT_MAX_LAYERS * SPLIT_BLOCKS]  # block b of layer i taken (atomic)
    int done[SPLIT_MAX_LAYERS]      # blocks of layer i finished (atomic)


cdef void _split_layer_part(SplitJob *job, int i, Py_ssize_t c0, Py_ssize_t c1,
                            const floating *params) noexcept nogil:
    """Columns ``c0:c1`` of layer i's output: product, bias, activation. The
    layers write where ``_forward_chunk``'s do: ping, pong, ..., then out."""
    cdef const Net *net = job.net
    cdef Py_ssize_t K = net.sizes[i], N = net.sizes[i + 1]
    cdef floating *ping = <floating *> job.work
    cdef floating *pong = ping + job.n * net.max_width
    cdef floating *dst = <floating *> job.out if i == net.n_layers - 1 else \
        (ping if i % 2 == 0 else pong)
    cdef const floating *A = <const floating *> job.x if i == 0 else \
        (ping if (i - 1) % 2 == 0 else pong)
    predict_gemm(<int> job.n, <int> (c1 - c0), <int> K, A, <int> K, params + net.off_w[i] + c0,
                 <int> N, dst + c0, <int> N)
    bias_activation(dst + c0, job.n, N, c1 - c0, params + net.off_b[i] + c0,
                    net.out_act if i == net.n_layers - 1 else net.hidden_act)


cdef bint _take_block(SplitJob *job, int i, int b, const floating *params) noexcept nogil:
    # block b of layer i, if nobody has taken it
    cdef Py_ssize_t N = job.net.sizes[i + 1]
    cdef Py_ssize_t cut = split_column(N, floating is float)
    if not fb_claim(&job.taken[i * SPLIT_BLOCKS + b]):
        return False
    _split_layer_part(job, i, 0 if b == 0 else cut, cut if b == 0 else N, params)
    fb_count_done(&job.done[i])
    return True


cdef void _split_body(SplitJob *job, int tid, const floating *params) noexcept nogil:
    """The caller (tid 0) runs every layer in turn, taking split layers'
    blocks with the workers; a worker takes blocks of the split layers only,
    its own first."""
    cdef int i, b, L = job.net.n_layers
    cdef bint split
    for i in range(L):
        split = (job.mask >> i) & 1
        if tid != 0:
            if not split:
                continue
            if not fb_wait_count(&job.ready, i, SPLIT_WAIT_NS):
                return      # the caller takes this thread's blocks
            for b in range(SPLIT_BLOCKS):
                _take_block(job, i, (tid + b) % SPLIT_BLOCKS, params)
            continue
        if split:
            for b in range(SPLIT_BLOCKS):
                _take_block(job, i, b, params)
            fb_wait_count(&job.done[i], SPLIT_BLOCKS, -1)
        else:
            _split_layer_part(job, i, 0, job.net.sizes[i + 1], params)
        fb_count_done(&job.ready)


cdef void _split_task_f(void *arg, int tid, int nt) noexcept nogil:
    cdef SplitJob *job = <SplitJob *> arg
    _split_body(job, tid, <const float *> job.params)


cdef void _split_task_d(void *arg, int tid, int nt) noexcept nogil:
    cdef SplitJob *job = <SplitJob *> arg
    _split_body(job, tid, <const double *> job.params)


cdef void split_forward(const Net *net, const void *x, Py_ssize_t n, const void *params,
                        void *out, void *work, unsigned int mask, int n_threads,
                        bint is_float) noexcept nogil:
    """``_forward_chunk``'s output for ``n`` dense rows (one chunk), the
    layers in ``mask`` cut into column blocks shared by up to ``n_threads``
    threads (scipy's OpenBLAS already held at one)."""
    cdef SplitJob job
    memset(&job, 0, sizeof(SplitJob))
    job.net = net
    job.x = x
    job.n = n
    job.params = params
    job.out = out
    job.work = work
    job.mask = mask
    if n_threads > SPLIT_BLOCKS:
        n_threads = SPLIT_BLOCKS
    if is_float:
        fb_pool_run_shared(_split_task_f, <void *> &job, n_threads)
    else:
        fb_pool_run_shared(_split_task_d, <void *> &job, n_threads)
