"""Funding in a replay: what longs and shorts paid in each perp market, and its rate path.

Read from the keeper's index (docs/ARCHITECTURE.md#funding): every ``FundingSettled`` log
is a payment settled into cash; what is still unsettled at the end is each open position's
``owed(size, index now, snapshot)``, at the index the margin views use. A settlement is a
long's when what it paid has the sign of the index move since the position's previous
snapshot (a long pays what the index rises by), a short's otherwise. Every rounding of a
payment is against the account (the payer's ceiling, the receiver's floor), so what longs
and shorts paid sums to between 0 and one wei per rounding: the dust, left in the engine
as cash nobody can claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from offchain_risk.chain import Engine, account_id
from offchain_risk.data.loaders import DataNotFoundError, load_bars
from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.rpc import web3_contract
from offchain_risk.keeper.scanner import Market, funding_index
from offchain_risk.keeper.store import Store
from offchain_risk.models.funding import owed
from offchain_risk.replay.path import HOUR, PricePath
from offchain_risk.replay.txs import RawSender
from offchain_risk.report.tables import markdown_table
from offchain_risk.units import WAD

# Assets whose daily spot closes in the data folder are Binance's in USDT, the perps' quote
# (../shared/data/SOURCES.md: prices/1d); the others' daily files are USD aggregates, whose
# distance from a USDT perp is partly USDT's own price.
SPOT_USDT = ("BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE")
BASIS_LOT_USD = 50_000.0  # one basis fill per market and hour, at the opening price
BASIS_DESK_CASH_USD = 10_000_000.0  # the desk's basis sub-account
BASIS_SUB = 1  # the desk's sub-account that takes the basis lots


def basis_premiums(path: PricePath, band: float, data_dir: Any = None) -> np.ndarray:
    """(n_steps, n_assets) the premium over the oracle each round's basis fill prints at:
    the perp-over-spot basis (perp close / spot close - 1) at the last UTC midnight at or
    before the round, from the hourly perp bar and the daily spot bar that close there;
    clipped to half the price ``band`` (a fill beyond the band is refused). NaN for an
    asset without USDT spot closes (:data:`SPOT_USDT`) or before its first one."""
    out = np.full((path.n_steps, len(path.assets)), np.nan)
    day = np.timedelta64(1, "D")
    for j, asset in enumerate(path.assets):
        if asset not in SPOT_USDT:
            continue
        try:
            spot, perp = load_bars(asset, "1d", data_dir), load_bars(asset, "1h", data_dir)
        except DataNotFoundError:
            continue
        # the daily bar opened at D closes at D + 1 day, with the hourly bar opened at D + 23 h
        last_hour = spot.timestamps + (day - HOUR)
        i = np.searchsorted(perp.timestamps, last_hour).clip(max=len(perp.timestamps) - 1)
        valid = perp.timestamps[i] == last_hour
        closes_at = spot.timestamps[valid] + day
        basis = perp.close[i[valid]] / spot.close[valid] - 1.0
        k = np.searchsorted(closes_at, path.times, side="right") - 1  # (n_steps,)
        known = k >= 0
        out[known, j] = np.clip(basis[k[known]], -band / 2, band / 2)
    return out


class BasisDesk:
    """The desk trades the basis: once an hour in every perp market with a premium, its
    basis sub-account takes a lot from its main sub-account's order at the oracle price
    times one plus the premium, buying in even hours and selling in odd ones, so its
    position never exceeds one lot. The fills are the engine's funding samples:
    the premium the data shows between a USDT perp and its spot, paid as funding."""

    def __init__(
        self, project: Any, w3: Any, d: Any, desk: Any, owner: Any, perps: list[int],
        opening: np.ndarray, sender: RawSender,
    ) -> None:  # fmt: skip
        self.client = Engine(d.engine, d.book)
        self.book = web3_contract(project, w3, "OrderBook", d.book.address)
        self.desk, self.perps = desk, perps
        self.taker = account_id(str(desk), BASIS_SUB)
        self.lots = {a: int(round(BASIS_LOT_USD / float(opening[a]) * 1e8)) * 10**10 for a in perps}
        self.nonce = 2**64  # above the seeding orders' nonces
        cash = web3_contract(project, w3, "MockToken", d.cash.address)
        engine = web3_contract(project, w3, "MarginEngine", d.engine.address)
        amount = int(BASIS_DESK_CASH_USD * 10 ** int(cash.functions.decimals().call()))
        sender.send(owner, cash, "mint", [str(desk), amount], "basis cash")
        sender.send(desk, engine, "deposit", [self.taker, cash.address, amount], "basis deposit")

    def trade(
        self, sender: RawSender, hour: int, prices_wad: np.ndarray, premiums: np.ndarray
    ) -> None:
        """Queue this hour's basis fills (``premiums``: (n_assets,) fractions, NaN: none)."""
        side = 1 if hour % 2 == 0 else -1  # the basis sub-account's side
        for a in self.perps:
            if not np.isfinite(premiums[a]):
                continue
            price = int(prices_wad[a]) * int(round((1.0 + float(premiums[a])) * 1e9)) // 10**9
            self.nonce += 1
            order = self.client.order(self.desk, a, -side * self.lots[a], price, self.nonce, 2**40)
            sig = self.client.sign(self.desk, order)
            args = [Engine.order_tuple(order), sig, self.lots[a], self.taker]
            sender.send(self.desk, self.book, "fill", args, f"basis {a}")


@dataclass(frozen=True)
class FundingFlow:
    """One perp market's funding over a replay. Amounts are WAD cash, positive when paid
    and negative when received, settled and unsettled together."""

    symbol: str
    longs_paid: int
    shorts_paid: int
    roundings: int  # settlements that moved cash, and positions owing or owed at the end
    rates: tuple[int, ...]  # the rate in force after each Funding log, WAD per hour
    index_end: int  # WAD cash per unit of size, at the end

    @property
    def dust(self) -> int:
        """Paid minus received: the rounding left in the engine (0 <= dust <= roundings)."""
        return self.longs_paid + self.shorts_paid


def funding_flows(store: Store, book: Book, market: Market, symbols: dict[str, int]):
    """(FundingFlow per market whose funding ever moved, in asset order) at ``market``
    (read at the end of the replay: its prices and block time value the unsettled part)."""
    by_asset = {a: s for s, a in symbols.items()}
    events = store.funding_events()
    markets = sorted({e.market for e in events})
    paid = {m: [0, 0] for m in markets}  # [longs, shorts]
    roundings = dict.fromkeys(markets, 0)
    snap: dict[tuple[int, int], int] = {}
    for s in store.settlements():
        before = snap.get((s.account, s.market), 0)
        snap[(s.account, s.market)] = s.index
        if s.paid == 0 or s.market not in paid:
            continue
        long = (s.paid > 0) == (s.index > before)
        paid[s.market][0 if long else 1] += s.paid
        roundings[s.market] += 1
    index = funding_index(book, market)
    for rec in book.records.values():
        for m, (_, size, _) in rec.assets.items():
            if size == 0 or m not in paid:
                continue
            due = owed(size, int(index[m]), rec.snaps.get(m, 0))
            paid[m][0 if size > 0 else 1] += due
            roundings[m] += 1
    return tuple(
        FundingFlow(
            symbol=by_asset.get(m, str(m)),
            longs_paid=paid[m][0],
            shorts_paid=paid[m][1],
            roundings=roundings[m],
            rates=tuple(e.rate for e in events if e.market == m),
            index_end=int(index[m]),
        )
        for m in markets
    )


def funding_lines(venues: list[tuple[str, tuple[FundingFlow, ...]]]) -> list[str]:
    """The report's "Funding" section: one table per venue."""
    lines = [
        "## Funding",
        "",
        "Each perp market pays funding between longs and shorts (docs/ARCHITECTURE.md, "
        "Funding): an hourly rate of the size-weighted premium of fills over the oracle paid "
        "off over the convergence period, plus the interest term, within the cap. The "
        f"premium comes from the data: once an hour the desk trades a ${BASIS_LOT_USD:,.0f} "
        "basis lot in "
        "each market with USDT spot closes in the data folder (BTC, ETH, BNB, SOL, DOGE) "
        "at the oracle times one plus the perp-over-spot basis of the last UTC midnight "
        "(Binance perp close over Binance spot close; within half the price band). "
        "Elsewhere the rate is the interest term: the seeding orders and the keeper's "
        "liquidations trade at the oracle and sample no premium. Paid "
        "counts settled and still unsettled funding; a negative amount is received. Every "
        "rounding is against the account, so paid minus received (the dust, left in the "
        "engine) is between 0 and one wei per rounding.",
        "",
    ]
    for label, flows in venues:
        lines += [f"### {label}", ""]
        if not flows:
            lines += ["No market's funding moved.", ""]
            continue
        rows = []
        for f in flows:
            rates = np.array(f.rates, dtype=np.float64) / WAD * 100  # % per hour
            rows.append(
                [
                    f.symbol,
                    f"${f.longs_paid / WAD:,.2f}",
                    f"${f.shorts_paid / WAD:,.2f}",
                    f"{f.dust} wei (<= {f.roundings})",
                    f"{rates.min():.5f} / {rates.mean():.5f} / {rates.max():.5f}",
                    str(len(f.rates)),
                    f"${f.index_end / WAD:,.4f}",
                ]
            )
        lines.append(
            markdown_table(
                [
                    "market",
                    "longs paid",
                    "shorts paid",
                    "dust",
                    "rate %/h (min / mean / max)",
                    "Funding logs",
                    "index at the end (per unit)",
                ],
                rows,
            )
        )
        lines.append("")
    return lines
