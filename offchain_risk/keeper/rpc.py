"""The keeper's view of the chain: plain web3 contracts over one RPC endpoint.

The keeper reads and sends through web3 rather than Ape's contract layer: it owns its nonces
and gas prices, and an endpoint that fails for a while must not take the process with it.
ABIs come from the Ape project's compiled contract types.
"""

from __future__ import annotations

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


def http_web3(url: str, timeout: float = 10.0) -> Web3:
    """A web3 client on ``url`` with a bounded request timeout."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
