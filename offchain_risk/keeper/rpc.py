"""The keeper's view of the chain: plain web3 contracts over one RPC endpoint.

The keeper reads and sends through web3 rather than Ape's contract layer: it owns its nonces
and gas prices, and an endpoint that fails for a while must not take the process with it.
ABIs come from the Ape project's compiled contract types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def engine_type(project: Any) -> Any:
    """The engine's Ape ``ContractType`` with the three ABIs: the core's, ``MarginConfig``'s
    (owner setters and token moves, with their events), which the core runs by delegatecall
    from its fallback, and ``FundingConfig``'s, which MarginConfig's fallback runs the same
    way, so one address answers all three."""
    core = project.MarginEngine.contract_type
    names = {(abi.type, abi.name) for abi in core.abi if hasattr(abi, "name")}
    extra = []
    for config in (project.MarginConfig, project.FundingConfig):
        for abi in config.contract_type.abi:
            if abi.type in ("function", "event") and (abi.type, abi.name) not in names:
                names.add((abi.type, abi.name))
                extra.append(abi)
    return core.model_copy(update={"abi": [*core.abi, *extra]})


def web3_contract(project: Any, w3: Any, name: str, address: Any) -> Any:
    """A web3 contract of the project's ``name`` at ``address`` (the engine with the ABI its
    fallbacks serve, :func:`engine_type`)."""
    kind = engine_type(project) if name == "MarginEngine" else getattr(project, name).contract_type
    return w3.eth.contract(address=Web3.to_checksum_address(str(address)), abi=abi_of(kind))


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
        return cls(
            w3=w3,
            engine=web3_contract(project, w3, "MarginEngine", engine),
            liquidations=web3_contract(project, w3, "Liquidations", liquidations),
            lens=web3_contract(project, w3, "Lens", lens),
        )

    @classmethod
    def from_manifest(cls, project: Any, w3: Any, manifest: dict) -> Contracts:
        """The contracts of a deployment manifest (``offchain_risk.deploy``), which must be
        of the chain ``w3`` is connected to."""
        from offchain_risk.deploy import ManifestError

        chain_id = int(w3.eth.chain_id)
        if int(manifest.get("chain_id", -1)) != chain_id:
            raise ManifestError(
                f"manifest is for chain {manifest.get('chain_id')}, connected to {chain_id}"
            )
        c = manifest["contracts"]
        return cls.from_project(project, w3, c["engine"], c["liquidations"], c["lens"])

    def with_web3(self, w3: Any) -> Contracts:
        """The same contracts over another endpoint."""

        def again(c: Any) -> Any:
            return w3.eth.contract(address=c.address, abi=c.abi)

        return Contracts(w3, again(self.engine), again(self.liquidations), again(self.lens))


def _named(params: list[dict], values: Any) -> Any:
    """``values`` decoded by ``params`` (ABI entries): a tuple (struct) as a dict by field
    name, an array element by element."""
    out = {}
    for param, value in zip(params, values, strict=True):
        out[param.get("name") or str(len(out))] = _named_one(param, value)
    return out


def _named_one(param: dict, value: Any) -> Any:
    kind = param["type"]
    if kind.startswith("tuple"):
        if kind.endswith("]"):  # an array of structs
            inner = {**param, "type": kind[: kind.rindex("[")]}
            return [_named_one(inner, v) for v in value]
        return _named(param["components"], value)
    return value


def decode_output(contract: Any, fn: str, raw: bytes) -> Any:
    """The return value of ``contract.fn`` (a web3 contract: its compiled ABI) decoded from
    ``raw``: a struct as a dict by field name, a struct array as a list of them. A struct
    that changes shape on chain fails here (or at a missing name), never decodes silently
    into the wrong fields."""
    from eth_abi import decode
    from eth_utils.abi import collapse_if_tuple

    items = [i for i in contract.abi if i.get("type") == "function" and i.get("name") == fn]
    if len(items) != 1:
        raise ValueError(f"{fn} is not one function of the contract's ABI")
    outputs = items[0]["outputs"]
    values = decode([collapse_if_tuple(o) for o in outputs], raw)
    if len(outputs) == 1:
        return _named_one(outputs[0], values[0])
    return _named(outputs, values)


_ENCODERS: dict[tuple[str, str], Callable[[tuple], str]] = {}


def encode_call(contract: Any, fn: str, args: tuple | list = ()) -> str:
    """``contract.encode_abi(fn, args)``: hex calldata from the contract's compiled ABI,
    with the selector and the argument types worked out once per function signature. web3
    validates the whole ABI on every ``encode_abi`` (about 4 ms of Python), which a scan
    paid 14 times a block and a liquidation twice per account."""
    items = [i for i in contract.abi if i.get("type") == "function" and i.get("name") == fn]
    if len(items) != 1:
        raise ValueError(f"{fn} is not one function of the contract's ABI")
    key = (fn, repr(items[0]["inputs"]))
    encoder = _ENCODERS.get(key)
    if encoder is None:
        from eth_abi import encode
        from eth_utils.abi import collapse_if_tuple, function_abi_to_4byte_selector

        types = [collapse_if_tuple(i) for i in items[0]["inputs"]]
        selector = function_abi_to_4byte_selector(items[0])

        def encoder(values: tuple, types: list = types, selector: bytes = selector) -> str:
            return "0x" + (selector + encode(types, values)).hex()

        _ENCODERS[key] = encoder
    return encoder(tuple(args))


def http_web3(url: str, timeout: float = 10.0) -> Web3:
    """A web3 client on ``url`` with a bounded request timeout."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


class RpcError(RuntimeError):
    """A JSON-RPC error answer (a revert, a refused transaction), not an unreachable node."""

    def __init__(self, error: Any):
        self.error = error
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        super().__init__(message)


# Requests per HTTP batch: geth's default `--rpc.batch-request-limit`. anvil refuses a whole
# batch once its body is too large ("Invalid request": the 29,487 previews of a
# 100,000-account shock block in one batch).
BATCH_LIMIT = 1_000


def rpc_batch(w3: Any, requests: list[tuple[str, list]], limit: int = BATCH_LIMIT) -> list[Any]:
    """Send JSON-RPC ``requests`` in HTTP batches of at most ``limit`` when the provider can
    batch (one round trip each); each entry of the answer is the result or an
    :class:`RpcError`, in request order.

    web3's ``w3.eth.*`` wrappers add about 10 ms of Python per call on this stack; the
    keeper's hot path (prices, parameters, ``healths``, previews, receipts) goes through
    here instead.
    """
    if not requests:
        return []
    provider = w3.provider
    if len(requests) > 1 and hasattr(provider, "make_batch_request"):
        answers = []
        for lo in range(0, len(requests), limit):
            chunk = provider.make_batch_request(requests[lo : lo + limit])
            if isinstance(chunk, dict):  # the whole batch was refused
                raise RpcError(chunk.get("error", chunk))
            answers += sorted(chunk, key=lambda a: a.get("id", 0))
    else:
        answers = [provider.make_request(method, params) for method, params in requests]
    return [RpcError(a["error"]) if "error" in a else a.get("result") for a in answers]


def rpc_one(w3: Any, method: str, params: list) -> Any:
    """One JSON-RPC request; raises :class:`RpcError` on an error answer."""
    answer = w3.provider.make_request(method, params)
    if "error" in answer:
        raise RpcError(answer["error"])
    return answer.get("result")


def eth_calls(
    w3: Any, calls: list[tuple[str, str]], block: str = "latest", limit: int = BATCH_LIMIT
) -> list[bytes]:
    """``eth_call`` of each (to, calldata) in batches of at most ``limit``; raises on the
    first error."""
    out = []
    requests = [("eth_call", [{"to": to, "data": data}, block]) for to, data in calls]
    for r in rpc_batch(w3, requests, limit):
        if isinstance(r, RpcError):
            raise r
        out.append(bytes.fromhex(r.removeprefix("0x")))
    return out
