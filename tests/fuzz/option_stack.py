"""The devnet stack (boa_stack) with a vol feed and the option book, in titanoboa (or on
any chain boa_stack deploys to: revm_env.RevmEnv for volume): ETH and BTC on the strike
grid, two ETH expiries with curves and three listed ETH options, and two funded accounts
(maker and trader, sub-account 1). Shared by the option tests; the stateful model
(ballast_machine.py) installs its own book and 2-of-3 vol feed with `install` and signs
curves with `signed_vol_update` and `sign_digest`."""

from __future__ import annotations

import boa
from boa_stack import CONTRACTS, BoaChain, deploy
from eip712.messages import EIP712Domain
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from offchain_risk.chain import signature_bytes
from offchain_risk.keeper.vol_signer import DAY, EXPIRY_TIME, VolUpdate, update_tuple

WAD = 10**18
USDC = 10**6
ETH, BTC = 0, 1
VOL_HEARTBEAT = 3_600
VOL_SHOCK = 15 * WAD // 100  # 15 vol points at 30 days
SHORT_MIN_BPS = 50
SIGNER = Account.from_key((7_019).to_bytes(32, "big"))


def install(chain, s, signers, threshold, heartbeat=VOL_HEARTBEAT):
    """A vol feed (`signers`, `threshold` of them per update; ETH and BTC listed with
    `heartbeat`) and an option book over it, installed on the engine of `s` (a
    boa_stack.BoaStack on `chain`), ETH's and BTC's grids set: (feed, book)."""
    feed = chain.load(CONTRACTS / "VolFeed.vy", list(signers), threshold)
    feed.set_underlying(ETH, heartbeat)
    feed.set_underlying(BTC, heartbeat)
    book = chain.load(CONTRACTS / "OptionBook.vy", s.engine.address, feed.address)
    s.funding.set_option_book(book.address)
    book.set_grid(ETH, 100 * WAD, VOL_SHOCK, SHORT_MIN_BPS)
    book.set_grid(BTC, 1_000 * WAD, VOL_SHOCK, SHORT_MIN_BPS)
    return feed, book


class RoundReader:
    """A HostileAggregator (contracts/test/) read as an AggregatorV3: its `latestRoundData`
    and `getRoundData` return raw bytes (so that they can answer malformed), which neither
    titanoboa nor revm_env decode as a round: called raw here and decoded into the five
    fields, as `offchain_risk.chain.settlement_round` reads a feed. A read the feed refuses
    raises as the call does; a malformed answer raises ValueError."""

    ROUND = ("uint80", "int256", "uint256", "uint256", "uint80")

    def __init__(self, feed) -> None:
        self.feed = feed
        self.address = feed.address

    def _read(self, signature: str, *args: int) -> tuple:
        data = function_signature_to_4byte_selector(signature)
        data += abi_encode(["uint80"] * len(args), args)
        env = self.feed.env
        if hasattr(env, "raw_call"):  # titanoboa
            raw = bytes(env.raw_call(self.address, data=data).output)
        else:  # revm_env.RevmEnv
            raw = env.call(self.address, data, static=True)
        if len(raw) != 160:
            raise ValueError(f"{self.address} answered {len(raw)} bytes, not a round")
        return abi_decode(self.ROUND, raw)

    def latestRoundData(self) -> tuple:
        return self._read("latestRoundData()")

    def getRoundData(self, round_id: int) -> tuple:
        return self._read("getRoundData(uint80)", round_id)


def vol_domain(feed) -> EIP712Domain:
    """The EIP-712 domain of a deployed vol feed."""
    _, name, version, chain_id, verifying, _, _ = feed.eip712Domain()
    return EIP712Domain(
        name=name, version=version, chainId=chain_id, verifyingContract=str(verifying)
    )


def signed_vol_update(domain, keys, deadline=2**40, **fields) -> tuple[tuple, list[bytes]]:
    """`VolFeed.submit`'s arguments for the curve `fields` (VolUpdate's, but the deadline):
    the update and the signatures of `keys` (eth_account keys), sorted by signer address as
    the feed checks them."""
    message = VolUpdate(**fields, deadline=deadline, eip712_domain=domain)
    signable = message.signable_message
    signed = sorted(
        (int(key.address, 16), signature_bytes(key.sign_message(signable))) for key in keys
    )
    return update_tuple(message), [sig for _, sig in signed]


def sign_digest(keys, digest: bytes) -> list[bytes]:
    """The signatures of `keys` (eth_account keys) over an EIP-712 `digest` (a contract's
    own, e.g. `VolFeed.update_digest`), sorted by signer address."""
    signed = sorted(
        (int(key.address, 16), signature_bytes(key.unsafe_sign_hash(digest))) for key in keys
    )
    return [sig for _, sig in signed]


class Options:
    """The devnet stack plus a vol feed (1 of 1) and the option book, ETH listed."""

    def __init__(self, chain=None, stack=None):
        """On `chain` (titanoboa's by default), on top of `stack` (a boa_stack.BoaStack
        deployed there) or a fresh deployment."""
        self.chain = chain or BoaChain()
        self.s = stack or deploy(self.chain)
        self.feed, self.book = install(self.chain, self.s, [SIGNER.address], 1)
        now = self.chain.timestamp
        self.expiry = (now // DAY + 7) * DAY + EXPIRY_TIME
        self.far = self.expiry + 21 * DAY
        for expiry in (self.expiry, self.far):
            self.book.set_oi_cap(ETH, expiry, 1_000 * WAD)
            self.publish(ETH, expiry, 6 * WAD // 10, 2_000 * WAD)
        self.call = self.book.list_option(ETH, self.expiry, 2_100 * WAD, True)
        self.put = self.book.list_option(ETH, self.expiry, 1_900 * WAD, False)
        self.far_call = self.book.list_option(ETH, self.far, 2_000 * WAD, True)
        self.maker = self.s.actor("maker")
        self.trader = self.s.actor("trader")
        self.m = self.s.account(self.maker, 1)
        self.t = self.s.account(self.trader, 1)
        self.order_nonce = 0
        for who, account in ((self.maker, self.m), (self.trader, self.t)):
            self.deposit(who, account, 100_000 * USDC)

    def publish(self, underlying, expiry, atm_vol, forward, skew=0, curvature=0):
        update, sigs = signed_vol_update(
            vol_domain(self.feed),
            [SIGNER],
            underlying=underlying,
            expiry=expiry,
            atm_vol=atm_vol,
            skew=skew,
            curvature=curvature,
            forward=forward,
            observed_at=self.chain.timestamp,
            nonce=self.feed.next_nonce(),
        )
        self.feed.submit(update, sigs)

    def deposit(self, who, account, amount):
        self.s.cash.mint(who, amount)
        self.s.cash.approve(self.s.engine.address, amount, sender=who)
        self.s.admin.deposit(account, self.s.cash.address, amount, sender=who)

    def fill(self, instrument, maker_size, premium, amount=None, taker=None):
        """The maker (account m) signs `maker_size` of `instrument` at `premium`; the
        trader fills `amount` (default all) into `taker` (default account t)."""
        self.order_nonce += 1
        order, sig = self.s.sign_order(
            self.maker,
            owner=self.maker,
            subaccount=1,
            market=instrument,
            size=maker_size,
            price=premium,
            nonce=self.order_nonce,
            expiry=2**40,
        )
        self.s.book.fill(order, sig, amount or abs(maker_size), taker or self.t, sender=self.trader)

    def snapshot(self):
        """Everything a refused call could have moved."""
        e, b = self.s.engine, self.book
        ids = (self.call, self.put, self.far_call)
        return (
            [e.cash(a) for a in (self.m, self.t)],
            [e.account_assets(a) for a in (self.m, self.t)],
            [b.size(a, i) for a in (self.m, self.t) for i in ids],
            [list(b.account_legs(a)) for a in (self.m, self.t)],
            [b.open_interest(ETH, x) for x in (self.expiry, self.far)],
            [b.settlement_price(ETH, x) for x in (self.expiry, self.far)],
        )

    def refused(self, message, fn, *args, **kwargs):
        before = self.snapshot()
        with boa.reverts(message):
            fn(*args, **kwargs)
        assert self.snapshot() == before
