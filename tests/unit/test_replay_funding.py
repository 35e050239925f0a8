"""The replay's funding section from a keeper's index: sides, unsettled funding, dust."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.scanner import Market
from offchain_risk.keeper.store import AccountEvent, FundingEvent, SettledEvent, Store
from offchain_risk.models.margin import RiskParams, pad_scenarios
from offchain_risk.replay.funding import funding_flows, funding_lines
from offchain_risk.units import WAD

N = len(devnet.MARKETS)
PARAMS = RiskParams(
    floor_bps=np.array([m.floor_bps for m in devnet.MARKETS]),
    haircut_bps=np.array([m.haircut_bps for m in devnet.MARKETS]),
    shocks_bps=pad_scenarios(devnet.DEFAULT_SHOCKS_BPS),
    im_multiplier_wad=3 * WAD // 2,
)
T0 = 1_700_000_000
PRICE = 2_000 * WAD
RATE = WAD // 10_000  # 0.01% per hour: 0.2 USD per ETH per hour at 2,000


def _replayed() -> tuple[Store, Book]:
    """Account 1 long 3 ETH, account 2 short 3 ETH, both from T0 at index 0. At T0 + 1 h
    (index 0.2) account 1 sells one ETH to account 3 (each settles: the long pays 0.6,
    the short settles nothing yet; 3 opens at the index). At the end, T0 + 2 h (index 0.4),
    nothing else is settled."""
    store, book = Store(), Book(N)
    accounts = [
        AccountEvent(1, 0, 1, 0, 0, 0, 3 * WAD, -6_000 * WAD),
        AccountEvent(1, 1, 2, 0, 0, 0, -3 * WAD, 6_000 * WAD),
        AccountEvent(2, 2, 1, 0, -WAD * 6 // 10, 0, 2 * WAD, -4_000 * WAD),
        AccountEvent(2, 3, 3, 0, 0, 0, WAD, -2_000 * WAD),
    ]
    funding = [FundingEvent(1, 5, 0, RATE, 0, T0), FundingEvent(2, 0, 0, RATE, WAD // 5, T0 + 3600)]
    settled = [
        SettledEvent(2, 1, 1, 0, 6 * WAD // 10, WAD // 5),
        SettledEvent(2, 4, 3, 0, 0, WAD // 5),
    ]
    store.commit_range(0, accounts, {}, 2, funding, settled)
    for e in accounts:
        book.apply(e)
    for s in settled:
        book.apply_settled(s)
    book.set_funding(store.funding_words())
    return store, book


def test_funding_flows__sides_settled_and_unsettled__paid_equals_received():
    store, book = _replayed()
    market = Market(
        np.array([PRICE] + [WAD] * (N - 1), dtype=object),
        np.ones(N, dtype=bool),
        PARAMS,
        timestamp=T0 + 7200,
    )
    [eth] = funding_flows(store, book, market, {"ETH": 0})
    # longs: 0.6 settled + 2 x 0.2 (account 1) + 1 x 0.2 (account 3); shorts: -3 x 0.4
    assert eth.longs_paid == 12 * WAD // 10 and eth.shorts_paid == -12 * WAD // 10
    assert eth.dust == 0 and eth.roundings == 4
    assert eth.rates == (RATE, RATE) and eth.index_end == 2 * WAD // 5
    lines = "\n".join(funding_lines([("Ballast", (eth,)), ("flat 6.5%", ())]))
    assert "## Funding" in lines and "| ETH | $1.20 | $-1.20 | 0 wei (<= 4) |" in lines
    assert "No market's funding moved." in lines


def test_funding_flows__market_without_its_time__refused():
    store, book = _replayed()
    market = Market(np.array([PRICE] * N, dtype=object), np.ones(N, dtype=bool), PARAMS)
    with pytest.raises(ValueError, match="block's timestamp"):
        funding_flows(store, book, market, {"ETH": 0})
