"""The Silverback bot: wires the keeper's plain classes to Silverback's block handler.

    BALLAST_MANIFEST=deployments/local.json silverback run offchain_risk.keeper.bot:bot \
        --network ethereum:local:foundry --account <alias>

Configuration (environment): ``BALLAST_MANIFEST`` (the deployment's manifest, as ``ape run
deploy`` writes it; default ``deployments/local.json``, the console's too; a manifest of
another chain is refused), ``BALLAST_KEEPER_DB`` (SQLite path, default ``keeper.db``),
``BALLAST_DRY_RUN_SENDER`` (dry run when Silverback has no signer), ``BALLAST_START_BLOCK``
(default: the manifest's block). Silverback provides the network, the signer, its own metrics and
state snapshot; each block runs :meth:`Keeper.tick` and returns its summary as the task
result. The keeper owns the signer's nonce: no other handler sends from it.
"""

from __future__ import annotations

import os

from ape import chain, project
from silverback import SilverbackBot

from offchain_risk.deploy import load_manifest
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.store import Store

bot = SilverbackBot()
_state: dict[str, Keeper] = {}


@bot.on_startup()
def start(startup_state) -> dict:
    manifest = load_manifest(
        os.environ.get("BALLAST_MANIFEST", "deployments/local.json"), chain.chain_id
    )
    start = os.environ.get("BALLAST_START_BLOCK")
    keeper = Keeper.from_manifest(
        project,
        chain.provider.web3,
        manifest,
        Store(os.environ.get("BALLAST_KEEPER_DB", "keeper.db")),
        account=bot.signer,
        dry_run_sender=os.environ.get("BALLAST_DRY_RUN_SENDER"),
        **({} if start is None else {"start_block": int(start)}),
    )
    _state["keeper"] = keeper
    # Backfill before the first block handler runs.
    return keeper.tick().summary()


@bot.on_(chain.blocks)
def on_block(block) -> dict:
    return _state["keeper"].tick().summary()


@bot.on_shutdown()
def stop() -> None:
    keeper = _state.pop("keeper", None)
    if keeper is not None:
        keeper.store.close()
