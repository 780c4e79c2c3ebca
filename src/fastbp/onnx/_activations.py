"""The activation table: each fastbp activation name -> the ONNX nodes that compute it.

One entry per activation, hidden or output: a function ``(graph, x) -> y`` that adds
the nodes computing ``y = activation(x)`` elementwise (softmax: over each row) in the
model's dtype, through the builder interface of ``_graph.py``. A new activation is one
function and one entry in ``ACTIVATIONS``.

Every entry uses only operators that onnxruntime's CPU provider runs in both float and
double. onnxruntime (checked with 1.32) has no double kernel for Erf, Gelu, Selu,
Softplus, Elu, Softsign, HardSigmoid or ThresholdedRelu, and LeakyRelu takes its slope
as a float attribute (0.01 rounded to float32 is 0.00999999977 in a double graph), so
those are composed here from operators that have double kernels, with their constants
as tensors of the model dtype. onnxruntime also rewrites some patterns into fused
operators with float-only kernels (x * Sigmoid(x) into QuickGelu in 1.20): the tests run
every entry in both dtypes.
"""

import math

LEAKY_RELU_SLOPE = 0.01  # fastbp's leaky_relu: slope 0.01 below zero
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# erf(x) = sign(x) (1 - t exp(P(u) - s^2)), s = min(|x|, 6), t = 1 / (1 + s/2),
# u = (t - ERF_T_MIN) * 2 / (1 - ERF_T_MIN) - 1; P fitted by tools/fit_onnx_erf.py
# (max |error| on [-8, 8] against scipy.special.erf: 5.6e-16 in float64, 2.8e-7 in float32)
ERF_S_MAX = 6.0
ERF_T_MIN = 0.25
ERF_COEFFICIENTS = (  # of u**0, u**1, ..., u**20
    -0.501436725921194, 0.5153126870212877, 0.0055707619748814035, -0.02152364246556767,
    0.0004935317202409992, 0.00202876404741196, -0.00033021999469438424,
    -0.0001949455807534602, 8.14701235903783e-05, 9.023290698312674e-06,
    -1.3601199620981958e-05, 2.1174271223089737e-06, 1.409185317894401e-06,
    -6.941028963274695e-07, -8.486717741157911e-09, 1.0389419085003762e-07,
    -2.8512420004851175e-08, -7.495156543328513e-09, 5.491618449514099e-09,
    1.5411846715135704e-11, -4.3275078109381266e-10,
)


def erf(g, x):
    """erf from Abs, Min, Exp and arithmetic (onnxruntime's Erf is float-only)."""
    s = g.op("Min", [g.op("Abs", [x]), g.constant(ERF_S_MAX)])
    t = g.op("Reciprocal", [g.op("Add", [g.op("Mul", [s, g.constant(0.5)]),
                                         g.constant(1.0)])])
    u = g.op("Sub", [g.op("Mul", [g.op("Sub", [t, g.constant(ERF_T_MIN)]),
                                  g.constant(2.0 / (1.0 - ERF_T_MIN))]),
                     g.constant(1.0)])
    p = g.constant(ERF_COEFFICIENTS[-1])
    for c in ERF_COEFFICIENTS[-2::-1]:  # Horner's rule
        p = g.op("Add", [g.op("Mul", [p, u]), g.constant(c)])
    erfc = g.op("Mul", [t, g.op("Exp", [g.op("Sub", [p, g.op("Mul", [s, s])])])])
    return g.op("Mul", [g.op("Sign", [x]), g.op("Sub", [g.constant(1.0), erfc])])


def _identity(g, x):
    return x


def _logistic(g, x):
    return g.op("Sigmoid", [x])


def _tanh(g, x):
    return g.op("Tanh", [x])


def _relu(g, x):
    return g.op("Relu", [x])


def _leaky_relu(g, x):
    # max(x, 0.01 x) is x above zero and 0.01 x below
    return g.op("Max", [x, g.op("Mul", [x, g.constant(LEAKY_RELU_SLOPE)])])


def _softplus(g, x):
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): exp never overflows
    tail = g.op("Log", [g.op("Add", [g.constant(1.0),
                                     g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])])])
    return g.op("Add", [g.op("Relu", [x]), tail])


def _gelu(g, x):
    # the exact form, 0.5 x (1 + erf(x / sqrt(2)))
    erf_term = erf(g, g.op("Mul", [x, g.constant(math.sqrt(0.5))]))
    return g.op("Mul", [g.op("Mul", [x, g.constant(0.5)]),
                        g.op("Add", [erf_term, g.constant(1.0)])])


def _silu(g, x):
    # x / (1 + e^-x) (inf below -709 gives -0): onnxruntime 1.20 fuses the
    # x * Sigmoid(x) pattern into com.microsoft.QuickGelu, which has no double kernel
    return g.op("Div", [x, g.op("Add", [g.constant(1.0), g.op("Exp", [g.op("Neg", [x])])])])


def _selu(g, x):
    # scale (max(x, 0) + alpha (e^min(x, 0) - 1)): exp never overflows
    exp_part = g.op("Sub", [g.op("Exp", [g.op("Min", [x, g.constant(0.0)])]),
                            g.constant(1.0)])
    inner = g.op("Add", [g.op("Relu", [x]),
                         g.op("Mul", [exp_part, g.constant(SELU_ALPHA)])])
    return g.op("Mul", [inner, g.constant(SELU_SCALE)])


def _mish(g, x):
    return g.op("Mul", [x, g.op("Tanh", [_softplus(g, x)])])


def _softmax(g, x):
    # onnxruntime subtracts each row's maximum first: stable for large logits
    return g.op("Softmax", [x], axis=1)


def _exp(g, x):
    return g.op("Exp", [x])


# fastbp activation name -> function adding its nodes
ACTIVATIONS = {
    "identity": _identity,
    "logistic": _logistic,
    "tanh": _tanh,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "gelu": _gelu,
    "silu": _silu,
    "selu": _selu,
    "mish": _mish,
    "softplus": _softplus,
    "softmax": _softmax,  # output layer only
    "exp": _exp,          # output layer only (Poisson)
}
