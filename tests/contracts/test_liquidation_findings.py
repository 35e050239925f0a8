"""Regression tests for the liquidation review's findings, one named after each.

Each test's docstring holds the failing example on the code before the fix; together they
pin the written policy: nothing an account holder does can stop its liquidation.
"""

import ape
import pytest
from conftest import BTC, ETH, USDC, WAD, acct, balances, event, set_price

from offchain_risk.models.liquidation import LiquidationPolicy

POLICY = LiquidationPolicy()
INSURANCE = 0
SAT = 10**10  # one WBTC base unit (8 decimals) in WAD


@pytest.fixture(scope="session")
def liquidator(accounts):
    return accounts[5]


@pytest.fixture
def liquidator_funded(fund, usdc, liquidator):
    fund(liquidator, usdc, 1_000_000 * USDC)


@pytest.fixture
def guardian_set(engine, owner, guardian):
    engine.set_guardian(guardian, sender=owner)
    return guardian


def kill_feed(project, engine, feeds, owner, asset, how):
    """Put the asset's feed out of action in one of the ways a feed fails."""
    if how == "stale":
        feeds[asset].set_round(60_000 * 10**8, 1, 7, 7, sender=owner)
    elif how == "zero":
        feeds[asset].set_price(0, sender=owner)
    elif how == "above_max_price":
        feeds[asset].set_price(2**70, sender=owner)  # 2**70 * 10**10 WAD > MAX_PRICE
    elif how == "answer_overflows_scaling":
        # Scaled to WAD (x 10**10) this answer overflows uint256: reads reverted instead of
        # returning an invalid price, so views and liquidations of exposed accounts failed.
        # (MockAggregator keeps answers in int128: the hostile one answers anything.)
        hostile = project.HostileAggregator.deploy(8, 60_000 * 10**8, sender=owner)
        engine.set_feed(asset, hostile, 3_600, sender=owner)
        hostile.set_price(10**70, sender=owner)
    else:  # a feed that reverts, eats the caller's gas or answers garbage
        hostile = project.HostileAggregator.deploy(8, 60_000 * 10**8, sender=owner)
        engine.set_feed(asset, hostile, 3_600, sender=owner)
        hostile.set_mode({"reverting": 1, "gas_eating": 3, "malformed": 4}[how], sender=owner)


OUTAGES = [
    "stale",
    "zero",
    "above_max_price",
    "answer_overflows_scaling",
    "reverting",
    "gas_eating",
    "malformed",
]


@pytest.mark.parametrize("how", OUTAGES)
def test_regression_dust_shield__dead_collateral_feed__liquidation_proceeds(
    project, engine, liquidations, fund, wbtc, trader, feeds, owner, underwater, liquidator,
    liquidator_funded, how,
):  # fmt: skip
    """Finding 1 (high). The account placed 1 satoshi of WBTC, then BTC's feed went out:
    `liquidate` reverted with "oracle: invalid price" while the feed was out, so the account's
    losses past MM fell on the fund. Now the dust counts at zero and stays in the account."""
    fund(trader, wbtc, 1)  # 1 sat, deposited while BTC's price was valid
    kill_feed(project, engine, feeds, owner, BTC, how)
    assert not engine.price(BTC)[1]
    assert engine.liquidation_price(BTC) == 0
    [m] = engine.healths([underwater])
    assert m.prices_ok and m.unpriced and m.equity < m.mm
    tx = liquidations.liquidate(underwater, acct(liquidator), WAD, 10**30, sender=liquidator)
    assert event(tx, "Liquidated").fraction > 0
    assert engine.collateral(underwater, BTC) == SAT  # left in the account, not sold
    assert engine.collateral(acct(liquidator), BTC) == 0


@pytest.mark.parametrize("how", ["stale", "zero", "reverting"])
def test_regression_dust_shield__deposit_of_dead_feed_asset__refused(
    project, engine, fund, wbtc, usdc, trader, feeds, owner, snapshot, how
):
    """Finding 1: the dust could also be deposited during the outage, since `deposit`
    needed no price. A deposit of an asset whose own price is invalid is now refused; cash
    deposits need no price."""
    kill_feed(project, engine, feeds, owner, BTC, how)
    fund(trader, wbtc, 1, deposit=False)
    before = snapshot(trader)
    with ape.reverts("oracle: invalid price"):
        engine.deposit(acct(trader), wbtc, 1, sender=trader)
    assert snapshot(trader) == before
    fund(trader, usdc, 10 * USDC)  # cash is fine
    assert engine.cash(acct(trader)) == 10 * WAD


def test_regression_dust_shield__dead_perp_feed__guardian_fallback_lets_liquidation_proceed(
    engine, liquidations, feeds, owner, chain, underwater, liquidator, liquidator_funded,
    guardian_set,
):  # fmt: skip
    """Finding 1: where the perp's own feed is out, the guardian's short-lived fallback price
    lets liquidation proceed; without one, or once it expired, it waits."""
    feeds[ETH].set_round(1_550 * 10**8, 1, 7, 7, sender=owner)  # ETH's feed is stale
    with ape.reverts("oracle: invalid price"):
        liquidations.liquidation_preview(underwater, WAD)
    tx = engine.set_fallback_price(ETH, 1_550 * WAD, 600, sender=guardian_set)
    assert event(tx, "FallbackPriceSet").expiry == chain.blocks.head.timestamp + 600
    assert engine.liquidation_price(ETH) == 1_550 * WAD
    preview = liquidations.liquidation_preview(underwater, WAD)
    assert preview.equity_before == 6_000 * WAD  # valued at the fallback price
    chain.pending_timestamp += 601
    chain.mine()
    assert engine.liquidation_price(ETH) == 0  # expired
    with ape.reverts("oracle: invalid price"):
        liquidations.liquidate(underwater, acct(liquidator), WAD, 10**30, sender=liquidator)
    engine.set_fallback_price(ETH, 1_550 * WAD, 600, sender=guardian_set)
    tx = liquidations.liquidate(underwater, acct(liquidator), WAD, 10**30, sender=liquidator)
    assert event(tx, "Liquidated").fraction == preview.fraction
    # The liquidator holds the slice at the fallback price and still meets IM.
    assert engine.position(acct(liquidator), ETH)[0] > 0


def test_fallback_price__live_feed_wins(engine, feeds, owner, guardian_set):
    engine.set_fallback_price(ETH, 1 * WAD, 600, sender=guardian_set)
    assert engine.liquidation_price(ETH) == engine.price(ETH)[0] == 2_000 * WAD


@pytest.mark.parametrize(
    "case, message",
    [
        ("stranger", "ownable: caller is not the owner"),
        ("life_too_long", "ledger: fallback life too long"),
        ("zero_price", "ledger: bad fallback price"),
        ("price_above_max", "ledger: bad fallback price"),
        ("unlisted", "ledger: asset not listed"),
    ],
)
def test_fallback_price__bad_input__reverts_nothing_moves(
    engine, guardian_set, stranger, case, message
):
    before = [engine.fallback_price(a) for a in range(4)]
    who, asset, price, life = guardian_set, ETH, 1_000 * WAD, 600
    if case == "stranger":
        who = stranger
    elif case == "life_too_long":
        life = 3_601
    elif case == "zero_price":
        price = 0
    elif case == "price_above_max":
        price = 2**100 + 1
    else:
        asset = 31
    with ape.reverts(message):
        engine.set_fallback_price(asset, price, life, sender=who)
    assert [engine.fallback_price(a) for a in range(4)] == before


@pytest.mark.parametrize("how", ["reverting", "gas_eating", "malformed"])
def test_regression_reverting_feed_breaks_batches(
    project, engine, lens, fund, wbtc, stranger, feeds, owner, underwater, how
):
    """Finding 2 (low). A reverting feed made `healths`, `Lens.account_state` and `price`
    revert for the whole batch, and anyone could opt a batch in with 1 wei of its asset. The
    read is now gas-capped and a failure reads as an invalid price."""
    fund(stranger, wbtc, 1)  # the opt-in
    kill_feed(project, engine, feeds, owner, BTC, how)
    assert tuple(engine.price(BTC)) == (0, False)
    ms = engine.healths([underwater, acct(stranger)])
    assert ms[0].prices_ok and ms[0].equity < ms[0].mm  # the batch still answers
    assert ms[1].unpriced and ms[1].equity == 0
    view = lens.account_state(acct(stranger))
    assert view.assets[0].price_ok is False


def test_oracle__caller_starves_the_feed__reverts_out_of_gas(engine, chain):
    """A caller cannot make a live feed read as dead by giving it too little gas: below the
    feed's full allowance the read reverts instead."""
    from web3.exceptions import ContractLogicError

    data = bytes(engine.price.encode_input(BTC))
    w3 = chain.provider.web3
    with pytest.raises(ContractLogicError, match="oracle: out of gas"):
        w3.eth.call({"to": str(engine.address), "data": data, "gas": 45_000})
    assert w3.eth.call({"to": str(engine.address), "data": data, "gas": 200_000})


@pytest.fixture
def bankrupt_book(fund, usdc, trade, accounts, maker, feeds, owner):
    """A large book (long 2,000 ETH, 1.5M USDC) at ETH 1,200: E = -100k."""
    whale = accounts[6]
    fund(whale, usdc, 1_500_000 * USDC)
    fund(maker, usdc, 5_000_000 * USDC)
    trade(ETH, -2_000 * WAD, 2_000, taker_acc=whale)
    set_price(feeds, owner, ETH, 1_200)
    return acct(whale)


def test_regression_bankrupt_accounts_only_closed_whole(
    engine, liquidations, fund, usdc, bankrupt_book, stranger
):
    """Finding 3 (medium). At E < 0 the requested fraction was ignored: a liquidator had to
    take 100% of the book and meet IM on all of it, so a liquidator with 120k USDC could not
    touch a 2,000 ETH book 100k under water. Now it takes slices; each charges its share of
    the hole to the fund, and the book's health ratio does not change."""
    fund(stranger, usdc, 120_000 * USDC)
    e0, mm0 = engine.healths([bankrupt_book])[0][:2]
    assert e0 == -100_000 * WAD
    liq = acct(stranger)
    with ape.reverts("margin: below initial margin"):
        liquidations.liquidate(bankrupt_book, liq, WAD, 10**30, sender=stranger)
    tx = liquidations.liquidate(bankrupt_book, liq, WAD // 20, 10**30, sender=stranger)
    done, bad = event(tx, "Liquidated"), event(tx, "BadDebt")
    assert (done.fraction, done.clamped) == (WAD // 20, False)
    assert bad.hole == 5_000 * WAD  # 5% of the hole
    e1, mm1 = engine.healths([bankrupt_book])[0][:2]
    assert e1 == e0 * 95 // 100
    assert abs(mm1 - mm0 * 95 // 100) <= 10
    assert engine.position(liq, ETH)[0] == 100 * WAD


def test_regression_reward_jumps_when_equity_crosses_zero(
    engine, liquidations, underwater, feeds, owner
):
    """Finding 4 (medium). Above zero the penalty was capped at equity; below zero the full
    max_discount x MM was charged and paid by the fund: the reward jumped about 27x as E
    crossed zero (E = +1: reward ~1 USD; E = -1: ~470 USD), so waiting for bankruptcy paid.
    Now the reward is continuous: the penalty share falls to zero with equity and the
    bounty takes over."""
    # E = 15,000 - 20 * (2,000 - p): zero at p = 1,250.
    rewards = []
    for p in (1_250.05, 1_249.95):
        set_price(feeds, owner, ETH, p)
        pv = liquidations.liquidation_preview(underwater, WAD)
        rewards.append(pv.reward)
        assert pv.fraction == WAD
    above, below = rewards
    assert below <= above <= below + WAD  # within one dollar across zero
    assert below == POLICY.min_bounty
    # ... and never more below zero than anywhere above it.
    for p in (1_550, 1_450, 1_350, 1_300):
        set_price(feeds, owner, ETH, p)
        assert liquidations.liquidation_preview(underwater, WAD).reward >= below


def test_regression_liquidation_ignores_debt_cap(
    engine, liquidations, fund, usdc, weth, trade, trader, maker, feeds, owner, stranger
):
    """Finding 5 (medium). A liquidator with no cash bought the slice's collateral with
    negative cash: one call took debt to 57x the cap, then it withdrew its own collateral
    and kept the debt. Its new debt now counts against the cap (the liquidated account stays
    exempt)."""
    fund(trader, weth, 10 * WAD)
    fund(maker, usdc, 1_000_000 * USDC)
    trade(BTC, -WAD // 2, 60_000)  # trader long 0.5 BTC on WETH collateral
    set_price(feeds, owner, BTC, 34_000)
    fund(stranger, weth, 100 * WAD)  # the liquidator holds collateral, no cash
    engine.set_debt_cap(0, sender=owner)
    before = balances(engine, usdc, weth, acct(trader), acct(stranger))
    with ape.reverts("liquidation: debt cap"):
        liquidations.liquidate(acct(trader), acct(stranger), WAD, 10**30, sender=stranger)
    assert balances(engine, usdc, weth, acct(trader), acct(stranger)) == before
    # With cash to pay for the collateral it goes through under the same cap.
    fund(stranger, usdc, 50_000 * USDC)
    liquidations.liquidate(acct(trader), acct(stranger), WAD, 10**30, sender=stranger)
    assert engine.cash(acct(stranger)) >= 0


def test_regression_full_debt_cap_traps_healthy_accounts(
    engine, fund, usdc, weth, trade, trader, maker, feeds, owner
):
    """Finding 6 (medium). A fill that only reduces risk was capped as borrowing when the
    account still met IM: once the debt cap was full (anyone can fill it with two own
    sub-accounts), a healthy account could not close a losing position ("settlement: debt
    cap"). Fills that lower MM and do not lower health are never capped."""
    fund(trader, weth, 10 * WAD)  # collateral only, no cash
    fund(maker, usdc, 1_000_000 * USDC)
    trade(ETH, -5 * WAD, 2_000)  # trader long 5 ETH
    set_price(feeds, owner, ETH, 1_900)
    engine.set_debt_cap(0, sender=owner)  # the cap is full
    a = acct(trader)
    assert engine.health(a) > 0 and engine.cash(a) == 0
    trade(ETH, 5 * WAD, 1_900)  # close at the oracle price: realises -500
    assert engine.position(a, ETH) == (0, 0)
    assert engine.cash(a) == -500 * WAD
    assert engine.debt() == 500 * WAD > engine.debt_cap()


def test_regression_insurance_topups_never_repay_the_deficit(
    engine, liquidations, fund, usdc, underwater, feeds, owner, liquidator,
    liquidator_funded, stranger,
):  # fmt: skip
    """Finding 7 (low). Cash deposited into the insurance fund (account 0) sat beside an
    open deficit. It now repays the deficit first."""
    set_price(feeds, owner, ETH, 1_200)  # E = -1,000 with an empty fund
    liquidations.liquidate(underwater, acct(liquidator), WAD, 10**30, sender=liquidator)
    deficit = engine.deficit()
    assert deficit > 0
    fund(stranger, usdc, 700 * USDC, deposit=False)
    tx = engine.deposit(INSURANCE, usdc, 700 * USDC, sender=stranger)
    assert engine.deficit() == deficit - 700 * WAD
    assert engine.cash(INSURANCE) == 0
    assert event(tx, "DeficitShared").deficit == engine.deficit()
    fund(stranger, usdc, 2_000 * USDC, deposit=False)
    engine.deposit(INSURANCE, usdc, 2_000 * USDC, sender=stranger)
    assert engine.deficit() == 0
    assert engine.cash(INSURANCE) == 2_700 * WAD - deficit


def test_regression_collateral_dust_after_a_slice(
    engine, liquidations, fund, usdc, wbtc, trade, trader, maker, feeds, owner, liquidator,
    liquidator_funded,
):  # fmt: skip
    """Finding 8 (low). Slices moved sub-unit amounts of an 8-decimal token (e.g. 0.0107...
    WBTC in WAD), leaving both sides a remainder that no withdrawal (in token units) can
    take, tying the account to BTC's feed for good. Collateral now moves in whole units."""
    fund(trader, usdc, 15_000 * USDC)
    fund(trader, wbtc, 1_234_567)  # 0.01234567 WBTC
    fund(maker, usdc, 1_000_000 * USDC)
    trade(ETH, -20 * WAD, 2_000)
    set_price(feeds, owner, ETH, 1_520)
    a, liq = acct(trader), acct(liquidator)
    held = engine.collateral(a, BTC)
    assert engine.health(a) < 0
    tx = liquidations.liquidate(a, liq, WAD, 10**30, sender=liquidator)
    assert 0 < event(tx, "Liquidated").fraction < WAD
    moved = engine.collateral(liq, BTC)
    assert moved > 0 and moved % SAT == 0
    assert (held - moved) % SAT == 0 == engine.collateral(a, BTC) % SAT
    engine.withdraw(liq, wbtc, moved // SAT, sender=liquidator)  # all of it, in token units
    assert engine.collateral(liq, BTC) == 0


def test_regression_small_accounts_left_below_mm(
    engine, liquidations, fund, usdc, trade, trader, maker, feeds, owner, liquidator,
    liquidator_funded,
):  # fmt: skip
    """Finding 9. A slice's reward on a small book was cents (0.25 ETH long: about 0.8 USD),
    below any gas cost, so keepers skipped it and 7 books were left below MM at the end of
    the 2021-12 replay. The fund now tops the reward up to `min_bounty` for the allowed
    fraction."""
    fund(trader, usdc, 300 * USDC)
    fund(maker, usdc, 100_000 * USDC)
    fund(maker, usdc, 1_000 * USDC, deposit=False)
    engine.deposit(INSURANCE, usdc, 1_000 * USDC, sender=maker)
    trade(ETH, -WAD // 4, 2_000)
    set_price(feeds, owner, ETH, 900)
    a = acct(trader)
    pv = liquidations.liquidation_preview(a, WAD)
    assert pv.fraction == WAD and pv.reward == POLICY.min_bounty
    fund_before = engine.cash(INSURANCE)
    tx = liquidations.liquidate(a, acct(liquidator), WAD, 10**30, sender=liquidator)
    done = event(tx, "Liquidated")
    assert done.penalty - done.fee + done.bounty == POLICY.min_bounty
    assert engine.cash(INSURANCE) == fund_before + done.fee - done.bounty
    assert engine.account_assets(a) == 0


def test_regression_insurance_fund_has_no_account_state_events(
    engine, liquidations, underwater, liquidator, liquidator_funded
):
    """Finding 10 (low). Fees, write-offs and bounties changed account 0 with no
    AccountState event, so rebuilding accounts from logs got the fund wrong."""
    tx = liquidations.liquidate(underwater, acct(liquidator), WAD, 10**30, sender=liquidator)
    fund_logs = [
        log for log in tx.events if log.event_name == "AccountState" and log.account == INSURANCE
    ]
    assert len(fund_logs) == 1
    assert fund_logs[0].cash == engine.cash(INSURANCE) != 0


def test_liquidate__partial_request_earns_its_share_of_the_bounty(
    liquidations, fund, usdc, trade, trader, maker, feeds, owner, liquidator, liquidator_funded
):
    """The bounty is pro rata to the fraction taken of what was allowed: slicing an account
    into many small liquidations earns no more from the fund than one liquidation."""
    fund(trader, usdc, 300 * USDC)
    fund(maker, usdc, 100_000 * USDC)
    trade(ETH, -WAD // 4, 2_000)
    set_price(feeds, owner, ETH, 900)
    tx = liquidations.liquidate(
        acct(trader), acct(liquidator), WAD // 10, 10**30, sender=liquidator
    )
    done = event(tx, "Liquidated")
    assert done.penalty - done.fee + done.bounty == POLICY.min_bounty // 10
