"""Backpropagation checked against central finite differences."""

import numpy as np

__all__ = ["check_gradients"]


def check_gradients(model, X, y, sample_weight=None, *, epsilon=None, max_params=None,
                    random_state=0):
    """Worst relative error between the model's backprop gradients and central
    finite differences of its loss.

    For each parameter ``p`` checked, the numerical derivative is
    ``(L(p + h) - L(p - h)) / 2h`` with the model's own loss (the same
    kernels, no mini-batches), and the error is
    ``|analytic - numeric| / max(|analytic|, |numeric|, floor)`` where the
    floor (``1e-6 * max |numeric|``, and at least the rounding noise of the
    difference quotient, ``100 * eps_dtype * max(|loss|, 1) / h``) keeps
    parameters with a near-zero gradient from dividing by noise. The model's
    parameters are restored.

    Parameters
    ----------
    model : fitted MLP, MLPClassifier or MLPRegressor
    X, y, sample_weight : data to evaluate the loss on.
    epsilon : float, default=None
        Step ``h``: 1e-5 for float64 models, 5e-3 for float32 (near the optimum
        of truncation against rounding error for central differences).
    max_params : int, default=None
        Check at most this many parameters, chosen at random (all when None).
    random_state : int, default=0
        Seeds the choice of parameters when ``max_params`` is set.

    Returns
    -------
    float
        The worst relative error (about 1e-8 or less for a correct float64
        backprop away from ReLU kinks).

    Raises
    ------
    ValueError
        If every gradient is zero, so the comparison would be vacuous.
    """
    model._check_fitted()
    net = model._sync()
    params = net.params
    if epsilon is None:
        epsilon = 5e-3 if net.dtype == np.float32 else 1e-5
    loss, coef_grads, intercept_grads = model.loss_and_gradients(X, y, sample_weight)
    analytic = np.zeros(params.size)
    for (a, b, _), g in zip(net.spec.weight_slices(), coef_grads):
        analytic[a:b] = g.ravel()
    for (a, b), g in zip(net.spec.bias_slices(), intercept_grads):
        analytic[a:b] = g
    if not np.any(analytic != 0):
        raise ValueError("every gradient is zero; pick data or weights where the loss "
                         "depends on the parameters")
    indices = np.arange(params.size)
    if max_params is not None and max_params < params.size:
        indices = np.sort(np.random.RandomState(random_state).choice(
            params.size, max_params, replace=False))
    saved = params.copy()
    numeric = np.empty(indices.size)
    try:
        for k, j in enumerate(indices):
            params[j] = saved[j] + epsilon
            up = model.loss_and_gradients(X, y, sample_weight)[0]
            params[j] = saved[j] - epsilon
            down = model.loss_and_gradients(X, y, sample_weight)[0]
            params[j] = saved[j]
            # the step actually taken, after rounding to the model's dtype
            h = float(np.asarray(saved[j] + epsilon, net.dtype)) - float(
                np.asarray(saved[j] - epsilon, net.dtype))
            numeric[k] = (up - down) / h
    finally:
        params[...] = saved
    a = analytic[indices]
    noise = 100 * np.finfo(net.dtype).eps * max(abs(loss), 1.0) / epsilon
    floor = max(1e-6 * np.max(np.abs(numeric)), noise, np.finfo(float).tiny)
    err = np.abs(a - numeric) / np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
    return float(err.max())
