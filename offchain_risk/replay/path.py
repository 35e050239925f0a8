"""The oracle rounds a window of hourly history becomes.

Each hourly bar of ``../shared/data/prices/1h`` gives one round at its close (``close``
mode) or three (``ohlc`` mode: the bar's two extremes, in the order the close suggests, then
the close), so the intra-hour wicks an oracle could have printed reach the feeds too. The
first bar's close is the opening price: the market is listed and the books are opened there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from offchain_risk.data.loaders import load_panel, parse_time

MODES = ("close", "ohlc")
HOUR = np.timedelta64(3600, "s")


@dataclass(frozen=True)
class PricePath:
    """``times``: (n_steps,) historical time of each round; ``prices``: (n_steps, n_assets)
    USD; ``bar``: (n_steps,) the hourly bar each round belongs to (1-based; bar 0 opens)."""

    assets: tuple[str, ...]
    opening_time: np.datetime64
    opening: np.ndarray  # (n_assets,) USD
    times: np.ndarray
    prices: np.ndarray
    bar: np.ndarray
    mode: str

    @property
    def n_steps(self) -> int:
        return len(self.times)

    @property
    def seconds(self) -> np.ndarray:
        """(n_steps,) seconds since the opening."""
        return (self.times - self.opening_time).astype("timedelta64[s]").astype(np.int64)

    def summary(self) -> str:
        worst = self.prices.min(axis=0) / self.opening - 1.0
        moves = ", ".join(f"{a} {w:+.1%}" for a, w in zip(self.assets, worst, strict=True))
        return (
            f"{self.n_steps} oracle rounds ({self.mode}) from {self.opening_time} to "
            f"{self.times[-1]}; worst move from the opening: {moves}"
        )


def window_bounds(start: str, end: str) -> tuple[np.datetime64, np.datetime64]:
    """``start`` / ``end`` as bar-open times; a bare date as ``end`` includes that whole day."""
    t0 = parse_time(start, "start")
    t1 = parse_time(end, "end")
    if len(str(end).strip()) == 10:  # YYYY-MM-DD: the day's last bar
        t1 = t1 + np.timedelta64(1, "D") - HOUR
    if t0 >= t1:
        raise ValueError(f"start {t0} must be before end {t1}")
    return t0, t1


def load_path(
    assets: tuple[str, ...] | list[str],
    start: str,
    end: str,
    mode: str = "close",
    *,
    max_hours: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> PricePath:
    """The oracle rounds of ``assets`` from ``start`` to ``end`` (hourly bars, inclusive);
    ``max_hours`` cuts the replay after that many bars."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if max_hours is not None and max_hours < 1:
        raise ValueError("max_hours must be at least 1")
    t0, t1 = window_bounds(start, end)
    panel = load_panel(tuple(assets), "1h", t0, t1, data_dir)
    panel.require_contiguous()
    if panel.timestamps[0] != t0:
        raise ValueError(f"no hourly bar at {t0} for all of {list(assets)}; data starts later")
    n_bars = len(panel.timestamps)
    if max_hours is not None:
        n_bars = min(n_bars, max_hours + 1)
    if n_bars < 2:
        raise ValueError("the window must hold at least two hourly bars")
    close, low, high = panel.close[:n_bars], panel.low[:n_bars], panel.high[:n_bars]
    ends = panel.timestamps[:n_bars].astype("datetime64[s]") + HOUR  # (n_bars,) close times
    if mode == "close":
        times, prices, bar = ends[1:], close[1:], np.arange(1, n_bars)
    else:
        # per asset: a falling bar prints its high first, a rising one its low first
        falling = close[1:] < close[:-1]  # (n_bars - 1, n_assets)
        first = np.where(falling, high[1:], low[1:])
        second = np.where(falling, low[1:], high[1:])
        third = np.timedelta64(1200, "s")
        prices = np.stack([first, second, close[1:]], axis=1).reshape(-1, close.shape[1])
        times = np.stack([ends[:-1] + third, ends[:-1] + 2 * third, ends[1:]], axis=1).ravel()
        bar = np.repeat(np.arange(1, n_bars), 3)
    if not np.isfinite(prices).all() or (prices <= 0).any():
        raise ValueError("the price path holds a non-finite or non-positive price")
    return PricePath(tuple(assets), ends[0], close[0].copy(), times, prices, bar, mode)
