# A thread runs its consecutive fixed blocks of a product as one product
# where that gives the blocks' bits.
#
# Notes
# -----
# * Training cuts a batch's rows (phase 1) and each W_i's gradient rows
#   (phase 2) into blocks fixed by the shapes, so that the weights do not
#   depend on the thread count (_parallel.pxi). A thread runs its blocks in
#   turn (one thread: all of them; several: a run of consecutive blocks of
#   each W_i's gradient, ``_weight_run``), and each product packs the operand
#   the blocks share (W_i in phase 1, the deltas in phase 2) again: the wide
#   network's one-thread fit spent ~10% more time than as one product per
#   layer, its two-thread fit ~2.5% more than with one gradient product per
#   thread and layer (docs/performance.md).
# * float32 blocks are cut on a grid of 12 rows (a batch's where that keeps
#   them nearly even; ``_grid_block``), float64 blocks evenly: where OpenBLAS's kernels
#   give a row the same bits in the whole product as in its block. That is
#   not assumed: each product shape (dtype, op(A), op(B), M, N, K, the block
#   count, the run of blocks) is probed once per process on synthetic
#   operands through ``gemm_rm_step`` (the call the epoch makes, the BLAS on
#   one thread), the run's product against its blocks, bit for bit
#   (``blocks_merge``). A
#   batch's blocks run as one pass only if every product of the pass
#   matched; the rest of the pass works row by row, but for the loss, still
#   taken block by block (``_merged_rows_phase``).
# * ``plan_merges`` fills an epoch's ``merge_*`` flags before it runs, for
#   the epoch's thread count (the GIL held: the verdict table needs no
#   lock); phase 1's row blocks merge on one thread only (several threads
#   share a batch's rows block by block). The probes of a new network cost
#   once per process what a few of its batches cost (the wide network's:
#   ~10 ms).

cdef enum:
    MERGE_SHAPES = 512              # product shapes whose verdict is kept (then: blocks)


cdef struct MergeVerdict:
    bint is_float
    bint trans_a
    bint trans_b
    int M, N, K, n_blocks
    int first, stop                 # the run of blocks [first, stop) merged
    bint balanced                   # cut as a batch's rows (_grid_block)
    bint merge                      # the run's product gives its blocks' bits


cdef MergeVerdict _merge_verdicts[MERGE_SHAPES]
cdef int _n_merge_verdicts = 0
cdef bint _merging = True            # off: every block on its own (a test hook)


cdef bint _probe_merge(floating *buf, bint trans_a, bint trans_b, int M, int N, int K,
                       int n_blocks, int first, int stop, bint balanced) noexcept nogil:
    # the run's rows as one product against its blocks, on synthetic operands
    # in buf (A, B, then two C)
    cdef Py_ssize_t na = <Py_ssize_t> M * K, nb = <Py_ssize_t> K * N, nc = <Py_ssize_t> M * N
    cdef Py_ssize_t i, lo, hi, r0, r1
    cdef floating *A = buf
    cdef floating *B = buf + na
    cdef floating *whole = B + nb
    cdef floating *blocks = whole + nc
    cdef uint64_t state = 0x2545F4914F6CDD1DULL ^ (<uint64_t> M * 1000003 + N * 1009 + K)
    cdef int lda = M if trans_a else K, ldb = K if trans_b else N, b
    for i in range(na + nb):
        buf[i] = <floating> _probe_value(&state)
    _grid_block(M, n_blocks, first, _row_grid(floating is float), balanced, &r0, &hi)
    _grid_block(M, n_blocks, stop - 1, _row_grid(floating is float), balanced, &lo, &r1)
    if r1 - r0 < 1:
        return True
    gemm_rm_step(trans_a, trans_b, <int> (r1 - r0), N, K, <floating> 1.0,
                 A + (r0 if trans_a else r0 * lda), lda, B, ldb, <floating> 0.0,
                 whole + r0 * N, N)
    for b in range(first, stop):
        _grid_block(M, n_blocks, b, _row_grid(floating is float), balanced, &lo, &hi)
        if hi > lo:
            gemm_rm_step(trans_a, trans_b, <int> (hi - lo), N, K, <floating> 1.0,
                         A + (lo if trans_a else lo * lda), lda, B, ldb, <floating> 0.0,
                         blocks + lo * N, N)
    return memcmp(whole + r0 * N, blocks + r0 * N, (r1 - r0) * N * sizeof(floating)) == 0


cdef bint blocks_merge(bint is_float, bint trans_a, bint trans_b, int M, int N, int K,
                       int n_blocks, bint balanced, int first, int stop) except -1:
    """Whether ``gemm_rm_step`` of this shape, with op(A)'s rows (C's) cut
    into n_blocks by ``_grid_block`` (``balanced``: a batch's rows, else a
    W_i's gradient rows), gives the bits of blocks ``first`` to ``stop - 1``
    as one product of their rows: the verdict kept, else probed (the GIL
    held, scipy's OpenBLAS on one thread as in the epoch). False when the
    table is full or memory runs out."""
    global _n_merge_verdicts
    cdef int i
    cdef bint merge
    cdef MergeVerdict *v
    cdef void *buf
    cdef size_t size = (<size_t> M * K + <size_t> K * N + 2 * <size_t> M * N) * (
        sizeof(float) if is_float else sizeof(double))
    if stop - first < 2 or M < 2:
        return True
    for i in range(_n_merge_verdicts):
        v = &_merge_verdicts[i]
        if (v.M == M and v.N == N and v.K == K and v.n_blocks == n_blocks
                and v.first == first and v.stop == stop and v.is_float == is_float
                and v.trans_a == trans_a and v.trans_b == trans_b and v.balanced == balanced):
            return v.merge
    if _n_merge_verdicts >= MERGE_SHAPES or not _blas_serial_now():
        return False
    buf = malloc(size)
    if buf == NULL:
        return False
    with nogil:
        if is_float:
            merge = _probe_merge(<float *> buf, trans_a, trans_b, M, N, K, n_blocks, first,
                                 stop, balanced)
        else:
            merge = _probe_merge(<double *> buf, trans_a, trans_b, M, N, K, n_blocks, first,
                                 stop, balanced)
    free(buf)
    v = &_merge_verdicts[_n_merge_verdicts]
    v.is_float = is_float
    v.trans_a = trans_a
    v.trans_b = trans_b
    v.M = M
    v.N = N
    v.K = K
    v.n_blocks = n_blocks
    v.first = first
    v.stop = stop
    v.balanced = balanced
    v.merge = merge
    _n_merge_verdicts += 1
    return merge


cdef bint _rows_merge(EpochConfig *cfg, bint is_float, Py_ssize_t B) except -1:
    # phase 1 of a batch of B rows as one pass: every product of the pass
    # (forward and hidden deltas) gives its blocks' bits
    cdef const Net *net = cfg.net
    cdef int nb = <int> _row_blocks(net, B), i, n_in, n_out
    if nb < 2:
        return False
    for i in range(net.n_layers):
        n_in = <int> net.sizes[i]
        n_out = <int> net.sizes[i + 1]
        # a CSR first layer works row by row
        if not (i == 0 and cfg.inp.csr_data != NULL) and not blocks_merge(
                is_float, False, False, <int> B, n_out, n_in, nb, True, 0, nb):
            return False
        if i > 0 and not blocks_merge(is_float, False, True, <int> B, n_in, n_out, nb, True,
                                      0, nb):
            return False
    return True


cdef int plan_merges(EpochConfig *cfg, bint is_float, int n_threads) except -1:
    """Fill a training epoch's ``merge_*`` flags (EpochConfig) for
    ``n_threads`` threads: for batches of ``batch_size`` rows and for the
    epoch's last, shorter batch. The GIL held, scipy's OpenBLAS on one
    thread (``_BlasSerial``)."""
    cdef const Net *net = cfg.net
    cdef Py_ssize_t rows, done, nb, b0, b1
    cdef int kind, i, tid
    cfg.merge_threads = n_threads
    cfg.merge_rows[0] = cfg.merge_rows[1] = 0
    memset(cfg.merge_grads, 0, sizeof(cfg.merge_grads))
    cfg.last_batch_rows = cfg.n_samples % cfg.batch_size
    if not cfg.train or cfg.data_parallel or not _merging:
        return 0
    for kind in range(2):
        rows = cfg.batch_size if kind == 0 else cfg.last_batch_rows
        if rows < 2:
            continue
        if n_threads == 1 and _rows_merge(cfg, is_float, rows):
            cfg.merge_rows[kind] = 1
        for tid in range(n_threads):
            done = 0
            for i in range(net.n_layers - 1, -1, -1):
                nb = _weight_blocks(net, i, cfg.batch_size, False)
                _weight_run(cfg, i, done, nb, tid, n_threads, &b0, &b1)
                done += net.sizes[i] * net.sizes[i + 1]
                # a CSR first layer's gradient is one pass, never blocks
                if (i < 64 and b1 - b0 > 1 and not (i == 0 and cfg.inp.csr_data != NULL)
                        and blocks_merge(is_float, True, False, <int> net.sizes[i],
                                         <int> net.sizes[i + 1], <int> rows, <int> nb, False,
                                         <int> b0, <int> b1)):
                    cfg.merge_grads[tid][kind] |= 1ULL << i
    return 0
