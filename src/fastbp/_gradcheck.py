"""Backpropagation checked against central finite differences."""

import numpy as np

__all__ = ["check_gradients"]


def check_gradients(model, X, y, sample_weight=None, *, epsilon=None, max_params=None,
                    random_state=0):
    """Worst relative error between the model's backprop gradients and finite
    differences of its loss.

    For each parameter checked, the numerical derivative is the Richardson
    extrapolation ``(4 D(h/2) - D(h)) / 3`` of central differences
    ``D(h) = (L(p + h) - L(p - h)) / 2h`` (error O(h^4)) of the model's own
    loss (the same kernels, no mini-batches). The error is measured per
    parameter block (each ``coefs_[i]`` and each ``intercepts_[i]``) as
    ``||analytic - numeric|| / max(||analytic||, ||numeric||)`` (Euclidean
    norms), and the worst block is returned: a wrong gradient in any layer
    shows up as an error of its own size, while single near-zero entries
    (whose finite differences are mostly rounding noise) cannot dominate.
    The model's parameters are restored.

    Parameters
    ----------
    model : fitted MLP, MLPClassifier or MLPRegressor
    X, y, sample_weight : data to evaluate the loss on.
    epsilon : float, default=None
        Step ``h``: 1e-4 for float64 models, 1e-2 for float32 (truncation
        error O(h^4) against rounding error O(eps / h)).
    max_params : int, default=None
        Check at most this many parameters, chosen at random (all when None).
    random_state : int, default=0
        Seeds the choice of parameters when ``max_params`` is set.

    Returns
    -------
    float
        The worst relative error (about 1e-9 or less for a correct float64
        backprop away from ReLU kinks, about 1e-4 for float32).

    Raises
    ------
    ValueError
        If every gradient is zero, so the comparison would be vacuous.
    """
    model._check_fitted()
    net = model._sync()
    params = net.params
    if epsilon is None:
        epsilon = 1e-2 if net.dtype == np.float32 else 1e-4
    loss, coef_grads, intercept_grads = model.loss_and_gradients(X, y, sample_weight)
    analytic = np.zeros(params.size)
    blocks = np.zeros(params.size, dtype=np.intp)
    for b, ((start, stop, _), g) in enumerate(zip(net.spec.weight_slices(), coef_grads)):
        analytic[start:stop] = g.ravel()
        blocks[start:stop] = 2 * b
    for b, ((start, stop), g) in enumerate(zip(net.spec.bias_slices(), intercept_grads)):
        analytic[start:stop] = g
        blocks[start:stop] = 2 * b + 1
    if not np.any(analytic != 0):
        raise ValueError("every gradient is zero; pick data or weights where the loss "
                         "depends on the parameters")
    indices = np.arange(params.size)
    if max_params is not None and max_params < params.size:
        indices = np.sort(np.random.RandomState(random_state).choice(
            params.size, max_params, replace=False))
    saved = params.copy()
    numeric = np.empty(indices.size)

    def central_difference(j, step):
        params[j] = saved[j] + step
        up = model.loss_and_gradients(X, y, sample_weight)[0]
        params[j] = saved[j] - step
        down = model.loss_and_gradients(X, y, sample_weight)[0]
        params[j] = saved[j]
        # divide by the step actually taken, after rounding to the model's dtype
        taken = float(np.asarray(saved[j] + step, net.dtype)) - float(
            np.asarray(saved[j] - step, net.dtype))
        return (up - down) / taken

    try:
        for k, j in enumerate(indices):
            coarse = central_difference(j, epsilon)
            fine = central_difference(j, epsilon / 2)
            numeric[k] = (4 * fine - coarse) / 3
    finally:
        params[...] = saved
    a = analytic[indices]
    worst = 0.0
    for b in np.unique(blocks[indices]):
        mask = blocks[indices] == b
        scale = max(np.linalg.norm(a[mask]), np.linalg.norm(numeric[mask]))
        if scale > 0:
            worst = max(worst, float(np.linalg.norm(a[mask] - numeric[mask]) / scale))
    return worst
