from conftest import ETH, WAD, acct


def test_deploy__lists_four_markets(lens, engine, funded, trade, trader, maker):
    assert engine.num_assets() == 4
    trade(ETH, 10 * WAD, 2000)
    assert engine.position(acct(trader), ETH)[0] == -10 * WAD
    assert engine.position(acct(maker), ETH)[0] == 10 * WAD
    print(lens.account_state(acct(trader)))
