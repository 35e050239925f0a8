"""Portfolio Greeks throughput (float path) for 1M option legs against roofs measured in the
same run.

Workload: 1M legs on 100,000 accounts, 2 venues, 4 underlyings and 8 expiries (random
strikes around the forward, random sizes); vols from the feed's curves. Rows:
``curve_vols`` (each leg's vol from its curve), ``position_greeks`` (Black-76 price and four
Greeks, sizes applied), ``greeks_report`` by account and by venue (sums per key, underlying
and expiry).

Roofs: the transcendental floor of Black-76 over the same 1M array, timed as plain numpy
calls in the same chunks (one ``log``, one ``sqrt``, one ``exp`` and two ``ndtr`` per
position: what any Black-76 must evaluate), and the machine's copy bandwidth
(``benchmarks.throughput.bandwidth_roof``). ``python -m benchmarks.greeks [--quick]``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
from scipy.special import ndtr

from benchmarks.throughput import OPTION_CHUNK, _best_of, bandwidth_roof
from offchain_risk.models.greeks import (
    OptionLegs,
    curve_vols,
    forwards_of,
    greeks_report,
    position_greeks,
    random_legs,
)
from offchain_risk.units import DAY, HOUR

NOW = 1_700_000_000


def book(n: int, n_accounts: int, seed: int = 5) -> tuple[OptionLegs, dict, dict]:
    """``n`` legs, their forwards per underlying and the curves per (underlying, expiry)."""
    forwards = {0: 3_000.0, 1: 60_000.0, 2: 150.0, 3: 15.0}
    expiries = NOW + np.array([1, 2, 7, 14, 30, 60, 90, 180]) * DAY + 8 * HOUR
    legs = random_legs(
        forwards, expiries, n, accounts=n_accounts, strike_sd=0.25, size_sd=10, seed=seed
    )
    curves = {
        (i, int(e)): (0.6 + 0.05 * i, -0.15, 0.8, forwards[i]) for i in range(4) for e in expiries
    }
    return legs, forwards, curves


def transcendental_roof(x: np.ndarray) -> float:
    """Seconds for log, sqrt, exp and two ndtr over ``x: (n,)`` in OPTION_CHUNK slices."""
    out = np.empty(OPTION_CHUNK)

    def run() -> None:
        for lo in range(0, x.size, OPTION_CHUNK):
            c = x[lo : lo + OPTION_CHUNK]
            o = out[: c.size]
            np.log(c, out=o)
            np.sqrt(c, out=o)
            np.exp(-c, out=o)
            ndtr(c, out=o)
            ndtr(-c, out=o)

    return _best_of(run, 3)


def run(quick: bool = False) -> str:
    scale = 10 if quick else 1
    n, n_accounts = 1_000_000 // scale, 100_000 // scale
    load = os.getloadavg()[0]
    legs, forwards, curves = book(n, n_accounts)
    bw = bandwidth_roof()
    roof = transcendental_roof(np.abs(legs.size) + 0.5)
    f = forwards_of(legs, forwards)
    vols = curve_vols(legs, curves)
    pos = position_greeks(legs, f, vols, NOW)
    timed: list[tuple[str, Callable[[], object], int]] = [
        (
            "curve_vols: each leg's vol from its (underlying, expiry) curve",
            lambda: curve_vols(legs, curves),
            2 * 8,
        ),
        (
            "position_greeks: Black-76 price + delta, gamma, vega, theta",
            lambda: position_greeks(legs, f, vols, NOW),
            5 * 8 + 6 * 8,
        ),
        (
            "greeks_report by account (100k accounts x 4 underlyings x 8 expiries)",
            lambda: greeks_report(legs, pos, "account"),
            6 * 8,
        ),
        ("greeks_report by venue", lambda: greeks_report(legs, pos, "venue"), 6 * 8),
    ]
    rows = []
    for name, fn, bytes_per_leg in timed:
        secs = _best_of(fn, 2)
        rows.append((name, secs, bytes_per_leg * n / secs / 1e9))
    by_account = greeks_report(legs, pos, "account")
    lines = [
        "## Option Greeks throughput",
        "",
        f"{n:,} option legs on {n_accounts:,} accounts, 2 venues, 4 underlyings, 8 expiries "
        f"(`python -m benchmarks.greeks`; {by_account.key.size:,} account rows). Roofs in "
        f"this run: Black-76's transcendental floor (log, sqrt, exp and two `ndtr` over the "
        f"same {n:,} array, 65,536-element chunks) {roof:.3f} s = {n / roof / 1e6:.1f} M/s; "
        f"copy bandwidth {bw:.1f} GB/s. Load average at the start: {load:.1f} on "
        f"{os.cpu_count()} cores{', quick mode (10x smaller)' if quick else ''}.",
        "",
        "| step | seconds | M legs/s | x transcendental roof | GB/s (min. traffic) | "
        "% of bandwidth roof |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, secs, gb in rows:
        lines.append(
            f"| {name} | {secs:.3f} | {n / secs / 1e6:.1f} | {secs / roof:.1f} | {gb:.2f} | "
            f"{100 * gb / bw:.1f}% |"
        )
    total = sum(s for _, s, _ in rows[:3])
    lines += [
        "",
        f"Vols, Greeks and the per-account report together: {total:.2f} s for {n:,} legs "
        f"({n / total / 1e6:.2f} M legs/s). Minimum traffic counts each step's float inputs "
        "read and outputs written once. Account ids are uint256, held as Python ints (object "
        "arrays): the report numbers them through a dict (one lookup per leg at Python "
        "speed), then sums with `np.bincount`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
