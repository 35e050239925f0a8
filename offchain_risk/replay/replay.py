"""Replay a window of history on a local devnet with the keeper running.

Two venues share one set of mock Chainlink feeds on one anvil chain:

- **Ballast**: the engine with its scenario margin (the devnet's joint shocks and floors);
- **flat**: the same contracts with every shock zero and a flat floor of 6.5% of gross
  exposure (the backtest's flat-margin rule) on every asset: a flat-margin venue.

The baseline is a second deployment rather than the numpy twin under flat parameters so
that the comparison runs the same code on both sides: the same liquidation policy, the
same insurance fund and bad-debt waterfall, and the same keeper, each venue with its own.

Each venue gets the same positions (``seed.generate_books``), funded at the same buffer
over the venue's own IM. Then for every oracle round of the :class:`PricePath`: the
chain's clock moves forward by the historical time since the previous round
(``evm_increaseTime``, so a replayed day is a chain day and feeds stay fresh), the feeder
pushes the round, and each venue's :class:`~offchain_risk.keeper.keeper.Keeper` ticks until
its scan finds no account below MM (at most ``max_ticks`` times, one block each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from offchain_risk import deploy, devnet
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.rpc import Contracts, rpc_batch, web3_contract
from offchain_risk.keeper.scanner import Market, float_margin, read_market
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import LocalSigner, NonceSource, TxManager
from offchain_risk.keeper.vol_updater import build_vol_updater
from offchain_risk.models.funding import FundingParams, cap_from_margin_gap
from offchain_risk.models.margin import MAX_SCENARIOS, margin_exact
from offchain_risk.replay.funding import BasisDesk, basis_premiums
from offchain_risk.replay.listing import Listing, ListingConfig, calibrated_listing
from offchain_risk.replay.options import (
    OptionsSeeded,
    generate_option_books,
    option_grid,
    seed_options,
)
from offchain_risk.replay.path import PricePath
from offchain_risk.replay.seed import Seeded, generate_books, seed
from offchain_risk.replay.txs import RawSender, sourced_account
from offchain_risk.units import BPS, WAD, to_wad

FLAT_FLOOR_BPS = 650  # offchain_risk.backtest.books.FLAT_RATE
COLLATERAL_ASSETS = ("ETH", "BTC")  # listed with WETH / WBTC


@dataclass(frozen=True)
class ReplayConfig:
    n_accounts: int = 300
    seed: int = 7
    max_ticks: int = 8  # keeper blocks per oracle round
    baseline: bool = True
    desk_cash_usd: float = 2e9
    keeper_cash_usd: float = 2e8
    insurance_usd: float = 25_000.0
    risk_updates: bool = True  # Ballast's keeper runs its risk updater (signed updates)
    vol_updates: bool = True  # Ballast's keeper publishes vol surfaces (with risk_updates)
    vol_days: int = 30  # hourly history before the opening a fallback asset's vol is read on
    # the risk engine's calibration of Ballast's markets (horizon, window, fallback rule)
    listing: ListingConfig = field(default_factory=ListingConfig)
    data_dir: str | None = None  # market data (default: $BALLAST_DATA_DIR or ../shared/data)
    # Funding in every perp market of both venues (docs/ARCHITECTURE.md#funding): the
    # premium paid off over `funding_hours`, plus `funding_interest` (fraction of the price
    # per hour: 0.01% per 8 hours), within a cap sized from the market's margin gap.
    funding: bool = True
    funding_hours: int = 8
    funding_interest: float = 0.0000125
    # With funding: the desk's hourly basis fills at the data's perp-over-spot premium
    # (offchain_risk.replay.funding.BasisDesk), the engine's funding samples.
    basis: bool = True
    # Option books on Ballast's option book (offchain_risk.replay.options), with vol updates:
    # the archetypes in turn on the replayed vol feed underlyings; 0 for none.
    option_books: int = 16

    def __post_init__(self) -> None:
        if self.n_accounts < 1:
            raise ValueError("n_accounts must be at least 1")
        if self.option_books < 0:
            raise ValueError("option_books must be >= 0")
        if self.max_ticks < 1:
            raise ValueError("max_ticks must be at least 1")


@dataclass(frozen=True)
class Shock:
    """An oracle round after which the keeper found accounts below MM."""

    step: int
    at: np.datetime64  # historical time
    hit: int  # accounts below MM after the round
    liquidations: int  # sent until the scan was clean
    ticks: int  # keeper ticks (blocks) until no account was below MM
    cleared: bool  # False: still accounts below MM after max_ticks
    wall_ms: float  # from the round's price update to the clean scan


@dataclass
class VenueRun:
    """One venue through the replay; time series are per oracle round."""

    label: str
    deployment: Any
    manifest: dict  # what deploy.build_manifest records; the keeper runs from it
    seeded: Seeded
    keeper: Keeper
    market: Market  # at the opening
    ratio: list[np.ndarray] = field(default_factory=list)  # (n_accounts,) E / MM
    below_mm: list[int] = field(default_factory=list)
    shocks: list[Shock] = field(default_factory=list)
    tick_errors: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)  # keeper actions by outcome
    step_block: list[int] = field(default_factory=list)  # head once the keeper is done
    governor: Any = None  # RiskGovernor, when the keeper signs risk updates
    risk_updates: list[tuple[int, str, bool]] = field(default_factory=list)  # (step, why, ok)
    pokes: int = 0
    opening: dict[str, Any] = field(default_factory=dict)
    basis: BasisDesk | None = None  # the desk's hourly basis fills, with funding
    recalibrations: int = 0  # risk-engine calibrations the keeper's risk updater ran
    options: OptionsSeeded | None = None  # the option books, on a venue with an option book


@dataclass
class Replay:
    path: PricePath
    config: ReplayConfig
    venues: list[VenueRun]
    chain_start: int  # chain timestamp of the opening
    wall_seconds: float = 0.0
    seed_seconds: float = 0.0
    listing: Listing | None = None  # Ballast's opening listing, from the risk engine


def flat_rules(markets: tuple[devnet.MarketSpec, ...]) -> tuple[tuple, np.ndarray]:
    """The flat venue's listing: the same markets, floor 6.5%, no scenario shocks."""
    specs = tuple(
        devnet.MarketSpec(m.symbol, m.price_usd, FLAT_FLOOR_BPS, m.haircut_bps, m.token, m.perp)
        for m in markets
    )
    return specs, np.zeros((len(markets), MAX_SCENARIOS), dtype=np.int64)


def venue_config(
    markets: tuple[devnet.MarketSpec, ...],
    shocks_bps: np.ndarray,
    *,
    feeds: dict[str, str] | None = None,
    signers: tuple[str, ...] = (),
    threshold: int = 0,
    im_multiplier: float | None = None,
    vol_feed: bool = False,
    funding: tuple[int, float] | None = None,
    options: bool = False,
) -> deploy.DeployConfig:
    """A venue of the replay as a deploy config: the devnet's engine settings and policy,
    ``markets`` with their shocks, existing ``feeds`` (symbol -> address) when given, and a
    governor over ``signers`` (addresses) with the devnet's limits and bounds.
    ``im_multiplier``: IM / MM (the devnet's when None). ``vol_feed``: the devnet's vol feed
    (heartbeat, the underlyings among ``markets``) signed by the same ``signers``.
    ``funding``: (convergence hours, interest per hour) to switch on in every perp market,
    each capped at :func:`funding_cap` of its listing. ``options``: with the vol feed, an
    option book over it, each underlying's strike grid from its opening price
    (:func:`~offchain_risk.replay.options.option_grid`)."""
    local = deploy.local_config()
    im = local.im_multiplier if im_multiplier is None else im_multiplier
    vol = None
    if vol_feed and local.vol_feed is not None:
        symbols = {m.symbol for m in markets}
        underlyings = tuple(u for u in local.vol_feed.underlyings if u in symbols)
        if underlyings:
            vol = deploy.VolFeedConfig(signers, threshold, local.vol_feed.heartbeat, underlyings)
    grids = ()
    if options and vol is not None:
        prices = {m.symbol: m.price_usd for m in markets}
        grids = tuple(option_grid(u, prices[u]) for u in vol.underlyings)
    return deploy.DeployConfig(
        markets=tuple(
            deploy.MarketConfig(
                symbol=m.symbol,
                price=m.price_usd,
                floor_bps=m.floor_bps,
                haircut_bps=m.haircut_bps,
                shocks_bps=tuple(int(s) for s in row),
                token=m.token,
                feed=(feeds or {}).get(m.symbol),
                perp=m.perp,
                funding=funding_params(m, row, im, funding) if m.perp and funding else None,
            )
            for m, row in zip(markets, shocks_bps, strict=True)
        ),
        im_multiplier=im,
        price_band=local.price_band,
        deposit_cap_usd=local.deposit_cap_usd,
        account_cap_usd=local.account_cap_usd,
        oi_cap=local.oi_cap,
        debt_cap_usd=local.debt_cap_usd,
        heartbeat=local.heartbeat,
        policy=local.policy,
        signers=signers,
        threshold=threshold,
        vol_feed=vol,
        options=grids,
    )


def funding_params(
    market: devnet.MarketSpec, shocks_bps: np.ndarray, im_multiplier: float, funding: tuple
) -> FundingParams:
    """A replayed perp market's funding: ``funding`` = (convergence hours, interest per
    hour), the cap sized from the margin gap as dYdX sizes it (``cap_from_margin_gap``:
    600% of IM - MM of a naked unit per 8 hours, MM its worst shock or floor), at least the
    interest."""
    hours, interest = funding
    mm_bps = max(int(np.abs(np.asarray(shocks_bps)).max(initial=0)), market.floor_bps)
    cap = cap_from_margin_gap(mm_bps * WAD // BPS, to_wad(im_multiplier))
    return FundingParams(hours, to_wad(interest), max(cap, abs(to_wad(interest)), 1))


def isolated_im(seeded: Seeded, market: Market) -> np.ndarray:
    """(n_accounts,) WAD: the IM each book would need with every leg in its own
    sub-account (isolated margin), at ``market``."""
    k = market.n_assets
    rows_c, rows_s, owner = [], [], []
    for i, s in enumerate(seeded.specs):
        for a in range(k):
            if s.collateral[a]:
                rows_c.append(
                    [int(round(s.collateral[a] * 1e8)) * 10**10 if j == a else 0 for j in range(k)]
                )
                rows_s.append([0] * k)
                owner.append(i)
            if s.size[a]:
                rows_c.append([0] * k)
                rows_s.append(
                    [int(round(s.size[a] * 1e8)) * 10**10 if j == a else 0 for j in range(k)]
                )
                owner.append(i)
    n = len(owner)
    coll = np.array(rows_c, dtype=object).reshape(n, k)
    size = np.array(rows_s, dtype=object).reshape(n, k)
    zero = np.zeros((n, k), dtype=object)
    prices = np.array([int(p) for p in market.prices_wad], dtype=object)
    im = margin_exact(np.zeros(n, dtype=object), coll, size, zero, prices, market.params).im
    out = np.zeros(len(seeded.specs), dtype=object)
    for i, v in zip(owner, im, strict=True):
        out[i] += int(v)
    return out


def healths(engine: Any, accounts: list[int]) -> list[Any]:
    """``engine.healths`` for any number of accounts (100 per call)."""
    out = []
    for i in range(0, len(accounts), 100):
        out.extend(engine.healths(accounts[i : i + 100]))
    return out


def _rpc(w3: Any, method: str, params: list) -> Any:
    response = w3.provider.make_request(method, params)
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response.get("result")


def run_replay(
    project: Any,
    w3: Any,
    accounts: list[Any],
    path: PricePath,
    config: ReplayConfig,
    *,
    progress: Callable[[str, int], Any] | None = None,
) -> Replay:
    """Deploy, seed, and replay ``path`` with the keeper (see the module doc).

    ``accounts``: the node's test accounts: 0 owns the contracts and feeds the prices, 1
    is the desk, 2 and 3 are the venues' keepers, 4 relays signed risk updates, 5 and 6
    sign them (2 of 2), the rest are traders (at least one).
    ``progress(phase, n)`` is told of work done (``"seed"``: books, ``"replay"``: rounds).

    Every transaction from one key takes its nonce from one :class:`NonceSource`, whoever
    sends it: Ape (deployments, the relayer's signed updates), the raw sender (seeding, the
    feeder's prices, pokes) or a keeper's transaction manager.
    """
    if len(accounts) < 8:
        raise ValueError(
            "need at least eight test accounts: owner, desk, two keepers, a relayer, two risk "
            "signers, traders"
        )
    t_start = time.perf_counter()
    nonces = NonceSource(w3)
    accounts = [sourced_account(a, nonces) for a in accounts]
    owner, desk, relayer, traders = accounts[0], accounts[1], accounts[4], list(accounts[7:])
    risk_signers = sorted(accounts[5:7], key=lambda a: int(str(a), 16))
    keepers = [accounts[2], accounts[3]]
    opening = {a: float(p) for a, p in zip(path.assets, path.opening, strict=True)}
    # the window's first bar opens at path.opening_time - 1 h: data closed by then only
    window_start = path.opening_time - np.timedelta64(3600, "s")
    listing = calibrated_listing(opening, window_start, config.listing, config.data_dir)
    markets, shocks = listing.markets, listing.shocks_bps
    rules = [("Ballast", markets, shocks, listing.im_multiplier_wad / 1e18)]
    if config.baseline:
        rules.append(("flat 6.5%", *flat_rules(markets), None))
    specs = generate_books(
        config.n_accounts,
        path.assets,
        path.opening,
        tuple(a for a in COLLATERAL_ASSETS if a in path.assets),
        len(traders),
        config.seed,
    )
    sender = RawSender(w3, nonces=nonces)
    venues: list[VenueRun] = []
    feeds = None
    chain_id = int(w3.eth.chain_id)
    updaters = []
    vol_clock = HistoryClock(window_start, int(w3.eth.get_block("latest")["timestamp"]))
    for (label, venue_markets, venue_shocks, im), keeper_account in zip(
        rules, keepers, strict=False
    ):
        governed = config.risk_updates and label == "Ballast"
        cfg = venue_config(
            venue_markets,
            venue_shocks,
            im_multiplier=im,
            feeds=feeds,
            signers=tuple(str(a.address) for a in risk_signers) if governed else (),
            threshold=2 if governed else 0,
            vol_feed=governed and config.vol_updates,
            funding=(config.funding_hours, config.funding_interest) if config.funding else None,
            options=governed and config.vol_updates and config.option_books > 0,
        )
        vol_signers = risk_signers if cfg.vol_feed is not None else ()
        d, governor = deploy.deploy_config(
            project,
            owner,
            cfg,
            local=True,
            signers=risk_signers if governed else (),
            vol_signers=vol_signers,
        )
        manifest = deploy.build_manifest(
            d,
            governor,
            cfg,
            network="replay",
            chain_id=chain_id,
            block=int(w3.eth.block_number),
            deployer=str(owner.address),
            config_path=f"replay: {label}",
            signers=[str(a.address) for a in risk_signers] if governed else [],
            vol_signers=[str(a.address) for a in vol_signers],
        )
        feeds = feeds or {s: str(d.feeds[a].address) for s, a in d.symbols.items()}
        contracts = Contracts.from_manifest(project, w3, manifest)
        market = read_market(contracts)

        def tell(n: int) -> None:
            if progress is not None:
                progress("seed", n)

        seeded = seed(
            project,
            w3,
            d,
            market,
            specs,
            sender=sender,
            owner=owner,
            desk=desk,
            keeper=keeper_account,
            traders=traders,
            desk_cash_usd=config.desk_cash_usd,
            keeper_cash_usd=config.keeper_cash_usd,
            insurance_usd=config.insurance_usd,
            progress=tell,
        )
        updater = None
        if governor is not None:
            updater = risk_updater(
                governor, d, risk_signers, relayer, path, config, listing, window_start, w3
            )
            updaters.append(updater)
        store = Store(":memory:")
        tx = TxManager(w3, LocalSigner(keeper_account.private_key), store, nonces=nonces)
        vol_updater = None
        if "vol_feed" in manifest["contracts"]:
            # the keeper publishes surfaces fitted from the data its clock has reached
            vol_updater = build_vol_updater(
                project,
                w3,
                manifest,
                tx,
                vol_signers,
                data_dir=config.data_dir,
                history_time=vol_clock.history_time,
            )
        keeper = Keeper(
            contracts,
            store,
            # the gas token is priced by ETH's feed when ETH is replayed
            LiquidatorConfig(account=seeded.keeper, gas_asset=d.symbols.get("ETH", 0)),
            tx=tx,
            sender=str(keeper_account.address),
            start_block=seeded.first_block,
            risk_updater=updater,
            vol_updater=vol_updater,
        )
        basis = None
        if config.funding and config.basis:
            perps = [d.symbols[m.symbol] for m in venue_markets if m.perp]
            basis = BasisDesk(project, w3, d, desk, owner, perps, path.opening, sender)
            sender.check()
        venues.append(
            VenueRun(label, d, manifest, seeded, keeper, market, governor=governor, basis=basis)
        )
    seed_seconds = time.perf_counter() - t_start

    sender.add(relayer)
    # the opening: history at the window's start (the vol updater's first surfaces)
    vol_clock.anchor = int(w3.eth.get_block("latest")["timestamp"])
    for v in venues:
        v.keeper.tick()  # index the seeded books (and land the first scheduled risk update)
        if "option_book" in v.manifest["contracts"]:
            # on the curves the keeper's vol updater just published
            v.options = _seed_options(v, project, w3, path, config, sender, owner, desk, traders)
            v.keeper.tick()  # index the option books
        states = healths(v.deployment.engine, v.seeded.accounts)
        option_states = healths(v.deployment.engine, v.options.accounts if v.options else [])
        v.opening = {
            "im": sum(int(s.im) for s in states),
            "mm": sum(int(s.mm) for s in states),
            "equity": sum(int(s.equity) for s in states),
            "isolated_im": int(sum(isolated_im(v.seeded, v.market))),
            "insurance": int(v.deployment.engine.cash(0)),
            "option_ims": [int(s.im) for s in option_states],
            "block": int(w3.eth.block_number),
        }
    chain_start = int(w3.eth.get_block("latest")["timestamp"])
    for updater in updaters:
        updater.target.anchor(chain_start)  # from here the chain's clock is history's
    vol_clock.anchor = chain_start
    feeder_feeds = [feeds[a] for a in path.assets]
    premiums = None
    if venues[0].basis is not None:
        band = int(venues[0].deployment.engine.price_band()) / WAD
        premiums = basis_premiums(path, band, config.data_dir)
    last = 0
    for step in range(path.n_steps):
        dt = int(path.seconds[step]) - last
        last = int(path.seconds[step])
        _rpc(w3, "evm_increaseTime", [dt])
        t_round = time.perf_counter()
        answers = [int(round(float(p) * 10**8)) for p in path.prices[step]]
        for feed, answer in zip(feeder_feeds, answers, strict=True):
            sender.send(owner, _web3_feed(project, w3, feed), "set_price", [answer], "price")
        sender.check()
        prices_wad = np.array([a * 10**10 for a in answers], dtype=object)
        if premiums is not None and (step == 0 or path.bar[step] != path.bar[step - 1]):
            for v in venues:  # the hour's first round: the basis fills
                v.basis.trade(sender, int(path.bar[step]), prices_wad, premiums[step])
            sender.check()
        for v in venues:
            if v.governor is not None:
                # Open MM ramps move first, so the keeper's ticks below see (and restore)
                # every book they push under.
                _poke(v, project, w3, sender, relayer)
            _keep(v, step, path, config.max_ticks, t_round)
            if v.governor is not None:
                v.market = read_market(v.keeper.c)  # the risk parameters may have moved
            market = Market(
                prices_wad,
                np.ones(len(answers), dtype=bool),
                v.market.params,
                timestamp=int(w3.eth.get_block("latest")["timestamp"]),
            )
            equity, mm = _float_state(v, market)
            with np.errstate(divide="ignore", invalid="ignore"):
                v.ratio.append(np.where(mm > 0, equity / np.where(mm > 0, mm, 1), np.inf))
            v.below_mm.append(int(np.sum((equity < mm) & (mm > 0))))
            v.step_block.append(int(w3.eth.block_number))
        if progress is not None:
            progress("replay", 1)
    for v in venues:
        if v.keeper.risk_updater is not None:
            v.recalibrations = v.keeper.risk_updater.target.calibrations
    return Replay(
        path,
        config,
        venues,
        chain_start,
        time.perf_counter() - t_start,
        seed_seconds,
        listing,
    )


def _seed_options(
    v: VenueRun,
    project: Any,
    w3: Any,
    path: PricePath,
    config: ReplayConfig,
    sender: RawSender,
    owner: Any,
    desk: Any,
    traders: list[Any],
) -> OptionsSeeded | None:
    """Open ``config.option_books`` option books on ``v``'s option book, over the underlyings
    whose curves its keeper published (see :mod:`offchain_risk.replay.options`)."""
    published: dict[str, list[int]] = {}
    names = {a: s for s, a in v.deployment.symbols.items()}
    for _, res in v.keeper.vol_updater.runs:
        for update in res.published:
            published.setdefault(names[res.underlying], []).append(int(update.expiry))
    underlyings = tuple(u for u in path.assets if u in published)
    if not underlyings:
        return None
    opening = {a: float(p) for a, p in zip(path.assets, path.opening, strict=True)}
    per_trader = -(-len(v.seeded.specs) // len(traders))
    specs = generate_option_books(
        config.option_books, underlyings, opening, len(traders), first_sub=1 + per_trader
    )
    contracts = v.manifest["contracts"]
    return seed_options(
        project,
        w3,
        v.deployment,
        contracts["option_book"],
        contracts["vol_feed"],
        specs,
        published,
        sender=sender,
        owner=owner,
        desk=desk,
        traders=traders,
        desk_cash_usd=config.desk_cash_usd / 10,
    )


@dataclass
class HistoryClock:
    """History's time at a chain time: ``start`` at ``anchor``, then in step (the vol
    updater's data clock; before the anchor, ``start``)."""

    start: np.datetime64
    anchor: int

    def history_time(self, now: int) -> np.datetime64:
        elapsed = max(0, int(now) - self.anchor)
        return np.datetime64(self.start, "s") + np.timedelta64(elapsed, "s")


_FEEDS: dict[str, Any] = {}


def _web3_feed(project: Any, w3: Any, feed: Any) -> Any:
    key = str(getattr(feed, "address", feed))
    if key not in _FEEDS:
        _FEEDS[key] = web3_contract(project, w3, "MockAggregator", key)
    return _FEEDS[key]


def base_volatility(path: PricePath, days: int, data_dir: Any = None) -> np.ndarray:
    """(n_assets,) RMS log return per oracle round over the ``days`` of hourly history
    before the opening: the calm the keeper's risk updater measures jumps against."""
    from offchain_risk.data.loaders import load_panel

    end = path.opening_time - np.timedelta64(3600, "s")
    start = end - np.timedelta64(days, "D")
    panel = load_panel(path.assets, "1h", start, end, data_dir)
    hourly = np.sqrt(np.mean(np.diff(np.log(panel.close), axis=0) ** 2, axis=0))
    per_round = np.median(np.diff(path.seconds)) if path.n_steps > 1 else 3600
    return hourly * np.sqrt(per_round / 3600)


def risk_updater(
    governor: Any,
    d: Any,
    signers: list[Any],
    relayer: Any,
    path: PricePath,
    config: ReplayConfig,
    listing: Listing,
    window_start: np.datetime64,
    w3: Any,
) -> Any:
    """The keeper's risk updater for the replay: every chain hour, or on a doubling of
    volatility, the risk engine recalibrates on the data closed by the chain's clock
    (:class:`RecalibratingTarget`), the keeper scales those shocks by the realised
    volatility of the last six rounds over the calibration's forecast (at most twice), and
    signs the step 2 of 2 through the governor, which moves shocks one bucket's allowance at
    a time (10% of an asset's largest shock per one-hour bucket)."""
    from offchain_risk.keeper.risk_updater import RecalibratingTarget, RiskUpdater
    from offchain_risk.keeper.signer import ParamSet, RiskSigner

    signer = RiskSigner(governor, d.engine, d.liquidations, signers, relayer)
    assets = list(range(len(path.assets)))
    view = signer.view(assets)
    base = ParamSet.from_values(assets, view.current, [int(x) for x in view.global_current])
    horizon_h = config.listing.horizon.hours
    # fallback assets: the calm before the window, per round, stated over the horizon
    per_round = base_volatility(path, config.vol_days, config.data_dir)
    round_s = float(np.median(np.diff(path.seconds))) if path.n_steps > 1 else 3600.0
    fallback_vol = per_round * np.sqrt(horizon_h * 3600.0 / round_s)
    listed = {a: 1.0 for a in listing.calibrated}  # prices are not part of a calibration
    target = RecalibratingTarget(
        base,
        d.symbols,
        fallback_vol,
        horizon_h * 3600.0,
        listing.params,
        window_start,
        lambda asof: calibrated_listing(listed, asof, config.listing, config.data_dir).params,
        clock=lambda: float(w3.eth.get_block("latest")["timestamp"]),
        every_s=config.listing.recalibrate_hours * 3600.0,
    )
    return RiskUpdater(
        signer,
        target,
        interval=3600,
        vol_jump=2.0,
        short=6,
        clock=lambda: float(w3.eth.get_block("latest")["timestamp"]),
    )


def _poke(v: VenueRun, project: Any, w3: Any, sender: RawSender, relayer: Any) -> None:
    """Move every open MM ramp of the governor forward (anyone may; the relayer does)."""
    gov = web3_contract(project, w3, "RiskGovernor", v.governor.address)
    for asset in range(v.market.n_assets):
        try:
            gov.functions.poke(asset).call({"from": str(relayer.address)})
        except Exception:  # "governor: no ramp": nothing to move
            continue
        sender.send(relayer, gov, "poke", [asset], f"poke {asset}")
        v.pokes += 1
    sender.check()


def _float_state(v: VenueRun, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """(equity, mm) USD of the venue's seeded books from the keeper's own index."""
    equity, mm = float_margin(v.keeper.book, market)
    rows = [v.keeper.book.rows[a] for a in v.seeded.accounts]
    return equity[rows], mm[rows]


def _keep(v: VenueRun, step: int, path: PricePath, max_ticks: int, t_round: float) -> None:
    """Tick the venue's keeper until its scan is clean (or ``max_ticks``, or a tick that
    sends nothing while none of its liquidations is in flight)."""
    hit, sent, ticks, cleared = 0, 0, 0, False
    for ticks in range(1, max_ticks + 1):
        result = v.keeper.tick()
        if result.error is not None:
            v.tick_errors.append(f"round {step}: {result.error}")
            continue
        if result.risk_update is not None:
            update = result.risk_update
            v.risk_updates.append((step, update.reason, bool(update.landed)))
        confirmed = len(result.scan.confirmed)
        if ticks == 1:
            hit = confirmed
        sent += len(result.sent())
        # Everything the keeper's key sent this tick is mined before the next one, its vol
        # updates included: left in the pool past the round, they were mined after the next
        # round moved the clock an hour and reverted as expired.
        _mined(v.keeper.tx)
        for action in result.actions:
            v.outcomes[action.outcome] = v.outcomes.get(action.outcome, 0) + 1
        if confirmed == 0:
            if result.risk_update is not None and result.risk_update.landed:
                continue  # it landed after this tick's scan and may have raised MM
            cleared = True
            break
        if not result.sent() and not any(a.outcome == "in_flight" for a in result.actions):
            break  # nothing the keeper will do more of this round
    if hit:
        wall_ms = (time.perf_counter() - t_round) * 1e3
        v.shocks.append(Shock(step, path.times[step], hit, sent, ticks, cleared, wall_ms))


def _mined(tx: TxManager, timeout: float = 60.0) -> None:
    """Wait until the node has mined every transaction the keeper's key sent: its sends go
    out in one JSON-RPC batch, and anvil mines them one block each after the batch returns,
    so the next tick (the next block of the replay) would otherwise find some still in the
    pool and their accounts in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending, latest = rpc_batch(
            tx.w3,
            [("eth_getTransactionCount", [tx.address, tag]) for tag in ("pending", "latest")],
        )
        if pending == latest:
            return
        time.sleep(0.01)
