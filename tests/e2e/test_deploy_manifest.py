"""`ape run deploy` from a config file: the manifest matches the chain, is never silently
replaced, and a non-local network asks first; a config's `[options]` installs an option
book."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import ape
import pytest

from offchain_risk import deploy
from offchain_risk.units import DAY, EXPIRY_TIME, WAD

CONFIG = Path(__file__).resolve().parents[2] / "deployments" / "config" / "local.toml"
# The grids of local.toml's commented [options] example (strike steps of 100 and 1,000
# USD, a 15 vol point shock at 30 days, a 50 bps short minimum) and a cap for BTC expiries.
OPTIONS = """
[options.ETH]
strike_step = 100
vol_shock = 0.15
short_min_bps = 50

[options.BTC]
strike_step = 1000
vol_shock = 0.15
short_min_bps = 50
oi_cap = 250
"""


def _network(chain, name: str, is_local: bool) -> SimpleNamespace:
    return SimpleNamespace(
        name=name,
        is_local=is_local,
        chain_id=chain.chain_id,
        ecosystem=SimpleNamespace(name="ethereum"),
    )


@pytest.fixture
def local_network(chain):
    return _network(chain, "local", True)


@pytest.fixture
def remote_network(chain):
    """A network that is not local (the chain underneath is the test anvil)."""
    return _network(chain, "sepolia", False)


@pytest.fixture
def owner(accounts):
    return accounts[0]


def test_load_config__local_toml__every_market_and_the_governor():
    cfg = deploy.load_config(CONFIG)
    assert [m.symbol for m in cfg.markets] == ["ETH", "BTC", "SOL", "LINK"]
    assert cfg.shocks.shape == (4, 32)  # 16 configured, zero-padded to the chain's 32
    assert cfg.signers == ("test:5", "test:6", "test:7") and cfg.threshold == 2
    assert cfg.needs_mocks()  # feeds and tokens are mocks: local networks only


def test_run_deploy__local_config__manifest_matches_the_chain(
    project, chain, owner, local_network, tmp_path
):
    cfg = deploy.load_config(CONFIG)
    out = tmp_path / "local.json"
    manifest = deploy.run_deploy(project, local_network, owner, cfg, CONFIG, out)
    assert json.loads(out.read_text()) == manifest
    assert manifest["block"] == chain.blocks.head.number
    assert deploy.check_manifest(manifest, project, chain.chain_id) == []
    d = deploy.load_deployment(project, manifest)
    assert d.engine.num_assets() == 5
    assert [m["asset"] for m in manifest["markets"].values()] == [0, 1, 2, 3]
    # the vault shares: listed after the markets, priced through ETH's feed, their rate cap
    # snapshot taken at listing; the signed snapshot entry is the engine's snapshot manager
    vault = manifest["vaults"]["sWETH"]
    assert (vault["asset"], vault["underlying"], vault["class"]) == (4, "ETH", "liquid_staking")
    assert str(d.tokens[4].address) == vault["vault"] and d.tokens[4].asset() == d.tokens[0]
    assert d.feeds[4] == d.feeds[0] and d.symbols["sWETH"] == 4
    assert vault["snapshot_ratio"] == d.engine.vault_rate(4) == 10**18  # an empty vault: 1:1
    assert vault["snapshot_time"] <= chain.blocks.head.timestamp
    assert (vault["haircut_bps"], vault["max_growth_bps"]) == (2_000, 1_000)
    assert vault["bounds"]["haircut_min"] == 2_000
    snapshots = project.RateSnapshots.at(manifest["contracts"]["snapshots"])
    assert (
        d.engine.snapshot_manager() == snapshots
        and snapshots.governor() == manifest["contracts"]["governor"]
    )
    assert manifest["markets"]["SOL"]["shocks_bps"] == list(cfg.shocks[2])
    assert manifest["markets"]["ETH"]["token"] == str(d.tokens[0].address)
    assert manifest["markets"]["SOL"]["token"] is None
    governor = project.RiskGovernor.at(manifest["contracts"]["governor"])
    assert governor.threshold() == 2 and governor.signer_count() == 3
    assert all(governor.is_signer(s) for s in manifest["parameters"]["signers"])
    assert manifest["parameters"]["im_multiplier_wad"] == d.engine.im_multiplier() == 15 * 10**17
    vol = manifest["parameters"]["vol_feed"]
    assert str(d.vol_feed.address) == manifest["contracts"]["vol_feed"]
    assert vol["underlyings"] == {"ETH": 0, "BTC": 1} and vol["heartbeat"] == 7_200
    assert d.vol_feed.threshold() == 2 and d.vol_feed.signer_count() == 3
    assert [d.vol_feed.heartbeat(a) for a in range(4)] == [7_200, 7_200, 0, 0]
    # no [options]: no option book installed or recorded
    assert d.engine.option_book() == deploy.ZERO_ADDRESS
    assert "option_book" not in manifest["contracts"] and "options" not in manifest["parameters"]


def test_run_deploy__options__book_deployed_installed_and_recorded(
    project, chain, owner, local_network, tmp_path
):
    config = tmp_path / "options.toml"
    config.write_text(CONFIG.read_text() + OPTIONS)
    cfg = deploy.load_config(config)
    manifest = deploy.run_deploy(project, local_network, owner, cfg, config, tmp_path / "m.json")
    c = manifest["contracts"]
    d = deploy.load_deployment(project, manifest)
    book = project.OptionBook.at(c["option_book"])
    # over the engine and the config's vol feed, installed on the engine, the deployer's
    assert d.engine.option_book() == book.address
    assert book.engine() == c["engine"] and book.vol_feed() == c["vol_feed"]
    assert book.owner() == owner
    shock = 15 * WAD // 100
    assert tuple(book.grid(0)) == (100 * WAD, shock, 50)
    assert tuple(book.grid(1)) == (1_000 * WAD, shock, 50)
    assert tuple(book.grid(2)) == (0, 0, 0)  # SOL: not an underlying
    assert manifest["parameters"]["options"] == {
        "ETH": {
            "asset": 0,
            "strike_step_wad": 100 * WAD,
            "vol_shock_wad": shock,
            "short_min_bps": 50,
            "oi_cap_wad": None,
        },
        "BTC": {
            "asset": 1,
            "strike_step_wad": 1_000 * WAD,
            "vol_shock_wad": shock,
            "short_min_bps": 50,
            "oi_cap_wad": 250 * WAD,
        },
    }
    assert deploy.check_manifest(manifest, project, chain.chain_id) == []
    # the grid is the book's: a strike on it lists, one off it is refused
    expiry = (chain.blocks.head.timestamp // DAY + 7) * DAY + EXPIRY_TIME
    book.list_option(0, expiry, 2_200 * WAD, True, sender=owner)
    with ape.reverts("options: strike off grid"):
        book.list_option(0, expiry, 2_250 * WAD, True, sender=owner)
    # check_manifest: grids that differ, a book the engine does not hold, a book left out
    bad = json.loads(json.dumps(manifest))
    bad["parameters"]["options"]["ETH"]["vol_shock_wad"] = 20 * WAD // 100
    bad["parameters"]["options"]["BTC"]["short_min_bps"] = 100
    assert deploy.check_manifest(bad, project, chain.chain_id) == [
        "ETH: option grid differs",
        "BTC: option grid differs",
    ]
    other = project.OptionBook.deploy(d.engine, d.vol_feed, sender=owner)
    bad = json.loads(json.dumps(manifest))
    bad["contracts"]["option_book"] = str(other.address)
    assert deploy.check_manifest(bad, project, chain.chain_id) == [
        f"the engine's option book {book.address} != {other.address}"
    ]
    bad = json.loads(json.dumps(manifest))
    del bad["contracts"]["option_book"], bad["parameters"]["options"]
    assert deploy.check_manifest(bad, project, chain.chain_id) == [
        f"the engine's option book {book.address} != {deploy.ZERO_ADDRESS}"
    ]
    with ape.reverts("settlement: book already set"):  # one book per engine
        d.engine.set_option_book(other, sender=owner)


def test_check_manifest__tampered__names_every_difference(
    project, chain, owner, local_network, tmp_path
):
    config = tmp_path / "quote.toml"  # and a quote feed
    config.write_text(CONFIG.read_text() + "\n[quote]\nprice = 0.99\npeg_bps = 50\n")
    cfg = deploy.load_config(config)
    manifest = deploy.run_deploy(project, local_network, owner, cfg, config, tmp_path / "m.json")
    assert manifest["quote"]["peg_bps"] == 50 and manifest["quote"]["heartbeat"] == cfg.heartbeat
    assert deploy.check_manifest(manifest, project, chain.chain_id) == []
    bad = json.loads(json.dumps(manifest))
    bad["markets"]["ETH"]["feed"] = manifest["markets"]["BTC"]["feed"]
    bad["markets"]["LINK"]["shocks_bps"][0] -= 1
    bad["parameters"]["im_multiplier_wad"] += 1
    bad["parameters"]["vol_feed"]["heartbeat"] = 3_600
    bad["parameters"]["vol_feed"]["signers"][0] = manifest["deployer"]
    bad["vaults"]["sWETH"]["snapshot_ratio"] += 1
    bad["vaults"]["sWETH"]["haircut_bps"] = 1_200
    bad["contracts"]["snapshots"] = manifest["contracts"]["governor"]
    bad["quote"]["peg_bps"] = 0
    problems = deploy.check_manifest(bad, project, chain.chain_id)
    assert len(problems) == 10
    assert any(p.startswith("quote feed differs") for p in problems)
    assert "vol feed signers differ" in problems
    assert {"ETH: vol feed heartbeat differs", "BTC: vol feed heartbeat differs"} <= set(problems)
    assert any(p.startswith("ETH: feed") for p in problems)
    assert "LINK: shocks differ" in problems and "IM multiplier differs" in problems
    assert "sWETH: rate-cap snapshot differs" in problems and "sWETH: haircut differs" in problems
    assert any(p.startswith("snapshot manager ") for p in problems)
    assert deploy.check_manifest(manifest, project, chain.chain_id + 1) == [
        f"manifest is for chain {chain.chain_id}, connected to {chain.chain_id + 1}"
    ]


def test_run_deploy__manifest_exists__refused_and_nothing_sent(
    project, chain, owner, local_network, tmp_path
):
    cfg = deploy.load_config(CONFIG)
    out = tmp_path / "local.json"
    out.write_text('{"recorded": "an earlier deployment"}\n')
    nonce, head = owner.nonce, chain.blocks.head.number
    with pytest.raises(deploy.ManifestExistsError, match="use --force to replace it"):
        deploy.run_deploy(project, local_network, owner, cfg, CONFIG, out)
    assert out.read_text() == '{"recorded": "an earlier deployment"}\n'
    assert (owner.nonce, chain.blocks.head.number) == (nonce, head)
    # with force it is replaced by the new deployment's manifest
    manifest = deploy.run_deploy(project, local_network, owner, cfg, CONFIG, out, force=True)
    assert json.loads(out.read_text()) == manifest


def _remote_config(tmp_path, d):
    """The local config, pointed at existing feeds, tokens and vault (as on a real
    network), without its vol feed."""
    text = re.sub(r"\[vol_feed\].*?(?=\[\[markets\]\])", "", CONFIG.read_text(), flags=re.S)
    text, vaults = text.split("[[vaults]]")
    from ape import accounts, project

    owner = accounts.test_accounts[0]  # the tests' owner
    vault = project.MockVault.deploy("Vault sWETH", "sWETH", d.tokens[0], sender=owner)
    vaults = vaults.replace(
        'class = "liquid_staking"', f'class = "liquid_staking"\nvault_address = "{vault.address}"'
    )
    text = text.replace('signers = ["test:5", "test:6", "test:7"]', "signers = []")
    text = text.replace("threshold = 2", "threshold = 0")
    text = text.replace(
        "heartbeat = 86400", f'heartbeat = 86400\ncash_address = "{d.cash.address}"'
    )
    blocks = text.split("[[markets]]")
    out = [blocks[0]]
    symbols = {"ETH": 0, "BTC": 1, "SOL": 2, "LINK": 3}
    for block, (symbol, asset) in zip(blocks[1:], symbols.items(), strict=True):
        feed = d.feeds[asset].address
        extra = f'\nfeed = "{feed}"'
        if symbol in ("ETH", "BTC"):
            extra += f'\ntoken_address = "{d.tokens[asset].address}"'
            block = "\n".join(line for line in block.splitlines() if not line.startswith("token ="))
        out.append(block.rstrip("\n") + extra + "\n\n")
    path = tmp_path / "remote.toml"
    path.write_text("[[markets]]".join(out) + "[[vaults]]" + vaults)
    return path


def test_run_deploy__non_local_declined__nothing_sent(
    project, chain, owner, remote_network, tmp_path
):
    from offchain_risk import devnet

    d = devnet.deploy(project, owner)
    path = _remote_config(tmp_path, d)
    cfg = deploy.load_config(path)
    assert cfg.needs_mocks() == []
    asked = []
    nonce, head = owner.nonce, chain.blocks.head.number
    with pytest.raises(deploy.DeployAborted, match="not deployed to sepolia"):
        deploy.run_deploy(
            project,
            remote_network,
            owner,
            cfg,
            path,
            tmp_path / "r.json",
            confirm=lambda q: asked.append(q) or False,
        )
    assert len(asked) == 1 and "to sepolia" in asked[0] and str(owner.address) in asked[0]
    assert (owner.nonce, chain.blocks.head.number) == (nonce, head)
    assert not (tmp_path / "r.json").exists()


def test_run_deploy__non_local_confirmed__lists_existing_feeds_and_tokens(
    project, chain, owner, remote_network, tmp_path
):
    from offchain_risk import devnet

    d = devnet.deploy(project, owner)
    path = _remote_config(tmp_path, d)
    cfg = deploy.load_config(path)
    manifest = deploy.run_deploy(
        project, remote_network, owner, cfg, path, tmp_path / "r.json", confirm=lambda q: True
    )
    assert manifest["contracts"]["cash"] == str(d.cash.address)
    assert manifest["markets"]["ETH"]["feed"] == str(d.feeds[0].address)
    assert manifest["markets"]["BTC"]["token"] == str(d.tokens[1].address)
    assert "governor" not in manifest["contracts"]
    assert deploy.check_manifest(manifest, project, chain.chain_id) == []


def test_run_deploy__non_local_with_mocks__refused_before_asking(
    project, chain, owner, remote_network, tmp_path
):
    cfg = deploy.load_config(CONFIG)
    nonce = owner.nonce
    with pytest.raises(deploy.ConfigError, match="needs existing contracts for markets.ETH.feed"):
        deploy.run_deploy(
            project,
            remote_network,
            owner,
            cfg,
            CONFIG,
            tmp_path / "r.json",
            confirm=lambda q: pytest.fail("asked although the config cannot deploy"),
        )
    assert owner.nonce == nonce


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("im_multiplier = 1.5", "im_multiplier = 0.5"),
            r"engine.im_multiplier: 0.5 outside",
        ),
        (
            lambda t: t.replace("\n[engine]\n", "\n[engine]\nleverage = 3\n"),
            r"engine: unknown keys \['leverage'\]",
        ),
        (lambda t: t.replace('symbol = "SOL"', 'symbol = "BTC"'), "duplicate symbols"),
        (lambda t: t.replace("threshold = 2", "threshold = 4"), "governor.threshold: 4 not in"),
        (lambda t: t.replace("floor_bps = 300", "floor_bps = 20000"), "markets.LINK.floor_bps"),
        (
            lambda t: t.replace("shocks_bps = [-2000, 2000,", "shocks_bps = [-20000, 2000,", 1),
            "markets.LINK.shocks_bps",
        ),
        (
            lambda t: t.replace(
                'token = ["Wrapped BTC", "WBTC", 8]', 'token = ["Wrapped BTC", "WBTC"]'
            ),
            "markets.BTC.token",
        ),
        (
            lambda t: t.replace("max_discount = 0.10", "max_discount = 0.01"),
            "liquidation: need 0 < min_discount",
        ),
        (lambda t: t.replace("[[markets]]", "[[market]]"), "unknown sections"),
        (lambda t: t + "\n[oops", "not valid TOML"),
    ],
)
def test_load_config__bad_field__names_the_file_and_field(tmp_path, edit, message):
    text = CONFIG.read_text()
    edited = edit(text)
    assert edited != text
    path = tmp_path / "bad.toml"
    path.write_text(edited)
    with pytest.raises(deploy.ConfigError, match=message) as info:
        deploy.load_config(path)
    assert str(path) in str(info.value)


def test_load_config__missing_file__clear_error(tmp_path):
    with pytest.raises(deploy.ConfigError, match="no such config file"):
        deploy.load_config(tmp_path / "absent.toml")


def test_manifest_path__next_to_the_config_folder():
    assert deploy.manifest_path("deployments/config/local.toml") == Path("deployments/local.json")
    assert deploy.manifest_path("elsewhere/x.toml") == Path("elsewhere/x.json")


def _extras():
    import importlib.util
    import sys

    path = CONFIG.parents[2] / "ape_console_extras.py"
    spec = importlib.util.spec_from_file_location("ballast_console_extras_e2e", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_console_extras__after_deploy__names_and_helpers(
    project, chain, accounts, owner, local_network, tmp_path, monkeypatch, capsys
):
    config = tmp_path / "quote.toml"  # and a quote feed at 0.99 with a 50 bps peg rate
    config.write_text(CONFIG.read_text() + "\n[quote]\nprice = 0.99\npeg_bps = 50\n")
    cfg = deploy.load_config(config)
    out = tmp_path / "local.json"
    manifest = deploy.run_deploy(project, local_network, owner, cfg, config, out)
    monkeypatch.setenv("BALLAST_MANIFEST", str(out))
    names = _extras().ape_init_extras(accounts=accounts, project=project, chain=chain)
    assert f"loaded {out}" in capsys.readouterr().out
    assert str(names["engine"].address) == manifest["contracts"]["engine"]
    assert str(names["governor"].address) == manifest["contracts"]["governor"]
    assert str(names["WETH"].address) == manifest["markets"]["ETH"]["token"]
    assert str(names["feeds"]["SOL"].address) == manifest["markets"]["SOL"]["feed"]
    trader = names["trader"]
    names["deposit"](trader, "USDC", 20_000)
    names["open_position"](trader, "SOL", 40)  # at the oracle price, 150
    s = names["show"](trader)
    assert [(a.asset, a.size, a.open_notional) for a in s.assets] == [
        (2, 40 * 10**18, 6_000 * 10**18)
    ]
    # the quote's peg term: 20,000 USDC * (1 - 0.99 + 0.5%) = 300 USD of IM, equity unchanged
    assert "quote: 0.9900 USD, peg rate 50 bps, IM peg term 300.00 USD" in capsys.readouterr().out
    names["set_price"]("SOL", 75)
    assert names["show"](trader).equity == (20_000 - 3_000) * 10**18
    # vault shares of the manifest deposit through their vault and show their rate
    assert str(names["sWETH"].address) == manifest["vaults"]["sWETH"]["vault"]
    names["deposit"](trader, "sWETH", 1)
    capsys.readouterr()
    names["show"](trader)
    assert "sWETH: 1.000000 ETH per share" in capsys.readouterr().out
    rows = names["health_table"]()
    table = capsys.readouterr().out
    ids = [account for account, _ in rows]
    assert ids[0] == names["account_id"](str(trader), 0)  # the least healthy first
    assert names["account_id"](str(names["desk"]), 0) in ids and "E/MM" in table
    with pytest.raises(ValueError, match="unknown token 'DAI'"):
        names["deposit"](trader, "DAI", 1)


def test_console_extras__manifest_of_another_chain__not_loaded(
    project, chain, accounts, owner, local_network, tmp_path, monkeypatch, capsys
):
    cfg = deploy.load_config(CONFIG)
    out = tmp_path / "local.json"
    manifest = deploy.run_deploy(project, local_network, owner, cfg, CONFIG, out)
    out.write_text(json.dumps({**manifest, "chain_id": chain.chain_id + 7}))
    monkeypatch.setenv("BALLAST_MANIFEST", str(out))
    names = _extras().ape_init_extras(accounts=accounts, project=project, chain=chain)
    assert "does not match this chain" in capsys.readouterr().out
    assert "engine" not in names
    with pytest.raises(RuntimeError, match="no deployment loaded"):
        names["show"](names["trader"])


def _remote_governed_config(tmp_path, d, *, governor_values: bool):
    """The remote config with the local one's 2-of-3 governor, with or without its limits
    and bounds."""
    text = _remote_config(tmp_path, d).read_text()
    text = text.replace("signers = []", 'signers = ["test:5", "test:6", "test:7"]')
    text = text.replace("threshold = 0", "threshold = 2")
    if not governor_values:
        lines, skipping = [], False
        for line in text.splitlines():
            if line.startswith("["):
                skipping = line.strip().startswith("[governor.")
            if not skipping:
                lines.append(line)
        text = "\n".join(lines) + "\n"
    path = tmp_path / ("governed.toml" if governor_values else "ungoverned-values.toml")
    path.write_text(text)
    return path


def test_run_deploy__non_local_governor_without_limits__refused_before_asking(
    project, chain, owner, remote_network, tmp_path
):
    """Regression: a non-local deploy silently got the devnet governor limits and bounds."""
    from offchain_risk import devnet

    d = devnet.deploy(project, owner)
    path = _remote_governed_config(tmp_path, d, governor_values=False)
    cfg = deploy.load_config(path)
    nonce = owner.nonce
    with pytest.raises(deploy.ConfigError, match="missing governor.limits.window") as info:
        deploy.run_deploy(
            project,
            remote_network,
            owner,
            cfg,
            path,
            tmp_path / "r.json",
            confirm=lambda q: pytest.fail("asked although the config cannot deploy"),
        )
    assert "markets.LINK.bounds.shock_up_min" in str(info.value)
    assert owner.nonce == nonce and not (tmp_path / "r.json").exists()


def test_deploy_config__non_local_governor__limits_and_bounds_from_the_config(
    project, chain, accounts, owner, tmp_path
):
    from offchain_risk import devnet

    d = devnet.deploy(project, owner)
    path = _remote_governed_config(tmp_path, d, governor_values=True)
    text = path.read_text().replace("mm_step_bps = 500", "mm_step_bps = 300")
    text = text.replace("im_max = 3.0", "im_max = 2.5")
    text = text.replace('symbol = "SOL"', 'symbol = "SOL"\nbounds = { floor_max = 1500 }')
    path.write_text(text)
    cfg = deploy.load_config(path)
    signers = [accounts[5], accounts[6], accounts[7]]
    d2, governor = deploy.deploy_config(project, owner, cfg, local=False, signers=signers)
    assert tuple(governor.limits()) == (3_600, 10**17, 5 * 10**16, 300, 21_600)
    assert tuple(governor.global_bounds())[:2] == (12 * 10**17, 25 * 10**17)
    assert tuple(governor.asset_bounds(2)) == (200, 1_500, 0, 5_000, 10_000, 20_000, 500, 500)
    assert tuple(governor.asset_bounds(3)) == (300, 2_000, 0, 5_000, 10_000, 20_000, 500, 500)
    manifest = deploy.build_manifest(
        d2,
        governor,
        cfg,
        network="ethereum:sepolia",
        chain_id=chain.chain_id,
        block=chain.blocks.head.number,
        deployer=str(owner.address),
        config_path=str(path),
        signers=[str(s.address) for s in signers],
        local=False,
    )
    assert manifest["parameters"]["governor_limits"]["mm_step_bps"] == 300
    assert manifest["markets"]["SOL"]["bounds"]["floor_max"] == 1_500
    assert deploy.check_manifest(manifest, project, chain.chain_id) == []
    bad = json.loads(json.dumps(manifest))
    bad["parameters"]["governor_limits"]["mm_step_bps"] = 500
    bad["markets"]["SOL"]["bounds"]["floor_max"] = 2_000
    assert deploy.check_manifest(bad, project, chain.chain_id) == [
        "governor limits differ",
        "SOL: governor bounds differ",
    ]


def test_keeper__manifest_of_ape_run_deploy__indexes_and_scans_the_deployment(
    project, chain, accounts, owner, local_network, tmp_path
):
    """The keeper runs from the manifest `ape run deploy` wrote (no other address file)."""
    from offchain_risk.chain import account_id
    from offchain_risk.keeper.keeper import Keeper
    from offchain_risk.keeper.store import Store
    from offchain_risk.replay.txs import lean_web3

    cfg = deploy.load_config(CONFIG)
    out = tmp_path / "local.json"
    deploy.run_deploy(project, local_network, owner, cfg, CONFIG, out)
    manifest = deploy.load_manifest(out, chain.chain_id)
    d = deploy.load_deployment(project, manifest)
    trader, keeper_key = accounts[2], accounts[4]
    d.cash.mint(trader, 10_000 * 10**6, sender=owner)
    d.cash.approve(d.engine, 2**255, sender=trader)
    d.engine.deposit(account_id(str(trader), 0), d.cash, 10_000 * 10**6, sender=trader)
    w3 = lean_web3(chain.provider.uri)
    keeper = Keeper.from_manifest(project, w3, manifest, Store(":memory:"), account=keeper_key)
    result = keeper.tick()
    assert result.error is None
    assert account_id(str(trader), 0) in keeper.book.rows
    assert result.scan.confirmed == [] and result.actions == []


def test_keeper__manifest_of_another_chain__refused(
    project, chain, accounts, owner, local_network, tmp_path
):
    from offchain_risk.keeper.keeper import Keeper
    from offchain_risk.keeper.store import Store
    from offchain_risk.replay.txs import lean_web3

    cfg = deploy.load_config(CONFIG)
    manifest = deploy.run_deploy(project, local_network, owner, cfg, CONFIG, tmp_path / "m.json")
    other = {**manifest, "chain_id": chain.chain_id + 1}
    w3 = lean_web3(chain.provider.uri)
    with pytest.raises(deploy.ManifestError, match=f"manifest is for chain {chain.chain_id + 1}"):
        Keeper.from_manifest(project, w3, other, Store(":memory:"), account=accounts[4])
