"""Build a keeper from an Ape network, and run it: the plain-Python entry point.

``python -m offchain_risk keeper --network ethereum:local:foundry --deploy --account test:4``
deploys a devnet config (``deployments/config/local.toml`` unless ``--config``) with the
same deployer as ``ape run deploy``, writes its manifest to ``--manifest`` and keeps it;
against an existing deployment pass the manifest ``ape run deploy`` wrote (``--manifest
deployments/<name>.json``). Without ``--account`` the keeper runs dry: it indexes, scans,
previews and simulates, and sends nothing.
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


def deploy_local(project: Any, network: Any, config_path: Path, manifest_path: Path) -> dict:
    """``ape run deploy`` on a local network (test account 0 deploys): the config's listing
    and governor; the manifest at ``manifest_path`` is replaced (a devnet's manifest dies
    with it). Returns the manifest."""
    from offchain_risk import deploy

    if not network.is_local:
        raise deploy.ConfigError(
            f"--deploy is for local networks; deploy to {network.name} with `ape run deploy`"
        )
    cfg = deploy.load_config(config_path)
    manifest = deploy.run_deploy(
        project,
        network,
        load_account("test:0"),
        cfg,
        config_path,
        manifest_path,
        force=True,
        echo=log.info,
    )
    log.info("deployed %s; manifest in %s", config_path, manifest_path)
    return manifest


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
    manifest: dict,
    params_path: Path,
    signer_names: list[str],
    relayer_name: str,
    interval: float,
) -> Any:
    """A :class:`RiskUpdater` on the manifest's ``governor``: the calibration in
    ``params_path`` (fitted on the shared history) scaled by on-chain realised volatility,
    signed by ``signer_names`` and submitted by ``relayer_name`` (Ape accounts)."""
    from offchain_risk.devnet import engine_at
    from offchain_risk.keeper.risk_updater import RiskUpdater, base_from_params, vol_scaled_target
    from offchain_risk.keeper.signer import RiskSigner

    contracts = manifest["contracts"]
    if "governor" not in contracts:
        raise ValueError("the manifest names no governor: signed updates need one")
    engine = engine_at(project, contracts["engine"])
    liquidations = project.Liquidations.at(contracts["liquidations"])
    governor = project.RiskGovernor.at(contracts["governor"])
    symbols = {symbol: int(m["asset"]) for symbol, m in manifest["markets"].items()}
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


def build_vol_updater_for(
    project: Any, w3: Any, manifest: dict, keeper: Keeper, signer_names: list[str]
) -> Any:
    """The keeper's vol updater on the manifest's ``vol_feed``, signed by ``signer_names``
    and sent through the keeper's own transaction manager."""
    from offchain_risk.deploy import ConfigError
    from offchain_risk.keeper.vol_updater import build_vol_updater

    if keeper.tx is None:
        raise ConfigError("publishing vol surfaces needs a signing keeper (--account)")
    try:
        return build_vol_updater(
            project,
            w3,
            manifest,
            keeper.tx,
            [load_account(n) for n in signer_names],
            metrics=keeper.metrics,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def run(
    network: str,
    manifest_path: Path,
    db: Path,
    account: str | None,
    dry_run_sender: str | None,
    *,
    deploy: bool = False,
    config_path: Path | None = None,
    metrics_port: int | None = None,
    poll_interval: float = 1.0,
    once: bool = False,
    start_block: int | None = None,
    max_fee_gwei: float = 500.0,
    risk: dict | None = None,
    vol_signers: list[str] | None = None,
) -> list[dict]:
    """Connect to ``network`` through Ape and run the keeper on the deployment of
    ``manifest_path`` until stopped (or one tick); ``deploy`` first deploys ``config_path``
    there (local networks). ``start_block`` None: the manifest's block. ``vol_signers``:
    the vol feed's signers (Ape aliases): the keeper publishes vol surfaces hourly."""
    from ape import networks, project

    from offchain_risk import deploy as deploy_module

    with networks.parse_network_choice(network) as provider:
        signer = load_account(account) if account else None
        if deploy:
            manifest = deploy_local(
                project,
                provider.network,
                config_path or deploy_module.LOCAL_CONFIG,
                manifest_path,
            )
        else:
            manifest = deploy_module.load_manifest(manifest_path, provider.chain_id)
        updater = None
        if risk is not None:
            updater = build_risk_updater(project, manifest, **risk)
        extra = {} if start_block is None else {"start_block": start_block}
        keeper = Keeper.from_manifest(
            project,
            provider.web3,
            manifest,
            Store(db),
            account=signer,
            dry_run_sender=dry_run_sender,
            gas=GasPolicy(max_fee_cap=int(max_fee_gwei * 10**9)),
            risk_updater=updater,
            **extra,
        )
        if vol_signers:
            keeper.vol_updater = build_vol_updater_for(
                project, provider.web3, manifest, keeper, vol_signers
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
