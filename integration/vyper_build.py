"""Compile Ballast's contracts with the `vyper` command line, cached by source hash.

Standard library only: the integration kit needs `vyper` (which brings Python) and `cast`,
never Ape. The settings are those of `ape-config.yaml` (vyper 0.4.3, EVM cancun, default
optimisation), so the bytecode is byte-for-byte what `ape compile` produces.

The cache is `.build/integration/<hash>.json`, keyed on the compiler version, the EVM
version, the file list and every source under `contracts/`; delete it to force a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVM_VERSION = "cancun"  # ape-config.yaml: vyper.evm_version
COMPILER = "0.4.3"  # ape-config.yaml: vyper.version
# The deployables, in deploy order, and the devnet mocks a local deploy lists.
DEPLOYABLES = (
    "FundingConfig",
    "MarginConfig",
    "MarginEngine",
    "OrderBook",
    "Liquidations",
    "Lens",
    "RiskGovernor",
    "VolFeed",
    "OptionBook",
    "RateSnapshots",
)
MOCKS = ("MockToken", "MockAggregator", "MockVault")


def source_path(name: str) -> Path:
    """contracts/<name>.vy, or contracts/test/<name>.vy for a mock."""
    return Path("contracts") / ("test" if name in MOCKS else "") / f"{name}.vy"


def find_vyper() -> str:
    """`vyper` on PATH, else the one installed beside this Python."""
    beside = Path(sys.executable).parent / "vyper"
    return shutil.which("vyper") or (str(beside) if beside.is_file() else "vyper")


def vyper_version(vyper: str = "vyper") -> str:
    out = subprocess.run([vyper, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _key(names: tuple[str, ...], version: str) -> str:
    h = hashlib.sha256(f"{version}|{EVM_VERSION}|{','.join(names)}".encode())
    for path in sorted((ROOT / "contracts").rglob("*")):
        if path.suffix in (".vy", ".vyi"):
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:24]


def compile_contracts(
    names: tuple[str, ...] = DEPLOYABLES + MOCKS, *, vyper: str | None = None, cache: bool = True
) -> dict[str, dict]:
    """name -> vyper's combined output (abi, bytecode, bytecode_runtime, method_identifiers,
    ...) for each contract, compiled in one `vyper -f combined_json` run."""
    vyper = vyper or find_vyper()
    version = vyper_version(vyper)
    if not version.startswith(COMPILER):
        raise RuntimeError(f"vyper {COMPILER} is required (ape-config.yaml), found {version}")
    path = ROOT / ".build" / "integration" / f"{_key(names, version)}.json"
    if cache and path.is_file():
        return json.loads(path.read_text())
    files = [str(source_path(n)) for n in names]
    proc = subprocess.run(
        [vyper, "-f", "combined_json", "--evm-version", EVM_VERSION, *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"vyper failed:\n{proc.stderr}")
    combined = json.loads(proc.stdout)
    out = {n: combined[f] for n, f in zip(names, files, strict=True)}
    out["version"] = combined["version"]
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(path)
    return out
