"""The committed gas snapshot: operation -> gas, deployable -> runtime bytes, and the compiler.

    make gas-snapshot          # python -m benchmarks.snapshot: measure and rewrite the file

The operations are those of `benchmarks/gas.py` (the figures `make bench` explains in
RESULTS.md). Gas is deterministic once the inputs are: the measurement starts from a fixed
deployer nonce, so every contract address (and so every calldata byte) is the same however
much the chain did before, and at the start of a fresh risk-governor window, so no
rate-limit bucket rolls over in the middle. `tests/contracts/test_benchmarks.py` measures
again and fails on any difference.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any


def _load_gas() -> Any:
    """benchmarks/gas.py by path: a dependency (cchecksum) installs a top-level package also
    named `benchmarks`, which can shadow this one inside pytest."""
    name = "ballast_gas_benchmark"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("gas.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


gas = _load_gas()

SNAPSHOT = Path(__file__).resolve().parent / "gas-snapshot.json"
# The deployer's nonce when measuring starts: above anything a test session reaches, so
# the addresses are fresh and the same in every run.
DEPLOYER_NONCE = 1_000_000
GOVERNOR_WINDOW = 3_600  # devnet.GOVERNOR_LIMITS[0]


def compiler(project: Any) -> dict[str, str]:
    """The compiler of the measured bytecode, from Ape's project manifest."""
    for c in project.manifest.compilers or []:
        if "MarginEngine" in (c.contractTypes or []):
            settings = c.settings or {}
            return {
                "name": c.name,
                "version": str(c.version),
                "evm_version": str(settings.get("evmVersion", "")),
                "optimize": str(settings.get("optimize", "")),
            }
    raise RuntimeError("no compiler recorded for MarginEngine: run `ape compile`")


def _fix_start(provider: Any, deployer: Any) -> None:
    """Same addresses and a fresh governor window in every run."""
    provider.make_request("anvil_setNonce", [str(deployer.address), hex(DEPLOYER_NONCE)])
    now = provider.get_block("latest").timestamp
    start = (now // GOVERNOR_WINDOW + 1) * GOVERNOR_WINDOW + 1
    provider.make_request("evm_setNextBlockTimestamp", [start])
    provider.make_request("evm_mine", [])


def measure(project: Any, accounts: Any, provider: Any, rows_out: list | None = None) -> dict:
    """The snapshot as a dict: compiler, runtime bytecode sizes, gas per operation (the
    measured rows, with their notes, are appended to ``rows_out``)."""
    _fix_start(provider, accounts[0])
    rows = gas.measure(project, accounts, provider.web3)
    if rows_out is not None:
        rows_out.extend(rows)
    by_name: dict[str, int] = {}
    for row in rows:
        if row.operation in by_name:
            raise ValueError(f"operation measured twice: {row.operation!r}")
        by_name[row.operation] = row.gas
    return {
        "compiler": compiler(project),
        "bytecode_bytes": gas.bytecode_sizes(project),
        "gas": by_name,
    }


def dumps(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=2) + "\n"


def load(path: Path = SNAPSHOT) -> dict:
    return json.loads(path.read_text())


def diff(old: dict, new: dict) -> list[str]:
    """Every figure that moved, appeared or disappeared, one line each."""
    lines = []
    if old.get("compiler") != new.get("compiler"):
        lines.append(f"compiler: {old.get('compiler')} -> {new.get('compiler')}")
    for section in ("bytecode_bytes", "gas"):
        a, b = old.get(section, {}), new.get(section, {})
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) != b.get(key):
                before = "absent" if key not in a else f"{a[key]:,}"
                after = "absent" if key not in b else f"{b[key]:,}"
                change = ""
                if key in a and key in b:
                    change = f" ({b[key] - a[key]:+,})"
                lines.append(f"{section}: {key}: {before} -> {after}{change}")
    return lines


def write(new: dict, rows: list) -> None:
    """Rewrite the snapshot; print what moved and this run's margin() breakdown."""
    old = load() if SNAPSHOT.exists() else {}
    changes = diff(old, new)
    SNAPSHOT.write_text(dumps(new))
    print("\n".join(changes) if changes else "no figure moved")
    print(gas.breakdown(rows))
    print(f"wrote {SNAPSHOT}")


def main() -> None:
    from ape import accounts, networks, project
    from ape.logging import logger

    logger.set_level("WARNING")  # not a line per transaction
    rows: list = []
    with networks.ethereum.local.use_provider("foundry") as provider:
        new = measure(project, accounts.test_accounts, provider, rows_out=rows)
    write(new, rows)


if __name__ == "__main__":
    main()
