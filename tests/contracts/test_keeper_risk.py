"""The keeper's risk updater on anvil: a volatility jump lands a signed update, read back."""

from __future__ import annotations

import numpy as np
from conftest import ETH, WAD, acct

from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.risk_updater import RiskUpdater, vol_scaled_target
from offchain_risk.keeper.rpc import Contracts
from offchain_risk.keeper.signer import ParamSet
from offchain_risk.keeper.store import Store
from offchain_risk.units import MAX_SCENARIOS, read_shocks

ASSETS = (0, 1, 2, 3)


def test_keeper__vol_jump__signed_update_lands_and_is_read_back(
    project, chain, deployment, engine, governor, risk_signer, owner, accounts, tmp_path
):
    d = deployment
    view = risk_signer.view(ASSETS)
    base = ParamSet.from_values(ASSETS, view.current, [int(x) for x in view.global_current])
    updater = RiskUpdater(
        risk_signer,
        vol_scaled_target(base, base_vol=np.full(4, 0.01), max_scale=1.2),
        interval=3_600,
        vol_jump=2.0,
        floor_vol=0.005,
    )
    c = Contracts.from_project(
        project, chain.provider.web3, d.engine.address, d.liquidations.address, d.lens.address
    )
    bot = accounts[4]
    keeper = Keeper(
        c,
        Store(tmp_path / "k.db"),
        LiquidatorConfig(account=acct(bot)),
        sender=str(bot),
        risk_updater=updater,
    )
    nonce = governor.next_nonce()
    first = keeper.tick()  # the first update is due by schedule: calm, the base values
    assert first.risk_update.landed and first.risk_update.reason == "schedule"
    assert governor.next_nonce() == nonce + 1
    assert [engine.shock_word(a, w) for a in ASSETS for w in range(2)] == [
        int(w) for w in risk_signer.message(base, 0, 0).shocks
    ]
    calm = keeper.tick()
    assert calm.risk_update is None  # neither scheduled nor a jump
    before = read_shocks(engine, ETH)
    updates = []
    for price in (2_150, 1_950, 2_200):  # 7-12% moves against a 0.5% reference
        d.set_price("ETH", price, sender=owner)
        updates.append(keeper.tick().risk_update)
    # The first move is the jump; the update then calibrates to the new regime, so the
    # next moves (no larger than it) trigger nothing.
    update = updates[0]
    assert update is not None and update.landed and update.reason == "vol_jump"
    assert updates[1:] == [None, None]
    assert governor.next_nonce() == nonce + 2
    after = read_shocks(engine, ETH)
    # Tighter: every ETH shock at least as large in magnitude, the worst one larger.
    assert all(abs(a) >= abs(b) for a, b in zip(after, before, strict=True))
    assert min(after) < min(before)
    assert list(update.plan.applied[ETH][:MAX_SCENARIOS]) == after
    # The keeper's next scan values accounts with what landed.
    read = keeper.tick()
    assert read.risk_update is None
    _, market = keeper.scanner.scan()
    assert list(market.params.shocks_bps[ETH]) == after
    assert keeper.metrics.value("keeper_risk_updates_total") == 2
    assert market.params.im_multiplier_wad == engine.im_multiplier() >= WAD
