"""Owner-only listing and risk setters: every one refuses strangers and bad values."""

import ape
import pytest
from conftest import ETH, SHOCKS, WAD
from eth_utils import keccak

ZERO = "0x0000000000000000000000000000000000000000"


def test_list_asset__perp_only__listed(lens, engine, feeds, owner):
    tx = engine.list_asset(ZERO, feeds[ETH], 3600, 150, 0, 0, 0, True, 7 * WAD, sender=owner)
    asset = tx.return_value if tx.return_value is not None else engine.num_assets() - 1
    cfg = lens.asset_config(asset)
    assert (cfg.feed, cfg.heartbeat, cfg.feed_decimals, cfg.floor_bps) == (feeds[ETH], 3600, 8, 150)
    assert cfg.perp and cfg.oi_cap == 7 * WAD and cfg.token == ZERO
    assert lens.shocks(asset) == [0] * 32


@pytest.mark.parametrize(
    "args,message",
    [
        ((ZERO, "feed", 3600, 0, 0, False), "ledger: nothing to list"),
        ((ZERO, ZERO, 3600, 0, 0, True), "ledger: zero feed"),
        ((ZERO, "feed", 0, 0, 0, True), "ledger: bad heartbeat"),
        ((ZERO, "feed", 8 * 86400, 0, 0, True), "ledger: bad heartbeat"),
        ((ZERO, "feed", 3600, 10_001, 0, True), "ledger: floor rate above 100%"),
        ((ZERO, "feed", 3600, 0, 10_000, True), "ledger: haircut must be below 100%"),
        (("weth", "feed", 3600, 0, 0, False), "ledger: token already listed"),
    ],
)
def test_list_asset__bad_input__reverts(engine, feeds, weth, owner, args, message):
    token, feed, heartbeat, floor, haircut, perp = args
    token = weth if token == "weth" else token
    feed = feeds[ETH] if feed == "feed" else feed
    n = engine.num_assets()
    with ape.reverts(message):
        engine.list_asset(token, feed, heartbeat, floor, haircut, 0, 0, perp, 0, sender=owner)
    assert engine.num_assets() == n


def test_list_asset__stranger__reverts(engine, feeds, stranger):
    with ape.reverts("ownable: caller is not the owner"):
        engine.list_asset(ZERO, feeds[ETH], 3600, 0, 0, 0, 0, True, 0, sender=stranger)


def test_set_shocks__round_trips_and_bounds(lens, engine, owner):
    new = [-10_000, 32_767, 5, -5] + [0] * 12 + [7, -9_999] + [0] * 13 + [32_000]
    engine.set_shocks(ETH, new, sender=owner)
    assert lens.shocks(ETH) == new
    assert engine.shock_word(ETH, 1) & 0xFFFF == 7  # scenario 16: field 0 of word 1
    for k in (0, 16, 31):  # each word, its first and last scenario
        with ape.reverts("ledger: shock out of range"):
            engine.set_shocks(ETH, [0] * k + [-10_001] + [0] * (31 - k), sender=owner)
        with ape.reverts("ledger: shock out of range"):
            engine.set_shocks(ETH, [0] * k + [32_768] + [0] * (31 - k), sender=owner)
    assert lens.shocks(ETH) == new


@pytest.mark.parametrize(
    "setter,args",
    [
        ("set_shocks", (ETH, [int(s) for s in SHOCKS[ETH]])),
        ("set_asset_risk", (ETH, 1, 1)),
        ("set_feed", (ETH, "feed", 60)),
        ("set_caps", ("weth", 1, 1)),
        ("set_oi_cap", (ETH, 1)),
        ("set_im_multiplier", (2 * WAD,)),
        ("set_price_band", (WAD // 100,)),
        ("set_debt_cap", (1,)),
    ],
)
def test_setters__stranger__reverts(lens, engine, feeds, weth, stranger, setter, args):
    args = [feeds[ETH] if a == "feed" else weth if a == "weth" else a for a in args]
    before = (lens.asset_config(ETH), lens.shocks(ETH), engine.im_multiplier())
    with ape.reverts("ownable: caller is not the owner"):
        getattr(engine, setter)(*args, sender=stranger)
    assert (lens.asset_config(ETH), lens.shocks(ETH), engine.im_multiplier()) == before


@pytest.mark.parametrize(
    "setter,args,message",
    [
        ("set_im_multiplier", (WAD - 1,), "ledger: bad IM multiplier"),
        ("set_im_multiplier", (10 * WAD + 1,), "ledger: bad IM multiplier"),
        ("set_price_band", (0,), "ledger: bad price band"),
        ("set_price_band", (WAD // 5 + 1,), "ledger: bad price band"),
        ("set_asset_risk", (9, 1, 1), "ledger: asset not listed"),
        ("set_oi_cap", (9, 1), "ledger: not a perp market"),
        ("set_caps", (ZERO, 1, 1), "ledger: token not listed"),
    ],
)
def test_setters__bad_value__reverts(engine, owner, setter, args, message):
    before = (engine.im_multiplier(), engine.price_band())
    with ape.reverts(message):
        getattr(engine, setter)(*args, sender=owner)
    assert (engine.im_multiplier(), engine.price_band()) == before


def test_set_feed__replaces_feed_keeps_risk(lens, engine, project, owner):
    feed = project.MockAggregator.deploy(18, 2_500 * WAD, sender=owner)
    engine.set_feed(ETH, feed, 600, sender=owner)
    cfg = lens.asset_config(ETH)
    assert (cfg.feed, cfg.heartbeat, cfg.feed_decimals) == (feed, 600, 18)
    assert (cfg.floor_bps, cfg.haircut_bps) == (100, 200)
    assert engine.price(ETH) == (2_500 * WAD, True)


def test_ownership__two_step(engine, owner, stranger):
    engine.transfer_ownership(stranger, sender=owner)
    assert engine.owner() == owner
    engine.accept_ownership(sender=stranger)
    assert engine.owner() == stranger


def test_fallback__mistyped_setter__reverts_with_reason(engine, owner):
    """An unknown selector goes through the fallback to MarginConfig and used to revert
    with empty data; it now names the problem, and nothing moves."""
    before = (engine.im_multiplier(), engine.price_band(), engine.owner())
    calldata = keccak(text="set_price_bnad(uint256)")[:4] + (10**16).to_bytes(32, "big")
    with ape.reverts("engine: unknown function"):
        owner.transfer(engine, 0, data=calldata)
    assert (engine.im_multiplier(), engine.price_band(), engine.owner()) == before
