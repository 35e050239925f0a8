import ape
from conftest import WAD, acct


def test_cancel__marks_nonce_dead(engine, maker):
    tx = engine.cancel(acct(maker), 42, sender=maker)
    assert engine.filled(acct(maker), 42) == 2**256 - 1
    [event] = tx.events.filter(engine.OrderCancelled)
    assert (event.account, event.nonce) == (acct(maker), 42)


def test_cancel__partially_filled_order__stops_the_rest(client, engine, funded, maker, trader):
    order = client.order(maker, 0, 10 * WAD, 2000 * WAD, 5, 2**40)
    sig = client.sign(maker, order)
    client.fill(order, sig, 3 * WAD, acct(trader), sender=trader)
    engine.cancel(acct(maker), 5, sender=maker)
    with ape.reverts("trading: nonce cancelled"):
        client.fill(order, sig, WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), 0)[0] == 3 * WAD


def test_cancel__by_operator__allowed(engine, maker, operator):
    engine.set_operator(0, operator, True, sender=maker)
    engine.cancel(acct(maker), 1, sender=operator)
    assert engine.filled(acct(maker), 1) == 2**256 - 1


def test_cancel__twice__reverts(engine, maker):
    engine.cancel(acct(maker), 1, sender=maker)
    with ape.reverts("trading: nonce cancelled"):
        engine.cancel(acct(maker), 1, sender=maker)


def test_cancel__stranger__reverts(engine, maker, stranger):
    with ape.reverts("ledger: not owner or operator"):
        engine.cancel(acct(maker), 1, sender=stranger)
    assert engine.filled(acct(maker), 1) == 0
