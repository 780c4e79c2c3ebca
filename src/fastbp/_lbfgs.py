"""Full-batch training with scipy's L-BFGS-B (solver='lbfgs').

scipy.optimize is imported here, on the first L-BFGS fit: it is most of the
cost of ``import fastbp`` otherwise. Each function evaluation is one engine
pass over all of the data (:class:`~fastbp._engine_calls.FullBatchObjective`).
"""

import warnings

import numpy as np

from . import _losses
from ._engine_calls import FullBatchObjective, serial_blas
from ._exceptions import convergence_warning

__all__ = ["LbfgsTraining"]


class _LastIterate:
    """The last iterate L-BFGS accepted and its objective, updated in one
    call so that Ctrl-C cannot separate them."""

    def __init__(self, x):
        self.x = x
        self.objective = None
        self.n_iter = 0
        self.stopped = False  # by a callback

    def accept(self, x, objective):
        self.__dict__.update(x=x, objective=objective, n_iter=self.n_iter + 1)


class LbfgsTraining:
    """The lbfgs solver of the MLP estimators (a mixin of ``_BaseMLP``):
    uses ``_net`` and the hyper-parameters, writes ``n_iter_`` and ``loss_``."""

    def _fit_lbfgs(self, inp, Y, sw, runner=None, settings=None):
        import scipy.optimize

        net = self._sync()
        params = net.params
        objective = FullBatchObjective(net, inp, Y, sw, self.alpha, self._loss_name(), settings)
        last = _LastIterate(params.astype(np.float64))

        def loss_grad(x):
            params[...] = x
            return objective(), objective.grad.astype(np.float64)

        def callback(intermediate_result):
            last.accept(np.array(intermediate_result.x), float(intermediate_result.fun))
            if self.verbose or runner is not None:
                self._lbfgs_iteration_end(last, sw, inp.n_rows, runner)

        try:
            # the weights then do not depend on the number of threads
            with serial_blas():
                result = scipy.optimize.minimize(
                    loss_grad, params.astype(np.float64), method="L-BFGS-B", jac=True,
                    callback=callback,
                    options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                             "gtol": self.tol},
                )
        except KeyboardInterrupt:
            warnings.warn(
                f"Training interrupted by user. The model holds the L-BFGS iterate after "
                f"{last.n_iter} iteration(s)."
            )
            params[...] = last.x
            self.n_iter_ = last.n_iter
            self.loss_ = self._reported_loss(
                last.objective if last.objective is not None else loss_grad(last.x)[0], sw,
                inp.n_rows)
            params[...] = last.x
            return
        n_iter = min(result.nit, self.max_iter)
        if result.status != 0 and not last.stopped:
            msg = (f"lbfgs failed to converge after {n_iter} iteration(s) "
                   f"(status={result.status}):\n{result.message}\n")
            if n_iter == self.max_iter:
                msg += ("\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={self.max_iter}).")
            warnings.warn(msg, convergence_warning(), stacklevel=3)
        self.n_iter_ = n_iter
        params[...] = result.x
        self.loss_ = self._reported_loss(float(result.fun), sw, inp.n_rows)

    def _lbfgs_iteration_end(self, last, sw, n_samples, runner):
        """Report an accepted iterate (verbose, callbacks); StopIteration
        ends the minimisation when a callback asks to stop."""
        # the buffer holds the last point the line search tried; show the
        # iterate itself to the loss report and to the callbacks
        self._net.params[...] = last.x
        loss = self._reported_loss(last.objective, sw, n_samples)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (last.n_iter, loss))
        if runner is not None and runner.epoch_end(self, last.n_iter, loss):
            last.stopped = True
            if self.verbose:
                print("Training stopped by a callback after iteration %d." % last.n_iter)
            raise StopIteration

    def _reported_loss(self, objective, sw, n_samples):
        """The objective as scikit-learn reports it in ``loss_``."""
        return _losses.reported_objective(
            objective, _losses.reported_loss_scale(self._loss_name(), self.n_outputs_),
            self.alpha, self._net.coefs, sw, n_samples)
