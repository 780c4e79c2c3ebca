"""Fit the erfc of fastbp's engine (``_math.pxi``: erf, and GELU's normal CDF).

    python tools/fit_engine_erf.py

prints the constants of ``_math.pxi``'s ``_erfc`` and ``_erf_near_zero``:

* ``0 <= a < ERFC_END``: ``erfc(a) = exp(-a**2) t R(u)``, ``t = 1 / (1 + a / 2)``,
  ``u = (t - T_MIN) * 2 / (1 - T_MIN) - 1`` in [-1, 1], R the least-squares
  Chebyshev fit of degree 20 of ``erfcx(a) / t`` at Chebyshev points, converted
  to powers of u (every coefficient is below 1, so Horner's rule is well
  conditioned). Beyond ERFC_END erfc is 0 (erfc(6) = 2e-17). The form gives
  ``exp(-a**2)`` on its own: GELU's derivative needs it too (the normal density).
* ``|x| < 1``: erf's Taylor series ``2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))``,
  n = 0..16 (the next term is below 1e-16 of erf(1)); erf = 1 - erfc beyond.

Then both are checked against ``scipy.special`` in float64: erfc relative to
itself, erf in ulps.
"""

import math

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import erf, erfc, erfcx

ERFC_END = 6.0
T_MIN = 1.0 / (1.0 + 0.5 * ERFC_END)
DEGREE = 20
SERIES_TERMS = 17


def fit_erfcx():
    n = 3000
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    t = (u + 1) / 2 * (1 - T_MIN) + T_MIN
    a = (1 / t - 1) / 0.5
    return chebyshev.cheb2poly(chebyshev.chebfit(u, erfcx(a) / t, DEGREE))


def series_coefficients():
    return [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
            for n in range(SERIES_TERMS)]


def evaluate_erfc(a, coefficients):
    s = np.minimum(a, ERFC_END)
    t = 1 / (1 + 0.5 * s)
    u = (t - T_MIN) * (2 / (1 - T_MIN)) - 1
    r = coefficients[-1]
    for c in coefficients[-2::-1]:
        r = r * u + c
    return np.where(a >= ERFC_END, 0.0, np.exp(-s * s) * (t * r))


def evaluate_erf(x, coefficients, series):
    z = x * x
    p = series[-1]
    for c in series[-2::-1]:
        p = p * z + c
    a = np.abs(x)
    return np.where(a < 1, x * p, np.sign(x) * (1 - evaluate_erfc(a, coefficients)))


if __name__ == "__main__":
    coefficients = fit_erfcx()
    series = series_coefficients()
    print(f"T_MIN = {T_MIN!r}")
    print("R (u**0, u**1, ...):")
    for c in coefficients:
        print(f"    {float(c)!r}")
    print("series (z**0, z**1, ...):")
    for c in series:
        print(f"    {c!r}")
    a = np.linspace(0, 5.9, 100_001)
    relative = np.abs(evaluate_erfc(a, coefficients) - erfc(a)) / erfc(a)
    print(f"# max relative error of erfc on [0, 5.9]: {relative.max():.2e}")
    x = np.concatenate([np.linspace(-7, 7, 200_001), np.geomspace(1e-300, 7, 20_000)])
    x = np.concatenate([x, -x])
    ulps = np.abs(evaluate_erf(x, coefficients, series) - erf(x)) / np.spacing(np.abs(erf(x)))
    print(f"# max error of erf against scipy.special.erf: {ulps.max():.1f} ulp")
