# pragma version ~=0.4.3
# pragma optimize codesize
# (Sized, not gas-tuned: 290 bytes smaller for +135 gas per update or poke.)
"""
@title Ballast risk governor: M-of-N signed, bounded, rate-limited updates
@notice The link between the off-chain risk engine and the chain. Registered
        risk signers sign an EIP-712 `RiskUpdate` (per-asset scenario shocks,
        floor and haircut rates, the IM multiplier and the liquidation
        discount curve, with a nonce and a deadline); anyone but a signer
        relays it with M distinct valid signatures, sorted by signer address.
        The governor is the engine's `risk_manager` and the liquidation
        engine's risk manager; it sets nothing the owner has not bounded.
        Time is cut into buckets `[k * window, (k + 1) * window)`; per asset
        the governor records the lowest and highest value each governed
        slot held in the current bucket:
          - bounds: every value stays inside the owner's floors and caps;
          - shocks: no change of one shock slot is tightening (it lowers the
            worst loss of a book hedged against it), so every shock moves at
            most `max(floor(m * update_rate), 1)` bps from the current value
            (m: the asset's largest |shock| now) and at most
            `max(floor(M * window_rate), 1)` bps from every value it held in
            the bucket (M: the least such m held in the bucket), and its
            magnitude at most `mm_step_bps` beyond the least tight value it
            held in the bucket;
          - floor rate and haircut: raising one raises every book's MM or
            lowers its equity, so it is tightening: at once up to
            `mm_step_bps` above the lowest value held in the bucket, the rest
            a ramp (`poke`); lowering one is limited by `update_rate` of the
            current value and `window_rate` of the highest held;
          - IM multiplier and discounts: raising applies at once, lowering as
            for floor rates.
        Every check starts from the value the engine (or the liquidation
        engine) holds now, never from a record of this contract. See
        docs/ARCHITECTURE.md, "Signed risk updates: bounds policy".
@custom:security A stolen signer key, or M of them, can move parameters only
        at the rates above; the owner sets bounds and rates and manages
        signers (it must be a timelocked multisig). Replay: the EIP-712
        domain binds chain id and this contract, and the contract is bound to
        one engine; nonces are sequential. Signatures: 65 bytes, low-s
        (snekmate ecdsa), strictly increasing signer addresses, so no signer
        counts twice; removing a signer voids its pending signatures.
        Pause: the guardian (or the owner) calls `pause`; only the owner
        `unpause`s. Paused, neither `submit` nor `poke` runs. An owner's
        direct change on the engine (an emergency override) is the base of
        the next update and is never overwritten by a ramp's `poke`.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

from interfaces import ILiquidations
from interfaces import IRiskEngine

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
    "RiskUpdate(uint256[] assets,uint256[] shocks,uint256[] floors,uint256[] haircuts,uint256 im_multiplier,uint256 min_discount,uint256 max_discount,uint256 nonce,uint256 deadline)"
)
MAX_SIGNERS: constant(uint256) = 16
# Per asset in the views: 32 shocks, then floor and haircut (bps).
SLOTS: constant(uint256) = constants.MAX_SCENARIOS + 2
FLOOR: constant(uint256) = constants.MAX_SCENARIOS
HAIRCUT: constant(uint256) = constants.MAX_SCENARIOS + 1
# Shock words per update: two per asset (the engine's packing).
MAX_WORDS: constant(uint256) = constants.SHOCK_WORDS * constants.MAX_ASSETS
# Global values: IM multiplier, min and max discount (WAD).
GLOBALS: constant(uint256) = 3
MASK16: constant(uint256) = 2**16 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK40: constant(uint256) = 2**40 - 1
MASK64: constant(uint256) = 2**64 - 1
# SWAR (see _check_word): 8 lanes of 32 bits.
ONES: constant(uint256) = max_value(uint256) // (2**32 - 1)
LANES: constant(uint256) = ONES * (2**16 - 1)
GUARD: constant(uint256) = ONES << 17
LANE17: constant(uint256) = ONES * (2**17 - 1)
LANE17_0: constant(uint256) = 2**17 - 1
ZERO: constant(uint256) = ONES * 2**15  # a biased zero in every lane
HALF_LANES: constant(uint256) = ONES * 2**15
TWO_HALF: constant(uint256) = ONES * 2**16
# XOR with a packed int16 word: every slot s becomes s + 2**15 (order kept).
BIAS16: constant(uint256) = max_value(uint256) // (2**16 - 1) * 2**15
# asset_state: the owner's bounds (8 x 16 bits, see AssetBounds) | CONFIGURED
# | RAMP_BIT | bucket start (40) | floor low | floor high | haircut low |
# haircut high | row base (16 bits each; see `asset_state`).
BOUNDS_MASK: constant(uint256) = 2**128 - 1
CONFIGURED: constant(uint256) = 1 << 128
RAMP_BIT: constant(uint256) = 1 << 129
BUCKET_SHIFT: constant(uint256) = 136
FLOOR_LO_SHIFT: constant(uint256) = 176
FLOOR_HI_SHIFT: constant(uint256) = 192
HAIRCUT_LO_SHIFT: constant(uint256) = 208
HAIRCUT_HI_SHIFT: constant(uint256) = 224
BASE_SHIFT: constant(uint256) = 240
# global_state: IM | min discount | max discount (64 bits each) | bucket start.
GLOBAL_BUCKET_SHIFT: constant(uint256) = 192
# ramp_word: origin floor | origin haircut | target floor | target haircut |
# floor written | haircut written (16 bits each) | start | end (40 bits each).
RAMP_TARGET_SHIFT: constant(uint256) = 32
RAMP_WRITTEN_SHIFT: constant(uint256) = 64
RAMP_START_SHIFT: constant(uint256) = 96
RAMP_END_SHIFT: constant(uint256) = 136
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
    # Two words of 16 int16 bps per asset (the engine's packing): asset
    # i's scenarios 0..15 at 2i, 16..31 at 2i + 1.
    shocks: DynArray[uint256, MAX_WORDS]
    floors: DynArray[uint256, constants.MAX_ASSETS]  # floor rate, bps
    haircuts: DynArray[uint256, constants.MAX_ASSETS]  # haircut, bps
    im_multiplier: uint256  # WAD
    min_discount: uint256  # WAD fraction
    max_discount: uint256  # WAD fraction
    nonce: uint256  # must equal `next_nonce`
    deadline: uint256  # unix seconds, inclusive


struct Limits:
    window: uint256  # bucket length, seconds
    window_rate: uint256  # max move per bucket, WAD fraction
    update_rate: uint256  # max move per update, WAD fraction
    mm_step_bps: uint256  # MM budget per bucket: shock magnitude, floor, haircut
    ramp_duration: uint256  # seconds for a floor / haircut ramp to reach its target


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
    current: int256[SLOTS]  # what the engine holds now
    low: int256[
        SLOTS
    ]  # lowest value held in the current bucket (current included)
    high: int256[SLOTS]  # highest value held in the current bucket
    update_allowance: uint256  # bps a shock may move from `current` in one update
    window_allowance: uint256  # bps a shock may move from any value in [low, high]
    ramp_target: int256[
        SLOTS
    ]  # current shocks, floor and haircut targets; zeros: no ramp
    ramp_start: uint256
    ramp_end: uint256  # 0 when no ramp


struct GlobalView:
    current: uint256[
        GLOBALS
    ]  # IM multiplier, min and max discount the engines hold
    reference: uint256[GLOBALS]  # highest value held in the current bucket
    recorded: uint256[
        GLOBALS
    ]  # last signed: an update restating them changes nothing


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
# Per asset, one word read by every update of it: the owner's bounds, whether
# it is governed, whether a ramp is pending, the bucket the rest describes,
# the lowest and highest floor and haircut held in that bucket, and the row
# base: the least "largest |shock| of the asset" held in it (the scale of the
# per-bucket shock allowance).
asset_state: HashMap[uint256, uint256]
# Per asset and shock word w, keyed `asset * SHOCK_WORDS + w`: lowest and
# highest value of each shock held in the bucket of `asset_state` (16 int16
# slots a word, the engine's packing). The key is computed unchecked: the
# record is read and written only for assets the engine lists (governed, or
# being synced), so asset < 2**8 and w < 2.
shock_lo: HashMap[uint256, uint256]
shock_hi: HashMap[uint256, uint256]
# Per asset floor / haircut ramp (0 = none): origin, target, the values the
# governor last wrote (a `poke` finding others on the engine stops), times.
ramp_word: HashMap[uint256, uint256]
# Packed GlobalBounds: IM min | IM max | min-discount min | min-discount max
# (64 bits each), then max-discount min | max-discount max.
global_bounds_word: uint256[2]
# The global values last signed (IM | min | max discount) and the bucket
# `global_high` describes. An update restating them changes nothing.
global_state: uint256
# The highest IM multiplier, min and max discount held in that bucket.
global_high: uint256


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
    floor_bps: uint256
    haircut_bps: uint256
    end: uint256


event RampPoked:
    asset: indexed(uint256)
    done: bool


event RampCancelled:
    asset: indexed(
        uint256
    )  # the engine holds values the governor did not write


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
    @dev Changing `window` renumbers the buckets: every record restarts
         from the values held at the next update (a loosening opportunity
         only the owner can create).
    """
    ownable._check_owner()
    self._set_limits(limits_)


@external
def set_asset_bounds(asset: uint256, bounds: AssetBounds):
    """
    @notice Floors and caps of an asset's governed values, bps; the asset is
            governed from now on. Restarts its bucket record from the values
            the engine holds and drops its ramp (`sync_asset`). Owner only.
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
    packed: uint256 = (
        bounds.floor_min
        | (bounds.floor_max << 16)
        | (bounds.haircut_min << 32)
        | (bounds.haircut_max << 48)
        | (bounds.shock_down_max << 64)
        | (bounds.shock_up_max << 80)
        | (bounds.shock_down_min << 96)
        | (bounds.shock_up_min << 112)
    )
    log AssetBoundsSet(asset=asset, bounds=bounds)
    self._sync_asset(asset, packed)


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
    @notice Restart an asset's bucket record from the values the engine holds
            and drop its ramp. Not needed for correctness (every update starts
            from the engine's values); it forgets what the asset held earlier
            in the bucket. Owner only.
    """
    ownable._check_owner()
    st: uint256 = self.asset_state[asset]
    self._check_configured(st)
    self._sync_asset(asset, st & BOUNDS_MASK)


@external
def sync_global():
    """
    @notice Restart the record of the IM multiplier and the discount curve
            from the values the engines hold. Owner only.
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
         starting from what the engines hold now, records the bucket's
         lows and highs, then sets the engine and the liquidation engine.
         Assets not listed in the update keep their values and ramps.
    """
    assert not self.paused, "governor: paused"
    assert not self.is_signer[msg.sender], "governor: signer cannot relay"
    assert block.timestamp <= update.deadline, "governor: expired"
    assert update.nonce == self.next_nonce, "governor: bad nonce"
    n: uint256 = len(update.assets)
    assert (
        len(update.shocks) == constants.SHOCK_WORDS * n
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
            # Unchecked: i < 32 (the loop's bound).
            [
                update.shocks[unsafe_mul(2, i)],
                update.shocks[unsafe_add(unsafe_mul(2, i), 1)],
            ],
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
    @notice Move an asset's floor / haircut ramp forward: linearly from where
            the update left them to the signed target at the ramp's end,
            within the bucket's MM budget (`mm_step_bps` above the lowest
            value held in the bucket). Anyone. When the engine holds values
            the governor did not write (the owner set them), the ramp ends
            and the owner's values stay.
    """
    assert not self.paused, "governor: paused"
    rw: uint256 = self.ramp_word[asset]
    assert rw != 0, "governor: no ramp"
    st: uint256 = self.asset_state[asset]
    aw: uint256 = staticcall engine.asset_word(asset)
    cur_floor: int256 = convert((aw >> ENGINE_FLOOR_SHIFT) & MASK16, int256)
    cur_haircut: int256 = convert((aw >> ENGINE_HAIRCUT_SHIFT) & MASK16, int256)
    if cur_floor != convert(
        (rw >> RAMP_WRITTEN_SHIFT) & MASK16, int256
    ) or cur_haircut != convert(
        (rw >> (RAMP_WRITTEN_SHIFT + 16)) & MASK16, int256
    ):
        self.ramp_word[asset] = 0
        self.asset_state[asset] = st & ~RAMP_BIT
        log RampCancelled(asset=asset)
        return

    ramp_start: uint256 = (rw >> RAMP_START_SHIFT) & MASK40
    ramp_end: uint256 = (rw >> RAMP_END_SHIFT) & MASK40
    target_floor: int256 = convert((rw >> RAMP_TARGET_SHIFT) & MASK16, int256)
    target_haircut: int256 = convert(
        (rw >> (RAMP_TARGET_SHIFT + 16)) & MASK16, int256
    )
    v_floor: int256 = target_floor
    v_haircut: int256 = target_haircut
    if block.timestamp < ramp_end:
        origin_floor: int256 = convert(rw & MASK16, int256)
        origin_haircut: int256 = convert((rw >> 16) & MASK16, int256)
        elapsed: int256 = convert(block.timestamp - ramp_start, int256)
        duration: int256 = convert(ramp_end - ramp_start, int256)
        # Targets are above their origins: flooring rounds toward the origin,
        # so the ramp never overshoots and is exact at its end.
        v_floor = (
            origin_floor + (target_floor - origin_floor) * elapsed // duration
        )
        v_haircut = (
            origin_haircut
            + (target_haircut - origin_haircut) * elapsed // duration
        )

    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    f_lo: int256 = cur_floor
    f_hi: int256 = cur_floor
    h_lo: int256 = cur_haircut
    h_hi: int256 = cur_haircut
    base: uint256 = 0
    if (st >> BUCKET_SHIFT) & MASK40 == start:
        f_lo = min(self._field(st, FLOOR_LO_SHIFT), cur_floor)
        f_hi = max(self._field(st, FLOOR_HI_SHIFT), cur_floor)
        h_lo = min(self._field(st, HAIRCUT_LO_SHIFT), cur_haircut)
        h_hi = max(self._field(st, HAIRCUT_HI_SHIFT), cur_haircut)
        base = st >> BASE_SHIFT
    else:
        # A new bucket: the shocks' record restarts from the engine too.
        base = self._restart_shocks(asset)
    # The bucket's MM budget: never above the lowest value held plus the step.
    step: int256 = convert(lim.mm_step_bps, int256)
    v_floor = max(min(v_floor, f_lo + step), cur_floor)
    v_haircut = max(min(v_haircut, h_lo + step), cur_haircut)
    done: bool = v_floor == target_floor and v_haircut == target_haircut

    new_st: uint256 = self._pack_state(
        st & (BOUNDS_MASK | CONFIGURED),
        start,
        f_lo,
        max(f_hi, v_floor),
        h_lo,
        max(h_hi, v_haircut),
        base,
    )
    if done:
        self.ramp_word[asset] = 0
    else:
        new_st |= RAMP_BIT
        self.ramp_word[asset] = (
            (rw & ~(MASK32 << RAMP_WRITTEN_SHIFT))
            | (convert(v_floor, uint256) << RAMP_WRITTEN_SHIFT)
            | (convert(v_haircut, uint256) << (RAMP_WRITTEN_SHIFT + 16))
        )
    self.asset_state[asset] = new_st
    log RampPoked(asset=asset, done=done)
    if v_floor != cur_floor or v_haircut != cur_haircut:
        extcall engine.set_asset_risk(
            asset, convert(v_floor, uint256), convert(v_haircut, uint256)
        )


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
    w: uint256 = self.asset_state[asset]
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
    @notice What an update of `asset` is checked against now (see the
            contract's notice): the values the engine holds, the lowest and
            highest held in the current bucket, the shock allowances and the
            pending ramp. A shock `x` is accepted when
            `|x - current| <= update_allowance`,
            `high - window_allowance <= x <= low + window_allowance` and its
            magnitude is at most `mm_step_bps` beyond the least tight of
            `low`, `high` (0 if they straddle zero).
    """
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    st: uint256 = self.asset_state[asset]
    current: uint256[constants.SHOCK_WORDS] = self._engine_shocks(asset)
    aw: uint256 = staticcall engine.asset_word(asset)
    cur_floor: int256 = convert((aw >> ENGINE_FLOOR_SHIFT) & MASK16, int256)
    cur_haircut: int256 = convert((aw >> ENGINE_HAIRCUT_SHIFT) & MASK16, int256)
    lo: uint256[constants.SHOCK_WORDS] = current
    hi: uint256[constants.SHOCK_WORDS] = current
    v: AssetView = empty(AssetView)
    v.low[FLOOR] = cur_floor
    v.high[FLOOR] = cur_floor
    v.low[HAIRCUT] = cur_haircut
    v.high[HAIRCUT] = cur_haircut
    m: int256 = convert(self._shocks_max(current), int256)
    base: int256 = m
    if st & CONFIGURED != 0 and (st >> BUCKET_SHIFT) & MASK40 == start:
        for w: uint256 in range(constants.SHOCK_WORDS):
            key: uint256 = unsafe_add(
                unsafe_mul(asset, constants.SHOCK_WORDS), w
            )
            lo[w] = self.shock_lo[key]
            hi[w] = self.shock_hi[key]
        v.low[FLOOR] = min(self._field(st, FLOOR_LO_SHIFT), cur_floor)
        v.high[FLOOR] = max(self._field(st, FLOOR_HI_SHIFT), cur_floor)
        v.low[HAIRCUT] = min(self._field(st, HAIRCUT_LO_SHIFT), cur_haircut)
        v.high[HAIRCUT] = max(self._field(st, HAIRCUT_HI_SHIFT), cur_haircut)
        base = min(convert(st >> BASE_SHIFT, int256), m)
    for k: uint256 in range(constants.MAX_SCENARIOS):
        w: uint256 = k // constants.SHOCKS_PER_WORD
        j: uint256 = k % constants.SHOCKS_PER_WORD
        c: int256 = self._slot(current[w], j)
        v.current[k] = c
        v.low[k] = min(self._slot(lo[w], j), c)
        v.high[k] = max(self._slot(hi[w], j), c)
    v.current[FLOOR] = cur_floor
    v.current[HAIRCUT] = cur_haircut
    v.update_allowance = convert(self._allowance(m, lim.update_rate), uint256)
    v.window_allowance = convert(
        self._allowance(base, lim.window_rate), uint256
    )
    rw: uint256 = self.ramp_word[asset]
    if rw != 0:
        v.ramp_target = v.current
        v.ramp_target[FLOOR] = convert(
            (rw >> RAMP_TARGET_SHIFT) & MASK16, int256
        )
        v.ramp_target[HAIRCUT] = convert(
            (rw >> (RAMP_TARGET_SHIFT + 16)) & MASK16, int256
        )
        v.ramp_start = (rw >> RAMP_START_SHIFT) & MASK40
        v.ramp_end = (rw >> RAMP_END_SHIFT) & MASK40
    return v


@external
@view
def global_view() -> GlobalView:
    """
    @notice The IM multiplier and discount curve the engines hold, the
            highest values held in the current bucket (the reference of the
            per-bucket loosening limit) and the last signed values (an update
            restating all three changes nothing, whatever the engines hold).
    """
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    cur: uint256[GLOBALS] = self._global_current()
    v: GlobalView = empty(GlobalView)
    v.current = cur
    v.reference = cur
    gs: uint256 = self.global_state
    for i: uint256 in range(GLOBALS):
        v.recorded[i] = (gs >> (64 * i)) & MASK64
    if (gs >> GLOBAL_BUCKET_SHIFT) & MASK40 == start:
        high: uint256 = self.global_high
        for i: uint256 in range(GLOBALS):
            v.reference[i] = max(cur[i], (high >> (64 * i)) & MASK64)
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
def _sync_asset(asset: uint256, bounds: uint256):
    """
    @dev Govern `asset` under `bounds` from the values the engine holds:
         the bucket record restarts from them and any ramp is dropped.
    """
    aw: uint256 = staticcall engine.asset_word(asset)
    assert aw != 0, "governor: asset not listed"
    floor_: int256 = convert((aw >> ENGINE_FLOOR_SHIFT) & MASK16, int256)
    haircut: int256 = convert((aw >> ENGINE_HAIRCUT_SHIFT) & MASK16, int256)
    lim: Limits = self._limits()
    self.asset_state[asset] = self._pack_state(
        bounds | CONFIGURED,
        block.timestamp // lim.window * lim.window,
        floor_,
        floor_,
        haircut,
        haircut,
        self._restart_shocks(asset),
    )
    self.ramp_word[asset] = 0
    log Synced(asset=asset)


@internal
def _sync_global():
    cur: uint256[GLOBALS] = self._global_current()
    values: uint256 = cur[0] | (cur[1] << 64) | (cur[2] << 128)
    lim: Limits = self._limits()
    start: uint256 = block.timestamp // lim.window * lim.window
    self.global_state = values | (start << GLOBAL_BUCKET_SHIFT)
    self.global_high = values
    log Synced(asset=max_value(uint256))


@internal
@view
def _global_current() -> uint256[GLOBALS]:
    """
    @dev IM multiplier, min and max discount as the engines hold them.
    """
    im: uint256 = staticcall engine.im_multiplier()
    lo: uint256 = staticcall liquidations.min_discount()
    hi: uint256 = staticcall liquidations.max_discount()
    assert (
        im <= MASK64 and lo <= MASK64 and hi <= MASK64
    ), "governor: value too large"
    return [im, lo, hi]


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
def _hash_array(a: DynArray[uint256, MAX_WORDS]) -> bytes32:
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
def _check_configured(st: uint256):
    assert st & CONFIGURED != 0, "governor: asset not governed"


@internal
def _update_asset(
    asset: uint256,
    shocks: uint256[constants.SHOCK_WORDS],
    floor_bps: uint256,
    haircut_bps: uint256,
    lim: Limits,
    start: uint256,
):
    """
    @dev One asset of an update: bounds, rate limits and MM budget from the
         values the engine holds, the bucket record and ramp, then the
         engine (effects before the calls).
    """
    st: uint256 = self.asset_state[asset]
    self._check_configured(st)
    assert (
        floor_bps >= st & MASK16 and floor_bps <= (st >> 16) & MASK16
    ), "governor: floor out of bounds"
    assert (
        haircut_bps >= (st >> 32) & MASK16
        and haircut_bps <= (st >> 48) & MASK16
    ), "governor: haircut out of bounds"

    current: uint256[constants.SHOCK_WORDS] = self._engine_shocks(asset)
    aw: uint256 = staticcall engine.asset_word(asset)
    cur_floor: int256 = convert((aw >> ENGINE_FLOOR_SHIFT) & MASK16, int256)
    cur_haircut: int256 = convert((aw >> ENGINE_HAIRCUT_SHIFT) & MASK16, int256)
    f_lo: int256 = cur_floor
    f_hi: int256 = cur_floor
    h_lo: int256 = cur_haircut
    h_hi: int256 = cur_haircut
    base: uint256 = MASK16
    same_bucket: bool = (st >> BUCKET_SHIFT) & MASK40 == start
    if same_bucket:
        f_lo = self._field(st, FLOOR_LO_SHIFT)
        f_hi = self._field(st, FLOOR_HI_SHIFT)
        h_lo = self._field(st, HAIRCUT_LO_SHIFT)
        h_hi = self._field(st, HAIRCUT_HI_SHIFT)
        base = st >> BASE_SHIFT
    # The 32 shocks, one packed word at a time (`_check_word`). Allowances
    # are uniform across the asset's slots, both words: a slot moved by d bps
    # changes a book's scenario loss by at most |exposure| * d, so a move
    # within `rate` of the asset's largest |shock| (over both words) changes
    # any book's MM by at most `rate` times its unhedged loss. Broadcasts
    # (unchecked x * ONES) are of values below 2**16 (bounds, allowances
    # <= 2**15, the step <= 10**4): each copy stays in its lane.
    row: uint256 = self._shocks_max(current)
    row_base: uint256 = min(base, row)
    a_up: uint256 = unsafe_mul(
        convert(
            self._allowance(convert(row, int256), lim.update_rate), uint256
        ),
        ONES,
    )
    a_win: uint256 = unsafe_mul(
        convert(
            self._allowance(convert(row_base, int256), lim.window_rate),
            uint256,
        ),
        ONES,
    )
    down: uint256 = unsafe_mul(
        32768 - ((st >> 64) & MASK16), ONES
    )  # -shock_down_max, biased
    up: uint256 = unsafe_mul(32768 + ((st >> 80) & MASK16), ONES)
    step: uint256 = unsafe_mul(lim.mm_step_bps, ONES)
    # The scenario set's worst moves over both words, biased (a zero slot
    # counts as neither), and its new largest |shock|.
    worst_down: uint256 = 32768
    worst_up: uint256 = 32768
    new_row: uint256 = 0
    for w: uint256 in range(constants.SHOCK_WORDS):
        key: uint256 = unsafe_add(unsafe_mul(asset, constants.SHOCK_WORDS), w)
        lo: uint256 = current[w]
        hi: uint256 = current[w]
        if same_bucket:
            lo = self.shock_lo[key]
            hi = self.shock_hi[key]
        new_lo: uint256 = 0
        new_hi: uint256 = 0
        d: uint256 = 0
        u: uint256 = 0
        r: uint256 = 0
        new_lo, new_hi, d, u, r = self._check_word(
            shocks[w], current[w], lo, hi, down, up, a_up, a_win, step
        )
        worst_down = min(worst_down, d)
        worst_up = max(worst_up, u)
        new_row = max(new_row, r)
        # The record per word: an unmoved one is not written again.
        if not same_bucket or new_lo != lo:
            self.shock_lo[key] = new_lo
        if not same_bucket or new_hi != hi:
            self.shock_hi[key] = new_hi
    assert worst_down + ((st >> 96) & MASK16) <= 32768 and (
        worst_up >= 32768 + ((st >> 112) & MASK16)
    ), "governor: shocks below floor"
    new_base: uint256 = min(row_base, new_row)

    floor_applied: int256 = 0
    haircut_applied: int256 = 0
    floor_applied, f_lo, f_hi = self._check_value(
        convert(floor_bps, int256), cur_floor, f_lo, f_hi, lim, True
    )
    haircut_applied, h_lo, h_hi = self._check_value(
        convert(haircut_bps, int256), cur_haircut, h_lo, h_hi, lim, True
    )
    ramps: bool = (
        floor_applied != convert(floor_bps, int256)
        or haircut_applied != convert(haircut_bps, int256)
    )

    new_st: uint256 = self._pack_state(
        st & (BOUNDS_MASK | CONFIGURED),
        start,
        f_lo,
        f_hi,
        h_lo,
        h_hi,
        new_base,
    )
    if ramps:
        new_st |= RAMP_BIT
    if new_st != st:
        self.asset_state[asset] = new_st
    if ramps:
        ramp_end: uint256 = block.timestamp + lim.ramp_duration
        written: uint256 = convert(floor_applied, uint256) | (
            convert(haircut_applied, uint256) << 16
        )
        self.ramp_word[asset] = (
            written
            | (floor_bps << RAMP_TARGET_SHIFT)
            | (haircut_bps << (RAMP_TARGET_SHIFT + 16))
            | (written << RAMP_WRITTEN_SHIFT)
            | (block.timestamp << RAMP_START_SHIFT)
            | (ramp_end << RAMP_END_SHIFT)
        )
        log RampStarted(
            asset=asset,
            floor_bps=floor_bps,
            haircut_bps=haircut_bps,
            end=ramp_end,
        )
    elif st & RAMP_BIT != 0:
        # The signed values replace a pending ramp.
        self.ramp_word[asset] = 0

    if shocks[0] != current[0] or shocks[1] != current[1]:
        extcall engine.set_shock_words(asset, shocks)
    if floor_applied != cur_floor or haircut_applied != cur_haircut:
        extcall engine.set_asset_risk(
            asset,
            convert(floor_applied, uint256),
            convert(haircut_applied, uint256),
        )


@internal
@pure
def _check_word(
    new: uint256,
    current: uint256,
    lo: uint256,
    hi: uint256,
    down: uint256,
    up: uint256,
    au: uint256,
    aw: uint256,
    step: uint256,
) -> (uint256, uint256, uint256, uint256, uint256):
    """
    @dev The 16 shocks of one packed word, all at once (SWAR), against the
         broadcast bounds `down` / `up` (biased), allowances `au` (per
         update) and `aw` (per bucket) and MM `step`. Returns the word's new
         bucket lowest and highest, its least and largest biased slot and
         its largest |shock|.
         Layout: each word is biased (XOR BIAS16: int16 s -> s + 2**15, an
         order-preserving unsigned value) and split into its even and odd
         slots, 8 lanes of 32 bits each: every lane value stays below 2**17
         (a biased slot plus an allowance or step <= 2**15), so bit 17 of a
         lane is a guard no carry or borrow crosses. The lane operations
         (comparisons written out, min / max in `_lane_min` / `_lane_max`):
           a <= b, per lane:  unsafe_sub(b | GUARD, a) & GUARD; every lane
             of b | GUARD exceeds a's, so no borrow crosses a lane;
           whole-lane mask:   (that >> 17) * (2**17 - 1): 0 or 1 per lane
             times a lane-sized constant stays in the lane;
           min / max:         (a & m) | (b & (LANE17 ^ m)) and its mirror.
    """
    nb: uint256 = new ^ BIAS16
    cb: uint256 = current ^ BIAS16
    n0: uint256 = nb & LANES
    n1: uint256 = (nb >> 16) & LANES
    c0: uint256 = cb & LANES
    c1: uint256 = (cb >> 16) & LANES
    # The bucket's lowest and highest values include what the engine holds.
    t: uint256 = lo ^ BIAS16
    a: uint256 = t & LANES
    l0: uint256 = self._lane_min(a, c0)
    a = (t >> 16) & LANES
    l1: uint256 = self._lane_min(a, c1)
    t = hi ^ BIAS16
    a = t & LANES
    h0: uint256 = self._lane_max(a, c0)
    a = (t >> 16) & LANES
    h1: uint256 = self._lane_max(a, c1)

    # Bounds, every slot.
    assert (
        (unsafe_sub(n0 | GUARD, down) & GUARD)
        & (unsafe_sub(up | GUARD, n0) & GUARD)
        & (unsafe_sub(n1 | GUARD, down) & GUARD)
        & (unsafe_sub(up | GUARD, n1) & GUARD)
        == GUARD
    ), "governor: shock out of bounds"

    # Per update, every slot (an unchanged slot meets it trivially).
    # Unchecked lane sums here and below stay under 2**17 (see the layout).
    x: uint256 = unsafe_add(c0, au)
    y: uint256 = unsafe_add(n0, au)
    z: uint256 = unsafe_add(c1, au)
    w: uint256 = unsafe_add(n1, au)
    assert (
        (unsafe_sub(x | GUARD, n0) & GUARD)
        & (unsafe_sub(y | GUARD, c0) & GUARD)
        & (unsafe_sub(z | GUARD, n1) & GUARD)
        & (unsafe_sub(w | GUARD, c1) & GUARD)
        == GUARD
    ), "governor: shock moves too fast per update"
    # Per bucket and the MM budget: changed slots only (an unchanged one may
    # hold an owner's value outside them). a ^ b < 2**16 per lane, plus
    # 2**16 - 1 stays below 2**17: bit 16 is set iff the slots differ.
    ch0: uint256 = (unsafe_add(n0 ^ c0, LANES) & (ONES << 16)) << 1
    ch1: uint256 = (unsafe_add(n1 ^ c1, LANES) & (ONES << 16)) << 1
    x = unsafe_add(n0, aw)
    y = unsafe_add(l0, aw)
    z = unsafe_add(n1, aw)
    w = unsafe_add(l1, aw)
    assert (
        ch0
        & ~(
            (unsafe_sub(x | GUARD, h0) & GUARD)
            & (unsafe_sub(y | GUARD, n0) & GUARD)
        )
        | ch1
        & ~(
            (unsafe_sub(z | GUARD, h1) & GUARD)
            & (unsafe_sub(w | GUARD, n1) & GUARD)
        )
        == 0
    ), "governor: shock moves too fast per window"
    x = self._lane_max(l0, ZERO)
    y = self._lane_min(h0, ZERO)
    z = self._lane_max(l1, ZERO)
    w = self._lane_min(h1, ZERO)
    x = unsafe_add(x, step)
    z = unsafe_add(z, step)
    t = unsafe_add(n0, step)
    a = unsafe_add(n1, step)
    assert (
        ch0
        & ~(
            (unsafe_sub(x | GUARD, n0) & GUARD)
            & (unsafe_sub(t | GUARD, y) & GUARD)
        )
        | ch1
        & ~(
            (unsafe_sub(z | GUARD, n1) & GUARD)
            & (unsafe_sub(a | GUARD, w) & GUARD)
        )
        == 0
    ), "governor: shock beyond the MM step"

    worst_down: uint256 = 0
    worst_up: uint256 = 0
    worst_down, worst_up = self._extremes(n0, n1)
    x = self._lane_min(l0, n0)
    y = self._lane_min(l1, n1)
    z = self._lane_max(h0, n0)
    w = self._lane_max(h1, n1)
    return (
        (x | (y << 16)) ^ BIAS16,
        (z | (w << 16)) ^ BIAS16,
        worst_down,
        worst_up,
        self._row_max(n0, n1),
    )


@internal
@pure
def _row_max(half0: uint256, half1: uint256) -> uint256:
    """
    @dev The largest |shock| of a split biased word (lanes as in
         `_check_word`): |s| is max(u, 2**16 - u) - 2**15 for the biased
         u = s + 2**15, then the largest lane. Folding the upper lanes down
         shifts zeros into lanes that never reach lane 0 again.
    """
    # Unchecked: 2**16 - u >= 1 per lane, and the max is >= 2**15.
    r: uint256 = unsafe_sub(TWO_HALF, half0)
    a0: uint256 = self._lane_max(half0, r)
    a0 = unsafe_sub(a0, HALF_LANES)
    r = unsafe_sub(TWO_HALF, half1)
    a1: uint256 = self._lane_max(half1, r)
    a1 = unsafe_sub(a1, HALF_LANES)
    x: uint256 = self._lane_max(a0, a1)
    y: uint256 = 0
    y = x >> 128
    x = self._lane_max(x, y)
    y = x >> 64
    x = self._lane_max(x, y)
    y = x >> 32
    x = self._lane_max(x, y)
    return x & LANE17_0


@internal
@pure
def _extremes(half0: uint256, half1: uint256) -> (uint256, uint256):
    """
    @dev The least and the largest biased slot of a split word (lanes as in
         `_check_word`; folding as in `_row_max`).
    """
    lo: uint256 = self._lane_min(half0, half1)
    hi: uint256 = self._lane_max(half0, half1)
    y: uint256 = 0
    y = lo >> 128
    lo = self._lane_min(lo, y)
    y = lo >> 64
    lo = self._lane_min(lo, y)
    y = lo >> 32
    lo = self._lane_min(lo, y)
    y = hi >> 128
    hi = self._lane_max(hi, y)
    y = hi >> 64
    hi = self._lane_max(hi, y)
    y = hi >> 32
    hi = self._lane_max(hi, y)
    return lo & LANE17_0, hi & LANE17_0


@internal
@pure
def _lane_min(a: uint256, b: uint256) -> uint256:
    """
    @dev Lane-wise min (lanes as in `_check_word`).
    """
    # Unchecked: see the lane operations of `_check_word`.
    m: uint256 = unsafe_mul((unsafe_sub(b | GUARD, a) & GUARD) >> 17, LANE17_0)
    return (a & m) | (b & (LANE17 ^ m))


@internal
@pure
def _lane_max(a: uint256, b: uint256) -> uint256:
    """
    @dev Lane-wise max (lanes as in `_check_word`).
    """
    # Unchecked: see the lane operations of `_check_word`.
    m: uint256 = unsafe_mul((unsafe_sub(b | GUARD, a) & GUARD) >> 17, LANE17_0)
    return (b & m) | (a & (LANE17 ^ m))


@internal
@view
def _check_value(
    n: int256, c: int256, lo: int256, hi: int256, lim: Limits, mm: bool
) -> (int256, int256, int256):
    """
    @dev One value where larger is tighter for every book (floor rate,
         haircut, IM multiplier, discounts), from the current value `c` and
         the lowest and highest held in the bucket. Lowering: within
         `update_rate` of `c` and `window_rate` of the highest held.
         Raising: at once; when `mm`, at most `mm_step_bps` above the lowest
         held now (the rest is the ramp's). Returns (applied, low, high).
    """
    low: int256 = min(lo, c)
    high: int256 = max(hi, c)
    if n == c:
        return c, low, high
    if n < c:
        assert n >= c - self._allowance(
            c, lim.update_rate
        ), "governor: loosens too fast per update"
        assert n >= high - self._allowance(
            high, lim.window_rate
        ), "governor: loosens too fast per window"
        return n, min(low, n), high
    a: int256 = n
    if mm:
        a = min(n, max(low + convert(lim.mm_step_bps, int256), c))
    return a, low, max(high, a)


@internal
def _update_global(u: RiskUpdate, lim: Limits, start: uint256):
    """
    @dev IM multiplier and discount curve. Values equal to the last signed
         ones change nothing (whatever the engines hold stays); otherwise
         bounds and the loosening limits from what the engines hold now.
         Raising applies at once (a higher IM makes no one liquidatable).
    """
    gs: uint256 = self.global_state
    values: uint256 = (
        u.im_multiplier | (u.min_discount << 64) | (u.max_discount << 128)
    )
    if (
        u.im_multiplier <= MASK64
        and u.min_discount <= MASK64
        and u.max_discount <= MASK64
        and values == gs & (2**GLOBAL_BUCKET_SHIFT - 1)
    ):
        return
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

    cur: uint256[GLOBALS] = self._global_current()
    new: uint256[GLOBALS] = [u.im_multiplier, u.min_discount, u.max_discount]
    high: uint256 = values
    if (gs >> GLOBAL_BUCKET_SHIFT) & MASK40 == start:
        high = self.global_high
    packed_high: uint256 = 0
    for i: uint256 in range(GLOBALS):
        applied: int256 = 0
        low: int256 = 0
        h: int256 = 0
        ref: int256 = convert(cur[i], int256)
        if (gs >> GLOBAL_BUCKET_SHIFT) & MASK40 == start:
            ref = max(ref, convert((high >> (64 * i)) & MASK64, int256))
        applied, low, h = self._check_value(
            convert(new[i], int256),
            convert(cur[i], int256),
            convert(cur[i], int256),
            ref,
            lim,
            False,
        )
        packed_high |= convert(h, uint256) << (64 * i)
    self.global_state = values | (start << GLOBAL_BUCKET_SHIFT)
    self.global_high = packed_high
    if new[0] != cur[0]:
        extcall engine.set_im_multiplier(u.im_multiplier)
    if new[1] != cur[1] or new[2] != cur[2]:
        extcall liquidations.set_discount_curve(u.min_discount, u.max_discount)


@internal
@pure
def _allowance(ref: int256, rate: uint256) -> int256:
    """
    @dev max(floor(|ref| * rate), 1): rounded down against the move, but at
         least one unit so that a value can reach zero.
    """
    return max(abs(ref) * convert(rate, int256) // constants.IWAD, 1)


@internal
@pure
def _slot(word: uint256, k: uint256) -> int256:
    """
    @dev Slot k of a packed shock word, sign-extended: shifted to the top of
         the word, reinterpreted as int256, shifted back arithmetically.
    """
    # Unchecked: k < 16, so 240 - 16 * k is in [0, 240].
    return (
        convert(
            convert(word << unsafe_sub(240, unsafe_mul(16, k)), bytes32),
            int256,
        )
        >> 240
    )


@internal
@pure
def _shocks_max(words: uint256[constants.SHOCK_WORDS]) -> uint256:
    """
    @dev The largest |shock| of an asset's packed words, bps.
    """
    m: uint256 = 0
    for word: uint256 in words:
        biased: uint256 = word ^ BIAS16
        m = max(m, self._row_max(biased & LANES, (biased >> 16) & LANES))
    return m


@internal
def _restart_shocks(asset: uint256) -> uint256:
    """
    @dev A new bucket's shock record: both words as the engine holds them.
         Returns the asset's largest |shock|, the bucket's row base.
    """
    shocks: uint256[constants.SHOCK_WORDS] = self._engine_shocks(asset)
    for w: uint256 in range(constants.SHOCK_WORDS):
        key: uint256 = unsafe_add(unsafe_mul(asset, constants.SHOCK_WORDS), w)
        self.shock_lo[key] = shocks[w]
        self.shock_hi[key] = shocks[w]
    return self._shocks_max(shocks)


@internal
@view
def _engine_shocks(asset: uint256) -> uint256[constants.SHOCK_WORDS]:
    """
    @dev The asset's packed shock words as the engine holds them.
    """
    out: uint256[constants.SHOCK_WORDS] = empty(uint256[constants.SHOCK_WORDS])
    for w: uint256 in range(constants.SHOCK_WORDS):
        out[w] = staticcall engine.shock_word(asset, w)
    return out


@internal
@pure
def _field(st: uint256, at: uint256) -> int256:
    return convert((st >> at) & MASK16, int256)


@internal
@pure
def _pack_state(
    head: uint256,
    start: uint256,
    f_lo: int256,
    f_hi: int256,
    h_lo: int256,
    h_hi: int256,
    base: uint256,
) -> uint256:
    """
    @dev `head` (bounds, flags) with the bucket record. Floor and haircut
         values are bps in [0, 10000] and the row base at most 32768, so
         each fits its 16 bits.
    """
    return (
        head
        | (start << BUCKET_SHIFT)
        | (convert(f_lo, uint256) << FLOOR_LO_SHIFT)
        | (convert(f_hi, uint256) << FLOOR_HI_SHIFT)
        | (convert(h_lo, uint256) << HAIRCUT_LO_SHIFT)
        | (convert(h_hi, uint256) << HAIRCUT_HI_SHIFT)
        | (base << BASE_SHIFT)
    )
