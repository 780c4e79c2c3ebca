"""The stochastic optimizers' state and per-epoch rules.

The per-step arithmetic (SGD with momentum or Nesterov's momentum, Adam;
decoupled weight decay, gradient clipping, the per-step schedules 'cosine'
and 'flat_cosine' and the warm-up) runs in the engine, inside the epoch
call; what changes between epochs lives here: scikit-learn's learning-rate
schedules ('invscaling' after every epoch, 'adaptive' when training stops
improving), the step count ``t``, the schedule's length, and the state
buffers. :meth:`Optimizer.engine_record` is the one place that builds what
the engine is handed.
"""

import numpy as np

from . import _engine
from ._engine_calls import BUFFER_ALIGNMENT, aligned_copy, aligned_empty

__all__ = ["Optimizer", "SOLVERS", "SCHEDULES", "STEP_SCHEDULES", "FLOAT_FIELDS", "FIELDS",
           "FIELDS_0_1"]

# the stochastic solvers (the ``solver`` values trained epoch by epoch) and
# the learning-rate schedules (the ``learning_rate`` values): scikit-learn's,
# changed between epochs here, and the per-step ones the engine computes
SOLVERS = ("sgd", "adam")
STEP_SCHEDULES = ("cosine", "flat_cosine")
SCHEDULES = ("constant", "invscaling", "adaptive") + STEP_SCHEDULES

# the optimizer's float settings; with solver, lr_schedule, nesterov, t and
# total_steps, its whole scalar state (saved in model files). FIELDS_0_1: the
# fields of files written by fastbp 0.1.0 (the others take their defaults)
FLOAT_FIELDS = ("learning_rate_init", "learning_rate", "momentum", "power_t", "beta_1",
                "beta_2", "epsilon", "weight_decay", "max_grad_norm", "warmup")
FIELDS = ("solver", "lr_schedule", "nesterov", "t", "total_steps") + FLOAT_FIELDS
FIELDS_0_1 = ("solver", "lr_schedule", "nesterov", "t", "learning_rate_init", "learning_rate",
              "momentum", "power_t", "beta_1", "beta_2", "epsilon")


class Optimizer:
    """SGD (momentum, Nesterov, schedules) or Adam state over the flat
    parameter buffer: ``state1`` is SGD's velocity or Adam's first moment,
    ``state2`` Adam's second moment (one element for SGD)."""

    # the settings fastbp 0.1.0 did not have, at the values that leave its
    # training as it was (optimizers it pickled or saved take these)
    DEFAULTS_SINCE_0_1_0 = {"weight_decay": 0.0, "max_grad_norm": 0.0, "warmup": 0.0,
                            "total_steps": 0}

    def __init__(self, est, n_params, dtype):
        self.solver = est.solver
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = float(est.learning_rate_init)
        self.lr_schedule = est.learning_rate
        self.momentum = float(est.momentum)
        self.nesterov = bool(est.nesterovs_momentum)
        self.power_t = float(est.power_t)
        self.beta_1 = float(est.beta_1)
        self.beta_2 = float(est.beta_2)
        self.epsilon = float(est.epsilon)
        self.weight_decay = float(getattr(est, "weight_decay", 0.0))
        self.max_grad_norm = float(getattr(est, "max_grad_norm", None) or 0.0)
        self.warmup = float(getattr(est, "warmup", 0.0))
        self.total_steps = 0
        self.t = 0
        self.state1 = aligned_empty(n_params, dtype, zero=True)
        self.state2 = aligned_empty(self.state2_size(self.solver, n_params), dtype, zero=True)

    @staticmethod
    def state2_size(solver, n_params):
        """Adam's second moment has one entry per parameter; SGD keeps none (1)."""
        return n_params if solver == "adam" else 1

    def to_state(self):
        """The fields of :data:`FIELDS` and the buffers ``state1``, ``state2``."""
        state = {name: getattr(self, name) for name in FIELDS}
        state.update(state1=self.state1, state2=self.state2)
        return state

    @classmethod
    def from_state(cls, state):
        optimizer = cls.__new__(cls)
        optimizer.__setstate__(state)
        return optimizer

    def __setstate__(self, state):
        # also unpickling: an optimizer pickled by fastbp 0.1.0 lacks the newer settings
        self.__dict__.update(self.DEFAULTS_SINCE_0_1_0)
        self.__dict__.update(state)
        for name in ("state1", "state2"):
            # a loaded or unpickled buffer: copied once onto a cache line's start,
            # as the engine writes it in place (and it may be read-only)
            buffer = self.__dict__.get(name)
            if isinstance(buffer, np.ndarray) and (
                    buffer.ctypes.data % BUFFER_ALIGNMENT or not buffer.flags.writeable):
                setattr(self, name, aligned_copy(buffer))

    def set_schedule_length(self, steps_per_epoch, epochs):
        """The steps the per-step schedule and the warm-up run over, set
        once per optimizer: ``epochs`` (max_iter) epochs of
        ``steps_per_epoch`` batches (partial_fit: its first call's batches
        times max_iter calls)."""
        if not self.total_steps:
            self.total_steps = int(steps_per_epoch) * int(epochs)

    def engine_record(self):
        """The typed record the engine's epoch call reads (kind, rates,
        moments' decay, step count, weight decay, clipping, per-step
        schedule and warm-up), built once per fit; :meth:`before_epoch`
        refreshes what changes between epochs and the engine advances ``t``
        in it (:meth:`after_epoch` takes it back)."""
        kind = "adam" if self.solver == "adam" else ("nesterov" if self.nesterov else "sgd")
        schedule = self.lr_schedule if self.lr_schedule in STEP_SCHEDULES else "constant"
        return _engine.OptimizerRecord(
            kind, self.learning_rate, self.momentum, self.beta_1, self.beta_2, self.epsilon,
            self.t, self.weight_decay, self.max_grad_norm, schedule,
            int(round(self.warmup * self.total_steps)), self.total_steps)

    def before_epoch(self, record):
        record.learning_rate = self.learning_rate
        record.t = self.t

    def after_epoch(self, record):
        """Take back what the engine changed in ``record``: the step count."""
        self.t = record.t

    def last_step_learning_rate(self, record):
        """The learning rate of the last step taken (with the per-step
        schedule's factor; for Adam, before its bias correction)."""
        return record.step_learning_rate(max(int(record.t), 1))

    def engine_buffers(self):
        """(state1, state2) as the engine takes them: SGD keeps no second
        moment, but the engine still wants a buffer of n_params."""
        return self.state1, (self.state2 if self.solver == "adam" else self.state1)

    def written_buffers(self):
        """The state buffers the engine writes in place."""
        return [self.state1, self.state2] if self.solver == "adam" else [self.state1]

    def iteration_ends(self, time_step):
        """After every epoch: the 'invscaling' schedule (SGD)."""
        if self.solver == "sgd" and self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Training stopped improving: True to stop, or (SGD 'adaptive')
        divide the learning rate by 5 and go on while it is above 1e-6."""
        if self.solver != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def is_finite(self):
        return bool(np.all(np.isfinite(self.state1)) and np.all(np.isfinite(self.state2)))
