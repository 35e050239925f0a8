"""The keeper's vol updater on anvil: a surface fitted from the data the chain's clock has
reached lands in the VolFeed signed 2 of 3; a surface that fails its checks is refused with
nothing submitted."""

import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import BTC, WAD

from offchain_risk.data import load_bars, load_dvol
from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import LocalSigner, TxManager
from offchain_risk.keeper.vol_signer import VOL_KIND, VolSigner, Web3Feed, curve_vol
from offchain_risk.keeper.vol_updater import VolUpdater, grid_expiries
from offchain_risk.models.vol_surface import SurfaceFitter, SurfaceRule
from offchain_risk.units import to_wad

pytestmark = pytest.mark.data
HEARTBEAT = 3_600
START = np.datetime64("2022-06-15T00:00:00", "s")  # history at the chain's first read
FORWARD = 22_000.0


@pytest.fixture(scope="module")
def vol_feed(project, owner, accounts):
    signers = sorted(accounts[5:8], key=lambda a: int(str(a), 16))
    feed = project.VolFeed.deploy(signers, 2, sender=owner)
    feed.set_underlying(BTC, HEARTBEAT, sender=owner)
    return feed, VolSigner(feed, signers[:2], accounts[8])


@pytest.fixture(scope="module")
def btc_data(data_dir):
    return load_bars("BTC", "1h", data_dir), load_dvol(data_dir)


def updater(vol_signer, fitter, chain, metrics):
    anchor = chain.blocks.head.timestamp
    return VolUpdater(
        vol_signer,
        {BTC: fitter},
        history_time=lambda now: START + np.timedelta64(int(now - anchor), "s"),
        metrics=metrics,
    )


def test_update__fitted_surface__published_signed(vol_feed, btc_data, chain):
    feed, signer = vol_feed
    metrics = Metrics()
    upd = updater(signer, SurfaceFitter(*btc_data), chain, metrics)
    nonce = feed.next_nonce()
    res = upd.update(BTC, FORWARD)
    assert res.ok, res.summary()
    assert feed.next_nonce() == nonce + 4
    now = res.published[0].observed_at
    assert [u.expiry for u in res.published] == grid_expiries(now)
    for u, c in zip(res.published, res.surface.curves, strict=True):
        want = (to_wad(c.atm_vol), to_wad(c.skew), to_wad(c.curvature), to_wad(FORWARD), now)
        assert tuple(feed.curve(BTC, u.expiry)) == want
        assert feed.vol(BTC, u.expiry, to_wad(FORWARD)) == (want[0], True)
        put = to_wad(FORWARD * 0.8)
        assert feed.vol(BTC, u.expiry, put)[0] == curve_vol(*want[:4], put)
        assert feed.vol(BTC, u.expiry, put)[0] > want[0]  # the put wing is richer
    assert metrics.value("keeper_vol_updates_total") == 4
    assert res.surface.level_30d == pytest.approx(res.surface.curves[2].atm_vol, abs=0.02)
    assert feed.curve(BTC, res.published[0].expiry).atm_vol > WAD  # 3AC week: above 100%


def test_update__broken_surface__refused_nothing_submitted(vol_feed, btc_data, chain):
    feed, signer = vol_feed
    metrics = Metrics()
    broken = SurfaceFitter(*btc_data, SurfaceRule(curvature_z=1.0))
    upd = updater(signer, broken, chain, metrics)
    expiries = grid_expiries(chain.blocks.head.timestamp)
    before = (feed.next_nonce(), [tuple(feed.curve(BTC, e)) for e in expiries])
    res = upd.update(BTC, FORWARD)
    assert res.check == "butterfly" and res.refused.startswith("butterfly arbitrage")
    assert res.published == ()
    assert (feed.next_nonce(), [tuple(feed.curve(BTC, e)) for e in expiries]) == before
    assert metrics.value("keeper_vol_refused_total", {"check": "butterfly"}) == 1
    assert metrics.value("keeper_vol_updates_total") == 0


def test_keeper_path__sent_through_the_transaction_manager__confirmed_by_its_poll(
    vol_feed, btc_data, chain, project, accounts, tmp_path
):
    """The keeper's client: web3 reads, the update sent from the keeper's key on its nonce
    source (kind vol_update), confirmed by the manager's poll; the next run waits an interval
    of chain time."""
    feed, ape_signer = vol_feed
    w3 = chain.provider.web3
    keeper_key = accounts[9]
    tx = TxManager(w3, LocalSigner(keeper_key.private_key), Store(tmp_path / "k.db"))
    signer = VolSigner(Web3Feed.from_project(project, w3, feed.address), ape_signer.signers, tx=tx)
    with pytest.raises(ValueError, match="must not be a feed signer"):
        VolSigner(
            signer.feed, ape_signer.signers, tx=SimpleNamespace(address=str(signer.signers[0]))
        )
    chain.pending_timestamp += 60  # newer than the curves published above
    chain.mine()
    metrics = Metrics()
    upd = updater(signer, SurfaceFitter(*btc_data), chain, metrics)
    now = signer.now()
    assert upd.due(now)
    nonce = feed.next_nonce()
    (res,) = upd.run({BTC: FORWARD}, now)
    assert res.ok, res.summary()
    assert [u.nonce for u in res.published] == [nonce, nonce + 1, nonce + 2, nonce + 3]
    # anvil mines a batch of transactions one by one and may serve the last receipt a moment
    # after the send returns: the keeper polls once a block, so confirmations accumulate
    confirmed, deadline = [], time.monotonic() + 10
    while len(confirmed) < 4 and time.monotonic() < deadline:
        poll = tx.poll()
        assert poll.failed == [] and poll.dropped == []
        confirmed += poll.confirmed
        time.sleep(0.05)
    assert sorted(t.nonce for t in confirmed) == [u.nonce for u in res.published]
    assert [t.kind for t in confirmed] == [VOL_KIND] * 4
    for u in res.published:
        assert tuple(feed.curve(BTC, u.expiry))[-1] == now == u.observed_at
    assert feed.next_nonce() == nonce + 4
    assert list(upd.runs) == [(now, res)]
    assert not upd.due(now + upd.interval - 1) and upd.due(now + upd.interval)
