"""Vol surfaces from price and DVOL history: the fit, its stated rules and its refusals."""

from dataclasses import replace

import numpy as np
import pytest

from offchain_risk.data import load_bars, load_dvol
from offchain_risk.models.options import black76
from offchain_risk.models.vol_surface import (
    CURVATURE_Z,
    IV_RV_RATIO,
    MAX_CURVATURE,
    MAX_SKEW,
    SKEW_Z,
    ExpiryCurve,
    SurfaceFitter,
    SurfaceRule,
    VolSurface,
    check_butterfly,
    check_calendar,
    check_surface,
    check_variance,
    iv_rv_ratio,
)
from offchain_risk.units import DAY

TAUS = np.array([1 / 24, 1, 7, 30, 90, 180, 365, 4 * 365]) * DAY
ASOF = np.datetime64("2022-06-15T00:00:00")  # the 3AC / Celsius week
FORWARD = 22_000.0


@pytest.fixture(scope="module")
def btc(data_dir):
    return load_bars("BTC", "1h", data_dir)


@pytest.fixture(scope="module")
def dvol(data_dir):
    return load_dvol(data_dir)


@pytest.fixture(scope="module")
def btc_surface(btc, dvol):
    return SurfaceFitter(btc, dvol).fit(ASOF, FORWARD, TAUS)


def flat_surface(curves, level=0.6):
    return VolSurface("TEST", ASOF, 100.0, level, "test", tuple(curves))


@pytest.mark.data
def test_fit__fixed_date__arbitrage_free_with_dvol_level(btc_surface, dvol):
    s = btc_surface
    assert check_surface(s).ok, check_surface(s).summary()
    # the level is the DVOL close of the day before (2022-06-14 closed at midnight)
    assert s.source == "dvol"
    assert s.level_30d == dvol.vol[dvol.dates == np.datetime64("2022-06-14")][0]
    atm = np.array([c.atm_vol for c in s.curves])
    assert atm[list(TAUS).index(30 * DAY)] == pytest.approx(s.level_30d, rel=1e-12)
    # ATM total variance rises with the expiry; a shock week: short vol above long
    assert (np.diff(atm**2 * TAUS) > 0).all()
    assert s.realised[0] > s.realised[1]
    assert atm[0] > atm[-1]
    # every curve inside the feed's bounds; the hour's curve was cut to them
    for c in s.curves:
        assert abs(c.skew) <= MAX_SKEW and 0 <= c.curvature <= MAX_CURVATURE
    assert s.curves[0].clipped and not s.curves[3].clipped


@pytest.mark.data
def test_fit__no_implied_vol__realised_rule(data_dir):
    eth = load_bars("ETH", "1h", data_dir)
    fitter = SurfaceFitter(eth)
    s = fitter.fit("2022-11-10T00:00", 1_200.0, TAUS)
    _, rv30, _ = fitter.realised(np.datetime64("2022-11-10T00:00"))
    assert s.source == "realised"
    assert s.level_30d == pytest.approx(IV_RV_RATIO * rv30, rel=1e-12)
    assert check_surface(s).ok, check_surface(s).summary()


@pytest.mark.data
def test_fit__btc_before_dvol__realised_rule(btc, dvol):
    s = SurfaceFitter(btc, dvol).fit("2020-03-13T12:00", 5_000.0, TAUS)
    assert s.source == "realised"
    assert check_surface(s).ok


@pytest.mark.data
def test_fit__reads_only_closed_data(btc, dvol):
    """Bars after the as-of time (and the as-of hour's open bar) change nothing."""
    keep = btc.timestamps < ASOF  # bars closed by ASOF
    cut = replace(
        btc,
        **{
            f: getattr(btc, f)[keep]
            for f in ("timestamps", "open", "high", "low", "close", "volume")
        },
    )
    full = SurfaceFitter(btc, dvol).fit(ASOF, FORWARD, TAUS)
    assert SurfaceFitter(cut, dvol).fit(ASOF, FORWARD, TAUS) == full


@pytest.mark.data
def test_iv_rv_ratio__constant_is_the_measured_median(btc, dvol):
    ratios = iv_rv_ratio(btc, dvol)
    assert ratios.size > 1_000
    assert abs(np.median(ratios) - IV_RV_RATIO) < 0.01


@pytest.mark.data
def test_skew_assumption__sign_is_the_data_s(btc, btc_surface):
    """Negative skew and positive curvature: 30-day BTC log returns (daily, overlapping)
    have negative skewness and fat tails; the 30-day curve carries the stated risk reversal
    (-5% of ATM) and butterfly (+3%) at the 25-delta strikes."""
    daily = btc.close[::24]
    r = np.log(daily[30:] / daily[:-30])
    z = (r - r.mean()) / r.std()
    assert np.mean(z**3) < 0 and SKEW_Z < 0
    assert np.mean(z**4) > 3 and CURVATURE_Z > 0
    c = btc_surface.curves[list(TAUS).index(30 * DAY)]
    sd = c.atm_vol * np.sqrt(c.tau_y)
    # z = +-0.6745: the 25-delta strikes up to the forward's sd^2 / 2 drift
    put, call = c.vol(np.array([-0.6745 * sd, 0.6745 * sd]))
    assert (call - put) / c.atm_vol == pytest.approx(1.349 * SKEW_Z, rel=1e-9)
    assert ((call + put) / 2 - c.atm_vol) / c.atm_vol == pytest.approx(
        0.6745**2 * CURVATURE_Z, rel=1e-9
    )
    assert (call - put) / c.atm_vol == pytest.approx(-0.054, abs=0.001)
    assert ((call + put) / 2 - c.atm_vol) / c.atm_vol == pytest.approx(0.032, abs=0.001)


def test_check__negative_variance__refused_with_reason():
    bad = ExpiryCurve(30 * DAY, 0.3, -2.0, 0.0)
    assert "negative total variance" in check_variance(flat_surface([bad]))
    res = check_surface(flat_surface([bad]))
    assert not res.ok and res.reasons[0].startswith("negative total variance")
    assert res.failed == ("variance",)


def test_check__calendar__later_expiry_below__refused():
    near = ExpiryCurve(7 * DAY, 0.9, -0.1, 0.5)
    far = ExpiryCurve(30 * DAY, 0.4, -0.1, 0.5)  # 0.4^2 * 30 < 0.9^2 * 7
    reason = check_calendar(flat_surface([near, far]))
    assert reason.startswith("calendar arbitrage: total variance falls")
    assert check_calendar(flat_surface([far, near])).startswith("calendar arbitrage: expiries")
    assert check_calendar(flat_surface([near, replace(far, atm_vol=0.9)])) is None


def density(strikes, calls):
    """Change of the call price's slope between neighbouring strikes: negative where the
    prices are not convex in the strike."""
    return np.diff(np.diff(calls) / np.diff(strikes))


def test_check__butterfly__refused_and_black76_density_negative():
    """Wings rising too fast (Lee's bound): Durrleman refuses them, and the Black-76 call
    prices on the strike grid are not convex there (negative density)."""
    bad = ExpiryCurve(90 * DAY, 0.5, -1.0, 5.0)
    s = flat_surface([bad], level=0.6)
    reason = check_butterfly(s)
    assert reason.startswith("butterfly arbitrage: Durrleman g=")
    x = s.check_grid()
    strikes = s.forward * np.exp(x)
    calls = black76(s.forward, strikes, bad.vol(x), bad.tau_s, True, greeks=False).price
    assert density(strikes, calls).min() < 0
    good = ExpiryCurve(30 * DAY, 0.6, -0.14, 1.0)
    g = flat_surface([good])
    assert check_butterfly(g) is None
    calls = black76(g.forward, strikes, good.vol(x), good.tau_s, True, greeks=False).price
    assert density(strikes, calls).min() > -1e-9  # float noise on prices of order 100


def test_check__tolerance_admits_a_small_breach():
    c = ExpiryCurve(90 * DAY, 0.5, -0.5, 5.0)
    s = flat_surface([c])
    g_min = c.durrleman(s.check_grid()).min()
    assert g_min < 0
    assert check_butterfly(s, tol=-g_min * 1.01) is None
    assert check_butterfly(s, tol=-g_min * 0.99) is not None


def test_check__no_curves_or_bad_forward__refused():
    assert check_surface(flat_surface([])).reasons == ("no expiries",)
    assert check_surface(flat_surface([])).failed == ("input",)
    s = replace(flat_surface([ExpiryCurve(DAY, 0.5, 0.0, 0.0)]), forward=float("nan"))
    assert check_surface(s).reasons[0].startswith("bad forward")


@pytest.mark.data
def test_fit__bad_inputs__clear_errors(btc, dvol):
    """Unordered or empty expiries, an as-of past the data, too little history."""
    f = SurfaceFitter(btc, dvol)
    with pytest.raises(ValueError, match="strictly increasing"):
        f.fit(ASOF, FORWARD, [30 * DAY, 7 * DAY])
    with pytest.raises(ValueError, match="positive seconds"):
        f.fit(ASOF, FORWARD, [0.0])
    with pytest.raises(ValueError, match="prices end"):
        f.fit("2025-01-01", FORWARD, TAUS)
    with pytest.raises(ValueError, match="30 days of hourly returns"):
        f.fit("2020-01-20", FORWARD, TAUS)
    with pytest.raises(ValueError, match="hourly bars"):
        SurfaceFitter(replace(btc, freq="1d"))


def test_rule__bad_parameters__refused():
    with pytest.raises(ValueError, match="iv_rv_ratio"):
        SurfaceRule(iv_rv_ratio=0.0)
    with pytest.raises(ValueError, match="short_window_h"):
        SurfaceRule(short_window_h=200 * 24)
    with pytest.raises(ValueError, match="curvature_z"):
        SurfaceRule(curvature_z=-0.1)
