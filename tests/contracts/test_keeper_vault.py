"""The keeper with vault shares as collateral: its float scan prices them at the engine's
liquidation price (rate times the underlying's feed, capped), flags a slashed book and
liquidates it; an outage of the vault is not a blocked account."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import ETH, USDC, WAD, acct
from test_keeper import make_keeper

from offchain_risk import devnet
from offchain_risk.keeper.rpc import Contracts
from offchain_risk.keeper.store import Store


@pytest.fixture(scope="session")
def bot(accounts):
    return accounts[4]


@pytest.fixture
def contracts(project, chain, deployment):
    d = deployment
    return Contracts.from_project(
        project, chain.provider.web3, d.engine.address, d.liquidations.address, d.lens.address
    )


@pytest.fixture
def vault_book(project, deployment, owner, weth, engine, trade, trader, maker, fund, usdc, bot):
    """trader: 10 WETH of sWETH shares and short 10 ETH; the keeper's bot holds cash."""
    d = dataclasses.replace(
        deployment,
        tokens=dict(deployment.tokens),
        feeds=dict(deployment.feeds),
        symbols=dict(deployment.symbols),
    )
    asset = devnet.list_vault(
        project, d, owner, symbol="sWETH", underlying="ETH", vault_class="liquid_staking"
    )
    vault = d.tokens[asset]
    weth.mint(trader, 10 * WAD, sender=owner)
    weth.approve(vault, 10 * WAD, sender=trader)
    vault.deposit(10 * WAD, trader, sender=trader)
    vault.approve(engine, 10 * WAD, sender=trader)
    engine.deposit(acct(trader), vault, 10 * WAD, sender=trader)
    fund(maker, usdc, 1_000_000 * USDC)
    fund(bot, usdc, 1_000_000 * USDC)
    trade(ETH, 10 * WAD, 2_000)
    return asset, vault


def test_keeper__slashed_vault_shares__flagged_and_liquidated(
    contracts, engine, owner, bot, vault_book, trader, tmp_path
):
    asset, vault = vault_book
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot)
    first = keeper.tick()
    assert first.scan.confirmed == [] and first.actions == []
    vault.slash(vault.totalAssets() * 9 // 10, owner, sender=owner)
    a = acct(trader)
    held = engine.collateral(a, asset)
    tick = keeper.tick()
    assert [c.account for c in tick.scan.confirmed] == [a]
    assert {x.account for x in tick.sent()} == {a}
    assert engine.collateral(a, asset) < held
    assert engine.collateral(acct(bot), asset) == held - engine.collateral(a, asset)


def test_keeper__vault_outage__shares_at_zero_account_still_liquidated(
    contracts, engine, owner, bot, vault_book, trader, tmp_path
):
    """A reverting vault: the shares count at zero (the engine's liquidation price is 0),
    the short perp is priced, so the account is liquidatable and the keeper takes it."""
    asset, vault = vault_book
    keeper = make_keeper(contracts, Store(tmp_path / "k.db"), bot)
    keeper.tick()
    vault.set_mode(1, sender=owner)
    a = acct(trader)
    tick = keeper.tick()
    assert [c.account for c in tick.scan.confirmed] == [a]
    assert tick.scan.blocked == 0
    assert {x.account for x in tick.sent()} == {a}
    assert engine.collateral(a, asset) == 10 * WAD  # unpriced shares stay
    assert engine.position(a, ETH)[0] > -10 * WAD
