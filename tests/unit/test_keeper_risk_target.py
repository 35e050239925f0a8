"""The risk updater's target: a calibrated base set scaled by on-chain realised volatility."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk.keeper.risk_updater import PriceHistory, base_from_params, vol_scaled_target
from offchain_risk.units import WAD

PARAMS = {
    "shocks_bps": {"BTC": [-1000, 900], "ETH": [-1200, 1100], "DOGE": [-3000, 3000]},
    "floor_bps": {"BTC": 50, "ETH": 50, "DOGE": 50},
    "haircut_bps": {"BTC": 30, "ETH": 20, "DOGE": 500},
    "im_multiplier_wad": str(3 * WAD // 2),
    "metadata": {"horizon_hours": 24, "horizon_vol": {"BTC": 0.04, "ETH": 0.05, "DOGE": 0.1}},
}
SYMBOLS = {"ETH": 0, "BTC": 1, "SOL": 2}


def test_base_from_params__listed_assets_in_id_order():
    base, vols, horizon = base_from_params(PARAMS, SYMBOLS, (WAD // 50, WAD // 10))
    assert list(base.assets) == [0, 1]  # DOGE is not listed, SOL not calibrated
    assert base.shocks_bps.shape == (2, 32)
    assert list(base.shocks_bps[0, :2]) == [-1200, 1100] and base.shocks_bps[0, 2:].sum() == 0
    assert list(base.haircut_bps) == [20, 30] and list(vols) == [0.05, 0.04]
    assert horizon == 86_400 and base.im_multiplier_wad == 3 * WAD // 2
    assert (base.min_discount_wad, base.max_discount_wad) == (WAD // 50, WAD // 10)


def test_base_from_params__nothing_listed_or_no_vol__clear_error():
    with pytest.raises(ValueError, match="no asset of the parameter set is listed"):
        base_from_params(PARAMS, {"SOL": 0}, (1, 2))
    bad = dict(PARAMS, metadata={"horizon_vol": {"ETH": 0.05}})
    with pytest.raises(ValueError, match=r"horizon_vol lacks \['BTC'\]"):
        base_from_params(bad, SYMBOLS, (1, 2))


def test_vol_scaled_target__hourly_moves_scaled_to_the_horizon():
    base, vols, horizon = base_from_params(PARAMS, SYMBOLS, (WAD // 50, WAD // 10))
    target = vol_scaled_target(base, vols, max_scale=1.5, horizon_s=horizon)
    history = PriceHistory(times=[0.0, 3_600.0], prices=[np.ones(3), np.ones(3)])
    # ETH: 1.5% per hour -> 7.3% per day vs 5%: x1.47; BTC: 0.5% per hour -> 2.4% < 4%: x1.
    vol = np.array([0.015, 0.005, 0.0])
    out = target(history, vol)
    scale = 0.015 * np.sqrt(24) / 0.05
    assert list(out.shocks_bps[0, :2]) == [round(-1200 * scale), round(1100 * scale)]
    assert list(out.shocks_bps[1, :2]) == [-1000, 900]
    calm = target(history, np.zeros(3))  # never loosens below the calibration
    assert np.array_equal(calm.shocks_bps, base.shocks_bps)
    wild = target(history, np.array([1.0, 1.0, 1.0]))
    assert list(wild.shocks_bps[0, :2]) == [-1800, 1650]  # capped at max_scale
    with pytest.raises(ValueError, match="one entry per asset"):
        vol_scaled_target(base, np.ones(3))
