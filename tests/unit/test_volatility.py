import numpy as np
import pytest
from scipy import stats

from offchain_risk.models.volatility import (
    HOURLY_LAMBDA,
    EWMACovariance,
    EWMAVolatility,
    GARCHVolatility,
    ledoit_wolf_constant_correlation,
)


def _simulate_garch_t(n, omega, alpha, beta, nu, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n) * np.sqrt((nu - 2) / nu)  # unit variance
    r = np.empty(n)
    s2 = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = np.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return r


def test_ewma_fit__hand_computed_series__matches_recursion():
    fit = EWMAVolatility(lam=0.9, initial_variance=1e-4).fit(np.array([0.01, -0.02, 0.03]))
    # s2[0] = 1e-4; s2[1] = .9e-4 + .1 * 1e-4; s2[2] = .9e-4 + .1 * 4e-4; next = ...
    np.testing.assert_allclose(fit.conditional_variance[:, 0], [1e-4, 1e-4, 1.3e-4])
    np.testing.assert_allclose(fit.next_variance, [0.9 * 1.3e-4 + 0.1 * 9e-4])
    np.testing.assert_allclose(fit.forecast_variance(10), [10 * 2.07e-4])


def test_ewma_fit__two_assets__columns_independent():
    r = np.random.default_rng(1).standard_normal((500, 2)) * [0.01, 0.05]
    both = EWMAVolatility(HOURLY_LAMBDA).fit(r)
    alone = EWMAVolatility(HOURLY_LAMBDA).fit(r[:, 1])
    np.testing.assert_allclose(both.conditional_variance[:, 1], alone.conditional_variance[:, 0])


@pytest.mark.parametrize(
    "bad", [np.array([0.01, np.nan, 0.02]), np.zeros((1, 3)), np.zeros((4, 2, 2))]
)
def test_ewma_fit__bad_returns__raises(bad):
    with pytest.raises(ValueError):
        EWMAVolatility().fit(bad)


def test_ewma__lambda_out_of_range__raises():
    with pytest.raises(ValueError, match="lambda"):
        EWMAVolatility(lam=1.0)


def test_garch_fit__loglikelihood__matches_direct_formula():
    r = _simulate_garch_t(3000, 2e-6, 0.08, 0.9, 5.0, seed=3)
    fit = GARCHVolatility().fit(r)
    om, al, be, nu = fit.omega[0], fit.alpha[0], fit.beta[0], fit.nu[0]
    # independent reference: explicit loop and scipy's t density of the rescaled residual
    tau = 75
    w = 0.94 ** np.arange(tau)
    s2 = om + (al + be) * np.sum(w / w.sum() * r[:tau] ** 2)
    ll = 0.0
    c = np.sqrt(nu / (nu - 2))
    for t in range(r.size):
        if t:
            s2 = om + al * r[t - 1] ** 2 + be * s2
        sd = np.sqrt(s2)
        ll += stats.t.logpdf(r[t] / sd * c, nu) + np.log(c / sd)
    np.testing.assert_allclose(fit.loglikelihood[0], ll, rtol=1e-7)
    assert abs(al - 0.08) < 0.04 and abs(be - 0.9) < 0.05


def test_garch_forecast_variance__matches_closed_form():
    r = _simulate_garch_t(2000, 2e-6, 0.05, 0.9, 6.0, seed=4)
    fit = GARCHVolatility().fit(r)
    p = fit.alpha + fit.beta
    v = fit.omega / (1 - p)
    h = 24
    closed = h * v + (1 - p**h) / (1 - p) * (fit.next_variance - v)
    np.testing.assert_allclose(fit.forecast_variance(h), closed, rtol=1e-10)
    with pytest.raises(ValueError, match="horizon"):
        fit.forecast_variance(0)


def test_ledoit_wolf__two_assets__target_equals_sample_so_no_shrinkage():
    y = np.random.default_rng(5).standard_normal((400, 2))
    w = np.full(400, 1 / 400)
    shrunk, delta = ledoit_wolf_constant_correlation(y, w)
    np.testing.assert_allclose(shrunk, (y * w[:, None]).T @ y, rtol=1e-12)
    assert 0.0 <= delta <= 1.0


def test_ewma_covariance__correlated_data__valid_shrunk_correlation():
    rng = np.random.default_rng(6)
    true = np.array([[1, 0.8, 0.5], [0.8, 1, 0.3], [0.5, 0.3, 1.0]])
    r = rng.multivariate_normal(np.zeros(3), true, size=3000) * 0.01
    fit = EWMACovariance(0.995).fit(r)
    assert 0.0 <= fit.shrinkage <= 1.0
    np.testing.assert_allclose(np.diag(fit.correlation), 1.0)
    assert np.linalg.eigvalsh(fit.correlation).min() > 0
    # shrinkage pulls correlations towards their average, never past it
    off = ~np.eye(3, dtype=bool)
    mean = fit.sample_correlation[off].mean()
    assert np.all(
        np.abs(fit.correlation[off] - mean) <= np.abs(fit.sample_correlation[off] - mean) + 1e-12
    )
    assert "shrinkage" in fit.summary()
