"""Differential test on the devnet: contract margin == numpy twin, to the wei.

See tests/portfolio_book.py for the driver. Each example costs ~40 devnet
transactions; the high-volume run of the same property is
tests/fuzz/test_margin_differential.py (titanoboa, the same Vyper sources).
"""

import os

import ape
from conftest import acct
from hypothesis import given, settings
from portfolio_book import MARKETS, examples, run_example

from offchain_risk.chain import Engine

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "10"))
_SUBS = iter(range(1, 10**9))


class ApeVenue:
    def __init__(self, client, owner, maker, trader, deployment):
        self.client, self.owner, self.maker, self.trader = client, owner, maker, trader
        self.d = deployment
        self.engine = deployment.engine
        self.lens = deployment.lens
        self.tokens = {
            "USDC": deployment.cash,
            "WETH": deployment.tokens[0],
            "WBTC": deployment.tokens[1],
        }

    def set_price(self, market, price_wad):
        self.d.feeds[market].set_price(price_wad // 10**10, sender=self.owner)

    def set_risk(self, market, shocks, floor, haircut):
        self.engine.set_shocks(market, shocks, sender=self.owner)
        self.engine.set_asset_risk(market, floor, haircut, sender=self.owner)

    def set_im_multiplier(self, wad):
        self.engine.set_im_multiplier(wad, sender=self.owner)

    def deposit(self, account, token, amount):
        who = self.maker if account >> 96 == int(str(self.maker), 16) else self.trader
        self.tokens[token].mint(who, amount, sender=self.owner)
        self.tokens[token].approve(self.engine, amount, sender=who)
        self.engine.deposit(account, self.tokens[token], amount, sender=who)

    def fill(self, maker, taker, market, size, price, nonce):
        order = self.client.order(
            self.maker, market, size, price, nonce, 2**40, subaccount=maker & (2**96 - 1)
        )
        try:
            self.client.fill(
                order, self.client.sign(self.maker, order), abs(size), taker, sender=self.trader
            )
        except ape.exceptions.ContractLogicError as err:
            assert "margin: below initial margin" in str(err)
            return False
        return True

    def read(self, account):
        state = self.lens.account_state(account)
        positions = [tuple(self.engine.position(account, m)) for m in MARKETS]
        return state.cash, positions, state.equity, state.mm, state.im


@given(example=examples)
@settings(max_examples=EXAMPLES)
def test_margin__random_portfolios__equal_twin_to_the_wei(
    client, owner, maker, trader, deployment, example
):
    venue = ApeVenue(client, owner, maker, trader, deployment)
    sub = next(_SUBS)
    run_example(venue, acct(trader, sub), acct(maker, sub), example)
    client = Engine(deployment.engine, deployment.book, deployment.lens)
    assert client.state(acct(trader, sub)).prices_ok
