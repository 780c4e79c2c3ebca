"""Stochastic training (solver='sgd' or 'adam'): the epoch loop, the stop
rules, early stopping, the callbacks, and the one rollback primitive.

Per epoch, Python draws the shuffle (the same draws as scikit-learn), makes
one GIL-free engine call that runs every mini-batch, then applies the
per-epoch rules: the loss is recorded, early stopping scores the held-out
data and keeps the best weights, the learning-rate schedule moves, callbacks
run, and the ``tol`` / ``n_iter_no_change`` rule decides whether to stop.

:class:`Checkpoint` is the rollback: a failed ``fit`` restores the
estimator exactly as it was before the call, and Ctrl-C restores the last
whole epoch.
"""

import math
import warnings
from typing import NamedTuple

import numpy as np

from . import _losses, _targets
from ._compat import shuffle_indices, train_test_split_indices
from ._engine_calls import EpochTrainer, forward
from ._exceptions import convergence_warning
from ._optimizers import Optimizer

__all__ = ["Checkpoint", "StochasticTraining"]


class Checkpoint:
    """What a fit changes, saved and restored exactly.

    Saves the estimator's attributes (a shallow copy: fits replace
    attributes, except the lists they append to, loss_curve_,
    validation_scores_ and validation_loss_curve_, whose lengths are kept),
    the optimizer's attributes, and a copy of each array in ``arrays``
    (those written in place: parameters, optimizer state, early-stopping
    weights). ``save()`` again reuses the copies: saving every epoch
    allocates nothing. ``save_now=False`` defers the first save to the
    caller (the epoch loop saves at the start of every epoch).
    """

    def __init__(self, estimator, optimizer, arrays, save_now=True):
        self.estimator = estimator
        self.optimizer = optimizer
        self.arrays = [(array, np.empty_like(array)) for array in arrays]
        if save_now:
            self.save()

    def save(self):
        attributes = self.estimator.__dict__
        self.attributes = attributes.copy()
        get = attributes.get
        self.list_lengths = [(v, len(v)) for v in (get("loss_curve_"), get("validation_scores_"),
                                                   get("validation_loss_curve_"))
                             if v is not None]
        if self.optimizer is not None:
            self.optimizer_attributes = self.optimizer.__dict__.copy()
        for array, copy in self.arrays:
            copy[...] = array

    def restore(self):
        attributes = self.estimator.__dict__
        attributes.clear()
        attributes.update(self.attributes)
        for values, length in self.list_lengths:
            del values[length:]
        if self.optimizer is not None:
            self.optimizer.__dict__.clear()
            self.optimizer.__dict__.update(self.optimizer_attributes)
        for array, copy in self.arrays:
            array[...] = copy


class _HeldOut(NamedTuple):
    """The early-stopping validation data: input, encoded targets ``Y``,
    targets ``y`` as ``score`` compares them, sample weights."""

    inp: object
    Y: object
    y: object
    sample_weight: object


class StochasticTraining:
    """The sgd/adam solver of the MLP estimators (a mixin of ``_BaseMLP``).

    Uses ``_net`` and the hyper-parameters; owns ``_optimizer``,
    ``_no_improvement_count`` and ``_best_params`` (early stopping's best
    weights) and writes the fitted attributes ``n_iter_``, ``t_``,
    ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``validation_loss_curve_`` and ``best_validation_score_``.
    """

    def _reset_training_record(self, stochastic):
        """A new network: no optimizer state, and (sgd, adam) an empty record."""
        for name in ("_optimizer", "loss_curve_", "best_loss_", "validation_scores_",
                     "validation_loss_curve_", "best_validation_score_"):
            self.__dict__.pop(name, None)
        if not stochastic:
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _fit_stochastic(self, inp, Y, sw, incremental, runner=None):
        net = self._sync()
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = Optimizer(self, net.spec.n_params, net.dtype)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        held_out = None
        if self.early_stopping:
            inp, Y, sw, held_out = self._early_stopping_split(inp, Y, sw)
        n_samples = inp.n_rows
        trainer = EpochTrainer(net, self._optimizer, inp, Y, sw, self._batch_size(n_samples),
                               self.alpha, self._loss_scale(), self.shuffle)
        self._run_epochs(trainer, held_out, incremental, runner)
        if held_out is not None:
            np.copyto(net.params, self._best_params)

    def _early_stopping_split(self, inp, Y, sw):
        """(train input, Y, sample weights, held-out data), split as
        scikit-learn splits: stratified on the encoded target for binary
        classification."""
        stratify = Y.astype(bool) if (self._is_classifier() and self.n_outputs_ == 1) else None
        train, val = train_test_split_indices(inp.n_rows, self.validation_fraction,
                                              self._random_state, stratify)
        if val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or "
                "the size of your dataset."
            )
        inp_train, inp_val = inp.rows(train), inp.rows(val)
        Y_val = Y[val]
        sw_val = None if sw is None else sw[val]
        y_val = _targets.decode(Y_val, self._encoding()) if self._is_classifier() else Y_val
        return (inp_train, np.ascontiguousarray(Y[train]),
                None if sw is None else np.ascontiguousarray(sw[train]),
                _HeldOut(inp_val, Y_val, y_val, sw_val))

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going "
                "to be clipped"
            )
        return int(np.clip(self.batch_size, 1, n_samples))

    def _loss_scale(self):
        return _losses.reported_loss_scale(self._loss_name(), self.n_outputs_)

    def _run_epochs(self, trainer, held_out, incremental, runner):
        """The epoch loop. Ctrl-C keeps the epochs already recorded: an epoch
        it interrupts (in the engine or in its bookkeeping) is rolled back."""
        opt = trainer.optimizer
        arrays = [trainer.net.params] + opt.written_buffers()
        if held_out is not None:
            arrays.append(self._best_params)
        epoch_start = Checkpoint(self, opt, arrays, save_now=False)
        n_samples = trainer.inp.n_rows
        sample_idx = np.arange(n_samples, dtype=np.intp)
        in_epoch = False
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                order = None
                if self.shuffle:
                    shuffle_indices(sample_idx, self._random_state, inplace=True)
                    order = sample_idx
                epoch_start.save()
                in_epoch = True
                learning_rate = opt.learning_rate
                loss = trainer.run(order) / n_samples
                self.n_iter_ += 1
                self.loss_ = loss
                self.t_ += n_samples
                self.loss_curve_.append(loss)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, loss))
                if not math.isfinite(loss):
                    self._raise_non_finite_loss()
                self._update_no_improvement_count(held_out)
                opt.iteration_ends(self.t_)
                in_epoch = False
                if runner is not None and self._callbacks_stop(runner, held_out, learning_rate) \
                        and not incremental:
                    if self.verbose:
                        print("Training stopped by a callback after epoch %d." % self.n_iter_)
                    break
                if self._no_improvement_count > self.n_iter_no_change:
                    if opt.trigger_stopping(self._no_improvement_message(held_out),
                                            self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        convergence_warning(),
                    )
        except KeyboardInterrupt:
            if in_epoch:
                epoch_start.restore()
            warnings.warn(
                f"Training interrupted by user. The model holds the weights after epoch "
                f"{self.n_iter_} of this call."
            )

    def _warn_if_diverged(self, epochs_before):
        """Warn when the loss of this call ends far above its first epoch: the
        weights are finite, but training went the wrong way."""
        curve = (getattr(self, "loss_curve_", None) or [])[epochs_before:]
        if len(curve) >= 2 and curve[0] > 0 and curve[-1] > 10 * curve[0]:
            warnings.warn(
                f"Training diverged: the training loss rose from {curve[0]:.6g} after the "
                f"first epoch to {curve[-1]:.6g} after epoch {len(curve)} of this call. "
                f"learning_rate_init={self.learning_rate_init} is probably too large, or "
                "the input data needs to be scaled.",
                convergence_warning(),
            )

    def _raise_non_finite_loss(self):
        raise ValueError(
            "Solver produced non-finite parameter weights (the training loss "
            f"became {self.loss_} in epoch {self.n_iter_}). The input data may "
            "contain large values and need to be preprocessed, or "
            f"learning_rate_init={self.learning_rate_init} may be too large."
        )

    def _callbacks_stop(self, runner, held_out, learning_rate):
        return runner.epoch_end(
            self, self.n_iter_, self.loss_,
            self.validation_scores_[-1] if held_out is not None else None,
            self.validation_loss_curve_[-1] if held_out is not None else None,
            learning_rate)

    def _no_improvement_message(self, held_out):
        what = "Validation score" if held_out is not None else "Training loss"
        return ("%s did not improve more than tol=%f for %d consecutive epochs."
                % (what, self.tol, self.n_iter_no_change))

    def _update_no_improvement_count(self, held_out):
        if held_out is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
            return
        net = self._net
        P = forward(net, held_out.inp)
        score = _targets.score(P, held_out.y, held_out.sample_weight, self._encoding())
        self.validation_scores_.append(score)
        if getattr(self, "validation_loss_curve_", None) is None:
            # a model fitted by an older fastbp, or without early stopping before
            self.validation_loss_curve_ = [np.nan] * (len(self.validation_scores_) - 1)
        self.validation_loss_curve_.append(_losses.validation_loss(
            P, held_out.Y, held_out.sample_weight, self.out_activation_, self._loss_scale(),
            np.finfo(net.dtype).eps))
        if self.verbose:
            print("Validation score: %f" % score)
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            np.copyto(self._best_params, net.params)
