"""The numpy margin twin: known values, rounding direction, float vs exact, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offchain_risk.chain import signature_bytes
from offchain_risk.models.margin import (
    WAD,
    RiskParams,
    apply_trade,
    flat_words,
    margin_exact,
    margin_float,
    pack_shocks,
    pad_scenarios,
)

SHOCKS = np.array([[-1500, 1500, -2000, 1800], [-1200, 1200, -1800, 1500]])  # ETH, BTC
PARAMS = RiskParams(
    floor_bps=np.array([100, 100]),
    haircut_bps=np.array([200, 300]),
    shocks_bps=SHOCKS,
    im_multiplier_wad=3 * WAD // 2,
)
PRICES = [2_000 * WAD, 60_000 * WAD]


def _one(cash, coll, size, on, params=PARAMS, prices=PRICES):
    r = margin_exact(np.array([cash], dtype=object), [coll], [size], [on], prices, params)
    return r.equity[0], r.mm[0], r.im[0]


def test_margin_exact__collateral_hedged_short__floor_only():
    equity, mm, im = _one(0, [10 * WAD, 0], [-10 * WAD, 0], [-20_000 * WAD, 0])
    assert mm == 2 * 20_000 * WAD // 100  # 1% of each gross leg
    assert im == mm * 3 // 2
    assert equity == 20_000 * WAD * 98 // 100  # 2% haircut on WETH, perp flat


def test_margin_exact__pair__worst_joint_scenario():
    # long 5 BTC (300k), short 120 ETH (240k): scenario 2 (ETH -20%, BTC -18%) loses most
    _, mm, _ = _one(0, [0, 0], [-120 * WAD, 5 * WAD], [-240_000 * WAD, 300_000 * WAD])
    losses = [-(-240_000 * int(e) + 300_000 * int(b)) // 10_000 for e, b in SHOCKS.T]
    assert mm == max(losses) * WAD == 6_000 * WAD


def test_margin_exact__rounds_against_the_account():
    # short 1 wei at 2000e18 + 1: pnl is -2000.000000000000000001 wei, floored to -2001
    price = [2_000 * WAD + 1, 60_000 * WAD]
    equity, mm, _ = _one(0, [0, 0], [-1, 0], [0, 0], prices=price)
    assert equity == -2001
    assert mm == 361  # the +18% scenario loses 360.00..018 wei: rounded up


def test_margin_exact__negative_equity_floors_towards_minus_infinity():
    # size -3 wei at price 0.5 WAD: value -1.5 wei -> equity -2 (not the EVM's -1)
    params = RiskParams(np.array([0]), np.array([0]), np.zeros((1, 16), dtype=int), WAD)
    r = margin_exact(np.array([0], dtype=object), [[0]], [[-3]], [[0]], [WAD // 2], params)
    assert r.equity[0] == -2


def test_margin_exact__loss_rounds_up():
    # long 1 wei at 1 WAD, shock -1 bp: loss 1e-4 wei -> MM 1 wei
    params = RiskParams(np.array([0]), np.array([0]), np.array([[-1]]), WAD)
    r = margin_exact(np.array([0], dtype=object), [[0]], [[1]], [[0]], [WAD], params)
    assert r.mm[0] == 1


def test_margin_exact__no_exposure__zero_margin():
    equity, mm, im = _one(7 * WAD, [0, 0], [0, 0], [0, 0])
    assert (equity, mm, im) == (7 * WAD, 0, 0)


portfolio = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(-(10**6), 10**6), st.integers(-(10**9), 10**9)),
    min_size=2,
    max_size=2,
)


@given(rows=st.lists(portfolio, min_size=1, max_size=20), cash=st.integers(-(10**9), 10**9))
def test_margin_float__matches_exact_path(rows, cash):
    coll = [[c * WAD // 100 for c, _, _ in r] for r in rows]
    size = [[s * WAD // 100 for _, s, _ in r] for r in rows]
    on = [[o * WAD for _, _, o in r] for r in rows]
    exact = margin_exact(
        np.array([cash * WAD] * len(rows), dtype=object), coll, size, on, PRICES, PARAMS
    )
    p = np.array(PRICES, dtype=float) / WAD
    exposures = (np.array(coll, dtype=float) + np.array(size, dtype=float)) / WAD * p
    gross = (np.array(coll, dtype=float) + np.abs(np.array(size, dtype=float))) / WAD * p
    mm, im = margin_float(exposures, gross, SHOCKS, PARAMS.floor_bps, 1.5)
    np.testing.assert_allclose(mm, np.array(exact.mm, dtype=float) / WAD, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(im, np.array(exact.im, dtype=float) / WAD, rtol=1e-9, atol=1e-9)


@given(
    size=st.integers(-(10**24), 10**24),
    on=st.integers(-(10**27), 10**27),
    cash=st.integers(-(10**27), 10**27),
    d=st.integers(-(10**24), 10**24).filter(bool),
    flow=st.integers(-(10**27), 10**27),
)
def test_apply_trade__conserves_cash_minus_notional(size, on, cash, d, flow):
    s2, on2, cash2 = apply_trade(size, on, cash, d, flow)
    assert s2 == size + d
    assert (cash2 - on2) - (cash - on) == flow
    if s2 == 0:
        assert on2 == 0 or size == 0 or (size > 0) == (d > 0)


def test_apply_trade__close_flip_realises_pnl():
    # long 10 @ 2000, sell 15 @ 2050
    assert apply_trade(10, 20_000, 0, -15, 30_750) == (-5, -10_250, 500)


def test_pack_shocks__int16_words_round_trip():
    shocks = np.array([[-10_000, 32_767, -1, 0, 5]])
    [[word, high]] = pack_shocks(shocks)
    back = [((word >> (16 * k)) & 0xFFFF) for k in range(5)]
    assert [v - 65536 if v >= 32768 else v for v in back] == [-10_000, 32_767, -1, 0, 5]
    assert high == 0  # K <= 16: the second word is zero
    assert pad_scenarios(shocks).shape == (1, 32)


def test_pack_shocks__k32__scenario_k_in_word_k_div_16():
    shocks = np.arange(-16, 16).reshape(1, 32) * 100
    [[low, high]] = pack_shocks(shocks)
    assert low & 0xFFFF == (-1600) & 0xFFFF  # scenario 0
    assert high & 0xFFFF == 0  # scenario 16
    assert (high >> 16 * 15) & 0xFFFF == 1500  # scenario 31
    assert flat_words(pack_shocks(np.vstack([shocks, -shocks]))) == [
        low,
        high,
        *pack_shocks(-shocks)[0],
    ]


@pytest.mark.parametrize("bad", [[[-10_001]], [[32_768]], np.zeros((1, 33), dtype=int)])
def test_pack_shocks__out_of_range__raises(bad):
    with pytest.raises(ValueError):
        pack_shocks(np.array(bad))


def test_margin_exact__bad_input__clear_errors():
    with pytest.raises(ValueError, match="shape"):
        _one(0, [0], [0, 0], [0, 0])
    with pytest.raises(TypeError, match="integers"):
        _one(0, [0.5, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        _one(0, [-1, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="K<=32"):
        RiskParams(np.array([0]), np.array([0]), np.zeros((1, 33), dtype=int), WAD)
    with pytest.raises(ValueError, match="im_multiplier"):
        RiskParams(np.array([0]), np.array([0]), np.zeros((1, 16), dtype=int), WAD - 1)


def test_margin_float__non_finite__raises():
    with pytest.raises(ValueError, match="finite"):
        margin_float(np.array([[np.nan, 0.0]]), np.zeros((1, 2)), SHOCKS, [0, 0], 1.5)


class _Sig:
    def __init__(self, r, s, v):
        self.r, self.s, self.v = r, s, v


def test_signature_bytes__leading_zero_r__padded_to_65_bytes():
    """Regression: an r with a leading zero byte lost it, giving a 64-byte signature that
    the engine refused ("trading: bad signature length"), e.g. r = 0x00ab... (1 in 128)."""
    r = bytes.fromhex("00" + "ab" * 31)
    sig = signature_bytes(_Sig(r[1:], b"\x01" * 32, 27))
    assert len(sig) == 65 and sig[:32] == r
    assert (
        signature_bytes(_Sig(5, 7, 28))
        == (5).to_bytes(32, "big") + (7).to_bytes(32, "big") + b"\x1c"
    )


# ------------------------------------------------------------ the quote asset's peg term


def test_peg_margin__depeg__positive_cash_only_rounded_up():
    from offchain_risk.models.margin import QuotePeg, peg_margin

    quote = QuotePeg(price_wad=877_400_000_000_000_000, peg_rate_bps=100)  # 0.8774, 1%
    cash = np.array([20_000 * WAD, -5_000 * WAD, 0, 1], dtype=object)
    term = peg_margin(cash, quote)
    assert term[0] == 20_000 * WAD * (1226 + 100) // 10_000  # 12.26% live + 1% standing
    assert list(term[1:]) == [0, 0, 1]  # debts and empty accounts pay none; 1 wei rounds up


def test_peg_margin__at_or_above_peg_or_dead_feed__standing_rate_only():
    from offchain_risk.models.margin import QuotePeg, peg_margin

    cash = np.array([10_000 * WAD], dtype=object)
    for price in (WAD, WAD + WAD // 100, 0):  # par, a premium, a feed answering nothing
        assert peg_margin(cash, QuotePeg(price, 50))[0] == 50 * WAD
    assert peg_margin(cash, None)[0] == 0  # no quote feed: cash at par


def test_margin_exact__quote_peg__adds_to_im_only():
    from offchain_risk.models.margin import QuotePeg

    args = (np.array([30_000 * WAD], dtype=object), [[0, 0]], [[10 * WAD, 0]], [[20_000 * WAD, 0]])
    plain = margin_exact(*args, PRICES, PARAMS)
    quote = QuotePeg(price_wad=9 * WAD // 10)
    r = margin_exact(*args, PRICES, PARAMS, quote=quote)
    assert (r.equity[0], r.mm[0]) == (plain.equity[0], plain.mm[0])
    assert r.im[0] - plain.im[0] == 3_000 * WAD


@pytest.mark.parametrize(("price", "rate"), [(-1, 0), (2**100 + 1, 0), (WAD, -1), (WAD, 10_001)])
def test_quote_peg__out_of_bounds__refused(price, rate):
    from offchain_risk.models.margin import QuotePeg

    with pytest.raises(ValueError, match="outside"):
        QuotePeg(price_wad=price, peg_rate_bps=rate)
