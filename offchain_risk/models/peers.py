"""Rule-based margin of other venues, for comparison with Ballast's scenario margin.

Every rule maps a book's per-asset legs to a maintenance margin (USD) and an IM, at a
``level``: a multiplier on the rule's published parameters (1 = as published), which the
frontier sweep moves to trace margin against losses. Legs: ``perp_usd`` (n_books, n_assets)
signed perp notional, ``collateral_usd`` (n_books, n_assets) non-cash collateral value.

- ``flat``: a flat rate of gross exposure, collateral legs included (the replay's baseline
  venue); IM = 1.5 MM. ``level`` is the MM rate itself.
- ``tiers (Hyperliquid)``: maximum leverage by market and position-size tier, MM half the IM
  at that leverage (Hyperliquid's docs, "Margin tiers": BTC 40x up to $150M of notional,
  then 20x; ETH 25x up to $100M, then 15x; other majors 10x up to $20M, then 5x).
- ``tiers (dYdX v4)``: liquidity tiers by market, IMF 5% for BTC and ETH (large cap) and 10%
  for the rest, MMF 60% of the IMF, no size term (dYdX scales by open interest, not by
  position).
- ``size-scaled (Synthetix)``: per position ``|n| * 0.5 * (2% + |n| / skew_scale)``, skew
  scale $1B for BTC and ETH and $250M otherwise; IM = 2 MM (the backtest's rule).

Collateral counts towards equity (after the venue's haircut) and, except under ``flat``, is
not margined: these venues margin perp positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from offchain_risk.backtest.books import (
    SYNTHETIX_MIN_IM,
    SYNTHETIX_MM_SCALAR,
    SYNTHETIX_SKEW_SCALE_OTHER_USD,
    SYNTHETIX_SKEW_SCALE_USD,
)

# (lower bound of |notional| USD, maximum leverage), lowest first
HYPERLIQUID_TIERS: dict[str, tuple[tuple[float, float], ...]] = {
    "BTC": ((0.0, 40.0), (150e6, 20.0)),
    "ETH": ((0.0, 25.0), (100e6, 15.0)),
}
HYPERLIQUID_OTHER: tuple[tuple[float, float], ...] = ((0.0, 10.0), (20e6, 5.0))
DYDX_LARGE_CAP = ("BTC", "ETH")
DYDX_IMF = {"large": 0.05, "other": 0.10}
DYDX_MMF = 0.60  # maintenance fraction of the IMF


@dataclass(frozen=True)
class PeerRule:
    """``margin(perp_usd, collateral_usd, level) -> (mm, im)`` (n_books,) USD each."""

    name: str
    margin: Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]
    levels: tuple[float, ...]  # the sweep, increasing
    published: float  # the level as published (flat: the baseline venue's 6.5%)


def flat_rule(assets: tuple[str, ...]) -> PeerRule:
    def margin(perp: np.ndarray, coll: np.ndarray, level: float):
        mm = level * (np.abs(perp) + np.abs(coll)).sum(axis=1)
        return mm, 1.5 * mm

    levels = tuple(sorted({round(x, 4) for x in np.arange(0.01, 0.2001, 0.01)} | {0.065}))
    return PeerRule("flat % of gross", margin, levels, 0.065)


def hyperliquid_rule(assets: tuple[str, ...]) -> PeerRule:
    tables = [HYPERLIQUID_TIERS.get(a, HYPERLIQUID_OTHER) for a in assets]

    def margin(perp: np.ndarray, coll: np.ndarray, level: float):
        n = np.abs(perp)  # (n_books, n_assets)
        lev = np.empty_like(n)
        for j, table in enumerate(tables):
            bounds = np.array([b for b, _ in table])
            idx = np.searchsorted(bounds, n[:, j], side="right") - 1
            lev[:, j] = np.array([x for _, x in table])[idx]
        im = level * (n / lev).sum(axis=1)
        return 0.5 * im, im

    return PeerRule("tiers (Hyperliquid)", margin, _multipliers(), 1.0)


def dydx_rule(assets: tuple[str, ...]) -> PeerRule:
    imf = np.array([DYDX_IMF["large" if a in DYDX_LARGE_CAP else "other"] for a in assets])

    def margin(perp: np.ndarray, coll: np.ndarray, level: float):
        im = level * (np.abs(perp) @ imf)
        return DYDX_MMF * im, im

    return PeerRule("tiers (dYdX v4)", margin, _multipliers(), 1.0)


def synthetix_rule(assets: tuple[str, ...]) -> PeerRule:
    skew = np.array(
        [SYNTHETIX_SKEW_SCALE_USD.get(a, SYNTHETIX_SKEW_SCALE_OTHER_USD) for a in assets]
    )

    def margin(perp: np.ndarray, coll: np.ndarray, level: float):
        n = np.abs(perp)
        mm = level * (n * SYNTHETIX_MM_SCALAR * (SYNTHETIX_MIN_IM + n / skew)).sum(axis=1)
        return mm, 2.0 * mm

    return PeerRule("size-scaled (Synthetix)", margin, _multipliers(), 1.0)


def peer_rules(assets: tuple[str, ...]) -> tuple[PeerRule, ...]:
    return tuple(f(assets) for f in (flat_rule, hyperliquid_rule, dydx_rule, synthetix_rule))


def _multipliers() -> tuple[float, ...]:
    return (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0)
