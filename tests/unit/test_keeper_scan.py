"""The scanner's float twin flags every account the exact twin finds liquidatable."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.scanner import Market, float_margin, funding_index, unpack_shocks
from offchain_risk.keeper.store import AccountEvent, FundingEvent, SettledEvent
from offchain_risk.models.funding import index_at, owed_exact
from offchain_risk.models.margin import RiskParams, margin_exact, pack_shocks, pad_scenarios
from offchain_risk.units import WAD

PARAMS = RiskParams(
    floor_bps=np.array([m.floor_bps for m in devnet.MARKETS]),
    haircut_bps=np.array([m.haircut_bps for m in devnet.MARKETS]),
    shocks_bps=pad_scenarios(devnet.DEFAULT_SHOCKS_BPS),
    im_multiplier_wad=3 * WAD // 2,
)


def test_unpack_shocks__inverse_of_pack():
    rows = pad_scenarios(devnet.DEFAULT_SHOCKS_BPS)
    for row, word in zip(rows, pack_shocks(rows), strict=True):
        assert unpack_shocks(word) == [int(x) for x in row]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float_margin__agrees_with_exact_twin_and_flags_every_liquidatable(seed):
    rng = np.random.default_rng(seed)
    n, a = 400, 4
    prices = [int(p * WAD) for p in rng.uniform(10, 70_000, a)]
    coll = np.zeros((n, a), dtype=object)
    size = np.zeros((n, a), dtype=object)
    on = np.zeros((n, a), dtype=object)
    cash = np.zeros(n, dtype=object)
    book = Book(a)
    for i in range(n):
        cash[i] = int(rng.integers(-(10**6), 10**6)) * WAD + int(rng.integers(0, WAD))
        book.apply(AccountEvent(1, i, i + 1, -1, int(cash[i]), 0, 0, 0))
        for j in range(a):
            c = int(rng.integers(0, 50)) * WAD // 7 if j < 2 else 0
            s = int(rng.integers(-100, 100)) * WAD // 3
            o = -s * prices[j] // WAD + int(rng.integers(-(10**4), 10**4)) * WAD
            coll[i, j], size[i, j], on[i, j] = c, s, o
            book.apply(AccountEvent(1, i, i + 1, j, int(cash[i]), c, s, o))
    exact = margin_exact(cash, coll, size, on, np.array(prices, dtype=object), PARAMS)
    market = Market(np.array(prices, dtype=object), np.ones(a, dtype=bool), PARAMS)
    equity, mm = float_margin(book, market)
    e_exact = np.array([int(x) for x in exact.equity], dtype=np.float64) / WAD
    mm_exact = np.array([int(x) for x in exact.mm], dtype=np.float64) / WAD
    np.testing.assert_allclose(equity, e_exact, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(mm, mm_exact, rtol=1e-9, atol=1e-6)
    live = np.array([int(e) < int(m) for e, m in zip(exact.equity, exact.mm, strict=True)])
    assert live.any() and not live.all()
    flagged = equity < mm + 1e-9 * (np.abs(equity) + mm) + 1e-9
    assert np.all(flagged[live])  # no liquidatable account is missed


@pytest.mark.parametrize("seed", [0, 1])
def test_float_margin__with_funding__agrees_with_exact_twin_less_owed(seed):
    rng = np.random.default_rng(seed)
    n, a, now = 300, 4, 1_700_000_000
    prices = [int(p * WAD) for p in rng.uniform(10, 70_000, a)]
    market = Market(np.array(prices, dtype=object), np.ones(a, dtype=bool), PARAMS, timestamp=now)
    book = Book(a)
    book.set_funding(
        [
            FundingEvent(
                1,
                m,
                m,
                int(rng.integers(-(10**16), 10**16)),
                int(rng.integers(-(10**6), 10**6)) * 10**15,
                now - int(rng.integers(0, 86_400)),
            )
            for m in range(a)
        ]
    )
    cash = np.zeros(n, dtype=object)
    coll, size, on, snaps = (np.zeros((n, a), dtype=object) for _ in range(4))
    for i in range(n):
        cash[i] = int(rng.integers(-(10**5), 10**5)) * WAD
        book.apply(AccountEvent(2, i, i + 1, -1, int(cash[i]), 0, 0, 0))
        for j in range(a):
            s = int(rng.integers(-100, 100)) * WAD // 3
            o = -s * prices[j] // WAD
            size[i, j], on[i, j] = s, o
            book.apply(AccountEvent(2, i, i + 1, j, int(cash[i]), 0, s, o))
            snaps[i, j] = int(rng.integers(-(10**6), 10**6)) * 10**15
            book.apply_settled(SettledEvent(3, i, i + 1, j, 0, int(snaps[i, j])))
    index = funding_index(book, market)
    assert [int(x) for x in index] == [index_at(book.funding[m], prices[m], now) for m in range(a)]
    owed = owed_exact(size, snaps, index)
    assert any(int(x) != 0 for x in owed)
    exact = margin_exact(cash, coll, size, on, market.prices_wad, PARAMS).equity - owed
    equity, _ = float_margin(book, market)
    e_exact = np.array([int(x) for x in exact], dtype=np.float64) / WAD
    np.testing.assert_allclose(equity, e_exact, rtol=1e-9, atol=1e-6)
