"""Sending transactions: one owner of the nonce, EIP-1559 fees, geometric gas bumps.

The :class:`TxManager` is the only thing that signs for the keeper's address. It assigns
nonces itself (starting from the chain's count and the store's pending transactions, so a
restart neither reuses a pending nonce nor leaves a gap), records every transaction in the
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
from dataclasses import dataclass
from typing import Any, Protocol

from offchain_risk.keeper.rpc import RPC_ERRORS, RpcError, rpc_batch, rpc_one
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
    ):
        self.w3 = w3
        self.signer = signer
        self.address = w3.to_checksum_address(signer.address)
        self.store = store
        self.gas = gas or GasPolicy()
        self.chain_id = w3.eth.chain_id
        self._next_nonce: int | None = None
        self._head: int | None = None
        self._fees: tuple[int, int] | None = None
        self._seen_nonce: int | None = None  # the chain's count at the last poll
        self._moved_at = 0  # the block at which that count last changed

    # ------------------------------------------------------------------ nonce

    def sync_nonce(self) -> int:
        """The next nonce: the chain's count, or past every pending transaction we sent."""
        chain = self._chain_nonce()
        pending = [t.nonce for t in self.store.txs(PENDING) if t.target]
        self._next_nonce = max([chain, *[n + 1 for n in pending]])
        return self._next_nonce

    @property
    def next_nonce(self) -> int:
        if self._next_nonce is None:
            return self.sync_nonce()
        return self._next_nonce

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

    def _broadcast(self, tx: SentTx) -> str:
        raw, tx_hash = self.signer.sign(
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
        tx.hash = tx_hash
        if not self.store.txs_by_hash(tx_hash):
            self.store.add_tx(tx)
        try:
            rpc_one(self.w3, "eth_sendRawTransaction", ["0x" + raw.hex()])
        except RPC_ERRORS:
            raise  # recorded as pending: re-broadcast when found stuck
        except RpcError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return tx_hash
            self.store.set_status(tx_hash, DROPPED)
            raise SendError(str(exc)) from exc
        return tx_hash

    def send(self, kind: str, to: str, data: str, gas: int, account: int | None = None) -> SentTx:
        """Sign and broadcast a new transaction on the next nonce."""
        nonce = self.next_nonce
        max_fee, tip = self.fees()
        tx = SentTx(
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
        try:
            self._broadcast(tx)
        except SendError as exc:
            if "nonce too low" in str(exc).lower():
                self.sync_nonce()
            raise
        self._next_nonce = nonce + 1
        log.info("sent %s nonce=%d hash=%s account=%s", kind, nonce, tx.hash, account)
        return tx

    # ------------------------------------------------------------------ follow

    def poll(self, head: int | None = None) -> PollResult:
        """Settle mined transactions and bump the stuck ones."""
        if head is None:
            head = self.w3.eth.block_number
        self.begin(head)
        confirmed, failed, bumped, dropped = [], [], [], []
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
            if nonce < chain_nonce:  # the nonce was used by a transaction we do not know
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
