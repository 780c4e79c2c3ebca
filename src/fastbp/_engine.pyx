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

cimport numpy as cnp

import numpy as np

cnp.import_array()


include "_types.pxi"
include "_math.pxi"
include "_network.pxi"
include "_parallel.pxi"
include "_gemm.pxi"
include "_activations.pxi"
include "_losses.pxi"
include "_layers.pxi"
include "_optim.pxi"
include "_epoch.pxi"
include "_predict.pxi"
include "_testing.pxi"


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
