"""The integration kit's committed files (`make abi`) match the contracts' sources.

Compiles with the `vyper` command line (cached in .build/integration); no node needed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration"))
import make_abi  # noqa: E402
import vyper_build  # noqa: E402


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return make_abi.render()


def test_make_abi__committed_output__is_up_to_date(files):
    assert make_abi.stale(files) == [], "run `make abi` and commit integration/"


def test_make_abi__compiler_settings__match_ape_config():
    config = (ROOT / "ape-config.yaml").read_text()
    assert re.search(rf"version: {re.escape(vyper_build.COMPILER)}\b", config)
    assert re.search(rf"evm_version: {vyper_build.EVM_VERSION}\b", config)


def test_engine_abi__merges_margin_config_setters_and_events(files):
    engine = json.loads(files["abi/MarginEngine.json"])
    functions = {i["name"] for i in engine if i["type"] == "function"}
    events = {i["name"] for i in engine if i["type"] == "event"}
    assert {"deposit", "margin", "healths"} <= functions  # the core's
    assert {"list_asset", "set_shocks", "set_venue", "set_liquidator"} <= functions  # config's
    assert "AssetListed" in events  # logged by the engine's address when list_asset runs
    names = [i["name"] for i in engine if i["type"] == "function"]
    assert len(names) == len(set(names)), "a selector would exist twice"


def test_solidity_interfaces__name_every_struct(files):
    engine = files["solidity/IMarginEngine.sol"]
    assert "struct Margin {" in engine
    assert "returns (Margin[] memory)" in engine  # healths
    book = files["solidity/IOrderBook.sol"]
    assert "function fill(Order calldata order, bytes calldata signature" in book
    governor = files["solidity/IRiskGovernor.sol"]
    assert "function submit(RiskUpdate calldata update, bytes[] calldata signatures)" in governor
    assert not any("tuple" in text for name, text in files.items() if name.endswith(".sol"))


def test_eip712__type_strings_and_hashes__match_the_sources(files):
    typed = json.loads(files["eip712.json"])
    order = typed["messages"]["Order"]
    assert order["type"] == (
        "Order(address owner,uint256 subaccount,uint256 market,int256 size,uint256 price,"
        "uint256 nonce,uint256 expiry)"
    )
    assert order["domain"] == {"name": "Ballast", "version": "1"}
    assert order["digest_view"] == "order_digest"
    risk = typed["messages"]["RiskUpdate"]
    assert risk["domain"] == {"name": "Ballast Risk", "version": "1"}
    assert risk["digest_view"] == "update_digest"
    vol = typed["messages"]["VolUpdate"]
    assert vol["contract"] == "VolFeed"
    assert vol["domain"] == {"name": "Ballast Vol", "version": "1"}
    assert vol["digest_view"] == "update_digest"
    for name, m in typed["messages"].items():
        source = (ROOT / vyper_build.source_path(m["contract"])).read_text()
        assert f'"{m["type"]}"' in source, name
        assert m["typehash"] == "0x" + make_abi.keccak256(m["type"].encode()).hex()
        assert m["primaryType"] == name and name in m["types"]


def test_struct_name__unknown_tuple__is_an_error():
    tuple_abi = {"type": "tuple", "components": [{"name": "nothing_like_it", "type": "bool"}]}
    with pytest.raises(ValueError, match="matches structs none"):
        make_abi.struct_name(tuple_abi, "OrderBook", make_abi.source_structs())
