"""Rolling out-of-sample evaluation of the margin model on real hourly data."""

from offchain_risk.backtest.engine import (
    CRASH_WINDOWS,
    METHODS,
    BacktestConfig,
    BacktestResult,
    run_backtest,
)
from offchain_risk.backtest.stats import TestResult, christoffersen_independence, kupiec_pof

__all__ = [
    "CRASH_WINDOWS",
    "METHODS",
    "BacktestConfig",
    "BacktestResult",
    "TestResult",
    "christoffersen_independence",
    "kupiec_pof",
    "run_backtest",
]
