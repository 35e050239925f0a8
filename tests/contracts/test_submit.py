"""RiskGovernor.submit: M-of-N signed updates, bounded and rate-limited.

Every refused update asserts its revert message and that no governed value moved.
"""

import pytest
from conftest import BTC, ETH, LINK, SOL, WAD, revert_message, sign_with
from eip712.messages import EIP712Domain

from offchain_risk import devnet
from offchain_risk.keeper.signer import RiskUpdate, update_tuple

HOUR = 3_600
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def submit(governor, message, sigs, sender):
    return governor.submit(update_tuple(message), sigs, sender=sender)


def refused(governor, governed, message, sigs, sender, error):
    """The update reverts with `error` and no governed value moves."""
    before = governed()
    got = revert_message(governor, "submit", update_tuple(message), sigs, sender=sender)
    assert got == error
    assert governed() == before


def at_bucket_start(chain, offset=1):
    """Mine the next block `offset` seconds into a fresh one-hour bucket."""
    t = chain.pending_timestamp
    chain.mine(timestamp=(t // HOUR + 1) * HOUR + offset)


# ------------------------------------------------------------------ accepted


def test_submit__within_limits__applies_and_bumps_nonce(
    lens, governor, engine, liquidations, update_for, keeper
):
    def change(v, g):
        v[0, 0] -= 400  # ETH scenario 0: -1500 -> -1900, tighter (within the 500 bps step)
        v[1, 1] -= 60  # BTC scenario 1: 1200 -> 1140, loosens 5%
        v[2, 17] = 300  # SOL haircut 0 -> 300 bps, tighter
        g[0] = 2 * WAD  # IM 1.5 -> 2.0 at once
        g[2] = WAD * 12 // 100  # max discount 10% -> 12%

    message, sigs = update_for(change)
    tx = submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1900
    assert lens.shocks(BTC)[1] == 1140
    assert lens.asset_config(SOL).haircut_bps == 300
    assert engine.im_multiplier() == 2 * WAD
    assert (liquidations.min_discount(), liquidations.max_discount()) == (
        WAD // 50,
        WAD * 12 // 100,
    )
    assert governor.next_nonce() == 1
    [event] = tx.events.filter(governor.RiskUpdateApplied)
    assert event.nonce == 0 and event.relayer == keeper
    assert event.digest == governor.update_digest(update_tuple(message))
    assert not tx.events.filter(governor.RampStarted)


def test_submit__unchanged_values__sets_nothing(project, governor, update_for, keeper):
    message, sigs = update_for()
    tx = submit(governor, message, sigs, keeper)
    assert not tx.decode_logs(project.MarginConfig.ShocksSet)
    assert not tx.decode_logs(project.MarginConfig.AssetRiskSet)
    assert governor.next_nonce() == 1


def test_submit__three_of_three__accepted(governor, update_for, risk_signers, keeper):
    message, sigs = update_for(signers=risk_signers)
    submit(governor, message, sigs, keeper)
    assert governor.next_nonce() == 1


def test_submit__mm_tightening_beyond_step__ramps(
    lens, governor, engine, update_for, keeper, chain
):
    def change(v, g):
        v[0, 0] = -3500  # ETH scenario 0: -1500 -> -3500, 2000 bps tighter
        v[0, 16] = 400  # ETH floor 100 -> 400 bps
        g[0] = 3 * WAD  # IM at once, all the way

    message, sigs = update_for(change)
    tx = submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -2000  # the 500 bps step now
    assert lens.asset_config(ETH).floor_bps == 400  # 300 bps: within the step
    assert engine.im_multiplier() == 3 * WAD
    [event] = tx.events.filter(governor.RampStarted)
    assert event.asset == ETH and event.end == tx.timestamp + 6 * HOUR
    view = governor.asset_view(ETH)
    assert view.ramp_target[0] == -3500 and view.ramp_end == event.end


# ------------------------------------------------------------------- replays


def test_submit__same_nonce_again__reverts(governor, governed, update_for, keeper):
    message, sigs = update_for(lambda v, g: v.__setitem__((0, 0), -1600))
    submit(governor, message, sigs, keeper)
    refused(governor, governed, message, sigs, keeper, "governor: bad nonce")


def test_submit__future_nonce__reverts(governor, governed, update_for, keeper):
    message, sigs = update_for(nonce=1)
    refused(governor, governed, message, sigs, keeper, "governor: bad nonce")


def test_submit__signed_for_other_chain__reverts(
    governor, governed, update_for, risk_signers, keeper
):
    message, _ = update_for(lambda v, g: v.__setitem__((0, 0), -1600))
    domain = EIP712Domain(
        name="Ballast Risk", version="1", chainId=1, verifyingContract=str(governor.address)
    )
    other = RiskUpdate(**message.model_dump(), eip712_domain=domain)
    sigs = sign_with(other, risk_signers[:2])
    refused(governor, governed, other, sigs, keeper, "governor: not a signer")


def test_submit__signed_for_other_engine__reverts(
    project, governor, governed, update_for, risk_signers, owner, keeper
):
    """The same signers govern a second engine: its signatures do not move this one."""
    d2 = devnet.deploy(project, owner)
    governor2 = devnet.deploy_governor(project, d2, owner, list(risk_signers), 2)
    message, sigs = update_for(lambda v, g: v.__setitem__((0, 0), -1600))
    before2 = [d2.engine.shock_word(a) for a in range(4)]
    # signed for this governor, relayed to the other engine's governor
    refused(governor2, governed, message, sigs, keeper, "governor: not a signer")
    assert [d2.engine.shock_word(a) for a in range(4)] == before2
    # and the converse: signed for the other governor, relayed here
    other = RiskUpdate(
        **message.model_dump(),
        eip712_domain=EIP712Domain(
            name="Ballast Risk",
            version="1",
            chainId=message._eip712_domain_.chainId,
            verifyingContract=str(governor2.address),
        ),
    )
    refused(
        governor,
        governed,
        other,
        sign_with(other, risk_signers[:2]),
        keeper,
        "governor: not a signer",
    )


# ---------------------------------------------------------------- signatures


def test_submit__wrong_signer__reverts(
    governor, governed, update_for, risk_signers, trader, keeper
):
    message, sigs = update_for(signers=[risk_signers[0], trader])
    refused(governor, governed, message, sigs, keeper, "governor: not a signer")


def test_submit__signer_counted_twice__reverts(
    governor, governed, update_for, risk_signers, keeper
):
    message, sigs = update_for(signers=[risk_signers[0]])
    refused(governor, governed, message, sigs * 2, keeper, "governor: duplicate signer")


def test_submit__unsorted_signers__reverts(governor, governed, update_for, keeper):
    message, sigs = update_for()
    refused(governor, governed, message, sigs[::-1], keeper, "governor: signers not sorted")


def test_submit__below_threshold__reverts(governor, governed, update_for, risk_signers, keeper):
    message, sigs = update_for(signers=[risk_signers[1]])
    refused(governor, governed, message, sigs, keeper, "governor: below threshold")


def test_submit__expired_deadline__reverts(governor, governed, update_for, keeper, chain):
    message, sigs = update_for(deadline=chain.pending_timestamp + 60)
    chain.mine(timestamp=chain.pending_timestamp + 61)
    refused(governor, governed, message, sigs, keeper, "governor: expired")


def test_submit__malleable_high_s__reverts(governor, governed, update_for, keeper):
    message, sigs = update_for()
    r, s, v = sigs[0][:32], int.from_bytes(sigs[0][32:64], "big"), sigs[0][64]
    flipped = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    refused(
        governor,
        governed,
        message,
        [flipped, sigs[1]],
        keeper,
        "ecdsa: invalid signature `s` value",
    )


def test_submit__short_signature__reverts(governor, governed, update_for, keeper):
    message, sigs = update_for()
    refused(
        governor,
        governed,
        message,
        [sigs[0][:64], sigs[1]],
        keeper,
        "governor: bad signature length",
    )


def test_submit__removed_signer__pending_signatures_void(
    governor, governed, update_for, risk_signers, owner, keeper
):
    message, sigs = update_for(signers=risk_signers[:2])
    governor.remove_signer(risk_signers[0], sender=owner)
    refused(governor, governed, message, sigs, keeper, "governor: not a signer")


def test_submit__relayed_by_signer__reverts(governor, governed, update_for, risk_signers):
    message, sigs = update_for()
    refused(governor, governed, message, sigs, risk_signers[2], "governor: signer cannot relay")


def test_submit__paused__reverts(governor, governed, update_for, guardian, keeper):
    governor.pause(sender=guardian)
    message, sigs = update_for(lambda v, g: v.__setitem__((0, 0), -1600))
    refused(governor, governed, message, sigs, keeper, "governor: paused")


# --------------------------------------------------------------- structure


@pytest.mark.parametrize(
    "assets,error",
    [
        ((1, 0, 2, 3), "governor: assets not sorted"),
        ((0, 0, 2, 3), "governor: assets not sorted"),
        ((0, 1, 2, 5), "governor: asset not governed"),
    ],
)
def test_submit__bad_asset_list__reverts(
    governor, governed, update_for, risk_signers, keeper, assets, error
):
    message, _ = update_for()
    bad = _rebuilt(message, assets=list(assets))
    refused(governor, governed, bad, sign_with(bad, risk_signers[:2]), keeper, error)


def test_submit__length_mismatch__reverts(governor, governed, update_for, risk_signers, keeper):
    message, _ = update_for()
    bad = _rebuilt(message, haircuts=list(message.haircuts)[:3])
    refused(
        governor,
        governed,
        bad,
        sign_with(bad, risk_signers[:2]),
        keeper,
        "governor: length mismatch",
    )


# -------------------------------------------------------------------- bounds


def _set(row, col, value):
    def change(v, g):
        v[row, col] = value

    return change


def _set_global(i, value):
    def change(v, g):
        g[i] = value

    return change


@pytest.mark.parametrize(
    "change,error",
    [
        (_set(ETH, 16, 99), "governor: floor out of bounds"),  # below the admin floor rate
        (_set(ETH, 16, 2_001), "governor: floor out of bounds"),
        (_set(BTC, 17, 5_001), "governor: haircut out of bounds"),
        (_set(SOL, 1, 20_001), "governor: shock out of bounds"),
        (_set_global(0, 3 * WAD + 1), "governor: IM multiplier out of bounds"),
        (_set_global(0, 6 * WAD // 5 - 1), "governor: IM multiplier out of bounds"),
        (_set_global(1, WAD // 20 + 1), "governor: discount out of bounds"),
        (_set_global(2, WAD // 5 + 1), "governor: discount out of bounds"),
    ],
)
def test_submit__beyond_admin_bounds__reverts(
    governor, governed, update_for, keeper, change, error
):
    message, sigs = update_for(change)
    refused(governor, governed, message, sigs, keeper, error)


def test_submit__scenario_floor_raised__unmet_update_reverts(
    governor, governed, update_for, owner, keeper
):
    """Every scenario set keeps a down move of at least the admin floor: once the owner raises
    LINK's to 35%, an update that leaves its worst down move at 30% is refused."""
    bounds = list(devnet.asset_bounds(devnet.MARKETS[LINK]))
    bounds[6] = 3_500  # shock_down_min
    governor.set_asset_bounds(LINK, bounds, sender=owner)
    message, sigs = update_for()
    refused(governor, governed, message, sigs, keeper, "governor: shocks below floor")
    message, sigs = update_for(_set(LINK, 6, -3_500))  # meets it
    submit(governor, message, sigs, keeper)


def _rebuilt(message, **fields):
    """The message with fields replaced, past the keeper's own validation."""
    return RiskUpdate(**{**message.model_dump(), **fields}, eip712_domain=message._eip712_domain_)


def test_submit__shock_below_minus_100pct__reverts(
    governor, governed, update_for, risk_signers, keeper
):
    message, _ = update_for()
    shocks = list(message.shocks)
    shocks[SOL] = (shocks[SOL] & ~0xFFFF) | (-10_001 & 0xFFFF)
    bad = _rebuilt(message, shocks=shocks)
    sigs = sign_with(bad, risk_signers[:2])
    refused(governor, governed, bad, sigs, keeper, "governor: shock out of bounds")


def test_submit__min_discount_above_max__reverts(
    governor, governed, update_for, risk_signers, keeper
):
    message, _ = update_for()
    bad = _rebuilt(message, min_discount=WAD // 20, max_discount=WAD // 20 - 1)
    sigs = sign_with(bad, risk_signers[:2])
    refused(governor, governed, bad, sigs, keeper, "governor: discount out of bounds")


# ------------------------------------------------------------------- rate limits


@pytest.mark.parametrize(
    "change",
    [
        _set(ETH, 0, -1424),  # 5% of 1500 is 75: -1425 is the limit
        _set(BTC, 1, 1139),  # 5% of 1200 is 60
        _set(BTC, 17, 284),  # haircut 300 -> 285 at most
        _set(SOL, 0, 1),  # crossing zero from -2500
        _set_global(0, 3 * WAD // 2 * 95 // 100 - 1),  # IM 1.5 -> 1.425 at most
        _set_global(2, WAD // 10 * 95 // 100 - 1),  # max discount 10% -> 9.5% at most
    ],
)
def test_submit__loosening_beyond_update_rate__reverts(
    governor, governed, update_for, keeper, change
):
    message, sigs = update_for(change)
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per update")


def test_submit__loosening_at_update_rate__accepted(lens, governor, engine, update_for, keeper):
    message, sigs = update_for(_set(ETH, 0, -1425))
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1425


def test_submit__loosening_beyond_window_rate__reverts(
    lens, governor, engine, governed, update_for, keeper, chain
):
    """Two 5% steps in one bucket, then a third is refused: 10% of the tightest value in the
    window (1500 -> 1350) is the limit, whatever the per-update steps."""
    at_bucket_start(chain)
    for value in (-1425, -1354):  # 5% of 1500, then 5% of 1425 (71)
        message, sigs = update_for(_set(ETH, 0, value))
        submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1354
    message, sigs = update_for(_set(ETH, 0, -1349))  # within 5% of 1354, beyond 10% of 1500
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per window")
    message, sigs = update_for(_set(ETH, 0, -1350))  # exactly 10% of 1500
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1350


def test_submit__window__next_bucket_still_remembers_previous(
    lens, governor, engine, governed, update_for, keeper, chain
):
    """Rolling, not fixed: a 10% loosening at the end of a bucket leaves no room at the start
    of the next one; the tightest value leaves the reference only after a whole bucket."""
    at_bucket_start(chain, offset=HOUR - 20)
    for value in (-1425, -1354, -1350):
        message, sigs = update_for(_set(ETH, 0, value))
        submit(governor, message, sigs, keeper)
    at_bucket_start(chain)  # seconds later, in the next bucket
    message, sigs = update_for(_set(ETH, 0, -1349))
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per window")
    chain.mine(timestamp=chain.pending_timestamp + HOUR - 30)  # still in that bucket
    message, sigs = update_for(_set(ETH, 0, -1349))
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per window")
    at_bucket_start(chain)  # two buckets on: the reference is -1350
    message, sigs = update_for(_set(ETH, 0, -1283))  # 5% of 1350 = 67
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1283


def test_submit__window__tightening_raises_the_reference(
    lens, governor, engine, governed, update_for, keeper, chain
):
    """After a tightening, loosening back is limited from the tighter value."""
    at_bucket_start(chain)
    message, sigs = update_for(_set(ETH, 0, -2000))
    submit(governor, message, sigs, keeper)
    chain.mine(timestamp=chain.pending_timestamp + 60)
    message, sigs = update_for(_set(ETH, 0, -1899))  # 5% of 2000 = 100
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per update")
    message, sigs = update_for(_set(ETH, 0, -1900))
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1900


def test_submit__tightening__never_rate_limited(
    lens, governor, engine, liquidations, update_for, keeper
):
    def change(v, g):
        v[BTC, 17] = 800  # haircut 300 -> 800: the 500 bps step, no ramp
        g[0], g[1], g[2] = 3 * WAD, WAD // 20, WAD // 5

    message, sigs = update_for(change)
    submit(governor, message, sigs, keeper)
    assert lens.asset_config(BTC).haircut_bps == 800
    assert engine.im_multiplier() == 3 * WAD
    assert liquidations.max_discount() == WAD // 5
