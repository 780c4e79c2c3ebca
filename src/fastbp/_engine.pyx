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
#   matrix is its transpose in column-major), bias and activation are added
#   in one pass over the product.
# * ``train_epoch`` runs a whole epoch (every mini-batch: forward, loss,
#   backward, optimizer step) without the GIL; it takes it back only every
#   ~20 ms to check for Ctrl-C. Python only runs between epochs.
# * Kernels take raw pointers (``# IN`` / ``# OUT`` comments name the roles);
#   ``def`` entry points do the buffer checks once and release the GIL.
# * Arithmetic follows scikit-learn's order of operations (``(G + alpha W) /
#   sw_sum``, ``momentum * v - lr * g``, ``-lr_t * m / (sqrt(v) + eps)``) so a
#   float64 fit reproduces scikit-learn's weights up to BLAS rounding.
"""

from libc.math cimport exp, expf, log, logf, log1p, log1pf, tanh, tanhf, sqrt, sqrtf, pow
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free
from libc.time cimport clock_t
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm

import numpy as np

cdef extern from "Python.h":
    int PyErr_CheckSignals()

cdef extern from "<time.h>" nogil:
    ctypedef int clockid_t
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(clockid_t clk_id, timespec *tp)
    clockid_t CLOCK_MONOTONIC


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

# Status codes returned by the epoch kernel.
cdef enum:
    STATUS_OK = 0
    STATUS_INTERRUPTED = 1

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
    Py_ssize_t max_width    # widest layer after the input
    int hidden_act
    int out_act


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
    # [gathered input rows] + activations of layers 1..L + two delta buffers
    cdef Py_ssize_t total = 0
    cdef int i
    if gather:
        total += B * net.sizes[0]
    for i in range(1, net.n_layers + 1):
        total += B * net.sizes[i]
    total += 2 * B * net.max_width
    return total


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

cdef inline floating f_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating f_log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)

cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)

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
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long> ts.tv_sec * 1000000000 + ts.tv_nsec


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

cdef inline void gemm_rm(bint trans_a, bint trans_b, int M, int N, int K,
                         floating alpha, const floating *A, int lda,
                         const floating *B, int ldb, floating beta,
                         floating *C, int ldc) noexcept nogil:
    """Row-major ``C (M x N) = alpha * op(A) @ op(B) + beta * C``.

    A row-major matrix read as column-major is its transpose, so the
    column-major call computes ``C^T = op(B)^T @ op(A)^T``.
    """
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    if M == 0 or N == 0:
        return
    if floating is float:
        sgemm(&ta, &tb, &N, &M, &K, &alpha, <float *> B, &ldb, <float *> A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &N, &M, &K, &alpha, <double *> B, &ldb, <double *> A, &lda,
              &beta, C, &ldc)


cdef void bias_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                          const floating *b, int act) noexcept nogil:
    """In place ``Z = act(Z + b)`` (row-wise bias); the hidden activations and
    the prediction-time output activations."""
    cdef Py_ssize_t r, j
    cdef floating *z
    cdef floating v, e, mx, s
    cdef floating slope = <floating> _LEAKY_SLOPE
    for r in range(n_rows):
        z = Z + r * n_out
        if act == ACT_IDENTITY:
            for j in range(n_out):
                z[j] = z[j] + b[j]
        elif act == ACT_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == ACT_LEAKY_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else slope * v
        elif act == ACT_TANH:
            for j in range(n_out):
                z[j] = f_tanh(z[j] + b[j])
        elif act == ACT_LOGISTIC:
            for j in range(n_out):
                v = z[j] + b[j]
                # stable: never exponentiate a large positive number
                if v >= 0:
                    z[j] = 1 / (1 + f_exp(-v))
                else:
                    e = f_exp(v)
                    z[j] = e / (1 + e)
        elif act == ACT_EXP:
            for j in range(n_out):
                z[j] = f_exp(z[j] + b[j])
        elif act == ACT_SOFTMAX:
            mx = z[0] + b[0]
            for j in range(n_out):
                z[j] = z[j] + b[j]
                if z[j] > mx:
                    mx = z[j]
            s = 0
            for j in range(n_out):
                z[j] = f_exp(z[j] - mx)
                s = s + z[j]
            for j in range(n_out):
                z[j] = z[j] / s


cdef void activation_derivative(floating *D, const floating *A, Py_ssize_t n,
                                int act) noexcept nogil:
    """In place ``D *= act'(z)``, written in terms of the activation's output
    ``A = act(z)`` as scikit-learn does."""
    cdef Py_ssize_t j
    cdef floating slope = <floating> _LEAKY_SLOPE
    if act == ACT_IDENTITY:
        return
    elif act == ACT_RELU:
        for j in range(n):
            if A[j] == 0:
                D[j] = 0
    elif act == ACT_LEAKY_RELU:
        for j in range(n):
            if A[j] <= 0:
                D[j] = D[j] * slope
    elif act == ACT_TANH:
        for j in range(n):
            D[j] = D[j] * (1 - A[j] * A[j])
    elif act == ACT_LOGISTIC:
        for j in range(n):
            D[j] = D[j] * A[j]
            D[j] = D[j] * (1 - A[j])


cdef double output_loss_delta(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                              const floating *b, const floating *Y,
                              const Py_ssize_t *rows, Py_ssize_t row0,
                              const floating *sw, int out_act) noexcept nogil:
    """Finish the output layer and start backprop, in one pass per row.

    IN/OUT ``Z``: pre-activation ``A @ W`` without bias; on return it holds
    ``delta = (act(Z + b) - y) * sw``, the gradient of the loss with respect
    to the output layer's pre-activation. This simple form holds for the
    canonical link pairs used here: logistic + binary log-loss, softmax +
    log-loss, identity + squared error, exp + Poisson deviance.
    IN ``Y``: targets, row ``rows[r]`` (or ``row0 + r`` when ``rows`` is NULL).
    IN ``sw``: sample weights indexed like ``Y``, or NULL.

    Returns ``sum_r sw_r * loss_r`` where ``loss_r`` sums over the outputs:
    half squared error; binary log-loss and log-loss with the probability
    clipped to [eps, 1 - eps] as scikit-learn does (computed from the logits,
    so no overflow and no log(0)); half Poisson deviance ``y log(y / mu) - y +
    mu`` with ``log mu = z``.
    """
    cdef Py_ssize_t r, j, src
    cdef floating *z
    cdef const floating *y
    cdef floating v, e, p, mx, s, w, a
    cdef double row_loss, total = 0.0, lp, logs
    cdef floating eps = f_eps(<floating> 0)
    cdef double max_loss = -log(<double> eps)             # -log(eps)
    cdef double min_loss = -log1p(-<double> eps)          # -log(1 - eps)
    for r in range(n_rows):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        y = Y + src * n_out
        w = sw[src] if sw != NULL else 1
        row_loss = 0.0
        if out_act == ACT_IDENTITY:
            for j in range(n_out):
                a = z[j] + b[j]
                v = a - y[j]
                row_loss += 0.5 * (<double> v) * v
                z[j] = v * w if sw != NULL else v
        elif out_act == ACT_LOGISTIC:
            for j in range(n_out):
                v = z[j] + b[j]
                # e = exp(-|v|) gives both p and log(1 + e) without overflow
                if v >= 0:
                    e = f_exp(-v)
                    p = 1 / (1 + e)
                    # -log p = log1p(e); -log(1 - p) = v + log1p(e)
                    lp = f_log1p(e) if y[j] != 0 else v + f_log1p(e)
                else:
                    e = f_exp(v)
                    p = e / (1 + e)
                    lp = -v + f_log1p(e) if y[j] != 0 else f_log1p(e)
                if lp > max_loss:
                    lp = max_loss
                elif lp < min_loss:
                    lp = min_loss
                row_loss += lp
                v = p - y[j]
                z[j] = v * w if sw != NULL else v
        elif out_act == ACT_SOFTMAX:
            mx = z[0] + b[0]
            for j in range(n_out):
                z[j] = z[j] + b[j]
                if z[j] > mx:
                    mx = z[j]
            s = 0
            for j in range(n_out):
                z[j] = f_exp(z[j] - mx)
                s = s + z[j]
            logs = log(<double> s)
            for j in range(n_out):
                if y[j] != 0:
                    # -log p_j = log(sum) - log(e_j); e_j == 0 gives +inf, clipped
                    lp = logs - log(<double> z[j])
                    if lp > max_loss:
                        lp = max_loss
                    elif lp < min_loss:
                        lp = min_loss
                    row_loss += y[j] * lp
                v = z[j] / s - y[j]
                z[j] = v * w if sw != NULL else v
        elif out_act == ACT_EXP:
            for j in range(n_out):
                v = z[j] + b[j]
                p = f_exp(v)
                if y[j] > 0:
                    row_loss += y[j] * (log(<double> y[j]) - v)
                row_loss += <double> p - y[j]
                v = p - y[j]
                z[j] = v * w if sw != NULL else v
        total += row_loss * w if sw != NULL else row_loss
    return total


# ---------------------------------------------------------------------------
# Layers over batches
# ---------------------------------------------------------------------------

cdef void first_layer_product(const Net *net, const Input *X, const floating *params,
                              const floating *A0, const Py_ssize_t *rows,
                              Py_ssize_t row0, Py_ssize_t B, floating *Z) noexcept nogil:
    """``Z = X[rows] @ W0`` (no bias). Dense input arrives in ``A0``
    (gathered rows or a pointer into X); CSR input is read in place."""
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *W = params + net.off_w[0]
    cdef const floating *data
    cdef const floating *wrow
    cdef floating *z
    cdef floating v
    cdef Py_ssize_t r, k, j, src
    if X.csr_data == NULL:
        gemm_rm(False, False, <int> B, <int> n_out, <int> n_in, <floating> 1.0,
                A0, <int> n_in, W, <int> n_out, <floating> 0.0, Z, <int> n_out)
        return
    data = <const floating *> X.csr_data
    memset(Z, 0, B * n_out * sizeof(floating))
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            v = data[k]
            wrow = W + X.csr_indices[k] * n_out
            for j in range(n_out):
                z[j] += v * wrow[j]


cdef void first_layer_weight_grad(const Net *net, const Input *X, const floating *A0,
                                  const Py_ssize_t *rows, Py_ssize_t row0, Py_ssize_t B,
                                  const floating *delta, floating beta,
                                  floating *G) noexcept nogil:
    """``G = X[rows]^T @ delta + beta * G`` for the first layer."""
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *data
    cdef const floating *d
    cdef floating *g
    cdef floating v
    cdef Py_ssize_t r, k, j, src
    if X.csr_data == NULL:
        gemm_rm(True, False, <int> n_in, <int> n_out, <int> B, <floating> 1.0,
                A0, <int> n_in, delta, <int> n_out, beta, G, <int> n_out)
        return
    data = <const floating *> X.csr_data
    if beta == 0:
        memset(G, 0, n_in * n_out * sizeof(floating))
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        d = delta + r * n_out
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            v = data[k]
            g = G + X.csr_indices[k] * n_out
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


cdef double forward_backward(const Net *net, const Input *X, const floating *Y,
                             const floating *sw, const Py_ssize_t *rows, Py_ssize_t row0,
                             Py_ssize_t B, const floating *params, floating *grads,
                             floating beta, floating *work, bint gather,
                             double loss_scale) noexcept nogil:
    """One batch: forward, loss, backward. Returns ``sum_r sw_r loss_r``.

    OUT ``grads``: ``A_i^T delta_{i+1}`` and ``sum_r delta_{i+1}`` for every
    layer (raw sums: the caller adds the L2 term and divides by the weight
    sum). With ``beta = 1`` they accumulate onto what ``grads`` holds.
    ``rows`` (or the contiguous range from ``row0``) picks the samples.
    """
    cdef int L = net.n_layers, i
    cdef Py_ssize_t r, j, n_in, n_out, nf = net.sizes[0]
    cdef floating *A0 = NULL
    cdef floating *acts
    cdef floating *ping
    cdef floating *pong
    cdef floating *delta
    cdef floating *prev
    cdef floating *gb
    cdef floating *p = work
    cdef const floating *Xd
    cdef double loss
    # workspace layout (see _train_ws_size)
    if X.csr_data == NULL:
        Xd = <const floating *> X.dense
        if gather:
            A0 = p
            p += B * nf
            for r in range(B):
                memcpy(A0 + r * nf, Xd + (rows[r] if rows != NULL else row0 + r) * nf,
                       nf * sizeof(floating))
        else:
            A0 = <floating *> Xd + row0 * nf
    acts = p
    for i in range(1, L + 1):
        p += B * net.sizes[i]
    ping = p
    pong = p + B * net.max_width

    # forward: hidden layers, then the output product
    first_layer_product(net, X, params, A0, rows, row0, B, _layer(net, acts, B, 1))
    for i in range(L):
        n_in = net.sizes[i]
        n_out = net.sizes[i + 1]
        if i > 0:
            gemm_rm(False, False, <int> B, <int> n_out, <int> n_in, <floating> 1.0,
                    _layer(net, acts, B, i), <int> n_in, params + net.off_w[i], <int> n_out,
                    <floating> 0.0, _layer(net, acts, B, i + 1), <int> n_out)
        if i < L - 1:
            bias_activation(_layer(net, acts, B, i + 1), B, n_out, params + net.off_b[i],
                            net.hidden_act)

    # loss and output delta (in place of the output activations)
    delta = _layer(net, acts, B, L)
    loss = loss_scale * output_loss_delta(delta, B, net.sizes[L], params + net.off_b[L - 1],
                                          Y, rows, row0, sw, net.out_act)

    # backward by the chain rule
    for i in range(L - 1, -1, -1):
        n_in = net.sizes[i]
        n_out = net.sizes[i + 1]
        if i > 0:
            gemm_rm(True, False, <int> n_in, <int> n_out, <int> B, <floating> 1.0,
                    _layer(net, acts, B, i), <int> n_in, delta, <int> n_out, beta,
                    grads + net.off_w[i], <int> n_out)
        else:
            first_layer_weight_grad(net, X, A0, rows, row0, B, delta, beta,
                                    grads + net.off_w[0])
        gb = grads + net.off_b[i]
        if beta == 0:
            memset(gb, 0, n_out * sizeof(floating))
        for r in range(B):
            for j in range(n_out):
                gb[j] += delta[r * n_out + j]
        if i > 0:
            prev = ping if delta != ping else pong
            gemm_rm(False, True, <int> B, <int> n_in, <int> n_out, <floating> 1.0,
                    delta, <int> n_out, params + net.off_w[i], <int> n_out,
                    <floating> 0.0, prev, <int> n_in)
            activation_derivative(prev, _layer(net, acts, B, i), B * n_in, net.hidden_act)
            delta = prev
    return loss


# ---------------------------------------------------------------------------
# Optimizer steps over the flat buffer
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


cdef double optimizer_step(const Net *net, floating *params, const floating *grads,
                           floating *s1, floating *s2, Optim *opt, double alpha,
                           double sw_sum) noexcept nogil:
    """One update of every parameter from raw gradient sums.

    The gradient scikit-learn uses is ``g = (G + alpha * W) / sw_sum`` for
    weights and ``g = G / sw_sum`` for intercepts. SGD (``s1`` = velocity):
    ``v = momentum * v - lr * g``; the update is ``v`` or, with Nesterov,
    ``momentum * v - lr * g``. Adam (``s1`` = m, ``s2`` = v): ``m = b1 m +
    (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, update ``-lr_t m / (sqrt(v) +
    eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.

    Returns the sum of squared weights after the update (the next batch's L2
    penalty).
    """
    cdef int i, seg
    cdef Py_ssize_t j, start, stop
    cdef floating a = <floating> alpha
    cdef floating sw = <floating> sw_sum
    cdef floating lr, mom, b1, one_b1, b2, one_b2, eps, g, upd, w
    cdef double sumsq = 0.0, lr_t
    if opt.kind == OPT_SGD:
        lr = <floating> opt.learning_rate
        mom = <floating> opt.momentum
    else:
        opt.t += 1
        lr_t = opt.learning_rate * sqrt(1 - pow(opt.beta_2, <double> opt.t)) / (
            1 - pow(opt.beta_1, <double> opt.t))
        lr = <floating> lr_t
        b1 = <floating> opt.beta_1
        one_b1 = <floating> (1 - opt.beta_1)
        b2 = <floating> opt.beta_2
        one_b2 = <floating> (1 - opt.beta_2)
        eps = <floating> opt.epsilon
    for i in range(net.n_layers):
        for seg in range(2):
            if seg == 0:
                start = net.off_w[i]
                stop = net.off_b[i]
            else:
                start = net.off_b[i]
                stop = start + net.sizes[i + 1]
            for j in range(start, stop):
                if seg == 0:
                    g = (grads[j] + a * params[j]) / sw
                else:
                    g = grads[j] / sw
                if opt.kind == OPT_SGD:
                    s1[j] = mom * s1[j] - lr * g
                    if opt.nesterov:
                        upd = mom * s1[j] - lr * g
                    else:
                        upd = s1[j]
                else:
                    s1[j] = b1 * s1[j] + one_b1 * g
                    s2[j] = b2 * s2[j] + one_b2 * (g * g)
                    upd = -lr * s1[j] / (f_sqrt(s2[j]) + eps)
                w = params[j] + upd
                params[j] = w
                if seg == 0:
                    sumsq += (<double> w) * w
    return sumsq


cdef double weights_sumsq(const Net *net, const floating *params) noexcept nogil:
    cdef int i
    cdef Py_ssize_t j
    cdef double s = 0.0
    for i in range(net.n_layers):
        for j in range(net.off_w[i], net.off_b[i]):
            s += (<double> params[j]) * params[j]
    return s


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
                floating[::1] work):
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
    cdef Py_ssize_t n = Y.shape[0], start, stop, B, r
    cdef bint gather
    cdef const Py_ssize_t *rows_all = NULL
    cdef const Py_ssize_t *rows
    cdef const floating *sw_ptr = NULL
    cdef double loss_sum = 0.0, sumsq, batch_data, sw_sum
    cdef long long last_check
    cdef int status = STATUS_OK
    cdef const floating[:, ::1] Xd = None
    cdef const floating[::1] data = None
    cdef const Py_ssize_t[::1] indices = None
    cdef const Py_ssize_t[::1] indptr = None

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

    opt.kind = OPT_SGD if optimizer["solver"] == "sgd" else OPT_ADAM
    opt.learning_rate = optimizer["learning_rate"]
    opt.momentum = optimizer.get("momentum", 0.0)
    opt.nesterov = optimizer.get("nesterov", False)
    opt.beta_1 = optimizer.get("beta_1", 0.9)
    opt.beta_2 = optimizer.get("beta_2", 0.999)
    opt.epsilon = optimizer.get("epsilon", 1e-8)
    opt.t = optimizer.get("t", 0)

    with nogil:
        last_check = _now_ns()
        sumsq = weights_sumsq(net, &params[0])
        start = 0
        while start < n:
            stop = start + batch_size
            if stop > n:
                stop = n
            B = stop - start
            rows = rows_all + start if rows_all != NULL else NULL
            if sw_ptr != NULL:
                sw_sum = 0.0
                for r in range(B):
                    sw_sum += sw_ptr[rows[r] if rows != NULL else start + r]
            else:
                sw_sum = <double> B
            batch_data = forward_backward(net, &inp, &Y[0, 0], sw_ptr, rows, start, B,
                                          &params[0], &grads[0], 0, &work[0], gather,
                                          loss_scale)
            loss_sum += (batch_data / sw_sum + 0.5 * alpha * sumsq / sw_sum) * B
            sumsq = optimizer_step(net, &params[0], &grads[0], &state1[0], &state2[0],
                                   &opt, alpha, sw_sum)
            start = stop
            if start < n and _check_signals(&last_check):
                status = STATUS_INTERRUPTED
                break
    if status == STATUS_INTERRUPTED:
        _raise_pending()
    optimizer["t"] = opt.t
    return loss_sum


def loss_and_grad(NetSpec spec, const floating[::1] params, X, tuple csr,
                  const floating[:, ::1] Y, const floating[::1] sample_weight, double alpha,
                  double loss_scale, floating[::1] grad_out, floating[::1] work,
                  Py_ssize_t chunk_rows):
    """Full-batch objective and gradient at ``params`` (L-BFGS and
    ``loss_and_gradients``).

    Computes ``sum_r sw_r loss_r * loss_scale / sw_sum + alpha / (2 sw_sum)
    * sum ||W||^2`` and writes its gradient into ``grad_out``. Rows are
    processed ``chunk_rows`` at a time, so memory stays bounded. Returns the
    loss; Ctrl-C raises KeyboardInterrupt.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef Py_ssize_t n = Y.shape[0], start, stop, B, r, j
    cdef const floating *sw_ptr = NULL
    cdef floating *g
    cdef const floating *p
    cdef double data_sum = 0.0, sw_sum = 0.0, sumsq
    cdef floating a, inv
    cdef int i, interrupted = 0
    cdef long long last_check
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

    with nogil:
        last_check = _now_ns()
        start = 0
        while start < n:
            stop = start + chunk_rows
            if stop > n:
                stop = n
            B = stop - start
            data_sum += forward_backward(net, &inp, &Y[0, 0], sw_ptr, NULL, start, B,
                                         &params[0], &grad_out[0],
                                         0 if start == 0 else 1, &work[0], False,
                                         loss_scale)
            start = stop
            if start < n and _check_signals(&last_check):
                interrupted = 1
                break
    if interrupted:
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
    return data_sum / sw_sum + 0.5 * alpha * sumsq / sw_sum


def forward(NetSpec spec, const floating[::1] params, X, tuple csr, floating[:, ::1] out,
            floating[::1] work, Py_ssize_t chunk_rows):
    """Network output for every row of X, written into ``out`` (n, n_outputs).

    Rows are processed ``chunk_rows`` at a time with two ping-pong buffers
    from ``work`` (``spec.predict_workspace_size(chunk_rows)``), so memory
    stays bounded; the GIL is released throughout.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef Py_ssize_t n = out.shape[0]
    cdef const floating[:, ::1] Xd = None
    cdef const floating[::1] data = None
    cdef const Py_ssize_t[::1] indices = None
    cdef const Py_ssize_t[::1] indptr = None
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
    if work.shape[0] < 2 * chunk_rows * net.max_width:
        raise ValueError("workspace too small")
    cdef int interrupted
    with nogil:
        interrupted = _forward_rows(net, &inp, &params[0], n, chunk_rows, &out[0, 0],
                                    &work[0])
    if interrupted:
        _raise_pending()


cdef int _forward_rows(const Net *net, const Input *X, const floating *params,
                       Py_ssize_t n, Py_ssize_t chunk_rows, floating *out,
                       floating *work) noexcept nogil:
    """Forward pass over all rows, chunk by chunk; returns 1 if a signal
    handler raised (Ctrl-C) between chunks."""
    cdef Py_ssize_t start = 0, stop, B, nf = net.sizes[0]
    cdef int i, L = net.n_layers
    cdef floating *cur
    cdef floating *nxt
    cdef floating *dst
    cdef floating *ping = work
    cdef floating *pong = work + chunk_rows * net.max_width
    cdef const floating *A0
    cdef long long last_check = _now_ns()
    while start < n:
        if start > 0 and _check_signals(&last_check):
            return 1
        stop = start + chunk_rows
        if stop > n:
            stop = n
        B = stop - start
        A0 = (<const floating *> X.dense) + start * nf if X.csr_data == NULL else NULL
        dst = out + start * net.sizes[L] if L == 1 else ping
        first_layer_product(net, X, params, A0, NULL, start, B, dst)
        bias_activation(dst, B, net.sizes[1], params + net.off_b[0],
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
            bias_activation(nxt, B, net.sizes[i + 1], params + net.off_b[i],
                            net.out_act if i == L - 1 else net.hidden_act)
            cur = nxt
        start = stop
    return 0


def apply_activation(floating[:, ::1] Z, str name):
    """Apply activation ``name`` to ``Z`` in place (for tests)."""
    cdef floating[::1] zero = np.zeros(Z.shape[1], dtype=np.asarray(Z).dtype)
    if name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}")
    if Z.shape[0] and Z.shape[1]:
        bias_activation(&Z[0, 0], Z.shape[0], Z.shape[1], &zero[0], <int> ACTIVATION_CODES[name])


def apply_activation_derivative(floating[:, ::1] D, floating[:, ::1] A, str name):
    """``D *= act'(z)`` in place, from ``A = act(z)`` (for tests)."""
    if D.shape[0] != A.shape[0] or D.shape[1] != A.shape[1]:
        raise ValueError("D and A must have the same shape")
    if name not in ACTIVATION_CODES or name in ("softmax", "exp"):
        raise ValueError(f"no hidden-layer derivative for {name!r}")
    if D.shape[0] and D.shape[1]:
        activation_derivative(&D[0, 0], &A[0, 0], D.shape[0] * D.shape[1],
                              <int> ACTIVATION_CODES[name])
