"""Keeper workers on a real broker: a Redis server, the Silverback runner and two
``silverback worker`` processes (each with its own key) against the test anvil.

One shock: a worker is killed while the liquidations are under way, and the other finishes
the work; every liquidatable account is restored and no liquidation is sent twice (no
reverted transaction from either key). Then every process stops (the surviving worker
drains on SIGTERM), a second shock lands while none runs, and the restarted workers resume
from their stores: the new accounts are liquidated, none of the old ones again.

The worker processes' transactions outlive Ape's per-test chain isolation (its snapshot is
not restored after them), so this module runs in its own `ape test` session: `make test`
runs it after the other anvil suites.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ETH, USDC, WAD

from offchain_risk import deploy
from offchain_risk.chain import account_id
from offchain_risk.keeper.cluster import Cluster, indexed_block, liquidatable, start_redis
from offchain_risk.keeper.workers import Partition, RedisClaims

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deployments" / "config" / "local.toml"
N = 60
PARTITIONS = 4
STARTUP_S = 240  # two workers and a runner import Ape on a loaded machine


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private Redis server (the Debian package; `.ci/run` installs it when missing)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: apt-get install -y redis-server (.ci/run does)")
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def book(project, deployment, owner, accounts):
    """N accounts long 1 ETH at 2,000 with cash uniform in [620, 1,500] USD (the keeper
    benchmark's book), opened through the test-only Seeder venue; two worker keys with a
    funded margin account each."""
    d = deployment
    seeder = project.Seeder.deploy(d.engine, d.cash, sender=owner)
    d.engine.set_venue(seeder, True, sender=owner)
    cash = [int(c * USDC) for c in np.random.default_rng(3).uniform(620, 1_500, N)]
    maker_cash = 10**9 * USDC
    d.cash.mint(seeder, maker_cash + sum(cash), sender=owner)
    seeder.approve_engine(maker_cash + sum(cash), sender=owner)
    seeder.fund(0, maker_cash, sender=owner)
    seeder.seed(1, cash, ETH, WAD, 2_000 * WAD, 0, sender=owner)
    workers = [accounts[4], accounts[6]]
    for w in workers:
        d.cash.mint(w, 10**7 * USDC, sender=owner)
        d.cash.approve(d.engine, 10**7 * USDC, sender=w)
        d.engine.deposit(account_id(str(w), 0), d.cash, 10**7 * USDC, sender=w)
    return [account_id(str(seeder.address), 1 + i) for i in range(N)], workers


def _wait(cond, timeout: float, what: str, cluster: Cluster, chain) -> None:
    """Mine a block a second (the runner follows the head) until ``cond()``."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode}\n{cluster.logs()}")
        chain.provider.web3.provider.make_request("evm_mine", [])
        time.sleep(1.0)


def _settle(cluster: Cluster, names: list[str], quiet_s: float = 5, timeout: float = 300) -> None:
    """Mine nothing until the workers' logs stay unchanged for ``quiet_s``: the tasks queued
    while they were slower than a block a second (a loaded machine) are done."""
    logs = [cluster.folder / f"{n}.log" for n in names]
    deadline, last, since = time.time() + timeout, None, time.time()
    while time.time() < deadline:
        sizes = [p.stat().st_size for p in logs]
        if sizes != last:
            last, since = sizes, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise AssertionError(f"{names} still busy after {timeout}s\n{cluster.logs()}")


def _open_task(log: Path) -> str | None:
    """The last task the worker's log shows started and not finished (one task at a time:
    ``-w 1``), as ``name[block=0x...]``."""
    started, done = [], set()
    for line in log.read_text().splitlines():
        if "[block=0x" not in line or "] - " not in line:
            continue
        key = line.split("] - ")[0].split()[-1] + "]"
        if line.endswith("] - Started"):
            started.append(key)
        else:
            done.add(key)
    return started[-1] if started and started[-1] not in done else None


def _freeze_mid_task(cluster: Cluster, name: str, w3, tries: int = 30) -> tuple[str, int]:
    """Mine blocks until worker ``name`` is caught (SIGSTOP) inside a task whose tick has not
    yet indexed the task's block: the task and that block."""
    proc, log = cluster.procs[name], cluster.folder / f"{name}.log"
    key = name.split("-")[-1]
    for _ in range(tries):
        w3.provider.make_request("evm_mine", [])
        deadline = time.time() + 5
        while time.time() < deadline:
            task = _open_task(log)
            if task is not None:
                os.kill(proc.pid, signal.SIGSTOP)
                block = w3.eth.get_block(task.split("block=")[1].rstrip("]"))["number"]
                if _open_task(log) == task and indexed_block(cluster.db(int(key))) < block:
                    return task, block
                os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
    raise AssertionError(f"{name} was never caught inside a task\n{cluster.logs()}")


def _reverted(w3, senders: set[str], first: int) -> list[str]:
    out = []
    for n in range(first, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"].lower() in senders:
                if w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                    out.append(tx["hash"].hex())
    return out


def test_redis_claims__one_owner_at_a_time_expiry_and_late_release(redis_url):
    a = RedisClaims.from_url(redis_url, "worker-a", ttl=0.5, prefix="t")
    b = RedisClaims.from_url(redis_url, "worker-b", ttl=5, prefix="t")
    assert a.claim(11) and a.claim(11)  # ours again: kept
    assert not b.claim(11) and b.holder(11) == "worker-a"
    b.release(11)  # not b's to release
    assert a.holder(11) == "worker-a"
    time.sleep(0.7)  # a's claim lapses (a dead worker)
    assert b.claim(11)
    a.release(11)  # a late release must not free b's claim
    assert b.holder(11) == "worker-b"
    b.release(11)
    assert a.holder(11) is None


def test_worker_drain__sigterm_mid_task__task_finishes_no_new_work_then_stops(monkeypatch):
    """SIGTERM while a task runs (in-process, the bot's own handlers): that task's tick
    finishes and returns its summary, a task arriving meanwhile runs no tick, and the worker
    is stopped (SIGINT to itself, taskiq's clean shutdown) only once the tick is done."""
    from offchain_risk.keeper import bot

    started, release = threading.Event(), threading.Event()
    ticked: list[int] = []

    class BusyKeeper:
        def tick(self, partition):
            ticked.append(partition.index)
            started.set()
            assert release.wait(30)
            return SimpleNamespace(summary=lambda: {"head": 7})

    monkeypatch.setattr(bot, "_state", {"keeper": BusyKeeper()})
    stops: list[tuple[int, int]] = []
    monkeypatch.setattr(bot.os, "kill", lambda pid, sig: stops.append((pid, sig)))
    results: dict[int, dict] = {}

    def task(k: int) -> threading.Thread:
        t = threading.Thread(target=lambda: results.update({k: bot.tick(Partition(k, 2))}))
        t.start()
        return t

    busy = task(0)
    assert started.wait(30)
    bot._drain()  # SIGTERM's handler
    late = task(1)  # delivered while draining
    time.sleep(0.5)
    assert stops == [] and ticked == [0]  # the tick in progress holds the stop
    release.set()
    busy.join(30)
    late.join(30)
    deadline = time.time() + 10
    while not stops and time.time() < deadline:
        time.sleep(0.05)
    assert results[0] == {"partition": 0, "head": 7}  # finished and reported
    assert results[1] == {"partition": 1, "draining": True} and ticked == [0]  # no new work
    assert stops == [(os.getpid(), signal.SIGINT)]


def _fake_build(monkeypatch, tmp_path, from_manifest) -> None:
    """``bot._build`` without a chain: the manifest is its path, the keeper what
    ``from_manifest`` makes, the store a file in ``tmp_path``."""
    from offchain_risk.keeper import bot

    monkeypatch.setattr(bot, "load_manifest", lambda path, chain_id: {"path": path})
    monkeypatch.setattr(bot.Keeper, "from_manifest", from_manifest)
    monkeypatch.setenv("BALLAST_KEEPER_DB", str(tmp_path / "k.db"))


def test_worker_build__vol_signers__its_keeper_publishes_through_its_own_signer(
    monkeypatch, tmp_path
):
    """``BALLAST_VOL_SIGNERS`` gives the worker's keeper the CLI keeper's vol updater, built
    on the manifest with the named signers and the keeper's own transaction manager; without
    it the keeper publishes nothing."""
    from offchain_risk.keeper import bot

    made: list[SimpleNamespace] = []
    calls: list[tuple] = []

    def from_manifest(project, w3, manifest, store, **kwargs):
        store.close()
        made.append(SimpleNamespace(tx=object(), vol_updater=None, manifest=manifest))
        return made[-1]

    def build_vol(project, w3, manifest, keeper, names):
        calls.append((manifest, keeper, names))
        return SimpleNamespace(signer=keeper.tx)

    _fake_build(monkeypatch, tmp_path, from_manifest)
    monkeypatch.setattr(bot, "build_vol_updater_for", build_vol)
    monkeypatch.setenv("BALLAST_MANIFEST", "m.json")
    monkeypatch.setenv("BALLAST_VOL_SIGNERS", "test:5, test:6,")
    keeper = bot._build()
    assert calls == [({"path": "m.json"}, keeper, ["test:5", "test:6"])]
    assert keeper.vol_updater.signer is keeper.tx  # sent on the worker's own nonce lane
    monkeypatch.delenv("BALLAST_VOL_SIGNERS")
    assert bot._build().vol_updater is None and len(calls) == 1


@pytest.mark.parametrize(("partitions", "budget"), [(1, 200), (2, 100), (3, 67), (4, 50)])
def test_worker_build__partitions_share_one_block_of_liquidations(
    monkeypatch, tmp_path, partitions, budget
):
    """A block holds about 200 liquidations (the keeper's ``max_per_tick``); the tasks of one
    block share them, rounded up, instead of each sending 200."""
    from offchain_risk.keeper import bot

    seen: list[dict] = []

    def from_manifest(project, w3, manifest, store, **kwargs):
        store.close()
        seen.append(kwargs)
        return SimpleNamespace(tx=object(), vol_updater=None)

    _fake_build(monkeypatch, tmp_path, from_manifest)
    monkeypatch.setattr(bot, "PARTITIONS", partitions)
    monkeypatch.delenv("BALLAST_VOL_SIGNERS", raising=False)
    bot._build()
    assert seen[0]["max_per_tick"] == budget


def test_workers__one_killed_mid_shock_then_all_restarted__each_account_handled_once(
    project, chain, deployment, engine, liquidations, owner, book, redis_url, tmp_path
):
    accounts, workers = book
    keys = [4, 6]
    cfg = deploy.load_config(CONFIG)
    manifest = deploy.build_manifest(
        deployment,
        None,
        cfg,
        network="local",
        chain_id=chain.chain_id,
        block=0,
        deployer=str(owner),
        config_path=str(CONFIG),
    )
    path = deploy.write_manifest(tmp_path / "local.json", manifest)
    w3 = chain.provider.web3
    senders = {str(w).lower() for w in workers}
    network = f"ethereum:local:{chain.provider.uri}"
    cluster = Cluster(tmp_path, network, path, redis_url, partitions=PARTITIONS)
    try:
        for k in keys:
            cluster.worker(k)
        cluster.runner()
        head = chain.blocks.head.number
        _wait(
            lambda: all(indexed_block(cluster.db(k)) > head for k in keys),
            STARTUP_S,
            "both workers to tick",
            cluster,
            chain,
        )

        # Shock 1; worker 6 dies as soon as the first liquidation is mined. Each shock's
        # liquidations are counted from the block of its price push on: the block before it
        # may hold the previous shock's last liquidation (nothing is mined once it is done).
        deployment.set_price("ETH", 1_400, sender=owner)
        start = chain.blocks.head.number
        first = liquidatable(engine, accounts)
        assert len(first) >= 10
        _wait(
            lambda: len(liquidatable(engine, accounts)) < len(first),
            120,
            "a first liquidation",
            cluster,
            chain,
        )
        cluster.stop("worker-6")  # SIGKILL: mid-shock, claims and a task possibly held
        _wait(lambda: not liquidatable(engine, accounts), 180, "shock 1 done", cluster, chain)
        assert _reverted(w3, senders, start) == []
        counts: dict[int, int] = {}
        for log in liquidations.Liquidated.range(start, chain.blocks.head.number + 1):
            counts[log.account] = counts.get(log.account, 0) + 1
        assert set(counts) == first  # every liquidatable account, and no other
        assert max(counts.values()) <= 2  # the policy's fraction restores in one or two slices
        liquidators = {
            log.liquidator
            for log in liquidations.Liquidated.range(start, chain.blocks.head.number + 1)
        }
        assert account_id(str(workers[0]), 0) in liquidators  # the survivor took over

        # Every process stops: the survivor drains on SIGTERM and exits cleanly.
        _settle(cluster, ["worker-4"])  # the runner's shutdown task queues behind the rest
        cluster.stop("runner", signal.SIGINT, timeout=120)  # its shutdown task runs on worker 4
        assert cluster.stop("worker-4", signal.SIGTERM, timeout=120) in (0, -signal.SIGINT, 130)
        deployment.set_price("ETH", 1_150, sender=owner)
        start2 = chain.blocks.head.number
        second = liquidatable(engine, accounts)
        assert second and second - first  # accounts that were healthy after shock 1
        for k in keys:
            cluster.worker(k)
        cluster.runner()
        _wait(lambda: not liquidatable(engine, accounts), STARTUP_S, "shock 2 done", cluster, chain)
        assert _reverted(w3, senders, start) == []
        again: dict[int, int] = {}
        for log in liquidations.Liquidated.range(start2, chain.blocks.head.number + 1):
            again[log.account] = again.get(log.account, 0) + 1
        assert set(again) == second
        assert max(again.values()) <= 2

        # Drain of a real worker process: SIGTERM while a task is under way. Worker 6 is
        # frozen (SIGSTOP) inside a task whose tick has not indexed the task's block yet, then
        # signalled and resumed: the tick must finish (its store reaches that block; tasks
        # taken after the signal run no tick) before the process exits cleanly.
        pid = cluster.procs["worker-6"].pid
        task, block = _freeze_mid_task(cluster, "worker-6", w3)
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
        code = cluster.procs.pop("worker-6").wait(120)
        assert code in (0, -signal.SIGINT, 130), cluster.logs()
        text = (tmp_path / "worker-6.log").read_text()
        assert f"SUCCESS:  {task}" in text, cluster.logs()
        # ... and its result was posted before the stop (no send cut by the SIGINT)
        assert "Traceback" not in text.split(f"SUCCESS:  {task}")[1], cluster.logs()
        assert indexed_block(cluster.db(6)) >= block, cluster.logs()
    finally:
        cluster.close()
