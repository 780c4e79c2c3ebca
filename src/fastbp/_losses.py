"""The losses as Python needs them: one entry per loss in :data:`LOSSES`.

The engine computes the training loss and its gradients (``_engine.pyx``);
Python needs, per loss: the output activation it pairs with (so that the
output error is ``y_hat - y``), whether scikit-learn reports it averaged over
outputs, and its per-element value on held-out data from the network's
outputs (``validation_loss_curve_``). Around them: the ``loss_`` scikit-learn
reports for the L-BFGS objective.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["LOSSES", "output_activation", "reported_loss_scale", "validation_loss",
           "reported_objective"]


def _log_loss(P, Y, eps, scale, output_activation):
    # minus the log-probability of the observed labels, the probability
    # clipped at eps as the engine and scikit-learn clip it; returned with
    # the opposite sign (the sign is applied once, to the sum)
    if output_activation == "softmax":
        return Y * np.log(np.maximum(P, eps))
    losses = np.where(Y != 0, P, 1.0 - P)  # logistic: one probability per 0/1 label
    return np.log(np.maximum(losses, eps, out=losses), out=losses)


def _half_squared_error(P, Y, eps, scale, output_activation):
    D = P - Y
    return np.square(D, out=D) * (0.5 * scale)


def _half_poisson_deviance(P, Y, eps, scale, output_activation):
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / P), 0.0)
    return ylogy - Y + P


class Loss(NamedTuple):
    """What Python needs of one training loss."""

    # the output activation for each target type ("binary", "multiclass",
    # "multilabel-indicator" for classification; None for regression)
    output_activation: object
    # scikit-learn reports the loss averaged over outputs (its gradient is
    # that of the sum); False: summed over outputs
    averaged_over_outputs: bool
    # (P, Y, eps, scale, output_activation) -> per-element losses of
    # held-out data, times ``sign``
    elements: object
    sign: float


LOSSES = {
    "log_loss": Loss(lambda y_type: "softmax" if y_type == "multiclass" else "logistic",
                     False, _log_loss, -1.0),
    "squared_error": Loss(lambda y_type: "identity", True, _half_squared_error, 1.0),
    "poisson": Loss(lambda y_type: "exp", False, _half_poisson_deviance, 1.0),
}



def _loss_of_output():
    # the engine knows the loss by the output activation it pairs with, so
    # each output activation must belong to one loss
    losses = {}
    for name, loss in LOSSES.items():
        for y_type in (None, "binary", "multiclass", "multilabel-indicator"):
            output = loss.output_activation(y_type)
            if losses.setdefault(output, name) != name:
                raise RuntimeError(
                    f"the losses {losses[output]!r} and {name!r} share the output activation "
                    f"{output!r}: validation_loss needs the network's loss, not its output")
    return losses


_LOSS_OF_OUTPUT = _loss_of_output()


def output_activation(loss, y_type=None):
    """The output activation that ``loss`` pairs with for targets of
    ``y_type`` (classification; None for regression)."""
    return LOSSES[loss].output_activation(y_type)


def reported_loss_scale(loss, n_outputs):
    """Factor on the data term of the reported loss: 1 / n_outputs for a
    loss scikit-learn reports averaged over outputs, else 1."""
    return 1.0 / n_outputs if LOSSES[loss].averaged_over_outputs else 1.0


def validation_loss(P, Y, sample_weight, output_activation, loss_scale, eps):
    """The training loss of held-out data, from the output activations ``P``.

    The sample-weighted mean over rows of the per-row loss (summed over
    outputs, times ``loss_scale``), without the L2 penalty, which describes
    the weights, not the data. ``eps`` is the model dtype's. Few numpy
    calls: it runs every epoch of early stopping.
    """
    if P.dtype != np.float64:
        P, Y = P.astype(np.float64), Y.astype(np.float64)
    loss = LOSSES[_LOSS_OF_OUTPUT[output_activation]]
    losses = loss.elements(P, Y, eps, loss_scale, output_activation)
    if sample_weight is None:
        return loss.sign * float(losses.sum()) / losses.shape[0]
    row_losses = losses[:, 0] if losses.shape[1] == 1 else losses.sum(axis=1)
    return loss.sign * float(np.dot(sample_weight, row_losses)) / float(sample_weight.sum())


def reported_objective(objective, loss_scale, alpha, coefs, sample_weight, n_samples):
    """The full-batch objective (data term + L2 penalty) as scikit-learn
    reports it in ``loss_``: the data term times ``loss_scale``."""
    if loss_scale == 1.0:
        return objective
    sw_sum = n_samples if sample_weight is None else float(sample_weight.sum())
    penalty = 0.5 * alpha * sum(float(np.dot(c.ravel(), c.ravel())) for c in coefs) / sw_sum
    return (objective - penalty) * loss_scale + penalty
