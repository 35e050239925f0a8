# pragma version ~=0.4.3
"""
@title Ballast liquidation core: slice transfers and the bad-debt waterfall
@notice The one primitive a liquidation needs from the core, for the policy
        contract the owner registers (Liquidations.vy decides when, how much
        and at what discount): move a fraction of every balance of an account
        to a liquidator's account at the prices the margin model values them
        at, charge the penalty, and, when the account is closed with negative
        cash, run the waterfall: insurance fund first, then a recorded
        deficit that cash withdrawals share pro rata (ledger._deficit_share).
        Also the keepers' batched view, `healths`.
@custom:security Only the registered policy may call `liquidate_slice`; it
        must check that the account is below MM with valid prices, and that
        the caller controls the liquidator account. The core re-checks what
        protects everyone else: the liquidator meets IM afterwards, the slice
        is taken at valid oracle prices, and the penalty is paid only by the
        account, only to the liquidator and the insurance fund.
"""

from snekmate.auth import ownable

import constants
import fixed_math
import ledger

uses: ownable
uses: ledger


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
    equity_before: int256
    mm_before: uint256
    equity_after: int256
    mm_after: uint256


event BadDebt:
    account: indexed(uint256)
    hole: uint256  # negative cash written off (WAD)
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
    @notice The account's margin after a liquidation moved `fraction` (WAD)
            of every balance, before the penalty; `flow` is the cash the
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
        ),
    )


@external
@view
def healths(
    accounts: DynArray[uint256, constants.MAX_BATCH]
) -> DynArray[ledger.Margin, constants.MAX_BATCH]:
    """
    @notice (equity, MM, IM, prices_ok) of up to 100 accounts; never reverts
            on a bad price. An account is liquidatable when prices_ok and
            equity < mm.
    """
    out: DynArray[ledger.Margin, constants.MAX_BATCH] = []
    for account: uint256 in accounts:
        out.append(ledger._margin(account, empty(ledger.Override)))
    return out


@external
@nonreentrant
def liquidate_slice(
    account: uint256,
    liquidator: uint256,
    fraction: uint256,
    penalty: uint256,
    fee: uint256,
) -> int256:
    """
    @notice Move `fraction` (WAD) of every collateral balance and perp of
            `account` to `liquidator`, which pays for them in cash at the
            oracle price (collateral at its haircut value); then charge the
            account `penalty`, `fee` of it to the insurance fund and the rest
            to the liquidator. At `fraction == WAD` negative cash left is bad
            debt: the insurance fund covers what it can and the rest is added
            to `deficit`. The registered liquidation policy only.
    @return The cash the liquidator paid for the slice (WAD, before reward).
    """
    assert msg.sender == self.liquidator, "liquidation: not the liquidator"
    assert (
        fraction != 0 and fraction <= constants.WAD
    ), "liquidation: bad fraction"
    assert fee <= penalty, "liquidation: fee above penalty"
    assert account != liquidator, "liquidation: same account"
    assert (
        account != constants.INSURANCE and liquidator != constants.INSURANCE
    ), "liquidation: insurance account"
    before: ledger.Margin = ledger._margin(account, empty(ledger.Override))
    assert before.prices_ok, "oracle: invalid price"
    assert before.equity < convert(
        before.mm, int256
    ), "liquidation: account is healthy"

    cash: int256 = ledger.cash[account]
    taker_cash: int256 = ledger.cash[liquidator]
    bitmap: uint256 = ledger.account_assets[account]
    paid: int256 = 0
    for a: uint256 in range(constants.MAX_ASSETS):
        bits: uint256 = bitmap >> (2 * a)
        if bits == 0:
            break
        if bits & 3 == 0:
            continue
        word: uint256 = ledger.asset_word[a]
        price: uint256 = 0
        ok: bool = False
        price, ok = ledger._price(word)
        coll: uint256 = ledger._stored_collateral(account, a)
        pos: uint256 = ledger._stored_position(account, a)
        size: int256 = 0
        on: int256 = 0
        size, on = fixed_math._unpack_position(pos)
        moved_coll: uint256 = 0
        moved: int256 = 0
        flow: int256 = 0
        pay: uint256 = 0
        moved_coll, moved, flow, pay = fixed_math._slice(
            coll,
            size,
            fraction,
            price,
            (word >> ledger.HAIRCUT_SHIFT) & 65535,
        )
        if moved_coll != 0:
            ledger._write_collateral(account, a, coll - moved_coll)
            ledger._write_collateral(
                liquidator,
                a,
                ledger._stored_collateral(liquidator, a) + moved_coll,
            )
        if moved != 0:
            size, on, cash = fixed_math._apply_trade(
                size, on, cash, -moved, flow
            )
            new_pos: uint256 = fixed_math._pack_position(size, on)
            taker_pos: uint256 = ledger._stored_position(liquidator, a)
            taker_size: int256 = 0
            taker_on: int256 = 0
            taker_size, taker_on = fixed_math._unpack_position(taker_pos)
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
    # Effects on cash. The penalty is taken from the account whole; its fee
    # share pays down an open deficit before it reaches the fund.
    cash -= convert(penalty, int256)
    taker_cash += convert(penalty - fee, int256)
    ledger._set_cash(liquidator, taker_cash)
    if fee != 0:
        self._credit_insurance(account, fee)
    if fraction == constants.WAD and cash < 0:
        cash = self._write_off(account, cash)
    ledger._set_cash(account, cash)

    # The liquidator takes on risk: it must meet IM with valid prices.
    ledger._require_initial_margin(liquidator, empty(ledger.Override))
    after: ledger.Margin = ledger._margin(account, empty(ledger.Override))
    log Liquidation(
        account=account,
        liquidator=liquidator,
        fraction=fraction,
        flow=paid,
        penalty=penalty,
        fee=fee,
        equity_before=before.equity,
        mm_before=before.mm,
        equity_after=after.equity,
        mm_after=after.mm,
    )
    self._log_accounts(account, liquidator, bitmap)
    return paid


@internal
def _credit_insurance(account: uint256, fee: uint256):
    """
    @dev Insurance income repays an open deficit first.
    """
    deficit: uint256 = ledger.deficit
    repaid: uint256 = min(fee, deficit)
    if repaid != 0:
        ledger.deficit = deficit - repaid
        log ledger.DeficitShared(
            account=account, amount=repaid, deficit=deficit - repaid
        )
    if fee != repaid:
        ledger._set_cash(
            constants.INSURANCE,
            ledger.cash[constants.INSURANCE] + convert(fee - repaid, int256),
        )


@internal
def _write_off(account: uint256, cash: int256) -> int256:
    """
    @dev The waterfall for a closed account's negative cash: the insurance
         fund pays what it holds, the rest becomes deficit. Returns the
         account's new cash (0).
    """
    hole: uint256 = convert(-cash, uint256)
    fund: int256 = ledger.cash[constants.INSURANCE]
    covered: uint256 = min(hole, convert(max(fund, 0), uint256))
    if covered != 0:
        ledger._set_cash(constants.INSURANCE, fund - convert(covered, int256))
    ledger.deficit += hole - covered
    log BadDebt(
        account=account, hole=hole, covered=covered, deficit=ledger.deficit
    )
    return 0


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
