"""European options: the twin of ``contracts/black76.vy`` and vectorised Black-76.

Two implementations of one model (``docs/ARCHITECTURE.md``, "Options: pricing module"):

- :func:`price_exact` / :func:`valuation_exact` on Python ints reproduce the contract's
  integer arithmetic step by step (snekmate's ``wad_ln`` / ``wad_exp``, Vyper's ``isqrt``,
  the Abramowitz & Stegun normal CDF, every truncation), so they agree with the module to
  the wei; they refuse what the module refuses, with the same messages.
- :func:`black76` is the float64 fast path (numpy, scipy's ``ndtr``): prices and Greeks of
  millions of positions at once, the full revaluation risk checks are measured against.

Units as on chain: forward and strike USD per unit (WAD for the exact twin, floats for
:func:`black76`), vol annualised (WAD / float), time to expiry in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import isqrt
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from offchain_risk.models.margin import RiskParams, margin_numerators, pad_scenarios
from offchain_risk.units import (
    MAX_MONEYNESS,
    MAX_OPTION_TIME,
    MAX_PRICE,
    MAX_SCENARIOS,
    MAX_VOL,
    MIN_MONEYNESS,
    MIN_OPTION_PRICE,
    MIN_VOL,
    OPTION_ID,
    SHOCKS_PER_WORD,
    VOL_FLOOR,
    VOL_TENOR,
    WAD,
    WAD_BPS,
    YEAR,
)

# contracts/black76.vy
P = 231_641_900_000_000_000
B1 = 319_381_530_000_000_000
B2 = -356_563_782_000_000_000
B3 = 1_781_477_937_000_000_000
B4 = -1_821_255_978_000_000_000
B5 = 1_330_274_429_000_000_000
INV_SQRT_2PI = 398_942_280_401_432_677
PDF_CUTOFF = 10 * WAD
PRICE_ERR = 76_000_000_000  # per unit of F + K, WAD: 7.5e-8 (A&S 26.2.17) + 1e-9
PRICE_ERR_WEI = 4
DELTA_ERR = 76_000_000_000  # WAD: 7.5e-8 (A&S 26.2.17) + 1e-9
#: The largest |N(x) - Phi(x)| of the CDF approximation (Abramowitz & Stegun 26.2.17).
CDF_ERR = 7.5e-8

_U256 = 2**256
# snekmate's wad_ln constants: k * ln(2) and ln(2**96 / 10**18), in its 2**174 base.
_LN_K = int(
    "16_597_577_552_685_614_221_487_285_958_193_947_"
    "469_193_820_559_219_878_177_908_093_499_208_371".replace("_", "")
)
_LN_C = int(
    "600_920_179_829_731_861_736_702_779_321_621_459_"
    "595_472_258_049_074_101_567_377_883_020_018_308".replace("_", "")
)


def _wrap(v: int) -> int:
    """An int256 result of an unchecked EVM operation (two's complement wrap)."""
    v %= _U256
    return v - _U256 if v >= 2**255 else v


def _sdiv(a: int, b: int) -> int:
    """EVM ``sdiv`` and Vyper's signed ``//``: truncation towards zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def wad_ln(x: int) -> int:
    """snekmate ``math._wad_ln``, bit for bit."""
    if x < 0:
        raise ValueError("math: wad_ln undefined")
    if x == 0:
        return 0
    k = x.bit_length() - 1 - 96
    x = ((x << (159 - k)) % _U256) >> 159
    p = _wrap(_wrap((x + 3_273_285_459_638_523_848_632_254_066_296) * x) >> 96)
    p = p + 24_828_157_081_833_163_892_658_089_445_524
    p = _wrap((_wrap(p * x) >> 96) + 43_456_485_725_739_037_958_740_375_743_393)
    p = _wrap((_wrap(p * x) >> 96) - 11_111_509_109_440_967_052_023_855_526_967)
    p = _wrap((_wrap(p * x) >> 96) - 45_023_709_667_254_063_763_336_534_515_857)
    p = _wrap((_wrap(p * x) >> 96) - 14_706_773_417_378_608_786_704_636_184_526)
    p = _wrap(_wrap(p * x) - (795_164_235_651_350_426_258_249_787_498 << 96))
    q = _wrap(_wrap((x + 5_573_035_233_440_673_466_300_451_813_936) * x) >> 96)
    q = q + 71_694_874_799_317_883_764_090_561_454_958
    q = _wrap((_wrap(q * x) >> 96) + 283_447_036_172_924_575_727_196_451_306_956)
    q = _wrap((_wrap(q * x) >> 96) + 401_686_690_394_027_663_651_624_208_769_553)
    q = _wrap((_wrap(q * x) >> 96) + 204_048_457_590_392_012_362_485_061_816_622)
    q = _wrap((_wrap(q * x) >> 96) + 31_853_899_698_501_571_402_653_359_427_138)
    q = _wrap((_wrap(q * x) >> 96) + 909_429_971_244_387_300_277_376_558_375)
    r = _sdiv(p, q)
    acc = _wrap(r * 1_677_202_110_996_718_588_342_820_967_067_443_963_516_166)
    acc = _wrap(acc + _wrap(k * _LN_K))
    acc = _wrap(acc + _LN_C)
    return acc >> 174


def wad_exp(x: int) -> int:
    """snekmate ``math._wad_exp``, bit for bit."""
    if x <= -41_446_531_673_892_822_313:
        return 0
    if x >= 135_305_999_368_893_231_589:
        raise ValueError("math: wad_exp overflow")
    x = _sdiv(_wrap(x << 78), 5**18)
    k = _wrap(_sdiv(_wrap(x << 96), 54_916_777_467_707_473_351_141_471_128) + 2**95) >> 96
    x = _wrap(x - _wrap(k * 54_916_777_467_707_473_351_141_471_128))
    y = _wrap(_wrap(_wrap(x + 1_346_386_616_545_796_478_920_950_773_328) * x) >> 96)
    y = _wrap(y + 57_155_421_227_552_351_082_224_309_758_442)
    p = _wrap(_wrap(_wrap(y + x) - 94_201_549_194_550_492_254_356_042_504_812) * y) >> 96
    p = _wrap(p + 28_719_021_644_029_726_153_956_944_680_412_240)
    p = _wrap(_wrap(p * x) + (4_385_272_521_454_847_904_659_076_985_693_276 << 96))
    q = _wrap(_wrap(_wrap(x - 2_855_989_394_907_223_263_936_484_059_900) * x) >> 96)
    q = _wrap(q + 50_020_603_652_535_783_019_961_831_881_945)
    q = _wrap((_wrap(q * x) >> 96) - 533_845_033_583_426_703_283_633_433_725_380)
    q = _wrap((_wrap(q * x) >> 96) + 3_604_857_256_930_695_427_073_651_918_091_429)
    q = _wrap((_wrap(q * x) >> 96) - 14_423_608_567_350_463_180_887_372_962_807_573)
    q = _wrap((_wrap(q * x) >> 96) + 26_449_188_498_355_588_339_934_803_723_976_023)
    r = _sdiv(p, q)
    v = ((r % _U256) * 3_822_833_074_963_236_453_042_738_258_902_158_003_155_416_615_667) % _U256
    return _wrap(v >> (195 - k))


class Valuation(NamedTuple):
    """The module's ``Valuation`` struct, field for field (WAD ints)."""

    price: int
    delta: int
    gamma: int
    vega: int
    theta: int


def check(f: int, k: int, sigma: int, tau: int) -> None:
    """``black76._check``: ValueError with the module's message outside the domain."""
    if tau == 0:
        raise ValueError("black76: expired")
    if tau > MAX_OPTION_TIME:
        raise ValueError("black76: expiry too far")
    if sigma < MIN_VOL:
        raise ValueError("black76: vol too low")
    if sigma > MAX_VOL:
        raise ValueError("black76: vol too high")
    if not MIN_OPTION_PRICE <= f <= MAX_PRICE:
        raise ValueError("black76: bad forward")
    if not MIN_OPTION_PRICE <= k <= MAX_PRICE:
        raise ValueError("black76: bad strike")
    if not MIN_MONEYNESS <= f * WAD // k <= MAX_MONEYNESS:
        raise ValueError("black76: moneyness out of range")


def pdf_exact(x: int) -> int:
    """``black76._pdf``: n(x), WAD."""
    if x >= PDF_CUTOFF or x <= -PDF_CUTOFF:
        return 0
    e = wad_exp(-_sdiv(x * x, 2 * WAD))
    return _sdiv(e * INV_SQRT_2PI, WAD)


def cdf_exact(x: int, pdf: int) -> int:
    """``black76._cdf``: N(x), WAD, given n(x)."""
    t = _sdiv(WAD * WAD, WAD + _sdiv(P * abs(x), WAD))
    acc = _sdiv(B5 * t, WAD) + B4
    acc = _sdiv(acc * t, WAD) + B3
    acc = _sdiv(acc * t, WAD) + B2
    acc = _sdiv(acc * t, WAD) + B1
    acc = _sdiv(acc * t, WAD)
    q = min(max(_sdiv(pdf * acc, WAD), 0), WAD)
    return WAD - q if x >= 0 else q


def _d(f: int, k: int, sigma: int, tau: int) -> tuple[int, int, int, int, int, int]:
    """(d1, d2, s, sqrt_t, n1, n2), as ``black76._d``."""
    t = tau * WAD // YEAR
    sqrt_t = isqrt(t * WAD)
    s = _sdiv(sigma * sqrt_t, WAD)
    m = wad_ln(f * WAD // k)
    d1 = _sdiv(m * WAD, s) + _sdiv(s, 2)
    d2 = d1 - s
    if m >= 0:
        n2 = pdf_exact(d2)
        n1 = _sdiv(n2 * k, f)
    else:
        n1 = pdf_exact(d1)
        n2 = _sdiv(n1 * f, k)
    return d1, d2, s, sqrt_t, n1, n2


def _central(f: int, k: int, is_call: bool, d1: int, d2: int, n1: int, n2: int):
    c1 = cdf_exact(d1, n1)
    c2 = cdf_exact(d2, n2)
    if is_call:
        v = _sdiv(f * c1 - k * c2, WAD)
        lo, hi = max(f - k, 0), f
    else:
        v = _sdiv(k * (WAD - c2) - f * (WAD - c1), WAD)
        lo, hi = max(k - f, 0), k
    return min(max(v, lo), hi), c1


def price_error(f: int, k: int) -> int:
    """The stated bound on |central price - exact Black-76|, WAD (``black76._err``)."""
    return -(-(f + k) * PRICE_ERR // WAD) + PRICE_ERR_WEI


def price_exact(f: int, k: int, sigma: int, tau: int, is_call: bool, roundup: bool) -> int:
    """``black76._price``: never below (roundup) / above (not roundup) the exact value."""
    return price_delta_exact(f, k, sigma, tau, is_call, roundup)[0]


def price_delta_exact(
    f: int, k: int, sigma: int, tau: int, is_call: bool, roundup: bool
) -> tuple[int, int]:
    """``black76._price_delta``: :func:`price_exact` and the delta, within DELTA_ERR."""
    check(f, k, sigma, tau)
    d1, d2, _s, _sqrt_t, n1, n2 = _d(f, k, sigma, tau)
    v, c1 = _central(f, k, is_call, d1, d2, n1, n2)
    delta = c1 if is_call else c1 - WAD
    e = price_error(f, k)
    if roundup:
        return min(v + e, f if is_call else k), delta
    intrinsic = max(f - k, 0) if is_call else max(k - f, 0)
    return (v - e if v > intrinsic + e else intrinsic), delta


def valuation_exact(f: int, k: int, sigma: int, tau: int, is_call: bool) -> Valuation:
    """``black76._valuation``: central price, delta, gamma, vega, theta (WAD ints)."""
    check(f, k, sigma, tau)
    d1, d2, s, sqrt_t, n1, n2 = _d(f, k, sigma, tau)
    v, c1 = _central(f, k, is_call, d1, d2, n1, n2)
    delta = c1 if is_call else c1 - WAD
    fn = _sdiv(f * n1, WAD)
    gamma = _sdiv(n1 * WAD * WAD, f * s)
    vega = _sdiv(fn * sqrt_t, WAD)
    theta = -_sdiv(fn * sigma, 2 * sqrt_t)
    return Valuation(v, delta, gamma, vega, theta)


@dataclass(frozen=True)
class Black76Result:
    """Prices and Greeks, one entry per position, float64 (USD per unit of underlying)."""

    price: np.ndarray  # (n,)
    delta: np.ndarray  # (n,) dV/dF
    gamma: np.ndarray  # (n,) d2V/dF2, per USD
    vega: np.ndarray  # (n,) dV/dsigma, per 1.0 of vol
    theta: np.ndarray  # (n,) dV/dt, per year

    def summary(self) -> str:
        return (
            f"{self.price.size:,} options: value {self.price.sum():,.2f}, "
            f"delta {self.delta.sum():,.4f}, vega {self.vega.sum():,.2f}"
        )


def black76(
    forward: np.ndarray,
    strike: np.ndarray,
    vol: np.ndarray,
    tau_s: np.ndarray,
    is_call: np.ndarray,
    greeks: bool = True,
) -> Black76Result:
    """Vectorised Black-76 (zero rates): every argument broadcasts to one shape (n,).
    ``tau_s`` in seconds (> 0), ``vol`` annualised. ``greeks=False`` leaves the Greeks
    empty (the price alone, for full revaluation)."""
    f, k, v, tau, call = np.broadcast_arrays(
        np.atleast_1d(np.asarray(forward, dtype=np.float64)),
        np.atleast_1d(np.asarray(strike, dtype=np.float64)),
        np.atleast_1d(np.asarray(vol, dtype=np.float64)),
        np.atleast_1d(np.asarray(tau_s, dtype=np.float64)),
        np.atleast_1d(np.asarray(is_call, dtype=bool)),
    )
    for name, a in (("forward", f), ("strike", k), ("vol", v), ("tau_s", tau)):
        if not (np.isfinite(a).all() and (a > 0).all()):
            raise ValueError(f"black76: {name} must be finite and positive")
    sqrt_t = np.sqrt(tau / YEAR)
    s = v * sqrt_t
    m = np.log(f / k)
    d1 = m / s + 0.5 * s
    d2 = d1 - s
    n1c = ndtr(d1)
    n2c = ndtr(d2)
    # put = call - (F - K) loses digits deep in the money; N(-d) = ndtr(-d) keeps them.
    price = np.where(call, f * n1c - k * n2c, k * ndtr(-d2) - f * ndtr(-d1))
    if not greeks:
        empty = np.empty(0)
        return Black76Result(price, empty, empty, empty, empty)
    pdf1 = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
    delta = np.where(call, n1c, n1c - 1.0)
    fn = f * pdf1
    return Black76Result(
        price=price,
        delta=delta,
        gamma=pdf1 / (f * s),
        vega=fn * sqrt_t,
        theta=-fn * v / (2.0 * sqrt_t),
    )


# ---------------------------------------------------------------------------------------
# The option legs in the margin model: the twin of OptionBook.option_margin, to the wei.


def instrument_id(underlying: int, expiry: int, strike: int, is_call: bool) -> int:
    """``OptionBook.instrument_id``: the packed id of (underlying, expiry, strike, kind)."""
    return OPTION_ID | strike << 49 | expiry << 9 | underlying << 1 | int(is_call)


@dataclass(frozen=True)
class OptionLeg:
    """One leg as ``OptionBook._leg`` sees it: ``size`` signed WAD units; ``forward`` the
    underlying's price (strict: ``engine.price``; liquidation: ``liquidation_price``, 0 when
    none) and ``price_ok`` its flag; ``vol`` / ``vol_ok`` what ``VolFeed.vol`` answers;
    ``settlement`` the recorded settlement price (0 until recorded); ``shocks`` the
    underlying's scenario shocks (bps; at most MAX_SCENARIOS, zero-padded to them);
    ``vol_shock`` / ``short_min_bps`` its grid."""

    size: int
    expiry: int
    strike: int
    is_call: bool
    forward: int
    price_ok: bool
    vol: int
    vol_ok: bool
    settlement: int
    shocks: tuple[int, ...]
    vol_shock: int
    short_min_bps: int


def _floor_div(x: int, d: int) -> int:
    return x // d


def _ceil_div(x: int, d: int) -> int:
    return -(-x // d)


def _intrinsic(is_call: bool, strike: int, f: int) -> int:
    return f - min(f, strike) if is_call else strike - min(f, strike)


def _shocked(f: int, shock: int) -> int:
    """``OptionBook._shocked``: ``f`` moved by ``shock`` bps, truncated towards ``f``."""
    return f + _sdiv(f * shock, 10**4)


def _priced(k: int, f: int) -> bool:
    """``OptionBook._priced``: inside Black-76's price domain."""
    return (
        MIN_OPTION_PRICE <= f <= MAX_PRICE
        and f * WAD >= k * MIN_MONEYNESS
        and f * WAD <= k * MAX_MONEYNESS
    )


def _anchor(leg: OptionLeg, fa: int, vol: int, tau: int, long: bool) -> tuple[int, int]:
    """``OptionBook._anchor``: value (against the holder) and delta per unit at ``fa``."""
    k = leg.strike
    if _priced(k, fa):
        return price_delta_exact(fa, k, vol, tau, leg.is_call, not long)
    if leg.is_call and fa > k:
        return fa - k, WAD
    if not leg.is_call and fa < k:
        return k - fa, -WAD
    return 0, 0


def _bound(leg: OptionLeg, fn: int, f0: int, f1: int, a0, a1, long: bool) -> int:
    """``OptionBook._bound``: the per-unit value at ``fn`` in [f0, f1] bounded against the
    holder from the anchors ``a0`` = (value, delta) at f0 and ``a1`` at f1."""
    (v0, d0), (v1, d1) = a0, a1
    k = leg.strike
    if not long:
        v = v0 + (_ceil_div((v1 - v0) * (fn - f0), f1 - f0) if f1 != f0 else 0)
        return min(v, fn if leg.is_call else k)
    t0 = v0 + _floor_div(d0 * (fn - f0) - DELTA_ERR * (fn - f0), WAD)
    t1 = v1 + _floor_div(d1 * (fn - f1) + DELTA_ERR * (fn - f1), WAD)
    intrinsic = max(fn - k, 0) if leg.is_call else max(k - fn, 0)
    return max(t0, t1, intrinsic)


def _scenarios(shocks: tuple[int, ...]) -> tuple[list[int], int]:
    """The leg's shocks as the book holds them (zero-padded to MAX_SCENARIOS) and how many
    it values: all, or the first SHOCKS_PER_WORD when the second word is all zero (a set
    of K <= 16; ``OptionBook.Market``). The rest carry no option loss."""
    out = [int(s) for s in shocks] + [0] * (MAX_SCENARIOS - len(shocks))
    if len(out) != MAX_SCENARIOS:
        raise ValueError(f"{len(shocks)} shocks, at most {MAX_SCENARIOS}")
    valued = MAX_SCENARIOS if any(out[SHOCKS_PER_WORD:]) else SHOCKS_PER_WORD
    return out, valued


def option_leg_exact(
    leg: OptionLeg, now: int, liq: bool, long: bool | None = None
) -> tuple[int, int, bool, list, list]:
    """``OptionBook._leg``: (per-unit mark, short-option minimum, ok, losses vol up, vol
    down): mark and minimum WAD, losses WAD * WAD unrounded (the book's sum is rounded up
    once, in :func:`option_margin_exact`); the leg is worth ``floor(size * mark / WAD)``.
    ``long`` picks the mark (a long's or a short's); default: the sign of ``leg.size``."""
    s, k, f = leg.size, leg.strike, leg.forward
    if long is None:
        long = s > 0
    ok = leg.forward != 0 if liq else leg.price_ok
    shocks, valued = _scenarios(leg.shocks)
    unvalued = [0] * (MAX_SCENARIOS - valued)
    zero = [0] * MAX_SCENARIOS
    if leg.expiry <= now:
        sp = leg.settlement
        if sp == 0:
            sp, ok = f, ok and liq
        return _intrinsic(leg.is_call, k, sp), 0, ok, zero, list(zero)
    tau = leg.expiry - now
    short_min = _ceil_div(-s * f * leg.short_min_bps, WAD * 10**4) if s < 0 else 0
    vol = leg.vol
    if not liq:
        ok = ok and leg.vol_ok
    if vol == 0:
        vol = MIN_VOL if long else MAX_VOL
    if not _priced(k, f):
        m = _intrinsic(leg.is_call, k, f)
        losses = []
        for shock in shocks[:valued]:
            fn = _shocked(f, shock)
            v = max(fn - k, 0) if leg.is_call else max(k - fn, 0)
            losses.append(s * (m - v))
        losses += unvalued
        return m, short_min, ok, losses, list(losses)
    mark = price_exact(f, k, vol, tau, leg.is_call, not long)
    if s == 0:
        return mark, short_min, ok, list(zero), list(zero)
    d = leg.vol_shock * isqrt(VOL_TENOR * WAD * WAD // max(tau, VOL_FLOOR)) // WAD
    low = _shocked(f, min(0, *shocks))
    high = _shocked(f, max(0, *shocks))
    out = []
    for v in (min(vol + d, MAX_VOL), vol - min(d, vol - MIN_VOL)):
        at = {fa: _anchor(leg, fa, v, tau, long) for fa in {low, f, high}}
        losses = []
        for shock in shocks[:valued]:
            fn = _shocked(f, shock)
            f0, f1 = (low, f) if shock < 0 else (f, high)
            value = _bound(leg, fn, f0, f1, at[f0], at[f1], long)
            losses.append(s * (mark - value))
        out.append(losses + unvalued)
    return mark, short_min, ok, out[0], out[1]


def moved_size(size: int, fraction: int) -> int:
    """The part of a leg a liquidation slice ``fraction`` (WAD) moves: towards zero."""
    return _sdiv(size * fraction, WAD)


def moved_value(moved: int, mark: int) -> int:
    """``OptionBook._moved_value``: the cash the account receives for ``moved`` units at
    ``mark`` (rounded up, in its favour; negative: it pays)."""
    return _ceil_div(moved * mark, WAD)


def option_slice_exact(legs: list[OptionLeg], now: int, fraction: int) -> tuple[int, list[int]]:
    """``OptionBook.liquidate_legs``: (the cash the liquidator pays the account, the size
    moved of each leg), legs valued as the liquidation valuation sees them."""
    flow, moved = 0, []
    for leg in legs:
        m = moved_size(leg.size, fraction)
        moved.append(m)
        if m != 0:
            flow += moved_value(
                m, option_leg_exact(replace(leg, size=0), now, True, leg.size > 0)[0]
            )
    return flow, moved


def option_margin_exact(
    legs: list[OptionLeg],
    now: int,
    liq: bool,
    value_num: int,
    floor_num: int,
    losses: list[int],
    prices_ok: bool,
    fraction: int = 0,
) -> tuple[int, int, bool, int]:
    """``OptionBook.option_margin``: the engine's numerators (WAD * WAD * BPS) with the
    option legs joined: (value_num, worst of floor and scenario losses, prices_ok, flow);
    ``fraction`` (WAD): after a liquidation slice moved that part of every leg, whose cash
    (what the liquidator pays the account for the moved parts) is ``flow``."""
    value, flow, short_min, ok = 0, 0, 0, prices_ok
    up, down = [0] * len(losses), [0] * len(losses)
    for leg in legs:
        if leg.size == 0:
            continue
        moved = moved_size(leg.size, fraction)
        rest = leg.size - moved
        mark, m, leg_ok, u, d = option_leg_exact(replace(leg, size=rest), now, liq, leg.size > 0)
        paid = moved_value(moved, mark)
        value, flow = value + _floor_div(rest * mark, WAD) + paid, flow + paid
        short_min, ok = short_min + m, ok and leg_ok
        up = [a + b for a, b in zip(up, u, strict=True)]
        down = [a + b for a, b in zip(down, d, strict=True)]
    worst = floor_num + short_min * WAD_BPS
    for k, linear in enumerate(losses):
        worst = max(worst, linear + _ceil_div(max(up[k], down[k]), WAD) * WAD_BPS)
    return value_num + value * WAD_BPS, worst, ok, flow


def margin_with_options_exact(
    cash: int,
    collateral: list[int],
    size: list[int],
    open_notional: list[int],
    prices_wad: list[int],
    params: RiskParams,
    legs: list[OptionLeg],
    now: int,
    funding_owed: int = 0,
) -> tuple[int, int, int]:
    """``ledger._margin`` of one account holding option legs (strict valuation, no quote
    feed): (equity, MM, IM). The linear legs' numerators (:func:`margin_numerators`) over
    MAX_SCENARIOS scenarios, the option legs joined by :func:`option_margin_exact`, then the
    engine's roundings. ``funding_owed``: the perps' unsettled funding
    (``models.funding.owed``), off equity; option legs carry none.
    collateral, size, open_notional: (n_assets,) WAD ints; prices_wad: (n_assets,)."""
    shocks = pad_scenarios(np.asarray(params.shocks_bps))
    padded = replace(params, shocks_bps=shocks)
    value_num, floor_num, losses = margin_numerators([collateral], [size], prices_wad, padded)
    value, worst, _, _ = option_margin_exact(
        legs, now, False, int(value_num[0]), int(floor_num[0]), list(losses[0]), True
    )
    mm = max(_ceil_div(worst, WAD_BPS), 0)
    im = _ceil_div(mm * params.im_multiplier_wad, WAD)
    equity = cash - funding_owed - sum(open_notional) + _floor_div(value, WAD_BPS)
    return equity, mm, im


def option_scenario_losses(
    size: np.ndarray,
    forward: np.ndarray,
    strike: np.ndarray,
    is_call: np.ndarray,
    vol: np.ndarray,
    tau_s: np.ndarray,
    shocks_bps: np.ndarray,
    vol_shock: float,
    full: bool,
) -> np.ndarray:
    """Float per-scenario losses of option books, USD, both vol directions.

    Legs are ``(n_books, n_legs)`` arrays (``size`` signed units, 0 for an empty slot);
    ``shocks_bps`` the underlying's ``(K,)`` scenario shocks. ``full=False`` is the
    on-chain rule (``OptionBook._leg`` in floats: Black-76 at the three anchors, the
    prices moved by the lowest shock, by none and by the highest, at the moved vol; between
    two anchors a short's value bounded by the chord, a long's by the larger tangent and
    intrinsic); ``full=True`` reprices every leg with Black-76 at the shocked forward and
    vol. Returns ``(n_books, 2, K)``: vol up, down."""
    size, f, k, call, v, tau = np.broadcast_arrays(size, forward, strike, is_call, vol, tau_s)
    shape = f.shape

    def b76(fwd: np.ndarray, sigma: np.ndarray, greeks: bool) -> tuple[np.ndarray, np.ndarray]:
        """(price, delta) of every leg at ``fwd`` and ``sigma``; delta empty unless asked."""
        r = black76(
            np.maximum(fwd, 1e-9).ravel(),
            k.ravel(),
            sigma.ravel(),
            tau.ravel(),
            call.ravel(),
            greeks=greeks,
        )
        return r.price.reshape(shape), r.delta.reshape(shape) if greeks else r.delta

    price = b76(f, v, False)[0]
    d = vol_shock * np.sqrt(VOL_TENOR / np.maximum(tau, VOL_FLOOR))
    moved_vols = (np.minimum(v + d, MAX_VOL / WAD), v - np.minimum(d, v - MIN_VOL / WAD))
    shocks = np.asarray(shocks_bps, dtype=np.float64) / 1e4
    low, high = min(shocks.min(), 0.0), max(shocks.max(), 0.0)
    out = np.empty((shape[0], 2, len(shocks)))
    for i, sigma in enumerate(moved_vols):
        anchors = {a: b76(f * (1 + a), sigma, True) for a in {low, 0.0, high}} if not full else {}
        for j, shock in enumerate(shocks):
            fn = f * (1 + shock)
            if full:
                new = b76(fn, sigma, False)[0]
            else:
                a0, a1 = (low, 0.0) if shock < 0 else (0.0, high)
                (v0, d0), (v1, d1) = anchors[a0], anchors[a1]
                f0, f1 = f * (1 + a0), f * (1 + a1)
                w = (shock - a0) / (a1 - a0) if a1 != a0 else 0.0
                chord = np.minimum(v0 + (v1 - v0) * w, np.where(call, fn, k))
                tangent = np.maximum(v0 + d0 * (fn - f0), v1 + d1 * (fn - f1))
                intrinsic = np.where(call, np.maximum(fn - k, 0.0), np.maximum(k - fn, 0.0))
                new = np.where(size < 0, chord, np.maximum(tangent, intrinsic))
            out[:, i, j] = (size * (price - new)).sum(axis=1)
    return out


def option_scenario_losses_batch(
    size: np.ndarray,
    underlying: np.ndarray,
    strike: np.ndarray,
    is_call: np.ndarray,
    vol: np.ndarray,
    tau_s: np.ndarray,
    forward: np.ndarray,
    shocks_bps: np.ndarray,
    vol_shock: float | np.ndarray,
) -> np.ndarray:
    """:func:`option_scenario_losses` with ``full=False`` (the on-chain anchor rule) for
    books whose legs span several underlyings, vectorised over books, legs and scenarios.

    Legs are ``(n_books, n_legs)`` arrays (``size`` signed units, 0 for an empty slot);
    ``underlying`` indexes the rows of ``forward`` ``(n_underlyings,)`` (each underlying's
    price) and of ``shocks_bps`` ``(n_underlyings, K)`` (its scenario shocks); ``vol_shock``
    a float or one per underlying. Returns ``(n_books, 2, K)`` USD losses, vol up and down:
    the sum over underlyings ``u`` of ``option_scenario_losses(size * (underlying == u),
    forward[underlying], strike, is_call, vol, tau_s, shocks_bps[u], vol_shock[u],
    full=False)``, to float rounding.

    The rule needs Black-76 at seven points per leg, not at every scenario and vol: the
    mark, and price and delta at the three anchor forwards (lowest shock, none, highest) at
    each moved vol, with one ``log(K)`` per leg (the anchor forwards' logs are per
    underlying) and two normal CDFs per point. The scenarios follow from those:

    - a short leg's chord is linear in its anchor values, with weights set by the
      underlying and the scenario alone, so a book's shorts are summed per underlying and
      anchor and every scenario comes from one ``(3 n_underlyings, K)`` product. The
      chord's cap (``F`` for a call, ``K`` for a put) binds by rounding at most: at every
      anchor a call is worth at most its forward and a put at most its strike, and the
      chord interpolates the forward linearly; so it is left out;
    - a long leg's value, the larger of its segment's two tangents and intrinsic value, is
      taken elementwise over ``(K, n_long)`` per underlying (scenarios reordered falls
      first, so each segment is one block) and summed per book with ``np.bincount``.
    """
    size = np.asarray(size, dtype=np.float64)
    if size.ndim != 2:
        raise ValueError("size must be (n_books, n_legs)")
    n_books, n_legs = size.shape
    fwd = np.asarray(forward, dtype=np.float64)
    shocks = np.asarray(shocks_bps, dtype=np.float64) / 1e4  # (U, K)
    if shocks.ndim != 2 or fwd.shape != (shocks.shape[0],):
        raise ValueError("shocks_bps must be (n_underlyings, K) and forward (n_underlyings,)")
    n_und, n_scen = shocks.shape
    arrays = {
        "underlying": np.asarray(underlying),
        "strike": np.asarray(strike, dtype=np.float64),
        "is_call": np.asarray(is_call, dtype=bool),
        "vol": np.asarray(vol, dtype=np.float64),
        "tau_s": np.asarray(tau_s, dtype=np.float64),
    }
    for name, a in arrays.items():
        if a.shape != size.shape:
            raise ValueError(f"{name} must have the shape of size {size.shape}, got {a.shape}")
    if not np.isfinite(size).all():
        raise ValueError("size must be finite")
    if not (np.isfinite(fwd).all() and (fwd > 0).all()):
        raise ValueError("forward must be finite and positive")
    shift = np.broadcast_to(np.asarray(vol_shock, dtype=np.float64), (n_und,))
    out = np.zeros((n_books, 2, n_scen))
    legs = np.flatnonzero(size)  # held legs
    if legs.size == 0 or n_scen == 0:
        return out
    u = arrays["underlying"].ravel()[legs].astype(np.intp)
    if u.min() < 0 or u.max() >= n_und:
        raise ValueError(f"underlying must index the {n_und} rows of shocks_bps")
    # Held legs grouped: the longs of each underlying, then every short; book by book
    # inside each group.
    group = np.where(size.ravel()[legs] > 0, u, n_und)
    order = np.argsort(group.astype(np.int16 if n_und < 2**15 else np.intp), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_und + 1))])
    legs, u = legs[order], u[order]
    s = size.ravel()[legs]
    k, v, tau = (arrays[name].ravel()[legs] for name in ("strike", "vol", "tau_s"))
    for name, a in (("strike", k), ("vol", v), ("tau_s", tau)):
        if not (np.isfinite(a).all() and (a > 0).all()):
            raise ValueError(f"{name} must be finite and positive")
    book = legs // n_legs

    # The anchors of each underlying, as moves (U, 3): lowest shock, none, highest.
    moves = np.stack(
        [shocks.min(axis=1, initial=0.0), np.zeros(n_und), shocks.max(axis=1, initial=0.0)],
        axis=1,
    )
    f_anchor = fwd[:, None] * (1 + moves)  # (U, 3) the tangents' points
    priced = np.maximum(f_anchor, 1e-9)  # (U, 3) the forwards Black-76 prices at
    # Black-76 with one CDF pair for calls and puts alike: price = sign * (F N(sign d1) -
    # K N(sign d2)), delta = sign * N(sign d1); the sign folded into ln(F / K), F, K and s.
    sign = np.where(arrays["is_call"].ravel()[legs], 1.0, -1.0)
    log_k = np.log(k)
    sm, sf = [], []  # per anchor: sign * ln(F_a / K), sign * F_a
    for a in range(3):
        m = np.log(priced[:, a]).take(u)
        m -= log_k
        m *= sign
        sm.append(m)
        sf.append(priced[:, a].take(u) * sign)
    sk = sign * k
    sqrt_t = np.sqrt(tau / YEAR)
    d = shift.take(u) * np.sqrt(VOL_TENOR / np.maximum(tau, VOL_FLOOR))
    moved_vols = (np.minimum(v + d, MAX_VOL / WAD), v - np.minimum(d, v - MIN_VOL / WAD))

    def b76(sigma: np.ndarray, at: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(price, delta) of every held leg at vol ``sigma`` and each anchor in ``at``."""
        sd = sigma * sqrt_t
        half, ss = sign * (0.5 * sd), sign * sd
        res = []
        for a in at:
            z = np.divide(sm[a], sd)
            z += half  # sign * d1
            n1 = ndtr(z)
            z -= ss  # sign * d2
            ndtr(z, out=z)
            z *= sk
            price = sf[a] * n1
            price -= z
            n1 *= sign
            res.append((price, n1))
        return res

    mark = b76(v, (1,))[0][0]
    anchors = [b76(sigma, (0, 1, 2)) for sigma in moved_vols]  # [vol][anchor]
    out += np.bincount(book, weights=s * mark, minlength=n_books)[:, None, None]

    # Shorts: per book and underlying, sum size * value at each (vol, anchor); the chord
    # weights (U, 3, K) of scenario j put 1 - w on its segment's lower anchor, w on the upper.
    shorts = slice(bounds[n_und], None)
    if s[shorts].size:
        row = book[shorts] * n_und + u[shorts]
        sums = np.empty((n_books * n_und, 2, 3))
        for i in range(2):
            for a in range(3):
                sums[:, i, a] = np.bincount(
                    row, weights=s[shorts] * anchors[i][a][0][shorts], minlength=n_books * n_und
                )
        low, high = moves[:, :1], moves[:, 2:]
        neg = shocks < 0
        w_neg = np.where(neg, (shocks - low) / np.where(low < 0, -low, 1.0), 0.0)
        w_pos = np.where(neg | (high == 0), 0.0, shocks / np.where(high > 0, high, 1.0))
        weights = np.stack(
            [np.where(neg, 1 - w_neg, 0.0), np.where(neg, w_neg, 1 - w_pos), w_pos], axis=1
        )  # (U, 3, K)
        sums = sums.reshape(n_books, n_und, 2, 3).transpose(0, 2, 1, 3)
        out -= sums.reshape(n_books, 2, n_und * 3) @ weights.reshape(n_und * 3, n_scen)

    # Longs, one underlying at a time, size times max(tangent at the segment's lower
    # anchor, at its upper, intrinsic) as (vol, scenario, leg) arrays with the scenarios
    # reordered falls first: a fall's segment is (lowest, none), any other's (none, highest).
    total = np.zeros(2 * n_scen * n_books)  # (vol, scenario, book)
    for w in range(n_und):
        longs = slice(bounds[w], bounds[w + 1])
        n_long = bounds[w + 1] - bounds[w]
        if n_long == 0:
            continue
        sl = s[longs]
        falls = shocks[w] < 0
        scen = np.argsort(~falls, kind="stable")
        n_neg = int(falls.sum())
        fn = fwd[w] * (1 + shocks[w, scen])  # (K,) the shocked forwards
        dx_side = (fn - np.where(falls[scen], f_anchor[w, 0], f_anchor[w, 2]))[:, None]
        dx_mid = (fn - f_anchor[w, 1])[:, None]
        intrinsic = np.subtract.outer(fn, k[longs])  # (K, n_long)
        intrinsic *= sign[longs] * sl
        np.maximum(intrinsic, 0.0, out=intrinsic)
        new = np.empty((2, n_scen, n_long))
        tangent = np.empty((n_scen, n_long))
        for i in range(2):
            (v_lo, d_lo), (v_mid, d_mid), (v_hi, d_hi) = (
                (p[longs] * sl, dl[longs] * sl) for p, dl in anchors[i]
            )
            fall, rise = new[i, :n_neg], new[i, n_neg:]
            np.multiply(dx_side[:n_neg], d_lo, out=fall)
            fall += v_lo
            np.multiply(dx_side[n_neg:], d_hi, out=rise)
            rise += v_hi
            np.multiply(dx_mid, d_mid, out=tangent)
            tangent += v_mid
            np.maximum(new[i], tangent, out=new[i])
            np.maximum(new[i], intrinsic, out=new[i])
        rows = (np.arange(2)[:, None] * n_scen + scen).reshape(-1, 1) * n_books
        at = np.add(rows, book[longs], dtype=np.intp)  # (2 K, n_long) into total
        total += np.bincount(at.ravel(), weights=new.ravel(), minlength=total.size)
    out -= total.reshape(2, n_scen, n_books).transpose(2, 0, 1)
    return out
