"""Deploy a complete Ballast market on a local devnet (anvil) with Ape.

Used by ``ape run deploy``, ``ape run demo``, the contract tests and the benchmarks, so
that every one of them exercises the same listing, ``deployments/config/local.toml``:
USDC cash (6 decimals), WETH (18) and WBTC (8) collateral, and perps on ETH, BTC, SOL and
LINK priced by mock Chainlink feeds (8 decimals) that a feeder key moves. The governor's
devnet limits and bounds are that file's too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offchain_risk.deploy import ASSET_BOUND_KEYS, GLOBAL_BOUND_KEYS, LIMIT_KEYS, local_config
from offchain_risk.models.liquidation import LiquidationPolicy
from offchain_risk.models.margin import pad_scenarios
from offchain_risk.models.vault import VAULT_CLASSES, VaultClass  # noqa: F401 (re-exported)
from offchain_risk.units import SHOCK_WORDS

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    price_usd: float
    floor_bps: int
    haircut_bps: int
    token: tuple[str, str, int] | None  # (name, symbol, decimals) of the collateral token
    perp: bool = True


# The devnet listing is deployments/config/local.toml (`ape run deploy`'s default config):
# markets in its order, their 16 joint scenarios (bps, zero-padded to the chain's 32;
# correlated crypto-beta moves with idiosyncratic columns; the risk engine's `calibrate`
# replaces them with fitted ones).
_LOCAL = local_config()
MARKETS: tuple[MarketSpec, ...] = tuple(
    MarketSpec(m.symbol, m.price, m.floor_bps, m.haircut_bps, m.token, m.perp)
    for m in _LOCAL.markets
)
DEFAULT_SHOCKS_BPS: np.ndarray = _LOCAL.shocks  # (n_markets, 32)
_ENGINE = _LOCAL.engine_args()  # the config's [engine] and [liquidation]: deploy's defaults


DEFAULT_POLICY: LiquidationPolicy = _ENGINE["policy"]
DEFAULT_IM_MULTIPLIER_WAD: int = _ENGINE["im_multiplier_wad"]

# Hand-written listings for replays of history: the fallback of `offchain_risk.replay.listing`
# for an asset with too little history before the window to calibrate (the replay's report
# names it). The devnet's markets as listed (ETH and BTC with their wrapped tokens as
# collateral); the others are perps with the shocks of a devnet market.
REPLAY_EXTRA: dict[str, tuple[int, int, str]] = {
    # symbol: (floor bps, haircut bps, the devnet market whose shock row it takes)
    "BNB": (200, 0, "SOL"),
    "DOGE": (300, 0, "LINK"),
    "AVAX": (300, 0, "LINK"),
    "MATIC": (300, 0, "LINK"),
}
REPLAY_SPECS: dict[str, tuple[int, int, tuple[str, str, int] | None, int]] = {
    # symbol: (floor bps, haircut bps, collateral token, row of DEFAULT_SHOCKS_BPS)
    **{m.symbol: (m.floor_bps, m.haircut_bps, m.token, i) for i, m in enumerate(MARKETS)},
    **{
        symbol: (floor, haircut, None, [m.symbol for m in MARKETS].index(like))
        for symbol, (floor, haircut, like) in REPLAY_EXTRA.items()
    },
}


def replay_markets(prices_usd: dict[str, float]) -> tuple[tuple[MarketSpec, ...], np.ndarray]:
    """Market specs and their shock rows (n, 16) for ``prices_usd`` (symbol -> opening
    price), in the order given."""
    unknown = [s for s in prices_usd if s not in REPLAY_SPECS]
    if unknown:
        raise ValueError(f"no replay listing for {unknown}; known: {sorted(REPLAY_SPECS)}")
    specs, rows = [], []
    for symbol, price in prices_usd.items():
        if not price > 0:
            raise ValueError(f"{symbol}: opening price must be positive, got {price}")
        floor_bps, haircut_bps, token, row = REPLAY_SPECS[symbol]
        specs.append(MarketSpec(symbol, float(price), floor_bps, haircut_bps, token))
        rows.append(DEFAULT_SHOCKS_BPS[row])
    return tuple(specs), np.array(rows, dtype=np.int64)


@dataclass
class Deployment:
    engine: Any  # the core, with MarginConfig's setters in its ABI (see engine_at)
    book: Any  # the OrderBook venue, registered with the engine
    cash: Any
    lens: Any = None  # read-only unpacked views
    liquidations: Any = None  # the liquidation policy, registered with the engine
    tokens: dict[int, Any] = field(default_factory=dict)  # asset id -> collateral token
    feeds: dict[int, Any] = field(default_factory=dict)  # asset id -> mock aggregator
    symbols: dict[str, int] = field(default_factory=dict)  # "ETH" -> asset id
    vol_feed: Any = None  # the VolFeed, when the deployment lists one

    def set_price(self, symbol: str, price_usd: float, sender: Any) -> None:
        """Push a new oracle round (the feeder must send it)."""
        self.feeds[self.symbols[symbol]].set_price(int(round(price_usd * 10**8)), sender=sender)


def engine_at(project: Any, address: Any) -> Any:
    """The engine at ``address`` with both ABIs: the core's and ``MarginConfig``'s (owner
    setters and token moves, with their events), which the core runs by delegatecall from
    its fallback."""
    from ape import Contract

    from offchain_risk.keeper.rpc import engine_type

    return Contract(str(address), contract_type=engine_type(project))


def deploy(
    project: Any,
    deployer: Any,
    *,
    markets: tuple[MarketSpec, ...] = MARKETS,
    shocks_bps: np.ndarray = DEFAULT_SHOCKS_BPS,
    im_multiplier_wad: int = _ENGINE["im_multiplier_wad"],
    price_band_wad: int = _ENGINE["price_band_wad"],
    deposit_cap_wad: int = _ENGINE["deposit_cap_wad"],
    account_cap_wad: int = _ENGINE["account_cap_wad"],
    oi_cap_wad: int = _ENGINE["oi_cap_wad"],
    debt_cap_wad: int = _ENGINE["debt_cap_wad"],
    heartbeat: int = _ENGINE["heartbeat"],
    policy: LiquidationPolicy = DEFAULT_POLICY,
    feeds: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
    cash: Any = None,
) -> Deployment:
    """Deploy tokens, feeds, the engine, its venue, lens and liquidation policy; list every
    market and set its shocks. ``feeds`` (symbol -> aggregator) reuses existing feeds
    instead of deploying new ones: two engines on one set of prices. ``tokens`` (symbol ->
    ERC-20) and ``cash`` list existing tokens instead of deploying mock ones."""
    if len(shocks_bps) != len(markets):
        raise ValueError("one row of shocks per market")
    if cash is None:
        cash = project.MockToken.deploy("USD Coin", "USDC", 6, sender=deployer)
    funding = project.FundingConfig.deploy(cash, sender=deployer)
    config = project.MarginConfig.deploy(cash, funding, sender=deployer)
    core = project.MarginEngine.deploy(
        config,
        cash,
        deposit_cap_wad,
        account_cap_wad,
        im_multiplier_wad,
        price_band_wad,
        sender=deployer,
    )
    engine = engine_at(project, core.address)
    book = project.OrderBook.deploy(engine, sender=deployer)
    engine.set_venue(book, True, sender=deployer)
    engine.set_debt_cap(debt_cap_wad, sender=deployer)
    liquidations = project.Liquidations.deploy(engine, *policy.args(), sender=deployer)
    engine.set_liquidator(liquidations, sender=deployer)
    lens = project.Lens.deploy(engine, sender=deployer)
    d = Deployment(engine=engine, book=book, cash=cash, lens=lens, liquidations=liquidations)
    for spec, shocks in zip(markets, shocks_bps, strict=True):
        if feeds is not None and spec.symbol in feeds:
            feed = feeds[spec.symbol]
        else:
            feed = project.MockAggregator.deploy(
                8, int(round(spec.price_usd * 10**8)), sender=deployer
            )
        token = ZERO_ADDRESS
        if tokens is not None and spec.symbol in tokens:
            token = tokens[spec.symbol]
        elif spec.token is not None:
            token = project.MockToken.deploy(*spec.token, sender=deployer)
        asset = engine.num_assets()
        engine.list_asset(
            token,
            feed,
            heartbeat,
            spec.floor_bps,
            spec.haircut_bps,
            deposit_cap_wad,
            account_cap_wad,
            spec.perp,
            oi_cap_wad,
            sender=deployer,
        )
        row = pad_scenarios(np.array([shocks], dtype=np.int64))[0]
        engine.set_shocks(asset, [int(s) for s in row], sender=deployer)
        d.feeds[asset] = feed
        d.symbols[spec.symbol] = asset
        if token is not ZERO_ADDRESS:
            d.tokens[asset] = token
    return d


def list_vault(
    project: Any,
    d: Deployment,
    owner: Any,
    *,
    symbol: str,
    underlying: str,
    vault_class: str,
    vault: Any = None,
    cap_wad: int = _ENGINE["deposit_cap_wad"],
    heartbeat: int = _ENGINE["heartbeat"],
    governor: Any = None,
) -> int:
    """List ERC-4626 shares over ``underlying``'s collateral token (a devnet
    ``MockVault`` unless ``vault`` is given) as collateral: the underlying's feed and
    shocks, its class's haircut and growth cap (``VAULT_CLASSES``), no perp. With a
    ``governor``, the asset is governed with the class haircut as its ``haircut_min``.
    Returns the new asset id; ``d.tokens`` / ``d.feeds`` / ``d.symbols`` gain it."""
    if vault_class not in VAULT_CLASSES:
        raise ValueError(f"unknown vault class {vault_class!r}; known: {sorted(VAULT_CLASSES)}")
    if underlying not in d.symbols or d.symbols[underlying] not in d.tokens:
        raise ValueError(f"{underlying} has no collateral token in this deployment")
    base = d.symbols[underlying]
    klass = VAULT_CLASSES[vault_class]
    if vault is None:
        vault = project.MockVault.deploy(f"Vault {symbol}", symbol, d.tokens[base], sender=owner)
    floor_bps = d.lens.asset_config(base).floor_bps
    asset = d.engine.num_assets()
    d.engine.list_asset(
        vault, d.feeds[base], heartbeat, floor_bps, klass.haircut_bps,
        cap_wad, cap_wad, False, 0, sender=owner,
    )  # fmt: skip
    words = [d.engine.shock_word(base, w) for w in range(SHOCK_WORDS)]
    d.engine.set_shock_words(asset, words, sender=owner)
    d.engine.list_vault(asset, klass.max_growth_bps, sender=owner)
    if governor is not None:
        bounds = {"floor_min": floor_bps} | _LOCAL.asset_bounds
        bounds["haircut_min"] = klass.haircut_bps
        governor.set_asset_bounds(asset, tuple(bounds[k] for k in ASSET_BOUND_KEYS), sender=owner)
    d.tokens[asset] = vault
    d.feeds[asset] = d.feeds[base]
    d.symbols[symbol] = asset
    return asset


def apply_params(d: Deployment, params: dict, sender: Any) -> list[str]:
    """Set a calibrated parameter set (``python -m offchain_risk calibrate``) on the engine.

    Assets are matched by symbol; K < 32 scenarios are padded with zero shocks. Returns the
    symbols that were set. Owner-only setters: `sender` must own the engine.
    """
    missing = [s for s in params["shocks_bps"] if s not in d.symbols]
    if len(missing) == len(params["shocks_bps"]):
        raise ValueError(f"no asset of the parameter set is listed here: {missing}")
    done = []
    for symbol, shocks in params["shocks_bps"].items():
        if symbol not in d.symbols:
            continue
        asset = d.symbols[symbol]
        row = pad_scenarios(np.array([shocks], dtype=np.int64))[0]
        d.engine.set_shocks(asset, [int(s) for s in row], sender=sender)
        d.engine.set_asset_risk(
            asset,
            int(params["floor_bps"][symbol]),
            int(params["haircut_bps"][symbol]),
            sender=sender,
        )
        done.append(symbol)
    d.engine.set_im_multiplier(int(params["im_multiplier_wad"]), sender=sender)
    return done


# Signed risk updates (RiskGovernor): the devnet's policy, from its config, in one-hour
# buckets. Shocks move (either way) 5% of their asset's largest |shock| per update and 10% per
# bucket, magnitudes at most 500 bps beyond the least tight value held in the bucket. Floors
# and haircuts rise 500 bps per bucket at once, the rest ramps over 6 hours; they and the
# global values fall 5% per update and 10% of the bucket's highest value.
GOVERNOR_LIMITS: tuple[int, ...] = tuple(_LOCAL.limits[k] for k in LIMIT_KEYS)
# (im_min, im_max, min_discount_min, min_discount_max, max_discount_min, max_discount_max)
GLOBAL_BOUNDS: tuple[int, ...] = tuple(_LOCAL.global_bounds[k] for k in GLOBAL_BOUND_KEYS)


def asset_bounds(spec: MarketSpec) -> tuple[int, ...]:
    """Owner bounds of a devnet asset (bps, in ``AssetBounds`` order): the listed floor rate
    is the admin floor; the rest are the devnet config's (every scenario set keeps at least
    a 5% move each way; shocks within -100% .. +200%)."""
    bounds = {"floor_min": spec.floor_bps} | _LOCAL.asset_bounds
    return tuple(bounds[k] for k in ASSET_BOUND_KEYS)


devnet_asset_bounds = asset_bounds  # `deploy_governor` has a parameter of that name


def deploy_governor(
    project: Any,
    d: Deployment,
    deployer: Any,
    signers: list[Any],
    threshold: int,
    *,
    markets: tuple[MarketSpec, ...] = MARKETS,
    limits: tuple[int, ...] = GOVERNOR_LIMITS,
    guardian: Any = None,
    asset_bounds: tuple[tuple[int, ...], ...] | None = None,
    global_bounds: tuple[int, ...] = GLOBAL_BOUNDS,
) -> Any:
    """Deploy a RiskGovernor for the engine and its liquidation policy, set its bounds
    (``asset_bounds``, one per market; the devnet's by default) and install it as the risk
    manager of both."""
    if asset_bounds is None:
        asset_bounds = tuple(devnet_asset_bounds(spec) for spec in markets)
    if len(asset_bounds) != len(markets):
        raise ValueError("one set of asset bounds per market")
    governor = project.RiskGovernor.deploy(
        d.engine, d.liquidations, signers, threshold, limits, sender=deployer
    )
    for asset, bounds in enumerate(asset_bounds):
        governor.set_asset_bounds(asset, bounds, sender=deployer)
    governor.set_global_bounds(global_bounds, sender=deployer)
    if guardian is not None:
        governor.set_guardian(guardian, sender=deployer)
    d.engine.set_risk_manager(governor, sender=deployer)
    d.liquidations.set_risk_manager(governor, sender=deployer)
    return governor


def deploy_vol_feed(
    project: Any, deployer: Any, signers: list[Any], threshold: int, heartbeats: dict[int, int]
) -> Any:
    """Deploy a VolFeed over ``signers`` (``threshold`` of them sign an update) and list each
    underlying (the engine's asset id) with the heartbeat of its curves."""
    feed = project.VolFeed.deploy(signers, threshold, sender=deployer)
    for underlying, heartbeat in heartbeats.items():
        feed.set_underlying(underlying, heartbeat, sender=deployer)
    return feed


def deploy_option_book(
    project: Any,
    d: Deployment,
    deployer: Any,
    vol_feed: Any,
    grids: dict[int, tuple[int, int, int]],
) -> Any:
    """Deploy an OptionBook over ``d``'s engine and ``vol_feed``, install it on the engine
    (once per engine) and set each underlying's grid: ``grids`` maps the engine's asset id to
    (strike step WAD, vol shock at 30 days WAD, short-option minimum bps)."""
    book = project.OptionBook.deploy(d.engine, vol_feed, sender=deployer)
    d.engine.set_option_book(book, sender=deployer)
    for underlying, (strike_step, vol_shock, short_min_bps) in grids.items():
        book.set_grid(underlying, strike_step, vol_shock, short_min_bps, sender=deployer)
    return book


def deploy_rate_snapshots(project: Any, d: Deployment, deployer: Any, governor: Any) -> Any:
    """Deploy the signed rate-cap entry (``RateSnapshots``: the governor's signers move
    vault rate caps and lower funding caps) and install it as the engine's snapshot
    manager."""
    snapshots = project.RateSnapshots.deploy(d.engine, governor, sender=deployer)
    d.engine.set_snapshot_manager(snapshots, sender=deployer)
    return snapshots
