"""rpc_batch against a node that caps its batches: chunks, order, refusals."""

from __future__ import annotations

import random

import pytest

from offchain_risk.keeper.rpc import BATCH_LIMIT, RpcError, rpc_batch


class CappedNode:
    """A provider that refuses a whole batch above ``cap`` requests, as anvil does once a
    batch's body is too large, and answers in any order with its own running ids."""

    def __init__(self, cap: int):
        self.cap = cap
        self.batches: list[int] = []
        self.next_id = 0

    def make_batch_request(self, requests):
        self.batches.append(len(requests))
        if len(requests) > self.cap:
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}}
        answers = []
        for method, params in requests:
            self.next_id += 1
            if params[0] % 7 == 3:  # a revert of that one call only
                answers.append({"id": self.next_id, "error": {"message": f"revert {params[0]}"}})
            else:
                answers.append({"id": self.next_id, "result": f"{method}:{params[0]}"})
        random.Random(len(self.batches)).shuffle(answers)
        return answers

    def make_request(self, method, params):
        return {"result": f"{method}:{params[0]}"}


def _w3(node):
    return type("W3", (), {"provider": node})()


def test_regression_shock_block_previews_over_the_node_batch_limit():
    """A 100,000-account shock block put 29,487 liquidation previews in one JSON-RPC batch,
    which anvil refused whole ("Invalid request"), so the keeper liquidated nobody. Batches
    now hold at most BATCH_LIMIT requests; answers keep the request order, and one call's
    error stays that call's."""
    node = CappedNode(cap=BATCH_LIMIT)
    n = 2 * BATCH_LIMIT + 487
    answers = rpc_batch(_w3(node), [("eth_call", [i]) for i in range(n)])
    assert node.batches == [BATCH_LIMIT, BATCH_LIMIT, 487]
    assert len(answers) == n
    for i, a in enumerate(answers):
        if i % 7 == 3:
            assert isinstance(a, RpcError) and str(a) == f"revert {i}"
        else:
            assert a == f"eth_call:{i}"


def test_rpc_batch__node_refuses_a_batch__raises_its_error():
    node = CappedNode(cap=10)
    with pytest.raises(RpcError, match="Invalid request"):
        rpc_batch(_w3(node), [("eth_call", [i]) for i in range(30)], limit=20)
    assert node.batches == [20]  # refused at the first batch: nothing more was sent


def test_rpc_batch__empty_and_single__no_batch():
    node = CappedNode(cap=10)
    assert rpc_batch(_w3(node), []) == []
    assert rpc_batch(_w3(node), [("eth_chainId", [1])]) == ["eth_chainId:1"]
    assert node.batches == []
