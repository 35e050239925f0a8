"""Rolling out-of-sample backtest of the K-scenario margin on hourly data.

At every rebalance time T (00:00 UTC each ``step_hours``), using only bars that closed by T:
filtered historical simulation on the trailing window, blended with the stressed period (the most
volatile run of daily moves closed by T, from the daily bars), reduction to K shocks, margin for
every book. The horizon is the engine's margin period of risk (``models/horizon.py``, the one the
replay lists its markets for), and every scenario is widened by the square-root impact of closing
out a book's size (the close-out add-on, from the volume and volatility closed by T). The realised
loss is the book's mark-to-market loss from the close at T to the close ``horizon`` hours later;
rebalancing every ``step_hours >= horizon`` keeps consecutive observations from overlapping.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from offchain_risk.backtest.books import (
    Books,
    build_books,
    fixed_random_weights,
    flat_margin,
    isolated_margin,
    portfolio_margin,
    synthetix_margin,
)
from offchain_risk.backtest.stats import TestResult, christoffersen_independence, kupiec_pof
from offchain_risk.data import PricePanel
from offchain_risk.models.haircuts import SquareRootImpact
from offchain_risk.models.horizon import (
    CLOSE_OUT_REFERENCE_USD,
    MarginPeriodOfRisk,
    add_on_shocks,
    liquidity_add_on_bps,
)
from offchain_risk.models.risk import exceedance_probability
from offchain_risk.models.scenarios import (
    DEFAULT_K,
    FilteredHistoricalSimulation,
    reduce_with_stress,
    select_stressed_period,
)
from offchain_risk.models.volatility import HOURLY_LAMBDA, EWMAVolatility

CRASH_WINDOWS = {
    "2020-03-12 (Covid)": ("2020-03-12", "2020-03-13"),
    "2021-05-19 (outage)": ("2021-05-19", "2021-05-20"),
    "2022-05 (Terra)": ("2022-05-01", "2022-06-01"),
    "2022-06 (3AC/Celsius)": ("2022-06-01", "2022-07-01"),
    "2022-11 (FTX)": ("2022-11-01", "2022-12-01"),
}
METHODS = ("ballast", "isolated", "flat", "synthetix")


@dataclass(frozen=True)
class CoverageTests:
    n_obs: int
    n_exceed: int
    model_level: float  # mean model exceedance probability of MM over the steps
    kupiec_nominal: TestResult  # against the tested level (config.tested_level)
    kupiec_model: TestResult | None  # against model_level (None when the model gives 0)
    christoffersen: TestResult


@dataclass(frozen=True)
class BacktestConfig:
    alpha: float = 0.99
    # the margin period of risk the on-chain shocks are sized for (4 h)
    horizon_hours: int = MarginPeriodOfRisk().hours
    # close-out size whose square-root impact widens every scenario (0: none), the one the
    # chain's calibration uses
    close_out_position_usd: float = CLOSE_OUT_REFERENCE_USD
    k: int = DEFAULT_K
    window_days: int = 730
    min_history_days: int = 14
    step_hours: int = 24
    floor_bps: float = 50.0
    ewma_lambda: float = HOURLY_LAMBDA
    n_random_books: int = 1000
    n_fit_books: int = 512
    seed: int = 7
    # probability mass on the stressed period's daily moves (0 = current period only); the
    # margin never falls below the unblended current-period calibration
    stress_weight: float = 0.25
    stress_window_days: int = 365
    # exceedance probability the MM is tested against (ES 97.5% ~ VaR 99%, Basel FRTB)
    tested_level: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.stress_weight <= 1.0:
            raise ValueError("stress_weight must be in [0, 1]")
        if not 0.0 < self.tested_level < 1.0:
            raise ValueError("tested_level must be in (0, 1)")
        if self.close_out_position_usd < 0:
            raise ValueError("close_out_position_usd must be non-negative")
        if self.min_history_days * 24 < 2 * self.horizon_hours:
            raise ValueError("min_history_days must cover at least two horizons")
        if self.window_days < self.min_history_days:
            raise ValueError("window_days must be >= min_history_days")


@dataclass(frozen=True)
class BacktestResult:
    config: BacktestConfig
    assets: tuple[str, ...]
    labels: tuple[str, ...]  # (n_books,) three archetypes then random books
    times: np.ndarray  # (n_steps,) rebalance times, datetime64[s]
    margin: dict[str, np.ndarray]  # method -> (n_steps, n_books) USD
    realised_loss: np.ndarray  # (n_steps, n_books) USD, positive = loss
    # (n_steps, n_books): share of that day's simulated scenarios in which the loss exceeds MM,
    # the exceedance probability the model itself assigns to the margin (its level)
    model_exceed_prob: np.ndarray
    gross: np.ndarray  # (n_steps, n_books) USD
    scale: np.ndarray  # (n_steps,) scenario scale factor
    validation_covered: np.ndarray  # (n_steps,) share of held-out books covered in-sample
    shocks_bps: np.ndarray  # (n_steps, n_assets, K) int16, close-out add-on included
    data_range: tuple[str, str] = field(default=("", ""))
    # (n_steps,) first and last close time of the stressed period used (NaT when none)
    stress_start: np.ndarray | None = None
    stress_end: np.ndarray | None = None

    @property
    def n_archetypes(self) -> int:
        return 3

    def mask(self, start: str | None = None, end: str | None = None) -> np.ndarray:
        """Steps with ``start <= time < end``, (n_steps,)."""
        m = np.ones(self.times.shape, dtype=bool)
        if start is not None:
            m &= self.times >= np.datetime64(start)
        if end is not None:
            m &= self.times < np.datetime64(end)
        return m

    def exceedances(self, method: str = "ballast") -> np.ndarray:
        """``realised_loss > margin`` per step and book, (n_steps, n_books)."""
        return self.realised_loss > self.margin[method]

    def coverage_tests(
        self, book: int, steps: np.ndarray, method: str = "ballast"
    ) -> CoverageTests:
        """Exceedance counts and tests for one book over ``steps`` (a boolean mask)."""
        hits = self.exceedances(method)[steps, book]
        n, x = int(hits.size), int(hits.sum())
        level = float(self.model_exceed_prob[steps, book].mean())
        return CoverageTests(
            n,
            x,
            level,
            kupiec_pof(n, x, self.config.tested_level),
            kupiec_pof(n, x, level) if level > 0 else None,
            christoffersen_independence(hits),
        )

    def summary(self) -> str:
        oos = self.mask("2021-01-01")
        lines = [f"backtest {self.times[0]} .. {self.times[-1]}, {self.times.size} steps"]
        for b in range(self.n_archetypes):
            t = self.coverage_tests(b, oos)
            at_level = "n/a" if t.kupiec_model is None else f"{t.kupiec_model.p_value:.3f}"
            lines.append(
                f"{self.labels[b]}: {t.n_exceed}/{t.n_obs} exceedances since 2021 (model level "
                f"{t.model_level:.3%}); Kupiec p at {self.config.tested_level:.2%} "
                f"{t.kupiec_nominal.p_value:.3f}, "
                f"at the model level {at_level}; Christoffersen p "
                f"{t.christoffersen.p_value:.3f}"
            )
        return "\n".join(lines)


def _rebalance_indices(panel: PricePanel, cfg: BacktestConfig, start: np.datetime64) -> np.ndarray:
    """Indices j of the bar closing at each rebalance time (bar open = T - 1h), (n_steps,)."""
    ts = panel.timestamps
    first_ok = ts[0] + np.timedelta64(cfg.min_history_days * 24, "h")
    t0 = max(start, first_ok)
    # first midnight at or after t0
    t0 = t0.astype("datetime64[D]").astype("datetime64[s]") + (
        np.timedelta64(1, "D") if t0 != t0.astype("datetime64[D]") else np.timedelta64(0, "D")
    )
    times = np.arange(t0, ts[-1], np.timedelta64(cfg.step_hours, "h"))
    j = np.searchsorted(ts, times - np.timedelta64(1, "h"))
    valid = (j < ts.size) & (j + cfg.horizon_hours < ts.size)
    j = j[valid]
    if not (ts[j] == times[valid] - np.timedelta64(1, "h")).all():
        raise ValueError("the hourly panel has gaps; the backtest needs a contiguous index")
    return j


def close_out_add_on_bps(
    volume_usd: np.ndarray, horizon_vol: np.ndarray, horizon_hours: int, cfg: BacktestConfig
) -> np.ndarray:
    """(n_assets,) bps: the close-out add-on at T, as ``calibrate`` sets it: the square-root
    impact of ``cfg.close_out_position_usd`` into the median daily volume of the last 30 days
    (fewer when the history is shorter) of ``volume_usd: (n_t, n_assets)``, the bars closed by
    T, at the daily volatility implied by the EWMA ``horizon_vol`` (flat variance per hour)."""
    impact = SquareRootImpact(adv_days=max(1, min(30, volume_usd.shape[0] // 24)))
    adv = impact.average_daily_volume(volume_usd)
    daily_vol = np.asarray(horizon_vol) * np.sqrt(24.0 / horizon_hours)
    return liquidity_add_on_bps(cfg.close_out_position_usd, adv, daily_vol, impact)


@dataclass(frozen=True)
class _StepInputs:
    """What every rebalance step reads (sent once to each worker process)."""

    cfg: BacktestConfig
    assets: tuple[str, ...]
    timestamps: np.ndarray  # (n_t,) bar open times
    log_close: np.ndarray  # (n_t, n_assets)
    volume_usd: np.ndarray  # (n_t, n_assets)
    weights: np.ndarray  # (n_random, n_assets) random books, unit gross
    d_close_t: np.ndarray | None  # (n_days,) close times of the daily returns
    d_ret: np.ndarray | None  # (n_days, n_assets) daily log returns


@dataclass(frozen=True)
class _Step:
    """One rebalance step's figures, every array (n_books,) unless noted."""

    margin: dict[str, np.ndarray]
    realised: np.ndarray
    model_p: np.ndarray
    gross: np.ndarray
    scale: float
    val_cov: float
    shocks_bps: np.ndarray  # (n_assets, K)
    stress: tuple[np.datetime64, np.datetime64] | None
    labels: tuple[str, ...]


def _run_step(inp: _StepInputs, s: int, j: int) -> _Step:
    """Calibrate on the bars closed by T (the close of bar j) and margin every book."""
    cfg, assets = inp.cfg, inp.assets
    returns = np.diff(inp.log_close[max(0, j - cfg.window_days * 24) : j + 1], axis=0)
    fhs = FilteredHistoricalSimulation(EWMAVolatility(cfg.ewma_lambda), cfg.horizon_hours)
    scen = fhs.generate(returns, assets)  # returns known at the close of bar j
    b_i, e_i = assets.index("BTC"), assets.index("ETH")
    cov = np.cov(scen.moves[:, [b_i, e_i]], rowvar=False)  # (2, 2)
    books: Books = build_books(assets, cov[0, 1] / cov[1, 1], inp.weights)
    period = None
    if cfg.stress_weight > 0:
        asof = inp.timestamps[j] + np.timedelta64(1, "h")  # close of bar j = T
        period = select_stressed_period(inp.d_close_t, inp.d_ret, asof, cfg.stress_window_days)
    shocks, model = reduce_with_stress(
        scen,
        period,
        cfg.stress_weight,
        cfg.horizon_hours,
        cfg.alpha,
        cfg.k,
        n_fit_books=cfg.n_fit_books,
        n_validation_books=200,
        seed=s,
    )
    add_on = close_out_add_on_bps(
        inp.volume_usd[: j + 1], scen.details["horizon_vol"], cfg.horizon_hours, cfg
    )
    shocks_bps = add_on_shocks(shocks.shocks_bps, add_on)  # (n_assets, K)
    floor = np.full(len(assets), cfg.floor_bps)
    mm = portfolio_margin(books, shocks_bps, floor)
    move = np.expm1(inp.log_close[j + cfg.horizon_hours] - inp.log_close[j])  # (n_assets,)
    return _Step(
        {
            "ballast": mm,
            "isolated": isolated_margin(books, shocks_bps, floor),
            "flat": flat_margin(books),
            "synthetix": synthetix_margin(books, assets),
        },
        -(books.exposures @ move),
        exceedance_probability(books.exposures, model.moves, mm, model.weights),
        books.gross.sum(axis=1),
        shocks.scale,
        shocks.validation_coverage.covered_share,
        shocks_bps,
        None if period is None else (period.start, period.end),
        books.labels,
    )


def _run_steps(inp: _StepInputs, steps: list[tuple[int, int]]) -> list[_Step]:
    return [_run_step(inp, s, j) for s, j in steps]


def run_backtest(
    panel: PricePanel,
    config: BacktestConfig | None = None,
    start: str | np.datetime64 | None = None,
    progress: bool = True,
    daily: PricePanel | None = None,
    workers: int = 1,
) -> BacktestResult:
    """Roll the calibration forward over ``panel`` (hourly, contiguous) from ``start``.

    ``daily``: daily bars of the same assets for the stressed period (required when
    ``config.stress_weight > 0``); at each step only daily returns closed by T are searched.
    ``workers``: processes the steps are spread over (each step depends only on the data
    closed by its T, so the result does not depend on it).
    """
    cfg = config or BacktestConfig()
    if panel.freq != "1h":
        raise ValueError("the backtest runs on hourly bars")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    panel.require_contiguous()
    d_close_t = d_ret = None
    if cfg.stress_weight > 0:
        if daily is None or daily.freq != "1d":
            raise ValueError("stress_weight > 0 needs the daily bars of the assets (daily=...)")
        if daily.assets != panel.assets:
            raise ValueError(f"daily assets {daily.assets} != hourly assets {panel.assets}")
        d_close_t, d_ret = daily.returns_with_close_times()
    if "BTC" not in panel.assets or "ETH" not in panel.assets:
        raise ValueError("the backtest archetypes need BTC and ETH among the assets")
    start64 = panel.timestamps[0] if start is None else np.datetime64(start, "s")
    idx = _rebalance_indices(panel, cfg, start64)
    if idx.size == 0:
        raise ValueError("no rebalance step has enough history and a full horizon ahead")
    inp = _StepInputs(
        cfg,
        panel.assets,
        panel.timestamps,
        np.log(panel.close),
        panel.volume_usd,
        fixed_random_weights(cfg.n_random_books, panel.n_assets, cfg.seed),
        d_close_t,
        d_ret,
    )
    steps = list(enumerate(int(j) for j in idx))
    bar = tqdm(total=len(steps), desc="backtest", unit="day", disable=not progress)
    if workers == 1:
        out = []
        for s, j in steps:
            out.append(_run_step(inp, s, j))
            bar.update()
    else:
        # contiguous chunks, a few per worker, so the progress bar moves
        chunks = [c.tolist() for c in np.array_split(np.arange(len(steps)), 4 * workers)]
        out = [None] * len(steps)
        with ProcessPoolExecutor(workers) as pool:
            futures = {pool.submit(_run_steps, inp, [steps[i] for i in c]): c for c in chunks if c}
            for fut in as_completed(futures):
                for i, step in zip(futures[fut], fut.result(), strict=True):
                    out[i] = step
                bar.update(len(futures[fut]))
    bar.close()
    stress = np.array(
        [(np.datetime64("NaT"),) * 2 if o.stress is None else o.stress for o in out],
        dtype="datetime64[s]",
    )  # (n_steps, 2)
    return BacktestResult(
        cfg,
        panel.assets,
        out[0].labels,
        panel.timestamps[idx] + np.timedelta64(1, "h"),
        {m: np.array([o.margin[m] for o in out]) for m in METHODS},
        np.array([o.realised for o in out]),
        np.array([o.model_p for o in out]),
        np.array([o.gross for o in out]),
        np.array([o.scale for o in out]),
        np.array([o.val_cov for o in out]),
        np.array([o.shocks_bps for o in out], dtype=np.int16),
        (str(panel.timestamps[0]), str(panel.timestamps[-1])),
        stress[:, 0],
        stress[:, 1],
    )
