"""The option archetypes' backtest: realised losses from the price and DVOL paths, the
full-revaluation level, coverage tests and the two efficiency comparisons."""

import numpy as np
import pytest

from offchain_risk.backtest.options import (
    ARCHETYPES,
    DERIBIT_OPTION_MM,
    DERIBIT_PERP_MM,
    Leg,
    OptionBacktestConfig,
    deribit_standard_mm,
    leg_values,
    open_book,
    run_option_backtest,
)
from offchain_risk.data import load_bars, load_dvol
from offchain_risk.models.options import black76
from offchain_risk.models.vol_surface import ExpiryCurve, SurfaceFitter
from offchain_risk.units import DAY

CURVE = ExpiryCurve(30 * DAY, 0.6, -0.14, 0.8)


@pytest.fixture(scope="module")
def data(data_dir):
    return load_bars("BTC", "1h", data_dir), load_dvol(data_dir)


@pytest.fixture(scope="module")
def june_2022(data):
    """Three weeks of the 3AC / Celsius crash, 24-hour horizon."""
    return run_option_backtest(*data, "2022-06-01", "2022-06-22")


@pytest.mark.data
def test_backtest__realised_loss__revalued_from_the_paths(june_2022, data):
    """Day 2022-06-13 (BTC -15%): the short put's loss recomputed from the bars and the
    surfaces by hand."""
    bars, dvol = data
    r = june_2022
    assert r.times.size == 21 and r.labels == tuple(ARCHETYPES)
    i = int(np.flatnonzero(r.times == np.datetime64("2022-06-13T00:00:00"))[0])
    j = int(np.searchsorted(bars.timestamps, np.datetime64("2022-06-12T23:00:00")))
    s0, s1 = bars.close[j], bars.close[j + 24]
    fitter = SurfaceFitter(bars, dvol)
    c0 = fitter.fit("2022-06-13T00:00", s0, [30 * DAY]).curves[0]
    c1 = fitter.fit("2022-06-14T00:00", s1, [29 * DAY]).curves[0]
    k = 0.9 * s0
    v0 = black76(s0, k, c0.vol(np.log(k / s0)), 30 * DAY, False).price[0]
    v1 = black76(s1, k, c1.vol(np.log(k / s1)), 29 * DAY, False).price[0]
    put = r.labels.index("short put")
    assert r.realised_loss[i, put] == pytest.approx(v1 - v0, rel=1e-12)
    assert r.realised_loss[i, put] > 0 and s1 < s0


@pytest.mark.data
def test_backtest__hedges_lower_the_level(june_2022):
    r = june_2022
    cc, put, straddle, hedged = (r.labels.index(n) for n in ARCHETYPES)
    assert (r.level >= 0).all() and (r.level <= r.legs_alone + 1e-9).all()
    # one leg: the level is that leg's own
    np.testing.assert_allclose(r.level[:, put], r.legs_alone[:, put], rtol=1e-12)
    # the spot leg covers the call, the perp the short call's delta
    assert (r.level[:, cc] < 0.7 * r.legs_alone[:, cc]).all()
    assert (r.level[:, hedged] < 0.5 * r.legs_alone[:, hedged]).all()
    assert (r.level[:, straddle] < r.legs_alone[:, straddle]).all()
    # the grid is the ES of the FHS moves: down below zero, up above
    assert (r.price_moves[:, 0] < 0).all() and (r.price_moves[:, 1] > 0).all()
    assert (r.vol_move > 0).all()


@pytest.mark.data
def test_backtest__coverage_and_efficiency_figures(june_2022):
    r = june_2022
    hits = r.exceedances()
    for b in range(len(r.labels)):
        n, x, kupiec, christoffersen = r.coverage(b)
        assert n == 21 and x == int(hits[:, b].sum())
        assert 0 <= kupiec.p_value <= 1 and 0 <= christoffersen.p_value <= 1
        alone, deribit = r.efficiency(b)
        assert 0 < alone <= 1 and deribit > 0
    assert "exceedances" in r.summary()


@pytest.mark.data
def test_backtest__one_hour_horizon__smaller_grid(data, june_2022):
    hourly = run_option_backtest(
        *data, "2022-06-01", "2022-06-08", OptionBacktestConfig(horizon_hours=1)
    )
    day = june_2022
    n = hourly.times.size
    assert n == 7
    assert (np.abs(hourly.price_moves) < np.abs(day.price_moves[:n])).all()
    np.testing.assert_allclose(hourly.vol_move, day.vol_move[:n] / np.sqrt(24))
    assert (hourly.level < day.level[:n]).all()


def test_deribit_standard_mm__short_options_and_perp():
    s = 20_000.0
    book = open_book(ARCHETYPES["delta-hedged short call"], s, CURVE, 30 * DAY)
    marks = leg_values(book, s, CURVE, 30 * DAY)[0] / np.where(book.qty != 0, book.qty, 1)
    hedge = book.qty[1]
    assert 0 < hedge < 1  # long the call's delta
    want = DERIBIT_OPTION_MM * s + marks[0] + hedge * s * DERIBIT_PERP_MM
    assert deribit_standard_mm(book, s, marks) == pytest.approx(want)
    long_call = open_book((Leg("call", 1.0), Leg("spot", 1.0)), s, CURVE, 30 * DAY)
    assert deribit_standard_mm(long_call, s, np.array([1_000.0, 0.0])) == 0.0


def test_leg_values__spot_perp_and_options():
    s = 20_000.0
    book = open_book(ARCHETYPES["covered call"], s, CURVE, 30 * DAY)
    v = leg_values(book, np.array([s, 1.1 * s]), CURVE, 30 * DAY)  # (2 prices, 2 legs)
    assert v[:, 0].tolist() == [s, 1.1 * s]
    k = 1.1 * s
    call = black76(s, k, CURVE.vol(np.log(k / s)), 30 * DAY, True).price[0]
    assert v[0, 1] == pytest.approx(-call, rel=1e-12)


def test_config__bad_values__refused(data_dir):
    with pytest.raises(ValueError, match="horizon_hours is 1 or 24"):
        OptionBacktestConfig(horizon_hours=12)
    with pytest.raises(ValueError, match="alpha and vol_quantile"):
        OptionBacktestConfig(alpha=1.0)
    bars, dvol = load_bars("BTC", "1h", data_dir), load_dvol(data_dir)
    with pytest.raises(ValueError, match="must be before end"):
        run_option_backtest(bars, dvol, "2022-06-02", "2022-06-01")
    with pytest.raises(ValueError, match="needs 60 days of DVOL"):
        run_option_backtest(bars, dvol, "2021-04-01", "2021-05-01")
    with pytest.raises(ValueError, match="no opening with a full horizon"):
        run_option_backtest(bars, dvol, "2024-04-18", "2024-05-01")
