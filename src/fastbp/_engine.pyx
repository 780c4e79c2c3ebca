# cython: language_level=3
"""Typed training and inference core of fastbp.

# Design:
#
# * One network = a ``NetSpec`` (layer widths, activation codes, offsets) plus
#   one flat parameter buffer laid out [W0, b0, W1, b1, ...]. ``W_i`` is the
#   row-major (n_in, n_out) matrix scikit-learn calls ``coefs_[i]``. Gradients
#   and optimizer state (SGD velocity; Adam m and v) are flat buffers of the
#   same length, so an optimizer step is one fused loop over all parameters
#   with the L2 penalty folded in.
# * Every kernel is written once over Cython's ``floating`` fused type, which
#   gives the float32 and float64 engines from one source.
# * Batches are row-major: ``Z = A @ W + b``. Matrix products go through BLAS
#   (``scipy.linalg.cython_blas``) using the transpose trick (a row-major
#   matrix is its transpose in column-major; matrix-vector products go to
#   gemv, as numpy's matmul does), bias and activation are added in one pass
#   over the product. Small products of one row (a batch of one, a one-row
#   predict) and one output's weight gradient (a sum of rows) run in typed
#   loops instead, where a gemv call costs more than the work (limits
#   measured by benchmarks/small_products.py); their sums are split in two
#   chains (even and odd terms), the same for every element whichever block
#   or thread computes it.
# * ``train_epoch`` runs a whole epoch (every mini-batch: forward, loss,
#   backward, optimizer step) without the GIL; it takes it back only every
#   ~20 ms to check for Ctrl-C. Python only runs between epochs.
# * Threads (``_threads.h``): each batch is split between the threads of a
#   small persistent pool in two phases, rows (forward, loss, every delta)
#   then parameters (each thread's rows of every W_i: gradient and step), with
#   spin-then-sleep barriers. When a batch's activations outweigh the
#   parameters (``_data_parallel``, by shape alone), the rows phase also takes
#   the gradient of each of two fixed half-batches, and the parameters phase
#   adds the two and steps: one gradient crosses between the cores instead of
#   the batch's activations and deltas. scipy's OpenBLAS is held at one thread meanwhile
#   (one threading layer). The epoch runs in segments; a tuner picks one
#   thread or the allowed maximum per segment by measured speed, so a busy
#   machine slows training down instead of collapsing it. float64 weights do
#   not depend on the thread count (to rounding: no thread gets a lone row,
#   which would take a one-row path).
# * Element-wise kernels are compiled for AVX-512, AVX2 and baseline x86-64;
#   the CPU picks one at load time (``_simd.h``, setup.py).
# * exp (softmax, logistic, tanh, Poisson) is the engine's own: branch-free
#   (a polynomial, within 1 ulp) so that loops over a block vectorise, where
#   libm's is a call per value. Activations built on it add the bias row by
#   row, then take the exps of the whole block in one loop.
# * Kernels take raw pointers (``# IN`` / ``# OUT`` comments name the roles);
#   ``def`` entry points do the buffer checks once and release the GIL.
# * The epoch shuffle makes RandomState.shuffle's draws (scikit-learn's
#   epoch order) without a call per draw: numpy's MT19937 state is read in
#   place, 624 words are generated and tempered at once (vectorised), and the
#   state is left where numpy's own draws would leave it. The layout is
#   checked once against numpy's own generator; any other bit generator, or
#   a failed check, takes the per-draw path.
# * Arithmetic follows scikit-learn's order of operations (``(G + alpha W) /
#   sw_sum``, ``momentum * v - lr * g``, ``-lr_t * m / (sqrt(v) + eps)``) so a
#   float64 fit reproduces scikit-learn's weights up to BLAS rounding.
"""

from libc.math cimport log, log1p, sqrt, sqrtf, pow
from libc.string cimport memcpy, memset, memcmp
from libc.stdlib cimport malloc, free
from libc.time cimport clock_t
from libc.stdint cimport uint32_t, uint64_t
cimport cython
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

import numpy as np

cdef extern from "_simd.h":
    pass

cdef extern from "_threads.h" nogil:
    ctypedef struct fb_barrier:
        pass
    ctypedef void (*fb_task_fn)(void *arg, int tid, int nthreads) noexcept nogil
    void fb_barrier_init(fb_barrier *b, int n)
    void fb_barrier_destroy(fb_barrier *b)
    void fb_barrier_wait(fb_barrier *b)
    void fb_pool_run(fb_task_fn fn, void *arg, int n)
    long fb_fetch_add(long *counter)
    long long fb_now_ns()

cdef extern from "Python.h":
    int PyErr_CheckSignals()


# Activation codes shared with Python (_network.ACTIVATION_CODES).
cdef enum:
    ACT_IDENTITY = 0
    ACT_LOGISTIC = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_SOFTMAX = 5
    ACT_EXP = 6

# Optimizer codes.
cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1


ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "logistic": ACT_LOGISTIC,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
    "exp": ACT_EXP,
}

# Slope of leaky_relu for negative inputs (PyTorch's default).
LEAKY_SLOPE = 0.01
cdef double _LEAKY_SLOPE = 0.01

# Rows per chunk for full-batch passes (predict, loss_and_gradients, lbfgs):
# bounds the workspace whatever the number of samples.
DEFAULT_CHUNK_ROWS = 512

# Parameters an optimizer step processes per block (the gradient block stays in L1).
cdef enum:
    UPDATE_BLOCK = 1024

# How often (nanoseconds of work) a training loop takes the GIL to check for
# Ctrl-C.
cdef long long SIGNAL_CHECK_NS = 20_000_000


# ---------------------------------------------------------------------------
# Network description
# ---------------------------------------------------------------------------

cdef struct Net:
    int n_layers            # number of weight layers L (= len(coefs_))
    Py_ssize_t *sizes       # L + 1 widths: n_features, hidden..., n_outputs
    Py_ssize_t *off_w       # offset of W_i in the flat buffer
    Py_ssize_t *off_b       # offset of b_i in the flat buffer
    Py_ssize_t n_params
    Py_ssize_t n_weights    # entries of all the W_i: multiply-adds per row of a forward pass
    Py_ssize_t max_width    # widest layer after the input
    int hidden_act
    int out_act


cdef struct TunerState:
    double ns_per_row[2]      # estimated time per sample: [0] one thread, [1] n threads
    double last_rate[2]       # the latest measurement of each
    int n_measured[2]         # measurements of each so far (counted up to 2)
    long long segments        # segments run so far
    long long next_explore    # segment at which to try the slower choice again
    long long interval        # segments between tries (doubles while they lose)


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


# Work per batch (multiply-adds of the forward pass) below which a second
# thread costs more in barriers than it saves (measured; see benchmarks/).
cdef Py_ssize_t MIN_PARALLEL_WORK_C = 300000
# the data-parallel mode when the batch's activations (inputs included) are
# at least this many times the parameters. Measured on 2 cores, both modes in
# one process: at ratios 1.1-2.1 the data-parallel mode is 0-5% faster, at 4-18
# 11-20%, at 0.3-0.6 2-11% slower (docs/performance.md)
cdef double DP_RATIO = 1.0


cdef inline bint _worth_threading(const Net *net, Py_ssize_t B) noexcept nogil:
    # batches of B rows have enough work for a second thread to pay
    return net.n_weights * B >= MIN_PARALLEL_WORK_C


cdef inline bint _data_parallel(const Net *net, Py_ssize_t B) noexcept nogil:
    """Whether dense training batches of ``B`` rows take the data-parallel
    mode: each of two fixed half-batches gets its own gradient (the rows'
    forward, backward and ``A^T delta`` products), then the two are added
    and the step taken, each thread over its share of the parameters.

    The other mode (each thread computes the gradient of its share of the
    parameters from every row of the batch) moves the batch's activations and
    deltas between the cores every batch; this one moves only one gradient.
    It is chosen by shape alone (never by the thread count, so the weights
    do not depend on it): when the batch is worth threading at all, and its
    activations (inputs included) outweigh the parameters. One thread runs
    both halves in turn, with the same arithmetic."""
    cdef Py_ssize_t acts = 0
    cdef int i
    if B < 4 or not _worth_threading(net, B):
        return False
    for i in range(net.n_layers + 1):
        acts += net.sizes[i]
    return acts * B >= DP_RATIO * net.n_params


# ---------------------------------------------------------------------------
# Input rows: dense C-contiguous or CSR, addressed through an optional row map
# ---------------------------------------------------------------------------

cdef struct Input:
    const void *dense           # (n_samples, n_features) C-contiguous, or NULL
    const void *csr_data        # CSR values, or NULL for dense
    const Py_ssize_t *csr_indices
    const Py_ssize_t *csr_indptr
    Py_ssize_t n_features


# ---------------------------------------------------------------------------
# Scalar helpers (one source for float and double)
# ---------------------------------------------------------------------------

cdef union _Bits64:
    double d
    uint64_t u


cdef inline double _pow2(double n) noexcept nogil:
    # 2**n for an integer-valued n in [-1022, 1023], from its exponent bits
    # (n + 1023 lands in the low mantissa bits of n + 1023 + 1.5 * 2**52)
    cdef _Bits64 s
    s.d = n + (6755399441055744.0 + 1023.0)
    s.u = s.u << 52
    return s.d


cdef inline double _exp(double x) noexcept nogil:
    """exp within 0.96 ulp, branch-free so that loops calling it vectorise
    (libm's is a function call per value); overflow gives inf, underflow
    subnormals then 0, NaN stays NaN.

    ``x = n ln2 + r`` with ``|r| <= ln2 / 2`` (ln2 in two parts, the first
    exact in ``n ln2``); ``e**r = 1 + (r + r**2 P(r))`` with P the Taylor
    series up to r**11 / 13! (its remainder is below 2**-57), then times ``2**n``
    applied as two powers of two so that neither leaves the normal range.
    """
    cdef double n, n1, r, p
    x = -746.0 if x < -746.0 else x        # exp(-746) and exp(710) round to 0 and inf
    x = 710.0 if x > 710.0 else x          # (NaN passes through both)
    n = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0  # round(x / ln2)
    r = x - n * 6.93145751953125e-1
    r = r - n * 1.42860682030941723212e-6
    p = 1.6059043836821613e-10
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    n1 = (n * 0.5 + 6755399441055744.0) - 6755399441055744.0
    return ((1.0 + (r + (r * r) * p)) * _pow2(n1)) * _pow2(n - n1)


cdef inline floating f_exp(floating x) noexcept nogil:
    # float: the double exp rounded (within half an ulp but for rare ties)
    if floating is float:
        return <float> _exp(<double> x)
    else:
        return _exp(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    """tanh in one exp (or a short rational) instead of libm's expm1-based
    tanh; within 2 ulp of it. Branch-free (both forms are computed, one is
    kept) so that loops calling it vectorise.

    |x| < 0.625: Cephes' rational approximation ``x + x z P(z) / Q(z)``,
    ``z = x**2`` (float: its polynomial); otherwise ``1 - 2 / (exp(2|x|) + 1)``
    with the sign of x, where no cancellation can occur (the result is at
    least 0.55 in magnitude); exp overflowing to inf gives exactly +-1.
    Zero (either sign) and NaN come back as they are.
    """
    cdef floating z, a, r, small
    a = x if x >= 0 else -x
    z = x * x
    if floating is float:
        small = ((((<float> -5.70498872745e-3 * z + <float> 2.06390887954e-2) * z
                   - <float> 5.37397155531e-2) * z + <float> 1.33314422036e-1) * z
                 - <float> 3.33332819422e-1) * z * x + x
    else:
        small = x + x * z * (((-9.64399179425052238628e-1 * z
                               - 9.92877231001918586564e1) * z
                              - 1.61468768441708447952e3)
                             / (((z + 1.12811678491632931402e2) * z
                                 + 2.23548839060100448583e3) * z
                                + 4.84406305325125486048e3))
    r = 1 - 2 / (f_exp(2 * a) + 1)
    r = r if x >= 0 else -r
    r = small if a < <floating> 0.625 else r
    # ``|``, not ``or``: a short-circuit is control flow and stops the loop
    # calling this from vectorising (NaN already comes out of ``r`` as NaN)
    return x if ((a == 0) | (a != a)) else r

cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)

cdef inline floating f_eps(floating x) noexcept nogil:
    # machine epsilon of the dtype, the clip scikit-learn's log-losses use
    if floating is float:
        return 1.1920928955078125e-07
    else:
        return 2.220446049250313e-16


cdef inline long long _now_ns() noexcept nogil:
    return fb_now_ns()


cdef int _check_signals(long long *last_check) noexcept nogil:
    """Run pending Python signal handlers every SIGNAL_CHECK_NS of work.

    Returns 1 when a handler raised (KeyboardInterrupt for Ctrl-C, or whatever
    the user's handler raises); the exception stays set and the caller must
    stop and hand it on with ``_raise_pending()`` once it holds the GIL.
    """
    cdef long long now = _now_ns()
    cdef int stop = 0
    if now - last_check[0] < SIGNAL_CHECK_NS:
        return 0
    last_check[0] = now
    with gil:
        if PyErr_CheckSignals() != 0:
            stop = 1
    return stop


cdef int _raise_pending() except -1:
    # the exception set by a signal handler in _check_signals propagates from here
    return -1


# ---------------------------------------------------------------------------
# Dense algebra
# ---------------------------------------------------------------------------

cdef inline void _gemv(char trans, int m, int n, floating alpha, const floating *A, int lda,
                       const floating *x, int incx, floating beta, floating *y,
                       int incy) noexcept nogil:
    """Column-major ``y = alpha * op(A) @ x + beta * y``, A (m x n)."""
    if floating is float:
        sgemv(&trans, &m, &n, &alpha, <float *> A, &lda, <float *> x, &incx, &beta, y, &incy)
    else:
        dgemv(&trans, &m, &n, &alpha, <double *> A, &lda, <double *> x, &incx, &beta, y,
              &incy)


cdef void small_gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating *A,
                     Py_ssize_t sam, Py_ssize_t sak, const floating *B, Py_ssize_t ldb,
                     floating *C, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``C (M x N) = A @ B`` in typed loops, for products too
    small to pay for a BLAS call: ``A[m, k]`` is ``A[m * sam + k * sak]`` (A,
    A^T, or a vector with sam 0), rows of B are contiguous.

    Every element is ``sum over even k + sum over odd k`` of ``A[m, k] B[k,
    j]`` (two dependency chains; for K <= 2 exactly the sum BLAS gives),
    whichever block it falls in: eight columns at a time in registers (a last
    partial block overlaps the previous one, writing the same values again),
    one at a time when N < 8."""
    cdef floating s0, s1, s2, s3, s4, s5, s6, s7, t0, t1, t2, t3, t4, t5, t6, t7, x, y
    cdef const floating *a
    cdef const floating *b
    cdef floating *c
    cdef Py_ssize_t m, j0, j, k
    for m in range(M):
        a = A + m * sam
        c = C + m * ldc
        if N < 8:
            for j in range(N):
                s0 = t0 = 0
                for k in range(0, K - 1, 2):
                    s0 = s0 + a[k * sak] * B[k * ldb + j]
                    t0 = t0 + a[(k + 1) * sak] * B[(k + 1) * ldb + j]
                if K % 2:
                    s0 = s0 + a[(K - 1) * sak] * B[(K - 1) * ldb + j]
                c[j] = s0 + t0
            continue
        j0 = 0
        while True:
            if j0 > N - 8:
                j0 = N - 8
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
            t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0
            b = B + j0
            for k in range(0, K - 1, 2):
                x = a[k * sak]
                y = a[(k + 1) * sak]
                s0 = s0 + x * b[0]; s1 = s1 + x * b[1]; s2 = s2 + x * b[2]; s3 = s3 + x * b[3]
                s4 = s4 + x * b[4]; s5 = s5 + x * b[5]; s6 = s6 + x * b[6]; s7 = s7 + x * b[7]
                b = b + ldb
                t0 = t0 + y * b[0]; t1 = t1 + y * b[1]; t2 = t2 + y * b[2]; t3 = t3 + y * b[3]
                t4 = t4 + y * b[4]; t5 = t5 + y * b[5]; t6 = t6 + y * b[6]; t7 = t7 + y * b[7]
                b = b + ldb
            if K % 2:
                x = a[(K - 1) * sak]
                s0 = s0 + x * b[0]; s1 = s1 + x * b[1]; s2 = s2 + x * b[2]; s3 = s3 + x * b[3]
                s4 = s4 + x * b[4]; s5 = s5 + x * b[5]; s6 = s6 + x * b[6]; s7 = s7 + x * b[7]
            c[j0] = s0 + t0; c[j0 + 1] = s1 + t1; c[j0 + 2] = s2 + t2; c[j0 + 3] = s3 + t3
            c[j0 + 4] = s4 + t4; c[j0 + 5] = s5 + t5; c[j0 + 6] = s6 + t6; c[j0 + 7] = s7 + t7
            if j0 + 8 >= N:
                break
            j0 += 8


cdef inline bint _small_row_work(Py_ssize_t n, Py_ssize_t K, floating *dtype_tag) noexcept nogil:
    # a row of n values summed over K terms: typed loops beat a BLAS gemv call
    # up to here (measured by benchmarks/small_products.py)
    if floating is float:
        return n <= 128 and n * K <= 512     # BLAS's float kernels are twice as wide
    else:
        return n * K <= (8192 if K <= 64 else 4096)


cdef inline void gemm_rm(bint trans_a, bint trans_b, int M, int N, int K,
                         floating alpha, const floating *A, int lda,
                         const floating *B, int ldb, floating beta,
                         floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M x N) = alpha * op(A) @ op(B) + beta * C``: outer
    products and products of one row (or one output's weight gradient) that
    are small enough in typed loops, the rest through BLAS (``_blas_rm``)."""
    cdef Py_ssize_t i, j
    cdef floating ai
    cdef floating *c
    if M == 0 or N == 0:
        return
    if K == 1 and alpha == 1 and (beta == 0 or beta == 1):
        # an outer product: one rounded multiply per element, as BLAS gives it
        # (op(B) is a row of B, or a column: contiguous when ldb is 1)
        for i in range(M):
            ai = A[i * lda] if not trans_a else A[i]
            c = C + i * ldc
            if not trans_b or ldb == 1:
                if beta == 0:
                    for j in range(N):
                        c[j] = ai * B[j]
                else:
                    for j in range(N):
                        c[j] = c[j] + ai * B[j]
            else:
                if beta == 0:
                    for j in range(N):
                        c[j] = ai * B[j * ldb]
                else:
                    for j in range(N):
                        c[j] = c[j] + ai * B[j * ldb]
        return
    if beta == 0 and alpha == 1 and not trans_b:
        # a row times a small matrix, or one output's weight gradient (a sum of
        # rows of A; lda, the full row length, bounds it whatever this thread's
        # share): a gemv call costs more than the work
        if M == 1 and _small_row_work(N, K, C):
            small_gemm(1, N, K, A, 0, lda if trans_a else 1, B, ldb, C, ldc)
            return
        if N == 1 and trans_a and ldc == 1 and _small_row_work(lda, K, C):
            small_gemm(1, M, K, B, 0, ldb, A, lda, C, ldc)
            return
    _blas_rm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)


cdef void _blas_rm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
                   const floating *A, int lda, const floating *B, int ldb, floating beta,
                   floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M x N) = alpha * op(A) @ op(B) + beta * C`` through BLAS.

    A row-major matrix read as column-major is its transpose, so the
    column-major call computes ``C^T = op(B)^T @ op(A)^T``.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef char tv
    cdef int m, n, incx, incy
    if M == 1 or N == 1:
        # matrix-vector products go to gemv, as numpy's matmul does (OpenBLAS's
        # gemm would pack the whole matrix first; the rounding follows numpy)
        if M == 1:
            # c (1 x N) = a @ op(B); a is row 0 of op(A)
            incx = lda if trans_a else 1
            incy = 1
            if trans_b:
                tv = b'T'; m = K; n = N
            else:
                tv = b'N'; m = N; n = K
            _gemv(tv, m, n, alpha, B, ldb, A, incx, beta, C, incy)
        else:
            # c (M x 1) = op(A) @ b; b is column 0 of op(B)
            incx = 1 if trans_b else ldb
            incy = ldc
            if trans_a:
                tv = b'N'; m = M; n = K
            else:
                tv = b'T'; m = K; n = M
            _gemv(tv, m, n, alpha, A, lda, B, incx, beta, C, incy)
        return
    if floating is float:
        sgemm(&ta, &tb, &N, &M, &K, &alpha, <float *> B, &ldb, <float *> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &N, &M, &K, &alpha, <double *> B, &ldb, <double *> A, &lda,
              &beta, C, &ldc)


cdef void exp_activation(floating *z, Py_ssize_t n, int act) noexcept nogil:
    """In place ``z = act(z)`` on ``n`` consecutive values for the
    activations built on exp (tanh, logistic, exp): one branch-free loop each,
    which the compiler vectorises."""
    cdef Py_ssize_t j
    cdef floating v, e
    if act == ACT_TANH:
        for j in range(n):
            z[j] = f_tanh(z[j])
    elif act == ACT_LOGISTIC:
        for j in range(n):
            # stable: exponentiate -|v| only; 1 / (1 + e) or e / (1 + e)
            v = z[j]
            e = f_exp(v if v < 0 else -v)
            z[j] = (1 if v >= 0 else e) / (1 + e)
    elif act == ACT_EXP:
        for j in range(n):
            z[j] = f_exp(z[j])


cdef inline void _block_exp_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld,
                                       Py_ssize_t n_out, int act) noexcept nogil:
    # exp_activation over a block of rows: one loop over the whole block when
    # its rows are adjacent (few outputs per row still fill the vectors)
    cdef Py_ssize_t r
    if ld == n_out:
        exp_activation(Z, n_rows * n_out, act)
    else:
        for r in range(n_rows):
            exp_activation(Z + r * ld, n_out, act)


cdef inline void _softmax_shift(floating *z, Py_ssize_t n_out,
                                const floating *b) noexcept nogil:
    # z = (z + b) - max(z + b), the argument of softmax's exp
    cdef Py_ssize_t j
    cdef floating mx = z[0] + b[0]
    for j in range(n_out):
        z[j] = z[j] + b[j]
        if z[j] > mx:
            mx = z[j]
    for j in range(n_out):
        z[j] = z[j] - mx


cdef void bias_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld, Py_ssize_t n_out,
                          const floating *b, int act) noexcept nogil:
    """In place ``Z = act(Z + b)`` (row-wise bias) on ``n_rows`` rows of
    ``n_out`` values spaced ``ld`` apart (a column block of a row-major
    matrix); the hidden activations and the prediction-time output
    activations. Softmax needs whole rows (``n_out`` = the row width).
    Activations built on exp add the bias first, then run over the block."""
    cdef Py_ssize_t r, j
    cdef floating *z
    cdef floating v, s
    cdef floating slope = <floating> _LEAKY_SLOPE
    for r in range(n_rows):
        z = Z + r * ld
        if act == ACT_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == ACT_LEAKY_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else slope * v
        elif act == ACT_SOFTMAX:
            _softmax_shift(z, n_out, b)
        else:
            for j in range(n_out):
                z[j] = z[j] + b[j]
    if act == ACT_TANH or act == ACT_LOGISTIC or act == ACT_EXP:
        _block_exp_activation(Z, n_rows, ld, n_out, act)
    elif act == ACT_SOFTMAX:
        _block_exp_activation(Z, n_rows, ld, n_out, ACT_EXP)
        for r in range(n_rows):
            z = Z + r * ld
            s = 0
            for j in range(n_out):
                s = s + z[j]
            for j in range(n_out):
                z[j] = z[j] / s


cdef void activation_derivative(floating *D, const floating *A, Py_ssize_t n_rows,
                                Py_ssize_t ld, Py_ssize_t n, int act) noexcept nogil:
    """In place ``D *= act'(z)`` on ``n_rows`` rows of ``n`` values spaced
    ``ld`` apart, written in terms of the activation's output ``A = act(z)``
    (same layout) as scikit-learn does."""
    cdef Py_ssize_t r, j
    cdef floating *d
    cdef const floating *a
    cdef floating slope = <floating> _LEAKY_SLOPE
    if act == ACT_IDENTITY:
        return
    if ld == n:
        # adjacent rows: one loop over the block
        n = n * n_rows
        n_rows = 1
    for r in range(n_rows):
        d = D + r * ld
        a = A + r * ld
        if act == ACT_RELU:
            for j in range(n):
                d[j] = d[j] if a[j] != 0 else 0
        elif act == ACT_LEAKY_RELU:
            for j in range(n):
                d[j] = d[j] * slope if a[j] <= 0 else d[j]
        elif act == ACT_TANH:
            for j in range(n):
                d[j] = d[j] * (1 - a[j] * a[j])
        elif act == ACT_LOGISTIC:
            for j in range(n):
                d[j] = (d[j] * a[j]) * (1 - a[j])


cdef void output_loss_delta(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                            const floating *b, const floating *Y,
                            const Py_ssize_t *rows, Py_ssize_t row0,
                            const floating *sw, int out_act,
                            double *row_losses, floating *ex, floating *ex2) noexcept nogil:
    """Finish the output layer and start backprop.

    IN/OUT ``Z``: pre-activation ``A @ W`` without bias; on return it holds
    ``delta = (act(Z + b) - y) * sw``, the gradient of the loss with respect
    to the output layer's pre-activation. This simple form holds for the
    canonical link pairs used here: logistic + binary log-loss, softmax +
    log-loss, identity + squared error, exp + Poisson deviance.
    IN ``Y``: targets, row ``rows[r]`` (or ``row0 + r`` when ``rows`` is NULL).
    IN ``sw``: sample weights indexed like ``Y``, or NULL.
    OUT ``ex``, ``ex2``: scratch of ``n_rows * n_out`` each.
    OUT ``row_losses[r]``: ``sw_r * loss_r`` where ``loss_r`` sums over the
    outputs: half squared error; binary log-loss and log-loss with the
    probability clipped to [eps, 1 - eps] as scikit-learn does (computed from
    the logits, so no overflow and no log(0)); half Poisson deviance ``y
    log(y / mu) - y + mu`` with ``log mu = z``.

    Element-wise outputs (identity, logistic, exp) gather the batch's
    targets into ``ex``, take every value's delta and loss in one branch-free
    loop over the block (it vectorises, exp included), then sum each row's
    losses. Softmax takes the block's exps in one loop, then works row by
    row. Unweighted log-losses sum their logs as the log of a product
    (renormalised before it can overflow): one log per block of rows instead
    of one per value; the sum then differs from the per-value sum by rounding
    only (it is the reported loss; no gradient uses it).
    """
    cdef Py_ssize_t r, j, i, src, n = n_rows * n_out
    cdef floating *z
    cdef const floating *y
    cdef floating v, e, d, p, s, w, yi
    cdef double row_loss, lin
    cdef floating eps = f_eps(<floating> 0)
    cdef double max_loss = -log(<double> eps)             # -log(eps)
    cdef double min_loss = -log1p(-<double> eps)          # -log(1 - eps)
    cdef double max_ratio = 1 / (<double> eps)            # exp(max_loss)
    cdef double min_ratio = 1 / (1 - <double> eps)        # exp(min_loss)
    # lin + log(1 + e) is below max_loss for any e in [0, 1] from here down
    cdef double lin_max = max_loss - 0.6931471805599453
    cdef bint products = sw == NULL
    cdef double prod = 1.0, log_sum = 0.0, ratio
    if out_act == ACT_SOFTMAX:
        # the arguments z + b minus the row's largest, then the block's exps
        for r in range(n_rows):
            _softmax_shift(Z + r * n_out, n_out, b)
        exp_activation(Z, n, ACT_EXP)
    else:
        # z + b, and the targets gathered ((r, j) stepped along: no inner loop
        # per row, which costs more than its work when n_out is 1)
        r = 0
        j = 0
        y = Y + (rows[0] if rows != NULL else row0) * n_out
        for i in range(n):
            Z[i] = Z[i] + b[j]
            ex[i] = y[j]
            j += 1
            if j == n_out:
                j = 0
                r += 1
                if r < n_rows:
                    y = Y + (rows[r] if rows != NULL else row0 + r) * n_out
    if out_act == ACT_IDENTITY:
        for i in range(n):
            v = Z[i] - ex[i]
            ex[i] = (<floating> 0.5 * v) * v
            Z[i] = v
    elif out_act == ACT_LOGISTIC:
        for i in range(n):
            v = Z[i]
            yi = ex[i]
            # e = exp(-|v|) gives both p and log(1 + e) without overflow:
            # -log p = |v| [v < 0] + log(1 + e), -log(1 - p) = v [v >= 0] +
            # log(1 + e); the linear part is lin
            e = f_exp(v if v < 0 else -v)
            d = 1 + e
            p = (1 if v >= 0 else e) / d
            lin = (<double> (v if v >= 0 else -v)) if (yi != 0) == (v < 0) else 0.0
            Z[i] = p - yi
            # the loss is lin + log(d), clipped to [min_loss, max_loss]; log(d)
            # goes to ex2 (taken later) but where a clip may apply: past lin_max
            # (e < 2**-21 there, so log(1 + e) = e to better than 1e-13
            # relative) and at a loss of exactly 0
            ex[i] = <floating> ((lin + e if lin + e < max_loss else max_loss) if lin > lin_max
                                else (min_loss if (lin == 0 and d == 1) else lin))
            ex2[i] = 1 if (lin > lin_max or (lin == 0 and d == 1)) else d
        if products:
            log_sum = _log_of_product(ex2, n)
        else:
            for i in range(n):
                ex[i] = ex[i] + <floating> log(<double> ex2[i])
    elif out_act == ACT_EXP:
        for i in range(n):
            v = Z[i]
            p = f_exp(v)
            ex2[i] = v
            Z[i] = p - ex[i]
        for i in range(n):
            # y log(y / mu) - y + mu = y (log y - z) + (mu - y); 0 log 0 = 0
            yi = ex[i]
            ex[i] = <floating> (((<double> yi) * (log(<double> yi) - ex2[i]) if yi > 0 else 0.0)
                                + Z[i])
    # each row's loss, and the deltas weighted
    r = 0
    j = 0
    row_loss = 0.0
    w = sw[rows[0] if rows != NULL else row0] if sw != NULL and n_rows > 0 else 1
    for i in range(n if out_act != ACT_SOFTMAX else 0):
        row_loss += ex[i]
        if sw != NULL:
            Z[i] = Z[i] * w
        j += 1
        if j == n_out:
            row_losses[r] = row_loss * w if sw != NULL else row_loss
            row_loss = 0.0
            j = 0
            r += 1
            if sw != NULL and r < n_rows:
                w = sw[rows[r] if rows != NULL else row0 + r]
    if out_act == ACT_SOFTMAX:
        for r in range(n_rows):
            src = rows[r] if rows != NULL else row0 + r
            z = Z + r * n_out
            y = Y + src * n_out
            w = sw[src] if sw != NULL else 1
            row_loss = 0.0
            s = 0
            for j in range(n_out):
                s = s + z[j]
            for j in range(n_out):
                if y[j] != 0:
                    # -log p_j = log(sum / e_j), clipped to [min_loss, max_loss]:
                    # ratio > 1 / eps is the top clip, e_j == 0 included
                    ratio = (<double> s) / z[j]
                    if ratio > max_ratio:
                        row_loss += y[j] * max_loss
                    elif ratio < min_ratio:
                        row_loss += y[j] * min_loss
                    elif products and y[j] == 1:
                        prod *= ratio
                        if prod > 1e280:
                            log_sum += log(prod)
                            prod = 1.0
                    else:
                        row_loss += y[j] * log(ratio)
            for j in range(n_out):
                v = z[j] / s - y[j]
                z[j] = v * w if sw != NULL else v
            row_losses[r] = row_loss * w if sw != NULL else row_loss
    if n_rows > 0:
        # the block's logs, taken once: log of the product of their arguments
        row_losses[0] += log_sum + log(prod)


cdef double _log_of_product(const floating *x, Py_ssize_t n) noexcept nogil:
    """``sum(log(x[:n]))`` for x in [1, 2], as logs of products: eight running
    products (they vectorise), multiplied together and logged every 1000
    values, before they could overflow."""
    cdef double P[8]
    cdef double total = 0.0
    cdef Py_ssize_t i = 0, l, stop
    while i < n:
        stop = i + 1000 if i + 1000 < n else n
        for l in range(8):
            P[l] = 1.0
        while i + 8 <= stop:
            for l in range(8):
                P[l] = P[l] * x[i + l]
            i += 8
        for l in range(stop - i):
            P[l] = P[l] * x[i + l]
        i = stop
        total += log(((P[0] * P[1]) * (P[2] * P[3])) * ((P[4] * P[5]) * (P[6] * P[7])))
    return total


# ---------------------------------------------------------------------------
# Layers over batches (each call works on one thread's slice of a layer)
# ---------------------------------------------------------------------------

cdef void first_layer_product(const Net *net, const Input *X, const floating *params,
                              const floating *A0, const Py_ssize_t *rows,
                              Py_ssize_t row0, Py_ssize_t B, floating *Z,
                              Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """``Z[:, c0:c1] = X[rows] @ W0[:, c0:c1]`` (no bias). Dense input
    arrives in ``A0`` (gathered rows or a pointer into X); CSR input is read
    in place."""
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *W = params + net.off_w[0]
    cdef const floating *data
    cdef const floating *wrow
    cdef floating *z
    cdef floating v
    cdef Py_ssize_t r, k, j, src
    if c1 <= c0:
        return
    if X.csr_data == NULL:
        gemm_rm(False, False, <int> B, <int> (c1 - c0), <int> n_in, <floating> 1.0,
                A0, <int> n_in, W + c0, <int> n_out, <floating> 0.0, Z + c0, <int> n_out)
        return
    data = <const floating *> X.csr_data
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        for j in range(c0, c1):
            z[j] = 0
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            v = data[k]
            wrow = W + X.csr_indices[k] * n_out
            for j in range(c0, c1):
                z[j] += v * wrow[j]


cdef void first_layer_weight_grad(const Net *net, const Input *X, const floating *A0,
                                  const Py_ssize_t *rows, Py_ssize_t row0, Py_ssize_t B,
                                  const floating *delta, floating beta, floating *G,
                                  Py_ssize_t k0, Py_ssize_t k1,
                                  unsigned char *touched) noexcept nogil:
    """``G[k0:k1] = X[rows][:, k0:k1]^T @ delta + beta * G[k0:k1]`` for the
    first layer (rows ``k0:k1`` of the gradient = input features ``k0:k1``).

    For CSR input with ``beta == 0`` only the rows of features present in the
    batch are written and flagged in ``touched``; the others are left as they
    are and must be read as zero (the optimizer step does, then clears the
    flags).
    """
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *data
    cdef const floating *d
    cdef floating *g
    cdef floating v
    cdef Py_ssize_t r, k, j, src, col
    if k1 <= k0:
        return
    if X.csr_data == NULL:
        gemm_rm(True, False, <int> (k1 - k0), <int> n_out, <int> B, <floating> 1.0,
                A0 + k0, <int> n_in, delta, <int> n_out, beta, G + k0 * n_out, <int> n_out)
        return
    data = <const floating *> X.csr_data
    if beta == 0 and touched == NULL:
        memset(G + k0 * n_out, 0, (k1 - k0) * n_out * sizeof(floating))
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        d = delta + r * n_out
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            col = X.csr_indices[k]
            if col < k0 or col >= k1:
                continue
            v = data[k]
            g = G + col * n_out
            if beta == 0 and touched != NULL and not touched[col]:
                touched[col] = 1
                for j in range(n_out):
                    g[j] = v * d[j]
            else:
                for j in range(n_out):
                    g[j] += v * d[j]


cdef inline floating *_layer(const Net *net, floating *acts, Py_ssize_t B,
                             int i) noexcept nogil:
    # activations of layer i (1..L) inside the workspace block ``acts``
    cdef Py_ssize_t off = 0
    cdef int k
    for k in range(1, i):
        off += net.sizes[k]
    return acts + B * off


cdef floating _pairwise_sum(const floating *a, Py_ssize_t n) noexcept nogil:
    """``a[:n].sum()`` in numpy's order (its pairwise summation: eight
    running sums per block of up to 128 values, blocks halved recursively),
    so that one output's bias gradient is numpy's to the last bit."""
    cdef floating r0, r1, r2, r3, r4, r5, r6, r7, res
    cdef Py_ssize_t i, n2
    if n < 8:
        res = 0
        for i in range(n):
            res = res + a[i]
        return res
    if n > 128:
        n2 = n // 2
        n2 -= n2 % 8
        return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)
    r0 = a[0]; r1 = a[1]; r2 = a[2]; r3 = a[3]
    r4 = a[4]; r5 = a[5]; r6 = a[6]; r7 = a[7]
    i = 8
    while i < n - n % 8:
        r0 = r0 + a[i]; r1 = r1 + a[i + 1]; r2 = r2 + a[i + 2]; r3 = r3 + a[i + 3]
        r4 = r4 + a[i + 4]; r5 = r5 + a[i + 5]; r6 = r6 + a[i + 6]; r7 = r7 + a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res = res + a[i]
        i += 1
    return res


cdef void _column_sums(const floating *D, Py_ssize_t B, Py_ssize_t n_out, Py_ssize_t c0,
                       Py_ssize_t c1, floating beta, floating *out) noexcept nogil:
    """``out[c0:c1] = beta * out[c0:c1] + D[:, c0:c1].sum(axis=0)`` (beta 0 or
    1) in numpy's order: one column (a contiguous vector) pairwise, several
    row after row. Blocks of eight columns add up in registers, each column
    written once (two threads owning neighbouring columns never share a
    cache line while they add)."""
    cdef floating s0, s1, s2, s3, s4, s5, s6, s7
    cdef const floating *d
    cdef Py_ssize_t r, j
    if n_out == 1:
        if c1 > c0:
            out[0] = (out[0] if beta != 0 else 0) + _pairwise_sum(D, B)
        return
    j = c0
    while j + 8 <= c1:
        s0 = out[j] if beta != 0 else 0
        s1 = out[j + 1] if beta != 0 else 0
        s2 = out[j + 2] if beta != 0 else 0
        s3 = out[j + 3] if beta != 0 else 0
        s4 = out[j + 4] if beta != 0 else 0
        s5 = out[j + 5] if beta != 0 else 0
        s6 = out[j + 6] if beta != 0 else 0
        s7 = out[j + 7] if beta != 0 else 0
        for r in range(B):
            d = D + r * n_out + j
            s0 = s0 + d[0]
            s1 = s1 + d[1]
            s2 = s2 + d[2]
            s3 = s3 + d[3]
            s4 = s4 + d[4]
            s5 = s5 + d[5]
            s6 = s6 + d[6]
            s7 = s7 + d[7]
        out[j] = s0
        out[j + 1] = s1
        out[j + 2] = s2
        out[j + 3] = s3
        out[j + 4] = s4
        out[j + 5] = s5
        out[j + 6] = s6
        out[j + 7] = s7
        j += 8
    while j < c1:
        s0 = out[j] if beta != 0 else 0
        for r in range(B):
            s0 = s0 + D[r * n_out + j]
        out[j] = s0
        j += 1


cdef inline void _add_into(floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    # a += b, element by element
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = a[j] + b[j]


cdef inline void _split(Py_ssize_t n, int tid, int nt, Py_ssize_t *lo,
                        Py_ssize_t *hi) noexcept nogil:
    """This thread's share ``[lo, hi)`` of ``n`` items. No share holds a
    single item unless ``n`` is 1: a product over one row takes other paths
    (gemv, typed loops) than one over several, so a lone row would round
    differently depending on the thread count."""
    cdef Py_ssize_t chunk
    if nt <= 1:
        lo[0] = 0
        hi[0] = n
        return
    chunk = (n + nt - 1) // nt
    if chunk < 2:
        chunk = 2
    lo[0] = tid * chunk if tid * chunk < n else n
    if lo[0] == n - 1 and lo[0] > 0:
        lo[0] = n                       # the lone last item joins the share before
    hi[0] = lo[0] + chunk if lo[0] + chunk < n else n
    if hi[0] == n - 1:
        hi[0] = n


# ---------------------------------------------------------------------------
# Optimizer steps over ranges of the flat buffer
# ---------------------------------------------------------------------------

cdef struct Optim:
    int kind
    double learning_rate      # current rate (SGD: after the schedule)
    double momentum
    int nesterov
    double beta_1
    double beta_2
    double epsilon
    long long t               # Adam's step count, updated in place


cdef struct Step:
    # the constants of one optimizer step (the same on every thread)
    int kind
    int nesterov
    double alpha
    double sw_sum
    double lr                 # SGD: the rate; Adam: lr_t
    double momentum
    double beta_1
    double beta_2
    double epsilon


cdef void _make_step(Step *st, const Optim *opt, long long t, double alpha,
                     double sw_sum) noexcept nogil:
    st.kind = opt.kind
    st.nesterov = opt.nesterov
    st.alpha = alpha
    st.sw_sum = sw_sum
    st.momentum = opt.momentum
    st.beta_1 = opt.beta_1
    st.beta_2 = opt.beta_2
    st.epsilon = opt.epsilon
    if opt.kind == OPT_SGD:
        st.lr = opt.learning_rate
    else:
        st.lr = opt.learning_rate * sqrt(1 - pow(opt.beta_2, <double> t)) / (
            1 - pow(opt.beta_1, <double> t))


cdef double update_range(floating *params, const floating *grads, floating *s1,
                         floating *s2, Py_ssize_t n, bint weights, bint zero_grad,
                         const Step *st) noexcept nogil:
    """One optimizer step on ``n`` consecutive parameters from raw gradient
    sums; returns the sum of their squares after the update when they are
    weights (the next batch's L2 penalty), else 0.

    The gradient scikit-learn uses is ``g = (G + alpha * W) / sw_sum`` for
    weights and ``g = G / sw_sum`` for intercepts. SGD (``s1`` = velocity):
    ``v = momentum * v - lr * g``; the update is ``v`` or, with Nesterov,
    ``momentum * v - lr * g``. Adam (``s1`` = m, ``s2`` = v): ``m = b1 m +
    (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, update ``-lr_t m / (sqrt(v) +
    eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.

    ``zero_grad``: the gradient sums are zero and ``grads`` is not read (rows
    of the sparse first layer that no sample of the batch touched). Works in
    blocks that stay in L1; each loop is branch-free so the compiler
    vectorises it.
    """
    cdef floating gbuf[UPDATE_BLOCK]
    cdef floating a = <floating> st.alpha
    cdef floating sw = <floating> st.sw_sum
    cdef floating lr = <floating> st.lr
    cdef floating mom = <floating> st.momentum
    cdef floating b1 = <floating> st.beta_1
    cdef floating one_b1 = <floating> (1 - st.beta_1)
    cdef floating b2 = <floating> st.beta_2
    cdef floating one_b2 = <floating> (1 - st.beta_2)
    cdef floating eps = <floating> st.epsilon
    cdef floating gj, v
    cdef floating *p
    cdef floating *m1
    cdef floating *m2
    cdef const floating *gr
    cdef Py_ssize_t start = 0, nb, j
    cdef double q0 = 0, q1 = 0, q2 = 0, q3 = 0, q4 = 0, q5 = 0, q6 = 0, q7 = 0
    cdef double w0
    while start < n:
        nb = n - start
        if nb > UPDATE_BLOCK:
            nb = UPDATE_BLOCK
        p = params + start
        gr = grads + start
        m1 = s1 + start
        m2 = s2 + start
        # the gradient scikit-learn steps along
        if zero_grad and weights:
            for j in range(nb):
                gbuf[j] = (a * p[j]) / sw
        elif zero_grad:
            for j in range(nb):
                gbuf[j] = 0
        elif weights:
            for j in range(nb):
                gbuf[j] = (gr[j] + a * p[j]) / sw
        else:
            for j in range(nb):
                gbuf[j] = gr[j] / sw
        # the step
        if st.kind == OPT_ADAM:
            for j in range(nb):
                gj = gbuf[j]
                m1[j] = b1 * m1[j] + one_b1 * gj
                m2[j] = b2 * m2[j] + one_b2 * (gj * gj)
                p[j] = p[j] + (-lr * m1[j]) / (f_sqrt(m2[j]) + eps)
        elif st.nesterov:
            for j in range(nb):
                gj = gbuf[j]
                v = mom * m1[j] - lr * gj
                m1[j] = v
                p[j] = p[j] + (mom * v - lr * gj)
        else:
            for j in range(nb):
                gj = gbuf[j]
                v = mom * m1[j] - lr * gj
                m1[j] = v
                p[j] = p[j] + v
        if weights:
            # eight independent lanes so the sum vectorises (it only feeds
            # the reported loss, never the weights)
            j = 0
            while j + 8 <= nb:
                q0 += (<double> p[j]) * p[j]
                q1 += (<double> p[j + 1]) * p[j + 1]
                q2 += (<double> p[j + 2]) * p[j + 2]
                q3 += (<double> p[j + 3]) * p[j + 3]
                q4 += (<double> p[j + 4]) * p[j + 4]
                q5 += (<double> p[j + 5]) * p[j + 5]
                q6 += (<double> p[j + 6]) * p[j + 6]
                q7 += (<double> p[j + 7]) * p[j + 7]
                j += 8
            while j < nb:
                w0 = p[j]
                q0 += w0 * w0
                j += 1
        start += nb
    return ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))


cdef double weights_sumsq(const Net *net, const floating *params) noexcept nogil:
    cdef int i
    cdef Py_ssize_t j
    cdef double s = 0.0
    for i in range(net.n_layers):
        for j in range(net.off_w[i], net.off_b[i]):
            s += (<double> params[j]) * params[j]
    return s


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


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------

cdef int (*_blas_get_threads)() noexcept nogil
cdef void (*_blas_set_threads)(int) noexcept nogil
_blas_get_threads = NULL
_blas_set_threads = NULL
_blas_library = None


def _find_scipy_openblas():
    """Locate the OpenBLAS that ``scipy.linalg.cython_blas`` calls and bind its
    thread-count functions (Linux: from /proc/self/maps). Returns its path or
    None (then fastbp trains on one thread)."""
    global _blas_library, _blas_get_threads, _blas_set_threads
    import ctypes
    import os
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
    scipy_dir = os.path.dirname(os.path.dirname(os.path.abspath(scipy.linalg.__file__)))
    candidates = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) == 6 else ""
                name = os.path.basename(path)
                if "openblas" in name.lower() and path not in candidates:
                    candidates.append(path)
    except OSError:
        return None
    # scipy's own copy first (numpy ships another one with its own pool)
    candidates.sort(key=lambda p: not p.startswith(scipy_dir))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, prefix + "_get_num_threads", None)
            put = getattr(lib, prefix + "_set_num_threads", None)
            if get is not None and put is not None:
                _blas_get_threads = <int (*)() noexcept nogil> <size_t> ctypes.cast(
                    get, ctypes.c_void_p).value
                _blas_set_threads = <void (*)(int) noexcept nogil> <size_t> ctypes.cast(
                    put, ctypes.c_void_p).value
                _blas_library = (path, lib)
                return path
    return None


def set_segment_work(double work):
    """Set the multiply-adds per epoch segment (between two thread-count
    decisions); returns the previous value (for tests and tuning)."""
    global SEGMENT_WORK
    old = SEGMENT_WORK
    SEGMENT_WORK = work
    return old


def blas_threads():
    """Threads scipy's OpenBLAS is set to use (what ``threadpoolctl`` and
    ``OPENBLAS_NUM_THREADS`` control); fastbp trains on at most this many."""
    if _blas_get_threads == NULL:
        return 1
    return max(1, int(_blas_get_threads()))


MIN_PARALLEL_WORK = MIN_PARALLEL_WORK_C


def set_data_parallel_ratio(double ratio):
    """Set the activations-to-parameters ratio above which batches take the
    data-parallel mode; returns the previous value (for tests and tuning:
    it changes the weights' rounding, so never while a model trains)."""
    global DP_RATIO
    old = DP_RATIO
    DP_RATIO = ratio
    return old


def data_parallel(NetSpec spec, Py_ssize_t batch_size):
    """Whether dense training batches of ``batch_size`` rows take the
    data-parallel mode (see ``_data_parallel``); for tests and tuning."""
    return bool(_data_parallel(&spec.net, batch_size))


def epoch_threads(NetSpec spec, Py_ssize_t batch_size):
    """Threads ``train_epoch`` will use for this network and batch size."""
    if not _worth_threading(&spec.net, batch_size):
        return 1
    return min(blas_threads(), 64)


@cython.auto_pickle(False)
cdef class _BlasSerial:
    """Context manager: scipy's OpenBLAS on one thread while fastbp's
    kernels run, restored afterwards. fastbp's own threads are then the only
    threading layer (threaded OpenBLAS on these small products loses, and
    collapses when another process holds a core).

    Nested and concurrent uses (fits in several Python threads) share one
    count: the first entry saves the setting, the last exit restores it
    (entries and exits run under the GIL)."""
    cdef bint active

    def __cinit__(self, int n_threads):
        self.active = _blas_set_threads != NULL

    def __enter__(self):
        global _serial_users, _serial_saved
        if self.active:
            if _serial_users == 0:
                _serial_saved = _blas_get_threads()
                if _serial_saved != 1:
                    _blas_set_threads(1)
            _serial_users += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        global _serial_users
        if self.active:
            _serial_users -= 1
            if _serial_users == 0 and _serial_saved != 1:
                _blas_set_threads(_serial_saved)
        return False


cdef int _serial_users = 0     # _BlasSerial blocks open now
cdef int _serial_saved = 1     # scipy's OpenBLAS threads before the first of them


try:
    _find_scipy_openblas()
except Exception:  # pragma: no cover - unusual platforms: train on one thread
    _blas_get_threads = NULL
    _blas_set_threads = NULL


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

cdef int _fill_input(Input *inp, tuple csr, Py_ssize_t n_features,
                     const floating[:, ::1] Xd, const floating[::1] data,
                     const Py_ssize_t[::1] indices, const Py_ssize_t[::1] indptr) except -1:
    memset(inp, 0, sizeof(Input))
    inp.n_features = n_features
    if csr is None:
        if Xd.shape[1] != n_features:
            raise ValueError(f"X has {Xd.shape[1]} features, the network expects {n_features}")
        inp.dense = &Xd[0, 0] if Xd.shape[0] > 0 else NULL
    else:
        inp.csr_data = <const void *> &data[0] if data.shape[0] > 0 else <const void *> &indptr[0]
        inp.csr_indices = &indices[0] if indices.shape[0] > 0 else &indptr[0]
        inp.csr_indptr = &indptr[0]
    return 0


def _csr_parts(X):
    """(data, indices, indptr) with intp indices, or None for dense X."""
    if isinstance(X, np.ndarray):
        return None
    return (X.data, np.asarray(X.indices, dtype=np.intp), np.asarray(X.indptr, dtype=np.intp))


def train_epoch(NetSpec spec, floating[::1] params, floating[::1] grads,
                floating[::1] state1, floating[::1] state2, X, tuple csr,
                const floating[:, ::1] Y, const floating[::1] sample_weight,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size,
                dict optimizer, double alpha, double loss_scale,
                floating[::1] work, int n_threads=0):
    """Run one epoch of mini-batch training in a single GIL-free call.

    Parameters
    ----------
    spec : NetSpec
    params, grads, state1, state2 : 1-D arrays of ``spec.n_params``
        Parameters (updated in place), gradient scratch, optimizer state
        (SGD: velocity, state2 unused; Adam: first and second moments).
    X : ndarray (n_samples, n_features) C-contiguous, or CSR matrix
        ``csr`` holds ``(data, indices, indptr)`` for CSR input, else None.
    Y : ndarray (n_samples, n_outputs) C-contiguous targets.
    sample_weight : 1-D array or None
    order : 1-D intp array or None
        Sample order of this epoch (a permutation); None walks X in order.
    batch_size : int
    optimizer : dict
        ``solver`` ('sgd' or 'adam'), ``learning_rate``, ``momentum``,
        ``nesterov``, ``beta_1``, ``beta_2``, ``epsilon``, ``t``. ``t`` is
        updated in place.
    alpha : float
        L2 penalty.
    loss_scale : float
        Factor on the data term of the reported loss (1 / n_outputs for
        squared error, as scikit-learn reports it; 1 otherwise).
    work : 1-D array of ``spec.train_workspace_size(batch_size, order is not None)``
    n_threads : int, default=0
        Threads to use. 0 lets fastbp choose: one for small networks, else
        up to as many as scipy's OpenBLAS is allowed (``epoch_threads``),
        switching between that and one thread by measured speed as the
        epoch runs (so a busy machine does not make it collapse). In float64
        the weights do not depend on it; in float32 BLAS may round
        differently for different block shapes.

    Returns
    -------
    loss_sum : float
        scikit-learn's accumulated loss, the sum over batches of
        ``batch_loss * batch_len``; divide by n_samples for ``loss_``.

    Raises
    ------
    KeyboardInterrupt (or what a signal handler raises)
        When Ctrl-C stops the epoch early; the parameters then hold a partly
        trained state, which the caller rolls back.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef Optim opt
    cdef Epoch E
    cdef Py_ssize_t n = Y.shape[0]
    cdef bint gather
    cdef const Py_ssize_t *rows_all = NULL
    cdef const floating *sw_ptr = NULL
    cdef const floating[:, ::1] Xd = None
    cdef const floating[::1] data = None
    cdef const Py_ssize_t[::1] indices = None
    cdef const Py_ssize_t[::1] indptr = None
    cdef unsigned char[::1] touched = None
    cdef bint fixed_threads
    cdef TunerState *ts = &spec.tuner.state

    if params.shape[0] != net.n_params or grads.shape[0] != net.n_params:
        raise ValueError("parameter buffers do not match the network")
    if state1.shape[0] != net.n_params or state2.shape[0] != net.n_params:
        raise ValueError("optimizer state does not match the network")
    if Y.shape[1] != net.sizes[net.n_layers]:
        raise ValueError("Y has the wrong number of outputs")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if n < 1:
        raise ValueError("need at least one sample")
    if csr is None:
        Xd = X
        if Xd.shape[0] != n:
            raise ValueError("X and Y have different numbers of rows")
    else:
        data, indices, indptr = csr
        if indptr.shape[0] != n + 1:
            raise ValueError("X and Y have different numbers of rows")
    _fill_input(&inp, csr, net.sizes[0], Xd, data, indices, indptr)
    if sample_weight is not None:
        if sample_weight.shape[0] != n:
            raise ValueError("sample_weight has the wrong length")
        sw_ptr = &sample_weight[0]
    if order is not None:
        if order.shape[0] != n:
            raise ValueError("order has the wrong length")
        rows_all = &order[0]
    gather = rows_all != NULL and csr is None
    if batch_size > n:
        batch_size = n
    if work.shape[0] < _train_ws_size(net, batch_size, gather):
        raise ValueError("workspace too small")
    fixed_threads = n_threads > 0
    if n_threads <= 0:
        n_threads = epoch_threads(spec, batch_size)
    n_threads = min(n_threads, 64)
    if csr is not None:
        # rows of the first-layer gradient that hold data this batch; the
        # others are never zeroed, the optimizer step reads them as zero
        touched = np.zeros(net.sizes[0], dtype=np.uint8)

    opt.kind = OPT_SGD if optimizer["solver"] == "sgd" else OPT_ADAM
    opt.learning_rate = optimizer["learning_rate"]
    opt.momentum = optimizer.get("momentum", 0.0)
    opt.nesterov = optimizer.get("nesterov", False)
    opt.beta_1 = optimizer.get("beta_1", 0.9)
    opt.beta_2 = optimizer.get("beta_2", 0.999)
    opt.epsilon = optimizer.get("epsilon", 1e-8)
    opt.t = optimizer.get("t", 0)

    _epoch_init(&E, net, &inp, &Y[0, 0], sw_ptr, n, batch_size, &params[0], &grads[0],
                loss_scale, &work[0])
    E.rows_all = rows_all
    E.s1 = &state1[0]
    E.s2 = &state2[0]
    E.opt = &opt
    E.alpha = alpha
    E.touched = &touched[0] if touched is not None else NULL
    E.gather = gather
    E.train = 1
    E.dp = csr is None and _data_parallel(net, batch_size)
    with _BlasSerial(n_threads):
        with nogil:
            E.sumsq0 = weights_sumsq(net, &params[0])
            _run_epoch(&E, ts, n_threads, fixed_threads, floating is float)
        # raise inside the block: leaving it with the exception still pending
        # would call __exit__ with the error indicator set (a SystemError)
        if E.stop:
            _raise_pending()
    if opt.kind == OPT_ADAM:
        opt.t += E.n_batches
    optimizer["t"] = opt.t
    return E.loss_sum


def loss_and_grad(NetSpec spec, const floating[::1] params, X, tuple csr,
                  const floating[:, ::1] Y, const floating[::1] sample_weight, double alpha,
                  double loss_scale, floating[::1] grad_out, floating[::1] work,
                  Py_ssize_t chunk_rows, int n_threads=0):
    """Full-batch objective and gradient at ``params`` (L-BFGS and
    ``loss_and_gradients``).

    Computes ``sum_r sw_r loss_r * loss_scale / sw_sum + alpha / (2 sw_sum)
    * sum ||W||^2`` and writes its gradient into ``grad_out``. Rows are
    processed ``chunk_rows`` at a time, so memory stays bounded. Returns the
    loss; Ctrl-C raises KeyboardInterrupt.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef Epoch E
    cdef Py_ssize_t n = Y.shape[0], r, j
    cdef const floating *sw_ptr = NULL
    cdef floating *g
    cdef const floating *p
    cdef double sw_sum = 0.0, sumsq
    cdef floating a, inv
    cdef int i
    cdef const floating[:, ::1] Xd = None
    cdef const floating[::1] data = None
    cdef const Py_ssize_t[::1] indices = None
    cdef const Py_ssize_t[::1] indptr = None

    if params.shape[0] != net.n_params or grad_out.shape[0] != net.n_params:
        raise ValueError("parameter buffers do not match the network")
    if Y.shape[1] != net.sizes[net.n_layers]:
        raise ValueError("Y has the wrong number of outputs")
    if n < 1:
        raise ValueError("need at least one sample")
    if csr is None:
        Xd = X
        if Xd.shape[0] != n:
            raise ValueError("X and Y have different numbers of rows")
    else:
        data, indices, indptr = csr
        if indptr.shape[0] != n + 1:
            raise ValueError("X and Y have different numbers of rows")
    _fill_input(&inp, csr, net.sizes[0], Xd, data, indices, indptr)
    if sample_weight is not None:
        if sample_weight.shape[0] != n:
            raise ValueError("sample_weight has the wrong length")
        sw_ptr = &sample_weight[0]
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    if chunk_rows > n:
        chunk_rows = n
    if work.shape[0] < _train_ws_size(net, chunk_rows, False):
        raise ValueError("workspace too small")
    if n_threads <= 0:
        n_threads = epoch_threads(spec, chunk_rows)
    n_threads = min(n_threads, 64)

    # params are only read: no optimizer step here
    _epoch_init(&E, net, &inp, &Y[0, 0], sw_ptr, n, chunk_rows, <void *> &params[0],
                &grad_out[0], loss_scale, &work[0])
    E.train = 0
    E.seg_stop = n
    with _BlasSerial(n_threads):
        with nogil:
            _run_segment(&E, n_threads, floating is float)
        if E.stop:  # raised inside the block (see train_epoch)
            _raise_pending()
    with nogil:
        if sw_ptr != NULL:
            for r in range(n):
                sw_sum += sw_ptr[r]
        else:
            sw_sum = <double> n
        sumsq = weights_sumsq(net, &params[0])
        # finish the gradient the way scikit-learn does: (G + alpha W) / sw_sum
        a = <floating> alpha
        inv = <floating> sw_sum
        g = &grad_out[0]
        p = &params[0]
        for i in range(net.n_layers):
            for j in range(net.off_w[i], net.off_b[i]):
                g[j] = (g[j] + a * p[j]) / inv
            for j in range(net.off_b[i], net.off_b[i] + net.sizes[i + 1]):
                g[j] = g[j] / inv
    return E.loss_sum / sw_sum + 0.5 * alpha * sumsq / sw_sum



def forward(NetSpec spec, const floating[::1] params, X, tuple csr, floating[:, ::1] out,
            floating[::1] work, Py_ssize_t chunk_rows, int n_threads=0):
    """Network output for every row of X, written into ``out`` (n, n_outputs).

    Rows are processed ``chunk_rows`` at a time with two ping-pong buffers
    from ``work`` (``spec.predict_workspace_size(chunk_rows)``), so memory
    stays bounded; the GIL is released throughout. With several chunks the
    chunks are shared out between threads (``n_threads``; 0: as for
    training, at most what scipy's OpenBLAS is allowed), each taking the next
    free chunk, with their own buffers; scipy's OpenBLAS stays on one thread.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef PredictJob J
    cdef Py_ssize_t n = out.shape[0], n_chunks, ws
    cdef const floating[:, ::1] Xd = None
    cdef const floating[::1] data = None
    cdef const Py_ssize_t[::1] indices = None
    cdef const Py_ssize_t[::1] indptr = None
    cdef floating[::1] extra = None
    cdef int t
    if params.shape[0] != net.n_params:
        raise ValueError("parameter buffer does not match the network")
    if out.shape[1] != net.sizes[net.n_layers]:
        raise ValueError("out has the wrong number of columns")
    if csr is None:
        Xd = X
        if Xd.shape[0] != n:
            raise ValueError("X and out have different numbers of rows")
    else:
        data, indices, indptr = csr
        if indptr.shape[0] != n + 1:
            raise ValueError("X and out have different numbers of rows")
    _fill_input(&inp, csr, net.sizes[0], Xd, data, indices, indptr)
    if n == 0:
        return
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    if chunk_rows > n:
        chunk_rows = n
    ws = 2 * chunk_rows * net.max_width
    if work.shape[0] < ws:
        raise ValueError("workspace too small")
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    if n_threads <= 0:
        n_threads = epoch_threads(spec, chunk_rows)
    n_threads = <int> min(n_threads, n_chunks, 64)
    if n_threads > 1:
        extra = np.empty((n_threads - 1) * ws, dtype=np.asarray(work).dtype)
    memset(&J, 0, sizeof(PredictJob))
    J.net = net
    J.inp = &inp
    J.params = &params[0]
    J.n = n
    J.chunk_rows = chunk_rows
    J.out = &out[0, 0]
    J.work[0] = &work[0]
    for t in range(1, n_threads):
        J.work[t] = &extra[(t - 1) * ws]
    with _BlasSerial(n_threads):
        with nogil:
            if floating is float:
                fb_pool_run(_predict_task_f, <void *> &J, n_threads)
            else:
                fb_pool_run(_predict_task_d, <void *> &J, n_threads)
        if J.stop:  # raised inside the block (see train_epoch)
            _raise_pending()


cdef struct PredictJob:
    const Net *net
    const Input *inp
    const void *params
    Py_ssize_t n
    Py_ssize_t chunk_rows
    void *out
    void *work[64]            # each thread's ping-pong buffers
    long next_chunk           # the next chunk nobody has taken (atomic)
    int stop


cdef void _predict_body(PredictJob *J, int tid, int nt, floating *dtype_tag) noexcept nogil:
    """Take free chunks until none is left (a thread the OS pauses holds up
    one chunk at most); thread 0 checks for Ctrl-C between its chunks."""
    cdef long c
    cdef Py_ssize_t start, B
    cdef long long last_check = _now_ns()
    while not J.stop:
        c = fb_fetch_add(&J.next_chunk)
        start = c * J.chunk_rows
        if start >= J.n:
            break
        B = J.n - start if J.n - start < J.chunk_rows else J.chunk_rows
        _forward_chunk(J.net, J.inp, <const floating *> J.params, start, B, J.chunk_rows,
                       <floating *> J.out, <floating *> J.work[tid])
        if tid == 0 and _check_signals(&last_check):
            J.stop = 1


cdef void _predict_task_f(void *arg, int tid, int nt) noexcept nogil:
    _predict_body(<PredictJob *> arg, tid, nt, <float *> NULL)


cdef void _predict_task_d(void *arg, int tid, int nt) noexcept nogil:
    _predict_body(<PredictJob *> arg, tid, nt, <double *> NULL)


cdef int _forward_rows(const Net *net, const Input *X, const floating *params,
                       Py_ssize_t n, Py_ssize_t chunk_rows, floating *out,
                       floating *work) noexcept nogil:
    """Forward pass over all rows, chunk by chunk, on this thread; returns 1
    if a signal handler raised (Ctrl-C) between chunks."""
    cdef Py_ssize_t start = 0, B
    cdef long long last_check = _now_ns()
    while start < n:
        if start > 0 and _check_signals(&last_check):
            return 1
        B = n - start if n - start < chunk_rows else chunk_rows
        _forward_chunk(net, X, params, start, B, chunk_rows, out, work)
        start += B
    return 0


cdef void _forward_chunk(const Net *net, const Input *X, const floating *params,
                         Py_ssize_t start, Py_ssize_t B, Py_ssize_t chunk_rows,
                         floating *out, floating *work) noexcept nogil:
    """Output rows ``start:start + B`` (B <= chunk_rows) into ``out``, with
    ``work`` (2 * chunk_rows * max_width) as ping-pong buffers."""
    cdef Py_ssize_t nf = net.sizes[0]
    cdef int i, L = net.n_layers
    cdef floating *cur
    cdef floating *nxt
    cdef floating *dst
    cdef floating *ping = work
    cdef floating *pong = work + chunk_rows * net.max_width
    cdef const floating *A0
    A0 = (<const floating *> X.dense) + start * nf if X.csr_data == NULL else NULL
    dst = out + start * net.sizes[L] if L == 1 else ping
    first_layer_product(net, X, params, A0, NULL, start, B, dst, 0, net.sizes[1])
    bias_activation(dst, B, net.sizes[1], net.sizes[1], params + net.off_b[0],
                    net.out_act if L == 1 else net.hidden_act)
    cur = dst
    for i in range(1, L):
        if i == L - 1:
            nxt = out + start * net.sizes[L]
        else:
            nxt = pong if cur == ping else ping
        gemm_rm(False, False, <int> B, <int> net.sizes[i + 1], <int> net.sizes[i],
                <floating> 1.0, cur, <int> net.sizes[i], params + net.off_w[i],
                <int> net.sizes[i + 1], <floating> 0.0, nxt, <int> net.sizes[i + 1])
        bias_activation(nxt, B, net.sizes[i + 1], net.sizes[i + 1], params + net.off_b[i],
                        net.out_act if i == L - 1 else net.hidden_act)
        cur = nxt


def apply_activation(floating[:, ::1] Z, str name):
    """Apply activation ``name`` to ``Z`` in place (for tests)."""
    cdef floating[::1] zero = np.zeros(Z.shape[1], dtype=np.asarray(Z).dtype)
    if name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}")
    if Z.shape[0] and Z.shape[1]:
        bias_activation(&Z[0, 0], Z.shape[0], Z.shape[1], Z.shape[1], &zero[0],
                        <int> ACTIVATION_CODES[name])


def apply_activation_derivative(floating[:, ::1] D, floating[:, ::1] A, str name):
    """``D *= act'(z)`` in place, from ``A = act(z)`` (for tests)."""
    if D.shape[0] != A.shape[0] or D.shape[1] != A.shape[1]:
        raise ValueError("D and A must have the same shape")
    if name not in ACTIVATION_CODES or name in ("softmax", "exp"):
        raise ValueError(f"no hidden-layer derivative for {name!r}")
    if D.shape[0] and D.shape[1]:
        activation_derivative(&D[0, 0], &A[0, 0], D.shape[0], D.shape[1], D.shape[1],
                              <int> ACTIVATION_CODES[name])


# ---------------------------------------------------------------------------
# predict for small inputs: one call from Python to the kernel
# ---------------------------------------------------------------------------

cimport numpy as cnp
cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    # numpy's own declaration makes ``out`` an ndarray, so None is passed as an
    # array; take() without an output array needs NULL
    object _take_from "PyArray_TakeFrom" (cnp.ndarray a, object indices, int axis,
                                          void *out, cnp.NPY_CLIPMODE mode)

# Multiply-adds from which OpenBLAS may split one product between threads
# (its GEMM_MULTITHREAD_THRESHOLD * 65536 is 262144; gemv starts lower).
cdef Py_ssize_t BLAS_THREADED_WORK = 9216

cdef enum:
    PRED_REGRESSION = 0
    PRED_BINARY = 1
    PRED_MULTICLASS = 2


@cython.auto_pickle(False)
cdef class Predictor:
    """``predict`` for small dense inputs, without the general validation.

    Built from a fitted estimator; ``predict(X, est.__dict__)`` returns the
    prediction, or None when the fast path does not apply and the caller
    must take the general one: X not a 2-D C-contiguous ndarray of the
    model's dtype with 1..``max_rows`` rows, a different network or
    parameter views, feature names, or non-finite values (the general path
    then raises the usual error). Shapes, dtype and finiteness are still
    checked; the workspace is allocated once.
    """
    cdef readonly object net
    cdef NetSpec spec
    cdef object params
    cdef object classes
    cdef tuple coefs
    cdef tuple intercepts
    cdef object out
    cdef object work
    cdef cnp.dtype dtype
    cdef int kind
    cdef readonly Py_ssize_t max_rows
    cdef Py_ssize_t max_layer_work

    def __cinit__(self, net, classes, str kind, Py_ssize_t max_rows=64):
        self.net = net
        self.spec = net.spec
        self.params = net.params
        self.dtype = net.params.dtype
        self.coefs = tuple(net.coefs)
        self.intercepts = tuple(net.intercepts)
        self.classes = classes
        self.kind = {"regression": PRED_REGRESSION, "binary": PRED_BINARY,
                     "multiclass": PRED_MULTICLASS}[kind]
        if self.kind != PRED_REGRESSION and classes is None:
            raise ValueError("a classifier's Predictor needs its classes")
        self.max_rows = max_rows
        self.max_layer_work = max(self.spec.sizes[i] * self.spec.sizes[i + 1]
                                  for i in range(self.spec.n_layers))
        self.out = np.empty((max_rows, self.spec.net.sizes[self.spec.net.n_layers]),
                            dtype=self.dtype)
        self.work = np.empty(self.spec.predict_workspace_size(max_rows), dtype=self.dtype)

    cdef bint _forward(self, cnp.ndarray A, Py_ssize_t n):
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            return _predict_rows(&self.spec.net, <const float *> cnp.PyArray_DATA(A), n,
                                 <const float *> cnp.PyArray_DATA(<cnp.ndarray> self.params),
                                 <float *> cnp.PyArray_DATA(<cnp.ndarray> self.out),
                                 <float *> cnp.PyArray_DATA(<cnp.ndarray> self.work))
        return _predict_rows(&self.spec.net, <const double *> cnp.PyArray_DATA(A), n,
                             <const double *> cnp.PyArray_DATA(<cnp.ndarray> self.params),
                             <double *> cnp.PyArray_DATA(<cnp.ndarray> self.out),
                             <double *> cnp.PyArray_DATA(<cnp.ndarray> self.work))

    cdef bint _same_model(self, dict d):
        cdef object coefs = d.get("coefs_")
        cdef object intercepts = d.get("intercepts_")
        cdef Py_ssize_t i, L = len(self.coefs)
        if d.get("_net") is not self.net or "feature_names_in_" in d:
            return False
        if self.kind != PRED_REGRESSION and d.get("classes_") is not self.classes:
            return False
        if type(coefs) is not list or type(intercepts) is not list:
            return False
        if len(<list> coefs) != L or len(<list> intercepts) != L:
            return False
        for i in range(L):
            if (<list> coefs)[i] is not self.coefs[i]:
                return False
            if (<list> intercepts)[i] is not self.intercepts[i]:
                return False
        return True

    def predict(self, X, dict d):
        cdef cnp.ndarray A
        cdef cnp.ndarray idx
        cdef cnp.ndarray res
        cdef cnp.npy_intp dims[2]
        cdef Py_ssize_t n, nf, n_out
        cdef bint ok = False
        if type(X) is not np.ndarray:
            return None
        A = <cnp.ndarray> X
        if (cnp.PyArray_NDIM(A) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(A)
                or <object> cnp.PyArray_DESCR(A) is not self.dtype):
            return None
        n = cnp.PyArray_DIM(A, 0)
        nf = cnp.PyArray_DIM(A, 1)
        if n < 1 or n > self.max_rows or nf != self.spec.net.sizes[0]:
            return None
        if not self._same_model(d):
            return None
        n_out = self.spec.net.sizes[self.spec.net.n_layers]
        if n * self.max_layer_work >= BLAS_THREADED_WORK:
            # products OpenBLAS would thread: keep it on one thread (its idle
            # workers would otherwise spin beside the next fit)
            with _BlasSerial(1):
                ok = self._forward(A, n)
        else:
            ok = self._forward(A, n)
        if not ok:
            return None
        if self.kind == PRED_REGRESSION:
            dims[0] = n
            dims[1] = n_out
            res = cnp.PyArray_EMPTY(1 if n_out == 1 else 2, dims, self.dtype.type_num, 0)
            memcpy(cnp.PyArray_DATA(res), cnp.PyArray_DATA(<cnp.ndarray> self.out),
                   n * n_out * self.dtype.itemsize)
            return res
        dims[0] = n
        idx = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INTP, 0)
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            _output_labels(<float *> cnp.PyArray_DATA(<cnp.ndarray> self.out), n, n_out,
                           self.kind == PRED_BINARY, <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        else:
            _output_labels(<double *> cnp.PyArray_DATA(<cnp.ndarray> self.out), n, n_out,
                           self.kind == PRED_BINARY, <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        return _take_from(<cnp.ndarray> self.classes, idx, 0, NULL, cnp.NPY_RAISE)



cdef bint _predict_rows(const Net *net, const floating *x, Py_ssize_t n,
                        const floating *params, floating *out,
                        floating *work) noexcept nogil:
    """Forward ``n`` dense rows into ``out``; False (nothing computed) when X
    holds NaN or infinity."""
    cdef Input inp
    cdef Py_ssize_t j, total = n * net.sizes[0]
    cdef floating bad = 0
    for j in range(total):
        bad += x[j] - x[j]        # 0 for finite values, nan for nan/inf
    if bad != 0 or bad != bad:
        return False
    memset(&inp, 0, sizeof(Input))
    inp.dense = x
    inp.n_features = net.sizes[0]
    _forward_rows(net, &inp, params, n, n, out, work)
    return True


cdef void _output_labels(const floating *P, Py_ssize_t n, Py_ssize_t n_out, bint binary,
                         cnp.npy_intp *idx) noexcept nogil:
    """Class positions from output activations: p > 0.5 for one logistic
    output, else the first largest (as argmax)."""
    cdef Py_ssize_t r, j, best
    for r in range(n):
        if binary:
            idx[r] = 1 if P[r * n_out] > 0.5 else 0
        else:
            best = 0
            for j in range(1, n_out):
                if P[r * n_out + j] > P[r * n_out + best]:
                    best = j
            idx[r] = best


# ---------------------------------------------------------------------------
# The epoch shuffle, draw for draw the one of numpy's RandomState.shuffle
# ---------------------------------------------------------------------------

from cpython.pycapsule cimport PyCapsule_GetPointer
from numpy.random cimport bitgen_t


cdef inline uint64_t _random_interval(bitgen_t *bitgen, uint64_t mx) noexcept nogil:
    """numpy's legacy ``random_interval``: uniform in [0, mx] by masked
    rejection (RandomState.shuffle's draw)."""
    cdef uint64_t mask, value
    if mx == 0:
        return 0
    mask = mx
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if mx <= <uint64_t> 0xffffffffUL:
        value = bitgen.next_uint32(bitgen.state) & mask
        while value > mx:
            value = bitgen.next_uint32(bitgen.state) & mask
    else:
        value = bitgen.next_uint64(bitgen.state) & mask
        while value > mx:
            value = bitgen.next_uint64(bitgen.state) & mask
    return value


# numpy's MT19937 state (numpy/random/src/mt19937/mt19937.h), read in place
# once _mt_layout_ok has checked it against the generator's own draws
cdef enum:
    MT_N = 624
    MT_M = 397

cdef struct MTState:
    uint32_t key[624]
    int pos


cdef void _mt_twist(uint32_t *key) noexcept nogil:
    """The next 624 words of the state, in place (numpy's mt19937_gen); the
    loops have no dependence shorter than 227 words, so they vectorise."""
    cdef int i
    cdef uint32_t y
    for i in range(MT_N - MT_M):
        y = (key[i] & <uint32_t> 0x80000000) | (key[i + 1] & <uint32_t> 0x7fffffff)
        key[i] = key[i + MT_M] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)
    for i in range(MT_N - MT_M, MT_N - 1):
        y = (key[i] & <uint32_t> 0x80000000) | (key[i + 1] & <uint32_t> 0x7fffffff)
        key[i] = key[i + MT_M - MT_N] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)
    y = (key[MT_N - 1] & <uint32_t> 0x80000000) | (key[0] & <uint32_t> 0x7fffffff)
    key[MT_N - 1] = key[MT_M - 1] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)


cdef void _mt_temper(const uint32_t *key, uint32_t *out, int n) noexcept nogil:
    """The 32-bit outputs of ``n`` state words (MT19937's tempering)."""
    cdef int i
    cdef uint32_t y
    for i in range(n):
        y = key[i]
        y = y ^ (y >> 11)
        y = y ^ ((y << 7) & <uint32_t> 0x9d2c5680)
        y = y ^ ((y << 15) & <uint32_t> 0xefc60000)
        out[i] = y ^ (y >> 18)


cdef void _mt_shuffle(MTState *st, Py_ssize_t *a, Py_ssize_t n) noexcept nogil:
    """RandomState.shuffle's swaps on ``a[:n]`` (n - 1 < 2**32), drawing from
    the MT19937 state directly: a block of 624 outputs is generated and
    tempered at once, then read in order, and the state's position is left
    where numpy's own draws would leave it."""
    cdef uint32_t buf[624]
    cdef int p = st.pos
    cdef uint32_t mask, v, w, lim, rej
    cdef Py_ssize_t i, tmp
    if p < MT_N:
        _mt_temper(st.key + p, buf + p, MT_N - p)
    mask = <uint32_t> (n - 1)
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    for i in range(n - 1, 0, -1):
        # numpy's random_interval(i): masked rejection
        lim = <uint32_t> i
        while (mask >> 1) >= lim:
            mask >>= 1
        while True:
            if p + 2 <= MT_N:
                # the first acceptable of the next two draws, picked without a
                # branch (rejections are coin flips the CPU cannot predict);
                # both rejected (rarer) takes another turn
                v = buf[p] & mask
                w = buf[p + 1] & mask
                rej = v > lim
                v = (v & (rej - 1)) | (w & (0 - rej))
                p += 1 + rej
            else:
                if p == MT_N:
                    _mt_twist(st.key)
                    _mt_temper(st.key, buf, MT_N)
                    p = 0
                v = buf[p] & mask
                p += 1
            if v <= lim:
                break
        tmp = a[v]
        a[v] = a[i]
        a[i] = tmp
    st.pos = p


cdef int _mt_layout = -1      # numpy's MT19937 state read in place: -1 unchecked, 0 no, 1 yes


cdef bint _mt_layout_ok():
    """Whether this numpy's MT19937 keeps its state as ``MTState`` and our
    generator continues it exactly (checked once, on a scratch generator)."""
    global _mt_layout
    cdef bitgen_t *bitgen
    cdef MTState *st
    cdef MTState copy
    cdef Py_ssize_t[::1] mine
    cdef int i
    if _mt_layout >= 0:
        return _mt_layout == 1
    _mt_layout = 0
    try:
        gen = np.random.MT19937(20261128)
        gen.random_raw(100)                  # a position inside the block
        bitgen = <bitgen_t *> PyCapsule_GetPointer(gen.capsule, "BitGenerator")
        st = <MTState *> bitgen.state
        state = gen.state["state"]
        if st.pos != state["pos"] or list(state["key"]) != [st.key[i] for i in range(MT_N)]:
            return False
        memcpy(&copy, st, sizeof(MTState))
        rs = np.random.RandomState(gen)
        ref = np.arange(3000, dtype=np.intp)
        rs.shuffle(ref)                       # a few blocks of draws, rejections included
        mine = np.arange(3000, dtype=np.intp)
        _mt_shuffle(&copy, &mine[0], 3000)
        if not np.array_equal(np.asarray(mine), ref) or copy.pos != st.pos:
            return False
        if memcmp(copy.key, st.key, sizeof(copy.key)) != 0:
            return False
    except Exception:
        return False
    _mt_layout = 1
    return True


def shuffle_inplace(Py_ssize_t[::1] a, random_state):
    """Shuffle ``a`` in place exactly as ``random_state.shuffle(a)`` does (same
    draws, same result, same generator state afterwards), without the
    Python-level overhead. ``random_state`` is a ``numpy.random.RandomState``.
    Applying the shuffle's swaps to ``a`` gives ``a[p]`` where ``p`` is the
    permutation ``random_state.shuffle(np.arange(len(a)))`` would produce.
    Returns True when it read numpy's MT19937 state in place (else it drew
    through the bit generator's functions, one call per draw).
    """
    cdef bitgen_t *bitgen
    cdef Py_ssize_t i, j, n = a.shape[0]
    cdef Py_ssize_t tmp
    cdef bint direct
    bit_generator = random_state._bit_generator
    bitgen = <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    if n <= 1:
        return False
    direct = (type(bit_generator) is np.random.MT19937 and n - 1 <= <Py_ssize_t> 0xffffffff
              and _mt_layout_ok())
    with bit_generator.lock, nogil:
        if direct:
            _mt_shuffle(<MTState *> bitgen.state, &a[0], n)
        else:
            for i in range(n - 1, 0, -1):
                j = <Py_ssize_t> _random_interval(bitgen, <uint64_t> i)
                tmp = a[j]
                a[j] = a[i]
                a[i] = tmp
    return direct


def all_finite(const floating[::1] values):
    """True when no value is NaN or infinite: one pass, no temporary array
    (``np.isfinite(X).all()`` allocates a boolean array the size of X)."""
    cdef Py_ssize_t i, n = values.shape[0]
    cdef int bad = 0
    with nogil:
        for i in range(n):
            # x - x is 0 for finite x and NaN for NaN or +-inf
            bad |= (values[i] - values[i]) != 0
    return bad == 0


def matmul(const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C,
           bint trans_a=False, str path="auto", int repeat=1):
    """``C = op(A) @ B`` through the engine's products: ``path`` "auto" (as
    training does), "blas" (always BLAS) or "small" (always typed loops);
    ``repeat`` runs it that many times (for timing the paths against each
    other: benchmarks/small_products.py). For tests and tuning."""
    cdef Py_ssize_t M = C.shape[0], N = C.shape[1]
    cdef Py_ssize_t K = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t sam = 1 if trans_a else A.shape[1], sak = A.shape[1] if trans_a else 1
    cdef int i, mode
    if (A.shape[1] if trans_a else A.shape[0]) != M or B.shape[0] != K or B.shape[1] != N:
        raise ValueError("shapes do not match")
    if path not in ("auto", "blas", "small"):
        raise ValueError(f"unknown path {path!r}")
    mode = ("auto", "blas", "small").index(path)
    if M == 0 or N == 0 or K == 0:
        return
    with nogil:
        for i in range(repeat):
            if mode == 0:
                gemm_rm(trans_a, False, <int> M, <int> N, <int> K, <floating> 1.0, &A[0, 0],
                        <int> A.shape[1], &B[0, 0], <int> N, <floating> 0.0, &C[0, 0],
                        <int> N)
            elif mode == 1:
                _blas_rm(trans_a, False, <int> M, <int> N, <int> K, <floating> 1.0, &A[0, 0],
                         <int> A.shape[1], &B[0, 0], <int> N, <floating> 0.0, &C[0, 0],
                         <int> N)
            elif N == 1 and trans_a:
                # one output's weight gradient: a sum of rows of A, as gemm_rm runs it
                small_gemm(1, M, K, &B[0, 0], 0, 1, &A[0, 0], A.shape[1], &C[0, 0], 1)
            else:
                small_gemm(M, N, K, &A[0, 0], sam, sak, &B[0, 0], N, &C[0, 0], N)
