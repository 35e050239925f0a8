"""Capital-efficiency figures at equal coverage, on a hand-built backtest result."""

import numpy as np
import pytest

from offchain_risk.backtest import BacktestConfig
from offchain_risk.backtest.engine import BacktestResult
from offchain_risk.backtest.metrics import (
    efficiency_table,
    equal_coverage_factor,
    flat_rate_for_coverage,
)


def _result(seed=0, n_steps=400, n_random=4):
    rng = np.random.default_rng(seed)
    n_books = 3 + n_random
    gross = np.full((n_steps, n_books), 1e6)
    loss = rng.standard_t(3, size=(n_steps, n_books)) * 3e4
    loss[:, 2] = 0.0  # the riskless collateral-hedged book
    margin = {
        "ballast": np.full((n_steps, n_books), 9e4),
        "isolated": np.full((n_steps, n_books), 1.5e5),
        "flat": 0.065 * gross,
        "synthetix": np.full((n_steps, n_books), 1e4),
    }
    times = np.datetime64("2021-01-01T00:00:00") + np.arange(n_steps) * np.timedelta64(1, "D")
    labels = ("long BTC", "hedged", "riskless", *(f"random {i}" for i in range(n_random)))
    return BacktestResult(
        BacktestConfig(stress_weight=0.0),
        ("BTC", "ETH"),
        labels,
        times,
        margin,
        loss,
        np.zeros((n_steps, n_books)),
        gross,
        np.ones(n_steps),
        np.ones(n_steps),
        np.zeros((n_steps, 2, 16), dtype=np.int16),
    )


@pytest.mark.parametrize("method", ["flat", "synthetix"])
def test_equal_coverage_factor__smallest_factor_matching_ballast_rate(method):
    res = _result()
    cols = list(range(3, 7))
    c = equal_coverage_factor(res, method, cols)
    loss, m = res.realised_loss[:, cols], res.margin[method][:, cols]
    target = (loss > res.margin["ballast"][:, cols]).mean()
    assert 0 < target < 0.2
    assert (loss > c * m).mean() <= target
    assert (loss > 0.999 * c * m).mean() > target  # any smaller factor exceeds more often


def test_equal_coverage__flat_matches_flat_rate_for_coverage_and_riskless_is_na():
    res = _result()
    rows = {r.book: r for r in efficiency_table(res)}
    rand = rows["4 random books"]
    assert rand.equal_coverage_pct["flat"] == pytest.approx(flat_rate_for_coverage(res))
    # Ballast at a constant 9% against a flat rule rescaled to the same exceedance rate
    want = 1 - 9.0 / rand.equal_coverage_pct["flat"]
    assert rand.saving_vs_equal_coverage("flat") == pytest.approx(want)
    assert rows["riskless"].equal_coverage_pct["flat"] == 0.0
    assert np.isnan(rows["riskless"].saving_vs_equal_coverage("flat"))
