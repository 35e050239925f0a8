# pragma version ~=0.4.3
"""
@title Ballast liquidations: when, how much and at what discount
@notice The liquidation policy of one MarginEngine. Anyone may liquidate an
        account below MM into an account they control: the liquidator takes
        over a fraction f of every perp at the oracle price and buys f of every
        collateral balance at its haircut value (equity-neutral for both), and
        the account pays a penalty d * f * MM, split between the liquidator
        and the insurance fund. The engine (liquidation.vy) moves the slices
        and runs the bad-debt waterfall; this contract decides f and d.
        - d grows linearly with the shortfall 1 - E/MM, from min_discount at
          E = MM to max_discount at E <= 0.
        - f is the smallest fraction that restores E >= (1 + buffer) * MM, at
          most `close_cap` per call, unless health E/MM is below
          `critical_health` (no cap) or MM is below `dust_margin` (f = 1).
          An account with E < 0 is closed fully.
        - A request above the allowed fraction is clamped, never reverted;
          the `Liquidated` event records requested, allowed and executed.
@custom:security The liquidator's account must meet IM after taking the
        slice (checked by the engine). A liquidator with the same owner as the
        account earns nothing: the whole penalty goes to the insurance fund,
        so self-liquidation always costs its owner the penalty.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

import constants
import ledger

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)

WAD: constant(uint256) = constants.WAD
# Admin bounds.
MAX_DISCOUNT: constant(uint256) = WAD // 2
MAX_BUFFER: constant(uint256) = WAD
MASK64: constant(uint256) = 2**64 - 1


struct Plan:
    requested: uint256
    allowed: uint256  # the largest fraction this call may take
    fraction: uint256  # what it takes
    discount: uint256  # d, WAD
    penalty: uint256  # charged to the account, WAD
    fee: uint256  # of which to the insurance fund
    equity: int256  # before
    mm: uint256  # before


struct Preview:
    fraction: uint256
    allowed: uint256
    discount: uint256
    penalty: uint256
    reward: uint256  # to the liquidator
    fee: uint256  # to the insurance fund
    cost: int256  # cash the liquidator pays: slice price - reward
    equity_before: int256
    mm_before: uint256
    equity_after: int256
    mm_after: uint256
    health_after: int256  # equity_after - mm_after


interface IEngine:
    def liquidation_margin(
        account: uint256, fraction: uint256
    ) -> ledger.Margin: view
    def is_authorized(account: uint256, caller: address) -> bool: view
    def liquidate_slice(
        account: uint256,
        liquidator: uint256,
        fraction: uint256,
        penalty: uint256,
        fee: uint256,
    ) -> int256: nonpayable


engine: public(immutable(IEngine))
# May set the discount curve as well as the owner (the signed-update
# governor).
risk_manager: public(address)
# min_discount | max_discount << 64 | insurance_share << 128 | buffer << 192.
curve: uint256
# close_cap | critical_health << 64 | dust_margin << 128.
limits: uint256


event DiscountCurveSet:
    min_discount: uint256
    max_discount: uint256


event PolicySet:
    insurance_share: uint256
    target_buffer: uint256
    close_cap: uint256
    critical_health: uint256
    dust_margin: uint256


event RiskManagerSet:
    risk_manager: indexed(address)


event Liquidated:
    account: indexed(uint256)
    liquidator: indexed(uint256)
    requested: uint256
    allowed: uint256
    fraction: uint256
    clamped: bool
    discount: uint256
    penalty: uint256
    fee: uint256
    cost: int256


@deploy
def __init__(
    engine_: address,
    min_discount: uint256,
    max_discount: uint256,
    insurance_share: uint256,
    target_buffer: uint256,
    close_cap: uint256,
    critical_health: uint256,
    dust_margin: uint256,
):
    """
    @param engine_ The MarginEngine; register this contract there with
           `set_liquidator`.
    @param min_discount Penalty rate at E = MM, WAD, in (0, max_discount].
    @param max_discount Penalty rate at E <= 0, WAD, <= 50%.
    @param insurance_share Share of the penalty to the insurance fund, WAD.
    @param target_buffer b: a partial liquidation aims at E = (1 + b) * MM.
    @param close_cap Max fraction per call, WAD, in (0, 1].
    @param critical_health Below this E/MM (WAD) the cap does not apply.
    @param dust_margin Accounts with MM below this (WAD) are closed fully.
    """
    assert engine_ != empty(address), "liquidations: zero engine"
    ownable.__init__()
    ownable_2step.__init__()
    engine = IEngine(engine_)
    self._set_curve(min_discount, max_discount)
    self._set_policy(
        insurance_share, target_buffer, close_cap, critical_health, dust_margin
    )


# ---------------------------------------------------------------- admin


@external
def set_discount_curve(min_discount: uint256, max_discount: uint256):
    """
    @notice The penalty rate at E = MM and at E <= 0 (WAD). Owner or risk
            manager.
    """
    assert (
        msg.sender == ownable.owner or msg.sender == self.risk_manager
    ), "liquidations: not owner or risk manager"
    self._set_curve(min_discount, max_discount)


@external
def set_policy(
    insurance_share: uint256,
    target_buffer: uint256,
    close_cap: uint256,
    critical_health: uint256,
    dust_margin: uint256,
):
    """
    @notice Fee split, target buffer, per-call cap and the two cap
            exemptions (see the constructor). Owner only.
    """
    ownable._check_owner()
    self._set_policy(
        insurance_share, target_buffer, close_cap, critical_health, dust_margin
    )


@external
def set_risk_manager(risk_manager: address):
    """
    @notice The address (besides the owner) that may set the discount curve.
            Owner only.
    """
    ownable._check_owner()
    self.risk_manager = risk_manager
    log RiskManagerSet(risk_manager=risk_manager)


# ------------------------------------------------------------ liquidate


@external
@nonreentrant
def liquidate(
    account: uint256, liquidator: uint256, fraction: uint256, max_cost: int256
) -> uint256:
    """
    @notice Liquidate up to `fraction` (WAD) of `account` into `liquidator`,
            an account the caller owns or operates. Clamped to the allowed
            fraction; an account with E < 0 is closed fully whatever the
            request. Reverts when the liquidator would pay more than
            `max_cost` cash (net of its reward; negative: it must receive).
    @return The fraction executed (WAD).
    """
    assert staticcall engine.is_authorized(
        liquidator, msg.sender
    ), "liquidations: not owner or operator of the liquidator"
    plan: Plan = self._plan(
        account,
        fraction,
        account >> constants.SUB_BITS == liquidator >> constants.SUB_BITS,
    )
    flow: int256 = extcall engine.liquidate_slice(
        account, liquidator, plan.fraction, plan.penalty, plan.fee
    )
    cost: int256 = flow - convert(plan.penalty - plan.fee, int256)
    assert cost <= max_cost, "liquidations: cost above max_cost"
    log Liquidated(
        account=account,
        liquidator=liquidator,
        requested=fraction,
        allowed=plan.allowed,
        fraction=plan.fraction,
        clamped=plan.fraction != fraction,
        discount=plan.discount,
        penalty=plan.penalty,
        fee=plan.fee,
        cost=cost,
    )
    return plan.fraction


@external
@view
def liquidation_preview(account: uint256, fraction: uint256) -> Preview:
    """
    @notice What `liquidate(account, liquidator, fraction, ...)` would do now
            for a liquidator with another owner: the executed and allowed
            fractions, the discount, penalty split, the liquidator's cost and
            the account's state after. Reverts as `liquidate` would on a
            healthy account, a bad price or a zero fraction.
    """
    plan: Plan = self._plan(account, fraction, False)
    after: ledger.Margin = staticcall engine.liquidation_margin(
        account, plan.fraction
    )
    equity: int256 = after.equity - convert(plan.penalty, int256)
    if plan.fraction == WAD and equity < 0:
        equity = 0  # written off by the waterfall
    reward: uint256 = plan.penalty - plan.fee
    return Preview(
        fraction=plan.fraction,
        allowed=plan.allowed,
        discount=plan.discount,
        penalty=plan.penalty,
        reward=reward,
        fee=plan.fee,
        cost=after.flow - convert(reward, int256),
        equity_before=plan.equity,
        mm_before=plan.mm,
        equity_after=equity,
        mm_after=after.mm,
        health_after=equity - convert(after.mm, int256),
    )


@external
@view
def min_discount() -> uint256:
    return self.curve & MASK64


@external
@view
def max_discount() -> uint256:
    return (self.curve >> 64) & MASK64


@external
@view
def insurance_share() -> uint256:
    return (self.curve >> 128) & MASK64


@external
@view
def target_buffer() -> uint256:
    return self.curve >> 192


@external
@view
def close_cap() -> uint256:
    return self.limits & MASK64


@external
@view
def critical_health() -> uint256:
    return (self.limits >> 64) & MASK64


@external
@view
def dust_margin() -> uint256:
    return self.limits >> 128


# --------------------------------------------------------------- internal


@internal
@view
def _plan(account: uint256, requested: uint256, same_owner: bool) -> Plan:
    """
    @dev The fraction. With h = E / MM and a penalty d * f * MM, a slice f
         leaves E' = E - d*f*MM (the transfers are equity-neutral) and
         MM' = (1 - f) * MM (every scenario loss and the floor are linear in
         the balances, so their maximum scales by 1 - f). The target
         E' >= (1 + b) * MM' is
             h - d*f >= (1 + b)(1 - f)  <=>  f >= (1 + b - h) / (1 + b - d),
         the smallest such f being `needed` below, rounded up. It lies in
         (0, 1] exactly when d <= h < 1; for h < d no partial slice can
         restore the account, and f = 1. Health E - MM rises by
         f * MM * (1 - d) > 0 for any f: a liquidation never makes the
         account worse. Rounding of the slices (towards the account) can
         leave MM' a few wei above (1 - f) * MM; the buffer absorbs it.
    """
    assert requested != 0, "liquidations: zero fraction"
    m: ledger.Margin = staticcall engine.liquidation_margin(account, 0)
    assert m.prices_ok, "oracle: invalid price"
    mm: int256 = convert(m.mm, int256)
    equity: int256 = m.equity
    assert equity < mm, "liquidations: account is healthy"

    curve: uint256 = self.curve
    min_d: uint256 = curve & MASK64
    max_d: uint256 = (curve >> 64) & MASK64
    buffer: uint256 = curve >> 192
    limits: uint256 = self.limits

    # Shortfall 1 - E/MM in [0, 1], rounded down with the discount.
    shortfall: uint256 = WAD
    if equity > 0:
        shortfall = convert((mm - equity) * constants.IWAD // mm, uint256)
    discount: uint256 = min_d + (max_d - min_d) * shortfall // WAD

    allowed: uint256 = WAD
    if equity >= 0:
        # ceil(((1 + b) * MM - E) / ((1 + b - d) * MM)) in WAD; mm > 0 here.
        num: uint256 = (WAD + buffer) * m.mm - convert(equity, uint256) * WAD
        den: uint256 = (WAD + buffer - discount) * m.mm
        allowed = min((num * WAD + den - 1) // den, WAD)
        if m.mm < limits >> 128:
            allowed = WAD  # dust: close it
        elif convert(equity, uint256) * WAD >= ((limits >> 64) & MASK64) * m.mm:
            allowed = min(allowed, limits & MASK64)  # not critical: cap
    fraction: uint256 = allowed
    if equity >= 0:
        fraction = min(requested, allowed)

    penalty: uint256 = (discount * fraction * m.mm + WAD * WAD - 1) // (
        WAD * WAD
    )
    if equity >= 0:
        penalty = min(penalty, convert(equity, uint256))
    fee: uint256 = penalty
    if not same_owner:
        fee = (penalty * ((curve >> 128) & MASK64) + WAD - 1) // WAD
    return Plan(
        requested=requested,
        allowed=allowed,
        fraction=fraction,
        discount=discount,
        penalty=penalty,
        fee=fee,
        equity=equity,
        mm=m.mm,
    )


@internal
def _set_curve(min_discount: uint256, max_discount: uint256):
    assert (
        min_discount != 0 and min_discount <= max_discount
    ), "liquidations: bad discount curve"
    assert max_discount <= MAX_DISCOUNT, "liquidations: discount above 50%"
    curve: uint256 = self.curve
    self.curve = (
        (curve & ~(2**128 - 1)) | min_discount | (max_discount << 64)
    )
    log DiscountCurveSet(min_discount=min_discount, max_discount=max_discount)


@internal
def _set_policy(
    insurance_share: uint256,
    target_buffer: uint256,
    close_cap: uint256,
    critical_health: uint256,
    dust_margin: uint256,
):
    assert insurance_share <= WAD, "liquidations: share above 1"
    assert target_buffer <= MAX_BUFFER, "liquidations: buffer above 100%"
    assert close_cap != 0 and close_cap <= WAD, "liquidations: bad close cap"
    assert critical_health < WAD, "liquidations: critical health >= 1"
    assert dust_margin < 2**128, "liquidations: dust margin too large"
    self.curve = (
        (self.curve & (2**128 - 1))
        | (insurance_share << 128)
        | (target_buffer << 192)
    )
    self.limits = close_cap | (critical_health << 64) | (dust_margin << 128)
    log PolicySet(
        insurance_share=insurance_share,
        target_buffer=target_buffer,
        close_cap=close_cap,
        critical_health=critical_health,
        dust_margin=dust_margin,
    )
