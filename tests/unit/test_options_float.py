"""offchain_risk.models.options.black76: the vectorised float Black-76 path."""

import numpy as np
import pytest
from scipy.special import ndtr

from offchain_risk.models.options import black76
from offchain_risk.units import YEAR


def test_black76__vectorised_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    f = rng.uniform(100, 1e5, 500)  # (n,)
    k = f * np.exp(rng.normal(0, 0.4, 500))
    v = rng.uniform(0.05, 3, 500)
    tau = rng.uniform(60, 2 * YEAR, 500)
    call = rng.random(500) < 0.5
    all_at_once = black76(f, k, v, tau, call)
    for i in range(0, 500, 37):
        one = black76(f[i], k[i], v[i], tau[i], call[i])
        for name in ("price", "delta", "gamma", "vega", "theta"):
            assert getattr(one, name)[0] == getattr(all_at_once, name)[i]


def test_black76__put_call_parity_and_put_delta():
    f, k, v, tau = 3_000.0, np.array([1_000.0, 2_900.0, 3_000.0, 9_000.0]), 0.8, 30 * 86_400
    call, put = black76(f, k, v, tau, True), black76(f, k, v, tau, False)
    np.testing.assert_allclose(call.price - put.price, f - k, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(call.delta - put.delta, 1.0)
    np.testing.assert_array_equal(call.gamma, put.gamma)


def test_black76__atm_closed_form():
    # ATM at zero rates: call = F (2 N(s / 2) - 1), vega = F n(s / 2) sqrt(T).
    f, v, tau = 50_000.0, 0.5, YEAR / 4
    s = v * np.sqrt(0.25)
    res = black76(f, f, v, tau, True)
    assert res.price[0] == pytest.approx(f * (2 * ndtr(s / 2) - 1), rel=1e-12)
    pdf = np.exp(-s * s / 8) / np.sqrt(2 * np.pi)
    assert res.vega[0] == pytest.approx(f * pdf * 0.5, rel=1e-12)


def test_black76__price_only_leaves_greeks_empty():
    res = black76([3_000.0, 3_100.0], 3_000.0, 0.7, 86_400, True, greeks=False)
    assert res.price.shape == (2,)
    assert res.delta.size == 0


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 3_000.0, 0.5, 86_400, True), "forward"),
        ((3_000.0, -1.0, 0.5, 86_400, True), "strike"),
        ((3_000.0, 3_000.0, np.nan, 86_400, True), "vol"),
        ((3_000.0, 3_000.0, 0.5, 0, True), "tau_s"),
        ((3_000.0, 3_000.0, 0.5, np.inf, True), "tau_s"),
    ],
)
def test_black76__refuses_non_positive_or_non_finite_inputs(args, name):
    with pytest.raises(ValueError, match=f"black76: {name} must be finite and positive"):
        black76(*args)
