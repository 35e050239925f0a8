"""Vault shares (ERC-4626) as collateral: listing, the capped rate, donations, outages,
slashing, liquidation and withdrawal, each priced to the wei by the twin
(``offchain_risk.models.vault.RateCap``)."""

import dataclasses

import ape
import numpy as np
import pytest
from conftest import BTC, ETH, SOL, USDC, WAD, acct, event, set_price

from offchain_risk import devnet
from offchain_risk.models.margin import RiskParams, margin_exact
from offchain_risk.models.vault import RateCap
from offchain_risk.units import YEAR, read_shocks

SEED = 100 * WAD  # WETH deposited into the vault before listing
YIELD = 5 * WAD  # then donated: the listed rate is about 1.05
LIQUID_STAKING = devnet.VAULT_CLASSES["liquid_staking"]
NORMAL, REVERT, ZERO, BURN_GAS = 0, 1, 2, 3


@pytest.fixture
def listed(project, deployment, owner, weth):
    """sWETH: a MockVault over WETH holding 105 WETH for 100 shares, listed as asset 4
    (liquid staking: haircut 20%, cap growth 10% a year)."""
    vault = project.MockVault.deploy("Staked WETH", "sWETH", weth, sender=owner)
    weth.mint(owner, SEED + YIELD, sender=owner)
    weth.approve(vault, SEED, sender=owner)
    vault.deposit(SEED, owner, sender=owner)
    weth.transfer(vault, YIELD, sender=owner)
    d = dataclasses.replace(
        deployment,
        tokens=dict(deployment.tokens),
        feeds=dict(deployment.feeds),
        symbols=dict(deployment.symbols),
    )
    asset = devnet.list_vault(
        project, d, owner, symbol="sWETH", underlying="ETH", vault_class="liquid_staking",
        vault=vault,
    )  # fmt: skip
    return asset, vault, d


@pytest.fixture
def shares(listed, weth, engine, owner):
    """`shares(who, wad)`: mint WETH, deposit it into the vault; the shares go to `who`."""
    _, vault, _ = listed

    def _shares(who, assets_wad, deposit=True):
        weth.mint(who, assets_wad, sender=owner)
        weth.approve(vault, assets_wad, sender=who)
        vault.deposit(assets_wad, who, sender=who)
        n = vault.balanceOf(who)
        if deposit:
            vault.approve(engine, n, sender=who)
            engine.deposit(acct(who), vault, n, sender=who)
        return n

    return _shares


def cap_of(engine, asset) -> RateCap:
    return RateCap.from_word(engine.vault_word(asset))


def onchain_time(engine, asset) -> int:
    """The block time the engine's views run at: the one whose twin cap is the engine's."""
    cap = cap_of(engine, asset)
    onchain = engine.vault_cap(asset)
    head = ape.chain.blocks.head.timestamp
    times = [t for t in range(head - 1, head + 3) if cap.cap(t) == onchain]
    assert times, "no block time reproduces the engine's cap"
    return times[0]


def twin_price(engine, feeds, asset, vault) -> int:
    """The share price the twin computes from the vault's answer and the feed."""
    cap = cap_of(engine, asset)
    feed = feeds[ETH].latestRoundData()[1] * 10**10
    assets = vault.convertToAssets(10 ** vault.decimals()) if vault.mode() == NORMAL else None
    return cap.price(feed, assets, onchain_time(engine, asset))


def twin_margin(engine, lens, account, prices):
    """margin_exact over every listed asset at `prices` (WAD per asset)."""
    n = engine.num_assets()
    cfg = [lens.asset_config(a) for a in range(n)]
    params = RiskParams(
        floor_bps=np.array([c.floor_bps for c in cfg]),
        haircut_bps=np.array([c.haircut_bps for c in cfg]),
        shocks_bps=np.array([read_shocks(engine, a) for a in range(n)]),
        im_multiplier_wad=engine.im_multiplier(),
    )
    positions = [engine.position(account, a) for a in range(n)]
    return margin_exact(
        [engine.cash(account)],
        [[engine.collateral(account, a) for a in range(n)]],
        [[p[0] for p in positions]],
        [[p[1] for p in positions]],
        prices,
        params,
    )


def chain_prices(engine, n):
    return [engine.price(a)[0] for a in range(n)]


def health(engine, account):
    """The liquidation valuation's Margin struct (fields by name)."""
    return engine.healths([account])[0]


# ------------------------------------------------------------------ listing


def test_list_vault__prices_share_at_rate_times_feed(engine, lens, listed, feeds):
    asset, vault, _ = listed
    rate = vault.convertToAssets(WAD)
    assert 105 * WAD // 100 - 10 < rate <= 105 * WAD // 100
    cap = cap_of(engine, asset)
    assert (cap.ratio, cap.max_growth_bps, cap.underlying_decimals) == (
        rate,
        LIQUID_STAKING.max_growth_bps,
        18,
    )
    assert cap.snapshot_time <= ape.chain.blocks.head.timestamp
    assert engine.vault_rate(asset) == rate
    price, ok = engine.price(asset)
    assert ok and price == twin_price(engine, feeds, asset, vault) == 2_000 * rate
    assert lens.asset_config(asset).haircut_bps == LIQUID_STAKING.haircut_bps
    assert not lens.asset_config(asset).perp
    assert read_shocks(engine, asset) == read_shocks(engine, ETH)


def _vault_state(engine, asset):
    return (engine.asset_word(asset), engine.vault_word(asset), engine.num_assets())


@pytest.mark.parametrize(
    "case, message",
    [
        ("stranger", "ownable: caller is not the owner"),
        ("perp", "vault: perp market"),
        ("unlisted", "ledger: asset not listed"),
        ("twice", "vault: already listed"),
        ("growth", "vault: growth too high"),
        ("not_a_vault", "vault: no rate"),
    ],
)
def test_list_vault__bad_input__reverts_nothing_moves(
    engine, listed, owner, stranger, feeds, project, case, message
):
    asset, _, _ = listed
    target, growth, sender = asset, 1_000, owner
    if case == "stranger":
        sender = stranger
    elif case == "perp":
        target = SOL
    elif case == "unlisted":
        target = engine.num_assets()
    elif case == "growth":
        growth = 10_001
    elif case == "not_a_vault":
        # A plain token: `asset()` is missing, so the listing reverts on the call.
        target = BTC
        message = None
    before = _vault_state(engine, target)
    if message is None:
        with ape.reverts():
            engine.list_vault(target, growth, sender=sender)
    else:
        with ape.reverts(message):
            engine.list_vault(target, growth, sender=sender)
    assert _vault_state(engine, target) == before


def test_list_vault__shares_already_held__reverts_nothing_moves(
    project, engine, deployment, owner, weth, trader, fund
):
    """Listing after deposits would price them from an unchecked snapshot."""
    vault = project.MockVault.deploy("Staked WETH", "sWETH", weth, sender=owner)
    asset = engine.num_assets()
    engine.list_asset(
        vault, deployment.feeds[ETH], 3_600, 100, 2_000, 10**30, 10**30, False, 0, sender=owner
    )
    weth.mint(trader, WAD, sender=owner)
    weth.approve(vault, WAD, sender=trader)
    vault.deposit(WAD, trader, sender=trader)
    vault.approve(engine, WAD, sender=trader)
    engine.deposit(acct(trader), vault, WAD, sender=trader)
    before = _vault_state(engine, asset)
    with ape.reverts("vault: shares already held"):
        engine.list_vault(asset, 1_000, sender=owner)
    assert _vault_state(engine, asset) == before


# ------------------------------------------------------------ margin, donation


def test_deposit_shares__margin_equals_twin(engine, lens, listed, shares, trader, feeds):
    asset, vault, _ = listed
    n = shares(trader, 10 * WAD)
    a = acct(trader)
    assert engine.collateral(a, asset) == n
    prices = chain_prices(engine, engine.num_assets())
    assert prices[asset] == twin_price(engine, feeds, asset, vault)
    twin = twin_margin(engine, lens, a, prices)
    h = health(engine, a)
    assert (h.equity, h.mm, h.im) == (twin.equity[0], twin.mm[0], twin.im[0])
    assert engine.equity(a) == twin.equity[0]
    # 10 WETH of shares at 2,000 less the 20% class haircut.
    assert abs(h.equity - 16_000 * WAD) < 10**6


def test_donation__within_jump__capped_at_the_snapshot(
    engine, lens, listed, shares, trader, weth, owner, feeds
):
    """A 3% donation lifts the vault's rate but not the collateral's value beyond the cap."""
    asset, vault, _ = listed
    shares(trader, 10 * WAD)
    a = acct(trader)
    weth.mint(owner, 3 * WAD, sender=owner)
    weth.transfer(vault, 3 * WAD, sender=owner)
    raw = vault.convertToAssets(WAD)
    rate, cap = engine.vault_rate(asset), engine.vault_cap(asset)
    assert raw > cap and rate == cap
    assert raw * 10_000 <= cap * 11_000  # within the jump tolerance: capped, not an outage
    price, ok = engine.price(asset)
    assert ok and price == twin_price(engine, feeds, asset, vault) == 2_000 * cap
    twin = twin_margin(engine, lens, a, chain_prices(engine, engine.num_assets()))
    assert health(engine, a).equity == twin.equity[0]
    uncapped = twin_margin(engine, lens, a, [*chain_prices(engine, asset), 2_000 * raw])
    assert uncapped.equity[0] > twin.equity[0]


def test_donation__beyond_jump__an_outage_nothing_moves(
    engine, listed, shares, trader, weth, usdc, owner, fund, snapshot
):
    """Half the vault donated: the rate jumps beyond the tolerance and reads as no price.
    Risk-increasing actions refuse; the liquidation valuation counts the shares at zero."""
    asset, vault, _ = listed
    shares(trader, 10 * WAD)
    fund(trader, usdc, 1_000 * USDC)
    a = acct(trader)
    weth.mint(owner, 60 * WAD, sender=owner)
    weth.transfer(vault, 60 * WAD, sender=owner)
    assert engine.vault_rate(asset) == 0
    assert engine.price(asset) == (0, False)
    before = snapshot(trader, tokens=(vault,), markets=(ETH, BTC, SOL, 3, asset))
    with ape.reverts("oracle: invalid price"):
        engine.withdraw(a, usdc, USDC, sender=trader)
    with ape.reverts("oracle: invalid price"):
        engine.withdraw(a, vault, WAD, sender=trader)
    more = shares(trader, WAD, deposit=False)
    vault.approve(engine, more, sender=trader)
    with ape.reverts("oracle: invalid price"):
        engine.deposit(a, vault, more, sender=trader)
    with ape.reverts("oracle: invalid price"):
        engine.equity(a)
    after = snapshot(trader, tokens=(vault,), markets=(ETH, BTC, SOL, 3, asset))
    before[str(trader)][0][-1] += more  # the new shares, still in the trader's wallet
    assert after == before
    h = health(engine, a)
    assert h.unpriced and h.equity == 1_000 * WAD


def test_cap__grows_with_time_at_most_the_yearly_rate(engine, listed, shares, weth, owner, feeds):
    """Half a year later the cap is 5% above the snapshot (10% a year): an 8% rise in the
    vault is counted up to it, the rest is cut."""
    asset, vault, _ = listed
    cap0 = cap_of(engine, asset)
    ape.chain.pending_timestamp = cap0.snapshot_time + YEAR // 2
    ape.chain.mine()
    set_price(feeds, owner, ETH, 2_000)
    weth.mint(owner, 9 * WAD, sender=owner)
    weth.transfer(vault, 105 * 8 * WAD // 100, sender=owner)
    raw = vault.convertToAssets(WAD)
    rate, cap = engine.vault_rate(asset), engine.vault_cap(asset)
    t = onchain_time(engine, asset)
    assert cap == cap0.cap(t)
    assert cap0.ratio * 105 // 100 - 10**12 < cap < cap0.ratio * 105 // 100 + 10**12
    assert raw > cap and rate == cap
    assert engine.price(asset) == (2_000 * cap, True)


# --------------------------------------------------------- slashing, outages


@pytest.fixture
def hedged(listed, shares, trade, trader, maker, fund, usdc):
    """trader: 10 WETH of sWETH shares (no cash) and short 10 ETH perp at 2,000."""
    fund(maker, usdc, 1_000_000 * USDC)
    shares(trader, 10 * WAD)
    trade(ETH, 10 * WAD, 2_000)  # the maker buys 10 ETH: the trader is short
    return acct(trader)


def test_slashing__rate_falls__equity_falls_at_once_and_liquidates(
    engine, lens, listed, hedged, liquidations, accounts, fund, usdc, feeds, weth, owner
):
    asset, vault, _ = listed
    a = hedged
    size = engine.position(a, ETH)[0]
    assert size == -10 * WAD
    e0 = health(engine, a).equity
    vault.slash(vault.totalAssets() * 9 // 10, owner, sender=owner)  # lose 90%
    rate, cap = engine.vault_rate(asset), engine.vault_cap(asset)
    assert rate == vault.convertToAssets(WAD) < cap  # no floor on the way down
    twin = twin_margin(engine, lens, a, chain_prices(engine, engine.num_assets()))
    h = health(engine, a)
    assert (h.equity, h.mm) == (twin.equity[0], twin.mm[0])
    assert e0 - h.equity > 14_000 * WAD and h.equity < h.mm

    keeper = accounts[5]
    fund(keeper, usdc, 1_000_000 * USDC)
    held = engine.collateral(a, asset)
    tx = liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    f = event(tx, "Liquidated").fraction
    moved = engine.collateral(acct(keeper), asset)
    assert 0 < moved == held - engine.collateral(a, asset)
    assert moved == held * f // WAD  # whole units of an 18-decimal share
    # The liquidator takes its shares out of the engine.
    engine.withdraw(acct(keeper), vault, moved, sender=keeper)
    assert vault.balanceOf(keeper) == moved


@pytest.mark.parametrize("mode", [REVERT, ZERO, BURN_GAS])
def test_vault_outage__never_blocks_liquidation(
    engine, listed, hedged, liquidations, accounts, fund, usdc, owner, mode
):
    """A vault that reverts, answers zero or burns its gas: no price, shares count at zero,
    the account's perp is still liquidated and its shares stay."""
    asset, vault, _ = listed
    a = hedged
    vault.set_mode(mode, sender=owner)
    assert engine.price(asset) == (0, False)
    assert engine.vault_rate(asset) == 0
    h = health(engine, a)
    assert h.unpriced and h.prices_ok and h.equity < h.mm
    keeper = accounts[5]
    fund(keeper, usdc, 1_000_000 * USDC)
    held = engine.collateral(a, asset)
    liquidations.liquidate(a, acct(keeper), WAD, 10**30, sender=keeper)
    assert engine.position(a, ETH)[0] > -10 * WAD
    assert engine.collateral(a, asset) == held and engine.collateral(acct(keeper), asset) == 0


# -------------------------------------------------------------- snapshots


@pytest.fixture
def manager(engine, owner, accounts):
    """An EOA installed as the snapshot manager: the engine's own checks, without signatures."""
    m = accounts[6]
    engine.set_snapshot_manager(m, sender=owner)
    return m


def test_set_vault_snapshot__lowers_the_cap(engine, listed, manager):
    asset, vault, _ = listed
    cap0 = cap_of(engine, asset)
    ape.chain.pending_timestamp = cap0.snapshot_time + 8 * 86400
    ape.chain.mine()
    ratio = cap0.ratio * 98 // 100
    tx = engine.set_vault_snapshot(asset, ratio, cap0.snapshot_time + 1, 500, sender=manager)
    cap = cap_of(engine, asset)
    assert (cap.ratio, cap.snapshot_time, cap.max_growth_bps) == (
        ratio,
        cap0.snapshot_time + 1,
        500,
    )
    [log] = [x for x in tx.events if x.event_name == "VaultSnapshotSet"]
    assert log.ratio == ratio and log.by == manager


@pytest.mark.parametrize(
    "case, message",
    [
        ("stranger", "vault: not snapshot manager"),
        ("not_a_vault", "vault: not a vault"),
        ("not_newer", "vault: snapshot not newer"),
        ("too_recent", "vault: snapshot too recent"),
        ("above_cap", "vault: ratio above cap"),
        ("zero_ratio", "vault: ratio above cap"),
        ("growth", "vault: growth too high"),
        ("cap_rises", "vault: cap would rise"),
    ],
)
def test_set_vault_snapshot__bad_input__reverts_nothing_moves(
    engine, listed, manager, stranger, case, message
):
    asset, _, _ = listed
    cap0 = cap_of(engine, asset)
    ape.chain.pending_timestamp = cap0.snapshot_time + 30 * 86400
    ape.chain.mine()
    args = dict(asset=asset, ratio=cap0.ratio, timestamp=cap0.snapshot_time + 86400, growth=500)
    sender = manager
    if case == "stranger":
        sender = stranger
    elif case == "not_a_vault":
        args["asset"] = ETH
    elif case == "not_newer":
        args["timestamp"] = cap0.snapshot_time
    elif case == "too_recent":
        args["timestamp"] = ape.chain.blocks.head.timestamp - 7 * 86400 + 600
    elif case == "above_cap":
        args["ratio"] = cap0.cap(args["timestamp"]) + 1
    elif case == "zero_ratio":
        args["ratio"] = 0
    elif case == "growth":
        args["growth"] = 10_001
    elif case == "cap_rises":
        args["growth"] = 10_000  # from a day after the listing at 100% a year
    before = (engine.vault_word(asset), engine.vault_word(ETH))
    with ape.reverts(message):
        engine.set_vault_snapshot(*args.values(), sender=sender)
    assert (engine.vault_word(asset), engine.vault_word(ETH)) == before


def test_set_vault_snapshot__up_to_the_cap_at_its_time__accepted(engine, listed, manager):
    """The highest ratio a snapshot may carry is the cap in force at its time, when its
    growth to now does not pass the cap in force now: installing one never raises the cap
    (re-basing compounds, so the same growth rate from a later base is refused)."""
    asset, _, _ = listed
    cap0 = cap_of(engine, asset)
    ape.chain.pending_timestamp = cap0.snapshot_time + 60 * 86400
    ape.chain.mine()
    t = cap0.snapshot_time + 30 * 86400
    before = engine.vault_word(asset)
    with ape.reverts("vault: cap would rise"):
        engine.set_vault_snapshot(asset, cap0.cap(t), t, cap0.max_growth_bps, sender=manager)
    assert engine.vault_word(asset) == before
    cap_now = engine.vault_cap(asset)
    # 10% a year from 30 days later: at most 10% / (1 + 10% * 30 / 365) = 9.92%.
    engine.set_vault_snapshot(asset, cap0.cap(t), t, 990, sender=manager)
    assert engine.vault_cap(asset) <= cap_now
