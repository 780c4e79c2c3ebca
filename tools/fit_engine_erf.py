"""Fit the erf of fastbp's engine (``_math.pxi``: GELU's normal CDF).

    python tools/fit_engine_erf.py

prints the constants of ``_math.pxi``'s ``f_erf`` / ``_erfc_tail``:

* ``|x| < ERF_SMALL``: the Taylor series ``erf(x) = 2/sqrt(pi) sum_n (-1)^n
  x^(2n+1) / (n! (2n+1))``, n = 0..16 (the next term is below 1e-16 of erf(1));
* ``ERF_SMALL <= |x| < ERF_TAIL_END``: ``erfc(a) = t exp(P(u) - a**2)``,
  ``t = 1 / (1 + a / 2)``, ``u = (t - T_MIN) * 2 / (T_MAX - T_MIN) - 1``, P the
  least-squares Chebyshev fit of degree 16 of ``log(erfcx(a) / t)`` at Chebyshev
  points, converted to powers of u (the form of ``tools/fit_onnx_erf.py``, on
  the tail only, so that it is accurate relative to erfc);
* beyond ERF_TAIL_END erfc is taken as 0 (erfc(6) = 2e-17).

Then the result is checked against ``scipy.special.erf`` in ulps (float64).
"""

import math

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import erf, erfcx

ERF_SMALL = 1.0
ERF_TAIL_END = 6.0
T_MAX = 1.0 / (1.0 + 0.5 * ERF_SMALL)
T_MIN = 1.0 / (1.0 + 0.5 * ERF_TAIL_END)
TAIL_DEGREE = 16
SMALL_TERMS = 17


def fit_tail():
    n = 2000
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    t = (u + 1) / 2 * (T_MAX - T_MIN) + T_MIN
    a = (1 / t - 1) / 0.5
    return chebyshev.cheb2poly(chebyshev.chebfit(u, np.log(erfcx(a) / t), TAIL_DEGREE))


def small_coefficients():
    return [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
            for n in range(SMALL_TERMS)]


def evaluate(x, tail, small):
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    z = x * x
    p = small[-1]
    for c in small[-2::-1]:
        p = p * z + c
    near_zero = x * p
    s = np.minimum(np.maximum(a, ERF_SMALL), ERF_TAIL_END)
    t = 1 / (1 + 0.5 * s)
    u = (t - T_MIN) * (2 / (T_MAX - T_MIN)) - 1
    q = tail[-1]
    for c in tail[-2::-1]:
        q = q * u + c
    erfc = np.where(a >= ERF_TAIL_END, 0.0, t * np.exp(q - s * s))
    return np.where(a < ERF_SMALL, near_zero, np.sign(x) * (1 - erfc))


if __name__ == "__main__":
    tail = fit_tail()
    small = small_coefficients()
    print(f"T_MIN = {T_MIN!r}, T_MAX = {T_MAX!r}")
    print("tail (u**0, u**1, ...):")
    for c in tail:
        print(f"    {float(c)!r}")
    print("small (z**0, z**1, ...):")
    for c in small:
        print(f"    {c!r}")
    x = np.concatenate([np.linspace(-7, 7, 200_001), np.geomspace(1e-300, 7, 20_000)])
    x = np.concatenate([x, -x])
    ref = erf(x)
    ulps = np.abs(evaluate(x, tail, small) - ref) / np.spacing(np.abs(ref))
    print(f"# max error against scipy.special.erf: {ulps.max():.1f} ulp at x = {x[ulps.argmax()]!r}")
