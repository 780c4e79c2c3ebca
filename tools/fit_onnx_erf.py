"""Fit the erf used by fastbp.onnx's GELU (onnxruntime has no double Erf kernel).

    python tools/fit_onnx_erf.py

prints the constants of ``fastbp/onnx/_activations.py``: for ``s = min(|x|, S_MAX)``
and ``t = 1 / (1 + s / 2)``,

    erf(x) = sign(x) * (1 - t * exp(P(u) - s**2)),   u = (t - T_MIN) * 2 / (1 - T_MIN) - 1

where ``P`` is a degree-20 polynomial in ``u`` in [-1, 1] (the form of Numerical
Recipes' ``erfcc``, refitted here to double precision): the least-squares Chebyshev fit
of ``log(erfcx(s) / t)`` at Chebyshev points, converted to powers of ``u`` (every
coefficient is below 1 in magnitude, so Horner's rule is well conditioned in float32
too). erf(6) is 1 in double (erfc(6) = 2e-17), hence the clamp at ``S_MAX = 6``.
Then the fit is checked against ``scipy.special.erf`` in float64 and float32.
"""

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import erf, erfcx

S_MAX = 6.0
T_MIN = 1.0 / (1.0 + 0.5 * S_MAX)
DEGREE = 20


def fit():
    n = 4000
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    t = (u + 1) / 2 * (1 - T_MIN) + T_MIN
    s = (1 / t - 1) / 0.5
    return chebyshev.cheb2poly(chebyshev.chebfit(u, np.log(erfcx(s) / t), DEGREE))


def evaluate(x, coefficients, dtype):
    x = np.asarray(x, dtype=dtype)
    s = np.minimum(np.abs(x), dtype(S_MAX))
    t = dtype(1) / (dtype(1) + dtype(0.5) * s)
    u = (t - dtype(T_MIN)) * dtype(2 / (1 - T_MIN)) - dtype(1)
    p = dtype(coefficients[-1])
    for c in coefficients[-2::-1]:
        p = p * u + dtype(c)
    return np.sign(x) * (dtype(1) - t * np.exp(p - s * s))


if __name__ == "__main__":
    coefficients = fit()
    print(f"T_MIN = {T_MIN!r}")
    print("COEFFICIENTS = (  # of u**0, u**1, ...")
    for c in coefficients:
        print(f"    {float(c)!r},")
    print(")")
    x = np.linspace(-8, 8, 400_001)
    for dtype in (np.float64, np.float32):
        error = np.abs(evaluate(x, coefficients, dtype).astype(np.float64) - erf(x)).max()
        print(f"# max |error| on [-8, 8], {dtype.__name__}: {error:.2e}")
