"""integration/cast_deploy.py reads a deploy config as `ape run deploy` does (no chain)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from offchain_risk import deploy, devnet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration"))
import cast_deploy  # noqa: E402

CONFIG = ROOT / "deployments" / "config" / "local.toml"


def test_load__local_config__same_values_as_the_ape_deployer():
    ours, theirs = cast_deploy.load(CONFIG), deploy.load_config(CONFIG)
    wad = deploy.WAD
    assert ours["im_multiplier_wad"] == int(round(theirs.im_multiplier * wad))
    assert ours["price_band_wad"] == int(round(theirs.price_band * wad))
    assert ours["deposit_cap_wad"] == int(theirs.deposit_cap_usd * wad)
    assert ours["account_cap_wad"] == int(theirs.account_cap_usd * wad)
    assert ours["oi_cap_wad"] == int(theirs.oi_cap * wad)
    assert ours["debt_cap_wad"] == int(theirs.debt_cap_usd * wad)
    assert ours["heartbeat"] == theirs.heartbeat
    assert ours["policy"] == asdict(theirs.policy)
    assert [cast_deploy.POLICY_ORDER.index(k) for k in ours["policy"]] == list(range(7))
    assert tuple(ours["policy"].values()) == theirs.policy.args()
    assert ours["signers"] == list(theirs.signers) and ours["threshold"] == theirs.threshold
    for m, spec in zip(ours["markets"], theirs.markets, strict=True):
        assert m["symbol"] == spec.symbol and m["perp"] == spec.perp
        assert (m["floor_bps"], m["haircut_bps"]) == (spec.floor_bps, spec.haircut_bps)
        assert m["price"] == spec.price
        assert m["token"] == (list(spec.token) if spec.token else None)
    assert [m["shocks_bps"] for m in ours["markets"]] == theirs.shocks.tolist()


def test_governor_settings__local_defaults__same_as_the_ape_deployer():
    ours = cast_deploy.governor_settings(cast_deploy.load(CONFIG), local=True)
    cfg = deploy.load_config(CONFIG)
    if hasattr(deploy, "governor_settings"):  # limits and bounds read from the config
        theirs = deploy.governor_settings(cfg, local=True)
        expected = (theirs.limits, theirs.global_bounds, list(theirs.asset_bounds))
    else:  # the devnet policy of offchain_risk.devnet
        expected = (
            devnet.GOVERNOR_LIMITS,
            devnet.GLOBAL_BOUNDS,
            [devnet.asset_bounds(m.spec()) for m in cfg.markets],
        )
    assert (ours["limits"], ours["global_bounds"], ours["asset_bounds"]) == expected


def test_governor_settings__stated_values__override_and_convert(tmp_path):
    config = tmp_path / "gov.toml"
    config.write_text(
        CONFIG.read_text().replace(
            "[governor]",
            "[governor.limits]\nwindow = 7200\nwindow_rate = 0.2\n"
            "[governor.asset_bounds]\nfloor_max = 3000\n[governor]",
        )
        + "\n[markets.bounds]\nshock_up_min = 700\n"  # the last market's own bounds
    )
    cfg = cast_deploy.load(config)
    settings = cast_deploy.governor_settings(cfg, local=True)
    assert settings["limits"][:2] == (7_200, 2 * deploy.WAD // 10)
    last = cfg["markets"][-1]
    assert settings["asset_bounds"][-1][:2] == (last["floor_bps"], 3_000)  # floor_min = floor
    assert settings["asset_bounds"][-1][-1] == 700
    assert settings["asset_bounds"][0][-1] == 500  # the devnet's, locally


def test_governor_settings__non_local_without_values__names_what_is_missing():
    cfg = cast_deploy.load(CONFIG)
    with pytest.raises(cast_deploy.DeployError, match=r"missing governor\.limits\.window,"):
        cast_deploy.governor_settings(cfg, local=False)


def test_load__unknown_key__refused_not_ignored(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.read_text().replace("[governor]", "[governor]\nwindow = 60"))
    with pytest.raises(cast_deploy.DeployError, match=r"governor: unknown keys \['window'\]"):
        cast_deploy.load(config)
