"""Callbacks: see, record and stop training, once per epoch.

Every fastbp estimator takes a ``callbacks`` parameter: ``None`` (the
default, nothing is called), one callback, or a list of them. A callback is
either

* a plain function ``f(info)`` called after every epoch with an
  :class:`EpochInfo`; returning ``True`` stops training, or
* an instance of a :class:`Callback` subclass, which may also act when a fit
  begins and ends (:class:`ProgressBar` and :class:`History` are two).

Raising :class:`StopTraining` from a callback also stops training. Any other
exception propagates out of ``fit`` and, as for every failed fit, leaves the
estimator as it was before the call.

Callbacks run in Python between epochs, never per mini-batch, so they cost
nothing measurable on the GIL-free epoch kernel. With ``solver='lbfgs'``
they run after every L-BFGS iteration (scipy's iteration callback).

Examples
--------
>>> import numpy as np
>>> from fastbp import MLPClassifier
>>> from fastbp.callbacks import History
>>> rng = np.random.RandomState(0)
>>> X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)
>>> history = History()
>>> stop_below = lambda info: info.loss < 0.2   # returning True stops training
>>> clf = MLPClassifier((8,), learning_rate_init=0.01, random_state=0,
...                     callbacks=[history, stop_below]).fit(X, y)
>>> history.loss[-1] < 0.2 <= history.loss[-2], len(history.epoch) == clf.n_iter_
(True, True)
"""

import dataclasses
import sys
import time

__all__ = ["Callback", "EpochInfo", "History", "ProgressBar", "StopTraining"]


class StopTraining(Exception):
    """Raise from a callback to stop training after the current epoch.

    The model keeps the weights after that epoch (or, with
    ``early_stopping=True``, the best weights seen so far), and no
    ``ConvergenceWarning`` is issued: stopping was asked for.
    """


@dataclasses.dataclass(frozen=True)
class EpochInfo:
    """The figures of one finished epoch (or L-BFGS iteration).

    fastbp builds one and passes it to every callback; its fields are
    read-only.

    Parameters
    ----------
    epoch : int
        Epochs run so far in this call to ``fit``/``partial_fit`` (equal to
        ``estimator.n_iter_``); L-BFGS iterations for ``solver='lbfgs'``.
    loss : float
        Training loss of the epoch, the value appended to ``loss_curve_``
        (for L-BFGS, the objective at the new iterate, as in ``loss_``).
    validation_score : float or None
        Score on the held-out data (accuracy or R²; minus the loss with
        ``scoring='loss'``) when ``early_stopping=True`` or ``fit`` was given
        ``X_val``, else None.
    validation_loss : float or None
        Loss on the held-out data (see ``validation_loss_curve_``) when
        ``early_stopping=True`` or ``fit`` was given ``X_val``, else None.
    learning_rate : float or None
        Step size of the epoch's last step (for Adam, before its bias
        correction; with ``learning_rate='cosine'``, ``'flat_cosine'`` or a
        warm-up, it changes from step to step); None for L-BFGS.
    elapsed : float
        Seconds since training began in this call.
    estimator : estimator
        The estimator being trained, holding the weights after this epoch.
    """

    epoch: int
    loss: float
    validation_score: object = None
    validation_loss: object = None
    learning_rate: object = None
    elapsed: float = 0.0
    estimator: object = dataclasses.field(default=None, repr=False, compare=False)


class Callback:
    """Base class of callback objects; every method is optional.

    Subclass it and override what you need. ``on_epoch_end`` returning
    ``True`` (or raising :class:`StopTraining`) stops training.

    Estimators are cloned by scikit-learn tools (``clone``, ``GridSearchCV``,
    ``cross_validate``), which deep-copies the ``callbacks`` parameter: each
    clone then trains with its own copy of a callback, so state recorded in
    one (a :class:`History`) lives in that clone's ``callbacks``, e.g.
    ``search.best_estimator_.callbacks[0]``.
    """

    def on_fit_begin(self, estimator, max_epochs):
        """Called when training starts, after the input was validated.

        Parameters
        ----------
        estimator : estimator
            The estimator about to train.
        max_epochs : int
            The most epochs this call can run: ``max_iter`` for ``fit``
            (iterations for L-BFGS), 1 for ``partial_fit``.
        """

    def on_epoch_end(self, info):
        """Called after every epoch (L-BFGS: every iteration).

        Parameters
        ----------
        info : EpochInfo
            The epoch's figures and the estimator.

        Returns
        -------
        stop : bool or None
            ``True`` stops training (ignored by ``partial_fit``, which runs
            one epoch anyway).
        """

    def on_fit_end(self, estimator):
        """Called when training ends, normally or by an exception.

        Parameters
        ----------
        estimator : estimator
            The trained estimator (with early stopping, after the best
            weights were restored).
        """


class History(Callback):
    """Record the figures of every epoch, for any solver.

    Useful with ``solver='lbfgs'`` (which has no ``loss_curve_``), to keep
    the learning rate and timings, or to watch several fits: each
    ``on_fit_begin`` appends to the same lists (``fit_starts`` marks where
    each fit began). :func:`fastbp.plot.learning_curve` accepts a History.

    Attributes
    ----------
    epoch, loss, validation_score, validation_loss, learning_rate, elapsed : list
        One entry per epoch, as in :class:`EpochInfo`.
    fit_starts : list of int
        Index into the lists where each fit call began.
    """

    _FIELDS = ("epoch", "loss", "validation_score", "validation_loss", "learning_rate",
               "elapsed")

    def __init__(self):
        for name in self._FIELDS:
            setattr(self, name, [])
        self.fit_starts = []

    def on_fit_begin(self, estimator, max_epochs):
        self.fit_starts.append(len(self.epoch))

    def on_epoch_end(self, info):
        for name in self._FIELDS:
            getattr(self, name).append(getattr(info, name))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)})"


def _tqdm_class():
    """``tqdm.auto.tqdm`` (a widget in notebooks, text in terminals) or None."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressBar(Callback):
    """A progress bar over the epochs of ``fit``, with the loss as it goes.

    Uses ``tqdm.auto`` when tqdm is installed (a widget in Jupyter, a text
    bar in terminals; ``pip install "fastbp[progress]"``) and a plain
    one-line text bar otherwise. Each bar counts up to ``max_iter`` and
    shows the latest loss (and the validation score with early stopping);
    it closes when the fit ends, early or not. ``partial_fit`` calls run one
    epoch each and draw no bar.

    Parameters
    ----------
    desc : str, default=None
        Text before the bar; the estimator's class name when None.
    leave : bool, default=True
        Keep the finished bar on screen.
    file : file-like, default=None
        Where to write the bar (``sys.stderr`` when None).
    use_tqdm : bool or None, default=None
        None: tqdm when it is installed, else plain text. True: require
        tqdm (``ImportError`` when missing). False: always plain text.
    mininterval : float, default=0.1
        Minimum seconds between two redraws.

    Examples
    --------
    >>> from fastbp import MLPRegressor
    >>> from fastbp.callbacks import ProgressBar
    >>> reg = MLPRegressor((64,), max_iter=500, callbacks=ProgressBar())  # doctest: +SKIP
    """

    def __init__(self, desc=None, *, leave=True, file=None, use_tqdm=None, mininterval=0.1):
        self.desc = desc
        self.leave = leave
        self.file = file
        self.use_tqdm = use_tqdm
        self.mininterval = mininterval
        self._bar = None

    def __getstate__(self):
        # an open bar is a terminal/widget handle, not state worth copying
        state = self.__dict__.copy()
        state["_bar"] = None
        return state

    def __repr__(self):
        return f"ProgressBar(desc={self.desc!r})"

    def on_fit_begin(self, estimator, max_epochs):
        self._close()
        if max_epochs <= 1:
            return
        desc = self.desc if self.desc is not None else type(estimator).__name__
        unit = "iter" if getattr(estimator, "solver", None) == "lbfgs" else "epoch"
        tqdm = None if self.use_tqdm is False else _tqdm_class()
        if tqdm is None and self.use_tqdm:
            raise ImportError(
                "ProgressBar(use_tqdm=True) needs tqdm, which is not installed: "
                "pip install tqdm (or pip install 'fastbp[progress]')."
            )
        if tqdm is not None:
            self._bar = tqdm(total=max_epochs, desc=desc, unit=unit, leave=self.leave,
                             file=self.file, mininterval=self.mininterval, dynamic_ncols=True)
        else:
            self._bar = _TextBar(max_epochs, desc, unit, self.leave,
                                 self.file if self.file is not None else sys.stderr,
                                 self.mininterval)

    def on_epoch_end(self, info):
        if self._bar is None:
            return
        postfix = {"loss": f"{info.loss:.4g}"}
        if info.validation_score is not None:
            postfix["val_score"] = f"{info.validation_score:.4g}"
        if info.validation_loss is not None:
            postfix["val_loss"] = f"{info.validation_loss:.4g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_fit_end(self, estimator):
        self._close()

    def _close(self):
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()


class _TextBar:
    """A dependency-free stand-in for the part of tqdm ProgressBar uses: one
    line redrawn with a carriage return, at most every ``mininterval`` s."""

    _WIDTH = 20

    def __init__(self, total, desc, unit, leave, file, mininterval):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.leave = leave
        self.file = file
        self.mininterval = mininterval
        self.n = 0
        self.postfix = ""
        self.start = time.perf_counter()
        self.last_draw = None
        self.last_len = 0
        self._draw()

    def set_postfix(self, postfix, refresh=True):
        self.postfix = ", ".join(f"{k}={v}" for k, v in postfix.items())
        if refresh:
            self._draw()

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if self.last_draw is None or now - self.last_draw >= self.mininterval:
            self._draw()

    def _line(self):
        frac = min(1.0, self.n / self.total) if self.total else 1.0
        filled = int(round(frac * self._WIDTH))
        bar = "#" * filled + " " * (self._WIDTH - filled)
        text = (f"{self.desc}: {frac * 100:3.0f}%|{bar}| {self.n}/{self.total} {self.unit}s "
                f"[{time.perf_counter() - self.start:.1f}s]")
        return text + (f" {self.postfix}" if self.postfix else "")

    def _draw(self):
        line = self._line()
        pad = " " * max(0, self.last_len - len(line))
        self.file.write("\r" + line + pad)
        self.file.flush()
        self.last_len = len(line)
        self.last_draw = time.perf_counter()

    def close(self):
        if self.leave:
            self._draw()
            self.file.write("\n")
        else:
            self.file.write("\r" + " " * self.last_len + "\r")
        self.file.flush()


class _CallbackRunner:
    """Calls the estimator's callbacks; built only when ``callbacks`` is set."""

    def __init__(self, callbacks):
        self.callbacks = callbacks
        self.start = None

    def fit_begin(self, estimator, max_epochs):
        self.start = time.perf_counter()
        for cb in self.callbacks:
            method = getattr(cb, "on_fit_begin", None)
            if method is not None:
                method(estimator, max_epochs)

    def epoch_end(self, estimator, epoch, loss, validation_score=None,
                  validation_loss=None, learning_rate=None):
        """Run every callback; True when one of them asks to stop. Every
        callback sees every epoch, even after an earlier one asked to stop."""
        info = EpochInfo(epoch=int(epoch), loss=float(loss),
                         validation_score=validation_score, validation_loss=validation_loss,
                         learning_rate=learning_rate,
                         elapsed=time.perf_counter() - self.start, estimator=estimator)
        stop = False
        for cb in self.callbacks:
            method = getattr(cb, "on_epoch_end", None)
            if method is None:
                method = cb
            try:
                stop = bool(method(info)) or stop
            except StopTraining:
                stop = True
        return stop

    def fit_end(self, estimator):
        for cb in self.callbacks:
            method = getattr(cb, "on_fit_end", None)
            if method is not None:
                method(estimator)


def _make_runner(estimator):
    """A runner for ``estimator.callbacks``, or None when there are none.

    Raises ``InvalidParameterError`` (a ValueError and TypeError) naming the
    estimator when ``callbacks`` is not None, a callback or a list of them.
    """
    from ._validation import InvalidParameterError

    callbacks = getattr(estimator, "callbacks", None)
    if callbacks is None:
        return None
    items = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    for cb in items:
        if not (callable(cb) or isinstance(cb, Callback) or hasattr(cb, "on_epoch_end")):
            raise InvalidParameterError(
                f"The 'callbacks' parameter of {type(estimator).__name__} must be None, a "
                "callback or a list of callbacks (functions taking an EpochInfo, or "
                f"fastbp.callbacks.Callback instances). Got {callbacks!r} instead."
            )
    return _CallbackRunner(items) if items else None
