from pathlib import Path

import numpy as np
import pytest

from offchain_risk.data import (
    DATA_DIR_ENV,
    DataNotFoundError,
    load_bars,
    load_panel,
    parse_time,
    resolve_data_dir,
)

HEADER = "timestamp,open,high,low,close,volume\n"


def _write(folder: Path, asset: str, hours: list[int], close=100.0, bad: str | None = None):
    path = folder / "prices" / "1h"
    path.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for h in hours:
        t = np.datetime64("2022-01-01T00:00:00") + np.timedelta64(h, "h")
        c = bad if bad and h == hours[-1] else f"{close + h}"
        lines.append(f"{t}Z,{close},{close + 1},{close - 1},{c},10\n")
    (path / f"{asset}.csv").write_text("".join(lines))


def test_resolve_data_dir__missing_folder__error_names_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataNotFoundError, match=str(missing)):
        resolve_data_dir(missing)


def test_resolve_data_dir__env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()


def test_load_panel__aligns_on_common_index_and_reports_gaps(tmp_path):
    _write(tmp_path, "AAA", list(range(10)))
    _write(tmp_path, "BBB", [2, 3, 4, 7, 8, 9, 10, 11])
    panel = load_panel(["AAA", "BBB"], data_dir=tmp_path)
    assert panel.close.shape == (6, 2)
    assert panel.timestamps[0] == np.datetime64("2022-01-01T02:00:00")
    report = panel.gap_report
    assert report.has_gaps
    (gap,) = report.gaps
    assert (gap.asset, gap.missing_bars) == ("BBB", 2)
    assert report.dropped_rows == {"AAA": 4, "BBB": 2}
    np.testing.assert_allclose(panel.log_returns()[0, 0], np.log(103 / 102))
    with pytest.raises(ValueError, match="gap"):
        panel.require_contiguous()
    assert "BBB" in report.summary()


def test_load_bars__unknown_asset__lists_available(tmp_path):
    _write(tmp_path, "AAA", [0, 1])
    with pytest.raises(ValueError, match=r"unknown asset 'ZZZ'.*AAA"):
        load_bars("ZZZ", data_dir=tmp_path)


def test_load_bars__nan_price__raises(tmp_path):
    _write(tmp_path, "AAA", [0, 1, 2], bad="nan")
    with pytest.raises(ValueError, match="non-finite"):
        load_bars("AAA", data_dir=tmp_path)


def test_load_panel__start_after_end__raises(tmp_path):
    _write(tmp_path, "AAA", [0, 1])
    with pytest.raises(ValueError, match="before"):
        load_panel(["AAA"], start="2022-02-01", end="2022-01-01", data_dir=tmp_path)


def test_parse_time__bad_date__raises():
    with pytest.raises(ValueError, match="bad start"):
        parse_time("2022-13-45", "start")
