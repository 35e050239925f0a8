"""integration/eip712.json signs what the contracts verify: its typed data hashes to the
digest the order book, the risk governor and the vol feed compute on chain."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account.messages import encode_typed_data
from eth_utils import keccak

from offchain_risk import devnet

TYPED = json.loads((Path(__file__).resolve().parents[2] / "integration/eip712.json").read_text())


def digest(name: str, chain_id: int, verifying: str, message: dict) -> bytes:
    m = TYPED["messages"][name]
    signable = encode_typed_data(
        full_message={
            "types": m["types"],
            "primaryType": m["primaryType"],
            "domain": {**m["domain"], "chainId": chain_id, "verifyingContract": verifying},
            "message": message,
        }
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def test_eip712_json__vol_update__hashes_as_on_chain(project, accounts, chain):
    feed = project.VolFeed.deploy(list(accounts[5:8]), 2, sender=accounts[0])
    update = {
        "underlying": 1,
        "expiry": 1_800_000_000 // 86_400 * 86_400 + 8 * 3_600,
        "atm_vol": 55 * 10**16,
        "skew": -(10**17),
        "curvature": 4 * 10**17,
        "forward": 60_000 * 10**18,
        "observed_at": 1_700_000_000,
        "nonce": 3,
        "deadline": 2**40,
    }
    expected = digest("VolUpdate", chain.chain_id, str(feed.address), update)
    view = getattr(feed, TYPED["messages"]["VolUpdate"]["digest_view"])
    assert bytes(view(tuple(update.values()))) == expected


def test_eip712_json__order_and_risk_update__hash_as_on_chain(project, accounts, chain):
    d = devnet.deploy(project, accounts[0])
    governor = devnet.deploy_governor(project, d, accounts[0], list(accounts[5:8]), 2)
    order = {
        "owner": str(accounts[2].address),
        "subaccount": 3,
        "market": 1,
        "size": -5 * 10**18,
        "price": 60_000 * 10**18,
        "nonce": 7,
        "expiry": 2**40,
    }
    expected = digest("Order", chain.chain_id, str(d.book.address), order)
    view = getattr(d.book, TYPED["messages"]["Order"]["digest_view"])
    assert bytes(view(tuple(order.values()))) == expected

    update = {
        "assets": [0, 2],
        "shocks": [2**200 + 5, 17],
        "floors": [100, 200],
        "haircuts": [200, 0],
        "im_multiplier": 3 * 10**18 // 2,
        "min_discount": 2 * 10**16,
        "max_discount": 10**17,
        "nonce": 0,
        "deadline": 2**40,
    }
    expected = digest("RiskUpdate", chain.chain_id, str(governor.address), update)
    view = getattr(governor, TYPED["messages"]["RiskUpdate"]["digest_view"])
    assert bytes(view(tuple(update.values()))) == expected
    assert TYPED["EIP712Domain"]["typehash"] == "0x" + keccak(
        text=TYPED["EIP712Domain"]["type"]
    ).hex().removeprefix("0x")
    # ERC-5267: fields 0x0f = name, version, chainId, verifyingContract (the kit's domain type)
    fields, name, version, chain_id, verifying, _, _ = d.book.eip712Domain()
    assert (bytes(fields), name, version, chain_id) == (b"\x0f", "Ballast", "1", chain.chain_id)
    assert verifying == d.book.address
