"""The Black-76 pricing module (contracts/black76.vy) through its probe, in titanoboa.

- the twin (offchain_risk.models.options) equals the module to the wei on random inputs;
- the normal CDF is within its stated error of the exact one across the domain;
- the price is within the stated bound of a reference Black-76 value (float64 with
  scipy's `ndtr`, whose own error, below 1e-13 of F + K, is allowed for), rounded up
  never below it and rounded down never above it, always inside the no-arbitrage range;
  put-call parity holds within the bound;
- the Greeks match finite differences of the on-chain price;
- every input outside the domain is refused with its message.
"""

import random

import boa
import numpy as np
import pytest
from boa_stack import CONTRACTS
from scipy.special import ndtr

from offchain_risk.models import options
from offchain_risk.units import (
    DAY,
    MAX_MONEYNESS,
    MAX_OPTION_TIME,
    MAX_PRICE,
    MAX_VOL,
    MIN_MONEYNESS,
    MIN_OPTION_PRICE,
    MIN_VOL,
    WAD,
    YEAR,
)


@pytest.fixture(scope="module")
def probe():
    return boa.load(str(CONTRACTS / "test" / "Black76Probe.vy"))


def random_input(rng: random.Random) -> tuple[int, int, int, int, bool]:
    """Anywhere in the domain: forward 1e-9 .. 1e12 USD (log-uniform), moneyness
    1e-4 .. 1e4, vol 1% .. 500%, 1 s .. 4 years (log-uniform)."""
    while True:
        f = int(10 ** rng.uniform(-9, 12) * WAD)
        k = int(f * 10 ** rng.uniform(-4, 4))
        sigma = int(10 ** rng.uniform(-2, 0.699) * WAD)
        tau = max(1, int(10 ** rng.uniform(0, 8.1)))
        try:
            options.check(f, k, sigma, tau)
        except ValueError:
            continue
        return f, k, sigma, tau, rng.random() < 0.5


def exact_price(f: int, k: int, sigma: int, tau: int, is_call: bool) -> float:
    """The reference Black-76 value at zero rates, WAD (float64)."""
    return float(options.black76(f / WAD, k / WAD, sigma / WAD, tau, is_call).price[0]) * WAD


def ref_slack(f: int, k: int) -> float:
    """The reference's own float64 error allowance."""
    return 1e-13 * (f + k)


def test_twin__equals_module_to_the_wei_on_random_inputs(probe):
    rng = random.Random(76)
    for _ in range(250):
        f, k, sigma, tau, is_call = random_input(rng)
        want = options.valuation_exact(f, k, sigma, tau, is_call)
        assert tuple(probe.valuation(f, k, sigma, tau, is_call)) == tuple(want)
        for roundup in (True, False):
            assert probe.price(f, k, sigma, tau, is_call, roundup) == options.price_exact(
                f, k, sigma, tau, is_call, roundup
            )


def test_twin__cdf_and_pdf_equal_module_to_the_wei(probe):
    rng = random.Random(2)
    xs = [0, 1, -1, WAD, -WAD, 10 * WAD - 1, -(10 * WAD - 1), 10 * WAD, 10**26, -(10**26)]
    xs += [int(rng.uniform(-12, 12) * WAD) for _ in range(200)]
    for x in xs:
        assert probe.pdf(x) == options.pdf_exact(x)
        assert probe.cdf(x) == options.cdf_exact(x, options.pdf_exact(x))


def test_cdf__within_stated_error_across_the_line():
    # On the twin (equal to the module, above), every 1e-4 from -12 to 12.
    xs = [i * 10**14 for i in range(-120_000, 120_001)]
    got = np.array([options.cdf_exact(x, options.pdf_exact(x)) for x in xs]) / WAD
    worst = float(np.abs(got - ndtr(np.arange(-120_000, 120_001) * 1e-4)).max())
    assert worst <= options.CDF_ERR + 1e-15
    assert worst > 7e-8  # the approximation's own error, not a broken comparison


def test_price__within_bound_and_rounded_in_the_stated_direction(probe):
    rng = random.Random(7)
    for _ in range(300):
        f, k, sigma, tau, is_call = random_input(rng)
        exact = exact_price(f, k, sigma, tau, is_call)
        central = probe.valuation(f, k, sigma, tau, is_call).price
        bound = options.price_error(f, k)
        slack = ref_slack(f, k)
        assert abs(central - exact) <= bound + slack
        up = probe.price(f, k, sigma, tau, is_call, True)
        down = probe.price(f, k, sigma, tau, is_call, False)
        assert down <= exact + slack
        assert exact - slack <= up
        intrinsic = max(f - k, 0) if is_call else max(k - f, 0)
        assert intrinsic <= down <= central <= up <= (f if is_call else k)


def test_price__put_call_parity_within_the_bound(probe):
    rng = random.Random(11)
    for _ in range(200):
        f, k, sigma, tau, _ = random_input(rng)
        call = probe.valuation(f, k, sigma, tau, True).price
        put = probe.valuation(f, k, sigma, tau, False).price
        assert abs(call - put - (f - k)) <= options.price_error(f, k)


@pytest.mark.parametrize(
    ("f", "k", "sigma", "tau", "is_call", "expect"),
    [
        # deep in the money: intrinsic (the bound covers the time value left)
        (100_000, 10_000, 0.5, 30 * DAY, True, 90_000),
        (10_000, 100_000, 0.5, 30 * DAY, False, 90_000),
        # deep out of the money: nothing
        (100_000, 10_000, 0.5, 30 * DAY, False, 0),
        (10_000, 100_000, 0.5, 30 * DAY, True, 0),
        # one second to expiry, in / out of the money: intrinsic
        (3_000, 2_900, 0.8, 1, True, 100),
        (3_000, 3_100, 0.8, 1, True, 0),
        # lowest vol, a year: intrinsic
        (3_000, 2_000, 0.01, YEAR, True, 1_000),
    ],
)
def test_price__bounds_of_the_domain(probe, f, k, sigma, tau, is_call, expect):
    f, k, sigma = f * WAD, k * WAD, int(sigma * WAD)
    v = probe.valuation(f, k, sigma, tau, is_call).price
    assert abs(v - expect * WAD) <= options.price_error(f, k)


def test_price__highest_vol_longest_expiry_tends_to_the_forward(probe):
    # sigma sqrt(T) = 10: the call is worth almost all of F, the put almost all of K.
    f = k = 3_000 * WAD
    call = probe.valuation(f, k, MAX_VOL, MAX_OPTION_TIME, True).price
    assert f - call <= f // 10**6
    assert probe.price(f, k, MAX_VOL, MAX_OPTION_TIME, True, True) <= f


def test_price__atm_one_second_keeps_its_time_value(probe):
    f = k = 100_000 * WAD
    central = probe.valuation(f, k, MIN_VOL, 1, True).price
    exact = exact_price(f, k, MIN_VOL, 1, True)
    assert abs(central - exact) <= options.price_error(f, k)
    assert probe.price(f, k, MIN_VOL, 1, True, True) > exact + ref_slack(f, k)
    # F n(0) s = 0.07 USD of time value, more than the bound (0.015): both survive
    assert probe.price(f, k, MIN_VOL, 1, True, False) == central - options.price_error(f, k)
    assert 0 < central - options.price_error(f, k) <= exact


GREEK_CASES = [
    (100_000, 100_000, 0.6, 30 * DAY),
    (100_000, 120_000, 0.6, 90 * DAY),
    (3_000, 2_500, 0.8, 7 * DAY),
    (3_000, 3_600, 1.2, 2 * DAY),
    (25, 20, 0.3, YEAR),
    (1_500, 1_000, 2.0, 180 * DAY),
]


@pytest.mark.parametrize(("f", "k", "sigma", "tau"), GREEK_CASES)
@pytest.mark.parametrize("is_call", [True, False])
def test_greeks__match_finite_differences_of_the_price(probe, f, k, sigma, tau, is_call):
    f, k, sigma = f * WAD, k * WAD, int(sigma * WAD)

    def v(ff=f, ss=sigma, tt=tau):
        return probe.valuation(ff, k, ss, tt, is_call).price

    g = probe.valuation(f, k, sigma, tau, is_call)
    hf = f // 1_000
    delta_fd = (v(ff=f + hf) - v(ff=f - hf)) * WAD / (2 * hf)
    gamma_fd = (v(ff=f + hf) - 2 * v() + v(ff=f - hf)) * WAD * WAD / (hf * hf)
    hs = sigma // 1_000
    vega_fd = (v(ss=sigma + hs) - v(ss=sigma - hs)) * WAD / (2 * hs)
    ht = max(tau // 1_000, 1)
    theta_fd = -(v(tt=tau + ht) - v(tt=tau - ht)) * YEAR / (2 * ht)
    assert abs(g.delta - delta_fd) <= 2e-4 * WAD
    assert abs(g.gamma - gamma_fd) <= 2e-3 * g.gamma + 1e-3 * WAD * WAD / f
    assert abs(g.vega - vega_fd) <= 2e-3 * g.vega + 1e-3 * f
    assert abs(g.theta - theta_fd) <= 2e-3 * abs(g.theta) + 1e-3 * f
    # the put's delta is the call's less one; gamma, vega and theta are the same
    other = probe.valuation(f, k, sigma, tau, not is_call)
    assert g.delta - other.delta == (WAD if is_call else -WAD)
    assert (g.gamma, g.vega, g.theta) == (other.gamma, other.vega, other.theta)


def test_greeks__float_path_matches_the_module(probe):
    # The vectorised float Black-76 against the module's Greeks on the same inputs.
    rng = random.Random(5)
    rows = [random_input(rng) for _ in range(100)]
    got = [probe.valuation(*r) for r in rows]
    res = options.black76(
        [r[0] / WAD for r in rows],
        [r[1] / WAD for r in rows],
        [r[2] / WAD for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
    )
    for i, (r, g) in enumerate(zip(rows, got, strict=False)):
        scale = (r[0] + r[1]) / WAD
        assert abs(g.price / WAD - res.price[i]) <= 7.6e-8 * scale + 1e-9 * scale
        assert abs(g.delta / WAD - res.delta[i]) <= 2e-7
        assert abs(g.vega / WAD - res.vega[i]) <= 1e-9 * res.vega[i] + 1e-12 * scale


D0 = (3_000 * WAD, 3_000 * WAD, WAD // 2, 30 * DAY)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((D0[0], D0[1], D0[2], 0), "black76: expired"),
        ((D0[0], D0[1], D0[2], MAX_OPTION_TIME + 1), "black76: expiry too far"),
        ((D0[0], D0[1], 0, D0[3]), "black76: vol too low"),
        ((D0[0], D0[1], MIN_VOL - 1, D0[3]), "black76: vol too low"),
        ((D0[0], D0[1], MAX_VOL + 1, D0[3]), "black76: vol too high"),
        ((D0[0], D0[1], 2**255, D0[3]), "black76: vol too high"),
        ((0, D0[1], D0[2], D0[3]), "black76: bad forward"),
        ((MIN_OPTION_PRICE - 1, D0[1], D0[2], D0[3]), "black76: bad forward"),
        ((MAX_PRICE + 1, D0[1], D0[2], D0[3]), "black76: bad forward"),
        ((D0[0], 0, D0[2], D0[3]), "black76: bad strike"),
        ((D0[0], MAX_PRICE + 1, D0[2], D0[3]), "black76: bad strike"),
        (
            (D0[0], D0[0] * WAD // MIN_MONEYNESS + 1, D0[2], D0[3]),
            "black76: moneyness out of range",
        ),
        (
            (D0[0], D0[0] * WAD // MAX_MONEYNESS - 1, D0[2], D0[3]),
            "black76: moneyness out of range",
        ),
    ],
)
def test_check__refuses_inputs_outside_the_domain(probe, args, message):
    for is_call in (True, False):
        with boa.reverts(message):
            probe.valuation(*args, is_call)
        with boa.reverts(message):
            probe.price(*args, is_call, True)
        with pytest.raises(ValueError, match=message):
            options.price_exact(*args, is_call, True)
