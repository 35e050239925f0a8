"""Ballast off-chain risk: the numpy margin twin, risk models, backtests and the keeper."""

__all__ = ["__version__"]

__version__ = "0.1.0"
