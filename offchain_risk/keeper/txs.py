"""Sending transactions: one source of nonces per key, EIP-1559 fees, geometric gas bumps.

A :class:`NonceSource` hands out the nonces of every key a process sends from. Everything
that sends from one key takes its nonces from the same source: the :class:`TxManager` here,
the replay's :class:`~offchain_risk.replay.txs.RawSender`, and Ape accounts wrapped by
:func:`~offchain_risk.replay.txs.sourced_account`. A node that picks the nonce itself
(``eth_sendTransaction`` without one) gives two concurrent requests from one key, even two
requests of one JSON-RPC batch, the same nonce: the second is refused as an underpriced
replacement or, with a higher fee, silently replaces the first.

The :class:`TxManager` signs for the keeper's address. It takes its nonces from its source
(floored by the store's pending transactions, so a restart neither reuses a pending nonce nor
leaves a gap), records every transaction in the
:class:`~offchain_risk.keeper.store.Store` before broadcasting it, and on every block:

* marks mined transactions confirmed or failed (and the other versions of the same nonce
  dropped);
* when none of its transactions was mined for ``stuck_blocks`` blocks, re-sends each pending
  one on its nonce with both fees raised by ``bump`` (at least the 10% a node needs to accept
  a replacement), up to ``max_fee_cap``; a transaction the node lost is re-broadcast the same
  way. A queue that moves is not bumped: it waits for block space, not for a higher fee.

Signers: :class:`LocalSigner` (a raw key, e.g. an Ape test account's) or :class:`ApeSigner`
(any Ape account: keyfile, hardware).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from offchain_risk.keeper.rpc import RpcError, rpc_batch, rpc_one
from offchain_risk.keeper.store import (
    CONFIRMED,
    DROPPED,
    FAILED,
    PENDING,
    REPLACED,
    SentTx,
    Store,
)

log = logging.getLogger("ballast.keeper.txs")
GWEI = 10**9


class Signer(Protocol):
    address: str

    def sign(self, tx: dict) -> tuple[bytes, str]:
        """(raw signed transaction, its hash as 0x-hex)."""


class LocalSigner:
    """Signs with a private key held in memory."""

    def __init__(self, private_key: str | bytes):
        from eth_account import Account

        self._account = Account.from_key(private_key)
        self.address = self._account.address

    def sign(self, tx: dict) -> tuple[bytes, str]:
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


class ApeSigner:
    """Signs with an Ape account (``ape accounts`` keyfile, hardware wallet, test account)."""

    def __init__(self, account: Any):
        self._account = account
        self.address = str(account.address)

    def sign(self, tx: dict) -> tuple[bytes, str]:
        from ape import networks

        txn = networks.provider.network.ecosystem.create_transaction(
            chain_id=tx["chainId"],
            nonce=tx["nonce"],
            receiver=tx["to"],
            data=bytes.fromhex(tx["data"].removeprefix("0x")),
            gas_limit=tx["gas"],
            max_fee=tx["maxFeePerGas"],
            max_priority_fee=tx["maxPriorityFeePerGas"],
            value=tx.get("value", 0),
            type=2,
        )
        signed = self._account.sign_transaction(txn)
        if signed is None:
            raise RuntimeError(f"{self.address} declined to sign")
        return bytes(signed.serialize_transaction()), "0x" + bytes(signed.txn_hash).hex()


def signer_for(account: Any) -> Signer:
    """A :class:`LocalSigner` when the Ape account exposes its key (test accounts), else an
    :class:`ApeSigner`."""
    key = getattr(account, "private_key", None)
    return LocalSigner(key) if key else ApeSigner(account)


@dataclass(frozen=True)
class GasPolicy:
    """EIP-1559 fees: ``max_fee = base_fee_multiplier * base fee + tip``; a stuck
    transaction is re-sent after ``stuck_blocks`` blocks with both fees times ``bump``."""

    priority_fee: int = GWEI
    base_fee_multiplier: int = 2
    bump: float = 1.25
    stuck_blocks: int = 3
    max_fee_cap: int = 500 * GWEI

    def __post_init__(self) -> None:
        if self.bump < 1.1:
            raise ValueError("bump must be >= 1.1: nodes refuse smaller replacements")
        if self.stuck_blocks < 1 or self.base_fee_multiplier < 1:
            raise ValueError("stuck_blocks and base_fee_multiplier must be >= 1")
        if self.priority_fee < 0 or self.max_fee_cap <= 0:
            raise ValueError("fees must be positive")


class NonceSource:
    """The next nonce of each key this process sends from: one source per key, shared by
    every sender from that key.

    :meth:`take` hands out, for each key, first any nonce given back out of order (a gap the
    node would otherwise wait on forever), then ``max(the node's pending count, next)``:
    the node's count covers what other processes sent (and a transaction mined before this
    source first saw the key), ``next`` what this process has sent and the node may not have
    pooled yet. Thread-safe: the node is asked under the lock.
    """

    def __init__(self, w3: Any):
        self.w3 = w3
        self._next: dict[str, int] = {}
        self._holes: dict[str, set[int]] = {}  # nonces given back below ``next``
        self._lock = threading.Lock()

    def _key(self, address: Any) -> str:
        return self.w3.to_checksum_address(str(getattr(address, "address", address)))

    def _counts(self, keys: list[str]) -> list[int]:
        answers = rpc_batch(
            self.w3, [("eth_getTransactionCount", [key, "pending"]) for key in keys]
        )
        for a in answers:
            if isinstance(a, RpcError):
                raise a
        return [int(a, 16) for a in answers]

    def take(self, address: Any) -> int:
        """One nonce for ``address``, never handed out before."""
        key = self._key(address)
        return self.take_many({key: 1})[key][0]

    def take_many(self, counts: dict[Any, int]) -> dict[str, list[int]]:
        """``counts[address]`` nonces for each address (one request to the node for all),
        in the order they should be sent; keys of the answer are checksum addresses."""
        wanted: dict[str, int] = {}
        for address, n in counts.items():
            if n < 0:
                raise ValueError("a negative number of nonces")
            key = self._key(address)
            wanted[key] = wanted.get(key, 0) + n
        keys = [k for k, n in wanted.items() if n]
        out: dict[str, list[int]] = {k: [] for k in wanted}
        if not keys:
            return out
        with self._lock:
            for key, node in zip(keys, self._counts(keys), strict=True):
                holes = sorted(h for h in self._holes.pop(key, set()) if h >= node)
                n = wanted[key]
                got = holes[:n]
                self._holes[key] = set(holes[n:])
                first = max(node, self._next.get(key, 0))
                got += range(first, first + n - len(got))
                self._next[key] = max(first, got[-1] + 1)
                out[key] = got
        return out

    def give_back(self, address: Any, nonces: list[int] | int) -> None:
        """Return nonces that were never broadcast (the node refused them, or signing failed).
        The next :meth:`take` for the key hands them out again, lowest first."""
        key = self._key(address)
        nonces = [nonces] if isinstance(nonces, int) else list(nonces)
        with self._lock:
            holes = self._holes.setdefault(key, set())
            holes.update(nonces)
            nxt = self._next.get(key, 0)
            while nxt - 1 in holes:  # the last ones handed out: just move back
                nxt -= 1
                holes.discard(nxt)
            self._next[key] = nxt
            self._holes[key] = {h for h in holes if h < nxt}

    def at_least(self, address: Any, nonce: int) -> None:
        """Never hand out a nonce below ``nonce`` for ``address`` (e.g. past transactions a
        store knows are pending but the node may have lost)."""
        key = self._key(address)
        with self._lock:
            self._next[key] = max(self._next.get(key, 0), nonce)
            self._holes[key] = {h for h in self._holes.get(key, set()) if h >= nonce}

    def peek(self, address: Any) -> int:
        """The nonce :meth:`take` would hand out next, without taking it."""
        key = self._key(address)
        with self._lock:
            node = self._counts([key])[0]
            holes = [h for h in self._holes.get(key, set()) if h >= node]
            return min(holes) if holes else max(node, self._next.get(key, 0))


class SendError(RuntimeError):
    """The node refused a transaction (not an unreachable endpoint)."""


@dataclass(frozen=True)
class PollResult:
    confirmed: list[SentTx]
    failed: list[SentTx]
    bumped: list[SentTx]
    dropped: list[SentTx]


class TxManager:
    def __init__(
        self,
        w3: Any,
        signer: Signer,
        store: Store,
        gas: GasPolicy | None = None,
        nonces: NonceSource | None = None,
    ):
        """``nonces``: the source every other sender from the same key takes from (its own
        one when None: then nothing else may send from the key while it runs)."""
        self.w3 = w3
        self.signer = signer
        self.address = w3.to_checksum_address(signer.address)
        self.store = store
        self.gas = gas or GasPolicy()
        self.nonces = nonces if nonces is not None else NonceSource(w3)
        self.chain_id = w3.eth.chain_id
        self._synced = False
        self._head: int | None = None
        self._fees: tuple[int, int] | None = None
        self._seen_nonce: int | None = None  # the chain's count at the last poll
        self._moved_at = 0  # the block at which that count last changed

    # ------------------------------------------------------------------ nonce

    def sync_nonce(self) -> int:
        """The next nonce: the source's, past every pending transaction the store holds."""
        pending = [t.nonce for t in self.store.txs(PENDING) if t.target]
        if pending:
            self.nonces.at_least(self.address, max(pending) + 1)
        self._synced = True
        return self.nonces.peek(self.address)

    @property
    def next_nonce(self) -> int:
        if not self._synced:
            return self.sync_nonce()
        return self.nonces.peek(self.address)

    def _chain_nonce(self) -> int:
        return int(rpc_one(self.w3, "eth_getTransactionCount", [self.address, "latest"]), 16)

    def in_flight(self, kind: str | None = None) -> list[SentTx]:
        return self.store.txs(PENDING, kind)

    # ------------------------------------------------------------------ fees

    def fees(self) -> tuple[int, int]:
        """(max_fee, priority_fee) for a new transaction; read once per block."""
        if self._fees is None:
            block = rpc_one(self.w3, "eth_getBlockByNumber", ["pending", False])
            base = int(block.get("baseFeePerGas") or "0x0", 16)
            tip = self.gas.priority_fee
            self._fees = (min(self.gas.base_fee_multiplier * base + tip, self.gas.max_fee_cap), tip)
        return self._fees

    def begin(self, head: int) -> None:
        """A new block: fees are read again."""
        self._head, self._fees = head, None

    # ------------------------------------------------------------------ send

    def _sign(self, tx: SentTx) -> str:
        """Sign ``tx`` (its hash set) and return the raw transaction as 0x-hex."""
        raw, tx.hash = self.signer.sign(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": tx.nonce,
                "to": tx.target,
                "data": tx.payload,
                "gas": tx.gas,
                "maxFeePerGas": tx.max_fee,
                "maxPriorityFeePerGas": tx.priority_fee,
                "value": 0,
            }
        )
        return "0x" + raw.hex()

    def _broadcast_all(self, txs: list[SentTx], raws: list[str]) -> list[SendError | None]:
        """Record the signed ``txs`` as pending, then broadcast them in one JSON-RPC batch.
        Entry i of the answer is None (the node took it) or the :class:`SendError` of its
        refusal (recorded as dropped). An unreachable endpoint raises: the transactions stay
        pending and are re-broadcast when found stuck."""
        for tx in txs:
            if not self.store.txs_by_hash(tx.hash):
                self.store.add_tx(tx)
        answers = rpc_batch(self.w3, [("eth_sendRawTransaction", [raw]) for raw in raws])
        out: list[SendError | None] = []
        for tx, answer in zip(txs, answers, strict=True):
            if isinstance(answer, RpcError):
                text = str(answer).lower()
                if "already known" in text or "already imported" in text:
                    out.append(None)
                    continue
                self.store.set_status(tx.hash, DROPPED)
                out.append(SendError(str(answer)))
            else:
                out.append(None)
        return out

    def _broadcast(self, tx: SentTx) -> str:
        raw = self._sign(tx)
        [refused] = self._broadcast_all([tx], [raw])
        if refused is not None:
            raise refused
        return tx.hash

    def _new(self, kind: str, to: str, data: str, gas: int, account: int | None, nonce: int):
        max_fee, tip = self.fees()
        return SentTx(
            hash="",
            nonce=nonce,
            kind=kind,
            account=account,
            status=PENDING,
            max_fee=max_fee,
            priority_fee=tip,
            sent_block=self._head if self._head is not None else self.w3.eth.block_number,
            payload=data,
            target=self.w3.to_checksum_address(to),
            gas=gas,
        )

    def send(self, kind: str, to: str, data: str, gas: int, account: int | None = None) -> SentTx:
        """Sign and broadcast a new transaction on the next nonce."""
        if not self._synced:
            self.sync_nonce()
        self.fees()
        nonce = self.nonces.take(self.address)
        tx = self._new(kind, to, data, gas, account, nonce)
        try:
            self._broadcast(tx)
        except SendError:
            # refused: the nonce is free again (a "nonce too low" one is skipped at the next
            # take, which asks the node)
            self.nonces.give_back(self.address, nonce)
            raise
        except Exception:
            # never signed: nothing stored or broadcast. Signed, the endpoint failed: stored
            # as pending, and re-broadcast on its nonce when found stuck.
            if not tx.hash:
                self.nonces.give_back(self.address, nonce)
            raise
        log.info("sent %s nonce=%d hash=%s account=%s", kind, nonce, tx.hash, account)
        return tx

    def send_many(
        self, kind: str, items: list[tuple[str, str, int, int | None]]
    ) -> list[SentTx | SendError]:
        """Sign and broadcast new transactions, each ``(to, data, gas, account)``, on
        consecutive nonces: one nonce request and one JSON-RPC batch for all of them (a
        block's liquidations; one request each cost about 30 ms of round trips). Entry i of
        the answer is the sent transaction, or the :class:`SendError` of the node's refusal:
        that nonce goes back to the source, and the next send fills the gap it leaves. A
        signing failure sends nothing and gives every nonce back; an unreachable endpoint
        raises with all of them recorded as pending (re-broadcast when found stuck)."""
        if not items:
            return []
        if not self._synced:
            self.sync_nonce()
        self.fees()
        nonces = self.nonces.take_many({self.address: len(items)})[self.address]
        txs = [
            self._new(kind, to, data, gas, account, nonce)
            for (to, data, gas, account), nonce in zip(items, nonces, strict=True)
        ]
        try:
            raws = [self._sign(tx) for tx in txs]
        except Exception:
            self.nonces.give_back(self.address, nonces)
            raise
        refusals = self._broadcast_all(txs, raws)
        out: list[SentTx | SendError] = []
        for tx, refused in zip(txs, refusals, strict=True):
            if refused is not None:
                self.nonces.give_back(self.address, tx.nonce)
                out.append(refused)
            else:
                log.info("sent %s nonce=%d hash=%s account=%s", kind, tx.nonce, tx.hash, tx.account)
                out.append(tx)
        return out

    # ------------------------------------------------------------------ follow

    def poll(self, head: int | None = None) -> PollResult:
        """Settle mined transactions and bump the stuck ones."""
        if head is None:
            head = self.w3.eth.block_number
        self.begin(head)
        confirmed, failed, bumped, dropped = [], [], [], []
        previous = self._seen_nonce  # the chain's count at the last poll (None: first one)
        chain_nonce = self._chain_nonce()
        if chain_nonce != self._seen_nonce:
            self._seen_nonce, self._moved_at = chain_nonce, head
        live = self.store.txs(PENDING) + self.store.txs(REPLACED)
        if not live:
            return PollResult(confirmed, failed, bumped, dropped)
        by_nonce: dict[int, list[SentTx]] = {}
        for t in live:
            by_nonce.setdefault(t.nonce, []).append(t)
        answers = rpc_batch(self.w3, [("eth_getTransactionReceipt", [t.hash]) for t in live])
        receipts = {}
        for t, r in zip(live, answers, strict=True):
            if isinstance(r, RpcError):
                raise r
            if r is not None:
                receipts[t.hash] = r
        for nonce, versions in sorted(by_nonce.items()):
            mined = next(((t, receipts[t.hash]) for t in versions if t.hash in receipts), None)
            if mined is not None:
                t, receipt = mined
                ok = int(receipt["status"], 16) == 1
                block = int(receipt["blockNumber"], 16)
                self.store.set_status(t.hash, CONFIRMED if ok else FAILED, block)
                t.mined_block = block
                (confirmed if ok else failed).append(t)
                for other in versions:
                    if other.hash != t.hash:
                        self.store.set_status(other.hash, DROPPED)
                continue
            if nonce < chain_nonce:
                # Used by a transaction we do not know, but only once a later poll still finds
                # no receipt: a node may count a nonce before it serves the receipt of the block
                # that used it, and a liquidation marked dropped then would leave its account
                # looking liquidatable and free, to a preview that reverts on the chain.
                if previous is not None and nonce < previous:
                    for t in versions:
                        self.store.set_status(t.hash, DROPPED)
                        dropped.append(t)
                continue
            # Stuck: no transaction of ours was mined for stuck_blocks blocks. A queue that
            # moves (a full block of our own liquidations) is waiting for space, not stuck,
            # and bumping it would only re-send every queued transaction.
            current = max(versions, key=lambda t: t.max_fee)
            waited = head - max(current.sent_block, self._moved_at)
            if current.status == PENDING and waited >= self.gas.stuck_blocks:
                new = self._bump(current, head)
                if new is not None:
                    bumped.append(new)
        return PollResult(confirmed, failed, bumped, dropped)

    def _bump(self, old: SentTx, head: int) -> SentTx | None:
        max_fee_now, tip_now = self.fees()
        max_fee = max(int(old.max_fee * self.gas.bump) + 1, max_fee_now)
        tip = max(int(old.priority_fee * self.gas.bump) + 1, tip_now)
        if max_fee > self.gas.max_fee_cap:
            if old.max_fee >= self.gas.max_fee_cap:
                log.warning("nonce %d stuck at the fee cap %d", old.nonce, old.max_fee)
                return None
            max_fee = self.gas.max_fee_cap
        tip = min(tip, max_fee)
        new = SentTx(
            hash="",
            nonce=old.nonce,
            kind=old.kind,
            account=old.account,
            status=PENDING,
            max_fee=max_fee,
            priority_fee=tip,
            sent_block=head,
            payload=old.payload,
            target=old.target,
            gas=old.gas,
        )
        try:
            self._broadcast(new)
        except SendError as exc:
            log.warning("bump of nonce %d refused: %s", old.nonce, exc)
            return None
        self.store.set_status(old.hash, REPLACED)
        log.info(
            "bumped nonce %d: max fee %d -> %d (%s -> %s)",
            old.nonce,
            old.max_fee,
            max_fee,
            old.hash,
            new.hash,
        )
        return new
