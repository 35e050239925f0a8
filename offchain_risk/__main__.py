"""Command line: ``python -m offchain_risk calibrate|backtest|keeper|keeper-status``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from offchain_risk.backtest.engine import BacktestConfig as BacktestDefaults
from offchain_risk.calibrate import CalibrationConfig as CalibrationDefaults
from offchain_risk.data import DataNotFoundError, available_assets, load_panel, parse_time
from offchain_risk.units import MAX_SCENARIOS

DEFAULT_BACKTEST_ASSETS = "BTC,ETH,BNB,LINK"


def _assets(value: str | None, data_dir: str | None) -> list[str]:
    known = available_assets("1h", data_dir)
    if not value:
        return known
    names = [a.strip().upper() for a in value.split(",") if a.strip()]
    unknown = [a for a in names if a not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown asset(s) {unknown}; hourly data exists for {known}", param_hint="--assets"
        )
    if len(set(names)) != len(names):
        raise click.BadParameter(f"duplicate assets in {names}", param_hint="--assets")
    return names


def _time(value: str | None, hint: str) -> np.datetime64 | None:
    try:
        return parse_time(value, hint)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _engine_options(command):
    """The risk engine's options, shared by ``calibrate`` and ``backtest`` (defaults: the
    production calibration, ``CalibrationConfig``)."""
    options = [
        click.option(
            "--alpha",
            default=CalibrationDefaults.alpha,
            type=click.FloatRange(0.9, 0.9999),
            show_default=True,
            help="ES confidence level.",
        ),
        click.option(
            "--horizon-hours",
            default=CalibrationDefaults.horizon_hours,
            type=click.IntRange(1, 24),
            show_default=True,
            help="Margin horizon (default: the margin period of risk, models/horizon.py).",
        ),
        click.option(
            "--close-out-usd",
            default=CalibrationDefaults.close_out_position_usd,
            type=click.FloatRange(0.0, 1e12),
            show_default=True,
            help="Close-out size whose square-root impact widens every scenario (0: no add-on).",
        ),
        click.option(
            "--k",
            "k",
            default=CalibrationDefaults.k,
            type=click.IntRange(1, MAX_SCENARIOS),
            show_default=True,
            help=f"Number of joint scenarios (the chain holds at most {MAX_SCENARIOS}).",
        ),
        click.option(
            "--window-days",
            default=BacktestDefaults.window_days,
            type=click.IntRange(14, 5000),
            show_default=True,
            help="Hourly history the scenarios are built from, at most.",
        ),
        click.option(
            "--floor-bps",
            default=CalibrationDefaults.floor_bps,
            type=click.IntRange(0, 10_000),
            show_default=True,
        ),
        click.option(
            "--stress-weight",
            default=CalibrationDefaults.stress_weight,
            type=click.FloatRange(0.0, 1.0),
            show_default=True,
            help="Probability on the stressed period's daily moves (0 = current period only).",
        ),
        click.option(
            "--stress-window-days",
            default=CalibrationDefaults.stress_window_days,
            type=click.IntRange(30, 3650),
            show_default=True,
            help="Length of the stressed period searched in the daily bars.",
        ),
        click.option(
            "--data-dir",
            default=None,
            help="Market data folder (default: $BALLAST_DATA_DIR or ../shared/data).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def cli() -> None:
    """Ballast off-chain risk engine: calibrate risk parameters and backtest them."""


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file to write the parameter set to.",
)
@click.option(
    "--asof",
    default=None,
    help="Calibrate with data up to this UTC time " "(default: the last bar).",
)
@click.option(
    "--assets", default=None, help="Comma-separated symbols (default: every hourly " "file)."
)
@click.option(
    "--vol-model",
    default="ewma",
    type=click.Choice(["ewma", "garch"]),
    show_default=True,
    help="Filter of the historical simulation.",
)
@_engine_options
def calibrate(
    out: Path,
    asof: str | None,
    assets: str | None,
    alpha: float,
    horizon_hours: int,
    k: int,
    window_days: int,
    floor_bps: int,
    stress_weight: float,
    stress_window_days: int,
    close_out_usd: float,
    vol_model: str,
    data_dir: str | None,
) -> None:
    """Write a risk-parameter set (shocks, haircuts, floor, IM multiplier) as JSON."""
    from offchain_risk.calibrate import CalibrationConfig
    from offchain_risk.calibrate import calibrate as run_calibration

    try:
        names = _assets(assets, data_dir)
        end = _time(asof, "--asof")
        panel = load_panel(names, "1h", end=end, data_dir=data_dir)
        start = panel.timestamps[-1] - np.timedelta64(window_days, "D")
        panel = panel.between(start, None)
        if panel.timestamps.size < 60 * 24:
            raise click.BadParameter(
                f"only {panel.timestamps.size} common hourly bars up to {panel.timestamps[-1]} "
                f"for {names}; need 60 days",
                param_hint="--asof",
            )
        cfg = CalibrationConfig(
            alpha,
            horizon_hours,
            k,
            floor_bps,
            vol_model,
            stress_weight=stress_weight,
            stress_window_days=stress_window_days,
            close_out_position_usd=close_out_usd,
        )
        daily = load_panel(names, "1d", data_dir=data_dir) if stress_weight > 0 else None
        click.echo(
            f"calibrating on {panel.timestamps.size} hourly bars of {', '.join(names)}", err=True
        )
        params = run_calibration(panel, cfg, daily, data_dir)
    except (DataNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(params, indent=2) + "\n")
    meta = params["metadata"]
    click.echo(
        f"wrote {out}: {len(names)} assets, K={meta['k']}, scale "
        f"{meta['scenario_scale']:.3f}, IM multiplier {meta['im_multiplier']['value']:.4f}"
    )


@cli.command()
@click.option(
    "--out",
    "out",
    default="docs/backtest",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--assets",
    default=DEFAULT_BACKTEST_ASSETS,
    show_default=True,
    help="Comma-separated symbols; must include BTC and ETH.",
)
@click.option("--start", default="2020-03-01", show_default=True, help="First rebalance day (UTC).")
@click.option("--end", default=None, help="Last data time used (default: the last bar).")
@click.option(
    "--tested-level",
    default=BacktestDefaults.tested_level,
    type=click.FloatRange(0.0001, 0.5),
    show_default=True,
    help="Exceedance probability the Kupiec test is run against.",
)
@click.option("--random-books", default=1000, type=click.IntRange(1, 100_000), show_default=True)
@_engine_options
@click.option(
    "--workers",
    default=2,
    type=click.IntRange(1, 64),
    show_default=True,
    help="Processes the rebalance steps are spread over (the result does not depend on it).",
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def backtest(
    out: Path,
    assets: str,
    start: str,
    end: str | None,
    alpha: float,
    tested_level: float,
    stress_weight: float,
    stress_window_days: int,
    horizon_hours: int,
    close_out_usd: float,
    k: int,
    window_days: int,
    floor_bps: float,
    random_books: int,
    data_dir: str | None,
    workers: int,
    progress: bool,
) -> None:
    """Rolling out-of-sample backtest; writes README.md and PNG figures to --out."""
    from offchain_risk.backtest import BacktestConfig, run_backtest
    from offchain_risk.report import write_backtest_report

    try:
        names = _assets(assets, data_dir)
        t0, t1 = _time(start, "--start"), _time(end, "--end")
        panel = load_panel(names, "1h", end=t1, data_dir=data_dir)
        daily = load_panel(names, "1d", data_dir=data_dir) if stress_weight > 0 else None
        cfg = BacktestConfig(
            alpha=alpha,
            tested_level=tested_level,
            stress_weight=stress_weight,
            stress_window_days=stress_window_days,
            horizon_hours=horizon_hours,
            close_out_position_usd=close_out_usd,
            k=k,
            window_days=window_days,
            floor_bps=floor_bps,
            n_random_books=random_books,
        )
        result = run_backtest(panel, cfg, start=t0, progress=progress, daily=daily, workers=workers)
    except (DataNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    path = write_backtest_report(result, out)
    click.echo(result.summary())
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--network", default="ethereum:local:foundry", show_default=True)
@click.option(
    "--manifest",
    "manifest_path",
    default="deployments/local.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The deployment's manifest, as `ape run deploy` writes it (and --deploy).",
)
@click.option(
    "--deploy", is_flag=True, help="Deploy --config first (local networks; replaces --manifest)."
)
@click.option(
    "--config",
    "config_path",
    default="deployments/config/local.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deploy config for --deploy.",
)
@click.option(
    "--db",
    default="keeper.db",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite state (index, transactions).",
)
@click.option("--account", default=None, help="Ape account alias, or test:N. None: dry run.")
@click.option("--sender", default=None, help="Dry run: the address simulations run from.")
@click.option("--metrics-port", type=int, default=None, help="Serve /metrics and /health.")
@click.option("--poll", "poll_interval", type=float, default=1.0, show_default=True)
@click.option("--start-block", type=int, default=None, help="Default: the manifest's block.")
@click.option("--max-fee-gwei", type=float, default=500.0, show_default=True)
@click.option("--once", is_flag=True, help="Run one tick, print it and exit.")
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--risk-params",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Calibrated parameters (calibrate --out): enables signed risk updates.",
)
@click.option("--risk-signers", default=None, help="Comma-separated Ape aliases (or test:N).")
@click.option("--relayer", default=None, help="Ape account that submits the updates.")
@click.option("--risk-interval", type=float, default=3_600.0, show_default=True)
@click.option(
    "--vol-signers",
    default=None,
    help="Comma-separated Ape aliases (or test:N) of the vol feed's signers: the keeper "
    "publishes vol surfaces hourly through the manifest's vol_feed (needs --account).",
)
def keeper(
    network: str,
    manifest_path: Path,
    deploy: bool,
    config_path: Path,
    db: Path,
    account: str | None,
    sender: str | None,
    metrics_port: int | None,
    poll_interval: float,
    start_block: int | None,
    max_fee_gwei: float,
    once: bool,
    log_level: str,
    risk_params: Path | None,
    risk_signers: str | None,
    relayer: str | None,
    risk_interval: float,
    vol_signers: str | None,
) -> None:
    """Run the keeper: index, scan and liquidate every block (dry run without --account)."""
    from offchain_risk.keeper import runner

    if account is None and sender is None:
        raise click.BadParameter("a dry run needs --sender (or sign with --account)")
    if not deploy and not manifest_path.exists():
        raise click.BadParameter(
            f"{manifest_path} not found: run `ape run deploy`, or pass --deploy",
            param_hint="--manifest",
        )
    risk = None
    if risk_params is not None:
        if not risk_signers or not relayer:
            raise click.BadParameter("--risk-params needs --risk-signers and --relayer")
        risk = {
            "params_path": risk_params,
            "signer_names": [n.strip() for n in risk_signers.split(",") if n.strip()],
            "relayer_name": relayer,
            "interval": risk_interval,
        }
    vol = None
    if vol_signers:
        if account is None:
            raise click.BadParameter("--vol-signers needs --account: the keeper sends them")
        vol = [n.strip() for n in vol_signers.split(",") if n.strip()]
    runner.setup_logging(log_level)
    from offchain_risk.deploy import ConfigError, ManifestError

    try:
        summaries = runner.run(
            network,
            manifest_path,
            db,
            account,
            sender,
            deploy=deploy,
            config_path=config_path,
            metrics_port=metrics_port,
            poll_interval=poll_interval,
            once=once,
            start_block=start_block,
            max_fee_gwei=max_fee_gwei,
            risk=risk,
            vol_signers=vol,
        )
    except (ConfigError, ManifestError) as exc:
        raise click.ClickException(str(exc)) from exc
    for summary in summaries:
        click.echo(json.dumps(summary))


@cli.command("keeper-status")
@click.argument("stores", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
def keeper_status(stores: tuple[Path, ...]) -> None:
    """Each keeper worker's last tick from its store (default: keeper*.db here): head lag,
    accounts, at-risk, in flight, signer balance, last error."""
    from offchain_risk.keeper.status import render

    paths = list(stores) or sorted(Path.cwd().glob("keeper*.db"))
    if not paths:
        raise click.ClickException("no keeper store given and no keeper*.db here")
    try:
        click.echo(render(paths))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    cli()
