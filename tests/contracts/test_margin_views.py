import ape
from conftest import BTC, ETH, IM_MULTIPLIER, SHOCKS, SOL, USDC, WAD, acct


def _ceil(x: int, d: int) -> int:
    return -((-x) // d)


def test_margin__weth_collateral_with_equal_short__floor_only(
    engine, usdc, weth, fund, maker, trade, trader
):
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, weth, 25 * WAD)
    trade(ETH, 25 * WAD, 2000)  # trader shorts 25 ETH against 25 WETH
    _, mm, im = engine.margin(acct(trader))
    floor = (25 + 25) * 2000 * WAD * 100 // 10_000  # 1% of each gross leg
    assert mm == floor == 1_000 * WAD
    assert im == floor * IM_MULTIPLIER // WAD
    # equity: WETH at 98% (2% haircut); the short is flat at the oracle price
    assert engine.equity(acct(trader)) == 25 * 2000 * WAD * 9_800 // 10_000


def test_margin__btc_eth_pair__worst_joint_scenario(engine, usdc, fund, maker, trade, trader):
    fund(maker, usdc, 2_000_000 * USDC)
    fund(trader, usdc, 200_000 * USDC)
    trade(BTC, -5 * WAD, 60_000)  # trader long 5 BTC  (300,000)
    trade(ETH, 120 * WAD, 2_000)  # trader short 120 ETH (240,000)
    exposure = {BTC: 300_000 * WAD, ETH: -240_000 * WAD}
    losses = [
        _ceil(-sum(exposure[a] * int(SHOCKS[a][k]) for a in exposure), 10_000)
        for k in range(len(SHOCKS[0]))
    ]
    floor = 540_000 * WAD * 100 // 10_000
    worst = max(losses)
    assert worst > floor
    assert engine.margin(acct(trader))[1] == worst
    naked = max(_ceil(-exposure[BTC] * int(s), 10_000) for s in SHOCKS[BTC]) + max(
        _ceil(-exposure[ETH] * int(s), 10_000) for s in SHOCKS[ETH]
    )
    assert worst < naked / 2  # the hedge offsets more than half of the isolated margin


def test_health__sign_flips_when_underwater(
    lens, engine, usdc, fund, feeds, owner, maker, trade, trader
):
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, usdc, 24_000 * USDC)
    trade(SOL, -300 * WAD, 150)  # trader long 300 SOL
    assert engine.health(acct(trader)) > 0
    feeds[SOL].set_price(105 * 10**8, sender=owner)
    assert engine.health(acct(trader)) < 0
    state = lens.account_state(acct(trader))
    assert state.health == engine.health(acct(trader))
    assert state.equity == 24_000 * WAD - 300 * 45 * WAD


def test_views__invalid_price__strict_views_revert_state_flags(
    lens, engine, weth, feeds, owner, trader, fund
):
    fund(trader, weth, WAD)
    feeds[ETH].set_round(0, 1, 2, 2, sender=owner)
    for view in (engine.equity, engine.margin, engine.health):
        with ape.reverts("oracle: invalid price"):
            view(acct(trader))
    # The account view is the liquidation valuation: collateral without a price counts at
    # zero (and blocks nothing); each asset still reports its feed's validity.
    state = lens.account_state(acct(trader))
    assert state.prices_ok and state.equity == 0
    assert [(a.asset, a.collateral, a.price, a.price_ok) for a in state.assets] == [
        (ETH, WAD, 0, False)
    ]


def test_account_state__lists_active_assets(lens, engine, usdc, weth, fund, maker, trade, trader):
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, usdc, 50_000 * USDC)
    fund(trader, weth, 2 * WAD)
    trade(SOL, 10 * WAD, 150)
    state = lens.account_state(acct(trader))
    assert (state.owner, state.sub_id, state.cash) == (trader, 0, 50_000 * WAD)
    assert [(a.asset, a.collateral, a.size) for a in state.assets] == [
        (ETH, 2 * WAD, 0),
        (SOL, 0, -10 * WAD),
    ]


def test_margin_after_trade__equals_margin_after_fill(engine, client, funded, maker, trader):
    preview = engine.margin_after_trade(acct(trader), ETH, -7 * WAD, 2_010 * WAD)
    order = client.order(maker, ETH, 7 * WAD, 2_010 * WAD, 1, 2**40)
    client.fill(order, client.sign(maker, order), 7 * WAD, acct(trader), sender=trader)
    _, mm, im = engine.margin(acct(trader))
    assert (preview.equity, preview.mm, preview.im) == (engine.equity(acct(trader)), mm, im)


def _list_perp_on_feed(engine, project, owner, decimals, answer) -> int:
    """List a perp-only market on a fresh feed; returns its asset id."""
    feed = project.MockAggregator.deploy(decimals, answer, sender=owner)
    zero = "0x0000000000000000000000000000000000000000"
    engine.list_asset(zero, feed, 3600, 0, 0, 0, 0, True, 0, sender=owner)
    return engine.num_assets() - 1


def test_price__normalises_feed_decimals(engine, project, owner):
    asset = _list_perp_on_feed(engine, project, owner, 20, 3 * 10**20)
    assert engine.price(asset) == (3 * WAD, True)
    assert engine.price(ETH) == (2_000 * WAD, True)


def test_price__answer_below_one_wad_unit__invalid(engine, project, owner):
    """Regression: a feed with more than 18 decimals whose answer scales to 0 reported a
    valid price of 0, so fills at price 0 needed no margin."""
    asset = _list_perp_on_feed(engine, project, owner, 36, 5 * 10**17)
    assert engine.price(asset) == (0, False)
