# cython: language_level=3
"""Typed training and inference core of fastbp: one extension module,
assembled from include units by concern (one C translation unit, so that
helpers inline across units and setup.py can mark the element-wise kernels
for AVX-512/AVX2 clones).

Design
------
* A network is a ``NetSpec`` (_network.pxi: widths, activation codes, layer
  offsets) and one flat parameter buffer ``[W0, b0, W1, b1, ...]``;
  gradients and optimizer state are flat buffers of the same length.
* Every kernel is written once over Cython's ``floating`` fused type: the
  float32 and float64 engines come from one source. Kernels take raw
  pointers (``# IN`` / ``# OUT`` name the roles) and run without the GIL.
* ``train_epoch`` runs a whole epoch (forward, loss, backward, optimizer
  step for every mini-batch) in one GIL-free call, taking the GIL only every
  ~20 ms to check for Ctrl-C; Python runs between epochs.
* Batches are row-major (``Z = A @ W + b``): BLAS or measured small loops
  for the products, then one fused pass for bias and activation.
* Threads (a small persistent pool, _threads.h) split each batch: blocks
  of rows, then blocks of parameters; or two fixed half-batches when the
  activations outweigh the parameters. The blocks depend on the shapes
  only, so the weights (float32 and float64) do not depend on the thread
  count; a thread runs its consecutive blocks as one product where a
  probe showed the same bits.
* The element-wise kernels come in AVX-512, AVX2 and baseline versions,
  one set chosen at import (_simd.pxi: the CPU's best or FASTBP_SIMD).
* Arithmetic follows scikit-learn's order of operations, so a float64 fit
  reproduces scikit-learn's weights up to BLAS rounding.

Units, in dependency order: _types (shared structs, the thread cap), _math
(exp, tanh, sums), _network (NetSpec), _input (InputMatrix, the one input
check), _parallel (pool, splits, thresholds, OpenBLAS), _gemm (products),
_own_gemm and _step_gemm (own kernels for prediction and training steps),
_activations and _losses (registries), _dropout (masks), _layers
(first-layer and bias kernels), _schedules (per-step learning-rate factors),
_optim (steps, OptimizerRecord), _epoch (phases, segments, tuner),
_block_merge (one thread's blocks as one product where the bits agree),
_predict_split (small inputs' large layers shared between cores), _own_rows
(an own kernel for a few rows over a large layer), _predict (forward,
Predictor), _testing (hooks). The entry points below
check their arguments once and release the GIL. docs/architecture.md says
where each kind of addition goes.
"""

from libc.math cimport log, log1p, sqrt, sqrtf, pow
from libc.string cimport memcmp, memcpy, memset
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint32_t, uint64_t
cimport cython
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv
cimport numpy as cnp

import numpy as np

cnp.import_array()
cnp.import_ufunc()

include "_simd.pxi"
include "_types.pxi"
include "_math.pxi"
include "_network.pxi"
include "_input.pxi"
include "_parallel.pxi"
include "_gemm.pxi"
include "_own_gemm.pxi"
include "_step_gemm.pxi"
include "_activations.pxi"
include "_losses.pxi"
include "_dropout.pxi"
include "_layers.pxi"
include "_schedules.pxi"
include "_optim.pxi"
include "_epoch.pxi"
include "_block_merge.pxi"
include "_predict_split.pxi"
include "_own_rows.pxi"
include "_predict.pxi"
include "_testing.pxi"


# the kernel set: the CPU's best, or FASTBP_SIMD's (a warning when it cannot run here)
_simd_level = fastbp_simd_dispatch(_requested_simd_level(True))


# ---------------------------------------------------------------------------
# Argument checks shared by the entry points
# ---------------------------------------------------------------------------

cdef int _check_length(Py_ssize_t got, Py_ssize_t expected, str name) except -1:
    # a buffer's length (parameters, gradients, weights, orders)
    if got != expected:
        raise ValueError(f"{name} has {got} values, expected {expected}")
    return 0


cdef int _check_outputs(const Net *net, Py_ssize_t n_columns, str name) except -1:
    if n_columns != net.sizes[net.n_layers]:
        raise ValueError(f"{name} has {n_columns} columns, the network has "
                         f"{net.sizes[net.n_layers]} outputs")
    return 0


cdef int _check_targets(const Net *net, Py_ssize_t n_rows, Py_ssize_t n_columns,
                        str name) except -1:
    # training targets: one column per output, at least one row
    _check_outputs(net, n_columns, name)
    if n_rows < 1:
        raise ValueError(f"{name} has no rows: training needs at least one sample")
    return 0


cdef int _check_workspace(Py_ssize_t got, Py_ssize_t needed) except -1:
    if got < needed:
        raise ValueError(f"work has {got} values, needs at least {needed}")
    return 0


cdef Py_ssize_t _rows_per_block(Py_ssize_t rows, Py_ssize_t n, str name) except -1:
    # a batch or chunk size, at least 1 and at most n
    if rows < 1:
        raise ValueError(f"{name} must be >= 1, got {rows}")
    return rows if rows < n else n


cdef const floating *_sample_weights(const floating[::1] sample_weight,
                                     Py_ssize_t n) except? NULL:
    # a pointer to the weights, or NULL without
    if sample_weight is None:
        return NULL
    _check_length(sample_weight.shape[0], n, "sample_weight")
    return &sample_weight[0]


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------

def train_epoch(NetSpec spec, floating[::1] params, floating[::1] grads,
                floating[::1] state1, floating[::1] state2, InputMatrix X not None,
                const floating[:, ::1] Y, const floating[::1] sample_weight,
                const Py_ssize_t[::1] order, Py_ssize_t batch_size,
                OptimizerRecord optimizer not None, double alpha, double loss_scale,
                floating[::1] work, int n_threads=0, LossRecord loss=None,
                DropoutRecord dropout=None):
    """Run one epoch of mini-batch training in a single GIL-free call.

    Parameters
    ----------
    spec : NetSpec
    params, grads, state1, state2 : 1-D arrays of ``spec.n_params``
        Parameters (updated in place), gradient scratch, optimizer state
        (SGD: velocity, state2 unused; Adam: first and second moments).
    X : InputMatrix
        The rows (dense or CSR), in the dtype of the other buffers.
    Y : ndarray (n_samples, n_outputs) C-contiguous targets.
    sample_weight : 1-D array or None
    order : 1-D intp array or None
        Sample order of this epoch (a permutation); None walks X in order.
    batch_size : int
    optimizer : OptimizerRecord
        The optimizer's settings and step count (``t`` advances by the
        epoch's batches).
    alpha : float
        L2 penalty.
    loss_scale : float
        Factor on the data term of the reported loss (1 / n_outputs for
        squared error, as scikit-learn reports it; 1 otherwise).
    work : 1-D array of ``spec.train_workspace_size(batch_size, gather, dropout, clip)``
        (``gather``: dense X and an ``order``; ``dropout``: a record given;
        ``clip``: the optimizer clips)
    n_threads : int, default=0
        Threads to use. 0 lets fastbp choose: one for small networks, else
        up to as many as scipy's OpenBLAS is allowed (``epoch_threads``),
        switching between that and one thread by measured speed as the
        epoch runs (so a busy machine does not make it collapse). The
        weights do not depend on it: every product is a block fixed by the
        shapes, whichever thread runs it.
    loss : LossRecord, default=None
        The training loss and its settings; None: the canonical loss of the
        network's output activation (scikit-learn's).
    dropout : DropoutRecord, default=None
        Dropout on the hidden layers; None: none.

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
    cdef Epoch epoch
    cdef Py_ssize_t n = Y.shape[0]
    cdef unsigned char[::1] touched = None
    cdef bint fixed_threads = n_threads > 0
    cdef long long t_call
    cdef bint gather = order is not None and not X.is_sparse
    loss = _loss_record(net, loss)
    _check_dropout(net, dropout)
    _check_length(params.shape[0], net.n_params, "params")
    _check_length(grads.shape[0], net.n_params, "grads")
    _check_length(state1.shape[0], net.n_params, "state1")
    _check_length(state2.shape[0], net.n_params, "state2")
    _check_targets(net, n, Y.shape[1], "Y")
    _bind_input(&inp, net, X, n, "Y", <floating *> NULL)
    if order is not None:
        _check_length(order.shape[0], n, "order")
    batch_size = _rows_per_block(batch_size, n, "batch_size")
    _check_workspace(work.shape[0], _train_ws_size(net, batch_size, gather, dropout is not None,
                                                   optimizer.config.max_grad_norm > 0))
    n_threads = _thread_count(n_threads, net, batch_size)
    if X.is_sparse:
        # rows of the first-layer gradient that hold data this batch; the
        # others are never zeroed, the optimizer step reads them as zero
        touched = np.zeros(net.sizes[0], dtype=np.uint8)
    _init_epoch(&epoch, net, &inp, &Y[0, 0], _sample_weights(sample_weight, n), n,
                batch_size, &params[0], &grads[0], &loss.config, loss_scale, &work[0],
                floating is float)
    epoch.config.dropout = &dropout.config if dropout is not None else NULL
    _init_training(&epoch.config, &order[0] if order is not None else NULL, &state1[0],
                   &state2[0], &optimizer.config, alpha,
                   &touched[0] if touched is not None else NULL, gather,
                   not X.is_sparse and _data_parallel(net, batch_size))
    buffers = _epoch_buffers(&epoch, n_threads)
    with _BlasSerial():
        # a thread runs its consecutive blocks as one product where the bits agree
        plan_merges(&epoch.config, floating is float, n_threads)
        with nogil:
            t_call = fb_now_ns()
            epoch.totals.sumsq_start = weights_sumsq(net, &params[0])
            _run_epoch(&epoch, &spec.tuner.state, n_threads, fixed_threads, floating is float)
            t_call = fb_now_ns() - t_call
        # raise inside the block: leaving it with the exception still pending
        # would call __exit__ with the error indicator set (a SystemError)
        if epoch.totals.stop:
            _raise_pending()
    _add_phase_times(&epoch.totals, n_threads, t_call, epoch.totals.n_batches)
    _count_steps(&optimizer.config, epoch.totals.n_batches)
    return epoch.totals.loss_sum


def loss_and_grad(NetSpec spec, const floating[::1] params, InputMatrix X not None,
                  const floating[:, ::1] Y, const floating[::1] sample_weight, double alpha,
                  double loss_scale, floating[::1] grad_out, floating[::1] work,
                  Py_ssize_t chunk_rows, int n_threads=0, LossRecord loss=None,
                  DropoutRecord dropout=None):
    """Full-batch objective and gradient at ``params`` (L-BFGS and
    ``loss_and_gradients``).

    Computes ``sum_r sw_r loss_r * loss_scale / sw_sum + alpha / (2 sw_sum)
    * sum ||W||^2`` and writes its gradient into ``grad_out``. Rows are
    processed ``chunk_rows`` at a time, so memory stays bounded. Returns the
    loss; Ctrl-C raises KeyboardInterrupt. ``loss``: as for ``train_epoch``.
    ``dropout`` is a test hook: a record with ``fixed_step > 0`` applies the
    masks of that step (rows keyed by their index in X; ``work`` sized with
    ``dropout=True``), so that a gradient can be checked under a fixed mask;
    without it the full network is evaluated.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef Epoch epoch
    cdef Py_ssize_t n = Y.shape[0]
    cdef const floating *sw
    cdef double sw_sum, sumsq
    cdef long long t_call
    loss = _loss_record(net, loss)
    _check_dropout(net, dropout)
    if dropout is not None and dropout.config.fixed_step <= 0:
        raise ValueError("loss_and_grad applies dropout only as a test hook, with "
                         "fixed_step > 0")
    _check_length(params.shape[0], net.n_params, "params")
    _check_length(grad_out.shape[0], net.n_params, "grad_out")
    _check_targets(net, n, Y.shape[1], "Y")
    _bind_input(&inp, net, X, n, "Y", <floating *> NULL)
    sw = _sample_weights(sample_weight, n)
    chunk_rows = _rows_per_block(chunk_rows, n, "chunk_rows")
    _check_workspace(work.shape[0], _train_ws_size(net, chunk_rows, False, dropout is not None,
                                                   False))
    n_threads = _thread_count(n_threads, net, chunk_rows)
    # params are only read: no optimizer step here
    _init_epoch(&epoch, net, &inp, &Y[0, 0], sw, n, chunk_rows, <void *> &params[0],
                &grad_out[0], &loss.config, loss_scale, &work[0], floating is float)
    epoch.config.dropout = &dropout.config if dropout is not None else NULL
    epoch.segment.stop = n
    clocks = _phase_clocks(&epoch.totals, n_threads)
    with _BlasSerial():
        with nogil:
            t_call = fb_now_ns()
            _run_segment(&epoch, n_threads, floating is float)
            t_call = fb_now_ns() - t_call
        if epoch.totals.stop:  # raised inside the block (see train_epoch)
            _raise_pending()
    _add_phase_times(&epoch.totals, n_threads, t_call, (n + chunk_rows - 1) // chunk_rows)
    with nogil:
        sw_sum = _weight_sum(sw, n)
        sumsq = weights_sumsq(net, &params[0])
        _finish_full_gradient(net, &grad_out[0], &params[0], alpha, sw_sum)
    return epoch.totals.loss_sum / sw_sum + 0.5 * alpha * sumsq / sw_sum


cdef bint _split_chunk(const Net *net, const void *x, Py_ssize_t n, const void *params,
                       void *out, void *work, unsigned int split, int n_threads,
                       bint check_finite, bint is_float) except -1:
    # forward's one chunk of dense rows with the layers in ``split`` shared
    # out by column blocks, as the Predictor's small inputs (_predict_rows)
    cdef bint ok
    with _BlasSerial():
        with nogil:
            ok = _predict_rows_of(net, x, n, params, out, work, is_float, split, n_threads,
                                  check_finite)
    return ok


def forward(NetSpec spec, const floating[::1] params, InputMatrix X not None,
            floating[:, ::1] out, floating[::1] work, Py_ssize_t chunk_rows, int n_threads=0,
            bint check_finite=False):
    """Network output for every row of X, written into ``out`` (n, n_outputs).
    Returns True; with ``check_finite``, False (and ``out`` incomplete) when
    a dense X holds NaN or infinity: each chunk's rows are checked before
    its products, while they are in cache.

    Rows are processed ``chunk_rows`` at a time with two ping-pong buffers
    from ``work`` (``spec.predict_workspace_size(chunk_rows)``), so memory
    stays bounded; the GIL is released throughout. With several chunks the
    chunks are shared out between threads (``n_threads``; 0: as for
    training, at most what scipy's OpenBLAS is allowed), each taking the next
    free chunk, with their own buffers; scipy's OpenBLAS stays on one thread.
    One chunk of dense rows shares out its large layers' column blocks
    instead, where a probe found that they give the whole products' bits
    (``split_plan``), unless ``n_threads`` is 1.
    """
    cdef Net *net = &spec.net
    cdef Input inp
    cdef PredictJob job
    cdef Py_ssize_t n = out.shape[0], n_chunks, ws
    cdef floating[::1] extra = None
    cdef OwnLayer plan[OWN_GEMM_MAX_LAYERS]
    cdef Py_ssize_t packed_size
    cdef char *base
    cdef int t
    cdef unsigned int split
    _check_length(params.shape[0], net.n_params, "params")
    _check_outputs(net, out.shape[1], "out")
    _bind_input(&inp, net, X, n, "out", <floating *> NULL)
    if n == 0:
        return True
    chunk_rows = _rows_per_block(chunk_rows, n, "chunk_rows")
    ws = _predict_ws_size(net, chunk_rows)
    _check_workspace(work.shape[0], ws)
    n_chunks = (n + chunk_rows - 1) // chunk_rows
    if n_chunks == 1 and inp.csr_data == NULL:
        # one chunk: the own kernel reads the weights in place (no copy to
        # amortise), and large layers' columns may still be shared out
        probe_rows_layers(floating is float, net)
        probe_in_place_layers(floating is float, net, n)
        split = split_plan(floating is float, net, n) if n_threads != 1 else 0
        if split:
            return _split_chunk(net, inp.dense, n, &params[0], &out[0, 0], &work[0], split,
                                n_threads if n_threads > 0 else blas_threads(), check_finite,
                                floating is float)
    n_threads = <int> min(_thread_count(n_threads, net, chunk_rows), n_chunks)
    if n_threads > 1:
        extra = np.empty((n_threads - 1) * ws, dtype=np.asarray(work).dtype)
    memset(&job, 0, sizeof(PredictJob))
    job.net = net
    job.inp = &inp
    job.params = &params[0]
    job.n = n
    job.chunk_rows = chunk_rows
    job.out = &out[0, 0]
    job.work[0] = &work[0]
    for t in range(1, n_threads):
        job.work[t] = &extra[(t - 1) * ws]
    job.check_finite = check_finite and inp.csr_data == NULL
    if inp.csr_data == NULL:
        # a last chunk of a few rows may take the rows kernel: its shapes probed first
        probe_rows_layers(floating is float, net)
        # the products the own kernel takes on packed weights (several
        # chunks), and each thread's copy (64-byte aligned: each thread's
        # size is a whole number of 128-byte panels)
        packed_size = (plan_own_products(floating is float, net, n, chunk_rows, plan)
                       if n_chunks > 1 else 0)
        if packed_size > 0:
            packed = np.empty(n_threads * packed_size * sizeof(floating) + 64, dtype=np.uint8)
            base = <char *> cnp.PyArray_DATA(<cnp.ndarray> packed)
            base += (64 - (<size_t> base) % 64) % 64
            job.own = plan
            for t in range(n_threads):
                job.packed[t] = (<floating *> base) + t * packed_size
    _run_predict_job(&job, n_threads, floating is float)
    return not job.nonfinite


def all_finite(const floating[::1] values):
    """True when no value is NaN or infinite: one pass, no temporary array
    (``np.isfinite(X).all()`` allocates a boolean array the size of X)."""
    cdef bint finite = True
    if values.shape[0] > 0:
        with nogil:
            finite = _rows_finite(&values[0], values.shape[0])
    return finite
