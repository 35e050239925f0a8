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

``[[vaults]]`` lists ERC-4626 shares over a collateral market (class haircut and rate-cap
growth, ``RateSnapshots`` as the snapshot manager under a governor; ``vault_address``
outside a local network) and ``[quote]`` gives the quote asset its feed and peg-loss rate
(``feed`` outside a local network); the manifest records both (``vaults``, ``quote``).

The risk governor's rate limits and bounds (``[governor.limits]``,
``[governor.global_bounds]``, ``[governor.asset_bounds]`` and a market's own
``[markets.bounds]``) come from the config. On a local network what a config leaves out is
the devnet's (``deployments/config/local.toml``, :data:`LOCAL_CONFIG`); a non-local network
gets no defaults: a governor there needs every value stated.

A perp market's ``[markets.funding]`` switches its funding on (docs/ARCHITECTURE.md#funding):
``convergence_hours`` (1 to 168: the premium is paid off over this many hours), ``interest``
and ``cap`` (fractions of the price per hour; the cap above 0 and at most 1%, ``|interest|``
at most the cap); both deployers call ``set_funding_params`` with them after the listing, and
the manifest records them (``markets.<symbol>.funding``, WAD). Without the table the market
has no funding.

``[vol_feed]`` lists a ``VolFeed``: its signers (M of N, the keeper's vol updater signs with
them), the heartbeat of its curves and the markets listed as underlyings (the engine's asset
ids); the manifest names it ``contracts.vol_feed`` with ``parameters.vol_feed``.

``[options]`` (which needs ``[vol_feed]``) deploys an ``OptionBook`` over the engine and that
vol feed after the feed, installs it on the engine (``set_option_book``, once per engine) and
sets a grid per ``[options.<symbol>]``: a market listed as a vol feed underlying (never a vault
share), with ``strike_step`` (USD), ``vol_shock`` (the scenario vol move at 30 days, a fraction:
0.15 is 15 vol points), ``short_min_bps`` and optionally ``oi_cap``, the long open-interest cap
to give each expiry when it is listed (units of the underlying, for ``set_oi_cap``: the book caps
each expiry, 0 until set, so the deploy sets none and only records it). The bounds are
``OptionBook.set_grid``'s. The manifest
names the book ``contracts.option_book`` with ``parameters.options`` (WAD, bps), and
:func:`check_manifest` compares the book's grids and the engine's installed book with it.
``deployments/config/local.toml`` states the table only as a commented example (ETH and BTC),
so a local deploy installs no option book unless its config states one.

``deployments/config/local.toml`` is also the devnet listing of
:mod:`offchain_risk.devnet`: one source for ``ape run deploy``, the console, the tests and
the keeper's ``--deploy``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from offchain_risk.models.funding import FundingParams
from offchain_risk.models.liquidation import LiquidationPolicy
from offchain_risk.models.margin import MAX_SCENARIOS, pad_scenarios
from offchain_risk.models.vault import VAULT_CLASSES, RateCap
from offchain_risk.units import (
    BPS,
    MAX_FUNDING_CAP,
    MAX_FUNDING_CONVERGENCE,
    MAX_PRICE,
    MIN_OPTION_PRICE,
    QUOTE_ASSET,
    WAD,
    to_wad,
)

MANIFEST_VERSION = 1
#: The devnet's config: the listing of ``offchain_risk.devnet`` and the governor values a
#: local deploy falls back on.
LOCAL_CONFIG = Path(__file__).resolve().parents[1] / "deployments" / "config" / "local.toml"
# RiskGovernor structs, field by field in the contract's order (see RiskGovernor.vy).
LIMIT_KEYS = ("window", "window_rate", "update_rate", "mm_step_bps", "ramp_duration")
_LIMIT_FRACTIONS = {"window_rate", "update_rate"}  # WAD fractions on chain
GLOBAL_BOUND_KEYS = (
    "im_min",
    "im_max",
    "min_discount_min",
    "min_discount_max",
    "max_discount_min",
    "max_discount_max",
)  # fractions / multipliers in the config, WAD on chain
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
    "bounds",
    "funding",
}
FUNDING_KEYS = ("convergence_hours", "interest", "cap")
_VOL_FEED_KEYS = {"signers", "threshold", "heartbeat", "underlyings"}
#: contracts/constants.vy MAX_HEARTBEAT: the longest heartbeat the VolFeed accepts.
MAX_VOL_HEARTBEAT = 7 * 86_400
#: ``[options.<symbol>]``: an underlying's grid (``oi_cap`` optional).
OPTION_KEYS = ("strike_step", "vol_shock", "short_min_bps", "oi_cap")
#: contracts/OptionBook.vy MAX_VOL_SHOCK: the largest vol shock (WAD) ``set_grid`` accepts.
MAX_VOL_SHOCK = WAD
_VAULT_KEYS = {"symbol", "underlying", "class", "vault_address"}
_QUOTE_KEYS = {"feed", "price", "heartbeat", "peg_bps"}
_GOVERNOR_KEYS = {
    "signers",
    "threshold",
    "guardian",
    "limits",
    "global_bounds",
    "asset_bounds",
}


#: The deploy config's top-level sections (``integration/cast_deploy.py`` knows the same set).
SECTIONS = frozenset(
    {"engine", "liquidation", "governor", "markets", "vol_feed", "options", "vaults", "quote"}
)


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
    shocks_bps: tuple[int, ...]  # K <= 32, padded with zeros
    token: tuple[str, str, int] | None = None  # (name, symbol, decimals) of a mock collateral
    token_address: str | None = None  # an existing collateral token (non-local networks)
    feed: str | None = None  # an existing Chainlink feed
    perp: bool = True
    bounds: dict[str, int] = field(default_factory=dict)  # governor bounds, bps (own keys)
    funding: FundingParams | None = None  # hours, WAD per hour; None: no funding

    def spec(self) -> Any:
        """The market as :class:`offchain_risk.devnet.MarketSpec` (a collateral given by
        ``token_address`` is passed to ``devnet.deploy`` as an existing token)."""
        from offchain_risk.devnet import MarketSpec

        return MarketSpec(
            self.symbol, self.price, self.floor_bps, self.haircut_bps, self.token, self.perp
        )


@dataclass(frozen=True)
class VolFeedConfig:
    """``[vol_feed]``: the signers of its curves (``threshold`` of them sign an update), the
    heartbeat of every listed underlying's curves (seconds) and the listed markets."""

    signers: tuple[str, ...]  # "test:N" or Ape account aliases
    threshold: int
    heartbeat: int
    underlyings: tuple[str, ...]  # market symbols


@dataclass(frozen=True)
class OptionGridConfig:
    """An underlying's grid in the option book (``[options.<symbol>]``), in chain units:
    strikes on multiples of ``strike_step`` (WAD), the scenario vol move at 30 days
    (``vol_shock``, WAD: 0.15 * WAD is 15 vol points), the short-option minimum (bps of the
    price per unit short) and the long open-interest cap to give a newly listed expiry
    (``set_oi_cap``, WAD units of the underlying; None: not stated)."""

    symbol: str  # a market listed as a vol feed underlying
    strike_step: int
    vol_shock: int
    short_min_bps: int
    oi_cap: int | None = None

    @property
    def grid(self) -> tuple[int, int, int]:
        """(strike step, vol shock, short minimum) as ``OptionBook.set_grid`` takes them."""
        return self.strike_step, self.vol_shock, self.short_min_bps


@dataclass(frozen=True)
class VaultConfig:
    """ERC-4626 shares listed as collateral (``[[vaults]]``): priced through the
    ``underlying`` collateral market's feed and shocks, with its class's haircut and yearly
    rate growth (``VAULT_CLASSES``); the rate cap's first snapshot is the vault's rate at
    listing. Later snapshots move only through the signed ``RateSnapshots`` entry."""

    symbol: str
    underlying: str  # the symbol of a collateral market
    vault_class: str  # a key of VAULT_CLASSES
    vault_address: str | None = None  # an existing vault (non-local networks)

    @property
    def haircut_bps(self) -> int:
        return VAULT_CLASSES[self.vault_class].haircut_bps

    @property
    def max_growth_bps(self) -> int:
        return VAULT_CLASSES[self.vault_class].max_growth_bps


@dataclass(frozen=True)
class QuoteConfig:
    """The quote (cash) asset's feed (``[quote]``): set on the engine's slot
    ``QUOTE_ASSET``, positive cash adds ``cash * (max(1 - q, 0) + peg rate)`` to IM. Without
    the section cash is valued at par and no peg term applies."""

    feed: str | None = None  # an existing feed (non-local networks)
    price: float = 1.0  # opening price of a mock feed (local networks)
    heartbeat: int = 86_400  # seconds; the engine's heartbeat unless stated
    peg_bps: int = 0  # the standing peg-loss rate


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
    # the governor's values as the config states them (on-chain units); a key left out is
    # the devnet's on a local network and an error elsewhere (see `governor_settings`)
    limits: dict[str, int] = field(default_factory=dict)
    global_bounds: dict[str, int] = field(default_factory=dict)
    asset_bounds: dict[str, int] = field(default_factory=dict)  # every market's, bps
    vol_feed: VolFeedConfig | None = None
    vaults: tuple[VaultConfig, ...] = ()  # listed after the markets, in this order
    quote: QuoteConfig | None = None
    options: tuple[OptionGridConfig, ...] = ()  # an option book's grids (needs the vol feed)

    def option_grids(self, symbols: dict[str, int]) -> dict[int, tuple[int, int, int]]:
        """The grids as ``devnet.deploy_option_book`` takes them: asset id (``symbols``) ->
        (strike step WAD, vol shock WAD, short minimum bps)."""
        return {symbols[o.symbol]: o.grid for o in self.options}

    @property
    def shocks(self) -> np.ndarray:
        """(n_markets, 32) bps (zero-padded)."""
        return pad_scenarios(np.array([m.shocks_bps for m in self.markets], dtype=np.int64))

    def engine_args(self) -> dict[str, Any]:
        """The engine settings as ``devnet.deploy`` takes them (WAD, seconds, the policy)."""
        return {
            "im_multiplier_wad": to_wad(self.im_multiplier),
            "price_band_wad": to_wad(self.price_band),
            "deposit_cap_wad": to_wad(self.deposit_cap_usd),
            "account_cap_wad": to_wad(self.account_cap_usd),
            "oi_cap_wad": to_wad(self.oi_cap),
            "debt_cap_wad": to_wad(self.debt_cap_usd),
            "heartbeat": self.heartbeat,
            "policy": self.policy,
        }

    def market_bounds(self, market: MarketConfig) -> dict[str, int]:
        """The governor bounds the config states for ``market``: its own over the shared
        ones; ``floor_min`` is the listed floor rate (the admin floor) unless stated."""
        return {"floor_min": market.floor_bps} | self.asset_bounds | market.bounds

    def vault_bounds(self, vault: VaultConfig) -> dict[str, int]:
        """The governor bounds the config states for ``vault``: the shared ones, its
        underlying's floor as ``floor_min`` and its class haircut as ``haircut_min`` (the
        keeper's liquidity haircut is signed on top of it, never below)."""
        base = next(m for m in self.markets if m.symbol == vault.underlying)
        return (
            {"floor_min": base.floor_bps} | self.asset_bounds | {"haircut_min": vault.haircut_bps}
        )

    def missing_governor(self) -> list[str]:
        """The governor values a non-local network needs and the config leaves out."""
        if not self.signers:
            return []
        missing = [f"governor.limits.{k}" for k in LIMIT_KEYS if k not in self.limits]
        missing += [
            f"governor.global_bounds.{k}" for k in GLOBAL_BOUND_KEYS if k not in self.global_bounds
        ]
        for m in self.markets:
            have = self.market_bounds(m)
            missing += [f"markets.{m.symbol}.bounds.{k}" for k in ASSET_BOUND_KEYS if k not in have]
        for v in self.vaults:
            have = self.vault_bounds(v)
            missing += [
                f"governor.asset_bounds.{k} (vaults.{v.symbol})"
                for k in ASSET_BOUND_KEYS
                if k not in have
            ]
        return missing

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
        missing += [f"vaults.{v.symbol}.vault_address" for v in self.vaults if not v.vault_address]
        if self.quote is not None and self.quote.feed is None:
            missing.append("quote.feed")
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
    unknown = set(raw) - SECTIONS
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
            raise _fail(
                path, f"{where}.shocks_bps", f"expected a list of 1 to {MAX_SCENARIOS} integers"
            )
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
                bounds=_asset_bounds(path, f"{where}.bounds", m.get("bounds", {})),
                funding=_funding(path, f"{where}.funding", m.get("funding"), bool(perp)),
            )
        )
    symbols = [m.symbol for m in markets]
    if len(set(symbols)) != len(symbols):
        raise _fail(path, "markets", f"duplicate symbols in {symbols}")
    liq = raw.get("liquidation", {})
    try:
        policy = LiquidationPolicy(
            **{k.removesuffix("_usd"): to_wad(v) for k, v in liq.items()},
        )
    except TypeError as exc:
        raise _fail(path, "liquidation", f"unknown key: {exc}") from exc
    except ValueError as exc:
        raise _fail(path, "liquidation", str(exc)) from exc
    gov = raw.get("governor", {})
    if set(gov) - _GOVERNOR_KEYS:
        raise _fail(path, "governor", f"unknown keys {sorted(set(gov) - _GOVERNOR_KEYS)}")
    signers = tuple(str(s) for s in gov.get("signers", ()))
    threshold = int(gov.get("threshold", 0))
    if signers and not 1 <= threshold <= len(signers):
        raise _fail(path, "governor.threshold", f"{threshold} not in [1, {len(signers)} signers]")
    if len(set(signers)) != len(signers):
        raise _fail(path, "governor.signers", "a signer is listed twice")
    vol_feed = _vol_feed(path, raw["vol_feed"], symbols) if "vol_feed" in raw else None
    vaults = _vaults(path, raw.get("vaults", []), markets)
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
        limits=_limits(path, gov.get("limits", {})),
        global_bounds=_global_bounds(path, gov.get("global_bounds", {})),
        asset_bounds=_asset_bounds(path, "governor.asset_bounds", gov.get("asset_bounds", {})),
        vol_feed=vol_feed,
        vaults=vaults,
        quote=_quote(path, raw.get("quote"), engine.get("heartbeat", 86_400)),
        options=_options(path, raw["options"], vol_feed, symbols, vaults)
        if "options" in raw
        else (),
    )


def _funding(path: Path, where: str, raw: Any, perp: bool) -> FundingParams | None:
    """``[markets.funding]``: convergence hours (integer, 1 .. 168), interest and cap
    (fractions of the price per hour: 0 < cap <= 1%, |interest| <= cap) as
    :class:`FundingParams` in chain units (WAD per hour), the bounds
    ``set_funding_params`` enforces."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(path, where, f"expected a table of {', '.join(FUNDING_KEYS)}")
    if set(raw) - set(FUNDING_KEYS):
        raise _fail(path, where, f"unknown keys {sorted(set(raw) - set(FUNDING_KEYS))}")
    if not perp:
        raise _fail(path, where, "funding needs a perp market (perp = false here)")
    for key in ("convergence_hours", "cap"):
        if key not in raw:
            raise _fail(path, where, f"missing {key!r}")
    hours = raw["convergence_hours"]
    if isinstance(hours, bool) or not isinstance(hours, int):
        raise _fail(path, f"{where}.convergence_hours", f"expected an integer, got {hours!r}")
    if not 1 <= hours <= MAX_FUNDING_CONVERGENCE:
        raise _fail(
            path, f"{where}.convergence_hours", f"{hours} outside [1, {MAX_FUNDING_CONVERGENCE}]"
        )
    top = MAX_FUNDING_CAP / WAD
    cap = to_wad(_number(path, f"{where}.cap", raw["cap"], 0, top))
    if cap == 0:
        raise _fail(path, f"{where}.cap", "0 is no funding: leave the table out instead")
    interest = to_wad(_number(path, f"{where}.interest", raw.get("interest", 0), -top, top))
    if abs(interest) > cap:
        raise _fail(path, f"{where}.interest", f"|{raw['interest']}| above the cap {raw['cap']}")
    return FundingParams(convergence_hours=hours, interest=interest, cap=cap)


def _quote(path: Path, raw: Any, heartbeat: Any) -> QuoteConfig | None:
    """``[quote]``: a feed address (or a mock's opening price, 0.01 .. 10), its heartbeat
    (the engine's unless stated) and the peg-loss rate in bps (at most 100%)."""
    if raw is None:
        return None
    raw = _table(path, "quote", raw, tuple(_QUOTE_KEYS))
    feed = raw.get("feed")
    if feed is not None and not _is_address(feed):
        raise _fail(path, "quote.feed", f"not an address: {feed!r}")
    if feed is not None and "price" in raw:
        raise _fail(path, "quote.price", "a mock feed's price, with an existing feed given")
    peg = _number(path, "quote.peg_bps", raw.get("peg_bps", 0), 0, 10_000)
    if peg != int(peg):
        raise _fail(path, "quote.peg_bps", f"expected whole bps, got {peg}")
    return QuoteConfig(
        feed=feed,
        price=_number(path, "quote.price", raw.get("price", 1.0), 0.01, 10),
        heartbeat=int(
            _number(path, "quote.heartbeat", raw.get("heartbeat", heartbeat), 1, 2**32 - 1)
        ),
        peg_bps=int(peg),
    )


def _vaults(path: Path, raw: Any, markets: list[MarketConfig]) -> tuple[VaultConfig, ...]:
    """``[[vaults]]``: each names its symbol (new), a collateral market as its underlying
    and a class of ``VAULT_CLASSES``; a mock vault's symbol fits its 5 characters."""
    if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
        raise _fail(path, "vaults", "expected [[vaults]] tables")
    collateral = {m.symbol for m in markets if m.token is not None or m.token_address}
    taken = {m.symbol for m in markets}
    out = []
    for i, v in enumerate(raw):
        where = f"vaults[{i}]"
        if set(v) - _VAULT_KEYS:
            raise _fail(path, where, f"unknown keys {sorted(set(v) - _VAULT_KEYS)}")
        for key in ("symbol", "underlying", "class"):
            if not isinstance(v.get(key), str) or not v[key]:
                raise _fail(path, where, f"missing {key!r} (a string)")
        where = f"vaults.{v['symbol']}"
        if v["symbol"] in taken:
            raise _fail(path, f"{where}.symbol", "already the symbol of a market or vault")
        taken.add(v["symbol"])
        address = v.get("vault_address")
        if address is not None and not _is_address(address):
            raise _fail(path, f"{where}.vault_address", f"not an address: {address!r}")
        if address is None and len(v["symbol"]) > 5:
            raise _fail(path, f"{where}.symbol", "a mock vault's symbol has at most 5 characters")
        if v["underlying"] not in collateral:
            raise _fail(
                path,
                f"{where}.underlying",
                f"{v['underlying']!r} is not a collateral market (one with a token); "
                f"collateral: {sorted(collateral)}",
            )
        if v["class"] not in VAULT_CLASSES:
            raise _fail(
                path,
                f"{where}.class",
                f"unknown class {v['class']!r}; known: {sorted(VAULT_CLASSES)}",
            )
        out.append(VaultConfig(v["symbol"], v["underlying"], v["class"], address))
    return tuple(out)


def _is_address(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 42
        and value.startswith("0x")
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    )


def _vol_feed(path: Path, raw: Any, symbols: list[str]) -> VolFeedConfig:
    """``[vol_feed]``: signers, threshold, heartbeat (seconds, at most the feed's 7 days) and
    the underlyings (listed market symbols, each once)."""
    where = "vol_feed"
    raw = _table(path, where, raw, tuple(sorted(_VOL_FEED_KEYS)))
    for key in sorted(_VOL_FEED_KEYS):
        if key not in raw:
            raise _fail(path, where, f"missing {key!r}")
    signers = raw["signers"]
    if not isinstance(signers, list) or not signers:
        raise _fail(path, f"{where}.signers", "expected a non-empty list of accounts")
    signers = tuple(str(s) for s in signers)
    if len(set(signers)) != len(signers):
        raise _fail(path, f"{where}.signers", "a signer is listed twice")
    threshold = _number(path, f"{where}.threshold", raw["threshold"], 1, len(signers))
    heartbeat = _number(path, f"{where}.heartbeat", raw["heartbeat"], 1, MAX_VOL_HEARTBEAT)
    for key, value in (("threshold", threshold), ("heartbeat", heartbeat)):
        if not isinstance(value, int):
            raise _fail(path, f"{where}.{key}", f"expected an integer, got {value!r}")
    underlyings = raw["underlyings"]
    if not isinstance(underlyings, list) or not underlyings:
        raise _fail(path, f"{where}.underlyings", "expected a non-empty list of market symbols")
    unknown = [u for u in underlyings if u not in symbols]
    if unknown:
        raise _fail(path, f"{where}.underlyings", f"{unknown} are not listed markets")
    if len(set(underlyings)) != len(underlyings):
        raise _fail(path, f"{where}.underlyings", "an underlying is listed twice")
    return VolFeedConfig(signers, int(threshold), int(heartbeat), tuple(underlyings))


def _options(
    path: Path,
    raw: Any,
    vol_feed: VolFeedConfig | None,
    symbols: list[str],
    vaults: tuple[VaultConfig, ...],
) -> tuple[OptionGridConfig, ...]:
    """``[options]``: one ``[options.<symbol>]`` grid per underlying, each a market listed as
    a vol feed underlying, with ``OptionBook.set_grid``'s bounds: ``strike_step`` (USD) in
    [MIN_OPTION_PRICE, MAX_PRICE], ``vol_shock`` (a fraction) at most MAX_VOL_SHOCK (1: 100
    vol points), ``short_min_bps`` whole bps at most 10,000; ``oi_cap`` (optional, units of
    the underlying) at least 0."""
    where = "options"
    if vol_feed is None:
        raise _fail(
            path, where, "an option book needs a [vol_feed] (its legs are valued at its vols)"
        )
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, where, "expected a grid per underlying market symbol, as [options.ETH]")
    vault_symbols = {v.symbol for v in vaults}
    out = []
    for symbol, grid in raw.items():
        where = f"options.{symbol}"
        if not isinstance(grid, dict):
            raise _fail(
                path,
                where,
                f"expected a table of {', '.join(OPTION_KEYS)}, as [options.ETH]",
            )
        if symbol in vault_symbols:
            raise _fail(path, where, f"{symbol!r} is a vault share: it cannot be an underlying")
        if symbol not in symbols:
            raise _fail(path, where, f"{symbol!r} is not a listed market; markets: {symbols}")
        if symbol not in vol_feed.underlyings:
            raise _fail(
                path,
                where,
                f"{symbol!r} is not a vol feed underlying; vol_feed.underlyings: "
                f"{list(vol_feed.underlyings)}",
            )
        _table(path, where, grid, OPTION_KEYS)
        for key in OPTION_KEYS[:3]:
            if key not in grid:
                raise _fail(path, where, f"missing {key!r}")
        lo, hi = MIN_OPTION_PRICE / WAD, MAX_PRICE / WAD  # USD
        step_usd = _number(path, f"{where}.strike_step", grid["strike_step"], lo, hi)
        step = to_wad(step_usd)
        if not MIN_OPTION_PRICE <= step <= MAX_PRICE:  # at a bound, after rounding to WAD
            raise _fail(
                path, f"{where}.strike_step", f"{step} WAD outside [10**9, 2**100] (set_grid's)"
            )
        shock = to_wad(
            _number(path, f"{where}.vol_shock", grid["vol_shock"], 0, MAX_VOL_SHOCK // WAD)
        )
        short_min = _number(path, f"{where}.short_min_bps", grid["short_min_bps"], 0, BPS)
        if short_min != int(short_min):
            raise _fail(path, f"{where}.short_min_bps", f"expected whole bps, got {short_min}")
        oi_cap = None
        if "oi_cap" in grid:
            oi_cap = to_wad(_number(path, f"{where}.oi_cap", grid["oi_cap"], 0, 2**100))
        out.append(OptionGridConfig(symbol, step, shock, int(short_min), oi_cap))
    return tuple(out)


def _table(path: Path, where: str, raw: Any, keys: tuple[str, ...]) -> dict:
    if not isinstance(raw, dict):
        raise _fail(path, where, "expected a table")
    if set(raw) - set(keys):
        raise _fail(path, where, f"unknown keys {sorted(set(raw) - set(keys))}")
    return raw


def _limits(path: Path, raw: Any) -> dict[str, int]:
    """``[governor.limits]``: seconds, fractions (to WAD) and bps."""
    where = "governor.limits"
    out = {}
    for key, value in _table(path, where, raw, LIMIT_KEYS).items():
        if key in _LIMIT_FRACTIONS:
            out[key] = to_wad(_number(path, f"{where}.{key}", value, 0, 1))
        else:
            hi = 10_000 if key == "mm_step_bps" else 2**32
            out[key] = int(_number(path, f"{where}.{key}", value, 0, hi))
    return out


def _global_bounds(path: Path, raw: Any) -> dict[str, int]:
    """``[governor.global_bounds]``: the IM multiplier (>= 1) and discounts (fractions), to
    WAD; each minimum at most its maximum."""
    where = "governor.global_bounds"
    out = {}
    for key, value in _table(path, where, raw, GLOBAL_BOUND_KEYS).items():
        lo, hi = (1, 10) if key.startswith("im_") else (0, 1)
        out[key] = to_wad(_number(path, f"{where}.{key}", value, lo, hi))
    for lo, hi in (("im_min", "im_max"), ("min_discount_min", "min_discount_max")):
        if lo in out and hi in out and out[lo] > out[hi]:
            raise _fail(path, f"{where}.{lo}", f"above {hi}")
    if out.get("max_discount_min", 0) > out.get("max_discount_max", to_wad(1)):
        raise _fail(path, f"{where}.max_discount_min", "above max_discount_max")
    return out


def _asset_bounds(path: Path, where: str, raw: Any) -> dict[str, int]:
    """Governor bounds of a market, bps; each minimum at most its maximum."""
    out = {
        key: int(_number(path, f"{where}.{key}", value, 0, 32_767))
        for key, value in _table(path, where, raw, ASSET_BOUND_KEYS).items()
    }
    for lo, hi in (("floor_min", "floor_max"), ("haircut_min", "haircut_max")):
        if lo in out and hi in out and out[lo] > out[hi]:
            raise _fail(path, f"{where}.{lo}", f"above {hi}")
    return out


@dataclass(frozen=True)
class GovernorSettings:
    """What the governor is deployed with, in on-chain units and the structs' field order."""

    limits: tuple[int, ...]
    global_bounds: tuple[int, ...]
    asset_bounds: tuple[tuple[int, ...], ...]  # per market, in listing order
    vault_bounds: tuple[tuple[int, ...], ...] = ()  # per vault, in listing order


def governor_settings(cfg: DeployConfig, *, local: bool) -> GovernorSettings:
    """The governor values of ``cfg``. On a local network a value the config leaves out is
    the devnet's (:data:`LOCAL_CONFIG`); elsewhere a missing value is a :class:`ConfigError`
    naming every one."""
    limits, global_bounds = dict(cfg.limits), dict(cfg.global_bounds)
    per_market = [cfg.market_bounds(m) for m in cfg.markets]
    per_vault = [cfg.vault_bounds(v) for v in cfg.vaults]
    if not local:
        missing = cfg.missing_governor()
        if missing:
            raise ConfigError(
                "a governor on a non-local network needs its limits and bounds stated; "
                "missing " + ", ".join(missing)
            )
    else:
        devnet_cfg = local_config()
        limits = devnet_cfg.limits | limits
        global_bounds = devnet_cfg.global_bounds | global_bounds
        per_market = [devnet_cfg.asset_bounds | b for b in per_market]
        per_vault = [devnet_cfg.asset_bounds | b for b in per_vault]
    missing = [k for k in LIMIT_KEYS if k not in limits]
    missing += [k for k in GLOBAL_BOUND_KEYS if k not in global_bounds]
    missing += [k for b in per_market + per_vault for k in ASSET_BOUND_KEYS if k not in b]
    if missing:  # the devnet config itself is incomplete
        raise ConfigError(f"{LOCAL_CONFIG}: governor values missing: {sorted(set(missing))}")
    return GovernorSettings(
        limits=tuple(limits[k] for k in LIMIT_KEYS),
        global_bounds=tuple(global_bounds[k] for k in GLOBAL_BOUND_KEYS),
        asset_bounds=tuple(tuple(b[k] for k in ASSET_BOUND_KEYS) for b in per_market),
        vault_bounds=tuple(tuple(b[k] for k in ASSET_BOUND_KEYS) for b in per_vault),
    )


_LOCAL: list[DeployConfig] = []


def local_config() -> DeployConfig:
    """The devnet's config (:data:`LOCAL_CONFIG`), parsed once."""
    if not _LOCAL:
        _LOCAL.append(load_config(LOCAL_CONFIG))
    return _LOCAL[0]


def deploy_config(
    project: Any,
    deployer: Any,
    cfg: DeployConfig,
    *,
    local: bool,
    signers: list[Any] = (),
    vol_signers: list[Any] = (),
) -> tuple[Any, Any]:
    """Deploy ``cfg``: the engine, its venue, lens and liquidation policy, every market, a
    RiskGovernor over ``signers`` when the config names any, with the config's limits and
    bounds, the ``[vol_feed]`` over ``vol_signers`` (``d.vol_feed``) and the ``[options]``
    book over it, installed on the engine (``engine.option_book()``).
    (``devnet.Deployment``, governor)."""
    if not local and cfg.needs_mocks():
        raise ConfigError(
            "a non-local network needs existing contracts for " + ", ".join(cfg.needs_mocks())
        )
    if len(signers) != len(cfg.signers):
        raise ValueError("one account per configured signer")
    if len(vol_signers) != (len(cfg.vol_feed.signers) if cfg.vol_feed else 0):
        raise ValueError("one account per configured vol feed signer")
    if cfg.options and cfg.vol_feed is None:
        raise ConfigError("options: an option book needs a [vol_feed]")
    settings = governor_settings(cfg, local=local) if signers else None
    from ape import Contract

    from offchain_risk import devnet

    feeds = {m.symbol: Contract(m.feed) for m in cfg.markets if m.feed is not None}
    tokens = {m.symbol: Contract(m.token_address) for m in cfg.markets if m.token_address}
    cash = Contract(cfg.cash_address) if cfg.cash_address else None
    d = devnet.deploy(
        project,
        deployer,
        markets=tuple(m.spec() for m in cfg.markets),
        shocks_bps=cfg.shocks,
        **cfg.engine_args(),
        feeds=feeds or None,
        tokens=tokens or None,
        cash=cash,
    )
    governor = None
    if settings is not None:
        governor = devnet.deploy_governor(
            project,
            d,
            deployer,
            list(signers),
            cfg.threshold,
            markets=tuple(m.spec() for m in cfg.markets),
            limits=settings.limits,
            guardian=cfg.guardian,
            asset_bounds=settings.asset_bounds,
            global_bounds=settings.global_bounds,
        )
    if cfg.vol_feed is not None:
        v = cfg.vol_feed
        d.vol_feed = devnet.deploy_vol_feed(
            project,
            deployer,
            list(vol_signers),
            v.threshold,
            {d.symbols[u]: v.heartbeat for u in v.underlyings},
        )
    if cfg.options:
        devnet.deploy_option_book(project, d, deployer, d.vol_feed, cfg.option_grids(d.symbols))
    deploy_vaults(project, d, deployer, cfg, governor, settings)
    deploy_quote(project, d, deployer, cfg)
    deploy_funding(d, deployer, cfg)
    return d, governor


def deploy_funding(d: Any, deployer: Any, cfg: DeployConfig) -> None:
    """Switch funding on in every market with ``[markets.funding]``."""
    for m in cfg.markets:
        if m.funding is not None:
            f = m.funding
            d.engine.set_funding_params(
                d.symbols[m.symbol], f.convergence_hours, f.interest, f.cap, sender=deployer
            )


def deploy_quote(project: Any, d: Any, deployer: Any, cfg: DeployConfig) -> None:
    """Give the quote asset ``cfg.quote``'s feed (a mock at 8 decimals where no ``feed`` is
    given) and its peg-loss rate."""
    if cfg.quote is None:
        return
    from ape import Contract

    q = cfg.quote
    feed = (
        Contract(q.feed)
        if q.feed
        else project.MockAggregator.deploy(8, int(round(q.price * 10**8)), sender=deployer)
    )
    d.engine.set_feed(QUOTE_ASSET, feed, q.heartbeat, sender=deployer)
    d.engine.set_asset_risk(QUOTE_ASSET, q.peg_bps, 0, sender=deployer)


def deploy_vaults(
    project: Any,
    d: Any,
    deployer: Any,
    cfg: DeployConfig,
    governor: Any,
    settings: GovernorSettings | None,
) -> None:
    """List ``cfg.vaults`` after the markets (a devnet ``MockVault`` where no
    ``vault_address`` is given), each governed with its bounds; with a governor, deploy
    the signed rate-cap entry (``RateSnapshots``: the governor's signers move vault
    snapshots and lower funding caps) as the engine's snapshot manager."""
    from ape import Contract

    from offchain_risk import devnet

    for i, v in enumerate(cfg.vaults):
        asset = devnet.list_vault(
            project,
            d,
            deployer,
            symbol=v.symbol,
            underlying=v.underlying,
            vault_class=v.vault_class,
            vault=Contract(v.vault_address) if v.vault_address else None,
            cap_wad=to_wad(cfg.deposit_cap_usd),
            heartbeat=cfg.heartbeat,
        )
        if governor is not None:
            governor.set_asset_bounds(asset, settings.vault_bounds[i], sender=deployer)
    if governor is not None:
        devnet.deploy_rate_snapshots(project, d, deployer, governor)


def build_manifest(
    d: Any,
    governor: Any,
    cfg: DeployConfig,
    *,
    network: str,
    chain_id: int,
    block: int,
    deployer: str,
    config_path: str,
    signers: list[str] = (),
    local: bool = True,
    vol_signers: list[str] = (),
) -> dict:
    """What was deployed (``d``: a ``devnet.Deployment``), where, from which block, with
    which parameters (``vol_signers``: the addresses of the vol feed's signers)."""
    contracts = {
        "engine": str(d.engine.address),
        "book": str(d.book.address),
        "lens": str(d.lens.address),
        "liquidations": str(d.liquidations.address),
        "cash": str(d.cash.address),
    }
    if governor is not None:
        contracts["governor"] = str(governor.address)
    if int(str(d.engine.snapshot_manager()), 16):
        contracts["snapshots"] = str(d.engine.snapshot_manager())
    settings = governor_settings(cfg, local=local) if governor is not None else None
    markets = {}
    for i, (m, shocks) in enumerate(zip(cfg.markets, cfg.shocks, strict=True)):
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
        if m.funding is not None:
            markets[m.symbol]["funding"] = funding_manifest(m.funding)
        if settings is not None:
            markets[m.symbol]["bounds"] = dict(
                zip(ASSET_BOUND_KEYS, settings.asset_bounds[i], strict=True)
            )
    engine = cfg.engine_args()
    vaults = vault_manifest(d, cfg, settings)
    parameters = {
        "im_multiplier_wad": engine["im_multiplier_wad"],
        "price_band_wad": engine["price_band_wad"],
        "heartbeat": cfg.heartbeat,
        "debt_cap_wad": engine["debt_cap_wad"],
        "policy": asdict(cfg.policy),
        "signers": [str(s) for s in signers],
        "threshold": cfg.threshold if governor is not None else 0,
    }
    if settings is not None:
        parameters["governor_limits"] = dict(zip(LIMIT_KEYS, settings.limits, strict=True))
        parameters["governor_global_bounds"] = dict(
            zip(GLOBAL_BOUND_KEYS, settings.global_bounds, strict=True)
        )
    if getattr(d, "vol_feed", None) is not None and cfg.vol_feed is not None:
        contracts["vol_feed"] = str(d.vol_feed.address)
        parameters["vol_feed"] = vol_feed_parameters(cfg.vol_feed, d.symbols, vol_signers)
    book = str(d.engine.option_book())
    if book != ZERO_ADDRESS:  # the engine's, as installed (once per engine)
        contracts["option_book"] = book
        parameters["options"] = option_parameters(cfg.options, d.symbols)
    return {
        "version": MANIFEST_VERSION,
        "network": network,
        "chain_id": chain_id,
        "block": block,
        "deployer": deployer,
        "config": config_path,
        "contracts": contracts,
        "markets": markets,
        "vaults": vaults,
        "quote": quote_manifest(d),
        "parameters": parameters,
    }


def funding_manifest(f: FundingParams) -> dict:
    """A market's ``funding`` in the manifest: hours and WAD per hour, as on chain."""
    return {"convergence_hours": f.convergence_hours, "interest_wad": f.interest, "cap_wad": f.cap}


def vol_feed_parameters(v: VolFeedConfig, symbols: dict[str, int], signers: list[str]) -> dict:
    """The manifest's ``parameters.vol_feed``: signer addresses, threshold, heartbeat and the
    underlyings by symbol with their asset ids (the feed's underlying ids)."""
    return {
        "signers": [str(s) for s in signers],
        "threshold": v.threshold,
        "heartbeat": v.heartbeat,
        "underlyings": {u: int(symbols[u]) for u in v.underlyings},
    }


def option_parameters(options: tuple[OptionGridConfig, ...], symbols: dict[str, int]) -> dict:
    """The manifest's ``parameters.options``: per underlying symbol its asset id, the grid as
    ``OptionBook.grid`` holds it (strike step and vol shock WAD, short minimum bps) and the
    open-interest cap to give a newly listed expiry (WAD units of the underlying; None: not
    stated; not on chain until an expiry is capped)."""
    return {
        o.symbol: {
            "asset": int(symbols[o.symbol]),
            "strike_step_wad": o.strike_step,
            "vol_shock_wad": o.vol_shock,
            "short_min_bps": o.short_min_bps,
            "oi_cap_wad": o.oi_cap,
        }
        for o in options
    }


def quote_manifest(d: Any) -> dict | None:
    """The manifest's ``quote``: the quote asset's feed, heartbeat and peg-loss rate as the
    engine holds them; None when cash is valued at par (no feed)."""
    cfg = d.lens.asset_config(QUOTE_ASSET)
    if str(cfg.feed) == ZERO_ADDRESS:
        return None
    return {
        "asset": QUOTE_ASSET,
        "feed": str(cfg.feed),
        "heartbeat": int(cfg.heartbeat),
        "peg_bps": int(cfg.floor_bps),
    }


def vault_manifest(d: Any, cfg: DeployConfig, settings: GovernorSettings | None) -> dict:
    """The manifest's ``vaults``: each listing (asset id, vault, underlying market, class,
    haircut, the rate cap's snapshot as the engine holds it) and its governor bounds."""
    out = {}
    for i, v in enumerate(cfg.vaults):
        if v.symbol not in d.symbols:  # a deployment of the markets alone (devnet.deploy)
            continue
        asset = d.symbols[v.symbol]
        cap = RateCap.from_word(int(d.engine.vault_word(asset)))
        out[v.symbol] = {
            "asset": asset,
            "vault": str(d.tokens[asset].address),
            "underlying": v.underlying,
            "class": v.vault_class,
            "haircut_bps": v.haircut_bps,
            "max_growth_bps": cap.max_growth_bps,
            "snapshot_ratio": cap.ratio,
            "snapshot_time": cap.snapshot_time,
        }
        if settings is not None:
            out[v.symbol]["bounds"] = dict(
                zip(ASSET_BOUND_KEYS, settings.vault_bounds[i], strict=True)
            )
    return out


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


class ManifestError(ValueError):
    """A manifest that cannot be used: malformed, of another version, or of another chain."""


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_MANIFEST_CONTRACTS = ("engine", "book", "lens", "liquidations", "cash")


def load_manifest(path: str | Path, chain_id: int | None = None) -> dict:
    """Read and check the manifest at ``path`` (what ``ape run deploy`` wrote); with
    ``chain_id``, refuse a manifest of another chain."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no deployment manifest at {path}: run `ape run deploy` first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not a JSON manifest: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: not a deployment manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{path}: manifest version {manifest.get('version')!r} unsupported "
            f"(expected {MANIFEST_VERSION}: written by `ape run deploy`)"
        )
    missing = [k for k in ("chain_id", "block", "contracts", "markets") if k not in manifest]
    missing += [
        f"contracts.{k}" for k in _MANIFEST_CONTRACTS if k not in manifest.get("contracts", {})
    ]
    if missing:
        raise ManifestError(f"{path}: manifest lacks {', '.join(missing)}")
    if chain_id is not None and int(manifest["chain_id"]) != int(chain_id):
        raise ManifestError(
            f"{path}: manifest is for chain {manifest['chain_id']}, connected to {chain_id}"
        )
    return manifest


def check_manifest(manifest: dict, project: Any, chain_id: int) -> list[str]:
    """Every way the chain disagrees with ``manifest`` (empty: it matches)."""
    from ape import chain

    from offchain_risk import devnet

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
    vaults = manifest.get("vaults", {})
    if engine.num_assets() != len(manifest["markets"]) + len(vaults):
        problems.append(
            f"{engine.num_assets()} assets listed, manifest has "
            f"{len(manifest['markets']) + len(vaults)}"
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
        if m["perp"]:
            word = int(engine.funding_params(m["asset"]))
            held = funding_manifest(FundingParams.unpack(word)) if word else None
            if held != m.get("funding"):
                problems.append(f"{symbol}: funding {held} on chain, {m.get('funding')} stated")
    problems += _check_vaults(manifest, project, d)
    quote = manifest.get("quote")
    if quote_manifest(d) != quote:
        problems.append(f"quote feed differs: {quote_manifest(d)} on chain, {quote} stated")
    if "governor" in manifest["contracts"]:
        governor = project.RiskGovernor.at(manifest["contracts"]["governor"])
        if str(engine.risk_manager()) != manifest["contracts"]["governor"]:
            problems.append("the governor is not the engine's risk manager")
        if governor.threshold() != params["threshold"]:
            problems.append("governor threshold differs")
        stated = params.get("governor_limits")
        if stated is not None and list(governor.limits()) != [stated[k] for k in LIMIT_KEYS]:
            problems.append("governor limits differ")
        stated = params.get("governor_global_bounds")
        if stated is not None and list(governor.global_bounds()) != [
            stated[k] for k in GLOBAL_BOUND_KEYS
        ]:
            problems.append("governor global bounds differ")
        for symbol, m in manifest["markets"].items():
            stated = m.get("bounds")
            if stated is not None and list(governor.asset_bounds(m["asset"])) != [
                stated[k] for k in ASSET_BOUND_KEYS
            ]:
                problems.append(f"{symbol}: governor bounds differ")
        for symbol, v in vaults.items():
            stated = v.get("bounds")
            if stated is not None and list(governor.asset_bounds(v["asset"])) != [
                stated[k] for k in ASSET_BOUND_KEYS
            ]:
                problems.append(f"{symbol}: governor bounds differ")
    if "vol_feed" in manifest["contracts"]:
        problems += _check_vol_feed(project.VolFeed.at(manifest["contracts"]["vol_feed"]), manifest)
    problems += _check_option_book(manifest, project, engine)
    return problems


def _check_option_book(manifest: dict, project: Any, engine: Any) -> list[str]:
    """How the engine's installed option book and its grids differ from
    ``contracts.option_book`` and ``parameters.options``."""
    c = manifest["contracts"]
    installed, stated = str(engine.option_book()), c.get("option_book", ZERO_ADDRESS)
    if installed != stated:
        return [f"the engine's option book {installed} != {stated}"]
    if "option_book" not in c:
        return []
    grids = manifest["parameters"].get("options")
    if grids is None:
        return ["the manifest names an option book without its parameters"]
    book = project.OptionBook.at(stated)
    problems = []
    if str(book.owner()) != manifest["deployer"]:
        problems.append(f"option book owner {book.owner()} != deployer {manifest['deployer']}")
    if str(book.vol_feed()) != c.get("vol_feed", ZERO_ADDRESS):
        problems.append(f"option book vol feed {book.vol_feed()} != {c.get('vol_feed')}")
    for symbol, g in grids.items():
        held = tuple(int(x) for x in book.grid(g["asset"]))
        if held != (g["strike_step_wad"], g["vol_shock_wad"], g["short_min_bps"]):
            problems.append(f"{symbol}: option grid differs")
    return problems


def _check_vol_feed(feed: Any, manifest: dict) -> list[str]:
    """How the VolFeed differs from ``parameters.vol_feed``."""
    stated = manifest["parameters"].get("vol_feed")
    if stated is None:
        return ["the manifest names a vol feed without its parameters"]
    problems = []
    if str(feed.owner()) != manifest["deployer"]:
        problems.append(f"vol feed owner {feed.owner()} != deployer {manifest['deployer']}")
    if feed.threshold() != stated["threshold"]:
        problems.append("vol feed threshold differs")
    if feed.signer_count() != len(stated["signers"]) or not all(
        feed.is_signer(s) for s in stated["signers"]
    ):
        problems.append("vol feed signers differ")
    for symbol, underlying in stated["underlyings"].items():
        if feed.heartbeat(underlying) != stated["heartbeat"]:
            problems.append(f"{symbol}: vol feed heartbeat differs")
    return problems


def _check_vaults(manifest: dict, project: Any, d: Any) -> list[str]:
    """How the chain disagrees with the manifest's vault listings and snapshot manager."""
    problems = []
    engine, lens, c = d.engine, d.lens, manifest["contracts"]
    manager = str(engine.snapshot_manager())
    if manager != c.get("snapshots", ZERO_ADDRESS):
        problems.append(f"snapshot manager {manager} != {c.get('snapshots', ZERO_ADDRESS)}")
    elif "snapshots" in c:
        governor = str(project.RateSnapshots.at(c["snapshots"]).governor())
        if governor != c.get("governor"):
            problems.append(f"the snapshot entry's governor {governor} != {c.get('governor')}")
    for symbol, v in manifest.get("vaults", {}).items():
        cfg = lens.asset_config(v["asset"])
        base = lens.asset_config(manifest["markets"][v["underlying"]]["asset"])
        if str(cfg.token) != v["vault"]:
            problems.append(f"{symbol}: token {cfg.token} != vault {v['vault']}")
        if str(cfg.feed) != str(base.feed):
            problems.append(f"{symbol}: feed {cfg.feed} != its underlying's {base.feed}")
        if int(cfg.haircut_bps) != v["haircut_bps"]:
            problems.append(f"{symbol}: haircut differs")
        cap = RateCap.from_word(int(engine.vault_word(v["asset"])))
        listed = (cap.ratio, cap.snapshot_time, cap.max_growth_bps)
        if listed != (v["snapshot_ratio"], v["snapshot_time"], v["max_growth_bps"]):
            problems.append(f"{symbol}: rate-cap snapshot differs")
    return problems


def load_deployment(project: Any, manifest: dict) -> Any:
    """The contracts a manifest names, as Ape contracts (the engine with both ABIs): a
    ``devnet.Deployment``."""
    from offchain_risk import devnet

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
    if "vol_feed" in c:
        d.vol_feed = project.VolFeed.at(c["vol_feed"])
    for symbol, v in manifest.get("vaults", {}).items():
        d.symbols[symbol] = v["asset"]
        d.feeds[v["asset"]] = d.feeds[manifest["markets"][v["underlying"]]["asset"]]
        d.tokens[v["asset"]] = project.MockVault.at(v["vault"])
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
    if not local and cfg.missing_governor():
        raise ConfigError(
            f"{config_path}: a governor on a non-local network needs its limits and bounds "
            "stated; missing " + ", ".join(cfg.missing_governor())
        )
    signers = resolve_signers(cfg.signers, local=local)
    vol_signers = resolve_signers(cfg.vol_feed.signers if cfg.vol_feed else (), local=local)
    if not local:
        question = (
            f"Deploy Ballast ({len(cfg.markets)} markets"
            + (f", a {cfg.threshold}-of-{len(signers)} risk governor" if signers else "")
            + (
                f", a {cfg.vol_feed.threshold}-of-{len(vol_signers)} vol feed"
                if cfg.vol_feed
                else ""
            )
            + (
                f", an option book on {', '.join(o.symbol for o in cfg.options)}"
                if cfg.options
                else ""
            )
            + f") to {network.name} (chain {network.chain_id}) from {deployer.address}?"
        )
        if confirm is None or not confirm(question):
            raise DeployAborted(f"not deployed to {network.name}: not confirmed")
    d, governor = deploy_config(
        project, deployer, cfg, local=local, signers=signers, vol_signers=vol_signers
    )
    if params is not None:
        from offchain_risk import devnet

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
        local=local,
        vol_signers=[str(s.address) for s in vol_signers],
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
