"""Property: any sequence of accepted risk updates (and ramp pokes) keeps every governed value
inside its bounds and never moves a value faster than the rates, judged against the history
of values the engine actually held, not against the governor's own bookkeeping:

* a shock moves at most 5% (per update) and 10% (against every value held in the same bucket)
  of its asset's largest |shock|, in either direction, and its magnitude never exceeds the
  least tight value held in the bucket by more than the MM step;
* a floor, haircut or global value falls at most 5% per update and 10% of every value held in
  the bucket; floors and haircuts rise at most the MM step above the lowest value held in it.

Proposals are random (many are refused); each refused one must leave every value unchanged.
"""

import numpy as np
from conftest import sign_with, would_revert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain_risk import devnet
from offchain_risk.keeper.signer import (
    FLOOR,
    HAIRCUT,
    ParamSet,
    allowance,
    engine_shocks,
    update_tuple,
)
from offchain_risk.units import MAX_SCENARIOS as K

ASSETS = (0, 1, 2, 3)
WINDOW, WINDOW_RATE, UPDATE_RATE, MM_STEP, RAMP = devnet.GOVERNOR_LIMITS
# anvil transactions cost ~50-150 ms each: a quarter of the profile's examples, each a
# sequence of up to eight actions.
EXAMPLES = max(10, settings.default.max_examples // 4)
WAD_ = 10**18

# relative changes in %: mostly near the 5% / 10% limits, some far beyond them or the caps
pct = st.sampled_from([-5, -4, -4, -3, -2, -2, -1, 3, 20, 60] * 3 + [-100, -12, -6, 300])
global_pct = st.sampled_from([0] * 12 + [-5, -4, -2, 3, 20, -12, 100])
action = st.tuples(
    st.sampled_from(["update", "update", "update", "poke"]),
    st.sampled_from([0, 1, 60, WINDOW // 2, WINDOW, 2 * WINDOW]),  # seconds before it
    st.lists(  # (asset row, slot, change) edits
        st.tuples(st.integers(0, 3), st.integers(0, K + 1), pct), min_size=1, max_size=3
    ),
    st.tuples(global_pct, global_pct, global_pct),  # IM multiplier, min and max discount
)


def held(lens, engine, liquidations) -> tuple[np.ndarray, np.ndarray]:
    """(4, 34) asset values and (3,) global values the engine and liquidations hold."""
    rows = []
    for a in ASSETS:
        cfg = lens.asset_config(a)
        rows.append([*engine_shocks(engine, a), cfg.floor_bps, cfg.haircut_bps])
    globals_ = [engine.im_multiplier(), liquidations.min_discount(), liquidations.max_discount()]
    return np.array(rows, dtype=np.int64), np.array(globals_, dtype=object)


def shock_moves_within(x, ref, rate) -> bool:
    """(4, 32) shocks `x` within max(floor(row max |ref| * rate), 1) of `ref`, row by row."""
    x, ref = np.asarray(x, dtype=np.int64), np.asarray(ref, dtype=np.int64)
    # exact integers: bps * a WAD rate overflows int64
    allow = [max(int(m) * rate // WAD_, 1) for m in np.abs(ref).max(axis=1)]
    return bool(np.all(np.abs(x - ref) <= np.array(allow, dtype=np.int64)[:, None]))


def within_step(x, held) -> bool:
    """Shock magnitudes at most MM_STEP beyond `held`'s; floors and haircuts at most MM_STEP
    above `held`'s."""
    x, held = np.asarray(x, dtype=np.int64), np.asarray(held, dtype=np.int64)
    shocks, h = x[:, :K], held[:, :K]
    ok = np.all(shocks <= np.maximum(h, 0) + MM_STEP) and np.all(
        shocks >= np.minimum(h, 0) - MM_STEP
    )
    return bool(ok and np.all(x[:, FLOOR:] <= held[:, FLOOR:] + MM_STEP))


def within(x, ref, rate) -> np.ndarray:
    """The loosening rule, stated directly on held values (see RiskGovernor._within)."""
    x, ref = np.asarray(x, dtype=object), np.asarray(ref, dtype=object)
    allow = allowance(ref, rate)
    return np.where(ref > 0, x >= ref - allow, np.where(ref < 0, x <= ref + allow, True))


def check_bounds(values, globals_) -> None:
    for a, spec in zip(ASSETS, devnet.MARKETS, strict=True):
        fmin, fmax, hmin, hmax, dmax, umax, dmin, umin = devnet.asset_bounds(spec)
        shocks = values[a, :K]
        assert shocks.min() >= -dmax and shocks.max() <= umax
        assert -shocks.min() >= dmin and shocks.max() >= umin
        assert fmin <= values[a, FLOOR] <= fmax and hmin <= values[a, HAIRCUT] <= hmax
    im_min, im_max, lo_min, lo_max, hi_min, hi_max = devnet.GLOBAL_BOUNDS
    assert im_min <= globals_[0] <= im_max
    assert lo_min <= globals_[1] <= lo_max and hi_min <= globals_[2] <= hi_max
    assert globals_[1] <= globals_[2]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=st.lists(action, min_size=1, max_size=8))
def test_accepted_updates__stay_in_bounds_and_rate(
    actions, chain, governor, engine, lens, liquidations, risk_signer, keeper, stranger
):
    snapshot = chain.snapshot()
    try:
        values, globals_ = held(lens, engine, liquidations)
        # (time, values, globals) each time the held values changed
        history = [(chain.blocks.head.timestamp, values, globals_)]
        for kind, dt, edits, gedits in actions:
            poked = edits[0][0]
            chain.mine(timestamp=chain.pending_timestamp + dt)
            before = held(lens, engine, liquidations)
            if kind == "poke":
                if would_revert(governor, "poke", poked, sender=stranger) is None:
                    tx = governor.poke(poked, sender=stranger)
                else:
                    continue
            else:
                proposal = before[0].copy()
                for row, slot, pct in edits:
                    proposal[row, slot] = int(proposal[row, slot] * (100 + pct) // 100)
                proposal[:, :K] = np.clip(proposal[:, :K], -10_000, 32_767)
                proposal[:, FLOOR:] = np.clip(proposal[:, FLOOR:], 0, 9_999)
                g = [int(v) * (100 + p) // 100 for v, p in zip(before[1], gedits, strict=True)]
                g[1] = min(g[1], g[2])
                target = ParamSet.from_values(ASSETS, proposal, g)
                view = risk_signer.view(ASSETS)
                message = risk_signer.message(target, view.nonce, view.timestamp + 3 * WINDOW)
                sigs = sign_with(message, risk_signer.signers)
                args = (update_tuple(message), sigs)
                if would_revert(governor, "submit", *args, sender=keeper) is not None:
                    assert held(lens, engine, liquidations)[0].tolist() == before[0].tolist()
                    continue
                tx = governor.submit(*args, sender=keeper)
            now = tx.timestamp
            values, globals_ = held(lens, engine, liquidations)
            check_bounds(values, globals_)
            # per update: against the values held just before it
            assert shock_moves_within(values[:, :K], before[0][:, :K], UPDATE_RATE)
            assert np.all(within(values[:, FLOOR:], before[0][:, FLOOR:], UPDATE_RATE))
            assert np.all(within(globals_, before[1], UPDATE_RATE))
            # per bucket: against every value held at some time in the current bucket
            bucket_start = now // WINDOW * WINDOW
            for i, (t, v, g) in enumerate(history):
                superseded_at = history[i + 1][0] if i + 1 < len(history) else now
                if superseded_at > bucket_start:
                    assert shock_moves_within(values[:, :K], v[:, :K], WINDOW_RATE), (t, v)
                    assert np.all(within(values[:, FLOOR:], v[:, FLOOR:], WINDOW_RATE))
                    assert np.all(within(globals_, g, WINDOW_RATE))
                    assert within_step(values, v), (t, v, values)
            history.append((now, values, globals_))
    finally:
        chain.restore(snapshot)


def test_property_oracle__detects_a_fast_move():
    """The property's own rules reject what the governor must refuse (so the test can fail)."""
    assert not within([1349], [1500], WINDOW_RATE)[0]
    assert within([1350], [1500], WINDOW_RATE)[0]
    row = np.zeros((4, K), dtype=np.int64)
    row[:, 0] = -2_000
    moved = row.copy()
    moved[0, 1] = -201  # 201 bps from 0: beyond 10% of the row's 2,000
    assert not shock_moves_within(moved, row, WINDOW_RATE)
    moved[0, 1] = -200
    assert shock_moves_within(moved, row, WINDOW_RATE)
    held = np.zeros((4, K + 2), dtype=np.int64)
    stepped = held.copy()
    stepped[0, FLOOR] = MM_STEP + 1
    assert not within_step(stepped, held)
