"""Volatility and correlation models: EWMA (RiskMetrics), GARCH(1,1)-t, shrunk EWMA correlation.

Conventions: ``returns`` are log returns shaped (n_t, n_assets), one row per bar. Every result
holds ``conditional_variance`` (n_t, n_assets), the variance of row t given rows < t, and
``next_variance`` (n_assets,), the variance of the first bar after the sample. Horizon forecasts
are sums of the h one-step variances (the variance of an h-bar log return under zero mean).

Decay choice: RiskMetrics uses lambda = 0.94 on daily data (half-life 11.2 days). For hourly bars
we keep the same calendar half-life, lambda_h = 0.94 ** (1 / 24) = 0.99743 (half-life 269 hours).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.signal import lfilter
from scipy.special import gammaln

DAILY_LAMBDA = 0.94
HOURLY_LAMBDA = DAILY_LAMBDA ** (1.0 / 24.0)


class VolatilityResult(Protocol):
    """What scenario generators need from a fitted volatility model."""

    conditional_variance: np.ndarray  # (n_t, n_assets)
    next_variance: np.ndarray  # (n_assets,)

    def forecast_variance(self, horizon: int) -> np.ndarray: ...


def as_returns_2d(returns: np.ndarray, name: str = "returns") -> np.ndarray:
    """Validate returns at the boundary: finite floats shaped (n_t,) or (n_t, n_assets)."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be shaped (n_t >= 2, n_assets), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or inf")
    return arr


def _check_horizon(horizon: int) -> int:
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer number of bars, got {horizon}")
    return int(horizon)


# --------------------------------------------------------------------------------------------
# EWMA
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EWMAResult:
    lam: float
    returns: np.ndarray  # (n_t, n_assets)
    conditional_variance: np.ndarray  # (n_t, n_assets)
    next_variance: np.ndarray  # (n_assets,)

    def forecast_variance(self, horizon: int) -> np.ndarray:
        """Variance of the sum of the next ``horizon`` returns, (n_assets,); flat under EWMA."""
        return _check_horizon(horizon) * self.next_variance

    def standardized_residuals(self) -> np.ndarray:
        """Returns divided by their conditional volatility, (n_t, n_assets)."""
        return self.returns / np.sqrt(self.conditional_variance)

    def summary(self) -> str:
        vol = np.sqrt(self.next_variance)
        return (
            f"EWMA lambda={self.lam:.5f} (half-life {np.log(0.5) / np.log(self.lam):.1f} bars), "
            f"{self.returns.shape[0]} obs; next-bar vol: " + ", ".join(f"{v:.4%}" for v in vol)
        )


@dataclass(frozen=True)
class EWMAVolatility:
    """RiskMetrics EWMA: ``s2[t] = lam * s2[t-1] + (1 - lam) * r[t-1]**2`` (zero mean).

    The recursion starts from ``initial_variance`` if given, else the mean square of the first
    ``ceil(1 / (1 - lam))`` returns (the filter's effective memory), capped at the sample size.
    """

    lam: float = DAILY_LAMBDA
    initial_variance: np.ndarray | float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.lam < 1.0:
            raise ValueError(f"lambda must be in (0, 1), got {self.lam}")

    def fit(self, returns: np.ndarray) -> EWMAResult:
        r = as_returns_2d(returns)  # (n_t, n_assets)
        r2 = r * r
        if self.initial_variance is None:
            n0 = min(r.shape[0], int(np.ceil(1.0 / (1.0 - self.lam))))
            s2_0 = r2[:n0].mean(axis=0)
        else:
            s2_0 = np.broadcast_to(np.asarray(self.initial_variance, float), r.shape[1:]).copy()
        s2_0 = np.maximum(s2_0, np.finfo(float).tiny)
        # y[t] = lam * y[t-1] + (1 - lam) * r2[t] is the forecast for row t + 1; y[-1] = s2_0.
        y, _ = lfilter([1.0 - self.lam], [1.0, -self.lam], r2, axis=0, zi=(self.lam * s2_0)[None])
        cond = np.vstack([s2_0[None], y[:-1]])
        return EWMAResult(self.lam, r, cond, y[-1].copy())


# --------------------------------------------------------------------------------------------
# GARCH(1,1) with Student-t innovations
# --------------------------------------------------------------------------------------------


def garch_t_loglikelihood(
    returns: np.ndarray, omega: float, alpha: float, beta: float, nu: float, backcast: float
) -> float:
    """Log-likelihood of a zero-mean GARCH(1,1) with standardised Student-t innovations.

    ``returns`` is (n_t,). ``s2[0] = omega + (alpha + beta) * backcast``, then
    ``s2[t] = omega + alpha * r[t-1]**2 + beta * s2[t-1]``.
    """
    r = np.asarray(returns, dtype=np.float64)
    s2 = _garch_filter(
        r[:, None], np.array([omega]), np.array([alpha]), np.array([beta]), np.array([backcast])
    )[0][:, 0]
    return float(
        np.sum(
            gammaln((nu + 1) / 2)
            - gammaln(nu / 2)
            - 0.5 * np.log(np.pi * (nu - 2))
            - 0.5 * np.log(s2)
            - (nu + 1) / 2 * np.log1p(r * r / (s2 * (nu - 2)))
        )
    )


def arch_backcast(returns: np.ndarray) -> np.ndarray:
    """Starting variance used by ``arch``: 0.94-weighted mean square of the first 75 returns."""
    r = as_returns_2d(returns)
    tau = min(75, r.shape[0])
    w = DAILY_LAMBDA ** np.arange(tau)
    return (w / w.sum()) @ (r[:tau] ** 2)


def _garch_filter(
    r: np.ndarray, omega: np.ndarray, alpha: np.ndarray, beta: np.ndarray, s2_0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional variances (n_t, n_assets) and the next one (n_assets,) for fixed parameters."""
    # s2[t] = omega + alpha r[t-1]^2 + beta s2[t-1] is a first-order IIR filter per asset.
    x = omega + alpha * (r * r)  # (n_t, n_assets): x[t] feeds s2[t + 1]
    out = np.empty_like(r)
    out[0] = omega + (alpha + beta) * s2_0
    nxt = np.empty(r.shape[1])
    for a in range(r.shape[1]):  # coefficients differ per asset; n_assets is small
        y, _ = lfilter([1.0], [1.0, -beta[a]], x[:, a], zi=[beta[a] * out[0, a]])
        out[1:, a] = y[:-1]
        nxt[a] = y[-1]
    return out, nxt


@dataclass(frozen=True)
class GARCHResult:
    returns: np.ndarray  # (n_t, n_assets)
    omega: np.ndarray  # (n_assets,) in squared return units
    alpha: np.ndarray  # (n_assets,)
    beta: np.ndarray  # (n_assets,)
    nu: np.ndarray  # (n_assets,) Student-t degrees of freedom
    backcast: np.ndarray  # (n_assets,)
    loglikelihood: np.ndarray  # (n_assets,) in the units of ``returns``
    conditional_variance: np.ndarray  # (n_t, n_assets)
    next_variance: np.ndarray  # (n_assets,)

    @property
    def persistence(self) -> np.ndarray:
        return self.alpha + self.beta

    def forecast_variance(self, horizon: int) -> np.ndarray:
        """Sum of the next ``horizon`` one-step variances, (n_assets,).

        ``E[s2[T+i+1]] = omega + (alpha + beta) * E[s2[T+i]]``, iterated from ``next_variance``
        (a loop over the horizon, not the sample; it stays finite for integrated fits).
        """
        s2 = self.next_variance.copy()
        total = np.zeros_like(s2)
        for _ in range(_check_horizon(horizon)):
            total += s2
            s2 = self.omega + self.persistence * s2
        return total

    def standardized_residuals(self) -> np.ndarray:
        return self.returns / np.sqrt(self.conditional_variance)

    def summary(self) -> str:
        lines = ["GARCH(1,1)-t, zero mean", "asset  omega         alpha   beta    nu     next vol"]
        for a in range(self.omega.size):
            lines.append(
                f"{a:<6} {self.omega[a]:.4e}  {self.alpha[a]:.4f}  {self.beta[a]:.4f}  "
                f"{self.nu[a]:5.2f}  {np.sqrt(self.next_variance[a]):.4%}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class GARCHVolatility:
    """Zero-mean GARCH(1,1) with standardised Student-t innovations, fitted per asset by ``arch``.

    Returns are rescaled by a power of ten so their standard deviation lies in [1, 10) (the range
    ``arch``'s optimiser is tuned for); parameters are reported back in the original units.
    """

    def fit(self, returns: np.ndarray) -> GARCHResult:
        from arch import arch_model

        r = as_returns_2d(returns)
        n_assets = r.shape[1]
        params = np.empty((n_assets, 4))  # omega, alpha, beta, nu
        loglik = np.empty(n_assets)
        for a in range(n_assets):
            scale = 10.0 ** np.ceil(-np.log10(r[:, a].std()))
            model = arch_model(
                r[:, a] * scale, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = model.fit(disp="off", show_warning=False)
            omega, alpha, beta, nu = (
                float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]", "nu")
            )
            params[a] = omega / scale**2, alpha, beta, nu
            # Log-likelihood in original units: the density of r is scale * density of scale * r.
            loglik[a] = float(res.loglikelihood) + r.shape[0] * np.log(scale)
        backcast = arch_backcast(r)
        cond, nxt = _garch_filter(r, params[:, 0], params[:, 1], params[:, 2], backcast)
        return GARCHResult(r, *params.T.copy(), backcast, loglik, cond, nxt)


# --------------------------------------------------------------------------------------------
# Correlation with shrinkage
# --------------------------------------------------------------------------------------------


def ledoit_wolf_constant_correlation(
    y: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, float]:
    """Shrink the weighted second-moment matrix of ``y`` (n_t, n) towards constant correlation.

    Ledoit and Wolf (2004, "Honey, I shrunk the sample covariance matrix") with observation
    weights ``weights`` (n_t,) summing to one in place of 1/T, and the effective sample size
    ``1 / sum(w**2)`` in place of T. Zero mean is assumed. Returns (shrunk matrix, intensity).
    """
    w = weights[:, None]
    s = (y * w).T @ y  # (n, n) weighted second moments
    n = s.shape[0]
    if n == 1:
        return s, 0.0
    sd = np.sqrt(np.diag(s))
    corr = s / np.outer(sd, sd)
    off = ~np.eye(n, dtype=bool)
    rbar = corr[off].mean()
    target = rbar * np.outer(sd, sd)
    np.fill_diagonal(target, np.diag(s))
    y2 = y * y
    pi_mat = (y2 * w).T @ y2 - s * s  # pi_ij = sum_t w_t (y_i y_j - s_ij)^2
    theta = (y2 * y * w).T @ y - np.diag(s)[:, None] * s  # theta_ii,ij
    rho = np.trace(pi_mat) + rbar * np.sum((sd[None, :] / sd[:, None] * theta)[off])
    gamma = float(np.sum((target - s) ** 2))
    n_eff = 1.0 / float(np.sum(weights**2))
    delta = 0.0 if gamma == 0.0 else float(np.clip((pi_mat.sum() - rho) / gamma / n_eff, 0, 1))
    return delta * target + (1.0 - delta) * s, delta


@dataclass(frozen=True)
class CovarianceResult:
    vol: np.ndarray  # (n_assets,) next-bar volatility
    correlation: np.ndarray  # (n_assets, n_assets) shrunk
    sample_correlation: np.ndarray  # (n_assets, n_assets) before shrinkage
    shrinkage: float
    volatility: EWMAResult

    @property
    def covariance(self) -> np.ndarray:
        return self.correlation * np.outer(self.vol, self.vol)

    def summary(self) -> str:
        n = self.vol.size
        off = ~np.eye(n, dtype=bool)
        mean_corr = self.correlation[off].mean() if n > 1 else 1.0
        return (
            f"EWMA covariance lambda={self.volatility.lam:.5f}, constant-correlation shrinkage "
            f"intensity {self.shrinkage:.3f}, mean off-diagonal correlation {mean_corr:.3f}"
        )


@dataclass(frozen=True)
class EWMACovariance:
    """EWMA correlation of devolatilised returns, shrunk towards constant correlation.

    Each asset is devolatilised by its own EWMA volatility; the EWMA-weighted correlation of the
    residuals is shrunk with ``ledoit_wolf_constant_correlation`` (the target keeps every variance
    and sets every correlation to the average one); the covariance is ``D R D`` with ``D`` the
    next-bar EWMA volatilities.
    """

    lam: float = DAILY_LAMBDA

    def fit(self, returns: np.ndarray) -> CovarianceResult:
        vol_fit = EWMAVolatility(self.lam).fit(returns)
        z = vol_fit.standardized_residuals()  # (n_t, n_assets)
        n_t = z.shape[0]
        w = self.lam ** np.arange(n_t - 1, -1, -1, dtype=np.float64)  # (n_t,) newest weight 1
        w /= w.sum()
        raw = (z * w[:, None]).T @ z
        sd = np.sqrt(np.diag(raw))
        shrunk, delta = ledoit_wolf_constant_correlation(z, w)
        sd_s = np.sqrt(np.diag(shrunk))
        corr = shrunk / np.outer(sd_s, sd_s)
        np.fill_diagonal(corr, 1.0)
        return CovarianceResult(
            np.sqrt(vol_fit.next_variance), corr, raw / np.outer(sd, sd), delta, vol_fit
        )
