"""The keeper's view of the chain: plain web3 contracts over one RPC endpoint.

The keeper reads and sends through web3 rather than Ape's contract layer: it owns its nonces
and gas prices, and an endpoint that fails for a while must not take the process with it.
ABIs come from the Ape project's compiled contract types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from web3 import Web3

#: Errors that mean "the endpoint is unreachable or failing": retried on the next tick.
try:
    from requests.exceptions import ConnectionError as _ReqConnectionError
    from requests.exceptions import HTTPError as _ReqHTTPError
    from requests.exceptions import Timeout as _ReqTimeout

    RPC_ERRORS: tuple[type[BaseException], ...] = (
        _ReqConnectionError,
        _ReqHTTPError,
        _ReqTimeout,
        ConnectionError,
        TimeoutError,
    )
except ImportError:  # pragma: no cover - requests ships with web3
    RPC_ERRORS = (ConnectionError, TimeoutError)


def abi_of(contract_type: Any) -> list[dict]:
    """An Ape ``ContractType``'s ABI as web3 wants it."""
    return [item.model_dump(mode="json", by_alias=True) for item in contract_type.abi]


@dataclass
class Contracts:
    """The deployment the keeper serves, as web3 contracts on one endpoint."""

    w3: Any
    engine: Any
    liquidations: Any
    lens: Any

    @classmethod
    def from_project(
        cls,
        project: Any,
        w3: Any,
        engine: str,
        liquidations: str,
        lens: str,
    ) -> Contracts:
        def at(name: str, address: str) -> Any:
            return w3.eth.contract(
                address=Web3.to_checksum_address(str(address)),
                abi=abi_of(getattr(project, name).contract_type),
            )

        return cls(
            w3=w3,
            engine=at("MarginEngine", engine),
            liquidations=at("Liquidations", liquidations),
            lens=at("Lens", lens),
        )

    def with_web3(self, w3: Any) -> Contracts:
        """The same contracts over another endpoint."""

        def again(c: Any) -> Any:
            return w3.eth.contract(address=c.address, abi=c.abi)

        return Contracts(w3, again(self.engine), again(self.liquidations), again(self.lens))


def _abi_type(item: dict) -> str:
    """The canonical type of an ABI input or output (tuples spelled out)."""
    t = item["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + t[5:]
    return t


def _named(item: dict, value: Any) -> Any:
    """``value`` decoded for ABI ``item``, with every struct as a dict by field name."""
    t = item["type"]
    if not t.startswith("tuple"):
        return value
    inner = {**item, "type": "tuple" + t[5:].rsplit("[", 1)[0]} if t.endswith("]") else None
    if inner is not None:
        return [_named(inner, v) for v in value]
    return {c["name"]: _named(c, v) for c, v in zip(item["components"], value, strict=True)}


def decode_output(contract: Any, fn_name: str, raw: bytes) -> Any:
    """Decode what ``contract.fn_name`` returned, from the compiled ABI: structs become dicts
    keyed by field name, so a changed struct is a KeyError rather than a silent mis-read by
    position. A function with one output returns it alone."""
    (fn,) = [i for i in contract.abi if i.get("type") == "function" and i["name"] == fn_name]
    outputs = fn["outputs"]
    values = decode([_abi_type(o) for o in outputs], raw)
    named = [_named(o, v) for o, v in zip(outputs, values, strict=True)]
    return named[0] if len(named) == 1 else tuple(named)


def http_web3(url: str, timeout: float = 10.0) -> Web3:
    """A web3 client on ``url`` with a bounded request timeout."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


class RpcError(RuntimeError):
    """A JSON-RPC error answer (a revert, a refused transaction), not an unreachable node."""

    def __init__(self, error: Any):
        self.error = error
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        super().__init__(message)


def rpc_batch(w3: Any, requests: list[tuple[str, list]]) -> list[Any]:
    """Send JSON-RPC ``requests`` in one HTTP round trip when the provider can batch; each
    entry of the answer is the result or an :class:`RpcError`, in request order.

    web3's ``w3.eth.*`` wrappers add about 10 ms of Python per call on this stack; the
    keeper's hot path (prices, parameters, ``healths``, previews, receipts) goes through
    here instead.
    """
    if not requests:
        return []
    provider = w3.provider
    if len(requests) > 1 and hasattr(provider, "make_batch_request"):
        answers = provider.make_batch_request(requests)
        if isinstance(answers, dict):  # the whole batch was refused
            raise RpcError(answers.get("error", answers))
        answers = sorted(answers, key=lambda a: a.get("id", 0))
    else:
        answers = [provider.make_request(method, params) for method, params in requests]
    return [RpcError(a["error"]) if "error" in a else a.get("result") for a in answers]


def rpc_one(w3: Any, method: str, params: list) -> Any:
    """One JSON-RPC request; raises :class:`RpcError` on an error answer."""
    answer = w3.provider.make_request(method, params)
    if "error" in answer:
        raise RpcError(answer["error"])
    return answer.get("result")


def eth_calls(w3: Any, calls: list[tuple[str, str]], block: str = "latest") -> list[bytes]:
    """``eth_call`` of each (to, calldata) in one batch; raises on the first error."""
    out = []
    for r in rpc_batch(w3, [("eth_call", [{"to": to, "data": data}, block]) for to, data in calls]):
        if isinstance(r, RpcError):
            raise r
        out.append(bytes.fromhex(r.removeprefix("0x")))
    return out
