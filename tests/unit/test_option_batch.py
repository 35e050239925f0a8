"""offchain_risk.models.options.option_scenario_losses_batch: the anchor rule's losses for
books on several underlyings equal option_scenario_losses(full=False), one underlying at a
time, on small random books."""

import numpy as np
import pytest

from offchain_risk.models.options import option_scenario_losses, option_scenario_losses_batch
from offchain_risk.units import DAY

FORWARDS = np.array([3_000.0, 60_000.0, 150.0, 15.0])


def _books(rng: np.random.Generator, n_books: int, n_legs: int, n_und: int):
    """Random legs (n_books, n_legs): about a fifth of the slots empty."""
    und = rng.integers(0, n_und, (n_books, n_legs))
    size = rng.normal(0, 5, (n_books, n_legs)) * (rng.random((n_books, n_legs)) > 0.2)
    strike = FORWARDS[und] * np.exp(rng.normal(0, 0.3, (n_books, n_legs)))
    call = rng.random((n_books, n_legs)) < 0.5
    vol = rng.uniform(0.05, 2.0, (n_books, n_legs))
    tau = rng.choice([1 / 24, 1, 3, 7, 30, 90, 365], (n_books, n_legs)) * DAY
    return size, und, strike, call, vol, tau


def _reference(size, und, strike, call, vol, tau, shocks, vol_shock):
    """The sum over underlyings of option_scenario_losses(full=False) on that underlying's
    legs and shock row."""
    vol_shock = np.broadcast_to(vol_shock, (len(shocks),))
    out = np.zeros((size.shape[0], 2, shocks.shape[1]))
    for u, row in enumerate(shocks):
        legs = np.where(und == u, size, 0.0)
        args = (legs, FORWARDS[und], strike, call, vol, tau, row, vol_shock[u])
        out += option_scenario_losses(*args, full=False)
    return out


def _check(rng, shocks, vol_shock, n_books=60, n_legs=9):
    shocks = np.asarray(shocks)
    size, und, strike, call, vol, tau = _books(rng, n_books, n_legs, len(shocks))
    fwd = FORWARDS[: len(shocks)]
    got = option_scenario_losses_batch(size, und, strike, call, vol, tau, fwd, shocks, vol_shock)
    want = _reference(size, und, strike, call, vol, tau, shocks, vol_shock)
    assert got.shape == (n_books, 2, shocks.shape[1])
    # Float rounding only: 1e-12 of each book's notional (sum of |size| * (F + K)).
    notional = (np.abs(size) * (FORWARDS[und] + strike)).sum(axis=1)[:, None, None]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * notional.max())
    assert (np.abs(got - want) <= 1e-12 * notional + 1e-12).all()


@pytest.mark.parametrize("seed", range(4))
def test_batch__random_books_four_underlyings__equals_anchor_rule(seed):
    rng = np.random.default_rng(seed)
    shocks = rng.integers(-3_000, 3_000, (4, 16))
    _check(rng, shocks, 0.15)


def test_batch__one_sided_and_extreme_rows__equal_anchor_rule():
    # Row 0 only rises (lowest anchor unmoved), row 1 only falls (highest unmoved), row 2
    # holds a -100% shock (anchor clamped), row 3 moves nothing.
    shocks = np.array(
        [
            [0, 500, 1_200, 3_000, 0, 800],
            [-2_000, -500, 0, -1_500, -10, -3_000],
            [-10_000, -2_500, 2_500, 0, 7_000, -400],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    _check(np.random.default_rng(7), shocks, np.array([0.15, 0.3, 0.05, 0.2]))


def test_batch__one_underlying_equals_anchor_rule_directly():
    rng = np.random.default_rng(11)
    size, _, strike, call, vol, tau = _books(rng, 40, 6, 1)
    shocks = rng.integers(-2_500, 2_500, (1, 16))
    und = np.zeros(size.shape, dtype=np.int8)
    got = option_scenario_losses_batch(
        size, und, strike, call, vol, tau, FORWARDS[:1], shocks, 0.15
    )
    want = option_scenario_losses(
        size, FORWARDS[0], strike, call, vol, tau, shocks[0], 0.15, full=False
    )
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_batch__empty_books_and_no_scenarios():
    size = np.zeros((3, 4))
    legs = (np.zeros((3, 4), dtype=int), np.full((3, 4), 100.0), np.ones((3, 4), dtype=bool))
    rest = (np.full((3, 4), 0.5), np.full((3, 4), 7.0 * DAY), FORWARDS[:1])
    out = option_scenario_losses_batch(size, *legs, *rest, np.array([[-1_000, 1_000]]), 0.15)
    np.testing.assert_array_equal(out, np.zeros((3, 2, 2)))
    size[0, 1] = 2.0
    out = option_scenario_losses_batch(size, *legs, *rest, np.zeros((1, 0)), 0.15)
    assert out.shape == (3, 2, 0)


def test_batch__rejects_bad_underlying_and_shapes():
    size = np.ones((2, 3))
    legs = (np.full((2, 3), 100.0), np.ones((2, 3), dtype=bool), np.full((2, 3), 0.5))
    tau = np.full((2, 3), 7.0 * DAY)
    shocks = np.array([[-1_000, 1_000]])
    with pytest.raises(ValueError, match="underlying must index"):
        option_scenario_losses_batch(
            size, np.full((2, 3), 1), *legs, tau, FORWARDS[:1], shocks, 0.15
        )
    with pytest.raises(ValueError, match="shocks_bps must be"):
        option_scenario_losses_batch(
            size, np.zeros((2, 3), dtype=int), *legs, tau, FORWARDS[:2], shocks, 0.15
        )
    with pytest.raises(ValueError, match="strike must have the shape"):
        option_scenario_losses_batch(
            size,
            np.zeros((2, 3), dtype=int),
            legs[0][:1],
            *legs[1:],
            tau,
            FORWARDS[:1],
            shocks,
            0.15,
        )
