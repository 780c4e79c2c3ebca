# The training epoch: named phases per batch, segments, and the thread tuner.
#
# Notes
# -----
# * ``train_epoch`` runs every mini-batch of an epoch (``loss_and_grad`` the
#   chunks of a full-batch gradient) in one GIL-free pool job per segment.
#   Every thread walks the same batches; each batch has two phases with a
#   barrier after each:
#   1. rows (``_rows_phase``): the thread's blocks of the batch's rows
#      (``_row_blocks``) through the network and back (gather, forward, loss
#      and output delta, hidden deltas). Rows are independent and ``W`` is
#      only read.
#   2. parameters (``_parameters_phase``): the thread's run of consecutive
#      blocks of rows of each ``W_i`` (``_weight_blocks``, ``_weight_run``)
#      and its columns of every ``b_i``: their gradient from all rows, then
#      the step.
#   The blocks are fixed by the shapes (_parallel.pxi) and each gives the
#   same bits whichever thread runs it (alone, or in one product with its
#   run where a probe showed that this gives the blocks' bits:
#   _block_merge.pxi), so the weights (float32 and float64) do not depend
#   on the thread count.
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
#   gradient of every weight block, the global norm summed in a fixed order,
#   then the steps).
# * Phase timers (``set_profiling``, ``phase_times``): ``_tick`` gives the
#   time since a thread's last tick to a phase; ``_epoch_body`` is compiled
#   with and without them, so that they cost nothing when off.

cdef enum:
    GATHER_AHEAD = 8          # rows _gather_rows asks the cache for ahead
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
# Phase timers (diagnosis: set_profiling, phase_times)
# ---------------------------------------------------------------------------

cdef enum:
    # what a thread spends its time on, per batch (PHASE_NAMES in this order)
    PH_WAKE = 0               # a segment's start and end: the pool's threads woken, joined
    PH_GATHER                 # input rows copied in the epoch's order
    PH_FORWARD_GEMM           # forward products (the first layer's CSR loops included)
    PH_ACTIVATION             # bias + activation passes
    PH_LOSS                   # output activation, loss and output delta
    PH_BACKWARD_GEMM          # hidden deltas' products
    PH_DERIVATIVE             # activation derivatives
    PH_GRADIENT_GEMM          # weight-gradient products
    PH_BIAS_GRADIENT          # column sums
    PH_OPTIMIZER              # the step (with the squared weights; in the data-parallel
                              # mode, the halves' gradients added as it reads them)
    PH_BARRIER                # waiting at the batch's two barriers
    PH_BOOKKEEPING            # batch setup, step constants, loss sum, Ctrl-C checks
    N_PHASES

PHASE_NAMES = ("pool", "gather", "forward gemm", "activation", "loss", "backward gemm",
               "derivative", "gradient gemm", "bias gradient", "optimizer",
               "barrier wait", "bookkeeping")


cdef struct PhaseClock:
    # one thread's time per phase; ``last`` is when its previous phase ended
    long long last
    long long ns[N_PHASES]


cdef inline void _tick(PhaseClock *clock, int phase) noexcept nogil:
    # the time since the last tick goes to ``phase`` (nothing without a clock)
    cdef long long now
    if clock != NULL:
        now = fb_now_ns()
        clock.ns[phase] += now - clock.last
        clock.last = now


cdef inline void _clocks_start_segment(PhaseClock *clocks, int n_threads) noexcept nogil:
    # the calling thread's time since its last tick (the tuner, between
    # segments) is bookkeeping; every clock runs from now
    cdef long long now = fb_now_ns()
    cdef int t
    if clocks == NULL:
        return
    if clocks[0].last != 0:
        clocks[0].ns[PH_BOOKKEEPING] += now - clocks[0].last
    for t in range(n_threads):
        clocks[t].last = now


cdef bint _profiling = False
cdef long long _phase_totals[FB_MAX_THREADS][N_PHASES]   # ns, summed over calls
cdef long long _profiled_ns = 0        # the calls' own time (their GIL-free part)
cdef long long _profiled_batches = 0
cdef long long _profiled_calls = 0


cdef object _phase_clocks(EpochTotals *totals, int n_threads):
    # while profiling: zeroed clocks for the call's threads (the returned
    # array owns them), else None
    cdef cnp.ndarray clocks
    if not _profiling:
        return None
    clocks = np.zeros(n_threads * sizeof(PhaseClock), dtype=np.uint8)
    totals.clocks = <PhaseClock *> cnp.PyArray_DATA(clocks)
    return clocks


cdef void _add_phase_times(const EpochTotals *totals, int n_threads, long long call_ns,
                           long long n_batches):
    # one call's clocks into the totals (with the GIL: calls from several
    # Python threads add in turn)
    global _profiled_ns, _profiled_batches, _profiled_calls
    cdef int t, k
    if totals.clocks == NULL:
        return
    for t in range(n_threads):
        for k in range(N_PHASES):
            _phase_totals[t][k] += totals.clocks[t].ns[k]
    _profiled_ns += call_ns
    _profiled_batches += n_batches
    _profiled_calls += 1


def set_profiling(bint enable):
    """Diagnosis: time every phase of every batch, per thread, from now on
    (``phase_times`` reads the totals); returns the previous setting. Off by
    default (``FASTBP_PROFILE=1`` turns it on at import and prints the table
    at exit). Timing costs two clock reads per phase: figures are slightly
    slower than without."""
    global _profiling
    old = _profiling
    _profiling = enable
    return old


def phase_times(bint reset=False):
    """Diagnosis: the time training calls (``train_epoch``, ``loss_and_grad``)
    spent per phase and thread since profiling started (``set_profiling``).

    Returns a dict: ``phases`` (names), ``ns`` (one list per thread that ran:
    nanoseconds per phase; thread 0 is the calling thread), ``call_ns`` (the
    calls' own time, which each thread's phases add up to, up to the
    handing out of segments), ``batches`` and ``calls``. ``reset`` zeroes
    the totals after reading them."""
    global _profiled_ns, _profiled_batches, _profiled_calls
    cdef int t, k
    ns = [[_phase_totals[t][k] for k in range(N_PHASES)] for t in range(FB_MAX_THREADS)]
    while len(ns) > 1 and not any(ns[len(ns) - 1]):  # (no wraparound here)
        ns.pop()
    out = {"phases": PHASE_NAMES, "ns": ns, "call_ns": _profiled_ns,
           "batches": _profiled_batches, "calls": _profiled_calls}
    if reset:
        memset(_phase_totals, 0, sizeof(_phase_totals))
        _profiled_ns = _profiled_batches = _profiled_calls = 0
    return out


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
    Py_ssize_t row_grid           # row blocks are cut on it (_row_grid, _grid_block)
    # a thread's fixed blocks of a product as one product where that gives
    # their bits (_block_merge.pxi, plan_merges), bit i for layer i (the
    # first 64); [0] for batches of batch_size rows, [1] for the epoch's last,
    # shorter one
    Py_ssize_t last_batch_rows
    int merge_threads                  # the thread count the flags are for
    unsigned long long merge_rows[2]   # one thread: bit 0: phase 1's row blocks
    # thread t's run of the row blocks of W_i's gradient (_weight_run): bit i
    unsigned long long merge_grads[FB_MAX_THREADS][2]


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
    double *sumsq_part            # per batch parity, per weight block (_weight_block_count)
    Py_ssize_t n_weight_blocks
    PhaseClock *clocks            # one per thread while profiling, else NULL
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
    PhaseClock *clock             # this thread's phase timer, or NULL


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
                      void *work, bint is_float) noexcept nogil:
    # the fields an epoch and a full-batch gradient share; the rest zero
    memset(epoch, 0, sizeof(Epoch))
    epoch.config.row_grid = _row_grid(is_float)
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


cdef object _epoch_buffers(Epoch *epoch, int n_threads):
    # what a training epoch needs besides the workspace (the returned arrays
    # own it): each weight block's squared weights after a step, for two
    # batches in turn, and the phase clocks while profiling
    cdef cnp.ndarray sumsq_part
    epoch.totals.n_weight_blocks = _weight_block_count(epoch.config.net, epoch.config.batch_size,
                                                       epoch.config.data_parallel)
    sumsq_part = np.zeros(2 * epoch.totals.n_weight_blocks)
    epoch.totals.sumsq_part = <double *> cnp.PyArray_DATA(sumsq_part)
    return sumsq_part, _phase_clocks(&epoch.totals, n_threads)


cdef inline Py_ssize_t _hidden_units(const Net *net) noexcept nogil:
    # the widths of the hidden layers 1..L-1, summed
    cdef Py_ssize_t total = 0
    cdef int i
    for i in range(1, net.n_layers):
        total += net.sizes[i]
    return total


cdef inline Py_ssize_t _norm_part_count(const Net *net, Py_ssize_t batch_size,
                                        bint data_parallel) noexcept nogil:
    # clipping's parts: one per weight block (_weight_blocks, fixed by the
    # shapes and the mode) and one per entry of each b_i
    cdef Py_ssize_t total = _weight_block_count(net, batch_size, data_parallel)
    cdef int i
    for i in range(net.n_layers):
        total += net.sizes[i + 1]
    return total


cdef inline Py_ssize_t _norm_part_room(const Net *net, Py_ssize_t batch_size) noexcept nogil:
    # the workspace's room for them, the larger of the two modes' counts: the
    # sizing does not know whether the input is sparse (which turns the
    # data-parallel mode off)
    cdef Py_ssize_t dp = _norm_part_count(net, batch_size, True)
    cdef Py_ssize_t rows = _norm_part_count(net, batch_size, False)
    return dp if dp > rows else rows


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
        total += 2 * _norm_part_room(net, B)
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
        p += 2 * _norm_part_count(net, bs, cfg.data_parallel)
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
    ws.clock = NULL


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
            # a row GATHER_AHEAD rows on is asked for now (its first access misses)
            if r + GATHER_AHEAD < r1:
                fb_prefetch_lines(X + batch.rows[r + GATHER_AHEAD] * nf, nf * sizeof(floating))
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


cdef inline bint _merges(const unsigned long long *flags, const EpochConfig *cfg,
                         const Batch *batch, int i) noexcept nogil:
    # bit i of the batch's entry of a merge_* field (see EpochConfig)
    cdef int kind
    if batch.n_rows == cfg.batch_size:
        kind = 0
    elif batch.n_rows == cfg.last_batch_rows:
        kind = 1
    else:
        return False
    return i < 64 and (flags[kind] >> i) & 1


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
                                batch.start + r0, r1 - r0, A_i, 0, n_out, True)
        else:
            gemm_rm_step(False, False, <int> (r1 - r0), <int> n_out, <int> n_in,
                         <floating> 1.0, _layer(net, acts, B, i) + r0 * n_in, <int> n_in,
                         params + net.off_w[i], <int> n_out, <floating> 0.0, A_i,
                         <int> n_out)
        _tick(ws.clock, PH_FORWARD_GEMM)
        if i < net.n_layers - 1:
            hidden_activation(A_i, _hidden_part(ws.derivs, net, B, i + 1, r0, A_i), r1 - r0, n_out,
                              params + net.off_b[i], net.hidden_act)
            _dropout_forward(cfg, ws, batch, i + 1, r0, r1, A_i)
            _tick(ws.clock, PH_ACTIVATION)


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
        gemm_rm_step(False, True, <int> (r1 - r0), <int> n_in, <int> n_out,
                     <floating> 1.0, D + r0 * n_out, <int> n_out, params + net.off_w[i],
                     <int> n_out, <floating> 0.0, _layer(net, deltas, B, i) + r0 * n_in,
                     <int> n_in)
        _tick(ws.clock, PH_BACKWARD_GEMM)
        # the layer's outputs before dropout, from which its derivative is taken
        outputs = _layer(net, acts, B, i) + r0 * n_in
        if _dropout_rate(cfg, i) > 0 and ws.undropped != NULL:
            outputs = _hidden_part(ws.undropped, net, B, i, r0, acts)
        activation_derivative(_layer(net, deltas, B, i) + r0 * n_in, outputs,
                              _hidden_part(ws.derivs, net, B, i, r0, acts), r1 - r0, n_in, n_in,
                              net.hidden_act)
        _dropout_backward(cfg, batch, i, r0, r1, _layer(net, deltas, B, i) + r0 * n_in)
        _tick(ws.clock, PH_DERIVATIVE)
        D = _layer(net, deltas, B, i)


cdef inline void _rows_phase(const EpochConfig *cfg, const Workspace *ws, const Batch *batch,
                             Py_ssize_t r0, Py_ssize_t r1, const floating *params) noexcept nogil:
    """Rows ``r0:r1`` of the batch through the network and back: gathered,
    forward, loss and output delta (in place of the output activations), the
    hidden layers' deltas."""
    if cfg.inp.csr_data == NULL and cfg.gather:
        _gather_rows(cfg, batch, r0, r1, <floating *> batch.inputs)
        _tick(ws.clock, PH_GATHER)
    _forward_block(cfg, ws, batch, r0, r1, params)
    _output_block(cfg, ws, batch, r0, r1, params)
    _backward_block(cfg, ws, batch, r0, r1, params)


cdef inline void _merged_rows_phase(const EpochConfig *cfg, const Workspace *ws,
                                    const Batch *batch, Py_ssize_t n_parts,
                                    const floating *params) noexcept nogil:
    """One thread's phase 1 over all of the batch's n_parts row blocks at once:
    each product whole (``merge_rows``: the blocks' bits), the loss block by
    block (the unweighted log-losses sum their logs per block)."""
    cdef Py_ssize_t part, r0, r1
    if cfg.inp.csr_data == NULL and cfg.gather:
        _gather_rows(cfg, batch, 0, batch.n_rows, <floating *> batch.inputs)
        _tick(ws.clock, PH_GATHER)
    _forward_block(cfg, ws, batch, 0, batch.n_rows, params)
    for part in range(n_parts):
        _grid_block(batch.n_rows, n_parts, part, cfg.row_grid, True, &r0, &r1)
        if r1 > r0:
            _output_block(cfg, ws, batch, r0, r1, params)
    _backward_block(cfg, ws, batch, 0, batch.n_rows, params)


cdef inline void _output_block(const EpochConfig *cfg, const Workspace *ws, const Batch *batch,
                               Py_ssize_t r0, Py_ssize_t r1,
                               const floating *params) noexcept nogil:
    # rows r0:r1's loss and output delta (in place of the output activations)
    cdef const Net *net = cfg.net
    cdef Py_ssize_t B = batch.n_rows, n_out = net.sizes[net.n_layers]
    cdef floating *scratch = <floating *> ws.loss_scratch
    output_loss_delta(_layer(net, <floating *> ws.acts, B, net.n_layers) + r0 * n_out,
                      r1 - r0, n_out, params + net.off_b[net.n_layers - 1],
                      <const floating *> cfg.Y,
                      batch.rows + r0 if batch.rows != NULL else NULL, batch.start + r0,
                      <const floating *> cfg.sw, cfg.loss, ws.row_losses + r0,
                      scratch + r0 * n_out, scratch + (B + r0) * n_out)
    _tick(ws.clock, PH_LOSS)


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
            gemm_rm_step(True, False, <int> n_in, <int> n_out, <int> (r1 - r0),
                         <floating> 1.0, _layer(net, <floating *> ws.acts, B, i) + r0 * n_in,
                         <int> n_in, D + r0 * n_out, <int> n_out, <floating> 0.0,
                         G + net.off_w[i], <int> n_out)
        else:
            first_layer_weight_grad(net, cfg.inp, <floating *> batch.inputs + r0 * nf, NULL, 0,
                                    r1 - r0, D + r0 * n_out, <floating> 0.0, G + net.off_w[0],
                                    0, nf, NULL)
        _tick(ws.clock, PH_GRADIENT_GEMM)
        _column_sums(D + r0 * n_out, r1 - r0, n_out, 0, n_out, <floating> 0.0, G + net.off_b[i])
        _tick(ws.clock, PH_BIAS_GRADIENT)


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


cdef inline double _sumsq_of_batch(const EpochTotals *totals, long long index) noexcept nogil:
    # the squared weights after batch ``index``'s step, summed over the blocks in order
    cdef const double *part = totals.sumsq_part + (index % 2) * totals.n_weight_blocks
    cdef double s = 0.0
    cdef Py_ssize_t b
    for b in range(totals.n_weight_blocks):
        s += part[b]
    return s


cdef inline void _add_batch_loss(Epoch *epoch, const Workspace *ws, const Batch *batch,
                                 double sw_sum) noexcept nogil:
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
        sumsq_prev = _sumsq_of_batch(&epoch.totals, batch.index - 1)
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
            gemm_rm_step(True, False, <int> (k1 - k0), <int> n_out, <int> B, <floating> 1.0,
                         _layer(net, <floating *> ws.acts, B, i) + k0, <int> n_in, D,
                         <int> n_out, beta, grads + net.off_w[i] + k0 * n_out, <int> n_out)
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


cdef Py_ssize_t _weight_block_count(const Net *net, Py_ssize_t batch_size,
                                    bint data_parallel) noexcept nogil:
    # the weight blocks of all the layers (_weight_blocks), numbered layer after layer
    cdef Py_ssize_t total = 0
    cdef int i
    for i in range(net.n_layers):
        total += _weight_blocks(net, i, batch_size, data_parallel)
    return total


cdef inline void _weight_run(const EpochConfig *cfg, int i, Py_ssize_t done, Py_ssize_t nb,
                             int tid, int nt, Py_ssize_t *b0, Py_ssize_t *b1) noexcept nogil:
    """Thread ``tid``'s blocks ``[b0, b1)`` of ``W_i``'s nb row blocks, the
    layers after it holding ``done`` weights: those ``_weight_block_range``
    gives it (they are consecutive). Row-split mode only."""
    cdef Py_ssize_t b, k0, k1
    cdef bint owned
    b0[0] = b1[0] = 0
    for b in range(nb):
        _weight_block_range(cfg, i, nb, b, done, tid, nt, &k0, &k1, &owned)
        if owned:
            if b1[0] == 0:
                b0[0] = b
            b1[0] = b + 1


cdef inline void _run_rows(const EpochConfig *cfg, int i, Py_ssize_t nb, Py_ssize_t b0,
                           Py_ssize_t b1, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    # the rows [lo, hi) of W_i that its row blocks [b0, b1) cover
    cdef Py_ssize_t unused
    lo[0] = hi[0] = 0
    if b1 > b0:
        _grid_block(cfg.net.sizes[i], nb, b0, cfg.row_grid, False, lo, &unused)
        _grid_block(cfg.net.sizes[i], nb, b1 - 1, cfg.row_grid, False, &unused, hi)


cdef inline void _parameters_phase(const EpochConfig *cfg, const Workspace *ws,
                                   const Batch *batch, const Step *step, int tid, int nt,
                                   floating *params, double *sumsq) noexcept nogil:
    """Thread ``tid``'s run of row blocks of each ``W_i`` (``_weight_blocks``,
    ``_weight_run``) and its columns of every ``b_i``: their gradient from
    every row of the batch (the run as one product where that gives its
    blocks' bits, else block by block), then (training) their step, each
    block's squared weights after it into ``sumsq[block]``. A sparse first
    layer's gradient is one pass over the batch's values for all the
    thread's rows."""
    cdef const Net *net = cfg.net
    cdef floating *grads = <floating *> cfg.grads
    cdef Py_ssize_t nb, b, b0, b1, k0, k1, n_out
    cdef Py_ssize_t index = _weight_block_count(net, cfg.batch_size, False), done = 0
    cdef bint csr = cfg.inp.csr_data != NULL, merged
    cdef int i
    for i in range(net.n_layers - 1, -1, -1):
        nb = _weight_blocks(net, i, cfg.batch_size, False)
        n_out = net.sizes[i + 1]
        index -= nb
        _weight_run(cfg, i, done, nb, tid, nt, &b0, &b1)
        done += net.sizes[i] * n_out
        merged = b1 - b0 > 1 and nt == cfg.merge_threads and _merges(
            cfg.merge_grads[tid], cfg, batch, i)
        # the run's gradient as one product; the CSR first layer's always (one
        # pass over the batch's values: each element sums its rows in order,
        # whatever the range)
        if (i == 0 and csr) or merged:
            _run_rows(cfg, i, nb, b0, b1, &k0, &k1)
            _layer_gradient(cfg, ws, batch, i, k0, k1, 0, 0, grads)
            _tick(ws.clock, PH_GRADIENT_GEMM)
        for b in range(b0, b1):
            _grid_block(net.sizes[i], nb, b, cfg.row_grid, False, &k0, &k1)
            _weight_rows_part(cfg, ws, batch, step, i, k0, k1,
                              not (i == 0 and csr) and not merged, params, sumsq + index + b)
        _bias_part(cfg, ws, batch, step, i, tid, nt, params, grads)


cdef inline void _weight_rows_part(const EpochConfig *cfg, const Workspace *ws,
                                   const Batch *batch, const Step *step, int i, Py_ssize_t k0,
                                   Py_ssize_t k1, bint gradient, floating *params,
                                   double *block_sumsq) noexcept nogil:
    # rows k0:k1 of W_i: their gradient (``gradient``: not already made by the
    # CSR pass), then (training) their step, their squared weights after it
    # into block_sumsq
    if gradient:
        _layer_gradient(cfg, ws, batch, i, k0, k1, 0, 0, <floating *> cfg.grads)
        _tick(ws.clock, PH_GRADIENT_GEMM)
    if cfg.train:
        block_sumsq[0] = 0.0
        _layer_step(cfg, i, k0, k1, 0, 0, step, params, block_sumsq)
        _tick(ws.clock, PH_OPTIMIZER)


cdef inline void _bias_part(const EpochConfig *cfg, const Workspace *ws, const Batch *batch,
                            const Step *step, int i, int tid, int nt, floating *params,
                            floating *grads) noexcept nogil:
    # thread tid's columns of b_i: their gradient, then (training) their step
    cdef Py_ssize_t c0, c1
    cdef double unused = 0.0
    _split(cfg.net.sizes[i + 1], tid, nt, &c0, &c1)
    _layer_gradient(cfg, ws, batch, i, 0, 0, c0, c1, grads)
    _tick(ws.clock, PH_BIAS_GRADIENT)
    if cfg.train:
        _layer_step(cfg, i, 0, 0, c0, c1, step, params, &unused)
        _tick(ws.clock, PH_OPTIMIZER)


cdef inline void _first_layer_rows(const EpochConfig *cfg, int tid, int nt, Py_ssize_t *lo,
                                   Py_ssize_t *hi) noexcept nogil:
    # the rows [lo, hi) of W_0 that thread tid's blocks cover (_weight_run)
    cdef Py_ssize_t nb = _weight_blocks(cfg.net, 0, cfg.batch_size, False), b0, b1
    _weight_run(cfg, 0, cfg.net.n_weights - cfg.net.sizes[0] * cfg.net.sizes[1], nb, tid, nt,
                &b0, &b1)
    _run_rows(cfg, 0, nb, b0, b1, lo, hi)


cdef inline void _parameters_phase_dp(const EpochConfig *cfg, const Workspace *ws,
                                      const Batch *batch, const Step *step, int tid, int nt,
                                      floating *params, double *sumsq) noexcept nogil:
    """Data-parallel mode: the batch gradient is the first half's plus the
    second's (added in this order whatever the thread count), then the step,
    each thread over its blocks of the ``W_i`` (``_weight_blocks``, shared
    out by ``_owns``) and its columns of every ``b_i``; each block's squared
    weights after the step into ``sumsq[block]``."""
    cdef const Net *net = cfg.net
    cdef floating *grads = <floating *> cfg.grads
    cdef floating *half = <floating *> ws.half_grad
    cdef floating *state1 = <floating *> cfg.state1
    cdef floating *state2 = <floating *> cfg.state2
    cdef Py_ssize_t nb, b, k0, k1, j, n_layer
    cdef Py_ssize_t index = _weight_block_count(net, cfg.batch_size, True), done = 0
    cdef bint has_second_half
    cdef int i
    _split(batch.n_rows, 1, 2, &k0, &k1)
    has_second_half = k1 > k0
    for i in range(net.n_layers - 1, -1, -1):
        nb = _weight_blocks(net, i, cfg.batch_size, True)
        n_layer = net.sizes[i] * net.sizes[i + 1]
        index -= nb
        for b in range(nb):
            _block(n_layer, nb, b, &k0, &k1)
            if _owns(done + k0, k1 - k0, net.n_weights, tid, nt):
                j = net.off_w[i] + k0
                sumsq[index + b] = update_range(
                    params + j, grads + j, state1 + j, state2 + j, k1 - k0, True, False, step,
                    half + j if has_second_half else NULL)
                _tick(ws.clock, PH_OPTIMIZER)
        done += n_layer
        _split(net.sizes[i + 1], tid, nt, &k0, &k1)
        if k1 > k0:
            j = net.off_b[i] + k0
            update_range(params + j, grads + j, state1 + j, state2 + j, k1 - k0, False,
                         False, step, half + j if has_second_half else NULL)
            _tick(ws.clock, PH_OPTIMIZER)


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


cdef inline double _rows_sum_of_squares(const EpochConfig *cfg, int i, Py_ssize_t k0,
                                        Py_ssize_t k1, const floating *params) noexcept nogil:
    # the squared gradient (L2 term included, before the division by sw_sum)
    # of rows k0:k1 of W_i, summed row after row
    cdef Py_ssize_t n_out = cfg.net.sizes[i + 1], r, j
    cdef double total = 0.0
    for r in range(k0, k1):
        j = cfg.net.off_w[i] + r * n_out
        total += _sum_of_squares(<const floating *> cfg.grads + j, params + j, n_out,
                                 <floating> cfg.alpha,
                                 i == 0 and cfg.touched != NULL and not cfg.touched[r])
    return total


cdef inline double _clip_factor(const EpochConfig *cfg, const Workspace *ws,
                                double sw_sum) noexcept nogil:
    # max_grad_norm / the gradient's global norm (PyTorch's clip_grad_norm_,
    # 1e-6 added to the norm), at most 1; the parts summed in one order
    cdef Py_ssize_t j, n = _norm_part_count(cfg.net, cfg.batch_size, cfg.data_parallel)
    cdef double total = 0.0, factor
    for j in range(n):
        total += ws.norm_parts[j]
    factor = cfg.opt.max_grad_norm / (sqrt(total) / sw_sum + 1e-6)
    return factor if factor < 1.0 else 1.0


cdef inline void _weight_block_range(const EpochConfig *cfg, int i, Py_ssize_t nb, Py_ssize_t b,
                                     Py_ssize_t done, int tid, int nt, Py_ssize_t *k0,
                                     Py_ssize_t *k1, bint *owned) noexcept nogil:
    # block b of W_i's nb (rows, or consecutive weights in the data-parallel
    # mode) and whether thread tid takes it, as _parameters_phase(_dp) share them
    cdef Py_ssize_t n_out = cfg.net.sizes[i + 1]
    if cfg.data_parallel:
        _block(cfg.net.sizes[i] * n_out, nb, b, k0, k1)
        owned[0] = _owns(done + k0[0], k1[0] - k0[0], cfg.net.n_weights, tid, nt)
    else:
        _grid_block(cfg.net.sizes[i], nb, b, cfg.row_grid, False, k0, k1)
        owned[0] = _owns(done + k0[0] * n_out, (k1[0] - k0[0]) * n_out, cfg.net.n_weights,
                         tid, nt)


cdef void _clipped_parameters_phase(Epoch *epoch, const Workspace *ws, const Batch *batch,
                                    Step *step, int tid, int nt, floating *params,
                                    double *sumsq) noexcept nogil:
    """Clipping (``max_grad_norm``): this thread's weight blocks (those of
    ``_parameters_phase`` / ``_parameters_phase_dp``) and entries of every
    ``b_i`` take their gradient (data-parallel: the halves added) and its
    squares, one norm part per block and per entry; after a barrier every
    thread sums all the parts in the same order (the norm does not depend on
    the thread count) and scales the step's gradient (``Step.clip``); then the
    same blocks' steps, each block's squared weights after it into
    ``sumsq[block]``."""
    cdef const EpochConfig *cfg = &epoch.config
    cdef const Net *net = cfg.net
    cdef floating *grads = <floating *> cfg.grads
    cdef floating *half = <floating *> ws.half_grad
    cdef bint dp = cfg.data_parallel, csr = cfg.inp.csr_data != NULL, owned
    cdef Py_ssize_t n_blocks = _weight_block_count(net, cfg.batch_size, dp)
    cdef Py_ssize_t index, done, bias_part, nb, b, k0, k1, c0, c1, r, n_out
    cdef double block_sumsq, g
    cdef bint has_second_half = False
    cdef int i
    if dp:
        _split(batch.n_rows, 1, 2, &k0, &k1)
        has_second_half = k1 > k0
    elif csr:  # the CSR first layer's gradient in one pass, as _parameters_phase
        _first_layer_rows(cfg, tid, nt, &k0, &k1)
        _layer_gradient(cfg, ws, batch, 0, k0, k1, 0, 0, grads)
    index, done, bias_part = n_blocks, 0, n_blocks + net.n_params - net.n_weights
    for i in range(net.n_layers - 1, -1, -1):
        n_out = net.sizes[i + 1]
        nb = _weight_blocks(net, i, cfg.batch_size, dp)
        index -= nb
        bias_part -= n_out
        for b in range(nb):
            _weight_block_range(cfg, i, nb, b, done, tid, nt, &k0, &k1, &owned)
            if not owned:
                continue
            if dp:
                if has_second_half:
                    _add_into(grads + net.off_w[i] + k0, half + net.off_w[i] + k0, k1 - k0)
                ws.norm_parts[index + b] = _sum_of_squares(
                    grads + net.off_w[i] + k0, params + net.off_w[i] + k0, k1 - k0,
                    <floating> cfg.alpha, False)
            else:
                if not (i == 0 and csr):
                    _layer_gradient(cfg, ws, batch, i, k0, k1, 0, 0, grads)
                ws.norm_parts[index + b] = _rows_sum_of_squares(cfg, i, k0, k1, params)
        done += net.sizes[i] * n_out
        _split(n_out, tid, nt, &c0, &c1)
        if not dp:
            _layer_gradient(cfg, ws, batch, i, 0, 0, c0, c1, grads)
        elif has_second_half:
            _add_into(grads + net.off_b[i] + c0, half + net.off_b[i] + c0, c1 - c0)
        for r in range(c0, c1):
            g = grads[net.off_b[i] + r]
            ws.norm_parts[bias_part + r] = g * g
    _tick(ws.clock, PH_GRADIENT_GEMM)
    fb_barrier_wait(epoch.segment.barrier)
    _tick(ws.clock, PH_BARRIER)
    step.clip = _clip_factor(cfg, ws, step.sw_sum)
    index, done = n_blocks, 0
    for i in range(net.n_layers - 1, -1, -1):
        nb = _weight_blocks(net, i, cfg.batch_size, dp)
        index -= nb
        for b in range(nb):
            _weight_block_range(cfg, i, nb, b, done, tid, nt, &k0, &k1, &owned)
            if owned:
                block_sumsq = 0.0
                if dp:  # consecutive weights, stepped as _parameters_phase_dp does
                    block_sumsq = update_range(
                        params + net.off_w[i] + k0, grads + net.off_w[i] + k0,
                        <floating *> cfg.state1 + net.off_w[i] + k0,
                        <floating *> cfg.state2 + net.off_w[i] + k0, k1 - k0, True, False, step)
                else:
                    _layer_step(cfg, i, k0, k1, 0, 0, step, params, &block_sumsq)
                sumsq[index + b] = block_sumsq
        done += net.sizes[i] * net.sizes[i + 1]
        _split(net.sizes[i + 1], tid, nt, &c0, &c1)
        _layer_step(cfg, i, 0, 0, c0, c1, step, params, &block_sumsq)
    _tick(ws.clock, PH_OPTIMIZER)


# ---------------------------------------------------------------------------
# One thread's part of a segment, and the segments of an epoch
# ---------------------------------------------------------------------------

cdef inline void _row_parts(const EpochConfig *cfg, const Batch *batch, int tid, int nt,
                            Py_ssize_t *n_parts, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    # the parts [lo, hi) of n_parts this thread takes of the batch's rows in
    # phase 1: the two fixed halves in the data-parallel mode, else the fixed
    # row blocks (_row_blocks); whole parts, one thread taking all in turn
    n_parts[0] = 2 if cfg.data_parallel else _row_blocks(cfg.net, batch.n_rows)
    _share(n_parts[0], tid, nt, lo, hi)


cdef inline void _row_part(const EpochConfig *cfg, const Batch *batch, Py_ssize_t n_parts,
                           Py_ssize_t part, Py_ssize_t *r0, Py_ssize_t *r1) noexcept nogil:
    # the rows [r0, r1) of a part (a half never holds a lone row, see _split)
    if cfg.data_parallel:
        _split(batch.n_rows, <int> part, 2, r0, r1)
    else:
        _grid_block(batch.n_rows, n_parts, part, cfg.row_grid, True, r0, r1)


cdef void _epoch_body(Epoch *epoch, int tid, int nt, floating *params) noexcept nogil:
    """Thread ``tid``'s part of the segment's batches (see the Notes above):
    compiled twice, with and without the phase timers, so that timing costs
    nothing when off (every tick of the second is known to do nothing)."""
    if epoch.totals.clocks != NULL:
        _epoch_batches(epoch, tid, nt, params, True)
    else:
        _epoch_batches(epoch, tid, nt, params, False)


cdef inline void _epoch_batches(Epoch *epoch, int tid, int nt, floating *params,
                                bint timed) noexcept nogil:
    # the segment's batches for thread tid; ``timed``: tick this thread's clock
    cdef const EpochConfig *cfg = &epoch.config
    cdef Segment *seg = &epoch.segment
    cdef Workspace ws
    cdef Batch batch
    cdef Step step
    cdef Py_ssize_t r0, r1, n_parts, part, p_lo, p_hi
    cdef double sw_sum = 0.0
    cdef double *sumsq
    cdef long long last_check = fb_now_ns()
    # the clock is read for the Ctrl-C check every ~1e5 multiply-adds of work
    cdef long long check_every = 100000 // (cfg.net.n_weights * cfg.batch_size) + 1
    _workspace(&ws, cfg, <floating *> cfg.work)
    if timed:
        ws.clock = epoch.totals.clocks + tid
    # the segment's time starts once every thread runs (waking a parked
    # worker is not a cost of running on several threads)
    if nt > 1:
        fb_barrier_wait(seg.barrier)
    if tid == 0:
        seg.t_start = fb_now_ns()
    _tick(ws.clock, PH_WAKE)
    batch.index = seg.first_batch
    batch.start = seg.start
    while batch.start < seg.stop:
        _next_batch(&batch, cfg, &ws, <floating *> cfg.inp.dense)
        _row_parts(cfg, &batch, tid, nt, &n_parts, &p_lo, &p_hi)
        _tick(ws.clock, PH_BOOKKEEPING)
        if nt == 1 and n_parts > 1 and _merges(cfg.merge_rows, cfg, &batch, 0):
            _merged_rows_phase(cfg, &ws, &batch, n_parts, params)
            p_hi = p_lo
        for part in range(p_lo, p_hi):
            _row_part(cfg, &batch, n_parts, part, &r0, &r1)
            if r1 > r0:
                _rows_phase(cfg, &ws, &batch, r0, r1, params)
                if cfg.data_parallel:
                    _half_batch_gradient(cfg, &ws, &batch, r0, r1, <floating *> (
                        cfg.grads if part == 0 else ws.half_grad))
        if cfg.train:
            sw_sum = _batch_weight(cfg, &batch, <const floating *> cfg.sw)
            _make_step(&step, cfg.opt, cfg.opt.t + batch.index + 1, cfg.alpha, sw_sum)
        _tick(ws.clock, PH_BOOKKEEPING)
        fb_barrier_wait(seg.barrier)
        _tick(ws.clock, PH_BARRIER)
        if (tid == 0 and batch.stop < cfg.n_samples
                and (batch.index - seg.first_batch) % check_every == 0
                and _check_signals(&last_check)):
            epoch.totals.stop = 1
        if tid == nt - 1:       # thread 0 checks for Ctrl-C meanwhile
            _add_batch_loss(epoch, &ws, &batch, sw_sum)
        sumsq = epoch.totals.sumsq_part + (batch.index % 2) * epoch.totals.n_weight_blocks
        _tick(ws.clock, PH_BOOKKEEPING)
        if cfg.train and cfg.opt.max_grad_norm > 0:
            _clipped_parameters_phase(epoch, &ws, &batch, &step, tid, nt, params, sumsq)
        elif cfg.data_parallel:
            _parameters_phase_dp(cfg, &ws, &batch, &step, tid, nt, params, sumsq)
        else:
            _parameters_phase(cfg, &ws, &batch, &step, tid, nt, params, sumsq)
        fb_barrier_wait(seg.barrier)
        _tick(ws.clock, PH_BARRIER)
        batch.index += 1
        batch.start = batch.stop
        if epoch.totals.stop:
            break
    if tid == 0:
        epoch.totals.n_batches = batch.index
        # the next segment's L2 term: this segment's last step
        if cfg.train and batch.index > seg.first_batch:
            epoch.totals.sumsq_start = _sumsq_of_batch(&epoch.totals, batch.index - 1)


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
    _clocks_start_segment(epoch.totals.clocks, n_threads)
    if is_float:
        fb_pool_run(_epoch_task_f, <void *> epoch, n_threads)
    else:
        fb_pool_run(_epoch_task_d, <void *> epoch, n_threads)
    fb_barrier_destroy(&barrier)
    _tick(epoch.totals.clocks, PH_WAKE)     # the calling thread joined the others


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
