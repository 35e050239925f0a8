"""The margin period of risk: the horizon the scenario shocks are sized for.

Maintenance margin must cover what a book can lose between the last price the keeper acted
on and the moment its liquidated slice is closed out. That time has three parts:

- ``oracle_interval_s``: the longest the market can move before the chain sees it (a
  Chainlink feed's heartbeat; the replay pushes one round per hourly bar);
- ``keeper_blocks * block_s``: from the oracle round to the keeper's restoring liquidation
  (measured: the replay report's "keeper ticks to restore a shock", at most 3 blocks);
- ``close_out_s``: the liquidator, who took the slice over at the oracle price less the
  discount, unwinds or hedges it.

The horizon is their sum, rounded up to whole hours (the scenario generator works on hourly
bars). Size enters separately: :func:`liquidity_add_on_bps` is the square-root impact of
closing out a position of a given size, added to every scenario's magnitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from offchain_risk.models.haircuts import SquareRootImpact

# Position (USD) whose close-out impact widens every scenario, for every calibration (the
# command line, the replay's listing and the backtest): the largest single account the replay
# opens. On chain margin is linear in size, so larger positions rely on the open-interest and
# account caps (docs/RISK_MODEL.md, "Size: the close-out add-on").
CLOSE_OUT_REFERENCE_USD = 500_000.0


@dataclass(frozen=True)
class MarginPeriodOfRisk:
    oracle_interval_s: float = 3_600.0
    keeper_blocks: int = 3  # measured in the replay (docs/demo/report.md, max over shocks)
    block_s: float = 12.0
    close_out_s: float = 7_200.0

    def __post_init__(self) -> None:
        if min(self.oracle_interval_s, self.block_s, self.close_out_s) < 0 or (
            self.keeper_blocks < 0
        ):
            raise ValueError("margin period of risk: every part must be non-negative")

    @property
    def seconds(self) -> float:
        return self.oracle_interval_s + self.keeper_blocks * self.block_s + self.close_out_s

    @property
    def hours(self) -> int:
        """The horizon in whole hours (at least 1)."""
        return max(1, math.ceil(self.seconds / 3_600 - 1e-9))

    def summary(self) -> str:
        return (
            f"{self.hours} h = oracle interval {self.oracle_interval_s / 3600:g} h + keeper "
            f"{self.keeper_blocks} blocks x {self.block_s:g} s + close-out "
            f"{self.close_out_s / 3600:g} h, rounded up"
        )


def liquidity_add_on_bps(
    position_usd: float,
    adv_usd: np.ndarray,
    daily_vol: np.ndarray,
    impact: SquareRootImpact | None = None,
) -> np.ndarray:
    """(n_assets,) bps: the price impact of closing out ``position_usd`` of each asset into
    its daily volume ``adv_usd`` (n_assets,) at daily volatility ``daily_vol`` (n_assets,),
    by the square-root law, rounded up."""
    if not (math.isfinite(position_usd) and position_usd >= 0):
        raise ValueError(f"position_usd must be finite and non-negative, got {position_usd}")
    impact = impact or SquareRootImpact()
    return impact.haircut_bps(np.full(len(adv_usd), position_usd), adv_usd, daily_vol)


def add_on_shocks(shocks_bps: np.ndarray, add_on_bps: np.ndarray) -> np.ndarray:
    """(n_assets, K) shocks with every non-zero move widened by its asset's add-on, away from
    zero (a long loses it in a fall, a short in a rise), falls floored at -100%."""
    s = np.asarray(shocks_bps, dtype=np.int64)
    a = np.asarray(add_on_bps, dtype=np.int64)[:, None]
    out = s + np.sign(s) * a
    return np.clip(out, -10_000, 32_767)
