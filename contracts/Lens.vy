# pragma version ~=0.4.3
"""
@title Ballast lens: the engine's state, unpacked, for people and frontends
@notice Read-only views over one MarginEngine: an account with every asset,
        an asset's listing, a token's listing and the scenario shocks. They live outside the core because the core's bytecode is
        near the EIP-170 limit; everything here is computed from the core's
        public getters and its exact margin view, so the lens holds no state
        and cannot disagree with the core.
"""

import constants
import fixed_math
import ledger


struct AssetState:
    asset: uint256
    collateral: uint256
    size: int256
    open_notional: int256
    price: uint256
    price_ok: bool


struct AccountView:
    owner: address
    sub_id: uint256
    cash: int256
    equity: int256
    mm: uint256
    im: uint256
    health: int256
    prices_ok: bool
    assets: DynArray[AssetState, constants.MAX_ASSETS]


struct AssetConfig:
    token: address
    feed: address
    heartbeat: uint256
    feed_decimals: uint256
    floor_bps: uint256
    haircut_bps: uint256
    perp: bool
    oi_cap: uint256
    open_interest: uint256


struct TokenView:
    asset: uint256
    decimals: uint256
    deposit_cap: uint256
    account_cap: uint256
    total: uint256


interface IEngine:
    def cash(account: uint256) -> int256: view
    def account_assets(account: uint256) -> uint256: view
    def collateral(account: uint256, asset: uint256) -> uint256: view
    def position(account: uint256, asset: uint256) -> (int256, int256): view
    def price(asset: uint256) -> (uint256, bool): view
    def liquidation_margin(
        account: uint256, fraction: uint256
    ) -> ledger.Margin: view
    def asset_word(asset: uint256) -> uint256: view
    def asset_token(asset: uint256) -> address: view
    def oi_cap(asset: uint256) -> uint256: view
    def open_interest(asset: uint256) -> uint256: view
    def shock_word(asset: uint256, w: uint256) -> uint256: view
    def token_word(token: address) -> uint256: view
    def token_caps(token: address) -> uint256: view


engine: public(immutable(IEngine))


@deploy
def __init__(engine_: address):
    assert engine_ != empty(address), "lens: zero engine"
    engine = IEngine(engine_)


@external
@view
def account_state(account: uint256) -> AccountView:
    """
    @notice Everything about an account at once; never reverts on a bad
            price (see `prices_ok` and each asset's `price_ok`).
    """
    m: ledger.Margin = staticcall engine.liquidation_margin(account, 0)
    v: AccountView = AccountView(
        owner=convert(account >> constants.SUB_BITS, address),
        sub_id=account & constants.SUB_MASK,
        cash=staticcall engine.cash(account),
        equity=m.equity,
        mm=m.mm,
        im=m.im,
        health=m.equity - convert(m.mm, int256),
        prices_ok=m.prices_ok,
        assets=[],
    )
    bitmap: uint256 = staticcall engine.account_assets(account)
    for a: uint256 in range(constants.MAX_ASSETS):
        if bitmap >> (2 * a) == 0:
            break
        if (bitmap >> (2 * a)) & 3 == 0:
            continue
        size: int256 = 0
        notional: int256 = 0
        size, notional = staticcall engine.position(account, a)
        price: uint256 = 0
        ok: bool = False
        price, ok = staticcall engine.price(a)
        v.assets.append(
            AssetState(
                asset=a,
                collateral=staticcall engine.collateral(account, a),
                size=size,
                open_notional=notional,
                price=price,
                price_ok=ok,
            )
        )
    return v


@external
@view
def asset_config(asset: uint256) -> AssetConfig:
    """
    @notice The listing of an asset, unpacked.
    """
    word: uint256 = staticcall engine.asset_word(asset)
    assert (
        word >> ledger.FLAGS_SHIFT
    ) & ledger.FLAG_LISTED != 0, "lens: asset not listed"
    return AssetConfig(
        token=staticcall engine.asset_token(asset),
        feed=convert(word & (2**ledger.FEED_BITS - 1), address),
        heartbeat=(word >> ledger.HEARTBEAT_SHIFT) & (2**32 - 1),
        feed_decimals=(word >> ledger.FEED_DECIMALS_SHIFT) & 255,
        floor_bps=(word >> ledger.FLOOR_SHIFT) & 65535,
        haircut_bps=(word >> ledger.HAIRCUT_SHIFT) & 65535,
        perp=(word >> ledger.FLAGS_SHIFT) & ledger.FLAG_PERP != 0,
        oi_cap=staticcall engine.oi_cap(asset),
        open_interest=staticcall engine.open_interest(asset),
    )


@external
@view
def tokens(token: address) -> TokenView:
    """
    @notice The listing of a token: asset id (2**256 - 1 for cash), decimals,
            caps and total held (WAD).
    """
    word: uint256 = staticcall engine.token_word(token)
    assert word & 1 != 0, "lens: token not listed"
    caps: uint256 = staticcall engine.token_caps(token)
    asset: uint256 = (word >> ledger.TOKEN_ASSET_SHIFT) & 255
    if asset == ledger.CASH_ID:
        asset = ledger.CASH
    return TokenView(
        asset=asset,
        decimals=(word >> ledger.TOKEN_DECIMALS_SHIFT) & 255,
        deposit_cap=caps & constants.MAX_CAP,
        account_cap=caps >> 128,
        total=word >> ledger.TOKEN_TOTAL_SHIFT,
    )


@external
@view
def shocks(asset: uint256) -> int256[constants.MAX_SCENARIOS]:
    """
    @notice The asset's 32 scenario shocks, bps.
    """
    out: int256[constants.MAX_SCENARIOS] = empty(
        int256[constants.MAX_SCENARIOS]
    )
    for w: uint256 in range(constants.SHOCK_WORDS):
        word: uint256 = staticcall engine.shock_word(asset, w)
        for k: uint256 in range(constants.SHOCKS_PER_WORD):
            out[w * constants.SHOCKS_PER_WORD + k] = fixed_math._shock(word, k)
    return out
