"""Margin against exceedance rate on the backtest's random books: every peer rule swept over
its own level (``models/peers.py``), with Ballast's point on the same axes.

The random books are perp books with one signed leg per asset and no collateral, fixed for the
run (``books.fixed_random_weights``), so a peer rule's margin of a book is the same every day;
what changes is the realised loss over the horizon. A point is a rule at one level: its mean
margin as % of gross notional and the share of (day, book) observations whose realised loss
exceeds it, pooled over the random books and the out-of-sample days. A rule whose level
multiplies its margin (all four) traces a curve on which more margin never means more
exceedances; Ballast is on the frontier when no peer point has both less margin and a lower
exceedance rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.backtest.books import NOTIONAL_USD, fixed_random_weights
from offchain_risk.backtest.engine import BacktestResult
from offchain_risk.backtest.metrics import OOS_START, coverage_factor
from offchain_risk.models.peers import PeerRule, peer_rules


@dataclass(frozen=True)
class SweepPoint:
    rule: str
    level: float
    margin_pct: float  # mean MM, % of gross notional
    exceed_rate: float  # share of (day, book) observations with realised loss > MM


@dataclass(frozen=True)
class BacktestFrontier:
    points: list[SweepPoint]  # every peer rule at every level of its sweep
    ballast: SweepPoint
    # rule -> mean margin (% of gross) of the rule at its published level times the smallest
    # factor that brings its exceedance rate down to Ballast's (exact: margin is linear in
    # the level for every rule here)
    equal_coverage_pct: dict[str, float]
    n_books: int
    n_steps: int

    @property
    def dominated_by(self) -> list[SweepPoint]:
        """Peer points with both less margin and a lower exceedance rate than Ballast's."""
        b = self.ballast
        return [
            p for p in self.points if p.margin_pct < b.margin_pct and p.exceed_rate < b.exceed_rate
        ]

    def saving_at_equal_coverage(self, rule: str) -> float:
        """1 - Ballast / (rule at Ballast's exceedance rate): 0.25 = 25% less margin."""
        return 1.0 - self.ballast.margin_pct / self.equal_coverage_pct[rule]

    def summary(self) -> str:
        lines = [
            f"backtest frontier: {self.n_books} random books x {self.n_steps} days; Ballast "
            f"{self.ballast.margin_pct:.2f}% of gross, {self.ballast.exceed_rate:.3%} exceeded"
        ]
        for rule, pct in self.equal_coverage_pct.items():
            lines.append(
                f"{rule} at Ballast's exceedance rate: {pct:.2f}% of gross "
                f"(Ballast {-100 * self.saving_at_equal_coverage(rule):+.1f}%)"
            )
        lines.append(f"peer points both cheaper and safer: {len(self.dominated_by)}")
        return "\n".join(lines)


def backtest_frontier(
    result: BacktestResult,
    start: str = OOS_START,
    rules: tuple[PeerRule, ...] | None = None,
) -> BacktestFrontier:
    """Sweep ``rules`` (default: every peer rule) on the random books from ``start``."""
    cfg = result.config
    steps = result.mask(start)
    first = result.n_archetypes
    if not steps.any():
        raise ValueError(f"no backtest step from {start}")
    # (n_random, n_assets) signed perp notional, USD: the books the engine margined
    perp_usd = fixed_random_weights(cfg.n_random_books, len(result.assets), cfg.seed) * NOTIONAL_USD
    if perp_usd.shape[0] != len(result.labels) - first:
        raise ValueError("the result's random books do not match its configuration")
    coll_usd = np.zeros_like(perp_usd)
    gross = np.abs(perp_usd).sum(axis=1)  # (n_random,)
    loss = result.realised_loss[steps, first:]  # (n_steps, n_random)
    rules = peer_rules(result.assets) if rules is None else rules
    points = []
    equal: dict[str, float] = {}
    ballast_mm = result.margin["ballast"][steps, first:]
    x = int((loss > ballast_mm).sum())
    for rule in rules:
        for level in rule.levels:
            mm, _ = rule.margin(perp_usd, coll_usd, level)  # (n_random,)
            points.append(
                SweepPoint(
                    rule.name,
                    level,
                    100.0 * mm.sum() / gross.sum(),
                    float((loss > mm).mean()),
                )
            )
        mm, _ = rule.margin(perp_usd, coll_usd, rule.published)
        c = coverage_factor(loss, np.broadcast_to(mm, loss.shape), x)
        equal[rule.name] = c * 100.0 * mm.sum() / gross.sum()
    ballast = SweepPoint(
        "Ballast",
        1.0,
        100.0 * ballast_mm.sum() / result.gross[steps, first:].sum(),
        x / loss.size,
    )
    return BacktestFrontier(points, ballast, equal, loss.shape[1], loss.shape[0])
