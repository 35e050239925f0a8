"""NonceSource: one nonce source per key, whatever sends from it (no node)."""

from __future__ import annotations

import threading

import pytest
from web3 import Web3

from offchain_risk.keeper.txs import NonceSource

KEEPER = Web3.to_checksum_address("0x" + "aa" * 20)
FEEDER = Web3.to_checksum_address("0x" + "bb" * 20)


class FakeProvider:
    """Answers eth_getTransactionCount from ``counts`` (the node's pending count)."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts
        self.requests = 0

    def _answer(self, i: int, method: str, params: list) -> dict:
        assert method == "eth_getTransactionCount" and params[1] == "pending"
        self.requests += 1
        return {"id": i, "result": hex(self.counts.get(params[0], 0))}

    def make_request(self, method: str, params: list) -> dict:
        return self._answer(0, method, params)

    def make_batch_request(self, requests: list) -> list[dict]:
        return [self._answer(i, m, p) for i, (m, p) in enumerate(requests)]


class FakeWeb3:
    def __init__(self, counts: dict[str, int]):
        self.provider = FakeProvider(counts)
        self.to_checksum_address = Web3.to_checksum_address


def test_take__two_senders_one_key__distinct_consecutive_nonces():
    source = NonceSource(FakeWeb3({KEEPER: 7}))
    assert source.take(KEEPER) == 7
    assert source.take_many({KEEPER.lower(): 3, FEEDER: 2}) == {KEEPER: [8, 9, 10], FEEDER: [0, 1]}
    assert source.take(KEEPER) == 11


def test_take__node_count_moved_past_the_source__follows_the_node():
    """Another process (or Ape before it shared the source) sent from the key."""
    w3 = FakeWeb3({KEEPER: 3})
    source = NonceSource(w3)
    assert source.take(KEEPER) == 3
    w3.provider.counts[KEEPER] = 10
    assert source.take(KEEPER) == 10


def test_take__pool_not_yet_counted__never_repeats_a_nonce():
    """The node's count lags what this process has sent: the source's own count wins."""
    source = NonceSource(FakeWeb3({KEEPER: 3}))
    assert [source.take(KEEPER) for _ in range(3)] == [3, 4, 5]


def test_give_back__last_nonce__handed_out_again():
    source = NonceSource(FakeWeb3({KEEPER: 0}))
    n = source.take(KEEPER)
    source.give_back(KEEPER, n)
    assert source.take(KEEPER) == n


def test_give_back__nonce_below_a_later_one__the_gap_is_filled_first():
    """A refused nonce below one another sender broadcast would hold that one in the pool."""
    source = NonceSource(FakeWeb3({KEEPER: 0}))
    assert source.take_many({KEEPER: 3}) == {KEEPER: [0, 1, 2]}
    source.give_back(KEEPER, 1)
    assert source.take_many({KEEPER: 2}) == {KEEPER: [1, 3]}
    assert source.take(KEEPER) == 4


def test_give_back__nonce_mined_since__not_reused():
    w3 = FakeWeb3({KEEPER: 0})
    source = NonceSource(w3)
    source.take_many({KEEPER: 3})
    source.give_back(KEEPER, 0)  # e.g. a send that raised although the node mined it
    w3.provider.counts[KEEPER] = 3
    assert source.take(KEEPER) == 3


def test_at_least__store_has_pending_transactions__starts_past_them():
    source = NonceSource(FakeWeb3({KEEPER: 2}))
    source.at_least(KEEPER, 6)
    assert source.peek(KEEPER) == 6 and source.take(KEEPER) == 6


def test_take_many__negative_count__clear_error():
    with pytest.raises(ValueError, match="negative"):
        NonceSource(FakeWeb3({})).take_many({KEEPER: -1})


def test_take__concurrent_threads__every_nonce_once():
    source = NonceSource(FakeWeb3({KEEPER: 0}))
    taken: list[int] = []

    def run() -> None:
        for _ in range(200):
            taken.append(source.take(KEEPER))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(800))


class FakeNode(FakeProvider):
    """Also takes eth_sendTransaction batches, refusing transactions whose nonce is in
    ``refuse``; ``sent`` records every transaction as received."""

    def __init__(self, counts: dict[str, int], refuse: set[int] = frozenset()):
        super().__init__(counts)
        self.sent: list[dict] = []
        self.refuse = refuse

    def make_batch_request(self, requests: list) -> list[dict]:
        if requests and requests[0][0] == "eth_sendTransaction":
            out = []
            for i, (_, (tx,)) in enumerate(requests):
                self.sent.append(tx)
                if int(tx["nonce"], 16) in self.refuse:
                    out.append({"id": i, "error": {"message": "intrinsic gas too low"}})
                else:
                    out.append({"id": i, "result": f"0x{len(self.sent):064x}"})
            return out
        return super().make_batch_request(requests)


class FakeContract:
    address = "0x" + "cc" * 20

    def encode_abi(self, fn: str, args: list) -> str:
        return "0x" + fn.encode().hex()


def _raw_sender(node: FakeNode):
    from offchain_risk.replay.txs import RawSender

    w3 = FakeWeb3({})
    w3.provider = node
    w3.eth = type("Eth", (), {"accounts": [KEEPER, FEEDER]})()
    sender = RawSender(w3, batch=3)
    sender.add(KEEPER)
    sender.add(FEEDER)
    return sender


def test_raw_sender_broadcast__every_request_carries_its_own_nonce():
    """Regression: the node picked the nonces of a batch and gave two the same one."""
    node = FakeNode({KEEPER: 4, FEEDER: 9})
    sender = _raw_sender(node)
    for i in range(4):
        sender.send(KEEPER, FakeContract(), "poke", [i], f"poke {i}")
        sender.send(FEEDER, FakeContract(), "set_price", [i], "price")
    assert len(sender.broadcast()) == 8
    by_key = {KEEPER: [], FEEDER: []}
    for tx in node.sent:
        by_key[tx["from"]].append(int(tx["nonce"], 16))
    assert by_key == {KEEPER: [4, 5, 6, 7], FEEDER: [9, 10, 11, 12]}


def test_raw_sender_broadcast__refused__names_it_and_gives_back_the_unsent_nonces():
    from offchain_risk.replay.txs import SeedError

    node = FakeNode({KEEPER: 0}, refuse={1})
    sender = _raw_sender(node)
    for i in range(5):
        sender.send(KEEPER, FakeContract(), "poke", [i], f"poke {i}")
    with pytest.raises(
        SeedError, match=f"poke 1: refused by the node \\(from {KEEPER}, nonce 1\\)"
    ):
        sender.broadcast()
    # batch of 3: nonces 0 and 2 went out; 1 (refused) and 3, 4 (never sent) come back
    node.counts[KEEPER] = 0
    assert sender.nonces.take_many({KEEPER: 3}) == {KEEPER: [1, 3, 4]}


class SendingProvider(FakeProvider):
    """Also takes raw transactions (refusing those whose nonce is in ``refuse``) and
    answers the pending block's base fee; counts the HTTP round trips."""

    def __init__(self, counts: dict[str, int], refuse: set[int]):
        super().__init__(counts)
        self.refuse, self.raws, self.round_trips = refuse, [], 0

    def _answer(self, i: int, method: str, params: list) -> dict:
        if method == "eth_getBlockByNumber":
            return {"id": i, "result": {"baseFeePerGas": "0x0"}}
        if method == "eth_sendRawTransaction":
            from eth_account.typed_transactions import TypedTransaction
            from hexbytes import HexBytes

            nonce = TypedTransaction.from_bytes(HexBytes(params[0])).as_dict()["nonce"]
            if nonce in self.refuse:
                return {"id": i, "error": {"code": -32003, "message": "intrinsic gas too low"}}
            self.raws.append(nonce)
            return {"id": i, "result": "0x" + "00" * 32}
        return super()._answer(i, method, params)

    def make_request(self, method: str, params: list) -> dict:
        self.round_trips += 1
        return self._answer(0, method, params)

    def make_batch_request(self, requests: list) -> list[dict]:
        self.round_trips += 1
        return [self._answer(i, m, p) for i, (m, p) in enumerate(requests)]


def test_send_many__one_refused__others_sent_in_one_batch_and_the_gap_filled_next():
    """A block's liquidations go out on consecutive nonces in one JSON-RPC batch; the one
    the node refuses is recorded dropped and its nonce is the next one handed out."""
    from eth_account import Account

    from offchain_risk.keeper.store import DROPPED, PENDING, Store
    from offchain_risk.keeper.txs import LocalSigner, SendError, TxManager

    key = "0x" + "42" * 32
    address = Account.from_key(key).address
    w3 = FakeWeb3({address: 5})
    w3.provider = SendingProvider({address: 5}, refuse={6})
    w3.eth = type("Eth", (), {"chain_id": 31337, "block_number": 9})()
    store = Store()
    tx = TxManager(w3, LocalSigner(key), store)
    tx.sync_nonce()
    tx.begin(9)
    before = w3.provider.round_trips
    target = "0x" + "cc" * 20
    out = tx.send_many("liquidation", [(target, "0x01", 100_000, a) for a in (11, 12, 13)])
    # the fees, the nonces, the sends: three round trips for the three transactions
    assert w3.provider.round_trips - before == 3
    assert [type(x) for x in out] == [type(out[0]), SendError, type(out[0])]
    assert [x.nonce for x in (out[0], out[2])] == [5, 7] and w3.provider.raws == [5, 7]
    assert "intrinsic gas" in str(out[1])
    assert {t.account: t.status for t in store.txs()} == {11: PENDING, 12: DROPPED, 13: PENDING}
    assert tx.nonces.take(address) == 6  # the refused nonce fills the gap first


class PollingProvider(FakeProvider):
    """The chain's count of a key and the receipts it serves, both set by the test."""

    def __init__(self, count: int):
        super().__init__({})
        self.count, self.receipts = count, {}

    def _answer(self, i: int, method: str, params: list) -> dict:
        if method == "eth_getTransactionCount":
            return {"id": i, "result": hex(self.count)}
        if method == "eth_getBlockByNumber":
            return {"id": i, "result": {"baseFeePerGas": "0x0"}}
        if method == "eth_sendRawTransaction":
            return {"id": i, "result": "0x" + "00" * 32}
        assert method == "eth_getTransactionReceipt", method
        return {"id": i, "result": self.receipts.get(params[0])}


def _polling_manager(count: int):
    from eth_account import Account

    from offchain_risk.keeper.store import Store
    from offchain_risk.keeper.txs import LocalSigner, TxManager

    key = "0x" + "43" * 32
    w3 = FakeWeb3({})
    w3.provider = PollingProvider(count)
    w3.eth = type("Eth", (), {"chain_id": 31337, "block_number": 9})()
    tx = TxManager(w3, LocalSigner(key), Store())
    assert tx.address == Account.from_key(key).address
    return w3.provider, tx


def test_poll__nonce_counted_before_its_receipt_is_served__confirmed_not_dropped():
    """Regression: the node's nonce count has moved past a liquidation whose receipt it does
    not serve yet (nonce 3 counted, no receipt). The poll marked it dropped at once, so the
    next scan could find its account below MM (the book short of that block) and not in
    flight, and send it to a preview that reverts on the chain ("account is healthy"): a
    replay round then ends with nothing sent and nothing in flight, not cleared. It now
    stays pending until a poll finds its receipt (or, still none, drops it)."""
    from offchain_risk.keeper.store import CONFIRMED, PENDING

    node, tx = _polling_manager(count=3)
    tx.poll(10)  # the manager's first look at the chain
    sent = tx.send("liquidation", "0x" + "cc" * 20, "0x01", 100_000, account=7)
    assert sent.nonce == 3
    node.count = 4  # mined: counted, receipt not served yet
    first = tx.poll(11)
    assert (first.dropped, first.confirmed, first.bumped) == ([], [], [])
    assert [t.account for t in tx.in_flight("liquidation")] == [7]  # still skipped by scans
    node.receipts[sent.hash] = {"status": "0x1", "blockNumber": hex(11)}
    second = tx.poll(12)
    assert [(t.account, t.mined_block) for t in second.confirmed] == [(7, 11)]
    assert {t.hash: t.status for t in tx.store.txs()} == {sent.hash: CONFIRMED}
    assert PENDING not in {t.status for t in tx.store.txs()}


def test_poll__nonce_used_by_an_unknown_transaction__dropped_at_the_next_poll():
    from offchain_risk.keeper.store import DROPPED

    node, tx = _polling_manager(count=3)
    tx.poll(10)
    sent = tx.send("liquidation", "0x" + "cc" * 20, "0x01", 100_000, account=7)
    node.count = 4  # another sender's transaction took nonce 3
    assert tx.poll(11).dropped == []
    assert [t.hash for t in tx.poll(12).dropped] == [sent.hash]
    assert {t.hash: t.status for t in tx.store.txs()} == {sent.hash: DROPPED}
    assert tx.in_flight("liquidation") == []
