"""Deploy and wire Ballast with `vyper` and `cast` only, from the Ape deployer's TOML config.

    python integration/cast_deploy.py --rpc-url http://127.0.0.1:8545 \\
        --private-key 0x... --config deployments/config/local.toml \\
        --out deployments/local.json --env deployments/local.env

Standard library, `vyper` (compiles the contracts, see vyper_build.py) and `cast` (sends every
transaction): no Ape, no web3. It deploys what ``ape run deploy`` deploys, in the same order
and with the same values (a test checks the two agree on chain), and writes the same
manifest (``offchain_risk.deploy.build_manifest``'s format, which the keeper and the console
read) plus, with ``--env``, a shell file of ``export ENGINE=0x...`` lines.

Deploy order and wiring (docs/INTEGRATING.md explains each step):

 1. cash token (a mock USDC, 6 decimals, on a local chain; else ``engine.cash_address``)
 2. FundingConfig(cash), MarginConfig(cash, funding)   the funding and owner setters' code
 3. MarginEngine(config, cash, cash deposit cap, cash account cap, IM multiplier, band)
 4. OrderBook(engine);   engine.set_venue(book, true)
 5. engine.set_debt_cap(debt cap)
 6. Liquidations(engine, policy...);   engine.set_liquidator(liquidations)
 7. Lens(engine)
 8. per market: a mock feed (8 decimals) and token on a local chain, engine.list_asset(...),
    engine.set_shocks(asset, 32 shocks: the config's, zero-padded)
 9. with [governor] signers: RiskGovernor(engine, liquidations, signers, threshold, limits),
    set_asset_bounds per asset, set_global_bounds, set_guardian, then
    engine.set_risk_manager(governor) and liquidations.set_risk_manager(governor)
10. with [vol_feed]: VolFeed(signers, threshold), then set_underlying(asset, heartbeat) per
    listed underlying
11. per [[vaults]] entry: a mock ERC-4626 vault over the underlying's token on a local chain,
    engine.list_asset(vault, the underlying's feed, ..., class haircut, not a perp),
    engine.set_shock_words(asset, the underlying's two), engine.list_vault(asset, class growth),
    governor.set_asset_bounds(asset, ...); then, with a governor,
    RateSnapshots(engine, governor) and engine.set_snapshot_manager(snapshots)
12. with [quote]: its feed (a mock at 8 decimals on a local chain), then
    engine.set_feed(QUOTE_ASSET, feed, heartbeat) and
    engine.set_asset_risk(QUOTE_ASSET, peg_bps, 0)
13. per market with [markets.funding]:
    engine.set_funding_params(asset, convergence hours, interest, cap)

A local chain is chain id 31337 or 1337 (anvil, ganache, hardhat): mocks are deployed there,
``test:N`` signers are the accounts of ``--mnemonic``, and governor limits and bounds the
config leaves out are the devnet's. Elsewhere every feed and token must exist (``feed``,
``token_address``, ``cash_address``), signers are addresses, every governor limit and bound
must be stated, and ``--yes`` confirms the broadcast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vyper_build import compile_contracts

WAD = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
LOCAL_CHAINS = (31337, 1337)
TEST_MNEMONIC = "test test test test test test test test test test test junk"
FEED_DECIMALS = 8
QUOTE_ASSET = 32  # offchain_risk.units.QUOTE_ASSET: the quote asset's slot in the engine
SCENARIOS = 32  # offchain_risk.units.MAX_SCENARIOS: set_shocks takes them all, zero-padded
# offchain_risk.units (contracts/constants.vy): the funding parameters' bounds.
MAX_FUNDING_CAP = WAD // 100  # 1% of the price per hour
MAX_FUNDING_CONVERGENCE = 168  # hours
FUNDING_KEYS = ("convergence_hours", "interest", "cap")
MANIFEST_VERSION = 1  # offchain_risk.deploy.MANIFEST_VERSION
# The Ape deployer's defaults (offchain_risk.deploy.DeployConfig, LiquidationPolicy).
ENGINE_DEFAULTS = {
    "im_multiplier": 1.5,
    "price_band": 0.05,
    "deposit_cap_usd": 1e12,
    "account_cap_usd": 1e12,
    "oi_cap": 1e9,
    "debt_cap_usd": 1e7,
    "heartbeat": 86_400,
}
KNOWN_KEYS = {
    "engine": {*ENGINE_DEFAULTS, "cash_address"},
    "liquidation": {
        "min_discount",
        "max_discount",
        "insurance_share",
        "target_buffer",
        "close_cap",
        "critical_health",
        "dust_margin_usd",
        "min_bounty_usd",
    },
    "governor": {"signers", "threshold", "guardian", "limits", "global_bounds", "asset_bounds"},
    "vol_feed": {"signers", "threshold", "heartbeat", "underlyings"},
    "vaults": {"symbol", "underlying", "class", "vault_address"},
    "quote": {"feed", "price", "heartbeat", "peg_bps"},
    "markets": {
        "symbol",
        "price",
        "floor_bps",
        "haircut_bps",
        "shocks_bps",
        "token",
        "token_address",
        "feed",
        "perp",
        "bounds",
        "funding",
    },
}
# Vault-share classes: (haircut bps, yearly rate growth bps), as
# offchain_risk.models.vault.VAULT_CLASSES states them (a test checks they agree).
VAULT_CLASSES = {
    "liquid_staking": (2_000, 1_000),
    "restaking": (3_500, 1_500),
    "savings": (1_200, 1_500),
}
POLICY_ORDER = (
    "min_discount",
    "max_discount",
    "insurance_share",
    "target_buffer",
    "close_cap",
    "critical_health",
    "dust_margin",
    "min_bounty",
)
POLICY_DEFAULTS = {
    "min_discount": 2 * WAD // 100,
    "max_discount": 10 * WAD // 100,
    "insurance_share": 30 * WAD // 100,
    "target_buffer": 5 * WAD // 100,
    "close_cap": WAD // 2,
    "critical_health": WAD // 2,
    "dust_margin": 100 * WAD,
    "min_bounty": 10 * WAD,
}
# RiskGovernor's Limits, GlobalBounds and AssetBounds, field by field in struct order. The
# config states them as [governor.limits] (seconds, fractions, bps), [governor.global_bounds]
# (IM multiplier and discount fractions) and [governor.asset_bounds] (bps; a market's own
# [markets.bounds] overrides keys; floor_min is the market's floor_bps unless stated).
LIMIT_KEYS = ("window", "window_rate", "update_rate", "mm_step_bps", "ramp_duration")
LIMIT_FRACTIONS = ("window_rate", "update_rate")  # WAD on chain
GLOBAL_BOUND_KEYS = (
    "im_min",
    "im_max",
    "min_discount_min",
    "min_discount_max",
    "max_discount_min",
    "max_discount_max",
)  # WAD on chain
ASSET_BOUND_KEYS = (
    "floor_min",
    "floor_max",
    "haircut_min",
    "haircut_max",
    "shock_down_max",
    "shock_up_max",
    "shock_down_min",
    "shock_up_min",
)  # bps
# What a local deploy uses for a value the config leaves out (the devnet policy of
# offchain_risk.devnet): window 1 h, 10% per window, 5% per update, MM step 500 bps, ramps
# over 6 h; every scenario set keeps a 5% move each way, shocks within -100% .. +200%.
# A non-local deploy gets no defaults: every value must be stated.
LOCAL_LIMITS = dict(zip(LIMIT_KEYS, (3_600, WAD // 10, WAD // 20, 500, 6 * 3_600), strict=True))
LOCAL_GLOBAL_BOUNDS = dict(
    zip(
        GLOBAL_BOUND_KEYS,
        (6 * WAD // 5, 3 * WAD, WAD // 100, WAD // 20, WAD // 20, WAD // 5),
        strict=True,
    )
)
LOCAL_ASSET_BOUNDS = dict(
    zip(ASSET_BOUND_KEYS[1:], (2_000, 0, 5_000, 10_000, 20_000, 500, 500), strict=True)
)


#: The deploy config's top-level sections (``offchain_risk/deploy.py`` knows the same set).
SECTIONS = frozenset(
    {"engine", "liquidation", "governor", "markets", "vol_feed", "vaults", "quote", "options"}
)


class DeployError(RuntimeError):
    pass


class Cast:
    """`cast` against one RPC, sending from one key."""

    def __init__(self, rpc_url: str, private_key: str, cast: str = "cast", echo=print) -> None:
        self.rpc, self.key, self.bin, self.echo = rpc_url, private_key, cast, echo

    def run(self, *args: str) -> str:
        proc = subprocess.run([self.bin, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise DeployError(f"cast {' '.join(args[:3])} ...: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def call(self, to: str, sig: str, *args: object) -> str:
        return self.run("call", "--rpc-url", self.rpc, to, sig, *map(_arg, args))

    def send(self, to: str, sig: str, *args: object) -> dict:
        out = self.run(
            "send", "--rpc-url", self.rpc, "--private-key", self.key, "--json", to, sig,
            *map(_arg, args),
        )  # fmt: skip
        receipt = json.loads(out)
        if receipt.get("status") != "0x1":
            raise DeployError(f"{sig} on {to} reverted: {receipt}")
        self.echo(f"  {sig.split('(')[0]} -> {to}")
        return receipt

    def create(self, name: str, bytecode: str, ctor: str | None = None, *args: object) -> str:
        code = bytecode
        if ctor is not None:
            code += self.run("abi-encode", ctor, *map(_arg, args))[2:]
        out = self.run(
            "send", "--rpc-url", self.rpc, "--private-key", self.key, "--json", "--create", code
        )
        receipt = json.loads(out)
        if receipt.get("status") != "0x1" or not receipt.get("contractAddress"):
            raise DeployError(f"deploying {name} failed: {receipt}")
        address = self.run("to-check-sum-address", receipt["contractAddress"])
        self.echo(f"{name} {address}")
        return address


def _arg(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        inner = ",".join(_arg(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(value)


def load(path: Path) -> dict:
    """The TOML config with the Ape deployer's defaults and unit conversions applied."""
    raw = tomllib.loads(path.read_text())
    unknown = set(raw) - SECTIONS
    if unknown:
        raise DeployError(f"{path}: unknown sections {sorted(unknown)}")
    if "options" in raw:
        raise DeployError(
            f"{path}: options: this script does not deploy an option book; "
            "deploy it with `ape run deploy` (offchain_risk/deploy.py)"
        )
    # A key this script does not know would be deployed differently from `ape run deploy`
    # (which validates the same file): refuse it rather than ignore it.
    for section, known in KNOWN_KEYS.items():
        entries = raw.get(section, {})
        for entry in entries if isinstance(entries, list) else [entries]:
            if set(entry) - known:
                raise DeployError(f"{path}: {section}: unknown keys {sorted(set(entry) - known)}")
    engine = {**ENGINE_DEFAULTS, **raw.get("engine", {})}
    liq = raw.get("liquidation", {})
    policy = dict(POLICY_DEFAULTS)
    for key, value in liq.items():
        if key in ("dust_margin_usd", "min_bounty_usd"):
            policy[key.removesuffix("_usd")] = _wad(value)
        elif key in policy:
            policy[key] = _wad(value)
        else:
            raise DeployError(f"{path}: liquidation: unknown key {key!r}")
    markets = []
    for m in raw.get("markets", []):
        shocks = [int(s) for s in m["shocks_bps"]]
        if not 1 <= len(shocks) <= SCENARIOS:
            raise DeployError(
                f"{path}: markets.{m['symbol']}.shocks_bps: 1 to {SCENARIOS} integers"
            )
        markets.append(
            {
                "symbol": m["symbol"],
                "price": float(m.get("price", 1.0)),
                "floor_bps": int(m["floor_bps"]),
                "haircut_bps": int(m["haircut_bps"]),
                "shocks_bps": shocks + [0] * (SCENARIOS - len(shocks)),
                "token": m.get("token"),
                "token_address": m.get("token_address"),
                "feed": m.get("feed"),
                "perp": bool(m.get("perp", True)),
                "bounds": _keys(
                    path, f"markets.{m['symbol']}.bounds", m.get("bounds", {}), ASSET_BOUND_KEYS
                ),
                "funding": _funding(
                    path, f"markets.{m['symbol']}.funding", m.get("funding"), m.get("perp", True)
                ),
            }
        )
    if not markets:
        raise DeployError(f"{path}: at least one [[markets]] entry is required")
    gov = raw.get("governor", {})
    limits = _keys(path, "governor.limits", gov.get("limits", {}), LIMIT_KEYS)
    limits = {k: _wad(v) if k in LIMIT_FRACTIONS else int(v) for k, v in limits.items()}
    global_bounds = _keys(
        path, "governor.global_bounds", gov.get("global_bounds", {}), GLOBAL_BOUND_KEYS
    )
    shared = _keys(path, "governor.asset_bounds", gov.get("asset_bounds", {}), ASSET_BOUND_KEYS)
    return {
        "im_multiplier_wad": _wad(engine["im_multiplier"]),
        "price_band_wad": _wad(engine["price_band"]),
        "deposit_cap_wad": _wad(engine["deposit_cap_usd"]),
        "account_cap_wad": _wad(engine["account_cap_usd"]),
        "oi_cap_wad": _wad(engine["oi_cap"]),
        "debt_cap_wad": _wad(engine["debt_cap_usd"]),
        "heartbeat": int(engine["heartbeat"]),
        "cash_address": engine.get("cash_address"),
        "policy": policy,
        "markets": markets,
        "signers": [str(s) for s in gov.get("signers", [])],
        "threshold": int(gov.get("threshold", 0)),
        "guardian": gov.get("guardian"),
        "limits": limits,
        "global_bounds": {k: _wad(v) for k, v in global_bounds.items()},
        "asset_bounds": {k: int(v) for k, v in shared.items()},
        "vol_feed": _vol_feed(path, raw["vol_feed"], markets) if "vol_feed" in raw else None,
        "vaults": _vaults(path, raw.get("vaults", []), markets),
        "quote": _quote(raw.get("quote"), int(engine["heartbeat"])),
    }


def _vol_feed(path: Path, vol: dict, markets: list[dict]) -> dict:
    """``[vol_feed]``: every key stated, the underlyings listed markets (the Ape deployer
    validates the same file the same way)."""
    missing = sorted(KNOWN_KEYS["vol_feed"] - set(vol))
    if missing:
        raise DeployError(f"{path}: vol_feed: missing {missing}")
    symbols = [m["symbol"] for m in markets]
    unknown = [u for u in vol["underlyings"] if u not in symbols]
    if unknown:
        raise DeployError(f"{path}: vol_feed.underlyings: {unknown} are not listed markets")
    return {
        "signers": [str(s) for s in vol["signers"]],
        "threshold": int(vol["threshold"]),
        "heartbeat": int(vol["heartbeat"]),
        "underlyings": {u: symbols.index(u) for u in vol["underlyings"]},
    }


def _quote(raw: dict | None, heartbeat: int) -> dict | None:
    """[quote] with the Ape deployer's defaults: price 1, the engine's heartbeat, peg 0."""
    if raw is None:
        return None
    return {
        "feed": raw.get("feed"),
        "price": float(raw.get("price", 1.0)),
        "heartbeat": int(raw.get("heartbeat", heartbeat)),
        "peg_bps": int(raw.get("peg_bps", 0)),
    }


def _vaults(path: Path, raw: list, markets: list[dict]) -> list[dict]:
    """[[vaults]] with their class's haircut and growth; the underlying is a collateral
    market of the config."""
    collateral = {m["symbol"]: m for m in markets if m["token"] or m["token_address"]}
    out = []
    for v in raw:
        for key in ("symbol", "underlying", "class"):
            if not isinstance(v.get(key), str):
                raise DeployError(f"{path}: vaults: missing {key!r}")
        if v["underlying"] not in collateral:
            raise DeployError(f"{path}: vaults.{v['symbol']}.underlying: not a collateral market")
        if v["class"] not in VAULT_CLASSES:
            raise DeployError(f"{path}: vaults.{v['symbol']}.class: unknown {v['class']!r}")
        haircut, growth = VAULT_CLASSES[v["class"]]
        out.append(
            {
                "symbol": v["symbol"],
                "underlying": v["underlying"],
                "class": v["class"],
                "vault_address": v.get("vault_address"),
                "haircut_bps": haircut,
                "max_growth_bps": growth,
                "floor_bps": collateral[v["underlying"]]["floor_bps"],
            }
        )
    return out


def _funding(path: Path, where: str, raw: object, perp: bool) -> dict | None:
    """[markets.funding] in chain units, with the Ape deployer's checks
    (offchain_risk.deploy._funding): convergence hours 1 .. 168, 0 < cap <= 1% per hour,
    |interest| <= cap."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DeployError(f"{path}: {where}: expected a table of {', '.join(FUNDING_KEYS)}")
    if set(raw) - set(FUNDING_KEYS):
        raise DeployError(f"{path}: {where}: unknown keys {sorted(set(raw) - set(FUNDING_KEYS))}")
    if not perp:
        raise DeployError(f"{path}: {where}: funding needs a perp market (perp = false here)")
    missing = [k for k in ("convergence_hours", "cap") if k not in raw]
    if missing:
        raise DeployError(f"{path}: {where}: missing {missing[0]!r}")
    hours = raw["convergence_hours"]
    if isinstance(hours, bool) or not isinstance(hours, int):
        raise DeployError(f"{path}: {where}.convergence_hours: expected an integer, got {hours!r}")
    if not 1 <= hours <= MAX_FUNDING_CONVERGENCE:
        raise DeployError(
            f"{path}: {where}.convergence_hours: {hours} outside [1, {MAX_FUNDING_CONVERGENCE}]"
        )
    out = {"convergence_hours": hours}
    for key, lo in (("cap", 0), ("interest", -MAX_FUNDING_CAP)):
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DeployError(f"{path}: {where}.{key}: expected a number, got {value!r}")
        out[key] = _wad(value)
        if not lo <= out[key] <= MAX_FUNDING_CAP:
            raise DeployError(
                f"{path}: {where}.{key}: {value} outside [{lo / WAD:g}, {MAX_FUNDING_CAP / WAD:g}]"
            )
    if out["cap"] == 0:
        raise DeployError(f"{path}: {where}.cap: 0 is no funding: leave the table out instead")
    if abs(out["interest"]) > out["cap"]:
        raise DeployError(
            f"{path}: {where}.interest: |{raw['interest']}| above the cap {raw['cap']}"
        )
    return out


def _keys(path: Path, where: str, table: object, keys: tuple[str, ...]) -> dict:
    if not isinstance(table, dict) or set(table) - set(keys):
        raise DeployError(f"{path}: {where}: a table of {', '.join(keys)}")
    return table


def _wad(value: float) -> int:
    """A config number in WAD, exactly as written in decimal, as the Ape deployer converts it
    (offchain_risk.units.to_wad), so that both put the same integers on chain."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * WAD
    return int((Decimal(str(value)) * WAD).to_integral_value())


def governor_settings(cfg: dict, *, local: bool) -> dict:
    """Limits, global bounds and per-market bounds in struct order. Locally a value the
    config leaves out is the devnet's; elsewhere a missing value is an error naming it."""
    limits, global_bounds = cfg["limits"], cfg["global_bounds"]
    per_market = [
        {"floor_min": m["floor_bps"]}
        | cfg["asset_bounds"]
        | {k: int(v) for k, v in m["bounds"].items()}
        for m in cfg["markets"]
    ]
    per_vault = [
        {"floor_min": v["floor_bps"]} | cfg["asset_bounds"] | {"haircut_min": v["haircut_bps"]}
        for v in cfg["vaults"]
    ]
    if local:
        limits = LOCAL_LIMITS | limits
        global_bounds = LOCAL_GLOBAL_BOUNDS | global_bounds
        per_market = [LOCAL_ASSET_BOUNDS | b for b in per_market]
        per_vault = [LOCAL_ASSET_BOUNDS | b for b in per_vault]
    missing = [f"governor.limits.{k}" for k in LIMIT_KEYS if k not in limits]
    missing += [f"governor.global_bounds.{k}" for k in GLOBAL_BOUND_KEYS if k not in global_bounds]
    missing += [
        f"markets.{m['symbol']}.bounds.{k}"
        for m, b in zip(cfg["markets"], per_market, strict=True)
        for k in ASSET_BOUND_KEYS
        if k not in b
    ]
    missing += [
        f"governor.asset_bounds.{k} (vaults.{v['symbol']})"
        for v, b in zip(cfg["vaults"], per_vault, strict=True)
        for k in ASSET_BOUND_KEYS
        if k not in b
    ]
    if missing:
        raise DeployError(
            "a non-local governor needs its limits and bounds stated; missing " + ", ".join(missing)
        )
    return {
        "limits": tuple(limits[k] for k in LIMIT_KEYS),
        "global_bounds": tuple(global_bounds[k] for k in GLOBAL_BOUND_KEYS),
        "asset_bounds": [tuple(b[k] for k in ASSET_BOUND_KEYS) for b in per_market],
        "vault_bounds": [tuple(b[k] for k in ASSET_BOUND_KEYS) for b in per_vault],
    }


def resolve_signer(c: Cast, name: str, local: bool, mnemonic: str) -> str:
    if name.startswith("test:"):
        if not local:
            raise DeployError(f"signer {name!r}: test accounts exist on local chains only")
        index = name.removeprefix("test:")
        return c.run("wallet", "address", "--mnemonic", mnemonic, "--mnemonic-index", index)
    if name.startswith("0x") and len(name) == 42:
        return c.run("to-check-sum-address", name)
    raise DeployError(f"signer {name!r}: give an address (Ape account aliases need Ape)")


def deploy(cfg: dict, c: Cast, *, local: bool, mnemonic: str = TEST_MNEMONIC) -> dict:
    """Deploy and wire ``cfg`` (see :func:`load`); returns the manifest's contracts and
    markets."""
    if not local:
        missing = [f"markets.{m['symbol']}.feed" for m in cfg["markets"] if not m["feed"]]
        missing += [
            f"markets.{m['symbol']}.token_address"
            for m in cfg["markets"]
            if m["token"] and not m["token_address"]
        ]
        missing += [] if cfg["cash_address"] else ["engine.cash_address"]
        missing += [
            f"vaults.{v['symbol']}.vault_address" for v in cfg["vaults"] if not v["vault_address"]
        ]
        if cfg["quote"] is not None and not cfg["quote"]["feed"]:
            missing.append("quote.feed")
        if missing:
            raise DeployError("a non-local chain needs existing " + ", ".join(missing))
    settings = governor_settings(cfg, local=local) if cfg["signers"] else None
    signers = [resolve_signer(c, s, local, mnemonic) for s in cfg["signers"]]
    code = {n: v["bytecode"] for n, v in compile_contracts().items() if n != "version"}
    token_ctor = "constructor(string,string,uint8)"
    cash = cfg["cash_address"] or c.create(
        "USDC", code["MockToken"], token_ctor, "USD Coin", "USDC", 6
    )
    funding = c.create("FundingConfig", code["FundingConfig"], "constructor(address)", cash)
    config = c.create(
        "MarginConfig", code["MarginConfig"], "constructor(address,address)", cash, funding
    )
    engine = c.create(
        "MarginEngine",
        code["MarginEngine"],
        "constructor(address,address,uint256,uint256,uint256,uint256)",
        config,
        cash,
        cfg["deposit_cap_wad"],
        cfg["account_cap_wad"],
        cfg["im_multiplier_wad"],
        cfg["price_band_wad"],
    )
    book = c.create("OrderBook", code["OrderBook"], "constructor(address)", engine)
    c.send(engine, "set_venue(address,bool)", book, True)
    c.send(engine, "set_debt_cap(uint256)", cfg["debt_cap_wad"])
    policy = [cfg["policy"][k] for k in POLICY_ORDER]
    signature = "constructor(address" + ",uint256" * len(POLICY_ORDER) + ")"
    liquidations = c.create("Liquidations", code["Liquidations"], signature, engine, *policy)
    c.send(engine, "set_liquidator(address)", liquidations)
    lens = c.create("Lens", code["Lens"], "constructor(address)", engine)
    markets = {}
    for asset, m in enumerate(cfg["markets"]):
        feed = m["feed"] or c.create(
            f"feed {m['symbol']}",
            code["MockAggregator"],
            "constructor(uint8,int256)",
            FEED_DECIMALS,
            int(round(m["price"] * 10**FEED_DECIMALS)),
        )
        token = m["token_address"] or (
            c.create(m["token"][1], code["MockToken"], token_ctor, *m["token"])
            if m["token"]
            else ZERO
        )
        c.send(
            engine,
            "list_asset(address,address,uint256,uint256,uint256,uint256,uint256,bool,uint256)",
            token,
            feed,
            cfg["heartbeat"],
            m["floor_bps"],
            m["haircut_bps"],
            cfg["deposit_cap_wad"],
            cfg["account_cap_wad"],
            m["perp"],
            cfg["oi_cap_wad"],
        )
        c.send(engine, f"set_shocks(uint256,int256[{SCENARIOS}])", asset, m["shocks_bps"])
        markets[m["symbol"]] = {
            "asset": asset,
            "feed": feed,
            "token": None if token == ZERO else token,
            "floor_bps": m["floor_bps"],
            "haircut_bps": m["haircut_bps"],
            "shocks_bps": m["shocks_bps"],
            "perp": m["perp"],
        }
    contracts = {
        "engine": engine,
        "book": book,
        "lens": lens,
        "liquidations": liquidations,
        "cash": cash,
    }
    if signers:
        governor = c.create(
            "RiskGovernor",
            code["RiskGovernor"],
            "constructor(address,address,address[],uint256,(uint256,uint256,uint256,uint256,uint256))",
            engine,
            liquidations,
            signers,
            cfg["threshold"],
            settings["limits"],
        )
        for asset, bounds in enumerate(settings["asset_bounds"]):
            c.send(
                governor,
                "set_asset_bounds(uint256,(uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256))",
                asset,
                bounds,
            )
            markets[cfg["markets"][asset]["symbol"]]["bounds"] = dict(
                zip(ASSET_BOUND_KEYS, bounds, strict=True)
            )
        c.send(
            governor,
            "set_global_bounds((uint256,uint256,uint256,uint256,uint256,uint256))",
            settings["global_bounds"],
        )
        if cfg["guardian"]:
            c.send(governor, "set_guardian(address)", cfg["guardian"])
        c.send(engine, "set_risk_manager(address)", governor)
        c.send(liquidations, "set_risk_manager(address)", governor)
        contracts["governor"] = governor
    vol_signers = []
    if cfg["vol_feed"] is not None:
        vol = cfg["vol_feed"]
        vol_signers = [resolve_signer(c, s, local, mnemonic) for s in vol["signers"]]
        feed = c.create(
            "VolFeed",
            code["VolFeed"],
            "constructor(address[],uint256)",
            vol_signers,
            vol["threshold"],
        )
        for underlying in vol["underlyings"].values():
            c.send(feed, "set_underlying(uint256,uint256)", underlying, vol["heartbeat"])
        contracts["vol_feed"] = feed
    vaults = deploy_vaults(cfg, c, code, contracts, markets, settings)
    quote = deploy_quote(cfg, c, code, engine)
    for asset, m in enumerate(cfg["markets"]):
        f = m["funding"]
        if f is not None:
            c.send(
                engine,
                "set_funding_params(uint256,uint256,int256,uint256)",
                asset,
                f["convergence_hours"],
                f["interest"],
                f["cap"],
            )
            markets[m["symbol"]]["funding"] = {
                "convergence_hours": f["convergence_hours"],
                "interest_wad": f["interest"],
                "cap_wad": f["cap"],
            }
    tokens = {
        m["token"][1]: markets[m["symbol"]]["token"]
        for m in cfg["markets"]
        if m["token"] and not m["token_address"]
    }
    return {
        "contracts": contracts,
        "markets": markets,
        "vaults": vaults,
        "quote": quote,
        "signers": signers,
        "tokens": tokens,
        "governor": settings,
        "vol_signers": vol_signers,
    }


def deploy_vaults(
    cfg: dict, c: Cast, code: dict, contracts: dict, markets: dict, settings: dict | None
) -> dict:
    """Step 10: list cfg's vaults after the markets and, with a governor, the signed
    rate-cap entry (vault snapshots, funding-cap cuts); returns the manifest's ``vaults``
    (the rate cap's snapshot read back)."""
    engine, governor = contracts["engine"], contracts.get("governor")
    vaults = {}
    for i, v in enumerate(cfg["vaults"]):
        base = markets[v["underlying"]]
        vault = v["vault_address"] or c.create(
            v["symbol"],
            code["MockVault"],
            "constructor(string,string,address)",
            f"Vault {v['symbol']}",
            v["symbol"],
            base["token"],
        )
        asset = int(c.call(engine, "num_assets()(uint256)").split()[0])
        c.send(
            engine,
            "list_asset(address,address,uint256,uint256,uint256,uint256,uint256,bool,uint256)",
            vault,
            base["feed"],
            cfg["heartbeat"],
            v["floor_bps"],
            v["haircut_bps"],
            cfg["deposit_cap_wad"],
            cfg["deposit_cap_wad"],
            False,
            0,
        )
        words = [
            c.call(engine, "shock_word(uint256,uint256)(uint256)", base["asset"], w).split()[0]
            for w in range(2)
        ]
        c.send(engine, "set_shock_words(uint256,uint256[2])", asset, words)
        c.send(engine, "list_vault(uint256,uint256)", asset, v["max_growth_bps"])
        # the cap's snapshot as the engine holds it (units.unpack_vault_word's layout)
        held = int(c.call(engine, "vault_word(uint256)(uint256)", asset).split()[0])
        vaults[v["symbol"]] = {
            "asset": asset,
            "vault": vault,
            "underlying": v["underlying"],
            "class": v["class"],
            "haircut_bps": v["haircut_bps"],
            "max_growth_bps": (held >> 192) & 0xFFFF,
            "snapshot_ratio": held & (2**128 - 1),
            "snapshot_time": (held >> 128) & (2**64 - 1),
        }
        if governor is not None:
            bounds = settings["vault_bounds"][i]
            c.send(
                governor,
                "set_asset_bounds(uint256,(uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256))",
                asset,
                bounds,
            )
            vaults[v["symbol"]]["bounds"] = dict(zip(ASSET_BOUND_KEYS, bounds, strict=True))
    if governor is not None:
        snapshots = c.create(
            "RateSnapshots",
            code["RateSnapshots"],
            "constructor(address,address)",
            engine,
            governor,
        )
        c.send(engine, "set_snapshot_manager(address)", snapshots)
        contracts["snapshots"] = snapshots
    return vaults


def deploy_quote(cfg: dict, c: Cast, code: dict, engine: str) -> dict | None:
    """Step 11: the quote asset's feed and peg-loss rate; returns the manifest's ``quote``."""
    q = cfg["quote"]
    if q is None:
        return None
    feed = q["feed"] or c.create(
        "feed quote",
        code["MockAggregator"],
        "constructor(uint8,int256)",
        FEED_DECIMALS,
        int(round(q["price"] * 10**FEED_DECIMALS)),
    )
    c.send(engine, "set_feed(uint256,address,uint256)", QUOTE_ASSET, feed, q["heartbeat"])
    c.send(engine, "set_asset_risk(uint256,uint256,uint256)", QUOTE_ASSET, q["peg_bps"], 0)
    return {
        "asset": QUOTE_ASSET,
        "feed": c.run("to-check-sum-address", feed),
        "heartbeat": q["heartbeat"],
        "peg_bps": q["peg_bps"],
    }


def manifest(cfg: dict, done: dict, *, chain_id: int, block: int, deployer: str, config: str):
    """The manifest ``ape run deploy`` writes (offchain_risk.deploy.build_manifest)."""
    parameters = {
        "im_multiplier_wad": cfg["im_multiplier_wad"],
        "price_band_wad": cfg["price_band_wad"],
        "heartbeat": cfg["heartbeat"],
        "debt_cap_wad": cfg["debt_cap_wad"],
        "policy": cfg["policy"],
        "signers": done["signers"],
        "threshold": cfg["threshold"] if "governor" in done["contracts"] else 0,
    }
    if done["governor"] is not None:
        g = done["governor"]
        parameters["governor_limits"] = dict(zip(LIMIT_KEYS, g["limits"], strict=True))
        parameters["governor_global_bounds"] = dict(
            zip(GLOBAL_BOUND_KEYS, g["global_bounds"], strict=True)
        )
    if "vol_feed" in done["contracts"]:
        parameters["vol_feed"] = {
            "signers": done["vol_signers"],
            "threshold": cfg["vol_feed"]["threshold"],
            "heartbeat": cfg["vol_feed"]["heartbeat"],
            "underlyings": cfg["vol_feed"]["underlyings"],
        }
    return {
        "version": MANIFEST_VERSION,
        "network": f"rpc:{chain_id}",
        "chain_id": chain_id,
        "block": block,
        "deployer": deployer,
        "config": config,
        "contracts": done["contracts"],
        "markets": done["markets"],
        "vaults": done["vaults"],
        "quote": done["quote"],
        "parameters": parameters,
    }


def env_lines(done: dict) -> str:
    """``export NAME=0x...`` for the contracts, tokens (by symbol) and feeds."""
    names = {k.upper(): v for k, v in done["contracts"].items()}
    names["USDC"] = names.pop("CASH")
    for symbol, m in done["markets"].items():
        names[f"ASSET_{symbol}"] = m["asset"]
        names[f"FEED_{symbol}"] = m["feed"]
        if m["token"]:
            names[f"TOKEN_{symbol}"] = m["token"]
    for symbol, v in done["vaults"].items():
        names[f"ASSET_{symbol}"] = v["asset"]
        names[f"VAULT_{symbol}"] = v["vault"]
    if done["quote"] is not None:
        names["FEED_QUOTE"] = done["quote"]["feed"]
    names.update(done["tokens"])  # by token symbol: WETH, WBTC
    return "".join(f"export {k}={v}\n" for k, v in names.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Deploy Ballast with vyper and cast from a deploy config (TOML)."
    )
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--private-key", required=True, help="the deployer (engine owner)")
    parser.add_argument("--config", type=Path, default=Path("deployments/config/local.toml"))
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (JSON)")
    parser.add_argument("--env", type=Path, help="also write `export NAME=0x...` lines here")
    parser.add_argument("--force", action="store_true", help="replace an existing manifest")
    parser.add_argument("--mnemonic", default=TEST_MNEMONIC, help="for test:N signers")
    parser.add_argument("--yes", action="store_true", help="confirm a non-local deploy")
    args = parser.parse_args(argv)
    if shutil.which("cast") is None:
        parser.error("`cast` is not on PATH")
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists: a deployment is recorded there (--force replaces it)")
    c = Cast(args.rpc_url, args.private_key)
    try:
        cfg = load(args.config)
        chain_id = int(c.run("chain-id", "--rpc-url", args.rpc_url))
        local = chain_id in LOCAL_CHAINS
        if not local and not args.yes:
            raise DeployError(f"chain {chain_id} is not a local chain: pass --yes to deploy")
        deployer = c.run("wallet", "address", "--private-key", args.private_key)
        done = deploy(cfg, c, local=local, mnemonic=args.mnemonic)
        block = int(c.run("block-number", "--rpc-url", args.rpc_url))
    except (DeployError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"cast_deploy: {exc}", file=sys.stderr)
        return 1
    out = manifest(
        cfg, done, chain_id=chain_id, block=block, deployer=deployer, config=str(args.config)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} (block {block})")
    if args.env:
        args.env.write_text(env_lines(done))
        print(f"wrote {args.env}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
