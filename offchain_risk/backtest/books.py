"""Books evaluated by the backtest and the margin rules they are compared under.

A book is a set of legs per asset: ``long_usd`` and ``short_usd`` (n_books, n_assets), both
>= 0. Net exposure ``x = long - short``, gross ``g = long + short``. Collateral counts as a long
leg, a short perp as a short leg, so "WETH collateral + short ETH perp" nets to zero with two gross
legs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offchain_risk.models.margin import margin_float
from offchain_risk.models.scenarios import random_books

NOTIONAL_USD = 1_000_000.0
FLAT_RATE = 0.065
# Synthetix-v3 style: IM ratio = min IM ratio + |notional| / skew scale; MM = IM * scalar.
SYNTHETIX_MIN_IM = 0.02
SYNTHETIX_MM_SCALAR = 0.5
SYNTHETIX_SKEW_SCALE_USD = {"BTC": 1e9, "ETH": 1e9}
SYNTHETIX_SKEW_SCALE_OTHER_USD = 2.5e8


@dataclass(frozen=True)
class Books:
    labels: tuple[str, ...]
    long_usd: np.ndarray  # (n_books, n_assets)
    short_usd: np.ndarray  # (n_books, n_assets)

    @property
    def exposures(self) -> np.ndarray:
        return self.long_usd - self.short_usd

    @property
    def gross(self) -> np.ndarray:
        return self.long_usd + self.short_usd


def build_books(assets: tuple[str, ...], btc_eth_beta: float, random_weights: np.ndarray) -> Books:
    """The three archetypes followed by the random books.

    ``btc_eth_beta``: USD of ETH shorted per USD of BTC held (cov(BTC, ETH) / var(ETH));
    ``random_weights: (n_random, n_assets)`` unit-gross signed weights.
    """
    n = len(assets)
    if "BTC" not in assets or "ETH" not in assets:
        raise ValueError("the backtest archetypes need BTC and ETH among the assets")
    b, e = assets.index("BTC"), assets.index("ETH")
    long_usd = np.zeros((3, n))
    short_usd = np.zeros((3, n))
    long_usd[0, b] = NOTIONAL_USD  # naked long BTC
    long_usd[1, b] = NOTIONAL_USD  # long BTC / short ETH, beta-hedged
    short_usd[1, e] = btc_eth_beta * NOTIONAL_USD
    long_usd[2, e] = NOTIONAL_USD  # WETH collateral ...
    short_usd[2, e] = NOTIONAL_USD  # ... + short ETH perp of the same size
    w = random_weights * NOTIONAL_USD
    labels = ("long BTC", "long BTC / short ETH (beta)", "WETH collateral + short ETH perp")
    return Books(
        labels + tuple(f"random {i}" for i in range(w.shape[0])),
        np.vstack([long_usd, np.maximum(w, 0.0)]),
        np.vstack([short_usd, np.maximum(-w, 0.0)]),
    )


def fixed_random_weights(n_books: int, n_assets: int, seed: int) -> np.ndarray:
    """The random multi-asset books of the comparison, (n_books, n_assets), fixed by seed."""
    return random_books(n_books, n_assets, np.random.default_rng(seed))


def portfolio_margin(books: Books, shocks_bps: np.ndarray, floor_bps: np.ndarray) -> np.ndarray:
    """Ballast cross margin ``max(max_k loss_k, floor)`` per book, (n_books,)."""
    mm, _ = margin_float(books.exposures, books.gross, shocks_bps, floor_bps, 1.0)
    return mm


def isolated_margin(books: Books, shocks_bps: np.ndarray, floor_bps: np.ndarray) -> np.ndarray:
    """Sum over legs of the margin each leg needs alone (one sub-account per position)."""
    n = books.long_usd.shape[1]
    # per-unit margin of a lone long / short leg in each asset: (n_assets,)
    unit = np.eye(n)
    long_rate, _ = margin_float(unit, unit, shocks_bps, floor_bps, 1.0)
    short_rate, _ = margin_float(-unit, unit, shocks_bps, floor_bps, 1.0)
    return books.long_usd @ long_rate + books.short_usd @ short_rate


def flat_margin(books: Books) -> np.ndarray:
    """6.5% of gross notional, (n_books,)."""
    return FLAT_RATE * books.gross.sum(axis=1)


def synthetix_margin(books: Books, assets: tuple[str, ...]) -> np.ndarray:
    """Size-scaled rule per position: ``g * scalar * (min_im + g / skew_scale)``, summed."""
    skew = np.array(
        [SYNTHETIX_SKEW_SCALE_USD.get(a, SYNTHETIX_SKEW_SCALE_OTHER_USD) for a in assets]
    )
    g = books.gross
    return (g * SYNTHETIX_MM_SCALAR * (SYNTHETIX_MIN_IM + g / skew)).sum(axis=1)
