# Activations: one entry per activation, and the passes that apply them.
#
# Notes
# -----
# * An activation is one entry in this unit: its code (``ACT_*``) and name
#   (``ACTIVATION_CODES``), its element forward ``f(z)`` and, when a hidden
#   layer may take it (``_HIDDEN_ACTIVATIONS``), its element derivative
#   written in terms of the output ``a = f(z)`` as scikit-learn does; then one
#   case in each pass below. The output layer takes the activations that have
#   a loss (_losses.pxi).
# * ``bias_activation`` adds the bias row by row and applies the activation
#   in the same loop (identity, relu, leaky_relu); activations built on exp
#   (tanh, logistic, exp, softmax's exps) run afterwards over the whole block
#   (``exp_activation``), so that few outputs per row still fill the vectors.
# * Every inner loop is branch-free (a select, not a jump) so that the
#   compiler vectorises it; the switch on the code stays outside the loops.
#   The passes carry FASTBP_VECTOR_CLONES (setup.py).

cdef enum:
    ACT_IDENTITY = 0
    ACT_LOGISTIC = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_SOFTMAX = 5
    ACT_EXP = 6

ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "logistic": ACT_LOGISTIC,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
    "exp": ACT_EXP,
}

# the activations with a derivative below: what hidden layers (and the
# estimators' ``activation`` parameter) accept, in the order users see them
HIDDEN_ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "leaky_relu")


# ---------------------------------------------------------------------------
# The entries: element forward and derivative (from the output a = f(z))
# ---------------------------------------------------------------------------

# identity: f(z) = z, f' = 1 (activation_derivative leaves the deltas as they are)

# relu
cdef inline floating relu(floating z) noexcept nogil:
    return z if z > 0 else 0

cdef inline floating relu_derivative(floating d, floating a) noexcept nogil:
    return d if a != 0 else 0


# leaky_relu: slope 0.01 for negative inputs (PyTorch's default), a C
# constant so that the loops fold it
cdef extern from *:
    """
    #define FB_LEAKY_SLOPE 0.01
    """
    double LEAKY_SLOPE "FB_LEAKY_SLOPE"

cdef inline floating leaky_relu(floating z) noexcept nogil:
    return z if z > 0 else (<floating> LEAKY_SLOPE) * z

cdef inline floating leaky_relu_derivative(floating d, floating a) noexcept nogil:
    return d * (<floating> LEAKY_SLOPE) if a <= 0 else d


# logistic: 1 / (1 + exp(-z)), exponentiating -|z| only (no overflow)
cdef inline floating logistic(floating z) noexcept nogil:
    cdef floating e = f_exp(z if z < 0 else -z)
    return (1 if z >= 0 else e) / (1 + e)

cdef inline floating logistic_derivative(floating d, floating a) noexcept nogil:
    return (d * a) * (1 - a)


# tanh: f_tanh (_math.pxi)
cdef inline floating tanh_derivative(floating d, floating a) noexcept nogil:
    return d * (1 - a * a)


# exp (output layer only, Poisson): f_exp (_math.pxi)

# softmax (output layer only): exp(z - max(z)) / sum, row by row
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


cdef inline void _softmax_normalise(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld,
                                    Py_ssize_t n_out) noexcept nogil:
    # each row of exps divided by its sum
    cdef Py_ssize_t r, j
    cdef floating *z
    cdef floating s
    for r in range(n_rows):
        z = Z + r * ld
        s = 0
        for j in range(n_out):
            s = s + z[j]
        for j in range(n_out):
            z[j] = z[j] / s


# ---------------------------------------------------------------------------
# The passes: one case per activation
# ---------------------------------------------------------------------------

cdef inline bint _exp_based(int act) noexcept nogil:
    # the activations exp_activation applies, after the bias
    return act == ACT_TANH or act == ACT_LOGISTIC or act == ACT_EXP


cdef void exp_activation(floating *z, Py_ssize_t n, int act) noexcept nogil:
    """In place ``z = act(z)`` on ``n`` consecutive values for the
    activations built on exp (tanh, logistic, exp): one branch-free loop each,
    which the compiler vectorises."""
    cdef Py_ssize_t j
    if act == ACT_TANH:
        for j in range(n):
            z[j] = f_tanh(z[j])
    elif act == ACT_LOGISTIC:
        for j in range(n):
            z[j] = logistic(z[j])
    elif act == ACT_EXP:
        for j in range(n):
            z[j] = f_exp(z[j])


cdef inline void _block_exp_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld,
                                       Py_ssize_t n_out, int act) noexcept nogil:
    # exp_activation over a block of rows: one loop over the whole block when
    # its rows are adjacent
    cdef Py_ssize_t r
    if ld == n_out:
        exp_activation(Z, n_rows * n_out, act)
    else:
        for r in range(n_rows):
            exp_activation(Z + r * ld, n_out, act)


cdef void bias_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld, Py_ssize_t n_out,
                          const floating *b, int act) noexcept nogil:
    """In place ``Z = act(Z + b)`` (row-wise bias) on ``n_rows`` rows of
    ``n_out`` values spaced ``ld`` apart (a column block of a row-major
    matrix); the hidden activations and the prediction-time output
    activations. Softmax needs whole rows (``n_out`` = the row width).
    Activations built on exp add the bias first, then run over the block."""
    cdef Py_ssize_t r, j
    cdef floating *z
    for r in range(n_rows):
        z = Z + r * ld
        if act == ACT_RELU:
            for j in range(n_out):
                z[j] = relu(z[j] + b[j])
        elif act == ACT_LEAKY_RELU:
            for j in range(n_out):
                z[j] = leaky_relu(z[j] + b[j])
        elif act == ACT_SOFTMAX:
            _softmax_shift(z, n_out, b)
        else:
            # identity, and the exp-based activations (applied below)
            for j in range(n_out):
                z[j] = z[j] + b[j]
    if _exp_based(act):
        _block_exp_activation(Z, n_rows, ld, n_out, act)
    elif act == ACT_SOFTMAX:
        _block_exp_activation(Z, n_rows, ld, n_out, ACT_EXP)
        _softmax_normalise(Z, n_rows, ld, n_out)


cdef void activation_derivative(floating *D, const floating *A, Py_ssize_t n_rows,
                                Py_ssize_t ld, Py_ssize_t n, int act) noexcept nogil:
    """In place ``D *= act'(z)`` on ``n_rows`` rows of ``n`` values spaced
    ``ld`` apart, from the activation's output ``A = act(z)`` (same layout)."""
    cdef Py_ssize_t r, j
    cdef floating *d
    cdef const floating *a
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
                d[j] = relu_derivative(d[j], a[j])
        elif act == ACT_LEAKY_RELU:
            for j in range(n):
                d[j] = leaky_relu_derivative(d[j], a[j])
        elif act == ACT_TANH:
            for j in range(n):
                d[j] = tanh_derivative(d[j], a[j])
        elif act == ACT_LOGISTIC:
            for j in range(n):
                d[j] = logistic_derivative(d[j], a[j])
