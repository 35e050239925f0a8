"""`ape console`: the helpers print aligned tables with units, and return values whose repr
is one line (IPython echoes them)."""

from __future__ import annotations

import re
from pathlib import Path

from ape_console._cli import import_extras_file

_PATH = Path(__file__).resolve().parents[2] / "ape_console_extras.py"


def _extras():
    """As `ape console` loads the file: not registered in sys.modules."""
    return import_extras_file(_PATH)


def _ends(line: str) -> list[int]:
    return [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)]


def test_show__prints_usd_report__returns_one_line_repr(accounts, project, capsys):
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    assert "\n" not in repr(d) and "4 markets (ETH, BTC, SOL, LINK)" in repr(d)
    trader = names["trader"]
    names["deposit"](trader, "USDC", 50_000)
    names["open_position"](trader, "ETH", -5)
    capsys.readouterr()
    s = names["show"](trader)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"account {trader.address} / sub-account 0"
    assert out[1].split() == ["cash", "equity", "MM", "IM", "health", "E/MM"]
    assert out[2].split()[:3] == ["USD", "50,000.00", "50,000.00"]
    assert _ends(out[1]) == _ends(out[2])[1:]
    assert out[4].split() == ["ETH", "-", "-5.0000", "2,000.00", "2,000.00"]
    assert repr(s).startswith(f"<AccountState {str(trader.address)[:6]}…")
    assert "\n" not in repr(s) and repr(s).endswith(" USD>")
    assert s.cash == 50_000 * 10**18  # still the state, in WAD


def test_health_table__large_values__aligned_columns(accounts, project, capsys):
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    names["deploy"]()  # the desk holds 10,000,000 USDC
    trader = names["trader"]
    names["deposit"](trader, "USDC", 4_348.48)
    names["open_position"](trader, "BTC", 0.1)
    capsys.readouterr()
    rows = names["health_table"]()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 accounts, least healthy first (USD)"
    header, *lines = out[1:]
    assert header.split() == ["owner", "sub", "equity", "MM", "IM", "health", "E/MM"]
    # the owner column is left-aligned; every other column ends where its header ends
    assert all(_ends(line)[1:] == _ends(header)[1:] for line in lines), "\n".join(out)
    desk = next(line for line in lines if line.startswith(f"0x{names['desk'].address[2:].lower()}"))
    assert "10,000,000.00" in desk.split()
    assert repr(rows) == "<2 accounts, 0 below maintenance margin>"


def test_liquidate__account_above_mm__says_so_and_sends_nothing(accounts, project, capsys):
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    trader = names["trader"]
    names["deposit"](trader, "USDC", 50_000)
    names["open_position"](trader, "ETH", -5)
    capsys.readouterr()
    before = d.liquidations.Liquidated.query("*").shape[0]
    assert names["liquidate"](trader) is None
    assert "at or above MM, nothing to liquidate" in capsys.readouterr().out
    assert d.liquidations.Liquidated.query("*").shape[0] == before


def test_vault_shares__listed_funded_shown_liquidated(accounts, project, capsys):
    """Vault shares end to end in the console: list, deposit through the vault, show, rate,
    a slashing, and the desk's liquidation."""
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    trader, owner = names["trader"], names["owner"]
    asset = names["list_vault"]("sWETH", "ETH", "liquid_staking")
    assert d.symbols["sWETH"] == asset and names["sWETH"].asset() == d.tokens[0].address
    names["deposit"](trader, "sWETH", 10)  # 10 WETH into the vault, every share deposited
    names["open_position"](trader, "ETH", -8)
    capsys.readouterr()
    rate, cap = names["vault_rate"]("sWETH")
    assert rate == 1.0 and 1.0 <= cap < 1.000001  # the cap grows by the second
    s = names["show"](trader)
    out = capsys.readouterr().out
    assert "sWETH" in out and "sWETH: 1.000000 ETH per share (cap 1.0000" in out
    assert "quote:" not in out  # no quote feed: cash at par
    a = names["account_id"](str(trader.address), 0)
    assert s.cash == 0 and d.engine.collateral(a, asset) == 10 * 10**18
    vault = names["sWETH"]
    vault.slash(vault.totalAssets() * 9 // 10, owner, sender=owner)  # the rate falls 90%
    assert names["vault_rate"]("sWETH")[0] < 0.11
    names["liquidate"](trader)
    assert d.engine.collateral(a, asset) < 10 * 10**18


def test_show__funding_on__prints_rate_cap_and_what_the_position_owes(
    accounts, project, chain, capsys
):
    """With funding on, `show` prints the rate in force, the cap and the unsettled funding:
    a short 5 ETH at 2,000 USD receives an hour of 0.01%/h interest, 1.00 USD."""
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    trader, owner = names["trader"], names["owner"]
    d.engine.set_funding_params(0, 8, 10**14, 10**15, sender=owner)  # ETH: 0.01%/h interest
    names["deposit"](trader, "USDC", 50_000)
    tx = names["open_position"](trader, "ETH", -5)  # the hour's first touch: the rate is set
    chain.mine(timestamp=chain.provider.get_block(tx.block_number).timestamp + 3600)
    capsys.readouterr()
    s = names["show"](trader)
    out = capsys.readouterr().out
    assert "ETH funding: +0.01000%/h (cap 0.1000%/h), owes -1.00 USD unsettled" in out
    assert "BTC funding" not in out  # funding never on there
    assert s.equity == 50_000 * 10**18 + 10**18  # in equity already, not yet in cash
    assert s.cash == 50_000 * 10**18


def test_options__listed_traded_liquidated_settled_from_the_console(
    accounts, project, chain, capsys
):
    """Options end to end in the console: the book and a vol curve on first use, a short
    call from the desk, its margin in `show`, the desk's liquidation after a rally, and
    settlement to cash after expiry."""
    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    trader = names["trader"]
    ids = names["list_options"]("ETH", days=7, strikes=[2_200])
    assert set(ids) == {(2_200, "call"), (2_200, "put")}
    book = names["options"]
    call = ids[(2_200, "call")]
    names["deposit"](trader, "USDC", 400)
    a = names["account_id"](str(trader.address), 0)
    names["trade_option"](trader, call, -1, 40)  # sells one call to the desk at $40
    assert book.size(a, call) == -(10**18) and d.engine.cash(a) == 440 * 10**18
    equity, mm, _ = d.engine.margin(a)
    assert 0 < mm < equity
    names["set_price"]("ETH", 2_400)
    assert d.engine.margin(a)[0] < d.engine.margin(a)[1]  # below maintenance
    names["liquidate"](trader)
    left = book.size(a, call)
    assert -(10**18) < left <= 0
    chain.pending_timestamp = book.instrument(call).expiry + 60
    names["set_price"]("ETH", 2_300)
    capsys.readouterr()
    cash = d.engine.cash(a)
    names["settle_options"](trader)
    assert d.engine.cash(a) - cash == left * 100  # (2,300 - 2,200) per call, WAD
    assert "settled to cash: " in capsys.readouterr().out
    assert list(book.account_legs(a)) == []


def test_options__book_already_installed__the_console_uses_it_and_its_signers(accounts, project):
    """An engine whose option book a deploy config installed (`[options]`): the console lists
    and publishes on that book and its vol feed, signed by the feed's signers among the
    node's test accounts, instead of installing a second one (which the engine refuses)."""
    from offchain_risk import devnet

    names = _extras().ape_init_extras(accounts=accounts, project=project)
    d = names["deploy"]()
    owner = accounts[0]
    signers = sorted(accounts[6:9], key=lambda a: int(str(a), 16))
    feed = devnet.deploy_vol_feed(project, owner, signers, 2, {d.symbols["ETH"]: 86_400})
    grid = {d.symbols["ETH"]: (100 * 10**18, 15 * 10**16, 50)}
    installed = devnet.deploy_option_book(project, d, owner, feed, grid)
    nonce = feed.next_nonce()
    ids = names["list_options"]("ETH", days=7, strikes=[2_200])
    assert names["options"].address == installed.address
    assert names["vol_feed"].address == feed.address
    assert feed.next_nonce() == nonce + 1  # the curve, signed 2 of the feed's 3
    assert all(installed.listed(i) for i in ids.values())
    assert d.engine.option_book() == installed.address
