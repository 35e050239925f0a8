"""Vault shares under random rate moves and donations (titanoboa + hypothesis): after every
step the engine's share price and an account's equity, MM and IM equal the twin's
(`RateCap` into `margin_exact`) to the wei, and no donation lifts the price above the
feed times the cap."""

from __future__ import annotations

import boa
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain_risk.models.margin import RiskParams, margin_exact
from offchain_risk.models.vault import RateCap
from offchain_risk.units import read_shocks

WAD = 10**18
ETH = 0
# Each example deploys a vault and lists it (about 20 s on a loaded 2-core machine): 6 in
# the default suite, 100 under `make fuzz`'s soak profile.
EXAMPLES = max(6, settings.default.max_examples // 20)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("donate"), st.integers(1, 60)),  # % of the vault's assets
        st.tuples(st.just("slash"), st.integers(1, 90)),  # % of the vault's assets
        st.tuples(st.just("time"), st.integers(1, 400 * 86_400)),  # seconds
        st.tuples(st.just("price"), st.integers(500, 5_000)),  # ETH in USD
    ),
    min_size=1,
    max_size=8,
)


def _listed(s):
    weth = s.tokens[ETH]
    vault = boa.load("contracts/test/MockVault.vy", "Staked WETH", "sWETH", weth.address)
    weth.mint(boa.env.eoa, 10**6 * WAD)
    weth.approve(vault.address, 2**256 - 1)
    vault.deposit(100 * WAD, boa.env.eoa)
    weth.transfer(vault.address, 5 * WAD)
    asset = s.engine.num_assets()
    s.admin.list_asset(
        vault.address, s.feeds[ETH].address, 86_400, 100, 2_000, 10**30, 10**30, False, 0
    )
    s.admin.set_shock_words(asset, [s.engine.shock_word(ETH, w) for w in range(2)])
    s.funding.list_vault(asset, 1_000)
    return asset, vault, weth


def _twin(s, account, n):
    cfg = [s.lens.asset_config(a) for a in range(n)]
    params = RiskParams(
        floor_bps=np.array([c[4] for c in cfg]),
        haircut_bps=np.array([c[5] for c in cfg]),
        shocks_bps=np.array([read_shocks(s.engine, a) for a in range(n)]),
        im_multiplier_wad=s.engine.im_multiplier(),
    )
    pos = [s.engine.position(account, a) for a in range(n)]
    prices = [s.engine.price(a)[0] for a in range(n)]
    return margin_exact(
        [s.engine.cash(account)],
        [[s.engine.collateral(account, a) for a in range(n)]],
        [[p[0] for p in pos]],
        [[p[1] for p in pos]],
        prices,
        params,
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=steps)
def test_vault_price__random_moves__twin_to_the_wei_and_capped(devnet_stack, ops):
    s = devnet_stack
    with boa.env.anchor():
        asset, vault, weth = _listed(s)
        trader = s.actor("trader")
        account = s.account(trader)
        weth.mint(trader, 10 * WAD)
        with boa.env.prank(trader):
            weth.approve(vault.address, 2**256 - 1)
            vault.deposit(10 * WAD, trader)
            vault.approve(s.engine.address, 2**256 - 1)
            s.admin.deposit(account, vault.address, vault.balanceOf(trader))
        cap = RateCap.from_word(s.funding.vault_word(asset))
        feed_usd = 2_000
        for op, x in ops:
            if op == "donate":
                weth.transfer(vault.address, vault.totalAssets() * x // 100)
            elif op == "slash":
                vault.slash(vault.totalAssets() * x // 100, boa.env.eoa)
            elif op == "time":
                boa.env.time_travel(seconds=x)
                s.feeds[ETH].set_price(feed_usd * 10**8)
            else:
                feed_usd = x
                s.feeds[ETH].set_price(x * 10**8)
            now = boa.env.evm.patch.timestamp
            feed = s.feeds[ETH].latestRoundData()[1] * 10**10
            assets = vault.convertToAssets(WAD)
            price, ok = s.engine.price(asset)
            assert price == cap.price(feed, assets, now)
            assert price * WAD <= feed * cap.cap(now)  # no donation beyond the cap
            assert s.funding.vault_rate(asset) == cap.rate(assets, now)
            if ok:
                twin = _twin(s, account, s.engine.num_assets())
                m = s.engine.healths([account])[0]
                assert (m[0], m[1], m[2]) == (twin.equity[0], twin.mm[0], twin.im[0])
            else:
                assert price == 0 and s.engine.healths([account])[0][5]  # unpriced
