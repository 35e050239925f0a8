"""The gas benchmark keeps running against the current contracts (figures: `make bench`).

Loaded by path: a dependency (cchecksum) installs a top-level package also named
`benchmarks`, which `python -m benchmarks` only avoids because it runs from the repo root.
"""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gas.py"
_SPEC = importlib.util.spec_from_file_location("ballast_gas_benchmark", _PATH)
gas = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = gas  # dataclasses look their module up there
_SPEC.loader.exec_module(gas)


def test_gas_benchmark__measures_every_operation(project, accounts, chain):
    rows = gas.measure(project, accounts, chain.provider.web3)
    by_name = {r.operation: r.gas for r in rows}
    assert {"margin(): 4 perps + 2 collateral", "fill: open (both sides new)"} <= set(by_name)
    assert all(r.gas > 21_000 for r in rows)
    # margin() grows with the number of exposed assets
    assert (
        by_name["margin(): 1 perp(s)"]
        < by_name["margin(): 4 perp(s)"]
        < by_name["margin(): 8 perp(s)"]
    )
    assert "each exposed perp costs" in gas.render(rows)


def test_deployables__fit_eip170(project):
    """Every deployable stays under the 24,576-byte runtime code limit (EIP-170)."""
    sizes = gas.bytecode_sizes(project)
    assert set(sizes) == {
        "MarginEngine",
        "MarginConfig",
        "OrderBook",
        "Liquidations",
        "Lens",
        "RiskGovernor",
    }
    assert all(0 < size <= gas.EIP170_LIMIT for size in sizes.values()), sizes
