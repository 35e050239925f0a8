"""The devnet listing of offchain_risk.devnet, deployed in-process: with titanoboa (the
directed tests, traces) or on revm (`revm_env.RevmEnv`, the stateful model's volume).

Same Vyper sources, same constructor arguments as `devnet.deploy`; ~0.5 ms per simple
transaction in titanoboa instead of ~30 ms on anvil, and about a hundred times less again
on revm for a transaction that computes margin.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boa
from eip712.messages import EIP712Domain
from eth_account import Account

from offchain_risk import devnet
from offchain_risk.chain import Order, account_id, signature_bytes

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
WAD = 10**18


class BoaChain:
    """titanoboa's global environment behind the interface `revm_env.RevmEnv` offers:
    `load`, `at`, `anchor`, `prank`, `timestamp`, `time_travel`, `eoa` and `Error`."""

    Error = boa.BoaError

    @property
    def eoa(self) -> str:
        return boa.env.eoa

    def load(self, path: str | Path, *args: Any) -> Any:
        return boa.load(str(path), *args)

    def at(self, path: str | Path, address: str) -> Any:
        return boa.load_partial(str(path)).at(address)

    @contextmanager
    def anchor(self) -> Iterator[None]:
        with boa.env.anchor():
            yield

    @contextmanager
    def prank(self, address: str) -> Iterator[None]:
        """Transactions inside may come from `address` (`sender=`), code or not."""
        yield

    @property
    def timestamp(self) -> int:
        return boa.env.evm.patch.timestamp

    @timestamp.setter
    def timestamp(self, value: int) -> None:
        boa.env.evm.patch.timestamp = value

    def time_travel(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    def register(self, contract: Any) -> None:
        """boa decodes a revert trace with the contract registered at its address."""
        boa.env.register_contract(contract.address, contract)


@dataclass
class BoaStack:
    engine: Any
    admin: Any  # MarginConfig at the engine's address: setters, deposit, withdraw, transfer
    funding: Any  # FundingConfig at the engine's address: funding, and the views moved there
    lens: Any
    liquidations: Any
    book: Any
    cash: Any
    tokens: dict[int, Any]
    feeds: dict[int, Any]
    owner: str
    chain: Any  # BoaChain or revm_env.RevmEnv
    keys: dict[str, Any] = field(default_factory=dict)  # name -> eth_account LocalAccount
    _domain: Any = None  # the order book's EIP-712 domain, read once

    def actor(self, name: str) -> str:
        """A funded-with-nothing EOA whose key signs orders."""
        if name not in self.keys:
            self.keys[name] = Account.from_key(
                (int.from_bytes(name.encode(), "big") % (2**200) + 1).to_bytes(32, "big")
            )
        return self.keys[name].address

    def sign_order(self, signer: str, **fields: Any) -> tuple[tuple, bytes]:
        if self._domain is None:
            domain = self.book.eip712Domain()
            self._domain = EIP712Domain(
                name=domain[1],
                version=domain[2],
                chainId=domain[3],
                verifyingContract=str(domain[4]),
            )
        order = Order(**fields, eip712_domain=self._domain)
        key = next(k for k in self.keys.values() if k.address == signer)
        sig = key.sign_message(order.signable_message)
        as_tuple = (
            fields["owner"],
            fields["subaccount"],
            fields["market"],
            fields["size"],
            fields["price"],
            fields["nonce"],
            fields["expiry"],
        )
        return as_tuple, signature_bytes(sig)

    @staticmethod
    def account(owner: str, sub: int = 0) -> int:
        return account_id(owner, sub)

    def fund(self, name: str, sub: int = 0, amount: int = 10**12) -> tuple[str, int]:
        """Mint ``amount`` cash units (6 decimals: 10**12 is $1M) to the named actor and
        deposit them into its sub-account ``sub``: (the actor, the account id)."""
        who = self.actor(name)
        acct = self.account(who, sub)
        self.cash.mint(who, amount)
        self.cash.approve(self.engine.address, amount, sender=who)
        self.admin.deposit(acct, self.cash.address, amount, sender=who)
        return who, acct


def deploy(chain: Any = None, collateral: dict[int, str] | None = None) -> BoaStack:
    """Deploy the devnet listing on `chain` (titanoboa's environment by default).
    `collateral` lists another token contract (a path under contracts/, its constructor
    taking the token's decimals: a hostile token) as a market's collateral token instead of
    `MockToken`."""
    chain = chain or BoaChain()
    owner = chain.eoa
    load = lambda name, *args: chain.load(CONTRACTS / name, *args)  # noqa: E731
    cash = load("test/MockToken.vy", "USD Coin", "USDC", 6)
    funding = load("FundingConfig.vy", cash.address)
    config = load("MarginConfig.vy", cash.address, funding.address)
    engine = load(
        "MarginEngine.vy",
        config.address,
        cash.address,
        10**12 * WAD,
        10**12 * WAD,
        3 * WAD // 2,
        WAD // 20,
    )
    admin = chain.at(CONTRACTS / "MarginConfig.vy", engine.address)
    funding_at = chain.at(CONTRACTS / "FundingConfig.vy", engine.address)
    book = load("OrderBook.vy", engine.address)
    admin.set_venue(book.address, True)
    admin.set_debt_cap(10**7 * WAD)
    liquidations = load("Liquidations.vy", engine.address, *devnet.LiquidationPolicy().args())
    admin.set_liquidator(liquidations.address)
    lens = load("Lens.vy", engine.address)
    tokens, feeds = {}, {}
    for asset, spec in enumerate(devnet.MARKETS):
        feeds[asset] = load("test/MockAggregator.vy", 8, int(spec.price_usd * 10**8))
        token = devnet.ZERO_ADDRESS
        if spec.token is not None:
            if asset in (collateral or {}):
                tokens[asset] = load(collateral[asset], spec.token[2])
            else:
                tokens[asset] = load("test/MockToken.vy", *spec.token)
            token = tokens[asset].address
        admin.list_asset(
            token,
            feeds[asset].address,
            86_400,
            spec.floor_bps,
            spec.haircut_bps,
            10**12 * WAD,
            10**12 * WAD,
            spec.perp,
            10**9 * WAD,
        )
        admin.set_shocks(asset, [int(s) for s in devnet.DEFAULT_SHOCKS_BPS[asset]])
    # `admin` registered itself at the engine's address; boa decodes revert traces with the
    # contract registered there, so give the address back to the engine.
    if isinstance(chain, BoaChain):
        chain.register(engine)
    return BoaStack(
        engine=engine,
        admin=admin,
        funding=funding_at,
        lens=lens,
        liquidations=liquidations,
        book=book,
        cash=cash,
        tokens=tokens,
        feeds=feeds,
        owner=owner,
        chain=chain,
    )
