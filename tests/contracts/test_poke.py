"""RiskGovernor.poke: MM-relevant tightening beyond the step ramps linearly to its target."""

import pytest
from conftest import ETH, revert_message

from offchain_risk.keeper.signer import update_tuple

HOUR = 3_600
RAMP = 6 * HOUR


@pytest.fixture
def ramping(governor, engine, update_for, keeper):
    """ETH scenario 0 -1500 -> -3500 and floor 100 -> 900 bps: 500 bps now, the rest
    over six hours. Returns the submission receipt."""

    def change(v, g):
        v[ETH, 0] = -3500
        v[ETH, 16] = 900

    message, sigs = update_for(change)
    return governor.submit(update_tuple(message), sigs, sender=keeper)


def test_poke__halfway__linear(lens, governor, engine, ramping, stranger, chain):
    assert lens.shocks(ETH)[0] == -2000
    assert lens.asset_config(ETH).floor_bps == 600
    chain.mine(timestamp=ramping.timestamp + RAMP // 2 - 1)
    tx = governor.poke(ETH, sender=stranger)
    elapsed = tx.timestamp - ramping.timestamp
    # truncated toward the start of the ramp
    assert lens.shocks(ETH)[0] == -2000 - 1500 * elapsed // RAMP
    assert lens.asset_config(ETH).floor_bps == 600 + 300 * elapsed // RAMP
    assert not tx.events.filter(governor.RampPoked)[0].done
    assert governor.asset_view(ETH).ramp_end == ramping.timestamp + RAMP


def test_poke__at_end__reaches_target_and_clears(lens, governor, engine, ramping, stranger, chain):
    chain.mine(timestamp=ramping.timestamp + RAMP)
    tx = governor.poke(ETH, sender=stranger)
    assert tx.events.filter(governor.RampPoked)[0].done
    assert lens.shocks(ETH)[0] == -3500
    assert lens.asset_config(ETH).floor_bps == 900
    assert governor.asset_view(ETH).ramp_end == 0
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__no_ramp__reverts(governor, stranger):
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__paused__reverts(lens, governor, engine, ramping, guardian, stranger, chain):
    governor.pause(sender=guardian)
    chain.mine(timestamp=ramping.timestamp + RAMP)
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: paused"
    assert lens.shocks(ETH)[0] == -2000


def test_poke__new_update_replaces_ramp(
    lens, governor, engine, ramping, update_for, keeper, stranger
):
    message, sigs = update_for()  # re-sign what the engine holds now
    governor.submit(update_tuple(message), sigs, sender=keeper)
    assert governor.asset_view(ETH).ramp_end == 0
    assert lens.shocks(ETH)[0] == -2000
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__raises_the_window_reference(governor, ramping, update_for, keeper, stranger, chain):
    """Values a ramp reached bind later loosening like signed ones."""
    chain.mine(timestamp=ramping.timestamp + RAMP)
    governor.poke(ETH, sender=stranger)
    for value, error in (
        (-3324, "governor: loosens too fast per update"),  # 5% of 3500 = 175
        (-3325, None),
    ):
        message, sigs = update_for(lambda v, g, x=value: v.__setitem__((ETH, 0), x))
        if error:
            got = revert_message(governor, "submit", update_tuple(message), sigs, sender=keeper)
            assert got == error
        else:
            governor.submit(update_tuple(message), sigs, sender=keeper)
    assert governor.asset_view(ETH).reference[0] == -3500
