"""`python -m benchmarks [--quick] [--skip-gas] [--skip-throughput] [--skip-greeks] [--fuzz]
[--fuzz-baseline REV] [--keeper]`.

Starts a local anvil through Ape, measures gas exactly (the figures go to
benchmarks/gas-snapshot.json, as with `make gas-snapshot`), measures the risk engine's
throughput against this machine's roofs, prints the tables and writes
benchmarks/RESULTS.md. ``--keeper`` runs only the keeper benchmarks on their own anvil
(port 8566): the keeper in process (``--keeper-sizes``), then 1, 2 and 4 worker processes
on a private Redis (``--keeper-workers-sizes``; an empty list keeps that section as it is),
and keeps the other sections.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _previous(title: str) -> str | None:
    """A section of the current RESULTS.md, kept when its benchmark is skipped."""
    if not RESULTS.exists():
        return None
    parts = RESULTS.read_text().split("\n## ")
    for part in parts[1:]:
        if part.startswith(title):
            return ("## " + part).rstrip()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10x smaller throughput run")
    parser.add_argument("--skip-gas", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-greeks", action="store_true", help="keep the option Greeks section")
    parser.add_argument(
        "--fuzz", action="store_true", help="measure the stateful fuzz profiles (revm, titanoboa)"
    )
    parser.add_argument(
        "--fuzz-long-examples",
        type=int,
        default=40,
        help="examples per process for the shortened long-profile measurement on revm",
    )
    parser.add_argument(
        "--fuzz-quick-examples",
        type=int,
        default=None,
        help="measure only the first N examples of the quick profile (default: all of it)",
    )
    parser.add_argument(
        "--fuzz-boa-examples",
        type=int,
        default=4,
        help="examples per process for the same measurement on titanoboa (the ratio)",
    )
    parser.add_argument(
        "--fuzz-baseline",
        default=None,
        help="a git revision: also measure the long profile of the model as it was there",
    )
    parser.add_argument("--keeper", action="store_true", help="only the keeper benchmark")
    parser.add_argument(
        "--keeper-sizes",
        default="1000,10000,100000",
        help="accounts per in-process run (above 10,000: indexed and scanned, no liquidation "
        "run); empty: keep the previous section",
    )
    parser.add_argument(
        "--keeper-workers-sizes",
        default="1000,10000",
        help="accounts per run of 1, 2 and 4 worker processes on Redis; empty: keep the "
        "previous section",
    )
    parser.add_argument("--keeper-port", type=int, default=8566, help="anvil port")
    parser.add_argument(
        "--keeper-liquidate-max",
        type=int,
        default=10_000,
        help="larger books are indexed and scanned only (no liquidation run)",
    )
    args = parser.parse_args()
    if args.keeper:
        args.skip_gas = args.skip_throughput = args.skip_greeks = True

    sections = [
        "# Benchmarks",
        "",
        f"Written by `python -m benchmarks` on {datetime.now(timezone.utc):%Y-%m-%d} "
        f"({platform.machine()}, {platform.python_version()}). Gas is exact; seconds drift on "
        "shared machines, so compare the ratios measured in one run.",
    ]
    if args.skip_gas:
        kept = _previous("Gas")
        sections += ["", kept] if kept else []
    else:
        from ape import accounts, networks, project

        from benchmarks import gas, snapshot

        print("gas: starting anvil and deploying ...", flush=True)
        rows: list = []
        with networks.ethereum.local.use_provider("foundry") as provider:
            new = snapshot.measure(project, accounts.test_accounts, provider, rows_out=rows)
        snapshot.write(new, rows)  # the figures: benchmarks/gas-snapshot.json
        sections += ["", gas.render()]
    if args.skip_throughput:
        kept = _previous("Risk-engine throughput")
        sections += ["", kept] if kept else []
    else:
        from benchmarks import throughput

        print("throughput: measuring roofs and workloads ...", flush=True)
        section = throughput.run(quick=args.quick)
        sections += ["", section]
    if args.skip_greeks:
        kept = _previous("Option Greeks throughput")
        sections += ["", kept] if kept else []
    else:
        from benchmarks import greeks

        print("greeks: 1M option legs against the transcendental roof ...", flush=True)
        sections += ["", greeks.run(quick=args.quick)]
    if args.fuzz:
        from benchmarks import fuzz

        section = fuzz.run(
            long_examples=args.fuzz_long_examples,
            boa_examples=args.fuzz_boa_examples,
            quick_examples=args.fuzz_quick_examples,
            baseline=args.fuzz_baseline,
        )
        print(section, flush=True)
        sections += ["", section]
    else:
        kept = _previous("Fuzz throughput")
        sections += ["", kept] if kept else []
    if args.keeper:
        from benchmarks import keeper, keeper_workers

        sizes = [int(x) for x in args.keeper_sizes.split(",") if x]
        worker_sizes = [int(x) for x in args.keeper_workers_sizes.split(",") if x]
        runs, worker_runs = _keeper_runs(args.keeper_port, sizes, worker_sizes, args)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        if sizes:
            synthetic = [keeper.synthetic_scan(n) for n in (10_000, 100_000)]
            section = keeper.render(
                runs, load=f"load average {load} (1, 5, 15 min) at the end", synthetic=synthetic
            )
            print(section, flush=True)
            sections += ["", section]
        else:
            kept = _previous("Keeper (anvil)")
            sections += ["", kept] if kept else []
        if worker_sizes:
            section = keeper_workers.render(
                worker_runs, load=f"load average {load} (1, 5, 15 min) at the end"
            )
            print(section, flush=True)
            sections += ["", section]
        else:
            kept = _previous("Keeper workers")
            sections += ["", kept] if kept else []
    else:
        for title in ("Keeper (anvil)", "Keeper workers"):
            kept = _previous(title)
            sections += ["", kept] if kept else []
    RESULTS.write_text("\n".join(sections) + "\n")
    print(f"wrote {RESULTS}")


def _keeper_runs(port: int, sizes: list[int], worker_sizes: list[int], args) -> tuple:
    """The in-process keeper runs on one anvil of ours (the one Ape starts records step
    traces of every transaction, which for 100-account seeding transactions runs the
    machine out of memory), then the worker processes' runs, each on its own anvil on
    ``port + 1`` loaded from the cached seeded chain."""
    from ape import accounts, networks, project

    from benchmarks import keeper, keeper_workers

    print(f"keeper: anvil on port {port}, sizes {sizes}, workers {worker_sizes} ...", flush=True)
    runs = []
    if sizes:
        node = keeper.start_anvil(port, *keeper_workers.ANVIL_OPTS)
        try:
            with networks.ethereum.local.use_provider(
                "foundry",
                provider_settings={"host": f"http://127.0.0.1:{port}", "manage_process": False},
            ) as provider:
                runs = keeper.measure(
                    project,
                    accounts.test_accounts,
                    provider.web3,
                    sizes,
                    args.keeper_liquidate_max,
                    node_pid=node.pid,
                )
        finally:
            node.terminate()
            node.wait(10)
    worker_runs = keeper_workers.measure(
        project, accounts.test_accounts, worker_sizes, port=port + 1
    )
    return runs, worker_runs


if __name__ == "__main__":
    main()
