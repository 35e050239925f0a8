"""Backtest of the option archetypes on BTC price and DVOL paths.

At every day's 00:00 UTC ``T`` (data closed by ``T`` only), each archetype is opened on a
30-day expiry around the BTC close ``S``, its legs valued with Black-76 at the vols of the
surface the keeper would publish (``models/vol_surface.py``). Its *realised* loss is the
change of value to ``T + h`` (``h`` = 24 h or 1 h): price from the hourly close, vol from the
surface fitted at ``T + h`` (DVOL is daily: over one hour the vol moves only through the
surface's realised inputs), time to expiry shorter by ``h``.

The *model level* is the full-revaluation worst loss over a price x vol grid:

- price moves ``{d_dn, d_dn / 2, 0, d_up / 2, d_up}``: the 99% expected shortfall of the
  down and up ``h``-hour BTC moves of filtered historical simulation (EWMA, the trailing
  two years of hourly returns: the risk engine's scenario method, one asset);
- vol moves: the whole smile scaled by ``1 - u``, ``1``, ``1 + u``, with ``u`` the 99%
  quantile of ``|d ln DVOL|`` over a day in the trailing two years (``u / sqrt(24)`` for one
  hour);
- each leg revalued at ``tau - h`` on the smile around the moved forward (sticky moneyness).

Exceedances (realised loss above the level) are tested with Kupiec and Christoffersen
(``backtest/stats.py``) against 1%. Capital efficiency compares the level with the same
model on each leg alone (summed: the hedges' worth) and with Deribit's standard
(non-portfolio) maintenance margin (:func:`deribit_standard_mm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.backtest.stats import TestResult, christoffersen_independence, kupiec_pof
from offchain_risk.data.loaders import Bars, ImpliedVol
from offchain_risk.models.options import black76
from offchain_risk.models.scenarios import FilteredHistoricalSimulation
from offchain_risk.models.vol_surface import ExpiryCurve, SurfaceFitter
from offchain_risk.models.volatility import HOURLY_LAMBDA, EWMAVolatility

#: Deribit's standard margin for a short option, fractions of the underlying: maintenance
#: 0.075 + mark; initial max(0.15 - OTM / underlying, 0.1) + mark. Long options: none.
DERIBIT_OPTION_MM = 0.075
#: Maintenance margin charged to the perp hedge in the Deribit comparison (assumed rate).
DERIBIT_PERP_MM = 0.02
TENOR_DAYS = 30
HOUR = np.timedelta64(1, "h")


@dataclass(frozen=True)
class Leg:
    """One leg per unit of archetype: ``kind`` spot | perp | call | put; ``strike`` relative
    to the opening price; ``qty`` signed units (``delta_hedge``: the perp's size is minus
    the options' delta at the opening, in place of ``qty``)."""

    kind: str
    qty: float
    strike: float = 1.0
    delta_hedge: bool = False


ARCHETYPES: dict[str, tuple[Leg, ...]] = {
    "covered call": (Leg("spot", 1.0), Leg("call", -1.0, 1.1)),
    "short put": (Leg("put", -1.0, 0.9),),
    "short straddle": (Leg("call", -1.0), Leg("put", -1.0)),
    "delta-hedged short call": (Leg("call", -1.0), Leg("perp", 0.0, delta_hedge=True)),
}


@dataclass(frozen=True)
class OptionBacktestConfig:
    horizon_hours: int = 24
    window_days: int = 730
    alpha: float = 0.99
    vol_quantile: float = 0.99
    tested_level: float = 0.01
    min_dvol_days: int = 60

    def __post_init__(self) -> None:
        if self.horizon_hours not in (1, 24):
            raise ValueError("option backtest: horizon_hours is 1 or 24")
        if not (0.5 < self.alpha < 1 and 0.5 < self.vol_quantile < 1):
            raise ValueError("option backtest: alpha and vol_quantile in (0.5, 1)")


@dataclass(frozen=True)
class Book:
    """An archetype opened at one time: per leg kind, strike (USD), quantity."""

    kinds: tuple[str, ...]
    strikes: np.ndarray  # (n_legs,) USD (0 for spot / perp)
    qty: np.ndarray  # (n_legs,)
    opened_at: float  # the opening price S


def smile_vols(curve: ExpiryCurve, strikes: np.ndarray, s: np.ndarray, scale: float = 1.0):
    """Vols ``(n_prices, n_strikes)`` of ``curve`` around each forward ``s: (n_prices,)``
    (sticky moneyness), times ``scale``."""
    x = np.log(np.asarray(strikes)[None, :] / np.atleast_1d(s)[:, None])
    return curve.vol(x) * scale


def open_book(legs: tuple[Leg, ...], s: float, curve: ExpiryCurve, tau_s: float) -> Book:
    """The archetype at price ``s``, options on ``curve``'s vols."""
    kinds = tuple(leg.kind for leg in legs)
    strikes = np.array([leg.strike * s if leg.kind in ("call", "put") else 0.0 for leg in legs])
    qty = np.array([leg.qty for leg in legs])
    opt = np.array([k in ("call", "put") for k in kinds])
    if any(leg.delta_hedge for leg in legs):
        vols = smile_vols(curve, strikes[opt], s)[0]
        r = black76(s, strikes[opt], vols, tau_s, np.array(kinds)[opt] == "call")
        hedge = -float((qty[opt] * r.delta).sum())
        qty = np.array([hedge if leg.delta_hedge else q for leg, q in zip(legs, qty, strict=True)])
    return Book(kinds, strikes, qty, s)


def leg_values(
    book: Book, s: np.ndarray, curve: ExpiryCurve, tau_s: float, scale: float = 1.0
) -> np.ndarray:
    """Value of each leg ``(n_prices, n_legs)`` at prices ``s: (n_prices,)``, options on
    ``curve`` scaled by ``scale``; spot at ``s``, perp at ``s - opened_at``."""
    s = np.atleast_1d(np.asarray(s, dtype=np.float64))
    out = np.empty((s.size, len(book.kinds)))
    opt = np.array([k in ("call", "put") for k in book.kinds])
    for j, kind in enumerate(book.kinds):
        if kind == "spot":
            out[:, j] = book.qty[j] * s
        elif kind == "perp":
            out[:, j] = book.qty[j] * (s - book.opened_at)
    if opt.any():
        k = book.strikes[opt]
        vols = smile_vols(curve, k, s, scale)  # (n_prices, n_opt)
        ss, kk = np.broadcast_arrays(s[:, None], k[None, :])
        calls = np.broadcast_to(np.array(book.kinds)[opt] == "call", kk.shape)
        px = black76(ss.ravel(), kk.ravel(), vols.ravel(), tau_s, calls.ravel(), False).price
        out[:, opt] = px.reshape(kk.shape) * book.qty[opt]
    return out


def deribit_standard_mm(book: Book, s: float, marks: np.ndarray) -> float:
    """Deribit's standard maintenance margin in USD: each short option ``0.075 S + mark``,
    the perp ``DERIBIT_PERP_MM`` of its notional, long options and spot collateral none.
    ``marks: (n_legs,)`` USD per unit (options only)."""
    mm = 0.0
    for j, kind in enumerate(book.kinds):
        q = book.qty[j]
        if kind in ("call", "put") and q < 0:
            mm += -q * (DERIBIT_OPTION_MM * s + marks[j])
        elif kind == "perp":
            mm += abs(q) * s * DERIBIT_PERP_MM
    return mm


@dataclass(frozen=True)
class OptionBacktestResult:
    config: OptionBacktestConfig
    labels: tuple[str, ...]  # (n_books,) archetypes
    times: np.ndarray  # (n_steps,) opening times
    realised_loss: np.ndarray  # (n_steps, n_books) USD per unit, positive = loss
    level: np.ndarray  # (n_steps, n_books) the model level (full-revaluation worst loss)
    legs_alone: np.ndarray  # (n_steps, n_books) sum of each leg's own level
    deribit_mm: np.ndarray  # (n_steps, n_books) Deribit standard maintenance margin
    price: np.ndarray  # (n_steps,) the opening BTC price
    price_moves: np.ndarray  # (n_steps, 2) the grid's ES down and up moves
    vol_move: np.ndarray  # (n_steps,) u

    def exceedances(self) -> np.ndarray:
        return self.realised_loss > self.level

    def coverage(self, book: int) -> tuple[int, int, TestResult, TestResult]:
        """(observations, exceedances, Kupiec at the tested level, Christoffersen)."""
        hits = self.exceedances()[:, book]
        n, x = int(hits.size), int(hits.sum())
        return n, x, kupiec_pof(n, x, self.config.tested_level), christoffersen_independence(hits)

    def efficiency(self, book: int) -> tuple[float, float]:
        """Median level / legs alone and level / Deribit standard MM."""
        lv = self.level[:, book]
        return (
            float(np.median(lv / self.legs_alone[:, book])),
            float(np.median(lv / self.deribit_mm[:, book])),
        )

    def summary(self) -> str:
        h = self.config.horizon_hours
        lines = [f"options backtest, {h} h: {self.times[0]} .. {self.times[-1]}"]
        for b, name in enumerate(self.labels):
            n, x, kup, chr_ = self.coverage(b)
            alone, deribit = self.efficiency(b)
            lines.append(
                f"{name}: {x}/{n} exceedances ({x / n:.2%}); Kupiec p {kup.p_value:.3f}, "
                f"Christoffersen p {chr_.p_value:.3f}; level / legs alone {alone:.2f}, "
                f"/ Deribit standard MM {deribit:.2f}"
            )
        return "\n".join(lines)


def _es_moves(moves: np.ndarray, alpha: float) -> tuple[float, float]:
    """Mean of the (1 - alpha) tails of ``moves: (n,)``: (down, up)."""
    m = max(1, int(np.ceil((1 - alpha) * moves.size - 1e-9)))
    part = np.partition(moves, (m - 1, moves.size - m))
    return float(part[:m].mean()), float(part[moves.size - m :].mean())


def run_option_backtest(
    bars: Bars,
    dvol: ImpliedVol,
    start: str | np.datetime64,
    end: str | np.datetime64,
    config: OptionBacktestConfig | None = None,
) -> OptionBacktestResult:
    """Daily openings at 00:00 UTC from ``start`` to ``end`` (exclusive)."""
    cfg = config or OptionBacktestConfig()
    if bars.freq != "1h":
        raise ValueError("option backtest: hourly bars")
    t0, t1 = np.datetime64(start, "D"), np.datetime64(end, "D")
    if t0 >= t1:
        raise ValueError(f"option backtest: start {t0} must be before end {t1}")
    first_dvol = dvol.dates[0] + cfg.min_dvol_days
    if t0 < first_dvol:
        raise ValueError(
            f"option backtest: needs {cfg.min_dvol_days} days of DVOL: start >= {first_dvol}"
        )
    h = cfg.horizon_hours
    closes_at = bars.timestamps + HOUR  # (n_bars,)
    log_close = np.log(bars.close)
    returns = np.diff(log_close)  # (n_bars - 1,) closing at closes_at[1:]
    fitter = SurfaceFitter(bars, dvol)
    fhs = FilteredHistoricalSimulation(EWMAVolatility(HOURLY_LAMBDA), h)
    dlog_dvol = np.diff(np.log(dvol.vol))  # (n_days - 1,) known at the end of day i + 1
    tenor = TENOR_DAYS * 86_400.0
    labels = tuple(ARCHETYPES)
    rows = {k: [] for k in ("t", "real", "level", "alone", "deribit", "s", "moves", "u")}
    for day in np.arange(t0, t1):
        t = day.astype("datetime64[s]")
        j = int(np.searchsorted(closes_at, t))  # bar closing at t
        if j >= closes_at.size or closes_at[j] != t or j + h >= closes_at.size:
            continue
        s0, s1 = float(bars.close[j]), float(bars.close[j + h])
        surf0 = fitter.fit(t, s0, [tenor]).curves[0]
        surf1 = fitter.fit(t + h * HOUR, s1, [tenor - h * 3_600]).curves[0]
        hist = returns[max(0, j - cfg.window_days * 24) : j]
        d_dn, d_up = _es_moves(fhs.generate(hist).moves[:, 0], cfg.alpha)
        closed = (dvol.dates + 1).astype("datetime64[s]") <= t  # DVOL days closed by t
        past = dlog_dvol[closed[1:]][-cfg.window_days :]
        u = float(np.quantile(np.abs(past), cfg.vol_quantile)) * np.sqrt(h / 24)
        grid_s = s0 * (1 + np.array([d_dn, d_dn / 2, 0.0, d_up / 2, d_up]))  # (5,)

        real, level, alone, deribit = [], [], [], []
        for name in labels:
            book = open_book(ARCHETYPES[name], s0, surf0, tenor)
            v0 = leg_values(book, s0, surf0, tenor)[0]  # (n_legs,)
            v1 = leg_values(book, s1, surf1, tenor - h * 3_600)[0]
            real.append(v0.sum() - v1.sum())
            # (3 vol moves x 5 prices, n_legs) leg losses on the grid
            losses = np.vstack(
                [
                    v0 - leg_values(book, grid_s, surf0, tenor - h * 3_600, 1 + m)
                    for m in (-u, 0.0, u)
                ]
            )
            level.append(max(0.0, losses.sum(axis=1).max()))
            alone.append(np.maximum(losses, 0.0).max(axis=0).sum())
            deribit.append(
                deribit_standard_mm(book, s0, v0 / np.where(book.qty != 0, book.qty, 1.0))
            )
        for k, v in zip(
            ("t", "real", "level", "alone", "deribit", "s", "moves", "u"),
            (t, real, level, alone, deribit, s0, (d_dn, d_up), u),
            strict=True,
        ):
            rows[k].append(v)
    if not rows["t"]:
        raise ValueError(f"option backtest: no opening with a full horizon in {t0} .. {t1}")
    return OptionBacktestResult(
        cfg,
        labels,
        np.array(rows["t"]),
        np.array(rows["real"]),
        np.array(rows["level"]),
        np.array(rows["alone"]),
        np.array(rows["deribit"]),
        np.array(rows["s"]),
        np.array(rows["moves"]),
        np.array(rows["u"]),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m offchain_risk.backtest.options [START END]``: both horizons, printed."""
    import sys

    from offchain_risk.data import load_bars, load_dvol

    args = sys.argv[1:] if argv is None else argv
    start, end = (args + ["2021-05-23", "2024-04-17"][len(args) :])[:2]
    bars, dvol = load_bars("BTC", "1h"), load_dvol()
    for h in (24, 1):
        res = run_option_backtest(bars, dvol, start, end, OptionBacktestConfig(horizon_hours=h))
        print(res.summary(), flush=True)


if __name__ == "__main__":
    main()
