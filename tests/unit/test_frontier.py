"""The frontier sweep: the replay model's liquidation arithmetic, and margin against bad
debt moving the right way along each rule's levels."""

from __future__ import annotations

import numpy as np
import pytest

from offchain_risk import devnet
from offchain_risk.models.liquidation import preview
from offchain_risk.models.margin import RiskParams
from offchain_risk.models.peers import peer_rules
from offchain_risk.replay.frontier import (
    FrontierPoint,
    dominating,
    envelope,
    equal_safety,
    plan,
    scenario_margin,
    simulate,
    sweep,
)
from offchain_risk.replay.seed import generate_books
from offchain_risk.units import WAD

POLICY = devnet.DEFAULT_POLICY  # discount 2% .. 10%, target buffer 5%
ASSETS = ("BTC", "ETH", "BNB", "LINK")
ONE_K = np.array([[1_000.0]])  # long 1,000 units: MM above the policy's $100 dust line


def _flat(rate: float):
    def margin(perp, coll):
        mm = rate * (np.abs(perp) + coll).sum(axis=1)
        return mm, 1.5 * mm

    return margin


def test_simulate__no_move__nothing_liquidated():
    prices = np.array([[100.0], [100.0], [100.0]])
    r = simulate(_flat(0.1), ONE_K, np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY)
    assert (r.opening_im_usd, r.bad_debt_usd, r.liquidations, r.closed) == (15_000.0, 0.0, 0, 0)


def test_simulate__gap_through_equity__only_the_hole_is_bad_debt():
    # long 1,000 at 100, IM 15,000 held; a gap to 80 leaves equity -5,000: the book is
    # closed whole, pays no penalty (Liquidations.vy: f * min(d * MM, max(E, 0))): the hole
    prices = np.array([[100.0], [80.0]])
    r = simulate(_flat(0.1), ONE_K, np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY)
    assert r.bad_debt_usd == pytest.approx(5_000.0)
    assert (r.liquidations, r.closed, r.liquidated, r.penalties_usd) == (1, 1, 1, 0.0)


def test_simulate__discount_above_equity__penalty_capped_at_equity_no_bad_debt():
    """Regression: the model charged the discount on gross (d * f * gross), so a book with
    equity 1 and MM 8.6 paid 7.8 and left a hole of 6.8 that the chain never books (its
    penalty is f * min(d * MM, E)): the flat venue's bad debt in March 2020 was $209,471 in
    the model against $136,359 on the chain (now $136,335)."""
    # long 1,000 at 100 holding IM 15,000; at 86 equity is 1,000, MM 8,600, health 0.12
    # (critical: no cap); the discount (9.1% of MM) is below equity, 9.1% of gross is not
    prices = np.array([[100.0], [86.0]])
    r = simulate(_flat(0.1), ONE_K, np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY)
    assert r.bad_debt_usd == 0.0 and r.closed == 0 and r.liquidations == 1


def test_plan__random_books__fraction_and_penalty_match_the_contracts_twin():
    # one long perp per book, shocked -10% (MM = 10% of notional), at prices from deep below
    # zero to just under MM: every branch (below zero, critical, capped, dust) is drawn
    rng = np.random.default_rng(5)
    n = 400
    size = rng.uniform(0.05, 50.0, n)  # units at $1,000: notional $50 .. $50,000
    equity = size * 1_000.0 * 0.1 * rng.uniform(-1.0, 0.999, n)
    params = RiskParams(np.array([0]), np.array([0]), np.array([[-1_000]]), WAD)
    size_wad = np.array([[int(x * 1e6) * 10**12] for x in size], dtype=object)
    price = 1_000 * WAD
    on = np.array([[x * price // WAD] for x in size_wad[:, 0]], dtype=object)  # at par
    mm_wad = np.array([(x * price // WAD) // 10 for x in size_wad[:, 0]], dtype=object)
    cash = np.array([int(e * 1e6) * 10**12 for e in equity], dtype=object)
    exact = preview(cash, np.zeros((n, 1), dtype=object), size_wad, on, [price], params, POLICY)
    assert exact.liquidatable.all()
    f, penalty = plan(exact.equity_before.astype(float) / WAD, mm_wad.astype(float) / WAD, POLICY)
    assert f == pytest.approx(exact.fraction.astype(float) / WAD, abs=1e-12)
    assert penalty == pytest.approx(exact.penalty.astype(float) / WAD, rel=1e-9, abs=1e-9)
    capped = exact.fraction == POLICY.close_cap
    assert capped.any() and (exact.fraction == WAD).any() and (~capped & (f < 1)).any()


def test_simulate__small_fall__partial_liquidation_restores_the_buffer():
    # equity 9,000 < MM 9,400: the fraction brings equity to MM * 1.05, no bad debt
    prices = np.array([[100.0], [94.0], [94.0]])
    r = simulate(_flat(0.1), ONE_K, np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY)
    assert r.bad_debt_usd == 0.0 and r.closed == 0 and r.liquidations == 1
    # what the book paid is the plan's penalty at equity 9,000 and MM 9,400
    _, penalty = plan(np.array([9_000.0]), np.array([9_400.0]), POLICY)
    assert r.liquidated == 1 and r.penalties_usd == pytest.approx(penalty[0]) and penalty[0] > 0


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


def _rank_corr(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def test_sweep__equal_capital__bad_debt_falls_as_the_level_rises(crash):
    """With every book holding the same capital under every rule (the frontier's model), a
    rule only decides what it asks and when it liquidates: along each rule's levels the
    loosest level takes the most bad debt, the tightest the least, and the order between is
    the levels' (up to the path: a level can cut a book an hour earlier or later). Funded at
    each rule's own IM instead, the loose levels' thin books are cut down in the slide
    before the gap and take less bad debt than tighter ones."""
    size, coll, buffers, prices = crash
    haircut = np.zeros(len(ASSETS))
    flat = peer_rules(ASSETS)[0]
    _, im = flat.margin(size * prices[0], coll * prices[0], 0.065)
    capital = im * (1.0 + buffers)
    equal = sweep(peer_rules(ASSETS), size, coll, buffers, prices, haircut, POLICY, capital)
    own = sweep(peer_rules(ASSETS), size, coll, buffers, prices, haircut, POLICY)
    loose_beats_tight = 0
    for rule in peer_rules(ASSETS):
        bad = np.array([p.bad_debt_usd for p in equal if p.rule == rule.name])
        assert bad[0] == bad.max() and bad[-1] == bad.min() and bad[0] > 0, rule.name
        assert _rank_corr(np.array(rule.levels), bad) < -0.9, rule.name
        # the capital is the same: the rule's margin axis is still its own IM
        im_own = [p.opening_im_usd for p in own if p.rule == rule.name]
        assert [p.opening_im_usd for p in equal if p.rule == rule.name] == im_own
        own_bad = np.array([p.bad_debt_usd for p in own if p.rule == rule.name])
        loose_beats_tight += int(own_bad[0] < own_bad.max())
    assert loose_beats_tight == len(peer_rules(ASSETS))


def test_simulate__equal_capital__one_figure_per_book_or_a_clear_error():
    prices = np.array([[100.0], [94.0]])

    def run(rate: float, equity: list[float]):
        one_book = (ONE_K, np.zeros((1, 1)), np.zeros(1), prices, np.zeros(1), POLICY)
        return simulate(_flat(rate), *one_book, equity=np.array(equity))

    # the same $12,000 of equity: MM 6% of gross leaves it alone, 10% liquidates it
    for rate, liquidations in ((0.06, 0), (0.1, 1)):
        r = run(rate, [12_000.0])
        assert r.liquidations == liquidations
        assert r.opening_im_usd == pytest.approx(1.5 * rate * 100_000)
    with pytest.raises(ValueError, match=r"equity must be \(1,\) USD"):
        run(0.1, [1.0, 2.0])


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


def test_sweep__points_carry_what_the_rule_cost_the_traders(crash):
    """Each point counts the books it liquidated and closed and the penalties they paid, as
    the model ran them: the same figures `simulate` returns for that rule and level."""
    size, coll, buffers, prices = crash
    haircut = np.array([0.02, 0.03, 0.1, 0.1])
    rule = peer_rules(ASSETS)[0]
    points = sweep((rule,), size, coll, buffers, prices, haircut, POLICY)
    for p in points[:3]:
        r = simulate(
            lambda perp, c, lv=p.level: rule.margin(perp, c, lv),
            size, coll, buffers, prices, haircut, POLICY,
        )  # fmt: skip
        assert (p.liquidated, p.closed, p.penalties_usd) == (
            r.liquidated,
            r.closed,
            r.penalties_usd,
        )
        assert 0 < p.liquidated <= len(size) and p.closed <= p.liquidated
        assert p.penalties_usd > 0


def test_traders_table__ballast_first_then_the_cheaper_points_by_margin():
    from offchain_risk.replay.frontier import SimResult
    from offchain_risk.replay.report import _traders_table

    model = SimResult(900.0, 120.0, 40, 10, 25, 300.0)
    beaten = [
        FrontierPoint("tiers", 0.75, 500.0, 80.0, 200, 90, 1_500.0),
        FrontierPoint("flat", 0.01, 200.0, 5.0, 280, 150, 2_500.0),
    ]
    lines = _traders_table(model, beaten)
    text = "\n".join(lines).splitlines()
    rows = [line for line in text if line.startswith("| ") and "---" not in line][1:]
    assert rows[0].startswith("| Ballast's opening listing (model) | $900 | $120 | 25 | 10 | $300")
    assert rows[1].startswith("| flat x0.01 | $200 | $5 | 280 | 150 | $2,500")
    assert rows[2].startswith("| tiers x0.75 | $500 | $80 | 200 | 90 | $1,500")


def test_report__own_im_sweep__named_beside_the_frontier():
    """The report judges Ballast on the equal-capital points and names what the own-IM sweep
    shows beside them, with what its cheaper points cost the traders."""
    from offchain_risk.replay.frontier import Frontier, SimResult
    from offchain_risk.replay.report import _own_im_lines, frontier_lines

    model = SimResult(900.0, 120.0, 40, 10, 25, 300.0)
    equal = [FrontierPoint("flat", 0.01, 200.0, 500.0), FrontierPoint("flat", 0.2, 2e3, 0.0)]
    own = [FrontierPoint("flat", 0.01, 200.0, 5.0, 280, 150, 2_500.0), equal[1]]
    frontier = Frontier(equal, (900.0, 100.0), model, own_im_points=own)
    assert frontier.dominated_by == [] and frontier.own_im_dominated_by == [own[0]]
    text = "\n".join(frontier_lines(frontier))
    assert "Ballast is on the frontier" in text
    assert "own IM: 1 peer points have both less margin and less bad debt" in text
    own_text = "\n".join(_own_im_lines(frontier))
    assert "There, 1 peer points have both" in own_text and "flat x0.01" in own_text
    assert "| flat x0.01 | $200 | $5 | 280 | 150 | $2,500" in own_text
    fair = Frontier(equal, (900.0, 100.0), model, own_im_points=equal)
    assert "there either" in "\n".join(_own_im_lines(fair))


def test_report__frontier_section__chain_and_listing_comparisons_and_the_figure(tmp_path):
    """The report's table prices each rule at Ballast's chain bad debt and at its listing's
    bad debt in the model (like for like), and writes the two-panel figure."""
    from types import SimpleNamespace

    from offchain_risk.replay.frontier import Frontier, SimResult
    from offchain_risk.replay.report import _frontier_section

    model = SimResult(1_000.0, 150.0, 40, 10, 25, 300.0)
    pts = [
        FrontierPoint("flat", 0.05, 800.0, 300.0),
        FrontierPoint("flat", 0.10, 1_500.0, 140.0),
        FrontierPoint("flat", 0.20, 3_000.0, 90.0),
    ]
    frontier = Frontier(pts, (1_000.0, 100.0), model, own_im_points=pts)
    times = np.array(["2020-03-11T01", "2020-03-15T00"], dtype="datetime64[s]")
    path = SimpleNamespace(opening_time=times[0], times=times)
    report = SimpleNamespace(frontier=frontier, replay=SimpleNamespace(path=path))
    text = "\n".join(_frontier_section(report, tmp_path))
    assert "| flat | x0.2 | $3,000 (+200%) | x0.1 | $1,500 (+50%) | $300 .. $90 |" in text
    assert "Ballast is on the frontier" in text
    assert (tmp_path / "frontier.png").stat().st_size > 0
