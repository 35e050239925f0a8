"""Funding on the devnet listing, in-process (titanoboa): accrual, sign, cap, exact settlement
through open / flip / close, liquidation, conservation over many accounts, the twin to the wei
on random books with random elapsed times, and refused bad inputs.

The twin (offchain_risk.models.funding.MarketFunding) is stepped with the same fills and
times, never read back from the contract, so a disagreement in any word fails the test.
"""

import boa
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain_risk.models.funding import (
    FundingParams,
    MarketFunding,
    cap_from_margin_gap,
    index_at,
    owed,
    owed_exact,
    premium_of,
)
from offchain_risk.models.margin import RiskParams, margin_exact
from offchain_risk.units import HOUR, MAX_FUNDING_CAP, read_shocks

WAD = 10**18
USDC = 10**6
ETH, BTC, SOL, LINK = 0, 1, 2, 3
PERPS = (ETH, BTC, SOL, LINK)
PARAMS = FundingParams(convergence_hours=8, interest=10**13, cap=MAX_FUNDING_CAP)

# Random books on titanoboa are slow (about 300 calls an example): a few per run here, 100 in
# `make fuzz`; the stateful machine on revm covers funding's twin and conservation in volume.
EXAMPLES = max(6, settings.default.max_examples // 20)


class Desk:
    """A maker that signs orders and a taker that fills them, with the twin's market state."""

    def __init__(self, s, params=PARAMS):
        self.s = s
        self.nonce = 0
        self.twin = {m: MarketFunding() for m in PERPS}
        for m in PERPS:
            s.funding.set_funding_params(m, params.convergence_hours, params.interest, params.cap)
            self.twin[m].params_word = params.pack()

    def oracle(self, market):
        return self.s.engine.price(market)[0]

    def trade(self, maker, maker_acct, taker, taker_acct, market, maker_size, price):
        """The maker's size changes by `maker_size` at `price`; the twin samples the fill."""
        self.nonce += 1
        order, sig = self.s.sign_order(
            maker, owner=maker, subaccount=maker_acct & (2**96 - 1), market=market,
            size=maker_size, price=price, nonce=self.nonce, expiry=2**40,
        )  # fmt: skip
        oracle = self.oracle(market)
        self.s.book.fill(order, sig, abs(maker_size), taker_acct, sender=taker)
        return self.twin[market].accrue(
            boa.env.evm.patch.timestamp, oracle, premium_of(price, oracle), abs(maker_size)
        )

    def settle(self, acct, market):
        self.s.funding.settle_funding(acct, market)
        self.twin[market].accrue(boa.env.evm.patch.timestamp, self.oracle(market))


def claims(s, accounts):
    """Sum of cash - open notional: fills move it by zero, funding by what is paid."""
    return sum(s.engine.cash(a) - sum(s.engine.position(a, m)[1] for m in PERPS) for a in accounts)


def wait(s, seconds):
    """Move the clock and keep every feed fresh at its price."""
    boa.env.time_travel(seconds=seconds)
    for m in PERPS:
        s.feeds[m].set_price(s.feeds[m].latestRoundData()[1])


def now():
    return boa.env.evm.patch.timestamp


def test_funding__trades_above_index__longs_pay_shorts_receive(s):
    desk = Desk(s)
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader")
    oracle = desk.oracle(ETH)
    # The maker sells 10 ETH 1% above the index: the trader is long at a premium. The
    # fill is the market's first touch: the rate in force is the interest alone.
    start = desk.trade(maker, maker_acct, trader, trader_acct, ETH, -10 * WAD, oracle * 101 // 100)
    assert start == 0 and s.funding.funding_word(ETH) >> 192 == PARAMS.interest
    cash_long, cash_short = s.engine.cash(trader_acct), s.engine.cash(maker_acct)
    wait(s, HOUR)
    desk.settle(trader_acct, ETH)  # the first touch of a new hour sets the rate
    index0 = s.funding.funding_index(ETH)
    assert index0 == PARAMS.interest * oracle // WAD  # an hour of interest
    rate = s.funding.funding_word(ETH) >> 192
    assert rate == WAD // 100 // 8 + PARAMS.interest  # premium / 8 h + interest
    eq_long, eq_short = (s.funding.equity(a) for a in (trader_acct, maker_acct))
    wait(s, 2 * HOUR)
    index1 = s.funding.funding_index(ETH)
    assert index1 - index0 == rate * oracle * 2 * HOUR // (HOUR * WAD)
    due = owed(10 * WAD, index1, index0)
    assert due > 0
    assert s.funding.equity(trader_acct) == eq_long - due
    assert s.funding.equity(maker_acct) == eq_short - (
        owed(-10 * WAD, index1, start) - owed(-10 * WAD, index0, start)
    )
    desk.settle(trader_acct, ETH)
    desk.settle(maker_acct, ETH)
    paid = cash_long - s.engine.cash(trader_acct)
    received = s.engine.cash(maker_acct) - cash_short
    assert paid == owed(10 * WAD, index0, start) + due
    assert received == -owed(-10 * WAD, index1, start)
    assert 0 <= paid - received <= 2  # the rounding stays with the protocol
    assert s.funding.equity(trader_acct) == eq_long - due  # settling moves no equity


def test_funding__trades_below_index__shorts_pay(s):
    desk = Desk(s, FundingParams(8, 0, MAX_FUNDING_CAP))
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader")
    oracle = desk.oracle(BTC)
    desk.trade(maker, maker_acct, trader, trader_acct, BTC, -WAD, oracle * 98 // 100)
    wait(s, HOUR)
    desk.settle(maker_acct, BTC)
    rate = s.funding.funding_word(BTC) >> 192
    assert rate > 2**63  # negative (two's complement)
    before = s.engine.cash(maker_acct)  # the short
    wait(s, HOUR)
    desk.settle(maker_acct, BTC)
    assert s.engine.cash(maker_acct) < before


def test_funding__premium_beyond_cap__rate_clamped(s):
    cap = cap_from_margin_gap(WAD // 100, 3 * WAD // 2)  # MM 1% of notional, IM = 1.5 MM
    assert cap == WAD // 100 // 2 * 6 // 8  # 600% of the 0.5% gap per 8 h
    desk = Desk(s, FundingParams(1, 0, cap))
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader")
    oracle = desk.oracle(ETH)
    desk.trade(maker, maker_acct, trader, trader_acct, ETH, -WAD, oracle * 104 // 100)
    wait(s, HOUR)
    desk.settle(trader_acct, ETH)
    assert s.funding.funding_word(ETH) >> 192 == cap  # 4% / 1 h clamped
    assert desk.twin[ETH].rate == cap


def test_funding__open_flip_close__settles_exactly(s):
    desk = Desk(s)
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader")
    oracle = desk.oracle(SOL)
    start = claims(s, [trader_acct])
    expected = 0  # the trader's funding, from the twin's index at each fill
    size, snap = 0, 0
    for maker_size, pct in [(-2 * WAD, 101), (3 * WAD, 99), (-WAD, 100)]:  # long 2, short 1, 0
        price = oracle * pct // 100
        quote = abs(maker_size) * price // WAD
        start += quote if maker_size > 0 else -quote  # the trader sells when the maker buys
        index = desk.trade(maker, maker_acct, trader, trader_acct, SOL, maker_size, price)
        expected += owed(size, index, snap) if size else 0
        size, snap = size - maker_size, index
        assert s.funding.funding_snap(trader_acct, SOL) == index
        wait(s, 3 * HOUR + 17)
    assert s.engine.position(trader_acct, SOL) == (0, 0)
    assert expected != 0
    assert start - claims(s, [trader_acct]) == expected
    # Flat: time moves no more of its cash.
    eq = s.funding.equity(trader_acct)
    wait(s, 5 * HOUR)
    assert s.funding.equity(trader_acct) == eq


def test_funding__bad_params__refused_nothing_moved(s):
    before = s.funding.funding_params(ETH)
    cases = [
        ((ETH, 8, 0, MAX_FUNDING_CAP + 1), "ledger: funding cap too high"),
        ((ETH, 0, 0, 10**15), "ledger: bad funding convergence"),
        ((ETH, 169, 0, 10**15), "ledger: bad funding convergence"),
        ((ETH, 8, MAX_FUNDING_CAP + 1, 10**15), "ledger: funding interest too high"),
        ((ETH, 8, -MAX_FUNDING_CAP - 1, 10**15), "ledger: funding interest too high"),
        ((99, 8, 0, 10**15), "ledger: not a perp market"),
    ]
    for args, err in cases:
        with boa.reverts(err):
            s.funding.set_funding_params(*args)
        assert s.funding.funding_params(ETH) == before
    stranger = s.actor("stranger")
    with boa.reverts("ownable: caller is not the owner"):
        s.funding.set_funding_params(ETH, 8, 0, 10**15, sender=stranger)
    assert s.funding.funding_params(ETH) == before


def test_lower_funding_cap__managers_cut_only_the_cap__owner_sets_the_rest(s):
    """The risk and snapshot managers (signed entries) may lower a cap, never raise it nor
    touch convergence or interest; a stranger may do neither; a refusal moves nothing."""
    s.funding.set_funding_params(ETH, 8, 10**13, 10**15)
    risk, snap, stranger = s.actor("risk_manager"), s.actor("snapshot_manager"), s.actor("x")
    s.admin.set_risk_manager(risk)
    s.admin.set_snapshot_manager(snap)
    word = s.funding.funding_params(ETH)
    refused = [
        (risk, "set_funding_params", (ETH, 8, 10**13, 10**14), "ownable: caller is not the owner"),
        (risk, "lower_funding_cap", (ETH, 10**15), "ledger: funding cap not lower"),
        (snap, "lower_funding_cap", (ETH, 10**15 + 1), "ledger: funding cap not lower"),
        (snap, "lower_funding_cap", (SOL, 0), "ledger: funding cap not lower"),
        (stranger, "lower_funding_cap", (ETH, 10**14), "ownable: caller is not the owner"),
    ]
    for who, fn, args, err in refused:
        with boa.reverts(err):
            getattr(s.funding, fn)(*args, sender=who)
        assert s.funding.funding_params(ETH) == word and s.funding.funding_params(SOL) == 0
    s.funding.lower_funding_cap(ETH, 10**14, sender=risk)
    assert FundingParams.unpack(s.funding.funding_params(ETH)) == FundingParams(8, 10**13, 10**14)
    s.funding.lower_funding_cap(ETH, 0, sender=snap)
    assert FundingParams.unpack(s.funding.funding_params(ETH)) == FundingParams(8, 10**13, 0)


def test_settle_funding__dead_feed_or_not_a_perp__refused_nothing_moved(s):
    desk = Desk(s)
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader")
    oracle = desk.oracle(ETH)
    desk.trade(maker, maker_acct, trader, trader_acct, ETH, -WAD, oracle * 101 // 100)
    wait(s, 2 * HOUR)
    word, cash = s.funding.funding_word(ETH), s.engine.cash(trader_acct)
    snap = s.funding.funding_snap(trader_acct, ETH)
    s.feeds[ETH].set_price(0)
    with boa.reverts("oracle: invalid price"):
        s.funding.settle_funding(trader_acct, ETH)
    with boa.reverts("ledger: not a perp market"):
        s.funding.settle_funding(trader_acct, 31)
    assert s.funding.funding_word(ETH) == word
    assert s.engine.cash(trader_acct) == cash
    assert s.funding.funding_snap(trader_acct, ETH) == snap


def test_liquidation__unsettled_funding__counted_and_settled(s):
    desk = Desk(s, FundingParams(1, 0, MAX_FUNDING_CAP))
    maker, maker_acct = s.fund("maker")
    trader, trader_acct = s.fund("trader", amount=8_000 * USDC)
    oracle = desk.oracle(ETH)
    # Long 10 ETH at the band's edge: a 5% premium, 1 h convergence -> capped at 1%/h.
    desk.trade(maker, maker_acct, trader, trader_acct, ETH, -10 * WAD, oracle * 105 // 100)
    wait(s, HOUR)
    desk.settle(maker_acct, ETH)
    state = s.lens.account_state(trader_acct)
    assert state.equity >= state.mm  # healthy at the price alone...
    hours = 0
    while s.lens.account_state(trader_acct).equity >= s.lens.account_state(trader_acct).mm:
        wait(s, HOUR)
        hours += 1
        assert hours < 200
    # ... funding alone took it below MM, with no fill since.
    assert s.engine.cash(trader_acct) == state.cash
    before = s.engine.liquidation_margin(trader_acct, 0)
    liquidator, liquidator_acct = s.fund("liquidator")
    s.liquidations.liquidate(trader_acct, liquidator_acct, WAD, 2**255 - 1, sender=liquidator)
    # The slice settled the account's funding at the index the valuation used.
    assert s.funding.funding_snap(trader_acct, ETH) == s.funding.funding_index(ETH)
    assert s.funding.funding_snap(liquidator_acct, ETH) == s.funding.funding_index(ETH)
    assert before.equity < before.mm


@given(
    data=st.data(),
    n_accounts=st.integers(3, 8),
    n_fills=st.integers(4, 14),
)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_funding__random_books_and_times__twin_to_the_wei_and_conserved(
    devnet_stack, data, n_accounts, n_fills
):
    with boa.env.anchor():
        s = devnet_stack
        desk = Desk(s, FundingParams(data.draw(st.integers(1, 16)), 10**13, MAX_FUNDING_CAP))
        maker, maker_acct = s.fund("maker", amount=10**8 * USDC)
        traders = [s.fund(f"trader{i}", amount=10**6 * USDC) for i in range(n_accounts)]
        accounts = [maker_acct] + [a for _, a in traders]
        start = claims(s, accounts)
        for _ in range(n_fills):
            market = data.draw(st.sampled_from(PERPS))
            taker, acct = data.draw(st.sampled_from(traders))
            units = data.draw(st.integers(1, 50)) * WAD // 10
            maker_size = units if data.draw(st.booleans()) else -units
            oracle = desk.oracle(market)
            price = oracle + oracle * data.draw(st.integers(-499, 499)) // 10_000
            desk.trade(maker, maker_acct, taker, acct, market, maker_size, price)
            wait(s, data.draw(st.integers(1, 5 * HOUR)))
            # Twin == contract: every market word, and the margin of the two accounts the
            # fill touched (every account's is checked once the example's time has passed).
            for m in PERPS:
                assert s.funding.funding_word(m) == desk.twin[m].funding_word
                assert s.funding.premium_word(m) == desk.twin[m].premium_word
            _check_equity(s, desk, [maker_acct, acct])
        _check_equity(s, desk, accounts)
        # Conservation: what the fills settled so far, plus what the twin says is owed,
        # is exactly what settling everything takes out of the accounts' claims; the total
        # is the rounding alone: >= 0 (the protocol's) and < 1 wei per settlement.
        settled = start - claims(s, accounts)
        unsettled = sum(_unsettled(s, desk, accounts))
        settlements = 2 * n_fills
        for a in accounts:
            for m in PERPS:
                if s.engine.position(a, m)[0] != 0:
                    desk.settle(a, m)
                    settlements += 1
        total = start - claims(s, accounts)
        assert total == settled + unsettled
        assert 0 <= total < settlements
        assert sum(_unsettled(s, desk, accounts)) == 0


def _prices(s):
    return [s.engine.price(m)[0] for m in range(len(s.feeds))]


def _unsettled(s, desk, accounts):
    t = now()
    prices = _prices(s)
    idx = [desk.twin[m].index_at(prices[m], t) for m in PERPS]
    size = [[s.engine.position(a, m)[0] for m in PERPS] for a in accounts]
    snaps = [[s.funding.funding_snap(a, m) for m in PERPS] for a in accounts]
    return list(owed_exact(np.array(size, dtype=object), np.array(snaps, dtype=object), idx))


def _check_equity(s, desk, accounts):
    n_assets = len(s.feeds)
    prices = _prices(s)
    cash = np.array([s.engine.cash(a) for a in accounts], dtype=object)
    coll = [[s.engine.collateral(a, m) for m in range(n_assets)] for a in accounts]
    pos = [[s.engine.position(a, m) for m in range(n_assets)] for a in accounts]
    size = [[p[0] for p in row] for row in pos]
    on = [[p[1] for p in row] for row in pos]
    funding = _unsettled(s, desk, accounts)
    params = RiskParams(
        floor_bps=np.array([(s.engine.asset_word(m) >> 200) & 0xFFFF for m in range(n_assets)]),
        haircut_bps=np.array([(s.engine.asset_word(m) >> 216) & 0xFFFF for m in range(n_assets)]),
        shocks_bps=np.array([read_shocks(s.engine, m) for m in range(n_assets)]),
        im_multiplier_wad=s.engine.im_multiplier(),
    )
    twin = margin_exact(cash, coll, size, on, prices, params, funding_owed=funding)
    for i, a in enumerate(accounts):
        m = s.engine.liquidation_margin(a, 0)
        assert (m.equity, m.mm, m.im) == (twin.equity[i], twin.mm[i], twin.im[i])
        assert s.funding.equity(a) == twin.equity[i]


def test_index_at__twin_formula(s):
    word = (5 << 192) | (100 << 128) | 7
    assert index_at(word, 2 * WAD, 100 + HOUR) == 7 + 5 * 2 * WAD * HOUR // (HOUR * WAD)


@pytest.mark.parametrize("size,index,snap,expected", [(3, 1, 0, 1), (-3, 1, 0, 0)])
def test_owed__rounds_against_the_account(size, index, snap, expected):
    assert owed(size * WAD // WAD, index, snap) == expected
