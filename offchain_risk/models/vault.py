"""Vault shares (ERC-4626) as collateral: the capped exchange rate, the contract's twin.

``ledger._asset_price`` prices one whole share at ``floor(feed * rate / WAD)``, where the
rate is ``convertToAssets(one whole share)`` in WAD of the underlying, capped as Aave's
CAPO caps it: ``cap(t) = ratio + floor(ratio * growth_bps * (t - t0) / (10**4 * YEAR))``.
A rate above the cap is cut to the cap; more than ``VAULT_JUMP_BPS`` above it, or a vault
that reverts or answers zero, is an outage (no price). A falling rate (slashing) is used
as it is. :class:`RateCap` reproduces each step to the wei; the price it returns is what
:func:`offchain_risk.models.margin.margin_exact` takes as the asset's price.
"""

from __future__ import annotations

from dataclasses import dataclass

from offchain_risk.units import (
    BPS,
    MAX_CAP,
    MAX_PRICE,
    MAX_RATE_GROWTH_BPS,
    MIN_SNAPSHOT_DELAY,
    VAULT_JUMP_BPS,
    WAD,
    YEAR,
    unpack_vault_word,
)


@dataclass(frozen=True)
class VaultClass:
    """Defaults of a class of vault shares: the listed haircut (bps; also the governor's
    ``haircut_min`` for the asset, so the keeper's size-dependent liquidity haircut is
    signed on top of it and never below) and the rate cap's yearly growth (bps)."""

    haircut_bps: int
    max_growth_bps: int


# Documented in docs/ARCHITECTURE.md ("Vault shares as collateral").
VAULT_CLASSES: dict[str, VaultClass] = {
    "liquid_staking": VaultClass(haircut_bps=2_000, max_growth_bps=1_000),  # wstETH-like
    "restaking": VaultClass(haircut_bps=3_500, max_growth_bps=1_500),  # LRT-like
    "savings": VaultClass(haircut_bps=1_200, max_growth_bps=1_500),  # sDAI-like
}


@dataclass(frozen=True)
class RateCap:
    """One vault's cap: snapshot ``ratio`` (WAD of underlying per whole share) taken at
    ``snapshot_time``, growing at most ``max_growth_bps`` a year; ``underlying_decimals``
    normalises ``convertToAssets`` to WAD."""

    ratio: int
    snapshot_time: int
    max_growth_bps: int
    underlying_decimals: int

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 2**128:
            raise ValueError("ratio must be in (0, 2**128)")
        if not 0 <= self.max_growth_bps <= MAX_RATE_GROWTH_BPS:
            raise ValueError(f"max_growth_bps outside [0, {MAX_RATE_GROWTH_BPS}]")
        if not 0 <= self.underlying_decimals <= 36:
            raise ValueError("underlying_decimals outside [0, 36]")

    @classmethod
    def from_word(cls, word: int) -> RateCap:
        """The cap the engine holds (``engine.vault_word(asset)``)."""
        return cls(*unpack_vault_word(word))

    def cap(self, at: int) -> int:
        """The highest rate (WAD) the engine accepts at time ``at``, rounded down."""
        if at <= self.snapshot_time:
            return self.ratio
        growth = self.ratio * self.max_growth_bps * (at - self.snapshot_time)
        return self.ratio + growth // (BPS * YEAR)

    def rebased(self, ratio: int, timestamp: int, max_growth_bps: int, now: int) -> RateCap:
        """The cap once the snapshot ``(ratio, timestamp, max_growth_bps)`` is installed at
        ``now`` (``ledger.set_vault_snapshot``, through the signed ``RateSnapshots``); a
        ``ValueError`` carrying the engine's revert string when the engine refuses it: not
        newer than this one, under ``MIN_SNAPSHOT_DELAY`` old, a ratio above this cap at its
        time, a growth above ``MAX_RATE_GROWTH_BPS``, or a cap now above this one now."""
        if timestamp <= self.snapshot_time:
            raise ValueError("vault: snapshot not newer")
        if timestamp + MIN_SNAPSHOT_DELAY > now:
            raise ValueError("vault: snapshot too recent")
        if not 0 < ratio < 2**128 or ratio > self.cap(timestamp):
            raise ValueError("vault: ratio above cap")
        if max_growth_bps > MAX_RATE_GROWTH_BPS:
            raise ValueError("vault: growth too high")
        new = RateCap(ratio, timestamp, max_growth_bps, self.underlying_decimals)
        if new.cap(now) > self.cap(now):
            raise ValueError("vault: cap would rise")
        return new

    def normalise(self, assets: int | None) -> int:
        """``convertToAssets(one whole share)`` in underlying units -> WAD, rounded down;
        0 for no answer (``None``: the vault reverted), zero or above 2**128 units."""
        if assets is None or assets > MAX_CAP:
            return 0
        d = self.underlying_decimals
        return assets * 10 ** (18 - d) if d <= 18 else assets // 10 ** (d - 18)

    def rate(self, assets: int | None, at: int) -> int:
        """The rate the engine prices with at ``at`` (``engine.vault_rate``'s first value):
        capped, 0 when the vault has no rate or jumped above the cap."""
        rate = self.normalise(assets)
        cap = self.cap(at)
        if rate <= cap:
            return rate
        if rate * BPS > cap * (BPS + VAULT_JUMP_BPS):
            return 0
        return cap

    def price(self, feed_price_wad: int, assets: int | None, at: int) -> int:
        """One whole share's price (WAD), as ``engine.price(asset)``: 0 means no price."""
        p = int(feed_price_wad) * self.rate(assets, at) // WAD
        return p if 0 < p <= MAX_PRICE else 0
