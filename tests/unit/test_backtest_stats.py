import numpy as np
import pytest

from offchain_risk.backtest.stats import christoffersen_independence, kupiec_pof


def test_kupiec_pof__textbook_250_obs_4_exceptions__lr_077():
    res = kupiec_pof(250, 4, 0.01)
    # -2 ln[.99^246 .01^4 / (.984^246 .016^4)] = 0.7691
    assert res.statistic == pytest.approx(0.7691, abs=5e-4)
    assert res.p_value == pytest.approx(0.3805, abs=1e-3)


def test_kupiec_pof__no_exceptions__closed_form():
    res = kupiec_pof(1000, 0, 0.01)
    assert res.statistic == pytest.approx(-2 * 1000 * np.log(0.99))
    assert res.p_value < 1e-4


def test_kupiec_pof__rate_equals_p__statistic_zero():
    assert kupiec_pof(1000, 10, 0.01).statistic == pytest.approx(0.0, abs=1e-9)


def test_kupiec_pof__bad_counts__raises():
    with pytest.raises(ValueError):
        kupiec_pof(10, 11, 0.01)


def test_christoffersen__hand_computed_sequence():
    # transitions 0->0, 0->1, 1->1: pi01 = 1/2, pi11 = 1, pi = 2/3
    res = christoffersen_independence(np.array([0, 0, 1, 1]))
    ll1 = 2 * np.log(0.5)
    ll0 = np.log(1 / 3) + 2 * np.log(2 / 3)
    assert res.statistic == pytest.approx(-2 * (ll0 - ll1))


def test_christoffersen__clustered_vs_spread__clustered_rejected():
    spread = np.zeros(500, dtype=bool)
    spread[::50] = True
    clustered = np.zeros(500, dtype=bool)
    clustered[100:110] = True
    assert christoffersen_independence(spread).p_value > 0.3
    assert christoffersen_independence(clustered).p_value < 0.001


def test_christoffersen__no_exceptions__statistic_zero():
    assert christoffersen_independence(np.zeros(100, dtype=bool)).statistic == 0.0
