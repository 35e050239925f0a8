"""`ape console` helpers print for a person: aligned columns, units, one-line reprs.

No chain here: the formatting of ape_console_extras on hand-made states (the helpers
themselves run against anvil in tests/contracts/test_console.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from ape_console._cli import import_extras_file

# Loaded as `ape console` loads it (not registered in sys.modules).
extras = import_extras_file(Path(__file__).resolve().parents[2] / "ape_console_extras.py")

WAD = 10**18
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def columns(line: str) -> list[tuple[int, int]]:
    """(start, end) of each cell: cells are separated by at least two spaces."""
    return [m.span() for m in re.finditer(r"\S+(?: \S+)*", line)]


def test_table__large_values__never_run_together():
    rows = [["a", "9,999,200.00", "4,348.48"], ["b", "1.00", "12,345,678,901.25"]]
    out = extras.table(["who", "equity", "MM"], rows).splitlines()
    assert out[1].split() == ["a", "9,999,200.00", "4,348.48"]
    assert out[2].split() == ["b", "1.00", "12,345,678,901.25"]
    # right-aligned numbers: every line's cells end at the same columns
    ends = [[end for _, end in columns(line)][1:] for line in out]
    assert ends[0] == ends[1] == ends[2]


def state(**kw) -> object:
    values = dict(
        account=(int(OWNER, 16) << 96) | 1,
        owner=OWNER,
        sub_id=1,
        cash=12_345_678 * WAD,
        equity=9_999_200 * WAD,
        mm=4_348_480 * WAD // 1000,
        im=6_522_720 * WAD // 1000,
        health=9_994_851_520 * WAD // 1000,
        prices_ok=True,
        assets=[
            SimpleNamespace(
                asset=0,
                collateral=0,
                size=-5 * WAD,
                open_notional=-10_000 * WAD,
                price=2_300 * WAD,
                price_ok=True,
            ),
            SimpleNamespace(
                asset=1,
                collateral=WAD // 10,
                size=0,
                open_notional=0,
                price=60_000 * WAD,
                price_ok=False,
            ),
        ],
        symbols=("ETH", "BTC"),
    )
    values = {**values, **kw}
    symbols = values.pop("symbols")
    return extras.ShownState.of(SimpleNamespace(**values), symbols)


def test_shown_state__repr__is_one_line_in_usd():
    text = repr(state())
    assert "\n" not in text
    assert text == (
        "<AccountState 0x7099…79C8/1: equity 9,999,200.00 MM 4,348.48 health 9,994,851.52 USD>"
    )


def test_shown_state__report__aligned_with_units_and_legs():
    lines = state().report().splitlines()
    assert lines[0] == f"account {OWNER} / sub-account 1"
    assert lines[1].split() == ["cash", "equity", "MM", "IM", "health", "E/MM"]
    assert lines[2].split() == [
        "USD", "12,345,678.00", "9,999,200.00", "4,348.48", "6,522.72", "9,994,851.52", "2,299.47",
    ]  # fmt: skip
    assert [end for _, end in columns(lines[1])] == [end for _, end in columns(lines[2])][1:]
    assert lines[3].split() == ["asset", "collateral", "perp", "size", "entry", "price", "(USD)"]
    assert lines[4].split() == ["ETH", "-", "-5.0000", "2,000.00", "2,300.00"]
    assert lines[5].split() == ["BTC", "0.1000", "-", "-", "60,000.00", "invalid"]


def test_shown_state__invalid_price__said_in_the_heading():
    assert state(prices_ok=False).report().splitlines()[0].endswith("[a price is invalid]")


def test_health_rows__repr__counts_accounts_below_mm():
    m = lambda e, mm: SimpleNamespace(equity=e * WAD, mm=mm * WAD)  # noqa: E731
    rows = extras.HealthRows([(1, m(5, 10)), (2, m(10, 5)), (3, m(0, 0))])
    assert repr(rows) == "<3 accounts, 1 below maintenance margin>"
    assert [account for account, _ in rows] == [1, 2, 3]  # still the rows


def test_make_console__starts_without_the_pydantic_warning():
    """ape-vyper's config model warns (IncompleteFieldDefinitionWarning) whenever it loads;
    `make console` filters exactly that message."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    makefile = (root / "Makefile").read_text()
    match = re.search(r"^console: export PYTHONWARNINGS := (.+)$", makefile, re.M)
    assert match, "the console target sets PYTHONWARNINGS"
    load = "from ape import config; config.get_config('vyper')"

    def stderr(env: dict) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", load], cwd=root, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    assert "IncompleteFieldDefinitionWarning" in stderr(env)  # the filter is still needed
    assert "Warning" not in stderr({**env, "PYTHONWARNINGS": match.group(1)})
