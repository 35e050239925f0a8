"""``python -m offchain_risk keeper-status DB...``: every keeper worker's last tick, from its
store (each ``Keeper.tick`` writes it to the store's meta): head lag, accounts, at-risk,
in flight, signer balance, last error. Reads the SQLite files only: no node, no broker."""

from __future__ import annotations

import json
import time
from pathlib import Path

from offchain_risk.keeper.keeper import STATUS_KEY
from offchain_risk.keeper.store import Store
from offchain_risk.units import WAD

COLUMNS = (
    "store",
    "age s",
    "head",
    "lag",
    "accounts",
    "at risk",
    "blocked",
    "excluded",
    "in flight",
    "signer",
    "balance ETH",
    "last error",
)


def read_status(path: str | Path) -> dict:
    """The last tick a keeper recorded in the store at ``path`` (empty: none yet)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no keeper store at {path}")
    store = Store(path)
    try:
        return json.loads(store.get_meta(STATUS_KEY) or "{}")
    finally:
        store.close()


def row(path: str | Path, status: dict, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    if not status:
        return [str(path), "-", *(["-"] * (len(COLUMNS) - 3)), "no tick recorded"]
    balance = status.get("signer_balance_wei")
    error = status.get("last_error") or ""
    if error and status.get("last_error_time"):
        error = f"{now - status['last_error_time']:.0f}s ago: {error}"[:80]
    signer = status.get("signer") or "dry run"
    return [
        str(path),
        f"{now - status['time']:.0f}",
        str(status.get("head", "-")),
        str(status.get("head_lag", "-")),
        f"{status.get('accounts', 0):,}",
        str(status.get("at_risk", "-")),
        str(status.get("blocked", "-")),
        str(status.get("excluded", "-")),
        str(status.get("in_flight", "-")),
        signer[:10] + ("..." if len(signer) > 10 else ""),
        "-" if balance is None else f"{balance / WAD:.4f}",
        error,
    ]


def render(paths: list[str | Path], now: float | None = None) -> str:
    """A fixed-width table, one line per store."""
    rows = [list(COLUMNS)] + [row(p, read_status(p), now) for p in paths]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
