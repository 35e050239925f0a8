import ape
import pytest
from conftest import BTC, ETH, USDC, WAD, acct

CASH = 2**256 - 1


def test_deposit__cash_six_decimals__credits_wad(lens, engine, usdc, trader, fund):
    fund(trader, usdc, 1_234 * USDC, deposit=False)
    tx = engine.deposit(acct(trader), usdc, 1_234 * USDC, sender=trader)
    assert engine.cash(acct(trader)) == 1_234 * WAD
    assert usdc.balanceOf(engine) == 1_234 * USDC
    assert usdc.balanceOf(trader) == 0
    assert lens.tokens(usdc).total == 1_234 * WAD
    assert engine.account_assets(acct(trader)) == 0  # cash needs no asset bit
    [state] = tx.events.filter(engine.AccountState)
    assert (state.account, state.asset, state.cash) == (acct(trader), CASH, 1_234 * WAD)


@pytest.mark.parametrize("asset,amount,wad", [(ETH, 3 * WAD, 3 * WAD), (BTC, 25 * 10**6, WAD // 4)])
def test_deposit__collateral__normalised_to_wad(
    engine, deployment, trader, fund, asset, amount, wad
):
    token = deployment.tokens[asset]
    fund(trader, token, amount)
    assert engine.collateral(acct(trader), asset) == wad
    assert engine.account_assets(acct(trader)) == 1 << (2 * asset)
    assert token.balanceOf(engine) == amount
    assert engine.equity(acct(trader)) > 0


def test_deposit__by_operator__pulls_from_operator(engine, weth, trader, operator, fund):
    engine.set_operator(0, operator, True, sender=trader)
    fund(operator, weth, WAD, deposit=False)
    engine.deposit(acct(trader), weth, WAD, sender=operator)
    assert engine.collateral(acct(trader), ETH) == WAD
    assert weth.balanceOf(operator) == 0


def test_deposit__into_own_sub_account__isolated(engine, weth, trader, fund):
    fund(trader, weth, 2 * WAD, sub=7)
    assert engine.collateral(acct(trader, 7), ETH) == 2 * WAD
    assert engine.collateral(acct(trader, 0), ETH) == 0


def test_deposit__stale_feed__refused(engine, weth, feeds, trader, owner, fund, snapshot):
    """Collateral whose own feed is invalid would count at zero in a liquidation and could
    only shield the account (see test_liquidation_findings)."""
    feeds[ETH].set_round(2000 * 10**8, 1, 5, 5, sender=owner)
    fund(trader, weth, WAD, deposit=False)
    _rejects(engine, snapshot, trader, weth, WAD, "oracle: invalid price")


def _rejects(engine, snapshot, who, token, amount, message, account=None, sender=None):
    before = snapshot(who, tokens=(token,))
    with ape.reverts(message):
        engine.deposit(account or acct(who), token, amount, sender=sender or who)
    assert snapshot(who, tokens=(token,)) == before


def test_deposit__zero_amount__reverts(engine, weth, trader, fund, snapshot):
    fund(trader, weth, WAD, deposit=False)
    _rejects(engine, snapshot, trader, weth, 0, "ledger: zero amount")


def test_deposit__unlisted_token__reverts(engine, project, owner, trader, snapshot):
    other = project.MockToken.deploy("Other", "OTH", 18, sender=owner)
    other.mint(trader, WAD, sender=owner)
    other.approve(engine, WAD, sender=trader)
    _rejects(engine, snapshot, trader, other, WAD, "ledger: token not listed")


def test_deposit__asset_cap_exceeded__reverts(engine, weth, owner, trader, fund, snapshot):
    engine.set_caps(weth, 5 * WAD, 100 * WAD, sender=owner)
    fund(trader, weth, 4 * WAD)
    fund(trader, weth, 2 * WAD, deposit=False)
    _rejects(engine, snapshot, trader, weth, 2 * WAD, "ledger: deposit cap exceeded")


def test_deposit__account_cap_exceeded__reverts(engine, usdc, owner, trader, fund, snapshot):
    engine.set_caps(usdc, 10**9 * WAD, 1_000 * WAD, sender=owner)
    fund(trader, usdc, 1_001 * USDC, deposit=False)
    _rejects(engine, snapshot, trader, usdc, 1_001 * USDC, "ledger: account cap exceeded")


def test_deposit__stranger__reverts(engine, weth, trader, stranger, fund, snapshot):
    fund(stranger, weth, WAD, deposit=False)
    _rejects(
        engine,
        snapshot,
        stranger,
        weth,
        WAD,
        "ledger: not owner or operator",
        account=acct(trader),
    )


def _list_hostile(project, engine, feeds, owner, mode, decimals=18):
    token = project.HostileToken.deploy(mode, decimals, sender=owner)
    engine.list_asset(token, feeds[ETH], 86_400, 100, 0, 10**30, 10**30, False, 0, sender=owner)
    return token


def test_deposit__fee_on_transfer_token__reverts(project, engine, feeds, owner, trader, snapshot):
    token = _list_hostile(project, engine, feeds, owner, mode=1)
    token.mint(trader, 100 * WAD, sender=owner)
    token.approve(engine, 100 * WAD, sender=trader)
    _rejects(engine, snapshot, trader, token, 100 * WAD, "ledger: received amount differs")


def test_deposit__token_returning_false__reverts(project, engine, feeds, owner, trader, snapshot):
    token = _list_hostile(project, engine, feeds, owner, mode=2)
    token.mint(trader, 100 * WAD, sender=owner)
    token.approve(engine, 100 * WAD, sender=trader)
    _rejects(engine, snapshot, trader, token, 100 * WAD, "ledger: transfer failed")


def test_deposit__more_than_18_decimals__exact_or_refused(
    lens, project, engine, feeds, owner, trader, snapshot
):
    token = project.MockToken.deploy("Fine", "FINE", 24, sender=owner)
    engine.list_asset(token, feeds[ETH], 86_400, 100, 0, 10**30, 10**30, False, 0, sender=owner)
    token.mint(trader, 3 * 10**24 + 1, sender=owner)
    token.approve(engine, 3 * 10**24 + 1, sender=trader)
    _rejects(engine, snapshot, trader, token, 10**24 + 1, "ledger: amount below precision")
    engine.deposit(acct(trader), token, 3 * 10**24, sender=trader)
    asset = lens.tokens(token).asset
    assert engine.collateral(acct(trader), asset) == 3 * WAD
