"""Every call from Python into the compiled engine, in one place.

The estimators never call ``_engine`` directly: they hand validated input
(:class:`EngineInput`), targets and weights to the few objects here, which
own the scratch buffers the engine works in and pass everything on
positionally. A change of the engine's Python interface is a change of this
module only.
"""

import contextlib
import threading

import numpy as np

from . import _engine

__all__ = ["BUFFER_ALIGNMENT", "CHUNK_ROWS", "EngineInput", "EpochTrainer",
           "FullBatchObjective", "aligned_copy", "aligned_empty", "forward", "fast_predictor",
           "loss_record", "dropout_record", "serial_blas", "training_threads"]

# rows per chunk of the full-batch passes (prediction, L-BFGS, inspection)
CHUNK_ROWS = _engine.DEFAULT_CHUNK_ROWS

# the engine threads each training epoch of the calling Python thread uses
# (0: the engine chooses); set by training_threads, per Python thread
_calling_thread = threading.local()


@contextlib.contextmanager
def training_threads(n_threads):
    """Within the block, the training epochs run from this Python thread use
    ``n_threads`` engine threads (0: the engine's own choice), whatever other
    Python threads do: models trained side by side each take one core
    (``n_threads=1``) without their epochs measuring or fighting each other."""
    previous = getattr(_calling_thread, "n_threads", 0)
    _calling_thread.n_threads = int(n_threads)
    try:
        yield
    finally:
        _calling_thread.n_threads = previous


# Buffers the engine streams through start on a cache line: a 32-byte vector
# load from an address 48 bytes into a line spans two lines. OpenBLAS's
# float32 gemv of a one-row prediction (784 x 256 weights, AVX2) took 16.7 us
# with its weights 48 bytes into a line and 12.0 us on a line's start.
BUFFER_ALIGNMENT = 64


def aligned_empty(n, dtype, zero=False):
    """A 1-D buffer of ``n`` items (zeros when ``zero``) starting on a
    BUFFER_ALIGNMENT-byte boundary: a view into a slightly larger array."""
    dtype = np.dtype(dtype)
    extra = BUFFER_ALIGNMENT // dtype.itemsize
    raw = (np.zeros if zero else np.empty)(n + extra, dtype=dtype)
    skip = (-raw.ctypes.data % BUFFER_ALIGNMENT) // dtype.itemsize
    return raw[skip:skip + n]


def aligned_copy(values):
    """A writable copy of ``values`` (flattened) in an ``aligned_empty`` buffer."""
    out = aligned_empty(values.size, values.dtype)
    out[...] = values.reshape(-1)
    return out


class EngineInput:
    """Validated X as the engine reads it: ``matrix`` (a C-contiguous array
    in the model dtype, or a CSR matrix with values in it) and ``engine``,
    the ``_engine.InputMatrix`` pointing at it (built once, never a copy)."""

    __slots__ = ("matrix", "engine")

    def __init__(self, matrix):
        self.matrix = matrix
        self.engine = _engine.InputMatrix(matrix)

    @property
    def n_rows(self):
        return self.matrix.shape[0]

    @property
    def n_features(self):
        return self.matrix.shape[1]

    @property
    def dtype(self):
        return self.engine.dtype

    @property
    def is_sparse(self):
        return self.engine.is_sparse

    def rows(self, index):
        """The rows ``index`` (an index array), as a new EngineInput."""
        part = self.matrix[index]
        return EngineInput(part.tocsr() if self.is_sparse else part)


def loss_record(net, loss, settings):
    """The engine's record of the training loss ``loss`` (a name of
    ``_losses.LOSSES``) with its ``settings`` (``_losses.LossSettings``) on
    ``net``'s output."""
    return _engine.LossRecord(loss, net.spec.output_activation, settings.huber_delta,
                              settings.quantiles, settings.label_smoothing)


def dropout_record(rates, seed, fixed_step=0):
    """The engine's dropout record (one rate per hidden layer, the fit's
    mask seed), or None when no layer drops anything."""
    if not any(rates):
        return None
    return _engine.DropoutRecord(rates, seed, fixed_step)


class EpochTrainer:
    """One epoch of mini-batch training per :meth:`run`: a single GIL-free
    engine call that updates the parameters and the optimizer state, with
    the training loss ``loss`` (an engine ``LossRecord``) and ``dropout``
    (an engine ``DropoutRecord`` or None)."""

    def __init__(self, net, optimizer, inp, Y, sample_weight, batch_size, alpha, loss_scale,
                 shuffle, loss=None, dropout=None):
        self.net = net
        self.optimizer = optimizer
        self.inp = inp
        self.n_rows = inp.n_rows
        # what every epoch call passes, looked up once
        self.spec, self.params, self.rows = net.spec, net.params, inp.engine
        self.Y = Y
        self.sample_weight = sample_weight
        self.batch_size = batch_size
        self.alpha = float(alpha)
        self.loss_scale = loss_scale
        self.loss = loss
        self.dropout = dropout
        self.record = optimizer.engine_record()
        self.state1, self.state2 = optimizer.engine_buffers()
        self.grads = aligned_empty(net.params.size, net.dtype)
        # a shuffled dense epoch gathers each batch's rows into the workspace
        gather = shuffle and not inp.is_sparse
        self.work = aligned_empty(net.spec.train_workspace_size(
            batch_size, gather, dropout is not None, optimizer.max_grad_norm > 0), net.dtype)

    def run(self, order):
        """Train one epoch over the rows in ``order`` (None: in order);
        returns the sum over batches of ``batch_loss * batch_len``."""
        opt, record = self.optimizer, self.record
        opt.before_epoch(record)
        loss_sum = _engine.train_epoch(
            self.spec, self.params, self.grads, self.state1, self.state2, self.rows, self.Y,
            self.sample_weight, order, self.batch_size, record, self.alpha,
            self.loss_scale, self.work, getattr(_calling_thread, "n_threads", 0), self.loss,
            self.dropout)
        opt.after_epoch(record)
        return loss_sum


class FullBatchObjective:
    """The training objective and its gradient over all of the input, at
    the network's current parameters (L-BFGS, ``loss_and_gradients``):
    training loss ``loss`` (a name of ``_losses.LOSSES``; None: the
    output's canonical loss) with its ``settings``. ``dropout``, a test
    hook: an engine ``DropoutRecord`` with a fixed step, whose masks then
    apply (rows keyed by their index in the input)."""

    def __init__(self, net, inp, Y, sample_weight, alpha, loss=None, settings=None,
                 dropout=None):
        self.net = net
        self.inp = inp
        self.Y = Y
        self.sample_weight = sample_weight
        self.alpha = float(alpha)
        self.loss = None if loss is None else loss_record(net, loss, settings)
        self.dropout = dropout
        self.chunk = min(CHUNK_ROWS, inp.n_rows)
        self.work = aligned_empty(net.spec.train_workspace_size(self.chunk, False,
                                                                dropout is not None), net.dtype)
        self.grad = aligned_empty(net.params.size, net.dtype)

    def __call__(self):
        """The objective; its gradient is left in ``self.grad``."""
        return _engine.loss_and_grad(self.net.spec, self.net.params, self.inp.engine, self.Y,
                                     self.sample_weight, self.alpha, 1.0, self.grad, self.work,
                                     self.chunk, 0, self.loss, self.dropout)


def serial_blas():
    """A context manager holding scipy's OpenBLAS at one thread (restored
    after): around scipy's L-BFGS-B, whose vector products OpenBLAS would
    otherwise split between threads, rounding differently for each count."""
    return _engine._BlasSerial()


def forward(net, inp, check_finite=False):
    """Output-layer activations for ``inp``, shape (n_rows, n_outputs);
    ``check_finite``: None when a dense input holds NaN or infinity."""
    n = inp.n_rows
    out = np.empty((n, net.sizes[-1]), dtype=net.dtype)
    chunk = max(1, min(CHUNK_ROWS, n))
    work = aligned_empty(net.spec.predict_workspace_size(chunk), net.dtype)
    if not _engine.forward(net.spec, net.params, inp.engine, out, work, chunk, 0,
                           check_finite):
        return None
    return out


def fast_predictor(net, classes, kind):
    """The engine's small-input ``predict`` path for ``net`` (``kind``:
    'regression', 'binary' or 'multiclass'; ``classes`` for the last two)."""
    return _engine.Predictor(net.spec, net.params, net.coefs, net.intercepts, classes, kind)
