import ape
import pytest
from conftest import BTC, ETH, SOL, USDC, WAD, acct


def test_withdraw__cash__pays_owner(lens, engine, usdc, trader, fund):
    fund(trader, usdc, 500 * USDC)
    tx = engine.withdraw(acct(trader), usdc, 200 * USDC, sender=trader)
    assert engine.cash(acct(trader)) == 300 * WAD
    assert usdc.balanceOf(trader) == 200 * USDC
    assert lens.tokens(usdc).total == 300 * WAD
    [event] = tx.events.filter(engine.Withdraw)
    assert event.receiver == trader


def test_withdraw__all_collateral__clears_asset_bit(engine, wbtc, trader, fund):
    fund(trader, wbtc, 10**8)
    engine.withdraw(acct(trader), wbtc, 10**8, sender=trader)
    assert engine.collateral(acct(trader), BTC) == 0
    assert engine.account_assets(acct(trader)) == 0
    assert wbtc.balanceOf(trader) == 10**8


def test_withdraw__by_operator__pays_owner_not_operator(engine, weth, trader, operator, fund):
    fund(trader, weth, 2 * WAD)
    engine.set_operator(0, operator, True, sender=trader)
    engine.withdraw(acct(trader), weth, WAD, sender=operator)
    assert weth.balanceOf(trader) == WAD
    assert weth.balanceOf(operator) == 0


def test_withdraw__up_to_initial_margin__allowed(engine, usdc, funded, trade, trader):
    trade(ETH, 10 * WAD, 2000)  # trader short 10 ETH: MM 3,600, IM 5,400
    _, _, im = engine.margin(acct(trader))
    free = engine.equity(acct(trader)) - im
    engine.withdraw(acct(trader), usdc, free // 10**12, sender=trader)
    assert engine.equity(acct(trader)) - engine.margin(acct(trader))[2] < 10**12


def test_withdraw__stale_unrelated_feed__allowed(engine, usdc, feeds, owner, funded, trade, trader):
    trade(ETH, 10 * WAD, 2000)
    feeds[SOL].set_round(150 * 10**8, 1, 9, 9, sender=owner)  # SOL feed dead: no exposure
    engine.withdraw(acct(trader), usdc, 1_000 * USDC, sender=trader)
    assert engine.cash(acct(trader)) == 99_000 * WAD


def _rejects(engine, snapshot, who, token, amount, message, sender=None):
    before = snapshot(who)
    with ape.reverts(message):
        engine.withdraw(acct(who), token, amount, sender=sender or who)
    assert snapshot(who) == before


def test_withdraw__below_initial_margin__reverts(engine, usdc, funded, trade, trader, snapshot):
    trade(ETH, 10 * WAD, 2000)
    _, _, im = engine.margin(acct(trader))
    too_much = (engine.equity(acct(trader)) - im) // 10**12 + 1
    _rejects(engine, snapshot, trader, usdc, too_much, "margin: below initial margin")


def test_withdraw__more_cash_than_held__reverts(engine, usdc, trader, fund, snapshot):
    fund(trader, usdc, 100 * USDC)
    _rejects(engine, snapshot, trader, usdc, 101 * USDC, "ledger: insufficient cash")


def test_withdraw__more_collateral_than_held__reverts(engine, weth, trader, fund, snapshot):
    fund(trader, weth, WAD)
    _rejects(engine, snapshot, trader, weth, WAD + 1, "ledger: insufficient collateral")


def test_withdraw__zero_amount__reverts(engine, weth, trader, fund, snapshot):
    fund(trader, weth, WAD)
    _rejects(engine, snapshot, trader, weth, 0, "ledger: zero amount")


def test_withdraw__stranger__reverts(engine, weth, trader, stranger, fund, snapshot):
    fund(trader, weth, WAD)
    before = snapshot(trader, stranger)
    with ape.reverts("ledger: not owner or operator"):
        engine.withdraw(acct(trader), weth, WAD, sender=stranger)
    assert snapshot(trader, stranger) == before


def test_withdraw__revoked_operator__reverts(engine, weth, trader, operator, fund, snapshot):
    fund(trader, weth, WAD)
    engine.set_operator(0, operator, True, sender=trader)
    engine.set_operator(0, operator, False, sender=trader)
    _rejects(engine, snapshot, trader, weth, WAD, "ledger: not owner or operator", sender=operator)


@pytest.mark.parametrize(
    "answer,updated_at,round_id,answered",
    [
        (2000 * 10**8, 1, 5, 5),  # stale: older than the heartbeat
        (0, None, 5, 5),  # zero answer
        (-1, None, 5, 5),  # negative answer
        (2000 * 10**8, None, 5, 4),  # answeredInRound < roundId
        (2000 * 10**8, 2**40, 5, 5),  # updated in the future
    ],
    ids=["stale", "zero", "negative", "round", "future"],
)
def test_withdraw__bad_feed_of_exposed_asset__reverts(
    engine,
    weth,
    feeds,
    owner,
    trader,
    fund,
    snapshot,
    chain,
    answer,
    updated_at,
    round_id,
    answered,
):
    fund(trader, weth, 2 * WAD)
    when = chain.pending_timestamp if updated_at is None else updated_at
    feeds[ETH].set_round(answer, when, round_id, answered, sender=owner)
    _rejects(engine, snapshot, trader, weth, WAD, "oracle: invalid price")


def test_withdraw__bad_feed__cash_only_account_unaffected(engine, usdc, feeds, owner, trader, fund):
    fund(trader, usdc, 10 * USDC)
    for feed in feeds.values():
        feed.set_round(0, 1, 2, 2, sender=owner)
    engine.withdraw(acct(trader), usdc, 10 * USDC, sender=trader)
    assert usdc.balanceOf(trader) == 10 * USDC
