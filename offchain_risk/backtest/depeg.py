"""The quote asset's peg-loss term over a real depeg: what it costs and what it saves.

USDC traded at 0.8774 USD on 2023-03-11. The engine counts cash at par, so an account whose
equity is cash looks as healthy as the day before while its equity is worth 12% fewer USD.
The peg-loss term (``ledger._peg_margin``) adds ``cash * (max(1 - q, 0) + peg_rate)`` to IM.

Method (perp books funded in cash, held through the window, no rebalancing):

* Prices: hourly closes of the BTC and ETH perpetuals (``prices/1h``) and, for the quote,
  USDC's daily bars (``prices/1d/USDC.csv``: there is no hourly USDC file). Each hour takes
  the low of its day, so the worst print of the day holds for all of it (conservative).
* Books: the backtest's perp archetypes (long BTC; long BTC / short ETH, beta-hedged) and
  random BTC/ETH books (``backtest.books``), 1M USD gross each, margined with the local
  deployment's shocks and floors (``deployments/config/local.toml``).
* Each book opens at the window's first hour with exactly the IM its rule asks for: without
  the term ``cash = IM``; with a standing rate ``r``, ``cash = IM + r * cash``, so
  ``cash = IM / (1 - r)``.
* Every hour: token equity ``E = cash + PnL`` (what the engine sees: PnL is paid in quote
  tokens), USD equity ``q * E``, MM from the hour's prices. A book is *hidden short* when it
  is above MM at par but below it in USD; the *hidden shortfall* is the USD it lacks,
  ``MM - q * E``, that the engine does not see. The live term's *freeze* counts books it
  takes below IM (no new risk, no withdrawal) while the par rule would let them act.

Cost: the extra cash at open (``IM * r / (1 - r)``), per rate. Saving: the hidden shortfall
at the worst hour and the books it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.backtest.books import build_books, fixed_random_weights, portfolio_margin
from offchain_risk.data.loaders import load_bars, parse_time
from offchain_risk.deploy import local_config

ASSETS = ("BTC", "ETH")
START = "2023-03-09"
END = "2023-03-15"  # exclusive: through 2023-03-14
PEG_RATES_BPS = (0, 100, 300, 500)
N_RANDOM = 500
SEED = 7
BTC_ETH_BETA = 0.8  # USD of ETH short per USD of BTC long in the hedged archetype
HOUR = np.timedelta64(3600, "s")
DAY = np.timedelta64(86400, "s")


@dataclass(frozen=True)
class DepegRow:
    """One standing rate's figures over the window (USD; shares of the books)."""

    peg_rate_bps: int
    extra_cash_share: float  # extra cash at open / IM at open, summed over books
    hidden_books: int  # books above MM at par but below it in USD at the worst hour
    hidden_shortfall_usd: float  # sum of MM - q * E over those books at the worst hour
    frozen_books: int  # books the live term takes below IM at the worst hour (of n)
    live_term_usd: float  # the live term's IM at the worst hour, summed over books


@dataclass(frozen=True)
class DepegResult:
    start: str
    end: str
    n_books: int
    worst_hour: np.datetime64
    worst_quote: float
    im_open_usd: float  # sum of the books' IM at open
    rows: tuple[DepegRow, ...]

    def summary(self) -> str:
        lines = [
            f"{self.n_books} cash-funded perp books, {self.start} .. {self.end}; "
            f"worst hour {self.worst_hour} (USDC {self.worst_quote:.4f}); "
            f"IM at open {self.im_open_usd:,.0f} USD",
            "| peg rate | extra cash at open (of IM) | books hidden short | hidden shortfall (USD)"
            " | live term (USD) | books frozen by it |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.peg_rate_bps / 100:.0f}% | {r.extra_cash_share:.1%} | {r.hidden_books} | "
                f"{r.hidden_shortfall_usd:,.0f} | {r.live_term_usd:,.0f} | {r.frozen_books} |"
            )
        return "\n".join(lines)


def _closes(asset: str, start: np.datetime64, end: np.datetime64, data_dir) -> tuple:
    bars = load_bars(asset, "1h", data_dir)
    keep = (bars.timestamps >= start) & (bars.timestamps < end)
    return bars.timestamps[keep], bars.close[keep]


def run_depeg_study(
    start: str = START,
    end: str = END,
    peg_rates_bps: tuple[int, ...] = PEG_RATES_BPS,
    n_random: int = N_RANDOM,
    seed: int = SEED,
    data_dir=None,
) -> DepegResult:
    """The figures of RISK_MODEL.md's "The quote asset's depeg" (see the module docstring)."""
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is None or t1 is None or t1 <= t0:
        raise ValueError(f"bad window {start} .. {end}")
    if not all(0 <= r < 10_000 for r in peg_rates_bps):
        raise ValueError("peg rates are bps in [0, 10000)")
    times, btc = _closes("BTC", t0, t1, data_dir)
    times_eth, eth = _closes("ETH", t0, t1, data_dir)
    if len(times) == 0 or not np.array_equal(times, times_eth):
        raise ValueError("BTC and ETH hourly bars do not cover the same hours of the window")
    prices = np.column_stack([btc, eth])  # (n_hours, 2)
    usdc = load_bars("USDC", "1d", data_dir)
    day_of = (times - t0) // DAY  # (n_hours,) day index in the window
    day_low = {
        int((t - t0) // DAY): lo
        for t, lo in zip(usdc.timestamps, usdc.low, strict=True)
        if t0 <= t < t1
    }
    if len(day_low) != int((t1 - t0) // DAY):
        raise ValueError("USDC daily bars do not cover every day of the window")
    quote = np.array([day_low[int(d)] for d in day_of])  # (n_hours,)

    cfg = local_config()
    rows_of = [[m.symbol for m in cfg.markets].index(a) for a in ASSETS]
    shocks = cfg.shocks[rows_of]  # (2, 16)
    floors = np.array([cfg.markets[i].floor_bps for i in rows_of], dtype=np.float64)
    books = build_books(ASSETS, BTC_ETH_BETA, fixed_random_weights(n_random, len(ASSETS), seed))
    perp = [i for i, label in enumerate(books.labels) if "collateral" not in label]
    x0 = books.exposures[perp]  # (n_books, 2) USD at open
    units = x0 / prices[0]  # (n_books, 2) signed perp sizes
    n_books = len(perp)

    # (n_hours, n_books): PnL in quote tokens and MM at each hour's prices.
    pnl = np.einsum("ba,ha->hb", units, prices - prices[0])
    mm = np.stack(
        [
            portfolio_margin(
                type(books)(books.labels, np.maximum(units * p, 0), np.maximum(-units * p, 0)),
                shocks,
                floors,
            )
            for p in prices
        ]
    )
    im_open = mm[0] * cfg.im_multiplier  # (n_books,)
    # The worst hour: the largest hidden shortfall without the term.
    equity0 = im_open + pnl  # (n_hours, n_books)
    hidden0 = (equity0 >= mm) & (quote[:, None] * equity0 < mm)
    worst = int(np.argmax(np.where(hidden0, mm - quote[:, None] * equity0, 0.0).sum(axis=1)))
    live = max(1.0 - quote[worst], 0.0)
    rows = []
    for r_bps in peg_rates_bps:
        r = r_bps / 10_000
        cash = im_open / (1.0 - r)  # (n_books,)
        equity = cash + pnl  # (n_hours, n_books), tokens
        hidden = (equity >= mm) & (quote[:, None] * equity < mm)
        shortfall = np.where(hidden, mm - quote[:, None] * equity, 0.0)  # (n_hours, n_books)
        im_now = mm[worst] * cfg.im_multiplier
        at_par_ok = equity[worst] >= im_now + r * np.maximum(cash, 0)
        with_term = equity[worst] >= im_now + (r + live) * np.maximum(cash, 0)
        rows.append(
            DepegRow(
                peg_rate_bps=r_bps,
                extra_cash_share=float((cash - im_open).sum() / im_open.sum()),
                hidden_books=int(hidden[worst].sum()),
                hidden_shortfall_usd=float(shortfall[worst].sum()),
                frozen_books=int((at_par_ok & ~with_term).sum()),
                live_term_usd=float(live * np.maximum(cash, 0).sum()),
            )
        )
    return DepegResult(
        start=start,
        end=end,
        n_books=n_books,
        worst_hour=times[worst],
        worst_quote=float(quote[worst]),
        im_open_usd=float(im_open.sum()),
        rows=tuple(rows),
    )


if __name__ == "__main__":
    print(run_depeg_study().summary())
