"""Stochastic training (solver='sgd' or 'adam'): the epoch loop, the stop
rules, early stopping, the callbacks, and the one rollback primitive.

Per epoch, Python draws the shuffle (the same draws as scikit-learn), makes
one GIL-free engine call that runs every mini-batch (dropout, weight decay,
clipping and the per-step learning-rate schedules are the engine's), then
applies the per-epoch rules: the loss is recorded, the validation data (early
stopping's split, or ``fit``'s ``X_val``) is scored and early stopping keeps
the best weights, scikit-learn's learning-rate schedules move, callbacks run,
and the ``tol`` / ``n_iter_no_change`` rule decides whether to stop.

:class:`Checkpoint` is the rollback: a failed ``fit`` restores the
estimator exactly as it was before the call, and Ctrl-C restores the last
whole epoch.
"""

import math
import warnings
from typing import NamedTuple

import numpy as np

from . import _losses, _targets
from ._class_weight import class_sample_weight
from ._compat import shuffle_indices, train_test_split_indices
from ._engine_calls import EpochTrainer, dropout_record, forward, loss_record
from ._exceptions import convergence_warning
from ._optimizers import Optimizer
from ._validation import check_sample_weight

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
    """The validation data (early stopping's split or ``X_val``): input,
    encoded targets ``Y``, targets ``y`` as ``score`` compares them, sample
    weights."""

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

    Validation data given to ``fit`` (``X_val``) replaces early stopping's
    split; without early stopping it is scored and its loss recorded after
    every epoch, and training runs exactly as without it (no stopping on it,
    no rollback to its best epoch): the curves are then there to look at,
    where scikit-learn's HistGradientBoosting raises instead.
    """

    def _reset_training_record(self, stochastic, validating=False):
        """A new network: no optimizer state, and (sgd, adam) an empty record
        (validation lists with early stopping or validation data)."""
        for name in ("_optimizer", "loss_curve_", "best_loss_", "validation_scores_",
                     "validation_loss_curve_", "best_validation_score_"):
            self.__dict__.pop(name, None)
        if not stochastic:
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        validating = validating or self.early_stopping
        self.validation_scores_ = [] if validating else None
        self.validation_loss_curve_ = [] if validating else None
        if self.early_stopping:
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.best_validation_score_ = None

    def _fit_stochastic(self, inp, Y, sw, incremental, runner=None, held_out=None,
                        settings=None, dropout_rates=()):
        net = self._sync()
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = Optimizer(self, net.spec.n_params, net.dtype)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping and held_out is None:
            inp, Y, sw, held_out = self._early_stopping_split(inp, Y, sw)
        n_samples = inp.n_rows
        batch_size = self._batch_size(n_samples)
        self._optimizer.set_schedule_length(-(-n_samples // batch_size), self.max_iter)
        # the mask seed is drawn only with dropout: scikit-learn's draws stay as they are
        dropout = None
        if any(dropout_rates):
            dropout = dropout_record(dropout_rates, self._dropout_seed())
        trainer = EpochTrainer(net, self._optimizer, inp, Y, sw, batch_size, self.alpha,
                               self._loss_scale(), self.shuffle,
                               loss_record(net, self._loss_name(), settings), dropout)
        self._run_epochs(trainer, held_out, incremental, runner)
        if self.early_stopping:
            np.copyto(net.params, self._best_params)

    def _dropout_seed(self):
        """The fit's dropout mask seed: two draws of 31 bits from its random state."""
        high = int(self._random_state.randint(np.iinfo(np.int32).max))
        low = int(self._random_state.randint(np.iinfo(np.int32).max))
        return (high << 31) | low

    def _check_validation_arguments(self, validation):
        """``fit``'s validation data: X_val and y_val together, stochastic
        solvers only (checked before anything is trained)."""
        if validation is None:
            return
        X_val, y_val, _ = validation
        if X_val is None or y_val is None:
            raise ValueError(
                "X_val and y_val must be given together (sample_weight_val only with them); "
                f"got X_val={'None' if X_val is None else 'an array'} and "
                f"y_val={'None' if y_val is None else 'an array'}."
            )
        if self.solver not in ("sgd", "adam"):
            raise ValueError(
                f"X_val applies to solver='sgd' or 'adam', which train epoch by epoch; "
                f"solver={self.solver!r} has no epochs to validate. Use solver='adam', or "
                "fit without X_val."
            )

    def _validation_set(self, X_val, y_val, sample_weight_val):
        """``fit``'s validation data as the held-out data it scores, checked
        against the fitted network (features, classes, outputs)."""
        try:
            inp = self._validate_X(X_val, reset=False)
            Y = _targets.encode_known_targets(
                y_val, inp.n_rows, inp.dtype, loss=self._loss_name(),
                encoding=self._encoding(), n_outputs=self.n_outputs_,
                quantiles=self._quantiles())
            sw = check_sample_weight(sample_weight_val, inp.n_rows, inp.dtype)
        except ValueError as exc:
            raise ValueError(f"Invalid validation data (X_val, y_val, sample_weight_val): "
                             f"{exc}") from exc
        encoding = self._encoding()
        if encoding is not None:
            sw = class_sample_weight(getattr(self, "class_weight", None), encoding, Y, sw,
                                     incremental=False)
        return _HeldOut(inp, Y, _targets.decode(Y, encoding) if encoding is not None else Y,
                        sw)

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
                loss = trainer.run(order) / n_samples
                learning_rate = opt.last_step_learning_rate(trainer.record)
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

    def _check_finite_result(self):
        """After either solver: the weights, the optimizer state and the loss are finite."""
        if not np.all(np.isfinite(self._net.params)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        opt = getattr(self, "_optimizer", None)
        if opt is not None and not opt.is_finite():
            # e.g. Adam's second moment overflowing: the weights would silently
            # stop moving in every later epoch
            raise ValueError(
                "Solver produced a non-finite optimizer state (the gradients overflowed). "
                "The input data may contain large values and need to be preprocessed, or "
                f"learning_rate_init={self.learning_rate_init} may be too large."
            )
        if not np.isfinite(getattr(self, "loss_", 0.0)):
            # finite weights whose outputs overflow on the training data
            raise ValueError(
                f"The training loss is {self.loss_}: the network's outputs overflow on the "
                "training data. The input data may contain large values and need to be "
                "preprocessed."
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
        what = "Validation score" if self.early_stopping else "Training loss"
        return ("%s did not improve more than tol=%f for %d consecutive epochs."
                % (what, self.tol, self.n_iter_no_change))

    def _update_no_improvement_count(self, held_out):
        if held_out is not None:
            monitored = self._record_validation(held_out)
        if not self.early_stopping:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
            return
        if monitored < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if monitored > self.best_validation_score_:
            self.best_validation_score_ = monitored
            np.copyto(self._best_params, self._net.params)

    def _record_validation(self, held_out):
        """Score the validation data and record its score and loss; returns
        what early stopping monitors (the score, or minus the loss with
        ``scoring='loss'``, as HistGradientBoosting's ``validation_score_``
        holds it), which is what ``validation_scores_`` records."""
        net = self._net
        P = forward(net, held_out.inp)
        loss = _losses.validation_loss(
            P, held_out.Y, held_out.sample_weight, self._loss_name(),
            _losses.loss_settings(self, self.n_outputs_), self.out_activation_,
            self._loss_scale(), np.finfo(net.dtype).eps)
        if getattr(self, "scoring", None) == "loss":
            score = -loss
        else:
            score = _targets.score(P, held_out.y, held_out.sample_weight, self._encoding())
        for name in ("validation_scores_", "validation_loss_curve_"):
            if getattr(self, name, None) is None:
                # a model fitted by an older fastbp, or without validation data before
                setattr(self, name, [np.nan] * (len(self.loss_curve_) - 1))
        if getattr(self, "best_validation_score_", None) is None and self.early_stopping:
            self.best_validation_score_ = -np.inf
        self.validation_scores_.append(score)
        self.validation_loss_curve_.append(loss)
        if self.verbose:
            print("Validation score: %f" % score)
        return score
