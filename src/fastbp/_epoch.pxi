# ---------------------------------------------------------------------------
# The epoch: every thread walks the same batches and owns a slice of each layer
# ---------------------------------------------------------------------------

cdef struct Epoch:
    const Net *net
    const Input *inp
    const void *Y
    const void *sw
    const Py_ssize_t *rows_all    # sample order, or NULL for X's own order
    Py_ssize_t n
    Py_ssize_t batch_size
    void *params
    void *grads
    void *s1
    void *s2
    Optim *opt
    double alpha
    double loss_scale
    void *work
    unsigned char *touched        # sparse first layer: gradient rows holding data
    int gather
    int train                     # 1: a step per batch; 0: accumulate a full gradient
    int dp                        # data-parallel mode (see _data_parallel)
    fb_barrier *barrier
    double sumsq0                 # sum of squared weights before this segment's first batch
    double sumsq_part[2][64]      # per thread, per batch parity
    double loss_sum               # accumulated over the segments of the epoch
    int stop
    Py_ssize_t seg_start          # rows [seg_start, seg_stop) form this segment
    Py_ssize_t seg_stop
    long long batch0              # index in the epoch of the segment's first batch
    long long n_batches           # batches run so far in the epoch
    long long t_start             # when every thread of the segment was running


cdef void _epoch_body(Epoch *E, int tid, int nt, floating *dtype_tag) noexcept nogil:
    """One thread's part of an epoch (``train``) or of a full-batch gradient.

    Every thread walks the same batches, each in two phases with a barrier
    after each:

    1. rows: thread ``tid`` takes its block of the batch's rows through the
       whole network and back: gather, forward through every layer, loss and
       output delta, then the deltas of every hidden layer (``delta_i =
       (delta_{i+1} W_i^T) * act'(A_i)``). Rows are independent, so no thread
       waits for another until the end of the phase, and ``W`` is only read.
    2. parameters: thread ``tid`` owns a block of rows of every ``W_i`` (and
       of columns of every ``b_i``): it computes their gradient from all rows
       (``A_i^T delta_{i+1}``, column sums of ``delta_{i+1}``) and steps them.

    Each output element is one BLAS product over the same operands whatever
    the thread count, so in float64 the weights do not depend on it.

    In the data-parallel mode (``E.dp``, see ``_data_parallel``) the rows of
    phase 1 are two fixed halves of the batch (threads 0 and 1, or one
    thread taking both in turn), and each half's gradient is taken there from
    its own rows (the first into ``grads``, the second into the workspace);
    phase 2 adds the second to the first and steps, each thread over its share
    of every ``W_i`` and ``b_i``. The halves do not depend on the thread
    count, so neither do the weights.
    """
    cdef const Net *net = E.net
    cdef const Input *inp = E.inp
    cdef int L = net.n_layers, i, t
    cdef Py_ssize_t n = E.n, bs = E.batch_size, nf = net.sizes[0]
    cdef Py_ssize_t start = E.seg_start, stop, B, r, j, c0, c1, k0, k1, r0, r1, n_in, n_out
    cdef const Py_ssize_t *rows
    cdef const Py_ssize_t *my_rows
    cdef const floating *Y = <const floating *> E.Y
    cdef const floating *sw = <const floating *> E.sw
    cdef floating *params = <floating *> E.params
    cdef floating *grads = <floating *> E.grads
    cdef floating *s1 = <floating *> E.s1
    cdef floating *s2 = <floating *> E.s2
    cdef double *row_losses = <double *> E.work
    cdef floating *p = (<floating *> E.work) + 2 * bs
    cdef floating *A0 = NULL
    cdef floating *acts
    cdef floating *deltas
    cdef floating *out_ex
    cdef floating *D
    cdef floating *gb
    cdef floating *A_i
    cdef const floating *Xd = <const floating *> inp.dense
    cdef floating beta
    cdef double sw_sum = 0.0, local_sumsq, data_sum, sumsq_prev
    cdef long long last_check = _now_ns()
    cdef long long batch = E.batch0, first = E.batch0, check_every
    cdef Step st
    cdef fb_barrier *bar = E.barrier
    cdef floating *dp_grad          # data-parallel mode: the second half's gradient
    cdef floating *Gh
    cdef int h, h_lo, h_hi
    cdef bint has_h1

    # the segment's time starts once every thread runs: waking a parked
    # worker (on a virtual machine, an idle virtual CPU) can take far longer
    # than a batch, and it is not a cost of running on several threads
    if nt > 1:
        fb_barrier_wait(bar)
    if tid == 0:
        E.t_start = _now_ns()

    # the clock is read for the Ctrl-C check every ~1e5 multiply-adds of work
    check_every = 100000 // (net.n_weights * bs) + 1
    if inp.csr_data == NULL and E.gather:
        A0 = p
        p += bs * nf
    acts = p
    for i in range(1, L + 1):
        p += bs * net.sizes[i]
    deltas = p          # hidden layers 1..L-1; the output delta overwrites its activations
    for i in range(1, L):
        p += bs * net.sizes[i]
    out_ex = p          # output_loss_delta's scratch
    dp_grad = out_ex + 2 * bs * net.sizes[L]
    # data-parallel mode: thread 0 and 1 take the fixed halves 0 and 1 of
    # each batch (one thread takes both, in turn); other modes: every thread
    # its share of the rows
    if not E.dp:
        h_lo = 0
        h_hi = 1
    elif nt == 1:
        h_lo = 0
        h_hi = 2
    else:
        h_lo = tid if tid < 2 else 0
        h_hi = tid + 1 if tid < 2 else 0

    while start < E.seg_stop:
        stop = start + bs
        if stop > n:
            stop = n
        B = stop - start
        rows = E.rows_all + start if E.rows_all != NULL else NULL
        beta = 0 if (E.train or start == 0) else 1
        local_sumsq = 0.0

        # ---- phase 1: this thread's rows, forward and back ----------------
        for h in range(h_lo, h_hi):
            if E.dp:
                _split(B, h, 2, &r0, &r1)
            else:
                _split(B, tid, nt, &r0, &r1)
            if r1 <= r0:
                continue
            my_rows = rows + r0 if rows != NULL else NULL
            if inp.csr_data == NULL:
                if E.gather and nf < 16:
                    # few features: a plain loop beats a memcpy call per row
                    for r in range(r0, r1):
                        for j in range(nf):
                            A0[r * nf + j] = Xd[rows[r] * nf + j]
                elif E.gather:
                    for r in range(r0, r1):
                        memcpy(A0 + r * nf, Xd + rows[r] * nf, nf * sizeof(floating))
                else:
                    A0 = <floating *> Xd + start * nf
            for i in range(L):
                n_in = net.sizes[i]
                n_out = net.sizes[i + 1]
                A_i = _layer(net, acts, B, i + 1) + r0 * n_out
                if i == 0:
                    first_layer_product(net, inp, params,
                                        A0 + r0 * nf if A0 != NULL else NULL,
                                        my_rows, start + r0, r1 - r0, A_i, 0, n_out)
                else:
                    gemm_rm(False, False, <int> (r1 - r0), <int> n_out, <int> n_in,
                            <floating> 1.0, _layer(net, acts, B, i) + r0 * n_in, <int> n_in,
                            params + net.off_w[i], <int> n_out, <floating> 0.0, A_i,
                            <int> n_out)
                if i < L - 1:
                    bias_activation(A_i, r1 - r0, n_out, n_out, params + net.off_b[i],
                                    net.hidden_act)
            # loss and output delta, in place of the output activations
            n_out = net.sizes[L]
            output_loss_delta(_layer(net, acts, B, L) + r0 * n_out, r1 - r0, n_out,
                              params + net.off_b[L - 1], Y, my_rows, start + r0, sw,
                              net.out_act, row_losses + r0, out_ex + r0 * n_out,
                              out_ex + (B + r0) * n_out)
            # deltas of the hidden layers, last to first
            D = _layer(net, acts, B, L)
            for i in range(L - 1, 0, -1):
                n_in = net.sizes[i]
                n_out = net.sizes[i + 1]
                gemm_rm(False, True, <int> (r1 - r0), <int> n_in, <int> n_out,
                        <floating> 1.0, D + r0 * n_out, <int> n_out, params + net.off_w[i],
                        <int> n_out, <floating> 0.0, _layer(net, deltas, B, i) + r0 * n_in,
                        <int> n_in)
                activation_derivative(_layer(net, deltas, B, i) + r0 * n_in,
                                      _layer(net, acts, B, i) + r0 * n_in, r1 - r0, n_in,
                                      n_in, net.hidden_act)
                D = _layer(net, deltas, B, i)
            if E.dp:
                # this half's gradient, from its own rows only
                Gh = grads if h == 0 else dp_grad
                for i in range(L - 1, -1, -1):
                    n_in = net.sizes[i]
                    n_out = net.sizes[i + 1]
                    D = (_layer(net, acts, B, L) if i == L - 1
                         else _layer(net, deltas, B, i + 1))
                    if i > 0:
                        gemm_rm(True, False, <int> n_in, <int> n_out, <int> (r1 - r0),
                                <floating> 1.0, _layer(net, acts, B, i) + r0 * n_in,
                                <int> n_in, D + r0 * n_out, <int> n_out, <floating> 0.0,
                                Gh + net.off_w[i], <int> n_out)
                    else:
                        first_layer_weight_grad(net, inp, A0 + r0 * nf, NULL, 0, r1 - r0,
                                                D + r0 * n_out, <floating> 0.0,
                                                Gh + net.off_w[0], 0, nf, NULL)
                    _column_sums(D + r0 * n_out, r1 - r0, n_out, 0, n_out, <floating> 0.0,
                                 Gh + net.off_b[i])
        if E.train:
            if sw != NULL:
                sw_sum = 0.0
                for r in range(B):
                    sw_sum += sw[rows[r] if rows != NULL else start + r]
            else:
                sw_sum = <double> B
            _make_step(&st, E.opt, E.opt.t + batch + 1, E.alpha, sw_sum)
        if inp.csr_data == NULL and not E.gather:
            A0 = <floating *> Xd + start * nf
        fb_barrier_wait(bar)

        if (tid == 0 and stop < n and (batch - first) % check_every == 0
                and _check_signals(&last_check)):
            E.stop = 1
        if tid == nt - 1:
            # the batch loss, summed in one order whatever the thread count (on
            # the last thread: thread 0 already checks for Ctrl-C)
            data_sum = _pairwise_sum(row_losses, B) * E.loss_scale
            if E.train:
                if batch == first:
                    sumsq_prev = E.sumsq0
                else:
                    sumsq_prev = 0.0
                    for t in range(nt):
                        sumsq_prev += E.sumsq_part[(batch - 1) % 2][t]
                E.loss_sum += (data_sum / sw_sum + 0.5 * E.alpha * sumsq_prev / sw_sum) * B
            else:
                E.loss_sum += data_sum

        # ---- phase 2: this thread's parameters, gradient and step ---------
        if E.dp:
            # the batch gradient is the first half's plus the second's (added
            # in this order whatever the thread count), then the step
            _split(B, 1, 2, &k0, &k1)
            has_h1 = k1 > k0
            for i in range(L - 1, -1, -1):
                n_out = net.sizes[i + 1]
                _split(net.sizes[i] * n_out, tid, nt, &k0, &k1)
                if k1 > k0:
                    j = net.off_w[i] + k0
                    if has_h1:
                        _add_into(grads + j, dp_grad + j, k1 - k0)
                    local_sumsq += update_range(params + j, grads + j, s1 + j, s2 + j,
                                                k1 - k0, True, False, &st)
                _split(n_out, tid, nt, &c0, &c1)
                if c1 > c0:
                    j = net.off_b[i] + c0
                    if has_h1:
                        _add_into(grads + j, dp_grad + j, c1 - c0)
                    update_range(params + j, grads + j, s1 + j, s2 + j, c1 - c0, False,
                                 False, &st)
        else:
            for i in range(L - 1, -1, -1):
                n_in = net.sizes[i]
                n_out = net.sizes[i + 1]
                D = _layer(net, acts, B, L) if i == L - 1 else _layer(net, deltas, B, i + 1)
                _split(n_in, tid, nt, &k0, &k1)
                _split(n_out, tid, nt, &c0, &c1)
                if i > 0:
                    if k1 > k0:
                        gemm_rm(True, False, <int> (k1 - k0), <int> n_out, <int> B,
                                <floating> 1.0, _layer(net, acts, B, i) + k0, <int> n_in, D,
                                <int> n_out, beta, grads + net.off_w[i] + k0 * n_out, <int> n_out)
                else:
                    first_layer_weight_grad(net, inp, A0, rows, start, B, D, beta,
                                            grads + net.off_w[0], k0, k1,
                                            E.touched if E.train else NULL)
                gb = grads + net.off_b[i]
                if c1 > c0:
                    _column_sums(D, B, n_out, c0, c1, beta, gb)
                if E.train:
                    if i == 0 and E.touched != NULL:
                        # sparse input: untouched gradient rows are zero, not stored
                        for r in range(k0, k1):
                            j = net.off_w[0] + r * n_out
                            local_sumsq += update_range(params + j, grads + j, s1 + j, s2 + j,
                                                        n_out, True, not E.touched[r], &st)
                            E.touched[r] = 0
                    elif k1 > k0:
                        j = net.off_w[i] + k0 * n_out
                        local_sumsq += update_range(params + j, grads + j, s1 + j, s2 + j,
                                                    (k1 - k0) * n_out, True, False, &st)
                    if c1 > c0:
                        update_range(params + net.off_b[i] + c0, gb + c0, s1 + net.off_b[i] + c0,
                                     s2 + net.off_b[i] + c0, c1 - c0, False, False, &st)
        if E.train:
            E.sumsq_part[batch % 2][tid] = local_sumsq
        fb_barrier_wait(bar)
        batch += 1
        start = stop
        if E.stop:
            break
    if tid == 0:
        E.n_batches = batch
        # the next segment's L2 term: this segment's last step
        if E.train and batch > first:
            E.sumsq0 = 0.0
            for t in range(nt):
                E.sumsq0 += E.sumsq_part[(batch - 1) % 2][t]


cdef void _epoch_init(Epoch *E, const Net *net, const Input *inp, const void *Y,
                      const void *sw, Py_ssize_t n, Py_ssize_t batch_size, void *params,
                      void *grads, double loss_scale, void *work) noexcept nogil:
    """The fields an epoch and a full-batch gradient share; the rest zero."""
    memset(E, 0, sizeof(Epoch))
    E.net = net
    E.inp = inp
    E.Y = Y
    E.sw = sw
    E.n = n
    E.batch_size = batch_size
    E.params = params
    E.grads = grads
    E.loss_scale = loss_scale
    E.work = work


cdef void _epoch_task_f(void *arg, int tid, int nt) noexcept nogil:
    _epoch_body(<Epoch *> arg, tid, nt, <float *> NULL)


cdef void _epoch_task_d(void *arg, int tid, int nt) noexcept nogil:
    _epoch_body(<Epoch *> arg, tid, nt, <double *> NULL)


cdef enum:
    EXPLORE_MIN = 16
    EXPLORE_MAX = 512

# Work per segment (multiply-adds) between two thread-count decisions.
cdef double SEGMENT_WORK = 1e8


cdef void _run_epoch(Epoch *E, TunerState *ts, int nmax, bint fixed,
                     bint is_float) noexcept nogil:
    """Run the epoch as a series of segments of whole batches; unless the
    thread count is fixed, each segment runs on 1 or ``nmax`` threads as the
    tuner decides, and its time per sample feeds the tuner back."""
    cdef Py_ssize_t per_batch = E.net.n_weights * E.batch_size, seg_batches, n = E.n
    cdef Py_ssize_t bs = E.batch_size
    cdef int nt, k
    cdef double rate
    cdef bint exploring, trial
    cdef Py_ssize_t nb
    if fixed or nmax <= 1:
        E.seg_start = 0
        E.seg_stop = n
        _run_segment(E, nmax, is_float)
        return
    seg_batches = <Py_ssize_t> (SEGMENT_WORK / per_batch) if per_batch > 0 else 1
    if seg_batches < 1:
        seg_batches = 1
    E.seg_start = 0
    while E.seg_start < n and not E.stop:
        # the faster choice, the other one now and then, each measured once first
        exploring = False
        trial = False
        if ts.n_measured[1] < 2:
            # several threads are measured twice first: the first segments
            # after the workers (or, on a virtual machine, an idle virtual
            # CPU) wake can run far below their speed
            k = 1
        elif ts.ns_per_row[0] == 0:
            k = 0
            trial = True
            ts.interval = EXPLORE_MIN
            ts.next_explore = ts.segments + EXPLORE_MIN
        else:
            k = 0 if ts.ns_per_row[0] < ts.ns_per_row[1] else 1
            if ts.segments >= ts.next_explore:
                k = 1 - k
                exploring = True
                trial = True
        # the warm-up runs one batch; a first measurement or a try of the
        # (probably) slower choice runs a quarter of a segment, so that short
        # fits settle early
        nb = (n - E.seg_start + bs - 1) // bs
        if nb > seg_batches:
            nb = seg_batches
        if ts.segments == 0:
            nb = 1
        elif trial or ts.ns_per_row[k] == 0:
            nb = nb // 4 if nb >= 4 else nb
        ts.segments += 1
        E.seg_stop = E.seg_start + nb * bs
        if E.seg_stop > n:
            E.seg_stop = n
        nt = nmax if k == 1 else 1
        E.batch0 = E.n_batches
        _run_segment(E, nt, is_float)
        rate = <double> (_now_ns() - E.t_start) / <double> (E.seg_stop - E.seg_start)
        if ts.segments == 1:
            # the first segment warms up (threads start, buffers fault in): not a
            # fair measure of either choice
            E.seg_start = E.seg_stop
            continue
        _tuner_record(ts, k, rate)
        if exploring:
            if ts.ns_per_row[k] < ts.ns_per_row[1 - k]:
                ts.interval = EXPLORE_MIN        # the load changed: it wins now
            elif ts.interval < EXPLORE_MAX:
                ts.interval *= 2
            ts.next_explore = ts.segments + ts.interval
        E.seg_start = E.seg_stop


cdef void _run_segment(Epoch *E, int n_threads, bint is_float) noexcept nogil:
    cdef fb_barrier bar
    fb_barrier_init(&bar, n_threads)
    E.barrier = &bar
    if is_float:
        fb_pool_run(_epoch_task_f, <void *> E, n_threads)
    else:
        fb_pool_run(_epoch_task_d, <void *> E, n_threads)
    fb_barrier_destroy(&bar)
