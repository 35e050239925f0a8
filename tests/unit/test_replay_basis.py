"""The replay's basis premiums: perp over spot at the last UTC midnight, no look-ahead."""

import numpy as np
import pytest

from offchain_risk.data.loaders import load_bars
from offchain_risk.replay.funding import basis_premiums
from offchain_risk.replay.path import load_path

pytestmark = pytest.mark.data


def _basis(spot, perp, day: np.datetime64) -> float:
    """Perp close over spot close at the end of ``day``, within half a 5% band."""
    d = np.datetime64(day, "s")
    s = spot.close[spot.timestamps == d][0]
    p = perp.close[perp.timestamps == d + np.timedelta64(23, "h")][0]
    return float(np.clip(p / s - 1.0, -0.025, 0.025))


def test_basis_premiums__last_midnight_before_each_round__clipped__none_without_usdt_spot(
    data_dir,
):
    path = load_path(
        ("BTC", "ETH", "LINK"), "2020-03-11T20:00", "2020-03-12T03:00", data_dir=data_dir
    )
    premiums = basis_premiums(path, band=0.05, data_dir=data_dir)
    assert premiums.shape == (path.n_steps, 3)
    assert np.isnan(premiums[:, 2]).all()  # LINK: USD-aggregate daily closes only
    for j, asset in enumerate(("BTC", "ETH")):
        spot, perp = load_bars(asset, "1d", data_dir), load_bars(asset, "1h", data_dir)

        for t, premium in zip(path.times, premiums[:, j], strict=True):
            # a round at midnight already knows that day's close; one before it does not
            day = (t - np.timedelta64(1, "D")).astype("datetime64[D]")
            assert premium == pytest.approx(_basis(spot, perp, day), abs=1e-15), (asset, t)
    # 2020-03-12 00:00 changes the day whose close applies
    at = list(path.times).index(np.datetime64("2020-03-12T00:00"))
    assert premiums[at - 1, 0] != premiums[at, 0]
