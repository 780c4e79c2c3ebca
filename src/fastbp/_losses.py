"""The losses as Python needs them: one entry per loss in :data:`LOSSES`.

The engine computes the training loss and its gradients (``_engine.pyx``,
given the loss's name and :class:`LossSettings`); Python needs, per loss: the
output activation it pairs with (so that the output error is ``y_hat - y``
for the canonical losses), whether scikit-learn reports it averaged over
outputs, and its per-element value on held-out data from the network's
outputs (``validation_loss_curve_``). Around them: the ``loss_``
scikit-learn reports for the L-BFGS objective.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["LOSSES", "LossSettings", "REGRESSION_LOSSES", "loss_settings", "output_activation",
           "reported_loss_scale", "validation_loss", "reported_objective"]


class LossSettings(NamedTuple):
    """The settings of the losses that have some (the estimator's
    ``huber_delta``, ``quantile`` and ``label_smoothing``)."""

    huber_delta: float = 1.0
    # 'quantile': the quantile of each output (a float array), else None
    quantiles: object = None
    label_smoothing: float = 0.0


def _log_loss(P, Y, eps, scale, output_activation, settings):
    # minus the log-probability of the observed labels, the probability
    # clipped at eps as the engine and scikit-learn clip it; returned with
    # the opposite sign (the sign is applied once, to the sum). With label
    # smoothing the targets are y (1 - e) + e / K (K = 2 for logistic outputs)
    smoothing = settings.label_smoothing
    if output_activation == "softmax":
        if smoothing:
            Y = Y * (1.0 - smoothing) + smoothing / Y.shape[1]
        return Y * np.log(np.maximum(P, eps))
    if smoothing:
        Y = Y * (1.0 - smoothing) + 0.5 * smoothing
        log_p = np.log(np.maximum(P, eps))
        log_q = np.log(np.maximum(1.0 - P, eps))
        return Y * log_p + (1.0 - Y) * log_q
    losses = np.where(Y != 0, P, 1.0 - P)  # logistic: one probability per 0/1 label
    return np.log(np.maximum(losses, eps, out=losses), out=losses)


def _half_squared_error(P, Y, eps, scale, output_activation, settings):
    D = P - Y
    return np.square(D, out=D) * (0.5 * scale)


def _half_poisson_deviance(P, Y, eps, scale, output_activation, settings):
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0) / P), 0.0)
    return ylogy - Y + P


def _huber(P, Y, eps, scale, output_activation, settings):
    delta = settings.huber_delta
    error = np.abs(P - Y)
    losses = np.where(error <= delta, 0.5 * np.square(error), delta * (error - 0.5 * delta))
    return losses * scale


def _absolute_error(P, Y, eps, scale, output_activation, settings):
    return np.abs(P - Y) * scale


def _pinball(P, Y, eps, scale, output_activation, settings):
    # scikit-learn's mean_pinball_loss, per element: q (y - p) above the
    # prediction, (1 - q) (p - y) below; one quantile per output column
    q = np.asarray(settings.quantiles, dtype=np.float64)
    diff = Y - P
    return np.where(diff >= 0, q * diff, (q - 1.0) * diff) * scale


class Loss(NamedTuple):
    """What Python needs of one training loss."""

    # the output activation for each target type ("binary", "multiclass",
    # "multilabel-indicator" for classification; None for regression)
    output_activation: object
    # scikit-learn reports the loss averaged over outputs (its gradient is
    # that of the sum); False: summed over outputs
    averaged_over_outputs: bool
    # (P, Y, eps, scale, output_activation, settings) -> per-element losses
    # of held-out data, times ``sign``
    elements: object
    sign: float


LOSSES = {
    "log_loss": Loss(lambda y_type: "softmax" if y_type == "multiclass" else "logistic",
                     False, _log_loss, -1.0),
    "squared_error": Loss(lambda y_type: "identity", True, _half_squared_error, 1.0),
    "poisson": Loss(lambda y_type: "exp", False, _half_poisson_deviance, 1.0),
    "huber": Loss(lambda y_type: "identity", True, _huber, 1.0),
    "absolute_error": Loss(lambda y_type: "identity", True, _absolute_error, 1.0),
    "quantile": Loss(lambda y_type: "identity", True, _pinball, 1.0),
}
# the regression losses, in the order MLPRegressor's ``loss`` lists them
REGRESSION_LOSSES = ("squared_error", "poisson", "huber", "absolute_error", "quantile")


def loss_settings(est, n_outputs):
    """The :class:`LossSettings` of estimator ``est`` training ``n_outputs``
    outputs (its ``huber_delta``, ``quantile`` and ``label_smoothing``, as
    far as it has them): with loss='quantile', one quantile per output (a
    single one for every output, or the sequence's, one output each)."""
    quantiles = None
    if est._loss_name() == "quantile":
        quantiles = np.asarray(est.quantile, dtype=np.float64).reshape(-1)
        if quantiles.size == 1:
            quantiles = np.repeat(quantiles, n_outputs)
    return LossSettings(float(getattr(est, "huber_delta", 1.0)), quantiles,
                        float(getattr(est, "label_smoothing", 0.0)))


def output_activation(loss, y_type=None):
    """The output activation that ``loss`` pairs with for targets of
    ``y_type`` (classification; None for regression)."""
    return LOSSES[loss].output_activation(y_type)


def reported_loss_scale(loss, n_outputs):
    """Factor on the data term of the reported loss: 1 / n_outputs for a
    loss scikit-learn reports averaged over outputs, else 1."""
    return 1.0 / n_outputs if LOSSES[loss].averaged_over_outputs else 1.0


def validation_loss(P, Y, sample_weight, loss, settings, output_activation, loss_scale, eps):
    """The training loss ``loss`` (with its ``settings``) of held-out data,
    from the output activations ``P``.

    The sample-weighted mean over rows of the per-row loss (summed over
    outputs, times ``loss_scale``), without the L2 penalty, which describes
    the weights, not the data. ``eps`` is the model dtype's (the log-losses
    clip probabilities there, as scikit-learn's). Few numpy calls: it runs
    every epoch of early stopping.
    """
    if P.dtype != np.float64:
        P, Y = P.astype(np.float64), Y.astype(np.float64)
    entry = LOSSES[loss]
    losses = entry.elements(P, Y, eps, loss_scale, output_activation, settings)
    if sample_weight is None:
        return entry.sign * float(losses.sum()) / losses.shape[0]
    row_losses = losses[:, 0] if losses.shape[1] == 1 else losses.sum(axis=1)
    return entry.sign * float(np.dot(sample_weight, row_losses)) / float(sample_weight.sum())


def reported_objective(objective, loss_scale, alpha, coefs, sample_weight, n_samples):
    """The full-batch objective (data term + L2 penalty) as scikit-learn
    reports it in ``loss_``: the data term times ``loss_scale``."""
    if loss_scale == 1.0:
        return objective
    sw_sum = n_samples if sample_weight is None else float(sample_weight.sum())
    penalty = 0.5 * alpha * sum(float(np.dot(c.ravel(), c.ravel())) for c in coefs) / sw_sum
    return (objective - penalty) * loss_scale + penalty
