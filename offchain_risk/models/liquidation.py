"""The liquidation policy of ``Liquidations.vy``, vectorised over accounts: the twin.

:func:`preview` is ``Liquidations.liquidation_preview`` for many accounts at once, equal
to the contract to the wei: the same plan (discount, allowed and executed fraction,
penalty split, bounty), the same slices (``fixed_math._slice``) valued with
:func:`~offchain_risk.models.margin.margin_exact`, and the same share of a hole charged to
the insurance fund. Keepers use it to rank and size liquidations without one RPC call per
account.

Prices are the liquidation prices (``engine.liquidation_price``): 0 where an asset has
neither a valid feed nor a live fallback. Collateral at price 0 counts at zero and is not
moved (``unpriced``: then no hole is charged to the fund); a perp at price 0 makes the
account not liquidatable (the contract reverts with ``oracle: invalid price``).

Units follow the chain: WAD ints for amounts, prices and fractions; bps for haircuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.models.margin import RiskParams, apply_trade, margin_exact, trunc_div
from offchain_risk.units import BPS, WAD, WAD_BPS


@dataclass(frozen=True)
class LiquidationPolicy:
    """The parameters of ``Liquidations.vy`` (all WAD)."""

    min_discount: int = 2 * WAD // 100
    max_discount: int = 10 * WAD // 100
    insurance_share: int = 30 * WAD // 100
    target_buffer: int = 5 * WAD // 100
    close_cap: int = WAD // 2
    critical_health: int = WAD // 2
    dust_margin: int = 100 * WAD
    min_bounty: int = 10 * WAD

    def __post_init__(self) -> None:
        if not 0 < self.min_discount <= self.max_discount <= WAD // 2:
            raise ValueError("need 0 < min_discount <= max_discount <= 50%")
        if not 0 <= self.insurance_share <= WAD:
            raise ValueError("insurance_share outside [0, 1]")
        if not 0 <= self.target_buffer <= WAD:
            raise ValueError("target_buffer outside [0, 100%]")
        if not 0 < self.close_cap <= WAD:
            raise ValueError("close_cap outside (0, 1]")
        if not 0 <= self.critical_health < WAD:
            raise ValueError("critical_health outside [0, 1)")
        if not 0 <= self.dust_margin < 2**128:
            raise ValueError("dust_margin outside [0, 2**128)")
        if not 0 <= self.min_bounty <= 1_000 * WAD:
            raise ValueError("min_bounty outside [0, 1000] WAD")

    def args(self) -> tuple[int, ...]:
        """Constructor arguments of ``Liquidations.vy``, in order."""
        return (
            self.min_discount,
            self.max_discount,
            self.insurance_share,
            self.target_buffer,
            self.close_cap,
            self.critical_health,
            self.dust_margin,
            self.min_bounty,
        )


@dataclass(frozen=True)
class Preview:
    """Per-account arrays of Python ints, fields as ``Liquidations.Preview``.

    ``liquidatable`` marks the accounts the contract would liquidate (equity < MM, and
    every perp priced); every other field is 0 for the rest, where the contract's preview
    reverts.
    """

    liquidatable: np.ndarray
    fraction: np.ndarray
    allowed: np.ndarray
    discount: np.ndarray
    penalty: np.ndarray
    reward: np.ndarray
    fee: np.ndarray
    bounty: np.ndarray
    hole: np.ndarray
    cost: np.ndarray
    equity_before: np.ndarray
    mm_before: np.ndarray
    equity_after: np.ndarray
    mm_after: np.ndarray

    @property
    def health_after(self) -> np.ndarray:
        return self.equity_after - self.mm_after


def is_liquidatable(equity, mm, prices_ok, unpriced):
    """The policy's test (``Liquidations._plan``), elementwise on arrays or on scalars: below
    MM with every perp priced, and something to do (MM > 0, or only priced balances left so
    that negative equity can be written off)."""
    something = np.logical_or(np.greater(mm, 0), np.logical_not(unpriced))
    return np.logical_and(np.logical_and(prices_ok, np.less(equity, mm)), something)


def slice_asset(
    coll: int, size: int, fraction: int, price: int, haircut_bps: int, decimals: int = 18
) -> tuple[int, int, int, int]:
    """``fixed_math._slice``: (collateral moved, size moved, perp flow to the account,
    collateral payment to the account) for a slice ``fraction`` (WAD) of one asset.
    Collateral moves in whole units of its token (``decimals``), and not at price 0."""
    moved_coll = 0
    if price != 0:
        unit = 10 ** max(18 - decimals, 0)
        moved_coll = coll * fraction // WAD // unit * unit
    moved = trunc_div(size * fraction, WAD)
    # Selling (moved > 0) the account receives ceil(moved * p); buying back it pays
    # floor(|moved| * p). Both are -floor(-moved * p).
    flow = -((-moved * price) // WAD)
    pay = -((-moved_coll * price * (BPS - haircut_bps)) // WAD_BPS)
    return moved_coll, moved, flow, pay


def slice_accounts(
    cash: np.ndarray,
    collateral: np.ndarray,
    size: np.ndarray,
    open_notional: np.ndarray,
    prices_wad: np.ndarray,
    haircut_bps: np.ndarray,
    fraction: np.ndarray,
    decimals: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The accounts after moving ``fraction[i]`` of every balance, before the penalty:
    (cash, collateral, size, open_notional, flow), as ``ledger._margin`` computes them
    under ``Override.fraction``. ``flow`` is what the liquidator pays for the slices.
    ``decimals``: (n_assets,) of each asset's collateral token (18 when None)."""
    cash = np.array(cash, dtype=object)
    coll = np.array(collateral, dtype=object)
    size = np.array(size, dtype=object)
    on = np.array(open_notional, dtype=object)
    flow_total = np.zeros(len(cash), dtype=object)
    for i in range(len(cash)):
        f = int(fraction[i])
        if f == 0:
            continue
        for a in range(coll.shape[1]):
            c, s = int(coll[i, a]), int(size[i, a])
            if c == 0 and s == 0:
                continue
            dec = 18 if decimals is None else int(decimals[a])
            mc, ms, flow, pay = slice_asset(c, s, f, int(prices_wad[a]), int(haircut_bps[a]), dec)
            coll[i, a] = c - mc
            size[i, a], on[i, a], cash[i] = apply_trade(s, int(on[i, a]), int(cash[i]), -ms, flow)
            cash[i] += pay
            flow_total[i] += flow + pay
    return cash, coll, size, on, flow_total


def plan(
    e: np.ndarray,
    mm: np.ndarray,
    policy: LiquidationPolicy,
    requested: np.ndarray,
    same_owner: np.ndarray,
    live: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """``Liquidations._plan`` on object (Python int) arrays of n accounts: (fraction, allowed,
    discount, penalty, fee, bounty, reward) from each account's equity ``e`` and ``mm``
    before the slice (``live``: liquidatable), the fraction ``requested`` and whether the
    liquidator has the same owner. ``fraction`` is not zeroed where not ``live``. Whatever
    values the slice (perps, collateral, option legs) is the caller's."""
    p = policy
    # mm > e >= 0 wherever e >= 0 and live.
    safe_mm = np.where(mm > 0, mm, 1)
    shortfall = np.where(e > 0, (mm - e) * WAD // safe_mm, WAD)
    discount = p.min_discount + (p.max_discount - p.min_discount) * shortfall // WAD
    e_pos = np.maximum(e, 0)
    c = np.minimum(discount * mm, e_pos * WAD)  # the penalty per unit fraction, * WAD
    num = (WAD + p.target_buffer) * mm - e_pos * WAD
    den = (WAD + p.target_buffer) * mm - c
    den = np.where(live & (e >= 0), den, 1)
    needed = np.minimum(-((-num * WAD) // den), WAD)
    critical = e * WAD < p.critical_health * mm
    allowed = np.where(
        mm < p.dust_margin,
        WAD,
        np.where(critical, needed, np.minimum(needed, p.close_cap)),
    )
    allowed = np.where(e < 0, WAD, allowed)
    fraction = np.minimum(requested, allowed)
    penalty = np.minimum(-((-(discount * fraction * mm)) // (WAD * WAD)), e_pos * fraction // WAD)
    penalty = np.where(e > 0, penalty, 0)
    share = -((-(penalty * p.insurance_share)) // WAD)
    fee = np.where(same_owner, penalty, share)
    least = np.where(live, p.min_bounty * fraction // np.where(live, allowed, 1), 0)
    bounty = np.where(same_owner | (mm == 0), 0, np.maximum(least - (penalty - fee), 0))
    reward = penalty - fee + bounty

    return fraction, allowed, discount, penalty, fee, bounty, reward


def preview(
    cash: np.ndarray,
    collateral: np.ndarray,
    size: np.ndarray,
    open_notional: np.ndarray,
    prices_wad: np.ndarray,
    params: RiskParams,
    policy: LiquidationPolicy,
    requested: np.ndarray | int = WAD,
    same_owner: np.ndarray | bool = False,
    decimals: np.ndarray | None = None,
) -> Preview:
    """``Liquidations.liquidation_preview`` for n accounts (and, with ``same_owner``,
    the plan ``liquidate`` executes). Shapes as :func:`margin_exact`; ``prices_wad`` are
    liquidation prices (0: none); ``requested`` is the fraction asked for (WAD), per
    account or one for all; ``decimals`` as :func:`slice_accounts`."""
    before = margin_exact(cash, collateral, size, open_notional, prices_wad, params)
    n = len(before.equity)
    requested = np.broadcast_to(np.asarray(requested, dtype=object), (n,))
    if any(int(r) == 0 for r in requested):
        raise ValueError("requested fraction must be > 0 (the contract reverts)")
    same_owner = np.broadcast_to(np.asarray(same_owner, dtype=bool), (n,))
    e, mm = before.equity, before.mm
    coll = np.asarray(collateral, dtype=object)
    sizes = np.asarray(size, dtype=object)
    no_price = np.array([int(p) == 0 for p in prices_wad], dtype=bool)  # (n_assets,)
    unpriced = ((coll != 0) & no_price).any(axis=1)  # (n,)
    perp_blocked = ((sizes != 0) & no_price).any(axis=1)  # (n,)
    live = is_liquidatable(e, mm, ~perp_blocked, unpriced)
    fraction, allowed, discount, penalty, fee, bounty, reward = plan(
        e, mm, policy, requested, same_owner, live
    )
    fraction = np.where(live, fraction, 0)
    cash_a, coll_a, size_a, on_a, flow = slice_accounts(
        cash,
        collateral,
        size,
        open_notional,
        prices_wad,
        params.haircut_bps,
        fraction,
        decimals,
    )
    after = margin_exact(cash_a, coll_a, size_a, on_a, prices_wad, params)
    equity_after = after.equity - penalty
    hole = np.where((e < 0) & ~unpriced, (-e) * fraction // WAD, 0)
    final = (fraction == WAD) & ~unpriced & (equity_after + hole < 0)
    hole = np.where(final, -equity_after, hole)
    equity_after = equity_after + hole

    def live_only(x: np.ndarray) -> np.ndarray:
        return np.where(live, x, 0).astype(object)

    return Preview(
        liquidatable=np.asarray(live, dtype=bool),
        fraction=live_only(fraction),
        allowed=live_only(allowed),
        discount=live_only(discount),
        penalty=live_only(penalty),
        reward=live_only(reward),
        fee=live_only(fee),
        bounty=live_only(bounty),
        hole=live_only(hole),
        cost=live_only(flow - reward),
        equity_before=live_only(e),
        mm_before=live_only(mm),
        equity_after=live_only(equity_after),
        mm_after=live_only(after.mm),
    )
