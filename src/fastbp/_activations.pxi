cdef void exp_activation(floating *z, Py_ssize_t n, int act) noexcept nogil:
    """In place ``z = act(z)`` on ``n`` consecutive values for the
    activations built on exp (tanh, logistic, exp): one branch-free loop each,
    which the compiler vectorises."""
    cdef Py_ssize_t j
    cdef floating v, e
    if act == ACT_TANH:
        for j in range(n):
            z[j] = f_tanh(z[j])
    elif act == ACT_LOGISTIC:
        for j in range(n):
            # stable: exponentiate -|v| only; 1 / (1 + e) or e / (1 + e)
            v = z[j]
            e = f_exp(v if v < 0 else -v)
            z[j] = (1 if v >= 0 else e) / (1 + e)
    elif act == ACT_EXP:
        for j in range(n):
            z[j] = f_exp(z[j])


cdef inline void _block_exp_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld,
                                       Py_ssize_t n_out, int act) noexcept nogil:
    # exp_activation over a block of rows: one loop over the whole block when
    # its rows are adjacent (few outputs per row still fill the vectors)
    cdef Py_ssize_t r
    if ld == n_out:
        exp_activation(Z, n_rows * n_out, act)
    else:
        for r in range(n_rows):
            exp_activation(Z + r * ld, n_out, act)


cdef inline void _softmax_shift(floating *z, Py_ssize_t n_out,
                                const floating *b) noexcept nogil:
    # z = (z + b) - max(z + b), the argument of softmax's exp
    cdef Py_ssize_t j
    cdef floating mx = z[0] + b[0]
    for j in range(n_out):
        z[j] = z[j] + b[j]
        if z[j] > mx:
            mx = z[j]
    for j in range(n_out):
        z[j] = z[j] - mx


cdef void bias_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld, Py_ssize_t n_out,
                          const floating *b, int act) noexcept nogil:
    """In place ``Z = act(Z + b)`` (row-wise bias) on ``n_rows`` rows of
    ``n_out`` values spaced ``ld`` apart (a column block of a row-major
    matrix); the hidden activations and the prediction-time output
    activations. Softmax needs whole rows (``n_out`` = the row width).
    Activations built on exp add the bias first, then run over the block."""
    cdef Py_ssize_t r, j
    cdef floating *z
    cdef floating v, s
    cdef floating slope = <floating> _LEAKY_SLOPE
    for r in range(n_rows):
        z = Z + r * ld
        if act == ACT_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else 0
        elif act == ACT_LEAKY_RELU:
            for j in range(n_out):
                v = z[j] + b[j]
                z[j] = v if v > 0 else slope * v
        elif act == ACT_SOFTMAX:
            _softmax_shift(z, n_out, b)
        else:
            for j in range(n_out):
                z[j] = z[j] + b[j]
    if act == ACT_TANH or act == ACT_LOGISTIC or act == ACT_EXP:
        _block_exp_activation(Z, n_rows, ld, n_out, act)
    elif act == ACT_SOFTMAX:
        _block_exp_activation(Z, n_rows, ld, n_out, ACT_EXP)
        for r in range(n_rows):
            z = Z + r * ld
            s = 0
            for j in range(n_out):
                s = s + z[j]
            for j in range(n_out):
                z[j] = z[j] / s


cdef void activation_derivative(floating *D, const floating *A, Py_ssize_t n_rows,
                                Py_ssize_t ld, Py_ssize_t n, int act) noexcept nogil:
    """In place ``D *= act'(z)`` on ``n_rows`` rows of ``n`` values spaced
    ``ld`` apart, written in terms of the activation's output ``A = act(z)``
    (same layout) as scikit-learn does."""
    cdef Py_ssize_t r, j
    cdef floating *d
    cdef const floating *a
    cdef floating slope = <floating> _LEAKY_SLOPE
    if act == ACT_IDENTITY:
        return
    if ld == n:
        # adjacent rows: one loop over the block
        n = n * n_rows
        n_rows = 1
    for r in range(n_rows):
        d = D + r * ld
        a = A + r * ld
        if act == ACT_RELU:
            for j in range(n):
                d[j] = d[j] if a[j] != 0 else 0
        elif act == ACT_LEAKY_RELU:
            for j in range(n):
                d[j] = d[j] * slope if a[j] <= 0 else d[j]
        elif act == ACT_TANH:
            for j in range(n):
                d[j] = d[j] * (1 - a[j] * a[j])
        elif act == ACT_LOGISTIC:
            for j in range(n):
                d[j] = (d[j] * a[j]) * (1 - a[j])
