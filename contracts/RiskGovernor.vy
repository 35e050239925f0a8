# pragma version ~=0.4.3
"""
@title Ballast risk governor: M-of-N signed, bounded, rate-limited updates
@notice The link between the off-chain risk engine and the chain. Registered
        risk signers sign an EIP-712 `RiskUpdate` (per-asset scenario shocks,
        floor and haircut rates, the IM multiplier and the liquidation
        discount curve, with a nonce and a deadline); anyone but a signer
        relays it with M distinct valid signatures, sorted by signer address.
        The governor is the engine's `risk_manager` and the liquidation
        engine's risk manager; it sets nothing the owner has not bounded:
          - bounds: every value stays inside the owner's floors and caps;
          - tightening (larger |shock| in its direction, larger floor, haircut,
            IM multiplier, discounts) applies at once, except that a shock,
            floor or haircut moves at most `mm_step_bps` per update: beyond
            it the signed value becomes a ramp target reached linearly over
            `ramp_duration` through `poke` (MM rises gradually, IM at once);
          - loosening is limited per update (`update_rate` of the current
            value) and per rolling window (`window_rate` of the tightest value
            held in the current and previous `window`-long bucket, so of
            every value held in the last `window` seconds).
        See docs/ARCHITECTURE.md, "Signed risk updates: bounds policy".
@custom:security A stolen signer key, or M of them, can only tighten within
        the caps or loosen at the rate; the owner sets bounds and rates and
        manages signers (it must be a timelocked multisig). Replay: the
        EIP-712 domain binds chain id and this contract, and the contract is
        bound to one engine; nonces are sequential. Signatures: 65 bytes,
        low-s (snekmate ecdsa), strictly increasing signer addresses, so no
        signer counts twice; removing a signer voids its pending signatures.
        Pause: the guardian (or the owner) calls `pause`; only the owner
        `unpause`s. Paused, neither `submit` nor `poke` runs.
        Desynchronisation: shocks are read from the engine at each update;
        floors, haircuts, the IM multiplier and the discount curve are this
        contract's record of what it set. After setting one of them directly
        on the engine or the liquidation engine, the owner calls `sync_asset`
        / `sync_global`, which also re-anchors the rate limits there.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

from interfaces import ILiquidations
from interfaces import IRiskEngine

import constants
import fixed_math

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
    "RiskUpdate(uint256[] assets,uint256[] shocks,uint256[] floors,uint256[] haircuts,uint256 im_multiplier,uint256 min_discount,uint256 max_discount,uint256 nonce,uint256 deadline)"
)
MAX_SIGNERS: constant(uint256) = 16
# Per asset, the governed values in one array: 16 shocks, then floor and
# haircut (all bps; larger |value| in its sign's direction is tighter).
SLOTS: constant(uint256) = 18
FLOOR: constant(uint256) = 16
HAIRCUT: constant(uint256) = 17
# Global values: IM multiplier, min and max discount (WAD).
GLOBALS: constant(uint256) = 3
MASK16: constant(uint256) = 2**16 - 1
MASK40: constant(uint256) = 2**40 - 1
MASK64: constant(uint256) = 2**64 - 1
# asset_state: floor | haircut | prev floor | prev haircut | bucket floor |
# bucket haircut (16 bits each) | bucket start (40 bits).
BUCKET_SHIFT: constant(uint256) = 96
# global_state: IM | min discount | max discount (64 bits each) | bucket start.
GLOBAL_BUCKET_SHIFT: constant(uint256) = 192
# asset_state bit set while the asset has a pending ramp.
RAMP_BIT: constant(uint256) = 1 << 136
# bounds_word: 8 x 16 bits (see AssetBounds), then the "configured" bit.
CONFIGURED: constant(uint256) = 1 << 128
# ramp_word: from floor | from haircut | to floor | to haircut | start | end.
RAMP_START_SHIFT: constant(uint256) = 64
RAMP_END_SHIFT: constant(uint256) = 104
# The engine's packed asset word (ledger.vy): floor and haircut rates, bps.
ENGINE_FLOOR_SHIFT: constant(uint256) = 200
ENGINE_HAIRCUT_SHIFT: constant(uint256) = 216
# Admin bounds on the limits.
MIN_WINDOW: constant(uint256) = 60
MAX_WINDOW: constant(uint256) = 30 * 86400
MAX_RAMP: constant(uint256) = 30 * 86400
MAX_DISCOUNT: constant(uint256) = constants.WAD // 2


struct RiskUpdate:
    assets: DynArray[uint256, constants.MAX_ASSETS]  # strictly increasing
    shocks: DynArray[uint256, constants.MAX_ASSETS]  # 16 int16 bps, packed
    floors: DynArray[uint256, constants.MAX_ASSETS]  # floor rate, bps
    haircuts: DynArray[uint256, constants.MAX_ASSETS]  # haircut, bps
    im_multiplier: uint256  # WAD
    min_discount: uint256  # WAD fraction
    max_discount: uint256  # WAD fraction
    nonce: uint256  # must equal `next_nonce`
    deadline: uint256  # unix seconds, inclusive


struct Limits:
    window: uint256  # rolling window, seconds
    window_rate: uint256  # max loosening per window, WAD fraction
    update_rate: uint256  # max loosening per update, WAD fraction
    mm_step_bps: uint256  # max immediate rise of a shock, floor or haircut
    ramp_duration: uint256  # seconds for a ramp to reach its target


struct AssetBounds:
    floor_min: uint256  # bps; the admin floor rate no update goes below
    floor_max: uint256
    haircut_min: uint256
    haircut_max: uint256
    shock_down_max: uint256  # every shock >= -shock_down_max
    shock_up_max: uint256  # every shock <= shock_up_max
    shock_down_min: uint256  # the worst down shock <= -shock_down_min
    shock_up_min: uint256  # the worst up shock >= shock_up_min


struct GlobalBounds:
    im_min: uint256  # WAD
    im_max: uint256
    min_discount_min: uint256  # WAD fractions
    min_discount_max: uint256
    max_discount_min: uint256
    max_discount_max: uint256


struct AssetView:
    current: int256[SLOTS]  # what the engine holds (shocks) / was set
    reference: int256[SLOTS]  # tightest value held in the rolling window
    ramp_target: int256[SLOTS]  # zeros when no ramp
    ramp_start: uint256
    ramp_end: uint256  # 0 when no ramp


struct GlobalView:
    current: uint256[GLOBALS]  # IM multiplier, min and max discount
    reference: uint256[GLOBALS]


# The margin engine this governor sets parameters on.
engine: public(immutable(IRiskEngine))
# The liquidation engine whose discount curve it sets.
liquidations: public(immutable(ILiquidations))
# Registered risk signers.
is_signer: public(HashMap[address, bool])
# Number of registered signers (N).
signer_count: public(uint256)
# Signatures needed (M), 1 <= M <= N.
threshold: public(uint256)
# The next update's nonce: updates apply in order, each once.
next_nonce: public(uint256)
# May pause (not unpause) `submit` and `poke`.
guardian: public(address)
# True: `submit` and `poke` revert. Cleared by the owner only.
paused: public(bool)
# Packed Limits: window (32) | window rate (64) | update rate (64) | mm step
# (16) | ramp duration (32). One SLOAD per update.
limits_word: uint256
# Packed AssetBounds (8 x 16 bits) | CONFIGURED; 0 = asset not governed.
bounds_word: HashMap[uint256, uint256]
# Packed GlobalBounds: IM min | IM max | min-discount min | min-discount max
# (64 bits each), then max-discount min | max-discount max.
global_bounds_word: uint256[2]
# Per asset: the record of floor and haircut, their rolling-window
# references, the start of the current bucket (see BUCKET_SHIFT) and
# RAMP_BIT.
asset_state: HashMap[uint256, uint256]
# Per asset: tightest shocks held in the previous bucket (packed int16).
shock_prev: HashMap[uint256, uint256]
# Per asset: tightest shocks held in the current bucket (packed int16).
shock_bucket: HashMap[uint256, uint256]
# Per asset ramp: shocks at the start, shocks at the end, and the packed
# floor / haircut ends and times (0 = no ramp).
ramp_from: HashMap[uint256, uint256]
ramp_to: HashMap[uint256, uint256]
ramp_word: HashMap[uint256, uint256]
# Record of IM multiplier | min discount | max discount | bucket start.
global_state: uint256
# Tightest global values held in the previous / current bucket.
global_prev: uint256
global_bucket: uint256


event SignerAdded:
    signer: indexed(address)


event SignerRemoved:
    signer: indexed(address)


event ThresholdSet:
    threshold: uint256


event GuardianSet:
    guardian: indexed(address)


event PausedSet:
    paused: bool
    by: indexed(address)


event LimitsSet:
    window: uint256
    window_rate: uint256
    update_rate: uint256
    mm_step_bps: uint256
    ramp_duration: uint256


event AssetBoundsSet:
    asset: indexed(uint256)
    bounds: AssetBounds


event GlobalBoundsSet:
    bounds: GlobalBounds


event Synced:
    asset: indexed(uint256)  # 2**256 - 1 for the global values


event RiskUpdateApplied:
    nonce: indexed(uint256)
    digest: bytes32
    relayer: indexed(address)


event RampStarted:
    asset: indexed(uint256)
    shocks: uint256
    floor_bps: uint256
    haircut_bps: uint256
    end: uint256


event RampPoked:
    asset: indexed(uint256)
    done: bool


@deploy
def __init__(
    engine_: IRiskEngine,
    liquidations_: ILiquidations,
    signers: DynArray[address, MAX_SIGNERS],
    threshold_: uint256,
    limits_: Limits,
):
    """
    @param engine_ The margin engine (this contract becomes its risk manager).
    @param liquidations_ The liquidation engine (discount curve).
    @param signers The initial risk signers.
    @param threshold_ Signatures an update needs, 1 <= M <= N.
    @param limits_ Rate limits and ramp (see `set_limits`).
    @dev Assets are governed once the owner sets their bounds; the global
         values once it sets the global bounds.
    """
    ownable.__init__()
    ownable_2step.__init__()
    eip712.__init__("Ballast Risk", "1")
    assert engine_.address != empty(address), "governor: zero engine"
    assert (
        liquidations_.address != empty(address)
    ), "governor: zero liquidations"
    engine = engine_
    liquidations = liquidations_
    for signer: address in signers:
        self._add_signer(signer)
    self._set_threshold(threshold_)
    self._set_limits(limits_)
    self._sync_global()


# ---------------------------------------------------------------- admin


@external
def add_signer(signer: address):
    """
    @notice Register a risk signer. Owner only.
    """
    ownable._check_owner()
    self._add_signer(signer)


@external
def remove_signer(signer: address):
    """
    @notice Remove a risk signer; its signatures, pending ones included, no
            longer count. N may not drop below M. Owner only.
    """
    ownable._check_owner()
    assert self.is_signer[signer], "governor: not a signer"
    assert self.signer_count > self.threshold, "governor: below threshold"
    self.is_signer[signer] = False
    self.signer_count -= 1
    log SignerRemoved(signer=signer)


@external
def set_threshold(threshold_: uint256):
    """
    @notice Signatures an update needs (M), 1 <= M <= N. Owner only.
    """
    ownable._check_owner()
    self._set_threshold(threshold_)


@external
def set_guardian(guardian_: address):
    """
    @notice The key that may pause updates. Owner only.
    """
    ownable._check_owner()
    self.guardian = guardian_
    log GuardianSet(guardian=guardian_)


@external
def pause():
    """
    @notice Stop `submit` and `poke`. Guardian or owner.
    """
    if msg.sender != self.guardian:
        ownable._check_owner()
    self.paused = True
    log PausedSet(paused=True, by=msg.sender)


@external
def unpause():
    """
    @notice Resume `submit` and `poke`. Owner only.
    """
    ownable._check_owner()
    self.paused = False
    log PausedSet(paused=False, by=msg.sender)


@external
def set_limits(limits_: Limits):
    """
    @notice Rate limits and ramp. Owner only.
    @dev Changing `window` renumbers the buckets: every reference restarts
         from the values held at the next update (a loosening opportunity
         only the owner can create).
    """
    ownable._check_owner()
    self._set_limits(limits_)


@external
def set_asset_bounds(asset: uint256, bounds: AssetBounds):
    """
    @notice Floors and caps of an asset's governed values, bps; the asset is
            governed from now on. Also re-reads its floor and haircut from
            the engine (`sync_asset`). Owner only.
    """
    ownable._check_owner()
    assert (
        bounds.floor_min <= bounds.floor_max
        and bounds.floor_max <= constants.BPS
    ), "governor: bad floor bounds"
    assert (
        bounds.haircut_min <= bounds.haircut_max
        and bounds.haircut_max < constants.BPS
    ), "governor: bad haircut bounds"
    assert (
        bounds.shock_down_min <= bounds.shock_down_max
        and bounds.shock_down_max <= convert(-constants.MIN_SHOCK_BPS, uint256)
    ), "governor: bad shock bounds"
    assert (
        bounds.shock_up_min <= bounds.shock_up_max
        and bounds.shock_up_max <= 32767
    ), "governor: bad shock bounds"
    self.bounds_word[asset] = (
        bounds.floor_min
        | (bounds.floor_max << 16)
        | (bounds.haircut_min << 32)
        | (bounds.haircut_max << 48)
        | (bounds.shock_down_max << 64)
        | (bounds.shock_up_max << 80)
        | (bounds.shock_down_min << 96)
        | (bounds.shock_up_min << 112)
        | CONFIGURED
    )
    log AssetBoundsSet(asset=asset, bounds=bounds)
    self._sync_asset(asset)


@external
def set_global_bounds(bounds: GlobalBounds):
    """
    @notice Floors and caps of the IM multiplier and the discount curve,
            WAD. Owner only.
    """
    ownable._check_owner()
    assert (
        bounds.im_min >= constants.WAD
        and bounds.im_min <= bounds.im_max
        and bounds.im_max <= constants.MAX_IM_MULTIPLIER
    ), "governor: bad IM bounds"
    # Liquidations refuses a zero minimum discount: so does the floor here,
    # or a signed update inside the bounds could still revert there.
    assert (
        bounds.min_discount_min != 0
        and bounds.min_discount_min <= bounds.min_discount_max
        and bounds.max_discount_min <= bounds.max_discount_max
        and bounds.min_discount_max <= MAX_DISCOUNT
        and bounds.max_discount_max <= MAX_DISCOUNT
    ), "governor: bad discount bounds"
    self.global_bounds_word = [
        bounds.im_min
        | (bounds.im_max << 64)
        | (bounds.min_discount_min << 128)
        | (bounds.min_discount_max << 192),
        bounds.max_discount_min | (bounds.max_discount_max << 64),
    ]
    log GlobalBoundsSet(bounds=bounds)


@external
def sync_asset(asset: uint256):
    """
    @notice Re-read an asset's floor and haircut from the engine, restart its
            rolling-window references from the values it holds and drop its
            ramp. For after the owner set them on the engine directly.
            Owner only.
    """
    ownable._check_owner()
    self._check_configured(self.bounds_word[asset])
    self._sync_asset(asset)


@external
def sync_global():
    """
    @notice Re-read the IM multiplier and the discount curve and restart
            their references. Owner only.
    """
    ownable._check_owner()
    self._sync_global()


# ------------------------------------------------------------- updates


@external
@nonreentrant
def submit(update: RiskUpdate, signatures: DynArray[Bytes[65], MAX_SIGNERS]):
    """
    @notice Apply a risk update signed by at least M registered signers,
            sorted by signer address. Any caller but a signer (signer keys
            and relayer keys are different keys).
    @dev Checks every signed value against its bounds and the rate limits,
         then sets the engine and the liquidation engine. Assets not listed
         in the update keep their values (and their pending ramps).
    """
    assert not self.paused, "governor: paused"
    assert not self.is_signer[msg.sender], "governor: signer cannot relay"
    assert block.timestamp <= update.deadline, "governor: expired"
    assert update.nonce == self.next_nonce, "governor: bad nonce"
    n: uint256 = len(update.assets)
    assert (
        len(update.shocks) == n
        and len(update.floors) == n
        and len(update.haircuts) == n
    ), "governor: length mismatch"
    digest: bytes32 = self._digest(update)
    self._check_signatures(digest, signatures)
    self.next_nonce = update.nonce + 1

    for i: uint256 in range(1, constants.MAX_ASSETS):
        if i >= n:
            break
        assert (
            update.assets[i] > update.assets[i - 1]
        ), "governor: assets not sorted"

    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    self._update_global(update, lim, start)
    for i: uint256 in range(constants.MAX_ASSETS):
        if i == n:
            break
        self._update_asset(
            update.assets[i],
            update.shocks[i],
            update.floors[i],
            update.haircuts[i],
            lim,
            start,
        )
    log RiskUpdateApplied(nonce=update.nonce, digest=digest, relayer=msg.sender)


@external
@nonreentrant
def poke(asset: uint256):
    """
    @notice Move an asset's ramp forward: shocks, floor and haircut go
            linearly from where the update left them to its signed target,
            reached at the ramp's end. Anyone.
    """
    assert not self.paused, "governor: paused"
    rw: uint256 = self.ramp_word[asset]
    assert rw != 0, "governor: no ramp"
    ramp_start: uint256 = (rw >> RAMP_START_SHIFT) & MASK40
    ramp_end: uint256 = (rw >> RAMP_END_SHIFT) & MASK40
    target: int256[SLOTS] = self._unpack(
        self.ramp_to[asset], (rw >> 32) & MASK16, (rw >> 48) & MASK16
    )
    done: bool = block.timestamp >= ramp_end
    v: int256[SLOTS] = target
    if not done:
        origin: int256[SLOTS] = self._unpack(
            self.ramp_from[asset], rw & MASK16, (rw >> 16) & MASK16
        )
        elapsed: int256 = convert(block.timestamp - ramp_start, int256)
        duration: int256 = convert(ramp_end - ramp_start, int256)
        for i: uint256 in range(SLOTS):
            # Truncation toward zero rounds toward the origin: the ramp never
            # overshoots and reaches the target exactly at its end.
            v[i] = origin[i] + (target[i] - origin[i]) * elapsed // duration
    else:
        self.ramp_word[asset] = 0

    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    st: uint256 = self.asset_state[asset]
    current: int256[SLOTS] = self._unpack(
        staticcall engine.shock_word(asset), st & MASK16, (st >> 16) & MASK16
    )
    prev: int256[SLOTS] = empty(int256[SLOTS])
    bucket: int256[SLOTS] = empty(int256[SLOTS])
    prev, bucket = self._asset_refs(asset, st, current, start, lim.window)
    for i: uint256 in range(SLOTS):
        bucket[i] = self._tightest(bucket[i], v[i])
    self._store_asset(asset, v, prev, bucket, start, not done)
    log RampPoked(asset=asset, done=done)
    self._write_engine(asset, current, v)


# ------------------------------------------------------------------ views


@external
@view
def update_digest(update: RiskUpdate) -> bytes32:
    """
    @notice The EIP-712 digest signers sign for `update`.
    """
    return self._digest(update)


@external
@view
def limits() -> Limits:
    """
    @notice The rate limits and ramp, unpacked.
    """
    return self._limits()


@external
@view
def asset_bounds(asset: uint256) -> AssetBounds:
    """
    @notice An asset's floors and caps (all zero when not governed).
    """
    w: uint256 = self.bounds_word[asset]
    return AssetBounds(
        floor_min=w & MASK16,
        floor_max=(w >> 16) & MASK16,
        haircut_min=(w >> 32) & MASK16,
        haircut_max=(w >> 48) & MASK16,
        shock_down_max=(w >> 64) & MASK16,
        shock_up_max=(w >> 80) & MASK16,
        shock_down_min=(w >> 96) & MASK16,
        shock_up_min=(w >> 112) & MASK16,
    )


@external
@view
def global_bounds() -> GlobalBounds:
    """
    @notice Floors and caps of the IM multiplier and the discount curve.
    """
    w0: uint256 = self.global_bounds_word[0]
    w1: uint256 = self.global_bounds_word[1]
    return GlobalBounds(
        im_min=w0 & MASK64,
        im_max=(w0 >> 64) & MASK64,
        min_discount_min=(w0 >> 128) & MASK64,
        min_discount_max=w0 >> 192,
        max_discount_min=w1 & MASK64,
        max_discount_max=(w1 >> 64) & MASK64,
    )


@external
@view
def asset_view(asset: uint256) -> AssetView:
    """
    @notice What an update of `asset` is checked against now: the current
            values, the rolling-window reference (the tightest value held in
            the current and previous bucket) and the pending ramp. A keeper
            loosening a value `x` with reference `r` and current `c` needs
            `x` within `max(|r| * window_rate, 1)` of `r` and within
            `max(|c| * update_rate, 1)` of `c`.
    """
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    st: uint256 = self.asset_state[asset]
    current: int256[SLOTS] = self._unpack(
        staticcall engine.shock_word(asset), st & MASK16, (st >> 16) & MASK16
    )
    prev: int256[SLOTS] = empty(int256[SLOTS])
    bucket: int256[SLOTS] = empty(int256[SLOTS])
    prev, bucket = self._asset_refs(asset, st, current, start, lim.window)
    v: AssetView = empty(AssetView)
    v.current = current
    for i: uint256 in range(SLOTS):
        v.reference[i] = self._tightest(prev[i], bucket[i])
    rw: uint256 = self.ramp_word[asset]
    if rw != 0:
        v.ramp_target = self._unpack(
            self.ramp_to[asset], (rw >> 32) & MASK16, (rw >> 48) & MASK16
        )
        v.ramp_start = (rw >> RAMP_START_SHIFT) & MASK40
        v.ramp_end = (rw >> RAMP_END_SHIFT) & MASK40
    return v


@external
@view
def global_view() -> GlobalView:
    """
    @notice The recorded IM multiplier and discount curve and their
            rolling-window references (see `asset_view`).
    """
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    gs: uint256 = self.global_state
    current: int256[GLOBALS] = self._unpack3(gs)
    prev: int256[GLOBALS] = empty(int256[GLOBALS])
    bucket: int256[GLOBALS] = empty(int256[GLOBALS])
    prev, bucket = self._global_refs(gs, current, start, lim.window)
    v: GlobalView = empty(GlobalView)
    for i: uint256 in range(GLOBALS):
        v.current[i] = convert(current[i], uint256)
        v.reference[i] = convert(max(prev[i], bucket[i]), uint256)
    return v


# --------------------------------------------------------------- internal


@internal
def _add_signer(signer: address):
    assert signer != empty(address), "governor: zero signer"
    assert not self.is_signer[signer], "governor: already a signer"
    assert self.signer_count < MAX_SIGNERS, "governor: too many signers"
    self.is_signer[signer] = True
    self.signer_count += 1
    log SignerAdded(signer=signer)


@internal
def _set_threshold(threshold_: uint256):
    assert (
        threshold_ != 0 and threshold_ <= self.signer_count
    ), "governor: bad threshold"
    self.threshold = threshold_
    log ThresholdSet(threshold=threshold_)


@internal
def _set_limits(lim: Limits):
    assert (
        lim.window >= MIN_WINDOW and lim.window <= MAX_WINDOW
    ), "governor: bad window"
    assert (
        lim.update_rate <= lim.window_rate and lim.window_rate <= constants.WAD
    ), "governor: bad rates"
    assert lim.mm_step_bps <= constants.BPS, "governor: bad mm step"
    assert (
        lim.ramp_duration != 0 and lim.ramp_duration <= MAX_RAMP
    ), "governor: bad ramp duration"
    self.limits_word = (
        lim.window
        | (lim.window_rate << 32)
        | (lim.update_rate << 96)
        | (lim.mm_step_bps << 160)
        | (lim.ramp_duration << 176)
    )
    log LimitsSet(
        window=lim.window,
        window_rate=lim.window_rate,
        update_rate=lim.update_rate,
        mm_step_bps=lim.mm_step_bps,
        ramp_duration=lim.ramp_duration,
    )


@internal
@view
def _limits() -> Limits:
    w: uint256 = self.limits_word
    return Limits(
        window=w & (2**32 - 1),
        window_rate=(w >> 32) & MASK64,
        update_rate=(w >> 96) & MASK64,
        mm_step_bps=(w >> 160) & MASK16,
        ramp_duration=(w >> 176) & (2**32 - 1),
    )


@internal
def _sync_asset(asset: uint256):
    word: uint256 = staticcall engine.asset_word(asset)
    assert word != 0, "governor: asset not listed"
    floor_: uint256 = (word >> ENGINE_FLOOR_SHIFT) & MASK16
    haircut: uint256 = (word >> ENGINE_HAIRCUT_SHIFT) & MASK16
    shocks: uint256 = staticcall engine.shock_word(asset)
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    self.asset_state[asset] = (
        floor_
        | (haircut << 16)
        | (floor_ << 32)
        | (haircut << 48)
        | (floor_ << 64)
        | (haircut << 80)
        | (start << BUCKET_SHIFT)
    )
    self.shock_prev[asset] = shocks
    self.shock_bucket[asset] = shocks
    self.ramp_word[asset] = 0
    log Synced(asset=asset)


@internal
def _sync_global():
    im: uint256 = staticcall engine.im_multiplier()
    lo: uint256 = staticcall liquidations.min_discount()
    hi: uint256 = staticcall liquidations.max_discount()
    assert (
        im <= MASK64 and lo <= MASK64 and hi <= MASK64
    ), "governor: value too large"
    values: uint256 = im | (lo << 64) | (hi << 128)
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    self.global_state = values | (start << GLOBAL_BUCKET_SHIFT)
    self.global_prev = values
    self.global_bucket = values
    log Synced(asset=max_value(uint256))


@internal
@view
def _digest(u: RiskUpdate) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                UPDATE_TYPEHASH,
                self._hash_array(u.assets),
                self._hash_array(u.shocks),
                self._hash_array(u.floors),
                self._hash_array(u.haircuts),
                u.im_multiplier,
                u.min_discount,
                u.max_discount,
                u.nonce,
                u.deadline,
            )
        )
    )


@internal
@pure
def _hash_array(a: DynArray[uint256, constants.MAX_ASSETS]) -> bytes32:
    """
    @dev EIP-712 encoding of `uint256[]`: keccak256 of the concatenated
         32-byte elements, i.e. the ABI encoding without its length word.
    """
    return keccak256(slice(abi_encode(a, ensure_tuple=False), 32, 32 * len(a)))


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
    assert len(signatures) >= self.threshold, "governor: below threshold"
    last: uint256 = 0
    for sig: Bytes[65] in signatures:
        assert len(sig) == 65, "governor: bad signature length"
        signer: address = ecdsa._recover_sig(digest, sig)
        assert self.is_signer[signer], "governor: not a signer"
        key: uint256 = convert(signer, uint256)
        assert key != last, "governor: duplicate signer"
        assert key > last, "governor: signers not sorted"
        last = key


@internal
@view
def _check_configured(bounds: uint256):
    assert bounds & CONFIGURED != 0, "governor: asset not governed"


@internal
def _update_asset(
    asset: uint256,
    shocks: uint256,
    floor_bps: uint256,
    haircut_bps: uint256,
    lim: Limits,
    start: uint256,
):
    """
    @dev One asset of an update: bounds, rate limits, the MM step and ramp,
         the governor's records, then the engine (effects before the calls).
         Works on the packed words: this is the update's hot path.
    """
    bounds: uint256 = self.bounds_word[asset]
    self._check_configured(bounds)
    assert (
        floor_bps >= bounds & MASK16 and floor_bps <= (bounds >> 16) & MASK16
    ), "governor: floor out of bounds"
    assert (
        haircut_bps >= (bounds >> 32) & MASK16
        and haircut_bps <= (bounds >> 48) & MASK16
    ), "governor: haircut out of bounds"

    st: uint256 = self.asset_state[asset]
    current: uint256 = staticcall engine.shock_word(asset)
    cur_floor: int256 = convert(st & MASK16, int256)
    cur_haircut: int256 = convert((st >> 16) & MASK16, int256)
    # The rolling-window references, as in _asset_refs.
    stored: uint256 = (st >> BUCKET_SHIFT) & MASK40
    prev: uint256 = current
    bucket: uint256 = current
    prev_floor: int256 = cur_floor
    prev_haircut: int256 = cur_haircut
    bucket_floor: int256 = cur_floor
    bucket_haircut: int256 = cur_haircut
    if stored == start:
        prev = self.shock_prev[asset]
        bucket = self.shock_bucket[asset]
        prev_floor = convert((st >> 32) & MASK16, int256)
        prev_haircut = convert((st >> 48) & MASK16, int256)
        bucket_floor = convert((st >> 64) & MASK16, int256)
        bucket_haircut = convert((st >> 80) & MASK16, int256)
    elif stored + lim.window == start:
        prev = self.shock_bucket[asset]
        prev_floor = convert((st >> 64) & MASK16, int256)
        prev_haircut = convert((st >> 80) & MASK16, int256)

    applied: uint256 = 0
    new_bucket: uint256 = 0
    ramps: bool = False
    applied, new_bucket, ramps = self._scan_shocks(
        shocks, current, prev, bucket, bounds, lim
    )
    floor_applied: int256 = 0
    haircut_applied: int256 = 0
    floor_applied, bucket_floor = self._scan_value(
        convert(floor_bps, int256),
        cur_floor,
        prev_floor,
        bucket_floor,
        lim,
        True,
    )
    haircut_applied, bucket_haircut = self._scan_value(
        convert(haircut_bps, int256),
        cur_haircut,
        prev_haircut,
        bucket_haircut,
        lim,
        True,
    )
    ramps = (
        ramps
        or floor_applied != convert(floor_bps, int256)
        or haircut_applied != convert(haircut_bps, int256)
    )

    if stored != start:
        self.shock_prev[asset] = prev
    if stored != start or new_bucket != bucket:
        self.shock_bucket[asset] = new_bucket
    ramp_flag: uint256 = 0
    if ramps:
        ramp_flag = RAMP_BIT
    new_st: uint256 = (
        convert(floor_applied, uint256)
        | (convert(haircut_applied, uint256) << 16)
        | (convert(prev_floor, uint256) << 32)
        | (convert(prev_haircut, uint256) << 48)
        | (convert(bucket_floor, uint256) << 64)
        | (convert(bucket_haircut, uint256) << 80)
        | (start << BUCKET_SHIFT)
        | ramp_flag
    )
    if new_st != st:
        self.asset_state[asset] = new_st
    if ramps:
        ramp_end: uint256 = block.timestamp + lim.ramp_duration
        self.ramp_from[asset] = applied
        self.ramp_to[asset] = shocks
        self.ramp_word[asset] = (
            convert(floor_applied, uint256)
            | (convert(haircut_applied, uint256) << 16)
            | (floor_bps << 32)
            | (haircut_bps << 48)
            | (block.timestamp << RAMP_START_SHIFT)
            | (ramp_end << RAMP_END_SHIFT)
        )
        log RampStarted(
            asset=asset,
            shocks=shocks,
            floor_bps=floor_bps,
            haircut_bps=haircut_bps,
            end=ramp_end,
        )
    elif st & RAMP_BIT != 0:
        # The signed values replace a pending ramp.
        self.ramp_word[asset] = 0

    if applied != current:
        extcall engine.set_shock_word(asset, applied)
    if floor_applied != cur_floor or haircut_applied != cur_haircut:
        extcall engine.set_asset_risk(
            asset,
            convert(floor_applied, uint256),
            convert(haircut_applied, uint256),
        )


@internal
@view
def _scan_shocks(
    new: uint256,
    current: uint256,
    prev: uint256,
    bucket: uint256,
    bounds: uint256,
    lim: Limits,
) -> (uint256, uint256, bool):
    """
    @dev The 16 shocks of an update, slot by slot on the packed words:
         bounds, rate limits, MM step. Returns (the word applied now, the
         current bucket's new tightest word, whether a ramp is needed).
         An unchanged slot needs no rate check and, its value being already
         in the bucket, no bucket update.
    """
    down_max: int256 = -convert((bounds >> 64) & MASK16, int256)
    up_max: int256 = convert((bounds >> 80) & MASK16, int256)
    step: int256 = convert(lim.mm_step_bps, int256)
    neg_step: int256 = -step
    update_rate: int256 = convert(lim.update_rate, int256)
    window_rate: int256 = convert(lim.window_rate, int256)
    worst_down: int256 = 0
    worst_up: int256 = 0
    applied: uint256 = new
    tightest: uint256 = bucket
    ramps: bool = False
    # Unchecked arithmetic below: every value is an int16 slot, both rates
    # are <= WAD and the step is <= BPS, so no sum, difference or product
    # leaves (-2**80, 2**80).
    for k: uint256 in range(constants.MAX_SCENARIOS):
        # Slot k of each word, sign-extended (fixed_math._shock inlined).
        up: uint256 = unsafe_sub(240, unsafe_mul(16, k))
        n: int256 = convert(convert(new << up, bytes32), int256) >> 240
        assert n >= down_max and n <= up_max, "governor: shock out of bounds"
        worst_down = min(worst_down, n)
        worst_up = max(worst_up, n)
        c: int256 = convert(convert(current << up, bytes32), int256) >> 240
        if n == c:
            continue
        b: int256 = convert(convert(bucket << up, bytes32), int256) >> 240
        p: int256 = convert(convert(prev << up, bytes32), int256) >> 240
        # Loosening moves toward zero or across it (c * d < 0): |d| within
        # the per-update allowance max(|c| * rate, 1), and the move from the
        # tightest value r held in the window within the window's allowance
        # (_check_rate inlined; magnitudes compared as squares, SDIV
        # truncating toward zero as the floor of |c| * rate).
        d: int256 = unsafe_sub(n, c)
        if unsafe_mul(c, d) < 0:
            q: int256 = unsafe_div(unsafe_mul(c, update_rate), constants.IWAD)
            assert unsafe_mul(d, d) <= max(
                unsafe_mul(q, q), 1
            ), "governor: loosens too fast per update"
        bb: int256 = unsafe_mul(b, b)
        r: int256 = p
        if bb > unsafe_mul(p, p):
            r = b
        e: int256 = unsafe_sub(n, r)
        if unsafe_mul(r, e) < 0:
            q: int256 = unsafe_div(unsafe_mul(r, window_rate), constants.IWAD)
            assert unsafe_mul(e, e) <= max(
                unsafe_mul(q, q), 1
            ), "governor: loosens too fast per window"
        # MM-relevant tightening: at most `step` now, the rest over a ramp.
        a: int256 = n
        if c >= 0 and d > step:
            a = unsafe_add(c, step)
        elif c <= 0 and d < neg_step:
            a = unsafe_sub(c, step)
        tighter: bool = unsafe_mul(a, a) > bb
        if a != n or tighter:
            at: uint256 = unsafe_mul(16, k)
            keep: uint256 = ~(MASK16 << at)
            bits: uint256 = (
                convert(convert(a, bytes32), uint256) & MASK16
            ) << at
            if a != n:
                applied = (applied & keep) | bits
                ramps = True
            if tighter:
                tightest = (tightest & keep) | bits
    assert -worst_down >= convert(
        (bounds >> 96) & MASK16, int256
    ) and worst_up >= convert(
        (bounds >> 112) & MASK16, int256
    ), "governor: shocks below floor"
    return applied, tightest, ramps


@internal
@view
def _scan_value(
    n: int256, c: int256, p: int256, b: int256, lim: Limits, mm: bool
) -> (int256, int256):
    """
    @dev One non-negative value (floor, haircut, IM multiplier, discount):
         rate limits and, when `mm`, the MM step. Returns (the value applied
         now, the current bucket's new tightest value).
    """
    if n == c:
        return c, b
    self._check_rate(n, c, max(p, b), lim)
    a: int256 = n
    if mm and n > c + convert(lim.mm_step_bps, int256):
        a = c + convert(lim.mm_step_bps, int256)
    return a, max(a, b)


@internal
def _update_global(u: RiskUpdate, lim: Limits, start: uint256):
    """
    @dev IM multiplier and discount curve: bounds and rate limits; tightening
         applies at once (raising IM cannot make anyone liquidatable).
    """
    w0: uint256 = self.global_bounds_word[0]
    w1: uint256 = self.global_bounds_word[1]
    assert (
        u.im_multiplier >= w0 & MASK64
        and u.im_multiplier <= (w0 >> 64) & MASK64
    ), "governor: IM multiplier out of bounds"
    assert (
        u.min_discount >= (w0 >> 128) & MASK64
        and u.min_discount <= w0 >> 192
        and u.max_discount >= w1 & MASK64
        and u.max_discount <= (w1 >> 64) & MASK64
        and u.min_discount <= u.max_discount
    ), "governor: discount out of bounds"

    gs: uint256 = self.global_state
    current: int256[GLOBALS] = self._unpack3(gs)
    new: int256[GLOBALS] = [
        convert(u.im_multiplier, int256),
        convert(u.min_discount, int256),
        convert(u.max_discount, int256),
    ]
    prev: int256[GLOBALS] = empty(int256[GLOBALS])
    bucket: int256[GLOBALS] = empty(int256[GLOBALS])
    prev, bucket = self._global_refs(gs, current, start, lim.window)
    for i: uint256 in range(GLOBALS):
        applied: int256 = 0
        applied, bucket[i] = self._scan_value(
            new[i], current[i], prev[i], bucket[i], lim, False
        )
    values: uint256 = (
        u.im_multiplier | (u.min_discount << 64) | (u.max_discount << 128)
    )
    rolled: bool = start != (gs >> GLOBAL_BUCKET_SHIFT) & MASK40
    if rolled or values != gs & (2**GLOBAL_BUCKET_SHIFT - 1):
        self.global_state = values | (start << GLOBAL_BUCKET_SHIFT)
    if rolled:
        self.global_prev = self._pack3(prev)
    if (
        rolled
        or new[0] != current[0]
        or new[1] != current[1]
        or new[2] != current[2]
    ):
        self.global_bucket = self._pack3(bucket)
    if new[0] != current[0]:
        extcall engine.set_im_multiplier(u.im_multiplier)
    if new[1] != current[1] or new[2] != current[2]:
        extcall liquidations.set_discount_curve(u.min_discount, u.max_discount)


@internal
@view
def _check_rate(new: int256, current: int256, reference: int256, lim: Limits):
    """
    @dev Loosening limits of one value: within `update_rate` of the current
         value and within `window_rate` of the rolling-window reference.
         Tightening passes both trivially.
    """
    assert self._within(
        new, current, lim.update_rate
    ), "governor: loosens too fast per update"
    assert self._within(
        new, reference, lim.window_rate
    ), "governor: loosens too fast per window"


@internal
@pure
def _within(x: int256, ref: int256, rate: uint256) -> bool:
    """
    @dev x is no looser than `ref` minus its allowance
         max(floor(|ref| * rate), 1): rounded down against loosening, but at
         least one unit so that a value can reach zero. A value loosens when
         it moves toward zero (or past it) from the side `ref` is on.
    """
    if ref == 0:
        return True
    allow: int256 = max(abs(ref) * convert(rate, int256) // constants.IWAD, 1)
    if ref > 0:
        return x >= ref - allow
    return x <= ref + allow


@internal
@pure
def _tightest(x: int256, y: int256) -> int256:
    """
    @dev The tighter of two values held within one rolling window: the
         larger magnitude. Values held within a window never have opposite
         signs (crossing zero needs the reference at zero first), so this is
         the tighter for either sign.
    """
    if abs(y) > abs(x):
        return y
    return x


@internal
@view
def _asset_refs(
    asset: uint256,
    st: uint256,
    current: int256[SLOTS],
    start: uint256,
    window: uint256,
) -> (int256[SLOTS], int256[SLOTS]):
    """
    @dev (tightest in the previous bucket, tightest in the current bucket) at
         the bucket starting at `start`. Every time in the last `window`
         seconds lies in one of the two, so their tighter value bounds every
         value held in the rolling window.
    """
    stored: uint256 = (st >> BUCKET_SHIFT) & MASK40
    if stored == start:
        return self._unpack(
            self.shock_prev[asset], (st >> 32) & MASK16, (st >> 48) & MASK16
        ), self._unpack(
            self.shock_bucket[asset], (st >> 64) & MASK16, (st >> 80) & MASK16
        )
    if stored + window == start:
        # The last bucket's tightest becomes the previous one; the current
        # bucket starts with the values held when it began.
        return self._unpack(
            self.shock_bucket[asset], (st >> 64) & MASK16, (st >> 80) & MASK16
        ), current
    # No update for a whole bucket: the current values were held throughout.
    return current, current


@internal
@view
def _global_refs(
    gs: uint256, current: int256[GLOBALS], start: uint256, window: uint256
) -> (int256[GLOBALS], int256[GLOBALS]):
    """
    @dev `_asset_refs` for the global values.
    """
    stored: uint256 = (gs >> GLOBAL_BUCKET_SHIFT) & MASK40
    if stored == start:
        return self._unpack3(self.global_prev), self._unpack3(
            self.global_bucket
        )
    if stored + window == start:
        return self._unpack3(self.global_bucket), current
    return current, current


@internal
def _store_asset(
    asset: uint256,
    values: int256[SLOTS],
    prev: int256[SLOTS],
    bucket: int256[SLOTS],
    start: uint256,
    ramping: bool,
):
    st: uint256 = self.asset_state[asset]
    if (st >> BUCKET_SHIFT) & MASK40 != start:
        self.shock_prev[asset] = self._pack_shocks(prev)
    ramp_flag: uint256 = 0
    if ramping:
        ramp_flag = RAMP_BIT
    self.shock_bucket[asset] = self._pack_shocks(bucket)
    self.asset_state[asset] = (
        convert(values[FLOOR], uint256)
        | (convert(values[HAIRCUT], uint256) << 16)
        | (convert(prev[FLOOR], uint256) << 32)
        | (convert(prev[HAIRCUT], uint256) << 48)
        | (convert(bucket[FLOOR], uint256) << 64)
        | (convert(bucket[HAIRCUT], uint256) << 80)
        | (start << BUCKET_SHIFT)
        | ramp_flag
    )


@internal
def _write_engine(
    asset: uint256, current: int256[SLOTS], values: int256[SLOTS]
):
    """
    @dev Set on the engine what changed: the shocks, then floor and haircut.
    """
    word: uint256 = self._pack_shocks(values)
    if word != self._pack_shocks(current):
        extcall engine.set_shock_word(asset, word)
    if values[FLOOR] != current[FLOOR] or values[HAIRCUT] != current[HAIRCUT]:
        extcall engine.set_asset_risk(
            asset,
            convert(values[FLOOR], uint256),
            convert(values[HAIRCUT], uint256),
        )


@internal
@pure
def _unpack(
    word: uint256, floor_bps: uint256, haircut_bps: uint256
) -> int256[SLOTS]:
    out: int256[SLOTS] = empty(int256[SLOTS])
    for k: uint256 in range(constants.MAX_SCENARIOS):
        out[k] = fixed_math._shock(word, k)
    out[FLOOR] = convert(floor_bps, int256)
    out[HAIRCUT] = convert(haircut_bps, int256)
    return out


@internal
@pure
def _pack_shocks(v: int256[SLOTS]) -> uint256:
    """
    @dev The 16 shocks of `v` as the engine's packed int16 word. Each is in
         [-32768, 32767]: unpacked from a word or between two such values.
    """
    word: uint256 = 0
    for k: uint256 in range(constants.MAX_SCENARIOS):
        s: int256 = v[k]
        if s < 0:
            s += 65536
        word |= convert(s, uint256) << (16 * k)
    return word


@internal
@pure
def _unpack3(word: uint256) -> int256[GLOBALS]:
    return [
        convert(word & MASK64, int256),
        convert((word >> 64) & MASK64, int256),
        convert((word >> 128) & MASK64, int256),
    ]


@internal
@pure
def _pack3(v: int256[GLOBALS]) -> uint256:
    return (
        convert(v[0], uint256)
        | (convert(v[1], uint256) << 64)
        | (convert(v[2], uint256) << 128)
    )
