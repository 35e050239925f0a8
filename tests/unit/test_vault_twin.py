"""The vault twin (offchain_risk.models.vault.RateCap): the cap, the jump rule, decimals and
the share price, against hand-computed values (the anvil tests hold it to the contract)."""

import pytest

from offchain_risk.models.vault import RateCap
from offchain_risk.units import WAD, YEAR, unpack_vault_word

T0 = 1_700_000_000


def cap(ratio=WAD, growth=1_000, decimals=18):
    return RateCap(ratio, T0, growth, decimals)


def test_cap__grows_linearly_rounded_down():
    c = cap(ratio=WAD + 1)
    assert c.cap(T0) == WAD + 1
    assert c.cap(T0 - 5) == WAD + 1  # never before the snapshot
    assert c.cap(T0 + YEAR) == (WAD + 1) + (WAD + 1) // 10
    assert c.cap(T0 + 1) == WAD + 1 + (WAD + 1) * 1_000 // (10**4 * YEAR)


def test_rate__below_cap_as_is__above_capped__jump_is_outage():
    c = cap()
    assert c.rate(WAD * 9 // 10, T0) == WAD * 9 // 10  # slashing: no floor
    assert c.rate(WAD * 105 // 100, T0) == WAD  # capped
    assert c.rate(WAD * 11 // 10, T0) == WAD  # exactly the tolerance: still capped
    assert c.rate(WAD * 11 // 10 + 1, T0) == 0  # beyond: an outage
    assert c.rate(None, T0) == 0 and c.rate(0, T0) == 0  # reverts, zero
    assert c.rate(2**128, T0) == 0  # an absurd answer


def test_normalise__underlying_decimals():
    assert cap(decimals=6).normalise(1_050_000) == 105 * WAD // 100
    assert cap(decimals=24).normalise(10**24 + 999_999) == WAD  # rounded down
    assert cap(decimals=18).normalise(7) == 7


def test_price__feed_times_rate_rounded_down():
    c = cap()
    assert c.price(2_000 * WAD, WAD * 9 // 10, T0) == 1_800 * WAD
    assert c.price(3, WAD // 2, T0) == 1  # floor(1.5)
    assert c.price(1, WAD // 2, T0) == 0  # below one wei: no price
    assert c.price(2**100, 2 * WAD, T0 + 10 * YEAR) == 0  # above MAX_PRICE


def test_from_word__unpacks_the_engine_layout():
    word = 123 | (T0 << 128) | (1_500 << 192) | (6 << 208)
    assert unpack_vault_word(word) == (123, T0, 1_500, 6)
    assert RateCap.from_word(word) == RateCap(123, T0, 1_500, 6)


@pytest.mark.parametrize(
    "args", [(0, T0, 1_000, 18), (2**128, T0, 1_000, 18), (WAD, T0, 10_001, 18), (WAD, T0, 0, 37)]
)
def test_rate_cap__bad_values__refused(args):
    with pytest.raises(ValueError):
        RateCap(*args)


def test_rebased__the_engine_rules_in_its_order():
    """A snapshot is refused as `ledger.set_vault_snapshot` refuses it (its revert string);
    an accepted one never raises the cap at the moment it is installed."""
    c, now = cap(growth=1_000), T0 + YEAR
    day = 86_400
    for args, reason in (
        ((WAD, T0, 1_000), "snapshot not newer"),
        ((WAD, now - 6 * day, 1_000), "snapshot too recent"),
        ((c.cap(now - 7 * day) + 1, now - 7 * day, 1_000), "ratio above cap"),
        ((WAD, now - 7 * day, 10_001), "growth too high"),
        ((c.cap(now - 30 * day), now - 30 * day, 1_001), "cap would rise"),
    ):
        with pytest.raises(ValueError, match=f"vault: {reason}"):
            c.rebased(*args, now=now)
    # At the cap of its time with the same growth, re-basing compounds: refused above;
    # with no growth on top it holds the cap of that time.
    at_cap = c.rebased(c.cap(now - 30 * day), now - 30 * day, 0, now)
    assert at_cap.cap(now) == c.cap(now - 30 * day) and at_cap.snapshot_time == now - 30 * day
    lower = c.rebased(WAD // 2, now - 7 * day, 10_000, now)  # lower, faster: from then on
    assert lower.cap(now) == WAD // 2 + WAD // 2 * 7 * day // YEAR
