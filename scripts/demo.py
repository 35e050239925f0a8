"""`ape run demo`: a real crash replayed on a local devnet with the keeper running.

Deploys Ballast and a flat-margin baseline on the local anvil chain, seeds a few hundred
trader sub-accounts with realistic books through the real order book, and replays hourly
prices (``../shared/data/prices/1h``) into the mock Chainlink feeds at an accelerated clock
while the keeper liquidates. Prints the report and writes ``reports/demo/report.md`` and
``chart.png``. Other windows: ``--from 2022-11-07 --to 2022-11-10`` (FTX),
``--from 2021-05-18 --to 2021-05-20``.
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand, network_option
from tqdm import tqdm

from offchain_risk.replay.path import MODES, load_path
from offchain_risk.replay.replay import ReplayConfig, run_replay
from offchain_risk.replay.report import summarize, write_report

DEFAULT_ASSETS = "BTC,ETH,BNB,LINK"


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--from", "start", default="2020-03-11", show_default=True, help="First day (UTC)")
@click.option("--to", "end", default="2020-03-14", show_default=True, help="Last day, inclusive")
@click.option("--assets", default=DEFAULT_ASSETS, show_default=True, help="Comma-separated")
@click.option("--accounts", "n_accounts", default=300, show_default=True, type=click.IntRange(1))
@click.option(
    "--option-books",
    default=32,
    show_default=True,
    type=click.IntRange(0),
    help="Option books on Ballast (the option archetypes on BTC and ETH); 0 for none",
)
@click.option("--hours", type=click.IntRange(1), default=None, help="Replay only the first N hours")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="close",
    show_default=True,
    help="Oracle rounds per hourly bar: the close, or the two extremes and the close",
)
@click.option("--seed", default=7, show_default=True, help="Books are drawn from this seed")
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Run the flat-margin venue side by side",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/demo"),
    show_default=True,
)
@click.option(
    "--data-dir",
    default=None,
    help="Market data folder (default: $BALLAST_DATA_DIR or ../shared/data)",
)
def cli(
    network,
    start,
    end,
    assets,
    n_accounts,
    option_books,
    hours,
    mode,
    seed,
    baseline,
    out,
    data_dir,
):
    """Replay a crash on the local devnet (it mints mock tokens: local networks only)."""
    if not network.is_local:
        raise click.UsageError("the demo mints mock tokens: run it on a local network")
    symbols = tuple(s.strip().upper() for s in assets.split(",") if s.strip())
    try:
        path = load_path(symbols, start, end, mode, max_hours=hours, data_dir=data_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.BadParameter(str(exc)) from exc
    config = ReplayConfig(
        n_accounts=n_accounts,
        seed=seed,
        baseline=baseline,
        data_dir=data_dir,
        option_books=option_books,
    )
    click.echo(path.summary())
    click.echo("calibrating Ballast's markets on the data before the window (risk engine)")
    venues = 2 if baseline else 1
    bars = {
        "seed": tqdm(total=n_accounts * venues, desc="opening books", unit="book"),
        "replay": tqdm(total=path.n_steps, desc="replaying", unit="round"),
    }

    def progress(phase: str, n: int) -> None:
        bars[phase].update(n)

    replay = run_replay(
        project,
        chain.provider.web3,
        list(accounts.test_accounts),
        path,
        config,
        progress=progress,
    )
    for bar in bars.values():
        bar.close()
    report = summarize(replay)
    click.echo("")
    click.echo(report.summary())
    md, png = write_report(report, out)
    click.echo(f"\nwrote {md} and {png}")
