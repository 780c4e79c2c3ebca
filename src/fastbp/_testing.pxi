# Test and tuning hooks: functions that exist for tests and benchmarks, and
# the ones that change module globals. Each says so in its docstring.

def set_segment_work(double work):
    """Tuning and test hook: set the multiply-adds per epoch segment (between
    two thread-count decisions, a module global); returns the previous value."""
    global SEGMENT_WORK
    old = SEGMENT_WORK
    SEGMENT_WORK = work
    return old


def set_data_parallel_ratio(double ratio):
    """Tuning and test hook: set the activations-to-parameters ratio above
    which batches take the data-parallel mode (a module global); returns the
    previous value. It changes the weights' rounding: never while a model
    trains."""
    global DP_RATIO
    old = DP_RATIO
    DP_RATIO = ratio
    return old


def set_block_sizes(Py_ssize_t row_target, Py_ssize_t weight_blocks):
    """Tuning hook: set the rows per batch block aimed at and the number of
    weight blocks aimed at (module globals); returns the previous pair. It
    changes the weights' rounding: never while a model trains."""
    global ROW_BLOCK_TARGET, WEIGHT_BLOCKS
    if row_target < 1 or weight_blocks < 1:
        raise ValueError(f"row_target and weight_blocks must be >= 1, got {row_target} "
                         f"and {weight_blocks}")
    old = (ROW_BLOCK_TARGET, WEIGHT_BLOCKS)
    ROW_BLOCK_TARGET = row_target
    WEIGHT_BLOCKS = weight_blocks
    return old


def data_parallel(NetSpec spec, Py_ssize_t batch_size):
    """Test hook: whether dense training batches of ``batch_size`` rows take
    the data-parallel mode (see ``_data_parallel``)."""
    return bool(_data_parallel(&spec.net, batch_size))


def apply_activation(floating[:, ::1] Z, str name):
    """Test hook: activation ``name`` applied to ``Z`` in place, as the
    forward pass applies it (bias zero)."""
    cdef floating[::1] zero = np.zeros(Z.shape[1], dtype=np.asarray(Z).dtype)
    if name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{', '.join(ACTIVATION_CODES)}")
    if Z.shape[0] and Z.shape[1]:
        bias_activation(&Z[0, 0], Z.shape[0], Z.shape[1], Z.shape[1], &zero[0],
                        <int> ACTIVATION_CODES[name])


def apply_activation_derivative(floating[:, ::1] D, floating[:, ::1] A, str name,
                                floating[:, ::1] Z=None):
    """Test hook: ``D *= act'(z)`` in place, as the backward pass computes it:
    from ``A = act(z)``, or for the activations whose forward pass keeps
    f'(z) (gelu, silu, mish, softplus) from ``Z = z``, through that pass."""
    cdef floating[:, ::1] kept = None
    cdef int act
    if D.shape[0] != A.shape[0] or D.shape[1] != A.shape[1]:
        raise ValueError(f"D and A must have the same shape, got {(D.shape[0], D.shape[1])} "
                         f"and {(A.shape[0], A.shape[1])}")
    if name not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"no hidden-layer derivative for {name!r}; expected one of "
                         f"{', '.join(HIDDEN_ACTIVATIONS)}")
    act = <int> ACTIVATION_CODES[name]
    if _keeps_derivative(act):
        if Z is None or Z.shape[0] != D.shape[0] or Z.shape[1] != D.shape[1]:
            raise ValueError(f"the derivative of {name!r} needs Z, the pre-activations, "
                             f"of D's shape")
        kept = np.empty_like(np.asarray(Z))
        if D.shape[0] and D.shape[1]:
            outputs = np.array(Z, copy=True)
            exp_activation(<floating *> cnp.PyArray_DATA(outputs), D.shape[0] * D.shape[1],
                           act, &kept[0, 0])
    if D.shape[0] and D.shape[1]:
        activation_derivative(&D[0, 0], &A[0, 0], &kept[0, 0] if kept is not None else NULL,
                              D.shape[0], D.shape[1], D.shape[1], act)


def dropout_mask(uint64_t seed, long long step, int layer, Py_ssize_t n_rows, Py_ssize_t n_units,
                 double rate, Py_ssize_t first_position=0):
    """Test hook: the dropout mask (1 = kept) of hidden layer ``layer`` at
    optimizer step ``step`` for ``n_rows`` rows at positions
    ``first_position..`` of the epoch's order, as training draws it."""
    cdef cnp.ndarray[cnp.float64_t, ndim=2] ones = np.ones((n_rows, n_units))
    cdef cnp.ndarray[cnp.float64_t, ndim=2] kept = np.empty((n_rows, n_units))
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate}")
    if n_rows and n_units:
        dropout_forward(<double *> ones.data, <double *> kept.data, n_rows, n_units,
                        first_position, dropout_layer_key(seed, step, layer), rate)
    return (ones != 0).astype(np.uint8)


def matmul(const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C,
           bint trans_a=False, str path="auto", int repeat=1, bint trans_b=False):
    """Test and tuning hook: ``C = op(A) @ op(B)`` through the engine's
    products (scipy's OpenBLAS held at one thread, as in training and
    prediction): ``path`` "auto" (as a training step does), "predict" (as
    prediction does), "blas" (always BLAS) or "small" (always typed loops;
    not with ``trans_b``); ``repeat`` runs it that many times (for timing the
    paths against each other: benchmarks/small_products.py)."""
    cdef Py_ssize_t M = C.shape[0], N = C.shape[1]
    cdef Py_ssize_t K = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t sam = 1 if trans_a else A.shape[1], sak = A.shape[1] if trans_a else 1
    cdef int ldb = <int> B.shape[1]
    cdef int i, mode
    if ((A.shape[1] if trans_a else A.shape[0]) != M
            or (B.shape[1] if trans_b else B.shape[0]) != K
            or (B.shape[0] if trans_b else B.shape[1]) != N):
        raise ValueError(f"shapes do not match: op(A) is "
                         f"{(A.shape[1] if trans_a else A.shape[0], K)}, op(B) "
                         f"{(B.shape[1], B.shape[0]) if trans_b else (B.shape[0], B.shape[1])}, "
                         f"C {(M, N)}")
    if path not in ("auto", "blas", "small", "predict"):
        raise ValueError(f"unknown path {path!r}; expected 'auto', 'predict', 'blas' or "
                         "'small'")
    if path == "small" and trans_b:
        raise ValueError("path 'small' computes op(B) = B only")
    mode = ("auto", "blas", "small", "predict").index(path)
    if M == 0 or N == 0 or K == 0:
        return
    with _BlasSerial():     # OpenBLAS on one thread, as the engine runs it
        with nogil:
            for i in range(repeat):
                if mode == 0:
                    gemm_rm_step(trans_a, trans_b, <int> M, <int> N, <int> K, <floating> 1.0,
                                 &A[0, 0], <int> A.shape[1], &B[0, 0], ldb, <floating> 0.0,
                                 &C[0, 0], <int> N)
                elif mode == 3:
                    gemm_rm(trans_a, trans_b, <int> M, <int> N, <int> K, <floating> 1.0,
                            &A[0, 0], <int> A.shape[1], &B[0, 0], ldb, <floating> 0.0,
                            &C[0, 0], <int> N)
                elif mode == 1:
                    _blas_rm(trans_a, trans_b, <int> M, <int> N, <int> K, <floating> 1.0,
                             &A[0, 0], <int> A.shape[1], &B[0, 0], ldb, <floating> 0.0,
                             &C[0, 0], <int> N)
                elif N == 1 and trans_a:
                    # one output's weight gradient: a sum of rows of A, as gemm_rm runs it
                    small_gemm(1, M, K, &B[0, 0], 0, 1, &A[0, 0], A.shape[1], &C[0, 0], 1)
                else:
                    small_gemm(M, N, K, &A[0, 0], sam, sak, &B[0, 0], N, &C[0, 0], N)


cdef enum:
    PROBE_ITEMS = 16        # work items of a shared probe job


cdef struct _PoolProbe:
    long *runs              # runs[job * FB_MAX_THREADS + tid]: how often tid ran the job
    int *threads            # threads[job]: the thread count the job ran with
    long *taken             # taken[job * PROBE_ITEMS + i]: 1 + the thread that took item i
    long next_item          # a shared job's queue (atomic)
    Py_ssize_t job


cdef void _pool_probe_task(void *arg, int tid, int nt) noexcept nogil:
    cdef _PoolProbe *probe = <_PoolProbe *> arg
    cdef long i
    if tid == 0:
        probe.threads[probe.job] = nt
    fb_fetch_add(&probe.runs[probe.job * FB_MAX_THREADS + tid])
    while True:     # a shared job's items; an SPMD job's queue is empty
        i = fb_fetch_add(&probe.next_item)
        if i >= PROBE_ITEMS:
            break
        probe.taken[probe.job * PROBE_ITEMS + i] += tid + 1


def pool_job_runs(thread_counts, shared=None):
    """Test hook: run one empty pool job per entry of ``thread_counts`` (the
    threads asked for, 2..FB_MAX_THREADS), back to back; ``shared`` (one bool
    per job, default all False) makes a job a shared one (fb_pool_run_shared)
    with PROBE_ITEMS work items in a queue. Returns ``(runs, threads,
    taken)``: how often each thread ran each job, shape (n_jobs,
    FB_MAX_THREADS); the thread count each job ran with (1 in a build without
    threads); and for each shared job's items 1 + the thread that took it,
    shape (n_jobs, PROBE_ITEMS). Each SPMD job must be run once by each of
    its threads and by no other; a shared job once by its caller (thread 0),
    at most once by each of its other threads, by no other, and each item
    taken exactly once."""
    counts = np.asarray(thread_counts, dtype=np.intc)
    if counts.size and (counts.min() < 2 or counts.max() > FB_MAX_THREADS):
        raise ValueError(f"thread counts must be in [2, {FB_MAX_THREADS}]")
    kinds = np.zeros(counts.size, dtype=np.uint8) if shared is None else \
        np.asarray(shared, dtype=bool).astype(np.uint8)
    if kinds.shape != counts.shape:
        raise ValueError("shared needs one entry per job")
    runs_array = np.zeros((counts.size, FB_MAX_THREADS), dtype="l")   # C long
    threads_array = np.zeros(counts.size, dtype=np.intc)
    taken_array = np.zeros((counts.size, PROBE_ITEMS), dtype="l")
    cdef long[:, ::1] runs = runs_array
    cdef int[::1] threads = threads_array
    cdef long[:, ::1] taken = taken_array
    cdef int[::1] n = counts
    cdef unsigned char[::1] is_shared = kinds
    cdef _PoolProbe probe
    cdef Py_ssize_t j
    if counts.size == 0:
        return runs_array, threads_array, taken_array
    probe.runs = &runs[0, 0]
    probe.threads = &threads[0]
    probe.taken = &taken[0, 0]
    with nogil:
        for j in range(n.shape[0]):
            probe.job = j
            if is_shared[j]:
                probe.next_item = 0
                fb_pool_run_shared(_pool_probe_task, <void *> &probe, n[j])
            else:
                probe.next_item = PROBE_ITEMS
                fb_pool_run(_pool_probe_task, <void *> &probe, n[j])
    return runs_array, threads_array, taken_array


def set_own_gemm(bint on):
    """Test and benchmark hook: let products take fastbp's own kernels where
    they give the BLAS's bits (True, the default: prediction's AVX-512 kernel,
    training steps' AVX2 float64 kernel) or keep every product on the BLAS (a
    module global); returns the previous setting."""
    global _own_gemm_on
    old = _own_gemm_on
    _own_gemm_on = on
    return bool(old)


def own_gemm_available():
    """Test hook: whether the own kernel can run here (built, this CPU, the
    AVX-512 set chosen, not switched off)."""
    return bool(_own_gemm_ready())


def own_gemm_in_place_worth(dtype, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K):
    """Test hook: whether prediction's product of this shape may take the own
    kernel on the weights in place (``_worth_in_place``: probed, then taken
    where the probe says it gives the BLAS's bits)."""
    return bool(_worth_in_place(np.dtype(dtype) == np.float32, M, N, K))


def own_gemm_verdicts():
    """Test and diagnostic hook: the product shapes probed so far, as tuples
    ``(dtype, M, N, K, split)``, ``split`` the blocks of k with which the own
    kernel gives the BLAS's bits, or None where it does not."""
    cdef int i, b
    out = []
    for i in range(_n_verdicts):
        v = _verdicts[i]
        split = tuple(v.split.len[b] for b in range(v.split.n)) if v.own else None
        out.append(("float32" if v.is_float else "float64", v.M, v.N, v.K, split))
    return out


def own_rows_level():
    """Test hook: the kernels prediction's rows kernel runs here (2: AVX-512,
    1: AVX2; 0: none: not built, this CPU, the baseline set, or switched off
    by ``set_own_gemm``)."""
    return rows_level()


def own_rows_verdicts():
    """Test and diagnostic hook: the float32 layer shapes probed for the rows
    kernel so far, as tuples ``(N, K, own)``: whether it gives gemv's bits,
    row by row, for a K x N layer."""
    cdef int i
    return [(_rows_verdicts[i].N, _rows_verdicts[i].K, bool(_rows_verdicts[i].own))
            for i in range(fb_step_load_count(&_n_rows_verdicts))]


def own_rows(const float[:, ::1] A, const float[:, ::1] B):
    """Test hook: ``A @ B`` by the rows kernel (any shape, whatever the BLAS
    computes). Needs ``own_rows_level()`` above 0."""
    cdef int level = rows_level()
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1]
    if level == 0:
        raise RuntimeError("the rows kernel cannot run here (see own_rows_level)")
    if B.shape[0] != K or M == 0 or N == 0 or K == 0:
        raise ValueError(f"A ({M} x {K}) and B ({B.shape[0]} x {N}) do not multiply "
                         "(or are empty)")
    C = np.empty((M, N), dtype=np.float32)
    cdef float[:, ::1] c = C
    with nogil:
        fb_rows_f(level, M, N, K, &A[0, 0], K, &B[0, 0], N, &c[0, 0], N)
    return C


def set_predict_split(bint on):
    """Test and benchmark hook: whether small-input predictions may split a
    large layer's product between cores (_predict_split.pxi); returns the
    previous setting."""
    global _split_on
    old = _split_on
    _split_on = on
    return old


def split_forward_rows(NetSpec spec, floating[::1] params, floating[:, ::1] X,
                       unsigned int mask, int n_threads):
    """Test hook: the output of X's rows by the split job with the layers in
    ``mask`` split (whatever the probes say) on up to ``n_threads`` threads."""
    cdef Net *net = &spec.net
    cdef Py_ssize_t n = X.shape[0]
    _check_length(params.shape[0], net.n_params, "params")
    if X.shape[1] != net.sizes[0] or n < 1:
        raise ValueError(f"X must have 1 or more rows of {net.sizes[0]} features")
    if net.n_layers > SPLIT_MAX_LAYERS or (net.n_layers < 32 and mask >> net.n_layers):
        raise ValueError(f"mask names layers the network (of {net.n_layers}) does not have")
    if (mask >> (net.n_layers - 1)) & 1 and net.out_act == ACT_SOFTMAX:
        raise ValueError("a softmax output layer cannot be split")
    dtype = np.asarray(params).dtype
    cdef floating[:, ::1] out = np.empty((n, net.sizes[net.n_layers]), dtype=dtype)
    cdef floating[::1] work = np.empty(_predict_ws_size(net, n), dtype=dtype)
    with _BlasSerial():
        with nogil:
            split_forward(net, &X[0, 0], n, &params[0], &out[0, 0], &work[0], mask,
                          n_threads, floating is float)
    return np.asarray(out)


def split_verdicts():
    """Test and diagnostic hook: the product shapes a small-input prediction
    has probed for splitting between cores (_predict_split.pxi), as tuples
    ``(dtype, M, N, K, split)``."""
    cdef int i
    return [("float32" if _split_verdicts[i].is_float else "float64", _split_verdicts[i].M,
             _split_verdicts[i].N, _split_verdicts[i].K, bool(_split_verdicts[i].split))
            for i in range(_n_split_verdicts)]


def predictor_split_plan(Predictor predictor, Py_ssize_t n):
    """Test hook: the layers (bit i: layer i) whose products of ``n`` rows the
    Predictor splits between cores."""
    if not 1 <= n <= predictor.max_rows:
        raise ValueError(f"n must be in 1..{predictor.max_rows}, got {n}")
    return predictor._split_layers(n)


def own_gemm(floating[:, ::1] A, floating[:, ::1] B, blocks=None, bint in_place=False):
    """Test hook: ``A @ B`` by the own kernel with the blocks of k ``blocks``
    (default: one block), whatever the BLAS computes; ``in_place``: reading B
    where it is instead of a packed copy. Needs ``own_gemm_available()``."""
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1]
    cdef fb_ksplit split
    if not _own_gemm_ready():
        raise RuntimeError("the own kernel cannot run here (see own_gemm_available)")
    if B.shape[0] != K or K == 0 or M == 0 or N == 0:
        raise ValueError(f"A ({M} x {K}) and B ({B.shape[0]} x {N}) do not multiply "
                         "(or are empty)")
    blocks = (K,) if blocks is None else tuple(int(b) for b in blocks)
    if (not 1 <= len(blocks) <= FB_GEMM_MAX_BLOCKS or min(blocks) < 1
            or sum(blocks) != K):
        raise ValueError(f"blocks must be 1 to {FB_GEMM_MAX_BLOCKS} positive lengths "
                         f"summing to K = {K}, got {blocks}")
    _set_split(&split, blocks)
    if not in_place:
        return _own_matmul(np.asarray(A), np.asarray(B), &split)
    C = np.empty((M, N), dtype=np.asarray(A).dtype)
    cdef floating[:, ::1] c = C
    if floating is float:
        fb_gemm_f_nn_in_place(M, N, K, &A[0, 0], K, &B[0, 0], N, &split, &c[0, 0], N)
    else:
        fb_gemm_d_nn_in_place(M, N, K, &A[0, 0], K, &B[0, 0], N, &split, &c[0, 0], N)
    return C


def own_gemm_find_split(floating[:, ::1] A, floating[:, ::1] B, floating[:, ::1] C):
    """Test hook: the probe's search (``_find_split``) against a given product
    ``C`` of ``A @ B``: the blocks of k with which the own kernel reproduces C
    bit for bit, or None. Needs ``own_gemm_available()``."""
    cdef fb_ksplit split
    cdef int b
    if not _own_gemm_ready():
        raise RuntimeError("the own kernel cannot run here (see own_gemm_available)")
    if (A.shape[1] != B.shape[0] or C.shape[0] != A.shape[0] or C.shape[1] != B.shape[1]
            or A.shape[0] == 0 or A.shape[1] == 0 or B.shape[1] == 0):
        raise ValueError("C must be A @ B's shape, none of them empty")
    if not _find_split(np.asarray(A), np.asarray(B), np.asarray(C), &split):
        return None
    return tuple(split.len[b] for b in range(split.n))


def step_gemm_available():
    """Test hook: whether training steps' own AVX2 kernel can run here (built,
    this CPU, the AVX2 set chosen, not switched off)."""
    return bool(_step_gemm_ready())


def step_gemm_verdicts():
    """Test and diagnostic hook: the step product shapes probed so far, as
    tuples ``(trans_a, trans_b, M, N, K, exact, own)``: whether the kernel
    gives the BLAS's bits for the shape, and whether it runs the shape's
    products (exact and faster when probed)."""
    cdef int i
    out = []
    for i in range(fb_step_load_count(&_n_step_verdicts)):
        v = _step_verdicts[i]
        out.append((bool(v.trans_a), bool(v.trans_b), v.M, v.N, v.K, bool(v.exact),
                    bool(v.own)))
    return out


def set_step_gemm_gain(double gain):
    """Test and benchmark hook: how much faster than the BLAS the step kernel
    must be on a shape, when probed, to take it (default 1.05; 0 takes every
    exact shape). Shapes probed before keep their verdicts. Returns the
    previous value."""
    global STEP_GEMM_GAIN
    if not gain >= 0:
        raise ValueError(f"gain must be a number >= 0, got {gain!r}")
    old = STEP_GEMM_GAIN
    STEP_GEMM_GAIN = gain
    return old


cdef tuple _step_shape(double[:, ::1] A, double[:, ::1] B, bint trans_a, bint trans_b):
    # (M, N, K) of op(A) @ op(B), checked (the step hooks' operands)
    M, K = (A.shape[1], A.shape[0]) if trans_a else (A.shape[0], A.shape[1])
    KB, N = (B.shape[1], B.shape[0]) if trans_b else (B.shape[0], B.shape[1])
    if KB != K or M == 0 or N == 0 or K == 0:
        raise ValueError(f"op(A) ({M} x {K}) and op(B) ({KB} x {N}) do not multiply (or are "
                         "empty)")
    if trans_b and K > FB_STEP_MAX_K:
        raise ValueError(f"op(B) = B^T takes K up to {FB_STEP_MAX_K}, got {K}")
    return M, N, K


def step_gemm(double[:, ::1] A, double[:, ::1] B, bint trans_a=False, bint trans_b=False):
    """Test hook: ``op(A) @ op(B)`` by the training steps' own kernel, whatever
    the BLAS computes (any shape; K up to 256 with ``trans_b``). Needs
    ``step_gemm_available()``."""
    cdef Py_ssize_t M, N, K
    if not _step_gemm_ready():
        raise RuntimeError("the step kernel cannot run here (see step_gemm_available)")
    M, N, K = _step_shape(A, B, trans_a, trans_b)
    C = np.empty((M, N))
    cdef double[:, ::1] c = C
    with nogil:
        _own_step_gemm(trans_a, trans_b, <int> M, <int> N, <int> K, &A[0, 0],
                       <int> A.shape[1], &B[0, 0], <int> B.shape[1], &c[0, 0], <int> N)
    return C


def step_gemm_reference(double[:, ::1] A, double[:, ::1] B, bint trans_a=False,
                        bint trans_b=False):
    """Test hook: ``op(A) @ op(B)`` element by element in the kernel's
    arithmetic (one scalar chain of fused multiply-adds over k in order)."""
    cdef Py_ssize_t M, N, K, i, j
    cdef Py_ssize_t sai = 1 if trans_a else A.shape[1], sak = A.shape[1] if trans_a else 1
    cdef Py_ssize_t sbj = B.shape[1] if trans_b else 1, sbk = 1 if trans_b else B.shape[1]
    M, N, K = _step_shape(A, B, trans_a, trans_b)
    C = np.empty((M, N))
    cdef double[:, ::1] c = C
    for i in range(M):
        for j in range(N):
            c[i, j] = fb_step_gemm_d_dot(K, &A[0, 0] + i * sai, sak, &B[0, 0] + j * sbj, sbk)
    return C


def grid_blocks(Py_ssize_t n, Py_ssize_t n_blocks, dtype, bint balanced=True):
    """Test hook: the ``(lo, hi)`` of each of the n_blocks blocks ``_grid_block``
    cuts n rows into (training's row blocks in this dtype: a batch's rows,
    ``balanced``, else a W_i's gradient rows)."""
    cdef Py_ssize_t b, lo, hi, grid
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if n < 0 or n_blocks < 1:
        raise ValueError(f"n must be >= 0 and n_blocks >= 1, got {n} and {n_blocks}")
    grid = _row_grid(dtype == np.float32)
    out = []
    for b in range(n_blocks):
        _grid_block(n, n_blocks, b, grid, balanced, &lo, &hi)
        out.append((lo, hi))
    return out


def set_block_merging(bint on):
    """Test hook: whether training runs a thread's consecutive blocks as one
    product where the probe allows it (``plan_merges``; off: every block on
    its own, which gives the same bits); returns the previous setting."""
    global _merging
    old = _merging
    _merging = on
    return old


def blocks_merge_verdict(dtype, bint trans_a, bint trans_b, int M, int N, int K,
                         int n_blocks, bint balanced=True, int first=0, stop=None):
    """Test hook: whether a thread runs blocks ``first`` to ``stop - 1``
    (default: all) of the product ``op(A) @ op(B)`` of this shape (C is
    M x N), cut into n_blocks row blocks by ``_grid_block`` (see
    ``grid_blocks``), as one product (``blocks_merge``: probed now if the
    shape is new)."""
    cdef int stop_ = n_blocks if stop is None else stop
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if M < 1 or N < 1 or K < 1 or n_blocks < 1:
        raise ValueError(f"M, N, K and n_blocks must be >= 1, got {(M, N, K, n_blocks)}")
    if not 0 <= first < stop_ <= n_blocks:
        raise ValueError(f"first and stop must satisfy 0 <= first < stop <= n_blocks, got "
                         f"{first} and {stop_} of {n_blocks}")
    with _BlasSerial():
        return bool(blocks_merge(dtype == np.float32, trans_a, trans_b, M, N, K, n_blocks,
                                 balanced, first, stop_))
