"""Names preloaded into `ape console` for Ballast.

After `ape run deploy` (with the same anvil still running), the console finds the manifest
(`deployments/local.json`, or the path in `$BALLAST_MANIFEST`), checks it against the chain
and loads the deployment by name: `d`, `engine`, `book`, `lens`, `liquidations`,
`governor`, `usdc`, the collateral tokens (`WETH`, `WBTC`) and `feeds` by symbol.
Without one, `deploy()` lists the devnet market of `offchain_risk.devnet` in place.

    $ ape console --network ethereum:local:foundry
    In [1]: deposit(trader, "USDC", 50_000)    # mint and deposit into sub-account 0
    In [2]: open_position(trader, "ETH", -5)    # the desk signs, trader fills at the oracle
    In [3]: show(trader)                        # equity / MM / IM / health per asset
    In [4]: set_price("ETH", 1_600)             # push a mock oracle round
    In [5]: health_table()                      # every account, least healthy first
    In [6]: liquidate(trader)                   # the desk liquidates what the policy allows

`Engine`, `WAD` and `account_id` are there for direct calls on `d.engine`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from offchain_risk import devnet
from offchain_risk.chain import WAD, AccountState, Engine, account_id

MANIFEST_ENV = "BALLAST_MANIFEST"
DEFAULT_MANIFEST = Path("deployments/local.json")


def _load_manifest(project: Any, chain: Any) -> tuple[dict | None, str]:
    """(manifest, message): the manifest when it matches the connected chain."""
    from offchain_risk import deploy

    path = Path(os.environ.get(MANIFEST_ENV) or DEFAULT_MANIFEST)
    if not path.is_file():
        return None, f"no manifest at {path}: deploy() lists a devnet market here"
    try:
        manifest = deploy.load_manifest(path)
        problems = deploy.check_manifest(manifest, project, chain.chain_id)
    except Exception as exc:  # a stale or foreign file must not break the console
        return None, f"{path} not loaded: {exc}"
    if problems:
        return None, f"{path} does not match this chain ({problems[0]}): deploy() to start over"
    return manifest, f"loaded {path} (block {manifest['block']})"


def ape_init_extras(accounts: Any, project: Any, chain: Any = None) -> dict[str, Any]:
    # `ape console` passes the AccountManager; tests pass its test accounts directly.
    owner, desk, trader, maker = getattr(accounts, "test_accounts", accounts)[:4]
    current: dict[str, Any] = {}
    nonces = iter(range(1, 2**64))
    names: dict[str, Any] = {}

    def _publish(d: devnet.Deployment, governor: Any = None, start_block: int = 0) -> None:
        current["d"], current["start"] = d, start_block
        names.update(
            d=d,
            engine=d.engine,
            book=d.book,
            lens=d.lens,
            liquidations=d.liquidations,
            governor=governor,
            usdc=d.cash,
            feeds={s: d.feeds[a] for s, a in d.symbols.items()},
        )
        for token in d.tokens.values():
            names[token.symbol()] = token

    def deploy() -> devnet.Deployment:
        """Deploy a fresh devnet market (owner = test account 0); the desk gets 10M USDC."""
        from ape import chain as ape_chain

        start = ape_chain.blocks.head.number
        _publish(devnet.deploy(project, owner), start_block=start)
        fund(desk, "USDC", 10_000_000)
        return current["d"]

    def _d() -> devnet.Deployment:
        if "d" not in current:
            raise RuntimeError("no deployment loaded: run `ape run deploy` or call deploy()")
        return current["d"]

    def fund(who: Any, symbol: str, amount: float, sub: int = 0) -> None:
        """Mint `amount` whole tokens of USDC / WETH / WBTC to `who` and deposit them."""
        d = _d()
        tokens = {"USDC": d.cash, **{t.symbol(): t for t in d.tokens.values()}}
        if symbol not in tokens:
            raise ValueError(f"unknown token {symbol!r}; listed: {sorted(tokens)}")
        token = tokens[symbol]
        units = int(amount * 10 ** token.decimals())
        token.mint(who, units, sender=owner)
        token.approve(d.engine, units, sender=who)
        d.engine.deposit(account_id(str(who), sub), token, units, sender=who)

    def _oracle(symbol: str) -> float:
        price, ok = _d().engine.price(_d().symbols[symbol])
        if not ok:
            raise RuntimeError(f"{symbol}: the oracle price is invalid (stale or non-positive)")
        return price / WAD

    def trade(who: Any, symbol: str, size: float, price: float | None = None, sub: int = 0) -> Any:
        """`who` takes `size` (signed, whole units) of the perp from the desk's signed order
        at `price` (default: the oracle price)."""
        d = _d()
        if "desk_funded" not in current and d.engine.cash(account_id(str(desk), 0)) == 0:
            fund(desk, "USDC", 10_000_000)
        current["desk_funded"] = True
        client = Engine(d.engine, d.book, d.lens)
        wad = int(size * WAD)
        px = int((price if price is not None else _oracle(symbol)) * WAD)
        order = client.order(desk, d.symbols[symbol], -wad, px, next(nonces), 2**40)
        return client.fill(
            order, client.sign(desk, order), abs(wad), account_id(str(who), sub), sender=who
        )

    def state(who: Any, sub: int = 0) -> AccountState:
        """Print and return the sub-account's equity, MM, IM, health and positions."""
        s = Engine(_d().engine, lens=_d().lens).state(account_id(str(who), sub))
        print(s.summary())
        return s

    def set_price(symbol: str, price: float) -> None:
        """Push a mock oracle round for `symbol` (the deployer is the feeder)."""
        _d().set_price(symbol, price, owner)

    def health_table(limit: int = 50) -> list[tuple[int, Any]]:
        """Every account that ever held a balance, least healthy first (from the engine's
        AccountState logs and its batched `healths` view)."""
        from ape import chain as ape_chain

        d = _d()
        head = ape_chain.blocks.head.number
        seen = dict.fromkeys(
            int(log.account) for log in d.engine.AccountState.range(current["start"], head + 1)
        )
        ids = list(seen)
        rows = []
        for i in range(0, len(ids), 100):
            part = ids[i : i + 100]
            rows.extend(zip(part, d.engine.healths(part), strict=True))
        rows.sort(key=lambda r: r[1].equity - r[1].mm)
        print(f"{'owner':<44}{'sub':>5}{'equity':>14}{'MM':>12}{'IM':>12}{'health':>14}{'E/MM':>7}")
        for account, m in rows[:limit]:
            who = "insurance fund" if account == 0 else f"0x{account >> 96:040x}"
            ratio = "inf" if m.mm == 0 else f"{m.equity / m.mm:.2f}"
            print(
                f"{who:<44}{account & (2**96 - 1):>5}{m.equity / WAD:>14,.0f}{m.mm / WAD:>12,.0f}"
                f"{m.im / WAD:>12,.0f}{(m.equity - m.mm) / WAD:>14,.0f}{ratio:>7}"
                + ("" if m.prices_ok else "  price invalid")
            )
        return rows

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

    names.update(
        deploy=deploy,
        liquidate=liquidate,
        fund=fund,
        deposit=fund,
        trade=trade,
        open_position=trade,
        state=state,
        show=state,
        set_price=set_price,
        health_table=health_table,
        owner=owner,
        desk=desk,
        trader=trader,
        maker=maker,
        Engine=Engine,
        WAD=WAD,
        account_id=account_id,
    )
    if chain is not None:
        from offchain_risk import deploy as deploy_module

        manifest, message = _load_manifest(project, chain)
        if manifest is not None:
            d = deploy_module.load_deployment(project, manifest)
            gov = manifest["contracts"].get("governor")
            _publish(d, project.RiskGovernor.at(gov) if gov else None, manifest["block"])
        print(f"Ballast: {message}")
    return names
