"""The scanner's float twin flags every account the exact twin finds liquidatable."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.keeper import scanner
from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.scanner import (
    Market,
    Scanner,
    float_margin,
    funding_index,
    unpack_shocks,
)
from offchain_risk.keeper.store import AccountEvent, FundingEvent, SettledEvent
from offchain_risk.keeper.workers import Partition
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


@pytest.mark.parametrize(("seed", "chunk"), [(0, scanner.CHUNK), (1, scanner.CHUNK), (2, 64)])
def test_float_margin__agrees_with_exact_twin_and_flags_every_liquidatable(
    seed, chunk, monkeypatch
):
    """Chunk 64: 400 accounts in six full passes and a partial one."""
    monkeypatch.setattr(scanner, "CHUNK", chunk)
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


@pytest.mark.parametrize(("seed", "chunk"), [(0, scanner.CHUNK), (1, 7)])
def test_float_margin__with_funding__agrees_with_exact_twin_less_owed(seed, chunk, monkeypatch):
    monkeypatch.setattr(scanner, "CHUNK", chunk)  # 7: many passes, each at its own offset
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


def _book(rng, n: int, a: int = 4) -> Book:
    book = Book(a)
    for i in range(n):
        cash = int(rng.integers(-(10**5), 10**6)) * WAD
        for j in range(a):
            s = int(rng.integers(-100, 100)) * WAD // 3
            book.apply(AccountEvent(1, i, 7 + 3 * i, j, cash, int(rng.integers(0, 9)) * WAD, s, 0))
    return book


def _reference(book: Book, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """The float twin written out directly: every scenario column, no buffers."""
    cash, coll, size, on = book.view()
    p = np.array([int(x) for x in market.prices_wad], dtype=np.float64) / WAD
    keep = 1 - market.params.haircut_bps * 1e-4
    equity = cash - on.sum(axis=1) + (coll * keep + size) @ p
    losses = ((coll + size) * p) @ (market.params.shocks_bps * -1e-4)
    floor = ((coll + np.abs(size)) * p) @ (market.params.floor_bps * 1e-4)
    return equity, np.maximum(np.maximum(losses.max(axis=1), floor), 0.0)


@pytest.mark.parametrize("shocks", ["listing", "zero", "repeated"])
def test_float_margin__scenarios_zero_or_repeated__same_as_every_column(shocks, monkeypatch):
    """Only distinct non-zero scenarios are evaluated: a listing without shocks (MM is the
    floor) and one with every scenario repeated give the full computation's answer."""
    monkeypatch.setattr(scanner, "CHUNK", 50)
    rng = np.random.default_rng(5)
    book = _book(rng, 333)
    base = pad_scenarios(devnet.DEFAULT_SHOCKS_BPS)
    rows = {
        "listing": base,
        "zero": np.zeros_like(base),
        "repeated": np.concatenate([base[:, :8], base[:, :8]], axis=1),
    }[shocks]
    params = RiskParams(PARAMS.floor_bps, PARAMS.haircut_bps, rows, PARAMS.im_multiplier_wad)
    prices = np.array([int(p * WAD) for p in rng.uniform(10, 5_000, 4)], dtype=object)
    market = Market(prices, np.ones(4, dtype=bool), params)
    equity, mm = float_margin(book, market, scanner.ScanBuffers())
    ref_e, ref_mm = _reference(book, market)
    np.testing.assert_allclose(equity, ref_e, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(mm, ref_mm, rtol=1e-12, atol=1e-9)
    if shocks == "zero":
        floor = ((book.view()[1] + np.abs(book.view()[2])) * (prices.astype(float) / WAD)) @ (
            PARAMS.floor_bps * 1e-4
        )
        np.testing.assert_allclose(mm, floor, rtol=1e-12)


def test_flag__buffers_reused_as_the_book_changes_and_grows__same_as_a_fresh_scanner(
    monkeypatch,
):
    """One scanner across blocks (its buffers and partition masks kept) flags what a new
    scanner flags after balances change and accounts are added; the partitions of a block
    cover its flagged accounts once, and the unpriced and failed assets' counts add up."""
    monkeypatch.setattr(scanner, "CHUNK", 64)
    rng = np.random.default_rng(9)
    book = _book(rng, 300)
    prices = np.array([int(p * WAD) for p in (1_400, 30_000, 1, 150)], dtype=object)
    market = Market(prices, np.ones(4, dtype=bool), PARAMS)
    kept = Scanner(None, book)

    def check(m: Market) -> list[int]:
        got = kept.flag(m)
        assert got == Scanner(None, book).flag(m)
        parts = [kept.flag(m, Partition(k, 3)) for k in range(3)]
        assert sorted(a for f, _, _ in parts for a in f) == sorted(got[0])
        assert sum(b for _, b, _ in parts) == got[1] and sum(x for *_, x in parts) == got[2]
        return got[0]

    first = check(market)
    assert 0 < len(first) < len(book)
    e, mm = _reference(book, market)
    live = e < mm
    assert set(first) >= {book.accounts[r] for r in np.flatnonzero(live)}
    # A flagged account is made whole, another one sinks, and 200 accounts arrive.
    healed, sunk = first[0], next(a for a in book.accounts if a not in first)
    book.apply(AccountEvent(2, 0, healed, -1, 10**12 * WAD, 0, 0, 0))
    book.apply(AccountEvent(2, 1, sunk, -1, -(10**9) * WAD, 0, 0, 0))
    for i in range(200):
        book.apply(AccountEvent(2, 2 + i, 10**6 + i, 0, 0, 0, WAD, 5_000 * WAD))
    second = check(market)
    assert healed not in second and sunk in second
    assert {10**6 + i for i in range(200)} <= set(second)  # bought at 5,000, now 1,400
    # A perp asset without a price blocks; a failed asset excludes.
    unpriced = Market(prices, np.array([True, False, True, True]), PARAMS)
    check(unpriced)
    assert kept.flag(unpriced)[1] > 0
    failed = Market(prices, np.array([True, True, True, False]), PARAMS, {3: "reverted"})
    assert kept.flag(failed)[2] > 0
    check(failed)
