"""Bugs the fuzz suite found, each replayed as a named regression test.

The stateful model (ballast_machine.py) keeps failing examples in its hypothesis database
(tests/fuzz/.hypothesis); each bug is also written out here as a directed scenario, so it
stays covered whatever that database holds.
"""

import boa

WAD = 10**18
USDC = 10**6
ETH = 0
SIZE = 3 * WAD + 123_456_789  # odd wei: the hole is not a whole number of USDC units


def fund(s, name, sub, amount):
    who = s.actor(name)
    acct = s.account(who, sub)
    s.cash.mint(who, amount)
    s.cash.approve(s.engine.address, amount, sender=who)
    s.engine.deposit(acct, s.cash.address, amount, sender=who)
    return who, acct


def claims(s, accounts):
    e = s.engine
    return sum(e.cash(a) - sum(e.position(a, m)[1] for m in range(4)) for a in accounts)


def test_regression_deficit_dust_stranded_on_withdrawal(s):
    """A cash withdrawal under a deficit smaller than one token unit (10**12 WAD for
    USDC) left up to a token unit behind but paid only the deficit down with it: the rest
    left the account's cash and no claim held it, so
    `held * 10**12 + deficit == sum(cash - open notional)` broke (tokens stranded).

    Example: deficit = 4.6e11 WAD, withdraw 1,000 USDC: share = 1 wei, paid = 999.999999
    USDC, 1e12 WAD left behind, deficit paid down by 4.6e11, 5.4e11 WAD gone.
    The account now keeps what is left behind beyond the deficit."""
    desk, desk_acct = fund(s, "desk", 0, 10**7 * USDC)
    trader, trader_acct = fund(s, "trader", 0, 2_000 * USDC)
    saver, saver_acct = fund(s, "saver", 0, 5_000 * USDC)
    order, sig = s.sign_order(
        desk, owner=desk, subaccount=0, market=ETH, size=-SIZE, price=2_000 * WAD,
        nonce=1, expiry=2**40,
    )  # fmt: skip
    s.book.fill(order, sig, SIZE, trader_acct, sender=trader)
    s.feeds[ETH].set_price(1_200 * 10**8)  # trader: equity 2,000 - 2,400 < 0

    def close():
        s.liquidations.liquidate(trader_acct, desk_acct, WAD, 2**255 - 1, sender=desk)

    with boa.env.anchor():
        close()
        hole = s.engine.deficit()  # what is left with an empty fund (after its fee)
    assert hole > 10**12
    # Fund the insurance with all but a fraction of a USDC unit of that hole.
    s.cash.mint(s.owner, hole // 10**12)
    s.cash.approve(s.engine.address, hole // 10**12)
    s.engine.deposit(0, s.cash.address, hole // 10**12)
    close()
    deficit = s.engine.deficit()
    assert 0 < deficit < 10**12
    accounts = [0, desk_acct, trader_acct, saver_acct]
    held = s.cash.balanceOf(s.engine.address)
    assert held * 10**12 + deficit == claims(s, accounts)

    s.engine.withdraw(saver_acct, s.cash.address, 1_000 * USDC, sender=saver)

    held = s.cash.balanceOf(s.engine.address)
    assert held * 10**12 + s.engine.deficit() == claims(s, accounts)
    assert s.engine.deficit() == 0
    # The saver paid exactly the deficit, and one token unit less was sent.
    assert s.cash.balanceOf(saver) == 1_000 * USDC - 1
    assert s.engine.cash(saver_acct) == 4_000 * WAD + 10**12 - deficit
