# pragma version ~=0.4.3
"""
@title Ballast liquidation core: slice transfers and the bad-debt waterfall
@notice The one primitive a liquidation needs from the core, for the policy
        contract the owner registers (Liquidations.vy decides when, how much
        and at what discount and bounty): move a fraction of every balance of
        an account to a liquidator's account at the prices the margin model
        values them at, charge the penalty, and, while the account's equity
        is negative, charge each slice's share of the hole to the waterfall:
        insurance fund first, then a recorded deficit that cash withdrawals
        share pro rata (ledger._deficit_share). Also the keepers' batched
        view, `healths`.
@custom:security Only the registered policy may call `liquidate_slice`; it
        must check that the account is below MM in the liquidation valuation
        and that the caller controls the liquidator account, and passes the
        state it checked. Nothing the account holds can block it: a perp is
        taken at its feed's price or the guardian's short-lived fallback,
        collateral without a price stays in the account (and no hole is
        written off while it does), and feeds are read with a gas cap
        (oracle.vy). The core re-checks what protects everyone else: the
        liquidator meets IM afterwards and its borrowing counts against the
        debt cap, and the penalty is paid only by the account, only to the
        liquidator and the insurance fund.
"""

from snekmate.auth import ownable

import constants
import fixed_math
import ledger

uses: ownable
uses: ledger


# The option book's part of a slice (OptionBook.vy).
interface IOptionBook:
    def liquidate_legs(
        account: uint256, liquidator: uint256, fraction: uint256
    ) -> (int256, bool, bool): nonpayable


# What the policy decided for one call of `liquidate_slice` (all WAD).
struct Slice:
    fraction: uint256  # of every balance, moved to the liquidator
    penalty: uint256  # charged to the account
    fee: uint256  # of the penalty, to the insurance fund
    bounty: uint256  # paid by the fund to the liquidator on top of its share
    equity: int256  # the account before (liquidation valuation)
    mm: uint256  # the account's MM before


# The liquidation policy contract allowed to call `liquidate_slice`.
liquidator: public(address)


event LiquidatorSet:
    liquidator: indexed(address)


event Liquidation:
    account: indexed(uint256)
    liquidator: indexed(uint256)
    fraction: uint256  # WAD, moved
    flow: int256  # cash the liquidator paid for the slice (WAD)
    penalty: uint256  # charged to the account (WAD)
    fee: uint256  # of which to the insurance fund
    bounty: uint256  # paid by the fund to the liquidator
    hole: uint256  # negative equity charged to the fund by this slice
    equity_before: int256
    mm_before: uint256


event BadDebt:
    account: indexed(uint256)
    hole: uint256  # negative equity charged by the slice (WAD)
    covered: uint256  # by the insurance fund
    deficit: uint256  # total deficit after


@external
def set_liquidator(liquidator: address):
    """
    @notice Register the liquidation policy contract. Owner only.
    """
    ownable._check_owner()
    assert liquidator != empty(address), "liquidation: zero liquidator"
    self.liquidator = liquidator
    log LiquidatorSet(liquidator=liquidator)


@external
@view
def liquidation_margin(account: uint256, fraction: uint256) -> ledger.Margin:
    """
    @notice The account's margin in the liquidation valuation (perps at their
            feed or fallback price, collateral without a price at zero) after
            a liquidation moved `fraction` (WAD) of every balance, before the
            penalty and the fund's share of a hole; `flow` is the cash the
            liquidator would pay for the slice. `fraction = 0`: as it is now.
            Never reverts on a bad price (see `prices_ok`).
    """
    assert fraction <= constants.WAD, "liquidation: fraction above 1"
    return ledger._margin(
        account,
        ledger.Override(
            active=True,
            asset=ledger.NO_ASSET,
            collateral=0,
            position=0,
            cash=ledger.cash[account],
            fraction=fraction,
            funding=0,
        ),
        True,
    )


@external
@view
def healths(
    accounts: DynArray[uint256, constants.MAX_BATCH]
) -> DynArray[ledger.Margin, constants.MAX_BATCH]:
    """
    @notice (equity, MM, IM, prices_ok, flow, unpriced) of up to 100 accounts
            in the liquidation valuation; never reverts on a bad price, nor
            on a feed that reverts. An account is liquidatable when prices_ok
            and equity < mm.
    """
    out: DynArray[ledger.Margin, constants.MAX_BATCH] = []
    for account: uint256 in accounts:
        out.append(ledger._margin(account, empty(ledger.Override), True))
    return out


@external
@nonreentrant
def liquidate_slice(account: uint256, liquidator: uint256, s: Slice) -> int256:
    """
    @notice Move `s.fraction` (WAD) of every priced collateral balance, of
            every perp and of every option leg of `account` to `liquidator`,
            which pays for them in cash at the liquidation price (collateral
            at its haircut value, option legs at the account's mark:
            OptionBook.liquidate_legs);
            charge the account `s.penalty` (`s.fee` of it to the insurance
            fund, the rest to the liquidator) and pay the liquidator
            `s.bounty` from the fund. While the account's equity is negative
            each slice charges its share of the hole to the fund, and the
            final slice writes off what is left: fund first, then `deficit`;
            never while collateral without a price is left in the account
            (that collateral backs its debt). The registered liquidation
            policy only; it passes the account's state before (`s.equity`,
            `s.mm`) as it computed it through `liquidation_margin` in the
            same transaction.
    @return The cash the liquidator paid for the slice (WAD, before reward).
    """
    assert msg.sender == self.liquidator, "liquidation: not the liquidator"
    assert (
        s.fraction != 0 and s.fraction <= constants.WAD
    ), "liquidation: bad fraction"
    assert s.fee <= s.penalty, "liquidation: fee above penalty"
    assert account != liquidator, "liquidation: same account"
    assert (
        account != constants.INSURANCE and liquidator != constants.INSURANCE
    ), "liquidation: insurance account"
    assert s.equity < convert(s.mm, int256), "liquidation: account is healthy"

    cash: int256 = ledger.cash[account]
    taker_before: int256 = ledger.cash[liquidator]
    taker_cash: int256 = taker_before
    bitmap: uint256 = ledger.account_assets[account]
    options: bool = bitmap >= ledger.OPTIONS_BIT
    bitmap &= ledger.OPTIONS_BIT - 1
    paid: int256 = 0
    unpriced: bool = False
    for a: uint256 in range(constants.MAX_ASSETS):
        bits: uint256 = bitmap >> (2 * a)
        if bits == 0:
            break
        if bits & 3 == 0:
            continue
        word: uint256 = ledger.asset_word[a]
        price: uint256 = ledger._liquidation_price(a, word)
        coll: uint256 = ledger._stored_collateral(account, a)
        pos: uint256 = ledger._stored_position(account, a)
        size: int256 = 0
        on: int256 = 0
        size, on = fixed_math._unpack_position(pos)
        if price == 0:
            # Collateral without a price stays; a perp needs one.
            assert size == 0, "oracle: invalid price"
            unpriced = True
            continue
        moved_coll: uint256 = 0
        moved: int256 = 0
        flow: int256 = 0
        pay: uint256 = 0
        moved_coll, moved, flow, pay = fixed_math._slice(
            coll,
            size,
            s.fraction,
            price,
            (word >> ledger.HAIRCUT_SHIFT) & 65535,
            word >> ledger.UNIT_SHIFT,
        )
        if moved_coll != 0:
            ledger._write_collateral(account, a, coll - moved_coll)
            ledger._write_collateral(
                liquidator,
                a,
                ledger._stored_collateral(liquidator, a) + moved_coll,
            )
        if moved != 0:
            # Both sides' funding in this market is settled into their cash
            # first, at the index moved on with the liquidation price.
            index: int256 = ledger._accrue(a, price, 0, 0)
            cash -= ledger._settle_owed(account, a, size, index)
            size, on, cash = fixed_math._apply_trade(
                size, on, cash, -moved, flow
            )
            new_pos: uint256 = fixed_math._pack_position(size, on)
            taker_pos: uint256 = ledger._stored_position(liquidator, a)
            taker_size: int256 = 0
            taker_on: int256 = 0
            taker_size, taker_on = fixed_math._unpack_position(taker_pos)
            taker_cash -= ledger._settle_owed(liquidator, a, taker_size, index)
            taker_size, taker_on, taker_cash = fixed_math._apply_trade(
                taker_size, taker_on, taker_cash, moved, -flow
            )
            new_taker: uint256 = fixed_math._pack_position(taker_size, taker_on)
            # A transfer never adds open interest: the liquidatee's side
            # shrinks by what the liquidator's grows or nets off.
            oi_drop: int256 = (
                fixed_math._long(pos)
                + fixed_math._long(taker_pos)
                - fixed_math._long(new_pos)
                - fixed_math._long(new_taker)
            )
            if oi_drop != 0:
                ledger.open_interest[a] -= convert(oi_drop, uint256)
            ledger._write_position(account, a, new_pos)
            ledger._write_position(liquidator, a, new_taker)
        cash += convert(pay, int256)
        taker_cash -= convert(pay, int256)
        paid += flow + convert(pay, int256)
    if options:
        # The trusted book (owner-installed once) moves the legs; this
        # engine's lock is held throughout.
        flow: int256 = 0
        holds: bool = False
        taker_holds: bool = False
        flow, holds, taker_holds = extcall IOptionBook(
            ledger.option_book
        ).liquidate_legs(account, liquidator, s.fraction)
        cash += flow
        taker_cash -= flow
        paid += flow
        ledger._mark_options(account, holds)
        ledger._mark_options(liquidator, taker_holds)
    # The liquidator's reward. Cash it borrows to pay for the slice counts
    # against the debt cap like a trade's (checked before the account's own
    # cash is written: the liquidated account is exempt).
    taker_cash += convert(s.penalty - s.fee + s.bounty, int256)
    ledger._set_cash(liquidator, taker_cash)
    assert (
        taker_cash >= min(taker_before, 0) or ledger.debt <= ledger.debt_cap
    ), "liquidation: debt cap"

    # The account pays the penalty; the fund takes its share of a hole:
    # f * (-E) per slice, rounded down (the rest waits for the final slice),
    # and at the final slice whatever negative cash is left.
    cash -= convert(s.penalty, int256)
    hole: uint256 = 0
    if not unpriced:
        if s.equity < 0:
            hole = convert(-s.equity, uint256) * s.fraction // constants.WAD
        if s.fraction == constants.WAD and cash + convert(hole, int256) < 0:
            hole = convert(-cash, uint256)
    cash += convert(hole, int256)
    ledger._set_cash(account, cash)
    self._settle_fund(account, s.fee, hole, s.bounty)

    # The liquidator takes on risk: it must meet IM, valued as liquidations
    # value it.
    ledger._require_initial_margin(liquidator, empty(ledger.Override), True)
    log Liquidation(
        account=account,
        liquidator=liquidator,
        fraction=s.fraction,
        flow=paid,
        penalty=s.penalty,
        fee=s.fee,
        bounty=s.bounty,
        hole=hole,
        equity_before=s.equity,
        mm_before=s.mm,
    )
    self._log_accounts(account, liquidator, bitmap)
    if s.fee != 0 or hole != 0 or s.bounty != 0:
        ledger._log_state(constants.INSURANCE, ledger.CASH)
    return paid


@internal
def _settle_fund(
    account: uint256, fee: uint256, hole: uint256, bounty: uint256
):
    """
    @dev The insurance fund's side of one slice: it receives `fee` and pays
         `hole + bounty`, netted. Net income repays an open deficit first
         (ledger._credit_insurance); a net payment comes from the fund while
         it lasts and the rest is added to `deficit` (the waterfall).
    """
    out: uint256 = hole + bounty
    if fee >= out:
        if fee != out:
            ledger._credit_insurance(account, fee - out)
        return
    due: uint256 = out - fee
    fund: int256 = ledger.cash[constants.INSURANCE]
    covered: uint256 = min(due, convert(max(fund, 0), uint256))
    if covered != 0:
        ledger._set_cash(constants.INSURANCE, fund - convert(covered, int256))
    ledger.deficit += due - covered
    if hole != 0:
        log BadDebt(
            account=account,
            hole=hole,
            covered=hole - min(hole, due - covered),
            deficit=ledger.deficit,
        )


@internal
def _log_accounts(account: uint256, liquidator: uint256, bitmap: uint256):
    """
    @dev Absolute state of every asset the liquidation touched, both sides
         (each AccountState carries the cash balance too).
    """
    if bitmap == 0:
        ledger._log_state(account, ledger.CASH)
        ledger._log_state(liquidator, ledger.CASH)
        return
    for a: uint256 in range(constants.MAX_ASSETS):
        if bitmap >> (2 * a) == 0:
            break
        if (bitmap >> (2 * a)) & 3 != 0:
            ledger._log_state(account, a)
            ledger._log_state(liquidator, a)
