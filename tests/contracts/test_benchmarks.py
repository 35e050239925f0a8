"""The gas figures and bytecode sizes are those of benchmarks/gas-snapshot.json.

Gas is deterministic, so it is kept like code: a change that moves a figure must move the
snapshot too (`make gas-snapshot` rewrites it; the diff shows what moved). The operations
are those of benchmarks/gas.py, whose prose in RESULTS.md explains them.

Loaded by path: a dependency (cchecksum) installs a top-level package also named
`benchmarks`, which `python -m benchmarks` only avoids because it runs from the repo root.
"""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "snapshot.py"
_SPEC = importlib.util.spec_from_file_location("ballast_gas_snapshot", _PATH)
snapshot = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = snapshot
_SPEC.loader.exec_module(snapshot)
gas = snapshot.gas

REGENERATE = "run `make gas-snapshot` and commit benchmarks/gas-snapshot.json"


def test_gas_snapshot__measured_figures__match_the_committed_snapshot(project, accounts, chain):
    measured = snapshot.measure(project, accounts, chain.provider)
    moved = snapshot.diff(snapshot.load(), measured)
    assert moved == [], "gas snapshot out of date; " + REGENERATE + ":\n" + "\n".join(moved)


def test_gas_snapshot__diff__names_every_moved_figure():
    old = {"compiler": {"version": "0.4.3"}, "bytecode_bytes": {"A": 10}, "gas": {"x": 100}}
    new = {"compiler": {"version": "0.4.3"}, "bytecode_bytes": {"A": 12}, "gas": {"y": 5}}
    assert snapshot.diff(old, new) == [
        "bytecode_bytes: A: 10 -> 12 (+2)",
        "gas: x: 100 -> absent",
        "gas: y: absent -> 5",
    ]
    assert snapshot.diff(old, old) == []


def test_deployables__fit_eip170(project):
    """Every deployable stays under the 24,576-byte runtime code limit (EIP-170)."""
    sizes = gas.bytecode_sizes(project)
    assert set(sizes) == {
        "MarginEngine",
        "MarginConfig",
        "FundingConfig",
        "OrderBook",
        "Liquidations",
        "Lens",
        "RiskGovernor",
        "VolFeed",
        "OptionBook",
        "RateSnapshots",
    }
    assert set(sizes) == set(snapshot.load()["bytecode_bytes"])
    assert all(0 < size <= gas.EIP170_LIMIT for size in sizes.values()), sizes
