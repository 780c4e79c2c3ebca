# Scalar maths and sums, one source for float and double.
#
# Notes
# -----
# * exp is the engine's own (``_exp``): branch-free (a polynomial, within 1
#   ulp), so that loops calling it vectorise, where libm's is a call per
#   value. tanh (``f_tanh``) is built on it; both are within 2 ulp of libm.
# * ``_pairwise_sum`` is numpy's summation order (a bias gradient equal to
#   numpy's to the last bit); ``_log_of_product`` sums logs of values in
#   [1, 2] as the log of running products (one log per 1000 values).
# * The smooth activations (gelu, silu, selu, mish, softplus) compute float
#   in float (``smooth_exp``, ``smooth_expm1``, ``smooth_log1p``,
#   ``_normal_cdf_single``: twice the lanes and shorter polynomials, each
#   value within 6 ulp); tanh, logistic and exp compute float in double and
#   round once, as the models saved since 0.1.0 were computed.
# * The scalar functions are ``inline``: they are compiled into the kernels
#   that carry FASTBP_VECTOR_CLONES, with those kernels' instruction sets;
#   ``_log_of_product`` carries the marker itself.

cdef union _Bits64:
    double d
    uint64_t u


cdef inline double _pow2(double n) noexcept nogil:
    # 2**n for an integer-valued n in [-1022, 1023], from its exponent bits
    # (n + 1023 lands in the low mantissa bits of n + 1023 + 1.5 * 2**52)
    cdef _Bits64 s
    s.d = n + (6755399441055744.0 + 1023.0)
    s.u = s.u << 52
    return s.d


cdef inline double _exp(double x) noexcept nogil:
    """exp within 0.96 ulp, branch-free so that loops calling it vectorise
    (libm's is a function call per value); overflow gives inf, underflow
    subnormals then 0, NaN stays NaN.

    ``x = n ln2 + r`` with ``|r| <= ln2 / 2`` (ln2 in two parts, the first
    exact in ``n ln2``); ``e**r = 1 + (r + r**2 P(r))`` with P the Taylor
    series up to r**11 / 13! (its remainder is below 2**-57), then times ``2**n``
    applied as two powers of two so that neither leaves the normal range.
    """
    cdef double n, n1, r, p
    x = -746.0 if x < -746.0 else x        # exp(-746) and exp(710) round to 0 and inf
    x = 710.0 if x > 710.0 else x          # (NaN passes through both)
    n = (x * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0  # round(x / ln2)
    r = x - n * 6.93145751953125e-1
    r = r - n * 1.42860682030941723212e-6
    p = 1.6059043836821613e-10
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    n1 = (n * 0.5 + 6755399441055744.0) - 6755399441055744.0
    return ((1.0 + (r + (r * r) * p)) * _pow2(n1)) * _pow2(n - n1)


cdef inline floating f_exp(floating x) noexcept nogil:
    # float: the double exp rounded (within half an ulp but for rare ties)
    if floating is float:
        return <float> _exp(<double> x)
    else:
        return _exp(x)

cdef inline floating f_tanh(floating x) noexcept nogil:
    """tanh in one exp (or a short rational) instead of libm's expm1-based
    tanh; within 2 ulp of it. Branch-free (both forms are computed, one is
    kept) so that loops calling it vectorise.

    |x| < 0.625: Cephes' rational approximation ``x + x z P(z) / Q(z)``,
    ``z = x**2`` (float: its polynomial); otherwise ``1 - 2 / (exp(2|x|) + 1)``
    with the sign of x, where no cancellation can occur (the result is at
    least 0.55 in magnitude); exp overflowing to inf gives exactly +-1.
    Zero (either sign) and NaN come back as they are.
    """
    cdef floating z, a, r, small
    a = x if x >= 0 else -x
    z = x * x
    if floating is float:
        small = ((((<float> -5.70498872745e-3 * z + <float> 2.06390887954e-2) * z
                   - <float> 5.37397155531e-2) * z + <float> 1.33314422036e-1) * z
                 - <float> 3.33332819422e-1) * z * x + x
    else:
        small = x + x * z * (((-9.64399179425052238628e-1 * z
                               - 9.92877231001918586564e1) * z
                              - 1.61468768441708447952e3)
                             / (((z + 1.12811678491632931402e2) * z
                                 + 2.23548839060100448583e3) * z
                                + 4.84406305325125486048e3))
    r = 1 - 2 / (f_exp(2 * a) + 1)
    r = r if x >= 0 else -r
    r = small if a < <floating> 0.625 else r
    # ``|``, not ``or``: a short-circuit is control flow and stops the loop
    # calling this from vectorising (NaN already comes out of ``r`` as NaN)
    return x if ((a == 0) | (a != a)) else r

cdef inline floating f_sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)

cdef inline floating f_eps(floating x) noexcept nogil:
    # machine epsilon of the dtype, the clip scikit-learn's log-losses use
    if floating is float:
        return 1.1920928955078125e-07
    else:
        return 2.220446049250313e-16


cdef floating _pairwise_sum(const floating *a, Py_ssize_t n) noexcept nogil:
    """``a[:n].sum()`` in numpy's order (its pairwise summation: eight
    running sums per block of up to 128 values, blocks halved recursively),
    so that one output's bias gradient is numpy's to the last bit."""
    cdef floating r0, r1, r2, r3, r4, r5, r6, r7, res
    cdef Py_ssize_t i, n2
    if n < 8:
        res = 0
        for i in range(n):
            res = res + a[i]
        return res
    if n > 128:
        n2 = n // 2
        n2 -= n2 % 8
        return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)
    r0 = a[0]; r1 = a[1]; r2 = a[2]; r3 = a[3]
    r4 = a[4]; r5 = a[5]; r6 = a[6]; r7 = a[7]
    i = 8
    while i < n - n % 8:
        r0 = r0 + a[i]; r1 = r1 + a[i + 1]; r2 = r2 + a[i + 2]; r3 = r3 + a[i + 3]
        r4 = r4 + a[i + 4]; r5 = r5 + a[i + 5]; r6 = r6 + a[i + 6]; r7 = r7 + a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res = res + a[i]
        i += 1
    return res


cdef double _log_of_product(const floating *x, Py_ssize_t n) noexcept nogil:
    """``sum(log(x[:n]))`` for x in [1, 2], as logs of products: eight running
    products (they vectorise), multiplied together and logged every 1000
    values, before they could overflow."""
    cdef double P[8]
    cdef double total = 0.0
    cdef Py_ssize_t i = 0, l, stop
    while i < n:
        stop = i + 1000 if i + 1000 < n else n
        for l in range(8):
            P[l] = 1.0
        while i + 8 <= stop:
            for l in range(8):
                P[l] = P[l] * x[i + l]
            i += 8
        for l in range(stop - i):
            P[l] = P[l] * x[i + l]
        i = stop
        total += log(((P[0] * P[1]) * (P[2] * P[3])) * ((P[4] * P[5]) * (P[6] * P[7])))
    return total


# ---------------------------------------------------------------------------
# expm1, log1p and erf for the smooth activations (double) and the smoothed
# log-losses: branch-free (both branches computed, one kept) so that the
# loops calling them vectorise; float computes in double and rounds once.
# ---------------------------------------------------------------------------

cdef inline double _expm1_nonpositive(double x) noexcept nogil:
    """exp(x) - 1 for x <= 0 within 2 ulp: the Taylor series ``x (1 + x/2! +
    ... + x**14/15!)`` above -0.5 (no cancellation), ``exp(x) - 1`` below."""
    cdef double p = 7.647163731819816e-13
    p = p * x + 1.1470745597729725e-11
    p = p * x + 1.6059043836821613e-10
    p = p * x + 2.08767569878681e-09
    p = p * x + 2.505210838544172e-08
    p = p * x + 2.755731922398589e-07
    p = p * x + 2.7557319223985893e-06
    p = p * x + 2.48015873015873e-05
    p = p * x + 0.0001984126984126984
    p = p * x + 0.001388888888888889
    p = p * x + 0.008333333333333333
    p = p * x + 0.041666666666666664
    p = p * x + 0.16666666666666666
    p = p * x + 0.5
    p = p * x + 1.0
    return x * p if x > -0.5 else _exp(x) - 1.0

cdef inline floating f_expm1(floating x) noexcept nogil:
    # exp(x) - 1 for x <= 0 (selu below zero, softplus' derivative)
    return <floating> _expm1_nonpositive(<double> x)


cdef inline double _log1p_unit(double x) noexcept nogil:
    """log(1 + x) for x in [0, 1] within 3 ulp: ``2 atanh(s)`` with ``s = x /
    (2 + x)`` in [0, 1/3], its series ``2 (s + s**3/3 + ... + s**29/29)``
    (the next term is below 2**-56 of the sum)."""
    cdef double s = x / (2.0 + x)
    cdef double z = s * s
    cdef double p = 0.06896551724137931
    p = p * z + 0.07407407407407407
    p = p * z + 0.08
    p = p * z + 0.08695652173913043
    p = p * z + 0.09523809523809523
    p = p * z + 0.10526315789473684
    p = p * z + 0.11764705882352941
    p = p * z + 0.13333333333333333
    p = p * z + 0.15384615384615385
    p = p * z + 0.18181818181818182
    p = p * z + 0.2222222222222222
    p = p * z + 0.2857142857142857
    p = p * z + 0.4
    p = p * z + 0.6666666666666666
    p = p * z + 2.0
    return s * p

cdef inline floating f_log1p(floating x) noexcept nogil:
    # log(1 + x) for x in [0, 1]: log(1 + exp(-|z|)) in softplus and the log-losses
    return <floating> _log1p_unit(<double> x)


# ---------------------------------------------------------------------------
# The smooth activations' float path (gelu, silu, selu, mish, softplus): float
# in float arithmetic, twice the lanes of double and short polynomials, each
# function within the ulps its docstring gives (measured against float64 on
# dense grids); double as above. (tanh, logistic and exp keep the double exp
# rounded once: their float bits are those of saved models.)
# ---------------------------------------------------------------------------

cdef union _Bits32:
    float f
    uint32_t u


cdef inline float _pow2_single(float n) noexcept nogil:
    # 2**n for an integer-valued n in [-126, 127], from its exponent bits
    cdef _Bits32 s
    s.f = n + <float> (12582912.0 + 127.0)
    s.u = s.u << 23
    return s.f


cdef inline float _exp_reduced_single(float n, float r) noexcept nogil:
    # e**r 2**n for |r| <= ln2 / 2 and an integer-valued n in [-252, 254]:
    # Cephes' expf polynomial (4e-9 relative), then 2**n as two powers of two
    # so that neither leaves the normal range
    cdef float p, n1
    p = <float> 1.9875691500e-4
    p = p * r + <float> 1.3981999507e-3
    p = p * r + <float> 8.3334519073e-3
    p = p * r + <float> 4.1665795894e-2
    p = p * r + <float> 1.6666665459e-1
    p = p * r + <float> 5.0000001201e-1
    n1 = (n * <float> 0.5 + <float> 12582912.0) - <float> 12582912.0
    return ((((p * (r * r)) + r) + <float> 1.0) * _pow2_single(n1)) * _pow2_single(n - n1)


cdef inline float _exp_single(float x) noexcept nogil:
    """exp in float arithmetic within 1 ulp, branch-free: ``x = n ln2 + r``
    (ln2 in two parts, the first exact in ``n ln2``), Cephes' expf polynomial
    for ``e**r`` (4e-9 relative), times ``2**n`` as two powers of two;
    overflow gives inf, underflow subnormals then 0, NaN stays NaN."""
    cdef float n, r
    x = <float> -104.0 if x < <float> -104.0 else x
    x = <float> 89.0 if x > <float> 89.0 else x
    n = (x * <float> 1.4426950408889634 + <float> 12582912.0) - <float> 12582912.0
    r = x - n * <float> 0.693359375
    r = r - n * <float> -2.12194440e-4
    return _exp_reduced_single(n, r)


cdef inline float _expm1_nonpositive_single(float x) noexcept nogil:
    """exp(x) - 1 for x <= 0 within 2 ulp: ``x (1 + x/2! + ... + x**8/9!)``
    above -0.35 (no cancellation), ``exp(x) - 1`` below."""
    cdef float p = <float> 2.755731922398589e-06
    p = p * x + <float> 2.48015873015873e-05
    p = p * x + <float> 0.0001984126984126984
    p = p * x + <float> 0.001388888888888889
    p = p * x + <float> 0.008333333333333333
    p = p * x + <float> 0.041666666666666664
    p = p * x + <float> 0.16666666666666666
    p = p * x + <float> 0.5
    p = p * x + <float> 1.0
    return x * p if x > <float> -0.35 else _exp_single(x) - <float> 1.0


cdef inline float _log1p_unit_single(float x) noexcept nogil:
    """log(1 + x) for x in [0, 1] within 2 ulp: ``2 atanh(s)``, ``s = x / (2 +
    x)`` in [0, 1/3], its series to s**15/15 (the next term is below 2**-27
    of the sum)."""
    cdef float s = x / (<float> 2.0 + x)
    cdef float z = s * s
    cdef float p = <float> 0.13333333333333333
    p = p * z + <float> 0.15384615384615385
    p = p * z + <float> 0.18181818181818182
    p = p * z + <float> 0.2222222222222222
    p = p * z + <float> 0.2857142857142857
    p = p * z + <float> 0.4
    p = p * z + <float> 0.6666666666666666
    return s * <float> 2.0 + (s * z) * p


cdef inline float _exp_neg_half_square_single(float z) noexcept nogil:
    """exp(-z**2 / 2) within 1.2 ulp for |z| <= 14.5 (0 beyond): z**2 / 2 as
    hi + lo, hi exact (z's high 12 bits squared), so that z**2's rounding does
    not reach the result (_exp_single of the rounded -z*z/2 is 64 ulp off at
    worst), and _exp_single's range reduction applied to -hi first (exact),
    then to lo."""
    cdef _Bits32 s
    cdef float zh, zl, hi, lo, n, r
    z = <float> -14.5 if z < <float> -14.5 else z
    z = <float> 14.5 if z > <float> 14.5 else z
    s.f = z
    s.u = s.u & <uint32_t> 0xFFFFF000
    zh = s.f
    zl = z - zh
    hi = (<float> 0.5 * zh) * zh
    lo = (<float> 0.5 * zl) * (z + zh)
    n = ((hi + lo) * <float> -1.4426950408889634 + <float> 12582912.0) - <float> 12582912.0
    r = ((-hi - n * <float> 0.693359375) - lo) - n * <float> -2.12194440e-4
    return _exp_reduced_single(n, r)


cdef inline float _normal_cdf_single(float z, float *density) noexcept nogil:
    """Phi(z) and OUT ``density`` = phi(z) as _normal_cdf computes them, in
    float: ``erfc(a) = exp(-a**2) t R(u)`` with R of degree 10
    (tools/fit_engine_erf.py), exp(-a**2) = exp(-z**2 / 2) from z itself.
    Within 6 ulp of Phi (relative in the lower tail; 0 below z = -6 sqrt 2)."""
    cdef float a = (z if z >= 0 else -z) * <float> 0.7071067811865476
    cdef float s = <float> 6.0 if a > <float> 6.0 else a
    cdef float t = <float> 1.0 / (<float> 1.0 + <float> 0.5 * s)
    cdef float u = (t - <float> 0.25) * <float> 2.6666666666666665 - <float> 1.0
    cdef float r = <float> 9.657006170749077e-07
    cdef float gauss = _exp_neg_half_square_single(z)
    cdef float half_erfc
    r = r * u + <float> 4.510187685403727e-06
    r = r * u - <float> 2.2652117086961027e-05
    r = r * u - <float> 2.138237473390333e-05
    r = r * u + <float> 0.0003071917396093965
    r = r * u - <float> 0.00015633454820492844
    r = r * u - <float> 0.004181857194759045
    r = r * u + <float> 0.0025158656327615827
    r = r * u + <float> 0.08378962039178617
    r = r * u + <float> 0.31210420614583784
    r = r * u + <float> 0.6056598670464738
    half_erfc = <float> 0.0 if a >= <float> 6.0 else <float> 0.5 * (gauss * (t * r))
    density[0] = <float> 0.3989422804014327 * gauss
    return <float> 1.0 - half_erfc if z > 0 else half_erfc


cdef inline floating smooth_exp(floating x) noexcept nogil:
    # exp for the smooth activations
    if floating is float:
        return _exp_single(x)
    else:
        return _exp(x)


cdef inline floating smooth_expm1(floating x) noexcept nogil:
    # exp(x) - 1 for x <= 0 (selu below zero)
    if floating is float:
        return _expm1_nonpositive_single(x)
    else:
        return _expm1_nonpositive(x)


cdef inline floating smooth_log1p(floating x) noexcept nogil:
    # log(1 + x) for x in [0, 1] (softplus)
    if floating is float:
        return _log1p_unit_single(x)
    else:
        return _log1p_unit(x)


cdef inline double _erf_near_zero(double x) noexcept nogil:
    # erf(x) for |x| <= 1: its Taylor series to x**33 (tools/fit_engine_erf.py)
    cdef double z = x * x
    cdef double p = 1.6342614095367152e-15
    p = p * z - 2.7835162072109212e-14
    p = p * z + 4.4632242632864775e-13
    p = p * z - 6.7113668551641105e-12
    p = p * z + 9.422759064650411e-11
    p = p * z - 1.2290555301717926e-09
    p = p * z + 1.4807192815879218e-08
    p = p * z - 1.6365844691234924e-07
    p = p * z + 1.6462114365889246e-06
    p = p * z - 1.492565035840625e-05
    p = p * z + 0.00012055332981789664
    p = p * z - 0.0008548327023450852
    p = p * z + 0.005223977625442188
    p = p * z - 0.026866170645131252
    p = p * z + 0.11283791670955126
    p = p * z - 0.37612638903183754
    p = p * z + 1.1283791670955126
    return x * p


cdef inline double _erfc_nonnegative(double a, double gauss) noexcept nogil:
    """erfc(a) for a >= 0, from ``gauss = exp(-a**2)``: ``gauss t R(u)`` with
    ``t = 1 / (1 + a/2)``, u = t mapped to [-1, 1] and R the polynomial fit
    of ``erfcx(a) / t`` on [0, 6] (tools/fit_engine_erf.py; within 2e-15
    relative, plus a**2's rounding); 0 from 6 on (erfc(6) = 2e-17)."""
    cdef double s = 6.0 if a > 6.0 else a
    cdef double t = 1.0 / (1.0 + 0.5 * s)
    cdef double u = (t - 0.25) * (2.0 / 0.75) - 1.0
    cdef double r = -5.672319975267315e-11
    r = r * u + 6.882920902563187e-11
    r = r * u + 4.145959269426987e-10
    r = r * u - 1.3592317050086894e-09
    r = r * u + 9.474091264174987e-10
    r = r * u + 7.1158123756413735e-09
    r = r * u - 3.0810311439819203e-08
    r = r * u + 3.4329716546707826e-08
    r = r * u + 1.7292467706505908e-07
    r = r * u - 8.174972340800731e-07
    r = r * u + 6.09773535779149e-07
    r = r * u + 6.552213700058618e-06
    r = r * u - 2.2310047746254997e-05
    r = r * u - 2.3350381311564275e-05
    r = r * u + 0.00030702903844790106
    r = r * u - 0.00015549033973177496
    r = r * u - 0.004181821079126598
    r = r * u + 0.002515716718928754
    r = r * u + 0.08378961740953482
    r = r * u + 0.3121042135294455
    r = r * u + 0.6056598670867839
    return 0.0 if a >= 6.0 else gauss * (t * r)


cdef inline double _erf(double x) noexcept nogil:
    """erf within 3 ulp (of scipy's), branch-free: the series for |x| < 1,
    ``sign(x) (1 - erfc(|x|))`` beyond. NaN stays NaN."""
    cdef double a = x if x >= 0 else -x
    cdef double clipped = x if a < 1.0 else (1.0 if x > 0 else -1.0)
    cdef double tail = 1.0 - _erfc_nonnegative(a, _exp(-(a * a)))
    return _erf_near_zero(clipped) if a < 1.0 else (tail if x > 0 else -tail)

cdef inline floating f_erf(floating x) noexcept nogil:
    return <floating> _erf(<double> x)


cdef inline double _normal_cdf(double z, double *density) noexcept nogil:
    """Phi(z) = erfc(-z / sqrt 2) / 2, accurate relative to Phi in the lower
    tail (no 1 - erf cancellation), within 2e-15 of it elsewhere; OUT
    ``density`` = the normal density phi(z), which shares its exponential."""
    cdef double x = z * 0.7071067811865476
    cdef double a = x if x >= 0 else -x
    cdef double gauss = _exp(-(a * a))
    cdef double half_erfc = 0.5 * _erfc_nonnegative(a, gauss)
    density[0] = 0.3989422804014327 * gauss
    return 1.0 - half_erfc if x > 0 else half_erfc
