import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from offchain_risk.models.risk import tail_average_scenarios, var_es, var_es_from_losses


def test_var_es_from_losses__one_to_hundred__known_values():
    losses = np.arange(1.0, 101.0)[None, ::-1].copy()
    var, es = var_es_from_losses(losses, 0.95)
    assert var[0] == 96.0
    assert es[0] == 98.0


def test_var_es__chunked__equals_single_pass():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 4))
    moves = rng.standard_normal((500, 4)) * 0.05
    a = var_es(x, moves, 0.99, chunk_size=5)
    b = var_es(x, moves, 0.99, chunk_size=10_000)
    np.testing.assert_array_equal(a.es, b.es)
    np.testing.assert_array_equal(a.var, b.var)


def test_tail_average_scenarios__own_loss_equals_es():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 3))
    moves = rng.standard_normal((1000, 3)) * 0.05
    es, scen = tail_average_scenarios(x, moves, 0.975)
    np.testing.assert_allclose(-(x * scen).sum(axis=1), es, rtol=1e-10)
    np.testing.assert_allclose(es, var_es(x, moves, 0.975).es, rtol=1e-10)


@given(
    arrays(np.float64, (6, 3), elements=st.floats(-1e6, 1e6)),
    arrays(np.float64, (200, 3), elements=st.floats(-0.9, 2.0)),
    st.sampled_from([0.9, 0.95, 0.99, 0.999]),
)
def test_var_es__any_books__es_at_least_var(x, moves, alpha):
    res = var_es(x, moves, alpha)
    assert np.all(res.es >= res.var - 1e-9 * (1 + np.abs(res.var)))


@pytest.mark.parametrize(
    ("x", "moves", "match"),
    [
        (np.ones((2, 3)), np.zeros((10, 4)), "exposures_usd"),
        (np.full((2, 3), np.nan), np.zeros((10, 3)), "NaN"),
        (np.ones((2, 3)), np.full((10, 3), -1.5), "below -100%"),
        (np.ones((2, 3)), np.zeros(10), "moves"),
    ],
)
def test_var_es__bad_input__raises(x, moves, match):
    with pytest.raises(ValueError, match=match):
        var_es(x, moves)


def test_var_es__bad_alpha__raises():
    with pytest.raises(ValueError, match="alpha"):
        var_es(np.ones(2), np.zeros((10, 2)), alpha=1.0)


def test_exceedance_probability__chunks_give_the_one_pass_result():
    from offchain_risk.models.risk import exceedance_probability

    rng = np.random.default_rng(11)
    x = rng.standard_normal((301, 4)) * 1e5  # 301: the last chunk is partial
    moves = rng.standard_normal((2_000, 4)) * 0.02
    t = np.abs(x).sum(axis=1) * 0.03
    w = rng.random(2_000)
    w /= w.sum()
    for weights in (None, w):
        one = exceedance_probability(x, moves, t, weights, chunk_size=301)
        hit = -(x @ moves.T) > t[:, None]  # (n_pf, n_sims), the definition
        want = hit.mean(axis=1) if weights is None else hit @ weights
        np.testing.assert_array_equal(one, want)
        np.testing.assert_array_equal(exceedance_probability(x, moves, t, weights, 64), one)
        assert 0.0 < one.mean() < 0.5
