"""integration/cast_deploy.py reads a deploy config as `ape run deploy` does (no chain)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from offchain_risk import deploy, devnet
from offchain_risk.units import WAD, to_wad

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration"))
import cast_deploy  # noqa: E402

CONFIG = ROOT / "deployments" / "config" / "local.toml"


def test_load__local_config__same_values_as_the_ape_deployer():
    ours, theirs = cast_deploy.load(CONFIG), deploy.load_config(CONFIG)
    assert ours["im_multiplier_wad"] == to_wad(theirs.im_multiplier)
    assert ours["price_band_wad"] == to_wad(theirs.price_band)
    assert ours["deposit_cap_wad"] == to_wad(theirs.deposit_cap_usd)
    assert ours["account_cap_wad"] == to_wad(theirs.account_cap_usd)
    assert ours["oi_cap_wad"] == to_wad(theirs.oi_cap)
    assert ours["debt_cap_wad"] == to_wad(theirs.debt_cap_usd)
    assert ours["heartbeat"] == theirs.heartbeat
    assert ours["policy"] == asdict(theirs.policy)
    assert [cast_deploy.POLICY_ORDER.index(k) for k in ours["policy"]] == list(range(8))
    assert tuple(ours["policy"].values()) == theirs.policy.args()
    assert ours["signers"] == list(theirs.signers) and ours["threshold"] == theirs.threshold
    for m, spec in zip(ours["markets"], theirs.markets, strict=True):
        assert m["symbol"] == spec.symbol and m["perp"] == spec.perp
        assert (m["floor_bps"], m["haircut_bps"]) == (spec.floor_bps, spec.haircut_bps)
        assert m["price"] == spec.price
        assert m["token"] == (list(spec.token) if spec.token else None)
    assert [m["shocks_bps"] for m in ours["markets"]] == theirs.shocks.tolist()
    symbols = {m.symbol: i for i, m in enumerate(theirs.markets)}
    vol = deploy.vol_feed_parameters(theirs.vol_feed, symbols, [])
    assert ours["vol_feed"] == {**vol, "signers": list(theirs.vol_feed.signers)}


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
    text = CONFIG.read_text()
    for old, new in (
        ("window = 3600", "window = 7200"),
        ("window_rate = 0.10", "window_rate = 0.2"),
        ("floor_max = 2000", "floor_max = 3000"),
    ):
        assert old in text
        text = text.replace(old, new)
    config.write_text(text + "\n[markets.bounds]\nshock_up_min = 700\n")  # the last market's
    cfg = cast_deploy.load(config)
    settings = cast_deploy.governor_settings(cfg, local=True)
    assert settings["limits"][:2] == (7_200, 2 * WAD // 10)
    last = cfg["markets"][-1]
    assert settings["asset_bounds"][-1][:2] == (last["floor_bps"], 3_000)  # floor_min = floor
    assert settings["asset_bounds"][-1][-1] == 700
    assert settings["asset_bounds"][0][-1] == 500  # the devnet's, locally


def test_governor_settings__non_local_without_values__names_what_is_missing(tmp_path):
    text = CONFIG.read_text()
    start = text.index("\n[governor.limits]")
    config = tmp_path / "bare.toml"
    end = text.index("\n[[markets]]")
    config.write_text(text[:start] + text[end:])  # no governor values
    cfg = cast_deploy.load(config)
    with pytest.raises(cast_deploy.DeployError, match=r"missing governor\.limits\.window,"):
        cast_deploy.governor_settings(cfg, local=False)


def test_load__unknown_key__refused_not_ignored(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.read_text().replace("[governor]", "[governor]\nwindow = 60"))
    with pytest.raises(cast_deploy.DeployError, match=r"governor: unknown keys \['window'\]"):
        cast_deploy.load(config)
