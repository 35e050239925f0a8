"""OptionBook against its twin (offchain_risk.models.options) on random option books, to
the wei.

Each book: random legs (calls and puts, long and short, over two expiries and strikes from
deep in to deep out of the money) written through `apply_trade` as the engine, a random
ETH price and vol curve per expiry, random time before (or after) expiry, random linear
numerators from the engine, strict and liquidation valuations, and sometimes a trade being
checked (the OPTION_TRADE override) or a liquidation slice's fraction.

`option_margin` is compared on revm (revm_env: a valuation is a few hundred thousand gas,
which titanoboa's interpreter takes seconds over); `liquidate_legs`, which the engine calls
and which calls the engine back, in titanoboa, whose prank lets a contract send.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import boa
import pytest
from option_stack import ETH, SHORT_MIN_BPS, VOL_SHOCK, WAD, Options
from revm_env import RevmEnv

from offchain_risk.chain import settlement_round
from offchain_risk.keeper.vol_signer import MAX_CURVATURE, MAX_SKEW, curve_vol
from offchain_risk.models.options import OptionLeg, option_margin_exact, option_slice_exact
from offchain_risk.units import (
    MAX_VOL,
    MIN_VOL,
    NO_ASSET,
    OPTION_TRADE,
    WAD_BPS,
    read_shocks,
)

BOOKS = int(os.environ.get("OPTION_TWIN_BOOKS", "200"))
SLICED_BOOKS = int(os.environ.get("OPTION_SLICE_BOOKS", "30"))
STRIKES = [x * 100 * WAD for x in (5, 12, 16, 19, 20, 21, 24, 30, 60)]


@dataclass
class Book:
    """One random book as the contract holds it, and what its twin needs to value it."""

    n: int
    account: int
    now: int
    sizes: dict[int, int]  # instrument id -> signed size, the trade being checked included
    trade: tuple  # the Override passed to option_margin
    vols: dict[int, tuple[int, bool]]  # id -> VolFeed.vol
    settled: dict[int, int]  # expiry -> settlement price

    def legs(self, opt: Options, ids: dict, shocks: tuple, liq: bool) -> list[OptionLeg]:
        engine = opt.s.engine
        price, f_ok = engine.price(ETH)
        f = opt.s.funding.liquidation_price(ETH) if liq else price
        out = []
        for id, s in self.sizes.items():
            if s == 0:
                continue
            expiry, strike, is_call = ids[id]
            vol, vol_ok = self.vols[id]
            out.append(
                OptionLeg(
                    size=s,
                    expiry=expiry,
                    strike=strike,
                    is_call=is_call,
                    forward=f,
                    price_ok=f_ok,
                    vol=vol,
                    vol_ok=vol_ok,
                    settlement=self.settled.get(expiry, 0),
                    shocks=shocks,
                    vol_shock=VOL_SHOCK,
                    short_min_bps=SHORT_MIN_BPS,
                )
            )
        return out


def _instruments(opt: Options) -> dict[int, tuple[int, int, bool]]:
    """Every (expiry, strike, kind) of the test grid, listed: id -> (expiry, strike, call)."""
    ids = {}
    for expiry in (opt.expiry, opt.far):
        for strike in STRIKES:
            for is_call in (True, False):
                id = opt.book.instrument_id(ETH, expiry, strike, is_call)
                if not opt.book.listed(id):
                    opt.book.list_option(ETH, expiry, strike, is_call)
                ids[id] = (expiry, strike, is_call)
    return ids


def _books(opt: Options, ids: dict, count: int, seed: int) -> Iterator[Book]:
    """`count` random books, each built inside its own snapshot and yielded there."""
    rng = random.Random(seed)
    book, engine, chain = opt.book, opt.s.engine, opt.chain
    counterparty = opt.s.account(opt.s.actor("counterparty"), 0)
    for n in range(count):
        with chain.anchor():
            account = opt.s.account(opt.maker, 100 + n)
            with chain.prank(engine.address):
                for id in rng.sample(sorted(ids), rng.randint(1, 8)):
                    size = rng.choice((-1, 1)) * rng.randint(1, 50 * WAD)
                    book.apply_trade(account, counterparty, id, size, sender=engine.address)
            chain.time_travel(1)  # curves must be newer than the fixture's
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
            chain.time_travel(rng.choice((0, 3_000, 2 * 86_400, 6 * 86_400, 8 * 86_400)))
            opt.s.feeds[ETH].set_price(price // 10**10)
            now = chain.timestamp
            settled = {}
            if now >= opt.expiry and rng.random() < 0.5:
                feed = opt.s.feeds[ETH]
                book.record_settlement(ETH, opt.expiry, settlement_round(feed, opt.expiry))
                settled[opt.expiry] = price
            trade = (False, 0, 0, 0, 0, 0, 0)
            sizes = {id: book.size(account, id) for id in book.account_legs(account)}
            if rng.random() < 0.3:
                trade_id = rng.choice(sorted(ids))
                trade_size = rng.choice((-1, 1)) * rng.randint(1, 20 * WAD)
                trade = (True, OPTION_TRADE, trade_id, trade_size % 2**256, 0, 0, 0)
                sizes[trade_id] = sizes.get(trade_id, 0) + trade_size
            vols = {id: opt.feed.vol(ETH, ids[id][0], ids[id][1]) for id in sizes}
            for id, (vol, _) in vols.items():
                expiry, strike, _ = ids[id]
                if expiry in curves and expiry > now:
                    atm, skew, curvature, forward = curves[expiry]
                    assert vol == (curve_vol(atm, skew, curvature, forward, strike) or 0)
            yield Book(n, account, now, sizes, trade, vols, settled)


def _k32(row: list[int]) -> list[int]:
    """A K = 32 row from a K = 16 one: the second word mirrors the first at 70% and holds
    the set's lowest and highest shocks (the anchors come from the second word)."""
    second = [-x * 7 // 10 for x in row[:16]]
    second[3], second[11] = min(row) - 700, max(row) + 900
    return row[:16] + second


@pytest.mark.parametrize("k", [16, 32])
def test_option_margin__random_books__equal_twin_to_the_wei(k):
    opt = Options(RevmEnv(timestamp=1_767_225_600))  # 2026-01-01
    if k == 32:
        opt.s.admin.set_shocks(ETH, _k32(read_shocks(opt.s.engine, ETH)))
    ids = _instruments(opt)
    shocks = tuple(read_shocks(opt.s.engine, ETH))
    assert any(shocks[16:]) == (k == 32)
    rng = random.Random(19)
    compared = expired = hypothetical = cut = 0
    for b in _books(opt, ids, BOOKS, seed=1919):
        expired += bool(b.settled)
        hypothetical += b.trade[0]
        for liq in (False, True):
            value_num = rng.randint(-(10**30), 10**30)
            floor_num = rng.randint(0, 10**30)
            linear = [rng.randint(-(10**30), 10**30) for _ in shocks]
            args = (value_num, floor_num, linear, True)
            got = opt.book.option_margin(b.account, liq, b.trade, *args)
            want = option_margin_exact(b.legs(opt, ids, shocks, liq), b.now, liq, *args)
            assert tuple(got) == want, (b.n, liq)
            compared += 1
        if not b.trade[0]:
            # The valuation after a liquidation slice of a random (or the whole) fraction.
            fraction = rng.choice((WAD, rng.randint(1, WAD)))
            slice_ = (True, NO_ASSET, 0, 0, 0, fraction, 0)
            got = opt.book.option_margin(b.account, True, slice_, *args)
            legs = b.legs(opt, ids, shocks, True)
            assert tuple(got) == option_margin_exact(legs, b.now, True, *args, fraction), b.n
            # the slice's cash, as liquidate_legs pays it (the preview's part of the cost)
            assert got[3] == option_slice_exact(legs, b.now, fraction)[0], b.n
            cut += 1
    assert compared == 2 * BOOKS and expired > 0 and hypothetical > 0 and cut > BOOKS // 2
    assert WAD_BPS == 10**22


@pytest.fixture(scope="module")
def boa_opt(devnet_stack):
    with boa.env.anchor():
        yield Options(stack=devnet_stack)


def test_liquidate_legs__random_books__equal_twin_to_the_wei(boa_opt):
    opt = boa_opt
    ids = _instruments(opt)
    shocks = tuple(read_shocks(opt.s.engine, ETH))
    liquidator = opt.s.account(opt.s.actor("liquidator"), 0)
    rng = random.Random(29)
    sliced = 0
    for b in _books(opt, ids, SLICED_BOOKS, seed=2929):
        if b.trade[0]:
            continue
        legs = b.legs(opt, ids, shocks, True)
        fraction = rng.choice((WAD, rng.randint(1, WAD)))
        flow, moved = option_slice_exact(legs, b.now, fraction)
        with boa.env.prank(opt.s.engine.address):
            got_flow, *_ = opt.book.liquidate_legs(b.account, liquidator, fraction)
        assert got_flow == flow, b.n
        held = [(id, s) for id, s in b.sizes.items() if s]
        for leg_moved, (id, s) in zip(moved, held, strict=True):
            assert opt.book.size(b.account, id) == s - leg_moved
            assert opt.book.size(liquidator, id) == leg_moved
        sliced += 1
    assert sliced > SLICED_BOOKS // 2
