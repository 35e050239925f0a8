"""A fast sender for seeding and feeding a local devnet: receipts checked in bulk.

Seeding a few hundred accounts takes well over a thousand transactions; through Ape each
costs a confirmation round trip and a Python signature. :class:`RawSender` sends from the
node's own unlocked test accounts (``eth_sendTransaction``: anvil signs, in native code)
with a fixed gas limit. :meth:`RawSender.check` sends the queued transactions in JSON-RPC
batches, mines them and checks every receipt, raising on the first failure with the label
it was queued under. One sender's transactions are mined in nonce order; transactions that
depend on another sender's go in a later :meth:`check`.

Every transaction carries its nonce, taken from the
:class:`~offchain_risk.keeper.txs.NonceSource` that the keeper's transaction managers and
the Ape accounts of :func:`sourced_account` share: the node never picks one. (Left to pick,
anvil gave two requests of one batch the same nonce now and then on a loaded machine, and
the second was refused as an underpriced replacement.)

:func:`lean_web3` is a web3 client for the same node without the per-request validation
middleware (it asks the node for its chain id on every call): the replay's keepers and
sender use it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from offchain_risk.keeper.txs import NonceSource

GWEI = 10**9


class SeedError(RuntimeError):
    """A seeding transaction reverted or was not mined."""


@dataclass
class RawSender:
    w3: Any
    gas: int = 3_000_000
    max_fee: int = 50 * GWEI
    priority_fee: int = GWEI
    batch: int = 100  # requests per JSON-RPC batch
    wait: float = 30.0  # seconds to wait for the pool to move before "not mined"
    nonces: NonceSource | None = None  # shared with every other sender from these keys
    _senders: set[str] = field(default_factory=set)
    _queue: list[tuple[dict, str]] = field(default_factory=list)  # (tx, label)

    def __post_init__(self) -> None:
        if self.nonces is None:
            self.nonces = NonceSource(self.w3)

    def add(self, account: Any) -> str:
        """Register one of the node's unlocked test accounts."""
        address = self.w3.to_checksum_address(str(getattr(account, "address", account)))
        if address not in self.w3.eth.accounts:
            raise ValueError(f"{address} is not an unlocked account of this node")
        self._senders.add(address)
        return address

    def send(
        self, sender: Any, contract: Any, fn: str, args: list | tuple, label: str = ""
    ) -> None:
        """Queue ``contract.fn(*args)`` (a web3 contract) from ``sender`` for the next
        :meth:`check`; transactions go out in the order queued."""
        address = self.w3.to_checksum_address(str(getattr(sender, "address", sender)))
        if address not in self._senders:
            raise ValueError(f"{address} is not registered with the sender")
        tx = {
            "from": address,
            "to": contract.address,
            "data": contract.encode_abi(fn, args=list(args)),
            "gas": hex(self.gas),
            "maxFeePerGas": hex(self.max_fee),
            "maxPriorityFeePerGas": hex(self.priority_fee),
            "value": "0x0",
        }
        self._queue.append((tx, label or fn))

    def broadcast(self) -> list[tuple[str, str]]:
        """Send the queue, each transaction on a nonce from the source, in JSON-RPC batches
        of ``batch`` requests; mine nothing. Returns (label, hash) in queue order.

        A transaction the node refuses raises :class:`SeedError`; its nonce and those of
        the transactions not sent yet go back to the source."""
        queue, self._queue = self._queue, []
        if not queue:
            return []
        counts: dict[str, int] = {}
        for tx, _ in queue:
            counts[tx["from"]] = counts.get(tx["from"], 0) + 1
        nonces = self.nonces.take_many(counts)
        for tx, _ in queue:  # queue order is nonce order, sender by sender
            tx["nonce"] = hex(nonces[tx["from"]].pop(0))
        sent: list[tuple[str, str]] = []
        for i in range(0, len(queue), self.batch):
            part = queue[i : i + self.batch]
            replies = self.w3.provider.make_batch_request(
                [("eth_sendTransaction", [tx]) for tx, _ in part]
            )
            refused = [
                (tx, label, r) for (tx, label), r in zip(part, replies, strict=True) if "error" in r
            ]
            sent += [
                (label, r["result"])
                for (_, label), r in zip(part, replies, strict=True)
                if "error" not in r
            ]
            if refused:
                unsent = [tx for tx, _, _ in refused] + [tx for tx, _ in queue[i + self.batch :]]
                for tx in unsent:
                    self.nonces.give_back(tx["from"], int(tx["nonce"], 16))
                tx, label, reply = refused[0]
                raise SeedError(
                    f"{label}: refused by the node (from {tx['from']}, nonce "
                    f"{int(tx['nonce'], 16)}): {reply['error']}"
                )
        return sent

    def check(self) -> int:
        """Send the queue and mine it: every transaction must succeed. Returns the count.

        The queue goes out (:meth:`broadcast`) with automining off, and is mined in as many
        blocks as it needs; automining is back on afterwards.
        """
        if not self._queue:
            return 0
        provider = self.w3.provider
        gas_limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        self._rpc("evm_setAutomine", [False])
        # room for a whole batch per block: every transaction reserves `gas`
        raised = max(gas_limit, self.gas * self.batch)
        self._rpc("evm_setBlockGasLimit", [hex(raised)])
        mined = False
        try:
            sent = self.broadcast()
            hashes = [h for _, h in sent]
            receipts: list[Any] = [None] * len(hashes)
            missing = list(range(len(hashes)))
            waited_since = time.monotonic()
            # Mine until every receipt is in. A block that mines none of ours means our
            # transactions wait on a lower nonce another sender from the key has taken
            # but not sent yet: wait for it, up to `wait` seconds without progress.
            while missing:
                self._rpc("evm_mine", [])
                mined = True
                replies = provider.make_batch_request(
                    [("eth_getTransactionReceipt", [hashes[i]]) for i in missing]
                )
                for i, reply in zip(missing, replies, strict=True):
                    receipts[i] = reply.get("result")
                still = [i for i in missing if receipts[i] is None]
                if len(still) < len(missing):
                    waited_since = time.monotonic()
                elif time.monotonic() - waited_since > self.wait:
                    break
                else:
                    time.sleep(0.02)
                missing = still
        finally:
            self._rpc("evm_setBlockGasLimit", [hex(gas_limit)])
            if mined and raised > gas_limit:
                # one empty block at the usual limit: Ape sizes its transactions by the
                # latest block's limit, which a later block would refuse
                self._rpc("evm_mine", [])
            self._rpc("evm_setAutomine", [True])
        for (label, tx_hash), receipt in zip(sent, receipts, strict=True):
            if receipt is None:
                raise SeedError(f"{label}: not mined ({tx_hash})")
            if int(receipt["status"], 16) != 1:
                raise SeedError(f"{label}: reverted ({tx_hash})")
        return len(sent)

    def _rpc(self, method: str, params: list) -> Any:
        reply = self.w3.provider.make_request(method, params)
        if "error" in reply:
            raise SeedError(f"{method}: {reply['error']}")
        return reply.get("result")


def sourced_account(account: Any, nonces: NonceSource) -> Any:
    """``account`` (an Ape test account) sending through Ape with its nonces taken from
    ``nonces``, the source every other sender from its key shares."""
    from ape_test.accounts import TestAccount

    if not isinstance(account, TestAccount):
        raise TypeError(f"{account!r} is not an Ape test account: it cannot share a nonce source")
    cls = _sourced_class()
    sourced = cls(
        index=account.index, address_str=account.address_str, private_key=account.private_key
    )
    sourced._nonces = nonces
    return sourced


@functools.cache
def _sourced_class() -> type:
    from ape_test.accounts import TestAccount
    from pydantic import PrivateAttr

    class SourcedTestAccount(TestAccount):
        """An Ape test account whose nonces come from a shared
        :class:`~offchain_risk.keeper.txs.NonceSource`."""

        _nonces: Any = PrivateAttr(default=None)

        def prepare_transaction(self, txn: Any, **kwargs: Any) -> Any:
            if txn.nonce is not None or self._nonces is None:
                return super().prepare_transaction(txn, **kwargs)
            txn.nonce = self._nonces.take(self.address)
            try:
                return super().prepare_transaction(txn, **kwargs)
            except BaseException:
                self._nonces.give_back(self.address, txn.nonce)
                raise

        def call(self, txn: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().call(txn, *args, **kwargs)
            except BaseException:
                # not mined (refused by the node, or a revert found before sending): its
                # nonce is free again; a mined one is skipped at the next take anyway
                if txn.nonce is not None and self._nonces is not None:
                    self._nonces.give_back(self.address, txn.nonce)
                raise

    return SourcedTestAccount


def lean_web3(uri: str, timeout: float = 60.0) -> Any:
    """A web3 client on ``uri`` without the validation and ENS middleware."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": timeout}))
    for name in ("validation", "ens_name_to_address", "gas_price_strategy"):
        w3.middleware_onion.remove(name)
    return w3
