"""Trader books for a replay, opened through the real contracts.

:func:`generate_books` draws a population of sub-accounts (one margin domain each):

- ``naked``: one perp, isolated in its own sub-account, mostly long;
- ``over-levered``: a naked long opened at the edge of initial margin;
- ``pair``: long one asset, short a correlated one (long BTC / short ETH at a beta);
- ``collateral``: WETH or WBTC collateral with a short perp of the same asset;
- ``cross``: two to four perps of either side in one sub-account.

Each book holds ``IM * (1 + buffer)`` of equity at the opening prices under the rules of
the venue it is opened on, as a trader uses the leverage a venue allows. So the same
positions need more cash where the venue asks more margin of them.

:func:`seed` opens them on a deployment: the desk (market maker) deposits and signs one
maker order per market and side at the oracle price; each trader deposits cash and
collateral into its sub-account and fills its legs from those orders; a sub-account that
needed more cash while its hedge was half-built withdraws the excess. Every transaction
goes through the engine's and the order book's real checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain_risk.chain import Engine, account_id
from offchain_risk.keeper.rpc import web3_contract
from offchain_risk.keeper.scanner import Market
from offchain_risk.models.margin import margin_exact
from offchain_risk.replay.txs import RawSender
from offchain_risk.units import WAD

KINDS = ("naked", "over-levered", "pair", "collateral", "cross")
KIND_WEIGHTS = (0.38, 0.06, 0.16, 0.16, 0.24)
ORDER_EXPIRY = 2**40


@dataclass(frozen=True)
class BookSpec:
    """One sub-account's book. ``collateral``/``size``: (n_assets,) whole tokens and signed
    perp units; ``buffer``: equity over IM at the opening, as a fraction of IM."""

    kind: str
    trader: int  # index into the trader list
    sub: int
    collateral: tuple[float, ...]
    size: tuple[float, ...]
    buffer: float


def _units(x: float, decimals: int = 8) -> int:
    """Whole units to WAD, truncated to ``decimals`` places (8: WBTC's precision)."""
    return int(round(x * 10**decimals)) * 10 ** (18 - decimals)


def generate_books(
    n: int,
    assets: tuple[str, ...],
    prices: np.ndarray,
    collateral_assets: tuple[str, ...],
    n_traders: int,
    seed: int = 7,
    median_notional: float = 25_000.0,
) -> list[BookSpec]:
    """``n`` books over ``assets`` at ``prices`` (n_assets,) USD, spread over ``n_traders``
    owners (sub-accounts 1, 2, ...). Deterministic in ``seed``."""
    if n < 1 or n_traders < 1:
        raise ValueError("need at least one book and one trader")
    if len(assets) < 2:
        raise ValueError("books need at least two assets (hedges)")
    prices = np.asarray(prices, dtype=np.float64)
    if prices.shape != (len(assets),) or not np.all(np.isfinite(prices)) or (prices <= 0).any():
        raise ValueError("prices must be (n_assets,) positive and finite")
    rng = np.random.default_rng(seed)
    k = len(assets)
    # the majors trade most: BTC and ETH weigh 2, the rest 1
    pick = np.array([2.0 if a in ("BTC", "ETH") else 1.0 for a in assets])
    pick /= pick.sum()
    lead = assets.index("BTC") if "BTC" in assets else 0
    hedge = assets.index("ETH") if "ETH" in assets else (1 if lead == 0 else 0)
    coll_idx = [assets.index(a) for a in collateral_assets if a in assets]
    books = []
    for i in range(n):
        kind = str(rng.choice(KINDS, p=KIND_WEIGHTS))
        if kind == "collateral" and not coll_idx:
            kind = "pair"
        notional = float(np.clip(median_notional * rng.lognormal(0.0, 0.9), 2_000, 500_000))
        usd = np.zeros(k)  # signed perp notional per asset
        coll_usd = np.zeros(k)
        buffer = float(np.clip(rng.exponential(0.5) + 0.03, 0.03, 3.0))
        if kind in ("naked", "over-levered"):
            a = int(rng.choice(k, p=pick))
            usd[a] = notional if (kind == "over-levered" or rng.random() < 0.75) else -notional
            if kind == "over-levered":
                buffer = float(rng.uniform(0.0, 0.02))
        elif kind == "pair":
            beta = rng.uniform(0.6, 1.0)
            a, b = (lead, hedge) if rng.random() < 0.7 else (hedge, lead)
            usd[a], usd[b] = notional, -beta * notional
        elif kind == "collateral":
            a = int(rng.choice(coll_idx))
            coll_usd[a] = notional
            usd[a] = -rng.uniform(0.5, 1.0) * notional
        else:
            legs = rng.choice(k, size=int(rng.integers(2, min(4, k) + 1)), replace=False, p=pick)
            w = rng.dirichlet(np.ones(len(legs)))
            signs = np.where(rng.random(len(legs)) < 0.65, 1.0, -1.0)
            usd[legs] = signs * w * notional
        books.append(
            BookSpec(
                kind=kind,
                trader=i % n_traders,
                sub=1 + i // n_traders,
                collateral=tuple(float(x) for x in coll_usd / prices),
                size=tuple(float(x) for x in usd / prices),
                buffer=buffer,
            )
        )
    return books


@dataclass
class Seeded:
    """The books as opened on one deployment: ``accounts[i]`` holds ``specs[i]``."""

    specs: list[BookSpec]
    accounts: list[int]
    cash_wad: list[int]
    desk: int
    keeper: int
    transactions: int
    first_block: int
    last_block: int


def _wad_ints(values: list[tuple[float, ...]]) -> np.ndarray:
    return np.array([[_units(x) for x in row] for row in values], dtype=object)


def cash_plan(specs: list[BookSpec], market: Market) -> tuple[list[int], list[int]]:
    """(cash each book holds once open, cash it must deposit first), WAD, at ``market``'s
    prices and rules. The deposit covers IM at every step of the opening (collateral, then
    each leg in turn), so a hedge's first leg can be filled before its second."""
    n, k = len(specs), market.n_assets
    coll = _wad_ints([s.collateral for s in specs])  # (n, k)
    size = _wad_ints([s.size for s in specs])  # (n, k)
    zero = np.zeros((n, k), dtype=object)
    on = np.zeros((n, k), dtype=object)
    prices = np.array([int(p) for p in market.prices_wad], dtype=object)
    # open notional of a fill at the oracle price: size * price / WAD, rounded as the book does
    for j in range(k):
        on[:, j] = [
            (s * int(prices[j])) // WAD if s >= 0 else -((-s * int(prices[j])) // WAD)
            for s in size[:, j]
        ]
    zeros = np.zeros(n, dtype=object)
    final = margin_exact(zeros, coll, size, on, prices, market.params)
    buffers = np.array([s.buffer for s in specs])
    target = [
        max(0, int(im * (1 + b)) + WAD - int(e))
        for im, e, b in zip(final.im, final.equity, buffers, strict=False)
    ]
    need = list(target)
    partial_size, partial_on = zero.copy(), zero.copy()
    state = margin_exact(zeros, coll, zero, zero, prices, market.params)
    need = [
        max(t, int(im) - int(e) + WAD)
        for t, im, e in zip(need, state.im, state.equity, strict=False)
    ]
    for j in range(k):
        if not any(size[:, j]):
            continue
        partial_size[:, j], partial_on[:, j] = size[:, j], on[:, j]
        state = margin_exact(zeros, coll, partial_size, partial_on, prices, market.params)
        need = [
            max(t, int(im) - int(e) + WAD)
            for t, im, e in zip(need, state.im, state.equity, strict=False)
        ]
    return target, need


def seed(
    project: Any,
    w3: Any,
    deployment: Any,
    market: Market,
    specs: list[BookSpec],
    *,
    sender: RawSender,
    owner: Any,
    desk: Any,
    keeper: Any,
    traders: list[Any],
    desk_cash_usd: float,
    keeper_cash_usd: float,
    insurance_usd: float,
    progress: Any = None,
    chunk: int = 50,
) -> Seeded:
    """Open ``specs`` on ``deployment`` (see the module doc), ``chunk`` books per round of
    blocks; ``progress(n)`` is told of books opened."""
    d = deployment
    first_block = int(w3.eth.block_number) + 1

    engine = web3_contract(project, w3, "MarginEngine", d.engine.address)
    book = web3_contract(project, w3, "OrderBook", d.book.address)
    cash = web3_contract(project, w3, "MockToken", d.cash.address)
    tokens = {a: web3_contract(project, w3, "MockToken", t.address) for a, t in d.tokens.items()}
    decimals = {a: int(t.decimals()) for a, t in d.tokens.items()}
    for who in (owner, desk, keeper, *traders):
        sender.add(who)

    target, need = cash_plan(specs, market)
    usdc = 10**6

    def usdc_units(wad: int) -> int:
        return -((-wad) // 10**12)  # rounded up: a deposit never falls short of the plan

    # tokens: mint what each owner deposits, approve the engine once
    per_trader_cash = [0] * len(traders)
    per_trader_coll = [dict.fromkeys(tokens, 0) for _ in traders]
    coll_units = []
    for s, n in zip(specs, need, strict=True):
        per_trader_cash[s.trader] += usdc_units(n)
        units = {}
        for a in tokens:
            amount = int(round(s.collateral[a] * 10 ** decimals[a]))
            units[a] = amount
            per_trader_coll[s.trader][a] += amount
        coll_units.append(units)
    big = 2**255
    funding = [
        (desk, int(desk_cash_usd * usdc)),
        (keeper, int(keeper_cash_usd * usdc)),
        (owner, int(insurance_usd * usdc)),
    ]
    for who, amount in funding:
        sender.send(owner, cash, "mint", [str(who), amount], "mint")
        sender.send(who, cash, "approve", [d.engine.address, big], "approve")
    for who, amount in zip(traders, per_trader_cash, strict=True):
        sender.send(owner, cash, "mint", [str(who), amount], "mint")
        sender.send(who, cash, "approve", [d.engine.address, big], "approve")
        for a, token in tokens.items():
            units = per_trader_coll[traders.index(who)][a]
            if units:
                sender.send(owner, token, "mint", [str(who), units], "mint")
                sender.send(who, token, "approve", [d.engine.address, big], "approve")
    count = sender.check()
    desk_id, keeper_id = account_id(str(desk), 0), account_id(str(keeper), 0)
    sender.send(desk, engine, "deposit", [desk_id, cash.address, funding[0][1]], "desk deposit")
    sender.send(keeper, engine, "deposit", [keeper_id, cash.address, funding[1][1]], "keeper")
    if funding[2][1]:
        sender.send(owner, engine, "deposit", [0, cash.address, funding[2][1]], "insurance fund")
    count += sender.check()

    # one maker order per market and side, at the oracle price, sized for every fill
    client = Engine(d.engine, d.book)
    orders: dict[tuple[int, int], tuple[tuple, bytes]] = {}
    size_wad = _wad_ints([s.size for s in specs])  # (n, k)
    nonce = int(w3.eth.block_number) * 1_000
    for a in range(market.n_assets):
        for side in (1, -1):  # the taker's side
            total = sum(abs(int(x)) for x in size_wad[:, a] if int(x) * side > 0)
            if total == 0:
                continue
            nonce += 1
            order = client.order(
                desk, a, -side * total, int(market.prices_wad[a]), nonce, ORDER_EXPIRY
            )
            orders[(a, side)] = (Engine.order_tuple(order), client.sign(desk, order))

    accounts = []
    for i, s in enumerate(specs):
        who = traders[s.trader]
        acct = account_id(str(who), s.sub)
        accounts.append(acct)
        deposit = usdc_units(need[i])
        if deposit:
            sender.send(who, engine, "deposit", [acct, cash.address, deposit], f"book {i} cash")
        for a, units in coll_units[i].items():
            if units:
                sender.send(
                    who, engine, "deposit", [acct, tokens[a].address, units], f"book {i} coll"
                )
        for a in range(market.n_assets):
            amount = int(size_wad[i, a])
            if amount:
                order, sig = orders[(a, 1 if amount > 0 else -1)]
                sender.send(who, book, "fill", [order, sig, abs(amount), acct], f"book {i} fill")
        excess = deposit - usdc_units(target[i])
        if excess > 0:
            sender.send(who, engine, "withdraw", [acct, cash.address, excess], f"book {i} excess")
        if i % chunk == chunk - 1 or i == len(specs) - 1:
            count += sender.check()
            if progress is not None:
                progress(i % chunk + 1)
    return Seeded(
        specs=specs,
        accounts=accounts,
        cash_wad=[usdc_units(t) * 10**12 for t in target],
        desk=desk_id,
        keeper=keeper_id,
        transactions=count,
        first_block=first_block,
        last_block=int(w3.eth.block_number),
    )
