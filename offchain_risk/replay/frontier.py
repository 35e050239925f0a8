"""Margin against bad debt over a replayed window: each peer rule swept over its own level,
with Ballast's point on the same axes.

The peer venues are not deployed: each rule at each level runs through :func:`simulate`, a
numpy model of the replay (the same books, the same oracle rounds, the devnet's liquidation
policy as ``Liquidations.vy`` plans it: when equity E falls below MM the keeper takes the
smallest pro-rata fraction f that restores ``MM * (1 + target buffer)``, at most the close
cap per call unless health is critical, and the book pays the penalty
``f * min(d * MM, max(E, 0))`` with d growing from the policy's minimum to its maximum as
health falls to zero, so a liquidation never takes a book below zero; a book whose equity is
negative is closed whole and its hole is bad debt). Ballast's own rule runs through the same
model (its opening listing, held fixed) next to its measured point from the chain.

The frontier holds the capital fixed: every book holds, under every rule, the equity it
holds on Ballast's chain (its buffer over Ballast's opening IM). A rule then decides what it
asks (the margin axis: its IM at the opening) and when it liquidates, and nothing else, as
in the backtest's frontier (the same books, the rule's margin against their losses). The
sweep with every book funded at its rule's own IM (``own_im_points``) is kept beside it: it
measures the traders' leverage as much as the rule (a rule asking 1% of gross makes every
book 100x and closes it out in the first small steps of a slide, before the gap), so its bad
debt is not monotone in a rule's level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offchain_risk import devnet
from offchain_risk.models.liquidation import LiquidationPolicy
from offchain_risk.models.margin import margin_float
from offchain_risk.models.peers import PeerRule, peer_rules
from offchain_risk.units import WAD


@dataclass(frozen=True)
class SimResult:
    opening_im_usd: float  # margin the books hold at the opening: sum of IM
    bad_debt_usd: float
    liquidations: int
    closed: int
    liquidated: int = 0  # books liquidated at least once
    penalties_usd: float = 0.0  # what the books paid their liquidators


@dataclass(frozen=True)
class FrontierPoint:
    rule: str
    level: float
    opening_im_usd: float
    bad_debt_usd: float
    # What the rule cost the traders: books liquidated at least once, books closed whole,
    # penalties paid (a rule can keep bad debt low by closing books out early in a slide).
    liquidated: int = 0
    closed: int = 0
    penalties_usd: float = 0.0


def plan(
    equity: np.ndarray, mm: np.ndarray, policy: LiquidationPolicy
) -> tuple[np.ndarray, np.ndarray]:
    """(fraction, penalty USD) per book below MM, in floats, as ``Liquidations._plan`` sets
    them (the exact twin is :func:`offchain_risk.models.liquidation.preview`): the discount
    d grows from the minimum at E = MM to the maximum at E <= 0; f is the smallest fraction
    restoring ``E >= (1 + buffer) MM`` net of the penalty ``f * min(d MM, max(E, 0))``, at
    most the close cap unless health is critical, and 1 below zero or under the dust line.
    ``equity``, ``mm``: (n_books,) USD, ``mm > equity`` where it matters."""
    d_min, d_max = policy.min_discount / WAD, policy.max_discount / WAD
    target = 1.0 + policy.target_buffer / WAD
    safe_mm = np.where(mm > 0, mm, 1.0)
    health = np.clip(equity / safe_mm, 0.0, 1.0)
    cost = np.minimum((d_min + (d_max - d_min) * (1.0 - health)) * mm, np.clip(equity, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):  # books at or above MM: not used
        f = np.clip((target * mm - equity) / (target * mm - cost), 0.0, 1.0)
    f = np.where(
        equity >= policy.critical_health / WAD * mm, np.minimum(f, policy.close_cap / WAD), f
    )
    f = np.where((mm < policy.dust_margin / WAD) | (equity < 0), 1.0, f)
    return f, f * cost


def simulate(
    margin,
    perp_units: np.ndarray,
    collateral_units: np.ndarray,
    buffers: np.ndarray,
    prices: np.ndarray,
    haircut: np.ndarray,
    policy: LiquidationPolicy,
    max_passes: int = 8,
    equity: np.ndarray | None = None,
) -> SimResult:
    """Run books through price rounds under ``margin(perp_usd, collateral_usd) -> (mm, im)``.

    ``perp_units``, ``collateral_units``: (n_books, n_assets) signed perp size and collateral,
    whole tokens; ``buffers``: (n_books,) equity over IM at the opening, fraction of IM;
    ``prices``: (n_rounds + 1, n_assets) USD, row 0 the opening; ``haircut``: (n_assets,)
    fraction taken off collateral value; ``equity``: (n_books,) USD equity at the opening,
    the same under every rule (``buffers`` is then unused); a book whose MM is above it is
    liquidated at the first round.
    """
    size = np.array(perp_units, dtype=np.float64)
    coll = np.array(collateral_units, dtype=np.float64)
    keep = 1.0 - np.asarray(haircut, dtype=np.float64)
    p0 = prices[0]
    _, im0 = margin(size * p0, coll * p0)
    if equity is None:
        equity0 = im0 * (1.0 + np.asarray(buffers, dtype=np.float64))
    else:
        equity0 = np.array(equity, dtype=np.float64)
        if equity0.shape != im0.shape:
            raise ValueError(f"equity must be ({len(im0)},) USD, got shape {equity0.shape}")
    # cash so that equity = cash + collateral * price * keep + size * price
    cash = equity0 - (coll * p0 * keep).sum(axis=1) - (size * p0).sum(axis=1)
    bad_debt, liquidations, closed, penalties = 0.0, 0, 0, 0.0
    alive = np.ones(len(cash), dtype=bool)
    touched = np.zeros(len(cash), dtype=bool)
    for p in prices[1:]:
        for _ in range(max_passes):
            perp_usd, coll_usd = size * p, coll * p
            equity = cash + (coll_usd * keep).sum(axis=1) + perp_usd.sum(axis=1)
            mm, _ = margin(perp_usd, coll_usd)
            under = alive & (equity < mm) & (mm > 0)
            if not under.any():
                break
            f, penalty = plan(equity, mm, policy)
            f = np.where(under, f, 0.0)
            paid = np.where(under, penalty, 0.0)
            after = equity - paid  # never below zero by itself
            liquidations += int(under.sum())
            touched |= under
            penalties += float(paid.sum())
            full = under & (f >= 1.0)
            bad_debt += float(np.clip(-after[full], 0.0, None).sum())
            closed += int(full.sum())
            size *= (1.0 - f)[:, None]
            coll *= (1.0 - f)[:, None]
            after = np.where(full, 0.0, after)
            cash = np.where(
                under,
                after - (coll * p * keep).sum(axis=1) - (size * p).sum(axis=1),
                cash,
            )
            alive &= ~full
    return SimResult(
        float(im0.sum()), bad_debt, liquidations, closed, int(touched.sum()), penalties
    )


def scenario_margin(shocks_bps: np.ndarray, floor_bps: np.ndarray, im_multiplier: float):
    """Ballast's rule as a ``margin`` function: (n_assets, K) shocks, floors, IM / MM."""

    def margin(perp_usd: np.ndarray, coll_usd: np.ndarray):
        expo = perp_usd + coll_usd
        gross = np.abs(perp_usd) + coll_usd
        return margin_float(expo, gross, shocks_bps, floor_bps, im_multiplier)

    return margin


def sweep(
    rules: tuple[PeerRule, ...],
    perp_units: np.ndarray,
    collateral_units: np.ndarray,
    buffers: np.ndarray,
    prices: np.ndarray,
    haircut: np.ndarray,
    policy: LiquidationPolicy,
    equity: np.ndarray | None = None,
) -> list[FrontierPoint]:
    """Every rule at every one of its levels through :func:`simulate` (``equity``: as there,
    the books' capital under every rule; None: each rule funds them at its own IM)."""
    points = []
    for rule in rules:
        for level in rule.levels:

            def margin(perp, coll, rule=rule, level=level):
                return rule.margin(perp, coll, level)

            r = simulate(
                margin,
                perp_units,
                collateral_units,
                buffers,
                prices,
                haircut,
                policy,
                equity=equity,
            )
            points.append(
                FrontierPoint(
                    rule.name,
                    level,
                    r.opening_im_usd,
                    r.bad_debt_usd,
                    r.liquidated,
                    r.closed,
                    r.penalties_usd,
                )
            )
    return points


def dominating(points: list[FrontierPoint], im_usd: float, bad_debt_usd: float):
    """The points with both less opening margin and less bad debt than (im, bad debt)."""
    return [p for p in points if p.opening_im_usd < im_usd and p.bad_debt_usd < bad_debt_usd]


@dataclass(frozen=True)
class Frontier:
    points: list[FrontierPoint]  # every peer rule at every level, books at Ballast's capital
    ballast_chain: tuple[float, float]  # (opening IM, bad debt) measured on the chain
    ballast_model: SimResult  # Ballast's opening listing through the same model
    # the flat venue measured on the chain, and the same rule through the model at its own
    # IM (as the chain funds it): how far the model's bad debt is from the chain's (None
    # without the baseline)
    flat_chain: tuple[float, float] | None = None
    flat_model: FrontierPoint | None = None
    # the same sweep with every book funded at the rule's own IM (see the module doc)
    own_im_points: list[FrontierPoint] = field(default_factory=list)

    @property
    def dominated_by(self) -> list[FrontierPoint]:
        return dominating(self.points, *self.ballast_chain)

    @property
    def own_im_dominated_by(self) -> list[FrontierPoint]:
        return dominating(self.own_im_points, *self.ballast_chain)


def model_sweeps(
    path, specs, listing
) -> tuple[SimResult, list[FrontierPoint], list[FrontierPoint]]:
    """The replay's books ``specs`` over ``path``'s rounds through the model: Ballast's
    ``listing`` held fixed, every peer rule with the books at the capital they hold on
    Ballast's chain, and every peer rule with the books at the rule's own IM."""
    size = np.array([s.size for s in specs], dtype=np.float64)
    coll = np.array([s.collateral for s in specs], dtype=np.float64)
    buffers = np.array([s.buffer for s in specs], dtype=np.float64)
    prices = np.vstack([path.opening, path.prices])
    haircut = np.array([m.haircut_bps for m in listing.markets], dtype=np.float64) / 1e4
    policy = devnet.DEFAULT_POLICY  # both venues of the replay run it
    floors = np.array([m.floor_bps for m in listing.markets], dtype=np.float64)
    margin = scenario_margin(listing.shocks_bps, floors, listing.im_multiplier_wad / WAD)
    ballast = simulate(margin, size, coll, buffers, prices, haircut, policy)
    # the books' capital as Ballast's chain holds it: the buffer over its opening IM
    _, im0 = margin(size * prices[0], coll * prices[0])
    capital = im0 * (1.0 + buffers)
    rules = peer_rules(path.assets)
    points = sweep(rules, size, coll, buffers, prices, haircut, policy, equity=capital)
    own_im = sweep(rules, size, coll, buffers, prices, haircut, policy)
    return ballast, points, own_im


def replay_frontier(
    replay, ballast_bad_debt_usd: float, flat_bad_debt_usd: float | None = None
) -> Frontier:
    """The frontier of a finished :class:`~offchain_risk.replay.replay.Replay`, with
    Ballast's (and the flat venue's) bad debt as measured on the chain."""
    ballast, points, own_im = model_sweeps(
        replay.path, replay.venues[0].seeded.specs, replay.listing
    )
    b = replay.venues[0]
    chain_point = (b.opening["im"] / WAD, float(ballast_bad_debt_usd))
    flat_chain = flat_model = None
    if flat_bad_debt_usd is not None and len(replay.venues) > 1:
        flat_chain = (replay.venues[1].opening["im"] / WAD, float(flat_bad_debt_usd))
        flat_model = next(
            (p for p in own_im if p.rule == "flat % of gross" and p.level == 0.065), None
        )
    return Frontier(points, chain_point, ballast, flat_chain, flat_model, own_im)


def envelope(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """One rule's efficient frontier: its points by increasing margin, each kept only if it
    has less bad debt than every cheaper one. Bad debt along a sweep is path-dependent (a
    level can liquidate a book an hour earlier or later), so the raw sweep need not fall at
    every step; the envelope is what a venue choosing its level can get."""
    out: list[FrontierPoint] = []
    for p in sorted(points, key=lambda p: p.opening_im_usd):
        if not out or p.bad_debt_usd < out[-1].bad_debt_usd:
            out.append(p)
    return out


def equal_safety(points: list[FrontierPoint], bad_debt_usd: float) -> dict[str, FrontierPoint]:
    """Per rule, its cheapest level with no more bad debt than ``bad_debt_usd`` (absent when
    no level of the sweep gets there)."""
    out: dict[str, FrontierPoint] = {}
    for p in points:
        if p.bad_debt_usd <= bad_debt_usd + 0.5 and (
            p.rule not in out or p.opening_im_usd < out[p.rule].opening_im_usd
        ):
            out[p.rule] = p
    return out


def plot_frontier(frontier: Frontier, path, title: str):
    """Opening margin against bad debt: a line per peer rule, Ballast's points; beside it
    the same sweep with every book at its rule's own IM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(frontier.points, "books at the capital they hold on Ballast (the frontier)")]
    if frontier.own_im_points:
        panels.append((frontier.own_im_points, "books at each rule's own IM x their buffer"))
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 5), squeeze=False)
    for ax, (points, subtitle) in zip(axes[0], panels, strict=True):
        for rule in dict.fromkeys(p.rule for p in points):
            pts = sorted((p for p in points if p.rule == rule), key=lambda p: p.level)
            ax.plot(
                [p.opening_im_usd / 1e6 for p in pts],
                [p.bad_debt_usd / 1e3 for p in pts],
                marker="o",
                ms=3,
                lw=1.2,
                label=rule,
            )
        im, bad = frontier.ballast_chain
        ax.plot(im / 1e6, bad / 1e3, "k*", ms=16, label="Ballast (on the chain)")
        m = frontier.ballast_model
        ax.plot(
            m.opening_im_usd / 1e6,
            m.bad_debt_usd / 1e3,
            "ko",
            mfc="none",
            ms=9,
            label="Ballast's opening listing (model)",
        )
        # the flat venue's chain books are funded at its own IM: the right panel's model
        if frontier.flat_chain is not None and (ax is axes[0][-1]):
            im, bad = frontier.flat_chain
            ax.plot(im / 1e6, bad / 1e3, "bs", ms=9, label="flat 6.5% venue (on the chain)")
        ax.set_xlabel("margin used at the opening, sum of IM ($M)")
        ax.set_ylabel("bad debt ($k)")
        ax.set_title(subtitle, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
