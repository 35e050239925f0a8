"""Names preloaded into `ape console` for Ballast.

    $ ape console --network ethereum:local:foundry
    In [1]: d = deploy()                       # engine, tokens, feeds on this devnet
    In [2]: fund(trader, "USDC", 50_000)       # mint and deposit into sub-account 0
    In [3]: trade(trader, "ETH", -5, 2_000)    # trader sells 5 ETH-PERP to the desk
    In [4]: state(trader)                      # equity / MM / IM / health
    In [5]: d.set_price("ETH", 1_600, owner)   # move the oracle, then state(trader) again
    In [6]: liquidate(trader)                  # the desk liquidates what the policy allows

`deploy()` lists the devnet market of `offchain_risk.devnet`; `Engine`, `WAD` and
`account_id` are there for direct calls on `d.engine`.
"""

from __future__ import annotations

from typing import Any

from offchain_risk import devnet
from offchain_risk.chain import WAD, AccountState, Engine, account_id


def ape_init_extras(accounts: Any, project: Any) -> dict[str, Any]:
    # `ape console` passes the AccountManager; tests pass its test accounts directly.
    owner, desk, trader, maker = getattr(accounts, "test_accounts", accounts)[:4]
    current: dict[str, devnet.Deployment] = {}
    nonces = iter(range(1, 2**64))

    def deploy() -> devnet.Deployment:
        """Deploy a fresh devnet market (owner = test account 0); the desk gets 10M USDC."""
        current["d"] = devnet.deploy(project, owner)
        fund(desk, "USDC", 10_000_000)
        return current["d"]

    def _d() -> devnet.Deployment:
        if "d" not in current:
            raise RuntimeError("call deploy() first")
        return current["d"]

    def fund(who: Any, symbol: str, amount: float, sub: int = 0) -> None:
        """Mint `amount` whole tokens of USDC / WETH / WBTC to `who` and deposit them."""
        d = _d()
        tokens = {"USDC": d.cash, **{t.symbol(): t for t in d.tokens.values()}}
        token = tokens[symbol]
        units = int(amount * 10 ** token.decimals())
        token.mint(who, units, sender=owner)
        token.approve(d.engine, units, sender=who)
        d.engine.deposit(account_id(str(who), sub), token, units, sender=who)

    def trade(who: Any, symbol: str, size: float, price: float, sub: int = 0) -> Any:
        """`who` takes `size` (signed, whole units) of the perp from the desk at `price`."""
        d = _d()
        client = Engine(d.engine, d.book, d.lens)
        wad = int(size * WAD)
        order = client.order(desk, d.symbols[symbol], -wad, int(price * WAD), next(nonces), 2**40)
        return client.fill(
            order, client.sign(desk, order), abs(wad), account_id(str(who), sub), sender=who
        )

    def state(who: Any, sub: int = 0) -> AccountState:
        s = Engine(_d().engine, lens=_d().lens).state(account_id(str(who), sub))
        print(s.summary())
        return s

    def liquidate(who: Any, sub: int = 0, fraction: float = 1.0) -> Any:
        """The desk liquidates up to `fraction` of `who`'s sub-account (clamped on-chain);
        prints the preview first."""
        d = _d()
        target = account_id(str(who), sub)
        p = d.liquidations.liquidation_preview(target, int(fraction * WAD))
        print(
            f"fraction {p.fraction / WAD:.2%} (allowed {p.allowed / WAD:.2%}), "
            f"discount {p.discount / WAD:.2%}, penalty {p.penalty / WAD:,.2f}, "
            f"health after {p.health_after / WAD:,.2f}"
        )
        return d.liquidations.liquidate(
            target, account_id(str(desk), 0), int(fraction * WAD), 2**255 - 1, sender=desk
        )

    return {
        "deploy": deploy,
        "liquidate": liquidate,
        "fund": fund,
        "trade": trade,
        "state": state,
        "owner": owner,
        "desk": desk,
        "trader": trader,
        "maker": maker,
        "Engine": Engine,
        "WAD": WAD,
        "account_id": account_id,
    }
