"""RiskGovernor.poke: a floor or haircut raised beyond the bucket's MM budget ramps linearly
to its target, never faster than the budget, and never over an owner's override."""

import pytest
from conftest import ETH, revert_message

from offchain_risk.keeper.signer import FLOOR, HAIRCUT, update_tuple

HOUR = 3_600
RAMP = 6 * HOUR


@pytest.fixture
def ramping(governor, engine, update_for, keeper):
    """ETH floor 100 -> 900 and haircut 200 -> 1,000 bps: 500 bps now, the rest over six
    hours. Returns the submission receipt."""

    def change(v, g):
        v[ETH, FLOOR] = 900
        v[ETH, HAIRCUT] = 1_000

    message, sigs = update_for(change)
    return governor.submit(update_tuple(message), sigs, sender=keeper)


def test_poke__halfway__linear(lens, governor, engine, ramping, stranger, chain):
    assert lens.asset_config(ETH).floor_bps == 600
    assert lens.asset_config(ETH).haircut_bps == 700
    chain.mine(timestamp=ramping.timestamp + RAMP // 2 - 1)
    tx = governor.poke(ETH, sender=stranger)
    elapsed = tx.timestamp - ramping.timestamp
    # truncated toward the start of the ramp
    assert lens.asset_config(ETH).floor_bps == 600 + 300 * elapsed // RAMP
    assert lens.asset_config(ETH).haircut_bps == 700 + 300 * elapsed // RAMP
    assert not tx.events.filter(governor.RampPoked)[0].done
    assert governor.asset_view(ETH).ramp_end == ramping.timestamp + RAMP


def test_poke__at_end__reaches_target_and_clears(lens, governor, engine, ramping, stranger, chain):
    chain.mine(timestamp=ramping.timestamp + RAMP)
    tx = governor.poke(ETH, sender=stranger)
    assert tx.events.filter(governor.RampPoked)[0].done
    assert lens.asset_config(ETH).floor_bps == 900
    assert lens.asset_config(ETH).haircut_bps == 1_000
    assert governor.asset_view(ETH).ramp_end == 0
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__no_ramp__reverts(governor, stranger):
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__paused__reverts(lens, governor, engine, ramping, guardian, stranger, chain):
    governor.pause(sender=guardian)
    chain.mine(timestamp=ramping.timestamp + RAMP)
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: paused"
    assert lens.asset_config(ETH).floor_bps == 600


def test_poke__new_update_replaces_ramp(
    lens, governor, engine, ramping, update_for, keeper, stranger
):
    message, sigs = update_for()  # re-sign what the engine holds now
    governor.submit(update_tuple(message), sigs, sender=keeper)
    assert governor.asset_view(ETH).ramp_end == 0
    assert lens.asset_config(ETH).floor_bps == 600
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"


def test_poke__faster_than_the_budget__held_to_the_step(
    lens, governor, update_for, owner, keeper, stranger, chain
):
    """A one-minute ramp from 100 to 2,000 bps: within one bucket the floor stays 500 bps
    above the lowest value it held there; each new bucket allows another 500."""
    governor.set_limits((HOUR, 10**17, 5 * 10**16, 500, 60), sender=owner)
    chain.mine(timestamp=(chain.pending_timestamp // HOUR + 1) * HOUR + 1)
    message, sigs = update_for(lambda v, g: v.__setitem__((ETH, FLOOR), 2_000))
    tx = governor.submit(update_tuple(message), sigs, sender=keeper)
    assert lens.asset_config(ETH).floor_bps == 600
    chain.mine(timestamp=tx.timestamp + 120)  # the ramp is over, the bucket is not
    governor.poke(ETH, sender=stranger)
    assert lens.asset_config(ETH).floor_bps == 600
    for floor_bps in (1_100, 1_600, 2_000):
        chain.mine(timestamp=(chain.pending_timestamp // HOUR + 1) * HOUR + 1)
        tx = governor.poke(ETH, sender=stranger)
        assert lens.asset_config(ETH).floor_bps == floor_bps
    assert tx.events.filter(governor.RampPoked)[0].done


def test_poke__raises_the_window_reference(governor, ramping, update_for, keeper, stranger, chain):
    """Values a ramp reached bind later loosening like signed ones."""
    chain.mine(timestamp=ramping.timestamp + RAMP)
    governor.poke(ETH, sender=stranger)
    for value, error in (
        (854, "governor: loosens too fast per update"),  # 5% of 900 = 45
        (855, None),
    ):
        message, sigs = update_for(lambda v, g, x=value: v.__setitem__((ETH, FLOOR), x))
        if error:
            got = revert_message(governor, "submit", update_tuple(message), sigs, sender=keeper)
            assert got == error
        else:
            governor.submit(update_tuple(message), sigs, sender=keeper)
    assert governor.asset_view(ETH).high[FLOOR] == 900


def test_regression__poke_undoes_owner_override__override_stays(
    lens, governor, engine, ramping, owner, stranger, chain
):
    """Finding 3. While a ramp was pending, anyone's `poke` rewrote the engine's values from
    the ramp, erasing an emergency tightening the owner had set on the engine directly: here
    the owner's ETH floor of 1,500 bps went back to ~750 halfway through the ramp. `poke` now
    writes only over values the governor wrote last; finding others, it ends the ramp."""
    engine.set_asset_risk(ETH, 1_500, 2_000, sender=owner)
    chain.mine(timestamp=ramping.timestamp + RAMP // 2)
    tx = governor.poke(ETH, sender=stranger)
    assert (lens.asset_config(ETH).floor_bps, lens.asset_config(ETH).haircut_bps) == (
        1_500,
        2_000,
    )
    assert tx.events.filter(governor.RampCancelled)[0].asset == ETH
    assert governor.asset_view(ETH).ramp_end == 0
    assert revert_message(governor, "poke", ETH, sender=stranger) == "governor: no ramp"
