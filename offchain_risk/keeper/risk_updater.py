"""Signed risk updates from the keeper: on a schedule and when realised volatility jumps.

The :class:`RiskUpdater` records the oracle prices the keeper reads each block. It is due
when ``interval`` seconds passed since its last update, or when the realised volatility of
the last ``short`` observations exceeds ``vol_jump`` times the volatility it last
calibrated for (at least ``floor_vol`` per observation). Then it asks its ``target``
function for a parameter set, and
:meth:`RiskSigner.step <offchain_risk.keeper.signer.RiskSigner.step>` clips it into the
owner's bounds, cuts loosening at the rate limits (a step toward the target), signs with the
risk-signer keys, submits through the relayer key and reads the engine back.

:func:`vol_scaled_target` is the default target: a base parameter set (the risk engine's
calibration on the shared history, ``python -m offchain_risk calibrate``, read by
:func:`base_from_params`; or the chain's current values) whose shocks are scaled by the
on-chain realised volatility over the calibration's forecast volatility, never below 1 (a
regime change tightens; loosening waits for the next calibration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from offchain_risk.keeper.scanner import Market
from offchain_risk.keeper.signer import ParamSet, RiskSigner, StepPlan
from offchain_risk.models.margin import pad_scenarios
from offchain_risk.units import WAD

log = logging.getLogger("ballast.keeper.risk")


@dataclass
class PriceHistory:
    """Oracle prices seen by the keeper: times (n,) seconds, prices (n, n_assets) USD."""

    times: list[float]
    prices: list[np.ndarray]

    def returns(self, last: int | None = None) -> np.ndarray:
        """(m, n_assets) log returns of the last ``last`` observations."""
        p = np.array(self.prices[-(last + 1) :] if last else self.prices, dtype=np.float64)
        if len(p) < 2 or np.any(p <= 0):
            return np.zeros((0, p.shape[1] if p.ndim == 2 else 0))
        return np.diff(np.log(p), axis=0)

    def realised_vol(self, last: int) -> np.ndarray:
        """(n_assets,) RMS log return per observation over the last ``last`` returns."""
        r = self.returns(last)
        if len(r) == 0:
            return np.zeros(len(self.prices[-1]) if self.prices else 0)
        return np.sqrt(np.mean(r**2, axis=0))


@dataclass(frozen=True)
class RiskUpdateResult:
    landed: bool
    reason: str  # schedule | vol_jump
    plan: StepPlan | None = None
    error: str | None = None


def vol_scaled_target(
    base: ParamSet,
    base_vol: np.ndarray,
    max_scale: float = 2.0,
    horizon_s: float | None = None,
) -> Callable[[PriceHistory, np.ndarray], ParamSet]:
    """A target function: ``base`` with each asset's shocks times
    ``clip(realised / base_vol, 1, max_scale)``.

    ``base_vol`` (n,) is per asset of ``base``: per observation of the keeper's price history
    when ``horizon_s`` is None, else the volatility of the log move over ``horizon_s``
    seconds (the calibration's ``metadata.horizon_vol``), which the realised volatility is
    scaled to by the mean time between observations.
    """
    base_vol = np.asarray(base_vol, dtype=np.float64)
    if base_vol.shape != (len(base.assets),):
        raise ValueError("base_vol needs one entry per asset of the base set")

    def target(history: PriceHistory, vol: np.ndarray) -> ParamSet:
        idx = np.asarray(base.assets, dtype=np.int64)
        realised = np.asarray(vol, dtype=np.float64)[idx]
        if horizon_s is not None:
            times = history.times
            dt = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
            realised = realised * np.sqrt(horizon_s / dt) if dt > 0 else np.zeros_like(realised)
        ratio = np.divide(realised, base_vol, out=np.ones(len(idx)), where=base_vol > 0)
        scale = np.clip(ratio, 1.0, max_scale)  # (n,)
        shocks = np.round(np.asarray(base.shocks_bps) * scale[:, None]).astype(np.int64)
        return ParamSet(
            assets=base.assets,
            shocks_bps=np.clip(shocks, -10_000, 32_767),
            floor_bps=base.floor_bps,
            haircut_bps=base.haircut_bps,
            im_multiplier_wad=base.im_multiplier_wad,
            min_discount_wad=base.min_discount_wad,
            max_discount_wad=base.max_discount_wad,
        )

    return target


def base_from_params(
    params: dict, symbols: dict[str, int], discounts: tuple[int, int]
) -> tuple[ParamSet, np.ndarray, float]:
    """The risk engine's calibration (``python -m offchain_risk calibrate`` JSON, fitted on
    the shared history) as a base set for the listed assets: (base, horizon vols (n,),
    horizon in seconds). ``symbols``: listed symbol -> asset id; ``discounts``: the
    liquidation curve (min, max) to restate, which the calibration does not set."""
    listed = sorted((symbols[s], s) for s in params["shocks_bps"] if s in symbols)
    if not listed:
        raise ValueError(f"no asset of the parameter set is listed: {list(params['shocks_bps'])}")
    meta = params.get("metadata", {})
    vols = meta.get("horizon_vol", {})
    missing = [s for _, s in listed if s not in vols]
    if missing:
        raise ValueError(f"metadata.horizon_vol lacks {missing}")
    shocks = pad_scenarios(np.array([params["shocks_bps"][s] for _, s in listed], dtype=np.int64))
    base = ParamSet(
        assets=np.array([a for a, _ in listed], dtype=np.int64),
        shocks_bps=shocks,
        floor_bps=np.array([int(params["floor_bps"][s]) for _, s in listed], dtype=np.int64),
        haircut_bps=np.array([int(params["haircut_bps"][s]) for _, s in listed], dtype=np.int64),
        im_multiplier_wad=int(params["im_multiplier_wad"]),
        min_discount_wad=int(discounts[0]),
        max_discount_wad=int(discounts[1]),
    )
    horizon_s = float(meta.get("horizon_hours", 24)) * 3_600
    return base, np.array([float(vols[s]) for _, s in listed]), horizon_s


class RecalibratingTarget:
    """A target function that recalibrates the risk engine as the chain's clock moves, then
    scales by realised volatility (:func:`vol_scaled_target`).

    ``calibrate(asof)`` returns a parameter set (``calibrate``'s JSON dict, or None) fitted on
    the data closed by ``asof`` only. The chain's clock maps to that time once :meth:`anchor`
    is told the chain time at which ``start`` (historical) stood: ``asof = start + (chain -
    anchor)``, rounded down to the hour (hourly bars close on the hour); before the anchor,
    ``start``. A new calibration runs once that time is ``every_s`` past the last one.
    Assets of ``base`` that the calibration does not hold keep their shocks, scaled by
    realised volatility over ``fallback_vol`` (n_assets of ``base``,) stated over
    ``horizon_s``.
    """

    def __init__(
        self,
        base: ParamSet,
        symbols: dict[str, int],
        fallback_vol: np.ndarray,
        horizon_s: float,
        params: dict | None,
        start: np.datetime64,
        calibrate: Callable[[np.datetime64], dict | None],
        clock: Callable[[], float],
        max_scale: float = 2.0,
        every_s: float = 3_600.0,
    ):
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self.every = np.timedelta64(int(every_s), "s")
        self.base = base
        self.symbols = symbols
        self.fallback_vol = np.asarray(fallback_vol, dtype=np.float64)
        if self.fallback_vol.shape != (len(base.assets),):
            raise ValueError("fallback_vol needs one entry per asset of the base set")
        self.horizon_s = float(horizon_s)
        self.start = np.datetime64(start, "s")
        self.calibrate = calibrate
        self.clock = clock
        self.max_scale = max_scale
        self.chain_anchor: float | None = None
        self.calibrations = 0
        self.asof = self.start
        self._set(params)

    def anchor(self, chain_time: float) -> None:
        """The chain's time at which history stood at ``start``."""
        self.chain_anchor = float(chain_time)

    def history_time(self) -> np.datetime64:
        """The historical time the chain's clock stands at, down to the hour."""
        if self.chain_anchor is None:
            return self.start
        elapsed = max(0, int(self.clock() - self.chain_anchor))
        t = self.start + np.timedelta64(elapsed, "s")
        return t.astype("datetime64[h]").astype("datetime64[s]")

    def _set(self, params: dict | None) -> None:
        rows = {int(a): i for i, a in enumerate(self.base.assets)}
        shocks = pad_scenarios(np.asarray(self.base.shocks_bps, dtype=np.int64))
        floor = np.array(self.base.floor_bps, dtype=np.int64)
        haircut = np.array(self.base.haircut_bps, dtype=np.int64)
        vol = self.fallback_vol.copy()
        im = int(self.base.im_multiplier_wad)
        if params is not None:
            horizon_vol = params["metadata"]["horizon_vol"]
            for symbol, row_shocks in params["shocks_bps"].items():
                if symbol not in self.symbols or self.symbols[symbol] not in rows:
                    continue
                r = rows[self.symbols[symbol]]
                shocks[r] = pad_scenarios(np.array([row_shocks], dtype=np.int64))[0]
                floor[r] = int(params["floor_bps"][symbol])
                haircut[r] = int(params["haircut_bps"][symbol])
                vol[r] = float(horizon_vol[symbol])
            im = int(params["im_multiplier_wad"])
        self.current = ParamSet(
            assets=self.base.assets,
            shocks_bps=shocks,
            floor_bps=floor,
            haircut_bps=haircut,
            im_multiplier_wad=im,
            min_discount_wad=self.base.min_discount_wad,
            max_discount_wad=self.base.max_discount_wad,
        )
        self.vol = vol  # (n,) forecast volatility over the horizon

    def __call__(self, history: PriceHistory, vol: np.ndarray) -> ParamSet:
        asof = self.history_time()
        if asof >= self.asof + self.every:
            self._set(self.calibrate(asof))
            self.asof = asof
            self.calibrations += 1
        scaled = vol_scaled_target(self.current, self.vol, self.max_scale, self.horizon_s)
        return scaled(history, vol)


class RiskUpdater:
    def __init__(
        self,
        signer: RiskSigner,
        target: Callable[[PriceHistory, np.ndarray], ParamSet],
        *,
        interval: float = 3_600.0,
        vol_jump: float = 2.0,
        short: int = 8,
        floor_vol: float = 0.0,
        clock: Callable[[], float] = time.time,
    ):
        if interval <= 0 or vol_jump <= 1 or short < 2:
            raise ValueError("need interval > 0, vol_jump > 1 and short >= 2")
        self.signer = signer
        self.target = target
        self.interval = interval
        self.vol_jump = vol_jump
        self.short = short
        self.floor_vol = floor_vol
        self.clock = clock
        self.history = PriceHistory([], [])
        self.last_update: float | None = None
        self.reference_vol: np.ndarray | None = None
        self._reason = ""

    def observe(self, market: Market) -> None:
        p = np.array([int(x) for x in market.prices_wad], dtype=np.float64) / WAD
        dead = ~np.asarray(market.price_ok, dtype=bool)
        if dead.any():
            # A feed without a price holds its last observation; before the first
            # one there is nothing to hold, so the observation waits.
            if not self.history.prices or len(self.history.prices[-1]) != len(p):
                return
            p[dead] = self.history.prices[-1][dead]
        if self.history.prices and np.array_equal(self.history.prices[-1], p):
            return  # one observation per oracle move
        self.history.times.append(self.clock())
        self.history.prices.append(p)

    def due(self, market: Market) -> bool:
        self.observe(market)
        now = self.clock()
        if self.last_update is None or now - self.last_update >= self.interval:
            self._reason = "schedule"
            return True
        vol = self.history.realised_vol(self.short)
        ref = self.reference_vol
        if ref is not None and len(vol) == len(ref):
            jump = vol > self.vol_jump * np.maximum(ref, 1e-12)
            if np.any(jump):
                self._reason = "vol_jump"
                return True
        return False

    def run(self, market: Market) -> RiskUpdateResult:
        vol = self.history.realised_vol(self.short)
        reason = self._reason or "manual"
        try:
            plan = self.signer.step(self.target(self.history, vol))
        except Exception as exc:  # refused by bounds, a signer or the chain: logged, retried
            log.warning("risk update (%s) not landed: %s", reason, exc)
            self.last_update = self.clock()  # retry on the next schedule, not every block
            return RiskUpdateResult(False, reason, error=str(exc))
        self.last_update = self.clock()
        self.reference_vol = np.maximum(vol, self.floor_vol)
        log.info("risk update (%s) landed; final=%s", reason, plan.final)
        return RiskUpdateResult(True, reason, plan)
