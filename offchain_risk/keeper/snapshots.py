"""Signed rate-cap snapshots of vault shares (``RateSnapshots.vy``).

The risk governor's signers sign an EIP-712 ``RateSnapshot``; a relayer (not a signer)
submits it with M signatures sorted by signer address. The engine checks what a snapshot
may be (newer, at least seven days old, within the cap in force); this module only builds,
signs and submits it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eip712.messages import EIP712Domain, EIP712Message
from eth_pydantic_types import abi

from offchain_risk.chain import signature_bytes


class RateSnapshot(EIP712Message):
    """The typed snapshot; field names and order match ``RateSnapshots.SNAPSHOT_TYPEHASH``."""

    asset: abi.uint256
    ratio: abi.uint256
    timestamp: abi.uint256
    max_growth_bps: abi.uint256
    nonce: abi.uint256
    deadline: abi.uint256


def snapshot_message(
    snapshots: Any,
    asset: int,
    ratio: int,
    timestamp: int,
    max_growth_bps: int,
    deadline: int,
    nonce: int | None = None,
) -> RateSnapshot:
    """A ``RateSnapshot`` under ``snapshots``' domain, with its next nonce unless given."""
    _, name, version, chain_id, verifying, _, _ = snapshots.eip712Domain()
    return RateSnapshot(
        asset=int(asset),
        ratio=int(ratio),
        timestamp=int(timestamp),
        max_growth_bps=int(max_growth_bps),
        nonce=int(snapshots.next_nonce() if nonce is None else nonce),
        deadline=int(deadline),
        eip712_domain=EIP712Domain(
            name=name, version=version, chainId=chain_id, verifyingContract=verifying
        ),
    )


def sign_snapshot(message: RateSnapshot, signers: Sequence[Any]) -> list[bytes]:
    """65-byte signatures by ``signers`` (Ape accounts), sorted by signer address."""
    ordered = sorted(signers, key=lambda a: int(str(a), 16))
    return [signature_bytes(s.sign_message(message)) for s in ordered]


def snapshot_args(message: RateSnapshot) -> tuple[int, ...]:
    """The struct as ``RateSnapshots.submit`` takes it."""
    return (
        message.asset,
        message.ratio,
        message.timestamp,
        message.max_growth_bps,
        message.nonce,
        message.deadline,
    )
