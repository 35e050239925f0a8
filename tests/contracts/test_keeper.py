"""The keeper on anvil, real transactions: shock, restart, dry run, RPC outage, stuck
transaction, re-organisation."""

from __future__ import annotations

import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import ETH, USDC, WAD, acct
from keeper_setup import liquidatable, long_book

from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.metrics import serve
from offchain_risk.keeper.rpc import Contracts, http_web3
from offchain_risk.keeper.store import CONFIRMED, PENDING, Store
from offchain_risk.keeper.txs import GasPolicy, LocalSigner, TxManager

# Sub-accounts long 10 ETH at 2,000. ETH then falls 30% to 1,400: MM = 10 * 1,400 * 20%
# = 2,800 and E = cash - 6,000, so cash below 8,800 is liquidatable; below 7,400 the
# account is under 50% health (no per-call cap).
CASH = [6_300 + 350 * i for i in range(12)]  # 6,300 .. 10,150: 8 liquidatable
SHOCKED = 1_400


@pytest.fixture(scope="session")
def bot(accounts):
    """The keeper's liquidation key (its own nonce; not the risk relayer)."""
    return accounts[4]


@pytest.fixture
def bot_funded(fund, usdc, bot):
    fund(bot, usdc, 2_000_000 * USDC)


@pytest.fixture
def book_accounts(client, fund, usdc, maker, trader, owner, bot_funded):
    return long_book(client, fund, usdc, maker, trader, owner, CASH)


@pytest.fixture
def contracts(project, chain, deployment):
    d = deployment
    return Contracts.from_project(
        project, chain.provider.web3, d.engine.address, d.liquidations.address, d.lens.address
    )


def make_keeper(contracts, store, bot, *, w3=None, dry_run=False, gas=None, **kw):
    c = contracts if w3 is None else contracts.with_web3(w3)
    config = LiquidatorConfig(account=acct(bot), max_per_tick=kw.pop("max_per_tick", 200))
    tx = None if dry_run else TxManager(c.w3, LocalSigner(bot.private_key), store, gas)
    return Keeper(c, store, config, tx=tx, sender=str(bot), lookback=4, **kw)


def shock(deployment, owner):
    deployment.set_price("ETH", SHOCKED, sender=owner)


def liquidated_counts(liquidations, chain, start):
    counts: dict[int, int] = {}
    for log in liquidations.Liquidated.range(start, chain.blocks.head.number + 1):
        counts[log.account] = counts.get(log.account, 0) + 1
    return counts


class FailingVolUpdater:
    """A vol updater whose every run fails (an endpoint or a signer gone)."""

    fitters = (ETH,)

    def due(self, now):
        return True

    def run(self, forwards, now):
        raise RuntimeError("vol signer unreachable")


def test_keeper__price_shock__every_account_restored_within_bounded_blocks(
    contracts, deployment, engine, liquidations, owner, bot, book_accounts, chain, tmp_path
):
    # every tick's vol publication fails: the liquidations go on regardless
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, vol_updater=FailingVolUpdater())
    first = keeper.tick()
    assert first.index.events > 0 and len(keeper.book) >= len(CASH) + 1
    assert first.scan.confirmed == [] and first.actions == []
    expected = set(liquidatable(engine, book_accounts))
    assert expected == set()
    shock(deployment, owner)
    start = chain.blocks.head.number
    expected = set(liquidatable(engine, book_accounts))
    assert len(expected) == 8

    tick = keeper.tick()
    confirmed = [c.account for c in tick.scan.confirmed]
    assert set(confirmed) == expected
    shortfalls = [c.shortfall for c in tick.scan.confirmed]
    assert shortfalls == sorted(shortfalls, reverse=True)  # worst first
    assert {a.account for a in tick.sent()} == expected
    ticks = 1
    while liquidatable(engine, book_accounts) and ticks < 4:
        keeper.tick()
        ticks += 1
    assert liquidatable(engine, book_accounts) == []
    assert chain.blocks.head.number - start <= 3 * len(expected)  # one tx per block (automine)
    done = keeper.tick()
    assert done.scan.confirmed == [] and done.actions == []
    assert done.poll.failed == []
    counts = liquidated_counts(liquidations, chain, start)
    assert set(counts) == expected
    txs = keeper.store.txs(kind="liquidation")
    assert all(t.status == CONFIRMED for t in txs) and len(txs) == sum(counts.values())
    assert keeper.metrics.value("keeper_liquidations_confirmed_total") == len(txs)
    assert keeper.metrics.value("keeper_at_risk") == 0
    assert done.error is None and done.vol is None
    failed_vol = keeper.metrics.value("keeper_vol_refused_total", {"check": "error"})
    assert failed_vol == ticks + 2  # every tick: the first, the shocked ones and the last
    # The index equals the chain for every account.
    for a in book_accounts:
        rec = keeper.book.records[a]
        assert rec.cash == engine.cash(a)
        assert rec.assets.get(ETH, (0, 0, 0))[1:] == tuple(engine.position(a, ETH))


def test_keeper__killed_mid_run_and_restarted__none_missed_none_twice(
    contracts, deployment, engine, liquidations, owner, bot, book_accounts, chain, tmp_path
):
    db = tmp_path / "k.db"
    keeper = make_keeper(contracts, Store(db), bot, max_per_tick=3)
    keeper.tick()
    shock(deployment, owner)
    start = chain.blocks.head.number
    expected = set(liquidatable(engine, book_accounts))
    web3 = chain.provider.web3
    web3.provider.make_request("evm_setAutomine", [False])
    try:
        first = keeper.tick()  # three sent, none mined: then the process dies
        sent = {a.account for a in first.sent()}
        assert len(sent) == 3
        keeper.store.close()
        del keeper
        chain.mine()
        restarted = make_keeper(contracts, Store(db), bot)
        assert restarted.indexer.load() > 0  # the index comes back from SQLite
        tick = restarted.tick()
        assert {t.account for t in tick.poll.confirmed} == sent  # adopted, not resent
        assert sent.isdisjoint({a.account for a in tick.sent()})
        assert {a.account for a in tick.sent()} == expected - sent
        chain.mine()
        for _ in range(4):
            restarted.tick()
            chain.mine()
    finally:
        web3.provider.make_request("evm_setAutomine", [True])
    assert liquidatable(engine, book_accounts) == []
    counts = liquidated_counts(liquidations, chain, start)
    assert set(counts) == expected
    # These accounts need exactly one slice each (none is below 50% health but above the
    # cap); a duplicate would show as a second event or a reverted transaction.
    txs = restarted.store.txs(kind="liquidation")
    assert [t.status for t in txs] == [CONFIRMED] * len(txs)
    assert len(txs) == sum(counts.values())
    assert len({t.nonce for t in txs}) == len(txs)


def test_keeper__liquidation_mined_after_the_head_read__indexed_not_liquidated_again(
    contracts, deployment, engine, liquidations, owner, bot, book_accounts, chain, tmp_path
):
    """Regression: the crash replay left rounds uncleared (2 in March 2020, 6 in December
    2021). A tick read head N, indexed to N, and its poll then found the receipts of the
    previous tick's liquidations, which anvil had mined at N + 1 meanwhile: settled, no
    longer in flight, but the book at N still showed those accounts below MM. The scan
    confirmed them again, every preview reverted ("liquidations: account is healthy"),
    the tick sent nothing and the replay's round ended with books below MM."""
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot)
    keeper.tick()
    shock(deployment, owner)
    expected = set(liquidatable(engine, book_accounts))
    rpc = chain.provider.web3.provider.make_request
    rpc("evm_setAutomine", [False])
    try:
        sent = {a.account for a in keeper.tick().sent()}
        assert sent == expected
        head = chain.blocks.head.number
        poll = keeper.tx.poll

        def mined_meanwhile(at):  # the node mines them after the tick has read its head
            chain.mine()
            return poll(at)

        keeper.tx.poll = mined_meanwhile
        tick = keeper.tick()
    finally:
        rpc("evm_setAutomine", [True])
    assert tick.head == head and {t.account for t in tick.poll.confirmed} == sent
    assert tick.index.head == head + 1  # the block they were mined in
    assert liquidatable(engine, book_accounts) == []  # one slice each restores them
    assert tick.scan.confirmed == [] and tick.actions == []


def test_keeper__dry_run__sends_nothing_and_reports(
    contracts, deployment, engine, owner, bot, book_accounts, chain, tmp_path
):
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, dry_run=True)
    shock(deployment, owner)
    expected = set(liquidatable(engine, book_accounts))
    nonce = chain.provider.web3.eth.get_transaction_count(str(bot))
    head = chain.blocks.head.number
    tick = keeper.tick()
    assert {a.account for a in tick.actions if a.outcome == "dry_run"} == expected
    assert all(a.reward > 0 and 0 < a.fraction <= WAD for a in tick.actions)
    assert chain.blocks.head.number == head
    assert chain.provider.web3.eth.get_transaction_count(str(bot)) == nonce
    assert set(liquidatable(engine, book_accounts)) == expected
    assert keeper.store.txs() == []


def test_keeper__unprofitable_or_failing_simulation__not_sent(
    contracts, deployment, engine, owner, bot, book_accounts, chain, tmp_path
):
    shock(deployment, owner)
    # Gas priced absurdly: every reward is below its gas cost.
    keeper = make_keeper(
        contracts, Store(tmp_path / "k.db"), bot, gas=GasPolicy(priority_fee=10**16)
    )
    nonce = chain.provider.web3.eth.get_transaction_count(str(bot))
    tick = keeper.tick()
    assert tick.actions and {a.outcome for a in tick.actions} == {"unprofitable"}
    assert chain.provider.web3.eth.get_transaction_count(str(bot)) == nonce
    # A liquidator account the key does not own: the simulation reverts, nothing is sent.
    stranger_keeper = make_keeper(contracts, Store(tmp_path / "s.db"), bot)
    stranger_keeper.liquidator.config = LiquidatorConfig(account=acct(owner))
    tick = stranger_keeper.tick()
    assert tick.actions and {a.outcome for a in tick.actions} == {"simulation_failed"}
    assert all("not owner or operator" in a.reason for a in tick.actions)
    assert chain.provider.web3.eth.get_transaction_count(str(bot)) == nonce
    assert stranger_keeper.metrics.value("keeper_simulations_failed_total") == len(tick.actions)


class FlakyProxy:
    """An HTTP JSON-RPC proxy to anvil that can be switched off (503)."""

    def __init__(self, upstream: str):
        self.up = True
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not proxy.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                r = requests.post(upstream, data=body, headers={"Content-Type": "application/json"})
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_keeper__rpc_endpoint_fails__ticks_fail_cleanly_then_recover(
    contracts, deployment, engine, owner, bot, book_accounts, chain, tmp_path
):
    proxy = FlakyProxy(chain.provider.uri)
    try:
        keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, w3=http_web3(proxy.url, 2))
        assert keeper.tick().error is None
        proxy.up = False
        shock(deployment, owner)
        expected = set(liquidatable(engine, book_accounts))
        for _ in range(3):
            failed = keeper.tick()
            assert failed.error is not None and failed.actions == []
        assert keeper.metrics.value("keeper_rpc_errors_total") == 3
        assert keeper.metrics.value("keeper_healthy") == 0
        proxy.up = True
        tick = keeper.tick()
        assert tick.error is None
        assert {a.account for a in tick.sent()} == expected
        for _ in range(3):
            keeper.tick()
        assert liquidatable(engine, book_accounts) == []
        assert keeper.metrics.value("keeper_healthy") == 1
    finally:
        proxy.close()


def test_keeper__anvil_reorg__index_matches_the_new_chain(
    contracts, engine, usdc, fund, trader, maker, bot, chain, tmp_path
):
    fund(trader, usdc, 5_000 * USDC)
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, dry_run=True)
    keeper.tick()
    before = keeper.book.records[acct(trader)].cash
    assert before == engine.cash(acct(trader))
    # Two deposits land, are indexed, then a re-organisation of depth 2 drops them.
    fund(maker, usdc, 1_000 * USDC)
    fund(trader, usdc, 2_000 * USDC)
    keeper.tick()
    assert keeper.book.records[acct(trader)].cash == engine.cash(acct(trader)) != before
    assert acct(maker) in keeper.book.records
    maker_cash = engine.cash(acct(maker))
    chain.provider.web3.provider.make_request("anvil_reorg", [4, []])
    assert engine.cash(acct(trader)) == before  # the chain forgot the deposits
    tick = keeper.tick()
    assert tick.index.reorg_block is not None
    assert keeper.book.records[acct(trader)].cash == before
    assert keeper.book.records[acct(maker)].cash == engine.cash(acct(maker)) != maker_cash
    rows = keeper.store.events([acct(trader)])
    assert rows[-1].cash == before


def test_keeper__run_loop__serves_health_and_stops_cleanly(contracts, bot, chain, tmp_path):
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, dry_run=True)
    server = serve(keeper.metrics, 0, max_silence=1.0)
    url = f"http://127.0.0.1:{server.server_port}"
    assert requests.get(f"{url}/health", timeout=5).status_code == 503  # no tick yet
    loop = threading.Thread(target=keeper.run, kwargs={"poll_interval": 0.05})
    loop.start()
    try:
        deadline = time.time() + 20
        while keeper.metrics.value("keeper_last_tick_timestamp") == 0:
            assert time.time() < deadline, "no tick"
            time.sleep(0.05)
        assert requests.get(f"{url}/health", timeout=5).status_code == 200
        page = requests.get(f"{url}/metrics", timeout=5).text
        assert "keeper_accounts_indexed" in page and "keeper_scan_ms_bucket" in page
        head = keeper.store.last_block
        chain.mine()
        while keeper.store.last_block == head:
            assert time.time() < deadline, "the loop did not follow the new block"
            time.sleep(0.05)
    finally:
        keeper.stop()
        loop.join(10)
    assert not loop.is_alive()
    with pytest.raises(sqlite3.ProgrammingError):  # closed on the way out
        keeper.store.count_events()
    time.sleep(1.1)
    assert requests.get(f"{url}/health", timeout=5).status_code == 503  # stale now
    server.shutdown()


def test_keeper__stuck_low_fee_tx__replaced_on_same_nonce(
    contracts, deployment, engine, liquidations, owner, bot, book_accounts, chain, tmp_path
):
    keeper = make_keeper(
        contracts,
        Store(tmp_path / "k.db"),
        bot,
        max_per_tick=1,
        gas=GasPolicy(base_fee_multiplier=1, priority_fee=1, stuck_blocks=2, bump=1.5),
    )
    keeper.tick()
    shock(deployment, owner)
    web3 = chain.provider.web3
    rpc = web3.provider.make_request
    rpc("evm_setAutomine", [False])
    try:
        sent = keeper.tick().sent()
        assert len(sent) == 1
        [stuck] = keeper.store.txs(PENDING)
        # The base fee jumps past the bid: the transaction cannot be included.
        for _ in range(2):
            rpc("anvil_setNextBlockBaseFeePerGas", [hex(stuck.max_fee * 3)])
            chain.mine()
        assert web3.eth.get_transaction_count(str(bot)) == stuck.nonce
        tick = keeper.tick()
        [bumped] = tick.poll.bumped
        assert bumped.nonce == stuck.nonce and bumped.max_fee > stuck.max_fee * 1.5
        assert bumped.account == stuck.account
        # The account is in flight: not liquidated again (the next one is, on nonce + 1).
        assert stuck.account not in {a.account for a in tick.sent()}
        assert [t.nonce for t in keeper.store.txs(PENDING)] == [stuck.nonce, stuck.nonce + 1]
        chain.mine()
        tick = keeper.tick()
    finally:
        rpc("evm_setAutomine", [True])
        # Back to Ape's zero base fee before the snapshot is restored: otherwise anvil 1.7
        # reports the pre-revert head but cannot return its blocks to later tests.
        rpc("anvil_setNextBlockBaseFeePerGas", ["0x0"])
        chain.mine()
    assert bumped.hash in {t.hash for t in tick.poll.confirmed}
    statuses = {t.hash: t.status for t in keeper.store.txs(kind="liquidation")}
    assert statuses[stuck.hash] == "dropped" and statuses[bumped.hash] == CONFIRMED
    receipt = web3.eth.get_transaction_receipt(bumped.hash)
    assert receipt["status"] == 1 and web3.eth.get_transaction(bumped.hash)["nonce"] == stuck.nonce
    assert keeper.metrics.value("keeper_gas_bumps_total") == 1


def test_keeper__funding_accrued__decides_as_the_chains_healths_to_the_wei(
    contracts, deployment, engine, owner, bot, book_accounts, chain, tmp_path
):
    # 1% of the price per hour, paid by longs: 20 ETH-price-hours take 4,000 off each long
    # 10 ETH at 2,000 (E = cash - 4,000, MM 4,000): the books under 8,000 of cash, healthy
    # at this price without funding, go below MM.
    engine.set_funding_params(ETH, 1, WAD // 100, WAD // 100, sender=owner)
    engine.settle_funding(book_accounts[0], ETH, sender=owner)  # the rate starts
    chain.mine(timestamp=chain.pending_timestamp + 10 * 3_600)
    engine.settle_funding(book_accounts[1], ETH, sender=owner)  # pays ~2,000: a snapshot
    chain.mine(timestamp=chain.pending_timestamp + 10 * 3_600)
    head = chain.blocks.head.number
    states = dict(zip(book_accounts, engine.healths(book_accounts, block_id=head), strict=True))
    expected = {a for a, m in states.items() if m.equity < m.mm}
    assert len(expected) == 5 and book_accounts[1] in expected
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot, dry_run=True)
    tick = keeper.tick()
    assert tick.index.head == head
    snap = engine.funding_snap(book_accounts[1], ETH)
    assert snap >= 200 * WAD and keeper.book.records[book_accounts[1]].snaps == {ETH: snap}
    assert {c.account for c in tick.scan.confirmed} == expected
    exact, _ = keeper.scanner.scan(block=head, confirm="exact")
    assert {c.account: (c.equity, c.mm) for c in exact.confirmed} == {
        a: (states[a].equity, states[a].mm) for a in expected
    }
    # a restarted keeper rebuilds the same funding state from the store
    again = make_keeper(contracts, Store(tmp_path / "k.db"), bot, dry_run=True)
    again.indexer.load()
    assert again.book.funding == keeper.book.funding != {}
    assert again.book.records[book_accounts[1]].snaps == {ETH: snap}
