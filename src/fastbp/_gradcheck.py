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
    loss, coef_grads, intercept_grads = model.loss_and_gradients(X, y, sample_weight)
    # the parameters in the order of the flat buffer [W0, b0, W1, b1, ...],
    # as 1-D views into the model's own arrays (loss_and_gradients made
    # coefs_ and intercepts_ the buffer's views)
    blocks = [block for pair in zip(model.coefs_, model.intercepts_) for block in pair]
    grads = [g for pair in zip(coef_grads, intercept_grads) for g in pair]
    flat_blocks = [block.reshape(-1) for block in blocks]
    dtype = blocks[0].dtype
    if epsilon is None:
        epsilon = 1e-2 if dtype == np.float32 else 1e-4
    analytic = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    block_of = np.repeat(np.arange(len(blocks)), [b.size for b in blocks])
    starts = np.cumsum([0] + [b.size for b in blocks])
    n_params = analytic.size
    if not np.any(analytic != 0):
        raise ValueError("every gradient is zero; pick data or weights where the loss "
                         "depends on the parameters")
    indices = np.arange(n_params)
    if max_params is not None and max_params < n_params:
        indices = np.sort(np.random.RandomState(random_state).choice(
            n_params, max_params, replace=False))
    saved = [block.copy() for block in flat_blocks]
    numeric = np.empty(indices.size)

    def central_difference(j, step):
        b = block_of[j]
        block, at, start = flat_blocks[b], j - starts[b], saved[b][j - starts[b]]
        block[at] = start + step
        up = model.loss_and_gradients(X, y, sample_weight)[0]
        block[at] = start - step
        down = model.loss_and_gradients(X, y, sample_weight)[0]
        block[at] = start
        # divide by the step actually taken, after rounding to the model's dtype
        taken = float(np.asarray(start + step, dtype)) - float(np.asarray(start - step, dtype))
        return (up - down) / taken

    try:
        for k, j in enumerate(indices):
            coarse = central_difference(j, epsilon)
            fine = central_difference(j, epsilon / 2)
            numeric[k] = (4 * fine - coarse) / 3
    finally:
        for block, copy in zip(flat_blocks, saved):
            block[...] = copy
    a = analytic[indices]
    worst = 0.0
    for b in np.unique(block_of[indices]):
        mask = block_of[indices] == b
        scale = max(np.linalg.norm(a[mask]), np.linalg.norm(numeric[mask]))
        if scale > 0:
            worst = max(worst, float(np.linalg.norm(a[mask] - numeric[mask]) / scale))
    return worst
