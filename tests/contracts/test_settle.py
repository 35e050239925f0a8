"""The core's trade rules hold whatever the venue: only registered venues settle, and a
venue cannot bypass the price band, the open-interest cap or the margin checks."""

import ape
import pytest
from conftest import ETH, USDC, WAD, acct


@pytest.fixture
def venue(engine, owner, stranger):
    """An EOA registered as a venue: it settles whatever it likes, within the rules."""
    engine.set_venue(stranger, True, sender=owner)
    return stranger


def test_settle__registered_venue__moves_positions(engine, funded, venue, maker, trader):
    tx = engine.settle(acct(maker), acct(trader), ETH, 3 * WAD, 2_000 * WAD, sender=venue)
    assert engine.position(acct(maker), ETH) == (3 * WAD, 6_000 * WAD)
    assert engine.position(acct(trader), ETH) == (-3 * WAD, -6_000 * WAD)
    [fill] = tx.events.filter(engine.Fill)
    assert (fill.venue, fill.maker_size, fill.quote) == (venue, 3 * WAD, 6_000 * WAD)


def test_settle__not_a_venue__reverts(engine, funded, maker, trader, stranger, snapshot):
    before = snapshot(maker, trader)
    with ape.reverts("settlement: not a venue"):
        engine.settle(acct(maker), acct(trader), ETH, WAD, 2_000 * WAD, sender=stranger)
    assert snapshot(maker, trader) == before


def test_settle__venue_removed__book_stops(client, engine, owner, book, funded, maker, trader):
    engine.set_venue(book, False, sender=owner)
    order = client.order(maker, ETH, WAD, 2_000 * WAD, 1, 2**40)
    with ape.reverts("settlement: not a venue"):
        client.fill(order, client.sign(maker, order), WAD, acct(trader), sender=trader)
    assert book.filled(acct(maker), 1) == 0


@pytest.mark.parametrize(
    "size,price,message",
    [
        (WAD, 2_200 * WAD, "settlement: price outside band"),
        (0, 2_000 * WAD, "settlement: zero size"),
        (WAD * 10**6, 2_000 * WAD, "margin: below initial margin"),
    ],
)
def test_settle__venue_cannot_bypass_rules(
    engine, funded, venue, maker, trader, snapshot, size, price, message
):
    before = snapshot(maker, trader)
    with ape.reverts(message):
        engine.settle(acct(maker), acct(trader), ETH, size, price, sender=venue)
    assert snapshot(maker, trader) == before


def test_settle__self_trade__reverts(engine, usdc, fund, venue, trader):
    fund(trader, usdc, 10_000 * USDC)
    with ape.reverts("settlement: self trade"):
        engine.settle(acct(trader), acct(trader), ETH, WAD, 2_000 * WAD, sender=venue)


def test_set_venue__owner_only_and_non_zero(engine, owner, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        engine.set_venue(stranger, True, sender=stranger)
    with ape.reverts("settlement: zero venue"):
        engine.set_venue("0x0000000000000000000000000000000000000000", True, sender=owner)
    assert not engine.venues(stranger)


def test_is_authorized__owner_and_operators_only(engine, trader, operator, stranger):
    engine.set_operator(3, operator, True, sender=trader)
    assert engine.is_authorized(acct(trader, 3), trader)
    assert engine.is_authorized(acct(trader, 3), operator)
    assert not engine.is_authorized(acct(trader, 0), operator)
    assert not engine.is_authorized(acct(trader, 3), stranger)
