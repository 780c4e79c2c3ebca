cdef inline void _tuner_record(TunerState *ts, int k, double rate) noexcept nogil:
    # Interference only ever makes a segment slower (a preempted worker holds
    # up every barrier), so one slow measurement is more likely a moment of
    # preemption than a change of load: the estimate is the smaller of the
    # last two measurements. A lasting change shows after two segments, a
    # faster measurement at once. (An exponential average let one preempted
    # segment send a fit to one thread, at half speed, for tens of epochs.)
    cdef double prev = ts.last_rate[k]
    ts.last_rate[k] = rate
    ts.ns_per_row[k] = rate if (prev == 0 or rate < prev) else prev
    if ts.n_measured[k] < 2:
        ts.n_measured[k] += 1


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
        the estimate, as a training segment does; for tests."""
        if threads not in (0, 1) or not ns_per_sample > 0:
            raise ValueError("threads must be 0 or 1 and ns_per_sample positive")
        _tuner_record(&self.state, threads, ns_per_sample)


cdef class NetSpec:
    """Shape and activations of a network, and where each layer lives in
    the flat parameter buffer.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_features, *hidden_layer_sizes, n_outputs]``.
    hidden_activation, output_activation : str
        Names from ``ACTIVATION_CODES``.
    """
    cdef Net net
    cdef readonly tuple sizes
    cdef readonly str hidden_activation
    cdef readonly str output_activation
    cdef ThreadTuner tuner
    # predict's fast path for the network this spec describes (a cache, set by
    # the estimator; not pickled)
    cdef public object predictor

    def __cinit__(self, sizes, str hidden_activation, str output_activation):
        cdef int i
        cdef Py_ssize_t off = 0
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2:
            raise ValueError("a network needs at least an input and an output layer")
        if any(s < 1 for s in sizes):
            raise ValueError(f"every layer needs at least one unit, got sizes {sizes}")
        if hidden_activation not in ACTIVATION_CODES or hidden_activation in ("softmax", "exp"):
            raise ValueError(f"unknown hidden activation {hidden_activation!r}")
        if output_activation not in ("identity", "logistic", "softmax", "exp"):
            raise ValueError(f"unknown output activation {output_activation!r}")
        self.sizes = sizes
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.net.n_layers = len(sizes) - 1
        self.net.sizes = <Py_ssize_t *> malloc(len(sizes) * sizeof(Py_ssize_t))
        self.net.off_w = <Py_ssize_t *> malloc(self.net.n_layers * sizeof(Py_ssize_t))
        self.net.off_b = <Py_ssize_t *> malloc(self.net.n_layers * sizeof(Py_ssize_t))
        if not self.net.sizes or not self.net.off_w or not self.net.off_b:
            raise MemoryError()
        self.net.max_width = 1
        for i in range(len(sizes)):
            self.net.sizes[i] = sizes[i]
            if i > 0 and sizes[i] > self.net.max_width:
                self.net.max_width = sizes[i]
        for i in range(self.net.n_layers):
            self.net.off_w[i] = off
            off += sizes[i] * sizes[i + 1]
            self.net.off_b[i] = off
            off += sizes[i + 1]
        self.net.n_params = off
        self.net.n_weights = off - sum(sizes[1:])
        self.tuner = ThreadTuner()
        self.net.hidden_act = ACTIVATION_CODES[hidden_activation]
        self.net.out_act = ACTIVATION_CODES[output_activation]

    def __dealloc__(self):
        free(self.net.sizes)
        free(self.net.off_w)
        free(self.net.off_b)

    @property
    def n_params(self):
        return self.net.n_params

    @property
    def thread_tuner(self):
        """The ``ThreadTuner`` of this network's training epochs."""
        return self.tuner

    @property
    def n_layers(self):
        """Number of weight layers (``len(coefs_)``)."""
        return self.net.n_layers

    def weight_slices(self):
        """``[(start, stop, shape), ...]`` of each ``W_i`` in the flat buffer."""
        return [(self.net.off_w[i], self.net.off_w[i] + self.sizes[i] * self.sizes[i + 1],
                 (self.sizes[i], self.sizes[i + 1])) for i in range(self.net.n_layers)]

    def bias_slices(self):
        """``[(start, stop), ...]`` of each ``b_i`` in the flat buffer."""
        return [(self.net.off_b[i], self.net.off_b[i] + self.sizes[i + 1])
                for i in range(self.net.n_layers)]

    def train_workspace_size(self, Py_ssize_t batch_size, bint gather_rows):
        """Elements of workspace ``train_epoch`` needs for ``batch_size``."""
        return _train_ws_size(&self.net, batch_size, gather_rows)

    def predict_workspace_size(self, Py_ssize_t chunk_rows):
        """Elements of workspace ``forward`` needs for ``chunk_rows``."""
        return 2 * chunk_rows * self.net.max_width

    def __reduce__(self):
        return (NetSpec, (self.sizes, self.hidden_activation, self.output_activation))


cdef inline Py_ssize_t _train_ws_size(const Net *net, Py_ssize_t B, bint gather) noexcept nogil:
    # per-row losses (B doubles) + [gathered input rows] + activations of
    # layers 1..L + deltas of the hidden layers 1..L-1 + two output scratch
    # blocks [+ the second half-batch's gradient, in the data-parallel mode]
    cdef Py_ssize_t total = 2 * B + 2 * B * net.sizes[net.n_layers]
    cdef int i
    if gather:
        total += B * net.sizes[0]
    for i in range(1, net.n_layers + 1):
        total += B * net.sizes[i]
    for i in range(1, net.n_layers):
        total += B * net.sizes[i]
    if _data_parallel(net, B):
        total += net.n_params
    return total
