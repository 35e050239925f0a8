"""Struct returns decoded with the compiled ABI, by field name (no hand-written tuple
strings read by position)."""

from __future__ import annotations

import pytest
from eth_abi import encode

from offchain_risk.keeper.rpc import decode_output, encode_call

MARGIN = [
    {"name": "equity", "type": "int256"},
    {"name": "mm", "type": "uint256"},
    {"name": "im", "type": "uint256"},
    {"name": "prices_ok", "type": "bool"},
    {"name": "flow", "type": "int256"},
]


class Contract:
    def __init__(self, outputs: list[dict]):
        self.abi = [{"type": "function", "name": "healths", "inputs": [], "outputs": outputs}]


def test_decode_output__struct_array__dicts_by_field_name():
    engine = Contract([{"name": "", "type": "tuple[]", "components": MARGIN}])
    raw = encode(
        ["(int256,uint256,uint256,bool,int256)[]"], [[(-5, 7, 9, True, 0), (1, 2, 3, False, 4)]]
    )
    assert decode_output(engine, "healths", raw) == [
        {"equity": -5, "mm": 7, "im": 9, "prices_ok": True, "flow": 0},
        {"equity": 1, "mm": 2, "im": 3, "prices_ok": False, "flow": 4},
    ]


def test_decode_output__struct_reordered_on_chain__fields_follow_the_abi():
    """A struct whose fields moved decodes by name: equity is still equity."""
    moved = [MARGIN[1], MARGIN[0], *MARGIN[2:]]
    engine = Contract([{"name": "", "type": "tuple[]", "components": moved}])
    raw = encode(["(uint256,int256,uint256,bool,int256)[]"], [[(7, -5, 9, True, 0)]])
    assert decode_output(engine, "healths", raw)[0]["equity"] == -5


def test_decode_output__unknown_function__clear_error():
    with pytest.raises(ValueError, match="not one function"):
        decode_output(Contract([]), "margin", b"")


def _web3_contract(name: str, address: str):
    import json
    from pathlib import Path

    from web3 import Web3

    data = json.loads(
        (Path(__file__).resolve().parents[2] / "integration" / "abi" / f"{name}.json").read_text()
    )
    abi = data["abi"] if isinstance(data, dict) else data
    return Web3().eth.contract(address=Web3.to_checksum_address(address), abi=abi)


@pytest.mark.parametrize(
    ("name", "fn", "args"),
    [
        ("MarginEngine", "num_assets", ()),
        ("MarginEngine", "liquidation_price", (3,)),
        ("MarginEngine", "healths", ([1, 2**200, 2**256 - 1],)),
        ("Liquidations", "liquidation_preview", (2**160 + 7, 10**18)),
        ("Liquidations", "liquidate", (5, 2**170, 10**17, 123 * 10**18)),
        ("Lens", "asset_config", (2,)),
    ],
)
def test_encode_call__same_calldata_as_web3(name, fn, args):
    contract = _web3_contract(name, "0x" + "11" * 20)
    assert encode_call(contract, fn, args) == contract.encode_abi(fn, args=args)
    assert encode_call(contract, fn, args) == contract.encode_abi(fn, args=args)  # cached


def test_encode_call__unknown_function_or_bad_argument__clear_error():
    contract = _web3_contract("MarginEngine", "0x" + "11" * 20)
    with pytest.raises(ValueError, match="not one function"):
        encode_call(contract, "no_such_function", ())
    with pytest.raises(Exception, match="cannot be encoded"):
        encode_call(contract, "liquidation_price", (-1,))
