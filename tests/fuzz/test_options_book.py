"""OptionBook in titanoboa: listing on the grid, option fills through the order book and
the engine's margin rule, the outage policy of the vol feed, expiry and settlement, and the
liquidation of option legs.

Every refused call asserts its message and that no leg, open interest, cash or listing
moved. Node-free: the whole file runs in a few seconds.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from ballast_machine import VAULT, _list_vault
from boa_stack import CONTRACTS
from option_stack import (
    BTC,
    DAY,
    ETH,
    SHORT_MIN_BPS,
    USDC,
    VOL_HEARTBEAT,
    VOL_SHOCK,
    WAD,
    Options,
    RoundReader,
)

from offchain_risk.chain import settlement_round
from offchain_risk.models.funding import index_at, owed
from offchain_risk.models.margin import RiskParams
from offchain_risk.models.options import OptionLeg, margin_with_options_exact
from offchain_risk.units import INSURANCE, read_shocks


@pytest.fixture(scope="module")
def _deployed(devnet_stack):
    with boa.env.anchor():
        yield Options(stack=devnet_stack)


@pytest.fixture
def opt(_deployed):
    with boa.env.anchor():
        yield _deployed


# ----------------------------------------------------------------- listing


def test_list_option__on_grid__id_packs_the_instrument(opt):
    strike, expiry = 2_300 * WAD, opt.far
    id = opt.book.list_option(ETH, expiry, strike, False)
    assert id == opt.book.instrument_id(ETH, expiry, strike, False)
    assert id >> 255 == 1 and opt.book.listed(id)
    assert tuple(opt.book.instrument(id)) == (ETH, expiry, strike, False)


@pytest.mark.parametrize(
    "args, message",
    [
        ((ETH, "expiry+1", 2_000 * WAD, True), "options: expiry off grid"),
        ((ETH, "expiry", 2_050 * WAD, True), "options: strike off grid"),
        ((ETH, "expiry", 0, True), "options: strike off grid"),
        ((ETH, "past", 2_000 * WAD, True), "options: expired"),
        ((ETH, "far", 2_000 * WAD, True), "options: already listed"),
        ((2, "expiry", 200 * WAD, True), "options: unknown underlying"),
        ((ETH, "5y", 2_000 * WAD, True), "options: expiry too far"),
    ],
)
def test_list_option__bad_input__refused(opt, args, message):
    underlying, when, strike, is_call = args
    expiry = {
        "expiry": opt.expiry,
        "expiry+1": opt.expiry + 1,
        "past": opt.expiry - 14 * DAY,
        "far": opt.far,
        "5y": opt.expiry + 5 * 365 * DAY,
    }[when]
    opt.refused(message, opt.book.list_option, underlying, expiry, strike, is_call)


def test_list_option__not_owner__refused(opt):
    opt.refused(
        "ownable: caller is not the owner",
        opt.book.list_option,
        ETH,
        opt.far,
        2_200 * WAD,
        True,
        sender=opt.trader,
    )


def test_set_option_book__twice__refused(opt):
    with boa.reverts("settlement: book already set"):
        opt.s.funding.set_option_book(opt.book.address)


# ----------------------------------------------------------------- trading


def test_fill__short_call__premium_moves_and_legs_recorded(opt):
    cash = [opt.s.engine.cash(a) for a in (opt.m, opt.t)]
    opt.fill(opt.call, -2 * WAD, 50 * WAD)  # maker sells 2 calls at 50
    assert [opt.s.engine.cash(a) for a in (opt.m, opt.t)] == [
        cash[0] + 100 * WAD,
        cash[1] - 100 * WAD,
    ]
    assert opt.book.size(opt.m, opt.call) == -2 * WAD
    assert opt.book.size(opt.t, opt.call) == 2 * WAD
    assert list(opt.book.account_legs(opt.m)) == [opt.call]
    assert opt.book.open_interest(ETH, opt.expiry) == 2 * WAD
    assert opt.s.engine.account_assets(opt.m) >> 255 == 1
    # The short's margin counts the option: more than the short-option minimum.
    equity, mm, _ = opt.s.engine.margin(opt.m)
    assert mm > 2 * 2_000 * WAD * SHORT_MIN_BPS // 10_000
    # Both equities hold the option at mark: the long's below the short's liability.
    equity_t, mm_t, _ = opt.s.engine.margin(opt.t)
    assert equity + equity_t < sum(cash)
    assert equity + equity_t > sum(cash) - WAD // 100


def test_fill__close__legs_and_bit_cleared(opt):
    opt.fill(opt.call, -2 * WAD, 50 * WAD)
    opt.fill(opt.call, 2 * WAD, 50 * WAD)
    assert opt.book.size(opt.m, opt.call) == 0
    assert list(opt.book.account_legs(opt.m)) == []
    assert opt.book.open_interest(ETH, opt.expiry) == 0
    assert opt.s.engine.account_assets(opt.m) >> 255 == 0


def test_margin__put_protected_long__less_than_the_perp_alone(opt):
    # The maker buys 1 ETH perp from the trader's other account ...
    other = opt.s.account(opt.trader, 2)
    opt.deposit(opt.trader, other, 100_000 * USDC)
    opt.fill(0, WAD, 2_000 * WAD, taker=other)
    perp_alone = opt.s.engine.margin(opt.m)[1]
    # ... then a put struck at 1,900: the crash scenarios lose at most 100 + premium.
    opt.fill(opt.put, WAD, 40 * WAD)
    protected = opt.s.engine.margin(opt.m)[1]
    assert protected < perp_alone // 2


def test_margin__perps_with_funding_and_options__equal_twin(opt):
    """A covered call on a long perp whose funding accrued: the engine's margin equals the
    twin's (perp numerators, the option legs joined, funding off equity, none on the legs)."""
    s, m = opt.s, opt.m
    s.funding.set_funding_params(ETH, 8, 10**13, 10**16)
    other = s.account(opt.trader, 2)
    opt.deposit(opt.trader, other, 100_000 * USDC)
    opt.fill(ETH, 2 * WAD, 2_040 * WAD, taker=other)  # long 2 ETH at a 2% premium
    opt.fill(opt.call, -WAD, 50 * WAD)  # ... and short a call on it
    opt.fill(opt.far_call, WAD, 120 * WAD)  # ... and long a later one

    def wait(hours):  # the price and the vol curves fresh again
        boa.env.time_travel(seconds=hours * 3_600)
        s.feeds[ETH].set_price(2_000 * 10**8)
        for expiry in (opt.expiry, opt.far):
            opt.publish(ETH, expiry, 6 * WAD // 10, 2_000 * WAD, skew=WAD // 20)

    for hours in (1, 3):  # a new hour sets the rate from the premium, then it accrues
        wait(hours)
        opt.fill(ETH, WAD // 10, 2_000 * WAD, taker=other)
    wait(2)
    now = boa.env.evm.patch.timestamp

    n_assets = len(s.feeds)
    prices = [s.engine.price(a)[0] for a in range(n_assets)]
    size, on = zip(*(s.engine.position(m, a) for a in range(n_assets)), strict=True)
    index = index_at(s.funding.funding_word(ETH), prices[ETH], now)
    due = owed(size[ETH], index, s.funding.funding_snap(m, ETH))
    assert due > 0  # the long pays the premium's funding
    shocks = [read_shocks(s.engine, a) for a in range(n_assets)]
    params = RiskParams(
        floor_bps=np.array([(s.engine.asset_word(a) >> 200) & 0xFFFF for a in range(n_assets)]),
        haircut_bps=np.array([(s.engine.asset_word(a) >> 216) & 0xFFFF for a in range(n_assets)]),
        shocks_bps=np.array(shocks),
        im_multiplier_wad=s.engine.im_multiplier(),
    )
    legs = []
    for id in opt.book.account_legs(m):
        underlying, expiry, strike, is_call = opt.book.instrument(id)[:4]
        vol, vol_ok = opt.feed.vol(underlying, expiry, strike)
        legs.append(
            OptionLeg(
                size=opt.book.size(m, id),
                expiry=expiry,
                strike=strike,
                is_call=is_call,
                forward=prices[underlying],
                price_ok=True,
                vol=vol,
                vol_ok=vol_ok,
                settlement=0,
                shocks=tuple(shocks[underlying]),
                vol_shock=VOL_SHOCK,
                short_min_bps=SHORT_MIN_BPS,
            )
        )
    assert len(legs) == 2
    coll = [s.engine.collateral(m, a) for a in range(n_assets)]
    twin = margin_with_options_exact(
        s.engine.cash(m), coll, list(size), list(on), prices, params, legs, now, due
    )
    assert tuple(s.engine.margin(m)) == twin
    # Funding counts once, on the perp: settling it moves no equity and no margin.
    s.funding.settle_funding(m, ETH)
    assert tuple(s.engine.margin(m)) == twin


def test_settle_option__not_a_venue__refused(opt):
    opt.refused(
        "settlement: not a venue",
        opt.s.funding.settle_option,
        opt.m,
        opt.t,
        opt.call,
        WAD,
        50 * WAD,
        sender=opt.trader,
    )


def test_settle_option__perp_market__refused(opt):
    with boa.env.prank(opt.s.book.address):
        opt.refused(
            "settlement: not an option", opt.s.funding.settle_option, opt.m, opt.t, ETH, WAD, 1
        )


def test_settle__option_instrument__refused(opt):
    with boa.env.prank(opt.s.book.address):
        opt.refused(
            "settlement: not a perp market",
            opt.s.engine.settle,
            opt.m,
            opt.t,
            opt.call,
            WAD,
            50 * WAD,
        )


def test_fill__unlisted__refused(opt):
    unlisted = opt.book.instrument_id(ETH, opt.expiry, 2_500 * WAD, True)
    opt.refused("options: not listed", opt.fill, unlisted, -WAD, 10 * WAD)


def test_fill__off_grid_id__refused(opt):
    off_grid = opt.book.instrument_id(ETH, opt.expiry, 2_050 * WAD, True)
    opt.refused("options: not listed", opt.fill, off_grid, -WAD, 10 * WAD)


def test_fill__after_expiry__refused(opt):
    boa.env.time_travel(seconds=opt.expiry - boa.env.evm.patch.timestamp)
    opt.refused("options: expired", opt.fill, opt.call, -WAD, 10 * WAD)


def test_fill__premium_above_bound__refused(opt):
    opt.refused("options: premium out of range", opt.fill, opt.put, -WAD, 1_901 * WAD)


def test_fill__open_interest_cap__refused(opt):
    opt.book.set_oi_cap(ETH, opt.expiry, WAD)
    opt.refused("options: open interest cap", opt.fill, opt.call, -2 * WAD, 10 * WAD)


def test_fill__stale_vol__opening_refused_closing_allowed(opt):
    opt.fill(opt.call, -2 * WAD, 60 * WAD)
    boa.env.time_travel(seconds=VOL_HEARTBEAT + 1)
    assert not opt.feed.vol(ETH, opt.expiry, 2_100 * WAD)[1]
    opt.refused("oracle: invalid price", opt.fill, opt.call, -WAD, 60 * WAD)
    # Buying back half of the short lowers the maker's risk: allowed.
    opt.fill(opt.call, WAD, 60 * WAD)
    assert opt.book.size(opt.m, opt.call) == -WAD


def test_fill__no_vol_curve__refused(opt):
    btc_call = opt.book.list_option(BTC, opt.expiry, 60_000 * WAD, True)
    opt.book.set_oi_cap(BTC, opt.expiry, 10 * WAD)
    opt.refused("oracle: invalid price", opt.fill, btc_call, -WAD, 1_000 * WAD)


def test_fill__naked_short_beyond_im__refused(opt):
    opt.refused("margin: below initial margin", opt.fill, opt.call, -900 * WAD, 50 * WAD)


def test_apply_trade__not_engine__refused(opt):
    opt.refused("options: not the engine", opt.book.apply_trade, opt.m, opt.t, opt.call, WAD)


def test_settle_option_cash__not_book__refused(opt):
    opt.refused(
        "settlement: not the option book", opt.s.funding.settle_option_cash, opt.m, WAD, False
    )


# ----------------------------------------------------------------- expiry


def _expire(opt, price_usd, after=60):
    """Past expiry by `after` seconds; every feed answers anew, ETH at `price_usd`."""
    boa.env.time_travel(seconds=opt.expiry - boa.env.evm.patch.timestamp + after)
    for asset, feed in opt.s.feeds.items():
        feed.set_price(price_usd * 10**8 if asset == ETH else feed.latestRoundData()[1])


def _record(opt, expiry=None):
    expiry = expiry or opt.expiry
    opt.book.record_settlement(ETH, expiry, settlement_round(opt.s.feeds[ETH], expiry))


def _round(opt):
    return opt.s.feeds[ETH].latestRoundData()[0]


def test_record_settlement__before_expiry__refused(opt):
    round_id = _round(opt)
    opt.refused("options: not expired", opt.book.record_settlement, ETH, opt.expiry, round_id)


def test_record_settlement__caller_cannot_choose_a_later_price(opt):
    """The settlement price is the first round's at or after expiry: a later round, at a
    price better for one side, is refused however long after expiry it is named."""
    _expire(opt, 2_300)
    first = _round(opt)
    boa.env.time_travel(seconds=3_600)
    opt.s.feeds[ETH].set_price(2_600 * 10**8)
    opt.refused(
        "options: not the first round", opt.book.record_settlement, ETH, opt.expiry, first + 1
    )
    assert settlement_round(opt.s.feeds[ETH], opt.expiry) == first
    opt.book.record_settlement(ETH, opt.expiry, first)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD


def test_record_settlement__round_before_expiry__refused(opt):
    before = _round(opt)
    _expire(opt, 2_300)
    opt.refused(
        "options: round not after expiry", opt.book.record_settlement, ETH, opt.expiry, before
    )


def test_record_settlement__unknown_round__refused(opt):
    _expire(opt, 2_300)
    for round_id in (_round(opt) + 1, 0, 2**80, 2**256 - 1):
        opt.refused("options: bad round", opt.book.record_settlement, ETH, opt.expiry, round_id)


def test_record_settlement__invalid_rounds_after_expiry__skipped(opt):
    """Rounds without a valid answer (zero, incomplete) after expiry are passed over: the
    first valid one settles, and an invalid one cannot be named."""
    feed = opt.s.feeds[ETH]
    _expire(opt, 0)  # round r: answer 0
    zero = _round(opt)
    now = boa.env.evm.patch.timestamp
    feed.set_round(2_250 * 10**8, now, zero + 1, zero)  # incomplete
    feed.set_round(2_300 * 10**8, now, zero + 2, zero + 2)
    for round_id in (zero, zero + 1):
        opt.refused("options: bad round", opt.book.record_settlement, ETH, opt.expiry, round_id)
    assert settlement_round(feed, opt.expiry) == zero + 2
    opt.book.record_settlement(ETH, opt.expiry, zero + 2)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD


def test_record_settlement__round_from_the_future__refused(opt):
    _expire(opt, 2_300)
    feed, now = opt.s.feeds[ETH], boa.env.evm.patch.timestamp
    feed.set_round(2_300 * 10**8, now + 600, _round(opt) + 1, _round(opt) + 1)
    round_id = _round(opt)
    opt.refused(
        "options: round not after expiry", opt.book.record_settlement, ETH, opt.expiry, round_id
    )


def _hostile_eth(opt):
    """ETH priced by a HostileAggregator from before the expiry (its round 1, at 2,000);
    past the expiry, its round 2 at 2,300 and, an hour on, round 3 at 2,600."""
    hostile = opt.chain.load(CONTRACTS / "test/HostileAggregator.vy", 8, 2_000 * 10**8)
    opt.s.admin.set_feed(ETH, hostile.address, 3_600)
    _expire(opt, 2_300)
    hostile.set_price(2_300 * 10**8)
    boa.env.time_travel(seconds=3_600)
    hostile.set_price(2_600 * 10**8)
    return hostile


def test_record_settlement__hostile_feed_history__first_round_after_expiry(opt):
    """HostileAggregator keeps its rounds: the settlement price is its first round's after
    the expiry, read through `getRoundData`, as from any aggregator."""
    hostile = _hostile_eth(opt)
    assert RoundReader(hostile).getRoundData(2)[:2] == (2, 2_300 * 10**8)
    assert settlement_round(RoundReader(hostile), opt.expiry) == 2
    record = opt.book.record_settlement
    opt.refused("options: round not after expiry", record, ETH, opt.expiry, 1)
    opt.refused("options: not the first round", record, ETH, opt.expiry, 3)
    with boa.reverts("aggregator: no round"):  # as MockAggregator, for a round never written
        hostile.getRoundData(4)
    opt.refused("options: bad round", record, ETH, opt.expiry, 4)
    record(ETH, opt.expiry, 2)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD


@pytest.mark.parametrize("mode", [1, 3, 4], ids=["reverting", "gas-eating", "malformed"])
def test_record_settlement__hostile_feed_history_unreadable__refused(opt, mode):
    """A feed whose every read reverts, eats its gas or answers malformed answers its past
    rounds so too: no settlement price is recorded until it recovers."""
    hostile = _hostile_eth(opt)
    hostile.set_mode(mode)
    if mode == 4:
        with pytest.raises(ValueError, match="answered 32 bytes"):
            RoundReader(hostile).getRoundData(2)
    elif mode == 1:
        with boa.reverts("aggregator: down"):
            hostile.getRoundData(2)
    opt.refused("options: bad round", opt.book.record_settlement, ETH, opt.expiry, 2)
    hostile.set_mode(0)
    opt.book.record_settlement(ETH, opt.expiry, 2)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD


def test_record_settlement__stuck_feed__history_as_stored(opt):
    """A stuck feed writes no new round but answers its history: the first round after the
    expiry still settles, and a price pushed while stuck does not exist."""
    hostile = _hostile_eth(opt)
    hostile.set_mode(2)
    hostile.set_price(3_000 * 10**8)  # ignored
    assert RoundReader(hostile).latestRoundData()[:2] == (3, 2_600 * 10**8)
    opt.refused("options: bad round", opt.book.record_settlement, ETH, opt.expiry, 4)
    assert settlement_round(RoundReader(hostile), opt.expiry) == 2
    opt.book.record_settlement(ETH, opt.expiry, 2)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD


def test_set_grid__vault_share_underlying__refused(opt):
    """A vault share's feed is its underlying's: a settlement price could not be read from
    it, so no option lists on one."""
    _list_vault(opt.chain, opt.s, opt.s.feeds[ETH])
    opt.refused("options: vault underlying", opt.book.set_grid, VAULT, 100 * WAD, VOL_SHOCK, 0)


def test_settle_expired__itm_call__payoff_moves_and_margin_drops(opt):
    opt.fill(opt.call, -2 * WAD, 50 * WAD)
    opt.fill(opt.far_call, -WAD, 150 * WAD)
    _expire(opt, 2_300)
    opt.publish(ETH, opt.far, 6 * WAD // 10, 2_300 * WAD)
    opt.refused("options: nothing to settle", opt.book.settle_expired, opt.m)  # no price yet
    _record(opt)
    first = settlement_round(opt.s.feeds[ETH], opt.expiry)
    opt.refused("options: already recorded", opt.book.record_settlement, ETH, opt.expiry, first)
    assert opt.book.settlement_price(ETH, opt.expiry) == 2_300 * WAD
    equity_before = opt.s.engine.margin(opt.m)[0]
    cash = [opt.s.engine.cash(a) for a in (opt.m, opt.t)]
    opt.book.settle_expired(opt.m, sender=opt.s.actor("keeper"))
    opt.book.settle_expired(opt.t)
    # 2 calls struck at 2,100 settle at 2,300: 400 from the short to the long.
    assert [opt.s.engine.cash(a) for a in (opt.m, opt.t)] == [
        cash[0] - 400 * WAD,
        cash[1] + 400 * WAD,
    ]
    assert opt.s.engine.margin(opt.m)[0] == equity_before  # already valued at intrinsic
    assert list(opt.book.account_legs(opt.m)) == [opt.far_call]
    assert opt.book.open_interest(ETH, opt.expiry) == 0
    opt.refused("options: nothing to settle", opt.book.settle_expired, opt.m)


def test_margin__expired_leg__no_scenario_loss(opt):
    opt.fill(opt.put, -WAD, 30 * WAD)
    live_mm = opt.s.engine.margin(opt.m)[1]
    _expire(opt, 2_000)
    _record(opt)
    equity, mm, _ = opt.s.engine.margin(opt.m)
    assert live_mm > 0 and mm == 0  # out of the money, expired: nothing at risk
    opt.book.settle_expired(opt.m)
    assert opt.s.engine.account_assets(opt.m) >> 255 == 0
    assert opt.s.engine.margin(opt.m)[0] == equity


# ----------------------------------------------------------------- liquidation


def _liquidator(opt):
    who = opt.s.actor("liquidator")
    account = opt.s.account(who, 0)
    opt.deposit(who, account, 1_000_000 * USDC)
    return who, account


def _short_calls_then_rally(opt, price_usd=3_000):
    """The maker's account holds only short calls (100 at 2,100), then ETH rallies."""
    opt.fill(opt.call, -100 * WAD, 50 * WAD)
    opt.s.feeds[ETH].set_price(price_usd * 10**8)


def test_regression_options_only_book__liquidatable(opt):
    # An options-only book below MM used to keep every leg through a liquidation (only
    # perps and collateral were sliced), so it could never be brought back above MM.
    _short_calls_then_rally(opt)
    who, liquidator = _liquidator(opt)
    engine, book = opt.s.engine, opt.book
    equity, mm, *_ = engine.liquidation_margin(opt.m, 0)
    assert equity < mm
    accounts = (opt.m, opt.t, liquidator, INSURANCE)
    funds = sum(engine.cash(a) for a in accounts) - engine.deficit()
    tokens = opt.s.cash.balanceOf(engine.address)
    slices = 0
    while equity < mm:
        opt.s.liquidations.liquidate(opt.m, liquidator, WAD, 2**255 - 1, sender=who)
        slices += 1
        after, mm_after, *_ = engine.liquidation_margin(opt.m, 0)
        assert after - mm_after > equity - mm  # every slice improves health
        equity, mm = after, mm_after
        assert slices < 20
    # The liquidator took the legs the account gave up, at their mark: nothing created.
    assert book.size(opt.m, opt.call) + book.size(liquidator, opt.call) == -100 * WAD
    assert book.size(liquidator, opt.call) < 0 and book.size(opt.m, opt.call) < 0
    assert book.size(opt.t, opt.call) == 100 * WAD
    assert book.open_interest(ETH, opt.expiry) == 100 * WAD
    assert engine.account_assets(liquidator) >> 255 == 1
    assert sum(engine.cash(a) for a in accounts) - engine.deficit() == funds
    assert opt.s.cash.balanceOf(engine.address) == tokens
    assert (
        engine.liquidation_margin(liquidator, 0)[0] >= engine.liquidation_margin(liquidator, 0)[2]
    )


def test_liquidate__options_only_full_slice__every_leg_moved(opt):
    _short_calls_then_rally(opt, 3_500)
    who, liquidator = _liquidator(opt)
    equity, mm, *_ = opt.s.engine.liquidation_margin(opt.m, 0)
    assert equity < 0 < mm  # bankrupt: the policy allows the whole book
    preview = opt.s.engine.liquidation_margin(opt.m, WAD)
    opt.s.liquidations.liquidate(opt.m, liquidator, WAD, 2**255 - 1, sender=who)
    assert opt.book.size(opt.m, opt.call) == 0
    assert list(opt.book.account_legs(opt.m)) == []
    assert opt.s.engine.account_assets(opt.m) >> 255 == 0
    assert preview[1] == 0 and opt.s.engine.liquidation_margin(opt.m, 0)[1] == 0
    assert opt.book.size(liquidator, opt.call) == -100 * WAD


def test_regression_liquidation_preview_cost_leaves_out_option_legs(opt):
    """`liquidation_preview(...).cost` (the engine's slice `flow`) counted perps and
    collateral only: the cash the liquidator pays for the moved option legs was missing, so
    a keeper bounding `max_cost` by the preview was refused on a book with long options
    (20 far calls and 150 ETH short, ETH at 2,400: preview -84,116 USD, paid -82,135 USD).
    The preview's cost is now exact to the wei: `max_cost = cost` passes, one wei less is
    refused with nothing moved."""
    other = opt.s.account(opt.trader, 2)
    opt.deposit(opt.trader, other, 1_000_000 * USDC)
    opt.fill(opt.far_call, 20 * WAD, 120 * WAD)  # the maker buys 20 far calls
    opt.fill(ETH, -150 * WAD, 2_000 * WAD, taker=other)  # and sells 150 ETH perps
    boa.env.time_travel(seconds=60)
    opt.s.feeds[ETH].set_price(2_400 * 10**8)
    for expiry in (opt.expiry, opt.far):
        opt.publish(ETH, expiry, 6 * WAD // 10, 2_400 * WAD)
    who, liquidator = _liquidator(opt)
    liquidations = opt.s.liquidations
    preview = liquidations.liquidation_preview(opt.m, WAD)
    assert 0 < preview.fraction < WAD
    moved = opt.book.size(opt.m, opt.far_call) * preview.fraction // WAD
    assert moved > 0  # the liquidator takes (and pays for) some of the calls
    opt.refused(
        "liquidations: cost above max_cost",
        liquidations.liquidate,
        opt.m,
        liquidator,
        WAD,
        preview.cost - 1,
        sender=who,
    )
    assert liquidations.liquidate(opt.m, liquidator, WAD, preview.cost, sender=who) == (
        preview.fraction
    )
    assert opt.book.size(liquidator, opt.far_call) == moved


def _liquidation_refused(opt, message):
    """A liquidator's whole-book liquidation of the maker's account is refused with
    `message`, and nothing moves."""
    who, liquidator = _liquidator(opt)
    opt.refused(
        message, opt.s.liquidations.liquidate, opt.m, liquidator, WAD, 2**255 - 1, sender=who
    )


def test_liquidate__healthy_options_book__refused(opt):
    opt.fill(opt.call, -10 * WAD, 50 * WAD)
    _liquidation_refused(opt, "liquidations: account is healthy")


def test_liquidate__options_book_without_price__refused(opt):
    _short_calls_then_rally(opt)
    boa.env.time_travel(seconds=2 * 86_400)  # the ETH feed is stale, no fallback
    _liquidation_refused(opt, "oracle: invalid price")


def test_liquidate_legs__not_engine__refused(opt):
    opt.fill(opt.call, -10 * WAD, 50 * WAD)
    opt.refused("options: not the engine", opt.book.liquidate_legs, opt.m, opt.t, WAD)


def test_liquidate_legs__fraction_above_one__refused(opt):
    opt.fill(opt.call, -10 * WAD, 50 * WAD)
    with boa.env.prank(opt.s.engine.address):
        opt.refused("options: bad fraction", opt.book.liquidate_legs, opt.m, opt.t, WAD + 1)
