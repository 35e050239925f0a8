"""Stressed-period component: selection without look-ahead, mixture weights, coverage."""

import numpy as np
import pytest

from offchain_risk.backtest import BacktestConfig, run_backtest
from offchain_risk.data.loaders import GapReport, PricePanel
from offchain_risk.models.risk import (
    exceedance_probability,
    tail_average_scenarios,
    weighted_tail_average_scenarios,
)
from offchain_risk.models.scenarios import (
    ScenarioSet,
    blend_scenarios,
    reduce_to_shocks,
    select_stressed_period,
)

DAY = np.timedelta64(1, "D")


def _daily_returns(n=800, seed=0, burst=(300, 360), burst_vol=0.08):
    rng = np.random.default_rng(seed)
    r = rng.standard_normal((n, 2)) * 0.02
    r[burst[0] : burst[1]] *= burst_vol / 0.02
    t = np.datetime64("2018-01-02T00:00:00") + np.arange(n) * DAY
    return t, r


def test_select_stressed_period__finds_the_volatile_block():
    t, r = _daily_returns()
    p = select_stressed_period(t, r, t[-1], window_days=60)
    assert p.start == t[300] and p.end == t[359]
    assert p.moves.shape == (60, 2)
    np.testing.assert_allclose(p.moves, np.expm1(r[300:360]))
    assert p.rms_daily_vol == pytest.approx(np.sqrt(np.mean(r[300:360] ** 2)))


def test_select_stressed_period__data_after_asof_cannot_change_it():
    t, r = _daily_returns()
    asof = t[500]
    before = select_stressed_period(t, r, asof, window_days=60)
    wild = r.copy()
    wild[501:] *= 50.0  # a far worse period, but closed after asof
    after = select_stressed_period(t, wild, asof, window_days=60)
    assert (after.start, after.end) == (before.start, before.end)
    np.testing.assert_array_equal(after.moves, before.moves)
    # the same alteration visible at a later asof does move the period
    later = select_stressed_period(t, wild, t[-1], window_days=60)
    assert later.start > asof


def test_select_stressed_period__short_history__whole_history_or_none():
    t, r = _daily_returns(n=40, burst=(0, 0))
    assert select_stressed_period(t, r, t[-1], window_days=365).moves.shape == (40, 2)
    assert select_stressed_period(t, r, t[10], window_days=365) is None


def test_blend__weights_sum_to_one_and_stressed_mass_is_weight():
    cur = ScenarioSet(np.zeros((1000, 2)), ("A", "B"), 24, "fhs")
    b = blend_scenarios(cur, np.full((50, 2), -0.1), 0.25)
    assert b.moves.shape == (1050, 2)
    assert b.weights.sum() == pytest.approx(1.0)
    assert b.weights[1000:].sum() == pytest.approx(0.25)
    np.testing.assert_allclose(b.weights[:1000], 0.75 / 1000)
    with pytest.raises(ValueError, match="weight"):
        blend_scenarios(cur, np.zeros((5, 2)), 1.5)


def test_weighted_es__equal_weights__matches_unweighted():
    rng = np.random.default_rng(1)
    moves = rng.standard_normal((2000, 3)) * 0.05
    x = rng.standard_normal((30, 3))
    es_w, sc_w = weighted_tail_average_scenarios(x, moves, np.full(2000, 1 / 2000), 0.99)
    es, sc = tail_average_scenarios(x, moves, 0.99)
    np.testing.assert_allclose(es_w, es, rtol=1e-10)
    np.testing.assert_allclose(sc_w, sc, rtol=1e-10, atol=1e-14)


def test_weighted_es__mixture_tail_comes_from_the_stressed_set_by_mass():
    # current: 1,000 losses of 1..1000 bp; stressed: 10 moves of -20%..-29% with total mass 0.25
    cur = -np.arange(1, 1001)[:, None] / 1e4
    stressed = -(0.20 + np.arange(10)[:, None] / 100.0)
    b = blend_scenarios(ScenarioSet(cur, ("A",), 24, "c"), stressed, 0.25)
    # a long book: the 2.5% tail (mass 0.025) is exactly the worst stressed move (mass 0.025)
    es, scen = weighted_tail_average_scenarios(np.array([[1.0]]), b.moves, b.weights, 0.975)
    assert es[0] == pytest.approx(0.29)
    # 5% tail: the two worst stressed moves, each half the mass
    es5, _ = weighted_tail_average_scenarios(np.array([[1.0]]), b.moves, b.weights, 0.95)
    assert es5[0] == pytest.approx((0.29 + 0.28) / 2)
    # fractional: 1% tail is 40% of the worst stressed move's mass, still 29%
    es1, _ = weighted_tail_average_scenarios(np.array([[1.0]]), b.moves, b.weights, 0.99)
    assert es1[0] == pytest.approx(0.29)
    # 3.75% tail = worst (0.025) + half of the second (0.0125): (0.29 * 2 + 0.28) / 3
    es3, _ = weighted_tail_average_scenarios(np.array([[1.0]]), b.moves, b.weights, 0.9625)
    assert es3[0] == pytest.approx((2 * 0.29 + 0.28) / 3)
    assert scen[0, 0] == pytest.approx(-0.29)


def test_exceedance_probability__weighted_mass():
    moves = np.array([[-0.3], [-0.1], [0.0], [0.1]])
    w = np.array([0.1, 0.2, 0.3, 0.4])
    p = exceedance_probability(np.array([[1.0]]), moves, np.array([0.05]), w)
    assert p[0] == pytest.approx(0.3)


def _scen(seed, vol, n=3000):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, 3)) @ np.linalg.cholesky(np.full((3, 3), 0.6) + 0.4 * np.eye(3)).T
    w = rng.chisquare(4, size=(n, 1)) / 4
    return np.expm1(g / np.sqrt(w) * vol)


def test_reduce_to_shocks__blend_covers_both_es_and_raises_margin():
    assets = ("A", "B", "C")
    cur = ScenarioSet(_scen(0, 0.02), assets, 24, "fhs")
    stressed = _scen(1, 0.06, n=365)
    blended = blend_scenarios(cur, stressed, 0.25)
    plain = reduce_to_shocks(cur, 0.99, 8, n_fit_books=64, n_validation_books=100)
    stress = reduce_to_shocks(
        blended, 0.99, 8, n_fit_books=64, n_validation_books=100, also_cover=cur
    )
    books = np.eye(3)
    es_cur, _ = tail_average_scenarios(books, cur.moves, 0.99)
    es_mix, _ = weighted_tail_average_scenarios(books, blended.moves, blended.weights, 0.99)
    assert (es_mix > es_cur).all()  # the stressed period is three times as volatile
    assert (stress.max_loss(books) >= es_mix - 1e-9).all()
    assert (stress.max_loss(books) >= es_cur - 1e-9).all()
    assert stress.max_loss(books).mean() > 1.5 * plain.max_loss(books).mean()
    assert stress.fit_coverage.covered_share == 1.0


def test_reduce_to_shocks__calm_stressed_period_never_lowers_margin():
    assets = ("A", "B", "C")
    cur = ScenarioSet(_scen(0, 0.04), assets, 24, "fhs")
    calm = blend_scenarios(cur, _scen(1, 0.005, n=365), 0.5)
    s = reduce_to_shocks(calm, 0.99, 8, n_fit_books=64, n_validation_books=100, also_cover=cur)
    es_cur, _ = tail_average_scenarios(np.eye(3), cur.moves, 0.99)
    assert (s.max_loss(np.eye(3)) >= es_cur - 1e-9).all()


def _panel(freq, t, close, assets=("BTC", "ETH")):
    n = close.shape[0]
    rep = GapReport(freq, (), {a: 0 for a in assets}, t[0], t[-1])
    vol = np.full((n, len(assets)), 1e9)
    return PricePanel(freq, assets, t, close, close, close, vol, rep)


def _synthetic_panels(seed=3):
    rng = np.random.default_rng(seed)
    n_h = 40 * 24
    th = np.datetime64("2020-02-01T00:00:00") + np.arange(n_h) * np.timedelta64(1, "h")
    rh = rng.standard_normal((n_h, 2)) * 0.004
    hourly = _panel("1h", th, 100 * np.exp(np.cumsum(rh, axis=0)))
    n_d = 800
    td = th[0] - np.timedelta64(700, "D") + np.arange(n_d) * DAY
    rd = rng.standard_normal((n_d, 2)) * 0.03
    rd[200:260] *= 3.0  # a stressed run well before the hourly data starts
    return hourly, td, rd


def test_backtest__margins_at_t_ignore_daily_data_after_t():
    hourly, td, rd = _synthetic_panels()
    daily = _panel("1d", td, 100 * np.exp(np.cumsum(rd, axis=0)))
    cfg = BacktestConfig(
        window_days=20,
        min_history_days=14,
        n_random_books=20,
        n_fit_books=32,
        stress_window_days=60,
        k=6,
    )
    base = run_backtest(hourly, cfg, start="2020-02-20", progress=False, daily=daily)
    cut = np.datetime64("2020-02-25T00:00:00")  # alter every daily close after this time
    wild = rd.copy()
    late = td + DAY > cut  # returns closing after the cut
    wild[late] *= 10.0
    altered = run_backtest(
        hourly,
        cfg,
        start="2020-02-20",
        progress=False,
        daily=_panel("1d", td, 100 * np.exp(np.cumsum(wild, axis=0))),
    )
    known = base.times <= cut
    assert known.sum() >= 4 and (~known).sum() >= 4
    for m in base.margin:
        np.testing.assert_array_equal(altered.margin[m][known], base.margin[m][known])
    # after the cut the altered, far more volatile days become the stressed period
    assert not np.array_equal(altered.margin["ballast"][~known], base.margin["ballast"][~known])
    assert (altered.stress_end[~known] > cut).any()
    # before the cut every step uses the planted stressed run (returns 200..259, up to the
    # noise at its edges)
    assert (base.stress_start[known] == base.stress_start[0]).all()
    assert abs(base.stress_start[0] - (td[200] + DAY)) <= 3 * DAY


def test_backtest__stress_weight_zero__no_period_and_lower_margin():
    hourly, td, rd = _synthetic_panels()
    daily = _panel("1d", td, 100 * np.exp(np.cumsum(rd, axis=0)))
    kw = dict(window_days=20, min_history_days=14, n_random_books=20, n_fit_books=32, k=6)
    with_stress = run_backtest(
        hourly, BacktestConfig(stress_window_days=60, **kw), "2020-02-20", False, daily
    )
    without = run_backtest(hourly, BacktestConfig(stress_weight=0.0, **kw), "2020-02-20", False)
    assert np.isnat(without.stress_start).all()
    mm_s, mm_0 = with_stress.margin["ballast"], without.margin["ballast"]
    assert mm_s[:, 0].mean() > 1.5 * mm_0[:, 0].mean()  # stressed days are ~3x as volatile
    with pytest.raises(ValueError, match="daily"):
        run_backtest(hourly, BacktestConfig(**kw), "2020-02-20", False)
