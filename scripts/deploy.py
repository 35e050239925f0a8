"""`ape run deploy`: deploy Ballast from a config file and write its manifest.

    ape run deploy --network ethereum:local:foundry                 # deployments/config/local.toml
    ape run deploy --config deployments/config/sepolia.toml --network ethereum:sepolia \
        --account deployer

The manifest (addresses, block, parameters) goes to ``deployments/<config name>.json``; an
existing one is never replaced without ``--force``. On a local network the deployer is test
account 0 and the feeds and tokens are mocks; elsewhere ``--account`` is required, the config
must name existing feeds and tokens, and the deploy asks for confirmation first. A config's
``[options]`` deploys an option book over its ``[vol_feed]`` and installs it on the engine
(``contracts.option_book`` in the manifest).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, network_option

from offchain_risk import deploy

DEFAULT_CONFIG = Path("deployments/config/local.toml")


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Deploy config (TOML)",
)
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
    help="Manifest to write (default: deployments/<config name>.json)",
)
@click.option("--force", is_flag=True, help="Replace an existing manifest")
def cli(network, config_path, alias, params, out, force):
    """Deploy the engine, markets, feeds, risk governor, vol feed and option book of a config;
    write the manifest."""
    try:
        cfg = deploy.load_config(config_path)
    except deploy.ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    parsed = None
    if params is not None:
        parsed = json.loads(params.read_text())
        for key in ("shocks_bps", "haircut_bps", "floor_bps", "im_multiplier_wad"):
            if key not in parsed:
                raise click.BadParameter(f"{params} has no {key!r}", param_hint="--params")
    if network.is_local:
        deployer = accounts.test_accounts[0]
    else:
        if alias is None:
            raise click.UsageError("--account is required on a non-local network")
        deployer = accounts.load(alias)
    out = out or deploy.manifest_path(config_path)
    try:
        manifest = deploy.run_deploy(
            project,
            network,
            deployer,
            cfg,
            config_path,
            out,
            force=force,
            params=parsed,
            confirm=lambda q: click.confirm(q, default=False),
            echo=click.echo,
        )
    except (deploy.ManifestExistsError, deploy.ConfigError, deploy.DeployAborted) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(manifest["contracts"], indent=2))
    click.echo(f"wrote {out} (block {manifest['block']})")
