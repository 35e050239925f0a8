"""The keeper's vol updater without a chain: expiries on the grid, what it refuses and what it
hands to the signer (the signed path on anvil is tests/contracts/test_vol_updater.py)."""

from types import SimpleNamespace

import numpy as np
import pytest

from offchain_risk.data import load_bars, load_dvol
from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.vol_signer import EXPIRY_TIME, VolCurve
from offchain_risk.keeper.vol_updater import VolUpdater, grid_expiries
from offchain_risk.models.vol_surface import SurfaceFitter, SurfaceRule
from offchain_risk.units import DAY, MAX_OPTION_TIME, to_wad

BTC = 1
NOW = int(np.datetime64("2022-06-15T00:00:00", "s").astype(np.int64))  # 00:00 UTC


class FakeFeed:
    def __init__(self, heartbeat=3_600):
        self.hb = heartbeat

    def heartbeat(self, underlying):
        return self.hb

    def curve(self, underlying, expiry):
        return SimpleNamespace(observed_at=0)


class RecordingSigner:
    def __init__(self, feed):
        self.feed = feed
        self.published = []

    def publish(self, curve, observed_at=None):
        self.published.append((curve, observed_at))
        return curve


@pytest.fixture(scope="module")
def btc_fitter(data_dir):
    return SurfaceFitter(load_bars("BTC", "1h", data_dir), load_dvol(data_dir))


def test_grid_expiries__first_0800_at_or_after_each_tenor():
    e = grid_expiries(NOW, (1, 7, 30, 90))
    assert e == [NOW + d * DAY + EXPIRY_TIME for d in (1, 7, 30, 90)]
    # 08:00 exactly a tenor ahead is that expiry; a second later is the next day's
    at_grid = NOW + EXPIRY_TIME - DAY
    assert grid_expiries(at_grid, (1,)) == [at_grid + DAY]
    assert grid_expiries(at_grid + 1, (1,)) == [at_grid + 2 * DAY]
    # two tenors on one expiry count once; beyond MAX_OPTION_TIME none
    assert grid_expiries(NOW, (0.1, 0.2)) == [NOW + EXPIRY_TIME]
    assert grid_expiries(NOW, (MAX_OPTION_TIME / DAY + 1,)) == []


@pytest.mark.data
def test_update__fixed_date__hands_every_curve_to_the_signer(btc_fitter):
    signer = RecordingSigner(FakeFeed())
    metrics = Metrics()
    upd = VolUpdater(signer, {BTC: btc_fitter}, metrics=metrics)
    res = upd.update(BTC, 22_000.0, now=NOW)
    assert res.ok and res.surface.source == "dvol"
    assert [c.expiry for c, _ in signer.published] == grid_expiries(NOW)
    assert all(obs == NOW for _, obs in signer.published)
    for (curve, _), fitted in zip(signer.published, res.surface.curves, strict=True):
        assert curve == VolCurve(
            BTC,
            curve.expiry,
            to_wad(fitted.atm_vol),
            to_wad(fitted.skew),
            to_wad(fitted.curvature),
            to_wad(22_000.0),
        )
    assert metrics.value("keeper_vol_updates_total") == 4


@pytest.mark.data
def test_update__broken_fit__refused_nothing_signed(btc_fitter, caplog):
    """A skew rule with too much curvature: Durrleman refuses the surface."""
    broken = SurfaceFitter(btc_fitter.bars, btc_fitter.dvol, SurfaceRule(curvature_z=1.0))
    signer = RecordingSigner(FakeFeed())
    metrics = Metrics()
    res = VolUpdater(signer, {BTC: broken}, metrics=metrics).update(BTC, 22_000.0, now=NOW)
    assert not res.ok and res.check == "butterfly"
    assert res.refused.startswith("butterfly arbitrage: Durrleman g=")
    assert signer.published == []
    assert metrics.value("keeper_vol_refused_total", {"check": "butterfly"}) == 1
    assert metrics.value("keeper_vol_updates_total") == 0
    assert "refused (butterfly)" in caplog.text


@pytest.mark.data
def test_update__data_behind_the_clock__refused_as_fit(btc_fitter):
    signer = RecordingSigner(FakeFeed())
    metrics = Metrics()
    later = int(np.datetime64("2025-01-01T00:00:00", "s").astype(np.int64))
    res = VolUpdater(signer, {BTC: btc_fitter}, metrics=metrics).update(BTC, 1.0, now=later)
    assert res.check == "fit" and "prices end" in res.refused
    assert signer.published == []
    assert metrics.value("keeper_vol_refused_total", {"check": "fit"}) == 1


@pytest.mark.data
def test_update__feed_rule_fails__nothing_signed(btc_fitter):
    """The feed would refuse one curve (underlying not listed): none is signed."""
    signer = RecordingSigner(FakeFeed(heartbeat=0))
    metrics = Metrics()
    res = VolUpdater(signer, {BTC: btc_fitter}, metrics=metrics).update(BTC, 22_000.0, now=NOW)
    assert res.check == "feed" and res.refused == "volfeed: unknown underlying"
    assert signer.published == []


@pytest.mark.data
def test_update__unknown_underlying_or_bad_forward__refused(btc_fitter):
    signer = RecordingSigner(FakeFeed())
    upd = VolUpdater(signer, {BTC: btc_fitter})
    res = upd.update(99, 1.0, now=NOW)
    assert res.check == "fit" and "no data for underlying 99" in res.refused
    res = upd.update(BTC, float("nan"), now=NOW)
    assert res.check == "input" and res.refused.startswith("bad forward")
    assert signer.published == []
    with pytest.raises(ValueError, match="no underlyings"):
        VolUpdater(signer, {})


@pytest.mark.data
def test_run__hourly_on_the_chain_clock__an_underlying_without_a_price_refused(btc_fitter):
    signer = RecordingSigner(FakeFeed())
    metrics = Metrics()
    ETH = 0
    upd = VolUpdater(signer, {BTC: btc_fitter, ETH: btc_fitter}, metrics=metrics)
    assert upd.due(NOW)
    res = upd.run({BTC: 22_000.0}, NOW)  # ETH's oracle has no price
    assert [r.underlying for r in res] == [BTC, ETH]
    assert res[0].ok and len(res[0].published) == 4
    assert res[1].check == "input" and res[1].refused == "no oracle price for the forward"
    assert metrics.value("keeper_vol_refused_total", {"check": "input"}) == 1
    assert [r for _, r in upd.runs] == res and {t for t, _ in upd.runs} == {NOW}
    assert not upd.due(NOW + upd.interval - 1) and upd.due(NOW + upd.interval)
    with pytest.raises(ValueError, match="interval must be positive"):
        VolUpdater(signer, {BTC: btc_fitter}, interval=0)
