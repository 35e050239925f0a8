"""Coverage tests for exceedance sequences (Kupiec 1995, Christoffersen 1998)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy
from scipy.stats import chi2


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float


def kupiec_pof(n_obs: int, n_exceed: int, p: float) -> TestResult:
    """Proportion-of-failures likelihood ratio: are ``n_exceed`` of ``n_obs`` consistent with p?

    ``LR = -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)]``, chi-squared with 1 dof.
    """
    if n_obs < 1 or not 0 <= n_exceed <= n_obs or not 0 < p < 1:
        raise ValueError(
            f"need n_obs >= 1, 0 <= n_exceed <= n_obs, 0 < p < 1; got " f"{n_obs}, {n_exceed}, {p}"
        )
    n, x = float(n_obs), float(n_exceed)
    phat = x / n
    ll0 = xlogy(n - x, 1 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1 - phat) + xlogy(x, phat)
    lr = max(0.0, -2.0 * (ll0 - ll1))
    return TestResult(lr, float(chi2.sf(lr, 1)))


def christoffersen_independence(hits: np.ndarray) -> TestResult:
    """Markov independence test of a 0/1 exceedance sequence ``hits: (n_obs,)``.

    Compares a first-order Markov chain (``pi01``, ``pi11``) with independence (``pi``);
    chi-squared with 1 dof. A sequence without transitions out of both states gives LR = 0.
    """
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 1 or h.size < 2:
        raise ValueError(f"hits must be a 1-D sequence of at least two, got shape {h.shape}")
    prev, nxt = h[:-1], h[1:]
    n00 = float(np.sum(~prev & ~nxt))
    n01 = float(np.sum(~prev & nxt))
    n10 = float(np.sum(prev & ~nxt))
    n11 = float(np.sum(prev & nxt))
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    ll0 = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    ll1 = xlogy(n00, 1 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1 - pi11) + xlogy(n11, pi11)
    lr = max(0.0, -2.0 * (ll0 - ll1))
    return TestResult(lr, float(chi2.sf(lr, 1)))
