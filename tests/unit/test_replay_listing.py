"""The replay's listing from the risk engine: calibrated on data closed by the window's start
only, for any symbol with price data, with hand-written rows only as a named fallback; the
keeper's recalibrating target reads no data past the chain's clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.keeper.risk_updater import PriceHistory, RecalibratingTarget
from offchain_risk.keeper.signer import ParamSet
from offchain_risk.models.horizon import MarginPeriodOfRisk, add_on_shocks
from offchain_risk.replay.listing import ListingConfig, calibrated_listing

ASOF = np.datetime64("2020-02-15T00:00:00", "s")
HOURLY_START = np.datetime64("2020-01-01T00:00:00", "s")  # 45 days before ASOF
HEADER = "timestamp,open,high,low,close,volume\n"


def _write(path: Path, stamps: np.ndarray, close: np.ndarray, volume: float) -> None:
    prev = np.concatenate([[close[0]], close[:-1]])
    rows = [
        f"{t!s}Z,{o:.6f},{max(o, c) * 1.001:.6f},{min(o, c) * 0.999:.6f},{c:.6f},{volume}\n"
        for t, o, c in zip(stamps, prev, close, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(rows))


def _market(folder: Path, seed: int = 3) -> None:
    """XRP and ADA (no hand-written replay row) with 45 days of hourly bars before ASOF and
    20 after; DOT with 5 days before ASOF; daily bars of all three for 400 days."""
    rng = np.random.default_rng(seed)
    hours = np.arange(HOURLY_START, ASOF + np.timedelta64(20, "D"), np.timedelta64(1, "h"))
    common = rng.standard_normal(hours.size)
    days = np.arange(
        ASOF - np.timedelta64(400, "D"), ASOF + np.timedelta64(20, "D"), np.timedelta64(1, "D")
    )
    for name, price, vol in (("XRP", 0.25, 0.012), ("ADA", 0.05, 0.015), ("DOT", 4.0, 0.02)):
        z = 0.7 * common + 0.7 * rng.standard_normal(hours.size)
        close = price * np.exp(np.cumsum(vol * z))
        keep = hours >= (ASOF - np.timedelta64(5, "D") if name == "DOT" else HOURLY_START)
        _write(folder / "prices" / "1h" / f"{name}.csv", hours[keep], close[keep], 1e7)
        daily = price * np.exp(np.cumsum(0.05 * rng.standard_normal(days.size)))
        _write(folder / "prices" / "1d" / f"{name}.csv", days, daily, 1e8)


def _poison_after(folder: Path, cutoff: np.datetime64) -> None:
    """Multiply every price of a bar that closes after ``cutoff`` by 1.3 (hourly and daily)."""
    for freq, step in (("1h", np.timedelta64(1, "h")), ("1d", np.timedelta64(1, "D"))):
        for f in (folder / "prices" / freq).glob("*.csv"):
            lines = f.read_text().splitlines(keepends=True)
            out = [lines[0]]
            for line in lines[1:]:
                cells = line.rstrip("\n").split(",")
                if np.datetime64(cells[0].removesuffix("Z"), "s") + step > cutoff:
                    cells[1:5] = [f"{float(x) * 1.3:.6f}" for x in cells[1:5]]
                out.append(",".join(cells) + "\n")
            f.write_text("".join(out))


@pytest.fixture
def market(tmp_path: Path) -> Path:
    _market(tmp_path)
    return tmp_path


OPENING = {"XRP": 0.25, "ADA": 0.05}
CFG = ListingConfig(window_days=60)


def test_calibrated_listing__symbols_without_hand_written_rows__calibrated(market):
    assert "XRP" not in devnet.REPLAY_SPECS and "ADA" not in devnet.REPLAY_SPECS
    listing = calibrated_listing(OPENING, ASOF, CFG, market)
    assert listing.calibrated == ("XRP", "ADA") and listing.fallback == ()
    assert [m.symbol for m in listing.markets] == ["XRP", "ADA"]
    assert listing.shocks_bps.shape == (2, 32)
    # joint scenarios with moves both ways, sized for the 4 h horizon, not the devnet rows
    assert (listing.shocks_bps.min(axis=1) < 0).all() and (listing.shocks_bps.max(axis=1) > 0).all()
    assert listing.params["metadata"]["horizon_hours"] == MarginPeriodOfRisk().hours == 4
    assert listing.params["metadata"]["data_range"][1] == str(ASOF) + "Z"
    assert listing.im_multiplier_wad == int(listing.params["im_multiplier_wad"])
    assert "calibrated: XRP, ADA" in listing.summary()


def test_calibrated_listing__data_after_window_start_poisoned__parameters_unchanged(market):
    before = calibrated_listing(OPENING, ASOF, CFG, market)
    _poison_after(market, ASOF)
    after = calibrated_listing(OPENING, ASOF, CFG, market)
    np.testing.assert_array_equal(after.shocks_bps, before.shocks_bps)
    assert after.markets == before.markets
    assert after.im_multiplier_wad == before.im_multiplier_wad
    assert after.params == before.params
    # the same poison one hour earlier reaches the calibration: the check can fail
    _poison_after(market, ASOF - np.timedelta64(1, "h"))
    earlier = calibrated_listing(OPENING, ASOF, CFG, market)
    assert not np.array_equal(earlier.shocks_bps, before.shocks_bps)


def test_calibrated_listing__too_little_history__hand_written_row_named(market):
    listing = calibrated_listing({"XRP": 0.25, "DOT": 4.0, "ADA": 0.05}, ASOF, CFG, market)
    assert listing.calibrated == ("XRP", "ADA") and listing.fallback == ("DOT",)
    dot = listing.markets[1]
    generic = devnet.REPLAY_SPECS["LINK"]
    assert (dot.symbol, dot.floor_bps, dot.token) == ("DOT", generic[0], None)
    np.testing.assert_array_equal(listing.shocks_bps[1], devnet.DEFAULT_SHOCKS_BPS[generic[3]])
    assert "hand-written shock rows (too little history): DOT" in listing.summary()


def test_calibrated_listing__missing_price_file__error_names_the_file(market):
    with pytest.raises(ValueError, match=r"no .*prices/1h/SOL\.csv"):
        calibrated_listing({"XRP": 0.25, "SOL": 20.0}, ASOF, CFG, market)


def test_calibrated_listing__bad_opening_price__clear_error(market):
    with pytest.raises(ValueError, match="XRP: opening price must be positive"):
        calibrated_listing({"XRP": 0.0, "ADA": 0.05}, ASOF, CFG, market)


def _target(market: Path, now: list[float]) -> tuple[RecalibratingTarget, list]:
    seen: list[np.datetime64] = []

    def calibrate(asof: np.datetime64) -> dict:
        seen.append(asof)
        return calibrated_listing(OPENING, asof, CFG, market).params

    opening = calibrated_listing(OPENING, ASOF, CFG, market)
    base = ParamSet(
        assets=np.array([0, 1]),
        shocks_bps=opening.shocks_bps,
        floor_bps=np.array([50, 50]),
        haircut_bps=np.array([0, 0]),
        im_multiplier_wad=opening.im_multiplier_wad,
        min_discount_wad=2 * 10**16,
        max_discount_wad=10**17,
    )
    target = RecalibratingTarget(
        base,
        {"XRP": 0, "ADA": 1},
        np.array([0.02, 0.02]),
        4 * 3600.0,
        opening.params,
        ASOF,
        calibrate,
        clock=lambda: now[0],
        every_s=3600.0,
    )
    return target, seen


def _history() -> PriceHistory:
    return PriceHistory([0.0, 3600.0], [np.array([0.25, 0.05]), np.array([0.25, 0.05])])


def test_recalibrating_target__chain_clock__calibrates_on_bars_closed_by_then_only(market):
    now = [1_000.0]
    target, seen = _target(market, now)
    target(_history(), np.zeros(2))
    assert seen == []  # not anchored: the opening listing
    target.anchor(1_000.0)
    now[0] = 1_000.0 + 2 * 3600 + 3599  # 2 h 59 min 59 s into the window
    first = target(_history(), np.zeros(2))
    assert seen == [ASOF + np.timedelta64(2, "h")]
    # every bar closing after the chain's clock poisoned: the same target
    _poison_after(market, ASOF + np.timedelta64(2, "h"))
    target2, seen2 = _target(market, now)
    target2.anchor(1_000.0)
    again = target2(_history(), np.zeros(2))
    assert seen2 == seen
    np.testing.assert_array_equal(again.shocks_bps, first.shocks_bps)
    assert again.im_multiplier_wad == first.im_multiplier_wad
    # within the hour: no new calibration
    target(_history(), np.zeros(2))
    assert len(seen) == 1


def test_margin_period_of_risk__parts__rounded_up_to_whole_hours():
    assert MarginPeriodOfRisk().hours == 4  # 1 h + 36 s + 2 h
    assert MarginPeriodOfRisk(close_out_s=0, keeper_blocks=0).hours == 1
    assert MarginPeriodOfRisk(3600, 300, 12, 3600).hours == 3
    with pytest.raises(ValueError, match="non-negative"):
        MarginPeriodOfRisk(close_out_s=-1)


def test_add_on_shocks__moves_widened_away_from_zero_and_floored():
    shocks = np.array([[-500, 500, 0, -9_990]])
    out = add_on_shocks(shocks, np.array([20]))
    np.testing.assert_array_equal(out, [[-520, 520, 0, -10_000]])


def test_cli_calibrate__data_dir_horizon_and_close_out__in_the_parameter_set(market, tmp_path):
    import json

    from click.testing import CliRunner

    from offchain_risk.__main__ import cli

    out = tmp_path / "params.json"
    args = ["calibrate", "--out", str(out), "--data-dir", str(market), "--assets", "XRP,ADA"]
    args += ["--horizon-hours", "4", "--close-out-usd", "500000", "--window-days", "60"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    meta = json.loads(out.read_text())["metadata"]
    assert meta["horizon_hours"] == 4
    assert meta["liquidity_add_on"]["close_out_position_usd"] == 500_000
    assert all(b > 0 for b in meta["liquidity_add_on"]["bps"].values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--assets", "XRP,SOL"], "unknown asset(s) ['SOL']; hourly data exists for"),
        (["--data-dir", "/nonexistent/ballast-data"], "market data folder not found"),
    ],
)
def test_cli_calibrate__data_dir_missing_file__error_names_it(market, tmp_path, extra, message):
    from click.testing import CliRunner

    from offchain_risk.__main__ import cli

    args = ["calibrate", "--out", str(tmp_path / "p.json"), "--data-dir", str(market), *extra]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0
    assert message in res.output
    assert not (tmp_path / "p.json").exists()


def test_recalibrating_target__asset_outside_the_calibration__keeps_its_listed_row():
    base = ParamSet(
        assets=np.array([0, 1]),
        shocks_bps=np.array([[-1_000, 1_000], [-2_000, 2_000]]),
        floor_bps=np.array([100, 300]),
        haircut_bps=np.array([10, 0]),
        im_multiplier_wad=15 * 10**17,
        min_discount_wad=2 * 10**16,
        max_discount_wad=10**17,
    )
    params = {
        "shocks_bps": {"XRP": [-700, 650]},
        "floor_bps": {"XRP": 50},
        "haircut_bps": {"XRP": 40},
        "im_multiplier_wad": str(125 * 10**16),
        "metadata": {"horizon_vol": {"XRP": 0.05}},
    }
    target = RecalibratingTarget(
        base,
        {"XRP": 0, "DOT": 1},
        np.array([0.02, 0.04]),
        4 * 3600.0,
        params,
        ASOF,
        lambda asof: params,
        clock=lambda: 0.0,
    )
    out = target(_history(), np.zeros(2))  # calm: no volatility scaling
    np.testing.assert_array_equal(out.shocks_bps[0][:2], [-700, 650])
    np.testing.assert_array_equal(out.shocks_bps[1][:2], [-2_000, 2_000])
    assert list(out.floor_bps) == [50, 300] and list(out.haircut_bps) == [40, 0]
    assert out.im_multiplier_wad == 125 * 10**16
    np.testing.assert_allclose(target.vol, [0.05, 0.04])
