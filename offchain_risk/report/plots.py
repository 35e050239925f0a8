"""PNG figures for the backtest report (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from offchain_risk.backtest.engine import CRASH_WINDOWS, BacktestResult
from offchain_risk.backtest.frontier import BacktestFrontier
from offchain_risk.backtest.metrics import EfficiencyRow

METHOD_LABELS = {
    "ballast": "Ballast (K scenarios)",
    "isolated": "isolated per position",
    "flat": "flat 6.5%",
    "synthetix": "size-scaled (Synthetix-style)",
}


def plot_margin_vs_loss(result: BacktestResult, book: int, path: Path) -> Path:
    """Margin and realised next-horizon loss of one book, as % of its gross notional."""
    t = result.times.astype("datetime64[D]").astype(object)
    g = result.gross[:, book]
    mm = 100 * result.margin["ballast"][:, book] / g
    loss = 100 * result.realised_loss[:, book] / g
    exc = loss > mm
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(t, mm, color="tab:blue", lw=1.0, label="MM (% of gross)")
    ax.plot(t, loss, color="0.55", lw=0.5, label=f"realised {result.config.horizon_hours} h loss")
    ax.scatter(
        np.array(t)[exc],
        loss[exc],
        color="tab:red",
        s=14,
        zorder=3,
        label=f"exceedance ({int(exc.sum())})",
    )
    for lo, hi in CRASH_WINDOWS.values():
        ax.axvspan(
            np.datetime64(lo).astype(object),
            np.datetime64(hi).astype(object),
            color="tab:orange",
            alpha=0.15,
            lw=0,
        )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(f"{result.labels[book]}: maintenance margin vs realised loss")
    ax.set_ylabel("% of gross notional")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_efficiency(rows: list[EfficiencyRow], path: Path) -> Path:
    """Mean margin as % of gross per book group and method (grouped bars)."""
    methods = list(METHOD_LABELS)
    x = np.arange(len(rows))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, m in enumerate(methods):
        vals = [r.mm_pct[m] for r in rows]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, vals, width, label=METHOD_LABELS[m])
    ax.set_xticks(x, [r.book for r in rows], fontsize=8)
    ax.set_ylabel("mean margin, % of gross notional")
    ax.set_title("Capital efficiency (out of sample)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_random_exceedances(result: BacktestResult, path: Path) -> Path:
    """Share of the random books whose realised loss exceeded MM, per rebalance day."""
    first = result.n_archetypes
    share = 100 * result.exceedances()[:, first:].mean(axis=1)
    t = result.times.astype("datetime64[D]").astype(object)
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(t, share, color="tab:red", lw=0.8)
    ax.set_ylabel("% of random books exceeding MM")
    ax.set_title("Random multi-asset books: daily exceedance share")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_backtest_frontier(frontier: BacktestFrontier, path: Path) -> Path:
    """Mean margin against exceedance rate: a line per peer rule over its levels, Ballast's
    point, on the random books."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for rule in dict.fromkeys(p.rule for p in frontier.points):
        pts = [p for p in frontier.points if p.rule == rule]
        ax.plot(
            [p.margin_pct for p in pts],
            [100 * p.exceed_rate for p in pts],
            marker="o",
            ms=3,
            lw=1.2,
            label=rule,
        )
    b = frontier.ballast
    ax.plot(b.margin_pct, 100 * b.exceed_rate, "k*", ms=16, label="Ballast")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 3 * b.margin_pct)  # the sweeps reach far beyond the region that matters
    ax.set_xlabel("mean margin, % of gross notional")
    ax.set_ylabel("exceedance rate, % of book-days")
    ax.set_title(f"Random books: margin against exceedances ({frontier.n_steps} days)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
