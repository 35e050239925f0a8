"""The engine's risk manager may set shocks, floor / haircut rates and the IM multiplier,
and nothing else an owner can."""

import ape
import pytest
from conftest import ETH, WAD

from offchain_risk.models.margin import pack_shocks
from offchain_risk.units import read_shocks

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def test_set_risk_manager__owner_only_with_event(project, engine, owner, stranger, operator):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_risk_manager(stranger, sender=stranger)
    tx = engine.set_risk_manager(operator, sender=owner)
    assert engine.risk_manager() == operator
    assert tx.decode_logs(project.MarginConfig.RiskManagerSet)[0].risk_manager == operator


def test_risk_manager__sets_risk_parameters(engine, lens, owner, operator):
    engine.set_risk_manager(operator, sender=owner)
    engine.set_shocks(ETH, [-100] * 32, sender=operator)
    engine.set_asset_risk(ETH, 150, 250, sender=operator)
    engine.set_im_multiplier(2 * WAD, sender=operator)
    assert lens.shocks(ETH) == [-100] * 32
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


def test_set_shock_words__risk_manager_sets_packed_words(project, engine, lens, owner, operator):
    engine.set_risk_manager(operator, sender=owner)
    shocks = [-10_000, 32_767, -1, 0] + [250 * k - 1_500 for k in range(28)]
    [words] = pack_shocks([shocks])
    tx = engine.set_shock_words(ETH, words, sender=operator)
    assert [engine.shock_word(ETH, w) for w in range(2)] == words and lens.shocks(ETH) == shocks
    assert list(tx.decode_logs(project.MarginConfig.ShocksSet)[0].words) == words


@pytest.mark.parametrize(
    "slot,error",
    [
        (65_536 - 10_001, "ledger: shock out of range"),  # int16 -10001: below -100%
        (32_768, "ledger: shock out of range"),  # int16 -32768
    ],
)
def test_set_shock_words__slot_out_of_range__reverts(engine, owner, operator, slot, error):
    engine.set_risk_manager(operator, sender=owner)
    before = read_shocks(engine, ETH)
    for w in (0, 1):
        for k in (0, 15):  # first and last slot of each word
            words = [0, 0]
            words[w] = slot << (16 * k)
            with ape.reverts(error):
                engine.set_shock_words(ETH, words, sender=operator)
    assert read_shocks(engine, ETH) == before


def test_set_shock_words__stranger_or_unlisted__reverts(engine, owner, stranger):
    before = read_shocks(engine, ETH)
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_shock_words(ETH, [0, 0], sender=stranger)
    with ape.reverts("ledger: asset not listed"):
        engine.set_shock_words(9, [0, 0], sender=owner)
    assert read_shocks(engine, ETH) == before
