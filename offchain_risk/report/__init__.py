"""Markdown tables and PNG figures for risk reports."""

from offchain_risk.report.backtest_report import write_backtest_report
from offchain_risk.report.tables import markdown_table

__all__ = ["markdown_table", "write_backtest_report"]
