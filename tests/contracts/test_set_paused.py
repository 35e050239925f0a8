"""The core's guardian stop: withdrawals and risk-increasing fills pause; deposits, transfers
between an owner's sub-accounts and risk-reducing fills do not; only the owner unpauses."""

import ape
import pytest
from conftest import ETH, USDC, WAD, acct


@pytest.fixture
def guarded(engine, owner, guardian):
    engine.set_guardian(guardian, sender=owner)


def test_set_paused__guardian_pauses_owner_unpauses(project, engine, guarded, owner, guardian):
    tx = engine.set_paused(True, sender=guardian)
    assert engine.paused()
    [event] = tx.decode_logs(project.MarginConfig.PausedSet)
    assert event.paused and event.by == guardian
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_paused(False, sender=guardian)
    assert engine.paused()
    engine.set_paused(False, sender=owner)
    assert not engine.paused()
    engine.set_paused(True, sender=owner)  # the owner may pause too
    assert engine.paused()


def test_set_paused__stranger__reverts(engine, guarded, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_paused(True, sender=stranger)
    assert not engine.paused()


def test_set_guardian__owner_only(project, engine, owner, guardian, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_guardian(stranger, sender=stranger)
    tx = engine.set_guardian(guardian, sender=owner)
    assert engine.guardian() == guardian
    assert tx.decode_logs(project.MarginConfig.GuardianSet)[0].guardian == guardian


def test_withdraw__paused__reverts(engine, usdc, guarded, guardian, fund, trader, snapshot):
    fund(trader, usdc, 500 * USDC)
    engine.set_paused(True, sender=guardian)
    before = snapshot(trader)
    with ape.reverts("ledger: paused"):
        engine.withdraw(acct(trader), usdc, 100 * USDC, sender=trader)
    assert snapshot(trader) == before


def test_deposit_and_transfer__paused__allowed(engine, usdc, guarded, guardian, fund, trader):
    engine.set_paused(True, sender=guardian)
    fund(trader, usdc, 500 * USDC)
    engine.transfer(acct(trader), acct(trader, 1), usdc, 200 * USDC, sender=trader)
    assert engine.cash(acct(trader)) == 300 * WAD
    assert engine.cash(acct(trader, 1)) == 200 * WAD


def test_fill__paused__risk_increasing_reverts(
    engine, guarded, guardian, funded, trade, maker, trader, snapshot
):
    engine.set_paused(True, sender=guardian)
    before = snapshot(maker, trader)
    with ape.reverts("ledger: paused"):
        trade(ETH, WAD, 2000)
    assert snapshot(maker, trader) == before


def test_fill__paused__risk_reducing_allowed(
    engine, owner, guarded, guardian, funded, trade, maker, trader
):
    trade(ETH, 10 * WAD, 2000)  # maker long 10, trader short 10
    engine.set_paused(True, sender=guardian)
    trade(ETH, -4 * WAD, 2000)  # both sides reduce
    assert engine.position(acct(maker), ETH)[0] == 6 * WAD
    assert engine.position(acct(trader), ETH)[0] == -6 * WAD
    with ape.reverts("ledger: paused"):
        trade(ETH, 7 * WAD, 2000)  # would extend both again
    engine.set_paused(False, sender=owner)
    trade(ETH, 7 * WAD, 2000)
    assert engine.position(acct(maker), ETH)[0] == 13 * WAD


def test_set_paused__keeps_im_multiplier_and_back(engine, guarded, owner, guardian):
    # The flag shares a storage word with the IM multiplier: neither setter touches the other.
    engine.set_im_multiplier(2 * WAD, sender=owner)
    engine.set_paused(True, sender=guardian)
    assert engine.im_multiplier() == 2 * WAD and engine.paused()
    engine.set_im_multiplier(3 * WAD, sender=owner)
    assert engine.im_multiplier() == 3 * WAD and engine.paused()
    engine.set_paused(False, sender=owner)
    assert engine.im_multiplier() == 3 * WAD and not engine.paused()
