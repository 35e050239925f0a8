"""Every sender from one key takes its nonces from one source: the keeper's transaction
manager, the replay's raw sender and Ape, with automining off (as the replay runs).

Regression: ``make demo`` died at round 29 of 95 with ``poke 2: refused by the node:
{'code': -32003, 'message': 'replacement transaction underpriced'}``, and on a busier machine
on the feeder's prices (round 38 of 119). The raw sender let anvil pick each nonce of a
JSON-RPC batch while automining was off, and two requests could get the same one; the
keeper's transaction manager kept its own count beside it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from offchain_risk.keeper.rpc import abi_of, rpc_one
from offchain_risk.keeper.store import CONFIRMED, Store
from offchain_risk.keeper.txs import LocalSigner, NonceSource, SendError, TxManager
from offchain_risk.replay.txs import RawSender, SeedError, lean_web3, sourced_account


@pytest.fixture
def feeder(accounts):
    """The key that feeds prices, pokes and liquidates here: one key, several senders."""
    return accounts[9]


@pytest.fixture
def feeds(project, accounts, feeder):
    """Two mock feeds that ``feeder`` may push (as web3 contracts)."""
    out = []
    for _ in range(2):
        feed = project.MockAggregator.deploy(8, 2_000 * 10**8, sender=feeder)
        out.append(feed)
    return out


@pytest.fixture
def w3(chain):
    return lean_web3(chain.provider.uri)


def _web3_feeds(w3, project, feeds):
    abi = abi_of(project.MockAggregator.contract_type)
    return [w3.eth.contract(address=str(f.address), abi=abi) for f in feeds]


@contextmanager
def automine_off(w3):
    rpc_one(w3, "evm_setAutomine", [False])
    try:
        yield
    finally:
        rpc_one(w3, "evm_setAutomine", [True])


def _mine(w3):
    rpc_one(w3, "evm_mine", [])


def _count(w3, who) -> int:
    return int(rpc_one(w3, "eth_getTransactionCount", [str(who), "latest"]), 16)


def test_raw_sender__two_senders_one_key_concurrent_batches__every_transaction_mined(
    chain, project, feeds, feeder
):
    """Two raw senders on one key broadcast batches at once from two threads (two
    connections) with automining off, then the blocks are mined. Left to the node, requests
    of the two batches got the same nonce ("transaction already imported", or "replacement
    transaction underpriced" when the payloads differ: 25 of 400 refused in one trial);
    with one source every nonce is distinct and every transaction is mined."""
    w3 = lean_web3(chain.provider.uri)
    nonces = NonceSource(w3)
    start = _count(w3, feeder)
    rounds, per_round = 5, 40
    errors: list[BaseException] = []
    hashes: list[str] = []
    go = threading.Barrier(2)

    def feed_prices(offset: int) -> None:
        own = lean_web3(chain.provider.uri)
        sender = RawSender(own, nonces=nonces, batch=per_round)
        sender.add(feeder)
        contracts = _web3_feeds(own, project, feeds)
        try:
            go.wait()
            for r in range(rounds):
                for i in range(per_round):
                    price = (2_000 + offset + r * per_round + i) * 10**8
                    sender.send(feeder, contracts[i % 2], "set_price", [price], "price")
                hashes.extend(h for _, h in sender.broadcast())
        except BaseException as exc:  # reported below
            errors.append(exc)

    with automine_off(w3):
        threads = [threading.Thread(target=feed_prices, args=(k * 10_000,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for _ in range(2 * rounds * per_round):  # 3M gas reserved each: ten per block
            if int(rpc_one(w3, "txpool_status", [])["pending"], 16) == 0:
                break
            _mine(w3)
    assert len(set(hashes)) == 2 * rounds * per_round
    assert _count(w3, feeder) == start + 2 * rounds * per_round


def test_tx_manager_and_raw_sender__one_key_automine_off__distinct_nonces_all_mined(
    w3, project, feeds, feeder
):
    """The keeper's transaction manager sends (its transaction waits in the pool), the raw
    sender sends and mines a batch on the same key, then the manager sends again. Before
    the shared source the manager's own count collided with the batch's nonces.

    Both pay the same fees: anvil (1.7) drops an ``eth_sendTransaction`` transaction that
    pays more than an earlier pooled one of the same key when it mines the block."""
    nonces = NonceSource(w3)
    start = _count(w3, feeder)
    store = Store(":memory:")
    tx = TxManager(w3, LocalSigner(feeder.private_key), store, nonces=nonces)
    max_fee, tip = tx.fees()
    sender = RawSender(w3, max_fee=max_fee, priority_fee=tip, nonces=nonces)
    sender.add(feeder)
    feed_a, feed_b = _web3_feeds(w3, project, feeds)
    data = feed_a.encode_abi("set_price", args=[1_900 * 10**8])

    with automine_off(w3):
        first = tx.send("price", feed_a.address, data, 100_000)
        for i in range(5):
            sender.send(feeder, feed_b, "set_price", [(1_800 + i) * 10**8], "price")
        assert sender.check() == 5  # mines the manager's transaction too
        rpc_one(w3, "evm_setAutomine", [False])  # check() turned it back on
        second = tx.send("price", feed_a.address, data, 100_000)
        _mine(w3)

    assert (first.nonce, second.nonce) == (start, start + 6)
    result = tx.poll()
    assert {t.hash for t in result.confirmed} == {first.hash, second.hash}
    assert [t.status for t in store.txs()] == [CONFIRMED, CONFIRMED]
    assert _count(w3, feeder) == start + 7


def test_tx_manager__refused_transaction__its_nonce_is_reused(w3, project, feeds, feeder):
    """A transaction the node refuses gives its nonce back: no gap holds later ones."""
    nonces = NonceSource(w3)
    start = _count(w3, feeder)
    tx = TxManager(w3, LocalSigner(feeder.private_key), Store(":memory:"), nonces=nonces)
    (feed,) = _web3_feeds(w3, project, feeds[:1])
    data = feed.encode_abi("set_price", args=[1_900 * 10**8])
    with automine_off(w3):
        with pytest.raises(SendError, match="(?i)gas too low"):
            tx.send("price", feed.address, data, 20_000)  # below the intrinsic gas: refused
        sent = tx.send("price", feed.address, data, 100_000)
        _mine(w3)
    assert sent.nonce == start and _count(w3, feeder) == start + 1


def test_sourced_account__ape_and_raw_sender_one_key__ape_takes_the_next_nonce(
    w3, project, feeds, feeder
):
    """An Ape transaction from a key whose raw transactions are waiting in the pool takes
    the next nonce from the shared source, not the node's mined count."""
    nonces = NonceSource(w3)
    start = _count(w3, feeder)
    sender = RawSender(w3, nonces=nonces)
    sender.add(feeder)
    feed_w3 = _web3_feeds(w3, project, feeds)[0]
    sender.send(feeder, feed_w3, "set_price", [1_500 * 10**8], "price")
    sender.check()
    ape_feeder = sourced_account(feeder, nonces)
    receipt = feeds[1].set_price(1_400 * 10**8, sender=ape_feeder)
    assert receipt.nonce == start + 1
    assert nonces.peek(feeder) == start + 2


def test_sourced_account__not_a_test_account__clear_error(w3):
    with pytest.raises(TypeError, match="not an Ape test account"):
        sourced_account("0x" + "11" * 20, NonceSource(w3))


def test_raw_sender__refused_transaction__names_label_sender_and_nonce(w3, project, feeds, feeder):
    nonces = NonceSource(w3)
    start = nonces.peek(feeder)
    sender = RawSender(w3, gas=20_000, nonces=nonces)  # below the intrinsic gas
    sender.add(feeder)
    (feed,) = _web3_feeds(w3, project, feeds[:1])
    sender.send(feeder, feed, "set_price", [1], "price")
    refused = f"price: refused by the node \\(from {feeder.address}, nonce {start}\\)"
    with pytest.raises(SeedError, match=refused):
        sender.check()


def test_raw_sender__reverting_transaction__reported_with_its_label(w3, project, feeds, accounts):
    stranger = accounts[8]  # not the feeder: set_price reverts
    sender = RawSender(w3)
    sender.add(stranger)
    (feed,) = _web3_feeds(w3, project, feeds[:1])
    sender.send(stranger, feed, "set_price", [1], "price")
    with pytest.raises(SeedError, match="price: reverted"):
        sender.check()
