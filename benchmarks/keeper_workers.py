"""Keeper workers on a real broker: 1, 2 and 4 ``silverback worker`` processes on Redis.

Each book size is seeded once and cached (:func:`seeded_book`): the benchmark's book
(``keeper.seed_book``: long 1 ETH at 2,000, cash uniform in [620, 1,500] USD) and a funded
margin account for each worker key, on an anvil of ours, whose state (``anvil_dumpState``:
every block, receipt and log) goes to ``.cache/keeper-books/<n>-<key>/`` with the manifest.
The key hashes the contracts' sources, the devnet listing and the seeding code, so a change
to any of them seeds again. Each worker count then runs on a fresh anvil loaded from that
state (``--load-state``; ``--prune-history``: recent states in memory, nothing on disk), so
the workers index the whole book from its logs as on a live chain; the feeds' last rounds
are pushed again first (a cached round is as old as the cache). Then: a private Redis
(flushed), the Silverback runner with ``BALLAST_PARTITIONS=W`` and W workers, each with its
own key and store, exactly as README's "Keeper workers" runs them. anvil mines a block
every second (:func:`block_clock`), the runner kicks one task per partition per block, and:

* quiet blocks: the workers backfill and scan until ``QUIET`` blocks after all of them have
  indexed the head;
* shock: ETH -30% (the same price move as the in-process benchmark), then blocks go on until
  no account is liquidatable.

Every task's summary (``Keeper.tick``) is read back from the result backend: scan ms per
task (quiet and shock blocks) and the task's wall time. Blocks and seconds to the last
liquidation come from the ``Liquidated`` logs and their blocks' timestamps (one block a
second). Every liquidatable account must be liquidated, none liquidated more than twice
(the policy's fraction restores in one or two slices), and no worker may die.

Budget (2 shared cores, load average 5 to 8): seeding 10,000 accounts takes about 70 s, once;
each worker count then costs its anvil's load (a few seconds), the workers' start (Ape's
import and the backfill, about a minute at 10,000 accounts) and the shock's run (about
2.5 minutes for the 3,043 liquidations of 10,000 accounts).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import shutil
import signal
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.keeper import USDC, seed_book, start_anvil
from offchain_risk import deploy
from offchain_risk.chain import account_id
from offchain_risk.devnet import engine_at
from offchain_risk.keeper.cluster import Cluster, indexed_block, liquidatable, start_redis
from offchain_risk.keeper.rpc import rpc_one

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deployments" / "config" / "local.toml"
WORKERS = (1, 2, 4)
KEYS = (4, 5, 6, 7)  # Ape's test accounts: one signing key per worker
QUIET = 8  # blocks scanned before the shock
STARTUP_S = 600  # Ape's import and the backfill, per worker count
SHOCK_S = 1_800  # the shock's run at most
CACHE = ROOT / ".cache" / "keeper-books"  # seeded chains, one folder per book_key
BOOK_VERSION = 1  # bump when the seeding below changes
# The last 64 blocks' states in memory, nothing on disk (geth keeps 128 by default). Each
# state costs anvil about 34 MB at 100,000 accounts: 256 of them took it past 20 GB.
ANVIL_OPTS = ("--prune-history", "64")


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
    seed_s: float = 0.0  # seeding the book (once: the chain is cached)


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


@dataclass(frozen=True)
class SeededBook:
    """A seeded chain in the cache: anvil's state (``state.json.gz``: every block, receipt
    and log, so workers index the book from its logs as on a live chain), the manifest,
    the aggregators to refresh, the account ids and the seconds the seeding took."""

    folder: Path
    accounts: list[int]
    feeds: list[str]  # every listed asset's aggregator
    eth_feed: str
    seed_s: float

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def state(self) -> Path:
        return self.folder / "state.json.gz"

    @classmethod
    def load(cls, folder: Path) -> SeededBook:
        meta = json.loads((folder / "book.json").read_text())
        return cls(
            folder,
            [int(a) for a in meta["accounts"]],
            meta["feeds"],
            meta["eth_feed"],
            meta["seed_s"],
        )


def book_key(n: int) -> str:
    """The cache entry of an ``n``-account book: a hash of what makes its chain (the
    contracts' sources, the devnet listing, the seeding code, :data:`BOOK_VERSION`)."""
    import inspect

    from benchmarks import keeper

    h = hashlib.sha256(f"{n}:{BOOK_VERSION}".encode())
    sources = sorted((ROOT / "contracts").rglob("*.vy*"))
    for path in [*sources, ROOT / "offchain_risk" / "devnet.py"]:
        h.update(path.read_bytes())
    for fn in (keeper.seed_book, keeper._seed):
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]


@contextmanager
def anvil(port: int, *extra: str):
    """An anvil of ours on ``port`` (recent states in memory only, nothing on disk) with Ape
    connected to it: yields the provider."""
    from ape import networks

    node = start_anvil(port, *ANVIL_OPTS, *extra, timeout=600)
    try:
        with networks.ethereum.local.use_provider(
            "foundry",
            provider_settings={"host": f"http://127.0.0.1:{port}", "manage_process": False},
        ) as provider:
            yield provider
    finally:
        node.terminate()
        node.wait(30)


@contextmanager
def block_clock(w3, every_s: float = 1.0):
    """A block every ``every_s`` seconds, mined by ``anvil_mine`` from a thread (automine
    off, so sent transactions wait for the next block). Not anvil's interval mining: with
    it, anvil 1.7.1 ignores ``--prune-history`` and keeps every block's state (measured at
    100,000 accounts: about 34 MB a block without end, against a plateau at the limit)."""
    stop = threading.Event()

    def mine() -> None:  # web3 keeps an HTTP session per thread
        while not stop.wait(every_s):
            rpc_one(w3, "anvil_mine", ["0x1"])

    rpc_one(w3, "evm_setAutomine", [False])
    thread = threading.Thread(target=mine, name="block-clock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)
        rpc_one(w3, "evm_setAutomine", [True])


def seeded_book(project, test_accounts, n: int, port: int, cache: Path = CACHE) -> SeededBook:
    """The ``n``-account book from the cache, or seeded on a fresh anvil and cached: the
    benchmark's book (``keeper.seed_book``), a funded margin account for each worker key,
    the manifest, and anvil's state as ``anvil_dumpState`` gives it."""
    folder = cache / f"{n}-{book_key(n)}"
    if (folder / "book.json").exists():
        return SeededBook.load(folder)
    folder.mkdir(parents=True, exist_ok=True)
    owner = test_accounts[0]
    with anvil(port) as provider:
        w3 = provider.web3
        d, accounts, seed_s = seed_book(project, owner, w3, n)
        for k in KEYS:
            w = test_accounts[k]
            d.cash.mint(w, 10**9 * USDC, sender=owner)
            d.cash.approve(d.engine, 10**9 * USDC, sender=w)
            d.engine.deposit(account_id(str(w), 0), d.cash, 10**9 * USDC, sender=w)
        cfg = deploy.load_config(CONFIG)
        deploy.write_manifest(
            folder / "manifest.json",
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
        dumped = w3.provider.make_request("anvil_dumpState", [])["result"]  # gzip, as hex
        (folder / "state.json.gz").write_bytes(bytes.fromhex(dumped.removeprefix("0x")))
    meta = {
        "accounts": [str(a) for a in accounts],
        "feeds": [str(d.feeds[a].address) for a in sorted(d.feeds)],
        "eth_feed": str(d.feeds[d.symbols["ETH"]].address),
        "seed_s": seed_s,
    }
    (folder / "book.json").write_text(json.dumps(meta))
    return SeededBook.load(folder)


def run_workers(
    project, owner, w3, book: SeededBook, folder: Path, workers: int, redis_url: str
) -> WorkersRun:
    """One worker count on the book's chain (its block clock already running)."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    shutil.rmtree(folder, ignore_errors=True)  # a store left by an earlier run would resume
    folder.mkdir(parents=True)
    manifest = json.loads(book.manifest.read_text())
    engine = engine_at(project, manifest["contracts"]["engine"])
    liquidations = project.Liquidations.at(manifest["contracts"]["liquidations"])
    accounts = book.accounts
    network = f"ethereum:local:{w3.provider.endpoint_uri}"
    cluster = Cluster(folder, network, book.manifest, redis_url, partitions=workers)
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
        feed = project.MockAggregator.at(book.eth_feed)
        receipt = feed.set_price(1_400 * 10**8, sender=owner)  # ETH -30%
        shock_block = w3.eth.wait_for_transaction_receipt(receipt.txn_hash, 120)["blockNumber"]
        # Read once the shock's block is history: anvil answers a call at its head block
        # from the state it is mining into, and a worker's liquidation in the next block
        # then hid accounts (the workers may have begun; the block's state is kept).
        _wait(lambda: w3.eth.block_number > shock_block + 1, 60, "the shock's block", cluster)
        due = liquidatable(engine, accounts, shock_block)
        _wait(lambda: not liquidatable(engine, accounts), SHOCK_S, "the last liquidation", cluster)
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
    logs = list(liquidations.Liquidated.range(shock_block, end + 1))
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
        seed_s=book.seed_s,
    )


def refresh_feeds(project, owner, book: SeededBook) -> None:
    """Every aggregator's last answer pushed again: a cached chain's rounds are as old as
    the cache, past the engine's staleness bound on a chain that resumes today."""
    for address in book.feeds:
        feed = project.MockAggregator.at(address)
        feed.set_price(feed.latestRoundData()[1], sender=owner)


def measure(project, test_accounts, sizes=(1_000,), port: int = 8567, folder=None) -> list:
    """Every size, every worker count, each on a fresh anvil of ours loaded from the book's
    cached state (seeded once, on ``port``; the runs on ``port + 1``, ``port + 2``, ...)."""
    owner = test_accounts[0]
    folder = folder or ROOT / ".cache" / "keeper-workers"
    folder.mkdir(parents=True, exist_ok=True)
    redis_proc, url = start_redis(folder)
    out = []
    try:
        for n in sizes:
            book = seeded_book(project, test_accounts, n, port)
            print(f"keeper workers: {n:,} accounts, seeded in {book.seed_s:.0f} s", flush=True)
            state = folder / f"state-{n}.json"  # anvil loads plain JSON
            state.write_bytes(gzip.decompress(book.state.read_bytes()))
            try:
                for i, workers in enumerate(WORKERS):
                    # A port of its own: Ape does not connect a provider twice to one host.
                    with anvil(port + 1 + i, "--load-state", str(state)) as provider:
                        w3 = provider.web3
                        refresh_feeds(project, owner, book)
                        with block_clock(w3):
                            run = run_workers(
                                project, owner, w3, book, folder / f"{n}-{workers}", workers, url
                            )
                    print(run, flush=True)
                    out.append(run)
            finally:
                state.unlink(missing_ok=True)
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
        "(the last 64 states kept) mining a block a second (`block_clock`: anvil's own "
        "interval mining keeps every state whatever the limit); `BALLAST_PARTITIONS` = "
        "workers. The book and the shock are "
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
