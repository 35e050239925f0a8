"""The keeper's vol updater: fit a surface from the data the chain's clock has reached, check
it, and publish its curves through the ``VolFeed`` signed M of N.

Per underlying and run: the history time is ``history_time(chain time)`` (identity on a live
chain; the replay maps its chain clock onto the historical window); the surface is fitted by
:class:`~offchain_risk.models.vol_surface.SurfaceFitter` from the data closed by then, for
expiries on the feed's 08:00 UTC grid at the first grid time at least ``tenors_days`` ahead;
:func:`~offchain_risk.models.vol_surface.check_surface` must pass and every curve must meet
the feed's own rules (:meth:`VolCurve.check`) before the first one is signed. A refused
surface is logged with its reason and counted in ``keeper_vol_refused{check=...}``; nothing
of it is submitted. Each landed curve counts in ``keeper_vol_updates``.

Cadence: the keeper asks :meth:`VolUpdater.due` on every tick; a run is due once ``interval``
seconds of chain time have passed since the last one (published or refused: a refused
surface is tried again at the next interval, not on every block). The last runs are kept in
:attr:`VolUpdater.runs` (chain time, result) for reports.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.vol_signer import EXPIRY_TIME, VolCurve, VolSigner, VolUpdate
from offchain_risk.models.vol_surface import (
    BUTTERFLY_TOL,
    SurfaceFitter,
    VolSurface,
    check_surface,
)
from offchain_risk.units import DAY, MAX_OPTION_TIME

log = logging.getLogger("ballast.keeper.vol")

#: Expiries published per underlying: the first grid time at least this many days ahead.
TENORS_DAYS = (1, 7, 30, 90)
#: Chain seconds between two runs of the keeper's vol updater.
VOL_INTERVAL = 3_600
#: Runs kept in :attr:`VolUpdater.runs`.
KEPT_RUNS = 1_000


def grid_expiries(now: int, tenors_days: Sequence[float] = TENORS_DAYS) -> list[int]:
    """The 08:00 UTC expiries at or after ``now + tenor`` for each tenor, ascending, each
    once, within the feed's ``MAX_OPTION_TIME``."""
    out = set()
    for days in tenors_days:
        t = int(now + days * DAY)
        e = (t - EXPIRY_TIME + DAY - 1) // DAY * DAY + EXPIRY_TIME  # first grid time >= t
        if now < e <= now + MAX_OPTION_TIME:
            out.add(e)
    return sorted(out)


@dataclass(frozen=True)
class VolPublishResult:
    """One underlying's run: the updates landed, or why none was submitted."""

    underlying: int
    surface: VolSurface | None
    published: tuple[VolUpdate, ...] = ()
    refused: str | None = None  # the reason nothing (more) was submitted
    check: str | None = None  # the failed check: fit, input, variance, calendar, butterfly, feed

    @property
    def ok(self) -> bool:
        return self.refused is None

    def summary(self) -> str:
        if self.ok:
            return f"underlying {self.underlying}: {len(self.published)} curves published"
        return f"underlying {self.underlying}: refused ({self.check}): {self.refused}"


class VolUpdater:
    """Fits, checks and publishes surfaces for the underlyings in ``fitters`` (the feed's
    underlying id -> a fitter on that asset's data)."""

    def __init__(
        self,
        signer: VolSigner,
        fitters: dict[int, SurfaceFitter],
        *,
        history_time: Callable[[int], np.datetime64] | None = None,
        tenors_days: Sequence[float] = TENORS_DAYS,
        butterfly_tol: float = BUTTERFLY_TOL,
        metrics: Metrics | None = None,
        interval: int = VOL_INTERVAL,
    ):
        if not fitters:
            raise ValueError("vol updater: no underlyings")
        if interval <= 0:
            raise ValueError("vol updater: the interval must be positive")
        self.signer = signer
        self.fitters = dict(fitters)
        self.history_time = history_time or (lambda now: np.datetime64(int(now), "s"))
        self.tenors_days = tuple(tenors_days)
        self.butterfly_tol = butterfly_tol
        self.metrics = metrics or Metrics()
        self.interval = int(interval)
        self.last_run: int | None = None  # chain time of the last run
        self.runs: deque[tuple[int, VolPublishResult]] = deque(maxlen=KEPT_RUNS)

    def due(self, now: int) -> bool:
        """Whether a run is due at chain time ``now``."""
        return self.last_run is None or int(now) - self.last_run >= self.interval

    def fit(self, underlying: int, forward: float, now: int) -> tuple[VolSurface, list[int]]:
        """The surface for ``underlying`` at chain time ``now``, and its expiries."""
        if underlying not in self.fitters:
            raise ValueError(f"vol updater: no data for underlying {underlying}")
        expiries = grid_expiries(now, self.tenors_days)
        taus = [e - now for e in expiries]
        return self.fitters[underlying].fit(self.history_time(now), forward, taus), expiries

    def _refuse(self, underlying, surface, check: str, reason: str, published=()):
        self.metrics.vol_refused.labels(check=check).inc()
        log.warning("vol surface for underlying %s refused (%s): %s", underlying, check, reason)
        return VolPublishResult(underlying, surface, tuple(published), reason, check)

    def update(self, underlying: int, forward: float, now: int | None = None) -> VolPublishResult:
        """Fit, check and publish one underlying's curves (``forward`` USD per unit)."""
        now = int(self.signer.now() if now is None else now)
        try:
            surface, expiries = self.fit(underlying, float(forward), now)
        except ValueError as exc:
            return self._refuse(underlying, None, "fit", str(exc))
        result = check_surface(surface, butterfly_tol=self.butterfly_tol)
        if not result.ok:
            return self._refuse(underlying, surface, result.failed[0], "; ".join(result.reasons))
        curves = [
            VolCurve.from_floats(underlying, e, c.atm_vol, c.skew, c.curvature, surface.forward)
            for e, c in zip(expiries, surface.curves, strict=True)
        ]
        feed = self.signer.feed
        heartbeat = feed.heartbeat(underlying)
        try:
            for c in curves:  # every curve meets the feed's rules before any is signed
                c.check(now, heartbeat, now, feed.curve(underlying, c.expiry).observed_at)
        except ValueError as exc:
            return self._refuse(underlying, surface, "feed", str(exc))
        published = []
        for c in curves:
            try:
                published.append(self.signer.publish(c, observed_at=now))
            except Exception as exc:  # refused by a signer or the chain: logged, retried
                return self._refuse(underlying, surface, "feed", str(exc), published)
            self.metrics.vol_updates.inc()
        log.info("vol surface published: %s", surface.summary())
        return VolPublishResult(underlying, surface, tuple(published))

    def run(self, forwards: dict[int, float], now: int | None = None) -> list[VolPublishResult]:
        """One update per underlying with a forward (the keeper's oracle prices); an
        underlying without one is refused (``input``). Recorded in :attr:`runs`."""
        now = int(self.signer.now() if now is None else now)
        self.last_run = now
        out = []
        for u in self.fitters:
            if u in forwards:
                res = self.update(u, forwards[u], now)
            else:
                res = self._refuse(u, None, "input", "no oracle price for the forward")
            self.runs.append((now, res))
            out.append(res)
        return out


#: The underlying whose implied-vol index is the DVOL file (``iv/BTC_DVOL_1d.csv``).
DVOL_SYMBOL = "BTC"


def build_vol_updater(
    project: Any,
    w3: Any,
    manifest: dict,
    tx: Any,
    signers: Sequence[Any],
    *,
    data_dir: Any = None,
    history_time: Callable[[int], np.datetime64] | None = None,
    metrics: Metrics | None = None,
    interval: int = VOL_INTERVAL,
) -> VolUpdater:
    """The keeper's vol updater on the manifest's ``vol_feed``: one fitter per listed
    underlying on its hourly bars (and DVOL for BTC), signed by ``signers`` (Ape accounts
    registered on the feed) and sent through the keeper's transaction manager ``tx``."""
    from offchain_risk.data import load_bars, load_dvol_if_present
    from offchain_risk.keeper.vol_signer import VolSigner, Web3Feed

    if "vol_feed" not in manifest["contracts"]:
        raise ValueError("the manifest names no vol_feed: publishing surfaces needs one")
    underlyings = manifest["parameters"]["vol_feed"]["underlyings"]
    # without an implied-vol file the level is realised vol's (the surface's stated rule)
    dvol = load_dvol_if_present(data_dir) if DVOL_SYMBOL in underlyings else None
    fitters = {
        int(u): SurfaceFitter(
            load_bars(symbol, "1h", data_dir), dvol if symbol == DVOL_SYMBOL else None
        )
        for symbol, u in underlyings.items()
    }
    feed = Web3Feed.from_project(project, w3, manifest["contracts"]["vol_feed"])
    return VolUpdater(
        VolSigner(feed, signers, tx=tx),
        fitters,
        history_time=history_time,
        metrics=metrics,
        interval=interval,
    )
