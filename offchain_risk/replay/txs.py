"""A fast sender for seeding and feeding a local devnet: receipts checked in bulk.

Seeding a few hundred accounts takes well over a thousand transactions; through Ape each
costs a confirmation round trip and a Python signature. :class:`RawSender` sends from the
node's own unlocked test accounts (``eth_sendTransaction``: anvil signs, in native code)
with a fixed gas limit, and checks every receipt in :meth:`RawSender.check`, which raises on
the first failure with the label it was sent under. On an automining node each
transaction is mined in the order sent, so a later one may rely on an earlier one.

:func:`lean_web3` is a web3 client for the same node without the per-request validation
middleware (it asks the node for its chain id on every call): the replay's keepers and
sender use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GWEI = 10**9


class SeedError(RuntimeError):
    """A seeding transaction reverted or was not mined."""


@dataclass
class RawSender:
    w3: Any
    gas: int = 3_000_000
    max_fee: int = 50 * GWEI
    priority_fee: int = GWEI
    timeout: float = 60.0
    _senders: set[str] = field(default_factory=set)
    _sent: list[tuple[str, str]] = field(default_factory=list)  # (hash, label)

    def add(self, account: Any) -> str:
        """Register one of the node's unlocked test accounts."""
        address = self.w3.to_checksum_address(str(getattr(account, "address", account)))
        if address not in self.w3.eth.accounts:
            raise ValueError(f"{address} is not an unlocked account of this node")
        self._senders.add(address)
        return address

    def send(self, sender: Any, contract: Any, fn: str, args: list | tuple, label: str = "") -> str:
        """Call ``contract.fn(*args)`` (a web3 contract) from ``sender``; the tx hash."""
        address = self.w3.to_checksum_address(str(getattr(sender, "address", sender)))
        if address not in self._senders:
            raise ValueError(f"{address} is not registered with the sender")
        tx = {
            "from": address,
            "to": contract.address,
            "data": contract.encode_abi(fn, args=list(args)),
            "gas": self.gas,
            "maxFeePerGas": self.max_fee,
            "maxPriorityFeePerGas": self.priority_fee,
            "value": 0,
        }
        tx_hash = self.w3.to_hex(self.w3.eth.send_transaction(tx))
        self._sent.append((tx_hash, label or f"{fn}{tuple(args)}"))
        return tx_hash

    def check(self) -> int:
        """Every transaction sent since the last check was mined and succeeded; their count."""
        sent, self._sent = self._sent, []
        for tx_hash, label in sent:
            try:
                # an automining node mines right after it answers: wait for the receipt
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self.timeout, poll_latency=0.02
                )
            except Exception as exc:  # web3's TimeExhausted
                raise SeedError(f"{label}: not mined ({tx_hash}): {exc}") from exc
            if int(receipt["status"]) != 1:
                raise SeedError(f"{label}: reverted ({tx_hash})")
        return len(sent)


def lean_web3(uri: str, timeout: float = 60.0) -> Any:
    """A web3 client on ``uri`` without the validation and ENS middleware."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": timeout}))
    for name in ("validation", "ens_name_to_address", "gas_price_strategy"):
        w3.middleware_onion.remove(name)
    return w3
