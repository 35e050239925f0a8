"""Property of the risk governor: for random portfolios and any sequence of updates the
governor accepts, no portfolio's maintenance margin falls faster than the loosening rate
allows, and no shock rises beyond the bucket's MM step (the stateful model's stack, no
node: revm by default, `FUZZ_BACKEND=boa` for titanoboa).

"Faster than the rate allows", with the devnet limits (5% per update, 10% per one-hour
bucket): a book's scenario loss may fall by at most `rate` times its *unhedged* loss, each
leg at `max(floor(rate * its asset's largest |shock|), 1)` bps, and its floor term by at most
`rate` of each floor rate. So MM after an update >= MM before minus the larger of the two
allowances, and the same against every value held earlier in the bucket. A hedged book gets
no more room than its legs' own sizes give: the attack of finding 2 (moving one leg's shocks
toward the other's) fails this property.

Proposals are random edits (many refused: a refusal must move nothing), the attack's hedge
collapse, and the keeper's own planner stepping toward random targets (which the chain must
never refuse). Runs at the hypothesis profile's example count / 20 (at least 8): 8 sequences
under the `ci` profile of the default suite (~1.5 min on a shared 2-core machine), 100 under
`soak` in `make fuzz` (~15 min).
"""

from __future__ import annotations

import numpy as np
import pytest
from ballast_machine import LocalRiskSigner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain_risk import devnet
from offchain_risk.keeper.signer import FLOOR, ParamSet, update_tuple
from offchain_risk.units import MAX_SCENARIOS as K
from offchain_risk.units import read_shocks

WAD = 10**18
N = 4
WINDOW, WINDOW_RATE, UPDATE_RATE, MM_STEP, _ = devnet.GOVERNOR_LIMITS
ENGINE_FLOOR_SHIFT = 200
EXAMPLES = max(8, settings.default.max_examples // 20)


@pytest.fixture(scope="module", autouse=True)
def _deployed(machine_stack):
    """Deployed outside the examples (each example runs in an anchor)."""


def held(k) -> tuple[np.ndarray, list[int]]:
    """(4, 34) shocks, floor and haircut the engine holds; the three global values."""
    e = k.s.engine
    rows = []
    for a in range(N):
        shocks = read_shocks(e, a)
        aw = e.asset_word(a)
        rows.append([*shocks, (aw >> 200) & 0xFFFF, (aw >> 216) & 0xFFFF])
    g = [e.im_multiplier(), k.s.liquidations.min_discount(), k.s.liquidations.max_discount()]
    return np.array(rows, dtype=np.int64), g


def mm(values: np.ndarray, books: np.ndarray) -> np.ndarray:
    """(n_books,) MM in USD * bps: max(worst scenario loss, floor, 0).

    books: (n_books, 4) exposures in USD (long > 0); floors on the gross exposure."""
    shocks = values[:, :K]  # (4, 32)
    losses = -(books @ shocks)  # (n_books, 32)
    floor_ = np.abs(books) @ values[:, FLOOR]
    return np.maximum(np.maximum(losses.max(axis=1), floor_), 0)


def allowance(values: np.ndarray, books: np.ndarray, rate: int) -> np.ndarray:
    """(n_books,) how far MM may fall from `values` at `rate`: the larger of the unhedged
    scenario allowance and the floor allowance."""
    row_max = [int(m) for m in np.abs(values[:, :K]).max(axis=1)]
    # exact integers: bps * a WAD rate overflows int64
    per_asset = np.array([max(m * rate // WAD, 1) for m in row_max], dtype=np.int64)
    floors = np.array([max(int(f) * rate // WAD, 1) for f in values[:, FLOOR]], dtype=np.int64)
    return np.maximum(np.abs(books) @ per_asset, np.abs(books) @ floors)


def step_ok(now: np.ndarray, before: np.ndarray) -> bool:
    shocks, prev = now[:, :K], before[:, :K]
    return bool(
        np.all(shocks <= np.maximum(prev, 0) + MM_STEP)
        and np.all(shocks >= np.minimum(prev, 0) - MM_STEP)
        and np.all(now[:, FLOOR:] <= before[:, FLOOR:] + MM_STEP)
    )


def hedge_collapse(values: np.ndarray, a: int, b: int) -> np.ndarray:
    """Finding 2's attack: each slot of the smaller leg grows toward the larger, <= 500 bps."""
    out = values.copy()
    for k in range(K):
        x, y = out[a, k], out[b, k]
        if abs(x) > abs(y) and y != 0:
            out[b, k] = y + np.sign(y) * min(abs(x) - abs(y), 500)
        elif abs(y) > abs(x) and x != 0:
            out[a, k] = x + np.sign(x) * min(abs(y) - abs(x), 500)
    return out


exposure = st.integers(-10_000, 10_000)
book = st.one_of(
    st.lists(exposure, min_size=N, max_size=N),
    # hedged pairs: long one asset, short another of similar size
    st.tuples(st.integers(0, N - 1), st.integers(0, N - 1), st.integers(1, 10_000)).map(
        lambda t: [
            t[2] if i == t[0] else -t[2] if i == t[1] and t[1] != t[0] else 0 for i in range(N)
        ]
    ),
)
action = st.one_of(
    st.tuples(
        st.just("edit"),
        st.sampled_from([0, 1, 60, WINDOW // 2, WINDOW]),
        st.lists(
            st.tuples(st.integers(0, N - 1), st.integers(0, K + 1), st.integers(-600, 600)),
            min_size=1,
            max_size=6,
        ),
    ),
    st.tuples(
        st.just("collapse"),
        st.sampled_from([0, 1, WINDOW]),
        st.tuples(st.integers(0, N - 1), st.integers(0, N - 1)),
    ),
    st.tuples(
        st.just("plan"),
        st.sampled_from([0, 1, 60, WINDOW]),
        st.lists(st.integers(-40, 60), min_size=K + 2, max_size=K + 2),  # % change of the target
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    books=st.lists(book, min_size=4, max_size=12),
    actions=st.lists(action, min_size=1, max_size=6),
)
def test_accepted_updates__mm_never_falls_faster_than_the_rate(machine_stack, books, actions):
    with machine_stack.chain.anchor():  # each example from the deployed state
        check_sequence(machine_stack, books, actions)


def check_sequence(k, books, actions) -> None:
    chain = k.chain
    signer = LocalRiskSigner(chain, k.governor, None, None, k.signers[:2], k.relayer)
    books = np.array(books, dtype=np.int64)
    assets = np.arange(N)
    values, _ = held(k)
    history = [(chain.timestamp, values)]  # each time the held values changed
    for kind, dt, arg in actions:
        if dt:
            chain.time_travel(dt)
        before, g = held(k)
        view = signer.view(assets)
        if kind == "plan":
            target = before.copy()
            target = target + target * np.array(arg, dtype=np.int64)[None, :] // 100
            target[:, :K] = np.clip(target[:, :K], -10_000, 20_000)
            target[:, FLOOR:] = np.clip(target[:, FLOOR:], 0, 9_999)
            try:
                plan = signer.plan(ParamSet.from_values(assets, target, g), view)
            except ValueError:
                continue
            signed = plan.signed
        else:
            proposal = before.copy()
            if kind == "edit":
                for a, slot, delta in arg:
                    proposal[a, slot] += delta
            else:
                proposal = hedge_collapse(proposal, *arg)
            proposal[:, :K] = np.clip(proposal[:, :K], -10_000, 32_767)
            proposal[:, FLOOR:] = np.clip(proposal[:, FLOOR:], 0, 9_999)
            signed = ParamSet.from_values(assets, proposal, g)
        message = signer.message(signed, view.nonce, view.timestamp + 600)
        sigs = signer.sign(message)
        try:
            k.governor.submit(update_tuple(message), sigs, sender=k.relayer)
        except chain.Error:
            assert kind != "plan", "the chain refused the planner's update"
            assert np.array_equal(held(k)[0], before)
            continue
        now = chain.timestamp
        after, _ = held(k)
        # per update, against the values held just before it
        assert np.all(mm(after, books) >= mm(before, books) - allowance(before, books, UPDATE_RATE))
        # per bucket, against every value held at some time in the current bucket
        bucket_start = now // WINDOW * WINDOW
        for i, (_, v) in enumerate(history):
            superseded_at = history[i + 1][0] if i + 1 < len(history) else now
            if superseded_at > bucket_start:
                assert np.all(mm(after, books) >= mm(v, books) - allowance(v, books, WINDOW_RATE))
                assert step_ok(after, v)
        history.append((now, after))


def test_property_oracle__flags_the_hedge_collapse():
    """The property fails on finding 2's update (so the test can fail): one update moving
    BTC's shocks toward ETH's cuts a long BTC / short ETH book's MM by far more than 5% of its
    unhedged loss."""
    values = np.zeros((N, K + 2), dtype=np.int64)
    values[:, :K] = devnet.DEFAULT_SHOCKS_BPS[:N]
    values[:, FLOOR] = [100, 100, 200, 300]
    collapsed = hedge_collapse(values, 0, 1)
    pair = np.array([[-10_000, 10_000, 0, 0]])
    assert mm(collapsed, pair)[0] < mm(values, pair)[0] - allowance(values, pair, UPDATE_RATE)[0]
