"""The Silverback bot: wires the keeper's plain classes to Silverback's block handler.

    BALLAST_ADDRESSES=deployment.json silverback run offchain_risk.keeper.bot:bot \
        --network ethereum:local:foundry --account <alias>

Configuration (environment): ``BALLAST_ADDRESSES`` (the deployment's JSON, as written by
``python -m offchain_risk keeper --deploy``), ``BALLAST_KEEPER_DB`` (SQLite path, default
``keeper.db``), ``BALLAST_DRY_RUN_SENDER`` (dry run when Silverback has no signer),
``BALLAST_START_BLOCK``. Silverback provides the network, the signer, its own metrics and
state snapshot; each block runs :meth:`Keeper.tick` and returns its summary as the task
result. The keeper owns the signer's nonce: no other handler sends from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ape import chain, project
from silverback import SilverbackBot

from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.store import Store

bot = SilverbackBot()
_state: dict[str, Keeper] = {}


@bot.on_startup()
def start(startup_state) -> dict:
    addresses = json.loads(Path(os.environ["BALLAST_ADDRESSES"]).read_text())
    keeper = Keeper.from_addresses(
        project,
        chain.provider.web3,
        addresses,
        Store(os.environ.get("BALLAST_KEEPER_DB", "keeper.db")),
        account=bot.signer,
        dry_run_sender=os.environ.get("BALLAST_DRY_RUN_SENDER"),
        start_block=int(os.environ.get("BALLAST_START_BLOCK", "0")),
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
