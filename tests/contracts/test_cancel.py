import ape
from conftest import WAD, acct


def test_cancel__marks_nonce_dead(book, maker):
    tx = book.cancel(acct(maker), 42, sender=maker)
    assert book.filled(acct(maker), 42) == 2**256 - 1
    [event] = tx.events.filter(book.OrderCancelled)
    assert (event.account, event.nonce) == (acct(maker), 42)


def test_cancel__partially_filled_order__stops_the_rest(
    client, engine, book, funded, maker, trader
):
    order = client.order(maker, 0, 10 * WAD, 2000 * WAD, 5, 2**40)
    sig = client.sign(maker, order)
    client.fill(order, sig, 3 * WAD, acct(trader), sender=trader)
    book.cancel(acct(maker), 5, sender=maker)
    with ape.reverts("trading: nonce cancelled"):
        client.fill(order, sig, WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), 0)[0] == 3 * WAD


def test_cancel__by_operator__allowed(engine, book, maker, operator):
    engine.set_operator(0, operator, True, sender=maker)
    book.cancel(acct(maker), 1, sender=operator)
    assert book.filled(acct(maker), 1) == 2**256 - 1


def test_cancel__twice__reverts(book, maker):
    book.cancel(acct(maker), 1, sender=maker)
    with ape.reverts("trading: nonce cancelled"):
        book.cancel(acct(maker), 1, sender=maker)


def test_cancel__stranger__reverts(book, maker, stranger):
    with ape.reverts("ledger: not owner or operator"):
        book.cancel(acct(maker), 1, sender=stranger)
    assert book.filled(acct(maker), 1) == 0
