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


def deploy_devnet(
    project: Any, deployer: Any, path: Path, risk_signers: list[Any] | None = None
) -> dict[str, str]:
    """The devnet listing, and with ``risk_signers`` a RiskGovernor (M = N) over it."""
    from offchain_risk import devnet

    d = devnet.deploy(project, deployer)
    addresses = d.addresses()
    if risk_signers:
        signers = sorted(risk_signers, key=lambda a: int(str(a.address), 16))
        governor = devnet.deploy_governor(project, d, deployer, signers, len(signers))
        addresses["governor"] = str(governor.address)
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


def build_risk_updater(
    project: Any,
    addresses: dict[str, str],
    params_path: Path,
    signer_names: list[str],
    relayer_name: str,
    interval: float,
) -> Any:
    """A :class:`RiskUpdater` on the deployment's ``governor``: the calibration in
    ``params_path`` (fitted on the shared history) scaled by on-chain realised volatility,
    signed by ``signer_names`` and submitted by ``relayer_name`` (Ape accounts)."""
    from offchain_risk.devnet import engine_at
    from offchain_risk.keeper.risk_updater import RiskUpdater, base_from_params, vol_scaled_target
    from offchain_risk.keeper.signer import RiskSigner

    if "governor" not in addresses:
        raise ValueError("the addresses file names no governor: signed updates need one")
    engine = engine_at(project, addresses["engine"])
    liquidations = project.Liquidations.at(addresses["liquidations"])
    governor = project.RiskGovernor.at(addresses["governor"])
    symbols = {k.removeprefix("feed:"): i for i, k in enumerate(_feeds(addresses))}
    base, vols, horizon = base_from_params(
        json.loads(Path(params_path).read_text()),
        symbols,
        (liquidations.min_discount(), liquidations.max_discount()),
    )
    signer = RiskSigner(
        governor,
        engine,
        liquidations,
        [load_account(n) for n in signer_names],
        load_account(relayer_name),
    )
    return RiskUpdater(signer, vol_scaled_target(base, vols, horizon_s=horizon), interval=interval)


def _feeds(addresses: dict[str, str]) -> list[str]:
    """``feed:<SYMBOL>`` keys in listing order (``Deployment.addresses`` writes them so)."""
    return [k for k in addresses if k.startswith("feed:")]


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
    risk: dict | None = None,
) -> list[dict]:
    """Connect to ``network`` through Ape and run the keeper until stopped (or one tick)."""
    from ape import networks, project

    with networks.parse_network_choice(network) as provider:
        signer = load_account(account) if account else None
        if deploy:
            deployer = load_account("test:0")
            signers = [load_account(n) for n in risk["signer_names"]] if risk else None
            addresses = deploy_devnet(project, deployer, addresses_path, signers)
        else:
            addresses = json.loads(Path(addresses_path).read_text())
        updater = None
        if risk is not None:
            updater = build_risk_updater(project, addresses, **risk)
        keeper = Keeper.from_addresses(
            project,
            provider.web3,
            addresses,
            Store(db),
            account=signer,
            dry_run_sender=dry_run_sender,
            gas=GasPolicy(max_fee_cap=int(max_fee_gwei * 10**9)),
            start_block=start_block,
            risk_updater=updater,
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
