"""Implied-vol surfaces from price and DVOL history, in the shape ``VolFeed`` publishes.

The feed holds, per underlying and expiry, ``vol(x) = atm + skew x + curvature x^2`` in log
moneyness ``x = ln(K / F)`` around the forward ``F`` (zero rates: the forward is the spot).
This module fits those three numbers per expiry from what the keeper has, and checks the
result before anything is signed. The method and its figures are in ``docs/RISK_MODEL.md``
("Option surfaces").

- **Level.** The 30-day ATM vol is Deribit's DVOL close of the last day closed by the as-of
  time (BTC, from 2021-03-24). Where no DVOL close is at most ``max_dvol_age`` old (every
  other asset, BTC before 2021-03 or after the file ends) the level is the trailing 30-day
  realised vol times :data:`IV_RV_RATIO`, the median ratio of DVOL to BTC's trailing 30-day
  realised vol (:func:`iv_rv_ratio`).
- **Term structure.** Mean-reverting variance: the ATM total variance to ``T`` is
  ``w(T) = c^2 [sl^2 T + (ss^2 - sl^2)(1 - e^(-k T)) / k]`` with ``ss`` and ``sl`` the
  realised vols over the last :data:`SHORT_WINDOW_H` and :data:`LONG_WINDOW_H` hours (the
  long window shortened to the history there is, never below 30 days), ``k``
  from the half-life :data:`HALF_LIFE_DAYS`, and ``c`` set so that the 30-day vol equals the
  level. ``dw/dT`` lies between ``c^2 sl^2`` and ``c^2 ss^2``, so the ATM total variance never
  decreases with the expiry.
- **Skew rule (an assumption: no option chain in the data).** The smile is one function of
  log moneyness added to the ATM total standard deviation of every expiry:
  ``vol(x, T) sqrt(T) = atm(T) sqrt(T) + L sqrt(T30) (a z + b z^2)`` with
  ``z = x / (L sqrt(T30))`` standardised by the 30-day level ``L``, ``a = SKEW_Z``,
  ``b = CURVATURE_Z``. At 30 days this is ``vol = L (1 + a z + b z^2)``: a 25-delta risk
  reversal of about ``1.35 a L`` and a 25-delta butterfly of about ``0.45 b L`` (-5% and
  +3% of ATM: -3 and +2 vol points at 60%). In the feed's terms ``skew = a / sqrt(T)`` and
  ``curvature = b / (L sqrt(T30 T))``, cut to the feed's bounds (``clipped`` says so).
  Since ``atm(T) sqrt(T)`` never decreases, neither does the total variance at any fixed
  ``x`` where the vol is positive: the rule has no calendar arbitrage by construction (the
  check still runs; a cut only lowers the short expiry's wings). Negative skew and positive
  curvature are the sign of the data: 30-day BTC log returns have negative skewness and
  excess kurtosis (``tests/unit/test_vol_surface.py``).

Checks (:func:`check_surface`), each a clear reason when it fails, on the feed's own vol
function (clamp included) over ``|x| <= Z_CHECK L sqrt(T30)`` (four 30-day standard
deviations, e.g. strikes from 45% to 220% of the forward at ``L`` = 70%) for every expiry:
a quadratic smile breaks Lee's moment bound far enough out, so the checks state their range;
no negative variance (the quadratic before the clamp), no calendar arbitrage (total variance
at fixed ``x`` non-decreasing in the expiry), no butterfly arbitrage (Durrleman's
``g(x) >= 0``, the density of the Black-76 call prices, beyond a tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offchain_risk.data.loaders import Bars, ImpliedVol
from offchain_risk.units import MAX_VOL, MIN_VOL, WAD, YEAR

#: Median of DVOL / trailing 30-day realised vol (hourly BTC, 2021-03-24 .. 2024-04-17:
#: 1.205 over 1,121 days; quartiles 1.08 and 1.37). :func:`iv_rv_ratio` measures it.
IV_RV_RATIO = 1.2
#: The tenor DVOL quotes (30 days), seconds.
DVOL_TENOR_S = 30 * 86_400
#: Realised-vol windows of the term structure, hours.
SHORT_WINDOW_H = 7 * 24
LONG_WINDOW_H = 180 * 24
#: Half-life of a vol shock in the term structure, days.
HALF_LIFE_DAYS = 30.0
#: The skew rule in standardised moneyness z = x / (atm sqrt(T)).
SKEW_Z = -0.04
CURVATURE_Z = 0.07
#: The checks cover |x| <= Z_CHECK standard deviations of the 30-day level ...
Z_CHECK = 4.0
#: ... and at most |x| <= X_CHECK (strikes from a third to three times the forward).
X_CHECK = float(np.log(3.0))
#: Checks' tolerances: Durrleman's g, and total variance (per year of variance).
BUTTERFLY_TOL = 1e-6
CALENDAR_TOL = 1e-12
# contracts/VolFeed.vy bounds, as floats.
MAX_SKEW = 2.0
MAX_CURVATURE = 5.0
_MIN_VOL = MIN_VOL / WAD
_MAX_VOL = MAX_VOL / WAD
_HOUR_S = 3_600


def realised_vol(log_returns: np.ndarray, bar_s: float) -> float:
    """Annualised root mean square of ``log_returns: (n,)`` over bars of ``bar_s`` seconds."""
    r = np.asarray(log_returns, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or not np.isfinite(r).all():
        raise ValueError("realised vol: need a non-empty, finite 1-D return series")
    return float(np.sqrt(np.mean(r * r) * YEAR / bar_s))


def iv_rv_ratio(bars: Bars, dvol: ImpliedVol, window_h: int = 720) -> np.ndarray:
    """DVOL over the trailing ``window_h``-hour realised vol of ``bars`` (hourly), one entry
    per DVOL day the bars cover: ``(n_days,)``. Its median is :data:`IV_RV_RATIO`."""
    if bars.freq != "1h":
        raise ValueError("iv_rv_ratio: hourly bars")
    r = np.diff(np.log(bars.close))  # (n_bars - 1,) closes at bars.timestamps[1:] + 1h
    ends = np.searchsorted(bars.timestamps[1:], (dvol.dates + 1).astype("datetime64[s]"))
    ok = (ends >= window_h) & (ends < r.size)
    out = []
    for end, iv in zip(ends[ok], dvol.vol[ok], strict=True):
        out.append(iv / realised_vol(r[end - window_h : end], _HOUR_S))
    return np.array(out)


@dataclass(frozen=True)
class SurfaceRule:
    """The stated rules; the defaults are the module's constants."""

    iv_rv_ratio: float = IV_RV_RATIO
    short_window_h: int = SHORT_WINDOW_H
    long_window_h: int = LONG_WINDOW_H
    half_life_days: float = HALF_LIFE_DAYS
    skew_z: float = SKEW_Z
    curvature_z: float = CURVATURE_Z
    max_dvol_age_s: int = 2 * 86_400
    max_price_age_s: int = 2 * _HOUR_S

    def __post_init__(self) -> None:
        if not 0 < self.iv_rv_ratio < 10:
            raise ValueError(f"rule: iv_rv_ratio {self.iv_rv_ratio} outside (0, 10)")
        if not 1 <= self.short_window_h < self.long_window_h:
            raise ValueError("rule: need 1 <= short_window_h < long_window_h")
        if not self.half_life_days > 0:
            raise ValueError("rule: half_life_days must be positive")
        if self.curvature_z < 0:
            raise ValueError("rule: curvature_z must be non-negative (the feed's bound)")

    @property
    def kappa(self) -> float:
        """Mean reversion of variance, per year."""
        return float(np.log(2.0) / (self.half_life_days / 365.0))


@dataclass(frozen=True)
class ExpiryCurve:
    """One expiry's curve in the feed's terms (floats): ``vol(x) = atm + skew x + curv x^2``."""

    tau_s: float
    atm_vol: float
    skew: float
    curvature: float
    clipped: bool = False  # skew or curvature cut to the feed's bounds

    @property
    def tau_y(self) -> float:
        return self.tau_s / YEAR

    def raw_vol(self, x: np.ndarray) -> np.ndarray:
        """The quadratic before the feed's clamp, ``x: (n,)``."""
        return self.atm_vol + self.skew * x + self.curvature * x * x

    def vol(self, x: np.ndarray) -> np.ndarray:
        """The feed's vol: the quadratic clamped to [1%, 500%]."""
        return np.clip(self.raw_vol(x), _MIN_VOL, _MAX_VOL)

    def total_variance(self, x: np.ndarray) -> np.ndarray:
        return self.vol(x) ** 2 * self.tau_y

    def durrleman(self, x: np.ndarray) -> np.ndarray:
        """Durrleman's ``g(x)`` (Gatheral 2004): the Black-76 call prices' density over a
        positive factor; ``g < 0`` is butterfly arbitrage. ``x: (n,)``."""
        raw = self.raw_vol(x)
        inside = (raw > _MIN_VOL) & (raw < _MAX_VOL)
        v = self.vol(x)
        dv = np.where(inside, self.skew + 2.0 * self.curvature * x, 0.0)
        d2v = np.where(inside, 2.0 * self.curvature, 0.0)
        t = self.tau_y
        w = v * v * t
        dw = 2.0 * v * dv * t
        d2w = 2.0 * t * (dv * dv + v * d2v)
        return (1.0 - x * dw / (2.0 * w)) ** 2 - dw * dw / 4.0 * (1.0 / w + 0.25) + d2w / 2.0


@dataclass(frozen=True)
class SurfaceCheck:
    """The checks' outcome: ``reasons`` is empty iff the surface may be published;
    ``failed`` names the check behind each reason (``input``, ``variance``, ``calendar``,
    ``butterfly``), for metrics."""

    reasons: tuple[str, ...]
    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def summary(self) -> str:
        return "surface ok" if self.ok else "surface refused: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class VolSurface:
    """Curves of one underlying at one time, expiries ascending."""

    symbol: str
    asof: np.datetime64
    forward: float
    level_30d: float  # the 30-day ATM vol the term structure is scaled to
    source: str  # "dvol" or "realised" (the level's origin)
    curves: tuple[ExpiryCurve, ...]
    realised: tuple[float, float] = field(default=(np.nan, np.nan))  # short, long windows

    def check_grid(self, n: int = 801) -> np.ndarray:
        """Log moneyness ``(n,)`` the checks cover: ``|z| <= Z_CHECK`` standard deviations of
        the 30-day level, the same strikes for every expiry."""
        half = min(Z_CHECK * self.level_30d * np.sqrt(DVOL_TENOR_S / YEAR), X_CHECK)
        return np.linspace(-half, half, n)

    def summary(self) -> str:
        rows = ", ".join(
            f"{c.tau_s / 86_400:.1f}d {c.atm_vol:.1%} ({c.skew:+.3f}, {c.curvature:.3f})"
            + (" clipped" if c.clipped else "")
            for c in self.curves
        )
        return (
            f"{self.symbol} at {self.asof}: 30d ATM {self.level_30d:.1%} from {self.source}, "
            f"F {self.forward:,.2f}; {rows}"
        )


def check_variance(surface: VolSurface) -> str | None:
    """The quadratic must stay positive over the checked strikes (the feed would clamp a
    negative vol to 1%: a broken fit, not a market)."""
    for c in surface.curves:
        if not (np.isfinite(c.atm_vol) and c.atm_vol > 0 and c.tau_s > 0):
            return f"negative total variance: ATM vol {c.atm_vol} at {c.tau_s / 86_400:.2f}d"
        x = surface.check_grid()
        raw = c.raw_vol(x)
        if (raw <= 0).any():
            i = int(np.argmin(raw))
            return (
                f"negative total variance: vol {raw[i]:.4f} at x={x[i]:+.4f}, "
                f"{c.tau_s / 86_400:.2f}d"
            )
    return None


def check_calendar(surface: VolSurface, tol: float = CALENDAR_TOL) -> str | None:
    """Total variance at fixed log moneyness must not fall from one expiry to the next."""
    for near, far in zip(surface.curves, surface.curves[1:], strict=False):
        if far.tau_s <= near.tau_s:
            return f"calendar arbitrage: expiries not increasing ({near.tau_s}, {far.tau_s})"
        x = surface.check_grid()
        drop = near.total_variance(x) - far.total_variance(x)
        if (drop > tol).any():
            i = int(np.argmax(drop))
            return (
                f"calendar arbitrage: total variance falls by {drop[i]:.3g} at x={x[i]:+.4f} "
                f"from {near.tau_s / 86_400:.2f}d to {far.tau_s / 86_400:.2f}d"
            )
    return None


def check_butterfly(surface: VolSurface, tol: float = BUTTERFLY_TOL) -> str | None:
    """Durrleman's condition ``g(x) >= -tol`` over the checked strikes."""
    for c in surface.curves:
        x = surface.check_grid()
        g = c.durrleman(x)
        if (g < -tol).any():
            i = int(np.argmin(g))
            return (
                f"butterfly arbitrage: Durrleman g={g[i]:.3g} at x={x[i]:+.4f}, "
                f"{c.tau_s / 86_400:.2f}d"
            )
    return None


def check_surface(
    surface: VolSurface, butterfly_tol: float = BUTTERFLY_TOL, calendar_tol: float = CALENDAR_TOL
) -> SurfaceCheck:
    """Every check; the reasons of those that fail, in the order variance, calendar,
    butterfly."""
    if not surface.curves:
        return SurfaceCheck(("no expiries",), ("input",))
    if not (np.isfinite(surface.forward) and surface.forward > 0):
        return SurfaceCheck((f"bad forward {surface.forward}",), ("input",))
    found = [
        (r, name)
        for name, r in (
            ("variance", check_variance(surface)),
            ("calendar", check_calendar(surface, calendar_tol)),
            ("butterfly", check_butterfly(surface, butterfly_tol)),
        )
        if r is not None
    ]
    return SurfaceCheck(tuple(r for r, _ in found), tuple(n for _, n in found))


class SurfaceFitter:
    """Fits :class:`VolSurface` of one underlying from its hourly bars and, where given, DVOL.

    Only data closed by the as-of time is read: an hourly bar closes an hour after its
    timestamp, a DVOL day at the next midnight UTC.
    """

    def __init__(self, bars: Bars, dvol: ImpliedVol | None = None, rule: SurfaceRule | None = None):
        if bars.freq != "1h":
            raise ValueError(f"surface: hourly bars needed, got {bars.freq}")
        self.bars = bars
        self.dvol = dvol
        self.rule = rule or SurfaceRule()
        self._closes_at = bars.timestamps + np.timedelta64(_HOUR_S, "s")  # (n_bars,)
        self._log_close = np.log(bars.close)

    def realised(self, asof: np.datetime64) -> tuple[float, float, float]:
        """Annualised realised vol over the short, 30-day and long windows closed by ``asof``."""
        rule = self.rule
        end = int(np.searchsorted(self._closes_at, asof, side="right"))  # bars closed
        if end == 0:
            raise ValueError(f"surface: no {self.bars.asset} bar closed by {asof}")
        age = (asof - self._closes_at[end - 1]).astype("timedelta64[s]").astype(np.int64)
        if age > rule.max_price_age_s:
            raise ValueError(
                f"surface: {self.bars.asset} prices end {self._closes_at[end - 1]}, "
                f"{age} s before {asof}"
            )
        n = min(rule.long_window_h, end - 1)
        if n < DVOL_TENOR_S // _HOUR_S:
            raise ValueError(
                f"surface: {self.bars.asset} needs 30 days of hourly returns by {asof}, has {n}"
            )
        r = np.diff(self._log_close[end - 1 - n : end])
        return (
            realised_vol(r[-rule.short_window_h :], _HOUR_S),
            realised_vol(r[-DVOL_TENOR_S // _HOUR_S :], _HOUR_S),
            realised_vol(r, _HOUR_S),
        )

    def level(self, asof: np.datetime64, rv30: float) -> tuple[float, str]:
        """The 30-day ATM vol and its source: DVOL where fresh, else the realised rule."""
        if self.dvol is not None:
            closed = (self.dvol.dates + 1).astype("datetime64[s]")  # (n_days,)
            i = int(np.searchsorted(closed, asof, side="right")) - 1
            if i >= 0:
                age = (asof - closed[i]).astype("timedelta64[s]").astype(np.int64)
                if age <= self.rule.max_dvol_age_s:
                    return float(self.dvol.vol[i]), "dvol"
        return rv30 * self.rule.iv_rv_ratio, "realised"

    def fit(self, asof: str | np.datetime64, forward: float, taus_s) -> VolSurface:
        """The surface at ``asof`` for expiries ``taus_s`` seconds ahead (ascending)."""
        asof = np.datetime64(asof, "s")
        taus = np.asarray(taus_s, dtype=np.float64)  # (n_expiries,)
        if taus.ndim != 1 or taus.size == 0 or not (np.isfinite(taus).all() and (taus > 0).all()):
            raise ValueError("surface: expiries must be a non-empty list of positive seconds")
        if (np.diff(taus) <= 0).any():
            raise ValueError("surface: expiries must be strictly increasing")
        rs, rv30, rl = self.realised(asof)
        level, source = self.level(asof, rv30)
        atm = atm_term_structure(level, rs, rl, taus, self.rule)
        curves = tuple(
            smile(float(t), float(a), level, self.rule) for t, a in zip(taus, atm, strict=True)
        )
        return VolSurface(self.bars.asset, asof, float(forward), level, source, curves, (rs, rl))


def atm_term_structure(
    level_30d: float, short_vol: float, long_vol: float, taus_s: np.ndarray, rule: SurfaceRule
) -> np.ndarray:
    """ATM vols ``(n_expiries,)``: the realised mean-reverting variance curve scaled so the
    30-day vol is ``level_30d``."""
    k = rule.kappa

    def shape(t_y: np.ndarray) -> np.ndarray:  # average variance to t_y years
        return long_vol**2 + (short_vol**2 - long_vol**2) * (-np.expm1(-k * t_y)) / (k * t_y)

    scale2 = level_30d**2 / shape(np.array(DVOL_TENOR_S / YEAR))
    return np.sqrt(scale2 * shape(np.asarray(taus_s) / YEAR))


def smile(tau_s: float, atm_vol: float, level_30d: float, rule: SurfaceRule) -> ExpiryCurve:
    """The skew rule for one expiry, cut to the feed's bounds."""
    t_y = tau_s / YEAR
    skew = rule.skew_z / np.sqrt(t_y)
    curvature = rule.curvature_z / (level_30d * np.sqrt(DVOL_TENOR_S / YEAR * t_y))
    # One factor for both keeps the smile's shape (a skew cut alone turns a short expiry's
    # vol negative on the call side).
    cut = min(
        1.0, MAX_SKEW / abs(skew) if skew else 1.0, MAX_CURVATURE / curvature if curvature else 1.0
    )
    return ExpiryCurve(tau_s, atm_vol, float(skew * cut), float(curvature * cut), clipped=cut < 1.0)
