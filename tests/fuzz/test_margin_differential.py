"""High-volume differential test in-process: contract margin == numpy twin, to the wei.

The same driver as tests/contracts/test_differential.py (tests/portfolio_book.py), on
revm (revm_env; titanoboa's interpreter took minutes over the same examples): hundreds of
random portfolios in seconds.
"""

import os

import pytest
from boa_stack import deploy
from hypothesis import given, settings
from portfolio_book import MARKETS, examples, run_example
from revm_env import RevmEnv

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES_REVM", "1000"))
_SUBS = iter(range(1, 10**9))


@pytest.fixture(scope="module")
def stack():
    return deploy(RevmEnv(timestamp=1_767_225_600))  # 2026-01-01


class RevmVenue:
    def __init__(self, stack):
        self.s = stack
        self.maker = stack.actor("maker")
        self.trader = stack.actor("trader")
        self.tokens = {"USDC": stack.cash, "WETH": stack.tokens[0], "WBTC": stack.tokens[1]}

    def set_price(self, market, price_wad):
        self.s.feeds[market].set_price(price_wad // 10**10)

    def set_risk(self, market, shocks, floor, haircut):
        self.s.admin.set_shocks(market, shocks)
        self.s.admin.set_asset_risk(market, floor, haircut)

    def set_im_multiplier(self, wad):
        self.s.admin.set_im_multiplier(wad)

    def deposit(self, account, token, amount):
        who = self.maker if account >> 96 == int(self.maker, 16) else self.trader
        self.tokens[token].mint(who, amount)
        self.tokens[token].approve(self.s.engine.address, amount, sender=who)
        self.s.admin.deposit(account, self.tokens[token].address, amount, sender=who)

    def fill(self, maker, taker, market, size, price, nonce):
        order, sig = self.s.sign_order(
            self.maker,
            owner=self.maker,
            subaccount=maker & (2**96 - 1),
            market=market,
            size=size,
            price=price,
            nonce=nonce,
            expiry=2**40,
        )
        try:
            self.s.book.fill(order, sig, abs(size), taker, sender=self.trader)
        except self.s.chain.Error as err:
            assert "margin: below initial margin" in str(err)
            return False
        return True

    def read(self, account):
        state = self.s.lens.account_state(account)
        positions = [tuple(self.s.engine.position(account, m)) for m in MARKETS]
        return state.cash, positions, state.equity, state.mm, state.im


@given(example=examples)
@settings(max_examples=EXAMPLES)
def test_margin__random_portfolios__equal_twin_to_the_wei(stack, example):
    venue = RevmVenue(stack)
    sub = next(_SUBS)
    run_example(venue, stack.account(venue.trader, sub), stack.account(venue.maker, sub), example)
