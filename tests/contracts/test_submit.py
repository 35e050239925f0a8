"""RiskGovernor.submit: M-of-N signed updates, bounded and rate-limited.

Every refused update asserts its revert message and that no governed value moved.
Devnet limits: one-hour buckets; a shock moves at most 5% of its asset's largest |shock| per
update (ETH: 5% of 2,000 = 100 bps; BTC: 90) and 10% per bucket, its magnitude at most 500
bps beyond the least tight value held in the bucket; floors and haircuts rise 500 bps per
bucket at once (the rest ramps) and, like the global values, fall 5% per update and 10% of
the bucket's highest value.
"""

import numpy as np
import pytest
from conftest import BTC, ETH, LINK, SOL, WAD, revert_message, sign_with, would_revert
from eip712.messages import EIP712Domain

from offchain_risk import devnet
from offchain_risk.keeper.signer import FLOOR, HAIRCUT, RiskUpdate, update_tuple
from offchain_risk.units import MAX_SCENARIOS, read_shocks

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
        v[0, 0] -= 100  # ETH scenario 0: -1500 -> -1600 (5% of ETH's largest shock)
        v[1, 1] -= 60  # BTC scenario 1: 1200 -> 1140
        v[2, HAIRCUT] = 300  # SOL haircut 0 -> 300 bps, tighter
        g[0] = 2 * WAD  # IM 1.5 -> 2.0 at once
        g[2] = WAD * 12 // 100  # max discount 10% -> 12%

    message, sigs = update_for(change)
    tx = submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1600
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
        v[0, FLOOR] = 900  # ETH floor 100 -> 900 bps: 500 now, the rest ramps
        v[0, HAIRCUT] = 500  # ETH haircut 200 -> 500 bps: within the step
        g[0] = 3 * WAD  # IM at once, all the way

    message, sigs = update_for(change)
    tx = submit(governor, message, sigs, keeper)
    assert lens.asset_config(ETH).floor_bps == 600
    assert lens.asset_config(ETH).haircut_bps == 500
    assert engine.im_multiplier() == 3 * WAD
    [event] = tx.events.filter(governor.RampStarted)
    assert event.asset == ETH and event.end == tx.timestamp + 6 * HOUR
    assert (event.floor_bps, event.haircut_bps) == (900, 500)
    view = governor.asset_view(ETH)
    assert view.ramp_target[FLOOR:] == [900, 500] and view.ramp_end == event.end


def test_submit__shock_beyond_mm_step__reverts(governor, governed, update_for, owner, keeper):
    """With rates wide enough that the step binds (50%: ETH may move 1,000 bps), a shock's
    magnitude still rises at most 500 bps above the least tight value held in the bucket."""
    governor.set_limits((HOUR, WAD // 2, WAD // 2, 500, 6 * HOUR), sender=owner)
    message, sigs = update_for(_set(ETH, 0, -2_001))  # 501 bps beyond -1500
    refused(governor, governed, message, sigs, keeper, "governor: shock beyond the MM step")
    message, sigs = update_for(_set(ETH, 0, -2_000))
    submit(governor, message, sigs, keeper)


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
    before2 = [read_shocks(d2.engine, a) for a in range(4)]
    # signed for this governor, relayed to the other engine's governor
    refused(governor2, governed, message, sigs, keeper, "governor: not a signer")
    assert [read_shocks(d2.engine, a) for a in range(4)] == before2
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
        (_set(ETH, FLOOR, 99), "governor: floor out of bounds"),  # below the admin floor rate
        (_set(ETH, FLOOR, 2_001), "governor: floor out of bounds"),
        (_set(BTC, HAIRCUT, 5_001), "governor: haircut out of bounds"),
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
    LINK's to 31%, an update that leaves its worst down move at 30% is refused."""
    bounds = list(devnet.asset_bounds(devnet.MARKETS[LINK]))
    bounds[6] = 3_100  # shock_down_min
    governor.set_asset_bounds(LINK, bounds, sender=owner)
    message, sigs = update_for()
    refused(governor, governed, message, sigs, keeper, "governor: shocks below floor")
    message, sigs = update_for(_set(LINK, 6, -3_100))  # meets it (5% of 3,000 is 150)
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
    "change,error",
    [
        (_set(ETH, 0, -1399), "governor: shock moves too fast per update"),  # 100 bps for ETH
        (_set(ETH, 0, -1601), "governor: shock moves too fast per update"),  # either way
        (_set(BTC, 1, 1109), "governor: shock moves too fast per update"),  # 90 bps for BTC
        (_set(ETH, 12, -101), "governor: shock moves too fast per update"),  # from zero too
        (_set(SOL, 0, 1), "governor: shock moves too fast per update"),  # crossing zero
        (_set(BTC, HAIRCUT, 284), "governor: loosens too fast per update"),  # 300 -> 285 at most
        (_set_global(0, 3 * WAD // 2 * 95 // 100 - 1), "governor: loosens too fast per update"),
        (_set_global(2, WAD // 10 * 95 // 100 - 1), "governor: loosens too fast per update"),
    ],
)
def test_submit__beyond_update_rate__reverts(governor, governed, update_for, keeper, change, error):
    message, sigs = update_for(change)
    refused(governor, governed, message, sigs, keeper, error)


def test_submit__shock_at_update_allowance__accepted(lens, governor, update_for, keeper):
    def change(v, g):
        v[ETH, 0] = -1400  # toward zero: 100 bps
        v[ETH, 2] = -1300  # away from zero: 100 bps
        v[ETH, 12] = 100  # from zero: 100 bps
        v[BTC, 8] = -810  # BTC: 90 bps

    message, sigs = update_for(change)
    submit(governor, message, sigs, keeper)
    assert [lens.shocks(ETH)[k] for k in (0, 2, 12)] == [-1400, -1300, 100]
    assert lens.shocks(BTC)[8] == -810


def test_submit__shock_beyond_window_rate__reverts(
    lens, governor, engine, governed, update_for, keeper, chain
):
    """Two 100 bps steps in one bucket, then a third is refused: a shock stays within 200 bps
    (10% of ETH's largest shock) of every value it held in the bucket."""
    at_bucket_start(chain)
    for value in (-1400, -1300):
        message, sigs = update_for(_set(ETH, 0, value))
        submit(governor, message, sigs, keeper)
    message, sigs = update_for(_set(ETH, 0, -1299))
    refused(governor, governed, message, sigs, keeper, "governor: shock moves too fast per window")
    for value in (-1400, -1500):  # back to where the bucket started
        message, sigs = update_for(_set(ETH, 0, value))
        submit(governor, message, sigs, keeper)
    message, sigs = update_for(_set(ETH, 0, -1501))  # 201 bps from -1300, held this bucket
    refused(governor, governed, message, sigs, keeper, "governor: shock moves too fast per window")
    assert governor.asset_view(ETH).low[0] == -1500
    assert governor.asset_view(ETH).high[0] == -1300


def test_submit__window__next_bucket_restarts_from_held_values(
    lens, governor, governed, update_for, keeper, chain
):
    """Buckets are fixed: a new one starts from the values held at its start, so an hour that
    spans a bucket boundary allows two buckets' moves (documented in ARCHITECTURE.md)."""
    at_bucket_start(chain, offset=HOUR - 30)
    for value in (-1400, -1300):
        message, sigs = update_for(_set(ETH, 0, value))
        submit(governor, message, sigs, keeper)
    at_bucket_start(chain)  # seconds later, in the next bucket
    message, sigs = update_for(_set(ETH, 0, -1200))
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == -1200
    view = governor.asset_view(ETH)
    assert (view.low[0], view.high[0]) == (-1300, -1200)


def test_submit__window__raising_a_haircut_raises_the_reference(
    lens, governor, governed, update_for, keeper, chain
):
    """After a haircut rises, lowering it again is limited from the higher value."""
    at_bucket_start(chain)
    message, sigs = update_for(_set(BTC, HAIRCUT, 800))
    submit(governor, message, sigs, keeper)
    chain.mine(timestamp=chain.pending_timestamp + 60)
    message, sigs = update_for(_set(BTC, HAIRCUT, 759))  # 5% of 800 = 40
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per update")
    for value in (760, 722):
        message, sigs = update_for(_set(BTC, HAIRCUT, value))
        submit(governor, message, sigs, keeper)
    message, sigs = update_for(_set(BTC, HAIRCUT, 719))  # 10% of 800 = 80: 720 is the limit
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per window")
    assert lens.asset_config(BTC).haircut_bps == 722


def test_submit__tightening__never_rate_limited(
    lens, governor, engine, liquidations, update_for, keeper
):
    def change(v, g):
        v[BTC, HAIRCUT] = 800  # haircut 300 -> 800: the 500 bps step, no ramp
        g[0], g[1], g[2] = 3 * WAD, WAD // 20, WAD // 5

    message, sigs = update_for(change)
    submit(governor, message, sigs, keeper)
    assert lens.asset_config(BTC).haircut_bps == 800
    assert engine.im_multiplier() == 3 * WAD
    assert liquidations.max_discount() == WAD // 5


# ------------------------------------------------------ K = 32: the second word


def test_submit__second_word_slot__record_per_word_limits_the_bucket(
    lens, governor, update_for, keeper, governed, chain
):
    """Scenarios 16..31 live in the second shock word: checked and recorded like the first.
    ETH's largest |shock| is 2,000 (first word): 100 bps per update, 200 per bucket."""
    at_bucket_start(chain)
    for x in (-100, -200):
        message, sigs = update_for(lambda v, g, x=x: v.__setitem__((ETH, 20), x))
        submit(governor, message, sigs, keeper)
        assert lens.shocks(ETH)[20] == x
    view = governor.asset_view(ETH)
    assert (view.low[20], view.high[20]) == (-200, 0)
    # 1 bps within the update's allowance, but 201 from the bucket's high of 0
    message, sigs = update_for(lambda v, g: v.__setitem__((ETH, 20), -201))
    refused(governor, governed, message, sigs, keeper, "governor: shock moves too fast per window")


def test_submit__second_word_slot__beyond_the_update_allowance__reverts(
    governor, update_for, keeper, governed
):
    message, sigs = update_for(lambda v, g: v.__setitem__((ETH, 31), 101))
    refused(governor, governed, message, sigs, keeper, "governor: shock moves too fast per update")


def test_submit__largest_shock_in_second_word__scales_both_words_allowance(
    engine, lens, governor, update_for, keeper, owner, chain
):
    """The allowance is uniform per asset, from its largest |shock| over both words: 4,000 bps
    in scenario 25 gives every slot 200 bps per update (first-word rows alone: 100)."""
    row = [int(s) for s in lens.shocks(ETH)]
    row[25] = -4_000
    engine.set_shocks(ETH, row, sender=owner)  # the owner's override: the next base
    at_bucket_start(chain)
    assert governor.asset_view(ETH).update_allowance == 200
    message, sigs = update_for(lambda v, g: v.__setitem__((ETH, 0), v[ETH, 0] - 200))
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[0] == row[0] - 200


@pytest.mark.parametrize("down_in", [0, 1])
def test_submit__worst_moves_in_either_word__meet_the_floors(
    engine, lens, governor, update_for, keeper, owner, chain, down_in
):
    """The scenario set keeps a 5% move each way over both words: a first word of rises
    only (or falls only) with the other direction in the second word is accepted."""
    up, down = [1_500] * 16, [-2_000] * 16
    row = down + up if down_in == 0 else up + down
    engine.set_shocks(ETH, row, sender=owner)
    at_bucket_start(chain)
    message, sigs = update_for(lambda v, g: v.__setitem__((ETH, 1), v[ETH, 1] + 50))
    submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[1] == row[1] + 50


# -------------------------------------------------------------- regressions


def test_regression__ramp_bypass_by_chaining__haircut_held_to_one_step(
    lens, governor, update_for, keeper, chain
):
    """Finding 1, ramp bypass by chaining. The MM step was measured against the value the
    previous update applied, and tightening had no rate limit: ten sequential-nonce updates
    each stepped another 500 bps, took the WETH haircut from 200 to 5,000 bps with no ramp
    pending, and a healthy account was liquidated at half the collateral's price. The step
    is now a budget per bucket: whatever the number of updates, the haircut is at most 500
    bps above the lowest value it held in the bucket, and the rest ramps."""
    at_bucket_start(chain)
    for i in range(1, 11):
        message, sigs = update_for(_set(ETH, HAIRCUT, min(200 + 500 * i, 5_000)))
        submit(governor, message, sigs, keeper)
    assert lens.asset_config(ETH).haircut_bps == 700
    view = governor.asset_view(ETH)
    assert view.ramp_target[HAIRCUT] == 5_000 and view.low[HAIRCUT] == 200


def test_regression__ramp_bypass_by_chaining__shock_held_to_the_bucket(
    lens, governor, update_for, keeper, chain
):
    """Finding 1 for shocks: twenty updates of -500 bps each moved ETH's scenario 12 from 0
    to -100% in one block, and three healthy books each lost 16% of their equity to
    liquidation. Now neither -500 bps steps nor the largest accepted ones (-100 bps, 5% of
    ETH's largest shock) get further than 200 bps (10%) in one bucket."""
    at_bucket_start(chain)
    for step in (500, 100):
        for _ in range(20):
            target = max(lens.shocks(ETH)[12] - step, -10_000)
            message, sigs = update_for(_set(ETH, 12, target))
            if would_revert(governor, "submit", update_tuple(message), sigs, sender=keeper):
                continue
            submit(governor, message, sigs, keeper)
    assert lens.shocks(ETH)[12] == -200


def test_regression__tightening_that_loosens_hedged_books__refused(
    governor, governed, update_for, keeper
):
    """Finding 2. Each shock slot was judged on its own: a larger magnitude counted as tighter
    and skipped every rate limit. This update moves 14 slots, each larger in magnitude by at
    most 500 bps, one leg toward the other (BTC's toward ETH's where ETH's is larger, ETH's
    toward BTC's elsewhere). The old governor applied it at once, and the MM of a long BTC /
    short ETH book of equal notional fell from 6% to 1% of the notional (-83%). No change of
    one slot is tightening now: each moves within its asset's allowance (BTC 90 bps)."""

    def hedge_collapse(v, g):
        for k in range(MAX_SCENARIOS):
            e, b = v[ETH, k], v[BTC, k]
            if abs(e) > abs(b):
                v[BTC, k] = b + np.sign(b) * min(abs(e) - abs(b), 500)
            elif abs(b) > abs(e):
                v[ETH, k] = e + np.sign(e) * min(abs(b) - abs(e), 500)

    before, _ = _values(governor)
    after = before.copy()
    hedge_collapse(after, [])
    assert np.sum(after != before) == 14
    assert np.all(np.abs(after) >= np.abs(before))

    def book_mm(v):  # long 1 BTC, short 1 ETH (notional), bps of the notional
        return max(0, int(np.max(-(v[BTC, :MAX_SCENARIOS] - v[ETH, :MAX_SCENARIOS]))))

    assert (book_mm(before), book_mm(after)) == (600, 100)
    message, sigs = update_for(hedge_collapse)
    refused(governor, governed, message, sigs, keeper, "governor: shock moves too fast per update")


def test_regression__stale_record__moves_from_the_engines_values(
    lens, governor, engine, governed, update_for, owner, keeper
):
    """Finding 4, stale records. The governor kept its own copy of floors, haircuts, IM
    multiplier and discounts: after the owner raised the WETH haircut on the engine to 2,000
    bps and the IM multiplier to 3 (no sync), a signed haircut of 700 counted as a 500 bps
    tightening of the stale 200 and cut the owner's 2,000 to 700 at once, and a signed IM of
    2 as a tightening of the stale 1.5. Every update now starts from what the engines hold."""
    engine.set_asset_risk(ETH, 100, 2_000, sender=owner)
    engine.set_im_multiplier(3 * WAD, sender=owner)
    message, sigs = update_for(_set(ETH, HAIRCUT, 700))
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per update")
    message, sigs = update_for(_set_global(0, 2 * WAD))
    refused(governor, governed, message, sigs, keeper, "governor: loosens too fast per update")
    message, sigs = update_for(_set(ETH, HAIRCUT, 1_900))  # 5% below the engine's value
    submit(governor, message, sigs, keeper)
    assert lens.asset_config(ETH).haircut_bps == 1_900
    assert engine.im_multiplier() == 3 * WAD


def test_submit__restated_record__keeps_the_owners_globals(
    project, governor, engine, update_for, owner, keeper
):
    """Global values equal to the last signed ones change nothing: an owner's IM multiplier
    set on the engine stays when an update restates the governor's record."""
    engine.set_im_multiplier(3 * WAD, sender=owner)

    def restate(v, g):
        g[0] = 3 * WAD // 2  # the governor's record

    message, sigs = update_for(restate)
    tx = submit(governor, message, sigs, keeper)
    assert engine.im_multiplier() == 3 * WAD
    assert not tx.decode_logs(project.MarginConfig.ImMultiplierSet)


def _values(governor):
    rows = [list(governor.asset_view(a).current) for a in (ETH, BTC, SOL, LINK)]
    return np.array(rows, dtype=np.int64), None
