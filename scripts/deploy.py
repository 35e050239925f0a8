"""`ape run deploy`: deploy the Ballast market and write its address book.

On a local network it uses test account 0. Elsewhere it needs `--account` and asks before
broadcasting. Tokens and feeds are the mock ones of `offchain_risk.devnet` (a sandbox market
whose feeder key is the deployer).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, network_option

from offchain_risk import devnet


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "alias", default=None, help="Ape account alias (non-local networks)")
@click.option(
    "--params",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Parameter set from `python -m offchain_risk calibrate` to apply after listing",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Address book to write (default deployments/<network>.json)",
)
def cli(network, alias, params, out):
    """Deploy tokens, feeds and the engine; list the markets; write the address book."""
    if network.is_local:
        deployer = accounts.test_accounts[0]
    else:
        if alias is None:
            raise click.UsageError("--account is required on a non-local network")
        deployer = accounts.load(alias)
        click.confirm(f"Deploy Ballast to {network.name} from {deployer.address}?", abort=True)
    parsed = None
    if params is not None:
        parsed = json.loads(params.read_text())
        for key in ("shocks_bps", "haircut_bps", "floor_bps", "im_multiplier_wad"):
            if key not in parsed:
                raise click.BadParameter(f"{params} has no {key!r}", param_hint="--params")
    d = devnet.deploy(project, deployer)
    if parsed is not None:
        done = devnet.apply_params(d, parsed, deployer)
        click.echo(f"applied calibrated parameters for {', '.join(done)}")
    book = {"network": network.name, "chain_id": network.chain_id, **d.addresses()}
    path = out or Path("deployments") / f"{network.ecosystem.name}-{network.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(book, indent=2) + "\n")
    click.echo(json.dumps(book, indent=2))
    click.echo(f"wrote {path}")
