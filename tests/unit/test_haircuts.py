import numpy as np
import pytest

from offchain_risk.data import ImpliedVol
from offchain_risk.models.haircuts import (
    IMMultiplierPolicy,
    SquareRootImpact,
    dvol_ratio,
    realised_vol_annual,
)


def test_haircut_bps__square_root_law_known_value():
    # 1 * 0.04 * sqrt(1e6 / (0.1 * 1e9)) = 0.004 = 40 bps
    hc = SquareRootImpact(y=1.0, venue_share=0.1).haircut_bps(
        np.array([1e6]), np.array([1e9]), np.array([0.04])
    )
    assert hc.tolist() == [40]


def test_haircut_bps__four_times_size__twice_the_haircut():
    law = SquareRootImpact()
    small, big = law.haircut_bps(np.array([1e6, 4e6]), np.array([1e9, 1e9]), np.array([0.05, 0.05]))
    assert big == pytest.approx(2 * small, abs=1)


def test_haircut_bps__bad_adv__raises():
    with pytest.raises(ValueError, match="ADV"):
        SquareRootImpact().haircut_bps(np.array([1e6]), np.array([0.0]), np.array([0.04]))


def test_average_daily_volume__median_of_daily_sums():
    v = np.ones((24 * 30, 1))
    v[:24] = 100.0  # one loud day does not move the median
    assert SquareRootImpact().average_daily_volume(v).tolist() == [24.0]


def test_im_multiplier__calm_market_raises_im_and_wad_rounds_up():
    policy = IMMultiplierPolicy(base=1.25, cap=2.5, calm_exponent=0.5)
    normal = policy.multiplier(np.array([0.02]), np.array([0.02]))
    calm = policy.multiplier(np.array([0.01]), np.array([0.04]))
    assert normal.multiplier == 1.25
    assert calm.multiplier == pytest.approx(2.5)  # 1.25 * sqrt(4) hits the cap exactly
    assert normal.wad == 1_250_000_000_000_000_000
    odd = policy.multiplier(np.array([0.02]), np.array([0.02]), predicted_ratio=1.00001)
    assert odd.wad == 1_250_100_000_000_000_000  # rounded up to the next 1e-4


def test_im_multiplier__predicted_spike_raises_im():
    policy = IMMultiplierPolicy()
    m = policy.multiplier(np.array([0.02, 0.02]), np.array([0.02, 0.02]), 1.3, "test")
    assert m.multiplier == pytest.approx(1.25 * 1.3)


def test_im_multiplier__bad_vol__raises():
    with pytest.raises(ValueError):
        IMMultiplierPolicy().multiplier(np.array([0.0]), np.array([0.02]))


def test_dvol_ratio__implied_doubles__ratio_rises():
    n_days = 400
    ts = np.arange(
        np.datetime64("2022-01-01T00"),
        np.datetime64("2022-01-01T00") + np.timedelta64(n_days * 24 + 1, "h"),
    ).astype("datetime64[s]")
    r = np.random.default_rng(0).standard_normal(ts.size - 1) * 0.005
    rv = realised_vol_annual(r, 720)
    assert rv.shape == (r.size - 719,)
    days = np.arange(np.datetime64("2022-01-01"), np.datetime64("2022-01-01") + n_days)
    iv = np.full(days.size, 0.5)
    iv[-1] = 1.0
    ratio = dvol_ratio(ImpliedVol(days, iv), ts, r, ts[-1])
    assert 1.6 < ratio < 2.4
