# The training epoch: named phases per batch, segments, and the thread tuner.
#
# Notes
# -----
# * ``train_epoch`` runs every mini-batch of an epoch (``loss_and_grad`` the
#   chunks of a full-batch gradient) in one GIL-free pool job per segment.
#   Every thread walks the same batches; each batch has two phases with a
#   barrier after each:
#   1. rows (``_rows_phase``): the thread's block of the batch's rows through
#      the network and back (gather, forward, loss and output delta, hidden
#      deltas). Rows are independent and ``W`` is only read.
#   2. parameters (``_parameters_phase``): the thread's rows of every ``W_i``
#      and columns of every ``b_i``: their gradient from all rows, then the
#      step. Each element is one product over the same operands whatever the
#      thread count, so the float64 weights do not depend on it.
#   In the data-parallel mode (``_data_parallel``, by shape) phase 1 takes
#   two fixed half-batches, each with its own gradient
#   (``_half_batch_gradient``), and phase 2 adds them and steps
#   (``_parameters_phase_dp``). Between the phases the last thread adds the
#   batch's loss (``_add_batch_loss``) and thread 0 checks for Ctrl-C.
# * ``Epoch`` = ``EpochConfig`` (what to run, set once) + ``Segment`` (the
#   batches of one pool job) + ``EpochTotals`` (carried across segments).
# * The epoch runs in segments of about SEGMENT_WORK multiply-adds; between
#   them the tuner picks one thread or the allowed maximum by measured speed
#   (a busy machine slows training down instead of collapsing it).
# * The workspace (one buffer, ``_train_ws_size``) is laid out by
#   ``_workspace``: per-row losses, gathered input rows, activations, hidden
#   deltas, the loss's scratch, the derivatives the forward pass keeps
#   (gelu, silu, mish, softplus) and the undropped outputs (dropout, the
#   other activations), the clipping norm's parts, the second half-batch's
#   gradient.
# * Training's hooks, each a named call: dropout after a hidden layer's
#   activation and on its deltas (``_dropout_forward``, ``_dropout_backward``,
#   _dropout.pxi), and clipping (``_clipped_parameters_phase``: the
#   gradient of every layer, its global norm summed in a fixed order, then
#   the steps).

cdef enum:
    EXPLORE_MIN = 16          # segments before the slower choice is tried again
    EXPLORE_MAX = 512         # ... at most, doubling while the tries lose

# Multiply-adds per segment (between two thread-count decisions).
cdef double SEGMENT_WORK = 1e8


# ---------------------------------------------------------------------------
# The thread tuner
# ---------------------------------------------------------------------------

cdef struct TunerState:
    double ns_per_row[2]      # estimated time per sample: [0] one thread, [1] n threads
    double last_rate[2]       # the latest measurement of each
    int n_measured[2]         # measurements of each so far (counted up to 2)
    long long segments        # segments run so far
    long long next_explore    # segment at which to try the slower choice again
    long long interval        # segments between tries (doubles while they lose)


cdef inline void _tuner_record(TunerState *tuner, int k, double rate) noexcept nogil:
    # Interference only ever slows a segment down, so the estimate is the
    # smaller of the last two measurements: one preempted segment does not count.
    cdef double prev = tuner.last_rate[k]
    tuner.last_rate[k] = rate
    tuner.ns_per_row[k] = rate if (prev == 0 or rate < prev) else prev
    if tuner.n_measured[k] < 2:
        tuner.n_measured[k] += 1


cdef int _tuner_choice(TunerState *tuner, bint *trial, bint *exploring) noexcept nogil:
    """The next segment's choice, 0 (one thread) or 1 (many): the faster,
    the other one now and then, each measured first (many threads twice:
    the first segments after the workers wake can run far below speed)."""
    cdef int k
    exploring[0] = False
    trial[0] = False
    if tuner.n_measured[1] < 2:
        k = 1
    elif tuner.ns_per_row[0] == 0:
        k = 0
        trial[0] = True
        tuner.interval = EXPLORE_MIN
        tuner.next_explore = tuner.segments + EXPLORE_MIN
    else:
        k = 0 if tuner.ns_per_row[0] < tuner.ns_per_row[1] else 1
        if tuner.segments >= tuner.next_explore:
            k = 1 - k
            exploring[0] = True
            trial[0] = True
    return k


cdef Py_ssize_t _segment_batches(const TunerState *tuner, int k, bint trial,
                                 Py_ssize_t batches_left, Py_ssize_t full) noexcept nogil:
    # the warm-up runs one batch; a first measurement or a trial a quarter of
    # a segment, so that short fits settle early
    cdef Py_ssize_t nb = batches_left if batches_left < full else full
    if tuner.segments == 0:
        return 1
    if trial or tuner.ns_per_row[k] == 0:
        return nb // 4 if nb >= 4 else nb
    return nb


cdef void _tuner_update(TunerState *tuner, int k, double rate, bint exploring) noexcept nogil:
    # a measured segment; a trial that wins resets the interval between trials
    _tuner_record(tuner, k, rate)
    if exploring:
        if tuner.ns_per_row[k] < tuner.ns_per_row[1 - k]:
            tuner.interval = EXPLORE_MIN
        elif tuner.interval < EXPLORE_MAX:
            tuner.interval *= 2
        tuner.next_explore = tuner.segments + tuner.interval


@cython.auto_pickle(False)
cdef class ThreadTuner:
    """Chooses, segment by segment, between one thread and the allowed
    maximum by measured time per sample (the smaller of the last two
    measurements of each, so that a single preempted segment does not
    count). The slower choice is tried again now and then so that a change
    of load (a process taking a core, then leaving) is noticed: after
    EXPLORE_MIN segments, and twice as long after each try that loses (up to
    EXPLORE_MAX)."""
    cdef TunerState state

    def __cinit__(self):
        memset(&self.state, 0, sizeof(TunerState))

    @property
    def ns_per_sample(self):
        """(one thread, many threads) in ns per sample; 0 = not measured yet."""
        return (self.state.ns_per_row[0], self.state.ns_per_row[1])

    @property
    def measured(self):
        """(one thread, many threads): measurements so far, counted up to 2."""
        return (self.state.n_measured[0], self.state.n_measured[1])

    def record(self, int threads, double ns_per_sample):
        """Feed one measurement (``threads``: 0 = one thread, 1 = many) to
        the estimate, as a training segment does. Test hook."""
        if threads not in (0, 1) or not ns_per_sample > 0:
            raise ValueError(f"threads must be 0 or 1 and ns_per_sample positive, got "
                             f"threads={threads}, ns_per_sample={ns_per_sample}")
        _tuner_record(&self.state, threads, ns_per_sample)


# ---------------------------------------------------------------------------
# The epoch's records and workspace
# ---------------------------------------------------------------------------

cdef struct EpochConfig:
    # what to run: set once by the entry point, only read by the threads
    const Net *net
    const Input *inp
    const void *Y
    const void *sw                # sample weights, or NULL
    const Py_ssize_t *order       # sample order, or NULL for X's own order
    Py_ssize_t n_samples
    Py_ssize_t batch_size
    void *params
    void *grads
    void *state1                  # optimizer state (SGD: velocity; Adam: moments)
    void *state2
    const OptimizerConfig *opt
    const LossConfig *loss        # the training loss (_losses.pxi)
    const DropoutConfig *dropout  # NULL: no dropout
    double alpha                  # L2 penalty
    double loss_scale             # factor on the data term of the reported loss
    void *work
    unsigned char *touched        # sparse first layer: gradient rows holding data
    bint gather                   # dense rows copied from X in the epoch's order
    bint train                    # a step per batch; else one full-batch gradient
    bint data_parallel            # see _data_parallel


cdef struct Segment:
    # the batches one pool job runs: rows [start, stop) of the epoch's order
    Py_ssize_t start
    Py_ssize_t stop
    long long first_batch         # index in the epoch of the segment's first batch
    fb_barrier *barrier
    long long t_start             # when every thread of the segment was running


cdef struct EpochTotals:
    # carried across the segments of the epoch
    double loss_sum
    double sumsq_start            # squared weights before the segment's first batch
    double sumsq_part[2][FB_MAX_THREADS]   # per batch parity, per thread
    long long n_batches           # batches run so far in the epoch
    int stop                      # a signal handler raised: stop after this batch


cdef struct Epoch:
    EpochConfig config
    Segment segment
    EpochTotals totals


cdef struct Workspace:
    # one thread's view of the shared workspace (see _train_ws_size)
    double *row_losses            # the batch's per-row losses
    void *inputs                  # gathered input rows, or NULL
    void *acts                    # activations of layers 1..L, B rows each
    void *deltas                  # deltas of layers 1..L-1 (the output's: in its activations)
    void *loss_scratch            # output_loss_delta's scratch: two blocks of B x n_outputs
    void *derivs                  # hidden layers' f'(z) (gelu, silu, mish, softplus), or NULL
    void *undropped               # hidden layers' outputs before dropout, or NULL
    double *norm_parts            # clipping: squared gradient per row of W_i, per b_i entry
    void *half_grad               # data-parallel mode: the second half-batch's gradient


cdef struct Batch:
    long long index               # in the epoch
    Py_ssize_t start              # position of its first row in the epoch's order
    Py_ssize_t stop
    Py_ssize_t n_rows
    const Py_ssize_t *rows        # its rows, or NULL: X's rows start..stop
    void *inputs                  # dense input rows (gathered or in X), or NULL for CSR
    bint accumulate               # add to the gradient (later chunks of a full-batch gradient)


cdef void _init_epoch(Epoch *epoch, const Net *net, const Input *inp, const void *Y,
                      const void *sw, Py_ssize_t n, Py_ssize_t batch_size, void *params,
                      void *grads, const LossConfig *loss, double loss_scale,
                      void *work) noexcept nogil:
    # the fields an epoch and a full-batch gradient share; the rest zero
    memset(epoch, 0, sizeof(Epoch))
    epoch.config.net = net
    epoch.config.loss = loss
    epoch.config.inp = inp
    epoch.config.Y = Y
    epoch.config.sw = sw
    epoch.config.n_samples = n
    epoch.config.batch_size = batch_size
    epoch.config.params = params
    epoch.config.grads = grads
    epoch.config.loss_scale = loss_scale
    epoch.config.work = work


cdef void _init_training(EpochConfig *cfg, const Py_ssize_t *order, void *state1, void *state2,
                         const OptimizerConfig *opt, double alpha, unsigned char *touched,
                         bint gather, bint data_parallel) noexcept nogil:
    # the fields only training sets: a step per batch
    cfg.order = order
    cfg.state1 = state1
    cfg.state2 = state2
    cfg.opt = opt
    cfg.alpha = alpha
    cfg.touched = touched
    cfg.gather = gather
    cfg.train = True
    cfg.data_parallel = data_parallel


cdef inline Py_ssize_t _hidden_units(const Net *net) noexcept nogil:
    # the widths of the hidden layers 1..L-1, summed
    cdef Py_ssize_t total = 0
    cdef int i
    for i in range(1, net.n_layers):
        total += net.sizes[i]
    return total


cdef inline Py_ssize_t _norm_part_count(const Net *net) noexcept nogil:
    # clipping's parts: one per row of each W_i and one per entry of each b_i
    cdef Py_ssize_t total = 0
    cdef int i
    for i in range(net.n_layers):
        total += net.sizes[i] + net.sizes[i + 1]
    return total


cdef inline Py_ssize_t _train_ws_size(const Net *net, Py_ssize_t B, bint gather,
                                      bint dropout, bint clip) noexcept nogil:
    # per-row losses (B doubles) + [clipping's parts (doubles)] + [gathered
    # input rows] + activations of layers 1..L + deltas of the hidden layers
    # 1..L-1 + two output scratch blocks [+ f'(z) of the hidden layers (gelu,
    # silu, mish, softplus)] [+ their undropped outputs (dropout, the others)]
    # [+ the second half-batch's gradient, in the data-parallel mode]
    cdef Py_ssize_t total = 2 * B + 2 * B * net.sizes[net.n_layers]
    cdef int i
    if gather:
        total += B * net.sizes[0]
    for i in range(1, net.n_layers + 1):
        total += B * net.sizes[i]
    total += B * _hidden_units(net)
    if _keeps_derivative(net.hidden_act):
        total += B * _hidden_units(net)
    if dropout and not _keeps_derivative(net.hidden_act):
        total += B * _hidden_units(net)
    if clip:
        total += 2 * _norm_part_count(net)
    if _data_parallel(net, B):
        total += net.n_params
    return total


cdef inline void _workspace(Workspace *ws, const EpochConfig *cfg, floating *work) noexcept nogil:
    # the pieces of ``work`` in the order _train_ws_size counts them
    cdef const Net *net = cfg.net
    cdef Py_ssize_t bs = cfg.batch_size
    cdef floating *p = work + 2 * bs
    cdef int i
    ws.row_losses = <double *> work
    ws.norm_parts = NULL
    if cfg.train and cfg.opt.max_grad_norm > 0:
        ws.norm_parts = <double *> p      # after B doubles: aligned for doubles
        p += 2 * _norm_part_count(net)
    ws.inputs = NULL
    if cfg.inp.csr_data == NULL and cfg.gather:
        ws.inputs = p
        p += bs * net.sizes[0]
    ws.acts = p
    for i in range(1, net.n_layers + 1):
        p += bs * net.sizes[i]
    ws.deltas = p
    p += bs * _hidden_units(net)
    ws.loss_scratch = p
    p += 2 * bs * net.sizes[net.n_layers]
    ws.derivs = NULL
    if _keeps_derivative(net.hidden_act):
        ws.derivs = p
        p += bs * _hidden_units(net)
    ws.undropped = NULL
    if cfg.dropout != NULL and not _keeps_derivative(net.hidden_act):
        ws.undropped = p
        p += bs * _hidden_units(net)
    ws.half_grad = p


cdef inline floating *_output_delta(const Net *net, const Workspace *ws, Py_ssize_t B, int i,
                                    floating *tag) noexcept nogil:
    # the delta at the output of layer i (W_i's gradient is A_i^T times it)
    if i == net.n_layers - 1:
        return _layer(net, <floating *> ws.acts, B, net.n_layers)
    return _layer(net, <floating *> ws.deltas, B, i + 1)


cdef inline void _next_batch(Batch *batch, const EpochConfig *cfg, const Workspace *ws,
                             floating *X) noexcept nogil:
    # the batch at batch.start
    batch.stop = batch.start + cfg.batch_size
    if batch.stop > cfg.n_samples:
        batch.stop = cfg.n_samples
    batch.n_rows = batch.stop - batch.start
    batch.rows = cfg.order + batch.start if cfg.order != NULL else NULL
    batch.accumulate = not cfg.train and batch.start != 0
    if cfg.inp.csr_data != NULL:
        batch.inputs = NULL
    elif cfg.gather:
        batch.inputs = ws.inputs
    else:
        batch.inputs = X + batch.start * cfg.net.sizes[0]


# ---------------------------------------------------------------------------
# Phase 1: a block of the batch's rows, forward and back
# ---------------------------------------------------------------------------

cdef inline void _gather_rows(const EpochConfig *cfg, const Batch *batch, Py_ssize_t r0,
                              Py_ssize_t r1, floating *A0) noexcept nogil:
    # rows r0:r1 of the batch copied from X in the epoch's order
    cdef Py_ssize_t nf = cfg.net.sizes[0], r, j
    cdef const floating *X = <const floating *> cfg.inp.dense
    if nf < 16:
        # few features: a plain loop beats a memcpy call per row
        for r in range(r0, r1):
            for j in range(nf):
                A0[r * nf + j] = X[batch.rows[r] * nf + j]
    else:
        for r in range(r0, r1):
            memcpy(A0 + r * nf, X + batch.rows[r] * nf, nf * sizeof(floating))


cdef inline floating *_hidden_part(void *region, const Net *net, Py_ssize_t B, int layer,
                                   Py_ssize_t r0, floating *tag) noexcept nogil:
    # rows r0.. of hidden layer ``layer`` (1..L-1) in a region laid out like the
    # activations (kept derivatives, undropped outputs), or NULL without the
    # region; ``tag`` only gives the element type
    if region == NULL:
        return NULL
    return _layer(net, <floating *> region, B, layer) + r0 * net.sizes[layer]


cdef inline double _dropout_rate(const EpochConfig *cfg, int layer) noexcept nogil:
    # the dropout rate of hidden layer ``layer`` (1..L-1) in this pass; 0 without
    if cfg.dropout == NULL or cfg.dropout.rates == NULL:
        return 0.0
    return cfg.dropout.rates[layer - 1]


cdef inline uint64_t _dropout_key(const EpochConfig *cfg, const Batch *batch,
                                  int layer) noexcept nogil:
    # the mask's key: the batch's optimizer step (or the test hook's fixed one)
    cdef long long step = cfg.dropout.fixed_step
    if step <= 0:
        step = cfg.opt.t + batch.index + 1
    return dropout_layer_key(cfg.dropout.seed, step, layer)


cdef inline void _dropout_forward(const EpochConfig *cfg, const Workspace *ws,
                                  const Batch *batch, int layer, Py_ssize_t r0, Py_ssize_t r1,
                                  floating *A) noexcept nogil:
    # dropout on rows r0:r1 of hidden layer ``layer``'s outputs A, the
    # undropped ones kept for the derivative (unless the layer kept f'(z))
    cdef double rate = _dropout_rate(cfg, layer)
    if rate > 0:
        dropout_forward(A, _hidden_part(ws.undropped, cfg.net, batch.n_rows, layer, r0, A),
                        r1 - r0, cfg.net.sizes[layer], batch.start + r0,
                        _dropout_key(cfg, batch, layer), rate)


cdef inline void _dropout_backward(const EpochConfig *cfg, const Batch *batch, int layer,
                                   Py_ssize_t r0, Py_ssize_t r1, floating *D) noexcept nogil:
    # the same mask on rows r0:r1 of hidden layer ``layer``'s deltas D
    cdef double rate = _dropout_rate(cfg, layer)
    if rate > 0:
        dropout_backward(D, r1 - r0, cfg.net.sizes[layer], batch.start + r0,
                         _dropout_key(cfg, batch, layer), rate)


cdef inline void _forward_block(const EpochConfig *cfg, const Workspace *ws,
                                const Batch *batch, Py_ssize_t r0, Py_ssize_t r1,
                                const floating *params) noexcept nogil:
    # activations of every layer for rows r0:r1 (the output's without bias and activation)
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, nf = net.sizes[0], n_in, n_out
    cdef floating *acts = <floating *> ws.acts
    cdef floating *A0 = <floating *> batch.inputs
    cdef floating *A_i
    cdef int i
    for i in range(net.n_layers):
        n_in = net.sizes[i]
        n_out = net.sizes[i + 1]
        A_i = _layer(net, acts, B, i + 1) + r0 * n_out
        if i == 0:
            first_layer_product(net, cfg.inp, params, A0 + r0 * nf if A0 != NULL else NULL,
                                batch.rows + r0 if batch.rows != NULL else NULL,
                                batch.start + r0, r1 - r0, A_i, 0, n_out)
        else:
            gemm_rm(False, False, <int> (r1 - r0), <int> n_out, <int> n_in,
                    <floating> 1.0, _layer(net, acts, B, i) + r0 * n_in, <int> n_in,
                    params + net.off_w[i], <int> n_out, <floating> 0.0, A_i, <int> n_out)
        if i < net.n_layers - 1:
            hidden_activation(A_i, _hidden_part(ws.derivs, net, B, i + 1, r0, A_i), r1 - r0, n_out,
                              params + net.off_b[i], net.hidden_act)
            _dropout_forward(cfg, ws, batch, i + 1, r0, r1, A_i)


cdef inline void _backward_block(const EpochConfig *cfg, const Workspace *ws,
                                 const Batch *batch, Py_ssize_t r0, Py_ssize_t r1,
                                 const floating *params) noexcept nogil:
    # deltas of the hidden layers for rows r0:r1, last to first:
    # delta_i = (delta_{i+1} W_i^T) * act'(z_i) [* the dropout mask and scale]
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, n_in, n_out
    cdef floating *acts = <floating *> ws.acts
    cdef floating *deltas = <floating *> ws.deltas
    cdef floating *D = _layer(net, acts, B, net.n_layers)
    cdef floating *outputs
    cdef int i
    for i in range(net.n_layers - 1, 0, -1):
        n_in = net.sizes[i]
        n_out = net.sizes[i + 1]
        gemm_rm(False, True, <int> (r1 - r0), <int> n_in, <int> n_out,
                <floating> 1.0, D + r0 * n_out, <int> n_out, params + net.off_w[i],
                <int> n_out, <floating> 0.0, _layer(net, deltas, B, i) + r0 * n_in, <int> n_in)
        # the layer's outputs before dropout, from which its derivative is taken
        outputs = _layer(net, acts, B, i) + r0 * n_in
        if _dropout_rate(cfg, i) > 0 and ws.undropped != NULL:
            outputs = _hidden_part(ws.undropped, net, B, i, r0, acts)
        activation_derivative(_layer(net, deltas, B, i) + r0 * n_in, outputs,
                              _hidden_part(ws.derivs, net, B, i, r0, acts), r1 - r0, n_in, n_in,
                              net.hidden_act)
        _dropout_backward(cfg, batch, i, r0, r1, _layer(net, deltas, B, i) + r0 * n_in)
        D = _layer(net, deltas, B, i)


cdef inline void _rows_phase(const EpochConfig *cfg, const Workspace *ws, const Batch *batch,
                             Py_ssize_t r0, Py_ssize_t r1, const floating *params) noexcept nogil:
    """Rows ``r0:r1`` of the batch through the network and back: gathered,
    forward, loss and output delta (in place of the output activations), the
    hidden layers' deltas."""
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, n_out = net.sizes[net.n_layers]
    cdef floating *scratch = <floating *> ws.loss_scratch
    if cfg.inp.csr_data == NULL and cfg.gather:
        _gather_rows(cfg, batch, r0, r1, <floating *> batch.inputs)
    _forward_block(cfg, ws, batch, r0, r1, params)
    output_loss_delta(_layer(net, <floating *> ws.acts, B, net.n_layers) + r0 * n_out,
                      r1 - r0, n_out, params + net.off_b[net.n_layers - 1],
                      <const floating *> cfg.Y,
                      batch.rows + r0 if batch.rows != NULL else NULL, batch.start + r0,
                      <const floating *> cfg.sw, cfg.loss, ws.row_losses + r0,
                      scratch + r0 * n_out, scratch + (B + r0) * n_out)
    _backward_block(cfg, ws, batch, r0, r1, params)


cdef inline void _half_batch_gradient(const EpochConfig *cfg, const Workspace *ws,
                                      const Batch *batch, Py_ssize_t r0, Py_ssize_t r1,
                                      floating *G) noexcept nogil:
    # data-parallel mode: the gradient of rows r0:r1 (one half of the batch) into G
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, nf = net.sizes[0], n_in, n_out
    cdef floating *D
    cdef int i
    for i in range(net.n_layers - 1, -1, -1):
        n_in = net.sizes[i]
        n_out = net.sizes[i + 1]
        D = _output_delta(net, ws, B, i, G)
        if i > 0:
            gemm_rm(True, False, <int> n_in, <int> n_out, <int> (r1 - r0), <floating> 1.0,
                    _layer(net, <floating *> ws.acts, B, i) + r0 * n_in, <int> n_in,
                    D + r0 * n_out, <int> n_out, <floating> 0.0, G + net.off_w[i], <int> n_out)
        else:
            first_layer_weight_grad(net, cfg.inp, <floating *> batch.inputs + r0 * nf, NULL, 0,
                                    r1 - r0, D + r0 * n_out, <floating> 0.0, G + net.off_w[0],
                                    0, nf, NULL)
        _column_sums(D + r0 * n_out, r1 - r0, n_out, 0, n_out, <floating> 0.0, G + net.off_b[i])


# ---------------------------------------------------------------------------
# Between the phases: the step's constants, the batch's loss
# ---------------------------------------------------------------------------

cdef inline double _batch_weight(const EpochConfig *cfg, const Batch *batch,
                                 const floating *sw) noexcept nogil:
    # the batch's sample-weight sum (its row count without weights)
    cdef double sw_sum = 0.0
    cdef Py_ssize_t r
    if sw == NULL:
        return <double> batch.n_rows
    for r in range(batch.n_rows):
        sw_sum += sw[batch.rows[r] if batch.rows != NULL else batch.start + r]
    return sw_sum


cdef inline double _sumsq_of_batch(const EpochTotals *totals, long long index,
                                   int nt) noexcept nogil:
    # the squared weights after batch ``index``'s step, summed over the threads in order
    cdef double s = 0.0
    cdef int t
    for t in range(nt):
        s += totals.sumsq_part[index % 2][t]
    return s


cdef inline void _add_batch_loss(Epoch *epoch, const Workspace *ws, const Batch *batch,
                                 double sw_sum, int nt) noexcept nogil:
    """Add the batch's loss to the epoch's, summed in one order whatever the
    thread count: training, scikit-learn's ``batch_loss * batch_len`` with the
    L2 term of the weights the batch was computed with; else the data term."""
    cdef const EpochConfig *cfg = &epoch.config
    cdef double data_sum = _pairwise_sum(ws.row_losses, batch.n_rows) * cfg.loss_scale
    cdef double sumsq_prev
    if not cfg.train:
        epoch.totals.loss_sum += data_sum
        return
    if batch.index == epoch.segment.first_batch:
        sumsq_prev = epoch.totals.sumsq_start
    else:
        sumsq_prev = _sumsq_of_batch(&epoch.totals, batch.index - 1, nt)
    epoch.totals.loss_sum += (data_sum / sw_sum + 0.5 * cfg.alpha * sumsq_prev / sw_sum
                              ) * batch.n_rows


# ---------------------------------------------------------------------------
# Phase 2: this thread's share of the parameters, gradient and step
# ---------------------------------------------------------------------------

cdef inline void _layer_gradient(const EpochConfig *cfg, const Workspace *ws, const Batch *batch,
                                 int i, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t c0,
                                 Py_ssize_t c1, floating *grads) noexcept nogil:
    # the gradient of rows k0:k1 of W_i and columns c0:c1 of b_i, from every row
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, n_in = net.sizes[i], n_out = net.sizes[i + 1]
    cdef floating beta = 1 if batch.accumulate else 0
    cdef floating *D = _output_delta(net, ws, B, i, grads)
    if i > 0:
        if k1 > k0:
            gemm_rm(True, False, <int> (k1 - k0), <int> n_out, <int> B, <floating> 1.0,
                    _layer(net, <floating *> ws.acts, B, i) + k0, <int> n_in, D, <int> n_out,
                    beta, grads + net.off_w[i] + k0 * n_out, <int> n_out)
    else:
        first_layer_weight_grad(net, cfg.inp, <floating *> batch.inputs, batch.rows, batch.start,
                                B, D, beta, grads + net.off_w[0], k0, k1,
                                cfg.touched if cfg.train else NULL)
    if c1 > c0:
        _column_sums(D, B, n_out, c0, c1, beta, grads + net.off_b[i])


cdef inline void _layer_step(const EpochConfig *cfg, int i, Py_ssize_t k0, Py_ssize_t k1,
                             Py_ssize_t c0, Py_ssize_t c1, const Step *step, floating *params,
                             double *sumsq) noexcept nogil:
    # the step of rows k0:k1 of W_i and columns c0:c1 of b_i; their squares into sumsq
    cdef Py_ssize_t n_out = cfg.net.sizes[i + 1], r, j
    cdef floating *grads = <floating *> cfg.grads
    cdef floating *state1 = <floating *> cfg.state1
    cdef floating *state2 = <floating *> cfg.state2
    if i == 0 and cfg.touched != NULL:
        # sparse input: untouched gradient rows are zero, not stored
        for r in range(k0, k1):
            j = cfg.net.off_w[0] + r * n_out
            sumsq[0] += update_range(params + j, grads + j, state1 + j, state2 + j, n_out,
                                     True, not cfg.touched[r], step)
            cfg.touched[r] = 0
    elif k1 > k0:
        j = cfg.net.off_w[i] + k0 * n_out
        sumsq[0] += update_range(params + j, grads + j, state1 + j, state2 + j,
                                 (k1 - k0) * n_out, True, False, step)
    if c1 > c0:
        j = cfg.net.off_b[i] + c0
        update_range(params + j, grads + j, state1 + j, state2 + j, c1 - c0, False, False, step)


cdef inline double _parameters_phase(const EpochConfig *cfg, const Workspace *ws,
                                     const Batch *batch, const Step *step, int tid, int nt,
                                     floating *params) noexcept nogil:
    """Thread ``tid``'s rows of every ``W_i`` and columns of every ``b_i``:
    their gradient from every row of the batch, then (training) their step.
    Returns the sum of the squares of its weights after the step."""
    cdef const Net *net = cfg.net
    cdef Py_ssize_t k0, k1, c0, c1
    cdef double sumsq = 0.0
    cdef int i
    for i in range(net.n_layers - 1, -1, -1):
        _split(net.sizes[i], tid, nt, &k0, &k1)
        _split(net.sizes[i + 1], tid, nt, &c0, &c1)
        _layer_gradient(cfg, ws, batch, i, k0, k1, c0, c1, <floating *> cfg.grads)
        if cfg.train:
            _layer_step(cfg, i, k0, k1, c0, c1, step, params, &sumsq)
    return sumsq


cdef inline double _parameters_phase_dp(const EpochConfig *cfg, const Workspace *ws,
                                        const Batch *batch, const Step *step, int tid, int nt,
                                        floating *params) noexcept nogil:
    """Data-parallel mode: the batch gradient is the first half's plus the
    second's (added in this order whatever the thread count), then the step,
    each thread over its share of every ``W_i`` and ``b_i``. Returns the sum
    of the squares of its weights after the step."""
    cdef const Net *net = cfg.net
    cdef floating *grads = <floating *> cfg.grads
    cdef floating *half = <floating *> ws.half_grad
    cdef floating *state1 = <floating *> cfg.state1
    cdef floating *state2 = <floating *> cfg.state2
    cdef Py_ssize_t k0, k1, j
    cdef double sumsq = 0.0
    cdef bint has_second_half
    cdef int i
    _split(batch.n_rows, 1, 2, &k0, &k1)
    has_second_half = k1 > k0
    for i in range(net.n_layers - 1, -1, -1):
        _split(net.sizes[i] * net.sizes[i + 1], tid, nt, &k0, &k1)
        if k1 > k0:
            j = net.off_w[i] + k0
            if has_second_half:
                _add_into(grads + j, half + j, k1 - k0)
            sumsq += update_range(params + j, grads + j, state1 + j, state2 + j, k1 - k0,
                                  True, False, step)
        _split(net.sizes[i + 1], tid, nt, &k0, &k1)
        if k1 > k0:
            j = net.off_b[i] + k0
            if has_second_half:
                _add_into(grads + j, half + j, k1 - k0)
            update_range(params + j, grads + j, state1 + j, state2 + j, k1 - k0, False,
                         False, step)
    return sumsq


cdef inline double _sum_of_squares(const floating *G, const floating *W, Py_ssize_t n,
                                   floating alpha, bint zero_grad) noexcept nogil:
    # sum of (G + alpha W)^2 (G read as zero with zero_grad), in eight lanes
    # written out (as update_range's sum), so that it vectorises
    cdef double q0 = 0, q1 = 0, q2 = 0, q3 = 0, q4 = 0, q5 = 0, q6 = 0, q7 = 0
    cdef double v0, v1, v2, v3, v4, v5, v6, v7
    cdef Py_ssize_t j = 0
    if zero_grad:  # rows of the sparse first layer no sample touched: (alpha W)^2
        while j < n:
            v0 = alpha * W[j]
            q0 += v0 * v0
            j += 1
        return q0
    while j + 8 <= n:
        v0 = G[j] + alpha * W[j]
        v1 = G[j + 1] + alpha * W[j + 1]
        v2 = G[j + 2] + alpha * W[j + 2]
        v3 = G[j + 3] + alpha * W[j + 3]
        v4 = G[j + 4] + alpha * W[j + 4]
        v5 = G[j + 5] + alpha * W[j + 5]
        v6 = G[j + 6] + alpha * W[j + 6]
        v7 = G[j + 7] + alpha * W[j + 7]
        q0 += v0 * v0
        q1 += v1 * v1
        q2 += v2 * v2
        q3 += v3 * v3
        q4 += v4 * v4
        q5 += v5 * v5
        q6 += v6 * v6
        q7 += v7 * v7
        j += 8
    while j < n:
        v0 = G[j] + alpha * W[j]
        q0 += v0 * v0
        j += 1
    return ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))


cdef inline void _gradient_norm_parts(const EpochConfig *cfg, const Workspace *ws, int i,
                                      Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t c0,
                                      Py_ssize_t c1, const floating *params) noexcept nogil:
    # the squared gradient of rows k0:k1 of W_i (one part per row) and of
    # entries c0:c1 of b_i (one per entry), before the division by sw_sum
    cdef const Net *net = cfg.net
    cdef const floating *grads = <const floating *> cfg.grads
    cdef Py_ssize_t n_out = net.sizes[i + 1], part = 0, r, j
    cdef floating alpha = <floating> cfg.alpha
    cdef floating g
    cdef int k
    for k in range(i):
        part += net.sizes[k] + net.sizes[k + 1]
    for r in range(k0, k1):
        j = net.off_w[i] + r * n_out
        ws.norm_parts[part + r] = _sum_of_squares(
            grads + j, params + j, n_out, alpha,
            i == 0 and cfg.touched != NULL and not cfg.touched[r])
    part += net.sizes[i]
    for r in range(c0, c1):
        g = grads[net.off_b[i] + r]
        ws.norm_parts[part + r] = (<double> g) * g


cdef inline double _clip_factor(const EpochConfig *cfg, const Workspace *ws,
                                double sw_sum) noexcept nogil:
    # max_grad_norm / the gradient's global norm (PyTorch's clip_grad_norm_,
    # 1e-6 added to the norm), at most 1; the parts summed in one order
    cdef Py_ssize_t j, n = _norm_part_count(cfg.net)
    cdef double total = 0.0, factor
    for j in range(n):
        total += ws.norm_parts[j]
    factor = cfg.opt.max_grad_norm / (sqrt(total) / sw_sum + 1e-6)
    return factor if factor < 1.0 else 1.0


cdef double _clipped_parameters_phase(Epoch *epoch, const Workspace *ws,
                                      const Batch *batch, Step *step, int tid, int nt,
                                      floating *params) noexcept nogil:
    """Clipping (``max_grad_norm``): this thread's rows of every ``W_i`` and
    entries of every ``b_i`` take their gradient (data-parallel: the halves
    added) and its squares per row and entry (``_gradient_norm_parts``);
    after a barrier every thread sums all the parts in the same order (the
    norm does not depend on the thread count) and scales the step's
    gradient (``Step.clip``); then the steps. Returns the sum of the squares
    of its weights after the step."""
    cdef const EpochConfig *cfg = &epoch.config
    cdef const Net *net = cfg.net
    cdef floating *grads = <floating *> cfg.grads
    cdef floating *half = <floating *> ws.half_grad
    cdef Py_ssize_t k0, k1, c0, c1, n_out
    cdef double sumsq = 0.0
    cdef bint has_second_half = False
    cdef int i
    if cfg.data_parallel:
        _split(batch.n_rows, 1, 2, &k0, &k1)
        has_second_half = k1 > k0
    for i in range(net.n_layers - 1, -1, -1):
        n_out = net.sizes[i + 1]
        _split(net.sizes[i], tid, nt, &k0, &k1)
        _split(n_out, tid, nt, &c0, &c1)
        if not cfg.data_parallel:
            _layer_gradient(cfg, ws, batch, i, k0, k1, c0, c1, grads)
        elif has_second_half:
            _add_into(grads + net.off_w[i] + k0 * n_out, half + net.off_w[i] + k0 * n_out,
                      (k1 - k0) * n_out)
            _add_into(grads + net.off_b[i] + c0, half + net.off_b[i] + c0, c1 - c0)
        _gradient_norm_parts(cfg, ws, i, k0, k1, c0, c1, params)
    fb_barrier_wait(epoch.segment.barrier)
    step.clip = _clip_factor(cfg, ws, step.sw_sum)
    for i in range(net.n_layers - 1, -1, -1):
        _split(net.sizes[i], tid, nt, &k0, &k1)
        _split(net.sizes[i + 1], tid, nt, &c0, &c1)
        _layer_step(cfg, i, k0, k1, c0, c1, step, params, &sumsq)
    return sumsq


# ---------------------------------------------------------------------------
# One thread's part of a segment, and the segments of an epoch
# ---------------------------------------------------------------------------

cdef inline void _halves(bint data_parallel, int tid, int nt, int *lo, int *hi) noexcept nogil:
    # the parts of each batch this thread takes in phase 1: its share of the
    # rows (one part), or in the data-parallel mode the fixed halves 0 and 1
    # (threads 0 and 1, or one thread taking both in turn)
    if not data_parallel:
        lo[0] = 0
        hi[0] = 1
    elif nt == 1:
        lo[0] = 0
        hi[0] = 2
    else:
        lo[0] = tid if tid < 2 else 0
        hi[0] = tid + 1 if tid < 2 else 0


cdef void _epoch_body(Epoch *epoch, int tid, int nt, floating *params) noexcept nogil:
    """Thread ``tid``'s part of the segment's batches (see the Notes above)."""
    cdef const EpochConfig *cfg = &epoch.config
    cdef Segment *seg = &epoch.segment
    cdef Workspace ws
    cdef Batch batch
    cdef Step step
    cdef Py_ssize_t r0, r1
    cdef double sw_sum = 0.0, sumsq
    cdef long long last_check = fb_now_ns()
    # the clock is read for the Ctrl-C check every ~1e5 multiply-adds of work
    cdef long long check_every = 100000 // (cfg.net.n_weights * cfg.batch_size) + 1
    cdef int h, h_lo, h_hi
    # the segment's time starts once every thread runs (waking a parked
    # worker is not a cost of running on several threads)
    if nt > 1:
        fb_barrier_wait(seg.barrier)
    if tid == 0:
        seg.t_start = fb_now_ns()
    _workspace(&ws, cfg, <floating *> cfg.work)
    _halves(cfg.data_parallel, tid, nt, &h_lo, &h_hi)
    batch.index = seg.first_batch
    batch.start = seg.start
    while batch.start < seg.stop:
        _next_batch(&batch, cfg, &ws, <floating *> cfg.inp.dense)
        for h in range(h_lo, h_hi):
            _split(batch.n_rows, h if cfg.data_parallel else tid, 2 if cfg.data_parallel else nt,
                   &r0, &r1)
            if r1 > r0:
                _rows_phase(cfg, &ws, &batch, r0, r1, params)
                if cfg.data_parallel:
                    _half_batch_gradient(cfg, &ws, &batch, r0, r1, <floating *> (
                        cfg.grads if h == 0 else ws.half_grad))
        if cfg.train:
            sw_sum = _batch_weight(cfg, &batch, <const floating *> cfg.sw)
            _make_step(&step, cfg.opt, cfg.opt.t + batch.index + 1, cfg.alpha, sw_sum)
        fb_barrier_wait(seg.barrier)
        if (tid == 0 and batch.stop < cfg.n_samples
                and (batch.index - seg.first_batch) % check_every == 0
                and _check_signals(&last_check)):
            epoch.totals.stop = 1
        if tid == nt - 1:       # thread 0 checks for Ctrl-C meanwhile
            _add_batch_loss(epoch, &ws, &batch, sw_sum, nt)
        if cfg.train and cfg.opt.max_grad_norm > 0:
            sumsq = _clipped_parameters_phase(epoch, &ws, &batch, &step, tid, nt, params)
        elif cfg.data_parallel:
            sumsq = _parameters_phase_dp(cfg, &ws, &batch, &step, tid, nt, params)
        else:
            sumsq = _parameters_phase(cfg, &ws, &batch, &step, tid, nt, params)
        if cfg.train:
            epoch.totals.sumsq_part[batch.index % 2][tid] = sumsq
        fb_barrier_wait(seg.barrier)
        batch.index += 1
        batch.start = batch.stop
        if epoch.totals.stop:
            break
    if tid == 0:
        epoch.totals.n_batches = batch.index
        # the next segment's L2 term: this segment's last step
        if cfg.train and batch.index > seg.first_batch:
            epoch.totals.sumsq_start = _sumsq_of_batch(&epoch.totals, batch.index - 1, nt)


cdef void _epoch_task_f(void *arg, int tid, int nt) noexcept nogil:
    cdef Epoch *epoch = <Epoch *> arg
    _epoch_body(epoch, tid, nt, <float *> epoch.config.params)


cdef void _epoch_task_d(void *arg, int tid, int nt) noexcept nogil:
    cdef Epoch *epoch = <Epoch *> arg
    _epoch_body(epoch, tid, nt, <double *> epoch.config.params)


cdef void _run_segment(Epoch *epoch, int n_threads, bint is_float) noexcept nogil:
    # the segment's batches as one pool job on n_threads
    cdef fb_barrier barrier
    fb_barrier_init(&barrier, n_threads)
    epoch.segment.barrier = &barrier
    if is_float:
        fb_pool_run(_epoch_task_f, <void *> epoch, n_threads)
    else:
        fb_pool_run(_epoch_task_d, <void *> epoch, n_threads)
    fb_barrier_destroy(&barrier)


cdef void _run_epoch(Epoch *epoch, TunerState *tuner, int max_threads, bint fixed,
                     bint is_float) noexcept nogil:
    """Run the epoch as a series of segments of whole batches; unless the
    thread count is fixed, each segment runs on 1 or ``max_threads`` threads
    as the tuner decides, and its time per sample feeds the tuner back (the
    first segment warms up: threads start, buffers fault in; it is not
    measured)."""
    cdef const EpochConfig *cfg = &epoch.config
    cdef Segment *seg = &epoch.segment
    cdef Py_ssize_t n = cfg.n_samples, bs = cfg.batch_size
    cdef Py_ssize_t per_batch = cfg.net.n_weights * bs, full, nb
    cdef bint trial, exploring
    cdef int k
    cdef double rate
    seg.start = 0
    if fixed or max_threads <= 1:
        seg.stop = n
        _run_segment(epoch, max_threads, is_float)
        return
    full = <Py_ssize_t> (SEGMENT_WORK / per_batch) if per_batch > 0 else 1
    if full < 1:
        full = 1
    while seg.start < n and not epoch.totals.stop:
        k = _tuner_choice(tuner, &trial, &exploring)
        nb = _segment_batches(tuner, k, trial, (n - seg.start + bs - 1) // bs, full)
        tuner.segments += 1
        seg.stop = seg.start + nb * bs
        if seg.stop > n:
            seg.stop = n
        seg.first_batch = epoch.totals.n_batches
        _run_segment(epoch, max_threads if k == 1 else 1, is_float)
        rate = <double> (fb_now_ns() - seg.t_start) / <double> (seg.stop - seg.start)
        if tuner.segments > 1:
            _tuner_update(tuner, k, rate, exploring)
        seg.start = seg.stop
