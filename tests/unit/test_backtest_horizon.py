"""The backtest at the engine's margin horizon: the margin period of risk, the close-out add-on,
and realised losses over the same horizon."""

import numpy as np
import pytest

from offchain_risk.backtest import BacktestConfig, run_backtest
from offchain_risk.backtest.books import NOTIONAL_USD
from offchain_risk.data.loaders import GapReport, PricePanel
from offchain_risk.models.horizon import CLOSE_OUT_REFERENCE_USD, MarginPeriodOfRisk

HOUR = np.timedelta64(1, "h")
SMALL = dict(
    window_days=20, min_history_days=14, n_random_books=20, n_fit_books=32, k=6, stress_weight=0.0
)


def _hourly(seed=5, n_days=24, volume_usd=1e9):
    rng = np.random.default_rng(seed)
    n = n_days * 24
    t = np.datetime64("2021-03-01T00:00:00") + np.arange(n) * HOUR
    close = 100 * np.exp(np.cumsum(rng.standard_normal((n, 2)) * 0.004, axis=0))
    assets = ("BTC", "ETH")
    rep = GapReport("1h", (), {a: 0 for a in assets}, t[0], t[-1])
    vol = np.full((n, 2), volume_usd)
    return PricePanel("1h", assets, t, close, close, close, vol, rep)


@pytest.fixture(scope="module")
def runs():
    panel = _hourly()
    with_add_on = run_backtest(panel, BacktestConfig(**SMALL), "2021-03-16", False)
    without = run_backtest(
        panel, BacktestConfig(close_out_position_usd=0.0, **SMALL), "2021-03-16", False
    )
    return panel, with_add_on, without


def test_defaults__backtest_calibrate_and_replay__one_horizon_and_one_close_out_size():
    from offchain_risk.calibrate import CalibrationConfig
    from offchain_risk.replay.listing import ListingConfig

    replay = ListingConfig().calibration()
    for cfg in (BacktestConfig(), CalibrationConfig(), replay):
        assert cfg.horizon_hours == MarginPeriodOfRisk().hours == 4
        assert cfg.close_out_position_usd == CLOSE_OUT_REFERENCE_USD > 0
    # the command line's shared engine options take calibrate's defaults for both commands
    shared = ("alpha", "k", "floor_bps", "stress_weight", "stress_window_days")
    for name in shared:
        assert getattr(BacktestConfig(), name) == getattr(CalibrationConfig(), name), name


def test_backtest_config__negative_close_out__refused():
    with pytest.raises(ValueError, match="close_out_position_usd"):
        BacktestConfig(close_out_position_usd=-1.0)


def test_run_backtest__realised_loss_is_the_move_over_the_horizon(runs):
    panel, res, _ = runs
    h = res.config.horizon_hours
    j = np.searchsorted(panel.timestamps, res.times - HOUR)  # bar closing at T
    btc = panel.close[:, 0]
    want = -NOTIONAL_USD * (btc[j + h] / btc[j] - 1.0)  # book 0: $1M long BTC
    np.testing.assert_allclose(res.realised_loss[:, 0], want, rtol=1e-9)
    assert res.times.size >= 8


def test_run_backtest__close_out_add_on_widens_every_shock_away_from_zero(runs):
    _, res, bare = runs
    s, b = res.shocks_bps.astype(np.int64), bare.shocks_bps.astype(np.int64)
    widen = np.abs(s) - np.abs(b)  # (n_steps, n_assets, K)
    nonzero = b != 0
    assert (np.sign(s[nonzero]) == np.sign(b[nonzero])).all()
    # one add-on per step and asset, the same on every scenario, positive at $1M into $24B/day
    per_asset = widen.max(axis=2)
    assert (per_asset > 0).all()
    assert (widen[nonzero] == np.broadcast_to(per_asset[:, :, None], widen.shape)[nonzero]).all()
    assert (res.margin["ballast"] >= bare.margin["ballast"]).all()
    assert (res.margin["ballast"][:, 0] > bare.margin["ballast"][:, 0]).all()


def test_run_backtest__thinner_volume__larger_add_on(runs):
    _, thick, thick_bare = runs
    thin = run_backtest(_hourly(volume_usd=1e7), BacktestConfig(**SMALL), "2021-03-16", False)
    np.testing.assert_array_equal(thin.realised_loss, thick.realised_loss)

    def add_on(res):  # (n_steps, n_assets)
        return (np.abs(res.shocks_bps.astype(int)) - np.abs(thick_bare.shocks_bps.astype(int))).max(
            axis=2
        )

    # square-root law: 100x less volume, 10x the impact (up to rounding up to whole bps)
    np.testing.assert_allclose(add_on(thin), 10 * add_on(thick), atol=10)


def test_run_backtest__workers__same_result_as_one_process(runs):
    panel, one, _ = runs
    two = run_backtest(panel, BacktestConfig(**SMALL), "2021-03-16", False, workers=2)
    np.testing.assert_array_equal(two.times, one.times)
    for m in one.margin:
        np.testing.assert_array_equal(two.margin[m], one.margin[m])
    np.testing.assert_array_equal(two.realised_loss, one.realised_loss)
    np.testing.assert_array_equal(two.model_exceed_prob, one.model_exceed_prob)
    np.testing.assert_array_equal(two.shocks_bps, one.shocks_bps)
    with pytest.raises(ValueError, match="workers"):
        run_backtest(panel, BacktestConfig(**SMALL), "2021-03-16", False, workers=0)


def test_cli_backtest__defaults_at_the_margin_horizon_and_bad_options_refused(tmp_path):
    from click.testing import CliRunner

    from offchain_risk.__main__ import cli

    runner = CliRunner()
    for command in ("backtest", "calibrate"):
        text = runner.invoke(cli, [command, "--help"], terminal_width=200).output
        assert "--horizon-hours" in text and "[default: 4;" in text, command
        assert "--close-out-usd" in text and "[default: 500000.0;" in text, command
        assert ("--workers" in text) == (command == "backtest")
    for bad in (["--workers", "0"], ["--horizon-hours", "25"], ["--close-out-usd", "-1"]):
        res = runner.invoke(cli, ["backtest", "--out", str(tmp_path / "bt"), *bad])
        assert res.exit_code == 2 and "Invalid value" in res.output, bad
        assert not (tmp_path / "bt").exists()
