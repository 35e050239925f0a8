"""Signed implied-volatility curves: from a fitted curve to a confirmed ``VolFeed`` entry.

The chain side is ``contracts/VolFeed.vy``; its rules are mirrored here so that the keeper
only signs what the feed accepts: the underlying listed, the expiry on the 08:00 UTC grid,
not passed and at most ``MAX_OPTION_TIME`` away, the observation time newer than the
curve's, not in the future and within the heartbeat, every parameter within the bounds,
the nonce the feed's ``next_nonce``. :func:`curve_vol` is the exact twin of the feed's
``vol`` (Python ints, equal to the wei).

Keys: feed signers are Ape accounts (test accounts, or keyfile accounts unlocked as in
:func:`offchain_risk.keeper.signer.load_signer`); the relayer is a different account: the
feed refuses a signer as relayer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eip712.messages import EIP712Domain, EIP712Message
from eth_account import Account
from eth_pydantic_types import abi

from offchain_risk.chain import signature_bytes
from offchain_risk.keeper.signer import SECP256K1_N
from offchain_risk.models.options import wad_ln
from offchain_risk.units import (
    MAX_MONEYNESS,
    MAX_OPTION_TIME,
    MAX_PRICE,
    MAX_VOL,
    MIN_MONEYNESS,
    MIN_OPTION_PRICE,
    MIN_VOL,
    WAD,
    to_wad,
)

# contracts/VolFeed.vy
DAY = 86_400
EXPIRY_TIME = 8 * 3_600
MAX_SKEW = 2 * WAD
MAX_CURVATURE = 5 * WAD


class VolUpdate(EIP712Message):
    """The typed update; field names and order match ``VolFeed.UPDATE_TYPEHASH``."""

    underlying: abi.uint256
    expiry: abi.uint256
    atm_vol: abi.uint256
    skew: abi.int256
    curvature: abi.uint256
    forward: abi.uint256
    observed_at: abi.uint256
    nonce: abi.uint256
    deadline: abi.uint256


def update_tuple(update: VolUpdate) -> tuple:
    """The struct argument of ``VolFeed.submit``."""
    return (
        update.underlying,
        update.expiry,
        update.atm_vol,
        update.skew,
        update.curvature,
        update.forward,
        update.observed_at,
        update.nonce,
        update.deadline,
    )


@dataclass(frozen=True)
class VolCurve:
    """One curve, on-chain units: vols, skew and curvature WAD, forward WAD (USD)."""

    underlying: int
    expiry: int  # unix seconds, 08:00 UTC
    atm_vol: int
    skew: int
    curvature: int
    forward: int

    @classmethod
    def from_floats(
        cls,
        underlying: int,
        expiry: int,
        atm_vol: float,
        skew: float,
        curvature: float,
        forward: float,
    ) -> VolCurve:
        """From decimal values (0.65 for 65% vol, USD forward), exactly as written."""
        return cls(
            int(underlying),
            int(expiry),
            to_wad(atm_vol),
            to_wad(skew),
            to_wad(curvature),
            to_wad(forward),
        )

    def check(self, now: int, heartbeat: int, observed_at: int, last_observed: int) -> None:
        """The feed's checks on this curve observed at ``observed_at``: ValueError naming
        the first that fails, with the feed's message."""
        if heartbeat == 0:
            raise ValueError("volfeed: unknown underlying")
        if self.expiry % DAY != EXPIRY_TIME:
            raise ValueError("volfeed: expiry off grid")
        if self.expiry <= now:
            raise ValueError("volfeed: expiry passed")
        if self.expiry - now > MAX_OPTION_TIME:
            raise ValueError("volfeed: expiry too far")
        if observed_at > now:
            raise ValueError("volfeed: observed in the future")
        if now - observed_at > heartbeat:
            raise ValueError("volfeed: stale update")
        if observed_at <= last_observed:
            raise ValueError("volfeed: not newer")
        if not MIN_VOL <= self.atm_vol <= MAX_VOL:
            raise ValueError("volfeed: bad atm vol")
        if not -MAX_SKEW <= self.skew <= MAX_SKEW:
            raise ValueError("volfeed: bad skew")
        if not 0 <= self.curvature <= MAX_CURVATURE:
            raise ValueError("volfeed: bad curvature")
        if not MIN_OPTION_PRICE <= self.forward <= MAX_PRICE:
            raise ValueError("volfeed: bad forward")


def _tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def curve_vol(atm_vol: int, skew: int, curvature: int, forward: int, strike: int) -> int | None:
    """``VolFeed.vol``'s value for ``strike`` (WAD), to the wei; None where the feed reads
    (0, False) because the strike is outside the pricing domain."""
    if not MIN_OPTION_PRICE <= strike <= MAX_PRICE:
        return None
    ratio = strike * WAD // forward
    if not MIN_MONEYNESS <= ratio <= MAX_MONEYNESS:
        return None
    x = wad_ln(ratio)
    v = atm_vol + _tdiv(skew * x, WAD) + _tdiv(curvature * _tdiv(x * x, WAD), WAD)
    return min(max(v, MIN_VOL), MAX_VOL)


class VolSigner:
    """Signs, submits and confirms curves on one ``VolFeed``.

    ``signers``: Ape accounts registered on the feed (at least its threshold);
    ``relayer``: the account that pays for the submission (not a signer).
    """

    def __init__(self, feed: Any, signers: Sequence[Any], relayer: Any, ttl: int = 600):
        self.feed = feed
        self.signers = list(signers)
        self.relayer = relayer
        self.ttl = ttl
        if any(str(s) == str(relayer) for s in self.signers):
            raise ValueError("the relayer must not be a feed signer")

    def domain(self) -> EIP712Domain:
        _, name, version, chain_id, verifying, _, _ = self.feed.eip712Domain()
        return EIP712Domain(
            name=name, version=version, chainId=chain_id, verifyingContract=verifying
        )

    def message(self, curve: VolCurve, observed_at: int, nonce: int, deadline: int) -> VolUpdate:
        return VolUpdate(
            underlying=curve.underlying,
            expiry=curve.expiry,
            atm_vol=curve.atm_vol,
            skew=curve.skew,
            curvature=curve.curvature,
            forward=curve.forward,
            observed_at=observed_at,
            nonce=nonce,
            deadline=deadline,
            eip712_domain=self.domain(),
        )

    def sign(self, message: VolUpdate) -> list[bytes]:
        """Every signer's 65-byte signature, recovered locally, low-s, sorted by address."""
        sigs = []
        for signer in self.signers:
            sig = signer.sign_message(message)
            if sig is None:
                raise RuntimeError(f"{signer} declined to sign the vol update")
            raw = signature_bytes(sig)
            recovered = Account.recover_message(message.signable_message, signature=raw)
            if recovered.lower() != str(signer).lower():
                raise RuntimeError(f"signature of {signer} recovers to {recovered}")
            if int.from_bytes(raw[32:64], "big") > SECP256K1_N // 2:
                raise RuntimeError(f"signature of {signer} has a high s: the chain refuses it")
            sigs.append((int(str(signer), 16), raw))
        return [raw for _, raw in sorted(sigs)]

    def submit(self, message: VolUpdate, signatures: list[bytes]) -> Any:
        return self.feed.submit(update_tuple(message), signatures, sender=self.relayer)

    def publish(self, curve: VolCurve, observed_at: int | None = None) -> VolUpdate:
        """Check against the feed's rules, sign, submit and read the curve back.
        ``observed_at`` defaults to the head block's time."""
        from ape import chain

        now = chain.blocks.head.timestamp
        observed_at = now if observed_at is None else int(observed_at)
        last = self.feed.curve(curve.underlying, curve.expiry).observed_at
        curve.check(now, self.feed.heartbeat(curve.underlying), observed_at, last)
        message = self.message(curve, observed_at, self.feed.next_nonce(), now + self.ttl)
        self.submit(message, self.sign(message))
        got = self.feed.curve(curve.underlying, curve.expiry)
        want = (curve.atm_vol, curve.skew, curve.curvature, curve.forward, observed_at)
        if tuple(got) != want:
            raise RuntimeError(f"feed holds {tuple(got)}, published {want}")
        return message
