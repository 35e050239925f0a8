"""Throughput of the stateful fuzz model (tests/fuzz/ballast_machine.py), on revm and on
titanoboa side by side in one run.

A step is one rule of the state machine followed by every invariant. Each measurement runs
in `processes` worker processes (one per core), each with its own EVM and its own
hypothesis seed; deployment (compilation, or reading the compile cache) is timed apart and
left out of the rate. Distinct states are the distinct values of
`BallastMachine.signature()` (per trader: sign of cash, long / short per market,
collateral held, health band; deficit open; which prices are valid), merged over the
workers. A cProfile of a short revm run splits a step's time into the EVM, ABI coding, the
numpy twin, signing and hypothesis itself: what bounds the rate.
"""

from __future__ import annotations

import cProfile
import multiprocessing as mp
import os
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parents[1] / "tests" / "fuzz"
TARGET_PER_HOUR = 1_000_000  # steps, long profile, 2 cores
QUICK_TARGET = 50_000  # steps of the quick profile inside `make test`


def baseline_dir(rev: str) -> Path:
    """tests/fuzz as it was at git revision `rev`, extracted under .cache/ (flat, so its
    modules find contracts/ where they expect it), to measure against in the same run."""
    import subprocess

    root = FUZZ_DIR.parents[1]
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    out = root / ".cache" / f"fuzz-{sha}"
    if not (out / "ballast_machine.py").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "tests/fuzz"], cwd=root, check=True, capture_output=True
        ).stdout
        subprocess.run(
            ["tar", "-x", "--strip-components=2", "-C", str(out)], input=archive, check=True
        )
    return out


def _import_machine(backend: str, fuzz_dir: Path = FUZZ_DIR, profile: str = "long"):
    """The model of ``fuzz_dir`` on ``backend``, as ``profile`` runs it (the long campaign
    checks the invariants after every step, the quick profile after one in INVARIANT_EVERY):
    imported once per spawned worker process."""
    os.environ["FUZZ_PROFILE"] = profile
    for path in (str(fuzz_dir), str(FUZZ_DIR.parent)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["FUZZ_BACKEND"] = backend
    import ballast_machine as bm

    bm.BACKEND = backend
    return bm


def _settings(examples: int, steps: int, derandomize: bool = False):
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
    )


def _deploy(bm) -> None:
    """The stacks the profile's machines run on (the hostile one from the mix on)."""
    bm.stack()
    if hasattr(bm, "mix"):
        bm.stack(hostile=True)


def _run_mix(bm, examples: int, steps: int, derandomize: bool = False) -> None:
    """The profile's mix of machines (with options, hostile), as test_stateful.py runs it;
    a baseline model older than the mix runs its one machine."""
    from hypothesis.stateful import run_state_machine_as_test

    machines = bm.mix(examples) if hasattr(bm, "mix") else [(bm.BallastMachine, examples)]
    for machine, n in machines:
        run_state_machine_as_test(machine, settings=_settings(n, steps, derandomize))


def _worker(args: tuple[str, int, int, bool, Path, str]) -> dict:
    backend, examples, steps, derandomize, fuzz_dir, profile = args
    bm = _import_machine(backend, fuzz_dir, profile)
    t0 = time.perf_counter()
    _deploy(bm)
    deploy_s = time.perf_counter() - t0
    # Not derandomized unless asked (the quick profile is): each spawned worker draws its
    # own hypothesis seed.
    t0, c0 = time.perf_counter(), time.process_time()
    _run_mix(bm, examples, steps, derandomize)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,  # this process's CPU time: what the load leaves out
        "deploy": deploy_s,
        "steps": bm.STEPS[0],
        "states": set(bm.STATES),
        "stats": Counter(bm.STATS),
        "every": getattr(bm, "INVARIANT_EVERY", 1),
    }


def measure(
    backend: str,
    examples: int,
    steps: int,
    processes: int,
    derandomize: bool = False,
    fuzz_dir: Path = FUZZ_DIR,
    profile: str = "long",
) -> dict:
    """Run `processes` workers of `examples` x `steps` each, in parallel (the model of
    `fuzz_dir`: this tree's, or a baseline's), as `profile` runs them."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        results = pool.map(
            _worker,
            [(backend, examples, steps, derandomize, fuzz_dir, profile)] * processes,
        )
    states: set = set().union(*(r["states"] for r in results))
    stats: Counter = sum((r["stats"] for r in results), Counter())
    wall = max(r["seconds"] for r in results)
    total = sum(r["steps"] for r in results)
    return {
        "backend": backend,
        "examples": examples,
        "steps_per_example": steps,
        "steps": total,
        "wall": wall,
        "rate": total / wall,
        "per_process": [r["steps"] / r["seconds"] for r in results],
        # CPU milliseconds per step (the EVM runs in process, so it counts): on a machine
        # shared with other work the wall rate measures the load; this measures the model.
        "cpu_ms": 1000 * sum(r["cpu"] for r in results) / total,
        "deploy": max(r["deploy"] for r in results),
        "states": len(states),
        "stats": stats,
        "load": os.getloadavg()[0],
        "every": results[0]["every"],
    }


# Where a step's time goes: cProfile's cumulative time of these, by function name.
BUCKETS = (
    ("EVM (revm message_call)", "message_call", "~"),
    ("numpy twin (margin_exact)", "margin_exact", "margin.py"),
    ("order and update signing (eth_account)", "sign_message", "local.py"),
)


def _profile_worker(args: tuple[int, int]) -> dict:
    examples, steps = args
    bm = _import_machine("revm")
    _deploy(bm)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    _run_mix(bm, examples, steps)
    profiler.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    out: dict = {"wall": wall, "steps": bm.STEPS[0]}
    calls = 0
    by_name: dict[str, float] = {}
    for (file, _, name), (_, ncalls, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "call" and file.endswith("revm_env.py"):
            by_name["abi+evm"] = by_name.get("abi+evm", 0) + cum
            calls += ncalls
        if name == "check_invariants":  # the model's (every INVARIANT_EVERY steps)
            by_name["invariants"] = by_name.get("invariants", 0) + cum
        if name == "__call__" and file.endswith("revm_env.py"):
            by_name["contract calls"] = by_name.get("contract calls", 0) + cum
        for label, fn, where in BUCKETS:
            if fn in name and file.endswith(where):
                by_name[label] = by_name.get(label, 0) + cum
    out["by_name"] = by_name
    out["calls"] = calls
    return out


def profile(examples: int = 10, steps: int = 100) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_profile_worker, ((examples, steps),))


def run(
    long_examples: int = 40,
    boa_examples: int = 4,
    quick_examples: int | None = None,
    baseline: str | None = None,
) -> str:
    """The quick profile (one process, as `make test` runs it; its first `quick_examples`
    when given, the same derandomised examples), the long profile
    shortened to `long_examples` examples per process on two processes, on revm; the same
    long profile on titanoboa shortened to `boa_examples` per process, in the same run for
    the ratio; with `baseline` (a git revision), the same long run of the model as it was
    there, right after this tree's (before and after under the same load); and a cProfile of
    a short revm run."""
    sys.path.insert(0, str(FUZZ_DIR))
    from ballast_machine import PROFILES

    quick_profile, long_profile = PROFILES["quick"], PROFILES["long"]
    qe = min(quick_examples or quick_profile[0], quick_profile[0])
    print(f"fuzz: quick profile, {qe} x {quick_profile[1]} on revm, 1 process ...", flush=True)
    quick = measure("revm", qe, quick_profile[1], processes=1, derandomize=True, profile="quick")
    # hypothesis ends some examples early: scale the steps actually run per example.
    quick["full_steps"] = round(quick["steps"] / qe * quick_profile[0])
    print(f"fuzz: long profile, {long_examples} x {long_profile[1]} x 2 on revm ...", flush=True)
    long = measure("revm", long_examples, long_profile[1], processes=2)
    base = None
    if baseline:
        print(f"fuzz: the same on revm, the model at {baseline} ...", flush=True)
        base = measure(
            "revm", long_examples, long_profile[1], processes=2, fuzz_dir=baseline_dir(baseline)
        )
        base["rev"] = baseline
    print(f"fuzz: long profile, {boa_examples} x {long_profile[1]} x 2 on titanoboa ...")
    boa = measure("boa", boa_examples, long_profile[1], processes=2)
    print("fuzz: cProfile of the long profile, 10 x 100 steps on revm ...", flush=True)
    prof = profile()
    return render(quick, long, boa, prof, quick_profile, long_profile, base)


def render(
    quick: dict,
    long: dict,
    boa: dict,
    prof: dict,
    quick_profile: tuple,
    long_profile: tuple,
    base: dict | None = None,
) -> str:
    qe, qs = quick_profile
    le, ls = long_profile

    def row(name: str, r: dict, how: str) -> str:
        return (
            f"| {name} | {how} | {len(r['per_process'])} | {r['steps']:,} | {r['wall']:.0f} | "
            f"{r['rate']:.1f} | {r['rate'] * 3600:,.0f} | {r['states']:,} |"
        )

    ratio = long["rate"] / boa["rate"]
    lines = [
        "## Fuzz throughput",
        "",
        "`python -m benchmarks --fuzz`: the stateful model of tests/fuzz/ballast_machine.py. A "
        "step is one rule; every invariant runs after "
        + _every(long["every"])
        + " in the long profile and after "
        + _every(quick["every"])
        + " in the quick one (INVARIANT_EVERY), and after each example's last, on everything "
        "the steps since the last check touched (the twin against the contract on the "
        "accounts touched, on all after a price, parameter or clock move and about every 10 "
        "steps; per-token conservation, deficit and "
        "positions whenever balances were re-read; bounds and the window budget on every "
        "parameter read; a well-funded liquidator can liquidate every liquidatable account). "
        "Each run is its profile's mix of machines (`mix` in ballast_machine.py), as "
        "tests/fuzz/test_stateful.py runs it: of N examples, one in four trades options "
        "(`OptionsMachine`), the rest do not (`BallastMachine`), and N / 8 more list the "
        "hostile tokens (`HostileMachine`). Deployment is timed apart. revm and titanoboa "
        "measured in the same run, one after the other.",
        "",
        "| profile | run | processes | steps | wall seconds | steps/s | steps/hour | "
        "distinct states |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        row(
            "quick (`make test`), revm",
            quick,
            f"{quick['examples']} examples x {qs} steps"
            + (" (in full)" if quick["examples"] == qe else f" (the full run: {qe} x {qs})"),
        ),
        row(
            "long (`make fuzz`), revm",
            long,
            f"{long['examples']} examples x {ls} steps per process (the full run: {le} x {ls})",
        ),
        row(
            "long, titanoboa (`FUZZ_BACKEND=boa`)",
            boa,
            f"{boa['examples']} examples x {ls} steps per process",
        ),
        *(
            [
                row(
                    f"long, revm, the model at `{base['rev']}`",
                    base,
                    f"{base['examples']} examples x {ls} steps per process",
                )
            ]
            if base
            else []
        ),
        "",
        f"**revm / titanoboa: {ratio:.1f}x** on the same steps (long profile, 2 processes "
        f"each). Per-process rates: revm {', '.join(f'{r:.1f}' for r in long['per_process'])}; "
        f"titanoboa {', '.join(f'{r:.1f}' for r in boa['per_process'])} steps/s. Deployment "
        f"(from the compile cache) {long['deploy']:.1f} s per revm process, "
        f"{boa['deploy']:.0f} s per titanoboa process. Steps/hour is the measured rate times "
        "3,600 (each example starts from the same snapshot, so the rate does not depend on "
        "the run's length); distinct states are not extrapolated, they grow sub-linearly, "
        "and are counted when the invariants run (a model older than INVARIANT_EVERY counts "
        "them after every step, and one step more per example). "
        f"1-minute load average at the end of each run: quick {quick['load']:.1f}, long revm "
        f"{long['load']:.1f}, titanoboa {boa['load']:.1f}, on {os.cpu_count()} cores"
        + (
            ": other processes share this machine, so the absolute rates are low; the ratio "
            "is measured side by side."
            if max(quick["load"], long["load"], boa["load"]) > (os.cpu_count() or 1) + 0.5
            else " (the machine otherwise idle)."
        ),
        "",
        _against_targets(quick, long),
        "",
        *(
            [
                f"**This model / the model at `{base['rev']}`: "
                f"{long['rate'] / base['rate']:.2f}x** ({base['rate'] * 3600:,.0f} -> "
                f"{long['rate'] * 3600:,.0f} steps/hour, measured one after the other in "
                f"this run; load {base['load']:.1f} at the end of the baseline's).",
                "",
            ]
            if base
            else []
        ),
        _where_time_goes(prof),
        "",
        "What the steps did (revm, both profiles):",
        "",
    ]
    stats = quick["stats"] + long["stats"]
    lines += [f"- {k}: {v:,}" for k, v in sorted(stats.items())]
    return "\n".join(lines)


def _every(n: int) -> str:
    return "every step" if n == 1 else f"one step in {n}"


def _against_targets(quick: dict, long: dict) -> str:
    per_hour = long["rate"] * 3600
    verdict = (
        f"**Long profile: target met** ({per_hour:,.0f} >= {TARGET_PER_HOUR:,} steps/hour on "
        "2 cores)."
        if per_hour >= TARGET_PER_HOUR
        else f"**Long profile: target missed by {TARGET_PER_HOUR / per_hour:.1f}x** "
        f"({per_hour:,.0f} steps/hour against {TARGET_PER_HOUR:,} on 2 cores)."
    )
    budget = 2 * 3600 * 1000 / TARGET_PER_HOUR
    per_step = 1000 / (long["rate"] / len(long["per_process"]))
    full = quick["full_steps"]
    minutes = full / quick["rate"] / 60
    quick_verdict = (
        f"Quick profile: {full:,} steps ({'>=' if full >= QUICK_TARGET else '<'} "
        f"{QUICK_TARGET:,}), {minutes:.1f} min at the rate measured here"
        + ("" if quick["steps"] >= full else " (extrapolated from the shortened run)")
        + "; `make test` runs it in the offline process beside the anvil suites."
    )
    cpu_rate = 2 * 3600 * 1000 / long["cpu_ms"]
    return (
        f"{verdict} The target is {budget:.1f} ms per step per core; a step costs "
        f"{per_step:.1f} ms of wall time here and {long['cpu_ms']:.1f} ms of CPU time: two "
        f"cores given wholly to the campaign would run {cpu_rate:,.0f} steps/hour "
        f"({'at or above' if cpu_rate >= TARGET_PER_HOUR else 'below'} the target). "
        f"{quick_verdict}"
    )


def _where_time_goes(prof: dict) -> str:
    wall, steps = prof["wall"], prof["steps"]
    by = prof["by_name"]
    ms = lambda s: 1000 * s / steps  # noqa: E731
    evm = by.get("EVM (revm message_call)", 0)
    coding = by.get("contract calls", 0) - evm
    twin = by.get("numpy twin (margin_exact)", 0)
    signing = by.get("order and update signing (eth_account)", 0)
    rest = wall - by.get("contract calls", 0) - twin - signing
    return (
        f"Where a step goes (cProfile of {steps:,} revm steps of the long profile, one process; "
        "profiling slows it "
        f"to {ms(wall):.1f} ms a step): EVM {ms(evm):.2f} ms ({prof['calls'] / steps:.0f} "
        f"contract calls a step), ABI coding and the call wrapper {ms(coding):.2f} ms, the "
        f"numpy twin {ms(twin):.2f} ms, EIP-712 signing {ms(signing):.2f} ms, hypothesis and "
        f"the model's Python {ms(rest):.2f} ms (the invariants, calls included, take "
        f"{ms(by.get('invariants', 0)):.2f} ms). The EVM is no longer the bound: the floor of "
        "this design is the Python around it: hypothesis drawing a rule and its arguments, "
        "the model's bookkeeping, and the twin's exact integer arithmetic on object arrays."
    )
