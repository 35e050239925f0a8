"""Funding of the perpetuals: the contract's twin (``ledger._accrue`` and friends), exact.

Units (docs/ARCHITECTURE.md#funding): a rate is a WAD fraction of the oracle price per hour;
the cumulative index is WAD cash per WAD unit of size (a long pays what the index rises by, a
short receives it); a premium is ``(fill - oracle) / oracle`` in WAD. Per market the chain
keeps three words, unpacked here:

* ``funding_word``: index (int128) | time of the last accrual (uint64) | rate in force (int64);
* ``premium_word``: sum(premium * |size|) / WAD (int104) | sum(|size|) (uint104) | hour;
* ``funding_params``: cap (uint64) | interest (int64) | convergence hours.

Every division is the contract's: the index moves by ``floor(rate * price * dt / (3600 *
WAD))``; a position owes ``ceil(size * (index - snapshot) / WAD)`` (against the account, so
what payers pay covers what receivers get); the premium sample and the rate truncate towards
zero like the EVM's ``sdiv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.models.margin import trunc_div
from offchain_risk.units import HOUR, MAX_FUNDING_CAP, MAX_PREMIUM_WEIGHT, WAD

MASK64 = 2**64 - 1
MASK104 = 2**104 - 1
MASK128 = 2**128 - 1


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


@dataclass(frozen=True)
class FundingParams:
    """A market's funding parameters: the premium is paid off over ``convergence_hours``,
    plus ``interest`` (WAD per hour), the rate clamped to +-``cap`` (WAD per hour)."""

    convergence_hours: int = 0
    interest: int = 0
    cap: int = 0

    @classmethod
    def unpack(cls, word: int) -> FundingParams:
        word = int(word)
        return cls(word >> 128, _signed((word >> 64) & MASK64, 64), word & MASK64)

    def pack(self) -> int:
        return self.cap | ((self.interest & MASK64) << 64) | (self.convergence_hours << 128)


def cap_from_margin_gap(mm_rate_wad: int, im_multiplier_wad: int, share_pct: int = 600) -> int:
    """An hourly cap sized from a market's margin gap, as dYdX sizes it: ``share_pct``
    (600%) of IM - MM of a naked unit per 8 hours, at most ``MAX_FUNDING_CAP``.
    ``mm_rate_wad``: MM of one naked unit as a WAD fraction of its notional (its worst
    scenario loss or its floor); ``im_multiplier_wad``: IM / MM."""
    gap = mm_rate_wad * (im_multiplier_wad - WAD) // WAD
    return min(gap * share_pct // 100 // 8, MAX_FUNDING_CAP)


def index_at(word: int, price: int, now: int) -> int:
    """``ledger._index_at``: the market's index at ``now`` with ``price`` (WAD)."""
    word = int(word)
    index = _signed(word & MASK128, 128)
    rate = _signed(word >> 192, 64)
    if rate == 0:
        return index
    elapsed = now - ((word >> 128) & MASK64)
    return index + (rate * price * elapsed) // (HOUR * WAD)


def owed(size: int, index: int, snapshot: int) -> int:
    """``ledger._funding_owed``: funding a position owes since its snapshot (rounded up)."""
    return -((-(size * (index - snapshot))) // WAD)


def owed_exact(size: np.ndarray, snapshots: np.ndarray, index_now: np.ndarray) -> np.ndarray:
    """Unsettled funding per account, exact ints: (n_accounts,).

    size, snapshots: (n_accounts, n_assets) WAD ints; index_now: (n_assets,) each market's
    index now (:func:`index_at`). A flat position owes nothing whatever its snapshot.
    """
    size = np.asarray(size, dtype=object)
    diff = np.asarray(index_now, dtype=object)[None, :] - np.asarray(snapshots, dtype=object)
    per = -((-(size * diff)) // WAD)
    return np.where(size == 0, 0, per).sum(axis=1)


def next_rate(params_word: int, window: int) -> int:
    """``ledger._next_rate``: the hourly rate from a premium window."""
    p = FundingParams.unpack(params_word)
    if p.cap == 0:
        return 0
    weight = (int(window) >> 104) & MAX_PREMIUM_WEIGHT
    avg = 0
    if weight:
        avg = trunc_div(_signed(int(window) & MASK104, 104) * WAD, weight)
    rate = trunc_div(avg, p.convergence_hours) + p.interest
    return max(min(rate, p.cap), -p.cap)


@dataclass
class MarketFunding:
    """One market's funding words, stepped exactly as the contract steps them."""

    funding_word: int = 0
    premium_word: int = 0
    params_word: int = 0

    @property
    def index(self) -> int:
        return _signed(self.funding_word & MASK128, 128)

    @property
    def rate(self) -> int:
        return _signed(self.funding_word >> 192, 64)

    def index_at(self, price: int, now: int) -> int:
        return index_at(self.funding_word, price, now)

    def accrue(self, now: int, price: int, premium: int = 0, weight: int = 0) -> int:
        """``ledger._accrue``: move to ``now`` with ``price``; sample a fill's ``premium``
        (WAD) weighted by ``weight`` (|size|, WAD; 0 when not a fill). Returns the index."""
        rate = self.rate
        if rate == 0 and FundingParams.unpack(self.params_word).cap == 0:
            return self.index  # funding off and no rate in force: nothing moves
        index = self.index_at(price, now)
        window = self.premium_word
        hour = now // HOUR
        if window >> 208 != hour:
            rate = next_rate(self.params_word, window)
            window = hour << 208
        if weight:
            total = ((window >> 104) & MAX_PREMIUM_WEIGHT) + weight
            if total <= MAX_PREMIUM_WEIGHT:
                num = _signed(window & MASK104, 104) + trunc_div(premium * weight, WAD)
                window = (hour << 208) | (total << 104) | (num & MASK104)
        self.premium_word = window
        self.funding_word = ((rate & MASK64) << 192) | (now << 128) | (index & MASK128)
        return index


def premium_of(price: int, oracle_price: int) -> int:
    """A fill's premium over the oracle, WAD, truncated (``settlement.settle``)."""
    return trunc_div((price - oracle_price) * WAD, oracle_price)
