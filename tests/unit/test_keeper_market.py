"""Per-asset failure tolerance of the market read, and the exact twin's decisions.

A scripted JSON-RPC endpoint answers the engine's and the lens's calls from the committed
ABIs: one asset's reads can fail (an error answer, bytes that do not decode, values out of
the engine's ranges) while the others answer as the chain would.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eth_abi import encode
from web3 import Web3

from offchain_risk import devnet
from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.rpc import Contracts, RpcError
from offchain_risk.keeper.scanner import Scanner, float_margin, read_market
from offchain_risk.keeper.store import AccountEvent, FundingEvent, LegEvent, SettledEvent
from offchain_risk.models.liquidation import is_liquidatable
from offchain_risk.models.margin import margin_exact, pack_shocks, pad_scenarios
from offchain_risk.units import WAD

ABI = Path(__file__).resolve().parents[2] / "integration" / "abi"
ENGINE = "0x" + "11" * 20
LENS = "0x" + "22" * 20
SHOCKS = pad_scenarios(devnet.DEFAULT_SHOCKS_BPS)
N = len(devnet.MARKETS)


def _abi(name: str) -> list[dict]:
    data = json.loads((ABI / f"{name}.json").read_text())
    return data["abi"] if isinstance(data, dict) else data


class Endpoint:
    """Answers eth_call like the engine and lens of a devnet listing; ``fail`` maps
    (function, asset) to the answer to give instead: an error dict or raw bytes."""

    def __init__(self, prices: list[int]):
        w3 = Web3()
        self.engine = w3.eth.contract(
            address=Web3.to_checksum_address(ENGINE), abi=_abi("MarginEngine")
        )
        self.lens = w3.eth.contract(address=Web3.to_checksum_address(LENS), abi=_abi("Lens"))
        self.prices = prices
        self.fail: dict[tuple[str, int], object] = {}
        self.words = pack_shocks(SHOCKS)
        self.timestamp = 1_700_000_000  # the block's time
        self.margins: dict[int, tuple[int, int]] = {}  # account -> the chain's (equity, MM)
        self.asked: list[int] = []  # accounts ``healths`` was asked about

    def _answer(self, call: dict | str) -> dict:
        if not isinstance(call, dict):  # eth_getBlockByNumber(tag, False)
            return {"result": {"number": "0x1", "timestamp": hex(self.timestamp)}}
        to, data = call["to"].lower(), bytes.fromhex(call["data"][2:])
        contract = self.engine if to == ENGINE else self.lens
        fn, args = contract.decode_function_input(data)
        name = fn.fn_name
        first = next(iter(args.values()), -1)
        asset = int(first) if isinstance(first, int) else -1
        bad = self.fail.get((name, asset))
        if isinstance(bad, dict):
            return {"error": bad}
        if isinstance(bad, bytes):
            return {"result": "0x" + bad.hex()}
        if name == "healths":
            self.asked += args["accounts"]
            rows = [(*self.margins[a], 0, True, 0, False) for a in args["accounts"]]
            out = encode(["(int256,uint256,uint256,bool,int256,bool)[]"], [rows])
        elif name == "num_assets":
            out = encode(["uint256"], [N])
        elif name == "im_multiplier":
            out = encode(["uint256"], [3 * WAD // 2])
        elif name == "liquidation_price":
            out = encode(["uint256"], [self.prices[asset]])
        elif name == "shock_word":
            out = encode(["uint256"], [self.words[asset][int(args["arg1"])]])
        elif name == "asset_config":
            m = devnet.MARKETS[asset]
            cfg = (LENS, LENS, 3600, 8, m.floor_bps, m.haircut_bps, True, 0, 0)
            out = encode(
                ["(address,address,uint256,uint256,uint256,uint256,bool,uint256,uint256)"], [cfg]
            )
        else:
            raise AssertionError(name)
        return {"result": "0x" + out.hex()}

    # the provider interface rpc_batch uses
    def make_batch_request(self, requests):
        return [{"id": i, **self._answer(params[0])} for i, (_, params) in enumerate(requests)]

    def make_request(self, method, params):
        return self._answer(params[0])


def _contracts(endpoint: Endpoint) -> Contracts:
    w3 = type("W3", (), {"provider": endpoint})()
    return Contracts(w3, endpoint.engine, None, endpoint.lens)


PRICES = [2_000 * WAD, 40_000 * WAD, 300 * WAD, 15 * WAD][:N]


def test_read_market__every_asset_answers__all_priced():
    market = read_market(_contracts(Endpoint(PRICES)))
    assert market.failed == {}
    assert market.price_ok.all()
    assert [int(p) for p in market.prices_wad] == PRICES
    assert market.params.shocks_bps.tolist() == SHOCKS.tolist()


@pytest.mark.parametrize(
    "fail",
    [
        ("liquidation_price", {"code": -32000, "message": "execution reverted"}),
        ("asset_config", {"code": 3, "message": "execution reverted: lens: asset not listed"}),
        ("asset_config", b"\x01\x02"),  # does not decode
        ("liquidation_price", encode(["uint256"], [2**200])),  # above the engine's MAX_PRICE
        ("shock_word", encode(["uint256"], [2**255])),  # a shock of -32768 bps
    ],
    ids=["price reverts", "lens reverts", "garbage", "price out of range", "shock out of range"],
)
def test_read_market__one_asset_fails__only_that_asset_marked(fail):
    endpoint = Endpoint(PRICES)
    endpoint.fail[(fail[0], 1)] = fail[1]
    market = read_market(_contracts(endpoint))
    assert list(market.failed) == [1]
    assert market.price_ok.tolist() == [a != 1 for a in range(N)]
    assert int(market.prices_wad[0]) == PRICES[0] and int(market.prices_wad[2]) == PRICES[2]
    assert market.params.shocks_bps[0].tolist() == SHOCKS[0].tolist()


def test_read_market__num_assets_fails__raises():
    endpoint = Endpoint(PRICES)
    endpoint.fail[("num_assets", -1)] = {"code": -32000, "message": "boom"}
    with pytest.raises(RpcError):
        read_market(_contracts(endpoint))


def _book(rows: list[tuple[int, dict[int, tuple[int, int, int]]]]) -> Book:
    book = Book(N)
    for i, (cash, assets) in enumerate(rows):
        account = 100 + i
        book.apply(AccountEvent(1, 10 * i, account, -1, cash, 0, 0, 0))
        for j, (asset, (c, s, o)) in enumerate(assets.items()):
            book.apply(AccountEvent(1, 10 * i + 1 + j, account, asset, cash, c, s, o))
    return book


# Long 1 ETH bought at 2,500 (ETH now 2,000): E = cash - 500; MM = 2,000 x the worst shock.
LONG_ETH = {0: (0, WAD, 2_500 * WAD)}


def test_scan__asset_reads_fail__exposed_accounts_left_out_others_decided():
    endpoint = Endpoint(PRICES)
    endpoint.fail[("liquidation_price", 1)] = {"code": -32000, "message": "execution reverted"}
    c = _contracts(endpoint)
    rows = [
        (600 * WAD, LONG_ETH),  # liquidatable, ETH only
        (600 * WAD, {**LONG_ETH, 1: (WAD // 100, 0, 0)}),  # liquidatable, WBTC collateral too
        (600 * WAD, {**LONG_ETH, 2: (0, -WAD, -300 * WAD)}),  # liquidatable, a perp on asset 2
        (100_000 * WAD, LONG_ETH),  # healthy
    ]
    book = _book(rows)
    scanner = Scanner(c, book)
    result, market = scanner.scan()
    assert market.failed.keys() == {1}
    assert result.excluded == 1  # the WBTC holder: its equity is unknown this block
    assert {x.account for x in result.confirmed} == {100, 102}
    assert result.failed_assets == (1,)
    assert result.on_chain == 0  # the twins decided every flagged account


def test_decide__dead_price__collateral_at_zero_perp_blocked_as_the_chain_counts():
    prices = list(PRICES)
    prices[2] = 0  # no valid feed and no fallback
    c = _contracts(Endpoint(prices))
    rows = [
        (600 * WAD, {**LONG_ETH, 2: (5 * WAD, 0, 0)}),  # collateral at zero: still liquidatable
        (600 * WAD, {**LONG_ETH, 2: (0, -WAD, -300 * WAD)}),  # perp on a dead price: blocked
        (3_000 * WAD, {**LONG_ETH, 2: (5 * WAD, 0, 0)}),  # healthy without the collateral
    ]
    book = _book(rows)
    scanner = Scanner(c, book)
    result, market = scanner.scan(confirm="exact")
    assert result.unpriced_assets == (2,)
    assert result.blocked == 1
    assert [x.account for x in result.confirmed] == [100]
    # The decision is margin_exact's, with the chain's validity flags.
    cash, coll, size, on = book.exact([100, 101, 102])
    exact = margin_exact(cash, coll, size, on, market.prices_wad, market.params)
    assert result.confirmed[0].equity == exact.equity[0] and result.confirmed[0].mm == exact.mm[0]
    ok = np.array([True, False, True])
    live = is_liquidatable(exact.equity, exact.mm, ok, np.array([True, True, True]))
    assert live.tolist() == [True, False, False]


def test_twin__within_float_tolerance_of_mm__exact_twin_decides_to_the_wei():
    c = _contracts(Endpoint(PRICES))
    market = read_market(c)
    probe = _book([(0, LONG_ETH)])
    mm = int(margin_exact(*probe.exact([100]), market.prices_wad, market.params).mm[0])
    rows = [
        (mm + 500 * WAD - 1, LONG_ETH),  # E = MM - 1 wei: liquidatable
        (mm + 500 * WAD, LONG_ETH),  # E = MM: not
        (600 * WAD, LONG_ETH),  # far below: the float twin is sure
    ]
    scanner = Scanner(c, _book(rows))
    result, _ = scanner.scan(market)
    assert result.flagged == 3
    by = {x.account: x for x in result.confirmed}
    assert set(by) == {100, 102}
    assert by[100].exact and by[100].equity == mm - 1 and by[100].mm == mm
    assert not by[102].exact
    assert [x.account for x in result.confirmed] == [102, 100]  # largest shortfall first


def test_scan__option_holders__decided_by_the_chain_never_by_the_twins():
    """The twins cannot see option legs: a holder the twin finds liquidatable (its long
    calls cover it) and one it finds healthy (its short calls sink it) are both asked of the
    chain, which decides them; an account without legs is decided by the twins as before."""
    c = _contracts(endpoint := Endpoint(PRICES))
    book = _book([(600 * WAD, LONG_ETH), (100_000 * WAD, LONG_ETH), (600 * WAD, LONG_ETH)])
    call = 2**255 | 7
    book.apply_leg(LegEvent(2, 0, 100, call, 3 * WAD))
    book.apply_leg(LegEvent(2, 1, 101, call, -50 * WAD))
    endpoint.margins = {100: (900 * WAD, 800 * WAD), 101: (1_000 * WAD, 4_000 * WAD)}
    endpoint.margins[102] = (100 * WAD, 300 * WAD)  # asked only when the chain decides all
    for confirm in ("twin", "exact", "chain"):
        endpoint.asked = []
        result, _ = Scanner(c, book).scan(confirm=confirm)
        assert {x.account for x in result.confirmed} == {101, 102}, confirm
        assert result.options == 2 and 101 in endpoint.asked and 100 in endpoint.asked
        assert result.on_chain == (3 if confirm == "chain" else 2)
    by = {x.account: x for x in result.confirmed}
    assert (by[101].equity, by[101].mm) == (1_000 * WAD, 4_000 * WAD)
    book.apply_leg(LegEvent(3, 0, 101, call, 0))  # closed: the twins decide it again
    endpoint.asked = []
    result, _ = Scanner(c, book).scan()
    assert endpoint.asked == [100] and {x.account for x in result.confirmed} == {102}


def test_decide__balance_in_an_unread_asset__sent_to_the_chain():
    c = _contracts(Endpoint(PRICES))
    book = _book([(600 * WAD, LONG_ETH)])
    book.apply(AccountEvent(2, 0, 100, N, 600 * WAD, WAD, 0, 0))  # an asset listed since
    scanner = Scanner(c, book)
    market = read_market(c)
    candidates, undecided = scanner.decide([100], market)
    assert candidates == [] and undecided == [100]


def test_scanner__unknown_confirm_mode__refused():
    c = _contracts(Endpoint(PRICES))
    with pytest.raises(ValueError, match="confirm must be one of"):
        Scanner(c, Book(N), confirm="guess")


# Short 1 ETH sold at 1,500 (ETH now 2,000): E = cash - 500.
SHORT_ETH = {0: (0, -WAD, -1_500 * WAD)}
RATE = WAD // 1_000  # 0.1% of the price per hour: longs pay shorts


def test_scan__funding_alone__turns_a_healthy_long_liquidatable_and_saves_a_short():
    endpoint = Endpoint(PRICES)
    c = _contracts(endpoint)
    market = read_market(c)
    assert market.timestamp == endpoint.timestamp
    probe = _book([(0, LONG_ETH), (0, SHORT_ETH)])
    mm_long, mm_short = (
        int(x) for x in margin_exact(*probe.exact([100, 101]), market.prices_wad, market.params).mm
    )
    rows = [
        (mm_long + 510 * WAD, LONG_ETH),  # E = MM + 10 before funding
        (mm_short + 490 * WAD, SHORT_ETH),  # E = MM - 10 before funding
    ]
    book = _book(rows)
    scanner = Scanner(c, book)
    result, _ = scanner.scan(market, confirm="exact")
    assert [x.account for x in result.confirmed] == [101]
    # Ten hours at 0.1%/h of 2,000: the index rose by 20 USD per ETH; the long settled its
    # funding at 5, so it owes 15 and the short (never settled) is owed 20.
    ten_hours_ago = endpoint.timestamp - 10 * 3600
    book.set_funding([FundingEvent(1, 0, 0, RATE, 0, ten_hours_ago)])
    book.apply_settled(SettledEvent(1, 1, 100, 0, 0, 5 * WAD))
    for mode in ("exact", "twin"):
        result, _ = scanner.scan(market, confirm=mode)
        assert [x.account for x in result.confirmed] == [100]
    result, _ = scanner.scan(market, confirm="exact")
    assert result.confirmed[0].equity == mm_long - 5 * WAD  # to the wei
    equity, mm = float_margin(book, market)
    assert equity[0] - mm[0] == pytest.approx(-5.0, abs=1e-6)
    assert equity[1] - mm[1] == pytest.approx(10.0, abs=1e-6)


def test_decide__funding_within_a_wei_of_mm__exact_twin_rounds_as_the_contract():
    endpoint = Endpoint(PRICES)
    c = _contracts(endpoint)
    market = read_market(c)
    # One second at a rate whose accrual is a fraction of a wei per unit: the index moves by
    # floor(7 * 2000e18 * 1 / 3600e18) = 3, a third of a unit owes ceil(3 / 3) = 1 wei.
    third = {0: (0, WAD // 3, 2_500 * WAD // 3)}
    probe = margin_exact(*_book([(0, third)]).exact([100]), market.prices_wad, market.params)
    headroom = -int(probe.equity[0])  # cash that puts E exactly at 0 before funding
    mm = int(probe.mm[0])
    book = _book([(headroom + mm, third), (headroom + mm - 1, third)])
    book.set_funding([FundingEvent(1, 0, 0, 7, 0, endpoint.timestamp - 1)])
    candidates, undecided = Scanner(c, book).decide([100, 101], market)
    assert undecided == []
    assert [(x.account, x.equity - x.mm) for x in candidates] == [(100, -1), (101, -2)]
