"""OptionBook.option_margin against its twin (offchain_risk.models.options.option_margin_exact)
on random option books, to the wei, in titanoboa.

Each book: random legs (calls and puts, long and short, over two expiries and strikes from
deep in to deep out of the money) written through `apply_trade` as the engine, a random
ETH price and vol curve per expiry, random time before (or after) expiry, random linear
numerators from the engine, strict and liquidation valuations, and sometimes a trade being
checked (the OPTION_TRADE override).
"""

from __future__ import annotations

import os
import random

import boa
import pytest
from option_stack import ETH, SHORT_MIN_BPS, VOL_SHOCK, WAD, Options

from offchain_risk.keeper.vol_signer import MAX_CURVATURE, MAX_SKEW, curve_vol
from offchain_risk.models.options import OptionLeg, option_margin_exact, option_slice_exact
from offchain_risk.units import (
    MAX_VOL,
    MIN_VOL,
    NO_ASSET,
    OPTION_TRADE,
    WAD_BPS,
    unpack_int16,
)

BOOKS = int(os.environ.get("OPTION_TWIN_BOOKS", "200"))
STRIKES = [x * 100 * WAD for x in (5, 12, 16, 19, 20, 21, 24, 30, 60)]


@pytest.fixture(scope="module")
def opt():
    with boa.env.anchor():
        yield Options()


def test_option_margin__random_books__equal_twin_to_the_wei(opt):
    rng = random.Random(1919)
    book, engine = opt.book, opt.s.engine
    ids = {}
    for expiry in (opt.expiry, opt.far):
        for strike in STRIKES:
            for is_call in (True, False):
                id = book.instrument_id(ETH, expiry, strike, is_call)
                if not book.listed(id):
                    book.list_option(ETH, expiry, strike, is_call)
                ids[id] = (expiry, strike, is_call)
    shocks = tuple(unpack_int16(engine.shock_word(ETH)))
    counterparty = opt.s.account(opt.s.actor("counterparty"), 0)
    liquidator = opt.s.account(opt.s.actor("liquidator"), 0)
    compared = expired = hypothetical = sliced = 0
    for n in range(BOOKS):
        with boa.env.anchor():
            account = opt.s.account(opt.maker, 100 + n)
            chosen = rng.sample(sorted(ids), rng.randint(1, 8))
            with boa.env.prank(engine.address):
                for id in chosen:
                    size = rng.choice((-1, 1)) * rng.randint(1, 50 * WAD)
                    book.apply_trade(account, counterparty, id, size)
            boa.env.time_travel(seconds=1)  # curves must be newer than the fixture's
            price = int(2_000 * WAD * rng.uniform(0.3, 3.0)) // 10**10 * 10**10
            curves = {}
            for expiry in (opt.expiry, opt.far):
                curve = (
                    rng.randint(MIN_VOL, MAX_VOL // 2),
                    rng.randint(-MAX_SKEW, MAX_SKEW) // 4,
                    rng.randint(0, MAX_CURVATURE) // 4,
                    int(price * rng.uniform(0.8, 1.2)),
                )
                if rng.random() < 0.9:  # else: no curve for this expiry (vol 0)
                    opt.publish(ETH, expiry, curve[0], curve[3], skew=curve[1], curvature=curve[2])
                    curves[expiry] = curve
            step = rng.choice((0, 3_000, 2 * 86_400, 6 * 86_400, 8 * 86_400))
            boa.env.time_travel(seconds=step)
            opt.s.feeds[ETH].set_price(price // 10**10)
            now = boa.env.evm.patch.timestamp
            settled = {}
            if now >= opt.expiry and rng.random() < 0.5:
                book.record_settlement(ETH, opt.expiry)
                settled[opt.expiry] = price
                expired += 1
            trade = (False, 0, 0, 0, 0, 0, 0)
            trade_id, trade_size = 0, 0
            if rng.random() < 0.3:
                trade_id = rng.choice(sorted(ids))
                trade_size = rng.choice((-1, 1)) * rng.randint(1, 20 * WAD)
                trade = (True, OPTION_TRADE, trade_id, trade_size % 2**256, 0, 0, 0)
                hypothetical += 1
            for liq in (False, True):
                value_num = rng.randint(-(10**30), 10**30)
                floor_num = rng.randint(0, 10**30)
                linear = [rng.randint(-(10**30), 10**30) for _ in shocks]
                got = book.option_margin(account, liq, trade, value_num, floor_num, linear, True)
                f = opt.s.funding.liquidation_price(ETH) if liq else engine.price(ETH)[0]
                f_ok = engine.price(ETH)[1]
                legs = []
                sizes = {id: book.size(account, id) for id in ids}
                if trade_id:
                    sizes[trade_id] += trade_size
                for id, s in sizes.items():
                    if s == 0:
                        continue
                    expiry, strike, is_call = ids[id]
                    vol, vol_ok = opt.feed.vol(ETH, expiry, strike)
                    if expiry in curves and expiry > now:
                        atm, skew, curvature, forward = curves[expiry]
                        want_vol = curve_vol(atm, skew, curvature, forward, strike) or 0
                        assert vol == want_vol
                    legs.append(
                        OptionLeg(
                            size=s,
                            expiry=expiry,
                            strike=strike,
                            is_call=is_call,
                            forward=f,
                            price_ok=f_ok,
                            vol=vol,
                            vol_ok=vol_ok,
                            settlement=settled.get(expiry, 0),
                            shocks=shocks,
                            vol_shock=VOL_SHOCK,
                            short_min_bps=SHORT_MIN_BPS,
                        )
                    )
                want = option_margin_exact(legs, now, liq, value_num, floor_num, linear, True)
                assert tuple(got) == want, (n, liq)
                compared += 1
            if trade_id:
                continue
            # A liquidation slice: the valuation after it and the legs it moves.
            fraction = rng.choice((WAD, rng.randint(1, WAD)))
            cut = (True, NO_ASSET, 0, 0, 0, fraction, 0)
            got = book.option_margin(account, True, cut, value_num, floor_num, linear, True)
            want = option_margin_exact(
                legs, now, True, value_num, floor_num, linear, True, fraction
            )
            assert tuple(got) == want, (n, fraction)
            flow, moved = option_slice_exact(legs, now, fraction)
            held = {id: book.size(account, id) for id in ids}
            with boa.env.prank(engine.address):
                got_flow, *_ = book.liquidate_legs(account, liquidator, fraction)
            assert got_flow == flow, n
            for leg_moved, (id, s) in zip(
                moved, [(i, s) for i, s in held.items() if s], strict=True
            ):
                assert book.size(account, id) == s - leg_moved
                assert book.size(liquidator, id) == leg_moved
            sliced += 1
    assert compared == 2 * BOOKS and expired > 0 and hypothetical > 0 and sliced > BOOKS // 2
    assert WAD_BPS == 10**22
