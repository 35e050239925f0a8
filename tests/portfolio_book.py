"""The differential driver shared by the devnet (ape) and in-process (titanoboa) tests.

`run_example` builds random portfolios through a `Venue` (real transactions against the
engine) while a `Book` keeps the twin's own record of every balance from the fills it
saw succeed, never from the contract's storage. At the end the twin's `margin_exact`
must equal the engine's equity, MM and IM to the wei, and every balance must match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from hypothesis import strategies as st

from offchain_risk.models.margin import RiskParams, apply_trade, margin_exact
from offchain_risk.units import MAX_SCENARIOS as K
from offchain_risk.units import WAD

ETH, BTC, SOL, LINK = 0, 1, 2, 3
MARKETS = (ETH, BTC, SOL, LINK)
BASE_USD = {ETH: 2_000, BTC: 60_000, SOL: 150, LINK: 15}
FEED_UNIT = 10**10  # 8-decimal feeds: WAD prices are multiples of 10**10


class Venue(Protocol):
    """What the driver needs from a deployed engine (see the two test modules)."""

    def set_price(self, market: int, price_wad: int) -> None: ...
    def set_risk(self, market: int, shocks: list[int], floor: int, haircut: int) -> None: ...
    def set_im_multiplier(self, wad: int) -> None: ...
    def deposit(self, account: int, token: str, amount: int) -> None: ...
    def fill(self, maker: int, taker: int, market: int, size: int, price: int, nonce: int) -> bool:
        """True when filled, False when refused for margin (any other revert raises)."""

    def read(self, account: int) -> tuple[int, list[tuple[int, int]], int, int, int]:
        """(cash, [(size, open_notional)] per market, equity, mm, im)."""


@dataclass
class Book:
    cash: dict[int, int] = field(default_factory=dict)
    coll: dict[tuple[int, int], int] = field(default_factory=dict)
    pos: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    def deposit_cash(self, account: int, wad: int) -> None:
        self.cash[account] = self.cash.get(account, 0) + wad

    def deposit(self, account: int, market: int, wad: int) -> None:
        self.coll[(account, market)] = self.coll.get((account, market), 0) + wad

    def fill(self, maker: int, taker: int, market: int, maker_size: int, price: int) -> None:
        quote = abs(maker_size) * price // WAD
        maker_flow = -quote if maker_size > 0 else quote
        for account, d, flow in (
            (maker, maker_size, maker_flow),
            (taker, -maker_size, -maker_flow),
        ):
            s, on = self.pos.get((account, market), (0, 0))
            s, on, self.cash[account] = apply_trade(s, on, self.cash.get(account, 0), d, flow)
            self.pos[(account, market)] = (s, on)

    def positions(self, account: int) -> list[tuple[int, int]]:
        return [self.pos.get((account, m), (0, 0)) for m in MARKETS]

    def margin(self, accounts: list[int], prices: list[int], params: RiskParams):
        return margin_exact(
            np.array([self.cash.get(a, 0) for a in accounts], dtype=object),
            [[self.coll.get((a, m), 0) for m in MARKETS] for a in accounts],
            [[p[0] for p in self.positions(a)] for a in accounts],
            [[p[1] for p in self.positions(a)] for a in accounts],
            prices,
            params,
        )


@dataclass(frozen=True)
class Example:
    deposits: tuple[int, int, int]  # USDC (whole), WETH (whole), WBTC (sats)
    steps: list[tuple[int, int, int, int | None]]  # market, size, price offset bps, move
    shocks: np.ndarray  # (4, 32) bps
    floors: list[int]
    haircuts: list[int]
    im_multiplier: int
    final_moves: list[int]


def _shock_rows(drawn: tuple[list[int], bool]) -> np.ndarray:
    """(4, 32) bps; with the flag, a K = 16 set: the second shock word of every asset zero."""
    values, k16 = drawn
    rows = np.array(values, dtype=np.int64).reshape(4, K)
    if k16:
        rows[:, K // 2 :] = 0
    return rows


price_move = st.integers(-6_000, 9_000)  # bps of the base price: 0.4x .. 1.9x
examples = st.builds(
    Example,
    deposits=st.tuples(st.integers(0, 200_000), st.integers(0, 40), st.integers(0, 3 * 10**8)),
    steps=st.lists(
        st.tuples(
            st.sampled_from(MARKETS),
            st.integers(-400, 400),  # hundredths of a 1,000 USD notional
            st.integers(-400, 400),  # fill price offset from the oracle, bps (band is 500)
            st.one_of(st.none(), price_move),  # then move this market's oracle
        ),
        min_size=1,
        max_size=6,
    ),
    shocks=st.tuples(
        st.lists(st.integers(-10_000, 32_767), min_size=4 * K, max_size=4 * K), st.booleans()
    ).map(_shock_rows),
    floors=st.lists(st.integers(0, 10_000), min_size=4, max_size=4),
    haircuts=st.lists(st.integers(0, 9_999), min_size=4, max_size=4),
    im_multiplier=st.integers(WAD, 10 * WAD),
    final_moves=st.lists(price_move, min_size=4, max_size=4),
)


def price_wad(market: int, move_bps: int) -> int:
    return BASE_USD[market] * (10_000 + move_bps) * WAD // 10_000 // FEED_UNIT * FEED_UNIT


def run_example(venue: Venue, me: int, them: int, ex: Example) -> None:
    """Build `me` (random book) against `them` (a deep market maker), then compare."""
    book = Book()
    venue.set_im_multiplier(WAD)  # let the fills through; the real one is drawn below
    prices = {m: price_wad(m, 0) for m in MARKETS}
    for m in MARKETS:
        venue.set_price(m, prices[m])
    venue.deposit(them, "USDC", 10**8 * 10**6)
    book.deposit_cash(them, 10**8 * WAD)
    usdc, weth, wbtc_sats = ex.deposits
    if usdc:
        venue.deposit(me, "USDC", usdc * 10**6)
        book.deposit_cash(me, usdc * WAD)
    if weth:
        venue.deposit(me, "WETH", weth * WAD)
        book.deposit(me, ETH, weth * WAD)
    if wbtc_sats:
        venue.deposit(me, "WBTC", wbtc_sats)
        book.deposit(me, BTC, wbtc_sats * 10**10)

    for nonce, (market, hundredths, offset_bps, move) in enumerate(ex.steps):
        size = hundredths * 10 * WAD * WAD // prices[market]  # maker's signed size
        price = prices[market] * (10_000 + offset_bps) // 10_000
        if size and venue.fill(them, me, market, size, price, nonce):
            book.fill(them, me, market, size, price)
        if move is not None:
            prices[market] = price_wad(market, move)
            venue.set_price(market, prices[market])

    for i, m in enumerate(MARKETS):
        venue.set_risk(m, [int(s) for s in ex.shocks[i]], ex.floors[i], ex.haircuts[i])
        prices[m] = price_wad(m, ex.final_moves[i])
        venue.set_price(m, prices[m])
    venue.set_im_multiplier(ex.im_multiplier)

    params = RiskParams(
        floor_bps=np.array(ex.floors),
        haircut_bps=np.array(ex.haircuts),
        shocks_bps=ex.shocks,
        im_multiplier_wad=ex.im_multiplier,
    )
    twin = book.margin([me, them], [prices[m] for m in MARKETS], params)
    for i, account in enumerate((me, them)):
        cash, positions, equity, mm, im = venue.read(account)
        assert cash == book.cash.get(account, 0)
        assert positions == book.positions(account)
        assert (equity, mm, im) == (twin.equity[i], twin.mm[i], twin.im[i])
