"""Liquidation policy parameters, registration and the keepers' batched view."""

import ape
import pytest
from conftest import ETH, USDC, WAD, acct

from offchain_risk.models.liquidation import LiquidationPolicy

POLICY = LiquidationPolicy()


def policy_state(liquidations):
    return (
        liquidations.min_discount(),
        liquidations.max_discount(),
        liquidations.insurance_share(),
        liquidations.target_buffer(),
        liquidations.close_cap(),
        liquidations.critical_health(),
        liquidations.dust_margin(),
        liquidations.min_bounty(),
        liquidations.risk_manager(),
    )


def test_policy__deployed_values(liquidations, engine):
    assert policy_state(liquidations)[:8] == POLICY.args()
    assert engine.liquidator() == liquidations.address


def test_set_discount_curve__risk_manager_may_owner_may(liquidations, owner, operator):
    liquidations.set_risk_manager(operator, sender=owner)
    liquidations.set_discount_curve(WAD // 100, WAD // 5, sender=operator)
    assert (liquidations.min_discount(), liquidations.max_discount()) == (WAD // 100, WAD // 5)
    liquidations.set_discount_curve(WAD // 50, WAD // 10, sender=owner)
    assert (liquidations.min_discount(), liquidations.max_discount()) == (WAD // 50, WAD // 10)


@pytest.mark.parametrize(
    "call, message",
    [
        (("set_discount_curve", 0, WAD // 10), "liquidations: bad discount curve"),
        (("set_discount_curve", WAD // 5, WAD // 10), "liquidations: bad discount curve"),
        (("set_discount_curve", WAD // 10, WAD // 2 + 1), "liquidations: discount above 50%"),
        (("set_policy", WAD + 1, 0, WAD, 0, 0), "liquidations: share above 1"),
        (("set_policy", 0, WAD + 1, WAD, 0, 0), "liquidations: buffer above 100%"),
        (("set_policy", 0, 0, 0, 0, 0), "liquidations: bad close cap"),
        (("set_policy", 0, 0, WAD + 1, 0, 0), "liquidations: bad close cap"),
        (("set_policy", 0, 0, WAD, WAD, 0), "liquidations: critical health >= 1"),
        (("set_policy", 0, 0, WAD, 0, 2**128), "liquidations: dust margin too large"),
        (("set_min_bounty", 1_000 * WAD + 1), "liquidations: bounty above 1000"),
    ],
)
def test_policy_setters__out_of_bounds__revert(liquidations, owner, call, message):
    before = policy_state(liquidations)
    with ape.reverts(message):
        getattr(liquidations, call[0])(*call[1:], sender=owner)
    assert policy_state(liquidations) == before


@pytest.mark.parametrize(
    "call, message",
    [
        (("set_discount_curve", WAD // 100, WAD // 10), "liquidations: not owner or risk manager"),
        (("set_policy", 0, 0, WAD, 0, 0), "ownable: caller is not the owner"),
        (("set_risk_manager", "0x" + "11" * 20), "ownable: caller is not the owner"),
        (("set_min_bounty", WAD), "ownable: caller is not the owner"),
    ],
)
def test_policy_setters__stranger__revert(liquidations, stranger, call, message):
    before = policy_state(liquidations)
    with ape.reverts(message):
        getattr(liquidations, call[0])(*call[1:], sender=stranger)
    assert policy_state(liquidations) == before


def test_set_min_bounty__owner__sets_and_logs(liquidations, owner):
    tx = liquidations.set_min_bounty(25 * WAD, sender=owner)
    assert liquidations.min_bounty() == 25 * WAD
    assert [log.min_bounty for log in tx.events if log.event_name == "MinBountySet"] == [25 * WAD]


def test_set_liquidator__owner_only(engine, stranger, owner, liquidations):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_liquidator(stranger, sender=stranger)
    with ape.reverts("liquidation: zero liquidator"):
        engine.set_liquidator("0x" + "00" * 20, sender=owner)
    assert engine.liquidator() == liquidations.address


def test_healths__batch_matches_single_views(engine, usdc, fund, funded, trade, trader, maker):
    fund(trader, usdc, 1_000 * USDC, sub=3)
    trade(ETH, -5 * WAD, 2_000)
    ids = [acct(trader), acct(maker), acct(trader, 3), acct(trader, 9)]
    out = engine.healths(ids)
    assert len(out) == 4
    for a, m in zip(ids, out, strict=True):
        assert m.equity == engine.equity(a)
        assert (m.equity, m.mm, m.im) == tuple(engine.margin(a))
        assert m.prices_ok
    assert out[3].equity == 0 and out[3].mm == 0  # an empty account


def test_healths__bad_feed__flags_not_reverts(engine, feeds, owner, funded, trade, trader):
    trade(ETH, -5 * WAD, 2_000)
    feeds[ETH].set_round(-1, 1, 9, 9, sender=owner)
    (m,) = engine.healths([acct(trader)])
    assert not m.prices_ok


def test_healths__batch_above_100__reverts(engine):
    with pytest.raises(Exception):  # noqa: B017 (the ABI bound rejects it before any code)
        engine.healths(list(range(101)))
