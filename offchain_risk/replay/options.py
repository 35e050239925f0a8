"""Option books in a replay, opened on Ballast's option book through the real contracts.

The books are the risk engine's option archetypes (``backtest.options.ARCHETYPES``: covered
call, short put, short straddle, delta-hedged short call) on the replayed underlyings the
vol feed carries (BTC and ETH), each on the listed expiry nearest 30 days out among the
curves the keeper's vol updater published at the opening, strikes at 90%, 100% and 110% of
the opening price rounded to the underlying's grid.

:func:`seed_options` lists those instruments (the owner: open-interest caps, then
``list_option``), and opens every book as a trader would: it deposits cash (and, for a
covered call, the underlying's collateral token), sells its options to the option desk (a
sub-account of the desk, buying at the mark of the published curve), buys a delta hedge in
the perp where the archetype has one, and withdraws its cash above ``IM * (1 + buffer)``,
read from the chain after the fills. The desk's perp orders of the linear books are not
touched: the option desk signs its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain_risk.backtest.options import ARCHETYPES, Leg
from offchain_risk.chain import Engine, account_id
from offchain_risk.deploy import OptionGridConfig
from offchain_risk.keeper.rpc import web3_contract
from offchain_risk.models.options import black76, price_exact
from offchain_risk.replay.funding import BASIS_SUB
from offchain_risk.replay.seed import ORDER_EXPIRY, _units
from offchain_risk.replay.txs import RawSender
from offchain_risk.units import DAY, WAD, to_wad

# the desk's sub-account that takes the other side of every option (next to its basis one)
OPTION_DESK_SUB = BASIS_SUB + 1
TENOR_DAYS = 30
VOL_SHOCK = 0.15  # the grid's vol move at 30 days (15 vol points)
SHORT_MIN_BPS = 50  # the short-option minimum, of the price per unit short
OPENING_CASH = 0.8  # cash deposited before the fills, of the book's notional (then trimmed)


@dataclass(frozen=True)
class OptionBookSpec:
    """One sub-account holding one archetype on one underlying: ``units`` of the
    underlying per leg of the archetype (a leg's own ``qty`` times it), equity over IM at
    the opening ``buffer`` (a fraction of IM)."""

    archetype: str
    underlying: str
    units: float
    trader: int  # index into the trader list
    sub: int
    buffer: float


@dataclass
class OptionsSeeded:
    """The option books as opened: ``accounts[i]`` holds ``specs[i]``."""

    specs: list[OptionBookSpec]
    accounts: list[int]
    expiry: dict[str, int]  # underlying -> the books' expiry
    instruments: dict[tuple[str, str, float], int]  # (underlying, call|put, moneyness) -> id
    prices: dict[str, float]  # underlying -> its opening price, USD


def strike_step(price: float) -> float:
    """The underlying's strike grid: the 1-2-5 step nearest below 1% of ``price``."""
    if not (price > 0 and math.isfinite(price)):
        raise ValueError("price must be positive and finite")
    base = 10.0 ** math.floor(math.log10(price / 100))
    return max(s * base for s in (1, 2, 5) if s * base <= price / 100)


def option_grid(symbol: str, price: float) -> OptionGridConfig:
    """The replay's grid of an underlying opening at ``price`` USD: :func:`strike_step`,
    :data:`VOL_SHOCK`, :data:`SHORT_MIN_BPS`."""
    return OptionGridConfig(symbol, to_wad(strike_step(price)), to_wad(VOL_SHOCK), SHORT_MIN_BPS)


def generate_option_books(
    n: int,
    underlyings: tuple[str, ...],
    prices: dict[str, float],
    n_traders: int,
    *,
    first_sub: int,
    seed: int = 11,
    median_notional: float = 25_000.0,
) -> list[OptionBookSpec]:
    """``n`` option books, archetypes and underlyings in turn (every archetype on every
    underlying once n allows), notionals lognormal around ``median_notional`` USD of the
    underlying, spread over ``n_traders`` owners from sub-account ``first_sub`` on.
    Deterministic in ``seed``."""
    if n < 0 or n_traders < 1:
        raise ValueError("need n >= 0 and at least one trader")
    if n and not underlyings:
        raise ValueError("option books need an underlying")
    missing = [u for u in underlyings if not prices.get(u, 0) > 0]
    if missing:
        raise ValueError(f"no opening price for {missing}")
    rng = np.random.default_rng(seed)
    kinds = list(ARCHETYPES)
    books = []
    for i in range(n):
        archetype = kinds[i % len(kinds)]
        underlying = underlyings[(i // len(kinds)) % len(underlyings)]
        notional = float(np.clip(median_notional * rng.lognormal(0.0, 0.7), 2_000, 250_000))
        books.append(
            OptionBookSpec(
                archetype=archetype,
                underlying=underlying,
                units=notional / prices[underlying],
                trader=i % n_traders,
                sub=first_sub + i // n_traders,
                buffer=float(np.clip(rng.exponential(0.5) + 0.05, 0.05, 2.0)),
            )
        )
    return books


def nearest_expiry(published: list[int], now: int, tenor_days: float = TENOR_DAYS) -> int:
    """The published expiry nearest ``now + tenor_days``."""
    live = [e for e in published if e > now]
    if not live:
        raise ValueError("no live expiry published for the option books")
    return min(live, key=lambda e: abs(e - now - tenor_days * DAY))


def _option_legs(spec: OptionBookSpec) -> list[Leg]:
    return [leg for leg in ARCHETYPES[spec.archetype] if leg.kind in ("call", "put")]


def seed_options(
    project: Any,
    w3: Any,
    deployment: Any,
    option_book: str,
    vol_feed: str,
    specs: list[OptionBookSpec],
    published: dict[str, list[int]],
    *,
    sender: RawSender,
    owner: Any,
    desk: Any,
    traders: list[Any],
    desk_cash_usd: float,
) -> OptionsSeeded:
    """Open ``specs`` (see the module doc). ``published``: underlying -> the expiries the
    vol feed holds curves for; ``option_book``, ``vol_feed``: their addresses."""
    d = deployment
    engine = web3_contract(project, w3, "MarginEngine", d.engine.address)
    book = web3_contract(project, w3, "OrderBook", d.book.address)
    options = web3_contract(project, w3, "OptionBook", option_book)
    feed = web3_contract(project, w3, "VolFeed", vol_feed)
    cash = web3_contract(project, w3, "MockToken", d.cash.address)
    now = int(w3.eth.get_block("latest")["timestamp"])
    usdc, big = 10**6, 2**255
    for who in (owner, desk, *traders):
        sender.add(who)
    prices = {
        u: int(d.feeds[d.symbols[u]].latestRoundData()[1]) * 10**10
        for u in {s.underlying for s in specs}
    }

    # Instruments: per underlying the expiry, the strikes on the book's grid, its listing
    # and open-interest cap; each priced at the published curve (the desk's premium).
    expiry: dict[str, int] = {}
    instruments: dict[tuple[str, str, float], int] = {}
    strikes: dict[int, int] = {}
    premiums: dict[int, int] = {}
    vols: dict[int, float] = {}
    used = sorted({(s.underlying, g.kind, g.strike) for s in specs for g in _option_legs(s)})
    for u in sorted(prices):
        asset, forward = d.symbols[u], prices[u]
        step = int(options.functions.grid(asset).call()[0])  # strikes on its multiples
        if step == 0:
            raise ValueError(f"the option book has no grid for {u}")
        expiry[u] = nearest_expiry(published.get(u, []), now)
        sender.send(owner, options, "set_oi_cap", [asset, expiry[u], 10**30], "oi cap")
        for _, kind, moneyness in (k for k in used if k[0] == u):
            strike = max(1, round(moneyness * forward / step)) * step
            call = kind == "call"
            sender.send(owner, options, "list_option", [asset, expiry[u], strike, call], "list")
            ident = int(options.functions.instrument_id(asset, expiry[u], strike, call).call())
            vol = int(feed.functions.vol(asset, expiry[u], strike).call()[0])
            if vol == 0:
                raise ValueError(f"no published vol for {u} {kind} at {moneyness:.0%}")
            instruments[(u, kind, moneyness)] = ident
            strikes[ident], vols[ident] = strike, vol / WAD
            premiums[ident] = price_exact(forward, strike, vol, expiry[u] - now, call, True)
    sender.check()

    # Each book: its option legs (sizes, WAD) and the perp delta that hedges them.
    sizes: list[dict[int, int]] = []
    hedges: list[int] = []
    for s in specs:
        opts = _option_legs(s)
        ids = [instruments[(s.underlying, g.kind, g.strike)] for g in opts]
        sizes.append({i: _units(g.qty * s.units) for i, g in zip(ids, opts, strict=True)})
        hedge = 0
        if any(g.delta_hedge for g in ARCHETYPES[s.archetype]):
            r = black76(
                prices[s.underlying] / WAD,
                np.array([strikes[i] / WAD for i in ids]),
                np.array([vols[i] for i in ids]),
                expiry[s.underlying] - now,
                np.array([g.kind == "call" for g in opts]),
            )
            hedge = _units(-sum(g.qty * s.units * dl for g, dl in zip(opts, r.delta, strict=True)))
            if hedge <= 0:
                raise ValueError(f"{s.archetype}: a hedge must be long the perp")
        hedges.append(hedge)

    # Cash: the option desk's, and each trader's deposits (trimmed after the fills).
    desk_id = account_id(str(desk), OPTION_DESK_SUB)
    desk_units = int(desk_cash_usd * usdc)
    sender.send(owner, cash, "mint", [str(desk), desk_units], "mint")
    sender.send(desk, cash, "approve", [d.engine.address, big], "approve")
    sender.send(desk, engine, "deposit", [desk_id, cash.address, desk_units], "option desk")
    deposits = [
        int(OPENING_CASH * s.units * prices[s.underlying] / WAD * usdc) + 1_000 * usdc
        for s in specs
    ]
    for t, who in enumerate(traders):
        amount = sum(dep for s, dep in zip(specs, deposits, strict=True) if s.trader == t)
        if amount:
            sender.send(owner, cash, "mint", [str(who), amount], "mint")
            sender.send(who, cash, "approve", [d.engine.address, big], "approve")
    sender.check()

    # One option-desk order per instrument (it buys every book's short) and per hedged
    # underlying (it sells the hedges), at the premium and the oracle price.
    client = Engine(d.engine, d.book)
    nonce = int(w3.eth.block_number) * 1_000 + 500_000
    totals: dict[int, int] = {}
    for legs in sizes:
        for ident, size in legs.items():
            totals[ident] = totals.get(ident, 0) - size  # the desk takes the other side
    perp_totals: dict[int, int] = {}
    for s, hedge in zip(specs, hedges, strict=True):
        asset = d.symbols[s.underlying]
        perp_totals[asset] = perp_totals.get(asset, 0) - hedge
    orders: dict[int, tuple[tuple, bytes]] = {}
    wanted = [(i, t, premiums[i]) for i, t in totals.items()]
    wanted += [(a, t, prices[u]) for u in prices if (t := perp_totals.get(a := d.symbols[u]))]
    for market, total, price in wanted:
        nonce += 1
        order = client.order(desk, market, total, price, nonce, ORDER_EXPIRY, OPTION_DESK_SUB)
        orders[market] = (Engine.order_tuple(order), client.sign(desk, order))

    accounts = []
    for i, s in enumerate(specs):
        who, asset = traders[s.trader], d.symbols[s.underlying]
        acct = account_id(str(who), s.sub)
        accounts.append(acct)
        sender.send(who, engine, "deposit", [acct, cash.address, deposits[i]], f"option {i}")
        spot = sum(g.qty for g in ARCHETYPES[s.archetype] if g.kind == "spot") * s.units
        if spot:
            token = web3_contract(project, w3, "MockToken", d.tokens[asset].address)
            amount = int(round(spot * 10 ** int(token.functions.decimals().call())))
            sender.send(owner, token, "mint", [str(who), amount], "mint")
            sender.send(who, token, "approve", [d.engine.address, big], "approve")
            sender.send(who, engine, "deposit", [acct, token.address, amount], f"option {i} coll")
        for market, size in [*sizes[i].items(), *([(asset, hedges[i])] if hedges[i] else [])]:
            order, sig = orders[market]
            sender.send(who, book, "fill", [order, sig, abs(size), acct], f"option {i} fill")
    sender.check()

    # Trim each book's cash to IM * (1 + buffer), as the chain values it after the fills.
    for s, acct in zip(specs, accounts, strict=True):
        equity, _mm, im = engine.functions.margin(acct).call()
        held = int(engine.functions.cash(acct).call())  # a covered call's equity is mostly coin
        excess = (min(int(equity) - int(int(im) * (1 + s.buffer)), held)) // 10**12 - 1
        if excess > 0:
            sender.send(traders[s.trader], engine, "withdraw", [acct, cash.address, excess], "trim")
    sender.check()
    usd = {u: p / WAD for u, p in prices.items()}
    return OptionsSeeded(specs, accounts, expiry, instruments, usd)
