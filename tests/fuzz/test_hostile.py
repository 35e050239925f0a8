"""Hostile tokens and feeds against the engine, in titanoboa.

Each test lists the hostile contract (contracts/test/) next to the devnet listing and
asserts the clear error and that no balance moved, or that the protocol carries on for
everyone the hostile contract does not concern.
"""

import boa
import pytest
from boa_stack import CONTRACTS

WAD = 10**18
ETH, BTC, SOL, LINK = 0, 1, 2, 3
HEARTBEAT = 86_400


def load(name, *args):
    return boa.load(str(CONTRACTS / name), *args)


def list_collateral(s, token, price_usd, haircut_bps=1_000):
    """List `token` as a collateral-only asset priced by a fresh feed; returns the asset id."""
    feed = load("test/MockAggregator.vy", 8, price_usd * 10**8)
    asset = s.engine.num_assets()
    s.admin.list_asset(
        token.address, feed.address, HEARTBEAT, 500, haircut_bps, 10**12 * WAD, 10**12 * WAD,
        False, 0,
    )  # fmt: skip
    s.admin.set_shocks(asset, [-3_000, 3_000] + [0] * 30)
    boa.env.register_contract(s.engine.address, s.engine)
    return asset, feed


def fund(s, name, sub, token, amount):
    who = s.actor(name)
    acct = s.account(who, sub)
    token.mint(who, amount)
    token.approve(s.engine.address, amount, sender=who)
    s.admin.deposit(acct, token.address, amount, sender=who)
    return who, acct


def balances(s, accounts, tokens):
    e = s.engine
    return (
        [(e.cash(a), [e.collateral(a, x) for x in range(e.num_assets())]) for a in accounts],
        [t.balanceOf(e.address) for t in tokens],
        e.deficit(),
    )


def open_perp(s, long_acct, long_who, short_acct, short_who, market, size, price, nonce=1):
    """`long_acct` buys `size` of `market` from a signed order of `short_acct`."""
    order, sig = s.sign_order(
        short_who,
        owner=short_who,
        subaccount=short_acct & (2**96 - 1),
        market=market,
        size=-size,
        price=price,
        nonce=nonce,
        expiry=2**40,
    )
    s.book.fill(order, sig, size, long_acct, sender=long_who)


# ------------------------------------------------------------------ tokens


def test_deposit__token_reenters_withdraw__inner_call_refused(s):
    token = load("test/ReentrantToken.vy", 18)
    asset, _ = list_collateral(s, token, 100)
    trader, acct = fund(s, "trader", 0, s.cash, 1_000 * 10**6)
    token.arm(s.engine.address, s.admin.withdraw.prepare_calldata(acct, s.cash.address, 10**6))
    token.mint(trader, 5 * WAD)
    token.approve(s.engine.address, 5 * WAD, sender=trader)
    s.admin.deposit(acct, token.address, 5 * WAD, sender=trader)
    assert token.attempts() == 1 and not token.reentered()
    assert s.engine.collateral(acct, asset) == 5 * WAD
    assert s.engine.cash(acct) == 1_000 * WAD
    assert s.cash.balanceOf(trader) == 0


def test_withdraw__token_reenters_transfer__inner_call_refused(s):
    token = load("test/ReentrantToken.vy", 18)
    asset, _ = list_collateral(s, token, 100)
    trader, acct = fund(s, "trader", 0, token, 5 * WAD)
    other = s.account(trader, 1)
    token.arm(
        s.engine.address,
        s.admin.transfer.prepare_calldata(acct, other, token.address, 4 * WAD),
    )
    s.admin.withdraw(acct, token.address, 2 * WAD, sender=trader)
    assert token.attempts() == 1 and not token.reentered()
    assert s.engine.collateral(acct, asset) == 3 * WAD
    assert s.engine.collateral(other, asset) == 0
    assert token.balanceOf(trader) == 2 * WAD


@pytest.mark.parametrize(
    "mode, error", [(1, "ledger: received amount differs"), (2, "ledger: transfer failed")]
)
def test_deposit__fee_on_transfer_or_false_returning__refused(s, mode, error):
    token = load("test/HostileToken.vy", mode, 18)
    list_collateral(s, token, 100)
    trader = s.actor("trader")
    acct = s.account(trader, 0)
    token.mint(trader, 5 * WAD)
    token.approve(s.engine.address, 5 * WAD, sender=trader)
    before = balances(s, [acct], [token])
    with boa.reverts(error):
        s.admin.deposit(acct, token.address, 5 * WAD, sender=trader)
    assert balances(s, [acct], [token]) == before
    assert token.balanceOf(trader) == 5 * WAD


def test_liquidate__blocklisted_liquidatee__others_still_liquidated(s):
    """A frozen owner cannot take tokens out, but liquidations move claims, not tokens:
    its account and everyone else's are liquidated as usual."""
    token = load("test/BlocklistToken.vy", 18)
    asset, _ = list_collateral(s, token, 1_000)
    desk, desk_acct = fund(s, "desk", 0, s.cash, 10**7 * 10**6)
    traders = []
    for n, name in enumerate(("frozen", "trader")):
        who, acct = fund(s, name, 0, token, 15 * WAD)
        open_perp(s, acct, who, desk_acct, desk, ETH, 10 * WAD, 2_000 * WAD, nonce=n + 1)
        traders.append((who, acct))
    (frozen, frozen_acct), (trader, trader_acct) = traders
    token.set_blocked(frozen, True)
    with boa.reverts("blocklist: receiver blocked"):
        s.admin.withdraw(frozen_acct, token.address, WAD, sender=frozen)
    s.feeds[ETH].set_price(1_200 * 10**8)
    for acct in (frozen_acct, trader_acct):
        equity, mm, _, ok, _, _ = s.engine.healths([acct])[0]
        assert ok and equity < mm
        s.liquidations.liquidate(acct, desk_acct, WAD, 2**255 - 1, sender=desk)
        equity, mm, _, _, _, _ = s.engine.healths([acct])[0]
        assert equity >= mm
    assert s.engine.collateral(desk_acct, asset) > 0
    # The unfrozen trader can still leave with part of what is left once ETH recovers.
    s.feeds[ETH].set_price(2_000 * 10**8)
    left = s.engine.collateral(trader_acct, asset)
    s.admin.withdraw(trader_acct, token.address, left // 10, sender=trader)
    assert token.balanceOf(trader) == left // 10


# ------------------------------------------------------------------- feeds


@pytest.fixture
def hostile_sol(s):
    """SOL priced by a HostileAggregator; a trader long SOL, another only in ETH."""
    feed = load("test/HostileAggregator.vy", 8, 150 * 10**8)
    s.admin.set_feed(SOL, feed.address, HEARTBEAT)
    boa.env.register_contract(s.engine.address, s.engine)
    desk, desk_acct = fund(s, "desk", 0, s.cash, 10**7 * 10**6)
    sol_who, sol_acct = fund(s, "sol_trader", 0, s.cash, 10_000 * 10**6)
    eth_who, eth_acct = fund(s, "eth_trader", 0, s.cash, 10_000 * 10**6)
    open_perp(s, sol_acct, sol_who, desk_acct, desk, SOL, 100 * WAD, 150 * WAD, nonce=1)
    open_perp(s, eth_acct, eth_who, desk_acct, desk, ETH, 10 * WAD, 2_000 * WAD, nonce=2)
    return feed, (desk, desk_acct), (sol_who, sol_acct), (eth_who, eth_acct)


def test_feed_reverts__exposed_account_frozen__others_unaffected(s, hostile_sol):
    feed, (desk, desk_acct), (sol_who, sol_acct), (eth_who, eth_acct) = hostile_sol
    feed.set_mode(1)
    before = balances(s, [sol_acct], [s.cash])
    with boa.reverts("oracle: invalid price"):  # the gas-capped read fails closed
        s.admin.withdraw(sol_acct, s.cash.address, 10**6, sender=sol_who)
    assert balances(s, [sol_acct], [s.cash]) == before
    # An account not exposed to SOL reads, withdraws and is liquidated as usual.
    assert s.engine.healths([eth_acct])[0][3]
    assert s.lens.account_state(eth_acct).prices_ok
    s.admin.withdraw(eth_acct, s.cash.address, 10**6, sender=eth_who)
    s.feeds[ETH].set_price(1_150 * 10**8)
    equity, mm, _, ok, _, _ = s.engine.healths([eth_acct])[0]
    assert ok and equity < mm
    # the desk is exposed to SOL: liquidate into a fresh liquidator account instead
    liq_who, liq_acct = fund(s, "liquidator", 0, s.cash, 10**6 * 10**6)
    s.liquidations.liquidate(eth_acct, liq_acct, WAD, 2**255 - 1, sender=liq_who)
    equity, mm, _, _, _, _ = s.engine.healths([eth_acct])[0]
    assert equity >= mm
    # The owner replaces the dead feed and the exposed account is live again.
    fresh = load("test/MockAggregator.vy", 8, 150 * 10**8)
    s.admin.set_feed(SOL, fresh.address, HEARTBEAT)
    s.admin.withdraw(sol_acct, s.cash.address, 10**6, sender=sol_who)


def test_feed_stuck__stale_after_heartbeat__refused_until_replaced(s, hostile_sol):
    feed, (desk, desk_acct), (sol_who, sol_acct), _ = hostile_sol
    feed.set_mode(2)
    feed.set_price(10 * 10**8)  # ignored: the feed is stuck at its old round
    assert s.engine.price(SOL) == (150 * WAD, True)
    boa.env.time_travel(seconds=HEARTBEAT + 1)
    s.feeds[ETH].set_price(2_000 * 10**8)
    assert s.engine.price(SOL) == (150 * WAD, False)
    liq_who, liq_acct = fund(s, "liquidator", 0, s.cash, 10**6 * 10**6)
    before = balances(s, [sol_acct], [s.cash])
    with boa.reverts("oracle: invalid price"):
        s.admin.withdraw(sol_acct, s.cash.address, 10**6, sender=sol_who)
    # not liquidatable on a stale price either, whatever its health
    with boa.reverts("oracle: invalid price"):
        s.liquidations.liquidate(sol_acct, liq_acct, WAD, 2**255 - 1, sender=liq_who)
    assert balances(s, [sol_acct], [s.cash]) == before
    assert not s.lens.account_state(sol_acct).prices_ok  # the view still answers
    fresh = load("test/MockAggregator.vy", 8, 150 * 10**8)
    s.admin.set_feed(SOL, fresh.address, HEARTBEAT)
    s.admin.withdraw(sol_acct, s.cash.address, 10**6, sender=sol_who)


# ------------------------------------------------------------------- Mango


def test_mango__pumped_thin_asset__profit_cannot_leave(s):
    """Mango Markets (2022): pump a thin market held long by one account and short by a
    sibling, then withdraw against the paper profit. Cash never goes below zero on a
    withdrawal, so only deposited cash leaves; the short side is liquidated and the books
    still balance."""
    attacker = s.actor("attacker")
    long_acct, short_acct = s.account(attacker, 1), s.account(attacker, 2)
    for acct in (long_acct, short_acct):
        s.cash.mint(attacker, 5_000 * 10**6)
        s.cash.approve(s.engine.address, 5_000 * 10**6, sender=attacker)
        s.admin.deposit(acct, s.cash.address, 5_000 * 10**6, sender=attacker)
    open_perp(s, long_acct, attacker, short_acct, attacker, LINK, 500 * WAD, 15 * WAD)
    s.feeds[LINK].set_price(150 * 10**8)  # x10
    equity = s.engine.healths([long_acct])[0][0]
    assert equity > 60_000 * WAD  # the paper profit
    held = s.cash.balanceOf(s.engine.address)
    with boa.reverts("ledger: insufficient cash"):
        s.admin.withdraw(long_acct, s.cash.address, 6_000 * 10**6, sender=attacker)
    with boa.reverts("ledger: insufficient cash"):
        s.admin.transfer(long_acct, short_acct, s.cash.address, 6_000 * 10**6, sender=attacker)
    assert s.cash.balanceOf(s.engine.address) == held
    # The short sibling is insolvent; closing it writes off its hole, and the attacker's
    # claims plus the deficit are exactly what the engine holds.
    desk, desk_acct = fund(s, "desk", 0, s.cash, 10**7 * 10**6)
    s.liquidations.liquidate(short_acct, desk_acct, WAD, 2**255 - 1, sender=desk)
    accounts = [0, long_acct, short_acct, desk_acct]
    claims = sum(
        s.engine.cash(a) - sum(s.engine.position(a, m)[1] for m in range(4)) for a in accounts
    )
    assert s.cash.balanceOf(s.engine.address) * 10**12 + s.engine.deficit() == claims
    assert s.engine.deficit() > 0
    # The profit cannot be withdrawn while the deficit stands: the haircut applies.
    paid_before = s.cash.balanceOf(attacker)
    s.admin.withdraw(long_acct, s.cash.address, 4_000 * 10**6, sender=attacker)
    assert s.cash.balanceOf(attacker) - paid_before < 4_000 * 10**6
