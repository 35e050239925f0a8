"""The devnet stack (boa_stack) with a vol feed and the option book, in titanoboa (or on
any chain boa_stack deploys to: revm_env.RevmEnv for volume): ETH and BTC on the strike
grid, two ETH expiries with curves and three listed ETH options, and two funded accounts
(maker and trader, sub-account 1). Shared by the option tests."""

from __future__ import annotations

import boa
from boa_stack import CONTRACTS, BoaChain, deploy
from eip712.messages import EIP712Domain
from eth_account import Account

from offchain_risk.chain import signature_bytes
from offchain_risk.keeper.vol_signer import DAY, EXPIRY_TIME, VolUpdate, update_tuple

WAD = 10**18
USDC = 10**6
ETH, BTC = 0, 1
VOL_HEARTBEAT = 3_600
VOL_SHOCK = 15 * WAD // 100  # 15 vol points at 30 days
SHORT_MIN_BPS = 50
SIGNER = Account.from_key((7_019).to_bytes(32, "big"))


class Options:
    """The devnet stack plus a vol feed (1 of 1) and the option book, ETH listed."""

    def __init__(self, chain=None, stack=None):
        """On `chain` (titanoboa's by default), on top of `stack` (a boa_stack.BoaStack
        deployed there) or a fresh deployment."""
        self.chain = chain or BoaChain()
        self.s = stack or deploy(self.chain)
        self.feed = self.chain.load(CONTRACTS / "VolFeed.vy", [SIGNER.address], 1)
        self.feed.set_underlying(ETH, VOL_HEARTBEAT)
        self.feed.set_underlying(BTC, VOL_HEARTBEAT)
        self.book = self.chain.load(
            CONTRACTS / "OptionBook.vy", self.s.engine.address, self.feed.address
        )
        self.s.funding.set_option_book(self.book.address)
        self.book.set_grid(ETH, 100 * WAD, VOL_SHOCK, SHORT_MIN_BPS)
        self.book.set_grid(BTC, 1_000 * WAD, VOL_SHOCK, SHORT_MIN_BPS)
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
        _, name, version, chain_id, verifying, _, _ = self.feed.eip712Domain()
        domain = EIP712Domain(
            name=name, version=version, chainId=chain_id, verifyingContract=str(verifying)
        )
        message = VolUpdate(
            underlying=underlying,
            expiry=expiry,
            atm_vol=atm_vol,
            skew=skew,
            curvature=curvature,
            forward=forward,
            observed_at=self.chain.timestamp,
            nonce=self.feed.next_nonce(),
            deadline=2**40,
            eip712_domain=domain,
        )
        sig = signature_bytes(SIGNER.sign_message(message.signable_message))
        self.feed.submit(update_tuple(message), [sig])

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
