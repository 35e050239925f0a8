# pragma version ~=0.4.3
"""
@title Ballast rate snapshots: M-of-N signed moves of rate caps
@notice Vault shares (ERC-4626) are priced at `convertToAssets(one share)`
        capped as Aave's CAPO caps it: a snapshot ratio growing at most a
        yearly rate (ledger.vy, `_rate_cap`). This contract is the engine's
        `snapshot_manager`: it moves a snapshot when M of the risk
        governor's signers sign an EIP-712 `RateSnapshot`, and lowers a perp
        market's funding-rate cap when they sign a `FundingCap` (the
        governor's signed path for funding; the governor itself has no
        bytecode left). It keeps no
        signer set of its own: it reads the governor's (`is_signer`,
        `threshold`) and stops while the governor is paused, so adding or
        removing a risk signer there does it here too. Split from the
        governor, which has no bytecode left.
@custom:security The engine checks what a snapshot may be: newer than the
        current one, at least `constants.MIN_SNAPSHOT_DELAY` (7 days) old,
        a ratio within the cap in force at that time, a cap now no higher
        than the one in force, and a growth within
        `constants.MAX_RATE_GROWTH_BPS`; so M signer keys can lower a cap at
        will but never raise it at once, only its growth from then on
        (itself bounded); and lower a funding cap, never raise it.
        Replay: the domain binds
        chain id and this contract, nonces are sequential and shared by
        both messages, a deadline ends a
        signature's life. Signatures: 65 bytes, low-s (snekmate ecdsa),
        strictly increasing signer addresses; a signer cannot relay. Pause:
        the governor's guardian pauses the governor, which stops this too.
"""

from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

from interfaces import IRiskSigners
from interfaces import IVaultEngine

initializes: eip712

exports: eip712.eip712Domain

# Most signatures one snapshot carries (the governor's MAX_SIGNERS).
MAX_SIGNERS: constant(uint256) = 16

SNAPSHOT_TYPEHASH: constant(bytes32) = keccak256(
    "RateSnapshot(uint256 asset,uint256 ratio,uint256 timestamp,uint256 max_growth_bps,uint256 nonce,uint256 deadline)"
)

FUNDING_CAP_TYPEHASH: constant(bytes32) = keccak256(
    "FundingCap(uint256 market,uint256 cap,uint256 nonce,uint256 deadline)"
)


struct RateSnapshot:
    asset: uint256
    ratio: uint256  # WAD of underlying per whole share at `timestamp`
    timestamp: uint256
    max_growth_bps: uint256  # yearly, from the snapshot on
    nonce: uint256
    deadline: uint256


struct FundingCap:
    market: uint256
    cap: uint256  # WAD per hour, below the market's cap in force
    nonce: uint256
    deadline: uint256


# The margin engine whose vault snapshots this contract moves.
engine: public(immutable(IVaultEngine))
# The risk governor whose signers sign snapshots.
governor: public(immutable(IRiskSigners))
# The next snapshot's nonce: snapshots apply in order, each once.
next_nonce: public(uint256)


event RateSnapshotApplied:
    nonce: indexed(uint256)
    asset: indexed(uint256)
    digest: bytes32
    relayer: indexed(address)


event FundingCapApplied:
    nonce: indexed(uint256)
    market: indexed(uint256)
    digest: bytes32
    relayer: indexed(address)


@deploy
def __init__(engine_: IVaultEngine, governor_: IRiskSigners):
    """
    @param engine_ The margin engine (this contract becomes its snapshot
           manager).
    @param governor_ The risk governor: its signers and threshold sign here.
    """
    eip712.__init__("Ballast Snapshot", "1")
    assert engine_.address != empty(address), "snapshots: zero engine"
    assert governor_.address != empty(address), "snapshots: zero governor"
    engine = engine_
    governor = governor_


@external
@nonreentrant
def submit(
    snapshot: RateSnapshot, signatures: DynArray[Bytes[65], MAX_SIGNERS]
):
    """
    @notice Move a vault's rate-cap snapshot, signed by at least M of the
            risk governor's signers, sorted by signer address. Any caller
            but a signer. The engine checks the snapshot itself.
    """
    digest: bytes32 = self._digest(snapshot)
    self._check_message(digest, snapshot.nonce, snapshot.deadline, signatures)
    extcall engine.set_vault_snapshot(
        snapshot.asset,
        snapshot.ratio,
        snapshot.timestamp,
        snapshot.max_growth_bps,
    )
    log RateSnapshotApplied(
        nonce=snapshot.nonce,
        asset=snapshot.asset,
        digest=digest,
        relayer=msg.sender,
    )


@external
@nonreentrant
def submit_funding_cap(
    cut: FundingCap, signatures: DynArray[Bytes[65], MAX_SIGNERS]
):
    """
    @notice Lower a perp market's funding cap, signed by at least M of the
            risk governor's signers, sorted by signer address. Any caller
            but a signer. The engine refuses a cap that is not lower.
    """
    digest: bytes32 = self._funding_cap_digest(cut)
    self._check_message(digest, cut.nonce, cut.deadline, signatures)
    extcall engine.lower_funding_cap(cut.market, cut.cap)
    log FundingCapApplied(
        nonce=cut.nonce, market=cut.market, digest=digest, relayer=msg.sender
    )


@external
@view
def snapshot_digest(snapshot: RateSnapshot) -> bytes32:
    """
    @notice The EIP-712 digest the signers sign for `snapshot`.
    """
    return self._digest(snapshot)


@external
@view
def funding_cap_digest(cut: FundingCap) -> bytes32:
    """
    @notice The EIP-712 digest the signers sign for `cut`.
    """
    return self._funding_cap_digest(cut)


@internal
def _check_message(
    digest: bytes32,
    nonce: uint256,
    deadline: uint256,
    signatures: DynArray[Bytes[65], MAX_SIGNERS],
):
    """
    @dev A signed message may apply now: the governor runs, the relayer is
         no signer, the deadline holds, the nonce is next (consumed here)
         and M of the governor's signers signed `digest`.
    """
    assert not staticcall governor.paused(), "snapshots: governor paused"
    assert not staticcall governor.is_signer(
        msg.sender
    ), "snapshots: signer cannot relay"
    assert block.timestamp <= deadline, "snapshots: expired"
    assert nonce == self.next_nonce, "snapshots: bad nonce"
    self._check_signatures(digest, signatures)
    self.next_nonce = nonce + 1


@internal
@view
def _digest(s: RateSnapshot) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                SNAPSHOT_TYPEHASH,
                s.asset,
                s.ratio,
                s.timestamp,
                s.max_growth_bps,
                s.nonce,
                s.deadline,
            )
        )
    )


@internal
@view
def _funding_cap_digest(c: FundingCap) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                FUNDING_CAP_TYPEHASH, c.market, c.cap, c.nonce, c.deadline
            )
        )
    )


@internal
@view
def _check_signatures(
    digest: bytes32, signatures: DynArray[Bytes[65], MAX_SIGNERS]
):
    """
    @dev At least M signatures by the governor's signers, strictly increasing
         signer addresses (so none counts twice).
    """
    assert (
        len(signatures) >= staticcall governor.threshold()
    ), "snapshots: below threshold"
    last: uint256 = 0
    for sig: Bytes[65] in signatures:
        assert len(sig) == 65, "snapshots: bad signature length"
        signer: address = ecdsa._recover_sig(digest, sig)
        assert staticcall governor.is_signer(signer), "snapshots: not a signer"
        key: uint256 = convert(signer, uint256)
        assert key > last, "snapshots: signers not sorted"
        last = key
