"""Signed risk-parameter updates: from a numpy parameter set to confirmed on-chain values.

The chain side is ``contracts/RiskGovernor.vy``; its rules are mirrored here exactly so that
the keeper only ever signs what the governor will accept. Time is cut into buckets of
``window`` seconds; the governor reports, per governed value, the value the engine holds now
(``current``) and the lowest and highest values held in the current bucket (``low``, ``high``):

* bounds: every signed value inside the owner's floors and caps (``AssetBounds``,
  ``GlobalBounds``);
* shocks, in either direction: within ``update_allowance`` bps of the current value, within
  ``window_allowance`` bps of every value held in the bucket (``high - a <= x <= low + a``),
  and no magnitude more than ``mm_step_bps`` beyond the least tight value held in the bucket
  (0 when ``low`` and ``high`` straddle zero). No shock change is tightening: moving one leg's
  shock lowers the worst loss of some hedged book;
* floor rate, haircut, IM multiplier, discounts: raising is tightening and applies at once
  (floor and haircut up to ``low + mm_step_bps``, the rest ramps on-chain through ``poke``);
  lowering stays within ``max(floor(|c| * update_rate / WAD), 1)`` of the current value and
  ``max(floor(|h| * window_rate / WAD), 1)`` of the bucket's highest value ``h``;
* global values equal to the governor's record of the last signed ones change nothing.

A target beyond the limits is reached in steps: :meth:`RiskSigner.plan` computes the furthest
update the chain accepts now, :meth:`RiskSigner.step` signs, recovers, submits and confirms it,
and the caller repeats once the bucket has moved on.

Keys: risk signers are Ape accounts, either test accounts or keyfile accounts unlocked with
the passphrase in the environment variable ``BALLAST_SIGNER_PASSPHRASE``
(:func:`load_signer`). The relayer that submits is a different account: the governor refuses a
signer as relayer.

Shapes: ``n`` assets in the update, ``K <= 32`` scenarios (padded with zero shocks to 32),
``SLOTS = 34`` governed values per asset (32 shocks, floor, haircut). The update carries two
packed shock words per asset (asset i's at ``2i`` and ``2i + 1``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eip712.messages import EIP712Domain, EIP712Message
from eth_account import Account
from eth_pydantic_types import abi

from offchain_risk.chain import signature_bytes
from offchain_risk.models.margin import MAX_SCENARIOS, flat_words, pack_shocks, pad_scenarios
from offchain_risk.units import read_shocks, unpack_shock_words

WAD = 10**18
BPS = 10**4
SLOTS = MAX_SCENARIOS + 2
FLOOR, HAIRCUT = MAX_SCENARIOS, MAX_SCENARIOS + 1
PASSPHRASE_ENV = "BALLAST_SIGNER_PASSPHRASE"
# Floor and haircut rates (bps) in the engine's packed asset word (ledger.vy).
FLOOR_SHIFT, HAIRCUT_SHIFT = 200, 216
# secp256k1 group order: the governor refuses s > N / 2 (malleable signatures).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class RiskUpdate(EIP712Message):
    """The typed update; field names and order match ``RiskGovernor.UPDATE_TYPEHASH``."""

    assets: list[abi.uint256]
    shocks: list[abi.uint256]
    floors: list[abi.uint256]
    haircuts: list[abi.uint256]
    im_multiplier: abi.uint256
    min_discount: abi.uint256
    max_discount: abi.uint256
    nonce: abi.uint256
    deadline: abi.uint256


def update_tuple(update: RiskUpdate) -> tuple:
    """The struct argument of ``RiskGovernor.submit``."""
    return (
        list(update.assets),
        list(update.shocks),
        list(update.floors),
        list(update.haircuts),
        update.im_multiplier,
        update.min_discount,
        update.max_discount,
        update.nonce,
        update.deadline,
    )


@dataclass(frozen=True)
class ParamSet:
    """A target parameter set.

    assets: (n,) asset ids, strictly increasing.
    shocks_bps: (n, K) joint scenario shocks, K <= 32.
    floor_bps, haircut_bps: (n,).
    im_multiplier_wad, min_discount_wad, max_discount_wad: global values (WAD).
    """

    assets: np.ndarray
    shocks_bps: np.ndarray
    floor_bps: np.ndarray
    haircut_bps: np.ndarray
    im_multiplier_wad: int
    min_discount_wad: int
    max_discount_wad: int

    def __post_init__(self) -> None:
        assets = np.asarray(self.assets, dtype=np.int64)
        shocks = np.asarray(self.shocks_bps)
        n = len(assets)
        if shocks.ndim != 2 or shocks.shape[0] != n or shocks.shape[1] > MAX_SCENARIOS:
            raise ValueError(
                f"shocks_bps must be (n_assets={n}, K<={MAX_SCENARIOS}), got {shocks.shape}"
            )
        for name in ("shocks_bps", "floor_bps", "haircut_bps"):
            arr = np.asarray(getattr(self, name))
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name} must hold integers (bps), got {arr.dtype}")
        if len(self.floor_bps) != n or len(self.haircut_bps) != n:
            raise ValueError("floor_bps and haircut_bps need one entry per asset")
        if n and (np.any(np.diff(assets) <= 0) or assets[0] < 0):
            raise ValueError("assets must be distinct, non-negative and increasing")
        if shocks.size and (shocks.min() < -10_000 or shocks.max() > 32_767):
            raise ValueError("shocks_bps outside [-10000, 32767]")
        if not 0 <= self.min_discount_wad <= self.max_discount_wad:
            raise ValueError("need 0 <= min_discount_wad <= max_discount_wad")

    @property
    def values(self) -> np.ndarray:
        """(n, SLOTS) int64: 32 shocks (zero-padded), floor, haircut."""
        out = np.zeros((len(self.assets), SLOTS), dtype=np.int64)
        out[:, :MAX_SCENARIOS] = pad_scenarios(self.shocks_bps)
        out[:, FLOOR] = self.floor_bps
        out[:, HAIRCUT] = self.haircut_bps
        return out

    @property
    def globals(self) -> tuple[int, int, int]:
        return (self.im_multiplier_wad, self.min_discount_wad, self.max_discount_wad)

    @classmethod
    def from_values(
        cls, assets: Sequence[int], values: np.ndarray, globals_: Sequence[int]
    ) -> ParamSet:
        values = np.asarray(values, dtype=np.int64)
        return cls(
            assets=np.asarray(assets, dtype=np.int64),
            shocks_bps=values[:, :MAX_SCENARIOS],
            floor_bps=values[:, FLOOR],
            haircut_bps=values[:, HAIRCUT],
            im_multiplier_wad=int(globals_[0]),
            min_discount_wad=int(globals_[1]),
            max_discount_wad=int(globals_[2]),
        )


@dataclass(frozen=True)
class Limits:
    window: int
    window_rate: int
    update_rate: int
    mm_step_bps: int
    ramp_duration: int


@dataclass(frozen=True)
class AssetBounds:
    floor_min: int
    floor_max: int
    haircut_min: int
    haircut_max: int
    shock_down_max: int
    shock_up_max: int
    shock_down_min: int
    shock_up_min: int

    def lower(self) -> np.ndarray:
        """(SLOTS,) smallest value allowed per slot."""
        return np.array([-self.shock_down_max] * MAX_SCENARIOS + [self.floor_min, self.haircut_min])

    def upper(self) -> np.ndarray:
        return np.array([self.shock_up_max] * MAX_SCENARIOS + [self.floor_max, self.haircut_max])


@dataclass(frozen=True)
class GlobalBounds:
    im_min: int
    im_max: int
    min_discount_min: int
    min_discount_max: int
    max_discount_min: int
    max_discount_max: int


@dataclass
class ChainView:
    """What the governor checks an update against, read in one go.

    current, low, high: (n, SLOTS) per asset of the update (what the engine holds; the lowest
    and highest values held in the current bucket, current included).
    update_allowance, window_allowance: (n,) bps a shock may move per update / per bucket.
    global_current, global_reference, global_recorded: (3,) object ints (the engines' values,
    the bucket's highest, the governor's record of the last signed ones).
    """

    nonce: int
    timestamp: int
    limits: Limits
    bounds: list[AssetBounds]
    global_bounds: GlobalBounds
    current: np.ndarray
    low: np.ndarray
    high: np.ndarray
    update_allowance: np.ndarray
    window_allowance: np.ndarray
    global_current: np.ndarray
    global_reference: np.ndarray
    global_recorded: np.ndarray

    @classmethod
    def from_views(
        cls,
        nonce: int,
        timestamp: int,
        limits: Limits,
        bounds: list[AssetBounds],
        global_bounds: GlobalBounds,
        asset_views: Sequence[Sequence[Any]],
        global_view: Sequence[Any],
    ) -> ChainView:
        """From the governor's ``asset_view`` results (in ABI order) and ``global_view``."""

        def rows(i: int) -> np.ndarray:
            return np.array([list(v[i]) for v in asset_views], dtype=np.int64).reshape(-1, SLOTS)

        return cls(
            nonce=nonce,
            timestamp=timestamp,
            limits=limits,
            bounds=bounds,
            global_bounds=global_bounds,
            current=rows(0),
            low=rows(1),
            high=rows(2),
            update_allowance=np.array([int(v[3]) for v in asset_views], dtype=np.int64),
            window_allowance=np.array([int(v[4]) for v in asset_views], dtype=np.int64),
            global_current=np.array([int(x) for x in global_view[0]], dtype=object),
            global_reference=np.array([int(x) for x in global_view[1]], dtype=object),
            global_recorded=np.array([int(x) for x in global_view[2]], dtype=object),
        )


@dataclass
class StepPlan:
    """The next update the chain accepts on the way to a target."""

    signed: ParamSet  # what is signed (and, after ramps, what the chain ends at)
    applied: np.ndarray  # (n, SLOTS) what the engine holds right after the update
    final: bool  # signed == target
    clipped: list[str] = field(default_factory=list)  # target values moved into bounds
    # IM multiplier, min and max discount the engines hold right after the update
    applied_globals: tuple[int, int, int] | None = None

    def summary(self) -> str:
        ramps = int(np.sum(np.any(self.applied != self.signed.values, axis=1)))
        return (
            f"{len(self.signed.assets)} assets, {'final' if self.final else 'partial'} step, "
            f"{ramps} ramping, {len(self.clipped)} clipped to bounds"
        )


def allowance(ref: np.ndarray, rate: int) -> np.ndarray:
    """max(floor(|ref| * rate / WAD), 1): how far a value may loosen from ``ref``."""
    mags = np.abs(np.asarray(ref, dtype=object))
    return np.array([max(int(m) * rate // WAD, 1) for m in mags.flat], dtype=object).reshape(
        mags.shape
    )


def row_allowance(row_max: int, rate: int) -> int:
    """max(floor(row_max * rate / WAD), 1): the uniform shock allowance of an asset."""
    return max(int(row_max) * rate // WAD, 1)


def shock_range(
    current: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    update_allowance: np.ndarray,
    window_allowance: np.ndarray,
    mm_step_bps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): (n, 32) the shock values the governor accepts now, slot by slot.

    ``lo > hi`` where no move is possible: the slot must keep its current value.
    """
    current, low, high = (np.asarray(x, dtype=np.int64) for x in (current, low, high))
    au = np.asarray(update_allowance, dtype=np.int64)[:, None]
    aw = np.asarray(window_allowance, dtype=np.int64)[:, None]
    lo = np.maximum.reduce([current - au, high - aw, np.minimum(high, 0) - mm_step_bps])
    hi = np.minimum.reduce([current + au, low + aw, np.maximum(low, 0) + mm_step_bps])
    return lo, hi


def loosening_floor(current: np.ndarray, high: np.ndarray, limits: Limits) -> np.ndarray:
    """The lowest value a larger-is-tighter value (floor, haircut, IM, discount) may be
    lowered to now: within ``update_rate`` of the current and ``window_rate`` of the bucket's
    highest value."""
    current = np.asarray(current, dtype=object)
    high = np.asarray(high, dtype=object)
    return np.maximum(
        current - allowance(current, limits.update_rate),
        high - allowance(high, limits.window_rate),
    )


def mm_applied(
    current: np.ndarray, low: np.ndarray, signed: np.ndarray, mm_step_bps: int
) -> np.ndarray:
    """What the engine holds right after an update: a floor or haircut raised beyond the
    bucket's budget (``mm_step_bps`` above the lowest value held) stops there and ramps."""
    current = np.asarray(current, dtype=np.int64)
    low = np.asarray(low, dtype=np.int64)
    out = np.asarray(signed, dtype=np.int64).copy()
    cap = np.maximum(low + mm_step_bps, current)
    ramped = (out > current) & (out > cap)
    ramped[:, :MAX_SCENARIOS] = False
    out[ramped] = cap[ramped]
    return out


def unpack_shocks(words: Sequence[int]) -> np.ndarray:
    """(32,) int64 shocks of an asset's two packed int16 words."""
    return np.array(unpack_shock_words(words), dtype=np.int64)


def engine_shocks(engine: Any, asset: int) -> np.ndarray:
    """(32,) int64: the asset's shocks as the engine holds them (both words)."""
    return np.array(read_shocks(engine, asset), dtype=np.int64)


def load_signer(alias: str, passphrase_env: str = PASSPHRASE_ENV) -> Any:
    """An Ape keyfile account unlocked to sign without prompting.

    The passphrase comes from the environment variable ``passphrase_env``
    (``BALLAST_SIGNER_PASSPHRASE`` by default); a missing variable is an error, never a prompt.
    """
    from ape import accounts

    passphrase = os.environ.get(passphrase_env)
    if not passphrase:
        raise RuntimeError(f"set {passphrase_env} to unlock the risk signer '{alias}'")
    account = accounts.load(alias)
    account.set_autosign(True, passphrase=passphrase)
    return account


def sign_all(signers: Sequence[Any], message: EIP712Message, what: str) -> list[bytes]:
    """Every signer's 65-byte signature of ``message`` (Ape accounts), each recovered locally
    and low-s (the contracts refuse a high s), sorted by signer address as the contracts
    check them. ``what`` names the message in errors."""
    sigs = []
    for signer in signers:
        sig = signer.sign_message(message)
        if sig is None:
            raise RuntimeError(f"{signer} declined to sign the {what}")
        raw = signature_bytes(sig)
        recovered = Account.recover_message(message.signable_message, signature=raw)
        if recovered.lower() != str(signer).lower():
            raise RuntimeError(f"signature of {signer} recovers to {recovered}")
        if int.from_bytes(raw[32:64], "big") > SECP256K1_N // 2:
            raise RuntimeError(f"signature of {signer} has a high s: the chain refuses it")
        sigs.append((int(str(signer), 16), raw))
    return [raw for _, raw in sorted(sigs)]


class RiskSigner:
    """Plans, signs, submits and confirms risk updates on one ``RiskGovernor``.

    ``signers``: Ape accounts registered on the governor (at least its threshold);
    ``relayer``: the account that pays for the submission (not a signer).
    """

    def __init__(
        self,
        governor: Any,
        engine: Any,
        liquidations: Any,
        signers: Sequence[Any],
        relayer: Any,
        ttl: int = 600,
    ):
        self.governor = governor
        self.engine = engine
        self.liquidations = liquidations
        self.signers = list(signers)
        self.relayer = relayer
        self.ttl = ttl
        if any(str(s) == str(relayer) for s in self.signers):
            raise ValueError("the relayer must not be a risk signer")

    # ------------------------------------------------------------- reading

    def domain(self) -> EIP712Domain:
        _, name, version, chain_id, verifying, _, _ = self.governor.eip712Domain()
        return EIP712Domain(
            name=name, version=version, chainId=chain_id, verifyingContract=verifying
        )

    def view(self, assets: Sequence[int]) -> ChainView:
        g = self.governor
        from ape import chain

        return ChainView.from_views(
            nonce=g.next_nonce(),
            timestamp=chain.blocks.head.timestamp,
            limits=Limits(*g.limits()),
            bounds=[AssetBounds(*g.asset_bounds(int(a))) for a in assets],
            global_bounds=GlobalBounds(*g.global_bounds()),
            asset_views=[g.asset_view(int(a)) for a in assets],
            global_view=g.global_view(),
        )

    # ------------------------------------------------------------ planning

    def plan(self, target: ParamSet, view: ChainView | None = None) -> StepPlan:
        """The furthest step toward ``target`` the governor accepts now.

        Target values outside the owner's bounds are moved inside them (and listed in
        ``clipped``); loosening beyond the rate limits is cut at the limit. Raises when no
        acceptable update exists (bounds and rate limits in conflict).
        """
        view = view or self.view(target.assets)
        want = target.values.copy()
        clipped: list[str] = []
        for i, (asset, b) in enumerate(zip(target.assets, view.bounds, strict=True)):
            if b.floor_max == 0 and b.haircut_max == 0 and b.shock_down_max == 0:
                raise ValueError(f"asset {asset} is not governed (no bounds set)")
            row = np.clip(want[i], b.lower(), b.upper())
            # the worst down / up shock must reach the floors of the scenario set
            if -row[:MAX_SCENARIOS].min() < b.shock_down_min:
                row[int(np.argmin(row[:MAX_SCENARIOS]))] = -b.shock_down_min
            if row[:MAX_SCENARIOS].max() < b.shock_up_min:
                row[int(np.argmax(row[:MAX_SCENARIOS]))] = b.shock_up_min
            if np.any(row != want[i]):
                clipped.append(f"asset {asset}: {int(np.sum(row != want[i]))} values")
            want[i] = row
        gb = view.global_bounds
        gwant = np.array(
            [
                min(max(target.im_multiplier_wad, gb.im_min), gb.im_max),
                min(max(target.min_discount_wad, gb.min_discount_min), gb.min_discount_max),
                min(max(target.max_discount_wad, gb.max_discount_min), gb.max_discount_max),
            ],
            dtype=object,
        )
        if tuple(gwant) != target.globals:
            clipped.append("global values")

        step = self._step_values(want, view)
        gstep = np.array(gwant, dtype=object)
        gfloor = loosening_floor(view.global_current, view.global_reference, view.limits)
        for i in range(3):
            cur = view.global_current[i]
            if gstep[i] < cur:
                gstep[i] = min(max(gstep[i], gfloor[i]), cur)
        if gstep[1] > gstep[2]:
            raise ValueError("rate limits keep min_discount above max_discount: step by hand")
        if tuple(gstep) == tuple(view.global_recorded):
            applied_globals = tuple(int(x) for x in view.global_current)
        else:
            applied_globals = tuple(int(x) for x in gstep)
        signed = ParamSet.from_values(target.assets, step, [int(x) for x in gstep])
        self._check_bounds(signed, view)
        return StepPlan(
            signed=signed,
            applied=mm_applied(view.current, view.low, step, view.limits.mm_step_bps),
            final=bool(np.array_equal(step, want) and tuple(gstep) == tuple(gwant)),
            clipped=clipped,
            applied_globals=applied_globals,
        )

    @staticmethod
    def _step_values(want: np.ndarray, view: ChainView) -> np.ndarray:
        """(n, SLOTS): the furthest values toward ``want`` the governor accepts now."""
        cur = view.current
        lim = view.limits
        out = cur.copy()
        # shocks: clipped into the accepted range; a slot with no range keeps its value
        lo, hi = shock_range(
            cur[:, :MAX_SCENARIOS],
            view.low[:, :MAX_SCENARIOS],
            view.high[:, :MAX_SCENARIOS],
            view.update_allowance,
            view.window_allowance,
            lim.mm_step_bps,
        )
        w = want[:, :MAX_SCENARIOS]
        moved = np.clip(w, lo, hi)
        c = cur[:, :MAX_SCENARIOS]
        # a move only toward the target (the range may lie on the other side of the current
        # value when the bucket's allowance shrank)
        ok = (lo <= hi) & (w != c) & ((moved - c) * (w - c) > 0)
        out[:, :MAX_SCENARIOS] = np.where(ok, moved, cur[:, :MAX_SCENARIOS])
        for i, b in enumerate(view.bounds):
            shocks = out[i, :MAX_SCENARIOS]
            if -shocks.min() < b.shock_down_min or shocks.max() < b.shock_up_min:
                # the limits keep the scenario set from reaching its floors this step:
                # the slots that would shrink wait, those that grow go ahead
                shrink = np.abs(shocks) < np.abs(cur[i, :MAX_SCENARIOS])
                out[i, :MAX_SCENARIOS] = np.where(shrink, cur[i, :MAX_SCENARIOS], shocks)
        # floor and haircut: raised at once (the chain ramps beyond the budget), lowered
        # within the loosening limits
        fh = slice(MAX_SCENARIOS, SLOTS)
        floor_ = loosening_floor(cur[:, fh], view.high[:, fh], lim).astype(np.int64)
        w = want[:, fh]
        lowered = np.minimum(np.maximum(w, floor_), cur[:, fh])
        out[:, fh] = np.where(w < cur[:, fh], lowered, w)
        return out

    @staticmethod
    def _check_bounds(signed: ParamSet, view: ChainView) -> None:
        values = signed.values
        for i, b in enumerate(view.bounds):
            if np.any(values[i] < b.lower()) or np.any(values[i] > b.upper()):
                raise ValueError(
                    f"asset {int(signed.assets[i])}: the rate limits keep it outside the "
                    "owner's bounds; the owner must resync or widen them"
                )

    # ------------------------------------------------------------- signing

    def message(self, signed: ParamSet, nonce: int, deadline: int) -> RiskUpdate:
        return RiskUpdate(
            assets=[int(a) for a in signed.assets],
            shocks=flat_words(pack_shocks(pad_scenarios(signed.shocks_bps))),
            floors=[int(x) for x in signed.floor_bps],
            haircuts=[int(x) for x in signed.haircut_bps],
            im_multiplier=signed.im_multiplier_wad,
            min_discount=signed.min_discount_wad,
            max_discount=signed.max_discount_wad,
            nonce=nonce,
            deadline=deadline,
            eip712_domain=self.domain(),
        )

    def sign(self, message: RiskUpdate) -> list[bytes]:
        """Every signer's 65-byte signature (see :func:`sign_all`)."""
        return sign_all(self.signers, message, "risk update")

    # ---------------------------------------------------------- submitting

    def submit(self, message: RiskUpdate, signatures: list[bytes]) -> Any:
        return self.governor.submit(update_tuple(message), signatures, sender=self.relayer)

    def confirm(self, plan: StepPlan) -> None:
        """Read the engine and the liquidation engine back: they must hold what was planned."""
        signed = plan.signed
        for i, asset in enumerate(int(a) for a in signed.assets):
            shocks = engine_shocks(self.engine, asset)
            word = self.engine.asset_word(asset)
            floor_bps, haircut_bps = (
                (word >> FLOOR_SHIFT) & 0xFFFF,
                (word >> HAIRCUT_SHIFT) & 0xFFFF,
            )
            got = np.concatenate([shocks, [floor_bps, haircut_bps]])
            if not np.array_equal(got, plan.applied[i]):
                raise RuntimeError(f"asset {asset}: engine holds {got}, planned {plan.applied[i]}")
            if not np.array_equal(plan.applied[i], signed.values[i]):
                target = np.array(list(self.governor.asset_view(asset).ramp_target))
                if not np.array_equal(target, signed.values[i]):
                    raise RuntimeError(f"asset {asset}: ramp target differs from the update")
        got_globals = (
            self.engine.im_multiplier(),
            self.liquidations.min_discount(),
            self.liquidations.max_discount(),
        )
        want_globals = plan.applied_globals or signed.globals
        if got_globals != tuple(want_globals):
            raise RuntimeError(f"global values {got_globals}, planned {want_globals}")

    def step(self, target: ParamSet) -> StepPlan:
        """Plan, sign, recover, submit and confirm one update toward ``target``."""
        view = self.view(target.assets)
        plan = self.plan(target, view)
        message = self.message(plan.signed, view.nonce, view.timestamp + self.ttl)
        self.submit(message, self.sign(message))
        self.confirm(plan)
        return plan
