"""Risk-engine throughput against this machine's measured roofs.

Five workloads:
- margin float path (``offchain_risk.models.margin.margin_float``) for 1M accounts x 32 assets x
  16 scenarios, in chunks of 65,536 accounts;
- margin float path with options: 1M accounts x 32 option legs x 16 scenarios (both vol
  moves) plus perps, on the devnet's four markets (their prices, floors and joint scenarios):
  the anchor rule's option losses
  (``offchain_risk.models.options.option_scenario_losses_batch``) joined to the perps' linear
  losses, the floor and the short-option minimum as the engine joins them, in chunks of 512
  accounts (16,384 legs);
- Monte Carlo ES: 100k accounts x 16 assets on 10,000 joint scenarios
  (``offchain_risk.models.risk.var_es``, chunks of 2,048 accounts);
- Black-76 (``offchain_risk.models.options.black76``) for 1M option positions, the price
  alone and the price with delta, gamma, vega and theta, in chunks of 65,536.

Roofs measured in the same run: GEMM (float64 2048 x 2048 matmul, GFLOP/s), memory bandwidth
(copy of a 256 MiB array, counting read + write, GB/s) and, for the option margin, the anchor
rule's transcendental floor (:func:`anchor_floor`: the log, square roots and normal CDFs any
evaluation of the rule needs, as bare numpy calls on the workload's own legs). Run
``python -m benchmarks.throughput`` (``--quick`` for a 10x smaller run).
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from scipy.special import ndtr

from offchain_risk import devnet
from offchain_risk.models.margin import margin_float
from offchain_risk.models.options import black76, option_scenario_losses_batch
from offchain_risk.models.risk import var_es
from offchain_risk.units import DAY, YEAR

MARGIN_CHUNK = 65_536
OPTION_CHUNK = 65_536
ES_CHUNK = 2_048
# Accounts per chunk of the option margin: 16,384 legs, so that each chunk's per-leg arrays
# (128 KiB) and per-scenario arrays stay in a core's L2 cache; larger chunks run slower.
OPTION_MARGIN_CHUNK = 512
OPTION_VOL_SHOCK = 0.15  # vol move at 30 days (the option coverage test's grid)
SHORT_MIN = 0.005  # short-option minimum per unit sold, of the underlying's price
#: Black-76 evaluations per leg under the anchor rule: the mark and three anchors at each
#: of the two moved vols (full revaluation: the mark and 2 x K scenario points).
ANCHOR_POINTS = 7


def _best_of(fn: Callable[[], object], repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (numpy buffers included) while ``fn`` runs."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def gemm_roof(n: int = 2048) -> float:
    """GFLOP/s of a float64 n x n matmul (best of 3 after a warm-up)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b
    return 2.0 * n**3 / _best_of(lambda: a @ b, 3) / 1e9


def bandwidth_roof(mib: int = 256) -> float:
    """GB/s of a large array copy, counting the bytes read and written (best of 3)."""
    src = np.ones(mib * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    return 2.0 * src.nbytes / _best_of(lambda: np.copyto(dst, src), 3) / 1e9


def _margin_workload(n_accounts: int, n_assets: int, k: int) -> tuple[Callable[[], None], int]:
    rng = np.random.default_rng(1)
    exposures = rng.standard_normal((n_accounts, n_assets)) * 1e4  # (n_acc, n_assets) USD
    gross = np.abs(exposures) * 1.5  # (n_acc, n_assets)
    shocks = rng.integers(-3000, 3000, size=(n_assets, k)).astype(np.int16)  # (n_assets, K)
    floor = np.full(n_assets, 50.0)
    mm = np.empty(n_accounts)

    def run() -> None:
        for lo in range(0, n_accounts, MARGIN_CHUNK):
            hi = lo + MARGIN_CHUNK
            mm[lo:hi], _ = margin_float(exposures[lo:hi], gross[lo:hi], shocks, floor, 1.25)

    return run, exposures.nbytes + gross.nbytes + mm.nbytes


def _option_margin_workload(
    n_accounts: int, n_legs: int
) -> tuple[Callable[[], None], Callable[[], None], int, dict[str, np.ndarray]]:
    """(run, one chunk, input bytes, sample legs for the floor): MM of accounts each holding
    ``n_legs`` option legs and a perp on each of the devnet's four markets, float path."""
    rng = np.random.default_rng(4)
    forwards = np.array([m.price_usd for m in devnet.MARKETS], dtype=np.float64)  # (U,) USD
    shocks = devnet.DEFAULT_SHOCKS_BPS  # (U, K) bps
    floor = np.array([m.floor_bps for m in devnet.MARKETS]) * 1e-4  # (U,)
    linear = shocks * -1e-4  # (U, K) loss per USD of perp exposure, as margin_float
    shape = (n_accounts, n_legs)
    und = rng.integers(0, len(forwards), shape).astype(np.int8)  # (n_acc, n_legs)
    size = rng.normal(0.0, 10.0, shape)  # (n_acc, n_legs) signed units
    strike = forwards[und] * np.exp(rng.normal(0.0, 0.25, shape))  # (n_acc, n_legs) USD
    is_call = rng.random(shape) < 0.5  # (n_acc, n_legs)
    vol = rng.uniform(0.3, 1.2, shape)  # (n_acc, n_legs) annualised
    expiries = np.array([1, 2, 7, 14, 30, 60, 90, 180]) * float(DAY)
    tau_s = rng.choice(expiries, shape)  # (n_acc, n_legs) seconds
    perps = rng.standard_normal((n_accounts, len(forwards))) * 1e4  # (n_acc, U) USD
    gross = np.abs(perps) * 1.5  # (n_acc, U)
    mm = np.empty(n_accounts)

    def chunk(lo: int) -> None:
        c = slice(lo, lo + OPTION_MARGIN_CHUNK)
        legs = (size[c], und[c], strike[c], is_call[c], vol[c], tau_s[c])
        losses = option_scenario_losses_batch(*legs, forwards, shocks, OPTION_VOL_SHOCK)
        worst = losses.max(axis=1)  # (chunk, K) the worse vol move per scenario
        worst += perps[c] @ linear
        short = np.maximum(-size[c], 0.0) * forwards[und[c]]  # (chunk, n_legs) USD sold
        floors = gross[c] @ floor + SHORT_MIN * short.sum(axis=1)
        mm[c] = np.maximum(np.maximum(worst.max(axis=1), floors), 0.0)

    def run() -> None:
        for lo in range(0, n_accounts, OPTION_MARGIN_CHUNK):
            chunk(lo)

    # The first legs, with each one's d1 at the mark, for the transcendental floor.
    n = min(size.size, 2**20)
    k, t, v = strike.ravel()[:n], tau_s.ravel()[:n], vol.ravel()[:n]
    s = v * np.sqrt(t / YEAR)
    d1 = np.log(forwards[und.ravel()[:n]] / k) / s + 0.5 * s
    sample = {"z": np.where(is_call.ravel()[:n], d1, -d1), "strike": k, "tau_s": t}
    inputs = sum(a.nbytes for a in (und, size, strike, is_call, vol, tau_s, perps, gross, mm))
    return run, lambda: chunk(0), inputs, sample


def anchor_floor(z: np.ndarray, strike: np.ndarray, tau_s: np.ndarray) -> float:
    """Seconds per leg of the transcendental functions the anchor rule evaluates for one
    leg: ``ln K``, two square roots (``sqrt(tau)`` and the vol move's ``sqrt(30 d / tau)``)
    and two normal CDFs at each of its ANCHOR_POINTS Black-76 points, as bare numpy calls over
    the sample legs (``z``: their signed d1, the CDFs' argument) in chunks of the option
    margin's 16,384 legs (best of 3). The method of ``benchmarks.greeks.transcendental_roof``,
    with the rule's count of each function."""
    step = OPTION_MARGIN_CHUNK * 32
    out = np.empty(step)

    def run() -> None:
        for lo in range(0, z.size, step):
            c, k, t = z[lo : lo + step], strike[lo : lo + step], tau_s[lo : lo + step]
            o = out[: c.size]
            np.log(k, out=o)
            np.sqrt(t, out=o)
            np.sqrt(t, out=o)
            for _ in range(2 * ANCHOR_POINTS):
                ndtr(c, out=o)

    return _best_of(run, 3) / z.size


def _es_workload(n_accounts: int, n_assets: int, n_sims: int) -> tuple[Callable[[], None], int]:
    rng = np.random.default_rng(2)
    exposures = rng.standard_normal((n_accounts, n_assets)) * 1e4  # (n_acc, n_assets)
    moves = np.expm1(rng.standard_t(4, size=(n_sims, n_assets)) * 0.03)  # (n_sims, n_assets)

    def run() -> None:
        var_es(exposures, moves, 0.99, "Monte Carlo", chunk_size=ES_CHUNK)

    return run, exposures.nbytes + moves.nbytes


def _options_workload(n: int, greeks: bool) -> tuple[Callable[[], None], int]:
    rng = np.random.default_rng(3)
    forward = rng.uniform(1_000, 100_000, n)  # (n,) USD
    strike = forward * np.exp(rng.normal(0, 0.3, n))  # (n,)
    vol = rng.uniform(0.2, 1.5, n)  # (n,) annualised
    tau_s = rng.uniform(3_600, 365 * 86_400, n)  # (n,) seconds
    is_call = rng.random(n) < 0.5  # (n,)
    out = np.empty(n)

    def run() -> None:
        for lo in range(0, n, OPTION_CHUNK):
            hi = lo + OPTION_CHUNK
            res = black76(
                forward[lo:hi], strike[lo:hi], vol[lo:hi], tau_s[lo:hi], is_call[lo:hi], greeks
            )
            out[lo:hi] = res.price

    return run, 4 * forward.nbytes + is_call.nbytes + out.nbytes


def run(quick: bool = False) -> str:
    """Measure the workloads and the roofs; return a markdown section."""
    scale = 10 if quick else 1
    load = os.getloadavg()[0]  # other work on the machine shares the roofs below
    gemm = gemm_roof()
    bw = bandwidth_roof()
    rows = []

    n, a, k = 1_000_000 // scale, 32, 16
    fn, input_bytes = _margin_workload(n, a, k)
    secs = _best_of(fn, 2)
    peak = _peak_bytes(fn)
    flops = 2.0 * n * a * k + 2.0 * n * a  # scenario matmul + floor matvec
    traffic = 2.0 * n * a * 8  # exposures and gross read once
    rows.append(
        (
            "margin float path",
            f"{n:,} accounts x {a} assets x {k} scenarios",
            secs,
            flops / secs / 1e9,
            traffic / secs / 1e9,
            peak,
            input_bytes,
        )
    )

    n, legs, k = 1_000_000 // scale, 32, 16
    fn, one_chunk, input_bytes, sample = _option_margin_workload(n, legs)
    secs = _best_of(fn, 1 if not quick else 2)
    peak = _peak_bytes(one_chunk)
    floor = anchor_floor(**sample) * n * legs  # seconds for every leg at the floor
    del sample
    # each leg's six inputs (four floats, the kind and the underlying) read once, each
    # account's perp exposure and gross read and its MM written once
    traffic = n * legs * (4 * 8 + 2) + n * (2 * 4 * 8 + 8)
    option_margin = (n, legs, k, secs, floor)
    rows.append(
        (
            "margin float path with options (anchor rule)",
            f"{n:,} accounts x {legs} option legs x {k} scenarios x 2 vol moves, + 4 perps "
            f"({n / secs:,.0f} accounts/s, {n * legs * k / secs / 1e6:.1f} M leg-scenarios/s, "
            f"{secs * 1e6 / n:.1f} s per 1M accounts)",
            secs,
            None,
            traffic / secs / 1e9,
            peak,
            input_bytes,
        )
    )
    del fn, one_chunk

    n, a, s = 100_000 // scale, 16, 10_000
    fn, input_bytes = _es_workload(n, a, s)
    secs = _best_of(fn, 1 if not quick else 2)
    peak = _peak_bytes(fn)
    flops = 2.0 * n * a * s
    traffic = 2.0 * n * s * 8  # loss matrix written by the matmul, read by the partition
    rows.append(
        (
            "Monte Carlo ES (99%)",
            f"{n:,} accounts x {a} assets x {s:,} scenarios",
            secs,
            flops / secs / 1e9,
            traffic / secs / 1e9,
            peak,
            input_bytes,
        )
    )

    n = 1_000_000 // scale
    for greeks in (False, True):
        fn, input_bytes = _options_workload(n, greeks)
        secs = _best_of(fn, 2)
        peak = _peak_bytes(fn)
        # 4 float inputs + the call flag read, 1 or 5 float outputs written
        traffic = n * (4 * 8 + 1 + (5 if greeks else 1) * 8)
        rows.append(
            (
                "Black-76 " + ("price + 4 Greeks" if greeks else "price"),
                f"{n:,} option positions ({n / secs / 1e6:.1f} M/s)",
                secs,
                None,
                traffic / secs / 1e9,
                peak,
                input_bytes,
            )
        )

    lines = [
        "## Risk-engine throughput",
        "",
        f"Roofs measured in this run: GEMM {gemm:.1f} GFLOP/s (float64 2048^3 matmul), memory "
        f"bandwidth {bw:.1f} GB/s (256 MiB copy, read + write). numpy {np.__version__}, "
        f"Python {sys.version.split()[0]}{', quick mode (10x smaller)' if quick else ''}. "
        f"Load average at the start: {load:.1f} on {os.cpu_count()} cores.",
        "",
        "| workload | size | seconds | GFLOP/s | % of GEMM roof | GB/s (min. traffic) | "
        "% of bandwidth roof | peak working memory | inputs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, size, secs, gf, gb, peak, inp in rows:
        flops = "n/a | n/a" if gf is None else f"{gf:.2f} | {100 * gf / gemm:.1f}%"
        lines.append(
            f"| {name} | {size} | {secs:.3f} | {flops} | {gb:.2f} | "
            f"{100 * gb / bw:.1f}% | {peak / 2**20:,.0f} MiB | {inp / 2**20:,.0f} MiB |"
        )
    n, legs, k, secs, floor = option_margin
    lines += [
        "",
        "Minimum traffic: margin = exposures + gross read once; margin with options = each "
        "leg's six inputs (34 bytes) and each account's perp exposure and gross read once, its "
        "MM written once; ES = the (chunk x scenarios) "
        "loss matrix written once and read once by `np.partition`; Black-76 = its five "
        "inputs read and its outputs written once. Black-76 is bound by its transcendental "
        "functions (log, exp, two normal CDFs per position), which a FLOP count does not "
        "describe, so its GEMM columns are empty, as are the option margin's; their share of "
        "the bandwidth roof says how far they are from streaming speed. Peak working memory is "
        "the largest numpy allocation high-water mark during the timed loop (tracemalloc; the "
        f"option margin's: one {OPTION_MARGIN_CHUNK}-account chunk), on top of "
        f"the inputs. Process max RSS: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB.",
        "",
        f"Margin with options: {n * legs:,} legs at {ANCHOR_POINTS} Black-76 points each (the "
        "mark, and price and delta at the three anchor forwards at each vol move) = "
        f"{ANCHOR_POINTS * n * legs / secs / 1e6:.1f} M valuations/s, against "
        f"{1 + 2 * k} per leg for full revaluation. Its roof in this run, the anchor rule's "
        f"transcendental floor (`anchor_floor`: ln K, 2 sqrt and {2 * ANCHOR_POINTS} normal "
        f"CDFs per leg, bare numpy calls on {min(n * legs, 2**20):,} of the legs): "
        f"{floor:.2f} s for the {n * legs:,} legs ({n * legs / floor / 1e6:.2f} M legs/s); "
        f"the workload runs at {secs / floor:.2f}x the floor ({100 * floor / secs:.0f}% of "
        "that roof).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
