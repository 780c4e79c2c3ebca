"""The losses as Python needs them, in one place.

The engine computes the training loss and its gradients (``_engine.pyx``);
Python needs four things around it: which output activation a loss pairs
with, the factor scikit-learn reports the loss with, the loss of held-out
data from the network's outputs (``validation_loss_curve_``), and the L-BFGS
objective turned into the ``loss_`` scikit-learn reports.
"""

import numpy as np

__all__ = ["LOSSES", "output_activation", "reported_loss_scale", "validation_loss",
           "reported_objective"]

# every value of the ``loss`` parameter (MLPClassifier trains 'log_loss' only)
LOSSES = ("log_loss", "squared_error", "poisson")


def output_activation(loss, y_type=None):
    """The output activation that ``loss`` pairs with, so that the output
    error is ``y_hat - y``: softmax for multiclass log-loss, logistic for
    binary and multilabel log-loss, exp for Poisson, identity for squared
    error. ``y_type`` is the classification target type."""
    if loss == "log_loss":
        return "softmax" if y_type == "multiclass" else "logistic"
    return "exp" if loss == "poisson" else "identity"


def reported_loss_scale(loss, n_outputs):
    """Factor on the data term of the reported loss: scikit-learn reports
    squared error averaged over outputs (its gradient is that of the sum);
    every other loss sums over outputs."""
    return 1.0 / n_outputs if loss == "squared_error" else 1.0


def validation_loss(P, Y, sample_weight, output_activation, loss_scale, eps):
    """The training loss of held-out data, from the output activations ``P``.

    The sample-weighted mean over rows of the per-row loss (summed over
    outputs, times ``loss_scale``), without the L2 penalty, which describes
    the weights, not the data. Probabilities are clipped at ``eps`` (the
    model dtype's) as the engine and scikit-learn clip them. Few numpy calls:
    it runs every epoch of early stopping.
    """
    if P.dtype != np.float64:
        P, Y = P.astype(np.float64), Y.astype(np.float64)
    sign = 1.0
    if output_activation == "identity":
        D = P - Y
        losses = np.square(D, out=D) * (0.5 * loss_scale)
    elif output_activation == "exp":
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / P), 0.0)
        losses = ylogy - Y + P
    else:
        # log-losses: minus the log-probability of the observed labels (the
        # sign is applied once, at the end)
        sign = -1.0
        if output_activation == "softmax":
            losses = Y * np.log(np.maximum(P, eps))
        else:  # logistic: one probability per 0/1 label
            losses = np.where(Y != 0, P, 1.0 - P)
            np.log(np.maximum(losses, eps, out=losses), out=losses)
    if sample_weight is None:
        return sign * float(losses.sum()) / losses.shape[0]
    row_losses = losses[:, 0] if losses.shape[1] == 1 else losses.sum(axis=1)
    return sign * float(np.dot(sample_weight, row_losses)) / float(sample_weight.sum())


def reported_objective(objective, loss_scale, alpha, coefs, sample_weight, n_samples):
    """The full-batch objective (data term + L2 penalty) as scikit-learn
    reports it in ``loss_``: the data term times ``loss_scale``."""
    if loss_scale == 1.0:
        return objective
    sw_sum = n_samples if sample_weight is None else float(sample_weight.sum())
    penalty = 0.5 * alpha * sum(float(np.dot(c.ravel(), c.ravel())) for c in coefs) / sw_sum
    return (objective - penalty) * loss_scale + penalty
