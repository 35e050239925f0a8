"""Books of leveraged accounts for the keeper tests, built through the real order book."""

from __future__ import annotations

from conftest import ETH, USDC, WAD, acct

from offchain_risk.chain import Engine


def long_book(client, fund, usdc, maker, trader, owner, cash_usd, size_eth=10):
    """Sub-accounts 1..n of `trader`, each with `cash_usd[i]` USDC and long `size_eth` ETH
    at 2,000 bought from one maker order. Returns the account ids."""
    n = len(cash_usd)
    total = sum(int(c * USDC) for c in cash_usd)
    usdc.mint(trader, total, sender=owner)
    usdc.approve(client.contract, total, sender=trader)
    fund(maker, usdc, 10_000_000 * USDC)
    order = client.order(maker, ETH, -size_eth * n * WAD, 2_000 * WAD, 7, 2**40)
    sig = client.sign(maker, order)
    out = []
    for i, cash in enumerate(cash_usd, start=1):
        account = Engine.account_id(trader, i)
        client.contract.deposit(account, usdc, int(cash * USDC), sender=trader)
        client.fill(order, sig, size_eth * WAD, account, sender=trader)
        out.append(account)
    assert client.contract.position(acct(maker), ETH)[0] == -size_eth * n * WAD
    return out


def liquidatable(engine, accounts):
    return [a for a, m in zip(accounts, engine.healths(accounts), strict=True) if m.equity < m.mm]
