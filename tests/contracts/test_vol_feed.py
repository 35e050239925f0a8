"""VolFeed: implied-vol curves signed M of N, with heartbeat, bounds and the (vol, valid) read.

Every refused update or admin call asserts its revert message and that no curve, nonce,
signer set or listing moved. The keeper's client (offchain_risk.keeper.vol_signer) signs
the happy paths; `curve_vol` is the exact twin of `vol` and must agree to the wei.
"""

import pytest
from conftest import BTC, ETH, WAD, revert_message, sign_with

from offchain_risk.keeper.vol_signer import (
    EXPIRY_TIME,
    MAX_CURVATURE,
    MAX_SKEW,
    VolCurve,
    VolSigner,
    curve_vol,
    update_tuple,
)
from offchain_risk.units import DAY, MAX_OPTION_TIME, MAX_PRICE, MAX_VOL, MIN_OPTION_PRICE, MIN_VOL

HEARTBEAT = 3_600
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ETH_FORWARD = 3_000 * WAD


@pytest.fixture(scope="module")
def vol_signers(accounts):
    """Three registered feed signers, sorted by address (M = 2 of N = 3)."""
    return sorted(accounts[5:8], key=lambda a: int(str(a), 16))


@pytest.fixture(scope="module")
def relayer(accounts):
    return accounts[8]


@pytest.fixture(scope="module")
def vol_feed(project, owner, vol_signers):
    feed = project.VolFeed.deploy(list(vol_signers), 2, sender=owner)
    feed.set_underlying(ETH, HEARTBEAT, sender=owner)
    feed.set_underlying(BTC, HEARTBEAT, sender=owner)
    return feed


@pytest.fixture(scope="module")
def vol_signer(vol_feed, vol_signers, relayer):
    return VolSigner(vol_feed, vol_signers[:2], relayer)


@pytest.fixture
def expiry(chain):
    """An 08:00 UTC expiry about a week ahead."""
    return (chain.pending_timestamp // DAY + 7) * DAY + EXPIRY_TIME


def eth_curve(expiry, **overrides):
    fields = dict(
        underlying=ETH,
        expiry=expiry,
        atm_vol=65 * WAD // 100,
        skew=-WAD // 10,
        curvature=WAD // 2,
        forward=ETH_FORWARD,
    )
    fields.update(overrides)
    return VolCurve(**fields)


def feed_state(feed, expiry):
    return (
        tuple(feed.curve(ETH, expiry)),
        feed.next_nonce(),
        feed.threshold(),
        feed.signer_count(),
        feed.heartbeat(ETH),
    )


def signed(vol_signer, curve, observed_at, nonce=None, deadline=None, signers=None):
    feed = vol_signer.feed
    message = vol_signer.message(
        curve,
        observed_at,
        feed.next_nonce() if nonce is None else nonce,
        observed_at + 600 if deadline is None else deadline,
    )
    sigs = vol_signer.sign(message) if signers is None else sign_with(message, signers, sort=False)
    return message, sigs


def refused(feed, expiry, message, sigs, sender, error):
    """The update reverts with `error` and nothing in the feed moves."""
    before = feed_state(feed, expiry)
    assert revert_message(feed, "submit", update_tuple(message), sigs, sender=sender) == error
    assert feed_state(feed, expiry) == before


# ------------------------------------------------------------------ accepted


def test_submit__signed_curve__stored_nonce_bumped_and_read_back(
    vol_feed, vol_signer, expiry, chain
):
    curve = eth_curve(expiry)
    now = chain.pending_timestamp
    message = vol_signer.publish(curve, observed_at=now - 10)
    assert tuple(vol_feed.curve(ETH, expiry)) == (
        curve.atm_vol,
        curve.skew,
        curve.curvature,
        curve.forward,
        now - 10,
    )
    assert vol_feed.next_nonce() == message.nonce + 1 == 1
    v, valid = vol_feed.vol(ETH, expiry, ETH_FORWARD)
    assert (v, valid) == (curve.atm_vol, True)


def test_submit__emits_the_curve(vol_feed, vol_signer, expiry, chain, relayer):
    curve = eth_curve(expiry)
    now = chain.pending_timestamp
    message, sigs = signed(vol_signer, curve, now)
    tx = vol_feed.submit(update_tuple(message), sigs, sender=relayer)
    (log,) = tx.decode_logs(vol_feed.VolUpdated)
    assert (log.underlying, log.expiry, log.atm_vol, log.skew) == (
        ETH,
        expiry,
        curve.atm_vol,
        curve.skew,
    )
    assert (log.curvature, log.forward, log.observed_at, log.nonce) == (
        curve.curvature,
        curve.forward,
        now,
        0,
    )


def test_vol__smile_equals_the_twin_to_the_wei(vol_feed, vol_signer, expiry):
    curve = eth_curve(expiry, skew=-3 * WAD // 10, curvature=8 * WAD // 10)
    vol_signer.publish(curve)
    strikes = [ETH_FORWARD * m // 100 for m in (30, 50, 70, 85, 95, 100, 105, 120, 150, 200, 400)]
    strikes += [ETH_FORWARD // 5_000, ETH_FORWARD * 5_000, 123_456_789_012_345_678_901]
    for k in strikes:
        v, valid = vol_feed.vol(ETH, expiry, k)
        assert valid
        assert v == curve_vol(curve.atm_vol, curve.skew, curve.curvature, curve.forward, k)
    # beyond the moneyness domain the twin and the feed both refuse
    for k in (ETH_FORWARD // 20_000, ETH_FORWARD * 20_000):
        assert curve_vol(curve.atm_vol, curve.skew, curve.curvature, curve.forward, k) is None
        assert vol_feed.vol(ETH, expiry, k) == (0, False)
    # a smile: both wings above the money
    atm = vol_feed.vol(ETH, expiry, ETH_FORWARD)[0]
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD // 2)[0] > atm
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD * 2)[0] > atm


def test_vol__clamped_to_the_pricing_domain(vol_feed, vol_signer, expiry, chain):
    low = eth_curve(expiry, atm_vol=MIN_VOL, skew=MAX_SKEW, curvature=0)
    vol_signer.publish(low)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD // 2) == (MIN_VOL, True)
    # the feed takes only a strictly newer observation: the next one a second later (two
    # publications inside one second of block time were refused, "volfeed: not newer")
    chain.mine(timestamp=chain.blocks.head.timestamp + 1)
    high = eth_curve(expiry, atm_vol=MAX_VOL, skew=0, curvature=MAX_CURVATURE)
    vol_signer.publish(high)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD * 10) == (MAX_VOL, True)


def test_vol__stale_after_heartbeat_then_fresh_again(vol_feed, vol_signer, expiry, chain):
    curve = eth_curve(expiry)
    vol_signer.publish(curve)
    chain.mine(timestamp=chain.pending_timestamp + HEARTBEAT + 1)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD) == (curve.atm_vol, False)
    vol_signer.publish(curve)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD) == (curve.atm_vol, True)


def test_vol__after_expiry__invalid(vol_feed, vol_signer, chain, owner):
    expiry = (chain.pending_timestamp // DAY + 1) * DAY + EXPIRY_TIME
    vol_feed.set_underlying(ETH, 2 * DAY, sender=owner)
    vol_signer.publish(eth_curve(expiry))
    chain.mine(timestamp=expiry)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD)[1] is False


def test_vol__delisted_underlying__invalid(vol_feed, vol_signer, expiry, owner):
    vol_signer.publish(eth_curve(expiry))
    vol_feed.set_underlying(ETH, 0, sender=owner)
    assert vol_feed.vol(ETH, expiry, ETH_FORWARD)[1] is False


def test_vol__no_curve_or_strike_outside_domain__zero_and_invalid(vol_feed, vol_signer, expiry):
    assert vol_feed.vol(BTC, expiry, 60_000 * WAD) == (0, False)
    vol_signer.publish(eth_curve(expiry))
    for k in (0, MIN_OPTION_PRICE - 1, MAX_PRICE + 1, 2**256 - 1, ETH_FORWARD * 10**5):
        assert vol_feed.vol(ETH, expiry, k) == (0, False)


# ------------------------------------------------------------------ refused


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"atm_vol": 0}, "volfeed: bad atm vol"),
        ({"atm_vol": MIN_VOL - 1}, "volfeed: bad atm vol"),
        ({"atm_vol": MAX_VOL + 1}, "volfeed: bad atm vol"),
        ({"atm_vol": 10**30}, "volfeed: bad atm vol"),
        ({"skew": MAX_SKEW + 1}, "volfeed: bad skew"),
        ({"skew": -MAX_SKEW - 1}, "volfeed: bad skew"),
        ({"curvature": MAX_CURVATURE + 1}, "volfeed: bad curvature"),
        ({"forward": 0}, "volfeed: bad forward"),
        ({"forward": MAX_PRICE + 1}, "volfeed: bad forward"),
        ({"underlying": 7}, "volfeed: unknown underlying"),
    ],
)
def test_submit__parameter_out_of_bounds__reverts(
    vol_feed, vol_signer, expiry, chain, relayer, overrides, error
):
    message, sigs = signed(vol_signer, eth_curve(expiry, **overrides), chain.pending_timestamp)
    refused(vol_feed, expiry, message, sigs, relayer, error)


@pytest.mark.parametrize(
    ("shift", "error"),
    [
        (3_600, "volfeed: expiry off grid"),
        (-8 * DAY, "volfeed: expiry passed"),
        (MAX_OPTION_TIME, "volfeed: expiry too far"),
    ],
)
def test_submit__expiry_off_grid_passed_or_too_far__reverts(
    vol_feed, vol_signer, expiry, chain, relayer, shift, error
):
    message, sigs = signed(vol_signer, eth_curve(expiry + shift), chain.pending_timestamp)
    refused(vol_feed, expiry + shift, message, sigs, relayer, error)


def test_submit__observed_in_the_future__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp + 60)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: observed in the future")


def test_submit__observation_older_than_heartbeat__reverts(
    vol_feed, vol_signer, expiry, chain, relayer
):
    observed = chain.pending_timestamp - HEARTBEAT - 1
    message, sigs = signed(vol_signer, eth_curve(expiry), observed, deadline=observed + 10**6)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: stale update")


def test_submit__not_newer_than_the_curve__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    observed = chain.pending_timestamp - 5
    vol_signer.publish(eth_curve(expiry), observed_at=observed)
    # the same observation again (a replay under the next nonce), then an older one
    for t in (observed, observed - 1):
        message, sigs = signed(vol_signer, eth_curve(expiry, atm_vol=WAD), t)
        refused(vol_feed, expiry, message, sigs, relayer, "volfeed: not newer")


def test_submit__replayed_nonce__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message = vol_signer.publish(eth_curve(expiry), observed_at=chain.pending_timestamp - 5)
    sigs = vol_signer.sign(message)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: bad nonce")


def test_submit__future_nonce__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp, nonce=5)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: bad nonce")


def test_submit__past_deadline__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    now = chain.pending_timestamp
    message, sigs = signed(vol_signer, eth_curve(expiry), now - 20, deadline=now - 1)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: expired")


def test_submit__signer_relays__reverts(vol_feed, vol_signer, vol_signers, expiry, chain):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    refused(vol_feed, expiry, message, sigs, vol_signers[2], "volfeed: signer cannot relay")


def test_submit__below_threshold__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    refused(vol_feed, expiry, message, sigs[:1], relayer, "volfeed: below threshold")


def test_submit__unsorted_signers__reverts(
    vol_feed, vol_signer, vol_signers, expiry, chain, relayer
):
    message, sigs = signed(
        vol_signer, eth_curve(expiry), chain.pending_timestamp, signers=vol_signers[1::-1]
    )
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: signers not sorted")


def test_submit__duplicate_signer__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    refused(vol_feed, expiry, message, [sigs[0], sigs[0]], relayer, "volfeed: duplicate signer")


def test_submit__stranger_signature__reverts(
    vol_feed, vol_signer, vol_signers, expiry, chain, relayer, stranger
):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    (foreign,) = sign_with(message, [stranger])
    refused(vol_feed, expiry, message, [sigs[0], foreign], relayer, "volfeed: not a signer")


def test_submit__tampered_message__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    tampered = vol_signer.message(
        eth_curve(expiry, atm_vol=message.atm_vol + 1),
        message.observed_at,
        message.nonce,
        message.deadline,
    )
    refused(vol_feed, expiry, tampered, sigs, relayer, "volfeed: not a signer")


def test_submit__malleable_high_s__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    r, s, v = sigs[0][:32], int.from_bytes(sigs[0][32:64], "big"), sigs[0][64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    refused(
        vol_feed,
        expiry,
        message,
        [flipped, sigs[1]],
        relayer,
        "ecdsa: invalid signature `s` value",
    )


def test_submit__short_signature__reverts(vol_feed, vol_signer, expiry, chain, relayer):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    refused(
        vol_feed, expiry, message, [sigs[0][:64], sigs[1]], relayer, "volfeed: bad signature length"
    )


def test_submit__removed_signer__pending_signatures_void(
    vol_feed, vol_signer, vol_signers, expiry, chain, relayer, owner
):
    message, sigs = signed(vol_signer, eth_curve(expiry), chain.pending_timestamp)
    vol_feed.remove_signer(vol_signers[0], sender=owner)
    refused(vol_feed, expiry, message, sigs, relayer, "volfeed: not a signer")


def test_publish__client_refuses_what_the_feed_would(vol_feed, vol_signer, expiry, chain):
    before = feed_state(vol_feed, expiry)
    with pytest.raises(ValueError, match="volfeed: expiry off grid"):
        vol_signer.publish(eth_curve(expiry + 1))
    with pytest.raises(ValueError, match="volfeed: bad atm vol"):
        vol_signer.publish(eth_curve(expiry, atm_vol=0))
    assert feed_state(vol_feed, expiry) == before


# ------------------------------------------------------------------ admin


def test_set_underlying__lists_and_delists(vol_feed, owner):
    tx = vol_feed.set_underlying(4, 600, sender=owner)
    assert vol_feed.heartbeat(4) == 600
    assert tx.decode_logs(vol_feed.UnderlyingSet)[0].heartbeat == 600
    vol_feed.set_underlying(4, 0, sender=owner)
    assert vol_feed.heartbeat(4) == 0


@pytest.mark.parametrize(
    ("method", "args", "error"),
    [
        ("set_underlying", (ETH, 8 * DAY), "volfeed: bad heartbeat"),
        ("add_signer", ("0x" + "00" * 20,), "volfeed: zero signer"),
        ("set_threshold", (0,), "volfeed: bad threshold"),
        ("set_threshold", (4,), "volfeed: bad threshold"),
    ],
)
def test_admin__bad_value__reverts(vol_feed, owner, expiry, method, args, error):
    before = feed_state(vol_feed, expiry)
    assert revert_message(vol_feed, method, *args, sender=owner) == error
    assert feed_state(vol_feed, expiry) == before


def test_admin__signer_set_rules(vol_feed, owner, vol_signers, stranger, expiry):
    before = feed_state(vol_feed, expiry)
    assert (
        revert_message(vol_feed, "add_signer", vol_signers[0], sender=owner)
        == "volfeed: already a signer"
    )
    assert (
        revert_message(vol_feed, "remove_signer", stranger, sender=owner) == "volfeed: not a signer"
    )
    vol_feed.remove_signer(vol_signers[0], sender=owner)
    assert (
        revert_message(vol_feed, "remove_signer", vol_signers[1], sender=owner)
        == "volfeed: below threshold"
    )
    assert feed_state(vol_feed, expiry)[3] == before[3] - 1
    vol_feed.add_signer(stranger, sender=owner)
    vol_feed.set_threshold(3, sender=owner)
    assert (vol_feed.signer_count(), vol_feed.threshold()) == (3, 3)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("set_underlying", (ETH, 60)),
        ("add_signer", ("0x" + "11" * 20,)),
        ("remove_signer", (None,)),
        ("set_threshold", (1,)),
    ],
)
def test_admin__not_owner__reverts(vol_feed, stranger, vol_signers, expiry, method, args):
    args = tuple(vol_signers[0] if a is None else a for a in args)
    before = feed_state(vol_feed, expiry)
    assert (
        revert_message(vol_feed, method, *args, sender=stranger)
        == "ownable: caller is not the owner"
    )
    assert feed_state(vol_feed, expiry) == before
