"""The frontier sweep: the replay model's liquidation arithmetic, and margin against bad
debt moving the right way along each rule's levels."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.models.peers import peer_rules
from offchain_risk.replay.frontier import (
    FrontierPoint,
    dominating,
    envelope,
    equal_safety,
    scenario_margin,
    simulate,
    sweep,
)
from offchain_risk.replay.seed import generate_books

POLICY = devnet.DEFAULT_POLICY  # discount 2% .. 10%, target buffer 5%
ASSETS = ("BTC", "ETH", "BNB", "LINK")


def _flat(rate: float):
    def margin(perp, coll):
        mm = rate * (np.abs(perp) + coll).sum(axis=1)
        return mm, 1.5 * mm

    return margin


def test_simulate__no_move__nothing_liquidated():
    prices = np.array([[100.0], [100.0], [100.0]])
    r = simulate(
        _flat(0.1), np.array([[1.0]]), np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY
    )
    assert (r.opening_im_usd, r.bad_debt_usd, r.liquidations, r.closed) == (15.0, 0.0, 0, 0)


def test_simulate__gap_through_equity__hole_and_discount_are_bad_debt():
    # long 1 at 100, IM 15 held; a gap to 80 leaves equity -5; the liquidator takes the book
    # at the maximum discount (10% of 80), which widens the hole to 13
    prices = np.array([[100.0], [80.0]])
    r = simulate(
        _flat(0.1), np.array([[1.0]]), np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY
    )
    assert r.bad_debt_usd == pytest.approx(13.0)
    assert (r.liquidations, r.closed) == (1, 1)


def test_simulate__small_fall__partial_liquidation_restores_the_buffer():
    # equity 15 - 6 = 9 < MM 9.4: the fraction brings equity to MM * 1.05 with no bad debt
    prices = np.array([[100.0], [94.0], [94.0]])
    r = simulate(
        _flat(0.1), np.array([[1.0]]), np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY
    )
    assert r.bad_debt_usd == 0.0 and r.closed == 0 and r.liquidations == 1


@pytest.fixture(scope="module")
def crash():
    """300 replay books through a fixed crash: a slide of 3% an hour, then a 20% gap."""
    opening = np.array([7_900.0, 194.0, 20.0, 4.0])
    specs = generate_books(300, ASSETS, opening, ("ETH", "BTC"), 3, 7)
    size = np.array([s.size for s in specs])
    coll = np.array([s.collateral for s in specs])
    buffers = np.array([s.buffer for s in specs])
    path = [opening * 0.97**i for i in range(6)]
    path.append(path[-1] * np.array([0.82, 0.78, 0.8, 0.8]))
    path.append(path[-1] * 1.03)
    return size, coll, buffers, np.array(path)


def test_sweep__every_rule__margin_rises_with_the_level_and_the_envelope_falls(crash):
    size, coll, buffers, prices = crash
    haircut = np.zeros(len(ASSETS))
    points = sweep(peer_rules(ASSETS), size, coll, buffers, prices, haircut, POLICY)
    for rule in peer_rules(ASSETS):
        pts = [p for p in points if p.rule == rule.name]
        assert [p.level for p in pts] == list(rule.levels)
        im = np.array([p.opening_im_usd for p in pts])
        bad = np.array([p.bad_debt_usd for p in pts])
        assert (np.diff(im) > 0).all(), rule.name
        front = envelope(pts)
        assert front[0] == pts[0] and front[-1].bad_debt_usd == bad.min()
        assert (np.diff([p.opening_im_usd for p in front]) > 0).all()
        assert (np.diff([p.bad_debt_usd for p in front]) < 0).all()
        # every point is on or above the envelope: none is cheaper and safer
        assert dominating(pts, front[-1].opening_im_usd, front[-1].bad_debt_usd) == []
        # not vacuous: the gap costs the loosest level far more than the tightest
        assert bad[0] > 0 and bad[-1] < 0.5 * bad[0]


def test_scenario_margin__ballast_rule__runs_through_the_same_model(crash):
    size, coll, buffers, prices = crash
    shocks = np.tile(np.array([-2_500, 2_500] * 8), (4, 1))
    r = simulate(
        scenario_margin(shocks, np.full(4, 50.0), 1.25),
        size,
        coll,
        buffers,
        prices,
        np.zeros(4),
        POLICY,
    )
    flat = simulate(_flat(0.065), size, coll, buffers, prices, np.zeros(4), POLICY)
    assert r.bad_debt_usd < flat.bad_debt_usd


def test_dominating_and_equal_safety__pick_the_right_points():
    pts = [
        FrontierPoint("flat", 0.05, 100.0, 50.0),
        FrontierPoint("flat", 0.10, 200.0, 0.0),
        FrontierPoint("tiers", 1.0, 90.0, 10.0),
        FrontierPoint("tiers", 2.0, 150.0, 0.0),
    ]
    assert dominating(pts, 120.0, 20.0) == [pts[2]]
    assert dominating(pts, 120.0, 0.0) == []
    safe = equal_safety(pts, 0.0)
    assert safe == {"flat": pts[1], "tiers": pts[3]}
