"""Joint scenario generation and reduction to the K on-chain shock vectors.

Generators turn hourly log returns (n_t, n_assets) into a ``ScenarioSet`` of joint relative price
moves over a liquidation horizon, ``moves: (n_sims, n_assets)`` (0.05 = +5%):

- ``FilteredHistoricalSimulation``: every hourly return is devolatilised by its own conditional
  volatility (EWMA or GARCH), every overlapping window of ``horizon`` hours of residuals is summed,
  and the sums are rescaled so each asset's variance equals the model's forecast variance over
  the horizon. Joint residuals are kept together, so the cross-asset dependence (and its tails)
  is the historical one.
- ``StudentTCopulaMonteCarlo``: Student-t marginals fitted to non-overlapping horizon sums of
  residuals, joined by a Student-t copula whose correlation is the shrunk residual correlation and
  whose degrees of freedom maximise the copula likelihood on a grid.

``reduce_to_shocks`` picks K <= 32 (by default 16) of the tail-average (expected-shortfall)
scenarios of many books and scales them so ``max_k loss_k >= ES_alpha`` for every calibration
book; coverage is then measured on held-out random books. See docs/RISK_MODEL.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse, stats
from scipy.optimize import linprog

from offchain_risk.models.margin import MAX_SCENARIOS, MAX_SHOCK_BPS, MIN_SHOCK_BPS
from offchain_risk.models.risk import (
    blend_and_prefix_tail_averages,
    check_exposures,
    check_moves,
    check_weights,
    weighted_tail_average_scenarios,
)
from offchain_risk.models.volatility import (
    HOURLY_LAMBDA,
    EWMAVolatility,
    GARCHVolatility,
    as_returns_2d,
    ledoit_wolf_constant_correlation,
)

# The K a reduction picks unless told: as many as the chain holds (two shock words per
# asset). A set of K <= 16 leaves the second shock word zero.
DEFAULT_K = MAX_SCENARIOS

COPULA_NU_GRID = (2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)


@dataclass(frozen=True)
class ScenarioSet:
    """Joint relative price moves over ``horizon`` bars."""

    moves: np.ndarray  # (n_sims, n_assets)
    assets: tuple[str, ...]
    horizon: int
    method: str
    details: dict = field(default_factory=dict)
    # (n_sims,) scenario probabilities summing to 1; None = equally likely
    weights: np.ndarray | None = None

    def summary(self) -> str:
        q = np.quantile(self.moves, [0.005, 0.995], axis=0)  # (2, n_assets)
        cols = ", ".join(
            f"{a} [{lo:+.1%}, {hi:+.1%}]" for a, lo, hi in zip(self.assets, q[0], q[1], strict=True)
        )
        return (
            f"{self.method}: {self.moves.shape[0]} joint scenarios over {self.horizon} bars; "
            f"0.5%/99.5% quantiles: {cols}"
        )


def _asset_names(assets: tuple[str, ...] | list[str] | None, n_assets: int) -> tuple[str, ...]:
    names = tuple(assets) if assets is not None else tuple(f"asset{i}" for i in range(n_assets))
    if len(names) != n_assets:
        raise ValueError(f"{len(names)} asset names for {n_assets} return columns")
    return names


def _window_sums(z: np.ndarray, horizon: int, step: int = 1) -> np.ndarray:
    """Sums of ``horizon`` consecutive rows of z (n_t, n) every ``step`` rows, (n_windows, n)."""
    if z.shape[0] < horizon:
        raise ValueError(f"{z.shape[0]} returns are fewer than the horizon of {horizon} bars")
    c = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])  # (n_t + 1, n)
    starts = np.arange(0, z.shape[0] - horizon + 1, step)
    return c[starts + horizon] - c[starts]


@dataclass(frozen=True)
class HistoricalSimulation:
    """Unfiltered overlapping windows of realised horizon returns (the benchmark method)."""

    horizon: int = 24

    def generate(
        self, returns: np.ndarray, assets: tuple[str, ...] | list[str] | None = None
    ) -> ScenarioSet:
        r = as_returns_2d(returns)
        moves = np.expm1(_window_sums(r, self.horizon))
        return ScenarioSet(moves, _asset_names(assets, r.shape[1]), self.horizon, "historical")


@dataclass(frozen=True)
class FilteredHistoricalSimulation:
    vol_model: EWMAVolatility | GARCHVolatility = field(
        default_factory=lambda: EWMAVolatility(HOURLY_LAMBDA)
    )
    horizon: int = 24

    def generate(
        self, returns: np.ndarray, assets: tuple[str, ...] | list[str] | None = None
    ) -> ScenarioSet:
        r = as_returns_2d(returns)
        fit = self.vol_model.fit(r)
        z = r / np.sqrt(fit.conditional_variance)  # (n_t, n_assets) unit-variance residuals
        sums = _window_sums(z, self.horizon)  # (n_sims, n_assets), variance ~ horizon
        scale = np.sqrt(fit.forecast_variance(self.horizon) / self.horizon)  # (n_assets,)
        moves = np.expm1(sums * scale)
        return ScenarioSet(
            moves,
            _asset_names(assets, r.shape[1]),
            self.horizon,
            "filtered historical simulation",
            {"horizon_vol": np.sqrt(fit.forecast_variance(self.horizon))},
        )


@dataclass(frozen=True)
class StudentTCopulaMonteCarlo:
    vol_model: EWMAVolatility | GARCHVolatility = field(
        default_factory=lambda: EWMAVolatility(HOURLY_LAMBDA)
    )
    horizon: int = 24
    n_sims: int = 10_000
    seed: int = 0

    def generate(
        self, returns: np.ndarray, assets: tuple[str, ...] | list[str] | None = None
    ) -> ScenarioSet:
        r = as_returns_2d(returns)
        fit = self.vol_model.fit(r)
        z = r / np.sqrt(fit.conditional_variance)
        # u: (n_windows, n_assets) non-overlapping horizon sums, unit variance per bar
        u = _window_sums(z, self.horizon, step=self.horizon) / np.sqrt(self.horizon)
        if u.shape[0] < 30:
            raise ValueError(f"{u.shape[0]} horizon windows are too few to fit a copula (< 30)")
        n_assets = r.shape[1]
        marg = [stats.t.fit(u[:, a], floc=0.0) for a in range(n_assets)]  # (nu, loc, scale)
        shrunk, _ = ledoit_wolf_constant_correlation(u, np.full(u.shape[0], 1.0 / u.shape[0]))
        sd = np.sqrt(np.diag(shrunk))
        corr = shrunk / np.outer(sd, sd)
        nu = _fit_copula_nu(u, corr)
        rng = np.random.default_rng(self.seed)
        chol = np.linalg.cholesky(corr)
        g = rng.standard_normal((self.n_sims, n_assets)) @ chol.T  # (n_sims, n_assets)
        w = rng.chisquare(nu, size=(self.n_sims, 1)) / nu
        unif = stats.t.cdf(g / np.sqrt(w), nu)  # (n_sims, n_assets) copula sample
        x = np.column_stack(
            [stats.t.ppf(unif[:, a], marg[a][0]) * marg[a][2] for a in range(n_assets)]
        )
        moves = np.expm1(x * np.sqrt(fit.forecast_variance(self.horizon)))
        return ScenarioSet(
            moves,
            _asset_names(assets, n_assets),
            self.horizon,
            "Student-t copula Monte Carlo",
            {
                "copula_nu": nu,
                "marginal_nu": np.array([m[0] for m in marg]),
                "correlation": corr,
            },
        )


def _fit_copula_nu(u: np.ndarray, corr: np.ndarray) -> float:
    """Degrees of freedom on ``COPULA_NU_GRID`` maximising the t-copula pseudo-likelihood."""
    n, d = u.shape
    pseudo = (stats.rankdata(u, axis=0) - 0.5) / n  # (n, d) in (0, 1)
    best_nu, best_ll = COPULA_NU_GRID[0], -np.inf
    for nu in COPULA_NU_GRID:
        x = stats.t.ppf(pseudo, nu)  # (n, d)
        joint = stats.multivariate_t.logpdf(x, loc=np.zeros(d), shape=corr, df=nu)
        ll = float(np.sum(joint - stats.t.logpdf(x, nu).sum(axis=1)))
        if ll > best_ll:
            best_nu, best_ll = nu, ll
    return best_nu


# --------------------------------------------------------------------------------------------
# Reduction to K joint shock vectors
# --------------------------------------------------------------------------------------------


def random_books(n_books: int, n_assets: int, rng: np.random.Generator) -> np.ndarray:
    """Random multi-asset books, (n_books, n_assets), unit gross (L1 = 1).

    Each asset is held with probability 1/2 (at least two assets when n_assets >= 2), with a
    standard-normal signed weight: long, short and hedged mixes alike.
    """
    w = rng.standard_normal((n_books, n_assets))
    held = rng.random((n_books, n_assets)) < 0.5
    if n_assets >= 2:
        # force two distinct assets in: the two largest of a random key per row
        key = rng.random((n_books, n_assets))
        top2 = np.argsort(key, axis=1)[:, -2:]
        np.put_along_axis(held, top2, True, axis=1)
    w = np.where(held, w, 0.0)
    return w / np.abs(w).sum(axis=1, keepdims=True)


def representative_directions(
    moves: np.ndarray, assets: tuple[str, ...], weights: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Books that matter, (n_dir, n_assets) unit gross, with labels.

    Single-asset long and short books; for every ordered pair (i, j) the beta-hedged pair
    ``long i, short beta_ij j`` and its opposite (beta from the scenario covariance); and both
    signs of every principal component of the scenario covariance.
    """
    n = moves.shape[1]
    cov = np.cov(moves, rowvar=False, aweights=weights).reshape(n, n)
    labels: list[str] = []
    rows: list[np.ndarray] = []
    eye = np.eye(n)
    for a in range(n):
        labels += [f"long {assets[a]}", f"short {assets[a]}"]
        rows += [eye[a], -eye[a]]
    for i in range(n):
        for j in range(n):
            if i != j:
                d = eye[i] - cov[i, j] / cov[j, j] * eye[j]
                labels += [
                    f"long {assets[i]} / short {assets[j]}",
                    f"short {assets[i]} / long {assets[j]}",
                ]
                rows += [d, -d]
    _, vecs = np.linalg.eigh(cov)
    for c in range(n):
        labels += [f"+PC{n - c}", f"-PC{n - c}"]
        rows += [vecs[:, c], -vecs[:, c]]
    dirs = np.array(rows)
    return labels, dirs / np.abs(dirs).sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Coverage:
    """How well ``max_k loss_k`` covers ES_alpha on a set of books (ratio = max loss / ES)."""

    n_books: int
    covered_share: float
    min_ratio: float
    median_ratio: float
    mean_ratio: float  # the ES inflation: margin a book carries per unit of its ES, on average

    def line(self) -> str:
        return (
            f"{self.n_books} books: {self.covered_share:.1%} covered, ratio min "
            f"{self.min_ratio:.3f}, median {self.median_ratio:.3f}, mean {self.mean_ratio:.3f}"
        )


def coverage(ratios: np.ndarray) -> Coverage:
    """Coverage of books whose ``max_k loss_k / ES`` are ``ratios: (n_books,)``."""
    return Coverage(
        int(ratios.size),
        float(np.mean(ratios >= 1.0 - 1e-12)),
        float(ratios.min()),
        float(np.median(ratios)),
        float(ratios.mean()),
    )


@dataclass(frozen=True)
class ShockSet:
    """K joint shock vectors as published on chain, with their calibration record."""

    assets: tuple[str, ...]
    shocks_bps: np.ndarray  # (n_assets, K) int16
    labels: tuple[str, ...]  # (K,) the book whose tail-average scenario each column came from
    scale: float
    alpha: float
    horizon: int
    fit_coverage: Coverage
    validation_coverage: Coverage

    def max_loss(self, exposures_usd: np.ndarray) -> np.ndarray:
        """``max_k loss_k`` per book, (n_pf,), with ``loss_k = -x . shocks[:, k] / 1e4``."""
        x = check_exposures(exposures_usd, len(self.assets))
        return (-(x @ self.shocks_bps.astype(np.float64)) / 1e4).max(axis=1)

    def summary(self) -> str:
        lines = [
            f"{self.shocks_bps.shape[1]} scenarios over {self.horizon} bars at alpha "
            f"{self.alpha}, scale {self.scale:.3f}",
            "calibration  " + self.fit_coverage.line(),
            "validation   " + self.validation_coverage.line(),
            "scenario bps: " + "  ".join(self.assets),
        ]
        for k, label in enumerate(self.labels):
            lines.append(f"  {' '.join(f'{v:6d}' for v in self.shocks_bps[:, k])}   <- {label}")
        return "\n".join(lines)


def _greedy_select(ratio: np.ndarray, k: int) -> list[int]:
    """Pick k columns of ``ratio: (n_books, n_cand)`` (loss in candidate / ES) greedily.

    Each step adds the candidate that most reduces the total coverage shortfall
    ``sum_b max(0, 1 - max_selected ratio_b)``, ties broken by the worst-covered book.
    """
    current = np.full(ratio.shape[0], -np.inf)
    chosen: list[int] = []
    for _ in range(min(k, ratio.shape[1])):
        new = np.maximum(current[:, None], ratio)  # (n_books, n_cand)
        shortfall = np.maximum(0.0, 1.0 - new).sum(axis=0)
        worst = new.min(axis=0)
        shortfall[chosen] = np.inf
        best = np.flatnonzero(shortfall == shortfall.min())
        pick = int(best[np.argmax(worst[best])])
        chosen.append(pick)
        current = new[:, pick]
    return chosen


def _refine_swaps(ratio: np.ndarray, chosen: list[int], max_passes: int = 10) -> list[int]:
    """Swap selected columns for better ones while the worst-covered book's ratio improves.

    The common scale needed afterwards is ``1 / min_b max_k ratio[b, k]``, so raising that
    minimum lowers every book's margin.
    """
    chosen = list(chosen)
    for _ in range(max_passes):
        improved = False
        for i in range(len(chosen)):
            others = chosen[:i] + chosen[i + 1 :]
            base = ratio[:, others].max(axis=1) if others else np.full(ratio.shape[0], -np.inf)
            worst = np.maximum(base[:, None], ratio).min(axis=0)  # (n_cand,)
            pick = int(np.argmax(worst))
            if worst[pick] > worst[chosen[i]] + 1e-12:
                chosen[i] = pick
                improved = True
        if not improved:
            break
    return chosen


def fit_vertices(
    books_per_es: np.ndarray,
    start: np.ndarray,
    max_rounds: int = 8,
    bounds: tuple[float, float] = (MIN_SHOCK_BPS / 1e4, MAX_SHOCK_BPS / 1e4),
) -> np.ndarray:
    """K free shock vectors (K, n_assets) minimising the mean ``max_k loss_k / ES`` over the
    books while covering every one, by linear programming (HiGHS).

    ``books_per_es: (n_books, n_assets)`` is each book divided by its ES, so book b is covered
    when ``max_k -y_b . v_k >= 1``. Given which vertex covers each book (the one it loses most
    in), minimising ``sum_b t_b`` subject to ``t_b >= -y_b . v_k`` for every k and
    ``-y_b . v_{a(b)} >= 1`` is a linear program; each round re-assigns the books to the
    vertex they now lose most in and solves again, which never raises the objective. Only the
    three largest losses of each book enter as ``t_b`` rows, and any other row the solution
    violates is added before the round ends. ``start: (K, n_assets)`` must cover every book
    (a scaled ``reduce_to_shocks`` selection does).

    This is the measurement behind the reduction's floor (docs/RISK_MODEL.md, "Reduction at
    4 h"), not the production reduction: free vertices fit the calibration books more tightly
    than scaled tail scenarios do, and held-out coverage falls by as much as inflation does.
    """
    y = np.asarray(books_per_es, dtype=np.float64)
    v = np.array(start, dtype=np.float64)
    k, n = v.shape
    if y.ndim != 2 or y.shape[1] != n:
        raise ValueError(f"books_per_es must be shaped (n_books, {n}), got {y.shape}")
    if ((-(y @ v.T)).max(axis=1) < 1.0 - 1e-9).any():
        raise ValueError("the start vertices must cover every book")
    nb, n_var = y.shape[0], k * n + y.shape[0]
    cost = np.concatenate([np.zeros(k * n), np.ones(nb)])
    var_bounds = [bounds] * (k * n) + [(None, None)] * nb
    best = (-(y @ v.T)).max(axis=1).mean()
    for _ in range(max_rounds):
        loss = -(y @ v.T)  # (n_books, K)
        assign = loss.argmax(axis=1)
        rows = {
            (b, c)
            for b, c in zip(
                np.repeat(np.arange(nb), 3), np.argsort(-loss, 1)[:, :3].ravel(), strict=True
            )
        }
        while True:
            b_, c_ = np.array(sorted(rows)).T
            m = b_.size
            epi = sparse.csr_matrix(
                (
                    np.column_stack([-y[b_], -np.ones(m)]).ravel(),
                    (
                        np.repeat(np.arange(m), n + 1),
                        np.column_stack([c_[:, None] * n + np.arange(n), k * n + b_]).ravel(),
                    ),
                ),
                shape=(m, n_var),
            )
            cover = sparse.csr_matrix(
                (
                    y.ravel(),
                    (np.repeat(np.arange(nb), n), (assign[:, None] * n + np.arange(n)).ravel()),
                ),
                shape=(nb, n_var),
            )
            res = linprog(
                cost,
                A_ub=sparse.vstack([epi, cover]).tocsr(),
                b_ub=np.concatenate([np.zeros(m), -np.ones(nb)]),
                bounds=var_bounds,
                method="highs",
            )
            if not res.success:
                raise RuntimeError(f"vertex fit: {res.message}")
            new_v, t = res.x[: k * n].reshape(k, n), res.x[k * n :]
            missed = np.argwhere(-(y @ new_v.T) > t[:, None] + 1e-9)
            if missed.size == 0:
                break
            rows |= set(map(tuple, missed))
        mean = (-(y @ new_v.T)).max(axis=1).mean()
        v = new_v
        if mean > best - 1e-6:
            break
        best = mean
    return v


def quantize_bps(moves: np.ndarray) -> np.ndarray:
    """Relative moves to int16 bps, rounding magnitudes up (against the account on that side)."""
    bps = np.sign(moves) * np.ceil(np.abs(moves) * 1e4 - 1e-9)
    return np.clip(bps, MIN_SHOCK_BPS, MAX_SHOCK_BPS).astype(np.int16)


def _book_targets(
    books: np.ndarray,
    moves: np.ndarray,
    weights: np.ndarray | None,
    alpha: float,
    also_cover: ScenarioSet | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each book's target ES (n_books,) and the tail-average scenario giving it (n_books,
    n_assets): the larger of its ES in ``moves`` and in ``also_cover``. When ``also_cover``
    is the equally likely first rows of ``moves`` (a stressed blend's current scenarios), one
    pass over them gives both."""
    n_prefix = also_cover.moves.shape[0] if also_cover is not None else 0
    if (
        also_cover is not None
        and also_cover.weights is None
        and weights is not None
        and n_prefix <= moves.shape[0]
        and np.array_equal(moves[:n_prefix], also_cover.moves)
    ):
        (es, cands), (es2, cands2) = blend_and_prefix_tail_averages(
            books, moves, weights, n_prefix, alpha
        )
    else:
        es, cands = weighted_tail_average_scenarios(books, moves, weights, alpha)
        if also_cover is not None:
            es2, cands2 = weighted_tail_average_scenarios(
                books, check_moves(also_cover.moves), also_cover.weights, alpha
            )
    if also_cover is not None:
        use2 = es2 > es
        es, cands = np.where(use2, es2, es), np.where(use2[:, None], cands2, cands)
    return np.maximum(es, 1e-12), cands


def vertex_fit_coverage(
    scenarios: ScenarioSet,
    alpha: float = 0.99,
    k: int = DEFAULT_K,
    n_fit_books: int = 512,
    n_validation_books: int = 1000,
    seed: int = 0,
    also_cover: ScenarioSet | None = None,
) -> tuple[Coverage, Coverage]:
    """Calibration and held-out coverage of ``k`` free vertices fitted by :func:`fit_vertices`
    to the books ``reduce_to_shocks`` calibrates on (its selection, scaled to cover, is the
    start). Any ``k`` (no on-chain limit), unquantised: the floor of the mean ES
    inflation a K-scenario reduction can reach on these books. More fit books buy held-out
    coverage with inflation."""
    moves = check_moves(scenarios.moves)
    weights = check_weights(scenarios.weights, moves.shape[0])
    n_assets = moves.shape[1]
    rng = np.random.default_rng(seed)
    _, dirs = representative_directions(moves, scenarios.assets, weights)
    fit_books = np.vstack([dirs, random_books(n_fit_books, n_assets, rng)])
    es, cands = _book_targets(fit_books, moves, weights, alpha, also_cover)
    ratio = -(fit_books @ cands.T) / es[:, None]
    chosen = _refine_swaps(ratio, _greedy_select(ratio, int(k)))
    start = cands[chosen] / ratio[:, chosen].max(axis=1).min()
    y = fit_books / es[:, None]
    v = fit_vertices(y, start)
    val_books = random_books(n_validation_books, n_assets, rng)
    val_es, _ = _book_targets(val_books, moves, weights, alpha, also_cover)
    return (
        coverage((-(y @ v.T)).max(axis=1)),
        coverage((-(val_books @ v.T)).max(axis=1) / val_es),
    )


def reduce_to_shocks(
    scenarios: ScenarioSet,
    alpha: float = 0.99,
    k: int = DEFAULT_K,
    n_fit_books: int = 512,
    n_validation_books: int = 1000,
    seed: int = 0,
    also_cover: ScenarioSet | None = None,
) -> ShockSet:
    """Reduce a scenario set to K joint shocks whose max loss covers ES_alpha.

    1. Calibration books: ``representative_directions`` plus ``n_fit_books`` random books.
    2. Each book's tail-average scenario (the probability-weighted mean move over its worst
       (1 - alpha) mass of scenarios) is a candidate; the book loses exactly its ES in it.
       With ``also_cover`` (a second scenario set on the same assets, e.g. the unblended
       current-period scenarios when ``scenarios`` mixes in a stressed period) the target of
       each book is the larger of its two ES, and the candidate the tail average that gives it.
    3. ``_greedy_select`` picks K candidates, ``_refine_swaps`` improves the worst-covered
       book by single swaps; a common scale ``s >= 1`` then lifts them until
       every calibration book has ``max_k loss_k >= ES`` after int16 bps rounding.
    4. Coverage is measured on ``n_validation_books`` fresh random books.
    """
    if int(k) != k or not 1 <= k <= MAX_SCENARIOS:
        raise ValueError(f"k must be an integer in 1..{MAX_SCENARIOS}, got {k}")
    moves = check_moves(scenarios.moves)  # (n_sims, n_assets)
    weights = check_weights(scenarios.weights, moves.shape[0])
    n_assets = moves.shape[1]
    if also_cover is not None and also_cover.moves.shape[1] != n_assets:
        raise ValueError("also_cover must have the same assets as scenarios")
    rng = np.random.default_rng(seed)
    labels, dirs = representative_directions(moves, scenarios.assets, weights)
    fit_books = np.vstack([dirs, random_books(n_fit_books, n_assets, rng)])
    labels += [f"random book {i}" for i in range(n_fit_books)]

    def target(books: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _book_targets(books, moves, weights, alpha, also_cover)

    es, cands = target(fit_books)  # (n_b,), (n_b, n_assets)
    ratio = -(fit_books @ cands.T) / es[:, None]  # (n_books, n_cand)
    chosen = _refine_swaps(ratio, _greedy_select(ratio, int(k)))
    selected = cands[chosen]  # (K, n_assets)
    val_books = random_books(n_validation_books, n_assets, rng)
    val_es, _ = target(val_books)

    def ratios(books: np.ndarray, books_es: np.ndarray, shocks: np.ndarray) -> np.ndarray:
        return (-(books @ shocks.astype(np.float64)) / 1e4).max(axis=1) / books_es

    scale = max(1.0, 1.0 / ratio[:, chosen].max(axis=1).min())
    for _ in range(20):  # rounding and the -100% clip can leave a book a hair short
        shocks = quantize_bps(scale * selected).T  # (n_assets, K)
        worst = ratios(fit_books, es, shocks).min()
        if worst >= 1.0:
            break
        scale *= max(1.0 / worst, 1.0005)  # at least a step the 1 bp grid can see
    else:
        raise RuntimeError("could not scale the scenarios to cover every calibration book")
    return ShockSet(
        scenarios.assets,
        shocks,
        tuple(labels[c] for c in chosen),
        float(scale),
        float(alpha),
        scenarios.horizon,
        coverage(ratios(fit_books, es, shocks)),
        coverage(ratios(val_books, val_es, shocks)),
    )


# --------------------------------------------------------------------------------------------
# Stressed period (anti-procyclicality)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StressedPeriod:
    """The most volatile run of daily returns known at ``asof``."""

    start: np.datetime64  # close time of the first daily return in the period
    end: np.datetime64  # close time of the last one (<= asof)
    moves: np.ndarray  # (n_days, n_assets) relative 1-day moves of the period
    rms_daily_vol: float  # sqrt(mean over assets and days of squared log returns)
    n_days_searched: int  # daily returns known at asof, from which the period was picked

    def moves_over(self, horizon_hours: int) -> np.ndarray:
        """The period's moves rescaled to a horizon (square-root of time on log moves),
        (n_days, n_assets); unchanged for 24 h."""
        if horizon_hours == 24:
            return self.moves
        return np.expm1(np.log1p(self.moves) * np.sqrt(horizon_hours / 24.0))

    def summary(self) -> str:
        return (
            f"stressed period {str(self.start)[:10]} .. {str(self.end)[:10]} "
            f"({self.moves.shape[0]} daily moves, RMS daily vol {self.rms_daily_vol:.2%}, "
            f"picked from {self.n_days_searched} days)"
        )


def select_stressed_period(
    close_times: np.ndarray,
    log_returns: np.ndarray,
    asof: np.datetime64,
    window_days: int = 365,
    min_days: int = 30,
) -> StressedPeriod | None:
    """The ``window_days`` consecutive daily returns with the largest mean squared return.

    Only returns whose close time is ``<= asof`` are searched, so data after ``asof`` cannot
    change the result. ``close_times: (n,)`` datetime64, increasing; ``log_returns: (n,
    n_assets)`` 1-day log returns. The score is the mean over assets of each asset's realised
    variance in the window (every asset's stress counts, hedged directions included); ties go
    to the most recent window. With fewer than ``window_days`` known returns the whole history
    is the period; with fewer than ``min_days`` there is no period (None).
    """
    r = as_returns_2d(log_returns)
    t = np.asarray(close_times).astype("datetime64[s]")
    if t.shape[0] != r.shape[0]:
        raise ValueError(f"{t.shape[0]} close times for {r.shape[0]} returns")
    if window_days < 1:
        raise ValueError("window_days must be >= 1")
    n = int(np.searchsorted(t, np.datetime64(asof, "s"), side="right"))
    if n < min_days:
        return None
    sq = np.mean(r[:n] ** 2, axis=1)  # (n,) mean over assets
    w = min(window_days, n)
    c = np.concatenate([[0.0], np.cumsum(sq)])
    score = c[w:] - c[:-w]  # (n - w + 1,) window sums, window i = rows i .. i + w - 1
    i = int(np.flatnonzero(score >= score.max() * (1 - 1e-12))[-1])
    return StressedPeriod(
        t[i],
        t[i + w - 1],
        np.expm1(r[i : i + w]),
        float(np.sqrt(score[i] / w)),
        n,
    )


def reduce_with_stress(
    current: ScenarioSet,
    period: StressedPeriod | None,
    weight: float,
    horizon_hours: int,
    alpha: float,
    k: int,
    **reduce_kwargs,
) -> tuple[ShockSet, ScenarioSet]:
    """The production reduction, shared by ``calibrate`` and the backtest: blend the stressed
    period in with probability ``weight`` (when there is one) and reduce to K shocks that
    cover ES of both the blend and the current scenarios alone. Returns the shocks and the
    scenario set they model (the blend, or ``current``)."""
    if period is None or weight == 0:
        return reduce_to_shocks(current, alpha, k, **reduce_kwargs), current
    model = blend_scenarios(current, period.moves_over(horizon_hours), weight)
    return reduce_to_shocks(model, alpha, k, also_cover=current, **reduce_kwargs), model


def blend_scenarios(current: ScenarioSet, stressed_moves: np.ndarray, weight: float) -> ScenarioSet:
    """Mixture of two scenario sets: probability ``weight`` on the stressed moves, ``1 - weight``
    on the current ones (each set keeps its internal weights, equal by default).

    EMIR RTS 153/2013 art. 28(1)(b): at least 25% weight on stressed observations.
    ``stressed_moves: (n_stressed, n_assets)``; returns a weighted ``ScenarioSet``.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    s = check_moves(stressed_moves)
    c = check_moves(current.moves)
    if s.shape[1] != c.shape[1]:
        raise ValueError(f"stressed moves have {s.shape[1]} assets, current {c.shape[1]}")
    wc = check_weights(current.weights, c.shape[0])
    wc = np.full(c.shape[0], 1.0 / c.shape[0]) if wc is None else wc
    weights = np.concatenate([(1.0 - weight) * wc, np.full(s.shape[0], weight / s.shape[0])])
    return ScenarioSet(
        np.vstack([c, s]),
        current.assets,
        current.horizon,
        f"{current.method} + {weight:.0%} stressed period",
        {**current.details, "stress_weight": weight, "n_current": c.shape[0]},
        weights / weights.sum(),
    )
