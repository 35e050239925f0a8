"""Exact gas of the engine's hot paths on a local anvil devnet.

Transactions are measured from receipts (`gas_used`); views with `eth_estimateGas`, which
includes the 21,000 intrinsic gas and calldata, so the execution share is printed beside
it. Gas is deterministic: the figures are exact for this bytecode and listing.

Listing: the devnet's four markets (ETH and BTC with WETH / WBTC collateral, SOL, LINK)
plus four perp-only markets (AVAX, DOGE, BNB, MATIC), all on 8-decimal mock feeds that
keep a round in one storage word, K = 16 scenarios on every asset.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offchain_risk import devnet
from offchain_risk.chain import Engine
from offchain_risk.units import DAY, HOUR

WAD = 10**18
USDC = 10**6
EXTRA = (
    devnet.MarketSpec("AVAX", 30, 300, 0, None),
    devnet.MarketSpec("DOGE", 0.15, 400, 0, None),
    devnet.MarketSpec("BNB", 550, 200, 0, None),
    devnet.MarketSpec("MATIC", 0.7, 400, 0, None),
)
MARKETS = devnet.MARKETS + EXTRA
SHOCKS = np.vstack([devnet.DEFAULT_SHOCKS_BPS, devnet.DEFAULT_SHOCKS_BPS[[2, 3, 2, 3]]])


@dataclass(frozen=True)
class Row:
    operation: str
    gas: int
    note: str = ""


def _intrinsic(calldata: bytes) -> int:
    return 21_000 + sum(4 if b == 0 else 16 for b in calldata)


def _view_gas(web3: Any, contract: Any, fn: str, *args: Any) -> tuple[int, int]:
    """(gas used by the call, its execution share), measured by sending it as a transaction
    from a key the benchmark uses for nothing else: eth_estimateGas would report the gas
    limit the call needs, which includes the allowance every feed read must be able to give
    (oracle.FEED_GAS_RESERVE), not what it uses."""
    data = bytes(getattr(contract, fn).encode_input(*args))
    sender = web3.eth.accounts[9]
    tx = web3.eth.send_transaction(
        {"from": sender, "to": str(contract.address), "data": data, "gas": 20_000_000}
    )
    gas = web3.eth.wait_for_transaction_receipt(tx)["gasUsed"]
    return gas, gas - _intrinsic(data)


def measure(project: Any, accounts: Any, web3: Any) -> list[Row]:
    deployer, desk, trader, bench = accounts[:4]
    d = devnet.deploy(project, deployer, markets=MARKETS, shocks_bps=SHOCKS)
    engine, client = d.engine, Engine(d.engine, d.book, d.lens)
    weth, wbtc = d.tokens[0], d.tokens[1]
    rows: list[Row] = []

    def mint(who: Any, token: Any, amount: int) -> None:
        token.mint(who, amount, sender=deployer)
        token.approve(engine, 2**256 - 1, sender=who)

    for who in (desk, trader, bench):
        mint(who, d.cash, 10**9 * USDC)
        mint(who, weth, 10**4 * WAD)
        mint(who, wbtc, 10**4 * 10**8)
    me = client.account_id(trader)
    tx = engine.deposit(me, d.cash, 100_000 * USDC, sender=trader)
    rows.append(Row("deposit cash (first)", tx.gas_used, "cold cash slot, totals"))
    tx = engine.deposit(me, d.cash, 1_000 * USDC, sender=trader)
    rows.append(Row("deposit cash (top-up)", tx.gas_used))
    tx = engine.deposit(me, weth, 10 * WAD, sender=trader)
    rows.append(Row("deposit WETH (first)", tx.gas_used, "new balance + asset bit"))
    tx = engine.deposit(me, weth, WAD, sender=trader)
    rows.append(Row("deposit WETH (top-up)", tx.gas_used))
    engine.deposit(client.account_id(desk), d.cash, 10**8 * USDC, sender=desk)

    nonce = iter(range(1, 10**6))

    def fill(taker: Any, market: int, taker_size: int, price: float, sub: int = 0) -> Any:
        order = client.order(desk, market, -taker_size, int(price * WAD), next(nonce), 2**40)
        return client.fill(
            order,
            client.sign(desk, order),
            abs(taker_size),
            client.account_id(taker, sub),
            sender=taker,
        )

    tx = fill(trader, 0, -5 * WAD, 2_000)
    rows.append(Row("fill: open (both sides new)", tx.gas_used, "2 accounts x margin, OI, nonce"))
    tx = fill(trader, 0, -WAD, 2_000)
    rows.append(Row("fill: extend", tx.gas_used))
    tx = fill(trader, 1, WAD // 10, 60_000)
    rows.append(Row("fill: second market", tx.gas_used, "taker now 2 assets"))
    tx = fill(trader, 0, 2 * WAD, 2_000)
    rows.append(Row("fill: reduce", tx.gas_used))
    tx = engine.withdraw(me, weth, WAD, sender=trader)
    rows.append(Row("withdraw WETH (2 assets, IM check)", tx.gas_used))
    tx = engine.withdraw(me, d.cash, 1_000 * USDC, sender=trader)
    rows.append(Row("withdraw cash (2 assets, IM check)", tx.gas_used))

    # margin() by number of assets with a perp position, K = 16 everywhere.
    prices = {i: m.price_usd for i, m in enumerate(MARKETS)}
    for sub, n in ((1, 1), (4, 4), (8, 8)):
        engine.deposit(client.account_id(bench, sub), d.cash, 10**7 * USDC, sender=bench)
        for market in range(n):
            size = int(10_000 / prices[market] * WAD)
            fill(bench, market, size, prices[market], sub=sub)
        gas, execution = _view_gas(web3, engine, "margin", client.account_id(bench, sub))
        rows.append(Row(f"margin(): {n} perp(s)", gas, f"execution {execution:,}"))
    # the reference book: 4 perps + 2 collateral (WETH, WBTC)
    ref = client.account_id(bench, 42)
    engine.deposit(ref, d.cash, 10**7 * USDC, sender=bench)
    engine.deposit(ref, weth, 5 * WAD, sender=bench)
    engine.deposit(ref, wbtc, 10**8, sender=bench)
    for market in range(4):
        fill(bench, market, int(10_000 / prices[market] * WAD), prices[market], sub=42)
    gas, execution = _view_gas(web3, engine, "margin", ref)
    rows.append(Row("margin(): 4 perps + 2 collateral", gas, f"execution {execution:,}"))
    gas, execution = _view_gas(web3, d.feeds[0], "latestRoundData")
    rows.append(Row("feed.latestRoundData() alone", gas, f"execution {execution:,}"))
    rows += _liquidations(d, client, fill, deployer, desk, bench, web3, prices)
    rows += measure_risk_updates(project, accounts, d)
    rows += measure_options(project, accounts, web3)
    rows += _vault_margin(project, d, client, deployer, bench, web3)
    rows += _funding(d, client, fill, deployer, trader, bench, web3, prices)
    # Last: the desk takes the other side of every option fill, and the rows above measure
    # perp-only books (the option rows run with funding on in every perp market).
    rows += _option_book(project, accounts, d, client, fill, web3, prices)
    return rows


def _funding(
    d: Any, client: Any, fill: Any, deployer: Any, trader: Any, bench: Any, web3: Any, prices: dict
) -> list[Row]:
    """Fills and `margin()` with funding on in every market: a premium printed, an hour
    passed (the rate is set and the index moves), then the same fill again in that hour.
    The rows above run with funding off (zero caps: a market's word is read, never
    written)."""
    from ape import chain

    engine = d.engine
    for market in range(4):
        d.set_price(MARKETS[market].symbol, prices[market], sender=deployer)
    rows: list[Row] = []
    # The baseline: the trader and the desk hold what they hold in the funding rows below
    # (the trader the four markets, the desk all eight), funding off; then the same
    # margin() with funding off and never on.
    for market in range(4):
        fill(trader, market, -int(1_000 / prices[market] * WAD), prices[market])
    tx = fill(trader, 0, -WAD, 2_000)
    rows.append(Row("fill: extend, late (funding off)", tx.gas_used, "baseline of the rows below"))
    gas, execution = _view_gas(web3, engine, "margin", client.account_id(bench, 4))
    rows.append(Row("margin(): 4 perp(s), late (funding off)", gas, f"execution {execution:,}"))
    for market in range(len(MARKETS)):
        engine.set_funding_params(market, 8, 10**13, 10**16, sender=deployer)
    for market in range(4):  # a premium of 1% in each: the bench books' markets go live
        fill(trader, market, -int(1_000 / prices[market] * WAD), prices[market] * 1.01)
    # Early in the next clock hour (the rate's period is unix time // HOUR), so that every
    # row below lands inside it however long the run takes between blocks.
    chain.mine(timestamp=(chain.pending_timestamp // HOUR + 1) * HOUR + 10)
    for market in range(len(MARKETS)):
        d.set_price(MARKETS[market].symbol, prices[market], sender=deployer)
    tx = fill(trader, 0, -WAD, 2_000)
    rows.append(Row("fill: extend, funding (new hour)", tx.gas_used, "rate set, both settle"))
    chain.mine(timestamp=chain.pending_timestamp + 60)
    tx = fill(trader, 0, -WAD, 2_000)
    rows.append(Row("fill: extend, funding (same hour)", tx.gas_used, "index moved, both settle"))
    gas, execution = _view_gas(web3, engine, "margin", client.account_id(bench, 4))
    rows.append(Row("margin(): 4 perp(s), funding", gas, f"execution {execution:,}"))
    chain.mine(timestamp=chain.pending_timestamp + 60)  # the index moves before the settle
    tx = engine.settle_funding(client.account_id(bench, 4), 0, sender=trader)
    rows.append(Row("settle_funding", tx.gas_used))
    return rows


def _vault_margin(
    project: Any, d: Any, client: Any, deployer: Any, bench: Any, web3: Any
) -> list[Row]:
    """margin() of a book holding one collateral balance: a plain token (WETH) against
    ERC-4626 shares over it (snekmate's vault: `convertToAssets` reads the vault's supply
    and the underlying's balance of it), listed as liquid staking."""
    weth = d.tokens[0]
    vault = project.MockVault.deploy("Staked WETH", "sWETH", weth, sender=deployer)
    weth.approve(vault, 2**256 - 1, sender=bench)
    vault.deposit(100 * WAD, bench, sender=bench)
    weth.transfer(vault, 5 * WAD, sender=bench)  # accrued yield: rate 1.05
    devnet.list_vault(
        project, d, deployer, symbol="sWETH", underlying="ETH", vault_class="liquid_staking",
        vault=vault,
    )  # fmt: skip
    # An hour after the snapshot: the cap has grown past the rate, so the read takes the same
    # branch in every run (in the snapshot's own second the cap equals the ratio).
    web3.provider.make_request("evm_increaseTime", [3600])
    vault.approve(d.engine, 2**256 - 1, sender=bench)
    rows = []
    for sub, token, label in ((70, weth, "WETH"), (71, vault, "vault shares")):
        acc = client.account_id(bench, sub)
        d.engine.deposit(acc, token, 5 * WAD, sender=bench)
        gas, execution = _view_gas(web3, d.engine, "margin", acc)
        rows.append(Row(f"margin(): 1 collateral, {label}", gas, f"execution {execution:,}"))
    return rows


def measure_options(project: Any, accounts: Any, web3: Any) -> list[Row]:
    """The Black-76 module's own gas (inside its probe, from ``msg.gas``) and the vol feed.

    The feed's figures are execution gas (receipt less intrinsic and calldata): its
    updates carry the chain's time (observation, expiry), and so signatures, whose zero
    bytes would move the calldata cost from run to run."""
    from offchain_risk.keeper.vol_signer import EXPIRY_TIME, VolCurve, VolSigner

    deployer, signers, relayer = accounts[0], list(accounts[4:6]), accounts[7]
    rows: list[Row] = []
    probe = project.Black76Probe.deploy(sender=deployer)
    cases = (
        ("call, F = K, 30 days", 60_000 * WAD, 60_000 * WAD, 60 * WAD // 100, 30 * DAY, True),
        ("put, K = 0.8 F, 7 days", 3_000 * WAD, 2_400 * WAD, 80 * WAD // 100, 7 * DAY, False),
    )
    for note, f, k, vol, tau, is_call in cases:
        _, g = probe.price_gas(f, k, vol, tau, is_call, True)
        rows.append(Row(f"black76 price ({'call' if is_call else 'put'}, module)", g, note))
    f, k, vol, tau, is_call = cases[0][1:]
    _, g = probe.valuation_gas(f, k, vol, tau, is_call)
    rows.append(Row("black76 price + 4 Greeks (module)", g, cases[0][0]))

    feed = project.VolFeed.deploy(signers, 2, sender=deployer)
    feed.set_underlying(0, 3_600, sender=deployer)
    client = VolSigner(feed, signers, relayer)
    now = web3.eth.get_block("latest")["timestamp"]
    expiry = (now // DAY + 7) * DAY + EXPIRY_TIME
    curve = VolCurve(0, expiry, 65 * WAD // 100, -WAD // 10, WAD // 2, 3_000 * WAD)

    def submit(observed_at: int) -> int:
        message = client.message(curve, observed_at, feed.next_nonce(), observed_at + 600)
        sigs = client.sign(message)
        tx = client.submit(message, sigs)
        data = bytes(feed.submit.encode_input(*_submit_args(message, sigs)))
        return tx.gas_used - _intrinsic(data)

    rows.append(Row("vol feed submit, M=2 (first curve, execution)", submit(now - 1), "cold slots"))
    rows.append(Row("vol feed submit, M=2 (update, execution)", submit(now)))
    _, execution = _view_gas(web3, feed, "vol", 0, expiry, 3_300 * WAD)
    rows.append(Row("vol feed vol() (execution)", execution, "one curve, strike 1.1 F"))
    return rows


def _option_book(
    project: Any, accounts: Any, d: Any, client: Any, fill: Any, web3: Any, prices: dict
) -> list[Row]:
    """The option book on the devnet engine: an option fill, and margin() of the issue's
    reference book (4 perps + 2 collateral) with 8 ETH options over 2 expiries."""
    from offchain_risk.keeper.vol_signer import DAY, EXPIRY_TIME, VolCurve, VolSigner

    deployer, bench = accounts[0], accounts[3]
    signers, relayer = list(accounts[4:6]), accounts[7]
    feed = devnet.deploy_vol_feed(project, deployer, signers, 2, {0: 86_400})
    book = devnet.deploy_option_book(
        project, d, deployer, feed, {0: (100 * WAD, 15 * WAD // 100, 50)}
    )
    signer = VolSigner(feed, signers, relayer)
    now = web3.eth.get_block("latest")["timestamp"]
    instruments = []
    for weeks in (1, 5):
        expiry = (now // DAY + 7 * weeks) * DAY + EXPIRY_TIME
        curve = VolCurve(0, expiry, 65 * WAD // 100, -WAD // 10, WAD // 2, 2_000 * WAD)
        signer.publish(curve)
        book.set_oi_cap(0, expiry, 10**6 * WAD, sender=deployer)
        for strike, is_call in ((1_800, False), (1_900, False), (2_100, True), (2_200, True)):
            book.list_option(0, expiry, strike * WAD, is_call, sender=deployer)
            instruments.append(book.instrument_id(0, expiry, strike * WAD, is_call))
    ref = client.account_id(bench, 43)
    weth, wbtc = d.tokens[0], d.tokens[1]
    d.engine.deposit(ref, d.cash, 10**7 * USDC, sender=bench)
    d.engine.deposit(ref, weth, 5 * WAD, sender=bench)
    d.engine.deposit(ref, wbtc, 10**8, sender=bench)
    for market in range(4):
        price = d.engine.price(market)[0] / WAD  # the liquidation rows moved some feeds
        fill(bench, market, int(10_000 / price * WAD), price, sub=43)
    rows: list[Row] = []
    for i, instrument in enumerate(instruments):
        tx = fill(bench, instrument, (-1) ** i * 2 * WAD, 40, sub=43)
    rows.append(
        Row("option fill (8th leg, both sides hold options)", tx.gas_used, "4 perps + 2 coll.")
    )
    gas, execution = _view_gas(web3, d.engine, "margin", ref)
    rows.append(
        Row(
            "margin(): 4 perps + 8 options (2 expiries) + 2 collateral",
            gas,
            f"execution {execution:,}",
        )
    )
    rows += _option_liquidation(d, deployer, bench, accounts[1], ref)
    rows += _option_expiry(d, client, fill, deployer, bench, book, instruments[0])
    return rows


def _option_liquidation(d: Any, deployer: Any, bench: Any, desk: Any, ref: int) -> list[Row]:
    """A partial liquidation of the reference book (4 perps + 8 options + 2 collateral) by
    a liquidator with cash only: its cash withdrawn down to just above IM, then every market
    falls until it is below MM. (The same book, not a new one: each fill's steps trace stays
    in anvil's memory, and eight more option fills take it past this machine's.)"""
    engine = d.engine
    equity, _, im = engine.margin(ref)
    spare = min(equity - im - 2_000 * WAD, engine.cash(ref))  # WAD
    engine.withdraw(ref, d.cash, spare // 10**12, sender=bench)
    prices = [engine.price(market)[0] / WAD for market in range(4)]
    scale = 1.0
    while engine.health(ref) >= 0:
        scale -= 0.005
        assert scale > 0.3, "the reference book stays above MM"
        for market in range(4):
            d.set_price(MARKETS[market].symbol, prices[market] * scale, sender=deployer)
    liquidator = Engine.account_id(desk, 2)  # cash only: new slots, like the "fresh" row
    engine.deposit(liquidator, d.cash, 10**7 * USDC, sender=desk)
    preview = d.liquidations.liquidation_preview(ref, WAD)
    tx = d.liquidations.liquidate(ref, liquidator, WAD, 2**255 - 1, sender=desk)
    note = f"f = {preview.fraction / WAD:.1%}, liquidator with cash only"
    return [Row("liquidate: 4 perps + 8 options + 2 collateral (fresh)", tx.gas_used, note)]


def _option_expiry(
    d: Any, client: Any, fill: Any, deployer: Any, bench: Any, book: Any, instrument: int
) -> list[Row]:
    """Expiry of the first expiry's options: the settlement price recorded (the feed's first
    round after expiry, the round before it read too), and one expired leg settled."""
    from ape import chain

    from offchain_risk.chain import settlement_round

    holder = client.account_id(bench, 45)
    d.engine.deposit(holder, d.cash, 10_000 * USDC, sender=bench)
    fill(bench, instrument, WAD, 40, sub=45)
    i = book.instrument(instrument)
    chain.mine(timestamp=i.expiry + 60)
    for market in range(len(MARKETS)):
        symbol = MARKETS[market].symbol
        d.set_price(symbol, d.engine.price(market)[0] / WAD, sender=deployer)
    round_id = settlement_round(d.feeds[i.underlying], i.expiry)
    tx = book.record_settlement(i.underlying, i.expiry, round_id, sender=bench)
    rows = [Row("record_settlement (first round after expiry)", tx.gas_used, "2 rounds read")]
    tx = book.settle_expired(holder, sender=bench)
    rows.append(Row("settle_expired: one expired leg", tx.gas_used, "cash moves, leg removed"))
    return rows


def _submit_args(message: Any, sigs: list[bytes]) -> tuple:
    from offchain_risk.keeper.vol_signer import update_tuple

    return update_tuple(message), sigs


def _liquidations(
    d: Any, client: Any, fill: Any, deployer: Any, desk: Any, bench: Any, web3: Any, prices: dict
) -> list[Row]:
    """Partial liquidation of a 4 perps + 2 collateral book, and `healths` for 50 accounts."""
    engine, weth, wbtc = d.engine, d.tokens[0], d.tokens[1]
    rows: list[Row] = []

    def book(sub: int, cash_usd: int) -> int:
        acc = client.account_id(bench, sub)
        engine.deposit(acc, d.cash, cash_usd * USDC, sender=bench)
        engine.deposit(acc, weth, 5 * WAD, sender=bench)
        engine.deposit(acc, wbtc, 10**8, sender=bench)
        for market in range(4):
            fill(bench, market, int(20_000 / prices[market] * WAD), prices[market], sub=sub)
        return acc

    victims = [book(sub, 2_000) for sub in (50, 51, 52)]
    # Prices fall until the books are below MM but above the critical health: a partial cut.
    scale = 1.0
    while engine.health(victims[0]) >= 0:
        scale -= 0.005
        for market in range(4):
            d.set_price(MARKETS[market].symbol, prices[market] * scale, sender=deployer)
    keeper = client.account_id(desk)  # the counterparty desk: holds all four markets
    fresh = client.account_id(desk, 1)  # a keeper account with cash only: new slots
    engine.deposit(fresh, d.cash, 10**7 * USDC, sender=desk)
    cases = (
        (victims[0], keeper, "desk", "the counterparty desk, in all 8 markets"),
        (victims[1], fresh, "fresh", "with cash only (new slots)"),
        (victims[2], fresh, "keeper", "already in exactly those markets and collaterals"),
    )
    for victim, liquidator, label, who in cases:
        preview = d.liquidations.liquidation_preview(victim, WAD)
        tx = d.liquidations.liquidate(victim, liquidator, WAD, 2**255 - 1, sender=desk)
        note = f"f = {preview.fraction / WAD:.1%}, liquidator {who}"
        rows.append(Row(f"liquidate: 4 perps + 2 collateral ({label})", tx.gas_used, note))

    accounts = []
    for sub in range(100, 150):
        acc = client.account_id(bench, sub)
        engine.deposit(acc, d.cash, 10_000 * USDC, sender=bench)
        for market in (0, 1):
            fill(bench, market, int(5_000 / prices[market] * WAD), prices[market] * scale, sub=sub)
        accounts.append(acc)
    gas, execution = _view_gas(web3, engine, "healths", accounts)
    rows.append(
        Row(
            "healths(): 50 accounts x 2 perps",
            gas,
            f"{execution // 50:,} per account; execution {execution:,}",
        )
    )
    return rows


def measure_risk_updates(project: Any, accounts: Any, d: devnet.Deployment) -> list[Row]:
    """RiskGovernor.submit for all 8 assets at K = 16 (the devnet's shocks; the second shock
    word of every asset stays zero) with M = 2 of 3 signers.

    Steady state: the nonce and every record already non-zero (the first update of a fresh
    governor pays ~17k more for the nonce's zero-to-non-zero write)."""
    from ape import chain

    from offchain_risk.keeper.signer import FLOOR, HAIRCUT, ParamSet, RiskSigner
    from offchain_risk.models.margin import MAX_SCENARIOS, flat_words, pack_shocks

    deployer, signers, relayer = accounts[0], list(accounts[4:7]), accounts[7]
    governor = devnet.deploy_governor(project, d, deployer, signers, 2, markets=MARKETS)
    client = RiskSigner(governor, d.engine, d.liquidations, signers[:2], relayer)
    assets = list(range(len(MARKETS)))
    start = client.view(assets)
    base, globals_ = start.current.copy(), [int(x) for x in start.global_current]
    rows: list[Row] = []

    def submit(values: np.ndarray, g: list[int]) -> Any:
        view = client.view(assets)
        message = client.message(ParamSet.from_values(assets, values, g), view.nonce, 2**40)
        return client.submit(message, client.sign(message))

    tighter = base.copy()
    # |shock| up 3%: within the MM step
    tighter[:, :MAX_SCENARIOS] = base[:, :MAX_SCENARIOS] * 103 // 100
    tx = submit(tighter, globals_)
    rows.append(
        Row("risk update: 8 assets, shocks (first)", tx.gas_used, "tighter by 3%; nonce 0 -> 1")
    )
    tx = submit(base, globals_)  # back down 2.9%: a loosening within the rates
    rows.append(
        Row(
            "risk update: 8 assets x 16 shocks, M=2",
            tx.gas_used,
            "looser by 2.9% (both rate checks); floors, haircuts, IM, curve unchanged",
        )
    )
    everything = tighter.copy()
    everything[:, FLOOR] += 10  # floor +10 bps
    everything[:, HAIRCUT] += 10  # haircut +10 bps
    g = [globals_[0] + 10**16, globals_[1] + 10**15, globals_[2] + 10**15]
    tx = submit(everything, g)
    rows.append(
        Row(
            "risk update: 8 assets, all values + IM + curve",
            tx.gas_used,
            "shocks, floors, haircuts, IM multiplier, discount curve",
        )
    )
    ramp = everything.copy()
    ramp[0, FLOOR] += 1_000  # a floor beyond the 500 bps step: ramps
    tx = submit(ramp, g)
    rows.append(Row("risk update: 8 assets, one starts a ramp", tx.gas_used))
    chain.mine(timestamp=chain.pending_timestamp + 3_600)
    tx = governor.poke(0, sender=relayer)
    rows.append(Row("poke (floor ramp)", tx.gas_used))
    # The engine's share alone: the same reads and 8 shock writes from a bare manager.
    bare = project.BareRiskManager.deploy(sender=deployer)
    d.engine.set_risk_manager(bare, sender=deployer)
    words = flat_words(pack_shocks(base[:, :MAX_SCENARIOS]))
    tx = bare.write(d.engine, assets, words, sender=relayer)
    rows.append(
        Row(
            "engine floor: 8 shock words, no governor",
            tx.gas_used,
            "a bare risk manager: the same engine reads and writes, nothing else",
        )
    )
    d.engine.set_risk_manager(governor, sender=deployer)
    return rows


def _deployables() -> tuple[str, ...]:
    """The deployables, as the integration kit lists them (its standard-library module, loaded
    by path: this file is itself loaded by path inside pytest, without the repo root)."""
    path = Path(__file__).resolve().parents[1] / "integration" / "vyper_build.py"
    spec = importlib.util.spec_from_file_location("ballast_vyper_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEPLOYABLES


DEPLOYABLES = _deployables()
EIP170_LIMIT = 24_576  # bytes of runtime code a contract may have


def bytecode_sizes(project: Any) -> dict[str, int]:
    """Runtime bytecode size (bytes) of each deployable, as compiled by Ape."""
    return {
        name: len(bytes.fromhex(getattr(project, name).contract_type.runtime_bytecode.bytecode[2:]))
        for name in DEPLOYABLES
    }


COLD_SLOAD = 2_100
COLD_ACCOUNT = 2_600


def _execution(note: str) -> int:
    return int(note.split()[-1].replace(",", ""))


def breakdown(rows: list[Row]) -> str:
    """Where `margin()` gas goes, from this run's figures (printed, not committed)."""
    by_name = {r.operation: r for r in rows}
    per_asset = (by_name["margin(): 8 perp(s)"].gas - by_name["margin(): 4 perp(s)"].gas) / 4
    feed = _execution(by_name["feed.latestRoundData() alone"].note)
    oracle = COLD_ACCOUNT + feed
    slots = 4 * COLD_SLOAD  # position word, asset word, both shock words
    arithmetic = per_asset - oracle - slots
    base = _execution(by_name["margin(): 1 perp(s)"].note) - per_asset
    extra_collateral = (
        by_name["margin(): 4 perps + 2 collateral"].gas - by_name["margin(): 4 perp(s)"].gas
    ) / 2
    vault_extra = (
        by_name["margin(): 1 collateral, vault shares"].gas
        - by_name["margin(): 1 collateral, WETH"].gas
    )
    return "\n".join(
        [
            f"margin(): each exposed perp {per_asset:,.0f} = oracle call ~{oracle:,} "
            f"({COLD_ACCOUNT:,} cold account + {feed:,} feed read) + four cold slots "
            f"{slots:,} + ~{arithmetic:,.0f} arithmetic",
            f"margin(): a collateral balance on an asset held as a perp ~{extra_collateral:,.0f}",
            f"margin(): fixed cost ~{base:,.0f}",
            "margin(): vault shares instead of a plain token "
            f"+{vault_extra:,} (target +8,000: rate read, cap slot, share token slot)",
        ]
    )


def render() -> str:
    """The gas section of RESULTS.md: what the figures in gas-snapshot.json mean. It holds
    no figure the code can move (those live in the snapshot, which a test diffs)."""
    return "\n".join(
        [
            "## Gas (anvil, exact)",
            "",
            "The figures are in [gas-snapshot.json](gas-snapshot.json): gas per operation, "
            "runtime bytecode per deployable, and the compiler that produced them. "
            "`make gas-snapshot` rewrites it and prints what moved and the `margin()` "
            "breakdown below for the current code; `tests/contracts/test_benchmarks.py` "
            "measures again in `make test` and fails when a figure moves without the "
            "snapshot. This section explains the figures.",
            "",
            "Transactions are measured from receipts (`gas_used`), and so are views "
            "(`margin()`, `healths()`, `feed.latestRoundData()`), sent as transactions: "
            "`eth_estimateGas` would report the gas limit a call needs, which includes the "
            "allowance every feed read must be able to give (`oracle.FEED_GAS_RESERVE`), not "
            "the gas it uses. Both include the 21,000 intrinsic gas and the calldata. "
            "The listing: the devnet's four markets "
            "(ETH and BTC with WETH / WBTC collateral, SOL, LINK) plus four perp-only markets "
            "(AVAX, DOGE, BNB, MATIC), all on 8-decimal mock feeds that keep a round in one "
            "storage word, K = 16 scenarios on every asset (the chain holds 32: every "
            "second shock word is zero). The measurement starts from a "
            "fixed deployer nonce, so contract addresses, and with them the calldata, are the "
            "same in every run.",
            "",
            "Targets: `margin()` for 4 perps + 2 collateral <= 60,000; fill <= 180,000; "
            "deposit <= 70,000; liquidation of 4 perps + 2 collateral <= 150,000; a signed "
            "risk update (8 assets, K = 16, M = 2) <= 150,000.",
            "",
            "Where `margin()` gas goes. Each exposed perp (a quarter of `margin(): 8 perp(s)` "
            "minus `margin(): 4 perp(s)`) pays an oracle call (2,600 for the cold account "
            "plus the feed's own read, `feed.latestRoundData() alone` less its intrinsic gas), "
            "four cold slots of 2,100 (position, asset word, both shock words) and the "
            "arithmetic (16 scenario multiply-accumulates per non-zero shock word, unpacking, "
            "value and floor sums). A collateral "
            "balance on an asset already held as a perp adds one cold slot and its value "
            "terms. The fixed cost is dispatch, the account bitmap, the cash and IM "
            "multiplier slots and the final max / rounding.",
            "",
            "Cold storage and the oracle calls are about 2/3 of the per-asset cost and are "
            "priced by the EVM, not by the code: the 60k target for 4 perps + 2 collateral is "
            "below the cold-access floor of that book (4 oracle calls + 14 cold slots, about "
            "50k) plus the intrinsic 21k. Fills that open new positions pay for new storage "
            "(EIP-2200: 22,100 per slot going from zero: both positions, the fill budget, the "
            "account bitmaps); steady-state fills (extend, reduce) are the ones to hold to "
            "the 180k target.",
            "",
            "Liquidation (targets 150k with a liquidator already in those markets, the "
            "`keeper` row, and 180k for a fresh one) misses both. The account's margin is "
            "computed once (the policy's plan, passed to the core with its decision; before "
            "Liquidation v2 three times), then the liquidator's once for its IM check: the "
            "`desk` row's liquidator holds 8 markets and pays for 4 more cold assets there. "
            "The rest is priced by the EVM: the first computation's cold reads (per asset an "
            "oracle call and three cold slots), the slice's writes on both sides (5,000 per "
            "changed cold slot; 22,100 per new slot of a fresh liquidator: 4 positions, 2 "
            "collateral balances, its bitmap), open interest where the slice nets off, and an "
            "absolute `AccountState` log per touched asset of both accounts and the fund "
            "(about 2.4k each, 13 here) that lets keepers rebuild every account from logs. "
            "150k needs fewer slots per asset or fewer logs, not less code. `healths()` costs "
            "one margin computation per account.",
            "",
            "Funding (targets: <= 5,000 per market held on `margin()`, <= 10,000 on a fill). "
            "Every funding read is behind the asset word's flag 8 (funding switched on once "
            "in the market), which `_margin` and `settle` read anyway: a market whose "
            "funding was never on reads no funding word, snapshot, parameter or premium "
            "window and writes nothing (one warm read of the asset word per check: compare "
            "`margin(): 4 perp(s)` with `margin(): 4 perp(s), late (funding off)`). A live "
            "market adds to `margin()` its funding word and the position's snapshot (two "
            "cold slots, 4,200: the floor) and the index and owed arithmetic, unchecked and "
            "inline in the margin loop: the `margin(): 4 perp(s), funding` row against "
            "`margin(): 4 perp(s), late (funding off)`, divided by 4. A fill with funding on "
            "(`fill: extend, funding (same hour)` against `fill: extend, late (funding "
            "off)`, both sides holding the same markets: the desk all 8, the trader 4) "
            "pays for the market's funding word and premium window (read and rewritten: the "
            "index and time move, the fill is sampled), its parameters (read), both "
            "snapshots (read and rewritten), the `Funding` and two `FundingSettled` logs, "
            "and each side's margin check reads the funding word and snapshot of every "
            "other market it holds with funding on (7 for the desk, 3 for the trader: the "
            "`margin()` cost per market, above). Four slots rewritten (about 5,000 each "
            "when cold) put the traded market's own floor above 10,000: meeting it needs "
            "the snapshot packed into the position word and the window into the funding "
            "word, a change to the position layout.",
            "",
            "The signed risk update (RiskGovernor v2, 8 assets, K = 16, M = 2 of 3) misses its "
            "target too, and the row `engine floor: 8 shock words, no governor` says why: a "
            "bare risk manager that makes the same engine reads and writes for the same 8 "
            "assets, with no signature, check or storage of its own. Each `set_shock_words` "
            "goes through the engine's fallback to MarginConfig by delegatecall, re-checks the "
            "caller and the listing, range-checks 32 slots, writes both words and logs them. With "
            "the update's own calldata (four arrays and two signatures) and two `ecrecover`s, "
            "no governor on this engine interface can go below about 150k before it reads one "
            "word of its own. The governor adds, per asset, its state word (bounds, bucket, "
            "floor / haircut lows and highs, row base) and the shocks' lowest and highest words, "
            "two of each (five cold reads, up to five writes when the bucket's record moves), "
            "and per update the nonce, threshold, signers, limits and the global record. The "
            "16 slots of each shock word are checked word-parallel (SWAR: even and odd slots "
            "in 8 lanes of 32 bits with guard bits); the same checks slot by slot measured "
            "488,622 on this update at K = 16. "
            "Reaching 150k needs a batched engine setter (one call, one listed check, one "
            "event for all assets), a change to ledger.vy.",
            "",
            "Options: pricing and the vol feed. The "
            "`black76` rows are the pricing module's own gas, measured inside its probe "
            "(`contracts/test/Black76Probe.vy`) from `msg.gas` around the internal call, so "
            "they hold no dispatch, calldata or intrinsic gas. A price is one `wad_ln`, one "
            "`wad_exp`, one `isqrt` and two CDF polynomials (the reference figure is about "
            "7,200); the four Greeks reuse `d1`, `n(d1)` and `sqrt(tau / YEAR)` and add the "
            "difference between the `price + 4 Greeks` row and the call's price row. The vol "
            "feed's rows are execution gas (receipt less intrinsic and calldata: the update "
            "carries the chain's time, so its signatures and their zero bytes change between "
            "runs): two `ecrecover`s, the checks, and one curve of five slots (cold on the "
            "first curve of an expiry); `vol()` reads the curve and the heartbeat and runs one "
            "`wad_ln`.",
            "",
            "Option books (`OptionBook`: the rows `margin(): 4 perps + 8 options (2 expiries) "
            "+ 2 collateral` and `option fill (8th leg, both sides hold options)`) miss both "
            "250k targets. They run last, with funding on in every perp market (the desk takes "
            "the other side of every option fill). Per live leg the book reads the vol feed "
            "(`vol()`: a curve of five slots and one `wad_ln`, not cached per expiry) and "
            "prices seven times: the mark, and three anchor prices (the underlying moved by "
            "its lowest shock, unmoved, moved by its highest) at each of the two moved vols; "
            "`sqrt(tau / YEAR)` is computed once per leg and `ln(F / K)` once per anchor "
            "price (`black76._price_delta_at`), so a valuation after the first skips its "
            "`isqrt`, most of its `wad_ln`s and the domain check. Then 16 scenarios x 2 vol "
            "directions of a chord or two tangents in unchecked arithmetic with stated "
            "bounds, the losses summed unrounded and rounded once per scenario. Measured in "
            "titanoboa's profiler on three legs, about half of a leg is the seven valuations "
            "and a third the scenario loop. The rule before this one (a second-order Taylor "
            "loss from one valuation) cost about a fifth less but covered 79.9% of random "
            "books (ARCHITECTURE.md, options: coverage). A fill computes margin for both "
            "sides after the trade and, for a side below IM or borrowing, before it too. "
            "What would bring it down, in order: read each expiry's curve once, fewer margin "
            "computations per fill, and a valuation sharing one exponential between an "
            "anchor's two vols. Perp rows pay for the option bit's test and mask in "
            "`_margin` (a perp fill about +300 gas, a liquidation slice about +400; `settle` "
            "keeps its steps inline, since internal functions shared with `settle_option` "
            "cost +749 in titanoboa).",
            "",
            "The option book's liquidation (`liquidate: 4 perps + 8 options + 2 collateral "
            "(fresh)`: the reference book with its cash withdrawn to about 2,000 USD above "
            "IM, every market down until it is below MM, the slice taken by a liquidator "
            "holding cash only) misses the 250k target by the same cause, more times over: "
            "the policy computes the account's margin (liquidation valuation: every leg's "
            "seven valuations and its scenarios) for its plan, the slice moves every leg "
            "(`liquidate_legs`: each leg's mark, a size-0 valuation without anchors, and "
            "two size slots and the legs array on both sides), and the liquidator's IM check "
            "values the eight legs it now holds. `record_settlement` reads two feed rounds "
            "through the engine (`round_price`: the named round and the one before it, each "
            "a gas-capped `getRoundData`) and writes one slot; `settle_expired` of one leg "
            "reads the instrument's settlement price, removes the leg and its open interest "
            "and moves its value to cash through the engine.",
            "",
            "Vault shares (`margin(): 1 collateral, vault shares` against `margin(): 1 "
            "collateral, WETH`, the same 5 units in one sub-account) miss the target of at "
            "most 8,000 more than a plain token. The difference is the share's price: the "
            "vault's `convertToAssets` through the gas-capped raw call (2,600 for the cold "
            "vault; snekmate's vault then reads its `totalSupply`, 2,100, and calls the "
            "underlying's `balanceOf`, 2,600 for the cold token and 2,100 for the slot), the "
            "vault word (the cap's snapshot, 2,100) and the share token's address (2,100), "
            "then the cap arithmetic. The cold accesses alone are about 13,600: any ERC-4626 "
            "whose `convertToAssets` reads its own supply and its assets costs at least the "
            "four accesses of the vault call (about 9,400) plus one slot for the cap, so "
            "+8,000 is below the floor of pricing from the live rate; it would take a rate "
            "cached in the engine's storage, pushed by a keeper, which is no longer "
            "`convertToAssets` at the time of the check. A plain token pays for the vault "
            "support only the flag test in the price read (about 20 gas per exposed asset, "
            "plus the inlined branch).",
            "",
            f"Runtime bytecode: every deployable must stay under EIP-170's {EIP170_LIMIT:,} "
            "bytes (`test_deployables__fit_eip170`); the sizes are the snapshot's "
            "`bytecode_bytes`.",
        ]
    )
