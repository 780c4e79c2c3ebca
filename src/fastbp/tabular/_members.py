"""The members of a tabular preset: each is one fastbp MLP trained on its own
split of the rows, keeping the weights of its best epoch on held-out rows.

A member is described by a :class:`MemberPlan` (its seeds and settings) and
trained by :func:`fit_member` from the shared, read-only
:class:`TrainingData`; it writes nothing shared, so :func:`fit_members`
trains members side by side in Python threads (the engine's epoch and
prediction calls release the GIL), each member's epochs on one engine
thread: the same arithmetic as one member after the other on one thread,
so the same weights bit for bit.

The held-out rows are the user's ``X_val`` when given, else a split of the
training rows drawn from the member's seed (stratified for classification
when every class has two rows or more). After every epoch :class:`BestEpoch`
scores them (accuracy, or R² of the standardised targets), keeps a copy of
the weights of the best epoch (the latest of equal scores, as RealMLP-TD
does), and ends training after ``n_iter_no_change`` epochs without a
better score or at ``max_iter``; the member then gets the best weights back.
"""

import math
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .._compat import accuracy_score, r2_score, train_test_split_indices
from .._engine_calls import training_threads
from ..callbacks import Callback

__all__ = ["HeldOut", "TrainingData", "MemberPlan", "BestEpoch", "member_plans",
           "fit_member", "fit_members"]


class HeldOut(NamedTuple):
    """Held-out rows: preprocessed X, targets as the members train on them
    (class codes or standardised values), sample weights or None."""

    X: object
    y: np.ndarray
    sample_weight: object


class TrainingData(NamedTuple):
    """What every member reads (never writes): the preprocessed rows, their
    targets as the members train on them, sample weights, the user's
    held-out rows (or None: each member splits its own) and the class codes
    to stratify the split on (None for regression)."""

    X: object
    y: np.ndarray
    sample_weight: object
    held_out: object
    stratify: object


class MemberPlan(NamedTuple):
    """One member: its MLP class and parameters, its seeds (the held-out
    split's and the MLP's ``random_state``), the held-out share, the
    patience (None: run every epoch), whether it classifies."""

    estimator_class: type
    params: dict
    split_seed: int
    init_seed: int
    validation_fraction: float
    patience: object
    classifies: bool


def member_plans(n_members, random_state, **settings):
    """``n_members`` plans, their seeds drawn from ``random_state`` (a
    RandomState)."""
    seeds = random_state.randint(np.iinfo(np.int32).max, size=(n_members, 2))
    return [MemberPlan(split_seed=int(split), init_seed=int(init), **settings)
            for split, init in seeds]


class BestEpoch(Callback):
    """Scores the held-out rows after every epoch and keeps the best
    epoch's weights (the latest of equal scores); stops training after
    ``patience`` epochs without a better score (None: never) or at
    ``max_epochs``.

    Attributes
    ----------
    scores : list of float
        The held-out score after each epoch.
    best_epoch : int
        The epoch whose weights are kept (1-based).
    """

    def __init__(self, held_out, patience, max_epochs, classifies):
        self.held_out = held_out
        self.patience = patience
        self.max_epochs = max_epochs
        self.classifies = classifies
        self.scores = []
        self.best_epoch = 0
        self._best_score = -math.inf
        self._best_weights = None
        self._since_better = 0

    def _score(self, estimator):
        predicted = estimator.predict(self.held_out.X)
        if self.classifies:
            return accuracy_score(self.held_out.y, predicted, self.held_out.sample_weight)
        if not np.all(np.isfinite(predicted)):
            return -math.inf
        return r2_score(self.held_out.y, predicted, self.held_out.sample_weight)

    def on_epoch_end(self, info):
        score = self._score(info.estimator)
        self.scores.append(score)
        better = score > self._best_score
        if better or score == self._best_score:
            self._best_score = score
            self.best_epoch = info.epoch
            self._best_weights = [w.copy() for w in info.estimator.coefs_] + \
                [b.copy() for b in info.estimator.intercepts_]
        self._since_better = 0 if better else self._since_better + 1
        # stopping at the last epoch too: the MLP then takes the end of the preset's epoch
        # budget as asked for (no "maximum iterations reached" ConvergenceWarning)
        return (info.epoch >= self.max_epochs
                or (self.patience is not None and self._since_better >= self.patience))

    def restore(self, estimator):
        """Write the best epoch's weights into ``estimator`` (in place)."""
        if self._best_weights is None:
            return
        for current, best in zip(estimator.coefs_ + estimator.intercepts_, self._best_weights):
            current[...] = best
        self._best_weights = None


def _split(plan, data):
    """(train rows, held-out rows) of a member: stratified on the classes
    when each has two rows or more and both parts can hold every class."""
    n_rows = data.X.shape[0]
    n_held = math.ceil(plan.validation_fraction * n_rows)
    stratify = data.stratify
    if stratify is not None:
        counts = np.bincount(stratify)
        counts = counts[counts > 0]
        if counts.min() < 2 or min(n_held, n_rows - n_held) < counts.size:
            stratify = None
    return train_test_split_indices(n_rows, plan.validation_fraction,
                                    np.random.RandomState(plan.split_seed), stratify)


def _rows(data, index):
    X = data.X[index]
    return X.tocsr() if hasattr(X, "tocsr") else X


def fit_member(plan, data, callbacks=None):
    """Train one member; returns ``(estimator, BestEpoch)``."""
    if data.held_out is None:
        train, held = _split(plan, data)
        held_out = HeldOut(_rows(data, held), data.y[held],
                           None if data.sample_weight is None else data.sample_weight[held])
        X, y = _rows(data, train), data.y[train]
        sample_weight = None if data.sample_weight is None else data.sample_weight[train]
    else:
        held_out, X, y, sample_weight = data.held_out, data.X, data.y, data.sample_weight
    best = BestEpoch(held_out, plan.patience, plan.params["max_iter"], plan.classifies)
    params = dict(plan.params, batch_size=min(plan.params["batch_size"], X.shape[0]))
    estimator = plan.estimator_class(**params, random_state=plan.init_seed,
                                     callbacks=[best, *(callbacks or [])])
    estimator.fit(X, y, sample_weight)
    best.restore(estimator)
    # the member keeps the user's callbacks only (not the held-out rows)
    estimator.set_params(callbacks=list(callbacks) if callbacks else None)
    return estimator, best


def _fit_member_on_one_thread(plan, data):
    with training_threads(1):
        return fit_member(plan, data)


def fit_members(plans, data, callbacks=None, n_jobs=1):
    """Train every member; returns ``[(estimator, BestEpoch), ...]`` in the
    order of ``plans``. With ``n_jobs`` > 1 (and several members, no
    callbacks) up to ``n_jobs`` members train at once, each on one engine
    thread; otherwise one after the other, each with the engine's own choice
    of threads. Callbacks (user code, not necessarily thread-safe) see one
    member's epochs at a time: they make the members train one after the
    other."""
    n_jobs = min(n_jobs, len(plans))
    if n_jobs <= 1 or callbacks:
        return [fit_member(plan, data, callbacks) for plan in plans]
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="fastbp-member") as pool:
        return list(pool.map(_fit_member_on_one_thread, plans, [data] * len(plans)))
