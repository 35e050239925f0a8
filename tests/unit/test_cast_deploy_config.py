"""integration/cast_deploy.py reads a deploy config as `ape run deploy` does (no chain)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from offchain_risk import deploy, devnet
from offchain_risk.models.funding import FundingParams
from offchain_risk.units import (
    MAX_FUNDING_CAP,
    MAX_FUNDING_CONVERGENCE,
    QUOTE_ASSET,
    WAD,
    to_wad,
)

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


def test_load__vaults__same_listing_and_bounds_as_the_ape_deployer():
    from offchain_risk.models.vault import VAULT_CLASSES

    assert cast_deploy.VAULT_CLASSES == {
        k: (c.haircut_bps, c.max_growth_bps) for k, c in VAULT_CLASSES.items()
    }
    ours, theirs = cast_deploy.load(CONFIG), deploy.load_config(CONFIG)
    assert [(v["symbol"], v["underlying"], v["class"]) for v in ours["vaults"]] == [
        (v.symbol, v.underlying, v.vault_class) for v in theirs.vaults
    ]
    assert [(v["haircut_bps"], v["max_growth_bps"]) for v in ours["vaults"]] == [
        (v.haircut_bps, v.max_growth_bps) for v in theirs.vaults
    ]
    assert cast_deploy.governor_settings(ours, local=True)["vault_bounds"] == list(
        deploy.governor_settings(theirs, local=True).vault_bounds
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('class = "liquid_staking"', 'class = "staking"', "vaults.sWETH.class: unknown"),
        ('underlying = "ETH"', 'underlying = "SOL"', "not a collateral market"),
        ('class = "liquid_staking"', 'class = "savings"\nrate = 1', r"unknown keys \['rate'\]"),
    ],
)
def test_load__bad_vault__refused(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    path.write_text(CONFIG.read_text().replace(old, new))
    with pytest.raises(cast_deploy.DeployError, match=message):
        cast_deploy.load(path)


@pytest.mark.parametrize(
    "section",
    ["", "price = 0.99\npeg_bps = 50", f'feed = "0x{"ab" * 20}"\nheartbeat = 3600'],
)
def test_load__quote__same_values_as_the_ape_deployer(tmp_path, section):
    path = tmp_path / "quote.toml"
    path.write_text(CONFIG.read_text() + f"\n[quote]\n{section}\n")
    ours, theirs = cast_deploy.load(path)["quote"], deploy.load_config(path).quote
    assert ours == asdict(theirs)
    assert cast_deploy.QUOTE_ASSET == QUOTE_ASSET


def test_sections__both_deployers_know_the_same_top_level_sections(tmp_path):
    assert cast_deploy.SECTIONS == deploy.SECTIONS
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.read_text() + "\n[fundng]\nx = 1\n")
    with pytest.raises(cast_deploy.DeployError, match=r"unknown sections \['fundng'\]"):
        cast_deploy.load(bad)
    with pytest.raises(deploy.ConfigError, match=r"unknown sections \['fundng'\]"):
        deploy.load_config(bad)


def test_load__options__refused_with_the_deployer_that_does_them(tmp_path):
    """The option book is the Ape deployer's alone: a config with [options] is refused by
    name here, never deployed without its book."""
    config = CONFIG.read_text()
    example = config[config.index("# [options.ETH]") :].split("\n\n")[0]
    block = "\n".join(line.removeprefix("#").strip() for line in example.splitlines())
    path = tmp_path / "options.toml"
    path.write_text(config + "\n" + block + "\n")
    assert deploy.load_config(path).options  # the Ape deployer takes it
    with pytest.raises(cast_deploy.DeployError, match=r"options: this script does not deploy"):
        cast_deploy.load(path)


FUNDING = {
    "ETH": "funding = { convergence_hours = 8, interest = 0.00001, cap = 0.002 }",
    "SOL": "funding = { convergence_hours = 16, cap = 0.001 }",
}


def _with_funding(tmp_path, eth: str = FUNDING["ETH"], extra: str = "") -> Path:
    text = CONFIG.read_text()
    text = text.replace('symbol = "ETH"\n', f'symbol = "ETH"\n{eth}\n{extra}')
    text = text.replace('symbol = "SOL"\n', f'symbol = "SOL"\n{FUNDING["SOL"]}\n')
    path = tmp_path / "funding.toml"
    path.write_text(text)
    return path


def test_load__funding__same_chain_values_in_both_deployers(tmp_path):
    path = _with_funding(tmp_path)
    ours = {m["symbol"]: m["funding"] for m in cast_deploy.load(path)["markets"]}
    theirs = {m.symbol: m.funding for m in deploy.load_config(path).markets}
    assert theirs["ETH"] == FundingParams(8, 10**13, 2 * 10**15)
    assert theirs["SOL"] == FundingParams(16, 0, 10**15)
    assert theirs["BTC"] is None and ours["BTC"] is None
    for symbol in ("ETH", "SOL"):
        stated = deploy.funding_manifest(theirs[symbol])
        assert ours[symbol] == {
            "convergence_hours": stated["convergence_hours"],
            "interest": stated["interest_wad"],
            "cap": stated["cap_wad"],
        }
    assert (cast_deploy.MAX_FUNDING_CAP, cast_deploy.MAX_FUNDING_CONVERGENCE) == (
        MAX_FUNDING_CAP,
        MAX_FUNDING_CONVERGENCE,
    )


@pytest.mark.parametrize(
    ("eth", "extra", "message"),
    [
        (
            "funding = { convergence_hours = 0, cap = 0.002 }",
            "",
            r"convergence_hours: 0 outside \[1, 168\]",
        ),
        (
            "funding = { convergence_hours = 169, cap = 0.002 }",
            "",
            r"convergence_hours: 169 outside",
        ),
        (
            "funding = { convergence_hours = 8.5, cap = 0.002 }",
            "",
            "convergence_hours: expected an integer",
        ),
        ("funding = { convergence_hours = 8, cap = 0.02 }", "", r"cap: 0.02 outside \[0, 0.01\]"),
        (
            "funding = { convergence_hours = 8, cap = -0.001 }",
            "",
            r"cap: -0.001 outside \[0, 0.01\]",
        ),
        ("funding = { convergence_hours = 8, cap = 0 }", "", "cap: 0 is no funding"),
        ("funding = { convergence_hours = 8, cap = '0.002' }", "", "cap: expected a number"),
        (
            "funding = { convergence_hours = 8, cap = 0.002, interest = 0.003 }",
            "",
            r"interest: \|0.003\| above the cap",
        ),
        (
            "funding = { convergence_hours = 8, cap = 0.002, interest = -0.02 }",
            "",
            r"interest: -0.02 outside \[-0.01, 0.01\]",
        ),
        ("funding = { convergence_hours = 8 }", "", "markets.ETH.funding: missing 'cap'"),
        (
            "funding = { convergence_hours = 8, cap = 0.002, rate = 1 }",
            "",
            r"unknown keys \['rate'\]",
        ),
        ("funding = 0.002", "", "markets.ETH.funding: expected a table"),
        (FUNDING["ETH"], "perp = false\n", "markets.ETH.funding: funding needs a perp market"),
    ],
)
def test_load__bad_funding__both_deployers_refuse_naming_the_field(tmp_path, eth, extra, message):
    path = _with_funding(tmp_path, eth, extra)
    with pytest.raises(cast_deploy.DeployError, match=message):
        cast_deploy.load(path)
    with pytest.raises(deploy.ConfigError, match=message) as info:
        deploy.load_config(path)
    assert str(path) in str(info.value)
