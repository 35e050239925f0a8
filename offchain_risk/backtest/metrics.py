"""Coverage, crash-window and capital-efficiency figures from a ``BacktestResult``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offchain_risk.backtest.books import FLAT_RATE
from offchain_risk.backtest.engine import CRASH_WINDOWS, METHODS, BacktestResult

OOS_START = "2021-01-01"


@dataclass(frozen=True)
class CoverageRow:
    book: str
    n_obs: int
    n_exceed: int
    rate: float
    model_level: float
    kupiec_lr: float  # against the tested level (config.tested_level)
    kupiec_p: float
    kupiec_model_lr: float  # against the model level (nan when the model gives zero)
    kupiec_model_p: float
    christoffersen_lr: float
    christoffersen_p: float


@dataclass(frozen=True)
class RandomCoverage:
    n_books: int
    n_obs: int  # per book
    pooled_rate: float
    model_level: float  # mean model exceedance probability over books and steps
    share_kupiec_ok: float  # share of books with Kupiec p > 0.05 against the tested level
    share_kupiec_model_ok: float  # ... against the book's own model level
    share_christoffersen_ok: float
    rate_by_method: dict[str, float]


@dataclass(frozen=True)
class CrashRow:
    window: str
    book: str
    n_steps: int
    n_exceed: int
    max_loss_over_mm: float  # largest realised loss / MM in the window
    worst_time: str


EQUAL_COVERAGE_METHODS = ("flat", "synthetix")


@dataclass(frozen=True)
class EfficiencyRow:
    book: str
    mm_pct: dict[str, float]  # method -> mean margin as % of gross notional
    exceed_rate: dict[str, float]  # method -> exceedance rate
    # method -> mean margin (% of gross) of that rule multiplied by the smallest factor that
    # brings its exceedance rate on these books down to (or below) Ballast's
    equal_coverage_pct: dict[str, float] = field(default_factory=dict)

    def saving_vs(self, method: str) -> float:
        """1 - Ballast / method (0.4 = 40% less margin)."""
        return 1.0 - self.mm_pct["ballast"] / self.mm_pct[method]

    def saving_vs_equal_coverage(self, method: str) -> float:
        """1 - Ballast / (method rescaled to Ballast's exceedance rate); nan if that is 0."""
        other = self.equal_coverage_pct[method]
        return 1.0 - self.mm_pct["ballast"] / other if other > 0 else float("nan")


def coverage_table(result: BacktestResult, start: str = OOS_START) -> list[CoverageRow]:
    steps = result.mask(start)
    rows = []
    for b in range(result.n_archetypes):
        t = result.coverage_tests(b, steps)
        km = t.kupiec_model
        rows.append(
            CoverageRow(
                result.labels[b],
                t.n_obs,
                t.n_exceed,
                t.n_exceed / t.n_obs,
                t.model_level,
                t.kupiec_nominal.statistic,
                t.kupiec_nominal.p_value,
                np.nan if km is None else km.statistic,
                np.nan if km is None else km.p_value,
                t.christoffersen.statistic,
                t.christoffersen.p_value,
            )
        )
    return rows


def random_coverage(result: BacktestResult, start: str = OOS_START) -> RandomCoverage:
    steps = result.mask(start)
    first = result.n_archetypes
    n_books = len(result.labels) - first
    ok = np.empty((n_books, 3), dtype=bool)  # Kupiec nominal, Kupiec model, Christoffersen
    for i in range(n_books):
        t = result.coverage_tests(first + i, steps)
        ok[i] = (
            t.kupiec_nominal.p_value > 0.05,
            t.kupiec_model is None or t.kupiec_model.p_value > 0.05,
            t.christoffersen.p_value > 0.05,
        )
    rates = {m: float(result.exceedances(m)[steps, first:].mean()) for m in METHODS}
    share = ok.mean(axis=0)
    return RandomCoverage(
        n_books,
        int(steps.sum()),
        rates["ballast"],
        float(result.model_exceed_prob[steps, first:].mean()),
        float(share[0]),
        float(share[1]),
        float(share[2]),
        rates,
    )


def crash_table(result: BacktestResult) -> list[CrashRow]:
    rows = []
    exc = result.exceedances()
    ratio = result.realised_loss / result.margin["ballast"]  # (n_steps, n_books)
    groups = [(result.labels[b], [b]) for b in range(result.n_archetypes)]
    groups.append(("random books (worst)", list(range(result.n_archetypes, len(result.labels)))))
    for name, (lo, hi) in CRASH_WINDOWS.items():
        steps = result.mask(lo, hi)
        if not steps.any():
            continue
        for label, cols in groups:
            r = ratio[np.ix_(steps, cols)]
            t, _ = np.unravel_index(np.argmax(r), r.shape)
            rows.append(
                CrashRow(
                    name,
                    label,
                    int(steps.sum()),
                    int(exc[np.ix_(steps, cols)].sum()),
                    float(r.max()) + 0.0,  # -0.0 (flat books) prints as 0.00
                    str(result.times[steps][t])[:13],
                )
            )
    return rows


def efficiency_table(result: BacktestResult, start: str = OOS_START) -> list[EfficiencyRow]:
    steps = result.mask(start)
    first = result.n_archetypes
    groups = [(result.labels[b], [b]) for b in range(first)]
    groups.append(
        (f"{len(result.labels) - first} random books", list(range(first, len(result.labels))))
    )
    rows = []
    for label, cols in groups:
        g = result.gross[np.ix_(steps, cols)].sum()
        pct = {m: 100.0 * result.margin[m][np.ix_(steps, cols)].sum() / g for m in METHODS}
        rate = {m: float(result.exceedances(m)[np.ix_(steps, cols)].mean()) for m in METHODS}
        eq = {
            m: pct[m] * equal_coverage_factor(result, m, cols, start)
            for m in EQUAL_COVERAGE_METHODS
        }
        rows.append(EfficiencyRow(label, pct, rate, eq))
    return rows


def equal_coverage_factor(
    result: BacktestResult, method: str, cols: list[int], start: str = OOS_START
) -> float:
    """Smallest factor c >= 0 such that ``c * margin[method]`` is exceeded on these books no
    more often than Ballast's MM (pooled over ``cols`` and the steps from ``start``).

    The rescaled rule ``c * margin`` is exceeded when ``loss / margin > c``; with x Ballast
    exceedances among the n observations, c is the (x + 1)-th largest ``loss / margin`` (so
    exactly x observations lie above it, barring ties), and 0 when the books never lose.
    """
    steps = result.mask(start)
    loss = result.realised_loss[np.ix_(steps, cols)]
    x = int(result.exceedances()[np.ix_(steps, cols)].sum())
    return coverage_factor(loss, result.margin[method][np.ix_(steps, cols)], x)


def coverage_factor(loss: np.ndarray, margin: np.ndarray, n_exceed: int) -> float:
    """Smallest c >= 0 with ``loss > c * margin`` on at most ``n_exceed`` observations: the
    ``(n_exceed + 1)``-th largest ``loss / margin``; 0 when that is never positive."""
    ratio = np.sort((np.asarray(loss) / np.asarray(margin)).ravel())
    if n_exceed >= ratio.size:
        return 0.0
    return max(0.0, float(ratio[ratio.size - n_exceed - 1]))


def flat_rate_for_coverage(result: BacktestResult, start: str = OOS_START) -> float:
    """Smallest flat % of gross whose random-book exceedance rate is <= Ballast's."""
    cols = list(range(result.n_archetypes, len(result.labels)))
    return 100.0 * FLAT_RATE * equal_coverage_factor(result, "flat", cols, start)
