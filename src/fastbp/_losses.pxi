cdef void output_loss_delta(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                            const floating *b, const floating *Y,
                            const Py_ssize_t *rows, Py_ssize_t row0,
                            const floating *sw, int out_act,
                            double *row_losses, floating *ex, floating *ex2) noexcept nogil:
    """Finish the output layer and start backprop.

    IN/OUT ``Z``: pre-activation ``A @ W`` without bias; on return it holds
    ``delta = (act(Z + b) - y) * sw``, the gradient of the loss with respect
    to the output layer's pre-activation. This simple form holds for the
    canonical link pairs used here: logistic + binary log-loss, softmax +
    log-loss, identity + squared error, exp + Poisson deviance.
    IN ``Y``: targets, row ``rows[r]`` (or ``row0 + r`` when ``rows`` is NULL).
    IN ``sw``: sample weights indexed like ``Y``, or NULL.
    OUT ``ex``, ``ex2``: scratch of ``n_rows * n_out`` each.
    OUT ``row_losses[r]``: ``sw_r * loss_r`` where ``loss_r`` sums over the
    outputs: half squared error; binary log-loss and log-loss with the
    probability clipped to [eps, 1 - eps] as scikit-learn does (computed from
    the logits, so no overflow and no log(0)); half Poisson deviance ``y
    log(y / mu) - y + mu`` with ``log mu = z``.

    Element-wise outputs (identity, logistic, exp) gather the batch's
    targets into ``ex``, take every value's delta and loss in one branch-free
    loop over the block (it vectorises, exp included), then sum each row's
    losses. Softmax takes the block's exps in one loop, then works row by
    row. Unweighted log-losses sum their logs as the log of a product
    (renormalised before it can overflow): one log per block of rows instead
    of one per value; the sum then differs from the per-value sum by rounding
    only (it is the reported loss; no gradient uses it).
    """
    cdef Py_ssize_t r, j, i, src, n = n_rows * n_out
    cdef floating *z
    cdef const floating *y
    cdef floating v, e, d, p, s, w, yi
    cdef double row_loss, lin
    cdef floating eps = f_eps(<floating> 0)
    cdef double max_loss = -log(<double> eps)             # -log(eps)
    cdef double min_loss = -log1p(-<double> eps)          # -log(1 - eps)
    cdef double max_ratio = 1 / (<double> eps)            # exp(max_loss)
    cdef double min_ratio = 1 / (1 - <double> eps)        # exp(min_loss)
    # lin + log(1 + e) is below max_loss for any e in [0, 1] from here down
    cdef double lin_max = max_loss - 0.6931471805599453
    cdef bint products = sw == NULL
    cdef double prod = 1.0, log_sum = 0.0, ratio
    if out_act == ACT_SOFTMAX:
        # the arguments z + b minus the row's largest, then the block's exps
        for r in range(n_rows):
            _softmax_shift(Z + r * n_out, n_out, b)
        exp_activation(Z, n, ACT_EXP)
    else:
        # z + b, and the targets gathered ((r, j) stepped along: no inner loop
        # per row, which costs more than its work when n_out is 1)
        r = 0
        j = 0
        y = Y + (rows[0] if rows != NULL else row0) * n_out
        for i in range(n):
            Z[i] = Z[i] + b[j]
            ex[i] = y[j]
            j += 1
            if j == n_out:
                j = 0
                r += 1
                if r < n_rows:
                    y = Y + (rows[r] if rows != NULL else row0 + r) * n_out
    if out_act == ACT_IDENTITY:
        for i in range(n):
            v = Z[i] - ex[i]
            ex[i] = (<floating> 0.5 * v) * v
            Z[i] = v
    elif out_act == ACT_LOGISTIC:
        for i in range(n):
            v = Z[i]
            yi = ex[i]
            # e = exp(-|v|) gives both p and log(1 + e) without overflow:
            # -log p = |v| [v < 0] + log(1 + e), -log(1 - p) = v [v >= 0] +
            # log(1 + e); the linear part is lin
            e = f_exp(v if v < 0 else -v)
            d = 1 + e
            p = (1 if v >= 0 else e) / d
            lin = (<double> (v if v >= 0 else -v)) if (yi != 0) == (v < 0) else 0.0
            Z[i] = p - yi
            # the loss is lin + log(d), clipped to [min_loss, max_loss]; log(d)
            # goes to ex2 (taken later) but where a clip may apply: past lin_max
            # (e < 2**-21 there, so log(1 + e) = e to better than 1e-13
            # relative) and at a loss of exactly 0
            ex[i] = <floating> ((lin + e if lin + e < max_loss else max_loss) if lin > lin_max
                                else (min_loss if (lin == 0 and d == 1) else lin))
            ex2[i] = 1 if (lin > lin_max or (lin == 0 and d == 1)) else d
        if products:
            log_sum = _log_of_product(ex2, n)
        else:
            for i in range(n):
                ex[i] = ex[i] + <floating> log(<double> ex2[i])
    elif out_act == ACT_EXP:
        for i in range(n):
            v = Z[i]
            p = f_exp(v)
            ex2[i] = v
            Z[i] = p - ex[i]
        for i in range(n):
            # y log(y / mu) - y + mu = y (log y - z) + (mu - y); 0 log 0 = 0
            yi = ex[i]
            ex[i] = <floating> (((<double> yi) * (log(<double> yi) - ex2[i]) if yi > 0 else 0.0)
                                + Z[i])
    # each row's loss, and the deltas weighted
    r = 0
    j = 0
    row_loss = 0.0
    w = sw[rows[0] if rows != NULL else row0] if sw != NULL and n_rows > 0 else 1
    for i in range(n if out_act != ACT_SOFTMAX else 0):
        row_loss += ex[i]
        if sw != NULL:
            Z[i] = Z[i] * w
        j += 1
        if j == n_out:
            row_losses[r] = row_loss * w if sw != NULL else row_loss
            row_loss = 0.0
            j = 0
            r += 1
            if sw != NULL and r < n_rows:
                w = sw[rows[r] if rows != NULL else row0 + r]
    if out_act == ACT_SOFTMAX:
        for r in range(n_rows):
            src = rows[r] if rows != NULL else row0 + r
            z = Z + r * n_out
            y = Y + src * n_out
            w = sw[src] if sw != NULL else 1
            row_loss = 0.0
            s = 0
            for j in range(n_out):
                s = s + z[j]
            for j in range(n_out):
                if y[j] != 0:
                    # -log p_j = log(sum / e_j), clipped to [min_loss, max_loss]:
                    # ratio > 1 / eps is the top clip, e_j == 0 included
                    ratio = (<double> s) / z[j]
                    if ratio > max_ratio:
                        row_loss += y[j] * max_loss
                    elif ratio < min_ratio:
                        row_loss += y[j] * min_loss
                    elif products and y[j] == 1:
                        prod *= ratio
                        if prod > 1e280:
                            log_sum += log(prod)
                            prod = 1.0
                    else:
                        row_loss += y[j] * log(ratio)
            for j in range(n_out):
                v = z[j] / s - y[j]
                z[j] = v * w if sw != NULL else v
            row_losses[r] = row_loss * w if sw != NULL else row_loss
    if n_rows > 0:
        # the block's logs, taken once: log of the product of their arguments
        row_losses[0] += log_sum + log(prod)
