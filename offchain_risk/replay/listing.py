"""The replay's listing from the risk engine: every market calibrated on history before the
window.

:func:`calibrated_listing` runs :func:`offchain_risk.calibrate.calibrate` on the hourly bars
that closed by the as-of time (the replay's window start: nothing of the window or after it
is read) and the daily bars closed by then (the stressed period). Every asset with at least
``min_history_days`` of contiguous hourly history before the as-of time is calibrated, jointly
with the others, so the scenarios carry their correlation. An asset with less history takes
a hand-written shock row (``devnet.REPLAY_SPECS``, or the riskiest devnet row for a symbol
with none): the listing names it in ``fallback`` and the report prints it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from offchain_risk import devnet
from offchain_risk.calibrate import CalibrationConfig, calibrate
from offchain_risk.data.loaders import DataNotFoundError, load_bars, load_panel, parse_time
from offchain_risk.models.horizon import CLOSE_OUT_REFERENCE_USD, MarginPeriodOfRisk
from offchain_risk.models.margin import pad_scenarios

HOUR = np.timedelta64(1, "h")
# A symbol with neither history nor a devnet row takes the riskiest devnet market's row.
GENERIC_FALLBACK = "LINK"


@dataclass(frozen=True)
class ListingConfig:
    horizon: MarginPeriodOfRisk = field(default_factory=MarginPeriodOfRisk)
    window_days: int = 730  # hourly history the scenarios are built from, at most
    min_history_days: int = 14  # less than this and an asset takes a hand-written row
    close_out_position_usd: float = CLOSE_OUT_REFERENCE_USD
    alpha: float = 0.99
    stress_weight: float = 0.25
    recalibrate_hours: int = 4  # the keeper's risk updater recalibrates this often (history)

    def calibration(self, stress_weight: float | None = None) -> CalibrationConfig:
        return CalibrationConfig(
            alpha=self.alpha,
            horizon_hours=self.horizon.hours,
            stress_weight=self.stress_weight if stress_weight is None else stress_weight,
            close_out_position_usd=self.close_out_position_usd,
            monte_carlo_check=False,  # metadata only; `calibrate` runs it
        )


@dataclass(frozen=True)
class Listing:
    """Markets in the order asked, their (n, 16) shocks, the IM multiplier (WAD), and how
    each was set. ``params``: the calibration (``calibrate``'s JSON dict) or None."""

    markets: tuple[devnet.MarketSpec, ...]
    shocks_bps: np.ndarray
    im_multiplier_wad: int
    asof: np.datetime64
    calibrated: tuple[str, ...]
    fallback: tuple[str, ...]
    params: dict | None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        lines = [f"risk engine listing as of {self.asof}Z (data closed by then only)"]
        if self.calibrated:
            meta = self.params["metadata"]
            lines.append(
                f"calibrated: {', '.join(self.calibrated)} (horizon {meta['horizon_hours']} h, "
                f"ES {meta['alpha']}, K {meta['k']}, IM x{self.im_multiplier_wad / 1e18:.4f})"
            )
        if self.fallback:
            names = ", ".join(self.fallback)
            lines.append(f"hand-written shock rows (too little history): {names}")
        lines.extend(self.notes)
        return "\n".join(lines)


def history_before(
    asset: str, asof: np.datetime64, data_dir: str | os.PathLike[str] | None
) -> np.timedelta64:
    """How much contiguous hourly history of ``asset`` closed by ``asof`` (its last gap-free
    stretch), as a duration."""
    bars = load_bars(asset, "1h", data_dir)
    ts = bars.timestamps[bars.timestamps + HOUR <= asof]
    if ts.size < 2:
        return np.timedelta64(0, "h")
    gaps = np.flatnonzero(np.diff(ts) > HOUR)
    first = ts[gaps[-1] + 1] if gaps.size else ts[0]
    return (ts[-1] - first + HOUR).astype("timedelta64[h]")


def calibration_inputs(
    assets: tuple[str, ...],
    asof: np.datetime64,
    cfg: ListingConfig,
    data_dir: str | os.PathLike[str] | None = None,
):
    """(hourly panel, daily panel or None, notes) of ``assets`` with every bar closed by
    ``asof``: the last contiguous stretch of the common hourly index, at most
    ``cfg.window_days`` long."""
    notes: list[str] = []
    last_open = asof - HOUR
    panel = load_panel(assets, "1h", end=last_open, data_dir=data_dir)
    panel = panel.between(last_open - np.timedelta64(cfg.window_days, "D") + HOUR, None)
    gaps = panel.common_gaps()
    if gaps.size:
        panel = panel.between(panel.timestamps[gaps[-1] + 1], None)
    daily = None
    if cfg.stress_weight > 0:
        try:
            daily = load_panel(assets, "1d", end=asof - np.timedelta64(1, "D"), data_dir=data_dir)
        except (DataNotFoundError, ValueError) as exc:
            notes.append(f"no stressed period: {exc}")
    return panel, daily, notes


def calibrated_listing(
    opening: dict[str, float],
    asof: str | np.datetime64,
    cfg: ListingConfig | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Listing:
    """Listing of ``opening`` (symbol -> opening price USD, in market order) from the risk
    engine calibrated on data closed by ``asof`` (see the module doc)."""
    cfg = cfg or ListingConfig()
    t = parse_time(asof, "asof")
    for symbol, price in opening.items():
        if not price > 0:
            raise ValueError(f"{symbol}: opening price must be positive, got {price}")
    need = np.timedelta64(cfg.min_history_days * 24, "h")
    eligible = tuple(s for s in opening if history_before(s, t, data_dir) >= need)
    params, notes = None, []
    if eligible:
        panel, daily, notes = calibration_inputs(eligible, t, cfg, data_dir)
        if panel.timestamps.size < cfg.min_history_days * 24:
            notes.append(
                f"common hourly history of {', '.join(eligible)} before {t} is "
                f"{panel.timestamps.size} h (< {cfg.min_history_days} days): none calibrated"
            )
            eligible = ()
        else:
            stress = cfg.stress_weight if daily is not None else 0.0
            params = calibrate(panel, cfg.calibration(stress), daily, data_dir)
    calibrated = set(eligible)
    im_wad = int(params["im_multiplier_wad"]) if params else devnet.DEFAULT_IM_MULTIPLIER_WAD
    specs, rows, fallback = [], [], []
    for symbol, price in opening.items():
        if symbol in calibrated:
            token = devnet.REPLAY_SPECS.get(symbol, (0, 0, None, 0))[2]
            specs.append(
                devnet.MarketSpec(
                    symbol,
                    float(price),
                    int(params["floor_bps"][symbol]),
                    int(params["haircut_bps"][symbol]),
                    token,
                )
            )
            rows.append(pad_scenarios(np.array([params["shocks_bps"][symbol]]))[0])
            continue
        fallback.append(symbol)
        if symbol in devnet.REPLAY_SPECS:
            floor_bps, haircut_bps, token, row = devnet.REPLAY_SPECS[symbol]
        else:  # a perp with the riskiest devnet market's rules
            floor_bps, haircut_bps, _, row = devnet.REPLAY_SPECS[GENERIC_FALLBACK]
            token = None
        specs.append(devnet.MarketSpec(symbol, float(price), floor_bps, haircut_bps, token))
        rows.append(devnet.DEFAULT_SHOCKS_BPS[row])
    return Listing(
        tuple(specs),
        np.array(rows, dtype=np.int64),
        im_wad,
        t,
        tuple(s for s in opening if s in calibrated),
        tuple(fallback),
        params,
        tuple(notes),
    )
