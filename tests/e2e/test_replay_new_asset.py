"""A replay of a symbol the devnet has no hand-written listing for: the risk engine lists it
from its own price file in a data folder of the user's choice (``data_dir``).

The folder holds BTC and ETH as they are and "XRP", LINK's bars scaled by 0.05 (a symbol
absent from ``devnet.REPLAY_SPECS`` with a real history), written for the test only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offchain_risk import devnet
from offchain_risk.replay.path import load_path
from offchain_risk.replay.replay import ReplayConfig, healths, run_replay
from offchain_risk.replay.txs import lean_web3

pytestmark = pytest.mark.data
ASSETS = ("BTC", "ETH", "XRP")


def _scaled(src: Path, dst: Path, factor: float) -> None:
    lines = src.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[1:5] = [f"{float(x) * factor:.8f}" for x in cells[1:5]]
        out.append(",".join(cells))
    dst.write_text("\n".join(out) + "\n")


@pytest.fixture(scope="module")
def folder(data_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("market")
    for freq in ("1h", "1d"):
        (root / "prices" / freq).mkdir(parents=True)
        for symbol in ("BTC", "ETH"):
            (root / "prices" / freq / f"{symbol}.csv").symlink_to(
                data_dir / "prices" / freq / f"{symbol}.csv"
            )
        _scaled(data_dir / "prices" / freq / "LINK.csv", root / "prices" / freq / "XRP.csv", 0.05)
    return root


def test_replay__symbol_without_hand_written_listing__calibrated_and_replayed(
    project, accounts, chain, folder
):
    assert "XRP" not in devnet.REPLAY_SPECS
    path = load_path(ASSETS, "2020-03-12T00:00", "2020-03-12T23:00", max_hours=3, data_dir=folder)
    config = ReplayConfig(n_accounts=8, seed=7, baseline=False, data_dir=str(folder))
    replay = run_replay(project, lean_web3(chain.provider.uri), list(accounts), path, config)
    listing = replay.listing
    assert listing.calibrated == ASSETS and listing.fallback == ()
    ballast = replay.venues[0]
    # deployed with the calibrated row (the manifest records what was listed), and traded
    listed = ballast.manifest["markets"]["XRP"]["shocks_bps"]
    assert listed == [int(s) for s in listing.shocks_bps[ASSETS.index("XRP")]]
    assert listed != [int(s) for s in devnet.DEFAULT_SHOCKS_BPS[-1]]
    assert any(s.size[ASSETS.index("XRP")] for s in ballast.seeded.specs)
    assert len(ballast.ratio) == path.n_steps
    for state in healths(ballast.deployment.engine, ballast.seeded.accounts):
        assert state.prices_ok


def test_load_path__data_dir_without_the_symbol__error_names_the_file(folder):
    with pytest.raises(ValueError, match=r"no .*prices/1h/SOL\.csv"):
        load_path(("BTC", "SOL"), "2020-03-12", "2020-03-13", data_dir=folder)
