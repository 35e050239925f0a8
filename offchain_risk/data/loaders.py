"""CSV loaders, aligned price panels and gap reports.

Every price file has the columns ``timestamp,open,high,low,close,volume`` with the bar-open time in
ISO-8601 UTC, oldest first. Hourly files are Binance USDT perpetual bars with volume in base units;
daily files carry volume in USD(T). ``Bars.volume_usd`` normalises both to USD.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "BALLAST_DATA_DIR"
FREQUENCIES = {"1h": np.timedelta64(1, "h"), "1d": np.timedelta64(1, "D")}
_REPO_ROOT = Path(__file__).resolve().parents[2]


class DataNotFoundError(FileNotFoundError):
    """The market-data folder or one of its files is missing."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: the argument, else ``$BALLAST_DATA_DIR``, else ``<repo>/../shared/data``.

    Raises ``DataNotFoundError`` naming the path when the folder does not exist.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or _REPO_ROOT.parent / "shared" / "data"
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise DataNotFoundError(
            f"market data folder not found: {path} (set {DATA_DIR_ENV} to the folder holding "
            "prices/ and iv/)"
        )
    return path


def available_assets(freq: str = "1h", data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Symbols with a price file at this frequency, sorted."""
    folder = resolve_data_dir(data_dir) / "prices" / _check_freq(freq)
    if not folder.is_dir():
        raise DataNotFoundError(f"price folder not found: {folder}")
    return sorted(p.stem for p in folder.glob("*.csv"))


@dataclass(frozen=True)
class Gap:
    """A run of missing bars in one series: bars strictly between ``after`` and ``before``."""

    asset: str
    after: np.datetime64
    before: np.datetime64
    missing_bars: int


@dataclass(frozen=True)
class GapReport:
    """Gaps found while loading and aligning a panel."""

    freq: str
    gaps: tuple[Gap, ...]
    # Rows of each asset's own series that fall outside the common index.
    dropped_rows: dict[str, int]
    common_start: np.datetime64
    common_end: np.datetime64

    @property
    def has_gaps(self) -> bool:
        return bool(self.gaps)

    def summary(self) -> str:
        lines = [
            f"common index {self.common_start} .. {self.common_end} ({self.freq})",
            "rows outside the common index: "
            + ", ".join(f"{a}={n}" for a, n in self.dropped_rows.items()),
        ]
        if not self.gaps:
            lines.append("no gaps")
        for g in self.gaps:
            lines.append(f"gap {g.asset}: {g.missing_bars} bars between {g.after} and {g.before}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Bars:
    """One asset's bars; every array has shape (n_bars,)."""

    asset: str
    freq: str
    timestamps: np.ndarray  # datetime64[s]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base units for 1h perp bars, USD(T) for daily bars

    @property
    def volume_usd(self) -> np.ndarray:
        """Traded value per bar in USD, (n_bars,)."""
        return self.volume * self.close if self.freq == "1h" else self.volume

    def gaps(self) -> list[Gap]:
        step = FREQUENCIES[self.freq]
        # diffs: (n_bars - 1,) spacing between consecutive bars
        diffs = np.diff(self.timestamps)
        idx = np.flatnonzero(diffs > step)
        return [
            Gap(
                self.asset,
                self.timestamps[i],
                self.timestamps[i + 1],
                int(diffs[i] // step) - 1,
            )
            for i in idx
        ]


@dataclass(frozen=True)
class PricePanel:
    """Bars of several assets on a common timestamp index (inner join)."""

    freq: str
    assets: tuple[str, ...]
    timestamps: np.ndarray  # (n_t,) datetime64[s]
    close: np.ndarray  # (n_t, n_assets)
    low: np.ndarray  # (n_t, n_assets)
    high: np.ndarray  # (n_t, n_assets)
    volume_usd: np.ndarray  # (n_t, n_assets)
    gap_report: GapReport = field(repr=False)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    def log_returns(self) -> np.ndarray:
        """Close-to-close log returns, (n_t - 1, n_assets); row i is the move into bar i + 1."""
        return np.diff(np.log(self.close), axis=0)

    def returns_with_close_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Log returns between consecutive bars only, with the time each becomes known.

        Returns ``close_times: (n,)`` datetime64[s] (the later bar's open plus one bar, i.e. its
        close) and ``log_returns: (n, n_assets)``. Returns that would span a gap in the common
        index are dropped rather than reported as one-bar moves.
        """
        step = FREQUENCIES[self.freq]
        keep = np.diff(self.timestamps) == step  # (n_t - 1,)
        r = np.diff(np.log(self.close), axis=0)[keep]
        return (self.timestamps[1:][keep] + step).astype("datetime64[s]"), r

    def common_gaps(self) -> np.ndarray:
        """Indices i where bars i and i + 1 of the common index are more than one step apart."""
        return np.flatnonzero(np.diff(self.timestamps) > FREQUENCIES[self.freq])

    def require_contiguous(self) -> None:
        """Raise ``ValueError`` if the common index skips bars (returns would span a gap)."""
        idx = self.common_gaps()
        if idx.size:
            i = int(idx[0])
            raise ValueError(
                f"{idx.size} gap(s) in the common {self.freq} index, first between "
                f"{self.timestamps[i]} and {self.timestamps[i + 1]}; choose a later start"
            )

    def between(self, start: np.datetime64 | None, end: np.datetime64 | None) -> PricePanel:
        """Rows with ``start <= timestamp <= end`` (either bound may be None)."""
        mask = np.ones(self.timestamps.shape, dtype=bool)
        if start is not None:
            mask &= self.timestamps >= start
        if end is not None:
            mask &= self.timestamps <= end
        if not mask.any():
            raise ValueError(
                f"no {self.freq} data between {start} and {end}; the panel covers "
                f"{self.timestamps[0]} .. {self.timestamps[-1]}"
            )
        return PricePanel(
            self.freq,
            self.assets,
            self.timestamps[mask],
            self.close[mask],
            self.low[mask],
            self.high[mask],
            self.volume_usd[mask],
            self.gap_report,
        )

    def summary(self) -> str:
        return (
            f"{self.freq} panel of {', '.join(self.assets)}: {self.timestamps.size} bars, "
            f"{self.timestamps[0]} .. {self.timestamps[-1]}\n{self.gap_report.summary()}"
        )


@dataclass(frozen=True)
class ImpliedVol:
    """Deribit BTC DVOL daily closes as annualised fractions (0.55 = 55%)."""

    dates: np.ndarray  # (n_days,) datetime64[D]
    vol: np.ndarray  # (n_days,)


def parse_time(value: str | np.datetime64 | None, what: str = "date") -> np.datetime64 | None:
    """Parse an ISO date or datetime (UTC) to ``datetime64[s]``; ``ValueError`` if malformed."""
    if value is None or isinstance(value, np.datetime64):
        return None if value is None else value.astype("datetime64[s]")
    text = str(value).strip().removesuffix("Z")
    try:
        return np.datetime64(text, "s")
    except ValueError as exc:
        raise ValueError(f"bad {what} {value!r}: expected ISO format like 2022-06-01") from exc


# Parsed files by (path, size, modification time): a replay recalibrates every hour on the
# same files; any rewrite of a file parses it again. Arrays are read-only.
_BARS_CACHE: dict[tuple[str, int, int], Bars] = {}


def load_bars(asset: str, freq: str = "1h", data_dir: str | os.PathLike[str] | None = None) -> Bars:
    """Load one asset's bars and validate them (finite positive prices, increasing timestamps)."""
    path = resolve_data_dir(data_dir) / "prices" / _check_freq(freq) / f"{asset}.csv"
    if not path.is_file():
        known = available_assets(freq, data_dir)
        raise ValueError(f"unknown asset {asset!r} at {freq}: no {path}; available: {known}")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _BARS_CACHE:
        _BARS_CACHE[key] = _parse_bars(asset, freq, path)
    return _BARS_CACHE[key]


def _parse_bars(asset: str, freq: str, path: Path) -> Bars:
    with path.open() as fh:
        header = fh.readline().strip().split(",")
        rows = [line.rstrip("\n").split(",") for line in fh if line.strip()]
    expected = ["timestamp", "open", "high", "low", "close", "volume"]
    if header != expected:
        raise ValueError(f"{path}: header {header} != {expected}")
    stamps = np.array([r[0].removesuffix("Z") for r in rows], dtype="datetime64[s]")
    # values: (n_bars, 5) open, high, low, close, volume
    values = np.array([r[1:6] for r in rows], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: non-finite values")
    if (values[:, :4] <= 0).any():
        raise ValueError(f"{path}: non-positive price")
    if (np.diff(stamps) <= np.timedelta64(0, "s")).any():
        raise ValueError(f"{path}: timestamps not strictly increasing")
    stamps.flags.writeable = False
    values.flags.writeable = False
    return Bars(asset, freq, stamps, *(values[:, j] for j in range(5)))


def load_panel(
    assets: list[str] | tuple[str, ...],
    freq: str = "1h",
    start: str | np.datetime64 | None = None,
    end: str | np.datetime64 | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> PricePanel:
    """Load several assets and align them on the timestamps they all share."""
    if not assets:
        raise ValueError("at least one asset is required")
    if len(set(assets)) != len(assets):
        raise ValueError(f"duplicate assets in {list(assets)}")
    t0, t1 = parse_time(start, "start"), parse_time(end, "end")
    if t0 is not None and t1 is not None and t0 >= t1:
        raise ValueError(f"start {t0} must be before end {t1}")
    series = [load_bars(a, freq, data_dir) for a in assets]
    common = series[0].timestamps
    for b in series[1:]:
        common = np.intersect1d(common, b.timestamps, assume_unique=True)
    if common.size == 0:
        raise ValueError(f"assets {list(assets)} share no {freq} timestamps")
    cols = {name: [] for name in ("close", "low", "high", "volume_usd")}
    gaps: list[Gap] = []
    dropped: dict[str, int] = {}
    for b in series:
        idx = np.searchsorted(b.timestamps, common)
        dropped[b.asset] = int(b.timestamps.size - common.size)
        gaps.extend(g for g in b.gaps() if common[0] <= g.after <= common[-1])
        cols["close"].append(b.close[idx])
        cols["low"].append(b.low[idx])
        cols["high"].append(b.high[idx])
        cols["volume_usd"].append(b.volume_usd[idx])
    report = GapReport(freq, tuple(gaps), dropped, common[0], common[-1])
    panel = PricePanel(
        freq,
        tuple(assets),
        common,
        *(np.column_stack(cols[k]) for k in ("close", "low", "high", "volume_usd")),
        gap_report=report,
    )
    return panel.between(t0, t1) if (t0 is not None or t1 is not None) else panel


def load_dvol(data_dir: str | os.PathLike[str] | None = None) -> ImpliedVol:
    """Load the BTC DVOL index (``iv/BTC_DVOL_1d.csv``), converted from percent to fractions."""
    path = resolve_data_dir(data_dir) / "iv" / "BTC_DVOL_1d.csv"
    if not path.is_file():
        raise DataNotFoundError(f"implied-vol file not found: {path}")
    with path.open() as fh:
        fh.readline()
        rows = [line.strip().split(",") for line in fh if line.strip()]
    dates = np.array([r[0] for r in rows], dtype="datetime64[D]")
    vol = np.array([r[1] for r in rows], dtype=np.float64) / 100.0
    if not (np.isfinite(vol).all() and (vol > 0).all()):
        raise ValueError(f"{path}: non-finite or non-positive implied vol")
    return ImpliedVol(dates, vol)


def load_dvol_if_present(data_dir: str | os.PathLike[str] | None = None) -> ImpliedVol | None:
    """BTC DVOL from the data folder, or None when the folder has no implied-vol file (a
    user's folder may hold prices only: implied-vol levels then come from realised vol)."""
    try:
        return load_dvol(data_dir)
    except DataNotFoundError:
        return None


def _check_freq(freq: str) -> str:
    if freq not in FREQUENCIES:
        raise ValueError(f"unknown frequency {freq!r}; use one of {sorted(FREQUENCIES)}")
    return freq
