"""MarginConfig and FundingConfig run by delegatecall against the core's storage: the layouts
must match."""

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
    engine = layout("MarginEngine")
    for name in ("MarginConfig", "FundingConfig"):
        config = layout(name)
        assert engine["storage_layout"] == config["storage_layout"], name
        assert engine["transient_storage_layout"] == config["transient_storage_layout"], name
    # Immutables live in the code that runs, so a delegatecall target may have its own:
    # MarginConfig's one is the address of FundingConfig, its own fallback's target.
    assert set(layout("MarginConfig").get("code_layout", {})) == {"FUNDING"}
    assert layout("FundingConfig").get("code_layout", {}) == {}


def selectors(contract_type) -> set[bytes]:
    return {keccak(text=abi.selector)[:4] for abi in contract_type.abi if abi.type == "function"}


def test_config_selectors__disjoint_from_engine(project):
    """A selector in both would make the config's function unreachable."""
    engine = selectors(project.MarginEngine.contract_type)
    config = selectors(project.MarginConfig.contract_type)
    funding = selectors(project.FundingConfig.contract_type)
    assert config and funding
    assert not (engine & config) and not (engine & funding) and not (config & funding)


def test_engine_fallback__unknown_selector__reverts(engine, owner):
    """The fallback forwards to MarginConfig, whose fallback forwards to FundingConfig,
    whose fallback reverts."""
    import ape

    before = engine.num_assets()
    with ape.reverts():
        owner.transfer(engine, 0, data=b"\xde\xad\xbe\xef")
    assert engine.num_assets() == before
