"""A small typed client for a deployed Ballast engine, through Ape.

Everything here talks to the chain through an Ape contract instance, so it works the
same against a local anvil, a testnet, or inside ``ape console``::

    from offchain_risk.chain import Engine
    engine = Engine(devnet.engine_at(project, engine_address), project.OrderBook.at(book_address),
                    project.Lens.at(lens_address))
    engine.state(engine.account_id(trader, 0)).summary()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eip712.messages import EIP712Domain, EIP712Message
from eth_pydantic_types import abi

from offchain_risk import units
from offchain_risk.units import CASH, WAD  # noqa: F401 (re-exported)


class Order(EIP712Message):
    """A maker order; field names and order match ``trading.ORDER_TYPEHASH``."""

    owner: abi.address
    subaccount: abi.uint256
    market: abi.uint256
    size: abi.int256
    price: abi.uint256
    nonce: abi.uint256
    expiry: abi.uint256


@dataclass(frozen=True)
class AssetState:
    asset: int
    collateral: int
    size: int
    open_notional: int
    price: int
    price_ok: bool


@dataclass(frozen=True)
class AccountState:
    """An account as the engine sees it; WAD ints."""

    account: int
    owner: str
    sub_id: int
    cash: int
    equity: int
    mm: int
    im: int
    health: int
    prices_ok: bool
    assets: list[AssetState] = field(default_factory=list)

    @property
    def health_ratio(self) -> float:
        """E / MM; infinite for an account without margin requirement."""
        return float("inf") if self.mm == 0 else self.equity / self.mm

    def summary(self) -> str:
        f = lambda x: f"{x / WAD:,.2f}"  # noqa: E731
        return (
            f"account {self.owner}/{self.sub_id}: equity {f(self.equity)} MM {f(self.mm)} "
            f"IM {f(self.im)} health {f(self.health)}"
            + ("" if self.prices_ok else " [price invalid]")
        )


def account_id(owner: str, sub_id: int) -> int:
    """The engine's account id: owner << 96 | sub_id (:func:`offchain_risk.units.account_id`)."""
    return units.account_id(str(owner), sub_id)


def _word(x: int | bytes) -> bytes:
    return x.to_bytes(32, "big") if isinstance(x, int) else bytes(x).rjust(32, b"\0")


def signature_bytes(sig: Any) -> bytes:
    """A signature (Ape ``MessageSignature`` or eth-account ``SignedMessage``) as the
    65 bytes r || s || v the engine takes.

    r and s are left-padded to 32 bytes: about 1 in 128 signatures has a leading zero
    byte, which a plain ``bytes(r)`` would drop.
    """
    return _word(sig.r) + _word(sig.s) + bytes([sig.v])


PHASE_ROUND = 2**64 - 1  # a Chainlink round id is phase << 64 | round in the phase


def settlement_round(feed: Any, expiry: int) -> int:
    """The round ``OptionBook.record_settlement`` takes for ``expiry``: the first valid round
    (complete, positive answer) of ``feed`` updated at or after ``expiry``.

    ``feed`` is any contract object with ``latestRoundData`` and ``getRoundData`` (Ape's or
    titanoboa's). Walks back from the latest round, one call per round since expiry, to the
    first round at or after expiry (or the start of the feed's phase), then forward past
    invalid ones. Raises ``ValueError`` when the feed has no valid round at or after expiry.
    """

    def valid(data: Any) -> bool:
        return data[1] > 0 and data[4] >= data[0]

    latest = feed.latestRoundData()
    if latest[3] < expiry:
        raise ValueError(f"no round of {feed.address} at or after {expiry} yet")
    rounds = {latest[0]: latest}
    r = latest[0]
    while r & PHASE_ROUND > 1:
        before = feed.getRoundData(r - 1)
        if before[3] < expiry:
            break
        r -= 1
        rounds[r] = before
    while not valid(rounds[r]):
        if r == latest[0]:
            raise ValueError(f"no valid round of {feed.address} at or after {expiry} yet")
        r += 1
    return r


class Engine:
    """Typed reads over an Ape ``MarginEngine`` and signed orders on its ``OrderBook``."""

    def __init__(self, contract: Any, book: Any = None, lens: Any = None):
        self.contract = contract
        self.book = book
        self.lens = lens

    def _book(self) -> Any:
        if self.book is None:
            raise RuntimeError("no OrderBook given: Engine(engine, book) to trade")
        return self.book

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def domain(self) -> EIP712Domain:
        _, name, version, chain_id, verifying, _, _ = self._book().eip712Domain()
        return EIP712Domain(
            name=name, version=version, chainId=chain_id, verifyingContract=verifying
        )

    @staticmethod
    def account_id(owner: Any, sub_id: int = 0) -> int:
        return account_id(str(owner), sub_id)

    def order(
        self,
        owner: Any,
        market: int,
        size: int,
        price: int,
        nonce: int,
        expiry: int,
        subaccount: int = 0,
    ) -> Order:
        """A maker order bound to this engine's EIP-712 domain."""
        return Order(
            owner=str(owner),
            subaccount=subaccount,
            market=market,
            size=size,
            price=price,
            nonce=nonce,
            expiry=expiry,
            eip712_domain=self.domain(),
        )

    @staticmethod
    def order_tuple(order: Order) -> tuple:
        return (
            order.owner,
            order.subaccount,
            order.market,
            order.size,
            order.price,
            order.nonce,
            order.expiry,
        )

    def sign(self, signer: Any, order: Order) -> bytes:
        """Sign with an Ape account; the 65-byte signature the order book takes."""
        sig = signer.sign_message(order)
        if sig is None:
            raise RuntimeError(f"{signer} declined to sign the order")
        return signature_bytes(sig)

    def fill(self, order: Order, signature: bytes, amount: int, taker: int, sender: Any):
        return self._book().fill(self.order_tuple(order), signature, amount, taker, sender=sender)

    def state(self, account: int) -> AccountState:
        if self.lens is None:
            raise RuntimeError("no Lens given: Engine(engine, book, lens) to read states")
        v = self.lens.account_state(account)
        return AccountState(
            account=account,
            owner=str(v.owner),
            sub_id=v.sub_id,
            cash=v.cash,
            equity=v.equity,
            mm=v.mm,
            im=v.im,
            health=v.health,
            prices_ok=v.prices_ok,
            assets=[
                AssetState(
                    asset=a.asset,
                    collateral=a.collateral,
                    size=a.size,
                    open_notional=a.open_notional,
                    price=a.price,
                    price_ok=a.price_ok,
                )
                for a in v.assets
            ],
        )
