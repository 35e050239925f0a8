import ape
from conftest import ETH, WAD, acct


def test_set_operator__approves_for_one_sub_account(engine, trader, operator):
    tx = engine.set_operator(2, operator, True, sender=trader)
    assert engine.operators(acct(trader, 2), operator)
    assert not engine.operators(acct(trader, 0), operator)
    [event] = tx.events.filter(engine.OperatorSet)
    assert (event.account, event.operator, event.approved) == (acct(trader, 2), operator, True)


def test_set_operator__operator_signs_maker_orders(client, engine, funded, trader, maker, operator):
    engine.set_operator(0, operator, True, sender=maker)
    order = client.order(maker, ETH, WAD, 2000 * WAD, 1, 2**40)
    sig = client.sign(operator, order)  # signed by the operator, for the maker's account
    client.fill(order, sig, WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), ETH)[0] == WAD


def test_set_operator__operator_cannot_act_on_other_sub_account(
    engine, weth, trader, operator, fund
):
    fund(trader, weth, WAD, sub=1)
    engine.set_operator(0, operator, True, sender=trader)
    with ape.reverts("ledger: not owner or operator"):
        engine.withdraw(acct(trader, 1), weth, WAD, sender=operator)
    assert engine.collateral(acct(trader, 1), ETH) == WAD


def test_set_operator__zero_address__reverts(engine, trader):
    with ape.reverts("ledger: zero operator"):
        engine.set_operator(0, "0x0000000000000000000000000000000000000000", True, sender=trader)
