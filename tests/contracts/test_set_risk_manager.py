"""The engine's risk manager may set shocks, floor / haircut rates and the IM multiplier,
and nothing else an owner can."""

import ape
from conftest import ETH, WAD

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def test_set_risk_manager__owner_only_with_event(project, engine, owner, stranger, operator):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_risk_manager(stranger, sender=stranger)
    tx = engine.set_risk_manager(operator, sender=owner)
    assert engine.risk_manager() == operator
    assert tx.decode_logs(project.MarginConfig.RiskManagerSet)[0].risk_manager == operator


def test_risk_manager__sets_risk_parameters(engine, lens, owner, operator):
    engine.set_risk_manager(operator, sender=owner)
    engine.set_shocks(ETH, [-100] * 16, sender=operator)
    engine.set_asset_risk(ETH, 150, 250, sender=operator)
    engine.set_im_multiplier(2 * WAD, sender=operator)
    assert lens.shocks(ETH) == [-100] * 16
    cfg = lens.asset_config(ETH)
    assert (cfg.floor_bps, cfg.haircut_bps) == (150, 250)
    assert engine.im_multiplier() == 2 * WAD


def test_risk_manager__nothing_else(engine, owner, operator, feeds):
    engine.set_risk_manager(operator, sender=owner)
    for call in (
        lambda: engine.set_price_band(WAD // 100, sender=operator),
        lambda: engine.set_oi_cap(ETH, 1, sender=operator),
        lambda: engine.set_feed(ETH, feeds[ETH], 60, sender=operator),
        lambda: engine.set_debt_cap(1, sender=operator),
        lambda: engine.set_paused(True, sender=operator),
        lambda: engine.set_risk_manager(operator, sender=operator),
    ):
        with ape.reverts("ownable: caller is not the owner"):
            call()


def test_risk_manager__removed__loses_access(engine, owner, operator):
    engine.set_risk_manager(operator, sender=owner)
    engine.set_risk_manager(ZERO_ADDRESS, sender=owner)
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_im_multiplier(2 * WAD, sender=operator)
    assert engine.im_multiplier() == 3 * WAD // 2
