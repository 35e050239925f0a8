"""Bugs the fuzz suite found, each replayed as a named regression test.

The stateful model (ballast_machine.py) keeps failing examples in its hypothesis database
(tests/fuzz/.hypothesis); each bug is also written out here as a directed scenario, so it
stays covered whatever that database holds.
"""

import boa
from ballast_machine import STATS, BallastMachine, MarginRow

WAD = 10**18
USDC = 10**6
ETH = 0
SIZE = 3 * WAD + 123_456_789  # odd wei: the hole is not a whole number of USDC units


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
    desk, desk_acct = s.fund("desk", 0, 10**7 * USDC)
    trader, trader_acct = s.fund("trader", 0, 2_000 * USDC)
    saver, saver_acct = s.fund("saver", 0, 5_000 * USDC)
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


def replay(steps, keep=False):
    """Run a failing example as hypothesis printed it, invariants after every step; with
    `keep`, return the machine still in its snapshot (the caller tears it down)."""
    machine = BallastMachine()

    def check(m):
        for invariant in m.invariants:  # every named invariant, as hypothesis runs them
            invariant.function(m)

    try:
        check(machine)
        for rule, kwargs in steps:
            getattr(machine, rule)(**kwargs)
            check(machine)
    except BaseException:
        machine.teardown()
        raise
    if keep:
        return machine
    machine.teardown()
    return None


def test_regression_keeper_pass_with_bankrupt_desk(machine_stack):
    before = STATS["desk recapitalised"]
    replay(BANKRUPT_DESK)
    assert STATS["desk recapitalised"] > before


# Found by the quick profile once it ran on revm: two bankrupt books closed in one keeper
# pass. The model predicted each write-off from the insurance fund it had read before the
# pass, so the second hole was "covered" by money the first had already taken, and the
# deficit invariant failed by exactly the fund (10,000 USDC). The contract was right; the
# model now re-reads the fund and the book before every liquidation.
TWO_HOLES_ONE_PASS = [
    ("crash", dict(asset=1, keep_bps=7000)),
    ("pump_thin_asset", dict(times=3)),
    ("pump_thin_asset", dict(times=2)),
    ("pump_thin_asset", dict(times=2)),
    ("stale_round", dict(age=189823, asset=0)),
    ("stale_round", dict(age=354, asset=0)),
    ("crash", dict(asset=0, keep_bps=3031)),
    ("stale_round", dict(age=65185, asset=2)),
    ("stale_round", dict(age=30, asset=2)),
    ("crash", dict(asset=0, keep_bps=2855)),
    ("pump_thin_asset", dict(times=8)),
    ("fill", dict(m=3, market=3, notional=675, offset_bps=482, part=0.7441102530321406, t=5)),
    ("pump_thin_asset", dict(times=3)),
    ("crash", dict(asset=0, keep_bps=1347)),
    ("fill", dict(m=3, market=1, notional=-4795, offset_bps=-63, part=0.17735082972091873, t=1)),
    ("crash", dict(asset=0, keep_bps=1215)),
    ("stale_round", dict(age=3312, asset=3)),
    ("poke", dict(asset=2)),
    ("stale_round", dict(age=241087, asset=1)),
    ("fill", dict(m=2, market=3, notional=399, offset_bps=153, part=0.13115066669850284, t=3)),
    ("stale_round", dict(age=1, asset=2)),
    ("stale_round", dict(age=4671, asset=0)),
    ("fill", dict(m=4, market=3, notional=2259, offset_bps=-318, part=0.33739094848961837, t=4)),
    ("pump_thin_asset", dict(times=3)),
    ("crash", dict(asset=3, keep_bps=621)),
    ("fill", dict(m=1, market=0, notional=-462, offset_bps=212, part=0.2230618291023015, t=2)),
    ("pump_thin_asset", dict(times=3)),
    ("stale_round", dict(age=7419, asset=0)),
    ("crash", dict(asset=2, keep_bps=1464)),
    ("pump_thin_asset", dict(times=4)),
    ("stale_round", dict(age=8016, asset=0)),
    ("stale_round", dict(age=2146, asset=2)),
    ("crash", dict(asset=2, keep_bps=1377)),
    ("stale_round", dict(age=31022, asset=2)),
    ("fill", dict(m=4, market=0, notional=-71, offset_bps=-246, part=1.0, t=5)),
    ("fill", dict(m=3, market=0, notional=300, offset_bps=-245, part=1.0, t=3)),
    ("stale_round", dict(age=106, asset=0)),
    ("pump_thin_asset", dict(times=4)),
    ("pump_thin_asset", dict(times=4)),
    ("crash", dict(asset=3, keep_bps=1494)),
    ("crash", dict(asset=3, keep_bps=679)),
    ("fill", dict(m=1, market=0, notional=22, offset_bps=-54, part=0.877880662917515, t=5)),
    ("crash", dict(asset=2, keep_bps=4104)),
    ("fill", dict(m=4, market=3, notional=100, offset_bps=183, part=0.1896164572554419, t=5)),
    ("crash", dict(asset=1, keep_bps=2679)),
    ("crash", dict(asset=3, keep_bps=4193)),
    ("pump_thin_asset", dict(times=6)),
    ("crash", dict(asset=1, keep_bps=3834)),
    ("fill", dict(m=5, market=3, notional=-15301, offset_bps=-90, part=0.9337221898279798, t=5)),
    ("pump_thin_asset", dict(times=2)),
    ("crash", dict(asset=3, keep_bps=1000)),
    ("pump_thin_asset", dict(times=5)),
    ("fill", dict(m=4, market=1, notional=25, offset_bps=-13, part=0.99999, t=3)),
    ("fill", dict(m=2, market=3, notional=9173, offset_bps=-318, part=0.1, t=1)),
    ("crash", dict(asset=0, keep_bps=5344)),
    ("fill", dict(m=2, market=3, notional=-631, offset_bps=490, part=0.99999, t=2)),
    ("pump_thin_asset", dict(times=8)),
    ("fill", dict(m=4, market=3, notional=2746, offset_bps=-243, part=0.42112260543744484, t=2)),
    ("pump_thin_asset", dict(times=7)),
    ("pump_thin_asset", dict(times=5)),
    ("pump_thin_asset", dict(times=4)),
    ("stale_round", dict(age=185, asset=0)),
    ("stale_round", dict(age=100001, asset=0)),
    ("stale_round", dict(age=78857, asset=3)),
    ("crash", dict(asset=0, keep_bps=534)),
    ("crash", dict(asset=2, keep_bps=6633)),
    ("crash", dict(asset=0, keep_bps=2516)),
    ("fill", dict(m=2, market=1, notional=482, offset_bps=-500, part=0.8135295232109456, t=4)),
    ("pump_thin_asset", dict(times=8)),
    ("crash", dict(asset=3, keep_bps=1089)),
    ("keeper_pass", dict()),
]


def test_regression_keeper_pass_two_holes_share_one_fund(machine_stack):
    before = STATS["bad debt"]
    replay(TWO_HOLES_ONE_PASS)
    assert STATS["bad debt"] >= before + 2


# Found by the quick profile on revm: after the pass, one book stood below zero with MM 0,
# its only balance collateral whose feed was stale. The written policy does not liquidate
# it (nothing to sell, nothing priced: `is_liquidatable`'s "something to do", Liquidations
# `_plan`), but the model's keeper pass asserted `equity < MM` over all books. The pass now
# asserts the policy's own test.
UNPRICED_BOOK_BELOW_ZERO = [
    ("crash", dict(asset=1, keep_bps=7000)),
    ("pump_thin_asset", dict(times=3)),
    ("pump_thin_asset", dict(times=2)),
    ("pump_thin_asset", dict(times=2)),
    ("stale_round", dict(age=189823, asset=0)),
    ("stale_round", dict(age=354, asset=0)),
    ("crash", dict(asset=0, keep_bps=3031)),
    ("stale_round", dict(age=65185, asset=3)),
    ("stale_round", dict(age=136, asset=0)),
    ("fill", dict(m=3, market=0, notional=-19015, offset_bps=303, part=0.761826440685539, t=1)),
    ("stale_round", dict(age=70367, asset=2)),
    ("crash", dict(asset=1, keep_bps=1948)),
    ("crash", dict(asset=0, keep_bps=2345)),
    ("fill_again", dict(k=197, part=0.15545299989695738, t=1)),
    ("fill", dict(m=2, market=3, notional=-77, offset_bps=-232, part=0.5078044057678291, t=1)),
    ("crash", dict(asset=2, keep_bps=1502)),
    ("stale_round", dict(age=7625, asset=2)),
    ("stale_round", dict(age=720, asset=3)),
    ("pump_thin_asset", dict(times=7)),
    ("fill_again", dict(k=1000000, part=0.5881320786772911, t=3)),
    ("pump_thin_asset", dict(times=6)),
    ("fill_again", dict(k=9875, part=0.9612341429666945, t=5)),
    ("fill", dict(m=2, market=3, notional=539, offset_bps=277, part=0.7225593785072988, t=3)),
    ("fill_again", dict(k=3521, part=0.5111215102257357, t=5)),
    ("stale_round", dict(age=4249, asset=2)),
    ("fill_again", dict(k=216394, part=0.897257737137692, t=2)),
    ("crash", dict(asset=1, keep_bps=1129)),
    ("fill", dict(m=3, market=3, notional=257, offset_bps=600, part=0.5871964366134104, t=4)),
    ("pump_thin_asset", dict(times=3)),
    ("fill", dict(m=2, market=2, notional=-591, offset_bps=444, part=0.8408236736557357, t=3)),
    ("crash", dict(asset=2, keep_bps=1592)),
    ("fill_again", dict(k=51279, part=0.6118426036845116, t=2)),
    ("stale_round", dict(age=19142, asset=3)),
    ("pump_thin_asset", dict(times=7)),
    ("fill", dict(m=1, market=3, notional=-30, offset_bps=-432, part=1.0, t=2)),
    ("fill", dict(m=2, market=0, notional=-573, offset_bps=-391, part=0.8551548565509761, t=2)),
    ("pump_thin_asset", dict(times=10)),
    ("fill", dict(m=1, market=0, notional=-13194, offset_bps=521, part=0.3624771766039141, t=2)),
    ("stale_round", dict(age=606, asset=2)),
    ("crash", dict(asset=3, keep_bps=1182)),
    ("stale_round", dict(age=8364, asset=2)),
    ("crash", dict(asset=2, keep_bps=1344)),
    ("fill", dict(m=2, market=0, notional=695, offset_bps=-272, part=0.6366954958598716, t=2)),
    ("fill", dict(m=2, market=0, notional=-1543, offset_bps=-372, part=1.0, t=3)),
    ("crash", dict(asset=3, keep_bps=878)),
    ("crash", dict(asset=0, keep_bps=2080)),
    ("pump_thin_asset", dict(times=3)),
    ("pump_thin_asset", dict(times=2)),
    ("crash", dict(asset=1, keep_bps=1288)),
    ("stale_round", dict(age=453, asset=0)),
    ("fill", dict(m=1, market=0, notional=-27, offset_bps=162, part=0.5782437789620586, t=1)),
    ("fill", dict(m=2, market=1, notional=548, offset_bps=216, part=0.843026668732139, t=3)),
    ("fill_again", dict(k=1974, part=0.843026668732139, t=4)),
    ("stale_round", dict(age=1138, asset=1)),
    ("pump_thin_asset", dict(times=9)),
    ("crash", dict(asset=2, keep_bps=2160)),
    ("pump_thin_asset", dict(times=6)),
    ("stale_round", dict(age=24974, asset=1)),
    ("fill", dict(m=3, market=1, notional=-11082, offset_bps=600, part=0.17094379853715597, t=5)),
    ("crash", dict(asset=3, keep_bps=3850)),
    ("stale_round", dict(age=20424, asset=1)),
    ("fill_again", dict(k=6521, part=0.458570897892057, t=5)),
    ("pump_thin_asset", dict(times=7)),
    ("pump_thin_asset", dict(times=9)),
    ("stale_round", dict(age=7717, asset=3)),
    ("pump_thin_asset", dict(times=2)),
    ("keeper_pass", dict()),
]


def test_regression_keeper_pass_leaves_unpriced_book_below_zero(machine_stack):
    machine = replay(UNPRICED_BOOK_BELOW_ZERO, keep=True)
    try:
        rows = [MarginRow.of(r) for r in machine.s.engine.healths(machine.k.accounts[1:-1])]
        waiting = [r for r in rows if r.equity < 0 and r.mm == 0 and r.unpriced]
        assert waiting and not any(r.liquidatable for r in waiting)
    finally:
        machine.teardown()


def test_regression_fallback_price_above_max_price_refused(machine_stack):
    """Found by the quick profile once it ran on revm: LINK pumped past 2**100 WAD (the
    engine's MAX_PRICE), then the guardian's fallback-price rule offered the feed's price as
    the fallback. The engine rightly refused it ("ledger: bad fallback price") and the
    model failed on the revert. The rule now expects that refusal, with nothing moved."""
    before = STATS["refused: ledger: bad fallback price"]
    replay(
        [("pump_thin_asset", dict(times=10))] * 12 + [("fallback_price", dict(asset=3, life=634))]
    )
    assert STATS["refused: ledger: bad fallback price"] == before + 1


# Found by the quick profile on revm (derandomised, past its first 40 examples): a
# liquidation attempt on a book below zero with MM 0 and only unpriced collateral. The
# engine refuses it with "liquidations: nothing to liquidate", as the written policy says
# (`is_liquidatable`'s "something to do"); the model allowed only "account is healthy" and
# "oracle: invalid price" for a book that is not liquidatable. It now allows that refusal
# too, with nothing moved.
NOTHING_TO_LIQUIDATE = [
    ("deposit_insurance", dict(amount=3)),
    ("deposit_insurance", dict(amount=1)),
    ("deposit_insurance", dict(amount=12)),
    ("deposit_insurance", dict(amount=1)),
    ("push_insolvent", dict(depth=3119, i=1)),
    ("liquidate", dict(fraction=5_584_969_620, i=1)),
    ("deposit_insurance", dict(amount=13912152)),
    ("liquidate", dict(fraction=229_236_235_443, i=1)),
    ("stale_round", dict(age=20850, asset=3)),
    ("push_insolvent", dict(depth=266, i=1)),
    ("wait", dict(seconds=66)),
    ("fill", dict(m=1, market=2, notional=33108, offset_bps=216, part=0.3333333333333333, t=4)),
    ("stale_round", dict(age=3, asset=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("fill", dict(m=1, market=0, notional=-16720, offset_bps=14, part=0.20093802228143554, t=1)),
    ("stale_round", dict(age=14798, asset=0)),
    ("wait", dict(seconds=14372)),
    ("transfer", dict(frac=0.4303185674507863, i=1, j=1, token_id=-1)),
    ("fill", dict(m=1, market=0, notional=-17025, offset_bps=-419, part=0.34449700604570066, t=1)),
    ("move_price", dict(asset=1, bps=0)),
    ("cancel", dict(k=0)),
    ("push_insolvent", dict(depth=1, i=1)),
    ("keeper_pass", dict()),
    ("cancel", dict(k=0)),
    ("deposit_insurance", dict(amount=1)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("cancel", dict(k=1)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("poke", dict(asset=0)),
    ("stale_round", dict(age=1, asset=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("cancel", dict(k=0)),
    ("liquidate", dict(fraction=1, i=4)),
]


def test_regression_liquidate_unpriced_book_nothing_to_liquidate(machine_stack):
    before = STATS["refused: liquidations: nothing to liquidate"]
    replay(NOTHING_TO_LIQUIDATE)
    assert STATS["refused: liquidations: nothing to liquidate"] == before + 1


# Found by the long profile on revm (a benchmark run): LINK pumped far enough that taking a
# whole book put the backstop liquidator of `liquidatable_accounts_can_be_liquidated`, which
# held a fixed 10**11 USDC, below its own IM ("margin: below initial margin"). The protocol
# was right (a liquidator must meet IM after the take); "well funded" was not. The backstop
# is now funded per account as the keeper pass recapitalises its desk.
BACKSTOP_OUTGROWN_BY_PUMP = [
    ("fill", dict(m=5, market=3, notional=545, offset_bps=-373, part=0.1, t=2)),
    ("wait", dict(seconds=4888)),
    ("wait", dict(seconds=2412)),
    ("transfer", dict(frac=0.00980037989524697, i=4, j=3, token_id=1)),
    ("stale_round", dict(age=2087, asset=2)),
    ("pump_thin_asset", dict(times=5)),
    ("wait", dict(seconds=26096)),
    ("wait", dict(seconds=7301)),
    ("fill", dict(m=2, market=2, notional=-437, offset_bps=541, part=1.0, t=1)),
    ("fill", dict(m=3, market=0, notional=855, offset_bps=566, part=1.0, t=2)),
    ("cancel", dict(k=341661)),
    ("wait", dict(seconds=1576)),
    ("pump_thin_asset", dict(times=8)),
    ("stale_round", dict(age=1002, asset=2)),
    ("pump_thin_asset", dict(times=7)),
    ("stale_round", dict(age=624, asset=2)),
    ("cancel", dict(k=32732)),
    ("stale_round", dict(age=49, asset=2)),
    ("cancel", dict(k=11517)),
    ("stale_round", dict(age=5345, asset=3)),
    ("transfer", dict(frac=0.03793256515807338, i=2, j=4, token_id=0)),
    ("fill", dict(m=4, market=2, notional=-25, offset_bps=12, part=0.29296828636049277, t=5)),
    ("transfer", dict(frac=0.4521066728237567, i=3, j=3, token_id=-1)),
    ("pump_thin_asset", dict(times=2)),
    ("cancel", dict(k=596)),
    ("transfer", dict(frac=1.2621147288959438, i=3, j=5, token_id=0)),
    ("cancel", dict(k=19150)),
    ("transfer", dict(frac=1.4664097663200832, i=4, j=4, token_id=0)),
    ("cancel", dict(k=975)),
    ("stale_round", dict(age=140, asset=0)),
    ("stale_round", dict(age=259199, asset=0)),
    ("stale_round", dict(age=192, asset=1)),
    ("transfer", dict(frac=1.4254580174847158, i=5, j=3, token_id=1)),
    ("transfer", dict(frac=0.30961535916330113, i=5, j=1, token_id=0)),
    ("pump_thin_asset", dict(times=6)),
    ("cancel", dict(k=3351)),
    ("stale_round", dict(age=2129, asset=3)),
    ("pump_thin_asset", dict(times=5)),
    ("pump_thin_asset", dict(times=2)),
    ("pump_thin_asset", dict(times=9)),
    ("cancel", dict(k=472)),
    ("cancel", dict(k=4366)),
    ("transfer", dict(frac=1.0, i=1, j=5, token_id=1)),
    ("cancel", dict(k=580)),
    ("wait", dict(seconds=12091)),
    ("stale_round", dict(age=592, asset=3)),
    ("cancel", dict(k=21946)),
    ("wait", dict(seconds=206)),
    ("stale_round", dict(age=62731, asset=0)),
    ("cancel", dict(k=6715)),
    ("cancel", dict(k=565)),
    ("pump_thin_asset", dict(times=8)),
    ("transfer", dict(frac=0.23645260217545666, i=1, j=1, token_id=1)),
    ("cancel", dict(k=44418)),
    ("transfer", dict(frac=0.26448876688493256, i=1, j=4, token_id=1)),
    ("cancel", dict(k=537196)),
    ("stale_round", dict(age=63366, asset=3)),
    ("transfer", dict(frac=0.6088519903631424, i=5, j=1, token_id=0)),
    ("transfer", dict(frac=1.451684439735291, i=1, j=3, token_id=0)),
    ("transfer", dict(frac=0.9616713411189453, i=3, j=2, token_id=-1)),
    ("fill", dict(m=2, market=2, notional=40549, offset_bps=536, part=0.7470004544556814, t=1)),
    ("stale_round", dict(age=404, asset=3)),
    ("fill", dict(m=5, market=1, notional=8788, offset_bps=-391, part=0.6676953888345052, t=1)),
    ("cancel", dict(k=3777)),
    ("wait", dict(seconds=9999)),
    ("pump_thin_asset", dict(times=3)),
    ("pump_thin_asset", dict(times=6)),
    ("stale_round", dict(age=3274, asset=0)),
    ("transfer", dict(frac=0.8342619003142384, i=4, j=5, token_id=1)),
    ("stale_round", dict(age=233645, asset=0)),
    ("pump_thin_asset", dict(times=10)),
    ("transfer", dict(frac=1.2972132054174497, i=1, j=5, token_id=0)),
    ("pump_thin_asset", dict(times=8)),
    ("wait", dict(seconds=55)),
    ("transfer", dict(frac=0.10022948869508651, i=3, j=1, token_id=1)),
    ("stale_round", dict(age=251, asset=3)),
    ("stale_round", dict(age=259200, asset=3)),
    ("pump_thin_asset", dict(times=3)),
]


def test_regression_backstop_liquidator_funded_per_account(machine_stack):
    before = STATS["liquidatable, proven"]
    replay(BACKSTOP_OUTGROWN_BY_PUMP)
    assert STATS["liquidatable, proven"] > before


# Found by the quick profile at 520 examples: a keeper pass after a stale ETH round was
# refused "oracle: invalid price" for an account holding no ETH at all. The liquidator (the
# desk) held an ETH perp: its own IM check after the slice cannot value a perp without a
# price, so it can take no slice anywhere until the feed or a fallback returns. The contract
# is right (a liquidator proves its IM); the model now expects the refusal while the desk
# holds an unpriced perp, and a clean sub-account of the same owner takes the account.
def test_regression_liquidator_holding_unpriced_perp_is_refused(s):
    btc_asset = 1
    desk, desk_acct = s.fund("desk", 0, 10**7 * USDC)
    _, other_acct = s.fund("other", 0, 10**6 * USDC)
    trader, trader_acct = s.fund("trader", 0, 3_000 * USDC)
    order, sig = s.sign_order(
        desk, owner=desk, subaccount=0, market=ETH, size=-WAD, price=2_000 * WAD,
        nonce=1, expiry=2**40,
    )  # fmt: skip
    s.book.fill(order, sig, WAD, other_acct, sender=s.actor("other"))
    btc = s.engine.price(btc_asset)[0]
    order, sig = s.sign_order(
        desk, owner=desk, subaccount=0, market=btc_asset, size=-WAD, price=btc,
        nonce=2, expiry=2**40,
    )  # fmt: skip
    s.book.fill(order, sig, WAD // 10, trader_acct, sender=trader)
    boa.env.time_travel(seconds=86_400 + 10)  # every feed stale ...
    s.feeds[btc_asset].set_price(btc * 55 // 100 * 10**8 // WAD)  # ... but BTC, which crashes
    assert s.funding.liquidation_price(ETH) == 0
    assert s.funding.liquidation_price(btc_asset) > 0
    m = s.engine.liquidation_margin(trader_acct, 0)
    assert m.prices_ok and m.equity < m.mm  # the trader is due and fully priced
    before = (s.engine.position(trader_acct, btc_asset), s.engine.cash(desk_acct))
    with boa.reverts("oracle: invalid price"):
        s.liquidations.liquidate(trader_acct, desk_acct, WAD, 2**255 - 1, sender=desk)
    assert (s.engine.position(trader_acct, btc_asset), s.engine.cash(desk_acct)) == before
    clean = s.account(desk, 5)
    s.cash.mint(desk, 10**6 * USDC)
    s.cash.approve(s.engine.address, 10**6 * USDC, sender=desk)
    s.admin.deposit(clean, s.cash.address, 10**6 * USDC, sender=desk)
    s.liquidations.liquidate(trader_acct, clean, WAD, 2**255 - 1, sender=desk)
    assert 0 <= s.engine.position(trader_acct, btc_asset)[0] < WAD // 10  # a slice moved


# Found by the quick profile in CI: after LINK was pumped tenfold nine times over, a trader
# short LINK owed ~5e12 USD against an IM of ~2e12 USD. The backstop liquidator of
# `liquidatable_accounts_can_be_liquidated` deposited 1e11 USDC plus twice that IM, past the
# cash token's deposit cap (1e12 USD), and the invariant failed on "ledger: deposit cap
# exceeded" in its own funding. The engine is right to refuse; the model's liquidator now
# brings at most what the caps let it, and takes the fraction of the account that capital
# carries.
PUMPED_PAST_THE_CAPS = [
    ("fill", dict(m=1, t=2, market=3, notional=-5000, offset_bps=0, part=1.0)),
    *[("pump_thin_asset", dict(times=10))] * 10,
]


def test_regression_backstop_liquidator_within_the_deposit_caps(machine_stack):
    before = STATS["liquidatable, a slice under the deposit caps"]
    machine = replay(PUMPED_PAST_THE_CAPS, keep=True)
    try:
        trader = machine.k.accounts[1]
        row = machine.margins[trader]
        assert row.liquidatable
        rescuer = machine.s.account(machine.s.actor("rescuer"), 0)
        # The whole take needs more cash than the caps admit: the scenario reaches them.
        assert 2 * row.im // 10**12 > machine._cash_room(rescuer)
    finally:
        machine.teardown()
    assert STATS["liquidatable, a slice under the deposit caps"] > before


# Found replaying the sequence above into a keeper pass: the desk, refused for its own IM,
# topped itself up with twice the book's IM, past the cash token's deposit cap, and the pass
# failed on "ledger: deposit cap exceeded" in its own funding. The keeper now brings what the
# caps admit and takes the slice that capital carries; the book stays due (no capital the
# engine accepts could take it whole) and the invariants still hold.
def test_regression_keeper_pass_desk_top_up_within_the_deposit_caps(machine_stack):
    before = STATS["desk recapitalised up to the deposit caps"]
    machine = replay(PUMPED_PAST_THE_CAPS, keep=True)
    try:
        trader = machine.k.accounts[1]
        short = machine.s.engine.position(trader, 3)[0]
        machine.keeper_pass()
        machine.check_all()
        size = machine.s.engine.position(trader, 3)[0]
        assert short < size < 0  # a slice of the short LINK taken, not all of it
        assert machine.margins[trader].liquidatable
    finally:
        machine.teardown()
    assert STATS["desk recapitalised up to the deposit caps"] == before + 1


# Found by the machine's hostile runs once vault shares were listed (shrunk):
#   state.deposit_dust(i=1, token_id=0)  x2
#   state.deposit_dust(i=1, token_id=4)
# twin_agrees_with_contract: equity 23920000000000000005600 on chain, 5599 in the twin.
# Minting one share of a vault holding 105 WETH for 100 shares costs 2 wei of WETH (the
# vault rounds up in its favour), which lifts the rate from 1.049999999999999999 to 1.05:
# the share's price moved, and the model, which marked only the account as touched, valued
# it at the old price. A model bug: minting shares now marks the prices for re-reading.
def test_regression_minting_vault_shares_moves_their_price(machine_stack):
    machine = replay(
        [("deposit_dust", {"i": 1, "token_id": ETH})] * 2
        + [("deposit_dust", {"i": 1, "token_id": 4})],
        keep=True,
    )
    try:
        assert machine.reported[4] == 2_100 * WAD  # 2,000 * 1.05, read after the mint
    finally:
        machine.teardown()


# A keeper pass recapitalised the desk for a slice (`_recapitalise_desk`) with the quote 3.7%
# below par, and the desk still could not take it ("the desk could not take a slice"): cash
# carries IM of its own while the quote is off par (`ledger._peg_margin`), so the deposit
# brought 96.3% of what the model counted. The contracts were right; the model now grosses
# the deposit up by the peg rate. Shrunk by hypothesis.
DESK_CANNOT_TAKE_ITS_SLICE = [
    ("invalid_update", dict(asset=0, kind="bad nonce")),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=2)),
    ("crash", dict(asset=0, keep_bps=659)),
    ("fill", dict(m=1, market=0, notional=1266, offset_bps=0, part=0.1, t=1)),
    ("liquidate", dict(fraction=2834, i=1)),
    ("liquidate", dict(fraction=122_733_679_667, i=1)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=1)),
    ("liquidate", dict(fraction=6248, i=1)),
    ("fill", dict(m=1, market=3, notional=32768, offset_bps=-169, part=0.1747777880219144, t=2)),
    ("depeg_quote", dict(bps=1)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("pump_thin_asset", dict(times=2)),
    ("depeg_quote", dict(bps=-1094)),
    ("move_price", dict(asset=0, bps=-237)),
    ("move_price", dict(asset=0, bps=-1708)),
    ("depeg_quote", dict(bps=162)),
    ("crash", dict(asset=0, keep_bps=500)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=34)),
    ("depeg_quote", dict(bps=2)),
    ("depeg_quote", dict(bps=208)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("pump_thin_asset", dict(times=3)),
    ("feed_outage", dict(asset=0, kind="reverting")),
    ("move_price", dict(asset=0, bps=-257)),
    ("liquidate", dict(fraction=1_467_599_694, i=1)),
    ("depeg_quote", dict(bps=243)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("keeper_pass", dict()),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("pump_thin_asset", dict(times=10)),
    ("depeg_quote", dict(bps=0)),
    ("pump_thin_asset", dict(times=5)),
    ("vault_snapshot", dict(bps=0, growth=0, when=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=3)),
    ("crash", dict(asset=0, keep_bps=6999)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=62)),
    ("move_price", dict(asset=0, bps=-384)),
    ("move_price", dict(asset=0, bps=-199)),
    ("depeg_quote", dict(bps=-105)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=88)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=1138)),
    ("depeg_quote", dict(bps=300)),
    ("wait", dict(seconds=4801)),
    ("vault_snapshot", dict(bps=104, growth=316, when=17)),
    ("move_price", dict(asset=0, bps=339)),
    ("depeg_quote", dict(bps=0)),
    ("depeg_quote", dict(bps=-302)),
    ("liquidate", dict(fraction=362881, i=1)),
    ("move_price", dict(asset=0, bps=367)),
    ("crash", dict(asset=0, keep_bps=2198)),
    ("pump_thin_asset", dict(times=8)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=315)),
    ("pump_thin_asset", dict(times=9)),
    ("pump_thin_asset", dict(times=3)),
    ("feed_outage", dict(asset=0, kind="zero")),
    ("crash", dict(asset=0, keep_bps=500)),
    ("move_price", dict(asset=0, bps=0)),
    ("vault_snapshot", dict(bps=0, growth=0, when=0)),
    ("fill", dict(m=1, market=0, notional=0, offset_bps=0, part=0.5511518843397067, t=1)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=1)),
    ("accrue_and_settle", dict(i=0, market=0, seconds=1)),
    ("wait", dict(seconds=1)),
    ("fill", dict(m=1, market=0, notional=0, offset_bps=0, part=0.5443183300640335, t=1)),
    ("depeg_quote", dict(bps=-370)),
    ("crash", dict(asset=0, keep_bps=500)),
    ("pump_thin_asset", dict(times=2)),
    ("keeper_pass", dict()),
]


def test_regression_desk_recapitalised_under_a_depegged_quote_takes_its_slice(machine_stack):
    before = STATS["desk recapitalised"]
    machine = replay(DESK_CANNOT_TAKE_ITS_SLICE, keep=True)
    try:
        assert STATS["desk recapitalised"] > before
        assert machine.quote.price_wad < WAD  # the quote below par when the desk took it
        assert not any(machine.margins[a].liquidatable for a in machine.k.accounts[1:-1])
    finally:
        machine.teardown()
