# pragma version ~=0.4.3
"""
@title Ballast lens: the engine's state, unpacked, for people and frontends
@notice Read-only views over one MarginEngine: an account with every asset,
        an asset's listing, a token's listing and the scenario shocks. They live outside the core because the core's bytecode is
        near the EIP-170 limit; everything here is computed from the core's
        public getters and its exact margin view, so the lens holds no state
        and cannot disagree with the core.
"""

MAX_ASSETS: constant(uint256) = 32
MAX_SCENARIOS: constant(uint256) = 16
SUB_BITS: constant(uint256) = 96
SUB_MASK: constant(uint256) = 2**96 - 1
CASH: constant(uint256) = max_value(uint256)
CASH_ID: constant(uint256) = 255

# Layout of the core's packed words (ledger.vy).
FEED_BITS: constant(uint256) = 160
HEARTBEAT_SHIFT: constant(uint256) = 160
FEED_DECIMALS_SHIFT: constant(uint256) = 192
FLOOR_SHIFT: constant(uint256) = 200
HAIRCUT_SHIFT: constant(uint256) = 216
FLAGS_SHIFT: constant(uint256) = 232
FLAG_LISTED: constant(uint256) = 1
FLAG_PERP: constant(uint256) = 2
TOKEN_ASSET_SHIFT: constant(uint256) = 8
TOKEN_DECIMALS_SHIFT: constant(uint256) = 16
TOKEN_TOTAL_SHIFT: constant(uint256) = 128


struct Margin:
    equity: int256
    mm: uint256
    im: uint256
    prices_ok: bool
    flow: int256


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
    assets: DynArray[AssetState, MAX_ASSETS]


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
    def liquidation_margin(account: uint256, fraction: uint256) -> Margin: view
    def asset_word(asset: uint256) -> uint256: view
    def asset_token(asset: uint256) -> address: view
    def oi_cap(asset: uint256) -> uint256: view
    def open_interest(asset: uint256) -> uint256: view
    def shock_word(asset: uint256) -> uint256: view
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
    m: Margin = staticcall engine.liquidation_margin(account, 0)
    v: AccountView = AccountView(
        owner=convert(account >> SUB_BITS, address),
        sub_id=account & SUB_MASK,
        cash=staticcall engine.cash(account),
        equity=m.equity,
        mm=m.mm,
        im=m.im,
        health=m.equity - convert(m.mm, int256),
        prices_ok=m.prices_ok,
        assets=[],
    )
    bitmap: uint256 = staticcall engine.account_assets(account)
    for a: uint256 in range(MAX_ASSETS):
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
    assert (word >> FLAGS_SHIFT) & FLAG_LISTED != 0, "lens: asset not listed"
    return AssetConfig(
        token=staticcall engine.asset_token(asset),
        feed=convert(word & (2**FEED_BITS - 1), address),
        heartbeat=(word >> HEARTBEAT_SHIFT) & (2**32 - 1),
        feed_decimals=(word >> FEED_DECIMALS_SHIFT) & 255,
        floor_bps=(word >> FLOOR_SHIFT) & 65535,
        haircut_bps=(word >> HAIRCUT_SHIFT) & 65535,
        perp=(word >> FLAGS_SHIFT) & FLAG_PERP != 0,
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
    asset: uint256 = (word >> TOKEN_ASSET_SHIFT) & 255
    if asset == CASH_ID:
        asset = CASH
    return TokenView(
        asset=asset,
        decimals=(word >> TOKEN_DECIMALS_SHIFT) & 255,
        deposit_cap=caps & (2**128 - 1),
        account_cap=caps >> 128,
        total=word >> TOKEN_TOTAL_SHIFT,
    )


@external
@view
def shocks(asset: uint256) -> int256[MAX_SCENARIOS]:
    """
    @notice The asset's 16 scenario shocks, bps.
    """
    word: uint256 = staticcall engine.shock_word(asset)
    out: int256[MAX_SCENARIOS] = empty(int256[MAX_SCENARIOS])
    for k: uint256 in range(MAX_SCENARIOS):
        out[k] = (
            convert(convert(word << (240 - 16 * k), bytes32), int256) >> 240
        )
    return out
