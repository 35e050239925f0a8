"""RiskGovernor's owner and guardian functions: signer set, threshold, pause, bounds, limits,
resynchronisation. Each refuses strangers and bad values."""

import ape
import pytest
from conftest import ETH, WAD

from offchain_risk import devnet
from offchain_risk.keeper.signer import FLOOR

ZERO = "0x0000000000000000000000000000000000000000"


def test_add_signer__event_and_count(governor, owner, stranger):
    tx = governor.add_signer(stranger, sender=owner)
    assert governor.is_signer(stranger) and governor.signer_count() == 4
    assert tx.events.filter(governor.SignerAdded)[0].signer == stranger


@pytest.mark.parametrize(
    "who,error", [("zero", "governor: zero signer"), ("signer", "governor: already a signer")]
)
def test_add_signer__bad__reverts(governor, owner, risk_signers, who, error):
    signer = ZERO if who == "zero" else risk_signers[0]
    with ape.reverts(error):
        governor.add_signer(signer, sender=owner)
    assert governor.signer_count() == 3


def test_remove_signer__event_and_threshold_floor(governor, owner, risk_signers):
    tx = governor.remove_signer(risk_signers[0], sender=owner)
    assert not governor.is_signer(risk_signers[0]) and governor.signer_count() == 2
    assert tx.events.filter(governor.SignerRemoved)[0].signer == risk_signers[0]
    with ape.reverts("governor: below threshold"):  # N may not drop below M = 2
        governor.remove_signer(risk_signers[1], sender=owner)
    with ape.reverts("governor: not a signer"):
        governor.remove_signer(risk_signers[0], sender=owner)
    assert governor.signer_count() == 2


def test_set_threshold__bounds_and_event(governor, owner):
    tx = governor.set_threshold(3, sender=owner)
    assert governor.threshold() == 3
    assert tx.events.filter(governor.ThresholdSet)[0].threshold == 3
    for bad in (0, 4):
        with ape.reverts("governor: bad threshold"):
            governor.set_threshold(bad, sender=owner)
    assert governor.threshold() == 3


@pytest.mark.parametrize(
    "call",
    [
        lambda g, s: g.add_signer(s, sender=s),
        lambda g, s: g.remove_signer(s, sender=s),
        lambda g, s: g.set_threshold(1, sender=s),
        lambda g, s: g.set_guardian(s, sender=s),
        lambda g, s: g.unpause(sender=s),
        lambda g, s: g.pause(sender=s),
        lambda g, s: g.set_limits(devnet.GOVERNOR_LIMITS, sender=s),
        lambda g, s: g.set_asset_bounds(ETH, devnet.asset_bounds(devnet.MARKETS[0]), sender=s),
        lambda g, s: g.set_global_bounds(devnet.GLOBAL_BOUNDS, sender=s),
        lambda g, s: g.sync_asset(ETH, sender=s),
        lambda g, s: g.sync_global(sender=s),
    ],
)
def test_owner_functions__stranger__reverts(governor, stranger, call):
    with ape.reverts("ownable: caller is not the owner"):
        call(governor, stranger)


def test_pause__guardian_pauses_only_owner_unpauses(governor, owner, guardian):
    tx = governor.pause(sender=guardian)
    assert governor.paused()
    assert tx.events.filter(governor.PausedSet)[0].by == guardian
    with ape.reverts("ownable: caller is not the owner"):
        governor.unpause(sender=guardian)
    governor.unpause(sender=owner)
    assert not governor.paused()


@pytest.mark.parametrize(
    "limits,error",
    [
        ((59, WAD // 10, WAD // 20, 500, 3600), "governor: bad window"),
        ((31 * 86400, WAD // 10, WAD // 20, 500, 3600), "governor: bad window"),
        ((3600, WAD // 10, WAD // 5, 500, 3600), "governor: bad rates"),
        ((3600, WAD + 1, WAD // 20, 500, 3600), "governor: bad rates"),
        ((3600, WAD // 10, WAD // 20, 10_001, 3600), "governor: bad mm step"),
        ((3600, WAD // 10, WAD // 20, 500, 0), "governor: bad ramp duration"),
    ],
)
def test_set_limits__bad__reverts(governor, owner, limits, error):
    with ape.reverts(error):
        governor.set_limits(limits, sender=owner)
    assert tuple(governor.limits()) == devnet.GOVERNOR_LIMITS


@pytest.mark.parametrize(
    "bounds,error",
    [
        ((200, 100, 0, 1, 1, 1, 0, 0), "governor: bad floor bounds"),
        ((0, 10_001, 0, 1, 1, 1, 0, 0), "governor: bad floor bounds"),
        ((0, 1, 0, 10_000, 1, 1, 0, 0), "governor: bad haircut bounds"),
        ((0, 1, 0, 1, 10_001, 1, 0, 0), "governor: bad shock bounds"),
        ((0, 1, 0, 1, 100, 1, 101, 0), "governor: bad shock bounds"),
        ((0, 1, 0, 1, 1, 32_768, 0, 0), "governor: bad shock bounds"),
    ],
)
def test_set_asset_bounds__bad__reverts(governor, owner, bounds, error):
    before = governor.asset_bounds(ETH)
    with ape.reverts(error):
        governor.set_asset_bounds(ETH, bounds, sender=owner)
    assert governor.asset_bounds(ETH) == before


def test_set_asset_bounds__unlisted_asset__reverts(governor, owner):
    with ape.reverts("governor: asset not listed"):
        governor.set_asset_bounds(9, devnet.asset_bounds(devnet.MARKETS[0]), sender=owner)


@pytest.mark.parametrize(
    "bounds,error",
    [
        ((WAD - 1, 2 * WAD, 1, 1, 1, 1), "governor: bad IM bounds"),
        ((2 * WAD, WAD, 1, 1, 1, 1), "governor: bad IM bounds"),
        ((WAD, 10 * WAD + 1, 1, 1, 1, 1), "governor: bad IM bounds"),
        ((WAD, 2 * WAD, 2, 1, 1, 1), "governor: bad discount bounds"),
        ((WAD, 2 * WAD, 1, 1, 1, WAD // 2 + 1), "governor: bad discount bounds"),
        # Liquidations refuses a zero minimum discount, so the floor may not allow it.
        ((WAD, 2 * WAD, 0, 1, 1, 1), "governor: bad discount bounds"),
    ],
)
def test_set_global_bounds__bad__reverts(governor, owner, bounds, error):
    with ape.reverts(error):
        governor.set_global_bounds(bounds, sender=owner)
    assert tuple(governor.global_bounds()) == devnet.GLOBAL_BOUNDS


def test_sync_asset__after_direct_owner_change__restarts_the_bucket(governor, engine, owner, chain):
    """The views (and every update) read the engine's values; a sync forgets what the asset
    held earlier in the bucket."""
    chain.mine(timestamp=(chain.pending_timestamp // 3_600 + 1) * 3_600 + 1)
    governor.sync_asset(ETH, sender=owner)  # the bucket starts at floor 100, haircut 200
    engine.set_asset_risk(ETH, 300, 700, sender=owner)  # the owner bypasses the governor
    view = governor.asset_view(ETH)
    assert view.current[FLOOR:] == [300, 700]
    assert view.low[FLOOR:] == [100, 200] and view.high[FLOOR:] == [300, 700]
    tx = governor.sync_asset(ETH, sender=owner)
    view = governor.asset_view(ETH)
    assert view.low[FLOOR:] == [300, 700] and view.high[FLOOR:] == [300, 700]
    assert tx.events.filter(governor.Synced)[0].asset == ETH
    with ape.reverts("governor: asset not governed"):
        governor.sync_asset(7, sender=owner)


def test_sync_global__after_direct_owner_change(governor, engine, owner):
    engine.set_im_multiplier(2 * WAD, sender=owner)
    assert governor.global_view().current[0] == 2 * WAD  # read from the engine
    assert governor.global_view().recorded[0] == 3 * WAD // 2
    governor.sync_global(sender=owner)
    assert governor.global_view().recorded[0] == 2 * WAD


def test_deploy__signers_threshold_limits(governor, engine, liquidations, risk_signers):
    assert governor.engine() == engine and governor.liquidations() == liquidations
    assert all(governor.is_signer(s) for s in risk_signers)
    assert (governor.signer_count(), governor.threshold()) == (3, 2)
    assert tuple(governor.limits()) == devnet.GOVERNOR_LIMITS
    assert engine.risk_manager() == governor and liquidations.risk_manager() == governor


def test_domain__binds_chain_and_contract(governor, chain):
    _, name, version, chain_id, verifying, _, _ = governor.eip712Domain()
    assert (name, version, chain_id, verifying) == (
        "Ballast Risk",
        "1",
        chain.chain_id,
        governor.address,
    )
