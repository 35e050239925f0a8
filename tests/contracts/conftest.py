"""Deployments on the local anvil devnet, shared by the contract tests.

A session-scoped engine with three tokens (USDC cash, 6 decimals; WETH, 18; WBTC, 8)
and four perp markets (ETH, BTC, SOL, LINK) on mock Chainlink feeds (8 decimals). Ape
snapshots the chain around each test, so every test starts from this state.
"""

from __future__ import annotations

import pytest

from offchain_risk import devnet
from offchain_risk.chain import Engine

WAD = 10**18
USDC = 10**6
ETH, BTC, SOL, LINK = 0, 1, 2, 3
PRICES = {m.symbol: m.price_usd for m in devnet.MARKETS}
IM_MULTIPLIER = 3 * WAD // 2
PRICE_BAND = WAD // 20  # 5%
SHOCKS = devnet.DEFAULT_SHOCKS_BPS


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def maker(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def operator(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def deployment(project, owner):
    return devnet.deploy(project, owner, im_multiplier_wad=IM_MULTIPLIER, price_band_wad=PRICE_BAND)


@pytest.fixture(scope="session")
def engine(deployment):
    return deployment.engine


@pytest.fixture(scope="session")
def usdc(deployment):
    return deployment.cash


@pytest.fixture(scope="session")
def weth(deployment):
    return deployment.tokens[ETH]


@pytest.fixture(scope="session")
def wbtc(deployment):
    return deployment.tokens[BTC]


@pytest.fixture(scope="session")
def feeds(deployment):
    return deployment.feeds


@pytest.fixture(scope="session")
def lens(deployment):
    return deployment.lens


@pytest.fixture(scope="session")
def liquidations(deployment):
    return deployment.liquidations


@pytest.fixture(scope="session")
def book(deployment):
    return deployment.book


@pytest.fixture(scope="session")
def client(engine, book, lens):
    return Engine(engine, book, lens)


@pytest.fixture(scope="session")
def fund(engine, usdc, weth, wbtc, owner):
    """Mint `amount` token units to `who` and deposit them into its sub-account."""

    def _fund(who, token, amount, sub=0, deposit=True):
        token.mint(who, amount, sender=owner)
        token.approve(engine, amount, sender=who)
        if deposit:
            engine.deposit(Engine.account_id(who, sub), token, amount, sender=who)

    return _fund


@pytest.fixture
def funded(fund, usdc, trader, maker):
    """trader and maker each hold 100k USDC of cash in sub-account 0."""
    fund(trader, usdc, 100_000 * USDC)
    fund(maker, usdc, 100_000 * USDC)


@pytest.fixture
def expiry(chain):
    return chain.pending_timestamp + 3_600


@pytest.fixture(scope="session")
def trade(client, maker, trader):
    """`maker_acc` signs `size_wad` of `market` at `price_usd`; `taker_acc` fills it all."""
    nonces = iter(range(10**6, 2 * 10**6))

    def _trade(market, size_wad, price_usd, maker_acc=None, taker_acc=None):
        m = maker_acc or maker
        t = taker_acc or trader
        order = client.order(m, market, size_wad, int(price_usd * WAD), next(nonces), 2**40)
        sig = client.sign(m, order)
        return client.fill(order, sig, abs(size_wad), Engine.account_id(t, 0), sender=t)

    return _trade


def acct(who, sub=0) -> int:
    return Engine.account_id(who, sub)


@pytest.fixture(scope="session")
def snapshot(engine, lens, usdc, weth, wbtc):
    """Every balance and ledger value a user action could move, for no-op assertions."""

    def _snap(*who, tokens=(), markets=(ETH, BTC, SOL, LINK)):
        toks = (usdc, weth, wbtc, *tokens)
        state = {"engine_tokens": [t.balanceOf(engine) for t in toks]}
        state["totals"] = [lens.tokens(t).total for t in (usdc, weth, wbtc)]
        state["oi"] = [engine.open_interest(m) for m in markets]
        state["insurance"] = engine.cash(0)
        state["debt"] = (engine.debt(), engine.deficit())
        for w in who:
            a = acct(w)
            state[str(w)] = (
                [t.balanceOf(w) for t in toks],
                engine.cash(a),
                engine.account_assets(a),
                [engine.collateral(a, m) for m in markets],
                [engine.position(a, m) for m in markets],
            )
        return state

    return _snap


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[9]
