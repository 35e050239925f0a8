"""Deploy configs and manifests without a node: the governor's limits and bounds come from
the config, the devnet listing is the local config, a manifest is checked when loaded."""

from __future__ import annotations

import json

import pytest
import tomllib
from click.testing import CliRunner

from offchain_risk import deploy, devnet
from offchain_risk.units import WAD

CONFIG = deploy.LOCAL_CONFIG
DEVNET_LIMITS = (3_600, WAD // 10, WAD // 20, 500, 6 * 3_600)
DEVNET_GLOBAL = (6 * WAD // 5, 3 * WAD, WAD // 100, WAD // 20, WAD // 20, WAD // 5)
GOVERNOR_TABLES = ("[governor.limits]", "[governor.global_bounds]", "[governor.asset_bounds]")


def _without_governor_values(text: str) -> str:
    """The local config with its signers but none of the governor's limits or bounds."""
    lines, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() in GOVERNOR_TABLES
        if not skipping:
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def bare_config(tmp_path):
    path = tmp_path / "bare.toml"
    path.write_text(_without_governor_values(CONFIG.read_text()))
    return path


def test_load_config__local_toml__governor_values_in_chain_units():
    cfg = deploy.load_config(CONFIG)
    assert tuple(cfg.limits[k] for k in deploy.LIMIT_KEYS) == DEVNET_LIMITS
    assert tuple(cfg.global_bounds[k] for k in deploy.GLOBAL_BOUND_KEYS) == DEVNET_GLOBAL
    settings = deploy.governor_settings(cfg, local=False)  # complete: no default needed
    assert settings.limits == DEVNET_LIMITS and settings.global_bounds == DEVNET_GLOBAL
    # floor_min is each market's listed floor rate; the rest are [governor.asset_bounds]
    assert settings.asset_bounds == tuple(
        (m.floor_bps, 2_000, 0, 5_000, 10_000, 20_000, 500, 500) for m in cfg.markets
    )


def test_devnet__listing_and_governor_values__are_the_local_config():
    cfg = deploy.load_config(CONFIG)
    assert [
        (m.symbol, m.price_usd, m.floor_bps, m.haircut_bps, m.token) for m in devnet.MARKETS
    ] == [(m.symbol, m.price, m.floor_bps, m.haircut_bps, m.token) for m in cfg.markets]
    assert (devnet.DEFAULT_SHOCKS_BPS == cfg.shocks).all()
    assert devnet.GOVERNOR_LIMITS == DEVNET_LIMITS and devnet.GLOBAL_BOUNDS == DEVNET_GLOBAL
    assert devnet.DEFAULT_POLICY == cfg.policy
    # the replay's listing starts from the same markets
    for i, m in enumerate(devnet.MARKETS):
        assert devnet.REPLAY_SPECS[m.symbol] == (m.floor_bps, m.haircut_bps, m.token, i)


def test_governor_settings__non_local_without_limits_and_bounds__names_every_missing_value(
    bare_config,
):
    cfg = deploy.load_config(bare_config)
    assert cfg.signers  # a governor is configured
    with pytest.raises(deploy.ConfigError, match="non-local network") as info:
        deploy.governor_settings(cfg, local=False)
    message = str(info.value)
    for key in deploy.LIMIT_KEYS:
        assert f"governor.limits.{key}" in message
    for key in deploy.GLOBAL_BOUND_KEYS:
        assert f"governor.global_bounds.{key}" in message
    assert "markets.ETH.bounds.floor_max" in message
    assert "markets.ETH.bounds.floor_min" not in message  # the listed floor rate
    # a vault's floor_min and haircut_min are its underlying's floor and its class haircut
    assert len(cfg.missing_governor()) == 5 + 6 + 7 * len(cfg.markets) + 6 * len(cfg.vaults)


def test_governor_settings__local_without_limits_and_bounds__the_devnet_values(bare_config):
    cfg = deploy.load_config(bare_config)
    settings = deploy.governor_settings(cfg, local=True)
    assert settings == deploy.governor_settings(deploy.load_config(CONFIG), local=True)


def test_governor_settings__no_signers__nothing_needed(bare_config, tmp_path):
    # the governor's signers and threshold (the first ones; the vol feed keeps its own)
    text = bare_config.read_text().replace('signers = ["test:5", "test:6", "test:7"]', "", 1)
    path = tmp_path / "ungoverned.toml"
    path.write_text(text.replace("threshold = 2", "", 1))
    assert deploy.load_config(path).missing_governor() == []


def test_load_config__market_bounds__override_the_shared_ones(tmp_path):
    text = CONFIG.read_text().replace(
        'symbol = "LINK"', 'symbol = "LINK"\nbounds = { floor_min = 250, haircut_max = 0 }'
    )
    path = tmp_path / "link.toml"
    path.write_text(text)
    cfg = deploy.load_config(path)
    link = deploy.governor_settings(cfg, local=False).asset_bounds[3]
    assert link == (250, 2_000, 0, 0, 10_000, 20_000, 500, 500)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("window = 3600", "window = 3600\nwindow_hours = 1"),
            r"governor.limits: unknown keys \['window_hours'\]",
        ),
        (
            lambda t: t.replace("window_rate = 0.10", "window_rate = 10"),
            r"governor.limits.window_rate: 10 outside \[0, 1\]",
        ),
        (
            lambda t: t.replace("im_min = 1.2", "im_min = 3.5"),
            r"governor.global_bounds.im_min: above im_max",
        ),
        (
            lambda t: t.replace("haircut_min = 0", "haircut_min = 6000"),
            r"governor.asset_bounds.haircut_min: above haircut_max",
        ),
        (
            lambda t: t.replace('symbol = "SOL"', 'symbol = "SOL"\nbounds = { floor = 1 }'),
            r"markets.SOL.bounds: unknown keys \['floor'\]",
        ),
        (
            lambda t: t.replace("[governor.limits]", "[governor.limit]"),
            r"governor: unknown keys \['limit'\]",
        ),
    ],
)
def test_load_config__bad_governor_field__names_the_file_and_field(tmp_path, edit, message):
    text = CONFIG.read_text()
    edited = edit(text)
    assert edited != text
    path = tmp_path / "bad.toml"
    path.write_text(edited)
    with pytest.raises(deploy.ConfigError, match=message) as info:
        deploy.load_config(path)
    assert str(path) in str(info.value)


def _manifest(**changes) -> dict:
    contracts = {k: "0x" + f"{i:040x}" for i, k in enumerate(deploy._MANIFEST_CONTRACTS, 1)}
    return {
        "version": deploy.MANIFEST_VERSION,
        "chain_id": 31337,
        "block": 12,
        "contracts": contracts,
        "markets": {},
    } | changes


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (_manifest(chain_id=11155111), "manifest is for chain 11155111, connected to 31337"),
        (_manifest(version=0), "manifest version 0 unsupported"),
        ({"engine": "0x00"}, "manifest version None unsupported"),
        (_manifest(contracts={"engine": "0x00"}), "lacks contracts.book, contracts.lens"),
        ({k: v for k, v in _manifest().items() if k != "block"}, "lacks block"),
    ],
)
def test_load_manifest__unusable__clear_error(tmp_path, manifest, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(deploy.ManifestError, match=message) as info:
        deploy.load_manifest(path, chain_id=31337)
    assert str(path) in str(info.value)


def test_load_manifest__not_json_or_absent__clear_error(tmp_path):
    path = tmp_path / "deployment.json"
    path.write_text("engine = 0x00\n")
    with pytest.raises(deploy.ManifestError, match="not a JSON manifest"):
        deploy.load_manifest(path)
    with pytest.raises(FileNotFoundError, match="run `ape run deploy` first"):
        deploy.load_manifest(tmp_path / "absent.json")


def test_load_manifest__this_chain__loaded(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_manifest()))
    assert deploy.load_manifest(path, chain_id=31337) == _manifest()


def test_keeper_cli__no_manifest__points_at_ape_run_deploy(tmp_path):
    from offchain_risk.__main__ import cli

    result = CliRunner().invoke(
        cli, ["keeper", "--manifest", str(tmp_path / "absent.json"), "--sender", "0x" + "11" * 20]
    )
    assert result.exit_code != 0
    assert "absent.json not found: run `ape run deploy`, or pass --deploy" in result.output


def test_keeper_deploy__non_local_network__refused_before_any_transaction(tmp_path):
    from types import SimpleNamespace

    from offchain_risk.keeper.runner import deploy_local

    sepolia = SimpleNamespace(is_local=False, name="sepolia")
    with pytest.raises(deploy.ConfigError, match="--deploy is for local networks"):
        deploy_local(None, sepolia, CONFIG, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_load_config__local_toml__vol_feed_signers_heartbeat_and_underlyings():
    cfg = deploy.load_config(CONFIG)
    assert cfg.vol_feed == deploy.VolFeedConfig(
        signers=("test:5", "test:6", "test:7"),
        threshold=2,
        heartbeat=7_200,
        underlyings=("ETH", "BTC"),
    )
    symbols = {m.symbol: i for i, m in enumerate(cfg.markets)}
    params = deploy.vol_feed_parameters(cfg.vol_feed, symbols, ["0xa", "0xb", "0xc"])
    assert params["underlyings"] == {"ETH": 0, "BTC": 1}  # the feed's ids are asset ids


VAULT = '[[vaults]]\nsymbol = "sWETH"\nunderlying = "ETH"\nclass = "liquid_staking"'


def test_load_config__local_vault__class_haircut_growth_and_bounds():
    cfg = deploy.load_config(CONFIG)
    (vault,) = cfg.vaults
    assert (vault.symbol, vault.underlying, vault.vault_address) == ("sWETH", "ETH", None)
    klass = devnet.VAULT_CLASSES[vault.vault_class]
    assert (vault.haircut_bps, vault.max_growth_bps) == (klass.haircut_bps, klass.max_growth_bps)
    # the underlying's floor is the admin floor, the class haircut the least one signed
    (bounds,) = deploy.governor_settings(cfg, local=False).vault_bounds
    assert bounds == (100, 2_000, klass.haircut_bps, 5_000, 10_000, 20_000, 500, 500)
    assert "vaults.sWETH.vault_address" in cfg.needs_mocks()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('underlyings = ["ETH", "BTC"]', 'underlyings = ["ETH", "DOGE"]'),
            r"vol_feed.underlyings: \['DOGE'\] are not listed markets",
        ),
        (
            lambda t: t.replace("heartbeat = 7200", "heartbeat = 700000"),
            r"vol_feed.heartbeat: 700000 outside \[1, 604800\]",
        ),
        (
            lambda t: t.replace("threshold = 2\nheartbeat", "threshold = 4\nheartbeat"),
            r"vol_feed.threshold: 4 outside \[1, 3\]",
        ),
        (
            lambda t: t.replace("heartbeat = 7200", "heartbeat = 7200.5"),
            r"vol_feed.heartbeat: expected an integer",
        ),
        (
            lambda t: t.replace("heartbeat = 7200\n", ""),
            r"vol_feed: missing 'heartbeat'",
        ),
        (
            lambda t: t.replace("heartbeat = 7200", "heartbeat = 7200\nkeeper = 1"),
            r"vol_feed: unknown keys \['keeper'\]",
        ),
    ],
)
def test_load_config__bad_vol_feed_field__names_the_file_and_field(tmp_path, edit, message):
    edited = edit(CONFIG.read_text())
    assert edited != CONFIG.read_text()
    path = tmp_path / "vol.toml"
    path.write_text(edited)
    with pytest.raises(deploy.ConfigError, match=message):
        deploy.load_config(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('class = "liquid_staking"', 'class = "staking"'),
            r"vaults.sWETH.class: unknown class 'staking'; known: \['liquid_staking'",
        ),
        (
            lambda t: t.replace('underlying = "ETH"', 'underlying = "SOL"'),
            r"vaults.sWETH.underlying: 'SOL' is not a collateral market",
        ),
        (
            lambda t: t.replace('underlying = "ETH"', 'underlying = "DOGE"'),
            r"vaults.sWETH.underlying: 'DOGE' is not a collateral market",
        ),
        (
            lambda t: t.replace('symbol = "sWETH"', 'symbol = "BTC"'),
            r"vaults.BTC.symbol: already the symbol of a market or vault",
        ),
        (
            lambda t: t + "\n" + VAULT + "\n",
            r"vaults.sWETH.symbol: already the symbol of a market or vault",
        ),
        (
            lambda t: t.replace('symbol = "sWETH"', 'symbol = "sWETHx"'),
            r"vaults.sWETHx.symbol: a mock vault's symbol has at most 5 characters",
        ),
        (
            lambda t: t.replace(
                'class = "liquid_staking"', 'class = "savings"\nvault_address = "0x12"'
            ),
            r"vaults.sWETH.vault_address: not an address: '0x12'",
        ),
        (
            lambda t: t.replace('class = "liquid_staking"', 'class = "savings"\nrate = 1.0'),
            r"vaults\[0\]: unknown keys \['rate'\]",
        ),
        (
            lambda t: t.replace('underlying = "ETH"\n', ""),
            r"vaults\[0\]: missing 'underlying'",
        ),
        (
            lambda t: "vaults = 3\n" + t.replace(VAULT, ""),
            r"vaults: expected \[\[vaults\]\] tables",
        ),
    ],
)
def test_load_config__bad_vault__names_the_file_and_field(tmp_path, edit, message):
    text = CONFIG.read_text()
    assert VAULT in text
    _assert_refused(tmp_path, text, edit, message)


def _assert_refused(tmp_path, text, edit, message):
    """`edit(text)` written to a file is refused by `load_config` with `message`, the
    error naming the file."""
    edited = edit(text)
    assert edited != text
    path = tmp_path / "bad.toml"
    path.write_text(edited)
    with pytest.raises(deploy.ConfigError, match=message) as info:
        deploy.load_config(path)
    assert str(path) in str(info.value)


def test_governor_settings__non_local_vault_without_bounds__named(bare_config):
    cfg = deploy.load_config(bare_config)
    with pytest.raises(
        deploy.ConfigError, match=r"governor.asset_bounds.floor_max \(vaults.sWETH\)"
    ):
        deploy.governor_settings(cfg, local=False)
    # locally the devnet's bounds, with the class haircut as the least
    (bounds,) = deploy.governor_settings(cfg, local=True).vault_bounds
    assert bounds[2] == devnet.VAULT_CLASSES["liquid_staking"].haircut_bps


QUOTE = "\n[quote]\nprice = 0.99\npeg_bps = 50\n"


def test_load_config__quote__mock_feed_heartbeat_and_peg_rate(tmp_path):
    assert deploy.load_config(CONFIG).quote is None  # the devnet values cash at par
    path = tmp_path / "quote.toml"
    path.write_text(CONFIG.read_text() + QUOTE)
    cfg = deploy.load_config(path)
    assert cfg.quote == deploy.QuoteConfig(feed=None, price=0.99, heartbeat=86_400, peg_bps=50)
    assert "quote.feed" in cfg.needs_mocks()
    feed = "0x" + "ab" * 20
    path.write_text(CONFIG.read_text() + f'\n[quote]\nfeed = "{feed}"\nheartbeat = 3600\n')
    cfg = deploy.load_config(path)
    assert cfg.quote == deploy.QuoteConfig(feed=feed, heartbeat=3_600, peg_bps=0)
    assert "quote.feed" not in cfg.needs_mocks()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("peg_bps = 10001", r"quote.peg_bps: 10001 outside \[0, 10000\]"),
        ("peg_bps = 12.5", r"quote.peg_bps: expected whole bps, got 12.5"),
        ("peg_bps = -1", r"quote.peg_bps: -1 outside"),
        ('peg_bps = "50"', r"quote.peg_bps: expected a number, got '50'"),
        ("price = 0", r"quote.price: 0 outside \[0.01, 10\]"),
        ("heartbeat = 0", r"quote.heartbeat: 0 outside"),
        ('feed = "0x12"', r"quote.feed: not an address: '0x12'"),
        (f'feed = "0x{"ab" * 20}"\nprice = 1.0', r"quote.price: a mock feed's price, with an"),
        ("peg = 50", r"quote: unknown keys \['peg'\]"),
    ],
)
def test_load_config__bad_quote__names_the_file_and_field(tmp_path, section, message):
    path = tmp_path / "bad.toml"
    path.write_text(CONFIG.read_text() + f"\n[quote]\n{section}\n")
    with pytest.raises(deploy.ConfigError, match=message) as info:
        deploy.load_config(path)
    assert str(path) in str(info.value)


# The option book's grids as the tests use them (local.toml has them commented out).
OPTIONS = """
[options.ETH]
strike_step = 100
vol_shock = 0.15
short_min_bps = 50

[options.BTC]
strike_step = 1000
vol_shock = 0.15
short_min_bps = 50
"""
VOL_FEED = (
    '[vol_feed]\nsigners = ["test:5", "test:6", "test:7"]\nthreshold = 2\nheartbeat = 7200\n'
    'underlyings = ["ETH", "BTC"]\n'
)


def _in_options(old: str, new: str, count: int = 1):
    """An edit of the appended ``[options]`` tables alone (local.toml's commented example
    holds the same lines)."""
    return lambda t: t.replace(OPTIONS, OPTIONS.replace(old, new, count))


def _options_config(tmp_path, text: str) -> deploy.DeployConfig:
    path = tmp_path / "options.toml"
    path.write_text(text)
    return deploy.load_config(path)


def test_local_toml__options_example__commented_out_with_the_tests_grids():
    text = CONFIG.read_text()
    example = [
        line.removeprefix("# ")
        for line in text.splitlines()
        if line.startswith(("# [options.", "# strike_step", "# vol_shock", "# short_min_bps"))
    ]
    assert tomllib.loads("\n".join(example)) == tomllib.loads(OPTIONS)
    assert deploy.load_config(CONFIG).options == ()  # the devnet installs no option book
    assert "options" in deploy.SECTIONS


def test_load_config__options__grids_in_chain_units(tmp_path):
    cfg = _options_config(tmp_path, CONFIG.read_text() + OPTIONS)
    assert cfg.options == (
        deploy.OptionGridConfig("ETH", 100 * WAD, 15 * WAD // 100, 50),
        deploy.OptionGridConfig("BTC", 1_000 * WAD, 15 * WAD // 100, 50),
    )
    symbols = {m.symbol: i for i, m in enumerate(cfg.markets)}
    # what devnet.deploy_option_book takes: asset id -> (strike step, vol shock, short minimum)
    assert cfg.option_grids(symbols) == {
        0: (100 * WAD, 15 * WAD // 100, 50),
        1: (1_000 * WAD, 15 * WAD // 100, 50),
    }
    assert deploy.option_parameters(cfg.options, symbols)["BTC"] == {
        "asset": 1,
        "strike_step_wad": 1_000 * WAD,
        "vol_shock_wad": 15 * WAD // 100,
        "short_min_bps": 50,
        "oi_cap_wad": None,
    }


def test_load_config__options_at_set_grids_bounds__accepted(tmp_path):
    options = OPTIONS.replace("strike_step = 100\n", "strike_step = 1e-9\n")
    options = options.replace("vol_shock = 0.15", "vol_shock = 1", 1)
    options = options.replace("short_min_bps = 50", "short_min_bps = 10000\noi_cap = 0", 1)
    eth, btc = _options_config(tmp_path, CONFIG.read_text() + options).options
    assert eth == deploy.OptionGridConfig("ETH", 10**9, WAD, 10_000, 0)
    assert btc.oi_cap is None
    options = options.replace("vol_shock = 0.15", "vol_shock = 0\noi_cap = 2500.5")
    btc = _options_config(tmp_path, CONFIG.read_text() + options).options[1]
    assert (btc.vol_shock, btc.oi_cap) == (0, 2_500 * WAD + WAD // 2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace(VOL_FEED, ""),
            r"options: an option book needs a \[vol_feed\]",
        ),
        (
            _in_options("[options.BTC]", "[options.DOGE]"),
            r"options.DOGE: 'DOGE' is not a listed market; "
            r"markets: \['ETH', 'BTC', 'SOL', 'LINK'\]",
        ),
        (
            _in_options("[options.BTC]", "[options.SOL]"),
            r"options.SOL: 'SOL' is not a vol feed underlying; vol_feed.underlyings: "
            r"\['ETH', 'BTC'\]",
        ),
        (
            _in_options("[options.BTC]", "[options.sWETH]"),
            r"options.sWETH: 'sWETH' is a vault share: it cannot be an underlying",
        ),
        (
            _in_options("strike_step = 100\n", "strike = 100\n"),
            r"options.ETH: unknown keys \['strike'\]",
        ),
        (
            _in_options(
                "strike_step = 1000\nvol_shock = 0.15\nshort_min_bps = 50",
                "strike_step = 1000\nvol_shock = 0.15",
            ),
            r"options.BTC: missing 'short_min_bps'",
        ),
        (
            _in_options("strike_step = 100\n", "strike_step = 0\n"),
            r"options.ETH.strike_step: 0 outside \[1e-09, 1267650600228.2295\]",
        ),
        (
            _in_options("strike_step = 100\n", "strike_step = 1e-10\n"),
            r"options.ETH.strike_step: 1e-10 outside \[1e-09,",
        ),
        (
            _in_options("strike_step = 1000", "strike_step = 2e12"),
            r"options.BTC.strike_step: 2000000000000.0 outside \[1e-09, 1267650600228.2295\]",
        ),
        (
            _in_options("strike_step = 1000", "strike_step = 1267650600228.2295"),
            r"options.BTC.strike_step: 1267650600228229500000000000000 WAD outside "
            r"\[10\*\*9, 2\*\*100\]",
        ),
        (
            _in_options("strike_step = 100\n", 'strike_step = "100"\n'),
            r"options.ETH.strike_step: expected a number, got '100'",
        ),
        (
            _in_options("vol_shock = 0.15", "vol_shock = 1.5"),
            r"options.ETH.vol_shock: 1.5 outside \[0, 1\]",
        ),
        (
            _in_options("vol_shock = 0.15", "vol_shock = -0.05"),
            r"options.ETH.vol_shock: -0.05 outside \[0, 1\]",
        ),
        (
            _in_options("vol_shock = 0.15", "vol_shock = true"),
            r"options.ETH.vol_shock: expected a number, got True",
        ),
        (
            _in_options("short_min_bps = 50", "short_min_bps = 10001"),
            r"options.ETH.short_min_bps: 10001 outside \[0, 10000\]",
        ),
        (
            _in_options("short_min_bps = 50", "short_min_bps = 12.5"),
            r"options.ETH.short_min_bps: expected whole bps, got 12.5",
        ),
        (
            _in_options("short_min_bps = 50", "short_min_bps = 50\noi_cap = -1"),
            r"options.ETH.oi_cap: -1 outside \[0, ",
        ),
        (
            _in_options("[options.ETH]", "[options]"),
            r"options.strike_step: expected a table of strike_step, vol_shock, short_min_bps, "
            r"oi_cap, as \[options.ETH\]",
        ),
        (
            lambda t: t.replace(OPTIONS, "\n[options]\n"),
            r"options: expected a grid per underlying market symbol, as \[options.ETH\]",
        ),
        (
            _in_options("[options.BTC]", "[option.BTC]"),
            r"top level: unknown sections \['option'\]",
        ),
    ],
)
def test_load_config__bad_options__names_the_file_and_field(tmp_path, edit, message):
    text = CONFIG.read_text() + OPTIONS
    assert VOL_FEED in text
    _assert_refused(tmp_path, text, edit, message)


def test_deploy_config__options_without_vol_feed__refused_before_any_transaction(tmp_path):
    from dataclasses import replace

    cfg = replace(_options_config(tmp_path, CONFIG.read_text() + OPTIONS), vol_feed=None)
    signers = [object()] * len(cfg.signers)  # never used: refused first
    with pytest.raises(deploy.ConfigError, match=r"options: an option book needs a \[vol_feed\]"):
        deploy.deploy_config(None, None, cfg, local=True, signers=signers)
