# pragma version ~=0.4.3
"""
@title Ballast volatility feed
@notice Implied-volatility curves per underlying and expiry, written by
        EIP-712 updates signed M of N by registered feed signers and relayed
        by anyone else. A curve is an ATM vol with skew and curvature in log
        moneyness x = ln(K / F) around the forward F it was fitted at:

            vol(K) = atm_vol + skew * x + curvature * x^2

        clamped to [MIN_VOL, MAX_VOL]. `vol(underlying, expiry, strike)`
        returns (vol, valid) as the price reads do: valid iff the underlying
        is listed, the curve was observed at most `heartbeat` seconds ago and
        the expiry has not passed. An invalid vol blocks risk-increasing
        option trades; it never blocks a liquidation (the outage policy of
        the price feeds, docs/ARCHITECTURE.md).
@custom:security Updates: `VolUpdate(uint256 underlying,uint256 expiry,
        uint256 atm_vol,int256 skew,uint256 curvature,uint256 forward,
        uint256 observed_at,uint256 nonce,uint256 deadline)` under the domain
        ("Ballast Vol", "1", chainId, this feed). A sequential nonce and the
        deadline stop replays; the observation time must be newer than the
        curve's, not in the future and within the heartbeat; every parameter
        within the bounds below; the expiry on the grid (08:00 UTC), not
        passed and at most MAX_OPTION_TIME away. Signatures: at least
        `threshold` 65-byte signatures by registered signers in strictly
        increasing signer address, low-s (snekmate ecdsa); a signer may not
        relay. Pause: the owner delists an underlying (`set_underlying(u, 0)`),
        which makes every vol of it invalid at once.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712
from snekmate.utils import math

import constants

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: eip712

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    eip712.eip712Domain,
)

UPDATE_TYPEHASH: constant(bytes32) = keccak256(
    "VolUpdate(uint256 underlying,uint256 expiry,uint256 atm_vol,int256 skew,uint256 curvature,uint256 forward,uint256 observed_at,uint256 nonce,uint256 deadline)"
)
MAX_SIGNERS: constant(uint256) = 16
# Curve bounds (WAD): |skew| in vol per unit of log moneyness, curvature per
# unit squared. A 25-delta BTC risk reversal of 10 vol points is a skew near
# 0.3; the bounds leave room for a crash, not for nonsense.
MAX_SKEW: constant(int256) = 2 * 10**18
MAX_CURVATURE: constant(uint256) = 5 * 10**18


struct VolUpdate:
    underlying: uint256
    expiry: uint256
    atm_vol: uint256
    skew: int256
    curvature: uint256
    forward: uint256
    observed_at: uint256
    nonce: uint256
    deadline: uint256


struct Curve:
    atm_vol: uint256
    skew: int256
    curvature: uint256
    # The forward the curve was fitted at, WAD: the centre of its moneyness.
    forward: uint256
    # When the signers observed it (their clock); 0: never written.
    observed_at: uint256


# Seconds a curve stays valid after its observation, per underlying; 0: not listed.
heartbeat: public(HashMap[uint256, uint256])
# The last accepted curve per underlying and expiry.
curves: HashMap[uint256, HashMap[uint256, Curve]]
# Registered feed signers, their count and the number an update needs (M of N).
is_signer: public(HashMap[address, bool])
signer_count: public(uint256)
threshold: public(uint256)
# The nonce the next update must carry (sequential).
next_nonce: public(uint256)


event UnderlyingSet:
    underlying: indexed(uint256)
    heartbeat: uint256


event SignerAdded:
    signer: indexed(address)


event SignerRemoved:
    signer: indexed(address)


event ThresholdSet:
    threshold: uint256


event VolUpdated:
    underlying: indexed(uint256)
    expiry: indexed(uint256)
    atm_vol: uint256
    skew: int256
    curvature: uint256
    forward: uint256
    observed_at: uint256
    nonce: uint256


@deploy
def __init__(signers: DynArray[address, MAX_SIGNERS], threshold_: uint256):
    """
    @param signers The feed signers (each once, none zero).
    @param threshold_ How many of them an update needs (1 .. len(signers)).
    """
    ownable.__init__()
    ownable_2step.__init__()
    eip712.__init__("Ballast Vol", "1")
    for s: address in signers:
        self._add_signer(s)
    self._set_threshold(threshold_)


@external
def set_underlying(underlying: uint256, heartbeat_: uint256):
    """
    @notice Lists an underlying with the heartbeat of its curves, or delists
            it (heartbeat 0: every vol of it reads invalid). Owner only.
    """
    ownable._check_owner()
    assert heartbeat_ <= constants.MAX_HEARTBEAT, "volfeed: bad heartbeat"
    self.heartbeat[underlying] = heartbeat_
    log UnderlyingSet(underlying=underlying, heartbeat=heartbeat_)


@external
def add_signer(signer: address):
    """
    @notice Registers a feed signer. Owner only.
    """
    ownable._check_owner()
    self._add_signer(signer)


@external
def remove_signer(signer: address):
    """
    @notice Removes a feed signer (its pending signatures no longer count).
            Owner only; never below the threshold.
    """
    ownable._check_owner()
    assert self.is_signer[signer], "volfeed: not a signer"
    assert self.signer_count > self.threshold, "volfeed: below threshold"
    self.is_signer[signer] = False
    self.signer_count -= 1
    log SignerRemoved(signer=signer)


@external
def set_threshold(threshold_: uint256):
    """
    @notice Sets M, the signatures an update needs. Owner only.
    """
    ownable._check_owner()
    self._set_threshold(threshold_)


@external
def submit(update: VolUpdate, signatures: DynArray[Bytes[65], MAX_SIGNERS]):
    """
    @notice Writes one curve signed by at least `threshold` feed signers.
            Anyone but a signer may relay it.
    @param update The curve, its observation time, nonce and deadline.
    @param signatures 65-byte signatures, signers in increasing address.
    """
    assert not self.is_signer[msg.sender], "volfeed: signer cannot relay"
    assert block.timestamp <= update.deadline, "volfeed: expired"
    assert update.nonce == self.next_nonce, "volfeed: bad nonce"
    hb: uint256 = self.heartbeat[update.underlying]
    assert hb != 0, "volfeed: unknown underlying"
    assert (
        update.expiry % constants.DAY == constants.EXPIRY_TIME
    ), "volfeed: expiry off grid"
    assert update.expiry > block.timestamp, "volfeed: expiry passed"
    assert (
        update.expiry - block.timestamp <= constants.MAX_OPTION_TIME
    ), "volfeed: expiry too far"
    assert (
        update.observed_at <= block.timestamp
    ), "volfeed: observed in the future"
    assert block.timestamp - update.observed_at <= hb, "volfeed: stale update"
    assert (
        update.observed_at
        > self.curves[update.underlying][update.expiry].observed_at
    ), "volfeed: not newer"
    assert (
        update.atm_vol >= constants.MIN_VOL
        and update.atm_vol <= constants.MAX_VOL
    ), "volfeed: bad atm vol"
    assert (
        update.skew >= -MAX_SKEW and update.skew <= MAX_SKEW
    ), "volfeed: bad skew"
    assert update.curvature <= MAX_CURVATURE, "volfeed: bad curvature"
    assert (
        update.forward >= constants.MIN_OPTION_PRICE
        and update.forward <= constants.MAX_PRICE
    ), "volfeed: bad forward"
    self._check_signatures(self._digest(update), signatures)

    self.curves[update.underlying][update.expiry] = Curve(
        atm_vol=update.atm_vol,
        skew=update.skew,
        curvature=update.curvature,
        forward=update.forward,
        observed_at=update.observed_at,
    )
    self.next_nonce = update.nonce + 1
    log VolUpdated(
        underlying=update.underlying,
        expiry=update.expiry,
        atm_vol=update.atm_vol,
        skew=update.skew,
        curvature=update.curvature,
        forward=update.forward,
        observed_at=update.observed_at,
        nonce=update.nonce,
    )


@external
@view
def vol(
    underlying: uint256, expiry: uint256, strike: uint256
) -> (uint256, bool):
    """
    @notice The implied vol (annualised, WAD) of `strike` at `expiry`, and
            whether it may be used for a risk-increasing trade. Never
            reverts: no curve, or a strike outside the pricing domain
            (MIN_OPTION_PRICE .. MAX_PRICE, K / F within the moneyness
            bounds), reads (0, False); a stale curve, a passed expiry or a
            delisted underlying reads (vol, False).
    """
    c: Curve = self.curves[underlying][expiry]
    if c.observed_at == 0:
        return 0, False
    if strike < constants.MIN_OPTION_PRICE or strike > constants.MAX_PRICE:
        return 0, False
    # strike < 2**100: strike * WAD < 2**160.
    ratio: uint256 = strike * constants.WAD // c.forward
    if ratio < constants.MIN_MONEYNESS or ratio > constants.MAX_MONEYNESS:
        return 0, False
    v: uint256 = self._curve_vol(c, ratio)
    hb: uint256 = self.heartbeat[underlying]
    valid: bool = (
        hb != 0
        and expiry > block.timestamp
        and c.observed_at <= block.timestamp
        and block.timestamp - c.observed_at <= hb
    )
    return v, valid


@external
@view
def curve(underlying: uint256, expiry: uint256) -> Curve:
    """
    @notice The last accepted curve (all zero if none).
    """
    return self.curves[underlying][expiry]


@external
@view
def update_digest(update: VolUpdate) -> bytes32:
    """
    @notice The EIP-712 digest the signers sign.
    """
    return self._digest(update)


@internal
@pure
def _curve_vol(c: Curve, ratio: uint256) -> uint256:
    """
    @dev atm + skew x + curvature x^2 with x = ln(ratio) (|x| <= ln(1e4)
         < 10 WAD), truncated towards zero, clamped to [MIN_VOL, MAX_VOL].
         Every term is below 2**100 in magnitude.
    """
    x: int256 = math._wad_ln(convert(ratio, int256))
    v: int256 = (
        convert(c.atm_vol, int256)
        + c.skew * x // constants.IWAD
        + convert(c.curvature, int256)
        * (x * x // constants.IWAD) // constants.IWAD
    )
    v = max(v, convert(constants.MIN_VOL, int256))
    return min(convert(v, uint256), constants.MAX_VOL)


@internal
@view
def _digest(u: VolUpdate) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                UPDATE_TYPEHASH,
                u.underlying,
                u.expiry,
                u.atm_vol,
                u.skew,
                u.curvature,
                u.forward,
                u.observed_at,
                u.nonce,
                u.deadline,
            )
        )
    )


@internal
@view
def _check_signatures(
    digest: bytes32, signatures: DynArray[Bytes[65], MAX_SIGNERS]
):
    """
    @dev At least M signatures by registered signers, strictly increasing
         signer addresses (so none counts twice). An unregistered or removed
         signer, a malformed or high-s signature reverts the whole update.
    """
    assert len(signatures) >= self.threshold, "volfeed: below threshold"
    last: uint256 = 0
    for sig: Bytes[65] in signatures:
        assert len(sig) == 65, "volfeed: bad signature length"
        signer: address = ecdsa._recover_sig(digest, sig)
        assert self.is_signer[signer], "volfeed: not a signer"
        key: uint256 = convert(signer, uint256)
        assert key != last, "volfeed: duplicate signer"
        assert key > last, "volfeed: signers not sorted"
        last = key


@internal
def _add_signer(signer: address):
    assert signer != empty(address), "volfeed: zero signer"
    assert not self.is_signer[signer], "volfeed: already a signer"
    assert self.signer_count < MAX_SIGNERS, "volfeed: too many signers"
    self.is_signer[signer] = True
    self.signer_count += 1
    log SignerAdded(signer=signer)


@internal
def _set_threshold(threshold_: uint256):
    assert (
        threshold_ != 0 and threshold_ <= self.signer_count
    ), "volfeed: bad threshold"
    self.threshold = threshold_
    log ThresholdSet(threshold=threshold_)
