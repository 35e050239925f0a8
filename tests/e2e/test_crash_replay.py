"""A shortened crash replay on anvil with the real keeper: the demo's promises, checked
on the chain.

The first nine hours of 2020-03-12 (BTC -16%, ETH -20%, LINK -24% from the opening, in
hourly steps of up to 8%) over two dozen books, on Ballast, listed by the risk engine on the
data before the window and recalibrated by its keeper on the chain's clock, and on the
flat-margin baseline; Ballast's keeper publishes vol surfaces hourly. The hour after (10:00 UTC,
ETH -22% in one bar) is left to the demo: see the README for what it costs.
"""

from __future__ import annotations

import pytest

from offchain_risk.backtest.options import ARCHETYPES
from offchain_risk.replay.funding import SPOT_USDT, basis_premiums
from offchain_risk.replay.path import load_path
from offchain_risk.replay.replay import ReplayConfig, healths, run_replay
from offchain_risk.replay.report import summarize, write_report
from offchain_risk.replay.txs import lean_web3
from offchain_risk.units import WAD, to_wad

pytestmark = pytest.mark.data
ASSETS = ("BTC", "ETH", "BNB", "LINK")


@pytest.fixture(scope="module")
def replayed(project, accounts, chain, data_dir, tmp_path_factory):
    path = load_path(ASSETS, "2020-03-12T00:00", "2020-03-12T23:00", max_hours=9, data_dir=data_dir)
    config = ReplayConfig(n_accounts=24, seed=7)
    replay = run_replay(project, lean_web3(chain.provider.uri), list(accounts), path, config)
    report = summarize(replay)
    out = tmp_path_factory.mktemp("demo")
    md, png = write_report(report, out)
    return replay, report, md, png


def test_replay__keeper_running__no_bad_debt_and_every_book_above_mm_or_closed(replayed):
    replay, report, _, _ = replayed
    ballast = replay.venues[0]
    engine = ballast.deployment.engine
    start = ballast.opening["block"]
    assert list(engine.BadDebt.range(start, ballast.step_block[-1] + 1)) == []
    assert engine.deficit() == 0
    for state in healths(engine, ballast.seeded.accounts):
        assert state.prices_ok
        assert state.mm == 0 or state.equity >= state.mm
    # the option books too: every archetype on BTC and ETH, on the published curves
    options = ballast.options
    assert len(options.accounts) == replay.config.option_books == report.ballast.options.books
    assert {s.archetype for s in options.specs} == set(ARCHETYPES)
    assert {s.underlying for s in options.specs} == {"BTC", "ETH"}
    for state in healths(engine, options.accounts):
        assert state.mm == 0 or state.equity >= state.mm
    assert report.ballast.options.bad_debt_usd == 0 and report.ballast.options.im_open_usd > 0
    # not vacuous: the crash put books below MM and the keeper's account liquidated them
    liquidated = list(
        ballast.deployment.liquidations.Liquidated.range(start, ballast.step_block[-1] + 1)
    )
    options = report.ballast.options
    assert liquidated and report.ballast.liquidations + options.liquidations == len(liquidated)
    assert options.liquidations > 0  # the option books were shocked too, and restored
    assert {e.liquidator for e in liquidated} == {ballast.seeded.keeper}
    assert all(s.cleared for s in ballast.shocks)
    # the fund took its share of every penalty and paid only the bounty top-ups of small
    # slices: no hole
    fees = sum(int(e.fee) for e in liquidated)
    bounties = sum(int(e.bounty) for e in liquidated)
    assert engine.cash(0) == ballast.opening["insurance"] + fees - bounties


def test_replay__flat_baseline__same_positions_less_margin_no_more_bad_debt(replayed):
    replay, report, _, _ = replayed
    ballast, flat = report.venues
    assert [s.size for s in replay.venues[0].seeded.specs] == [
        s.size for s in replay.venues[1].seeded.specs
    ]
    # the calibrated engine asks less of the same books than the flat 6.5% venue ...
    assert ballast.im_open_usd < flat.im_open_usd
    # ... and takes no more bad debt
    assert ballast.bad_debt_usd <= flat.bad_debt_usd
    # cross margin never asks more than isolated legs would
    assert ballast.im_open_usd < ballast.isolated_im_usd


def test_replay__ballast_listed_and_kept_by_the_risk_engine(replayed):
    replay, _, md, _ = replayed
    listing = replay.listing
    assert listing.calibrated == ASSETS and listing.fallback == ()
    # calibrated on the data closed by the window's start, for the margin period of risk
    meta = listing.params["metadata"]
    assert meta["data_range"][1] == "2020-03-12T00:00:00Z"
    assert meta["horizon_hours"] == replay.config.listing.horizon.hours
    assert listing.shocks_bps.shape == (len(ASSETS), 32)
    # the keeper recalibrated on the chain's clock during the nine hours
    assert replay.venues[0].recalibrations >= 2
    assert "## Risk engine" in md.read_text()


def test_replay__report_and_chart_written_with_the_chain_figures(replayed):
    _, report, md, png = replayed
    text = md.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    for row in report.headline():
        assert f"| {' | '.join(row)} |" in text
    assert f"{report.ballast.liquidations} ({report.ballast.accounts_liquidated})" in text
    assert "![replay](chart.png)" in text


def test_replay__keeper_publishes_vol_surfaces_hourly_through_the_feed(replayed):
    replay, report, md, _ = replayed
    ballast = replay.venues[0]
    feed = ballast.deployment.vol_feed
    runs = report.ballast.vol_runs
    assert {r.symbol for r in runs} == {"BTC", "ETH"}  # the feed's listed underlyings
    for symbol in ("BTC", "ETH"):
        mine = [r for r in runs if r.symbol == symbol]
        assert len(mine) >= 9  # the opening and every chain hour of the nine
        assert all((r.published == 4) != (r.refused is not None) for r in mine)
        ok = [r for r in mine if r.refused is None]
        assert ok and all(r.source == "realised" for r in ok)  # no DVOL before 2021
        # history time follows the window, an hour apart
        assert ok[0].asof < ok[-1].asof <= replay.path.times[-1] + 3_600
    # every curve sent from the keeper's key landed in the feed: its nonce counts them
    sent = ballast.keeper.store.txs(kind="vol_update")
    assert feed.next_nonce() == len(sent) == sum(r.published for r in runs)
    # the feed holds the last curve published
    last = next(res for _, res in reversed(ballast.keeper.vol_updater.runs) if res.published)
    u = last.published[-1]
    want = (u.atm_vol, u.skew, u.curvature, u.forward, u.observed_at)
    assert tuple(feed.curve(u.underlying, u.expiry)) == want
    text = md.read_text()
    assert "## Vol surfaces" in text and "| BTC |" in text
    # the flat baseline has no vol feed
    assert replay.venues[1].deployment.vol_feed is None and report.venues[1].vol_runs == ()


def test_replay__funding_on_every_perp__the_basis_sets_the_rate_and_paid_equals_received(
    replayed, data_dir
):
    replay, report, md, _ = replayed
    text = md.read_text()
    assert "## Funding" in text
    interest = to_wad(replay.config.funding_interest)
    band = int(replay.venues[0].deployment.engine.price_band()) / WAD
    # the window's nine hours all take the basis of 2020-03-11's close
    basis = basis_premiums(replay.path, band, data_dir)[-1]
    for summary in report.venues:
        flows = {f.symbol: f for f in summary.funding}
        assert set(flows) == set(ASSETS)  # every replayed market is a perp
        for j, symbol in enumerate(ASSETS):
            f = flows[symbol]
            if symbol in SPOT_USDT:
                # the opening hour's fills are at the oracle, then the desk's hourly basis
                # fill is the window's premium: paid off over 8 hours, plus the interest
                expected = int(basis[j] * WAD) // replay.config.funding_hours + interest
                assert f.rates[0] == interest and len(set(f.rates)) == 2
                assert abs(f.rates[-1] - expected) <= 10**9  # the price's 1e-9 rounding
            else:  # no USDT spot closes: no basis fills, the rate is the interest
                assert set(f.rates) == {interest}
            # the side the rate charges pays
            if sum(f.rates) > 0:
                assert f.longs_paid > 0 > f.shorts_paid and f.index_end > 0
            else:
                assert f.shorts_paid > 0 > f.longs_paid and f.index_end < 0
            # paid equals received up to one wei per rounding, always in the engine's favour
            assert 0 <= f.dust <= f.roundings
            assert f"| {f.symbol} | ${f.longs_paid / WAD:,.2f} |" in text
