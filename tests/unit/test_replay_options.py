"""The replay's option books: the strike grid, the books drawn, the expiry picked."""

from __future__ import annotations

import pytest

from offchain_risk.backtest.options import ARCHETYPES
from offchain_risk.replay.options import (
    generate_option_books,
    nearest_expiry,
    option_grid,
    strike_step,
)
from offchain_risk.units import DAY, WAD


@pytest.mark.parametrize(
    "price, step",
    [(4.3, 0.02), (50, 0.5), (130, 1.0), (199, 1.0), (2_000, 20.0), (8_000, 50.0), (48_000, 200)],
)
def test_strike_step__one_two_five_nearest_below_one_percent(price, step):
    assert strike_step(price) == pytest.approx(step)
    assert strike_step(price) <= price / 100 < 2.5 * strike_step(price)


@pytest.mark.parametrize("price", [0, -1, float("nan"), float("inf")])
def test_strike_step__bad_price__refused(price):
    with pytest.raises(ValueError, match="positive and finite"):
        strike_step(price)


def test_option_grid__in_chain_units():
    grid = option_grid("ETH", 130)
    assert (grid.symbol, grid.strike_step, grid.vol_shock, grid.short_min_bps) == (
        "ETH",
        WAD,
        15 * WAD // 100,
        50,
    )


def test_generate_option_books__every_archetype_on_every_underlying_deterministic():
    prices = {"BTC": 8_000.0, "ETH": 200.0}
    books = generate_option_books(16, ("BTC", "ETH"), prices, 5, first_sub=7)
    assert books == generate_option_books(16, ("BTC", "ETH"), prices, 5, first_sub=7)
    pairs = [(b.archetype, b.underlying) for b in books]
    assert set(pairs) == {(a, u) for a in ARCHETYPES for u in prices}
    assert all(pairs.count(p) == 2 for p in set(pairs))
    # sub-accounts from first_sub on, one book per (trader, sub)
    assert min(b.sub for b in books) == 7
    assert len({(b.trader, b.sub) for b in books}) == 16
    notional = [b.units * prices[b.underlying] for b in books]
    assert all(2_000 <= x <= 250_000 for x in notional)
    assert all(0.05 <= b.buffer <= 2.0 for b in books)


@pytest.mark.parametrize(
    "args, message",
    [
        ((4, (), {}, 2), "need an underlying"),
        ((4, ("BTC",), {"BTC": 0.0}, 2), "no opening price"),
        ((4, ("SOL",), {"BTC": 1.0}, 2), "no opening price"),
        ((-1, ("BTC",), {"BTC": 1.0}, 2), "n >= 0"),
        ((4, ("BTC",), {"BTC": 1.0}, 0), "at least one trader"),
    ],
)
def test_generate_option_books__bad_input__refused(args, message):
    with pytest.raises(ValueError, match=message):
        generate_option_books(*args, first_sub=1)


def test_nearest_expiry__closest_to_thirty_days_among_the_live_ones():
    now = 1_700_000_000
    published = [now - DAY, now + DAY, now + 7 * DAY, now + 29 * DAY + 3_600, now + 90 * DAY]
    assert nearest_expiry(published, now) == now + 29 * DAY + 3_600
    assert nearest_expiry(published[:3], now) == now + 7 * DAY
    with pytest.raises(ValueError, match="no live expiry"):
        nearest_expiry([now - DAY, now], now)
