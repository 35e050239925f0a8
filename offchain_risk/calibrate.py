"""Calibrate a full on-chain risk-parameter set from market data."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from offchain_risk.data import PricePanel, load_dvol_if_present
from offchain_risk.models.haircuts import IMMultiplierPolicy, SquareRootImpact, dvol_ratio
from offchain_risk.models.horizon import (
    CLOSE_OUT_REFERENCE_USD,
    MarginPeriodOfRisk,
    add_on_shocks,
    liquidity_add_on_bps,
)
from offchain_risk.models.risk import var_es
from offchain_risk.models.scenarios import (
    DEFAULT_K,
    FilteredHistoricalSimulation,
    StudentTCopulaMonteCarlo,
    random_books,
    reduce_with_stress,
    select_stressed_period,
)
from offchain_risk.models.volatility import HOURLY_LAMBDA, EWMAVolatility, GARCHVolatility

PARAMS_VERSION = 1


@dataclass(frozen=True)
class CalibrationConfig:
    alpha: float = 0.99
    horizon_hours: int = MarginPeriodOfRisk().hours  # the margin period of risk (4 h)
    k: int = DEFAULT_K
    floor_bps: int = 50
    vol_model: str = "ewma"  # filter of the historical simulation: "ewma" or "garch"
    reference_position_usd: float = 5_000_000.0  # position size the haircut is set for
    seed: int = 0
    # probability on the stressed period's daily moves (docs/RISK_MODEL.md, "Stressed period")
    stress_weight: float = 0.25
    stress_window_days: int = 365
    # position (USD) whose close-out impact widens every scenario (0: no add-on); see
    # models/horizon.py and docs/RISK_MODEL.md, "Margin period of risk"
    close_out_position_usd: float = CLOSE_OUT_REFERENCE_USD
    monte_carlo_check: bool = True  # the copula cross-check (metadata only; takes seconds)


def calibrate(
    panel: PricePanel,
    cfg: CalibrationConfig,
    daily: PricePanel | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict:
    """Parameter set (JSON-ready dict) from an hourly panel ending at the as-of time.

    ``daily``: daily bars of the same assets, searched for the stressed period; only returns
    closed by the as-of time (the close of the last hourly bar) are used, so later rows of
    ``daily`` do not change the result. Required when ``cfg.stress_weight > 0``.
    ``data_dir``: the market-data folder the BTC implied volatility is read from (the
    default folder when None); without the file the predictive term uses GARCH only.
    """
    if panel.freq != "1h":
        raise ValueError("calibration runs on hourly bars")
    if cfg.vol_model not in ("ewma", "garch"):
        raise ValueError(f"vol_model must be 'ewma' or 'garch', got {cfg.vol_model!r}")
    if not 0.0 <= cfg.stress_weight <= 1.0:
        raise ValueError(f"stress_weight must be in [0, 1], got {cfg.stress_weight}")
    if cfg.stress_weight > 0 and (daily is None or daily.freq != "1d"):
        raise ValueError("stress_weight > 0 needs the daily bars of the assets (daily=...)")
    if daily is not None and daily.assets != panel.assets:
        raise ValueError(f"daily assets {daily.assets} != hourly assets {panel.assets}")
    panel.require_contiguous()
    asof = panel.timestamps[-1] + np.timedelta64(1, "h")
    returns = panel.log_returns()  # (n_t - 1, n_assets)
    h = cfg.horizon_hours
    ewma = EWMAVolatility(HOURLY_LAMBDA).fit(returns)
    garch = GARCHVolatility().fit(returns)
    filt = EWMAVolatility(HOURLY_LAMBDA) if cfg.vol_model == "ewma" else GARCHVolatility()
    fhs = FilteredHistoricalSimulation(filt, h).generate(returns, panel.assets)
    period = None
    if cfg.stress_weight > 0:
        d_close_t, d_ret = daily.returns_with_close_times()
        period = select_stressed_period(d_close_t, d_ret, asof, cfg.stress_window_days)
    shocks, _ = reduce_with_stress(
        fhs, period, cfg.stress_weight, h, cfg.alpha, cfg.k, seed=cfg.seed
    )

    # Monte Carlo cross-check: do the K shocks also cover copula ES on fresh random books?
    # A short history (a few weeks, as before the 2020 replay) has too few non-overlapping
    # horizon windows to fit the copula: the check is then recorded as not run.
    monte_carlo: dict | None = None
    if cfg.monte_carlo_check and returns.shape[0] // h >= 30:
        mc = StudentTCopulaMonteCarlo(EWMAVolatility(HOURLY_LAMBDA), h, seed=cfg.seed).generate(
            returns, panel.assets
        )
        books = random_books(1000, panel.n_assets, np.random.default_rng(cfg.seed + 1))
        mc_es = var_es(books, mc.moves, cfg.alpha, "Monte Carlo").es
        mc_ratio = shocks.max_loss(books) / mc_es
        monte_carlo = {
            "n_books": int(mc_ratio.size),
            "covered_share": float(np.mean(mc_ratio >= 1.0)),
            "min_ratio": float(mc_ratio.min()),
            "median_ratio": float(np.median(mc_ratio)),
            "copula_nu": float(mc.details["copula_nu"]),
        }

    # median daily volume over 30 days, or over the whole window when it is shorter
    impact = SquareRootImpact(adv_days=max(1, min(30, panel.volume_usd.shape[0] // 24)))
    adv = impact.average_daily_volume(panel.volume_usd)
    daily_vol = np.sqrt(ewma.forecast_variance(24))
    haircut = impact.haircut_bps(
        np.full(panel.n_assets, cfg.reference_position_usd), adv, daily_vol
    )
    add_on = liquidity_add_on_bps(cfg.close_out_position_usd, adv, daily_vol, impact)
    shocks_bps = add_on_shocks(shocks.shocks_bps, add_on)  # (n_assets, K)

    garch_ratio = float(np.max(np.sqrt(garch.forecast_variance(h) / h / garch.next_variance)))
    predicted, source = garch_ratio, "GARCH horizon forecast / next-hour vol"
    dvol = load_dvol_if_present(data_dir) if "BTC" in panel.assets else None
    if dvol is not None:
        iv = dvol_ratio(dvol, panel.timestamps, returns[:, panel.assets.index("BTC")], asof)
        if iv > predicted:
            predicted, source = iv, "BTC DVOL / 30-day realised, vs its 1-year median"
    im = IMMultiplierPolicy().multiplier(
        np.sqrt(ewma.next_variance), np.sqrt(np.mean(returns**2, axis=0)), predicted, source
    )
    return {
        "version": PARAMS_VERSION,
        "assets": list(panel.assets),
        "units": {
            "shocks_bps": "per asset, K relative price moves in basis points (int16; -1500 = "
            "-15%); scenario k is column k across assets",
            "haircut_bps": "liquidity haircut on collateral value, basis points",
            "floor_bps": "margin floor per unit of gross exposure, basis points",
            "im_multiplier_wad": "IM / MM as a WAD integer in a string (10**18 = 1.0)",
            "metadata.alpha": "ES confidence level the shocks cover (fraction, 0.975 = 97.5%)",
            "metadata.horizon_vol": "forecast volatility of the log move over the horizon "
            "(fraction, 0.05 = 5%)",
            "metadata.stressed_period": "close times (UTC) of the first and last daily move of "
            "the stressed period; weight = probability on its moves (fraction); "
            "rms_daily_vol = RMS 1-day log move over its days and assets (fraction)",
            "metadata.haircut_model.adv_usd": "median daily traded value, USD",
            "metadata.liquidity_add_on.bps": "close-out impact added to every scenario's "
            "magnitude, basis points",
        },
        "shocks_bps": {a: shocks_bps[i].astype(int).tolist() for i, a in enumerate(panel.assets)},
        "haircut_bps": {a: int(v) for a, v in zip(panel.assets, haircut, strict=True)},
        "floor_bps": {a: int(cfg.floor_bps) for a in panel.assets},
        "im_multiplier_wad": str(im.wad),
        "metadata": {
            "asof": str(asof) + "Z",
            "data_range": [str(panel.timestamps[0]) + "Z", str(asof) + "Z"],
            "data_source": "../shared/data/prices/1h (Binance USDT perpetual closes), "
            "iv/BTC_DVOL_1d.csv; see SOURCES.md there",
            "method": f"filtered historical simulation ({cfg.vol_model} filter, "
            f"lambda {HOURLY_LAMBDA:.5f}) blended with a stressed period, reduced to K "
            "tail-average scenarios scaled to cover ES for every calibration book "
            "(docs/RISK_MODEL.md)",
            "alpha": cfg.alpha,
            "horizon_hours": h,
            "k": int(shocks.shocks_bps.shape[1]),
            "scenario_scale": shocks.scale,
            "stressed_period": None
            if period is None
            else {
                "start": str(period.start) + "Z",
                "end": str(period.end) + "Z",
                "n_days": int(period.moves.shape[0]),
                "weight": cfg.stress_weight,
                "window_days": cfg.stress_window_days,
                "rms_daily_vol": period.rms_daily_vol,
                "data_source": "../shared/data/prices/1d (daily closes; see SOURCES.md there)",
                "rule": "ES of the mixture (1 - weight) current FHS + weight stressed daily "
                "moves, and never below the ES of the current FHS alone",
            },
            "scenario_sources": list(shocks.labels),
            "coverage": {
                "calibration_books": asdict(shocks.fit_coverage),
                "validation_books": asdict(shocks.validation_coverage),
                "monte_carlo_validation": monte_carlo,
            },
            "horizon_vol": {
                a: float(v)
                for a, v in zip(panel.assets, np.sqrt(ewma.forecast_variance(h)), strict=True)
            },
            "haircut_model": {
                "law": "impact = y * daily_vol * sqrt(position / (venue_share * ADV))",
                "y": impact.y,
                "venue_share": impact.venue_share,
                "adv_days": impact.adv_days,
                "reference_position_usd": cfg.reference_position_usd,
                "adv_usd": {a: float(v) for a, v in zip(panel.assets, adv, strict=True)},
            },
            "liquidity_add_on": {
                "close_out_position_usd": cfg.close_out_position_usd,
                "bps": {a: int(v) for a, v in zip(panel.assets, add_on, strict=True)},
                "rule": "every non-zero scenario move widened by the square-root impact of "
                "closing out that position, away from zero",
            },
            "im_multiplier": {
                "value": im.multiplier,
                "anti_procyclical_term": im.calm_term,
                "predictive_term": im.predictive_term,
                "predictive_source": im.predictive_source,
                "garch_ratio": garch_ratio,
            },
        },
    }
