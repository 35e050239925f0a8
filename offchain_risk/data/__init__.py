"""Loaders for the shared market-data folder (see ``SOURCES.md`` in that folder).

The folder defaults to ``<repo>/../shared/data`` and is overridden by the environment variable
``BALLAST_DATA_DIR``. Files are never copied into the repository.
"""

from offchain_risk.data.loaders import (
    DATA_DIR_ENV,
    Bars,
    DataNotFoundError,
    Gap,
    GapReport,
    ImpliedVol,
    PricePanel,
    available_assets,
    load_bars,
    load_dvol,
    load_dvol_if_present,
    load_panel,
    parse_time,
    resolve_data_dir,
)

__all__ = [
    "DATA_DIR_ENV",
    "Bars",
    "DataNotFoundError",
    "Gap",
    "GapReport",
    "ImpliedVol",
    "PricePanel",
    "available_assets",
    "load_bars",
    "load_dvol",
    "load_dvol_if_present",
    "load_panel",
    "parse_time",
    "resolve_data_dir",
]
