# Losses: the output layer's loss and delta, one function per loss.
#
# Notes
# -----
# * A loss has a code (``LOSS_*``) and its settings in a ``LossConfig``,
#   held by the ``LossRecord`` the Python side builds per fit (from the loss
#   name and the output activation, checked to pair; the entry points take
#   the canonical loss of the network's output when given none).
#   ``output_loss_delta`` is the table: one case per code.
# * Each output activation has its canonical loss, whose gradient with
#   respect to the output layer's pre-activation is ``act(z + b) - y``:
#   identity + half squared error, logistic + binary log-loss, softmax +
#   log-loss, exp + half Poisson deviance (``_OUTPUT_ACTIVATIONS`` names
#   them). The identity output also takes Huber, absolute error and the
#   pinball (quantile) loss; the log-losses take label smoothing, computed
#   exactly from the logits (no clip at eps: PyTorch's definition).
# * A loss is one function: from ``z + b`` and the targets it writes the
#   delta and the per-value losses (the reported loss), and returns the
#   block's share of logs (below), 0 if it has none. Element-wise losses
#   share ``_gather_targets`` (bias added, targets gathered into a block)
#   and ``_weighted_row_losses`` (each row's loss, deltas and losses
#   weighted); softmax works row by row.
# * Loops run over the whole block, branch-free, so they vectorise (exp
#   included). The order of every sum is fixed (rows in order, outputs in
#   order), whatever the block or thread; the golden test checks it bit for bit.
# * Log-losses clip the probability to [eps, 1 - eps] as scikit-learn does,
#   computed from the logits (no overflow, no log(0)). Unweighted, they sum
#   their logs as the log of a product: one log per block of rows instead of
#   one per value, added to the block's first row (it is only the reported
#   loss; no gradient uses it).

_OUTPUT_ACTIVATIONS = ("identity", "logistic", "softmax", "exp")

cdef enum:
    LOSS_SQUARED_ERROR = 0
    LOSS_BINARY_LOG = 1       # log_loss on logistic outputs (binary, multilabel)
    LOSS_SOFTMAX_LOG = 2      # log_loss on a softmax output (multiclass)
    LOSS_POISSON = 3
    LOSS_HUBER = 4
    LOSS_ABSOLUTE_ERROR = 5
    LOSS_QUANTILE = 6

# loss name -> {output activation: code}
_LOSS_CODES = {
    "squared_error": {"identity": LOSS_SQUARED_ERROR},
    "log_loss": {"logistic": LOSS_BINARY_LOG, "softmax": LOSS_SOFTMAX_LOG},
    "poisson": {"exp": LOSS_POISSON},
    "huber": {"identity": LOSS_HUBER},
    "absolute_error": {"identity": LOSS_ABSOLUTE_ERROR},
    "quantile": {"identity": LOSS_QUANTILE},
}
# the loss each output activation has when none is given
_CANONICAL_LOSS = {"identity": "squared_error", "logistic": "log_loss", "softmax": "log_loss",
                   "exp": "poisson"}


cdef struct LossConfig:
    int code
    double huber_delta        # LOSS_HUBER: the switch from quadratic to linear
    double label_smoothing    # the log-losses: 0 for scikit-learn's
    const double *quantiles   # LOSS_QUANTILE: one per output


@cython.final
cdef class LossRecord:
    """A training loss and its settings as the engine reads them.

    Parameters
    ----------
    name : str
        'squared_error', 'log_loss', 'poisson', 'huber', 'absolute_error' or
        'quantile'.
    output_activation : str
        The network's output activation; it must pair with the loss.
    huber_delta : float, default=1.0
    quantiles : sequence of float, default=None
        'quantile': the quantile of each output, in [0, 1].
    label_smoothing : float, default=0.0
        'log_loss': targets ``y (1 - eps) + eps / K`` (K = 2 for logistic
        outputs), in [0, 1).
    """
    cdef LossConfig config
    cdef int out_act
    cdef readonly str name
    cdef readonly str output_activation
    cdef readonly object quantiles

    def __cinit__(self, str name, str output_activation, double huber_delta=1.0,
                  quantiles=None, double label_smoothing=0.0):
        if name not in _LOSS_CODES:
            raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(_LOSS_CODES)}")
        if output_activation not in _LOSS_CODES[name]:
            raise ValueError(f"the loss {name!r} needs the output activation "
                             f"{' or '.join(map(repr, _LOSS_CODES[name]))}, got "
                             f"{output_activation!r}")
        if not huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.name = name
        self.output_activation = output_activation
        self.out_act = ACTIVATION_CODES[output_activation]
        self.config.code = _LOSS_CODES[name][output_activation]
        self.config.huber_delta = huber_delta
        self.config.label_smoothing = label_smoothing
        self.config.quantiles = NULL
        self.quantiles = None
        if name == "quantile":
            self.quantiles = np.ascontiguousarray(
                [0.5] if quantiles is None else quantiles, dtype=np.float64).reshape(-1)
            if self.quantiles.shape[0] == 0 or not np.all(
                    (self.quantiles >= 0) & (self.quantiles <= 1)):
                raise ValueError(f"quantiles must be in [0, 1], got {list(self.quantiles)}")
            self.config.quantiles = <const double *> cnp.PyArray_DATA(self.quantiles)

    @property
    def huber_delta(self):
        return self.config.huber_delta

    @property
    def label_smoothing(self):
        return self.config.label_smoothing

    def __reduce__(self):
        return (LossRecord, (self.name, self.output_activation, self.config.huber_delta,
                             self.quantiles, self.config.label_smoothing))


# the canonical loss of each output activation, by code (made once)
_CANONICAL_RECORDS = {ACTIVATION_CODES[out]: LossRecord(name, out)
                      for out, name in _CANONICAL_LOSS.items()}


cdef LossRecord _loss_record(const Net *net, LossRecord loss):
    """``loss`` checked against the network (its output activation, one
    quantile per output), or the output's canonical loss when None (one
    dict lookup per epoch call)."""
    if loss is None:
        return _CANONICAL_RECORDS[net.out_act]
    if loss.out_act != net.out_act:
        raise ValueError(f"the loss {loss.name!r} is set for the output activation "
                         f"{loss.output_activation!r}, the network's is "
                         f"{next(k for k, v in ACTIVATION_CODES.items() if v == net.out_act)!r}")
    if loss.quantiles is not None and loss.quantiles.shape[0] != net.sizes[net.n_layers]:
        raise ValueError(f"the loss has {loss.quantiles.shape[0]} quantiles, the network has "
                         f"{net.sizes[net.n_layers]} outputs")
    return loss


cdef struct LogClip:
    # the clip of the log-losses for a dtype's eps: a loss in [min_loss,
    # max_loss], a probability ratio in [min_ratio, max_ratio]
    double max_loss           # -log(eps)
    double min_loss           # -log(1 - eps)
    double max_ratio          # exp(max_loss)
    double min_ratio          # exp(min_loss)
    double lin_max            # lin + log(1 + e) < max_loss for e in [0, 1] below this


cdef struct LogProduct:
    # a sum of logs kept as a running product, logged before it can overflow
    double prod
    double log_sum


cdef inline void _log_clip(LogClip *clip, floating eps) noexcept nogil:
    clip.max_loss = -log(<double> eps)
    clip.min_loss = -log1p(-<double> eps)
    clip.max_ratio = 1 / (<double> eps)
    clip.min_ratio = 1 / (1 - <double> eps)
    clip.lin_max = clip.max_loss - 0.6931471805599453


cdef inline void _log_product_add(LogProduct *acc, double ratio) noexcept nogil:
    acc.prod *= ratio
    if acc.prod > 1e280:
        acc.log_sum += log(acc.prod)
        acc.prod = 1.0


# ---------------------------------------------------------------------------
# Shared by the element-wise losses
# ---------------------------------------------------------------------------

cdef inline void _gather_targets(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                                 const floating *b, const floating *Y,
                                 const Py_ssize_t *rows, Py_ssize_t row0,
                                 floating *T) noexcept nogil:
    """``Z += b`` row-wise and ``T`` = the rows' targets, ``(r, j)`` stepped
    along (no inner loop per row: it costs more than its work when n_out is 1)."""
    cdef Py_ssize_t r = 0, j = 0, i
    cdef const floating *y = Y + (rows[0] if rows != NULL else row0) * n_out
    for i in range(n_rows * n_out):
        Z[i] = Z[i] + b[j]
        T[i] = y[j]
        j += 1
        if j == n_out:
            j = 0
            r += 1
            if r < n_rows:
                y = Y + (rows[r] if rows != NULL else row0 + r) * n_out


cdef inline void _weighted_row_losses(floating *Z, const floating *losses,
                                      Py_ssize_t n_rows, Py_ssize_t n_out,
                                      const Py_ssize_t *rows, Py_ssize_t row0,
                                      const floating *sw, double *row_losses) noexcept nogil:
    """``row_losses[r]`` = the row's losses summed over the outputs, times
    its sample weight; the deltas ``Z`` times it too (with weights)."""
    cdef Py_ssize_t r = 0, j = 0, i
    cdef double row_loss = 0.0
    cdef floating w = sw[rows[0] if rows != NULL else row0] if sw != NULL and n_rows > 0 else 1
    for i in range(n_rows * n_out):
        row_loss += losses[i]
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


# ---------------------------------------------------------------------------
# The losses. Element-wise ones: IN/OUT ``Z`` (z + b in, delta out), IN/OUT
# ``T`` (targets in, per-value losses out), ``scratch`` of the same size.
# ---------------------------------------------------------------------------

cdef inline double squared_error(floating *Z, floating *T, Py_ssize_t n) noexcept nogil:
    # identity output: loss (z - y)^2 / 2, delta z - y
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = Z[i] - T[i]
        T[i] = (<floating> 0.5 * v) * v
        Z[i] = v
    return 0.0


cdef inline double binary_log_loss(floating *Z, floating *T, floating *scratch, Py_ssize_t n,
                                   bint products) noexcept nogil:
    """Logistic output: loss ``-y log p - (1 - y) log(1 - p)``, delta ``p - y``.
    ``e = exp(-|z|)`` gives both p and ``log(1 + e)`` without overflow:
    ``-log p = |z| [z < 0] + log(1 + e)``, ``-log(1 - p) = z [z >= 0] +
    log(1 + e)``; the linear part is ``lin``. With ``products`` the logs are
    returned as one sum (the values are left without them), else added in."""
    cdef LogClip clip
    cdef Py_ssize_t i
    cdef floating v, e, d, p, yi
    cdef double lin
    _log_clip(&clip, f_eps(<floating> 0))
    for i in range(n):
        v = Z[i]
        yi = T[i]
        e = f_exp(v if v < 0 else -v)
        d = 1 + e
        p = (1 if v >= 0 else e) / d
        lin = (<double> (v if v >= 0 else -v)) if (yi != 0) == (v < 0) else 0.0
        Z[i] = p - yi
        # the loss is lin + log(d), clipped to [min_loss, max_loss]; log(d)
        # goes to scratch (taken later) but where a clip may apply: past
        # lin_max (e < 2**-21 there, so log(1 + e) = e to better than 1e-13
        # relative) and at a loss of exactly 0
        T[i] = <floating> ((lin + e if lin + e < clip.max_loss else clip.max_loss)
                           if lin > clip.lin_max
                           else (clip.min_loss if (lin == 0 and d == 1) else lin))
        scratch[i] = 1 if (lin > clip.lin_max or (lin == 0 and d == 1)) else d
    if products:
        return _log_of_product(scratch, n)
    for i in range(n):
        T[i] = T[i] + <floating> log(<double> scratch[i])
    return 0.0


cdef inline double poisson_deviance(floating *Z, floating *T, floating *scratch,
                                    Py_ssize_t n) noexcept nogil:
    # exp output (log link): loss y log(y / mu) - y + mu with mu = exp(z),
    # written y (log y - z) + (mu - y) with 0 log 0 = 0; delta mu - y
    cdef Py_ssize_t i
    cdef floating v, p, yi
    for i in range(n):
        v = Z[i]
        p = f_exp(v)
        scratch[i] = v
        Z[i] = p - T[i]
    for i in range(n):
        yi = T[i]
        T[i] = <floating> (((<double> yi) * (log(<double> yi) - scratch[i]) if yi > 0 else 0.0)
                           + Z[i])
    return 0.0


cdef inline double _softmax_row_log_loss(const floating *z, const floating *y, Py_ssize_t n_out,
                                         floating s, const LogClip *clip, bint products,
                                         LogProduct *acc) noexcept nogil:
    # -sum_j y_j log p_j of one row from its exps z and their sum s:
    # -log p_j = log(s / e_j), clipped to [min_loss, max_loss] (a ratio past
    # 1 / eps is the top clip, e_j == 0 included); unit labels into ``acc``
    cdef Py_ssize_t j
    cdef double ratio, row_loss = 0.0
    for j in range(n_out):
        if y[j] != 0:
            ratio = (<double> s) / z[j]
            if ratio > clip.max_ratio:
                row_loss += y[j] * clip.max_loss
            elif ratio < clip.min_ratio:
                row_loss += y[j] * clip.min_loss
            elif products and y[j] == 1:
                _log_product_add(acc, ratio)
            else:
                row_loss += y[j] * log(ratio)
    return row_loss


cdef inline double softmax_log_loss(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                                    const floating *b, const floating *Y,
                                    const Py_ssize_t *rows, Py_ssize_t row0,
                                    const floating *sw, double *row_losses) noexcept nogil:
    """Softmax output: loss ``-sum_j y_j log p_j``, delta ``p - y`` (times the
    sample weight), row by row after the block's exps."""
    cdef LogClip clip
    cdef LogProduct acc
    cdef Py_ssize_t r, j, src
    cdef floating *z
    cdef const floating *y
    cdef floating v, s, w
    cdef double row_loss
    _log_clip(&clip, f_eps(<floating> 0))
    acc.prod = 1.0
    acc.log_sum = 0.0
    for r in range(n_rows):
        # the row's targets, rows of Y in the epoch's order, start for the
        # cache now: the loop below branches on them (it waited on each row's)
        fb_prefetch_lines(Y + (rows[r] if rows != NULL else row0 + r) * n_out,
                          n_out * sizeof(floating))
        _softmax_shift(Z + r * n_out, n_out, b)
    exp_activation(Z, n_rows * n_out, ACT_EXP, NULL)
    for r in range(n_rows):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        y = Y + src * n_out
        w = sw[src] if sw != NULL else 1
        s = 0
        for j in range(n_out):
            s = s + z[j]
        row_loss = _softmax_row_log_loss(z, y, n_out, s, &clip, sw == NULL, &acc)
        for j in range(n_out):
            v = z[j] / s - y[j]
            z[j] = v * w if sw != NULL else v
        row_losses[r] = row_loss * w if sw != NULL else row_loss
    return acc.log_sum + log(acc.prod)


cdef inline double huber(floating *Z, floating *T, Py_ssize_t n, floating delta) noexcept nogil:
    # identity output: loss v^2 / 2 within delta, delta (|v| - delta / 2)
    # beyond (PyTorch's HuberLoss); delta clip(v, -delta, delta)
    cdef Py_ssize_t i
    cdef floating v, a
    for i in range(n):
        v = Z[i] - T[i]
        a = v if v >= 0 else -v
        T[i] = (<floating> 0.5 * v) * v if a <= delta else delta * (a - <floating> 0.5 * delta)
        Z[i] = v if a <= delta else (delta if v > 0 else -delta)
    return 0.0


cdef inline double absolute_error(floating *Z, floating *T, Py_ssize_t n) noexcept nogil:
    # identity output: loss |v|, delta sign(v) (0 at 0, as PyTorch's L1Loss)
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = Z[i] - T[i]
        T[i] = v if v >= 0 else -v
        Z[i] = 1 if v > 0 else (-1 if v < 0 else 0)
    return 0.0


cdef inline double pinball(floating *Z, floating *T, Py_ssize_t n_rows, Py_ssize_t n_out,
                           const double *quantiles) noexcept nogil:
    # identity outputs, output j the quantile q_j: loss q (y - z) above the
    # prediction, (1 - q) (z - y) below (scikit-learn's mean_pinball_loss);
    # delta -q, 1 - q, and 0 where z = y
    cdef Py_ssize_t r, j
    cdef floating v, q
    cdef floating *z
    cdef floating *t
    for r in range(n_rows):
        z = Z + r * n_out
        t = T + r * n_out
        for j in range(n_out):
            q = <floating> quantiles[j]
            v = z[j] - t[j]
            t[j] = (1 - q) * v if v >= 0 else -(q * v)
            z[j] = (1 - q) if v > 0 else (-q if v < 0 else 0)
    return 0.0


cdef inline double binary_smoothed_log_loss(floating *Z, floating *T, Py_ssize_t n,
                                            floating eps) noexcept nogil:
    """Logistic outputs with label smoothing: target ``y' = y (1 - eps) +
    eps / 2``, loss ``softplus(z) - y' z = max(z, 0) - y' z + log1p(exp(-|z|))``
    (exact at any logit), delta ``sigmoid(z) - y'``."""
    cdef Py_ssize_t i
    cdef floating v, e, target
    cdef floating keep = 1 - eps
    cdef floating half_eps = <floating> 0.5 * eps
    for i in range(n):
        v = Z[i]
        target = T[i] * keep + half_eps
        e = f_exp(v if v < 0 else -v)
        Z[i] = (1 if v >= 0 else e) / (1 + e) - target
        T[i] = ((v if v > 0 else 0) - target * v) + f_log1p(e)
    return 0.0


cdef inline double softmax_smoothed_log_loss(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                                             const floating *b, const floating *Y,
                                             const Py_ssize_t *rows, Py_ssize_t row0,
                                             const floating *sw, floating eps,
                                             double *row_losses) noexcept nogil:
    """Softmax output with label smoothing: targets ``y' = y (1 - eps) + eps / K``
    (one-hot y, so they sum to 1), loss ``log(s) - sum_j y'_j (z_j - max)``
    with ``s = sum_j exp(z_j - max)`` (exact at any logit), delta ``p - y'``
    (times the sample weight). Unweighted, the logs of s are summed as the
    log of a product and returned (added to the block's first row)."""
    cdef LogProduct acc
    cdef Py_ssize_t r, j, src
    cdef floating *z
    cdef const floating *y
    cdef floating s, w, keep = 1 - eps, spread = eps / n_out
    cdef double dot
    acc.prod = 1.0
    acc.log_sum = 0.0
    for r in range(n_rows):
        z = Z + r * n_out
        _softmax_shift(z, n_out, b)
        y = Y + (rows[r] if rows != NULL else row0 + r) * n_out
        dot = 0.0
        for j in range(n_out):
            dot += (<double> (y[j] * keep + spread)) * z[j]
        row_losses[r] = -dot
    exp_activation(Z, n_rows * n_out, ACT_EXP, NULL)
    for r in range(n_rows):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        y = Y + src * n_out
        w = sw[src] if sw != NULL else 1
        s = 0
        for j in range(n_out):
            s = s + z[j]
        for j in range(n_out):
            z[j] = (z[j] / s - (y[j] * keep + spread)) * w
        if sw != NULL:
            row_losses[r] = (row_losses[r] + log(<double> s)) * w
        else:
            _log_product_add(&acc, <double> s)
    return acc.log_sum + log(acc.prod)


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

cdef void output_loss_delta(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                            const floating *b, const floating *Y,
                            const Py_ssize_t *rows, Py_ssize_t row0,
                            const floating *sw, const LossConfig *loss,
                            double *row_losses, floating *ex, floating *ex2) noexcept nogil:
    """Finish the output layer and start backprop.

    IN/OUT ``Z``: pre-activation ``A @ W`` without bias; on return it holds
    ``delta * sw``, the gradient of the loss with respect to the output
    layer's pre-activation (``act(Z + b) - y`` for the canonical losses).
    IN ``loss``: the loss's code and settings.
    IN ``Y``: targets, row ``rows[r]`` (or ``row0 + r`` when ``rows`` is NULL).
    IN ``sw``: sample weights indexed like ``Y``, or NULL.
    OUT ``ex``, ``ex2``: scratch of ``n_rows * n_out`` each.
    OUT ``row_losses[r]``: ``sw_r * loss_r``, ``loss_r`` summed over the
    outputs (the block's logs, when kept as a product, added to row 0).
    """
    cdef Py_ssize_t n = n_rows * n_out
    cdef double block_logs = 0.0
    cdef int code = loss.code
    cdef bint smoothed = loss.label_smoothing != 0
    if code == LOSS_SOFTMAX_LOG and smoothed:
        block_logs = softmax_smoothed_log_loss(Z, n_rows, n_out, b, Y, rows, row0, sw,
                                               <floating> loss.label_smoothing, row_losses)
    elif code == LOSS_SOFTMAX_LOG:
        block_logs = softmax_log_loss(Z, n_rows, n_out, b, Y, rows, row0, sw, row_losses)
    else:
        _gather_targets(Z, n_rows, n_out, b, Y, rows, row0, ex)
        if code == LOSS_SQUARED_ERROR:
            block_logs = squared_error(Z, ex, n)
        elif code == LOSS_BINARY_LOG and smoothed:
            block_logs = binary_smoothed_log_loss(Z, ex, n, <floating> loss.label_smoothing)
        elif code == LOSS_BINARY_LOG:
            block_logs = binary_log_loss(Z, ex, ex2, n, sw == NULL)
        elif code == LOSS_POISSON:
            block_logs = poisson_deviance(Z, ex, ex2, n)
        elif code == LOSS_HUBER:
            block_logs = huber(Z, ex, n, <floating> loss.huber_delta)
        elif code == LOSS_ABSOLUTE_ERROR:
            block_logs = absolute_error(Z, ex, n)
        elif code == LOSS_QUANTILE:
            block_logs = pinball(Z, ex, n_rows, n_out, loss.quantiles)
        _weighted_row_losses(Z, ex, n_rows, n_out, rows, row0, sw, row_losses)
    if n_rows > 0:
        row_losses[0] += block_logs
