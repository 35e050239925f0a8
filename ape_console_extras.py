"""Names preloaded into `ape console` for Ballast.

After `ape run deploy` (with the same anvil still running), the console finds the manifest
(`deployments/local.json`, or the path in `$BALLAST_MANIFEST`), checks it against the chain
and loads the deployment by name: `d`, `engine`, `book`, `lens`, `liquidations`,
`governor`, `usdc`, the collateral tokens (`WETH`, `WBTC`, vault shares) and `feeds` by
symbol. Without one, `deploy()` lists the devnet market of `offchain_risk.devnet` in place.
`show` adds, per perp held in a market with funding, the rate in force, the cap and the
unsettled funding the position owes (in equity already); the rate of each vault share
held; and, with a quote feed, its price, peg rate and the IM term of the account's cash.

    $ make console                  # ape console --network ethereum:local:foundry, quietly
    In [1]: deposit(trader, "USDC", 50_000)    # mint and deposit into sub-account 0
    In [2]: open_position(trader, "ETH", -5)    # the desk signs, trader fills at the oracle
    In [3]: show(trader)                        # equity / MM / IM / health per asset
    In [4]: set_price("ETH", 1_600)             # push a mock oracle round
    In [5]: health_table()                      # every account, least healthy first
    In [6]: liquidate(trader)                   # the desk liquidates what the policy allows
    In [7]: greeks(legs, vol=0.6, by="venue")   # option legs' delta, gamma, vega, theta
    In [8]: calls = list_options("ETH", days=7, strikes=[2_200])  # option book, vol curve
    In [9]: trade_option(trader, calls[(2_200, "call")], -2, 40)  # sell 2 calls at $40
    In [10]: settle_options(trader)             # after expiry: record the price, pay out

`Engine`, `WAD` and `account_id` are there for direct calls on `d.engine`.

The helpers print for a person: amounts in USD (or token units) with separators, columns
aligned to the widest value. What they return has a one-line repr, so IPython's echo
adds a line, not a dump of WAD integers.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from offchain_risk import devnet
from offchain_risk.chain import WAD, AccountState, Engine, account_id, settlement_round
from offchain_risk.keeper.vol_signer import VolSigner
from offchain_risk.models.funding import FundingParams, MarketFunding, index_at, owed
from offchain_risk.models.margin import QuotePeg, peg_margin
from offchain_risk.units import DAY, QUOTE_ASSET

MANIFEST_ENV = "BALLAST_MANIFEST"
DEFAULT_MANIFEST = Path("deployments/local.json")


def usd(wad: int, places: int = 2) -> str:
    """A WAD amount of cash as dollars: ``-1,234.50``."""
    return f"{wad / WAD:,.{places}f}"


def short(address: Any) -> str:
    text = str(address)
    return f"{text[:6]}…{text[-4:]}"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Columns as wide as their widest cell, separated by two spaces; the first ``left``
    columns left-aligned, the numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def ratio(equity: int, mm: int) -> str:
    return "inf" if mm == 0 else f"{equity / mm:,.2f}"


class ShownState(AccountState):
    """An ``AccountState`` whose repr is one line (IPython echoes what ``show`` returns).

    Not a dataclass itself: `ape console` loads this file without registering it in
    ``sys.modules``, where ``@dataclass`` would look its annotations up."""

    symbols: tuple[str, ...] = ()  # asset id -> symbol, for the report
    notes: tuple[str, ...] = ()  # funding, vault-share rates, the quote's peg: after the legs

    @classmethod
    def of(
        cls, state: AccountState, symbols: tuple[str, ...], notes: tuple[str, ...] = ()
    ) -> ShownState:
        shown = cls(**{f.name: getattr(state, f.name) for f in fields(AccountState)})
        object.__setattr__(shown, "symbols", symbols)  # frozen, like the state it shows
        object.__setattr__(shown, "notes", notes)
        return shown

    def __repr__(self) -> str:
        return (
            f"<AccountState {short(self.owner)}/{self.sub_id}: equity {usd(self.equity)} "
            f"MM {usd(self.mm)} health {usd(self.health)} USD>"
        )

    def report(self) -> str:
        """The account and one line per asset, for a person."""
        name = lambda a: self.symbols[a] if a < len(self.symbols) else f"asset {a}"  # noqa: E731
        head = f"account {self.owner} / sub-account {self.sub_id}" + (
            "" if self.prices_ok else "  [a price is invalid]"
        )
        summary = table(
            ["", "cash", "equity", "MM", "IM", "health", "E/MM"],
            [
                [
                    "USD",
                    usd(self.cash),
                    usd(self.equity),
                    usd(self.mm),
                    usd(self.im),
                    usd(self.health),
                    ratio(self.equity, self.mm),
                ]
            ],
        )
        notes = "".join(f"\n{line}" for line in self.notes)
        if not self.assets:
            return f"{head}\n{summary}{notes}"
        legs = table(
            ["asset", "collateral", "perp size", "entry", "price (USD)", ""],
            [
                [
                    name(a.asset),
                    f"{a.collateral / WAD:,.4f}" if a.collateral else "-",
                    f"{a.size / WAD:+,.4f}" if a.size else "-",
                    usd(abs(a.open_notional) * WAD // abs(a.size)) if a.size else "-",
                    usd(a.price),
                    "" if a.price_ok else "invalid",
                ]
                for a in self.assets
            ],
        )
        return f"{head}\n{summary}\n{legs}{notes}"


class HealthRows(list):
    """``health_table``'s rows, (account id, Margin), least healthy first; one-line repr."""

    def __repr__(self) -> str:
        below = sum(1 for _, m in self if m.equity < m.mm)
        return f"<{len(self)} accounts, {below} below maintenance margin>"


class GreeksRows(list):
    """``greeks_table``'s rows (dicts, see ``GreeksReport.rows``); one-line repr."""

    def __repr__(self) -> str:
        delta = sum(r["delta_usd"] for r in self)
        vega = sum(r["vega"] for r in self) / 100
        return f"<{len(self)} Greek rows: delta {delta:,.0f} USD, vega {vega:,.0f} USD/vol pt>"


def greeks_table(
    legs: list[dict],
    forwards: dict[int, float],
    vol: Any,
    now: int,
    by: str = "account",
    names: dict[int, str] | None = None,
) -> GreeksRows:
    """Print the option legs' Greeks summed by ``by`` ("account" or "venue"), underlying
    and expiry: delta in USD, gamma per USD, vega per vol point, theta per day; return
    the rows. ``vol``: one vol for every leg, one per leg, or the feed's curves as
    ``{(underlying, expiry): (atm_vol, skew, curvature, forward)}``."""
    from offchain_risk.models.greeks import (
        OptionLegs,
        curve_vols,
        forwards_of,
        greeks_report,
        position_greeks,
    )

    option_legs = OptionLegs.from_records(legs)
    vols = curve_vols(option_legs, vol) if isinstance(vol, dict) else vol
    pos = position_greeks(option_legs, forwards_of(option_legs, forwards), vols, now)
    report = greeks_report(option_legs, pos, by)
    names = names or {}
    rows = GreeksRows(report.rows())

    def key(k: Any) -> str:
        return short(k) if isinstance(k, str) and k.startswith("0x") else str(k)

    print(
        table(
            [
                by,
                "underlying",
                "expiry (UTC)",
                "legs",
                "value",
                "delta USD",
                "gamma /USD",
                "vega /pt",
                "theta /day",
            ],
            [
                [
                    key(r[by]),
                    names.get(r["underlying"], str(r["underlying"])),
                    str(np.datetime64(r["expiry"], "s")).replace("T", " ")[:16],
                    str(r["n_legs"]),
                    f"{r['value']:,.2f}",
                    f"{r['delta_usd']:,.2f}",
                    f"{r['gamma']:,.6f}",
                    f"{r['vega'] / 100:,.2f}",
                    f"{r['theta'] / 365:,.2f}",
                ]
                for r in rows
            ],
            left=3,
        )
    )
    if report.expired:
        print(f"({report.expired} expired legs left out)")
    return rows


class ConsoleDeployment(devnet.Deployment):
    """A ``Deployment`` whose repr is one line."""

    def __repr__(self) -> str:
        return (
            f"<Ballast engine {self.engine.address}: "
            f"{len(self.symbols)} markets ({', '.join(self.symbols)})>"
        )


def _console(d: devnet.Deployment) -> ConsoleDeployment:
    return ConsoleDeployment(**{f.name: getattr(d, f.name) for f in fields(d)})


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
        d = _console(d)
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
        """Mint `amount` whole tokens of USDC / WETH / WBTC to `who` and deposit them; for
        vault shares (`list_vault`), `amount` of the underlying goes into the vault first
        and every share received is deposited."""
        d = _d()
        tokens = {"USDC": d.cash, **{t.symbol(): t for t in d.tokens.values()}}
        if symbol not in tokens:
            raise ValueError(f"unknown token {symbol!r}; listed: {sorted(tokens)}")
        token = tokens[symbol]
        vault = current.get("vaults", {}).get(symbol)
        if vault is not None:
            underlying = d.tokens[d.symbols[vault]]
            assets = int(amount * 10 ** underlying.decimals())
            underlying.mint(who, assets, sender=owner)
            underlying.approve(token, assets, sender=who)
            before = token.balanceOf(who)
            token.deposit(assets, who, sender=who)
            units = token.balanceOf(who) - before
        else:
            units = int(amount * 10 ** token.decimals())
            token.mint(who, units, sender=owner)
        token.approve(d.engine, units, sender=who)
        d.engine.deposit(account_id(str(who), sub), token, units, sender=who)

    def list_vault(
        symbol: str = "sWETH", underlying: str = "ETH", vault_class: str = "liquid_staking"
    ) -> int:
        """Deploy a snekmate ERC-4626 vault over `underlying`'s token and list its shares
        as collateral (class haircut and rate cap: `devnet.VAULT_CLASSES`); returns the
        asset id. `fund(who, symbol, amount)` then deposits through the vault."""
        d = _d()
        asset = devnet.list_vault(
            project, d, owner, symbol=symbol, underlying=underlying, vault_class=vault_class
        )
        current.setdefault("vaults", {})[symbol] = underlying
        names[symbol] = d.tokens[asset]
        names["feeds"][symbol] = d.feeds[asset]
        return asset

    def vault_rate(symbol: str) -> tuple[float, float]:
        """(rate, cap) of a listed vault share, underlying per share: the rate its price
        uses (0: the vault reverts, answers zero or jumped beyond its cap) and the cap."""
        d = _d()
        asset = d.symbols[symbol]
        rate, cap = d.engine.vault_rate(asset) / WAD, d.engine.vault_cap(asset) / WAD
        print(f"{symbol}: rate {rate:.6f}, cap {cap:.6f} (underlying per share)")
        return rate, cap

    def _oracle(symbol: str) -> float:
        price, ok = _d().engine.price(_d().symbols[symbol])
        if not ok:
            raise RuntimeError(f"{symbol}: the oracle price is invalid (stale or non-positive)")
        return price / WAD

    def greeks(legs: list[dict], vol: Any, by: str = "account") -> GreeksRows:
        """Print the Greeks of option legs (dicts: account, venue, underlying symbol,
        expiry, strike, is_call, size) at the oracle prices and the head block's time;
        ``vol`` as for ``greeks_table``."""
        from ape import chain as ape_chain

        d = _d()
        rows = [{**leg, "underlying": d.symbols[leg["underlying"]]} for leg in legs]
        ids = {d.symbols[leg["underlying"]]: leg["underlying"] for leg in legs}
        forwards = {a: _oracle(symbol) for a, symbol in ids.items()}
        return greeks_table(rows, forwards, vol, ape_chain.blocks.head.timestamp, by, ids)

    def trade(
        who: Any, symbol: str | int, size: float, price: float | None = None, sub: int = 0
    ) -> Any:
        """`who` takes `size` (signed, whole units) of the perp (or, given an instrument id,
        the option) from the desk's signed order at `price` (default: the oracle price)."""
        d = _d()
        if "desk_funded" not in current and d.engine.cash(account_id(str(desk), 0)) == 0:
            fund(desk, "USDC", 10_000_000)
        current["desk_funded"] = True
        client = Engine(d.engine, d.book, d.lens)
        wad = int(size * WAD)
        market = symbol if isinstance(symbol, int) else d.symbols[symbol]
        px = int((price if price is not None else _oracle(symbol)) * WAD)
        order = client.order(desk, market, -wad, px, next(nonces), 2**40)
        return client.fill(
            order, client.sign(desk, order), abs(wad), account_id(str(who), sub), sender=who
        )

    def _option_book() -> Any:
        """The deployment's option book: the one installed on the engine (a deploy config's
        `[options]`), its curves signed by the vol feed's signers among this node's test
        accounts; else, on first use, a vol feed (test accounts 4 and 5 sign, 2 of 2) and an
        OptionBook installed on the engine, every market on a grid (strike step 1% of its
        price, vol shock 15 points at 30 days, short minimum 50 bps)."""
        if "options" not in current and int(_d().engine.option_book(), 16) != 0:
            book = project.OptionBook.at(_d().engine.option_book())
            feed = project.VolFeed.at(book.vol_feed())
            test_accounts = getattr(accounts, "test_accounts", accounts)
            signers = sorted(
                (a for a in test_accounts if feed.is_signer(a)), key=lambda a: int(str(a), 16)
            )
            if len(signers) < feed.threshold():
                raise RuntimeError(
                    f"the installed vol feed {feed.address} needs {feed.threshold()} of its "
                    "signers, which are not this node's test accounts: sign its curves with "
                    "their keys (offchain_risk.keeper.vol_signer.VolSigner)"
                )
            current["options"] = book, VolSigner(feed, signers[: feed.threshold()], owner)
            names.update(options=book, vol_feed=feed)
        if "options" not in current:
            d = _d()
            signers = sorted(
                getattr(accounts, "test_accounts", accounts)[4:6], key=lambda a: int(str(a), 16)
            )
            heartbeats = {a: 86_400 for a in d.symbols.values()}
            feed = devnet.deploy_vol_feed(project, owner, signers, 2, heartbeats)
            grids = {
                a: (max(int(_oracle(s) / 100), 1) * WAD, 15 * WAD // 100, 50)
                for s, a in d.symbols.items()
            }
            book = devnet.deploy_option_book(project, d, owner, feed, grids)
            current["options"] = book, VolSigner(feed, signers, owner)
            names.update(options=book, vol_feed=feed)
        return current["options"]

    def list_options(
        symbol: str, days: int, strikes: list[float], vol: float = 0.6
    ) -> dict[tuple[float, str], int]:
        """List a call and a put at each of `strikes` (USD, on the market's grid) expiring at
        08:00 UTC `days` ahead, publish a flat `vol` curve for that expiry at the oracle
        price, and return their instrument ids by (strike, "call" / "put")."""
        from ape import chain as ape_chain

        from offchain_risk.keeper.vol_signer import EXPIRY_TIME, VolCurve

        book, signer = _option_book()
        asset = _d().symbols[symbol]
        expiry = (ape_chain.blocks.head.timestamp // DAY + days) * DAY + EXPIRY_TIME
        signer.publish(VolCurve(asset, expiry, int(vol * WAD), 0, 0, int(_oracle(symbol) * WAD)))
        book.set_oi_cap(asset, expiry, 2**200, sender=owner)
        ids = {}
        for strike in strikes:
            for kind in ("call", "put"):
                id = book.instrument_id(asset, expiry, int(strike * WAD), kind == "call")
                if not book.listed(id):
                    book.list_option(asset, expiry, int(strike * WAD), kind == "call", sender=owner)
                ids[(strike, kind)] = id
        print(f"{symbol} options expiring {expiry} (unix, 08:00 UTC): {len(ids)} listed")
        return ids

    def settle_options(who: Any, sub: int = 0) -> Any:
        """Record the settlement price of every expired expiry `who` holds (the answer of the
        underlying feed's first valid round at or after expiry, once) and settle its expired
        legs to cash."""
        book, _ = _option_book()
        target = account_id(str(who), sub)
        for id in book.account_legs(target):
            i = book.instrument(id)
            if book.settlement_price(i.underlying, i.expiry) == 0:
                feed = _d().feeds[i.underlying]
                round_id = settlement_round(feed, i.expiry)
                book.record_settlement(i.underlying, i.expiry, round_id, sender=desk)
        before = _d().engine.cash(target)
        tx = book.settle_expired(target, sender=desk)
        print(f"settled to cash: {usd(_d().engine.cash(target) - before)} USD")
        return tx

    def state(who: Any, sub: int = 0) -> ShownState:
        """Print the sub-account's cash, equity, MM, IM and health (USD) and its legs;
        return the state (WAD ints; its repr is one line)."""
        d = _d()
        s = Engine(d.engine, lens=d.lens).state(account_id(str(who), sub))
        symbols = [""] * (max(d.symbols.values(), default=-1) + 1)
        for symbol, asset in d.symbols.items():
            symbols[asset] = symbol
        shown = ShownState.of(s, tuple(symbols), _notes(d, s, symbols))
        print(shown.report())
        return shown

    def _notes(d: devnet.Deployment, s: AccountState, symbols: list[str]) -> tuple[str, ...]:
        """Per perp held where funding is on: the rate in force and the cap (% of the price
        per hour) and the funding owed since the position's snapshot (USD; negative: is
        owed to it; counted in equity, settled into cash at the next touch). The rate of
        each vault share held (underlying per share, and its cap), and with a quote feed
        its price, peg rate and the IM term of the cash."""
        out = []
        vaults = current.get("vaults", {})
        now = d.engine.provider.get_block("latest").timestamp
        for a in s.assets:
            symbol = symbols[a.asset] if a.asset < len(symbols) else ""
            params = FundingParams.unpack(d.engine.funding_params(a.asset))
            word = d.engine.funding_word(a.asset)
            if a.size and (params.cap or word):
                index = index_at(word, a.price, now)
                due = owed(a.size, index, d.engine.funding_snap(s.account, a.asset))
                rate = MarketFunding(funding_word=word).rate
                out.append(
                    f"{symbol} funding: {rate / WAD:+.5%}/h (cap {params.cap / WAD:.4%}/h), "
                    f"owes {usd(due)} USD unsettled"
                )
            if symbol in vaults:
                rate, cap = d.engine.vault_rate(a.asset), d.engine.vault_cap(a.asset)
                out.append(
                    f"{symbol}: {rate / WAD:,.6f} {vaults[symbol]} per share (cap "
                    f"{cap / WAD:,.6f})"
                    + ("" if rate else ": no rate (the vault reverts, answers 0 or jumped)")
                )
        quote = d.lens.asset_config(QUOTE_ASSET)
        if int(str(quote.feed), 16):
            q, ok = d.engine.price(QUOTE_ASSET)
            term = peg_margin(np.array([s.cash], dtype=object), QuotePeg(q, quote.floor_bps))
            out.append(
                f"quote: {q / WAD:,.4f} USD" + ("" if ok else " (invalid)")
                + f", peg rate {quote.floor_bps} bps, IM peg term {usd(int(term[0]))} USD"
            )  # fmt: skip
        return tuple(out)

    def set_price(symbol: str, price: float) -> None:
        """Push a mock oracle round for `symbol` (the deployer is the feeder)."""
        _d().set_price(symbol, price, owner)

    def health_table(limit: int = 50) -> HealthRows:
        """Print every account that ever held a balance, least healthy first (from the
        engine's AccountState logs and its batched `healths` view), amounts in USD; return
        the rows (account id, Margin)."""
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
        lines = []
        for account, m in rows[:limit]:
            who = "insurance fund" if account == 0 else f"0x{account >> 96:040x}"
            lines.append(
                [
                    who,
                    str(account & (2**96 - 1)),
                    usd(m.equity),
                    usd(m.mm),
                    usd(m.im),
                    usd(m.equity - m.mm),
                    ratio(m.equity, m.mm),
                    "" if m.prices_ok else "price invalid",
                ]
            )
        header = ["owner", "sub", "equity", "MM", "IM", "health", "E/MM", ""]
        print(f"{len(rows)} accounts, least healthy first (USD)")
        print(table(header, lines))
        if len(rows) > limit:
            print(f"... {len(rows) - limit} more: health_table(limit={len(rows)})")
        return HealthRows(rows)

    def liquidate(who: Any, sub: int = 0, fraction: float = 1.0) -> Any:
        """The desk liquidates up to `fraction` of `who`'s sub-account (clamped on-chain);
        prints the preview first. An account at or above MM is left alone (None)."""
        d = _d()
        target = account_id(str(who), sub)
        m = d.engine.healths([target])[0]
        if m.prices_ok and m.equity >= m.mm:
            print(f"health {usd(m.equity - m.mm)} USD: at or above MM, nothing to liquidate")
            return None
        p = d.liquidations.liquidation_preview(target, int(fraction * WAD))
        print(
            f"fraction {p.fraction / WAD:.2%} (allowed {p.allowed / WAD:.2%}), "
            f"discount {p.discount / WAD:.2%}, penalty {usd(p.penalty)} USD, "
            f"health after {usd(p.health_after)} USD"
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
        greeks=greeks,
        greeks_table=greeks_table,
        list_vault=list_vault,
        vault_rate=vault_rate,
        list_options=list_options,
        trade_option=trade,
        settle_options=settle_options,
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
            current["vaults"] = {s: v["underlying"] for s, v in manifest.get("vaults", {}).items()}
            _publish(d, project.RiskGovernor.at(gov) if gov else None, manifest["block"])
        print(f"Ballast: {message}")
    return names
