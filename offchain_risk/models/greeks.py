"""Portfolio Greeks of option legs (float path): per leg with :func:`black76`, then summed by
account or venue, underlying and expiry.

Units: ``delta`` in units of the underlying (``dV/dF``; ``delta_usd = delta F``), ``gamma``
per USD (``d2V/dF2``: the change of ``delta`` per dollar of the forward), ``vega`` in USD per
1.0 of vol (per vol point: ``vega / 100``), ``theta`` in USD per year, ``value`` in USD.
Sizes are signed units of the underlying (short < 0). Zero rates: the forward is the
oracle price. Vols are held fixed per leg (sticky strike): a surface's smile does not move
with the forward inside these Greeks; that is the convention finite differences are checked
against (``tests/unit/test_greeks.py``).

Legs whose expiry has passed carry no Greeks (they settle at intrinsic value) and are
counted in ``expired``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from offchain_risk.models.options import black76
from offchain_risk.units import MAX_VOL, MIN_VOL, SUB_BITS, WAD

GREEKS = ("value", "delta", "delta_usd", "gamma", "vega", "theta")
_FIELDS = ("account", "venue", "underlying", "expiry", "strike", "is_call", "size")


@dataclass(frozen=True)
class OptionLegs:
    """``n`` option legs; every array ``(n,)``."""

    account: np.ndarray  # account ids (Python ints may exceed int64: object dtype)
    venue: np.ndarray  # venue labels
    underlying: np.ndarray  # int64 asset ids
    expiry: np.ndarray  # int64 unix seconds
    strike: np.ndarray  # float64 USD per unit
    is_call: np.ndarray  # bool
    size: np.ndarray  # float64 signed units of the underlying

    def __post_init__(self) -> None:
        n = self.strike.shape
        if any(np.shape(getattr(self, f)) != n for f in _FIELDS) or len(n) != 1:
            raise ValueError("legs: every field needs the same 1-D shape")
        if not (np.isfinite(self.strike).all() and (self.strike > 0).all()):
            raise ValueError("legs: strikes must be finite and positive")
        if not np.isfinite(self.size).all():
            raise ValueError("legs: sizes must be finite")

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> OptionLegs:
        """From mappings with keys account, venue, underlying, expiry, strike, is_call, size
        (``venue`` defaults to 0)."""
        rows = list(records)
        try:
            cols = {f: [r.get(f, 0) if f == "venue" else r[f] for r in rows] for f in _FIELDS}
        except KeyError as exc:
            raise ValueError(f"legs: a record misses {exc.args[0]!r}") from None
        return cls(
            account=np.array(cols["account"], dtype=object),
            venue=np.array(cols["venue"], dtype=object),
            underlying=np.array(cols["underlying"], dtype=np.int64),
            expiry=np.array(cols["expiry"], dtype=np.int64),
            strike=np.array(cols["strike"], dtype=np.float64),
            is_call=np.array(cols["is_call"], dtype=bool),
            size=np.array(cols["size"], dtype=np.float64),
        )

    def __len__(self) -> int:
        return self.strike.size


def random_legs(
    forwards: Mapping[int, float],
    expiries: Iterable[int],
    n: int,
    *,
    accounts: int,
    strike_sd: float,
    size_sd: float,
    seed: int,
) -> OptionLegs:
    """``n`` random legs for tests and benchmarks: underlyings ``0 .. len(forwards) - 1``,
    sub-accounts ``1 .. accounts`` of owner 0, log-normal strikes around the forward
    (``strike_sd``), expiries drawn from ``expiries``, normal signed sizes (``size_sd``)."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, len(forwards), n)
    f = np.array([forwards[i] for i in range(len(forwards))])[u]
    ids = np.array([a << SUB_BITS for a in range(1, accounts + 1)], dtype=object)
    exp = np.asarray(list(expiries), dtype=np.int64)
    return OptionLegs(
        account=ids[rng.integers(0, accounts, n)],
        venue=np.array(["book", "rfq"], dtype=object)[rng.integers(0, 2, n)],
        underlying=u.astype(np.int64),
        expiry=exp[rng.integers(0, exp.size, n)],
        strike=f * np.exp(rng.normal(0, strike_sd, n)),
        is_call=rng.random(n) < 0.5,
        size=rng.normal(0, size_sd, n),
    )


def forwards_of(legs: OptionLegs, forwards: Mapping[int, float]) -> np.ndarray:
    """Each leg's forward ``(n,)`` from a price per underlying; a missing or non-positive
    price is a ValueError naming the underlying."""
    out = np.empty(len(legs))
    for u in np.unique(legs.underlying):
        f = forwards.get(int(u))
        if f is None or not (np.isfinite(f) and f > 0):
            raise ValueError(f"greeks: no valid forward for underlying {int(u)}: {f}")
        out[legs.underlying == u] = f
    return out


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, codes)``: the distinct values in first-seen order and each entry's index
    in them, ``codes: (n,)`` int64. A hash table, so object arrays (uint256 account ids,
    venue names) cost one dict lookup per entry rather than a sort at Python speed."""
    if values.dtype != object:
        labels, codes = np.unique(values, return_inverse=True)
        return labels, codes.reshape(-1).astype(np.int64)
    index: dict = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=values.size
    )
    labels = np.empty(len(index), dtype=object)
    labels[:] = list(index)
    return labels, codes


def _pair_codes(legs: OptionLegs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (underlying, expiry) pairs ``(p,)`` each, and each leg's pair ``(n,)``."""
    us, u_idx = factorize(legs.underlying)
    es, e_idx = factorize(legs.expiry)
    pairs, idx = np.unique(u_idx * es.size + e_idx, return_inverse=True)
    return us[pairs // es.size], es[pairs % es.size], idx.reshape(-1)


def curve_vols(legs: OptionLegs, curves: Mapping[tuple[int, int], tuple]) -> np.ndarray:
    """Each leg's vol ``(n,)`` from the feed's curves, ``(underlying, expiry) -> (atm_vol,
    skew, curvature, forward)`` as floats: ``VolFeed.vol``'s formula and clamp in float."""
    us, es, idx = _pair_codes(legs)
    params = np.empty((us.size, 4))  # (pairs, 4): atm, skew, curvature, forward
    for i, (u, e) in enumerate(zip(us, es, strict=True)):
        key = (int(u), int(e))
        if key not in curves:
            raise ValueError(f"greeks: no vol curve for underlying {key[0]}, expiry {key[1]}")
        params[i] = [float(v) for v in curves[key]]
    atm, skew, curv, f0 = params[idx].T  # each (n,)
    x = np.log(legs.strike / f0)
    return np.clip(atm + skew * x + curv * x * x, MIN_VOL / WAD, MAX_VOL / WAD)


@dataclass(frozen=True)
class PositionGreeks:
    """Per leg, size included: each Greek ``(n,)``; zero for expired legs."""

    value: np.ndarray
    delta: np.ndarray
    delta_usd: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    live: np.ndarray  # (n,) bool: expiry after now


def position_greeks(
    legs: OptionLegs, forward: np.ndarray, vol: np.ndarray | float, now: int
) -> PositionGreeks:
    """Value and Greeks of each leg at time ``now`` (``forward`` and ``vol``: ``(n,)``)."""
    n = len(legs)
    forward = np.broadcast_to(np.asarray(forward, dtype=np.float64), (n,))
    vol = np.broadcast_to(np.asarray(vol, dtype=np.float64), (n,))
    tau = (legs.expiry - int(now)).astype(np.float64)
    live = tau > 0
    out = {g: np.zeros(n) for g in GREEKS}
    if live.any():
        r = black76(forward[live], legs.strike[live], vol[live], tau[live], legs.is_call[live])
        s = legs.size[live]
        out["value"][live] = s * r.price
        out["delta"][live] = s * r.delta
        out["delta_usd"][live] = s * r.delta * forward[live]
        out["gamma"][live] = s * r.gamma
        out["vega"][live] = s * r.vega
        out["theta"][live] = s * r.theta
    return PositionGreeks(**out, live=live)


@dataclass(frozen=True)
class GreeksReport:
    """Greeks summed per (``by`` key, underlying, expiry): ``m`` rows, each array ``(m,)``."""

    by: str  # "account" or "venue"
    key: np.ndarray
    underlying: np.ndarray
    expiry: np.ndarray
    n_legs: np.ndarray
    value: np.ndarray
    delta: np.ndarray
    delta_usd: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    expired: int  # legs left out: expiry passed

    def rows(self) -> list[dict]:
        return [
            {
                self.by: self.key[i],
                "underlying": int(self.underlying[i]),
                "expiry": int(self.expiry[i]),
                "n_legs": int(self.n_legs[i]),
                **{g: float(getattr(self, g)[i]) for g in GREEKS},
            }
            for i in range(self.key.size)
        ]

    def summary(self) -> str:
        return (
            f"{self.key.size} rows by {self.by}, {int(self.n_legs.sum())} live legs "
            f"({self.expired} expired): delta {self.delta_usd.sum():,.0f} USD, "
            f"vega {self.vega.sum() / 100:,.0f} USD per vol point"
        )


def greeks_report(legs: OptionLegs, pos: PositionGreeks, by: str = "account") -> GreeksReport:
    """Sum the live legs' Greeks by ``by`` ("account" or "venue"), underlying and expiry."""
    if by not in ("account", "venue"):
        raise ValueError(f"greeks: report by 'account' or 'venue', not {by!r}")
    live = pos.live
    if not live.any():
        empty = np.zeros(0)
        return GreeksReport(
            by,
            np.empty(0, dtype=object),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            *(empty,) * len(GREEKS),
            expired=int(live.size),
        )
    labels, key_idx = factorize(getattr(legs, by)[live])
    us, u_idx = factorize(legs.underlying[live])
    es, e_idx = factorize(legs.expiry[live])
    group = (key_idx * us.size + u_idx) * es.size + e_idx  # (n_live,) one code per row
    rows, inverse = np.unique(group, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = rows.size
    sums = {g: np.bincount(inverse, getattr(pos, g)[live], minlength=m) for g in GREEKS}
    k, rest = np.divmod(rows, us.size * es.size)
    return GreeksReport(
        by=by,
        key=labels[k],
        underlying=us[rest // es.size],
        expiry=es[rest % es.size],
        n_legs=np.bincount(inverse, minlength=m),
        expired=int((~live).sum()),
        **sums,
    )
