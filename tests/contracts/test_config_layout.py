"""MarginConfig runs by delegatecall against the core's storage: the layouts must match."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[2]
VYPER = Path(sys.executable).with_name("vyper")


def layout(name: str) -> dict:
    out = subprocess.run(
        [
            str(VYPER),
            "-p",
            str(ROOT),
            "-p",
            str(Path(importlib.util.find_spec("snekmate").submodule_search_locations[0]).parent),
            "-f",
            "layout",
            str(ROOT / "contracts" / f"{name}.vy"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_config_layout__equals_engine_storage_layout():
    engine, config = layout("MarginEngine"), layout("MarginConfig")
    assert engine["storage_layout"] == config["storage_layout"]
    assert engine["transient_storage_layout"] == config["transient_storage_layout"]
    assert config.get("code_layout", {}) == {}  # no immutables that delegatecall would miss


def selectors(contract_type) -> set[bytes]:
    return {keccak(text=abi.selector)[:4] for abi in contract_type.abi if abi.type == "function"}


def test_config_selectors__disjoint_from_engine(project):
    """A selector in both would make the config's function unreachable."""
    engine = selectors(project.MarginEngine.contract_type)
    config = selectors(project.MarginConfig.contract_type)
    assert config and not (engine & config)


def test_engine_fallback__unknown_selector__reverts(engine, owner):
    """The fallback forwards to MarginConfig, which has no fallback of its own."""
    import ape

    before = engine.num_assets()
    with ape.reverts():
        owner.transfer(engine, 0, data=b"\xde\xad\xbe\xef")
    assert engine.num_assets() == before
