import ape
from conftest import ETH, USDC, WAD, acct


def test_transfer__between_sub_accounts__moves_collateral(lens, engine, weth, trader, fund):
    fund(trader, weth, 3 * WAD)
    tx = engine.transfer(acct(trader, 0), acct(trader, 1), weth, WAD, sender=trader)
    assert engine.collateral(acct(trader, 0), ETH) == 2 * WAD
    assert engine.collateral(acct(trader, 1), ETH) == WAD
    assert lens.tokens(weth).total == 3 * WAD  # nothing left the engine
    assert len(tx.events.filter(engine.AccountState)) == 2


def test_transfer__cash__isolates_margin(engine, usdc, funded, trade, trader):
    engine.transfer(acct(trader, 0), acct(trader, 3), usdc, 40_000 * USDC, sender=trader)
    assert engine.cash(acct(trader, 3)) == 40_000 * WAD
    trade(ETH, 10 * WAD, 2000)  # the short sits in sub-account 0 only
    assert engine.margin(acct(trader, 3)) == (40_000 * WAD, 0, 0)  # its own cash, no risk
    assert engine.margin(acct(trader, 0))[1] > 0


def test_transfer__different_owners__reverts(engine, weth, trader, maker, fund, snapshot):
    fund(trader, weth, WAD)
    before = snapshot(trader, maker)
    with ape.reverts("ledger: different owners"):
        engine.transfer(acct(trader), acct(maker), weth, WAD, sender=trader)
    assert snapshot(trader, maker) == before


def test_transfer__same_account__reverts(engine, weth, trader, fund, snapshot):
    fund(trader, weth, WAD)
    before = snapshot(trader)
    with ape.reverts("ledger: same account"):
        engine.transfer(acct(trader), acct(trader), weth, WAD, sender=trader)
    assert snapshot(trader) == before


def test_transfer__leaving_source_below_im__reverts(engine, usdc, funded, trade, trader, snapshot):
    trade(ETH, 10 * WAD, 2000)
    before = snapshot(trader)
    with ape.reverts("margin: below initial margin"):
        engine.transfer(acct(trader, 0), acct(trader, 1), usdc, 99_000 * USDC, sender=trader)
    assert snapshot(trader) == before
    assert engine.cash(acct(trader, 1)) == 0


def test_transfer__stranger__reverts(engine, weth, trader, stranger, fund, snapshot):
    fund(trader, weth, WAD)
    before = snapshot(trader)
    with ape.reverts("ledger: not owner or operator"):
        engine.transfer(acct(trader, 0), acct(trader, 1), weth, WAD, sender=stranger)
    assert snapshot(trader) == before


def test_transfer__sub_id_too_large__reverts(engine, weth, trader, fund):
    fund(trader, weth, WAD)
    with ape.reverts("ledger: sub-account id too large"):
        engine.account_id(trader, 2**96)


def test_transfer__above_destination_account_cap__reverts(
    engine, weth, owner, trader, fund, snapshot
):
    """Regression: transfer credited the destination without its per-account cap, so two
    capped deposits could be stacked in one sub-account."""
    engine.set_caps(weth, 10**6 * WAD, 10 * WAD, sender=owner)
    fund(trader, weth, 10 * WAD, sub=0)
    fund(trader, weth, 10 * WAD, sub=1)
    before = snapshot(trader)
    with ape.reverts("ledger: account cap exceeded"):
        engine.transfer(acct(trader, 1), acct(trader, 0), weth, WAD, sender=trader)
    assert snapshot(trader) == before
    assert engine.collateral(acct(trader, 1), ETH) == 10 * WAD
