"""Liquidity haircuts and the IM multiplier.

Liquidity haircut (square-root market-impact law, Almgren et al. 2005, Toth et al. 2011): selling
``Q`` USD of an asset with daily volatility ``sigma_d`` into a market trading ``V`` USD a day
moves the price by about ``Y * sigma_d * sqrt(Q / V)``. We take ``Y = 1`` (the upper end of the
0.5-1 range reported for crypto and equities) and let the liquidator reach only
``venue_share = 10%`` of the reference venue's volume (Binance perpetual volume overstates what an
on-chain liquidator can sell into). ``V`` is the median daily USD volume of the last 30 days. The
haircut is the impact of liquidating a reference position size (the collateral cap) at once.

IM multiplier: ``IM = MM * m`` with

    m = clip(base * max(1, vol_ref / vol_now) ** calm_exponent * max(1, predicted_ratio),
             base, cap)

- anti-procyclical term: when current volatility is below its long-run level the filtered scenarios
  shrink; IM then keeps part of the long-run margin (geometric mean over assets, exponent 0.5);
- predictive term: raises IM ahead of a forecast volatility increase, from the GARCH forecast over
  the horizon against current EWMA volatility (largest over assets), or from BTC implied vol
  (Deribit DVOL) against 30-day realised vol, relative to its usual premium.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.data import ImpliedVol

HOURS_PER_YEAR = 24 * 365  # crypto trades every hour of the year


@dataclass(frozen=True)
class SquareRootImpact:
    y: float = 1.0
    venue_share: float = 0.10
    adv_days: int = 30

    def __post_init__(self) -> None:
        if self.y <= 0 or not 0 < self.venue_share <= 1 or self.adv_days < 1:
            raise ValueError("need y > 0, 0 < venue_share <= 1 and adv_days >= 1")

    def average_daily_volume(self, volume_usd: np.ndarray, bars_per_day: int = 24) -> np.ndarray:
        """Median daily USD volume over the last ``adv_days`` days, (n_assets,).

        ``volume_usd: (n_t, n_assets)`` per bar; needs at least ``adv_days`` whole days.
        """
        v = np.asarray(volume_usd, dtype=np.float64)
        n_days = v.shape[0] // bars_per_day
        if n_days < self.adv_days:
            raise ValueError(f"{n_days} days of volume, need {self.adv_days}")
        tail = v[v.shape[0] - self.adv_days * bars_per_day :]
        daily = tail.reshape(self.adv_days, bars_per_day, -1).sum(axis=1)  # (days, n_assets)
        return np.median(daily, axis=0)

    def haircut_bps(
        self, position_usd: np.ndarray, adv_usd: np.ndarray, daily_vol: np.ndarray
    ) -> np.ndarray:
        """Haircut in bps (rounded up, capped at 100%) for positions ``(..., n_assets)``."""
        q = np.abs(np.asarray(position_usd, dtype=np.float64))
        adv = np.asarray(adv_usd, dtype=np.float64)
        vol = np.asarray(daily_vol, dtype=np.float64)
        if not (np.isfinite(q).all() and (adv > 0).all() and (vol >= 0).all()):
            raise ValueError("need finite positions, positive ADV and non-negative volatility")
        impact = self.y * vol * np.sqrt(q / (self.venue_share * adv))
        return np.minimum(np.ceil(impact * 1e4 - 1e-9), 10_000).astype(np.int64)


def realised_vol_annual(returns: np.ndarray, window: int) -> np.ndarray:
    """Annualised realised vol of hourly log returns over trailing windows.

    ``returns: (n_t,)``; returns (n_t - window + 1,) where entry i covers rows i .. i+window-1.
    """
    r2 = np.asarray(returns, dtype=np.float64) ** 2
    c = np.concatenate([[0.0], np.cumsum(r2)])
    return np.sqrt((c[window:] - c[:-window]) / window * HOURS_PER_YEAR)


def dvol_ratio(
    dvol: ImpliedVol,
    timestamps: np.ndarray,
    btc_returns: np.ndarray,
    asof: np.datetime64,
    rv_hours: int = 30 * 24,
    lookback_days: int = 365,
) -> float:
    """Implied-over-realised BTC vol at ``asof``, divided by its median over the lookback.

    ``timestamps: (n_t + 1,)`` bar times of a price series, ``btc_returns: (n_t,)`` its hourly log
    returns (row i ends at ``timestamps[i + 1]``). A value of 1 means the usual premium;
    1.3 means options price 30% more volatility than usual relative to realised. Returns 1.0 when
    no implied vol is available at ``asof``.
    """
    rv = realised_vol_annual(btc_returns, rv_hours)  # (n_t - rv_hours + 1,)
    rv_days = timestamps[rv_hours:].astype("datetime64[D]")  # day each window ends in
    # one realised value per day: the last window ending that day
    days, last = np.unique(rv_days[::-1], return_index=True)
    rv_daily = rv[::-1][last]
    asof_day = np.datetime64(asof, "D")
    mask = (days <= asof_day) & (days > asof_day - lookback_days)
    iv_idx = np.searchsorted(dvol.dates, days[mask])
    ok = (iv_idx < dvol.dates.size) & (
        dvol.dates[np.minimum(iv_idx, dvol.dates.size - 1)] == days[mask]
    )
    if ok.sum() < 30 or days[mask][ok][-1] < asof_day - 3:
        return 1.0
    ratio = dvol.vol[iv_idx[ok]] / rv_daily[mask][ok]  # (n_days,)
    return float(ratio[-1] / np.median(ratio))


@dataclass(frozen=True)
class IMMultiplier:
    multiplier: float
    calm_term: float
    predictive_term: float
    predictive_source: str

    @property
    def wad(self) -> int:
        """The multiplier as a WAD integer, rounded up to 1e-4 (in favour of the protocol)."""
        return int(np.ceil(self.multiplier * 1e4 - 1e-9)) * 10**14

    def summary(self) -> str:
        return (
            f"IM multiplier {self.multiplier:.4f} (anti-procyclical x{self.calm_term:.3f}, "
            f"predictive x{self.predictive_term:.3f} from {self.predictive_source})"
        )


@dataclass(frozen=True)
class IMMultiplierPolicy:
    base: float = 1.25
    cap: float = 2.5
    calm_exponent: float = 0.5

    def __post_init__(self) -> None:
        if not 1.0 <= self.base <= self.cap:
            raise ValueError(f"need 1 <= base <= cap, got base={self.base}, cap={self.cap}")

    def multiplier(
        self,
        vol_now: np.ndarray,
        vol_ref: np.ndarray,
        predicted_ratio: float = 1.0,
        predictive_source: str = "none",
    ) -> IMMultiplier:
        """``vol_now`` and ``vol_ref``: (n_assets,) in the same units; ``predicted_ratio`` >= 0."""
        now = np.asarray(vol_now, dtype=np.float64)
        ref = np.asarray(vol_ref, dtype=np.float64)
        if now.shape != ref.shape or not ((now > 0).all() and (ref > 0).all()):
            raise ValueError("vol_now and vol_ref must be positive and of the same shape")
        if not np.isfinite(predicted_ratio) or predicted_ratio < 0:
            raise ValueError(f"predicted_ratio must be finite and >= 0, got {predicted_ratio}")
        calm = float(np.exp(np.mean(np.log(np.maximum(1.0, ref / now))))) ** self.calm_exponent
        pred = max(1.0, float(predicted_ratio))
        m = float(np.clip(self.base * calm * pred, self.base, self.cap))
        return IMMultiplier(m, calm, pred, predictive_source)
