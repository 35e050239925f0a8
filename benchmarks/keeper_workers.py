"""Keeper workers on a real broker: 1, 2 and 4 ``silverback worker`` processes on Redis.

For each book size the benchmark's book is opened once (``keeper.seed_book``: long 1 ETH at
2,000, cash uniform in [620, 1,500] USD), each worker key gets a funded margin account, and
the chain is snapshotted. Then, for each worker count W, from that snapshot: a private Redis
(flushed), the Silverback runner with ``BALLAST_PARTITIONS=W`` and W workers, each with its
own key and store, exactly as README's "Keeper workers" runs them. anvil mines a block every
second (interval mining), the runner kicks one task per partition per block, and:

* quiet blocks: the workers backfill and scan until ``QUIET`` blocks after all of them have
  indexed the head;
* shock: ETH -30% (the same price move as the in-process benchmark), then blocks go on until
  no account is liquidatable.

Every task's summary (``Keeper.tick``) is read back from the result backend: scan ms per
task (quiet and shock blocks) and the task's wall time. Blocks and seconds to the last
liquidation come from the ``Liquidated`` logs and their blocks' timestamps (one block a
second). Every liquidatable account must be liquidated, none liquidated more than twice
(the policy's fraction restores in one or two slices), and no worker may die.

Budget (2 shared cores): each worker count costs the workers' start (Ape's import and the
backfill: 40-90 s at 1,000 accounts under load) plus the shock's run. 1,000 accounts: about
2.5 min per worker count, 8 min for the three. 10,000 accounts: about 2.5 min of seeding, and
at load average 15 one worker sent 200 liquidations per task in 40-210 s per task (about 800
of the 2,951 liquidations in the first 9 minutes), so about 30 min per worker count: run it
on a quiet machine, or one size at a time (``--keeper-workers-sizes 10000``).
"""

from __future__ import annotations

import json
import pickle
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.keeper import USDC, seed_book
from offchain_risk import deploy
from offchain_risk.chain import account_id
from offchain_risk.keeper.cluster import Cluster, indexed_block, liquidatable, start_redis

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deployments" / "config" / "local.toml"
WORKERS = (1, 2, 4)
KEYS = (4, 5, 6, 7)  # Ape's test accounts: one signing key per worker
QUIET = 8  # blocks scanned before the shock
STARTUP_S = 600  # Ape's import and the backfill, per worker count
SHOCK_S = 1_800  # the shock's run at most


@dataclass
class WorkersRun:
    accounts: int
    workers: int
    startup_s: float  # from the processes' start to every worker's store at the head
    quiet_scan_ms: float  # median of the quiet blocks' tasks
    shock_scan_ms: float  # the shock block: the slowest partition's task
    shock_task_ms: float  # the shock block: the slowest task's wall time (scan + sends)
    liquidatable: int
    liquidations: int
    blocks: int  # shock block -> block of the last liquidation
    seconds: int  # their timestamps (one block a second)
    max_slices: int  # liquidations of one account
    tasks: int  # tick tasks run
    per_worker: dict = field(default_factory=dict)  # signer -> liquidations sent


def _results(url: str) -> list[dict]:
    """Every tick task's summary the result backend holds (the system tasks left out), with
    its wall time in ms as ``task_ms``."""
    import redis

    client = redis.Redis.from_url(url)
    out = []
    for key in client.scan_iter(count=1_000):
        if client.type(key) != b"string":
            continue
        raw = client.get(key)
        try:  # the backend's default serializer pickles; a JSON one is read too
            value = pickle.loads(raw)  # our own private server's results
        except Exception:
            try:
                value = json.loads(raw)
            except ValueError:
                continue
        ret = value.get("return_value") if isinstance(value, dict) else None
        if isinstance(ret, dict) and "partition" in ret and "head" in ret:
            out.append({**ret, "task_ms": 1e3 * float(value.get("execution_time") or 0)})
    return out


def _wait(cond, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.time() + timeout
    while not cond():
        if dead := cluster.dead():
            raise RuntimeError(f"{what}: {dead} exited\n{cluster.logs()}")
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(2)


def run_workers(
    d, owner, w3, accounts: list[int], manifest: Path, folder: Path, workers: int, redis_url: str
) -> WorkersRun:
    """One worker count on the snapshot's chain (interval mining already on)."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    folder.mkdir(parents=True, exist_ok=True)
    network = f"ethereum:local:{w3.provider.endpoint_uri}"
    cluster = Cluster(folder, network, manifest, redis_url, partitions=workers)
    keys = KEYS[:workers]
    t0 = time.time()
    try:
        for k in keys:
            cluster.worker(k)
        cluster.runner()
        head = w3.eth.block_number
        _wait(
            lambda: all(indexed_block(cluster.db(k)) >= head for k in keys),
            STARTUP_S,
            "the workers to index the head",
            cluster,
        )
        startup_s = time.time() - t0
        ready = w3.eth.block_number
        _wait(lambda: w3.eth.block_number >= ready + QUIET, 120, "quiet blocks", cluster)
        feed = d.feeds[d.symbols["ETH"]]  # devnet's set_price, keeping the receipt
        receipt = feed.set_price(1_400 * 10**8, sender=owner)
        shock_block = w3.eth.wait_for_transaction_receipt(receipt.txn_hash, 120)["blockNumber"]
        due = liquidatable(d.engine, accounts, shock_block)  # workers may have begun
        _wait(
            lambda: not liquidatable(d.engine, accounts), SHOCK_S, "the last liquidation", cluster
        )
        end = w3.eth.block_number
        if dead := cluster.dead():
            raise RuntimeError(f"{dead} exited\n{cluster.logs()}")
    finally:
        if "runner" in cluster.procs:
            try:
                cluster.stop("runner", signal.SIGINT, timeout=60)
            except AssertionError:
                pass
        cluster.close()
    logs = list(d.liquidations.Liquidated.range(shock_block, end + 1))
    counts: dict[int, int] = {}
    for log in logs:
        counts[log.account] = counts.get(log.account, 0) + 1
    if set(counts) != due:
        raise RuntimeError(f"liquidated {len(counts)} accounts, {len(due)} were due")
    last = max(log.block_number for log in logs)
    stamp = w3.eth.get_block
    tasks = _results(redis_url)
    quiet = [t["scan_ms"] for t in tasks if "scan_ms" in t and ready < t["head"] < shock_block]
    first = min(t["head"] for t in tasks if t["head"] >= shock_block and "scan_ms" in t)
    shock = [t for t in tasks if t["head"] == first and "scan_ms" in t]
    by_signer: dict[str, int] = {}
    for log in logs:
        by_signer[str(log.liquidator)] = by_signer.get(str(log.liquidator), 0) + 1
    return WorkersRun(
        accounts=len(accounts),
        workers=workers,
        startup_s=startup_s,
        quiet_scan_ms=statistics.median(quiet) if quiet else -1.0,
        shock_scan_ms=max(t["scan_ms"] for t in shock),
        shock_task_ms=max(t["task_ms"] for t in shock),
        liquidatable=len(due),
        liquidations=len(logs),
        blocks=last - shock_block,
        seconds=int(stamp(last)["timestamp"]) - int(stamp(shock_block)["timestamp"]),
        max_slices=max(counts.values()),
        tasks=len(tasks),
        per_worker=by_signer,
    )


def measure(project, test_accounts, w3, sizes=(1_000,), folder: Path | None = None) -> list:
    """Every size, every worker count; anvil must be ours (interval mining is switched on)."""
    owner = test_accounts[0]
    folder = folder or ROOT / ".cache" / "keeper-workers"
    folder.mkdir(parents=True, exist_ok=True)
    rpc = w3.provider.make_request
    cfg = deploy.load_config(CONFIG)
    redis_proc, url = start_redis(folder)
    out = []
    try:
        for n in sizes:
            top = rpc("evm_snapshot", [])["result"]
            d, accounts, seed_s = seed_book(project, owner, w3, n)
            print(f"keeper workers: {n:,} accounts seeded in {seed_s:.0f} s", flush=True)
            for k in KEYS:
                w = test_accounts[k]
                d.cash.mint(w, 10**9 * USDC, sender=owner)
                d.cash.approve(d.engine, 10**9 * USDC, sender=w)
                d.engine.deposit(account_id(str(w), 0), d.cash, 10**9 * USDC, sender=w)
            manifest = deploy.write_manifest(
                folder / f"local-{n}.json",
                deploy.build_manifest(
                    d,
                    None,
                    cfg,
                    network="local",
                    chain_id=w3.eth.chain_id,
                    block=0,
                    deployer=str(owner),
                    config_path=str(CONFIG),
                ),
            )
            for workers in WORKERS:
                snap = rpc("evm_snapshot", [])["result"]
                rpc("evm_setIntervalMining", [1])
                try:
                    run = run_workers(
                        d, owner, w3, accounts, manifest, folder / f"{n}-{workers}", workers, url
                    )
                finally:
                    rpc("evm_setIntervalMining", [0])
                    rpc("evm_setAutomine", [True])
                    rpc("evm_revert", [snap])
                print(run, flush=True)
                out.append(run)
            rpc("evm_revert", [top])
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
    return out


def render(runs: list[WorkersRun], load: str = "") -> str:
    lines = [
        "## Keeper workers on Redis",
        "",
        "`python -m benchmarks --keeper` (`benchmarks/keeper_workers.py`): the Silverback "
        "runner and 1, 2 or 4 `silverback worker` processes on a private Redis (taskiq stream "
        "broker, Redis claims), each worker with its own key and store, against one anvil "
        "mining a block a second; `BALLAST_PARTITIONS` = workers. The book and the shock are "
        "the in-process benchmark's (ETH -30%). Scan ms are the workers' own tick summaries "
        "read back from the result backend: quiet = median over the quiet blocks' tasks, shock "
        "= the slowest partition's task on the first block after the shock (its wall time "
        "includes the previews, simulations and sends). Blocks and seconds run from the "
        "shock's block to the last liquidation's (block timestamps)."
        + (f" Machine load: {load}." if load else ""),
        "",
        "| accounts | workers | start s | quiet scan ms | shock scan ms | shock task ms "
        "| liquidatable | liquidations | blocks to last | seconds to last | most slices "
        "| by worker |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        split = " / ".join(str(v) for v in sorted(r.per_worker.values(), reverse=True))
        lines.append(
            f"| {r.accounts:,} | {r.workers} | {r.startup_s:.0f} | {r.quiet_scan_ms:.0f} "
            f"| {r.shock_scan_ms:.0f} | {r.shock_task_ms:,.0f} | {r.liquidatable:,} "
            f"| {r.liquidations:,} | {r.blocks} | {r.seconds} | {r.max_slices} | {split} |"
        )
    lines += ["", *growth(runs)]
    return "\n".join(lines)


def growth(runs: list[WorkersRun]) -> list[str]:
    """Ratios against one worker, per size, side by side."""
    out = []
    for n in sorted({r.accounts for r in runs}):
        rows = {r.workers: r for r in runs if r.accounts == n}
        one = rows.get(1)
        if one is None or len(rows) < 2:
            continue
        parts = [
            f"{w} workers: shock task {one.shock_task_ms / max(r.shock_task_ms, 1e-3):.2f}x "
            f"faster, seconds to last {one.seconds / max(r.seconds, 1):.2f}x, quiet scan "
            f"{r.quiet_scan_ms / max(one.quiet_scan_ms, 1e-3):.2f}x of one worker's"
            for w, r in sorted(rows.items())
            if w != 1
        ]
        out.append(f"{n:,} accounts, against one worker: " + "; ".join(parts) + ".")
    sizes = sorted({r.accounts for r in runs})
    if len(sizes) > 1:
        a = {r.workers: r for r in runs if r.accounts == sizes[0]}
        b = {r.workers: r for r in runs if r.accounts == sizes[-1]}
        k = sizes[-1] / sizes[0]
        for w in sorted(set(a) & set(b)):
            out.append(
                f"{w} worker(s), {sizes[0]:,} -> {sizes[-1]:,} accounts ({k:.0f}x): quiet scan "
                f"{b[w].quiet_scan_ms / max(a[w].quiet_scan_ms, 1e-3):.1f}x, shock task "
                f"{b[w].shock_task_ms / max(a[w].shock_task_ms, 1e-3):.1f}x, seconds to last "
                f"{b[w].seconds / max(a[w].seconds, 1):.1f}x."
            )
    return out
