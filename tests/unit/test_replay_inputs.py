"""The replay's inputs: the oracle path cut from history, the listing and the books."""

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.data import load_panel
from offchain_risk.replay.path import load_path, window_bounds
from offchain_risk.replay.seed import KINDS, generate_books

ASSETS = ("BTC", "ETH", "BNB", "LINK")


@pytest.mark.data
def test_load_path__close_mode__one_round_per_bar_at_its_close(data_dir):
    path = load_path(ASSETS, "2020-03-12", "2020-03-12", data_dir=data_dir)
    panel = load_panel(ASSETS, "1h", "2020-03-12T00:00", "2020-03-12T23:00", data_dir=data_dir)
    assert path.n_steps == 23 == len(panel.timestamps) - 1
    np.testing.assert_array_equal(path.opening, panel.close[0])
    np.testing.assert_array_equal(path.prices, panel.close[1:])
    # a round is stamped at its bar's close: one hour after the bar opens
    assert path.times[0] == np.datetime64("2020-03-12T02:00:00")
    assert path.opening_time == np.datetime64("2020-03-12T01:00:00")
    np.testing.assert_array_equal(np.diff(path.seconds), 3600)


@pytest.mark.data
def test_load_path__ohlc_mode__extremes_then_close_in_the_bar_direction(data_dir):
    path = load_path(ASSETS, "2020-03-12", "2020-03-12", "ohlc", max_hours=5, data_dir=data_dir)
    panel = load_panel(ASSETS, "1h", "2020-03-12T00:00", "2020-03-12T05:00", data_dir=data_dir)
    assert path.n_steps == 15
    rounds = path.prices.reshape(5, 3, len(ASSETS))  # (bar, round, asset)
    falling = panel.close[1:] < panel.close[:-1]
    np.testing.assert_array_equal(rounds[:, 2], panel.close[1:])
    np.testing.assert_array_equal(rounds[:, 1], np.where(falling, panel.low[1:], panel.high[1:]))
    np.testing.assert_array_equal(rounds[:, 0], np.where(falling, panel.high[1:], panel.low[1:]))
    np.testing.assert_array_equal(path.bar, np.repeat(np.arange(1, 6), 3))


@pytest.mark.data
def test_load_path__max_hours__cuts_the_window(data_dir):
    path = load_path(ASSETS, "2020-03-11", "2020-03-14", max_hours=4, data_dir=data_dir)
    assert path.n_steps == 4 and path.times[-1] == np.datetime64("2020-03-11T05:00:00")


@pytest.mark.data
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ASSETS, "2020-03-12", "2020-03-12", "candles"), "mode must be one of"),
        ((ASSETS, "2020-03-12", "2020-03-11"), "must be before"),
        ((ASSETS, "2020-13-01", "2020-12-01"), "bad start"),
        ((("BTC", "XYZ"), "2020-03-12", "2020-03-13"), "unknown asset 'XYZ'"),
        # AVAX is listed in September 2020: no bar at the start
        ((("BTC", "AVAX"), "2020-03-12", "2020-03-13"), "no 1h data between"),
        ((ASSETS, "2030-01-01", "2030-01-02"), "no 1h data between"),
    ],
)
def test_load_path__bad_window__clear_error(data_dir, args, message):
    with pytest.raises(ValueError, match=message):
        load_path(*args, data_dir=data_dir)


@pytest.mark.data
def test_load_path__max_hours_below_one__refused(data_dir):
    with pytest.raises(ValueError, match="max_hours must be at least 1"):
        load_path(ASSETS, "2020-03-12", "2020-03-13", max_hours=0, data_dir=data_dir)


def test_window_bounds__bare_end_date__includes_the_whole_day():
    t0, t1 = window_bounds("2020-03-11", "2020-03-14")
    assert t0 == np.datetime64("2020-03-11T00:00:00")
    assert t1 == np.datetime64("2020-03-14T23:00:00")
    assert window_bounds("2020-03-11", "2020-03-11T06:00")[1] == np.datetime64("2020-03-11T06:00")


def test_replay_markets__lists_wrapped_collateral_for_eth_and_btc_only():
    specs, shocks = devnet.replay_markets({"BTC": 7_900.0, "ETH": 200.0, "BNB": 17.0})
    assert [s.symbol for s in specs] == ["BTC", "ETH", "BNB"]
    assert [s.token[1] if s.token else None for s in specs] == ["WBTC", "WETH", None]
    assert shocks.shape == (3, 32)
    np.testing.assert_array_equal(shocks[0], devnet.DEFAULT_SHOCKS_BPS[1])


@pytest.mark.parametrize(
    ("prices", "message"),
    [({"BTC": 1.0, "XRP": 0.5}, r"no replay listing for \['XRP'\]"), ({"BTC": 0.0}, "positive")],
)
def test_replay_markets__bad_listing__clear_error(prices, message):
    with pytest.raises(ValueError, match=message):
        devnet.replay_markets(prices)


PRICES = np.array([7_900.0, 200.0, 17.0, 4.0])


def test_generate_books__same_seed__same_books_and_every_kind():
    a = generate_books(300, ASSETS, PRICES, ("BTC", "ETH"), 6, seed=3)
    b = generate_books(300, ASSETS, PRICES, ("BTC", "ETH"), 6, seed=3)
    assert a == b
    assert a != generate_books(300, ASSETS, PRICES, ("BTC", "ETH"), 6, seed=4)
    assert {s.kind for s in a} == set(KINDS)
    # (trader, sub-account) pairs are unique, sub-accounts start at 1
    assert len({(s.trader, s.sub) for s in a}) == 300 and min(s.sub for s in a) == 1


def test_generate_books__shapes_of_each_kind():
    books = generate_books(400, ASSETS, PRICES, ("BTC", "ETH"), 6, seed=11)
    for s in books:
        legs = [x for x in s.size if x]
        coll = np.array(s.collateral)
        if s.kind in ("naked", "over-levered"):
            assert len(legs) == 1 and not coll.any()
        if s.kind == "over-levered":
            assert legs[0] > 0 and 0 <= s.buffer <= 0.02
        if s.kind == "pair":
            assert len(legs) == 2 and legs[0] * legs[1] < 0
        if s.kind == "collateral":
            (a,) = np.flatnonzero(coll)
            assert ASSETS[a] in ("BTC", "ETH")
            assert s.size[a] < 0 and -s.size[a] <= coll[a] + 1e-12
        if s.kind == "cross":
            assert 2 <= len(legs) <= 4
        if s.kind != "over-levered":
            assert 0.03 <= s.buffer <= 3.0


def test_generate_books__no_collateral_asset__hedges_with_pairs():
    books = generate_books(100, ("BNB", "LINK"), PRICES[2:], (), 3, seed=1)
    assert not any(s.kind == "collateral" for s in books)
    assert all(not any(s.collateral) for s in books)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "at least one book"),
        ({"n_traders": 0}, "at least one book and one trader"),
        ({"assets": ("BTC",), "prices": PRICES[:1]}, "at least two assets"),
        ({"prices": PRICES[:3]}, r"\(n_assets,\) positive"),
        ({"prices": np.array([1.0, np.nan, 1.0, 1.0])}, "positive and finite"),
        ({"prices": np.array([1.0, -1.0, 1.0, 1.0])}, "positive and finite"),
    ],
)
def test_generate_books__bad_input__clear_error(kwargs, message):
    args = {
        "n": 10,
        "assets": ASSETS,
        "prices": PRICES,
        "collateral_assets": ("BTC",),
        "n_traders": 2,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        generate_books(**args)
