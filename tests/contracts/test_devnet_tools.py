"""The user-facing devnet tools: calibrated parameter sets and the `ape console` names."""

import importlib.util
import sys
from pathlib import Path

import ape
import pytest
from conftest import ETH, SOL, WAD, acct

from offchain_risk import devnet

_PATH = Path(__file__).resolve().parents[2] / "ape_console_extras.py"


def _extras():
    spec = importlib.util.spec_from_file_location("ballast_console_extras", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PARAMS = {  # the shape `python -m offchain_risk calibrate` writes
    "assets": ["ETH", "SOL", "DOGE"],
    "shocks_bps": {"ETH": [-1700, 1600, -900], "SOL": [-3000, 2900, -100], "DOGE": [-1, 1, 0]},
    "haircut_bps": {"ETH": 31, "SOL": 81, "DOGE": 131},
    "floor_bps": {"ETH": 50, "SOL": 50, "DOGE": 50},
    "im_multiplier_wad": str(13 * WAD // 10),
}


def test_apply_params__sets_listed_assets_and_pads_scenarios(lens, deployment, engine, owner):
    done = devnet.apply_params(deployment, PARAMS, owner)
    assert done == ["ETH", "SOL"]  # DOGE is not listed on this market
    assert lens.shocks(ETH) == [-1700, 1600, -900] + [0] * 29
    assert lens.shocks(SOL) == [-3000, 2900, -100] + [0] * 29
    cfg = lens.asset_config(SOL)
    assert (cfg.floor_bps, cfg.haircut_bps) == (50, 81)
    assert engine.im_multiplier() == 13 * WAD // 10


def test_apply_params__nothing_listed__clear_error(deployment, owner):
    with pytest.raises(ValueError, match="no asset of the parameter set is listed"):
        devnet.apply_params(deployment, {**PARAMS, "shocks_bps": {"DOGE": [1]}}, owner)


def test_apply_params__not_owner__reverts(lens, deployment, engine, stranger):
    before = lens.shocks(ETH)
    with ape.reverts("ownable: caller is not the owner"):
        devnet.apply_params(deployment, PARAMS, stranger)
    assert lens.shocks(ETH) == before


def test_console_extras__readme_session(accounts, project, chain):
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    trader = names["trader"]
    names["fund"](trader, "USDC", 50_000)
    names["trade"](trader, "ETH", -5, 2_000)
    s = names["state"](trader)
    assert s.cash == 50_000 * WAD
    assert [(a.asset, a.size) for a in s.assets] == [(d.symbols["ETH"], -5 * WAD)]
    assert s.mm > 0 and s.health > 0
    d.set_price("ETH", 2_300, names["owner"])
    assert names["state"](trader).equity == 50_000 * WAD - 5 * 300 * WAD
    assert d.engine.cash(acct(trader)) == 50_000 * WAD
    # A levered long in sub-account 1, then the price falls and the desk liquidates it.
    names["fund"](trader, "USDC", 3_500, sub=1)
    names["trade"](trader, "ETH", 5, 2_300, sub=1)
    d.set_price("ETH", 1_950, names["owner"])
    assert names["state"](trader, sub=1).health < 0
    tx = names["liquidate"](trader, sub=1)
    assert [log.event_name for log in tx.events].count("Liquidated") == 1
    assert names["state"](trader, sub=1).health > 0
