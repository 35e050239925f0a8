"""The cast-only deployer (integration/cast_deploy.py) deploys what `ape run deploy` deploys.

Both deploy deployments/config/local.toml on the same anvil; every view of every deployed
contract (addresses replaced by the role they play) must agree, and the cast deployer's
manifest must pass the Ape deployer's own check against the chain.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offchain_risk import deploy, devnet
from offchain_risk.models.funding import FundingParams
from offchain_risk.units import QUOTE_ASSET, unpack_vault_word

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deployments" / "config" / "local.toml"
PER_ASSET = ("asset_token", "open_interest", "oi_cap", "price")
QUOTE = "\n[quote]\nprice = 0.99\npeg_bps = 50\n"
FUNDING = 'symbol = "ETH"\nfunding = { convergence_hours = 8, interest = -0.00001, cap = 0.002 }\n'


def _plain(value, roles: dict[str, str]):
    """Ape return values as plain data; every known address replaced by its role."""
    if hasattr(value, "items"):
        return {k: _plain(v, roles) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, roles) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return roles.get(value.lower(), value)
    return value


def _views(contract, roles: dict[str, str], skip=()) -> dict:
    out = {}
    for abi in contract.contract_type.abi:
        if abi.type == "function" and abi.stateMutability == "view" and not abi.inputs:
            if abi.name not in skip:
                out[abi.name] = _plain(getattr(contract, abi.name)(), roles)
    return out


def on_chain(project, chain, manifest: dict) -> dict:
    """Everything the deployed contracts answer, with addresses as roles."""
    c = manifest["contracts"]
    engine = devnet.engine_at(project, c["engine"])
    addresses = {**c, "config": str(engine.CONFIG())}
    for symbol, m in manifest["markets"].items():
        addresses[f"feed:{symbol}"] = m["feed"]
        if m["token"]:
            addresses[f"token:{symbol}"] = m["token"]
    for symbol, v in manifest["vaults"].items():
        addresses[f"vault:{symbol}"] = v["vault"]
    addresses["feed:quote"] = manifest["quote"]["feed"]
    roles = {address.lower(): name for name, address in addresses.items()}
    contracts = {
        "engine": engine,
        "book": project.OrderBook.at(c["book"]),
        "lens": project.Lens.at(c["lens"]),
        "liquidations": project.Liquidations.at(c["liquidations"]),
        "governor": project.RiskGovernor.at(c["governor"]),
        "vol_feed": project.VolFeed.at(c["vol_feed"]),
    }
    state = {name: _views(x, roles) for name, x in contracts.items()}
    state["code_size"] = {
        name: len(chain.provider.get_code(address)) for name, address in addresses.items()
    }
    state["venue"] = engine.venues(c["book"])
    signers = manifest["parameters"]["signers"]
    state["signers"] = [contracts["governor"].is_signer(s) for s in signers]
    vol_signers = manifest["parameters"]["vol_feed"]["signers"]
    state["vol_signers"] = [contracts["vol_feed"].is_signer(s) for s in vol_signers]
    tokens = [c["cash"]] + [m["token"] for m in manifest["markets"].values() if m["token"]]
    for token in tokens:
        t = project.MockToken.at(token)
        state[roles[token.lower()]] = {
            "erc20": (t.name(), t.symbol(), t.decimals()),
            "word": engine.token_word(token),
            "caps": _plain(engine.token_caps(token), roles),
        }
    for symbol, m in manifest["markets"].items():
        a = m["asset"]
        feed = project.MockAggregator.at(m["feed"])
        state[symbol] = {
            "config": _plain(contracts["lens"].asset_config(a), roles),
            "shocks": list(contracts["lens"].shocks(a)),
            "engine": {f: _plain(getattr(engine, f)(a), roles) for f in PER_ASSET},
            "shock_words": [engine.shock_word(a, w) for w in range(2)],
            "feed": (feed.decimals(), feed.latestRoundData()[1], _plain(feed.feeder(), roles)),
            "bounds": _plain(contracts["governor"].asset_bounds(a), roles),
            "governed": _plain(contracts["governor"].asset_view(a), roles),
            "vol_heartbeat": contracts["vol_feed"].heartbeat(a),
            "funding": engine.funding_params(a),
        }
    for symbol, v in manifest["vaults"].items():
        a = v["asset"]
        ratio, _, growth, decimals = unpack_vault_word(engine.vault_word(a))  # time: its block
        vault = project.MockVault.at(v["vault"])
        state[symbol] = {
            "config": _plain(contracts["lens"].asset_config(a), roles),
            "shocks": list(contracts["lens"].shocks(a)),
            "engine": {f: _plain(getattr(engine, f)(a), roles) for f in PER_ASSET},
            "shock_words": [engine.shock_word(a, w) for w in range(2)],
            "vault": (vault.name(), vault.symbol(), _plain(vault.asset(), roles)),
            "cap": (ratio, growth, decimals),
            "bounds": _plain(contracts["governor"].asset_bounds(a), roles),
        }
    state["snapshots"] = _plain(project.RateSnapshots.at(c["snapshots"]).governor(), roles)
    quote = project.MockAggregator.at(manifest["quote"]["feed"])
    state["quote"] = {
        "config": _plain(contracts["lens"].asset_config(QUOTE_ASSET), roles),
        "price": engine.price(QUOTE_ASSET),
        "feed": (quote.decimals(), quote.latestRoundData()[1], _plain(quote.feeder(), roles)),
    }
    return state


@pytest.fixture
def config(tmp_path) -> Path:
    """The local config with a quote feed and ETH's funding: every section both deployers
    read."""
    path = tmp_path / "local.toml"
    path.write_text(CONFIG.read_text().replace('symbol = "ETH"\n', FUNDING, 1) + QUOTE)
    return path


@pytest.fixture
def ape_manifest(project, accounts, chain, config):
    cfg = deploy.load_config(config)
    signers = deploy.resolve_signers(cfg.signers, local=True)
    vol_signers = deploy.resolve_signers(cfg.vol_feed.signers, local=True)
    d, governor = deploy.deploy_config(
        project, accounts[0], cfg, local=True, signers=signers, vol_signers=vol_signers
    )
    return deploy.build_manifest(
        d,
        governor,
        cfg,
        network="ethereum:local",
        chain_id=chain.chain_id,
        block=chain.blocks.head.number,
        deployer=str(accounts[0].address),
        config_path=str(config),
        signers=[str(s.address) for s in signers],
        vol_signers=[str(s.address) for s in vol_signers],
    )


def cast_deploy(chain, key: str, config: Path, out: Path) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "integration" / "cast_deploy.py"),
            "--rpc-url",
            chain.provider.uri,
            "--private-key",
            key,
            "--config",
            str(config),
            "--out",
            str(out),
            "--env",
            str(out.with_suffix(".env")),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        # A fresh clone compiles every contract with the vyper CLI first (cold cache under
        # .build/integration): minutes on two loaded cores. The limit only stops a hang.
        timeout=1_200,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_cast_deploy__local_config__same_parameters_on_chain_as_ape_deploy(
    project, accounts, chain, ape_manifest, config, tmp_path
):
    manifest = cast_deploy(chain, accounts[0].private_key, config, tmp_path / "local.json")

    assert deploy.check_manifest(manifest, project, chain.chain_id) == []

    def listing(markets: dict, keys: dict) -> dict:  # addresses differ; having a token not
        return {
            s: {k: m[k] for k in keys[s]} | {"feed": None, "token": m["token"] is not None}
            for s, m in markets.items()
        }

    # every field the Ape deployer records, with the same value
    theirs = ape_manifest["markets"]
    assert listing(manifest["markets"], theirs) == listing(theirs, theirs)

    def vaults(listing: dict) -> dict:  # addresses and the snapshot's block time differ
        return {
            s: {k: x for k, x in v.items() if k not in ("vault", "snapshot_time")}
            for s, v in listing.items()
        }

    assert vaults(manifest["vaults"]) == vaults(ape_manifest["vaults"]) != {}
    params = ape_manifest["parameters"]
    assert {k: manifest["parameters"][k] for k in params} == params
    assert set(manifest["contracts"]) == set(ape_manifest["contracts"])
    ours, theirs = on_chain(project, chain, manifest), on_chain(project, chain, ape_manifest)
    assert ours == theirs
    # the comparison covers the wiring, not just the parameters
    assert ours["engine"]["risk_manager"] == "governor"
    assert ours["engine"]["liquidator"] == "liquidations"
    assert ours["liquidations"]["risk_manager"] == "governor"
    assert ours["signers"] == [True, True, True]
    assert ours["vol_signers"] == [True, True, True]
    assert [ours[s]["vol_heartbeat"] for s in ("ETH", "BTC", "SOL")] == [7_200, 7_200, 0]
    assert ours["engine"]["snapshot_manager"] == "snapshots" and ours["snapshots"] == "governor"
    assert ours["sWETH"]["config"]["feed"] == "feed:ETH"
    assert ours["sWETH"]["vault"][2] == "token:ETH"
    assert ours["quote"]["config"]["feed"] == "feed:quote"
    assert ours["quote"]["config"]["floor_bps"] == 50 and ours["quote"]["price"] == (
        99 * 10**16,
        True,
    )
    assert {k: v for k, v in manifest["quote"].items() if k != "feed"} == {
        k: v for k, v in ape_manifest["quote"].items() if k != "feed"
    }
    assert ours["ETH"]["config"]["feed"] == "feed:ETH"
    # funding switched on in ETH only, the same parameters (a negative interest included)
    assert FundingParams.unpack(ours["ETH"]["funding"]) == FundingParams(8, -(10**13), 2 * 10**15)
    assert [ours[s]["funding"] for s in ("BTC", "SOL", "LINK")] == [0, 0, 0]
    assert manifest["markets"]["ETH"]["funding"] == ape_manifest["markets"]["ETH"]["funding"]

    env = (tmp_path / "local.env").read_text()
    assert f"export ENGINE={manifest['contracts']['engine']}\n" in env
    assert f"export WETH={manifest['markets']['ETH']['token']}\n" in env
