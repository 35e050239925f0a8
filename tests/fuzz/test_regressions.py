"""Bugs the fuzz suite found, each replayed as a named regression test.

The stateful model (ballast_machine.py) keeps failing examples in its hypothesis database
(tests/fuzz/.hypothesis); each bug is also written out here as a directed scenario, so it
stays covered whatever that database holds.
"""

import boa
from ballast_machine import STATS, BallastMachine

WAD = 10**18
USDC = 10**6
ETH = 0
SIZE = 3 * WAD + 123_456_789  # odd wei: the hole is not a whole number of USDC units


def fund(s, name, sub, amount):
    who = s.actor(name)
    acct = s.account(who, sub)
    s.cash.mint(who, amount)
    s.cash.approve(s.engine.address, amount, sender=who)
    s.admin.deposit(acct, s.cash.address, amount, sender=who)
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
    s.admin.deposit(0, s.cash.address, hole // 10**12)
    close()
    deficit = s.engine.deficit()
    assert 0 < deficit < 10**12
    accounts = [0, desk_acct, trader_acct, saver_acct]
    held = s.cash.balanceOf(s.engine.address)
    assert held * 10**12 + deficit == claims(s, accounts)

    s.admin.withdraw(saver_acct, s.cash.address, 1_000 * USDC, sender=saver)

    held = s.cash.balanceOf(s.engine.address)
    assert held * 10**12 + s.engine.deficit() == claims(s, accounts)
    assert s.engine.deficit() == 0
    # The saver paid exactly the deficit, and one token unit less was sent.
    assert s.cash.balanceOf(saver) == 1_000 * USDC - 1
    assert s.engine.cash(saver_acct) == 4_000 * WAD + 10**12 - deficit


# Found by the quick profile in CI: after LINK was pumped some 300,000-fold the desk, short
# LINK from an earlier liquidation, was itself bankrupt, so the protocol rightly refused it
# the next liquidation for its own IM and the model's keeper pass failed. A keeper brings
# capital: the pass now recapitalises the desk when its IM refuses and then must succeed.
BANKRUPT_DESK = [
    ("fill", dict(m=1, market=0, notional=1212, offset_bps=-395, part=0.2825429220300454, t=4)),
    ("stale_round", dict(age=18275, asset=1)),
    ("deposit", dict(frac=0.7762958657784468, i=1, token_id=-1)),
    ("fresh_round", dict(asset=2)),
    ("wait", dict(seconds=3376)),
    ("move_price", dict(asset=3, bps=250)),
    ("move_price", dict(asset=2, bps=929)),
    ("fill", dict(m=4, market=2, notional=-6456, offset_bps=-4, part=0.43278137873226463, t=3)),
    ("fill", dict(m=3, market=3, notional=10494, offset_bps=-416, part=0.6, t=5)),
    ("pump_thin_asset", dict(times=5)),
    ("stale_round", dict(age=31095, asset=3)),
    ("pump_thin_asset", dict(times=7)),
    ("pump_thin_asset", dict(times=5)),
    ("keeper_pass", dict()),
    ("pump_thin_asset", dict(times=10)),
    ("deposit", dict(frac=0.5, i=5, token_id=-1)),
    ("move_price", dict(asset=0, bps=1146)),
    ("fill", dict(m=1, market=2, notional=-153, offset_bps=107, part=0.65, t=1)),
    ("fill", dict(m=4, market=3, notional=500, offset_bps=-120, part=0.37647758660222674, t=5)),
    ("pump_thin_asset", dict(times=10)),
    ("crash", dict(asset=3, keep_bps=501)),
    ("deposit", dict(frac=0.11657971854374037, i=3, token_id=0)),
    ("push_insolvent", dict(depth=3552, i=5)),
    ("wait", dict(seconds=128)),
    ("pump_thin_asset", dict(times=5)),
    ("deposit", dict(frac=0.5959560851420123, i=5, token_id=-1)),
    ("push_insolvent", dict(depth=72, i=4)),
    ("withdraw", dict(frac=1.2681587123734546, i=4, token_id=-1)),
    ("stale_round", dict(age=1146, asset=1)),
    ("deposit", dict(frac=0.5055094705429882, i=5, token_id=-1)),
    ("fresh_round", dict(asset=0)),
    ("push_insolvent", dict(depth=146, i=3)),
    ("keeper_pass", dict()),
]


def replay(steps):
    """Run a failing example as hypothesis printed it, invariants after every step."""
    machine = BallastMachine()
    check = vars(BallastMachine)["invariants"]  # hypothesis shadows the name on instances
    try:
        check(machine)
        for rule, kwargs in steps:
            getattr(machine, rule)(**kwargs)
            check(machine)
    finally:
        machine.teardown()


def test_regression_keeper_pass_with_bankrupt_desk(machine_stack):
    before = STATS["desk recapitalised"]
    replay(BANKRUPT_DESK)
    assert STATS["desk recapitalised"] > before
