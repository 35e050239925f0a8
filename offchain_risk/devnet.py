"""Deploy a complete Ballast market on a local devnet (anvil) with Ape.

Used by ``ape run deploy``, ``ape run demo``, the contract tests and the benchmarks, so
that every one of them exercises the same listing: USDC cash (6 decimals), WETH (18) and
WBTC (8) collateral, and perps on ETH, BTC, SOL and LINK priced by mock Chainlink feeds
(8 decimals) that a feeder key moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offchain_risk.models.liquidation import LiquidationPolicy

WAD = 10**18
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    price_usd: float
    floor_bps: int
    haircut_bps: int
    token: tuple[str, str, int] | None  # (name, symbol, decimals) of the collateral token
    perp: bool = True


MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("ETH", 2_000, 100, 200, ("Wrapped Ether", "WETH", 18)),
    MarketSpec("BTC", 60_000, 100, 300, ("Wrapped BTC", "WBTC", 8)),
    MarketSpec("SOL", 150, 200, 0, None),
    MarketSpec("LINK", 15, 300, 0, None),
)

# 16 joint scenarios (bps), rows in MARKETS order. Correlated crypto-beta moves with
# idiosyncratic columns; the risk engine's `calibrate` replaces them with fitted ones.
DEFAULT_SHOCKS_BPS = np.array(
    [
        [-1500, 1500, -1200, 1200, -800, 800, -2000, 1800, -300, 300, -1000, 1000, 0, 0, -600, 600],
        [-1200, 1200, -1300, 1300, -500, 500, -1800, 1500, -900, 900, -400, 400, 0, 0, -300, 300],
        [
            -2500,
            2500,
            -1800,
            1800,
            -1500,
            1500,
            -3500,
            3000,
            -1000,
            1000,
            -2000,
            2000,
            0,
            0,
            -900,
            900,
        ],
        [
            -2000,
            2000,
            -1600,
            1600,
            -1300,
            1300,
            -3000,
            2800,
            -700,
            700,
            -2500,
            2500,
            0,
            0,
            -1200,
            1200,
        ],
    ],
    dtype=np.int64,
)


DEFAULT_POLICY = LiquidationPolicy()

# Listings for replays of history (`offchain_risk.replay`): any symbol with an hourly price
# file. ETH and BTC come with their wrapped tokens as collateral; the others are perps. The
# shock rows are the default ones above: ETH's and BTC's own, the alt rows for the rest.
REPLAY_SPECS: dict[str, tuple[int, int, tuple[str, str, int] | None, int]] = {
    # symbol: (floor bps, haircut bps, collateral token, row of DEFAULT_SHOCKS_BPS)
    "ETH": (100, 200, ("Wrapped Ether", "WETH", 18), 0),
    "BTC": (100, 300, ("Wrapped BTC", "WBTC", 8), 1),
    "BNB": (200, 0, None, 2),
    "SOL": (200, 0, None, 2),
    "LINK": (300, 0, None, 3),
    "DOGE": (300, 0, None, 3),
    "AVAX": (300, 0, None, 3),
    "MATIC": (300, 0, None, 3),
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

    def set_price(self, symbol: str, price_usd: float, sender: Any) -> None:
        """Push a new oracle round (the feeder must send it)."""
        self.feeds[self.symbols[symbol]].set_price(int(round(price_usd * 10**8)), sender=sender)

    def addresses(self) -> dict[str, str]:
        out = {
            "engine": str(self.engine.address),
            "book": str(self.book.address),
            "lens": str(self.lens.address),
            "liquidations": str(self.liquidations.address),
            "USDC": str(self.cash.address),
        }
        for token in self.tokens.values():
            out[token.symbol()] = str(token.address)
        for symbol, asset in self.symbols.items():
            out[f"feed:{symbol}"] = str(self.feeds[asset].address)
        return out


def engine_at(project: Any, address: Any) -> Any:
    """The engine at ``address`` with both ABIs: the core's and the owner setters of
    ``MarginConfig``, which the core runs by delegatecall from its fallback."""
    from ape import Contract

    core = project.MarginEngine.contract_type
    names = {abi.name for abi in core.abi if hasattr(abi, "name")}
    extra = [
        abi
        for abi in project.MarginConfig.contract_type.abi
        if abi.type == "function" and abi.name not in names
    ]
    merged = core.model_copy(update={"abi": [*core.abi, *extra]})
    return Contract(str(address), contract_type=merged)


def deploy(
    project: Any,
    deployer: Any,
    *,
    markets: tuple[MarketSpec, ...] = MARKETS,
    shocks_bps: np.ndarray = DEFAULT_SHOCKS_BPS,
    im_multiplier_wad: int = 3 * WAD // 2,
    price_band_wad: int = WAD // 20,
    deposit_cap_wad: int = 10**12 * WAD,
    account_cap_wad: int = 10**12 * WAD,
    oi_cap_wad: int = 10**9 * WAD,
    debt_cap_wad: int = 10**7 * WAD,
    heartbeat: int = 86_400,
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
    config = project.MarginConfig.deploy(cash, sender=deployer)
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
        engine.set_shocks(asset, [int(s) for s in shocks], sender=deployer)
        d.feeds[asset] = feed
        d.symbols[spec.symbol] = asset
        if token is not ZERO_ADDRESS:
            d.tokens[asset] = token
    return d


def apply_params(d: Deployment, params: dict, sender: Any) -> list[str]:
    """Set a calibrated parameter set (``python -m offchain_risk calibrate``) on the engine.

    Assets are matched by symbol; K < 16 scenarios are padded with zero shocks. Returns the
    symbols that were set. Owner-only setters: `sender` must own the engine.
    """
    from offchain_risk.models.margin import pad_scenarios

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


# Signed risk updates (RiskGovernor): the devnet's policy, in one-hour buckets. Shocks move
# (either way) 5% of their asset's largest |shock| per update and 10% per bucket, magnitudes at
# most 500 bps beyond the least tight value held in the bucket. Floors and haircuts rise 500
# bps per bucket at once, the rest ramps over 6 hours; they and the global values fall 5% per
# update and 10% of the bucket's highest value.
GOVERNOR_LIMITS = (3_600, WAD // 10, WAD // 20, 500, 6 * 3_600)
# (im_min, im_max, min_discount_min, min_discount_max, max_discount_min, max_discount_max)
GLOBAL_BOUNDS = (6 * WAD // 5, 3 * WAD, WAD // 100, WAD // 20, WAD // 20, WAD // 5)


def asset_bounds(spec: MarketSpec) -> tuple[int, ...]:
    """Owner bounds of a devnet asset (bps): the listed floor rate is the admin floor; every
    scenario set keeps at least a 5% move each way; shocks within -100% .. +200%."""
    return (spec.floor_bps, 2_000, 0, 5_000, 10_000, 20_000, 500, 500)


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
) -> Any:
    """Deploy a RiskGovernor for the engine and its liquidation policy, set the devnet
    bounds and install it as the risk manager of both."""
    governor = project.RiskGovernor.deploy(
        d.engine, d.liquidations, signers, threshold, limits, sender=deployer
    )
    for asset, spec in enumerate(markets):
        governor.set_asset_bounds(asset, asset_bounds(spec), sender=deployer)
    governor.set_global_bounds(GLOBAL_BOUNDS, sender=deployer)
    if guardian is not None:
        governor.set_guardian(guardian, sender=deployer)
    d.engine.set_risk_manager(governor, sender=deployer)
    d.liquidations.set_risk_manager(governor, sender=deployer)
    return governor
