"""Keeper workers as local processes: a private Redis server, the Silverback runner and any
number of ``silverback worker`` processes, each with its own key and store, logging into
one folder. Used by the workers' tests and the keeper benchmark; the environment is the one
README's "Keeper workers" gives an operator.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from offchain_risk.keeper.store import Store

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    """Until ``port`` accepts connections; raises if ``proc`` exits or ``timeout`` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.1)


def start_redis(folder: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """A private Redis server (no persistence) on ``port`` (a free one by default): the
    process and its URL. The caller terminates it."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = port or free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    wait_listening(port, proc, 20, "redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"


def liquidatable(engine, accounts: list[int], block: int | None = None) -> set[int]:
    """The accounts below MM at ``block`` (the head by default), by the engine's ``healths``
    (an Ape contract) in calls of 100 accounts sent as JSON-RPC batches: what a test or a
    benchmark checks the workers against. Batches, not a call at a time: at 100,000 accounts
    the block must still be among the node's recent states when the answers come."""
    from offchain_risk.keeper.rpc import abi_of, decode_output, encode_call, eth_calls

    w3 = engine.provider.web3
    contract = w3.eth.contract(address=str(engine.address), abi=abi_of(engine.contract_type))
    parts = [accounts[i : i + 100] for i in range(0, len(accounts), 100)]
    calls = [(str(engine.address), encode_call(contract, "healths", (p,))) for p in parts]
    # 100 calls a batch: 1,000 of them (3 MB of calldata) are refused as an invalid request
    answers = eth_calls(w3, calls, "latest" if block is None else hex(block), limit=100)
    return {
        a
        for part, raw in zip(parts, answers, strict=True)
        for a, m in zip(part, decode_output(contract, "healths", raw), strict=True)
        if m["equity"] < m["mm"]
    }


def indexed_block(db: Path) -> int:
    """The last block a worker's store has indexed; -1 before it has one."""
    if not db.exists():
        return -1
    store = Store(db)
    try:
        return store.last_block or -1
    finally:
        store.close()


class Cluster:
    """The runner and the workers as processes, with their logs in ``folder``."""

    def __init__(
        self,
        folder: Path,
        network: str,
        manifest: Path,
        redis_url: str,
        *,
        partitions: int,
        claim_ttl: float = 20,
    ):
        self.folder, self.network = Path(folder), network
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BALLAST_MANIFEST": str(manifest),
            "BALLAST_PARTITIONS": str(partitions),
            "BALLAST_CLAIMS_URL": redis_url,
            "BALLAST_CLAIM_TTL": str(claim_ttl),
            "SILVERBACK_BROKER_CLASS": "taskiq_redis:RedisStreamBroker",
            # One task at a time per worker (no prefetch), and a task a dead worker took is
            # redelivered after 5 s.
            "SILVERBACK_BROKER_KWARGS": json.dumps(
                {"url": redis_url, "xread_count": 1, "idle_timeout": 5_000, "xread_block": 500}
            ),
            "SILVERBACK_RESULT_BACKEND_CLASS": "taskiq_redis:RedisAsyncResultBackend",
            "SILVERBACK_RESULT_BACKEND_KWARGS": json.dumps({"redis_url": redis_url}),
            "PYTHONWARNINGS": "ignore",
            "PYTHONUNBUFFERED": "1",  # log lines reach the files as they are written
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def db(self, key: int) -> Path:
        return self.folder / f"worker-{key}.db"

    def start(self, name: str, args: list[str], env: dict | None = None) -> None:
        cmd = [shutil.which("silverback") or "silverback", *args]
        cmd += ["offchain_risk.keeper.bot:bot", "--network", self.network]
        with open(self.folder / f"{name}.log", "a") as log:  # the child keeps its own copy
            self.procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=log
            )

    def worker(self, key: int) -> None:
        """A worker signing with Ape's test account ``key``, its store ``db(key)``."""
        env = {"BALLAST_KEEPER_DB": str(self.db(key))}
        self.start(f"worker-{key}", ["worker", "-w", "1", "--account", f"TEST::{key}"], env)

    def runner(self) -> None:
        self.start("runner", ["run"])

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log"))
        )

    def dead(self) -> dict[str, int]:
        """The processes that exited, with their return codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError(f"{name} did not stop within {timeout}s") from None

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
