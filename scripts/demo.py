"""`ape run demo`: a hedged and an unhedged book on a fresh local market, then a shock.

Deploys the full stack on the local devnet, funds four traders and a market maker,
opens positions through signed maker orders, prints equity / MM / IM / health per
account, moves oracle prices, and prints the table again.
"""

from __future__ import annotations

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, network_option

from offchain_risk import devnet
from offchain_risk.chain import WAD, Engine

USDC = 10**6


def _table(engine: Engine, book: dict[str, object], symbols: dict[int, str]) -> str:
    head = (
        f"{'account':<26}{'positions':<44}{'equity':>12}{'MM':>11}{'IM':>11}"
        f"{'health':>12}{'E/MM':>7}"
    )
    lines = [head, "-" * len(head)]
    for name, who in book.items():
        s = engine.state(Engine.account_id(who, 0))
        legs = []
        for a in s.assets:
            if a.collateral:
                legs.append(f"{a.collateral / WAD:g} {symbols[a.asset]}")
            if a.size:
                legs.append(f"{a.size / WAD:+g} {symbols[a.asset]}-PERP")
        ratio = "inf" if s.mm == 0 else f"{s.equity / s.mm:.2f}"
        lines.append(
            f"{name:<26}{', '.join(legs) or 'cash':<44}{s.equity / WAD:>12,.0f}"
            f"{s.mm / WAD:>11,.0f}{s.im / WAD:>11,.0f}{s.health / WAD:>12,.0f}{ratio:>7}"
            + ("" if s.prices_ok else "  price invalid")
        )
    return "\n".join(lines)


@click.command(cls=ConnectedProviderCommand)
@network_option()
def cli(network):
    """Run the local demo (devnets only: it mints mock tokens)."""
    if not network.is_local:
        raise click.UsageError("the demo mints mock tokens: run it on a local network")
    deployer, mm_desk, alice, bob, carol, dave = accounts.test_accounts[:6]
    click.echo("Deploying Ballast on the local devnet ...")
    d = devnet.deploy(project, deployer)
    engine = Engine(d.engine, d.book, d.lens)
    eth, btc, sol = d.symbols["ETH"], d.symbols["BTC"], d.symbols["SOL"]
    symbols = {v: k for k, v in d.symbols.items()}
    weth = d.tokens[eth]

    def fund(who, token, amount):
        token.mint(who, amount, sender=deployer)
        token.approve(d.engine, amount, sender=who)
        d.engine.deposit(Engine.account_id(who, 0), token, amount, sender=who)

    fund(mm_desk, d.cash, 5_000_000 * USDC)
    fund(alice, weth, 50 * WAD)  # 50 WETH collateral, will short 50 ETH perp
    fund(alice, d.cash, 1_000 * USDC)
    fund(bob, d.cash, 90_000 * USDC)  # long BTC / short ETH, beta-hedged
    fund(carol, d.cash, 24_000 * USDC)  # naked long SOL
    fund(dave, d.cash, 30_000 * USDC)  # naked short BTC

    nonce = iter(range(1, 10**6))

    def trade(taker, market, taker_size, price):
        """The desk quotes the opposite side at `price`; `taker` fills it."""
        order = engine.order(mm_desk, market, -taker_size, price * WAD, next(nonce), 2**40)
        sig = engine.sign(mm_desk, order)
        engine.fill(order, sig, abs(taker_size), Engine.account_id(taker, 0), sender=taker)

    click.echo("Opening positions through signed maker orders ...")
    trade(alice, eth, -50 * WAD, 2_000)
    trade(bob, btc, 5 * WAD, 60_000)
    trade(bob, eth, -120 * WAD, 2_000)
    trade(carol, sol, 300 * WAD, 150)
    trade(dave, btc, -2 * WAD, 60_000)

    book = {
        "alice (WETH + short perp)": alice,
        "bob (long BTC/short ETH)": bob,
        "carol (long SOL)": carol,
        "dave (short BTC)": dave,
        "market maker": mm_desk,
    }
    click.echo("\nAt the opening prices (USD):")
    click.echo(_table(engine, book, symbols))

    click.echo("\nShock: ETH -12%, BTC -10%, SOL -30% ...")
    d.set_price("ETH", 1_760, deployer)
    d.set_price("BTC", 54_000, deployer)
    d.set_price("SOL", 105, deployer)
    click.echo(_table(engine, book, symbols))
    click.echo(
        "\nHedged books barely move: alice's collateral offsets her short, bob's pair "
        "offsets BTC against ETH; carol's naked long is now below maintenance margin."
    )
