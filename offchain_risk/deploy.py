"""Deployments from a config file, and the manifest they leave behind.

``ape run deploy --config deployments/config/local.toml`` reads a :class:`DeployConfig`
(engine settings, liquidation policy, markets with their shocks, feeds and tokens, the risk
signer set and its threshold), deploys it, and writes a manifest (addresses, block, the
parameters as deployed) to ``deployments/<config name>.json``. A manifest is never
overwritten without ``--force``; :func:`check_manifest` compares one with the chain.

On local networks the markets' feeds are mock Chainlink aggregators whose feeder is the
deployer, and the tokens are mock ERC-20s. Elsewhere every market names its ``feed`` and
every collateral its ``token_address``, and ``cash_address`` names the cash token: nothing
mock is deployed outside a local network.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from offchain_risk import devnet
from offchain_risk.models.liquidation import LiquidationPolicy
from offchain_risk.models.margin import MAX_SCENARIOS, pad_scenarios

WAD = 10**18
MANIFEST_VERSION = 1
_ENGINE_KEYS = {
    "im_multiplier",
    "price_band",
    "deposit_cap_usd",
    "account_cap_usd",
    "oi_cap",
    "debt_cap_usd",
    "heartbeat",
    "cash_address",
}
_MARKET_KEYS = {
    "symbol",
    "price",
    "floor_bps",
    "haircut_bps",
    "shocks_bps",
    "token",
    "token_address",
    "feed",
    "perp",
}


class ConfigError(ValueError):
    """The deploy config is malformed; the message names the file and the field."""


class ManifestExistsError(FileExistsError):
    """A manifest is already written at the path (use --force to replace it)."""


@dataclass(frozen=True)
class MarketConfig:
    symbol: str
    price: float  # opening price of a mock feed (local networks)
    floor_bps: int
    haircut_bps: int
    shocks_bps: tuple[int, ...]  # K <= 16, padded with zeros
    token: tuple[str, str, int] | None = None  # (name, symbol, decimals) of a mock collateral
    token_address: str | None = None  # an existing collateral token (non-local networks)
    feed: str | None = None  # an existing Chainlink feed
    perp: bool = True

    def spec(self) -> devnet.MarketSpec:
        # a collateral given by token_address is passed to devnet.deploy as an existing token
        return devnet.MarketSpec(
            self.symbol, self.price, self.floor_bps, self.haircut_bps, self.token, self.perp
        )


@dataclass(frozen=True)
class DeployConfig:
    markets: tuple[MarketConfig, ...]
    im_multiplier: float = 1.5
    price_band: float = 0.05
    deposit_cap_usd: float = 1e12
    account_cap_usd: float = 1e12
    oi_cap: float = 1e9
    debt_cap_usd: float = 1e7
    heartbeat: int = 86_400
    cash_address: str | None = None
    policy: LiquidationPolicy = field(default_factory=LiquidationPolicy)
    signers: tuple[str, ...] = ()  # "test:N" or Ape account aliases
    threshold: int = 0
    guardian: str | None = None

    @property
    def shocks(self) -> np.ndarray:
        """(n_markets, 16) bps."""
        return pad_scenarios(np.array([m.shocks_bps for m in self.markets], dtype=np.int64))

    def needs_mocks(self) -> list[str]:
        """What a non-local network lacks: feeds, tokens or the cash token to list."""
        missing = [f"markets.{m.symbol}.feed" for m in self.markets if m.feed is None]
        missing += [
            f"markets.{m.symbol}.token_address"
            for m in self.markets
            if m.token is not None and m.token_address is None
        ]
        if self.cash_address is None:
            missing.append("engine.cash_address")
        return missing


def _fail(path: Path, where: str, why: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {why}")


def _number(path: Path, where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise _fail(path, where, f"expected a number, got {value!r}")
    if not lo <= value <= hi:
        raise _fail(path, where, f"{value} outside [{lo}, {hi}]")
    return value


def load_config(path: str | Path) -> DeployConfig:
    """Parse and validate a TOML deploy config (see ``deployments/config/local.toml``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"engine", "liquidation", "governor", "markets"}
    if unknown:
        raise _fail(path, "top level", f"unknown sections {sorted(unknown)}")
    engine = raw.get("engine", {})
    if set(engine) - _ENGINE_KEYS:
        raise _fail(path, "engine", f"unknown keys {sorted(set(engine) - _ENGINE_KEYS)}")
    markets_raw = raw.get("markets")
    if not markets_raw:
        raise _fail(path, "markets", "at least one [[markets]] entry is required")
    markets = []
    for i, m in enumerate(markets_raw):
        where = f"markets[{i}]"
        if set(m) - _MARKET_KEYS:
            raise _fail(path, where, f"unknown keys {sorted(set(m) - _MARKET_KEYS)}")
        for key in ("symbol", "floor_bps", "haircut_bps", "shocks_bps"):
            if key not in m:
                raise _fail(path, where, f"missing {key!r}")
        where = f"markets.{m['symbol']}"
        shocks = m["shocks_bps"]
        if not isinstance(shocks, list) or not 1 <= len(shocks) <= MAX_SCENARIOS:
            raise _fail(path, f"{where}.shocks_bps", "expected a list of 1 to 16 integers")
        if not all(isinstance(s, int) and -10_000 <= s <= 32_767 for s in shocks):
            raise _fail(path, f"{where}.shocks_bps", "shocks are integers in [-10000, 32767]")
        token = m.get("token")
        if token is not None and (
            not isinstance(token, list)
            or len(token) != 3
            or not isinstance(token[2], int)
            or not 0 <= token[2] <= 18
        ):
            raise _fail(path, f"{where}.token", "expected [name, symbol, decimals <= 18]")
        perp = m.get("perp", True)
        if not perp and token is None and m.get("token_address") is None:
            raise _fail(path, where, "neither a perp nor a collateral: nothing to list")
        markets.append(
            MarketConfig(
                symbol=str(m["symbol"]),
                price=_number(path, f"{where}.price", m.get("price", 1.0), 1e-8, 1e12),
                floor_bps=int(_number(path, f"{where}.floor_bps", m["floor_bps"], 0, 10_000)),
                haircut_bps=int(_number(path, f"{where}.haircut_bps", m["haircut_bps"], 0, 9_999)),
                shocks_bps=tuple(int(s) for s in shocks),
                token=tuple(token) if token is not None else None,
                token_address=m.get("token_address"),
                feed=m.get("feed"),
                perp=bool(perp),
            )
        )
    symbols = [m.symbol for m in markets]
    if len(set(symbols)) != len(symbols):
        raise _fail(path, "markets", f"duplicate symbols in {symbols}")
    liq = raw.get("liquidation", {})
    try:
        policy = LiquidationPolicy(
            **{k: int(round(v * WAD)) for k, v in liq.items() if k != "dust_margin_usd"},
            **(
                {"dust_margin": int(liq["dust_margin_usd"] * WAD)}
                if "dust_margin_usd" in liq
                else {}
            ),
        )
    except TypeError as exc:
        raise _fail(path, "liquidation", f"unknown key: {exc}") from exc
    except ValueError as exc:
        raise _fail(path, "liquidation", str(exc)) from exc
    gov = raw.get("governor", {})
    if set(gov) - {"signers", "threshold", "guardian"}:
        raise _fail(
            path,
            "governor",
            f"unknown keys {sorted(set(gov) - {'signers', 'threshold', 'guardian'})}",
        )
    signers = tuple(str(s) for s in gov.get("signers", ()))
    threshold = int(gov.get("threshold", 0))
    if signers and not 1 <= threshold <= len(signers):
        raise _fail(path, "governor.threshold", f"{threshold} not in [1, {len(signers)} signers]")
    if len(set(signers)) != len(signers):
        raise _fail(path, "governor.signers", "a signer is listed twice")
    return DeployConfig(
        markets=tuple(markets),
        im_multiplier=_number(
            path, "engine.im_multiplier", engine.get("im_multiplier", 1.5), 1, 10
        ),
        price_band=_number(path, "engine.price_band", engine.get("price_band", 0.05), 0, 1),
        deposit_cap_usd=_number(
            path, "engine.deposit_cap_usd", engine.get("deposit_cap_usd", 1e12), 0, 2**100
        ),
        account_cap_usd=_number(
            path, "engine.account_cap_usd", engine.get("account_cap_usd", 1e12), 0, 2**100
        ),
        oi_cap=_number(path, "engine.oi_cap", engine.get("oi_cap", 1e9), 0, 2**100),
        debt_cap_usd=_number(
            path, "engine.debt_cap_usd", engine.get("debt_cap_usd", 1e7), 0, 2**100
        ),
        heartbeat=int(
            _number(path, "engine.heartbeat", engine.get("heartbeat", 86_400), 1, 2**32 - 1)
        ),
        cash_address=engine.get("cash_address"),
        policy=policy,
        signers=signers,
        threshold=threshold,
        guardian=gov.get("guardian"),
    )


def deploy_config(
    project: Any, deployer: Any, cfg: DeployConfig, *, local: bool, signers: list[Any] = ()
) -> tuple[devnet.Deployment, Any]:
    """Deploy ``cfg``: the engine, its venue, lens and liquidation policy, every market, and
    a RiskGovernor over ``signers`` when the config names any. (Deployment, governor)."""
    if not local and cfg.needs_mocks():
        raise ConfigError(
            "a non-local network needs existing contracts for " + ", ".join(cfg.needs_mocks())
        )
    if len(signers) != len(cfg.signers):
        raise ValueError("one account per configured signer")
    from ape import Contract

    feeds = {m.symbol: Contract(m.feed) for m in cfg.markets if m.feed is not None}
    tokens = {m.symbol: Contract(m.token_address) for m in cfg.markets if m.token_address}
    cash = Contract(cfg.cash_address) if cfg.cash_address else None
    d = devnet.deploy(
        project,
        deployer,
        markets=tuple(m.spec() for m in cfg.markets),
        shocks_bps=cfg.shocks,
        im_multiplier_wad=int(round(cfg.im_multiplier * WAD)),
        price_band_wad=int(round(cfg.price_band * WAD)),
        deposit_cap_wad=int(cfg.deposit_cap_usd * WAD),
        account_cap_wad=int(cfg.account_cap_usd * WAD),
        oi_cap_wad=int(cfg.oi_cap * WAD),
        debt_cap_wad=int(cfg.debt_cap_usd * WAD),
        heartbeat=cfg.heartbeat,
        policy=cfg.policy,
        feeds=feeds or None,
        tokens=tokens or None,
        cash=cash,
    )
    governor = None
    if signers:
        governor = devnet.deploy_governor(
            project,
            d,
            deployer,
            list(signers),
            cfg.threshold,
            markets=tuple(m.spec() for m in cfg.markets),
            guardian=cfg.guardian,
        )
    return d, governor


def build_manifest(
    d: devnet.Deployment,
    governor: Any,
    cfg: DeployConfig,
    *,
    network: str,
    chain_id: int,
    block: int,
    deployer: str,
    config_path: str,
    signers: list[str] = (),
) -> dict:
    """What was deployed, where, from which block, with which parameters."""
    contracts = {
        "engine": str(d.engine.address),
        "book": str(d.book.address),
        "lens": str(d.lens.address),
        "liquidations": str(d.liquidations.address),
        "cash": str(d.cash.address),
    }
    if governor is not None:
        contracts["governor"] = str(governor.address)
    markets = {}
    for m, shocks in zip(cfg.markets, cfg.shocks, strict=True):
        asset = d.symbols[m.symbol]
        token = d.tokens.get(asset)
        markets[m.symbol] = {
            "asset": asset,
            "feed": str(d.feeds[asset].address),
            "token": str(token.address) if token is not None else None,
            "floor_bps": m.floor_bps,
            "haircut_bps": m.haircut_bps,
            "shocks_bps": [int(s) for s in shocks],
            "perp": m.perp,
        }
    return {
        "version": MANIFEST_VERSION,
        "network": network,
        "chain_id": chain_id,
        "block": block,
        "deployer": deployer,
        "config": config_path,
        "contracts": contracts,
        "markets": markets,
        "parameters": {
            "im_multiplier_wad": int(round(cfg.im_multiplier * WAD)),
            "price_band_wad": int(round(cfg.price_band * WAD)),
            "heartbeat": cfg.heartbeat,
            "debt_cap_wad": int(cfg.debt_cap_usd * WAD),
            "policy": asdict(cfg.policy),
            "signers": [str(s) for s in signers],
            "threshold": cfg.threshold if governor is not None else 0,
        },
    }


def manifest_path(config_path: str | Path) -> Path:
    """``deployments/config/local.toml`` -> ``deployments/local.json``."""
    config_path = Path(config_path)
    folder = config_path.parent
    if folder.name == "config":
        folder = folder.parent
    return folder / f"{config_path.stem}.json"


def write_manifest(path: str | Path, manifest: dict, *, force: bool = False) -> Path:
    """Write ``manifest``; refuse to replace an existing one unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise ManifestExistsError(
            f"{path} exists: a deployment is recorded there (use --force to replace it)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def load_manifest(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no deployment manifest at {path}: run `ape run deploy` first")
    manifest = json.loads(path.read_text())
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: manifest version {manifest.get('version')} unsupported")
    return manifest


def check_manifest(manifest: dict, project: Any, chain_id: int) -> list[str]:
    """Every way the chain disagrees with ``manifest`` (empty: it matches)."""
    from ape import chain

    problems = []
    if manifest["chain_id"] != chain_id:
        return [f"manifest is for chain {manifest['chain_id']}, connected to {chain_id}"]
    if manifest["block"] > chain.blocks.head.number:
        return [f"manifest block {manifest['block']} is ahead of the chain head"]
    for name, address in manifest["contracts"].items():
        if not chain.provider.get_code(address):
            problems.append(f"no code at {name} {address}")
    if problems:
        return problems
    d = load_deployment(project, manifest)
    engine, lens = d.engine, d.lens
    if str(engine.owner()) != manifest["deployer"]:
        problems.append(f"engine owner {engine.owner()} != deployer {manifest['deployer']}")
    if engine.num_assets() != len(manifest["markets"]):
        problems.append(
            f"{engine.num_assets()} assets listed, manifest has {len(manifest['markets'])}"
        )
    params = manifest["parameters"]
    if engine.im_multiplier() != params["im_multiplier_wad"]:
        problems.append("IM multiplier differs")
    if engine.price_band() != params["price_band_wad"]:
        problems.append("price band differs")
    for symbol, m in manifest["markets"].items():
        cfg = lens.asset_config(m["asset"])
        if str(cfg.feed) != m["feed"]:
            problems.append(f"{symbol}: feed {cfg.feed} != {m['feed']}")
        token = m["token"] or devnet.ZERO_ADDRESS
        if str(cfg.token) != token:
            problems.append(f"{symbol}: token {cfg.token} != {token}")
        if (int(cfg.floor_bps), int(cfg.haircut_bps)) != (m["floor_bps"], m["haircut_bps"]):
            problems.append(f"{symbol}: floor / haircut differ")
        if list(lens.shocks(m["asset"])) != m["shocks_bps"]:
            problems.append(f"{symbol}: shocks differ")
    if "governor" in manifest["contracts"]:
        governor = project.RiskGovernor.at(manifest["contracts"]["governor"])
        if str(engine.risk_manager()) != manifest["contracts"]["governor"]:
            problems.append("the governor is not the engine's risk manager")
        if governor.threshold() != params["threshold"]:
            problems.append("governor threshold differs")
    return problems


def load_deployment(project: Any, manifest: dict) -> devnet.Deployment:
    """The contracts a manifest names, as Ape contracts (the engine with both ABIs)."""
    c = manifest["contracts"]
    d = devnet.Deployment(
        engine=devnet.engine_at(project, c["engine"]),
        book=project.OrderBook.at(c["book"]),
        cash=project.MockToken.at(c["cash"]),
        lens=project.Lens.at(c["lens"]),
        liquidations=project.Liquidations.at(c["liquidations"]),
    )
    for symbol, m in manifest["markets"].items():
        d.symbols[symbol] = m["asset"]
        d.feeds[m["asset"]] = project.MockAggregator.at(m["feed"])
        if m["token"]:
            d.tokens[m["asset"]] = project.MockToken.at(m["token"])
    return d


def resolve_signers(names: tuple[str, ...], *, local: bool) -> list[Any]:
    """Ape accounts for ``names``: ``test:N`` (local networks only) or keyfile aliases."""
    from ape import accounts

    out = []
    for name in names:
        if name.startswith("test:"):
            if not local:
                raise ConfigError(f"signer {name!r}: test accounts exist on local networks only")
            out.append(accounts.test_accounts[int(name.removeprefix("test:"))])
        else:
            out.append(accounts.load(name))
    return out


def run_deploy(
    project: Any,
    network: Any,
    deployer: Any,
    cfg: DeployConfig,
    config_path: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    params: dict | None = None,
    confirm: Any = None,
    echo: Any = print,
) -> dict:
    """The whole of ``ape run deploy`` after argument parsing: refuse to overwrite ``out``
    (unless ``force``), check the config fits the network, ask ``confirm(question)`` on a
    non-local network (a False answer stops here, before any transaction), deploy, apply
    ``params``, and write the manifest. Returns the manifest."""
    from ape import chain

    out = Path(out)
    if out.exists() and not force:
        raise ManifestExistsError(
            f"{out} exists: a deployment is recorded there (use --force to replace it)"
        )
    local = bool(network.is_local)
    if not local and cfg.needs_mocks():
        raise ConfigError(
            f"{config_path}: a non-local network needs existing contracts for "
            + ", ".join(cfg.needs_mocks())
        )
    signers = resolve_signers(cfg.signers, local=local)
    if not local:
        question = (
            f"Deploy Ballast ({len(cfg.markets)} markets"
            + (f", a {cfg.threshold}-of-{len(signers)} risk governor" if signers else "")
            + f") to {network.name} (chain {network.chain_id}) from {deployer.address}?"
        )
        if confirm is None or not confirm(question):
            raise DeployAborted(f"not deployed to {network.name}: not confirmed")
    d, governor = deploy_config(project, deployer, cfg, local=local, signers=signers)
    if params is not None:
        done = devnet.apply_params(d, params, deployer)
        echo(f"applied calibrated parameters for {', '.join(done)}")
    manifest = build_manifest(
        d,
        governor,
        cfg,
        network=f"{network.ecosystem.name}:{network.name}",
        chain_id=int(network.chain_id),
        block=int(chain.blocks.head.number),
        deployer=str(deployer.address),
        config_path=str(config_path),
        signers=[str(s.address) for s in signers],
    )
    if params is not None:
        manifest["parameters"]["calibrated"] = params
        for m in manifest["markets"].values():
            asset = m["asset"]
            m["shocks_bps"] = [int(s) for s in d.lens.shocks(asset)]
            cfg_view = d.lens.asset_config(asset)
            m["floor_bps"], m["haircut_bps"] = int(cfg_view.floor_bps), int(cfg_view.haircut_bps)
        manifest["parameters"]["im_multiplier_wad"] = int(d.engine.im_multiplier())
    write_manifest(out, manifest, force=force)
    return manifest


class DeployAborted(RuntimeError):
    """The operator declined the confirmation on a non-local network."""
