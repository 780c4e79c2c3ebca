# Activations: one entry per activation, and the passes that apply them.
#
# Notes
# -----
# * An activation is one entry in this unit: its code (``ACT_*``) and name
#   (``ACTIVATION_CODES``), its element forward ``f(z)`` and, when a hidden
#   layer may take it (``_HIDDEN_ACTIVATIONS``), its element derivative
#   written in terms of the output ``a = f(z)`` as scikit-learn does; then
#   one case in each pass below. Where the derivative is not a function of the
#   output (gelu, silu, mish, softplus: ``_keeps_derivative``) the entry is one
#   function computing both from z, sharing the exponential, and training
#   keeps f'(z) in the workspace for the backward pass (``hidden_activation``;
#   the backward pass then only multiplies). The output layer takes the
#   activations that have a loss (_losses.pxi).
# * ``bias_activation`` adds the bias row by row and applies the activation
#   in the same loop (identity, relu, leaky_relu); activations built on exp
#   (tanh, logistic, exp, softmax's exps, gelu, silu, selu, mish, softplus)
#   run afterwards over the whole block (``exp_activation``), so that few
#   outputs per row still fill the vectors. ``hidden_activation`` is
#   training's pass for hidden layers: the same, keeping f'(z) when needed.
# * Every activation is finite for finite input and stable at +-1e4 in both
#   dtypes: exponentials of -|z| only, erf's tail clamped (_math.pxi).
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
    ACT_GELU = 7
    ACT_SILU = 8
    ACT_SELU = 9
    ACT_MISH = 10
    ACT_SOFTPLUS = 11

ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "logistic": ACT_LOGISTIC,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
    "exp": ACT_EXP,
    "gelu": ACT_GELU,
    "silu": ACT_SILU,
    "selu": ACT_SELU,
    "mish": ACT_MISH,
    "softplus": ACT_SOFTPLUS,
}

# the activations with a derivative below: what hidden layers (and the
# estimators' ``activation`` parameter) accept, in the order users see them
HIDDEN_ACTIVATIONS = ("relu", "tanh", "logistic", "identity", "leaky_relu", "gelu", "silu",
                      "selu", "mish", "softplus")


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


# gelu, silu, mish and softplus: their derivative is not a function of their
# output, so training computes it in the forward pass, where it shares the
# exponential (``*_with_derivative``), and keeps it for the backward pass;
# prediction calls the same functions and drops it.

# gelu, exact (PyTorch's default): z Phi(z), Phi the normal CDF (_math.pxi);
# f' = Phi(z) + z phi(z)
cdef inline floating gelu_with_derivative(floating z, floating *derivative) noexcept nogil:
    cdef double density
    cdef double cdf
    cdef float density_single, cdf_single
    if floating is float:
        cdf_single = _normal_cdf_single(z, &density_single)
        derivative[0] = cdf_single + z * density_single
        return z * cdf_single
    else:
        cdf = _normal_cdf(z, &density)
        derivative[0] = cdf + z * density
        return z * cdf


# silu (swish): z sigma(z); f' = sigma(z) (1 + z (1 - sigma(z))), sigma from exp(-|z|)
cdef inline floating silu_with_derivative(floating z, floating *derivative) noexcept nogil:
    cdef floating e = smooth_exp(z if z < 0 else -z)
    cdef floating inv = 1 / (1 + e)
    cdef floating sig = (1 if z >= 0 else e) * inv
    cdef floating rest = (e if z >= 0 else 1) * inv
    derivative[0] = sig * (1 + z * rest)
    return z * sig


# mish: z tanh(softplus(z)). With e = exp(-|z|), tanh(softplus(z)) is the
# ratio num / den below and 1 - tanh^2 = 4 (1 + e)^2 (e^2 for z > 0) / den^2:
# no overflow, no cancellation; f' = t + z sigma(z) (1 - t^2)
cdef inline floating mish_with_derivative(floating z, floating *derivative) noexcept nogil:
    cdef floating e = smooth_exp(z if z < 0 else -z)
    cdef floating num = 1 + 2 * e if z > 0 else e * (e + 2)
    cdef floating inv_den = 1 / (num + 2 * e * e if z > 0 else num + 2)
    cdef floating one_e = 1 + e
    cdef floating t = num * inv_den
    cdef floating sig = (1 if z > 0 else e) / one_e
    cdef floating sech2 = ((4 * one_e * one_e) * (e * e if z > 0 else 1)) * (inv_den * inv_den)
    derivative[0] = t + z * (sig * sech2)
    return z * t


# softplus: log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), exact (no
# threshold switch); f' = sigma(z)
cdef inline floating softplus_with_derivative(floating z, floating *derivative) noexcept nogil:
    cdef floating e = smooth_exp(z if z < 0 else -z)
    derivative[0] = (1 if z >= 0 else e) / (1 + e)
    return (z if z > 0 else 0) + smooth_log1p(e)


# selu: scale z above zero, scale alpha (exp(z) - 1) below (PyTorch's constants)
cdef extern from *:
    """
    #define FB_SELU_SCALE 1.0507009873554804934193349852946
    #define FB_SELU_ALPHA 1.6732632423543772848170429916717
    """
    double SELU_SCALE "FB_SELU_SCALE"
    double SELU_ALPHA "FB_SELU_ALPHA"

cdef inline floating selu(floating z) noexcept nogil:
    cdef floating below = <floating> (SELU_SCALE * SELU_ALPHA) * smooth_expm1(z if z < 0 else 0)
    return (<floating> SELU_SCALE) * z if z > 0 else below

cdef inline floating selu_derivative(floating d, floating a) noexcept nogil:
    # f' = scale above zero, a + scale alpha below (from the output a)
    return d * ((<floating> SELU_SCALE) if a > 0 else a + <floating> (SELU_SCALE * SELU_ALPHA))


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
    return (act == ACT_TANH or act == ACT_LOGISTIC or act == ACT_EXP or act == ACT_GELU
            or act == ACT_SILU or act == ACT_SELU or act == ACT_MISH or act == ACT_SOFTPLUS)


cdef inline bint _keeps_derivative(int act) noexcept nogil:
    # the activations whose forward pass writes f'(z) for training's backward pass
    return act == ACT_GELU or act == ACT_SILU or act == ACT_MISH or act == ACT_SOFTPLUS


cdef void tanh_activation(floating *z, Py_ssize_t n) noexcept nogil:
    """In place ``z = tanh(z)``: a kernel of its own (float computes in double,
    two vectors of doubles per vector of floats, whose constants fill the
    registers; inside ``exp_activation`` they spilled)."""
    cdef Py_ssize_t j
    for j in range(n):
        z[j] = f_tanh(z[j])


cdef void exp_activation(floating *z, Py_ssize_t n, int act,
                         floating *derivative) noexcept nogil:
    """In place ``z = act(z)`` on ``n`` consecutive values for the
    activations built on exp (tanh, logistic, exp, gelu, silu, selu, mish,
    softplus): one branch-free loop each, which the compiler vectorises.
    OUT ``derivative`` (training's forward pass, the activations that keep
    it: ``_keeps_derivative``; NULL otherwise) receives ``act'(z)``."""
    cdef Py_ssize_t j
    cdef floating unused
    if derivative != NULL:
        _derivative_activation(z, derivative, n, act)
    elif act == ACT_TANH:
        tanh_activation(z, n)
    elif act == ACT_LOGISTIC:
        for j in range(n):
            z[j] = logistic(z[j])
    elif act == ACT_EXP:
        for j in range(n):
            z[j] = f_exp(z[j])
    elif act == ACT_GELU:
        for j in range(n):
            z[j] = gelu_with_derivative(z[j], &unused)
    elif act == ACT_SILU:
        for j in range(n):
            z[j] = silu_with_derivative(z[j], &unused)
    elif act == ACT_SELU:
        for j in range(n):
            z[j] = selu(z[j])
    elif act == ACT_MISH:
        for j in range(n):
            z[j] = mish_with_derivative(z[j], &unused)
    elif act == ACT_SOFTPLUS:
        for j in range(n):
            z[j] = softplus_with_derivative(z[j], &unused)


cdef inline void _derivative_activation(floating *z, floating *derivative, Py_ssize_t n,
                                        int act) noexcept nogil:
    # exp_activation's loops that also write act'(z) (compiled inside its clones)
    cdef Py_ssize_t j
    if act == ACT_GELU:
        for j in range(n):
            z[j] = gelu_with_derivative(z[j], derivative + j)
    elif act == ACT_SILU:
        for j in range(n):
            z[j] = silu_with_derivative(z[j], derivative + j)
    elif act == ACT_MISH:
        for j in range(n):
            z[j] = mish_with_derivative(z[j], derivative + j)
    elif act == ACT_SOFTPLUS:
        for j in range(n):
            z[j] = softplus_with_derivative(z[j], derivative + j)


cdef inline void _block_exp_activation(floating *Z, Py_ssize_t n_rows, Py_ssize_t ld,
                                       Py_ssize_t n_out, int act) noexcept nogil:
    # exp_activation over a block of rows: one loop over the whole block when
    # its rows are adjacent
    cdef Py_ssize_t r
    if ld == n_out:
        exp_activation(Z, n_rows * n_out, act, NULL)
    else:
        for r in range(n_rows):
            exp_activation(Z + r * ld, n_out, act, NULL)


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


cdef inline void _block_add_bias(floating *Z, Py_ssize_t n_rows, Py_ssize_t n_out,
                                 const floating *b) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef floating *z
    for r in range(n_rows):
        z = Z + r * n_out
        for j in range(n_out):
            z[j] = z[j] + b[j]


cdef inline void hidden_activation(floating *Z, floating *derivative, Py_ssize_t n_rows,
                                   Py_ssize_t n_out, const floating *b, int act) noexcept nogil:
    """Training's hidden layer on ``n_rows`` adjacent rows: ``Z = act(Z + b)``
    in place, and OUT ``derivative = act'(Z + b)`` for the activations that
    keep it (``_keeps_derivative``; NULL otherwise)."""
    if derivative == NULL:
        bias_activation(Z, n_rows, n_out, n_out, b, act)
        return
    _block_add_bias(Z, n_rows, n_out, b)
    exp_activation(Z, n_rows * n_out, act, derivative)


cdef void activation_derivative(floating *D, const floating *A, const floating *K,
                                Py_ssize_t n_rows, Py_ssize_t ld, Py_ssize_t n,
                                int act) noexcept nogil:
    """In place ``D *= act'(z)`` on ``n_rows`` rows of ``n`` values spaced
    ``ld`` apart, from the activation's output ``A = act(z)`` or, for the
    activations that keep it, from ``K = act'(z)`` written by the forward
    pass (same layout; NULL for the others)."""
    cdef Py_ssize_t r, j
    cdef floating *d
    cdef const floating *a
    cdef const floating *k
    if act == ACT_IDENTITY:
        return
    if ld == n:
        # adjacent rows: one loop over the block
        n = n * n_rows
        n_rows = 1
    for r in range(n_rows):
        d = D + r * ld
        a = A + r * ld
        k = K + r * ld if K != NULL else NULL
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
        elif act == ACT_SELU:
            for j in range(n):
                d[j] = selu_derivative(d[j], a[j])
        elif _keeps_derivative(act):
            for j in range(n):
                d[j] = d[j] * k[j]
