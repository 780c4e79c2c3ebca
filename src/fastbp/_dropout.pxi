# Dropout: the counter-based mask generator and the passes that apply it.
#
# Notes
# -----
# * Inverted dropout on the hidden layers' outputs while training: a unit is
#   kept with probability 1 - p and its output scaled by 1 / (1 - p), so that
#   prediction uses the network as it is. Predict, loss_and_grad and
#   validation scoring never drop anything (but loss_and_grad's test hook,
#   ``DropoutRecord(fixed_step=...)``).
# * The mask is a pure function of (seed, step, hidden layer, the row's
#   position in the epoch's order, unit): a 64-bit key per (seed, step,
#   layer) and a 32-bit key per row (splitmix64, scalar), then per unit
#   Wellons' lowbias32, xor-shifts and two 32-bit multiplies (AVX2 has no
#   64-bit multiply; it vectorises these). Nothing depends on the threads or
#   on how the rows are split between them: weights do not depend on the
#   thread count, and the same seed gives the same fit.
# * ``dropout_forward`` runs right after the layer's activation: it keeps the
#   undropped outputs (the derivative reads them, unless the activation kept
#   f'(z) itself) and writes the dropped ones, which the next layer and the
#   weight gradient read.
#   ``dropout_backward`` applies the same mask to the deltas: it is
#   regenerated bit for bit from the counter, so no mask is stored. Both
#   carry FASTBP_VECTOR_CLONES (setup.py): AVX2's 32-bit multiplies.
# * The seed is drawn from the fit's random state only when some rate is
#   above zero (no extra draw otherwise: scikit-learn's draws stay as they
#   are).

from libc.stdint cimport int32_t, uint32_t


cdef struct DropoutConfig:
    const double *rates           # one per hidden layer, 0 where a layer has none
    uint64_t seed
    long long fixed_step          # > 0: every batch uses the masks of this step (test hook)


cdef inline uint64_t _splitmix64(uint64_t x) noexcept nogil:
    # Steele, Lea and Flood's finaliser: a bijection with full avalanche
    x = x + <uint64_t> 0x9E3779B97F4A7C15
    x = (x ^ (x >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    x = (x ^ (x >> 27)) * <uint64_t> 0x94D049BB133111EB
    return x ^ (x >> 31)


cdef inline uint32_t _lowbias32(uint32_t x) noexcept nogil:
    # Wellons' 32-bit integer hash (bias 0.17 of the ideal avalanche)
    x = x ^ (x >> 16)
    x = x * <uint32_t> 0x7feb352d
    x = x ^ (x >> 15)
    x = x * <uint32_t> 0x846ca68b
    return x ^ (x >> 16)


cdef inline uint64_t dropout_layer_key(uint64_t seed, long long step, int layer) noexcept nogil:
    # the key of one hidden layer (1..L-1) at one optimizer step (counted from 1)
    return _splitmix64(_splitmix64(seed ^ _splitmix64(<uint64_t> step)) + <uint64_t> layer)


cdef inline int32_t _drop_threshold(double rate) noexcept nogil:
    # a unit is kept when the top 31 bits of its hash are at least this
    cdef double t = rate * 2147483648.0 + 0.5
    return <int32_t> (t if t < 2147483647.0 else 2147483647.0)


cdef inline bint _unit_kept(uint32_t row_key, Py_ssize_t unit, int32_t threshold) noexcept nogil:
    return <int32_t> (_lowbias32(row_key ^ ((<uint32_t> unit) * <uint32_t> 0x9E3779B9)) >> 1) \
        >= threshold


cdef inline uint32_t _row_key(uint64_t layer_key, Py_ssize_t position) noexcept nogil:
    return <uint32_t> _splitmix64(layer_key + <uint64_t> position)


cdef void dropout_forward(floating *A, floating *U, Py_ssize_t n_rows, Py_ssize_t n,
                          Py_ssize_t position, uint64_t layer_key, double rate) noexcept nogil:
    """``n_rows`` adjacent rows of ``n`` outputs, the first at ``position`` in
    the epoch's order: OUT ``U`` = the outputs as they are (unless NULL),
    IN/OUT ``A`` = kept ones times 1 / (1 - rate), dropped ones 0."""
    cdef floating scale = <floating> (1.0 / (1.0 - rate))
    cdef int32_t threshold = _drop_threshold(rate)
    cdef uint32_t row_key
    cdef Py_ssize_t r, j
    cdef floating *a
    cdef floating *u
    for r in range(n_rows):
        row_key = _row_key(layer_key, position + r)
        a = A + r * n
        if U != NULL:
            u = U + r * n
            for j in range(n):
                u[j] = a[j]
        for j in range(n):
            a[j] = a[j] * scale if _unit_kept(row_key, j, threshold) else 0


cdef void dropout_backward(floating *D, Py_ssize_t n_rows, Py_ssize_t n,
                           Py_ssize_t position, uint64_t layer_key, double rate) noexcept nogil:
    """The deltas at a dropped layer's output: the forward pass's mask and
    scale, regenerated (kept: times 1 / (1 - rate), dropped: 0)."""
    cdef floating scale = <floating> (1.0 / (1.0 - rate))
    cdef int32_t threshold = _drop_threshold(rate)
    cdef uint32_t row_key
    cdef Py_ssize_t r, j
    cdef floating *d
    for r in range(n_rows):
        row_key = _row_key(layer_key, position + r)
        d = D + r * n
        for j in range(n):
            d[j] = d[j] * scale if _unit_kept(row_key, j, threshold) else 0


@cython.final
cdef class DropoutRecord:
    """The dropout of a fit as the engine reads it.

    Parameters
    ----------
    rates : sequence of float
        The rate of each hidden layer, in [0, 1).
    seed : int
        The fit's mask seed (drawn from its random state), 0 .. 2**64 - 1.
    fixed_step : int, default=0
        Test hook: when > 0, every batch (and ``loss_and_grad``, which
        otherwise never drops) uses the masks of this step, so that a
        gradient can be checked under a fixed mask.
    """
    cdef DropoutConfig config
    cdef readonly object rates

    def __cinit__(self, rates, uint64_t seed, long long fixed_step=0):
        self.rates = np.ascontiguousarray(rates, dtype=np.float64).reshape(-1)
        if not np.all((self.rates >= 0) & (self.rates < 1)):
            raise ValueError(f"dropout rates must be in [0, 1), got {list(self.rates)}")
        if fixed_step < 0:
            raise ValueError(f"fixed_step must be >= 0, got {fixed_step}")
        self.config.rates = <const double *> cnp.PyArray_DATA(self.rates) \
            if self.rates.shape[0] else NULL
        self.config.seed = seed
        self.config.fixed_step = fixed_step

    @property
    def seed(self):
        return self.config.seed

    @property
    def fixed_step(self):
        return self.config.fixed_step

    def __reduce__(self):
        return (DropoutRecord, (self.rates, self.config.seed, self.config.fixed_step))


cdef int _check_dropout(const Net *net, DropoutRecord dropout) except -1:
    # one rate per hidden layer
    if dropout is not None and dropout.rates.shape[0] != net.n_layers - 1:
        raise ValueError(f"dropout has {dropout.rates.shape[0]} rates, the network has "
                         f"{net.n_layers - 1} hidden layers")
    return 0
