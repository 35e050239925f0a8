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

import numpy as np

from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.scanner import Market, funding_index
from offchain_risk.keeper.store import Store
from offchain_risk.models.funding import owed
from offchain_risk.report.tables import markdown_table
from offchain_risk.units import WAD


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
        "replay's fills are the seeding desk's orders at the oracle price and the keeper's "
        "liquidations, which sample no premium, so the rate is the interest term. Paid "
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
