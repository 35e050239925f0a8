"""The keeper on anvil when one asset fails: a dead feed and a market read that fails take
out of the block only the accounts exposed to that asset; every other liquidatable account
is liquidated, and the failure shows in the metrics and as an alert line."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import BTC, USDC, WAD, acct
from keeper_setup import long_book

from offchain_risk.chain import Engine
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.rpc import Contracts, http_web3
from offchain_risk.keeper.status import read_status
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import LocalSigner, TxManager

# As in test_keeper: long 10 ETH at 2,000, then ETH at 1,400: subs 1..8 liquidatable.
CASH = [6_300 + 350 * i for i in range(12)]
SHOCKED = 1_400
WBTC_UNITS = 1_000  # 0.00001 WBTC (8 decimals): about 0.60 USD


@pytest.fixture(scope="session")
def bot(accounts):
    return accounts[4]


@pytest.fixture
def contracts(project, chain, deployment):
    d = deployment
    return Contracts.from_project(
        project, chain.provider.web3, d.engine.address, d.liquidations.address, d.lens.address
    )


@pytest.fixture
def book_accounts(client, fund, usdc, maker, trader, owner, bot):
    fund(bot, usdc, 2_000_000 * USDC)
    return long_book(client, fund, usdc, maker, trader, owner, CASH)


def make_keeper(contracts, store, bot, w3=None):
    c = contracts if w3 is None else contracts.with_web3(w3)
    tx = TxManager(c.w3, LocalSigner(bot.private_key), store)
    return Keeper(c, store, LiquidatorConfig(account=acct(bot)), tx=tx, sender=str(bot))


def liquidatable(engine, accounts) -> set[int]:
    """What the chain allows: below MM with every perp priced."""
    return {
        a
        for a, m in zip(accounts, engine.healths(accounts), strict=True)
        if m.equity < m.mm and m.prices_ok
    }


def below_mm(engine, accounts) -> set[int]:
    return {a for a, m in zip(accounts, engine.healths(accounts), strict=True) if m.equity < m.mm}


def run_until_quiet(keeper, ticks=6):
    out = []
    for _ in range(ticks):
        out.append(keeper.tick())
        if not out[-1].scan.confirmed and not keeper.tx.in_flight():
            break
    return out


def test_keeper__reverting_feed__exposed_perp_blocked_others_liquidated(
    project, contracts, deployment, engine, client, fund, wbtc, maker, trader, owner, bot,
    book_accounts, feeds, caplog,
):  # fmt: skip
    # Sub 1 also holds a small BTC perp; subs 2 and 3 hold WBTC dust as collateral.
    order = client.order(maker, BTC, -WAD // 100, 60_000 * WAD, 99, 2**40)
    client.fill(order, client.sign(maker, order), WAD // 1_000, book_accounts[0], sender=trader)
    for sub in (2, 3):
        fund(trader, wbtc, WBTC_UNITS, sub=sub)
    keeper = make_keeper(contracts, Store(":memory:"), bot)
    assert keeper.tick().scan.confirmed == []

    hostile = project.HostileAggregator.deploy(8, 60_000 * 10**8, sender=owner)
    engine.set_feed(BTC, hostile, 3_600, sender=owner)
    hostile.set_mode(1, sender=owner)  # every latestRoundData reverts
    deployment.set_price("ETH", SHOCKED, sender=owner)
    assert engine.liquidation_price(BTC) == 0
    expected = liquidatable(engine, book_accounts)
    blocked = below_mm(engine, book_accounts) - expected
    assert blocked == {book_accounts[0]} and len(expected) == 7
    assert {book_accounts[1], book_accounts[2]} <= expected  # dead collateral counts at zero

    with caplog.at_level(logging.WARNING, logger="ballast.keeper"):
        ticks = run_until_quiet(keeper)
    first = ticks[0]
    assert first.scan.blocked == 1 and first.scan.unpriced_assets == (BTC,)
    assert {a.account for a in first.sent()} == expected
    assert liquidatable(engine, book_accounts) == set()
    assert below_mm(engine, book_accounts) == blocked  # waits for a price, as the chain says
    assert keeper.metrics.value("keeper_asset_state", {"asset": str(BTC)}) == 1
    assert keeper.metrics.value("keeper_blocked_accounts") == 1
    assert any(getattr(r, "fields", {}).get("alert") == "asset_unpriced" for r in caplog.records)


class FailingReads:
    """A JSON-RPC proxy to anvil that answers every ``eth_call`` whose calldata is in
    ``failing`` with an error (a market read that fails), passing everything else on."""

    def __init__(self, upstream: str):
        self.failing: set[str] = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                r = requests.post(upstream, json=body).json()
                batch = isinstance(body, list)
                reqs, answers = (body, r) if batch else ([body], [r])
                by_id = {a.get("id"): a for a in answers}
                for q in reqs:
                    if q.get("method") != "eth_call":
                        continue
                    call = q["params"][0]
                    if call.get("data", call.get("input")) in proxy.failing:
                        by_id[q["id"]].pop("result", None)
                        by_id[q["id"]]["error"] = {"code": -32000, "message": "upstream failed"}
                out = json.dumps(answers if batch else answers[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_keeper__market_read_fails__exposed_accounts_wait_others_liquidated(
    contracts, deployment, engine, fund, wbtc, trader, owner, bot, book_accounts, chain, caplog,
    tmp_path,
):  # fmt: skip
    for sub in (2, 3):
        fund(trader, wbtc, WBTC_UNITS, sub=sub)
    exposed = {Engine.account_id(trader, 2), Engine.account_id(trader, 3)}
    proxy = FailingReads(chain.provider.uri)
    try:
        db = tmp_path / "keeper.db"
        keeper = make_keeper(contracts, Store(db), bot, w3=http_web3(proxy.url, 10))
        assert keeper.tick().scan.confirmed == []
        deployment.set_price("ETH", SHOCKED, sender=owner)
        expected = liquidatable(engine, book_accounts)
        assert exposed <= expected and len(expected) == 8
        price_read = contracts.engine.encode_abi("liquidation_price", args=(BTC,))
        proxy.failing.add(price_read)

        with caplog.at_level(logging.WARNING, logger="ballast.keeper"):
            ticks = run_until_quiet(keeper)
        first = ticks[0]
        assert first.error is None
        assert first.scan.failed_assets == (BTC,) and first.scan.excluded == len(exposed)
        assert {a.account for a in first.sent()} == expected - exposed
        assert liquidatable(engine, book_accounts) == exposed  # left for a later block
        assert keeper.metrics.value("keeper_asset_state", {"asset": str(BTC)}) == 2
        assert keeper.metrics.value("keeper_excluded_accounts") == len(exposed)
        assert keeper.metrics.value("keeper_market_read_failures_total") >= 1
        alerts = [r for r in caplog.records if getattr(r, "fields", {}).get("alert")]
        assert {r.fields["alert"] for r in alerts} >= {"market_read_failed", "asset_unpriced"}
        status = read_status(db)  # what `keeper-status` prints
        assert status["failed_assets"] == [BTC] and status["excluded"] == len(exposed)
        assert status["at_risk"] == 0 and status["in_flight"] == 0  # the rest are done
        assert status["signer"] == str(bot) and status["signer_balance_wei"] > 0

        proxy.failing.clear()  # the reads answer again: the exposed accounts are taken
        ticks = run_until_quiet(keeper)
        assert {a.account for a in ticks[0].sent()} == exposed
        assert liquidatable(engine, book_accounts) == set()
        assert keeper.metrics.value("keeper_asset_state", {"asset": str(BTC)}) == 0
    finally:
        proxy.close()
