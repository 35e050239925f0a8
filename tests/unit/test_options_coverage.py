"""The option margin rule against full revaluation (float path), on 10,000 random books.

Each book mixes option strategies on one underlying (covered calls, short strangles, long
and short straddles, delta-hedged short options, calendars, put-protected longs) with a
perp and random extra legs. Its MM under the on-chain rule (Black-76 at three anchor
prices, chords and tangents between them, both vol directions, plus the short-option
minimum) is compared with the worst loss of full Black-76 revaluation over the same
scenarios and vol moves, for each devnet market's shock row.
"""

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.models.options import option_scenario_losses
from offchain_risk.units import DAY

BOOKS = 10_000
LEGS = 8
F = 2_000.0
VOL_SHOCK = 0.15
SHORT_MIN = 0.005


def _books(rng: np.random.Generator):
    """Legs (BOOKS, LEGS) and perp sizes (BOOKS,)."""
    size = np.zeros((BOOKS, LEGS))
    strike = np.full((BOOKS, LEGS), F)
    call = np.zeros((BOOKS, LEGS), dtype=bool)
    tau = np.full((BOOKS, LEGS), 7.0 * DAY)
    perp = np.zeros(BOOKS)
    near = rng.choice([1, 3, 7, 14, 30], BOOKS) * DAY
    far = near + rng.choice([7, 21, 60], BOOKS) * DAY
    otm = rng.uniform(0.03, 0.2, BOOKS)
    q = rng.uniform(0.5, 5.0, BOOKS)
    kind = rng.integers(0, 7, BOOKS)
    for b in range(BOOKS):
        t = kind[b]
        legs = []  # (size, strike, call, tau)
        if t == 0:  # covered call
            legs, perp[b] = [(-q[b], F * (1 + otm[b]), True, near[b])], q[b]
        elif t == 1:  # short strangle
            legs = [
                (-q[b], F * (1 + otm[b]), True, near[b]),
                (-q[b], F * (1 - otm[b]), False, near[b]),
            ]
        elif t in (2, 3):  # long / short straddle
            sign = 1 if t == 2 else -1
            legs = [(sign * q[b], F, True, near[b]), (sign * q[b], F, False, near[b])]
        elif t == 4:  # delta-hedged short call
            legs, perp[b] = [(-q[b], F * (1 + otm[b] / 2), True, near[b])], q[b] * 0.4
        elif t == 5:  # calendar
            legs = [(-q[b], F, True, near[b]), (q[b], F, True, far[b])]
        else:  # put-protected long
            legs, perp[b] = [(q[b], F * (1 - otm[b]), False, near[b])], q[b]
        for _ in range(rng.integers(0, 3)):  # random extra legs
            legs.append(
                (
                    rng.uniform(-3, 3),
                    F * rng.uniform(0.7, 1.3),
                    rng.random() < 0.5,
                    rng.choice([near[b], far[b]]),
                )
            )
        for i, (s, k, c, t_) in enumerate(legs[:LEGS]):
            size[b, i], strike[b, i], call[b, i], tau[b, i] = s, k, c, t_
        if rng.random() < 0.3:
            perp[b] += rng.uniform(-3, 3)
    return size, strike, call, tau, perp


@pytest.mark.parametrize("row", range(len(devnet.DEFAULT_SHOCKS_BPS)))
def test_option_margin__random_books__covers_full_revaluation(row):
    rng = np.random.default_rng(19)
    size, strike, call, tau, perp = _books(rng)
    vol = rng.uniform(0.3, 1.2, (BOOKS, 1)) * np.ones((1, LEGS))
    shocks = devnet.DEFAULT_SHOCKS_BPS[row]
    linear = perp[:, None] * F * (-shocks / 1e4)[None, :]  # (BOOKS, K) perp losses
    args = (size, F, strike, call, vol, tau, shocks, VOL_SHOCK)
    chain = option_scenario_losses(*args, full=False).max(axis=1) + linear
    full = option_scenario_losses(*args, full=True).max(axis=1) + linear
    short_min = (np.maximum(-size, 0) * F * SHORT_MIN).sum(axis=1)
    mm = np.maximum(chain.max(axis=1), short_min)
    worst = np.maximum(full.max(axis=1), 0)
    # Float noise of the two paths only (1e-9 USD per book of a few thousand).
    covered = mm >= worst - 1e-9
    ratio = np.where(worst > 0, mm / np.maximum(worst, 1e-12), 1.0)
    over = mm / np.maximum(np.maximum(worst, short_min), 1e-12)
    print(
        f"covered {covered.mean():.5f}, lowest MM / worst loss {ratio.min():.4f}, "
        f"MM / max(worst loss, short minimum) median {np.median(over):.3f} "
        f"p99 {np.quantile(over, 0.99):.3f}"
    )
    assert covered.all()
    # The rule is a bound, not a guess: MM never far above the loss on a typical book.
    assert np.median(over) < 1.01
