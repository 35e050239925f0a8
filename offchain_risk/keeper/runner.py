"""Build a keeper from an Ape network, and run it: the plain-Python entry point.

``python -m offchain_risk keeper --network ethereum:local:foundry --deploy --account test:4``
deploys a fresh devnet listing, writes its addresses to ``--addresses`` and keeps it;
against an existing deployment pass ``--addresses deployment.json``. Without ``--account``
the keeper runs dry: it indexes, scans, previews and simulates, and sends nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.metrics import serve
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import GasPolicy

log = logging.getLogger("ballast.keeper")


def load_account(name: str) -> Any:
    """An Ape account: ``test:N`` (the provider's N-th test account) or a keyfile alias."""
    from ape import accounts

    if name.startswith("test:"):
        return accounts.test_accounts[int(name.removeprefix("test:"))]
    return accounts.load(name)


def deploy_devnet(project: Any, deployer: Any, path: Path) -> dict[str, str]:
    from offchain_risk import devnet

    d = devnet.deploy(project, deployer)
    addresses = d.addresses()
    path.write_text(json.dumps(addresses, indent=2) + "\n")
    log.info("deployed a devnet listing; addresses in %s", path)
    return addresses


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "t": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out |= getattr(record, "fields", {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("ballast")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def run(
    network: str,
    addresses_path: Path,
    db: Path,
    account: str | None,
    dry_run_sender: str | None,
    *,
    deploy: bool = False,
    metrics_port: int | None = None,
    poll_interval: float = 1.0,
    once: bool = False,
    start_block: int = 0,
    max_fee_gwei: float = 500.0,
) -> list[dict]:
    """Connect to ``network`` through Ape and run the keeper until stopped (or one tick)."""
    from ape import networks, project

    with networks.parse_network_choice(network) as provider:
        signer = load_account(account) if account else None
        if deploy:
            deployer = signer or load_account("test:0")
            addresses = deploy_devnet(project, deployer, addresses_path)
        else:
            addresses = json.loads(Path(addresses_path).read_text())
        keeper = Keeper.from_addresses(
            project,
            provider.web3,
            addresses,
            Store(db),
            account=signer,
            dry_run_sender=dry_run_sender,
            gas=GasPolicy(max_fee_cap=int(max_fee_gwei * 10**9)),
            start_block=start_block,
        )
        if metrics_port is not None:
            serve(keeper.metrics, metrics_port, max_silence=max(60.0, 30 * poll_interval))
            log.info("metrics and /health on port %d", metrics_port)
        if once:
            result = keeper.tick()
            keeper.store.close()
            return [result.summary()]
        keeper.run(poll_interval=poll_interval)
        return []
