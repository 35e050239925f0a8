"""Portfolio Greeks (float path): each reported Greek against finite differences of the
reported value, the grouping, the vols from the feed's curves, refusals, metrics, console."""

from pathlib import Path

import numpy as np
import pytest
from ape_console._cli import import_extras_file

from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.vol_signer import curve_vol
from offchain_risk.models.greeks import (
    OptionLegs,
    curve_vols,
    forwards_of,
    greeks_report,
    position_greeks,
    random_legs,
)
from offchain_risk.units import DAY, YEAR, to_wad

NOW = 1_700_000_000
ETH, BTC = 0, 1
FORWARDS = {ETH: 2_000.0, BTC: 40_000.0}
EXPIRIES = (NOW + 3 * DAY, NOW + 30 * DAY, NOW + 200 * DAY)


def legs_of(n: int = 300, seed: int = 7) -> OptionLegs:
    return random_legs(FORWARDS, EXPIRIES, n, accounts=4, strike_sd=0.3, size_sd=5, seed=seed)


def report_at(legs, bump_f=0.0, bump_vol=0.0, now=NOW, by="account", vol=None):
    vol = np.linspace(0.4, 1.1, len(legs)) if vol is None else vol
    f = forwards_of(legs, FORWARDS) * (1 + bump_f)
    return greeks_report(legs, position_greeks(legs, f, vol + bump_vol, now), by)


@pytest.mark.parametrize("by", ["account", "venue"])
def test_greeks__each_row__match_finite_differences(by):
    legs = legs_of()
    base = report_at(legs, by=by)
    eps = 1e-4
    up, down = report_at(legs, eps, by=by), report_at(legs, -eps, by=by)
    h = np.array([FORWARDS[int(u)] for u in base.underlying]) * eps  # (m,) USD
    delta_fd = (up.value - down.value) / (2 * h)
    gamma_fd = (up.value - 2 * base.value + down.value) / h**2
    np.testing.assert_allclose(base.delta, delta_fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(base.delta_usd, delta_fd * (h / eps), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(base.gamma, gamma_fd, rtol=1e-4, atol=1e-7)
    dv = 1e-5
    vega_fd = (
        report_at(legs, bump_vol=dv, by=by).value - report_at(legs, bump_vol=-dv, by=by).value
    ) / (2 * dv)
    np.testing.assert_allclose(base.vega, vega_fd, rtol=1e-6, atol=1e-4)
    dt = 60
    theta_fd = (
        (report_at(legs, now=NOW + dt, by=by).value - report_at(legs, now=NOW - dt, by=by).value)
        / (2 * dt)
        * YEAR
    )
    np.testing.assert_allclose(base.theta, theta_fd, rtol=1e-4, atol=1e-2)


def test_report__groups_add_up_and_expired_legs_are_left_out():
    legs = legs_of()
    expired_now = EXPIRIES[0] + 1  # the 3-day legs have expired
    by_account = report_at(legs, now=expired_now)
    by_venue = report_at(legs, now=expired_now, by="venue")
    live = legs.expiry > expired_now
    assert by_account.expired == by_venue.expired == int((~live).sum()) > 0
    assert by_account.n_legs.sum() == by_venue.n_legs.sum() == live.sum()
    assert EXPIRIES[0] not in set(by_account.expiry)
    for g in ("value", "delta_usd", "gamma", "vega", "theta"):
        assert getattr(by_account, g).sum() == pytest.approx(getattr(by_venue, g).sum())
    # one row per (key, underlying, expiry): 4 accounts x 2 underlyings x 2 live expiries
    assert len(by_account.key) == 16 and len(by_venue.key) == 8
    assert set(by_venue.key) == {"book", "rfq"}
    rows = by_account.rows()
    assert {r["account"] for r in rows} == {a << 96 for a in range(1, 5)}


def test_report__every_leg_expired__empty_report():
    legs = legs_of(20)
    r = report_at(legs, now=EXPIRIES[-1])
    assert r.expired == 20 and r.key.size == 0 and r.rows() == []


def test_report__covered_call_and_straddle_signs():
    legs = OptionLegs.from_records(
        [
            dict(
                account=1,
                underlying=ETH,
                expiry=EXPIRIES[1],
                strike=2_200.0,
                is_call=True,
                size=-1.0,
            ),
            dict(
                account=2,
                underlying=ETH,
                expiry=EXPIRIES[1],
                strike=2_000.0,
                is_call=True,
                size=-1.0,
            ),
            dict(
                account=2,
                underlying=ETH,
                expiry=EXPIRIES[1],
                strike=2_000.0,
                is_call=False,
                size=-1.0,
            ),
        ]
    )
    r = report_at(legs, vol=0.6)
    short_call, short_straddle = r.rows()
    assert -1 < short_call["delta"] < 0 and short_call["gamma"] < 0 and short_call["vega"] < 0
    assert short_call["theta"] > 0  # a short option earns time decay
    # an at-the-money straddle is nearly delta-neutral (N(d1) - (1 - N(d1)) = 2 N(d1) - 1)
    assert abs(short_straddle["delta"]) < 0.1 and short_straddle["gamma"] < 0


def test_curve_vols__feed_formula_in_float():
    legs = legs_of(50)
    curves = {(u, e): (0.6 + 0.1 * u, -0.2, 0.8, FORWARDS[u]) for u in (ETH, BTC) for e in EXPIRIES}
    vols = curve_vols(legs, curves)
    for i in range(len(legs)):
        atm, skew, curv, f0 = curves[(int(legs.underlying[i]), int(legs.expiry[i]))]
        exact = curve_vol(
            to_wad(atm), to_wad(skew), to_wad(curv), to_wad(f0), to_wad(float(legs.strike[i]))
        )
        assert vols[i] == pytest.approx(exact / 10**18, abs=1e-12)
    with pytest.raises(ValueError, match="no vol curve for underlying 1, expiry"):
        curve_vols(legs, {k: v for k, v in curves.items() if k[0] == ETH})


def test_legs__bad_inputs__clear_errors():
    good = dict(account=1, underlying=ETH, expiry=EXPIRIES[0], strike=1.0, is_call=True, size=1.0)
    with pytest.raises(ValueError, match="misses 'strike'"):
        OptionLegs.from_records([{k: v for k, v in good.items() if k != "strike"}])
    with pytest.raises(ValueError, match="strikes must be finite and positive"):
        OptionLegs.from_records([{**good, "strike": 0.0}])
    with pytest.raises(ValueError, match="sizes must be finite"):
        OptionLegs.from_records([{**good, "size": float("inf")}])
    legs = OptionLegs.from_records([good])
    with pytest.raises(ValueError, match="same 1-D shape"):
        OptionLegs(**{**legs.__dict__, "size": np.ones(2)})
    with pytest.raises(ValueError, match="no valid forward for underlying 0"):
        forwards_of(legs, {BTC: 1.0})
    with pytest.raises(ValueError, match="no valid forward for underlying 0"):
        forwards_of(legs, {ETH: -1.0})
    with pytest.raises(ValueError, match="'account' or 'venue'"):
        greeks_report(legs, position_greeks(legs, 1.0, 0.5, NOW), by="owner")


def test_metrics__greeks_gauges_replace_the_previous_report():
    m = Metrics()
    legs = legs_of(40)
    first = report_at(legs, by="venue")
    m.set_option_greeks(first)
    row = next(r for r in first.rows() if r["expiry"] == EXPIRIES[0])
    labels = dict(
        by="venue", key=row["venue"], underlying=str(row["underlying"]), expiry=str(row["expiry"])
    )
    assert m.value("keeper_option_greeks", {**labels, "greek": "delta_usd"}) == row["delta_usd"]
    assert m.value("keeper_option_greeks", {**labels, "greek": "vega"}) == row["vega"]
    # every leg of that row expired: the row leaves the metrics; the others are rewritten
    later = report_at(legs, by="venue", now=EXPIRIES[0] + 1)
    m.set_option_greeks(later)
    gone = {**labels, "greek": "vega"}
    assert m.registry.get_sample_value("keeper_option_greeks", gone) is None
    kept = later.rows()[0]
    assert m.value(
        "keeper_option_greeks",
        dict(
            by="venue",
            key=kept["venue"],
            underlying=str(kept["underlying"]),
            expiry=str(kept["expiry"]),
            greek="theta",
        ),
    ) == pytest.approx(kept["theta"])


def test_console__greeks_table_prints_aligned_rows(capsys):
    extras = import_extras_file(Path(__file__).resolve().parents[2] / "ape_console_extras.py")
    legs = [
        dict(
            account="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            venue="book",
            underlying=ETH,
            expiry=EXPIRIES[1],
            strike=2_200.0,
            is_call=True,
            size=-2.0,
        ),
        dict(
            account="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            venue="book",
            underlying=ETH,
            expiry=EXPIRIES[0] - 4 * DAY,
            strike=2_200.0,
            is_call=True,
            size=-2.0,
        ),
    ]
    rows = extras.greeks_table(legs, {ETH: 2_000.0}, 0.6, NOW, names={ETH: "ETH"})
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["account", "underlying", "expiry"]
    assert out[1].split()[:2] == ["0x7099…79C8", "ETH"]
    assert out[2] == "(1 expired legs left out)"
    assert len(rows) == 1 and repr(rows).startswith("<1 Greek rows: delta -")
