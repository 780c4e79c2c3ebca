# NetSpec: a network's shape, activations and parameter layout, for Python.
#
# Notes
# -----
# * A NetSpec owns one ``Net`` (_types.pxi), which every kernel reads, and
#   the ThreadTuner of the network's training epochs (_epoch.pxi).
# * It pickles as its constructor arguments (``__reduce__``); the tuner's
#   measurements and the predictor cache are not pickled.

cdef class NetSpec:
    """Shape and activations of a network, and where each layer lives in
    the flat parameter buffer.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_features, *hidden_layer_sizes, n_outputs]``.
    hidden_activation, output_activation : str
        Activation names (``ACTIVATION_CODES``): a hidden layer takes one
        with a derivative, the output layer one with a loss.
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
        if hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"unknown hidden activation {hidden_activation!r}; expected one "
                             f"of {', '.join(HIDDEN_ACTIVATIONS)}")
        if output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {output_activation!r}; expected one "
                             f"of {', '.join(_OUTPUT_ACTIVATIONS)}")
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
        """Length of the flat parameter buffer."""
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

    def train_workspace_size(self, Py_ssize_t batch_size, bint gather_rows, bint dropout=False,
                             bint clip=False):
        """Elements of workspace ``train_epoch`` (``loss_and_grad``: chunk rows,
        no gathering, no clipping) needs for ``batch_size``, with or without
        dropout and gradient clipping."""
        return _train_ws_size(&self.net, batch_size, gather_rows, dropout, clip)

    def predict_workspace_size(self, Py_ssize_t chunk_rows):
        """Elements of workspace ``forward`` needs for ``chunk_rows``."""
        return _predict_ws_size(&self.net, chunk_rows)

    def __reduce__(self):
        return (NetSpec, (self.sizes, self.hidden_activation, self.output_activation))
