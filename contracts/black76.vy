# pragma version ~=0.4.3
"""
@title Black-76 prices and Greeks of European options, in integer WAD math
@notice Stateless. A European, cash-settled call or put on a forward `F`
        (USD per unit, WAD) struck at `K` (WAD), with annualised implied vol
        `sigma` (WAD) and `tau` seconds to expiry, with no discounting (the
        option settles in the cash asset at expiry, which earns nothing):

            s  = sigma * sqrt(tau / YEAR)        m = ln(F / K)
            d1 = m / s + s / 2                   d2 = d1 - s
            call = F N(d1) - K N(d2)             put = K N(-d2) - F N(-d1)
            delta = N(d1) (call), N(d1) - 1 (put)
            gamma = n(d1) / (F s)                vega  = F n(d1) sqrt(tau / YEAR)
            theta = -F n(d1) sigma / (2 sqrt(tau / YEAR))    (per year)

        Every value comes from one d1 / d2 and one exponential: n(d1) and
        n(d2) are tied by F n(d1) = K n(d2), so the density of the smaller
        |d| is computed (snekmate `wad_exp`) and the other one derived by a
        factor below 1. N is Abramowitz & Stegun 26.2.17 (a degree-5
        polynomial in t = 1 / (1 + p|x|) times n(x)), whose absolute error is
        below 7.5e-8 for every x; the integer steps add a few wei. So the
        central price is within `(F + K) * PRICE_ERR / WAD + PRICE_ERR_WEI`
        of the exact Black-76 value, and `_price(..., roundup)` moves it by
        that bound: rounded up it is never below the exact value (the value
        of a short leg for margin), rounded down never above it (a long leg).
        Both stay within the no-arbitrage range [intrinsic, F] (call) or
        [intrinsic, K] (put).
@custom:security Inputs outside the domain (constants.MIN_VOL .. MAX_VOL,
        1 s .. MAX_OPTION_TIME, prices from MIN_OPTION_PRICE to MAX_PRICE,
        F / K within MIN_MONEYNESS .. MAX_MONEYNESS) revert with a
        "black76:" message; inside it no step can overflow (bounds beside
        each product). An expired option (tau = 0) is not priced here: it
        is worth its intrinsic value against the settlement price.
"""

from snekmate.utils import math

from . import constants

# Abramowitz & Stegun 26.2.17, WAD.
P: constant(int256) = 231_641_900_000_000_000
B1: constant(int256) = 319_381_530_000_000_000
B2: constant(int256) = -356_563_782_000_000_000
B3: constant(int256) = 1_781_477_937_000_000_000
B4: constant(int256) = -1_821_255_978_000_000_000
B5: constant(int256) = 1_330_274_429_000_000_000
# 1 / sqrt(2 pi), WAD (truncated).
INV_SQRT_2PI: constant(int256) = 398_942_280_401_432_677
# Beyond |x| = 10 the density is below 1 wei (exp(-50) / 2.5 < 1e-22):
# returned as 0 without squaring x.
PDF_CUTOFF: constant(int256) = 10 * 10**18
# The price bound: 7.5e-8 from the CDF approximation plus 1e-9 for the
# integer steps, per unit of F + K, and a few wei of truncation.
PRICE_ERR: constant(uint256) = 76_000_000_000
PRICE_ERR_WEI: constant(uint256) = 4
# The delta bound: N(d1) within 7.5e-8 of the exact CDF, plus 1e-9 for the
# integer steps (d1's own error moves N by less), WAD.
DELTA_ERR: constant(uint256) = 76_000_000_000


struct Valuation:
    # Central price, USD per unit (WAD): within the bound of the exact value.
    price: uint256
    # dV/dF, WAD: N(d1) for a call, N(d1) - 1 for a put.
    delta: int256
    # d2V/dF2, WAD per USD: the same for a call and a put.
    gamma: uint256
    # dV/dsigma, USD per unit per 1.0 (100 vol points), WAD.
    vega: uint256
    # dV/dt, USD per unit per year, WAD (never positive at zero rates).
    theta: int256


struct D:
    # d1, d2, WAD.
    d1: int256
    d2: int256
    # s = sigma sqrt(tau / YEAR) and sqrt(tau / YEAR), WAD.
    s: int256
    sqrt_t: int256
    # n(d1), n(d2), WAD.
    n1: int256
    n2: int256


@internal
@pure
def _check(f: uint256, k: uint256, sigma: uint256, tau: uint256):
    """
    @dev Refuses every input outside the domain with a clear error.
    """
    assert tau != 0, "black76: expired"
    assert tau <= constants.MAX_OPTION_TIME, "black76: expiry too far"
    assert sigma >= constants.MIN_VOL, "black76: vol too low"
    assert sigma <= constants.MAX_VOL, "black76: vol too high"
    assert (
        f >= constants.MIN_OPTION_PRICE and f <= constants.MAX_PRICE
    ), "black76: bad forward"
    assert (
        k >= constants.MIN_OPTION_PRICE and k <= constants.MAX_PRICE
    ), "black76: bad strike"
    # f < 2**100, so f * WAD < 2**160.
    ratio: uint256 = f * constants.WAD // k
    assert (
        ratio >= constants.MIN_MONEYNESS and ratio <= constants.MAX_MONEYNESS
    ), "black76: moneyness out of range"


@internal
@pure
def _pdf(x: int256) -> int256:
    """
    @dev n(x) = exp(-x^2 / 2) / sqrt(2 pi), WAD, truncated.
    """
    if x >= PDF_CUTOFF or x <= -PDF_CUTOFF:
        return 0
    # |x| < 10**19: x * x < 10**38, and the exponential is at most WAD, so
    # neither product can overflow.
    e: int256 = math._wad_exp(-unsafe_div(unsafe_mul(x, x), 2 * constants.IWAD))
    return unsafe_div(unsafe_mul(e, INV_SQRT_2PI), constants.IWAD)


@internal
@pure
def _cdf(x: int256, pdf: int256) -> int256:
    """
    @dev N(x), WAD, given pdf = n(x): Q(|x|) = n(x) * poly(t) with
         t = 1 / (1 + p|x|), and N(x) = 1 - Q(|x|) for x >= 0, Q(|x|)
         otherwise. Clamped to [0, WAD]. |x| is bounded by the domain
         (below 10**27), so p|x| and every Horner product stay below 2**200.
    """
    ax: int256 = abs(x)
    # ax < 10**27: P * ax < 2**148; the divisor is at least WAD.
    t: int256 = unsafe_div(
        constants.IWAD * constants.IWAD,
        unsafe_add(
            constants.IWAD, unsafe_div(unsafe_mul(P, ax), constants.IWAD)
        ),
    )
    # Horner in WAD: 0 < t <= WAD and every partial sum is below 4 WAD in
    # magnitude, so no product exceeds 2**125.
    acc: int256 = unsafe_add(unsafe_div(unsafe_mul(B5, t), constants.IWAD), B4)
    acc = unsafe_add(unsafe_div(unsafe_mul(acc, t), constants.IWAD), B3)
    acc = unsafe_add(unsafe_div(unsafe_mul(acc, t), constants.IWAD), B2)
    acc = unsafe_add(unsafe_div(unsafe_mul(acc, t), constants.IWAD), B1)
    acc = unsafe_div(unsafe_mul(acc, t), constants.IWAD)
    # pdf <= 0.4 WAD.
    q: int256 = min(
        max(unsafe_div(unsafe_mul(pdf, acc), constants.IWAD), 0), constants.IWAD
    )
    if x >= 0:
        return unsafe_sub(constants.IWAD, q)
    return q


@internal
@pure
def _sqrt_t(tau: uint256) -> int256:
    """
    @dev sqrt(tau / YEAR), WAD, for a checked tau.
    """
    # tau < 2**27 and the year fraction below 4 WAD.
    t: uint256 = tau * constants.WAD // constants.YEAR
    return convert(isqrt(t * constants.WAD), int256)


@internal
@pure
def _moneyness(f: uint256, k: uint256) -> int256:
    """
    @dev ln(F / K), WAD, for checked F and K.
    """
    return math._wad_ln(convert(f * constants.WAD // k, int256))


@internal
@pure
def _d(f: uint256, k: uint256, sigma: uint256, m: int256, sqrt_t: int256) -> D:
    """
    @dev d1, d2, s, sqrt(tau / YEAR) and both densities, for checked inputs,
         given m = _moneyness(f, k) and sqrt_t = _sqrt_t(tau) (a caller
         valuing one option at several prices and vols computes each once).
    """
    # sigma <= 5 WAD, sqrt_t <= 2 WAD: s <= 10 WAD; tau >= 1 s gives
    # sqrt_t >= 1.7e14 and s >= 1.7e12 (sigma >= 1e16).
    s: int256 = convert(sigma, int256) * sqrt_t // constants.IWAD
    # |m| <= ln(1e4) < 10 WAD: m * WAD < 2**127.
    d1: int256 = m * constants.IWAD // s + s // 2
    d2: int256 = d1 - s
    n1: int256 = 0
    n2: int256 = 0
    if m >= 0:
        # |d2| <= |d1|: n(d1) = n(d2) * K / F with K / F <= 1.
        n2 = self._pdf(d2)
        n1 = n2 * convert(k, int256) // convert(f, int256)
    else:
        n1 = self._pdf(d1)
        n2 = n1 * convert(f, int256) // convert(k, int256)
    return D(d1=d1, d2=d2, s=s, sqrt_t=sqrt_t, n1=n1, n2=n2)


@internal
@pure
def _central(f: uint256, k: uint256, is_call: bool, d: D) -> (uint256, int256):
    """
    @dev (central price clamped to the no-arbitrage range, N(d1)).
    """
    c1: int256 = self._cdf(d.d1, d.n1)
    c2: int256 = self._cdf(d.d2, d.n2)
    fi: int256 = convert(f, int256)
    ki: int256 = convert(k, int256)
    # F, K < 2**100 and N <= WAD: each product below 2**160.
    v: int256 = 0
    lo: int256 = 0
    hi: int256 = 0
    if is_call:
        v = (fi * c1 - ki * c2) // constants.IWAD
        lo = max(fi - ki, 0)
        hi = fi
    else:
        v = (
            ki * (constants.IWAD - c2) - fi * (constants.IWAD - c1)
        ) // constants.IWAD
        lo = max(ki - fi, 0)
        hi = ki
    return convert(min(max(v, lo), hi), uint256), c1


@internal
@pure
def _err(f: uint256, k: uint256) -> uint256:
    """
    @dev The price bound, rounded up: (F + K) * PRICE_ERR / WAD + PRICE_ERR_WEI.
    """
    return math._ceil_div((f + k) * PRICE_ERR, constants.WAD) + PRICE_ERR_WEI


@internal
@pure
def _price(
    f: uint256,
    k: uint256,
    sigma: uint256,
    tau: uint256,
    is_call: bool,
    roundup: bool,
) -> uint256:
    """
    @dev The option's value per unit, WAD. roundup: never below the exact
         Black-76 value (short legs); otherwise never above it (long legs).
         Always within [intrinsic, F] (call) or [intrinsic, K] (put).
    """
    v: uint256 = 0
    delta: int256 = 0
    v, delta = self._price_delta(f, k, sigma, tau, is_call, roundup)
    return v


@internal
@pure
def _price_delta(
    f: uint256,
    k: uint256,
    sigma: uint256,
    tau: uint256,
    is_call: bool,
    roundup: bool,
) -> (uint256, int256):
    """
    @dev `_price` and the delta from the same d1, WAD: within DELTA_ERR of
         the exact delta.
    """
    self._check(f, k, sigma, tau)
    return self._price_delta_at(
        f, k, sigma, self._moneyness(f, k), self._sqrt_t(tau), is_call, roundup
    )


@internal
@pure
def _price_delta_at(
    f: uint256,
    k: uint256,
    sigma: uint256,
    m: int256,
    sqrt_t: int256,
    is_call: bool,
    roundup: bool,
) -> (uint256, int256):
    """
    @dev `_price_delta` for inputs the caller has checked (`_check`), given
         m = _moneyness(f, k) and sqrt_t = _sqrt_t(tau).
    """
    d: D = self._d(f, k, sigma, m, sqrt_t)
    v: uint256 = 0
    c1: int256 = 0
    v, c1 = self._central(f, k, is_call, d)
    delta: int256 = c1
    if not is_call:
        delta = c1 - constants.IWAD
    e: uint256 = self._err(f, k)
    if roundup:
        cap: uint256 = k
        if is_call:
            cap = f
        return min(v + e, cap), delta
    intrinsic: uint256 = 0
    if is_call and f > k:
        intrinsic = f - k
    elif not is_call and k > f:
        intrinsic = k - f
    if v > intrinsic + e:
        return v - e, delta
    return intrinsic, delta


@internal
@pure
def _valuation(
    f: uint256, k: uint256, sigma: uint256, tau: uint256, is_call: bool
) -> Valuation:
    """
    @dev Central price, delta, gamma, vega and theta from one d1 / d2.
         Greeks truncate towards zero.
    """
    self._check(f, k, sigma, tau)
    d: D = self._d(f, k, sigma, self._moneyness(f, k), self._sqrt_t(tau))
    v: uint256 = 0
    c1: int256 = 0
    v, c1 = self._central(f, k, is_call, d)
    delta: int256 = c1
    if not is_call:
        delta = c1 - constants.IWAD
    fi: int256 = convert(f, int256)
    # F n(d1) < 2**100 * 0.4 WAD: the USD density, WAD.
    fn: int256 = fi * d.n1 // constants.IWAD
    # n1 <= 0.4 WAD: n1 * WAD**2 < 2**119; F * s < 2**168.
    gamma: int256 = d.n1 * constants.IWAD * constants.IWAD // (fi * d.s)
    vega: int256 = fn * d.sqrt_t // constants.IWAD
    # F n(d1) * sigma < 2**100 * 2 WAD**2 / WAD.
    theta: int256 = -(fn * convert(sigma, int256) // (2 * d.sqrt_t))
    return Valuation(
        price=v,
        delta=delta,
        gamma=convert(gamma, uint256),
        vega=convert(vega, uint256),
        theta=theta,
    )
