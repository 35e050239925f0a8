"""Signed implied-volatility curves: from a fitted curve to a confirmed ``VolFeed`` entry.

The chain side is ``contracts/VolFeed.vy``; its rules are mirrored here so that the keeper
only signs what the feed accepts: the underlying listed, the expiry on the 08:00 UTC grid,
not passed and at most ``MAX_OPTION_TIME`` away, the observation time newer than the
curve's, not in the future and within the heartbeat, every parameter within the bounds,
the nonce the feed's ``next_nonce``. :func:`curve_vol` is the exact twin of the feed's
``vol`` (Python ints, equal to the wei).

Keys: feed signers are Ape accounts (test accounts, or keyfile accounts unlocked as in
:func:`offchain_risk.keeper.signer.load_signer`); the relayer is a different account: the
feed refuses a signer as relayer. Two ways to submit: an Ape ``relayer`` (the console, the
tests: sent, mined and read back at once), or the keeper's
:class:`~offchain_risk.keeper.txs.TxManager` (``tx``) on a :class:`Web3Feed`: the update is
sent from the keeper's key on the nonces of its one source, as kind ``vol_update``, and
followed (confirmed, failed, bumped) by the manager's poll like every keeper transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eip712.messages import EIP712Domain, EIP712Message
from eth_pydantic_types import abi

from offchain_risk.keeper.signer import sign_all
from offchain_risk.models.options import wad_ln
from offchain_risk.units import (
    DAY,
    HOUR,
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
EXPIRY_TIME = 8 * HOUR
MAX_SKEW = 2 * WAD
MAX_CURVATURE = 5 * WAD
#: The keeper's transactions of vol updates (``SentTx.kind``).
VOL_KIND = "vol_update"
#: Gas limit of one ``submit`` sent by the keeper: the first curve of an expiry with M = 2
#: executes in ~158k (benchmarks/gas-snapshot.json), each further signature ~7k, plus the
#: intrinsic and calldata cost.
VOL_SUBMIT_GAS = 400_000


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


class Curve(NamedTuple):
    """``VolFeed.curve``'s struct, field by field."""

    atm_vol: int
    skew: int
    curvature: int
    forward: int
    observed_at: int


class Web3Feed:
    """A ``VolFeed`` read through web3 (the keeper's client), with the reads
    :class:`VolSigner` makes and the calldata of ``submit``."""

    def __init__(self, w3: Any, address: str, abi_json: list[dict]):
        self.w3 = w3
        self.address = w3.to_checksum_address(str(address))
        self.contract = w3.eth.contract(address=self.address, abi=abi_json)

    @classmethod
    def from_project(cls, project: Any, w3: Any, address: str) -> Web3Feed:
        from offchain_risk.keeper.rpc import abi_of

        return cls(w3, address, abi_of(project.VolFeed.contract_type))

    def heartbeat(self, underlying: int) -> int:
        return int(self.contract.functions.heartbeat(int(underlying)).call())

    def curve(self, underlying: int, expiry: int) -> Curve:
        return Curve(*self.contract.functions.curve(int(underlying), int(expiry)).call())

    def next_nonce(self) -> int:
        return int(self.contract.functions.next_nonce().call())

    def eip712Domain(self) -> tuple:  # the contract's name
        return tuple(self.contract.functions.eip712Domain().call())

    def timestamp(self) -> int:
        """The head block's time: the feed's clock."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def submit_data(self, update: tuple, signatures: list[bytes]) -> str:
        """The calldata of ``submit(update, signatures)``."""
        return self.contract.encode_abi("submit", args=[update, list(signatures)])


class VolSigner:
    """Signs, submits and confirms curves on one ``VolFeed``.

    ``signers``: Ape accounts registered on the feed (at least its threshold). The
    submission is paid by ``relayer`` (an Ape account, not a signer; ``feed`` an Ape
    contract), or sent through the keeper's transaction manager ``tx`` (``feed`` a
    :class:`Web3Feed`; the keeper's key must not be a signer either).
    """

    def __init__(
        self,
        feed: Any,
        signers: Sequence[Any],
        relayer: Any = None,
        ttl: int = 600,
        *,
        tx: Any = None,
    ):
        if (relayer is None) == (tx is None):
            raise ValueError("give either an Ape relayer or the keeper's transaction manager")
        self.feed = feed
        self.signers = list(signers)
        self.relayer = relayer
        self.tx = tx
        self.ttl = ttl
        self._sent_nonce = -1  # the last feed nonce sent through ``tx``
        payer = str(relayer) if relayer is not None else str(tx.address)
        if any(str(s).lower() == payer.lower() for s in self.signers):
            raise ValueError("the relayer must not be a feed signer")

    def now(self) -> int:
        """The feed's clock: the head block's time."""
        if isinstance(self.feed, Web3Feed):
            return self.feed.timestamp()
        from ape import chain

        return int(chain.blocks.head.timestamp)

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
        """Every signer's 65-byte signature (see :func:`~offchain_risk.keeper.signer.sign_all`)."""
        return sign_all(self.signers, message, "vol update")

    def submit(self, message: VolUpdate, signatures: list[bytes]) -> Any:
        """Send the signed update: from the Ape relayer (mined when this returns), or through
        the keeper's transaction manager (a ``SentTx`` its poll follows)."""
        if self.tx is None:
            return self.feed.submit(update_tuple(message), signatures, sender=self.relayer)
        data = self.feed.submit_data(update_tuple(message), signatures)
        sent = self.tx.send(VOL_KIND, self.feed.address, data, VOL_SUBMIT_GAS)
        self._sent_nonce = int(message.nonce)
        return sent

    def next_nonce(self) -> int:
        """The feed nonce of the next update: past those the keeper has in flight (sent, not
        yet settled by its poll); with none in flight, the feed's (a reverted update's nonce
        is used again)."""
        nonce = int(self.feed.next_nonce())
        if self.tx is not None and self.tx.in_flight(VOL_KIND):
            nonce = max(nonce, self._sent_nonce + 1)
        return nonce

    def publish(self, curve: VolCurve, observed_at: int | None = None) -> VolUpdate:
        """Check against the feed's rules, sign, submit and (relayed by Ape) read the curve
        back; through ``tx`` the manager's poll confirms it. ``observed_at`` defaults to the
        head block's time."""
        now = self.now()
        observed_at = now if observed_at is None else int(observed_at)
        last = self.feed.curve(curve.underlying, curve.expiry).observed_at
        curve.check(now, self.feed.heartbeat(curve.underlying), observed_at, last)
        message = self.message(curve, observed_at, self.next_nonce(), now + self.ttl)
        self.submit(message, self.sign(message))
        if self.tx is not None:
            return message
        got = self.feed.curve(curve.underlying, curve.expiry)
        want = (curve.atm_vol, curve.skew, curve.curvature, curve.forward, observed_at)
        if tuple(got) != want:
            raise RuntimeError(f"feed holds {tuple(got)}, published {want}")
        return message
