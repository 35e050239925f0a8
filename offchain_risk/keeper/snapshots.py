"""Signed rate caps (``RateSnapshots.vy``): vault-share snapshots and funding-cap cuts.

The risk governor's signers sign an EIP-712 ``RateSnapshot`` (a vault's rate-cap snapshot)
or ``FundingCap`` (a perp market's funding cap, lowered); a relayer (not a signer) submits
it with M signatures sorted by signer address. Both share one nonce sequence. The engine
checks what a message may do (a snapshot newer, at least seven days old, within the cap in
force; a funding cap lower than the one in force); this module only builds and signs them.
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


class FundingCap(EIP712Message):
    """The typed funding-cap cut; fields match ``RateSnapshots.FUNDING_CAP_TYPEHASH``."""

    market: abi.uint256
    cap: abi.uint256
    nonce: abi.uint256
    deadline: abi.uint256


def _domain(snapshots: Any) -> EIP712Domain:
    _, name, version, chain_id, verifying, _, _ = snapshots.eip712Domain()
    return EIP712Domain(name=name, version=version, chainId=chain_id, verifyingContract=verifying)


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
    return RateSnapshot(
        asset=int(asset),
        ratio=int(ratio),
        timestamp=int(timestamp),
        max_growth_bps=int(max_growth_bps),
        nonce=int(snapshots.next_nonce() if nonce is None else nonce),
        deadline=int(deadline),
        eip712_domain=_domain(snapshots),
    )


def funding_cap_message(
    snapshots: Any, market: int, cap: int, deadline: int, nonce: int | None = None
) -> FundingCap:
    """A ``FundingCap`` (``cap``: WAD per hour) under ``snapshots``' domain, with its next
    nonce unless given."""
    return FundingCap(
        market=int(market),
        cap=int(cap),
        nonce=int(snapshots.next_nonce() if nonce is None else nonce),
        deadline=int(deadline),
        eip712_domain=_domain(snapshots),
    )


def sign_message(message: EIP712Message, signers: Sequence[Any]) -> list[bytes]:
    """65-byte signatures by ``signers`` (Ape accounts), sorted by signer address."""
    ordered = sorted(signers, key=lambda a: int(str(a), 16))
    return [signature_bytes(s.sign_message(message)) for s in ordered]


def funding_cap_args(message: FundingCap) -> tuple[int, ...]:
    """The struct as ``RateSnapshots.submit_funding_cap`` takes it."""
    return (message.market, message.cap, message.nonce, message.deadline)


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
