"""The backtest frontier: peer rules swept over their levels on the random books."""

import numpy as np
import pytest

from offchain_risk.backtest import BacktestConfig
from offchain_risk.backtest.books import NOTIONAL_USD, fixed_random_weights
from offchain_risk.backtest.engine import BacktestResult
from offchain_risk.backtest.frontier import BacktestFrontier, SweepPoint, backtest_frontier
from offchain_risk.models.peers import peer_rules

ASSETS = ("BTC", "ETH", "BNB", "LINK")


def _result(n_random=60, n_steps=300, seed=1, n_random_cfg=None):
    cfg = BacktestConfig(stress_weight=0.0, n_random_books=n_random_cfg or n_random)
    rng = np.random.default_rng(seed)
    w = fixed_random_weights(n_random, len(ASSETS), cfg.seed) * NOTIONAL_USD
    expo = np.vstack([np.zeros((3, len(ASSETS))), w])  # archetypes first (flat here)
    vol = np.array([0.01, 0.013, 0.015, 0.02])
    moves = rng.standard_t(3, size=(n_steps, len(ASSETS))) * vol  # (n_steps, n_assets)
    loss = -(moves @ expo.T)  # (n_steps, n_books)
    gross = np.tile(np.abs(expo).sum(axis=1), (n_steps, 1))
    gross[:, :3] = 1.0
    ballast = np.tile(4.0 * np.sqrt((expo**2) @ vol**2), (n_steps, 1))
    ballast[:, :3] = 1.0  # the (flat) archetypes keep a floor
    margin = {m: ballast.copy() for m in ("ballast", "isolated", "flat", "synthetix")}
    times = np.datetime64("2021-01-01T00:00:00") + np.arange(n_steps) * np.timedelta64(1, "D")
    labels = ("a", "b", "c", *(f"random {i}" for i in range(n_random)))
    return BacktestResult(
        cfg,
        ASSETS,
        labels,
        times,
        margin,
        loss,
        np.zeros_like(loss),
        gross,
        np.ones(n_steps),
        np.ones(n_steps),
        np.zeros((n_steps, len(ASSETS), 16), dtype=np.int16),
    )


@pytest.fixture(scope="module")
def frontier():
    return backtest_frontier(_result())


def test_backtest_frontier__every_rule_monotone_in_its_level(frontier):
    rules = peer_rules(ASSETS)
    assert {p.rule for p in frontier.points} == {r.name for r in rules}
    for rule in rules:
        pts = [p for p in frontier.points if p.rule == rule.name]
        assert [p.level for p in pts] == list(rule.levels)
        margin = np.array([p.margin_pct for p in pts])
        rate = np.array([p.exceed_rate for p in pts])
        assert (np.diff(margin) > 0).all(), rule.name  # more level, more margin
        assert (np.diff(rate) <= 0).all(), rule.name  # ... never more exceedances
        assert rate[0] > rate[-1], rule.name  # and the sweep spans a range of coverage


def test_backtest_frontier__flat_point_is_its_rate_of_gross(frontier):
    flat = {p.level: p for p in frontier.points if p.rule == "flat % of gross"}
    assert flat[0.065].margin_pct == pytest.approx(6.5)


def test_backtest_frontier__equal_coverage_is_the_cheapest_scale_at_ballasts_rate():
    res = _result()
    f = backtest_frontier(res)
    loss = res.realised_loss[:, 3:]
    w = fixed_random_weights(60, len(ASSETS), res.config.seed) * NOTIONAL_USD
    gross = np.abs(w).sum(axis=1)
    b = f.ballast
    assert 0 < b.exceed_rate < 0.05
    for rule in peer_rules(ASSETS):
        mm, _ = rule.margin(w, np.zeros_like(w), rule.published)
        c = f.equal_coverage_pct[rule.name] / (100 * mm.sum() / gross.sum())
        assert (loss > (1 + 1e-9) * c * mm).mean() <= b.exceed_rate  # c from a % (rounding)
        assert (loss > 0.999 * c * mm).mean() > b.exceed_rate
        want = 1 - b.margin_pct / f.equal_coverage_pct[rule.name]
        assert f.saving_at_equal_coverage(rule.name) == pytest.approx(want)


def test_backtest_frontier__dominated_by_needs_both_less_margin_and_fewer_exceedances():
    b = SweepPoint("Ballast", 1.0, 10.0, 0.01)
    pts = [
        SweepPoint("r", 1, 9.0, 0.009),  # cheaper and safer: dominates
        SweepPoint("r", 2, 9.0, 0.011),  # cheaper, less safe
        SweepPoint("r", 3, 11.0, 0.005),  # safer, dearer
        SweepPoint("r", 4, 10.0, 0.005),  # same margin: does not dominate
    ]
    f = BacktestFrontier(pts, b, {}, 1, 1)
    assert f.dominated_by == [pts[0]]


def test_backtest_frontier__books_not_matching_the_config__refused():
    with pytest.raises(ValueError, match="random books"):
        backtest_frontier(_result(n_random_cfg=61))


def test_backtest_frontier__no_step_after_start__refused():
    with pytest.raises(ValueError, match="no backtest step"):
        backtest_frontier(_result(), start="2030-01-01")


def test_write_backtest_report__frontier_section_and_figure(tmp_path):
    from offchain_risk.report import write_backtest_report

    res = _result()
    text = write_backtest_report(res, tmp_path).read_text()
    f = backtest_frontier(res)
    assert "## Frontier: every peer rule over its own level" in text
    dydx = next(p for p in f.points if p.rule == "tiers (dYdX v4)" and p.level == 1.5)
    assert f"| tiers (dYdX v4) | 1.5 | {dydx.margin_pct:.2f}% |" in text
    assert (tmp_path / "frontier.png").stat().st_size > 0
