"""Liquidations.liquidate and the engine's slice primitive: money flows, fractions, waterfall."""

import ape
import numpy as np
import pytest
from conftest import BTC, ETH, PRICES, SHOCKS, USDC, WAD, acct, balances, event, set_price

from offchain_risk.models.liquidation import LiquidationPolicy
from offchain_risk.models.liquidation import preview as twin_preview
from offchain_risk.models.margin import RiskParams, pad_scenarios

POLICY = LiquidationPolicy()
INSURANCE = 0


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[5]


@pytest.fixture
def keeper_funded(fund, usdc, keeper):
    fund(keeper, usdc, 1_000_000 * USDC)


def net_cash(state, *accounts):
    return state["insurance"] + sum(
        state[a][0] - sum(on for _, on in state[a][2]) for a in accounts
    )


def conserved(engine, usdc, *accounts):
    """Cash tokens held + deficit == net cash of every account (fund included)."""
    held = usdc.balanceOf(engine) * 10**12
    net = engine.cash(INSURANCE) + sum(
        engine.cash(a) - sum(engine.position(a, m)[1] for m in range(4)) for a in accounts
    )
    return held + engine.deficit() == net


def test_liquidate__partial__every_balance_accounted(
    engine, liquidations, usdc, weth, underwater, keeper, keeper_funded
):
    liq = acct(keeper)
    e0, mm0, _ = engine.margin(underwater)
    assert e0 == 6_000 * WAD and mm0 == 6_200 * WAD
    before = balances(engine, usdc, weth, underwater, liq)
    preview = liquidations.liquidation_preview(underwater, WAD)

    tx = liquidations.liquidate(underwater, liq, WAD, 10**30, sender=keeper)

    done = event(tx, "Liquidated")
    f, penalty, fee, bounty = done.fraction, done.penalty, done.fee, done.bounty
    assert done.clamped and done.requested == WAD and f == done.allowed == preview.fraction
    # The liquidator's share of the penalty is below the minimum bounty: the fund tops
    # it up to min_bounty (the whole allowed fraction was taken).
    assert penalty - fee + bounty == POLICY.min_bounty and bounty > 0
    moved = 20 * WAD * f // WAD
    flow = -((-moved * 1_550 * WAD) // WAD)  # the account sells at the oracle, rounded up
    after = balances(engine, usdc, weth, underwater, liq)
    # Tokens do not move in a liquidation; cash does, exactly.
    assert after["engine_usdc"] == before["engine_usdc"]
    assert after["engine_weth"] == before["engine_weth"]
    assert after["insurance"] == before["insurance"] + fee - bounty
    assert (after["deficit"], after["debt"]) == (before["deficit"], before["debt"])
    assert after["oi"] == before["oi"]  # the long moved from one account to another
    size, on = before[underwater][2][ETH]
    removed = on * moved // size
    assert after[underwater][2][ETH] == (size - moved, on - removed)
    assert after[underwater][0] == before[underwater][0] + flow - removed - penalty
    assert after[liq][2][ETH] == (moved, flow)  # it opened a long: the price is its notional
    assert after[liq][0] == before[liq][0] + penalty - fee + bounty  # by the reward only
    # Zero-sum in net cash (cash - open notional): what the account lost, the others got.
    assert net_cash(before, underwater, liq) == net_cash(after, underwater, liq)
    # The account is back above MM with the buffer; the event carries the state before.
    e1, mm1, _ = engine.margin(underwater)
    assert e1 >= mm1 * (WAD + POLICY.target_buffer) // WAD - 10
    slice_ = event(tx, "Liquidation")
    assert (slice_.equity_before, slice_.mm_before) == (e0, mm0)
    assert (slice_.penalty, slice_.fee, slice_.bounty, slice_.hole) == (penalty, fee, bounty, 0)
    # Preview equals execution.
    assert (preview.penalty, preview.fee, preview.bounty, preview.cost) == (
        penalty,
        fee,
        bounty,
        done.cost,
    )
    assert (preview.equity_after, preview.mm_after) == (e1, mm1)


def test_liquidate__discount_grows_with_shortfall(engine, liquidations, underwater, feeds, owner):
    shallow = liquidations.liquidation_preview(underwater, WAD)
    set_price(feeds, owner, ETH, 1_450)  # E = 4,000, MM = 5,800
    deep = liquidations.liquidation_preview(underwater, WAD)
    assert POLICY.min_discount < shallow.discount < deep.discount <= POLICY.max_discount
    e, mm = 4_000 * WAD, 5_800 * WAD
    shortfall = (mm - e) * WAD // mm
    expected = POLICY.min_discount + (POLICY.max_discount - POLICY.min_discount) * shortfall // WAD
    assert deep.discount == expected


def test_liquidate__smaller_request__executes_it_unclamped(
    engine, liquidations, underwater, keeper, keeper_funded
):
    tx = liquidations.liquidate(underwater, acct(keeper), WAD // 100, 10**30, sender=keeper)
    done = event(tx, "Liquidated")
    assert (done.fraction, done.clamped) == (WAD // 100, False)
    assert done.allowed > WAD // 100
    assert engine.position(acct(keeper), ETH)[0] == 20 * WAD // 100


def test_liquidate__cap__clamps_to_half_unless_critical(
    engine, liquidations, underwater, feeds, owner
):
    set_price(feeds, owner, ETH, 1_395)  # E = 2,900, MM = 5,580, h = 0.52: needs > 50%
    capped = liquidations.liquidation_preview(underwater, WAD)
    assert capped.allowed == POLICY.close_cap
    set_price(feeds, owner, ETH, 1_330)  # E = 1,600, MM = 5,320, h = 0.30
    critical = liquidations.liquidation_preview(underwater, WAD)
    assert critical.allowed > POLICY.close_cap
    assert critical.health_after >= 0


def test_liquidate__dust_account__closed_fully(
    engine, liquidations, fund, usdc, trade, trader, maker, feeds, owner, keeper, keeper_funded
):
    fund(trader, usdc, 300 * USDC)
    fund(maker, usdc, 100_000 * USDC)
    trade(ETH, -WAD // 4, 2_000)  # 0.25 ETH: MM = 100 at 2,000
    set_price(feeds, owner, ETH, 900)  # E = 25 < MM = 45
    a = acct(trader)
    assert engine.margin(a)[1] < POLICY.dust_margin
    tx = liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    assert event(tx, "Liquidated").fraction == WAD
    assert engine.account_assets(a) == 0
    assert engine.position(acct(keeper), ETH)[0] == WAD // 4


def test_liquidate__hedged_portfolio__keeps_hedge_ratio(
    engine, liquidations, fund, usdc, trade, trader, maker, feeds, owner, keeper, keeper_funded
):
    """Long 30 ETH, short 1 BTC: a pro-rata slice leaves the hedge ratio unchanged."""
    fund(trader, usdc, 20_000 * USDC)
    fund(maker, usdc, 1_000_000 * USDC)
    trade(ETH, -30 * WAD, 2_000)
    trade(BTC, WAD, 60_000)
    a = acct(trader)
    set_price(feeds, owner, ETH, 1_350)  # the long loses: E = 500 < MM = 1,650
    assert engine.health(a) < 0
    tx = liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    f = event(tx, "Liquidated").fraction
    assert 0 < f < WAD
    eth, btc = engine.position(a, ETH)[0], engine.position(a, BTC)[0]
    assert eth == 30 * WAD - 30 * WAD * f // WAD
    assert btc == -WAD + WAD * f // WAD
    assert abs(eth / -btc - 30) < 1e-12  # the ratio, to rounding
    assert engine.health(a) > 0


def test_liquidate__collateral_sold_at_haircut_value(
    engine,
    liquidations,
    fund,
    usdc,
    weth,
    trade,
    trader,
    maker,
    feeds,
    owner,
    keeper,
    keeper_funded,
):
    """WETH collateral and a long BTC perp: the slice buys
    collateral at p * (1 - haircut) and the liquidator receives the tokens' claim."""
    fund(trader, weth, 10 * WAD)  # 20,000 at 2,000, haircut 2%
    fund(maker, usdc, 1_000_000 * USDC)
    trade(BTC, -WAD // 2, 60_000)  # trader long 0.5 BTC
    set_price(feeds, owner, BTC, 34_000)
    a = acct(trader)
    assert engine.health(a) < 0
    before = engine.collateral(a, ETH)
    tx = liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    f = event(tx, "Liquidated").fraction
    moved = before * f // WAD
    assert engine.collateral(acct(keeper), ETH) == moved
    assert engine.collateral(a, ETH) == before - moved
    assert weth.balanceOf(engine) == 10 * WAD  # claims moved, tokens stayed


def test_liquidate__healthy_account__reverts_nothing_moves(
    engine, liquidations, usdc, weth, funded, trade, trader, keeper, keeper_funded
):
    trade(ETH, -WAD, 2_000)
    before = balances(engine, usdc, weth, acct(trader), acct(keeper))
    with ape.reverts("liquidations: account is healthy"):
        liquidations.liquidate(acct(trader), acct(keeper), WAD, 10**30, sender=keeper)
    with ape.reverts("liquidations: account is healthy"):
        liquidations.liquidation_preview(acct(trader), WAD)
    assert balances(engine, usdc, weth, acct(trader), acct(keeper)) == before


@pytest.mark.parametrize(
    "case, message",
    [
        ("zero_fraction", "liquidations: zero fraction"),
        ("not_my_account", "liquidations: not owner or operator of the liquidator"),
        ("insurance_as_liquidator", "liquidations: not owner or operator of the liquidator"),
        ("same_account", "liquidation: same account"),
        ("max_cost", "liquidations: cost above max_cost"),
        ("direct_slice", "liquidation: not the liquidator"),
        ("stale_feed", "oracle: invalid price"),
    ],
)
def test_liquidate__bad_input__reverts_nothing_moves(
    engine,
    liquidations,
    usdc,
    weth,
    underwater,
    trader,
    maker,
    keeper,
    keeper_funded,
    feeds,
    owner,
    case,
    message,
):
    liq = acct(keeper)
    before = balances(engine, usdc, weth, underwater, liq, acct(maker))
    with ape.reverts(message):
        if case == "zero_fraction":
            liquidations.liquidate(underwater, liq, 0, 10**30, sender=keeper)
        elif case == "not_my_account":
            liquidations.liquidate(underwater, acct(maker), WAD, 10**30, sender=keeper)
        elif case == "insurance_as_liquidator":
            liquidations.liquidate(underwater, INSURANCE, WAD, 10**30, sender=keeper)
        elif case == "same_account":
            liquidations.liquidate(underwater, underwater, WAD, 10**30, sender=trader)
        elif case == "max_cost":
            cost = liquidations.liquidation_preview(underwater, WAD).cost
            liquidations.liquidate(underwater, liq, WAD, cost - 1, sender=keeper)
        elif case == "direct_slice":
            e, mm, _ = engine.margin(underwater)
            engine.liquidate_slice(underwater, liq, (WAD // 10, 0, 0, 0, e, mm), sender=keeper)
        elif case == "stale_feed":
            feeds[ETH].set_round(1_550 * 10**8, 1, 7, 7, sender=owner)  # updated at t = 1
            liquidations.liquidate(underwater, liq, WAD, 10**30, sender=keeper)
    assert balances(engine, usdc, weth, underwater, liq, acct(maker)) == before


def test_liquidate__liquidator_below_im__refused(
    engine, liquidations, usdc, weth, underwater, stranger
):
    """A liquidator with nothing deposited cannot take on the slice."""
    before = balances(engine, usdc, weth, underwater, acct(stranger))
    with ape.reverts("margin: below initial margin"):
        liquidations.liquidate(underwater, acct(stranger), WAD, 10**30, sender=stranger)
    assert balances(engine, usdc, weth, underwater, acct(stranger)) == before


def test_liquidate__self_liquidation__costs_the_owner(
    engine, liquidations, fund, usdc, weth, underwater, trader
):
    """The owner liquidating its own sub-account into another pays the whole penalty to
    the insurance fund and earns nothing: its total equity falls."""
    fund(trader, usdc, 50_000 * USDC, sub=1)
    own = acct(trader, 1)
    total_before = engine.equity(underwater) + engine.equity(own)
    insurance_before = engine.cash(INSURANCE)
    tx = liquidations.liquidate(underwater, own, WAD, 10**30, sender=trader)
    done = event(tx, "Liquidated")
    assert done.penalty > 0 and done.fee == done.penalty  # all to the fund
    total_after = engine.equity(underwater) + engine.equity(own)
    assert total_after <= total_before - done.penalty + 2  # + rounding of two floors
    assert total_after < total_before
    assert engine.cash(INSURANCE) == insurance_before + done.penalty


@pytest.fixture
def insolvent(underwater, feeds, owner):
    """The same book at ETH 1,200: E = 15,000 - 16,000 = -1,000."""
    set_price(feeds, owner, ETH, 1_200)
    return underwater


@pytest.fixture
def deficit_open(insolvent, liquidations, keeper, keeper_funded):
    """The insolvent book closed with an empty insurance fund: a deficit is open."""
    liquidations.liquidate(insolvent, acct(keeper), WAD, 10**30, sender=keeper)
    return insolvent


def test_liquidate__insolvent_funded_insurance__fund_covers_hole(
    engine, liquidations, usdc, owner, keeper, keeper_funded, stranger, insolvent
):
    """A slice of a bankrupt account charges its pro-rata share of the hole to the fund;
    the final slice writes off the rest. The liquidator earns the bounty only."""
    assert engine.equity(insolvent) == -1_000 * WAD
    usdc.mint(stranger, 5_000 * USDC, sender=owner)
    usdc.approve(engine, 5_000 * USDC, sender=stranger)
    engine.deposit(INSURANCE, usdc, 5_000 * USDC, sender=stranger)  # anyone may fund it
    tx = liquidations.liquidate(insolvent, acct(keeper), WAD // 10, 10**30, sender=keeper)
    done = event(tx, "Liquidated")
    assert (done.fraction, done.clamped, done.penalty, done.fee) == (WAD // 10, False, 0, 0)
    assert done.bounty == POLICY.min_bounty // 10
    bad = event(tx, "BadDebt")
    assert (bad.hole, bad.covered, bad.deficit) == (100 * WAD, 100 * WAD, 0)
    assert engine.cash(INSURANCE) == 5_000 * WAD - 100 * WAD - done.bounty
    # The rest of the account keeps its health ratio: E and MM both shrank by 10%.
    assert engine.equity(insolvent) == -900 * WAD

    tx = liquidations.liquidate(insolvent, acct(keeper), WAD, 10**30, sender=keeper)
    last, bad = event(tx, "Liquidated"), event(tx, "BadDebt")
    assert last.fraction == WAD and last.bounty == POLICY.min_bounty
    assert (bad.hole, bad.covered, bad.deficit) == (900 * WAD, 900 * WAD, 0)
    assert engine.cash(INSURANCE) == 5_000 * WAD - 1_000 * WAD - 11 * POLICY.min_bounty // 10
    assert (engine.cash(insolvent), engine.account_assets(insolvent), engine.deficit()) == (0, 0, 0)
    assert engine.debt() == 0


def test_liquidate__insolvent_empty_insurance__records_deficit(
    engine, liquidations, usdc, maker, keeper, keeper_funded, insolvent
):
    tx = liquidations.liquidate(insolvent, acct(keeper), WAD, 10**30, sender=keeper)
    done, bad = event(tx, "Liquidated"), event(tx, "BadDebt")
    assert (done.penalty, done.fee, done.bounty) == (0, 0, POLICY.min_bounty)
    # The empty fund covers nothing: the hole and the bounty become the deficit.
    assert (bad.hole, bad.covered) == (1_000 * WAD, 0)
    assert engine.deficit() == 1_000 * WAD + POLICY.min_bounty == bad.deficit
    assert engine.cash(INSURANCE) == 0
    assert conserved(engine, usdc, acct(maker), acct(keeper), insolvent)


@pytest.mark.usefixtures("deficit_open")
def test_deficit__withdrawals_share_it_pro_rata(engine, usdc, trader, maker, keeper):
    deficit = engine.deficit()
    claims = usdc.balanceOf(engine) * 10**12 + deficit
    cash_before, wallet_before = engine.cash(acct(maker)), usdc.balanceOf(maker)
    tx = engine.withdraw(acct(maker), usdc, 10_000 * USDC, sender=maker)
    share = -((-10_000 * WAD * deficit) // claims)
    paid = (10_000 * WAD - share) // 10**12
    assert usdc.balanceOf(maker) - wallet_before == paid
    assert engine.cash(acct(maker)) == cash_before - 10_000 * WAD  # the claim is spent
    assert engine.deficit() == deficit - (10_000 * WAD - paid * 10**12)
    assert event(tx, "DeficitShared").deficit == engine.deficit()
    # Leaving first or last costs the same share: the backing ratio did not move.
    claims_after = usdc.balanceOf(engine) * 10**12 + engine.deficit()
    assert abs(engine.deficit() * claims - deficit * claims_after) <= claims * 10**12
    assert conserved(engine, usdc, acct(maker), acct(keeper), acct(trader))


@pytest.mark.usefixtures("deficit_open")
def test_deficit__insurance_income_repays_it_first(
    engine, liquidations, usdc, fund, trade, feeds, owner, keeper, accounts
):
    deficit = engine.deficit()
    # A second, solvent account is liquidated: its fee goes to the deficit, not the fund.
    other = accounts[6]
    fund(other, usdc, 15_000 * USDC)
    set_price(feeds, owner, ETH, 2_000)
    trade(ETH, -20 * WAD, 2_000, taker_acc=other)
    set_price(feeds, owner, ETH, 1_550)
    tx = liquidations.liquidate(acct(other), acct(keeper), WAD, 10**30, sender=keeper)
    done = event(tx, "Liquidated")
    assert done.fee > done.bounty  # the fund's net income: its fee less the bounty top-up
    assert engine.deficit() == deficit - (done.fee - done.bounty)
    assert engine.cash(INSURANCE) == 0


def test_insurance_deposit__collateral_token__reverts(engine, weth, fund, stranger):
    fund(stranger, weth, WAD, deposit=False)
    with ape.reverts("ledger: insurance holds cash only"):
        engine.deposit(INSURANCE, weth, WAD, sender=stranger)
    assert weth.balanceOf(engine) == 0


def test_twin_preview__equals_contract(
    engine, liquidations, fund, usdc, weth, trade, trader, maker, feeds, owner, accounts
):
    """The numpy twin's preview equals the contract's, to the wei, for several books."""
    fund(maker, usdc, 10_000_000 * USDC)
    books = [
        (accounts[1], [(ETH, 20 * WAD)], 15_000),
        (accounts[6], [(ETH, 30 * WAD), (BTC, -WAD)], 20_000),
        (accounts[7], [(ETH, -10 * WAD)], 6_000),
    ]
    for who, legs, cash in books:
        fund(who, usdc, cash * USDC)
        for market, size in legs:
            trade(market, -size, PRICES["ETH" if market == ETH else "BTC"], taker_acc=who)
    fund(accounts[7], weth, 3 * WAD)
    set_price(feeds, owner, ETH, 1_500)
    set_price(feeds, owner, BTC, 64_000)
    ids = [acct(w) for w, _, _ in books]
    prices = [engine.price(m)[0] for m in range(4)]
    params = RiskParams(
        floor_bps=np.array([100, 100, 200, 300]),
        haircut_bps=np.array([200, 300, 0, 0]),
        shocks_bps=pad_scenarios(SHOCKS),
        im_multiplier_wad=engine.im_multiplier(),
    )
    cash = [engine.cash(a) for a in ids]
    coll = [[engine.collateral(a, m) for m in range(4)] for a in ids]
    pos = [[engine.position(a, m) for m in range(4)] for a in ids]
    size = [[p[0] for p in row] for row in pos]
    on = [[p[1] for p in row] for row in pos]
    for requested in (WAD, WAD // 7):
        twin = twin_preview(cash, coll, size, on, prices, params, POLICY, requested)
        for i, a in enumerate(ids):
            if not twin.liquidatable[i]:
                with ape.reverts("liquidations: account is healthy"):
                    liquidations.liquidation_preview(a, requested)
                continue
            c = liquidations.liquidation_preview(a, requested)
            assert (
                c.fraction,
                c.allowed,
                c.discount,
                c.penalty,
                c.reward,
                c.fee,
                c.bounty,
                c.hole,
                c.cost,
                c.equity_before,
                c.mm_before,
                c.equity_after,
                c.mm_after,
            ) == (
                twin.fraction[i],
                twin.allowed[i],
                twin.discount[i],
                twin.penalty[i],
                twin.reward[i],
                twin.fee[i],
                twin.bounty[i],
                twin.hole[i],
                twin.cost[i],
                twin.equity_before[i],
                twin.mm_before[i],
                twin.equity_after[i],
                twin.mm_after[i],
            )
    assert twin.liquidatable.sum() >= 2
