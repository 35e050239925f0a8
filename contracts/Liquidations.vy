# pragma version ~=0.4.3
"""
@title Ballast liquidations: when, how much and at what discount
@notice The liquidation policy of one MarginEngine. Anyone may liquidate an
        account below MM into an account they control: the liquidator takes
        over a fraction f of every perp at the oracle price and of every option
        leg at its mark (OptionBook.liquidate_legs), and buys f of every
        priced collateral balance at its haircut value (equity-neutral for
        both), and the account pays a penalty f * min(d * MM, max(E, 0)),
        split between the liquidator and the insurance fund. The engine
        (liquidation.vy) moves the slices and runs the bad-debt waterfall;
        this contract decides f, d and the bounty.
        - d grows linearly with the shortfall 1 - E/MM, from min_discount at
          E = MM to max_discount at E <= 0.
        - f is the smallest fraction that restores E >= (1 + buffer) * MM, at
          most `close_cap` per call, unless health E/MM is below
          `critical_health` (no cap) or MM is below `dust_margin` (f = 1).
          Below E = d * MM no slice can restore the account: f = 1 allowed.
          The liquidator may take less than allowed, at any equity.
        - The liquidator's reward is its share of the penalty, but at least
          `min_bounty * f / allowed` (the fund pays the difference): the
          reward is continuous through E = 0, where the penalty reaches zero
          and the bounty takes over, so waiting for bankruptcy never pays and
          small or bankrupt accounts still pay for a liquidator's gas.
        - A request above the allowed fraction is clamped, never reverted;
          the `Liquidated` event records requested, allowed and executed.
@custom:security The liquidator's account must meet IM after taking the
        slice (checked by the engine). A liquidator with the same owner as the
        account earns nothing and gets no bounty: the whole penalty goes to
        the insurance fund, so self-liquidation always costs its owner the
        penalty. An account with no MM pays no bounty (nothing to take).
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

import constants
import ledger
import liquidation

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
MAX_BOUNTY: constant(uint256) = 1_000 * WAD
MASK64: constant(uint256) = 2**64 - 1


struct Plan:
    requested: uint256
    allowed: uint256  # the largest fraction this call may take
    discount: uint256  # d, WAD
    unpriced: bool  # collateral without a price stays (no write-off)
    # What the engine executes: fraction, penalty, fee, bounty, E and MM.
    slice: liquidation.Slice


struct Preview:
    fraction: uint256
    allowed: uint256
    discount: uint256
    penalty: uint256
    reward: uint256  # to the liquidator: its penalty share plus bounty
    fee: uint256  # to the insurance fund
    bounty: uint256  # paid by the fund, included in reward
    hole: uint256  # negative equity the fund takes on
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
        account: uint256, liquidator: uint256, s: liquidation.Slice
    ) -> int256: nonpayable


engine: public(immutable(IEngine))
# May set the discount curve as well as the owner (the signed-update
# governor).
risk_manager: public(address)
# min_discount | max_discount << 64 | insurance_share << 128 | buffer << 192.
curve: uint256
# close_cap | critical_health << 64 | dust_margin << 128.
limits: uint256
# The least reward (WAD cash) for liquidating all an account's allowed
# fraction; the fund pays what the penalty does not.
min_bounty: public(uint256)


event DiscountCurveSet:
    min_discount: uint256
    max_discount: uint256


event PolicySet:
    insurance_share: uint256
    target_buffer: uint256
    close_cap: uint256
    critical_health: uint256
    dust_margin: uint256


event MinBountySet:
    min_bounty: uint256


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
    bounty: uint256
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
    min_bounty: uint256,
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
    @param min_bounty Least reward for a liquidation of the allowed fraction
           (WAD cash), at most MAX_BOUNTY; the fund tops the penalty up.
    """
    assert engine_ != empty(address), "liquidations: zero engine"
    ownable.__init__()
    ownable_2step.__init__()
    engine = IEngine(engine_)
    self._set_curve(min_discount, max_discount)
    self._set_policy(
        insurance_share, target_buffer, close_cap, critical_health, dust_margin
    )
    self._set_min_bounty(min_bounty)


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
def set_min_bounty(min_bounty: uint256):
    """
    @notice The least reward for liquidating an account's allowed fraction
            (WAD cash), paid by the fund beyond the penalty's share; sized to
            a liquidation's gas. Owner only.
    """
    ownable._check_owner()
    self._set_min_bounty(min_bounty)


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
            fraction. Reverts when the liquidator would pay more than
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
        account, liquidator, plan.slice
    )
    cost: int256 = flow - convert(
        plan.slice.penalty - plan.slice.fee + plan.slice.bounty, int256
    )
    assert cost <= max_cost, "liquidations: cost above max_cost"
    log Liquidated(
        account=account,
        liquidator=liquidator,
        requested=fraction,
        allowed=plan.allowed,
        fraction=plan.slice.fraction,
        clamped=plan.slice.fraction != fraction,
        discount=plan.discount,
        penalty=plan.slice.penalty,
        fee=plan.slice.fee,
        bounty=plan.slice.bounty,
        cost=cost,
    )
    return plan.slice.fraction


@external
@view
def liquidation_preview(account: uint256, fraction: uint256) -> Preview:
    """
    @notice What `liquidate(account, liquidator, fraction, ...)` would do now
            for a liquidator with another owner: the executed and allowed
            fractions, the discount, penalty split and bounty, the fund's
            share of a hole, the liquidator's cost and the account's state
            after. Reverts as `liquidate` would on a healthy account, a perp
            without a price or a zero fraction.
    """
    plan: Plan = self._plan(account, fraction, False)
    f: uint256 = plan.slice.fraction
    after: ledger.Margin = staticcall engine.liquidation_margin(account, f)
    equity: int256 = after.equity - convert(plan.slice.penalty, int256)
    hole: uint256 = 0
    if not plan.unpriced:
        # As the engine charges it (liquidation.liquidate_slice).
        if plan.slice.equity < 0:
            hole = convert(-plan.slice.equity, uint256) * f // WAD
        if f == WAD and equity + convert(hole, int256) < 0:
            hole = convert(-equity, uint256)
    equity += convert(hole, int256)
    reward: uint256 = plan.slice.penalty - plan.slice.fee + plan.slice.bounty
    return Preview(
        fraction=f,
        allowed=plan.allowed,
        discount=plan.discount,
        penalty=plan.slice.penalty,
        reward=reward,
        fee=plan.slice.fee,
        bounty=plan.slice.bounty,
        hole=hole,
        cost=after.flow - convert(reward, int256),
        equity_before=plan.slice.equity,
        mm_before=plan.slice.mm,
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
    @dev The fraction. With h = E / MM, the penalty is f * c with
         c = min(d * MM, max(E, 0)), and a slice f leaves E' = E - f * c (the
         transfers are equity-neutral) and MM' = (1 - f) * MM (every scenario
         loss and the floor are linear in the balances, so their maximum
         scales by 1 - f). The target E' >= (1 + b) * MM' is
             f >= ((1 + b) * MM - E) / ((1 + b) * MM - c),
         the smallest such f being `allowed` below, rounded up. It lies in
         (0, 1] exactly when c < E, i.e. E > d * MM; below that no partial
         slice restores the account, and f = 1 is allowed. Health E - MM
         rises by f * (MM - c) > 0 for any f: a liquidation never makes the
         account worse. Rounding of the slices (towards the account) can
         leave MM' a few wei above (1 - f) * MM; the buffer absorbs it.
         The penalty rounds up on d * f * MM (against the account) and down
         on f * E (so it never takes the account below zero).
    """
    assert requested != 0, "liquidations: zero fraction"
    m: ledger.Margin = staticcall engine.liquidation_margin(account, 0)
    assert m.prices_ok, "oracle: invalid price"
    mm: int256 = convert(m.mm, int256)
    equity: int256 = m.equity
    assert equity < mm, "liquidations: account is healthy"
    # Below zero with no MM, only collateral without a price is left: it backs the debt
    # until its feed returns, and a slice would move nothing.
    assert mm > 0 or not m.unpriced, "liquidations: nothing to liquidate"

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
    penalty: uint256 = 0
    if equity >= 0:
        e: uint256 = convert(equity, uint256)
        # c * WAD, and the bound above in WAD**2; mm > e >= 0 here, so
        # den > 0.
        c: uint256 = min(discount * m.mm, e * WAD)
        num: uint256 = (WAD + buffer) * m.mm - e * WAD
        den: uint256 = (WAD + buffer) * m.mm - c
        allowed = min((num * WAD + den - 1) // den, WAD)
        if m.mm < limits >> 128:
            allowed = WAD  # dust: close it
        elif e * WAD >= ((limits >> 64) & MASK64) * m.mm:
            allowed = min(allowed, limits & MASK64)  # not critical: cap
    fraction: uint256 = min(requested, allowed)
    if equity > 0:
        penalty = min(
            (discount * fraction * m.mm + WAD * WAD - 1) // (WAD * WAD),
            convert(equity, uint256) * fraction // WAD,
        )
    fee: uint256 = penalty
    bounty: uint256 = 0
    if not same_owner:
        fee = (penalty * ((curve >> 128) & MASK64) + WAD - 1) // WAD
        if m.mm != 0:
            # The fund tops the liquidator's share up to its pro-rata part
            # of the minimum bounty.
            least: uint256 = self.min_bounty * fraction // allowed
            bounty = least - min(least, penalty - fee)
    return Plan(
        requested=requested,
        allowed=allowed,
        discount=discount,
        unpriced=m.unpriced,
        slice=liquidation.Slice(
            fraction=fraction,
            penalty=penalty,
            fee=fee,
            bounty=bounty,
            equity=equity,
            mm=m.mm,
        ),
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


@internal
def _set_min_bounty(min_bounty: uint256):
    assert min_bounty <= MAX_BOUNTY, "liquidations: bounty above 1000"
    self.min_bounty = min_bounty
    log MinBountySet(min_bounty=min_bounty)
