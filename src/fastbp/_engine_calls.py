"""Every call from Python into the compiled engine, in one place.

The estimators never call ``_engine`` directly: they hand validated input
(:class:`EngineInput`), targets and weights to the few objects here, which
own the scratch buffers the engine works in and pass everything on
positionally. A change of the engine's Python interface is a change of this
module only.
"""

from typing import NamedTuple

import numpy as np

from . import _engine

__all__ = ["CHUNK_ROWS", "EngineInput", "EpochTrainer", "FullBatchObjective", "forward",
           "fast_predictor"]

# rows per chunk of the full-batch passes (prediction, L-BFGS, inspection)
CHUNK_ROWS = _engine.DEFAULT_CHUNK_ROWS


class EngineInput(NamedTuple):
    """Validated X as the engine reads it: ``dense`` (a C-contiguous array
    in the model dtype) or ``csr`` (``(data, indices, indptr)`` with intp
    indices), the other None; ``matrix`` is the validated X itself."""

    dense: object
    csr: object
    matrix: object

    @property
    def n_rows(self):
        return self.matrix.shape[0]

    @property
    def n_features(self):
        return self.matrix.shape[1]

    @property
    def dtype(self):
        return self.matrix.dtype

    def rows(self, index):
        """The rows ``index`` (an index array), as a new EngineInput."""
        if self.csr is None:
            part = self.matrix[index]
            return EngineInput(part, None, part)
        part = self.matrix[index].tocsr()
        return EngineInput(None, _engine._csr_parts(part), part)


def engine_input(X, csr):
    """The EngineInput of ``check_X``'s ``(X, csr_parts)``."""
    return EngineInput(X if csr is None else None, csr, X)


class EpochTrainer:
    """One epoch of mini-batch training per :meth:`run`: a single GIL-free
    engine call that updates the parameters and the optimizer state."""

    def __init__(self, net, optimizer, inp, Y, sample_weight, batch_size, alpha, loss_scale,
                 shuffle):
        self.net = net
        self.optimizer = optimizer
        self.inp = inp
        self.n_rows = inp.n_rows
        # what every epoch call passes, looked up once
        self.spec, self.params, self.dense, self.csr = net.spec, net.params, inp.dense, inp.csr
        self.Y = Y
        self.sample_weight = sample_weight
        self.batch_size = batch_size
        self.alpha = float(alpha)
        self.loss_scale = loss_scale
        self.args = optimizer.engine_args()
        self.state1, self.state2 = optimizer.engine_buffers()
        self.grads = np.empty_like(net.params)
        # a shuffled dense epoch gathers each batch's rows into the workspace
        gather = shuffle and inp.csr is None
        self.work = np.empty(net.spec.train_workspace_size(batch_size, gather),
                             dtype=net.dtype)

    def run(self, order):
        """Train one epoch over the rows in ``order`` (None: in order);
        returns the sum over batches of ``batch_loss * batch_len``."""
        opt, args = self.optimizer, self.args
        opt.before_epoch(args)
        loss_sum = _engine.train_epoch(
            self.spec, self.params, self.grads, self.state1, self.state2, self.dense, self.csr,
            self.Y, self.sample_weight, order, self.batch_size, args, self.alpha,
            self.loss_scale, self.work)
        opt.after_epoch(args)
        return loss_sum


class FullBatchObjective:
    """The training objective and its gradient over all of the input, at
    the network's current parameters (L-BFGS, ``loss_and_gradients``)."""

    def __init__(self, net, inp, Y, sample_weight, alpha):
        self.net = net
        self.inp = inp
        self.Y = Y
        self.sample_weight = sample_weight
        self.alpha = float(alpha)
        self.chunk = min(CHUNK_ROWS, inp.n_rows)
        self.work = np.empty(net.spec.train_workspace_size(self.chunk, False), dtype=net.dtype)
        self.grad = np.empty_like(net.params)

    def __call__(self):
        """The objective; its gradient is left in ``self.grad``."""
        return _engine.loss_and_grad(self.net.spec, self.net.params, self.inp.dense,
                                     self.inp.csr, self.Y, self.sample_weight, self.alpha, 1.0,
                                     self.grad, self.work, self.chunk)


def forward(net, inp):
    """Output-layer activations for ``inp``, shape (n_rows, n_outputs)."""
    n = inp.n_rows
    out = np.empty((n, net.sizes[-1]), dtype=net.dtype)
    chunk = max(1, min(CHUNK_ROWS, n))
    work = np.empty(net.spec.predict_workspace_size(chunk), dtype=net.dtype)
    _engine.forward(net.spec, net.params, inp.dense, inp.csr, out, work, chunk)
    return out


def fast_predictor(net, classes, kind):
    """The engine's small-input ``predict`` path for ``net`` (``kind``:
    'regression', 'binary' or 'multiclass'; ``classes`` for the last two)."""
    return _engine.Predictor(net, classes, kind)
