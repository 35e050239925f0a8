"""Operator files: the Prometheus alert rules name only metrics the keeper exports, and
``keeper-status`` prints each store's last tick."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from offchain_risk.__main__ import cli
from offchain_risk.keeper.keeper import STATUS_KEY
from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.status import read_status, render
from offchain_risk.keeper.store import Store
from offchain_risk.units import WAD

RULES = Path(__file__).resolve().parents[2] / "deployments" / "prometheus" / "keeper-alerts.yml"
REQUIRED = {"KeeperHeadLag", "KeeperFailedSends", "KeeperSignerBalanceLow", "KeeperUnhealthy"}


def _exported() -> set[str]:
    m = Metrics()
    m.signer_balance.labels("0x0").set(1)
    m.asset_state.labels("0").set(0)
    m.vol_refused.labels("butterfly").inc(0)
    return {s.name for fam in m.registry.collect() for s in fam.samples}


def test_alert_rules__load_and_name_only_exported_metrics():
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert REQUIRED <= {r["alert"] for r in rules}
    exported = _exported()
    for r in rules:
        names = set(re.findall(r"\bkeeper_[a-z_]+", r["expr"]))
        assert names and names <= exported, (r["alert"], names - exported)


def _store(path: Path, status: dict | None) -> Path:
    store = Store(path)
    if status is not None:
        store.set_meta(STATUS_KEY, json.dumps(status))
    store.close()
    return path


def test_keeper_status__prints_every_store(tmp_path):
    now = 1_000.0
    a = _store(
        tmp_path / "keeper-a.db",
        {
            "time": now - 3,
            "head": 120,
            "head_lag": 1,
            "accounts": 10_000,
            "at_risk": 7,
            "blocked": 1,
            "excluded": 0,
            "in_flight": 4,
            "signer": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
            "signer_balance_wei": 3 * WAD // 2,
            "last_error": "ConnectionError: refused",
            "last_error_time": now - 60,
        },
    )
    b = _store(tmp_path / "keeper-b.db", None)
    assert read_status(a)["at_risk"] == 7
    lines = render([a, b], now=now).splitlines()
    assert lines[0].split()[:3] == ["store", "age", "s"]
    assert "10,000" in lines[1] and "1.5000" in lines[1] and "60s ago: ConnectionError" in lines[1]
    assert lines[2].endswith("no tick recorded")
    out = CliRunner().invoke(cli, ["keeper-status", str(a), str(b)])
    assert out.exit_code == 0 and "keeper-a.db" in out.output


def test_keeper_status__missing_store__clear_error(tmp_path):
    out = CliRunner().invoke(cli, ["keeper-status", str(tmp_path / "nope.db")])
    assert out.exit_code != 0 and "no keeper store" in out.output
