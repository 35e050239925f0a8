import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain_risk.models.scenarios import (
    COPULA_NU_GRID,
    FilteredHistoricalSimulation,
    HistoricalSimulation,
    ScenarioSet,
    StudentTCopulaMonteCarlo,
    _window_sums,
    coverage,
    fit_vertices,
    quantize_bps,
    random_books,
    reduce_to_shocks,
)
from offchain_risk.models.volatility import EWMAVolatility

ASSETS = ("BTC", "ETH", "SOL")


def _t_returns(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    corr = np.array([[1, 0.8, 0.6], [0.8, 1, 0.7], [0.6, 0.7, 1.0]])
    g = rng.multivariate_normal(np.zeros(3), corr, size=n)
    w = rng.chisquare(4, size=(n, 1)) / 4
    return g / np.sqrt(w) * np.array([0.006, 0.008, 0.012]) / np.sqrt(2)


@pytest.fixture(scope="module")
def shock_set():
    scen = FilteredHistoricalSimulation(EWMAVolatility(0.99), 24).generate(_t_returns(), ASSETS)
    return reduce_to_shocks(scen, alpha=0.99, k=12, n_fit_books=128, n_validation_books=300)


def test_window_sums__matches_naive_loop():
    z = np.random.default_rng(2).standard_normal((50, 2))
    got = _window_sums(z, 7, step=3)
    want = np.array([z[i : i + 7].sum(axis=0) for i in range(0, 44, 3)])
    np.testing.assert_allclose(got, want)


def test_fhs__constant_vol_iid__horizon_vol_scales_with_sqrt_h():
    r = np.random.default_rng(3).standard_normal((20_000, 2)) * 0.01
    scen = FilteredHistoricalSimulation(EWMAVolatility(0.999), 16).generate(r)
    assert scen.moves.shape == (20_000 - 16 + 1, 2)
    np.testing.assert_allclose(np.log1p(scen.moves).std(axis=0), 0.04, rtol=0.1)


def test_historical__moves_are_compounded_window_returns():
    r = np.random.default_rng(4).standard_normal((30, 1)) * 0.01
    scen = HistoricalSimulation(5).generate(r)
    np.testing.assert_allclose(scen.moves[0, 0], np.exp(r[:5, 0].sum()) - 1)


def test_copula_mc__shapes_nu_and_reproducible():
    mc = StudentTCopulaMonteCarlo(EWMAVolatility(0.99), 24, n_sims=2000, seed=9)
    a = mc.generate(_t_returns(), ASSETS)
    b = mc.generate(_t_returns(), ASSETS)
    assert a.moves.shape == (2000, 3)
    assert a.details["copula_nu"] in COPULA_NU_GRID
    np.testing.assert_array_equal(a.moves, b.moves)
    assert (a.moves > -1).all()


def test_reduce_to_shocks__covers_calibration_and_most_validation_books(shock_set):
    assert shock_set.shocks_bps.shape == (3, 12)
    assert shock_set.shocks_bps.dtype == np.int16
    assert shock_set.fit_coverage.covered_share == 1.0
    assert shock_set.fit_coverage.min_ratio >= 1.0
    assert shock_set.validation_coverage.covered_share >= 0.95
    assert shock_set.scale >= 1.0


def test_coverage__share_min_median_and_mean_inflation():
    cov = coverage(np.array([0.9, 1.0, 1.1, 1.4]))
    assert (cov.n_books, cov.covered_share, cov.min_ratio) == (4, 0.75, 0.9)
    assert cov.median_ratio == pytest.approx(1.05) and cov.mean_ratio == pytest.approx(1.1)
    assert "mean 1.100" in cov.line()


def _unit_books_over_es(n_books=300, seed=3):
    """Books over their ES for an elliptical ES body (ES = the books' Mahalanobis norm)."""
    books = random_books(n_books, 3, np.random.default_rng(seed))
    cov = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.7], [0.6, 0.7, 1.0]]) * 0.01
    es = np.sqrt(np.einsum("bi,ij,bj->b", books, cov, books)) * 2.6
    return books / es[:, None]


def test_fit_vertices__covers_every_book_and_lowers_the_mean_ratio():
    y = _unit_books_over_es()
    rng = np.random.default_rng(4)
    start = rng.standard_normal((8, 3)) * 0.3
    start /= (-(y @ start.T)).max(axis=1).min()  # scaled until every book is covered
    before = (-(y @ start.T)).max(axis=1)
    v = fit_vertices(y, start)
    after = (-(y @ v.T)).max(axis=1)
    assert v.shape == (8, 3)
    assert after.min() >= 1.0 - 1e-7
    assert after.mean() < before.mean() - 0.05


def test_fit_vertices__uncovering_start_or_wrong_shape__refused():
    y = _unit_books_over_es(50)
    with pytest.raises(ValueError, match="cover every book"):
        fit_vertices(y, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shaped"):
        fit_vertices(y[:, :2], np.ones((4, 3)))


def test_reduce_to_shocks__k_above_32__raises():
    scen = ScenarioSet(np.zeros((100, 2)), ("A", "B"), 24, "test")
    with pytest.raises(ValueError, match="k must be"):
        reduce_to_shocks(scen, k=33)


def test_quantize_bps__rounds_magnitude_up_and_clips():
    got = quantize_bps(np.array([0.00011, -0.00011, -1.5, 4.0, 0.0]))
    np.testing.assert_array_equal(got, [2, -2, -10_000, 32_767, 0])
    assert got.dtype == np.int16


def test_random_books__unit_gross_at_least_two_assets():
    books = random_books(500, 5, np.random.default_rng(0))
    np.testing.assert_allclose(np.abs(books).sum(axis=1), 1.0)
    assert ((books != 0).sum(axis=1) >= 2).all()


books_strategy = arrays(np.float64, (3,), elements=st.floats(-1e7, 1e7))


@given(books_strategy, st.floats(0.001, 1000.0))
def test_max_loss__positively_homogeneous(shock_set, x, c):
    lhs = shock_set.max_loss(c * x)[0]
    rhs = c * shock_set.max_loss(x)[0]
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-6)


@given(books_strategy, books_strategy)
def test_max_loss__sub_additive(shock_set, x, y):
    both = shock_set.max_loss(x + y)[0]
    assert both <= shock_set.max_loss(x)[0] + shock_set.max_loss(y)[0] + 1e-6


@pytest.mark.parametrize("weight", [0.25, 0.9])
def test_blend_and_prefix_tail_averages__equal_two_separate_passes(weight):
    from offchain_risk.models.risk import (
        blend_and_prefix_tail_averages,
        tail_average_scenarios,
        weighted_tail_average_scenarios,
    )
    from offchain_risk.models.scenarios import blend_scenarios

    current = FilteredHistoricalSimulation(EWMAVolatility(0.99), 24).generate(_t_returns(), ASSETS)
    stressed = np.random.default_rng(8).standard_t(3, size=(365, 3)) * 0.05
    blend = blend_scenarios(current, np.clip(stressed, -0.9, None), weight)
    books = random_books(200, 3, np.random.default_rng(9))
    (es_b, sc_b), (es_c, sc_c) = blend_and_prefix_tail_averages(
        books, blend.moves, blend.weights, current.moves.shape[0], 0.99
    )
    want_b = weighted_tail_average_scenarios(books, blend.moves, blend.weights, 0.99)
    want_c = tail_average_scenarios(books, current.moves, 0.99)
    for got, want in ((es_b, want_b[0]), (sc_b, want_b[1]), (es_c, want_c[0]), (sc_c, want_c[1])):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_blend_and_prefix_tail_averages__bad_prefix_or_weights__refused():
    from offchain_risk.models.risk import blend_and_prefix_tail_averages

    moves = np.random.default_rng(1).standard_normal((100, 2)) * 0.01
    books = np.eye(2)
    w = np.full(100, 0.01)
    for n_prefix in (0, 101):
        with pytest.raises(ValueError, match="n_prefix"):
            blend_and_prefix_tail_averages(books, moves, w, n_prefix, 0.99)
    with pytest.raises(ValueError, match="n_prefix"):
        blend_and_prefix_tail_averages(books, moves, None, 50, 0.99)
    w0 = w.copy()
    w0[:2], w0[2:4] = 0.0, 0.02
    with pytest.raises(ValueError, match="positive weight"):
        blend_and_prefix_tail_averages(books, moves, w0, 50, 0.99)
