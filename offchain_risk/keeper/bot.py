"""The Silverback bot: wires the keeper's plain classes to Silverback's block handlers.

One process (Silverback's in-memory broker)::

    BALLAST_MANIFEST=deployments/local.json silverback run offchain_risk.keeper.bot:bot \
        --network ethereum:local:foundry --account <alias>

N workers on a taskiq broker (Redis; see README "Keeper workers"): one ``silverback run``
(the runner: watches blocks, kicks one task per partition per block) and any number of
``silverback worker -w 1 --account <its own key>`` processes, on any machine that reaches
the broker, with ``SILVERBACK_BROKER_CLASS=taskiq_redis:RedisStreamBroker`` and
``SILVERBACK_RESULT_BACKEND_CLASS=taskiq_redis:RedisAsyncResultBackend`` (their URLs in
``SILVERBACK_BROKER_KWARGS`` / ``SILVERBACK_RESULT_BACKEND_KWARGS``).

Configuration (environment): ``BALLAST_MANIFEST`` (the deployment's manifest, as ``ape run
deploy`` writes it; default ``deployments/local.json``, the console's too; a manifest of
another chain is refused), ``BALLAST_PARTITIONS`` (tasks per block, default 1; the runner
and every worker must agree), ``BALLAST_CLAIMS_URL`` (Redis URL of the shared liquidation
claims; needed as soon as two processes serve one deployment), ``BALLAST_CLAIM_TTL``
(seconds, default 120), ``BALLAST_KEEPER_DB`` (SQLite path; default ``keeper-<signer
address>.db``: one store per key, so a restarted worker resumes its own transactions),
``BALLAST_DRY_RUN_SENDER`` (dry run when Silverback has no signer), ``BALLAST_START_BLOCK``
(default: the manifest's block), ``BALLAST_METRICS_PORT`` (the worker's ``/metrics`` and
``/health``), ``BALLAST_VOL_SIGNERS`` (comma-separated Ape aliases of the manifest's vol feed
signers, as the CLI keeper's ``--vol-signers``: this process publishes the vol surfaces
hourly on the chain clock after its ticks' liquidations, through its own signer; set it on
one worker of a cluster, since every process that has it publishes). Each worker builds its
own :class:`Keeper` at worker startup with its own signer (its own nonce lane); each task
runs :meth:`Keeper.tick` for one partition and returns its summary. SIGTERM drains a worker:
tasks it receives from then on send nothing and release their claims, the task in progress
finishes.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from ape import chain, project
from silverback import SilverbackBot
from silverback.main import SharedState

from offchain_risk.deploy import load_manifest
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.metrics import serve
from offchain_risk.keeper.runner import build_vol_updater_for
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.workers import DEFAULT_TTL, LocalClaims, Partition, RedisClaims

bot = SilverbackBot()
PARTITIONS = int(os.environ.get("BALLAST_PARTITIONS", "1"))
if PARTITIONS < 1:
    raise ValueError("BALLAST_PARTITIONS must be >= 1")
_state: dict = {}
DRAIN_GRACE_S = 1.0  # after the last tick, before the worker stops
_lock = threading.Lock()  # one tick at a time in a process: one store, one nonce lane


def _build() -> Keeper:
    # The node's own chain id (an ad-hoc `ethereum:local:<url>` network reports Ape's).
    manifest = load_manifest(
        os.environ.get("BALLAST_MANIFEST", "deployments/local.json"),
        chain.provider.web3.eth.chain_id,
    )
    signer = bot.signer
    address = str(signer.address) if signer is not None else None
    owner = f"{socket.gethostname()}:{os.getpid()}:{address or 'dry-run'}"
    url = os.environ.get("BALLAST_CLAIMS_URL")
    ttl = float(os.environ.get("BALLAST_CLAIM_TTL", DEFAULT_TTL))
    claims = RedisClaims.from_url(url, owner, ttl=ttl) if url else LocalClaims(owner, ttl)
    default_db = f"keeper-{address.lower()}.db" if address else "keeper.db"
    start = os.environ.get("BALLAST_START_BLOCK")
    keeper = Keeper.from_manifest(
        project,
        chain.provider.web3,
        manifest,
        Store(os.environ.get("BALLAST_KEEPER_DB", default_db)),
        account=signer,
        dry_run_sender=os.environ.get("BALLAST_DRY_RUN_SENDER"),
        claims=claims,
        # One block holds about max_per_tick liquidations: a block's partitions share them.
        # Each taking the whole budget, 4 partitions sent 800 a block at 100,000 accounts and
        # their simulations stalled a 2-core node past the runner's 10 s block timeout.
        max_per_tick=-(-LiquidatorConfig.max_per_tick // PARTITIONS),
        **({} if start is None else {"start_block": int(start)}),
    )
    vol = [n.strip() for n in os.environ.get("BALLAST_VOL_SIGNERS", "").split(",") if n.strip()]
    if vol:
        keeper.vol_updater = build_vol_updater_for(
            project, chain.provider.web3, manifest, keeper, vol
        )
    return keeper


def _drain(*_: object) -> None:
    """SIGTERM: take no more work, let the tick in progress finish, then stop the worker
    (SIGINT: taskiq shuts the broker down and runs the worker shutdown handlers). A task
    this worker took but did not run is redelivered by the stream broker. The stop waits
    ``DRAIN_GRACE_S`` after the tick, so the receiver posts that task's result and
    acknowledges it first (a SIGINT during that send lost the result, and the broker handed
    the finished task to another worker)."""
    _state["draining"] = True

    def stop() -> None:
        with _lock:  # the tick in progress
            pass
        time.sleep(DRAIN_GRACE_S)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop, daemon=True, name="drain").start()


@bot.on_worker_startup()
def worker_start(state) -> None:
    """Every worker process: its own keeper, backfilled before its first task."""
    # Silverback keeps `bot.state` only in the worker that ran its load-snapshot task; its
    # block wrapper writes checkpoints there, so every worker process needs one.
    if not hasattr(bot, "state"):
        bot.state = SharedState()
    keeper = _build()
    keeper.indexer.sync()
    _state["keeper"] = keeper
    if port := os.environ.get("BALLAST_METRICS_PORT"):
        serve(keeper.metrics, int(port))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _drain)


def tick(partition: Partition) -> dict:
    keeper: Keeper | None = _state.get("keeper")
    if keeper is None:  # the in-memory broker runs tasks before any worker startup
        with _lock:
            keeper = _state.get("keeper") or _build()
            _state["keeper"] = keeper
    with _lock:
        if _state.get("draining"):
            return {"partition": partition.index, "draining": True}
        return {"partition": partition.index, **keeper.tick(partition).summary()}


def _handler(k: int):
    def handler(block):  # no return annotation: the runner would parse the result into it
        return tick(Partition(k, PARTITIONS))

    handler.__name__ = f"liquidate_partition_{k}"
    return handler


for _k in range(PARTITIONS):
    bot.on_(chain.blocks)(_handler(_k))


@bot.on_worker_shutdown()
def worker_stop(state) -> None:
    keeper = _state.pop("keeper", None)
    if keeper is not None:
        with _lock:
            keeper.store.close()
