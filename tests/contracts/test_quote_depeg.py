"""The quote asset's own feed and the peg-loss term of IM (``ledger._peg_margin``): listing
the feed, the term to the wei against the twin, bad inputs with nothing moved, and a dead
or stale quote feed under the outage policy (blocks risk-increasing actions of accounts
holding cash, never a liquidation)."""

import ape
import numpy as np
import pytest
from conftest import ETH, USDC, WAD, acct

from offchain_risk.models.margin import QuotePeg, peg_margin
from offchain_risk.units import QUOTE_ASSET

HEARTBEAT = 86_400
DEPEG = 87_740_000  # 0.8774 USD (8 decimals): USDC's low of 2023-03-11
PEG_RATE_BPS = 100  # the standing depeg scenario: 1% of positive cash


@pytest.fixture
def quote_feed(project, engine, owner):
    """USDC/USD on a mock aggregator at 1.00, installed as the quote asset's feed with a 1%
    standing peg-loss rate."""
    feed = project.MockAggregator.deploy(8, 10**8, sender=owner)
    engine.set_feed(QUOTE_ASSET, feed, HEARTBEAT, sender=owner)
    engine.set_asset_risk(QUOTE_ASSET, PEG_RATE_BPS, 0, sender=owner)
    return feed


@pytest.fixture
def long_eth(fund, usdc, trade, trader, maker):
    """trader: 20k USDC of cash, long 10 ETH at 2,000 (maker short, 1M cash)."""
    fund(trader, usdc, 20_000 * USDC)
    fund(maker, usdc, 1_000_000 * USDC)
    trade(ETH, -10 * WAD, 2_000)
    return acct(trader)


def _term(engine, account, answer):
    """The twin's peg term of `account` at a quote feed answer (8 decimals)."""
    quote = QuotePeg(price_wad=answer * 10**10, peg_rate_bps=PEG_RATE_BPS)
    return peg_margin(np.array([engine.cash(account)], dtype=object), quote)[0]


def test_set_feed__quote_asset__prices_it_and_adds_the_peg_term(project, engine, owner, long_eth):
    a = long_eth
    equity0, mm0, im0 = engine.margin(a)
    assert engine.price(QUOTE_ASSET) == (0, False)  # no feed: cash at par
    feed = project.MockAggregator.deploy(8, DEPEG, sender=owner)
    engine.set_feed(QUOTE_ASSET, feed, HEARTBEAT, sender=owner)
    assert engine.price(QUOTE_ASSET) == (DEPEG * 10**10, True)
    equity, mm, im = engine.margin(a)
    # Equity and MM (liquidation) do not move; IM gains cash * (1 - q), to the wei.
    assert (equity, mm) == (equity0, mm0)
    term = im - im0
    cash = engine.cash(a)
    assert term == -((-cash * (WAD - DEPEG * 10**10)) // WAD) > 12 * cash // 100
    assert term == peg_margin(np.array([cash], dtype=object), QuotePeg(DEPEG * 10**10))[0]
    # Pausing and a new IM multiplier keep the quote feed on.
    engine.set_paused(True, sender=owner)
    engine.set_paused(False, sender=owner)
    engine.set_im_multiplier(engine.im_multiplier(), sender=owner)
    assert engine.margin(a)[2] == im


def test_peg_term__depeg_blocks_a_withdrawal_the_peg_allowed(
    engine, quote_feed, long_eth, trader, usdc, owner, snapshot
):
    a = long_eth
    equity, mm, im = engine.margin(a)
    assert im == -((-mm * 3) // 2) + _term(engine, a, 10**8)
    spare = 500 * USDC
    engine.withdraw(a, usdc, (equity - im) // 10**12 - spare, sender=trader)
    equity, _, im_at_peg = engine.margin(a)
    quote_feed.set_price(DEPEG, sender=owner)
    _, _, im = engine.margin(a)
    assert im - im_at_peg == _term(engine, a, DEPEG) - _term(engine, a, 10**8)
    assert equity < im  # the depeg alone puts the account below IM
    before = snapshot(trader)
    with ape.reverts("margin: below initial margin"):
        engine.withdraw(a, usdc, spare // 2, sender=trader)
    assert snapshot(trader) == before
    quote_feed.set_price(10**8, sender=owner)  # back at par: the same withdrawal passes
    engine.withdraw(a, usdc, spare // 2, sender=trader)


def test_set_feed__quote_bad_input__reverts_nothing_moves(
    project, engine, owner, stranger, long_eth
):
    feed = project.MockAggregator.deploy(8, DEPEG, sender=owner)
    bad_decimals = project.MockAggregator.deploy(37, 10**8, sender=owner)
    word, risk, margin = (
        engine.asset_word(QUOTE_ASSET),
        engine.im_multiplier(),
        engine.margin(long_eth),
    )
    q, hb, zero = QUOTE_ASSET, HEARTBEAT, ape.utils.ZERO_ADDRESS
    cases = [
        ((q, feed, hb), stranger, "ownable: caller is not the owner"),
        ((q, zero, hb), owner, "ledger: zero feed"),
        ((q, feed, 0), owner, "ledger: bad heartbeat"),
        ((q, feed, 7 * 86_400 + 1), owner, "ledger: bad heartbeat"),
        ((q, bad_decimals, hb), owner, "ledger: bad feed decimals"),
        ((q + 1, feed, hb), owner, "ledger: asset not listed"),
    ]
    for args, sender, message in cases:
        with ape.reverts(message):
            engine.set_feed(*args, sender=sender)
    for args, message in [
        ((QUOTE_ASSET, 10_001, 0), "ledger: floor rate above 100%"),
        ((QUOTE_ASSET, 0, 10_000), "ledger: haircut must be below 100%"),
    ]:
        with ape.reverts(message):
            engine.set_asset_risk(*args, sender=owner)
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_asset_risk(QUOTE_ASSET, 100, 0, sender=stranger)
    assert engine.asset_word(QUOTE_ASSET) == word
    assert engine.im_multiplier() == risk
    assert engine.margin(long_eth) == margin  # still no feed: no term


@pytest.mark.parametrize("outage", ["stale", "dead"])
def test_quote_outage__blocks_risk_increasing_actions_not_liquidation(
    engine, quote_feed, underwater, trader, maker, usdc, weth, owner, liquidations, accounts,
    fund, trade, snapshot, chain, outage,
):  # fmt: skip
    a = underwater  # 15k USDC, long 20 ETH from 2,000, ETH at 1,550: E < MM
    if outage == "stale":
        quote_feed.set_round(DEPEG, chain.pending_timestamp - HEARTBEAT - 10, 5, 5, sender=owner)
        assert engine.price(QUOTE_ASSET) == (DEPEG * 10**10, False)
    else:
        quote_feed.set_round(0, chain.pending_timestamp, 5, 5, sender=owner)
        assert engine.price(QUOTE_ASSET) == (0, False)
    # Accounts holding cash: the strict views and every risk-increasing action refuse.
    with ape.reverts("oracle: invalid price"):
        engine.margin(a)
    before = snapshot(trader, maker)
    with ape.reverts("oracle: invalid price"):
        engine.withdraw(acct(maker), usdc, 1 * USDC, sender=maker)
    with ape.reverts("oracle: invalid price"):
        trade(ETH, -1 * WAD, 1_550)  # extends both sides
    assert snapshot(trader, maker) == before
    # An account with no positive cash is not exposed to the quote.
    holder = accounts[7]
    fund(holder, weth, WAD)
    assert engine.margin(acct(holder))[0] > 0
    # Liquidation never waits on the quote feed.
    m = engine.liquidation_margin(a, 0)
    assert m.prices_ok and m.equity < m.mm
    keeper = accounts[5]
    fund(keeper, usdc, 1_000_000 * USDC)
    liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    assert 0 < engine.position(a, ETH)[0] < 20 * WAD
