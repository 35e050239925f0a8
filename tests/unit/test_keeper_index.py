"""The keeper's store and indexer against a fake RPC: chunking, range limits, reorgs, restart."""

from __future__ import annotations

import pytest
from eth_abi import encode

from offchain_risk.keeper.indexer import (
    ACCOUNT_STATE_TOPIC,
    FUNDING_SETTLED_TOPIC,
    FUNDING_TOPIC,
    OPTION_BOOK_CALL,
    OPTION_BOOK_SET_TOPIC,
    OPTION_POSITION_TOPIC,
    OPTION_SETTLED_TOPIC,
    Book,
    Indexer,
    decode_account_state,
    decode_funding_settled,
    decode_leg,
)
from offchain_risk.keeper.store import CASH_ASSET, AccountEvent, Store
from offchain_risk.models.funding import MarketFunding
from offchain_risk.units import CASH, WAD


def raw_log(block, index, account, asset, cash, coll=0, size=0, on=0, block_hash=None):
    return {
        "blockNumber": block,
        "logIndex": index,
        "blockHash": block_hash or f"0x{block:064x}",
        "topics": [bytes.fromhex(ACCOUNT_STATE_TOPIC[2:]), account.to_bytes(32, "big")],
        "data": encode(
            ["uint256", "int256", "uint256", "int256", "int256"], [asset, cash, coll, size, on]
        ),
    }


def time_of(block):
    return 1_700_000_000 + 12 * block


def funding_log(market, rate, index):
    return {
        "logIndex": 0,
        "topics": [bytes.fromhex(FUNDING_TOPIC[2:]), market.to_bytes(32, "big")],
        "data": encode(["int256", "int256"], [rate, index]),
    }


def settled_log(index_in_block, account, market, paid, index):
    return {
        "logIndex": index_in_block,
        "topics": [
            bytes.fromhex(FUNDING_SETTLED_TOPIC[2:]),
            account.to_bytes(32, "big"),
            market.to_bytes(32, "big"),
        ],
        "data": encode(["int256", "int256"], [paid, index]),
    }


OPTION_BOOK = "0x" + "22" * 20
CALL, PUT = 2**255 | 7, 2**255 | 8  # instrument ids (OptionBook packs them; any id here)


def _option_log(topic, index_in_block, account, instrument, data, address=OPTION_BOOK):
    return {
        "address": address,
        "logIndex": index_in_block,
        "topics": [
            bytes.fromhex(topic[2:]),
            account.to_bytes(32, "big"),
            instrument.to_bytes(32, "big"),
        ],
        "data": data,
    }


def leg_log(index_in_block, account, instrument, size, address=OPTION_BOOK):
    """The option book's ``OptionPosition`` log of a leg's new size."""
    data = encode(["int256"], [size])
    return _option_log(OPTION_POSITION_TOPIC, index_in_block, account, instrument, data, address)


def settled_leg_log(index_in_block, account, instrument, size, amount):
    """The option book's ``OptionSettled`` log: the leg paid to cash at expiry."""
    data = encode(["int256", "int256"], [size, amount])
    return _option_log(OPTION_SETTLED_TOPIC, index_in_block, account, instrument, data)


def book_set_log(index_in_block, book=OPTION_BOOK):
    """The engine's ``OptionBookSet(book)`` log: its option book installed."""
    topics = [bytes.fromhex(OPTION_BOOK_SET_TOPIC[2:]), bytes.fromhex(book[2:]).rjust(32, b"\0")]
    return {"logIndex": index_in_block, "topics": topics, "data": b""}


class FakeEth:
    def __init__(self, max_range=None):
        self.blocks: list[str] = ["0x" + "00" * 32]  # hashes; index = number
        self.logs: dict[int, list[dict]] = {}
        self.max_range = max_range
        self.calls: list[tuple[int, int]] = []
        self.option_book: tuple[str, int] | None = None  # (address, block installed)
        self.option_book_calls = 0

    @property
    def block_number(self):
        return len(self.blocks) - 1

    def mine(self, logs=(), salt="a"):
        n = len(self.blocks)
        self.blocks.append(f"0x{salt * 2}{n:062x}")
        self.logs[n] = [{"address": ENGINE, **log, "blockNumber": n} for log in logs]
        return n

    def reorg(self, depth, replacement):
        for n in range(len(self.blocks) - depth, len(self.blocks)):
            self.logs.pop(n, None)
        del self.blocks[len(self.blocks) - depth :]
        for logs in replacement:
            self.mine(logs, salt="b")

    def get_block(self, n):
        if n >= len(self.blocks):
            raise ValueError("block not found")
        return {"hash": bytes.fromhex(self.blocks[n][2:]), "number": n, "timestamp": time_of(n)}

    def get_logs(self, f):
        lo, hi = f["fromBlock"], f["toBlock"]
        self.calls.append((lo, hi))
        if self.max_range is not None and hi - lo + 1 > self.max_range:
            raise ValueError(f"query exceeds max block range {self.max_range}")
        return [
            log
            for n in range(lo, hi + 1)
            for log in self.logs.get(n, [])
            if log["address"] in f["address"]
        ]

    def call(self, tx, block):
        """``engine.option_book()`` at ``block``: the book from the block it was installed."""
        assert tx == {"to": ENGINE, "data": OPTION_BOOK_CALL}, tx
        self.option_book_calls += 1
        installed = self.option_book is not None and block >= self.option_book[1]
        return encode(["address"], [self.option_book[0] if installed else "0x" + "00" * 20])


class FakeProvider:
    """The JSON-RPC requests the indexer batches: block hashes."""

    def __init__(self, eth):
        self.eth = eth
        self.batches = 0

    def make_batch_request(self, requests):
        self.batches += 1
        return [{"id": i, **self.make_request(*r)} for i, r in enumerate(requests)]

    def make_request(self, method, params):
        if method == "eth_getLogs":  # the node's JSON: hex strings
            f = params[0]
            try:
                logs = self.eth.get_logs(
                    dict(f, fromBlock=int(f["fromBlock"], 16), toBlock=int(f["toBlock"], 16))
                )
            except ValueError as exc:
                return {"error": {"code": -32005, "message": str(exc)}}
            return {"result": [_json_log(log) for log in logs]}
        assert method == "eth_getBlockByNumber", method
        n = int(params[0], 16)
        if n >= len(self.eth.blocks):
            return {"result": None}
        return {"result": {"hash": self.eth.blocks[n], "number": hex(n)}}


def _json_log(log):
    return {
        "address": log["address"],
        "blockNumber": hex(log["blockNumber"]),
        "logIndex": hex(log["logIndex"]),
        "topics": ["0x" + bytes(t).hex() for t in log["topics"]],
        "data": "0x" + bytes(log["data"]).hex(),
    }


class FakeWeb3:
    def __init__(self, eth):
        self.eth = eth
        self.provider = FakeProvider(eth)

    @staticmethod
    def to_checksum_address(a):
        return a


ENGINE = "0x" + "11" * 20


def make(eth, store=None, **kw):
    store = store or Store()
    book = Book(4)
    return Indexer(FakeWeb3(eth), ENGINE, store, book, **kw), store, book


def test_decode_account_state__cash_sentinel__is_cash_asset():
    e = decode_account_state(raw_log(7, 2, 5, CASH, -3 * WAD))
    assert (e.block, e.log_index, e.account, e.asset, e.cash) == (7, 2, 5, CASH_ASSET, -3 * WAD)
    with pytest.raises(ValueError, match="not an AccountState log"):
        decode_account_state(dict(raw_log(7, 2, 5, 0, 0), topics=[b"\0" * 32]))


def test_indexer__backfill_in_chunks__latest_state_per_asset():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, CASH, 100 * WAD)])
    for _ in range(30):
        eth.mine()
    eth.mine([raw_log(0, 0, 1, 0, 90 * WAD, coll=2 * WAD), raw_log(0, 1, 2, 1, 5, size=-WAD)])
    eth.mine([raw_log(0, 0, 1, 1, 80 * WAD, size=3 * WAD, on=-6 * WAD)])
    indexer, store, book = make(eth, chunk=10)
    result = indexer.sync()
    assert result.events == 4 and len(eth.calls) == 4  # 34 blocks in chunks of 10
    assert book.records[1].cash == 80 * WAD
    assert book.records[1].assets == {0: (2 * WAD, 0, 0), 1: (0, 3 * WAD, -6 * WAD)}
    assert book.records[2].assets == {1: (0, -WAD, 0)}
    cash, coll, size, on = book.view()
    assert list(cash) == [80.0, 5e-18] and coll[0, 0] == 2.0 and size[0, 1] == 3.0
    assert on[0, 1] == -6.0 and store.last_block == eth.block_number


def test_indexer__block_hashes__one_batch_per_pass():
    """The re-organisation check reads its 2 x lookback block hashes in one JSON-RPC batch
    per pass (one request per block was half a quiet block's tick)."""
    eth = FakeEth()
    for _ in range(40):
        eth.mine()
    indexer, store, _ = make(eth, lookback=8)
    for passes in (1, 2, 3):
        indexer.sync()
        eth.mine()
        assert indexer.w3.provider.batches == passes
    assert sorted(store.block_hashes(0)) == list(range(eth.block_number - 16, eth.block_number))


def test_indexer__rpc_range_limit__halves_the_chunk_and_completes():
    eth = FakeEth(max_range=4)
    for i in range(20):
        eth.mine([raw_log(0, 0, i + 1, CASH, i * WAD)])
    indexer, _, book = make(eth, chunk=16)
    assert indexer.sync().events == 20
    assert indexer.chunk == 4 and len(book) == 20
    assert eth.calls[:2] == [(0, 15), (0, 7)]  # refused, then halved twice
    assert all(hi - lo + 1 <= 4 for lo, hi in eth.calls[2:])


def test_indexer__position_closed__asset_dropped():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, 0, WAD, size=WAD, on=-WAD)])
    indexer, _, book = make(eth)
    indexer.sync()
    eth.mine([raw_log(0, 0, 1, 0, 2 * WAD)])
    indexer.sync()
    assert book.records[1].assets == {} and book.records[1].cash == 2 * WAD
    assert book.size[0, 0] == 0.0


def test_indexer__reorg_within_lookback__state_of_the_new_chain():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, CASH, 10 * WAD)])
    eth.mine([raw_log(0, 0, 1, CASH, 20 * WAD), raw_log(0, 1, 2, CASH, WAD)])
    eth.mine([raw_log(0, 0, 1, CASH, 30 * WAD)])
    indexer, store, book = make(eth, lookback=4)
    indexer.sync()
    assert book.records[1].cash == 30 * WAD and 2 in book.records
    eth.reorg(2, [[raw_log(0, 0, 1, CASH, 15 * WAD)], []])
    result = indexer.sync()
    assert result.reorg_block == 2
    assert book.records[1].cash == 15 * WAD
    assert book.records[2].cash == 0  # its only event was dropped
    assert [e.cash for e in store.events([1])] == [10 * WAD, 15 * WAD]


def test_indexer__reorg_deeper_than_window__found_by_stored_hashes():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, CASH, 10 * WAD)])
    for _ in range(3):
        eth.mine()
    indexer, _, book = make(eth, lookback=2)
    indexer.sync()
    eth.reorg(4, [[raw_log(0, 0, 1, CASH, 7 * WAD)], [], [], []])
    result = indexer.sync()
    assert result.reorg_block == 1 and book.records[1].cash == 7 * WAD


def test_indexer__chain_shorter_after_rollback__reread():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, CASH, 10 * WAD)])
    eth.mine([raw_log(0, 0, 1, CASH, 20 * WAD)])
    indexer, store, book = make(eth, lookback=4)
    indexer.sync()
    eth.reorg(1, [])
    result = indexer.sync()
    assert result.reorg_block == 2 and book.records[1].cash == 10 * WAD
    assert store.last_block == 1


def test_indexer__restart__resumes_without_rereading_history(tmp_path):
    eth = FakeEth()
    for i in range(50):
        eth.mine([raw_log(0, 0, i + 1, CASH, WAD)])
    path = tmp_path / "k.db"
    indexer, store, _ = make(eth, Store(path), lookback=3)
    indexer.sync()
    store.close()
    eth.mine([raw_log(0, 0, 99, CASH, 5 * WAD)])
    eth.calls.clear()
    indexer, store, book = make(eth, Store(path), lookback=3)
    result = indexer.sync()
    assert len(book) == 51 and book.records[99].cash == 5 * WAD
    assert eth.calls == [(48, 51)]  # the look-back window and the new block only
    assert result.events == 4


def test_store__bound_to_one_engine(tmp_path):
    store = Store(tmp_path / "k.db")
    store.bind(1, ENGINE)
    store.bind(1, ENGINE.upper().replace("0X", "0x"))
    with pytest.raises(ValueError, match="use another --db path"):
        store.bind(2, ENGINE)


def test_book__grows_past_its_first_capacity_and_new_assets__values_kept():
    book = Book(2)
    n = 2_500  # the arrays start at 1,024 rows
    for i in range(n):
        book.apply(AccountEvent(1, i, i + 1, 1, i * WAD, 0, -i * WAD, i * WAD))
    book.apply(AccountEvent(2, 0, 7, 3, 5 * WAD, 2 * WAD, 0, 0))  # a fourth asset listed
    cash, coll, size, on = book.view()
    assert len(book) == n and cash.shape == (n,) and size.shape == (n, 4)
    assert list(cash[:3]) == [0.0, 1.0, 2.0] and cash[-1] == n - 1
    assert size[-1, 1] == -(n - 1) and on[-1, 1] == n - 1
    assert coll[6, 3] == 2.0 and cash[6] == 5.0 and book.records[7].assets[3] == (2 * WAD, 0, 0)


def test_indexer__funding_logs__market_words_and_position_snapshots():
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, 0, 100 * WAD, size=WAD, on=-2_000 * WAD)])
    eth.mine([dict(funding_log(0, 10**15, 0), logIndex=1)])
    b3 = eth.mine(
        [
            dict(funding_log(0, -(10**15), 3 * WAD), logIndex=0),
            settled_log(1, 1, 0, 3 * WAD, 3 * WAD),
        ]
    )
    eth.mine([dict(funding_log(1, 7, -5), logIndex=0)])
    indexer, _, book = make(eth)
    indexer.sync()
    eth_market = MarketFunding(funding_word=book.funding[0])
    assert (eth_market.index, eth_market.rate) == (3 * WAD, -(10**15))
    assert (book.funding[0] >> 128) & (2**64 - 1) == time_of(b3)  # the block's time
    assert MarketFunding(funding_word=book.funding[1]).index == -5
    assert book.records[1].snaps == {0: 3 * WAD} and book.snap[0, 0] == 3.0


def test_decode_funding_settled__wrong_topic__refused():
    e = decode_funding_settled(dict(settled_log(4, 9, 2, -7, 11), blockNumber=3))
    assert (e.block, e.log_index, e.account, e.market, e.paid, e.index) == (3, 4, 9, 2, -7, 11)
    with pytest.raises(ValueError, match="not a FundingSettled log"):
        decode_funding_settled(dict(settled_log(0, 9, 2, 0, 0), blockNumber=3, topics=[b"\0" * 32]))


def test_indexer__restart__same_funding_state_as_a_keeper_that_never_stopped(tmp_path):
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, 0, 100 * WAD, size=WAD, on=-2_000 * WAD)])
    eth.mine([funding_log(0, 10**15, 2 * WAD), settled_log(1, 1, 0, 2 * WAD, 2 * WAD)])
    for _ in range(10):
        eth.mine()
    path = tmp_path / "k.db"
    first, store, _ = make(eth, Store(path), lookback=3)
    first.sync()
    store.close()
    eth.mine([funding_log(0, 5 * 10**14, 4 * WAD), settled_log(1, 2, 0, 1, 4 * WAD)])
    restarted, _, book = make(eth, Store(path), lookback=3)
    restarted.sync()
    never_stopped, _, live = make(eth)
    never_stopped.sync()
    assert book.funding == live.funding and book.funding[0] != 0
    assert book.records[2].snaps == live.records[2].snaps == {0: 4 * WAD}
    assert book.records[1].snaps == live.records[1].snaps == {0: 2 * WAD}
    assert book.snap[: len(book)].tolist() == live.snap[: len(live)].tolist()


def test_indexer__reorg_drops_funding_logs__earlier_word_and_snapshot_back():
    eth = FakeEth()
    eth.mine([funding_log(0, 10**15, WAD), settled_log(1, 1, 0, WAD, WAD)])
    before = time_of(eth.block_number)
    eth.mine([funding_log(0, 2 * 10**15, 3 * WAD), settled_log(1, 1, 0, 2 * WAD, 3 * WAD)])
    indexer, _, book = make(eth, lookback=4)
    indexer.sync()
    assert MarketFunding(funding_word=book.funding[0]).index == 3 * WAD
    eth.reorg(1, [[]])
    assert indexer.sync().reorg_block == 2
    m = MarketFunding(funding_word=book.funding[0])
    assert (m.index, m.rate) == (WAD, 10**15)
    assert (book.funding[0] >> 128) & (2**64 - 1) == before
    assert book.records[1].snaps == {0: WAD}


def test_indexer__option_legs__holders_follow_trades_settlement_and_reorgs(tmp_path):
    """Option holders come from the engine's installed book only: a leg opened, closed,
    settled at expiry or dropped by a re-organisation moves the holder set; the same log from
    another contract moves nothing; a restart rebuilds the same set from the store."""
    eth = FakeEth()
    eth.mine([raw_log(0, 0, 1, CASH, 100 * WAD)])
    eth.option_book = (OPTION_BOOK, eth.mine())
    eth.mine([leg_log(0, 1, CALL, -5 * WAD), leg_log(1, 2, CALL, 5 * WAD)])
    eth.mine([leg_log(0, 3, PUT, WAD, address="0x" + "33" * 20)])  # a spoofed log
    path = tmp_path / "k.db"
    indexer, store, book = make(eth, Store(path), lookback=3)
    indexer.sync()
    assert indexer.option_book == OPTION_BOOK
    assert book.options == {1, 2} and book.records[1].legs == {CALL: -5 * WAD}
    assert 3 not in book.rows
    eth.mine([leg_log(0, 2, PUT, -WAD), leg_log(1, 2, CALL, 0)])  # 2 swaps its call for a put
    eth.mine([settled_leg_log(0, 1, CALL, -5 * WAD, -200 * WAD)])  # 1's call settles
    indexer.sync()
    assert book.options == {2} and book.records[2].legs == {PUT: -WAD}
    assert book.records[1].legs == {} and book.records[1].cash == 100 * WAD
    eth.reorg(1, [[]])  # the settlement never happened
    indexer.sync()
    assert book.options == {1, 2} and book.records[1].legs == {CALL: -5 * WAD}
    store.close()
    restarted, _, again = make(eth, Store(path), lookback=3)
    restarted.load()
    assert again.options == {1, 2} and again.records[2].legs == {PUT: -WAD}


def test_indexer__no_option_book__engine_asked_once_then_its_install_log_watched():
    """Without a book the engine is asked once (a restart's store may be past the
    installation), not every block; the pass whose range holds the engine's
    ``OptionBookSet`` log finds the book and reads the legs traded after it in that range.
    A log of another contract never counts as the engine's book or its legs."""
    eth = FakeEth()
    other = "0x" + "33" * 20  # an option book the engine never installed
    eth.mine([raw_log(0, 0, 1, CASH, WAD), leg_log(1, 1, CALL, WAD, address=other)])
    indexer, _, book = make(eth)
    for _ in range(3):
        eth.mine()
        indexer.sync()
    assert indexer.option_book is None and book.options == set()
    assert eth.option_book_calls == 1
    eth.mine([dict(book_set_log(0, other), address=other)])  # not the engine's log
    indexer.sync()
    assert indexer.option_book is None
    eth.option_book = (OPTION_BOOK, eth.mine([book_set_log(0)]))
    eth.mine([leg_log(0, 4, CALL, WAD), leg_log(1, 5, PUT, -WAD, address=other)])
    indexer.sync()
    assert indexer.option_book == OPTION_BOOK and book.options == {4}
    assert eth.option_book_calls == 1
    eth.mine([leg_log(0, 6, PUT, -WAD)])
    indexer.sync()
    assert book.options == {4, 6} and eth.option_book_calls == 1


def test_decode_leg__position_and_settled__sizes_and_wrong_topic_refused():
    g = decode_leg(dict(leg_log(3, 9, CALL, -7), blockNumber=5))
    assert (g.block, g.log_index, g.account, g.instrument, g.size) == (5, 3, 9, CALL, -7)
    g = decode_leg(dict(settled_leg_log(0, 9, CALL, -7, 11), blockNumber=6))
    assert (g.account, g.instrument, g.size) == (9, CALL, 0)
    with pytest.raises(ValueError, match="not an option leg log"):
        decode_leg(dict(settled_log(0, 9, 2, 0, 0), blockNumber=3))
