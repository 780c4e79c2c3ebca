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

The float path of GELU (``_normal_cdf_single``) uses the same form with a fit of
degree DEGREE_SINGLE, evaluated in float32 arithmetic: its error there is the
rounding of t and u (~3e-7 relative), which a higher degree does not lower.
"""

import math

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import erf, erfc, erfcx

ERFC_END = 6.0
T_MIN = 1.0 / (1.0 + 0.5 * ERFC_END)
DEGREE = 20
DEGREE_SINGLE = 10
SERIES_TERMS = 17


def fit_erfcx(degree=DEGREE):
    n = 3000
    u = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    t = (u + 1) / 2 * (1 - T_MIN) + T_MIN
    a = (1 / t - 1) / 0.5
    return chebyshev.cheb2poly(chebyshev.chebfit(u, erfcx(a) / t, degree))


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


def evaluate_erfcx_single(a, coefficients):
    """``t R(u)`` (= erfcx(a)) as the engine's float path computes it."""
    f = np.float32
    a = np.minimum(np.asarray(a, dtype=f), f(ERFC_END))
    t = f(1) / (f(1) + f(0.5) * a)
    u = (t - f(T_MIN)) * f(2 / (1 - T_MIN)) - f(1)
    c = np.asarray(coefficients, dtype=f)
    r = c[-1]
    for k in c[-2::-1]:
        r = r * u + k
    return t * r


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
    single = fit_erfcx(DEGREE_SINGLE)
    print(f"R of the float path, degree {DEGREE_SINGLE} (u**0, u**1, ...):")
    for c in single:
        print(f"    {float(c)!r}")
    a = np.linspace(0, 5.999, 200_001).astype(np.float32)
    reference = erfcx(a.astype(np.float64))
    relative = np.abs(evaluate_erfcx_single(a, single) - reference) / reference
    print(f"# max relative error of the float path's erfcx on [0, 6): {relative.max():.2e}")
