"""Deployments on the local anvil devnet, shared by the contract tests.

A session-scoped engine with three tokens (USDC cash, 6 decimals; WETH, 18; WBTC, 8)
and four perp markets (ETH, BTC, SOL, LINK) on mock Chainlink feeds (8 decimals). Ape
snapshots the chain around each test, so every test starts from this state.
"""

from __future__ import annotations

import os

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


@pytest.fixture(scope="session", autouse=True)
def _lean_reverts():
    """Revert errors without the call tree and source traceback.

    For every reverted transaction ape-foundry rebuilds a source traceback and prints the
    call tree, both from the full debug trace: about 4 s per revert, most of this suite's
    time. The tests read only the revert message (`ape.reverts`), which stays the same.
    BALLAST_TRACE_REVERTS=1 keeps Ape's full path, for debugging a failure."""
    if os.environ.get("BALLAST_TRACE_REVERTS") == "1":
        yield
        return
    from ape.exceptions import ContractLogicError, TransactionError
    from ape_foundry.provider import FoundryProvider

    def lean(self, exception, revert_message=None, **kwargs):
        if revert_message in (None, "", "0x"):
            revert_message = TransactionError.DEFAULT_MESSAGE
        revert_message = revert_message.removeprefix("revert: ")
        kwargs.pop("trace", None)
        kwargs["set_ape_traceback"] = False
        return ContractLogicError(base_err=exception, revert_message=revert_message, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(FoundryProvider, "_handle_execution_reverted", lean)
    yield
    mp.undo()


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


def set_price(feeds, owner, asset, usd):
    """Push a new round of `asset`'s mock feed at `usd`."""
    feeds[asset].set_price(int(usd * 10**8), sender=owner)


def event(tx, name):
    """The one `name` event a transaction logged."""
    logs = [log for log in tx.events if log.event_name == name]
    assert len(logs) == 1, [log.event_name for log in tx.events]
    return logs[0]


def balances(engine, usdc, weth, *accounts):
    """Every balance a liquidation can move."""
    out = {
        "engine_usdc": usdc.balanceOf(engine),
        "engine_weth": weth.balanceOf(engine),
        "insurance": engine.cash(0),
        "deficit": engine.deficit(),
        "debt": engine.debt(),
        "oi": [engine.open_interest(m) for m in range(4)],
    }
    for a in accounts:
        out[a] = (
            engine.cash(a),
            [engine.collateral(a, m) for m in range(4)],
            [tuple(engine.position(a, m)) for m in range(4)],
        )
    return out


@pytest.fixture
def underwater(fund, usdc, trade, trader, maker, feeds, owner):
    """trader: 15k USDC, long 20 ETH at 2,000; ETH then falls to 1,550: E = 6,000 < MM = 6,200."""
    fund(trader, usdc, 15_000 * USDC)
    fund(maker, usdc, 1_000_000 * USDC)
    trade(ETH, -20 * WAD, 2_000)
    set_price(feeds, owner, ETH, 1_550)
    return acct(trader)


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[9]


# ------------------------------------------------------------ signed risk updates


@pytest.fixture(scope="session")
def risk_signers(accounts):
    """Three registered risk signers, sorted by address (M = 2 of N = 3)."""
    return sorted(accounts[5:8], key=lambda a: int(str(a), 16))


@pytest.fixture(scope="session")
def keeper(accounts):
    """The relayer that submits signed updates: not a signer."""
    return accounts[8]


@pytest.fixture(scope="session")
def governor(project, deployment, owner, risk_signers, guardian):
    """A RiskGovernor (M = 2 of 3) installed on the session engine and liquidation policy."""
    return devnet.deploy_governor(
        project, deployment, owner, list(risk_signers), 2, guardian=guardian
    )


@pytest.fixture(scope="session")
def risk_signer(governor, engine, liquidations, risk_signers, keeper):
    """The keeper's signer client with the first two signers (M = 2)."""
    from offchain_risk.keeper.signer import RiskSigner

    return RiskSigner(governor, engine, liquidations, risk_signers[:2], keeper)


@pytest.fixture(scope="session")
def governed(engine, lens, governor, liquidations):
    """Every value a risk update could move, for no-op assertions."""

    def _snap(assets=(ETH, BTC, SOL, LINK)):
        return {
            "shocks": [engine.shock_word(a, w) for a in assets for w in range(2)],
            "risk": [
                (lens.asset_config(a).floor_bps, lens.asset_config(a).haircut_bps) for a in assets
            ],
            "im": engine.im_multiplier(),
            "curve": (liquidations.min_discount(), liquidations.max_discount()),
            "nonce": governor.next_nonce(),
            "views": [governor.asset_view(a) for a in assets],
            "global": governor.global_view(),
        }

    return _snap


def sign_with(message, signers, sort=True) -> list[bytes]:
    """65-byte signatures of `message` by `signers`, sorted by signer address."""
    from offchain_risk.chain import signature_bytes

    if sort:
        signers = sorted(signers, key=lambda a: int(str(a), 16))
    return [signature_bytes(s.sign_message(message)) for s in signers]


@pytest.fixture(scope="session")
def update_for(risk_signer):
    """`update_for(change)`: a signed update of the four devnet assets from the current
    values, after `change(values (4, 34) int64, globals list)` edits them in place (32 shocks,
    then floor and haircut: keeper.signer.FLOOR, HAIRCUT)."""
    from offchain_risk.keeper.signer import ParamSet

    def _update(change=None, nonce=None, deadline=None, signers=None, assets=(0, 1, 2, 3)):
        view = risk_signer.view(assets)
        values = view.current.copy()
        globals_ = [int(x) for x in view.global_current]
        if change is not None:
            change(values, globals_)
        target = ParamSet.from_values(assets, values, globals_)
        message = risk_signer.message(
            target,
            view.nonce if nonce is None else nonce,
            view.timestamp + 600 if deadline is None else deadline,
        )
        return message, sign_with(message, signers or risk_signer.signers)

    return _update


def revert_message(contract, method: str, *args, sender) -> str:
    """The revert string of `contract.method(*args)` sent by `sender` on the pending block,
    through a raw eth_call. Ape's own revert path rebuilds a source traceback from the full
    execution trace, which takes a minute for a long governor update; the message and the
    state are the same."""
    from ape import chain
    from web3.exceptions import ContractLogicError

    data = bytes(getattr(contract, method).encode_input(*args))
    try:
        chain.provider.web3.eth.call(
            {"from": str(sender), "to": str(contract.address), "data": data}, "pending"
        )
    except ContractLogicError as err:
        return str(err.message).removeprefix("execution reverted: ")
    raise AssertionError(f"{method} did not revert")


def would_revert(contract, method: str, *args, sender) -> str | None:
    """`revert_message`, or None when the call would succeed."""
    try:
        return revert_message(contract, method, *args, sender=sender)
    except AssertionError:
        return None
