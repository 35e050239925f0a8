# pragma version ~=0.4.3
"""
@title Ballast ledger: assets, collateral, sub-accounts, positions and margin
@notice Holds every balance of the protocol and computes the margin model of
        DESIGN.md exactly:
          E  = cash - sum(open_notional) + floor(sum(coll*p*(1-h) + size*p))
          loss_k = ceil(-sum((coll + size) * p * shock[k]))
          floor  = ceil(sum((coll + |size|) * p * floor_rate))
          MM = max(max_k loss_k, floor, 0);  IM = ceil(MM * im_multiplier)
               + ceil(max(cash, 0) * (max(1 - q, 0) + peg_rate))
        where q is the quote asset's own USD feed, once it has one (the
        peg-loss term, see `_peg_margin`).
        An account id packs (owner, sub-account): `owner << 96 | sub`; each id
        is its own margin domain.
@custom:security Guards: deposit caps per asset and per account bound what a
        manipulated price can be levered into; fee-on-transfer and false-
        returning tokens are refused by a balance-difference check; withdrawals
        leave IM intact and need a valid price for every exposed asset, and pay
        only the owner. Risk parameters (shocks, floor and haircut rates, IM
        multiplier) are set by the owner or by the `risk_manager` (the signed-
        update governor, RiskGovernor.vy, which bounds and rate-limits them).
        Pause: the `guardian` (or the owner) sets `paused`, which stops
        withdrawals and risk-increasing fills (settlement.vy); only the owner
        clears it. Deposits, risk-reducing fills and liquidations never pause.
        Listing caps can be set to zero to stop new deposits of an asset.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626
from interfaces import IAggregatorV3
from snekmate.auth import ownable

import constants
import fixed_math
import oracle

uses: ownable


# The option book (OptionBook.vy): the option legs' part of the margin model.
interface IOptionBook:
    def option_margin(
        account: uint256,
        liq: bool,
        trade: Override,
        value_num: int256,
        floor_num: int256,
        losses: int256[constants.MAX_SCENARIOS],
        prices_ok: bool,
    ) -> (int256, int256, bool, int256): view


# The quote asset's pseudo asset id in events and token records.
CASH: constant(uint256) = max_value(uint256)
# Override.asset of a change to cash alone.
NO_ASSET: constant(uint256) = constants.MAX_ASSETS

# Packed hot asset word: one SLOAD per asset per margin computation.
FEED_BITS: constant(uint256) = 160
HEARTBEAT_SHIFT: constant(uint256) = 160
FEED_DECIMALS_SHIFT: constant(uint256) = 192
FLOOR_SHIFT: constant(uint256) = 200
HAIRCUT_SHIFT: constant(uint256) = 216
FLAGS_SHIFT: constant(uint256) = 232
FLAG_LISTED: constant(uint256) = 1
FLAG_PERP: constant(uint256) = 2
# The collateral token is ERC-4626 vault shares: priced at the capped
# `convertToAssets(one share)` times the feed (the underlying's), see
# `_asset_price` and `vault_word`.
FLAG_VAULT: constant(uint256) = 4
VAULT_BIT: constant(uint256) = FLAG_VAULT << FLAGS_SHIFT
# Funding was switched on in this perp market once (a non-zero cap; never
# cleared): without it no funding word, snapshot or parameter is read.
FLAG_FUNDING: constant(uint256) = 8
FUNDING_BIT: constant(uint256) = FLAG_FUNDING << FLAGS_SHIFT
# Decimals of the asset's collateral token (18 when it has none): a
# liquidation moves collateral in whole token units.
UNIT_SHIFT: constant(uint256) = 240


# Packed token record: listed flag | asset id << 8 (CASH_ID for cash)
# | decimals << 16 | total held (WAD, uint128) << 128.
TOKEN_ASSET_SHIFT: constant(uint256) = 8
TOKEN_DECIMALS_SHIFT: constant(uint256) = 16
TOKEN_TOTAL_SHIFT: constant(uint256) = 128
CASH_ID: constant(uint256) = 255

# Packed vault record: snapshot ratio (WAD of underlying per whole share,
# < 2**128) | snapshot time << 128 (64 bits) | max yearly growth bps << 192
# (16 bits) | underlying token decimals << 208 (8 bits).
RATIO_BITS: constant(uint256) = 128
SNAPSHOT_TIME_SHIFT: constant(uint256) = 128
GROWTH_SHIFT: constant(uint256) = 192
UNDERLYING_DECIMALS_SHIFT: constant(uint256) = 208

# Bit 255 of `account_assets`: the account holds option legs (OptionBook.vy).
OPTIONS_BIT: constant(uint256) = 1 << 255
# Override.asset of an option trade: `collateral` is the instrument id,
# `position` the signed size change (two's complement).
OPTION_TRADE: constant(uint256) = NO_ASSET + 1

# constants.MIN_SHOCK_BPS as an int16 slot of a packed shock word.
LOWEST_FALL_SLOT: constant(uint256) = 65536 - 10000
# The pause flag's bit in `risk_word`.
PAUSED_BIT: constant(uint256) = 1 << 128
# Set in `risk_word` once the quote asset has a feed (`set_feed` on
# constants.QUOTE_ASSET): margin reads the quote's word only then, and only
# for positive cash (see `_peg_margin`).
QUOTE_FEED_BIT: constant(uint256) = 1 << 129
IM_MASK: constant(uint256) = PAUSED_BIT - 1


struct TokenInfo:
    asset: uint256  # asset id, or CASH for the quote token
    scale_up: uint256  # 10**(18 - decimals) when decimals <= 18, else 1
    scale_down: uint256  # 10**(decimals - 18) when decimals > 18, else 1
    total: uint256  # WAD held for all accounts
    word: uint256  # the packed record


# A hypothetical change to one asset of one account, for previews and for
# checking an action before its effects are written; or (`fraction` != 0) the
# account after a liquidation moved that fraction (WAD) of every balance.
struct Override:
    active: bool
    asset: uint256
    collateral: uint256
    position: uint256  # packed (size, open_notional)
    cash: int256
    fraction: uint256
    # The funding snapshot of `asset`'s position after the change (a trade
    # settles its funding first: the index now).
    funding: int256


struct Margin:
    equity: int256
    mm: uint256
    im: uint256
    # Every price the computation needed was valid. In the liquidation
    # valuation only perps need one (primary feed or a live fallback).
    prices_ok: bool
    # With Override.fraction: the cash the liquidatee receives for the slice
    # (perp flows, collateral payments and option legs); otherwise 0.
    flow: int256
    # Liquidation valuation only: some collateral had no valid price and
    # counted at zero (it stays in the account; no bad debt is written off
    # while it is there).
    unpriced: bool


# IM multiplier (IM = MM * m / WAD, m >= WAD; low 128 bits) | paused flag
# (bit PAUSED_BIT) | quote feed set (QUOTE_FEED_BIT): one word, so the fill
# path's pause check is a warm read of the word every margin computation
# loads anyway.
risk_word: uint256
# Max relative distance of a fill price from the oracle price (WAD).
price_band: public(uint256)
# The quote token; balances in it are `cash` and may go negative.
cash_token: public(address)
# Number of listed assets; ids are 0..num_assets-1.
num_assets: public(uint256)
# Packed feed | heartbeat | feed decimals | floor bps | haircut bps | flags.
asset_word: public(HashMap[uint256, uint256])
# K = 32 joint scenario shocks of the asset, int16 bps packed 16 to a word:
# scenario k is slot k % 16 of word k // 16 (`shock_word(asset, w)`).
shock_word: public(HashMap[uint256, uint256[constants.SHOCK_WORDS]])
# The collateral token of an asset (empty for a perp-only underlying).
asset_token: public(HashMap[uint256, address])
# Long open interest (= short open interest) of the asset's perp, WAD units.
open_interest: public(HashMap[uint256, uint256])
# Cap on open_interest.
oi_cap: public(HashMap[uint256, uint256])
# Listing record of every accepted token, cash included (see TokenInfo).
token_word: public(HashMap[address, uint256])
# Deposit caps of a token, WAD: over all accounts (low 128 bits) and per
# account (high 128 bits).
token_caps: public(HashMap[address, uint256])
# Per account: bit 2a = holds collateral a, bit 2a+1 = has a position in a.
account_assets: public(HashMap[uint256, uint256])
# Per account quote balance (WAD); negative when losses exceed deposits.
cash: public(HashMap[uint256, int256])
# Sum of the negative cash balances (WAD): cash other depositors lent.
debt: public(uint256)
# Bad debt neither the liquidated account nor the insurance fund could pay
# (WAD): what the positive cash balances are owed beyond the tokens held and
# the debts. Cash withdrawals leave their pro-rata share of it behind.
deficit: public(uint256)
# Cap on `debt`; a trade that would raise debt above it reverts. Until
# borrowing pays interest, this bounds what realised losses against
# collateral (including an owner's self-trades at the band edges) can borrow.
debt_cap: public(uint256)
# Per account, per asset collateral balance (WAD units of the token).
collateral: public(HashMap[uint256, HashMap[uint256, uint256]])
# Per account, per asset perp position, packed (size, open_notional).
position_word: HashMap[uint256, HashMap[uint256, uint256]]
# Per account operators: may trade, move collateral between the owner's
# sub-accounts and withdraw to the owner; never to anyone else.
operators: public(HashMap[uint256, HashMap[address, bool]])
# May set shocks, floor and haircut rates and the IM multiplier besides the
# owner: the signed-update governor, which bounds and rate-limits them.
risk_manager: public(address)
# May pause (not unpause) withdrawals and risk-increasing fills, and set
# fallback prices.
guardian: public(address)
# Per asset: a short-lived price (WAD, low 128 bits) and its expiry (unix
# time, high 128 bits) set by the guardian or owner, used by liquidations
# only and only while the asset's own feed is invalid.
fallback_price: public(HashMap[uint256, uint256])
# Per vault-share asset: the rate cap's snapshot, growth and the underlying's
# decimals (layout above). Read only for assets flagged FLAG_VAULT.
vault_word: public(HashMap[uint256, uint256])
# May move a vault's snapshot (set_vault_snapshot) and lower a funding cap
# (lower_funding_cap): the signed rate-cap entry (RateSnapshots.vy), M of N
# of the risk governor's signers.
snapshot_manager: public(address)
# Per perp market (docs/ARCHITECTURE.md#funding): the cumulative funding
# index (int128, low bits: WAD cash per WAD unit of size, a long pays what it
# rises by) | the time of its last accrual (bits 128..191) | the hourly rate
# in force (int64 at bits 192..255, WAD of the price per hour). One SLOAD per
# held market in a margin computation.
funding_word: public(HashMap[uint256, uint256])
# Per perp market: the premium accumulator of one hour, sampled per fill:
# sum(premium * |size|) / WAD (int104, low bits) | sum(|size|) (uint104, bits
# 104..207) | the hour (unix time // 3600, bits 208..).
premium_word: public(HashMap[uint256, uint256])
# Per perp market, set by the owner: cap (WAD per hour, bits 0..63) |
# interest (int64 WAD per hour, bits 64..127) | convergence period in hours
# (bits 128..). A zero cap is no funding.
funding_params: public(HashMap[uint256, uint256])
# Per account, per market: the funding index at which the position's funding
# was last settled into cash.
funding_snap: public(HashMap[uint256, HashMap[uint256, int256]])
# The option book whose `option_margin` values an account's option legs
# (set once by the owner; `settlement.set_option_book`).
option_book: public(address)


event AccountState:
    account: indexed(uint256)
    asset: uint256
    cash: int256
    collateral: uint256
    size: int256
    open_notional: int256


event AssetListed:
    asset: indexed(uint256)
    token: indexed(address)
    feed: address
    perp: bool


event AssetRiskSet:
    asset: indexed(uint256)
    floor_bps: uint256
    haircut_bps: uint256


event FeedSet:
    asset: indexed(uint256)
    feed: address
    heartbeat: uint256
    feed_decimals: uint256


event CapsSet:
    token: indexed(address)
    deposit_cap: uint256
    account_cap: uint256


event OpenInterestCapSet:
    asset: indexed(uint256)
    cap: uint256


event ShocksSet:
    asset: indexed(uint256)
    words: uint256[constants.SHOCK_WORDS]


event DebtCapSet:
    debt_cap: uint256


event ImMultiplierSet:
    im_multiplier: uint256


event PriceBandSet:
    price_band: uint256


event RiskManagerSet:
    risk_manager: indexed(address)


event GuardianSet:
    guardian: indexed(address)


event PausedSet:
    paused: bool
    by: indexed(address)


event FallbackPriceSet:
    asset: indexed(uint256)
    price: uint256
    expiry: uint256
    by: indexed(address)


event VaultSnapshotSet:
    asset: indexed(uint256)
    ratio: uint256
    timestamp: uint256
    max_growth_bps: uint256
    by: indexed(address)


event SnapshotManagerSet:
    snapshot_manager: indexed(address)


event Funding:
    market: indexed(uint256)
    rate: int256  # in force from now, WAD of the price per hour
    index: int256  # WAD cash per WAD unit of size


event FundingSettled:
    account: indexed(uint256)
    market: indexed(uint256)
    paid: int256  # cash the position paid (negative: received), WAD
    index: int256  # the position's new snapshot


event FundingParamsSet:
    market: indexed(uint256)
    convergence_hours: uint256
    interest: int256
    cap: uint256


event OperatorSet:
    account: indexed(uint256)
    operator: indexed(address)
    approved: bool


event Deposit:
    account: indexed(uint256)
    token: indexed(address)
    amount: uint256


event Withdraw:
    account: indexed(uint256)
    token: indexed(address)
    amount: uint256
    receiver: address


event DeficitShared:
    account: indexed(uint256)
    amount: uint256  # WAD left behind (withdrawal) or paid in (insurance fee)
    deficit: uint256  # after


event Transfer:
    source: indexed(uint256)
    destination: indexed(uint256)
    token: indexed(address)
    amount: uint256


@deploy
def __init__(
    cash_token: address,
    cash_deposit_cap: uint256,
    cash_account_cap: uint256,
    im_multiplier: uint256,
    price_band: uint256,
):
    """
    @param cash_token The quote token (a USD stablecoin), at par until it
           has a feed of its own (`set_feed(constants.QUOTE_ASSET, ...)`).
    @param cash_deposit_cap Cap on all cash deposits, WAD.
    @param cash_account_cap Cap on one account's cash deposits, WAD.
    @param im_multiplier IM / MM, WAD, in [1, 10].
    @param price_band Max fill distance from the oracle, WAD, <= 20%.
    """
    assert cash_token != empty(address), "ledger: zero cash token"
    self.cash_token = cash_token
    self._list_token(cash_token, CASH, cash_deposit_cap, cash_account_cap)
    self._set_im_multiplier(im_multiplier)
    self._set_price_band(price_band)
    # The quote asset's word: listed, no feed (cash at par) until `set_feed`.
    self.asset_word[constants.QUOTE_ASSET] = (FLAG_LISTED << FLAGS_SHIFT) | (
        18 << UNIT_SHIFT
    )


# ---------------------------------------------------------------- admin


@external
def list_asset(
    token: address,
    feed: address,
    heartbeat: uint256,
    floor_bps: uint256,
    haircut_bps: uint256,
    deposit_cap: uint256,
    account_cap: uint256,
    perp: bool,
    oi_cap: uint256,
) -> uint256:
    """
    @notice List an asset: a collateral token (or none), its price feed and,
            when `perp`, a linear perpetual quoted in cash. Owner only.
    @dev Scenario shocks start at zero: until set, MM is the floor alone.
    @return The new asset id.
    """
    ownable._check_owner()
    asset: uint256 = self.num_assets
    assert asset < constants.MAX_ASSETS, "ledger: too many assets"
    assert token != empty(address) or perp, "ledger: nothing to list"
    decimals: uint256 = 18
    if token != empty(address):
        self.asset_token[asset] = token
        decimals = self._list_token(token, asset, deposit_cap, account_cap)
    self.asset_word[asset] = (FLAG_LISTED << FLAGS_SHIFT) | (
        decimals << UNIT_SHIFT
    )
    self._set_feed(asset, feed, heartbeat)
    self._set_asset_risk(asset, floor_bps, haircut_bps)
    if perp:
        self.asset_word[asset] |= FLAG_PERP << FLAGS_SHIFT
        self.oi_cap[asset] = oi_cap
        log OpenInterestCapSet(asset=asset, cap=oi_cap)
    self.num_assets = asset + 1
    log AssetListed(asset=asset, token=token, feed=feed, perp=perp)
    return asset


@external
def set_feed(asset: uint256, feed: address, heartbeat: uint256):
    """
    @notice Replace an asset's price feed. Owner only.
    """
    ownable._check_owner()
    self._check_listed(asset)
    self._set_feed(asset, feed, heartbeat)


@external
def set_asset_risk(asset: uint256, floor_bps: uint256, haircut_bps: uint256):
    """
    @notice Set an asset's on-chain margin floor rate and liquidity haircut
            (bps). Owner or risk manager.
    """
    self._check_risk_admin()
    self._check_listed(asset)
    self._set_asset_risk(asset, floor_bps, haircut_bps)


@external
def set_caps(token: address, deposit_cap: uint256, account_cap: uint256):
    """
    @notice Deposit caps of a listed token, WAD. Lowering a cap below what is
            held blocks new deposits only. Owner only.
    """
    ownable._check_owner()
    self._token_info(token)
    self._set_caps(token, deposit_cap, account_cap)


@external
def set_oi_cap(asset: uint256, cap: uint256):
    """
    @notice Open-interest cap of a perp market, WAD units. Owner only.
    """
    ownable._check_owner()
    assert self._is_perp(self.asset_word[asset]), "ledger: not a perp market"
    self.oi_cap[asset] = cap
    log OpenInterestCapSet(asset=asset, cap=cap)


@external
def set_shocks(asset: uint256, shocks_bps: int256[constants.MAX_SCENARIOS]):
    """
    @notice Set the asset's K = 32 joint scenario shocks (relative price
            moves, bps, each in [-10000, 32767]); scenario k of every asset
            forms one joint scenario. Owner or risk manager.
    """
    self._check_risk_admin()
    self._check_listed(asset)
    self._set_shock_words(asset, self._pack_shocks(shocks_bps))


@external
def set_shock_words(asset: uint256, words: uint256[constants.SHOCK_WORDS]):
    """
    @notice `set_shocks` with the shocks already packed as the engine holds
            them: scenario k's int16 (two's complement) at bits
            16(k % 16)..16(k % 16)+15 of word k // 16. Each must be >= -10000
            bps. Owner or risk manager (the signed update carries packed
            words).
    """
    self._check_risk_admin()
    self._check_listed(asset)
    for w: uint256 in words:
        for k: uint256 in range(constants.SHOCKS_PER_WORD):
            # A slot below 2**15 is a rise; a fall must not pass -100%.
            slot: uint256 = (w >> unsafe_mul(16, k)) & 65535
            assert (
                slot < 32768 or slot >= LOWEST_FALL_SLOT
            ), "ledger: shock out of range"
    self._set_shock_words(asset, words)


@external
def set_debt_cap(debt_cap: uint256):
    """
    @notice Cap on the sum of negative cash balances, WAD. Owner only.
    """
    ownable._check_owner()
    self.debt_cap = debt_cap
    log DebtCapSet(debt_cap=debt_cap)


@external
def set_im_multiplier(im_multiplier: uint256):
    """
    @notice IM / MM as WAD, in [1, 10]. Owner or risk manager.
    """
    self._check_risk_admin()
    self._set_im_multiplier(im_multiplier)


@external
def set_price_band(price_band: uint256):
    """
    @notice Max relative distance of a fill price from the oracle, WAD,
            at most 20%. Owner only.
    """
    ownable._check_owner()
    self._set_price_band(price_band)


@external
def set_risk_manager(risk_manager: address):
    """
    @notice Install the contract that may set risk parameters besides the
            owner (the signed-update governor); empty to remove it. Owner
            only.
    """
    ownable._check_owner()
    self.risk_manager = risk_manager
    log RiskManagerSet(risk_manager=risk_manager)


@external
def set_guardian(guardian: address):
    """
    @notice The key that may pause withdrawals and risk-increasing fills.
            Owner only.
    """
    ownable._check_owner()
    self.guardian = guardian
    log GuardianSet(guardian=guardian)


@external
def set_paused(paused: bool):
    """
    @notice Pause (guardian or owner) or unpause (owner only) withdrawals and
            risk-increasing fills. Deposits, risk-reducing fills and
            liquidations are never paused.
    """
    if not paused or msg.sender != self.guardian:
        ownable._check_owner()
    word: uint256 = self.risk_word & ~PAUSED_BIT
    if paused:
        word |= PAUSED_BIT
    self.risk_word = word
    log PausedSet(paused=paused, by=msg.sender)


@external
def set_fallback_price(asset: uint256, price: uint256, life: uint256):
    """
    @notice Guardian or owner: the price (WAD) liquidations use for `asset`
            while its feed is invalid, for `life` seconds (at most
            `constants.MAX_FALLBACK_LIFE`); `life = 0` clears it. It never
            prices a deposit, withdrawal or trade, and a valid feed always
            wins over it.
    """
    if msg.sender != self.guardian:
        ownable._check_owner()
    self._check_listed(asset)
    word: uint256 = 0
    if life != 0:
        assert (
            price != 0 and price <= constants.MAX_PRICE
        ), "ledger: bad fallback price"
        assert (
            life <= constants.MAX_FALLBACK_LIFE
        ), "ledger: fallback life too long"
        word = price | ((block.timestamp + life) << 128)
    self.fallback_price[asset] = word
    log FallbackPriceSet(
        asset=asset,
        price=word & (2**128 - 1),
        expiry=word >> 128,
        by=msg.sender,
    )


@external
def list_vault(asset: uint256, max_growth_bps: uint256):
    """
    @notice Price a listed collateral asset as ERC-4626 vault shares: its
            feed becomes the underlying's, times the vault's
            `convertToAssets(one share)`, capped from a snapshot taken now
            (the current rate) growing at most `max_growth_bps` a year.
            Owner only, once, before any share is deposited; later
            snapshots move only through `set_vault_snapshot`.
    """
    ownable._check_owner()
    assert (
        max_growth_bps <= constants.MAX_RATE_GROWTH_BPS
    ), "vault: growth too high"
    self._check_listed(asset)
    word: uint256 = self.asset_word[asset]
    assert not self._is_perp(word), "vault: perp market"
    assert (word >> FLAGS_SHIFT) & FLAG_VAULT == 0, "vault: already listed"
    token: address = self.asset_token[asset]
    assert token != empty(address), "vault: no token"
    assert (
        self.token_word[token] >> TOKEN_TOTAL_SHIFT == 0
    ), "vault: shares already held"
    underlying: address = staticcall IERC4626(token).asset()
    decimals: uint256 = convert(
        staticcall IERC20Detailed(underlying).decimals(), uint256
    )
    assert (
        decimals <= constants.MAX_TOKEN_DECIMALS
    ), "ledger: bad token decimals"
    # The cap's first snapshot is the rate now, uncapped.
    rate: uint256 = self._vault_rate_uncapped(token, word, decimals)
    assert rate != 0 and rate < 2**RATIO_BITS, "vault: no rate"
    self._write_snapshot(asset, rate, block.timestamp, max_growth_bps, decimals)
    self.asset_word[asset] = word | (FLAG_VAULT << FLAGS_SHIFT)


@external
def set_vault_snapshot(
    asset: uint256, ratio: uint256, timestamp: uint256, max_growth_bps: uint256
):
    """
    @notice Move a vault's rate-cap snapshot: the vault's rate `ratio` (WAD
            of underlying per whole share) at `timestamp`, and the yearly
            growth allowed from it. Snapshot manager only (the signed entry).
            The snapshot must be newer than the current one, at least
            `constants.MIN_SNAPSHOT_DELAY` old, and its ratio within the
            cap at `timestamp`, and the new cap now no higher than the cap in
            force now: installing a snapshot never raises the cap (a higher
            growth rate raises it from then on). Lowering is always possible.
    """
    assert msg.sender == self.snapshot_manager, "vault: not snapshot manager"
    word: uint256 = self.asset_word[asset]
    assert (word >> FLAGS_SHIFT) & FLAG_VAULT != 0, "vault: not a vault"
    vw: uint256 = self.vault_word[asset]
    assert (
        timestamp > (vw >> SNAPSHOT_TIME_SHIFT) & (2**64 - 1)
    ), "vault: snapshot not newer"
    assert (
        timestamp + constants.MIN_SNAPSHOT_DELAY <= block.timestamp
    ), "vault: snapshot too recent"
    assert (
        ratio != 0
        and ratio < 2**RATIO_BITS
        and ratio <= self._rate_cap(vw, timestamp)
    ), "vault: ratio above cap"
    assert (
        max_growth_bps <= constants.MAX_RATE_GROWTH_BPS
    ), "vault: growth too high"
    decimals: uint256 = (vw >> UNDERLYING_DECIMALS_SHIFT) & 255
    # Re-basing compounds: the new cap, grown from `timestamp` to now, must
    # not exceed the cap in force now.
    assert self._rate_cap(
        ratio
        | (timestamp << SNAPSHOT_TIME_SHIFT)
        | (max_growth_bps << GROWTH_SHIFT),
        block.timestamp,
    ) <= self._rate_cap(vw, block.timestamp), "vault: cap would rise"
    self._write_snapshot(asset, ratio, timestamp, max_growth_bps, decimals)


@external
def set_snapshot_manager(snapshot_manager: address):
    """
    @notice Install the contract that may move vault snapshots (the signed
            snapshot entry); empty to remove it. Owner only.
    """
    ownable._check_owner()
    self.snapshot_manager = snapshot_manager
    log SnapshotManagerSet(snapshot_manager=snapshot_manager)


@external
@view
def vault_rate(asset: uint256) -> uint256:
    """
    @notice The rate a vault-share asset is priced with, WAD of underlying
            per whole share: the vault's, capped; 0 when the vault reverts,
            answers zero or jumps more than `constants.VAULT_JUMP_BPS` above
            the cap (one word: the engine's fallback returns one).
    """
    word: uint256 = self.asset_word[asset]
    assert (word >> FLAGS_SHIFT) & FLAG_VAULT != 0, "vault: not a vault"
    return self._read_vault_rate(
        self.asset_token[asset], word, self.vault_word[asset]
    )


@external
@view
def vault_cap(asset: uint256) -> uint256:
    """
    @notice The highest rate a vault-share asset may be priced with now,
            WAD of underlying per whole share.
    """
    assert (
        (self.asset_word[asset] >> FLAGS_SHIFT) & FLAG_VAULT != 0
    ), "vault: not a vault"
    return self._rate_cap(self.vault_word[asset], block.timestamp)


@external
def set_funding_params(
    market: uint256, convergence_hours: uint256, interest: int256, cap: uint256
):
    """
    @notice A perp market's funding: the premium is paid off over
            `convergence_hours` (1..168), plus `interest` (WAD of the price
            per hour), the rate clamped to +-`cap` (WAD per hour, at most 1%;
            0 stops funding). Applies from the next hourly rate. Owner.
    """
    ownable._check_owner()
    asset: uint256 = self.asset_word[market]
    assert self._is_perp(asset), "ledger: not a perp market"
    assert cap <= constants.MAX_FUNDING_CAP, "ledger: funding cap too high"
    assert (
        convergence_hours != 0
        and convergence_hours <= constants.MAX_FUNDING_CONVERGENCE
    ), "ledger: bad funding convergence"
    assert abs(interest) <= convert(
        constants.MAX_FUNDING_CAP, int256
    ), "ledger: funding interest too high"
    self.funding_params[market] = (
        cap | (self._to_word64(interest) << 64) | (convergence_hours << 128)
    )
    if cap != 0:
        self.asset_word[market] = asset | FUNDING_BIT
    log FundingParamsSet(
        market=market,
        convergence_hours=convergence_hours,
        interest=interest,
        cap=cap,
    )


@external
def lower_funding_cap(market: uint256, cap: uint256):
    """
    @notice Lower a perp market's funding cap to `cap` (0 stops funding),
            its convergence and interest unchanged; applies from the next
            hourly rate. The owner, the risk manager, or the snapshot
            manager (M of the risk governor's signers, RateSnapshots.vy):
            a cut only, so signer keys can damp funding, never raise it.
    """
    if msg.sender != self.risk_manager and msg.sender != self.snapshot_manager:
        ownable._check_owner()
    old: uint256 = self.funding_params[market]
    assert cap < old & (2**64 - 1), "ledger: funding cap not lower"
    self.funding_params[market] = old - (old & (2**64 - 1)) + cap
    log FundingParamsSet(
        market=market,
        convergence_hours=old >> 128,
        interest=self._from_word64(old >> 64),
        cap=cap,
    )


# ------------------------------------------------------- account actions


@external
@nonreentrant
def settle_funding(account: uint256, market: uint256):
    """
    @notice Anyone: settle the funding of `account`'s position in `market`
            into its cash. Equity does not move (margin counts unsettled
            funding); needs a valid price of the market.
    """
    word: uint256 = self.asset_word[market]
    assert self._is_perp(word), "ledger: not a perp market"
    p: uint256 = 0
    ok: bool = False
    p, ok = self._price(word)
    assert ok, "oracle: invalid price"
    index: int256 = self._accrue(market, p, 0, 0)
    size: int256 = 0
    on: int256 = 0
    size, on = fixed_math._unpack_position(
        self._stored_position(account, market)
    )
    self._set_cash(
        account,
        self.cash[account] - self._settle_owed(account, market, size, index),
    )
    self._log_state(account, market)


@external
def set_operator(sub_id: uint256, operator: address, approved: bool):
    """
    @notice Approve or revoke an operator of the caller's sub-account.
    """
    assert operator != empty(address), "ledger: zero operator"
    account: uint256 = self._account_id(msg.sender, sub_id)
    self.operators[account][operator] = approved
    log OperatorSet(account=account, operator=operator, approved=approved)


@external
@nonreentrant
def deposit(account: uint256, token: address, amount: uint256):
    """
    @notice Deposit `amount` (token units) of a listed token into `account`,
            pulled from the caller. Caller: the owner or an operator; anyone
            may pay cash into the insurance fund (account 0).
    @dev Collateral needs a valid price of its own asset: collateral with
         a dead feed counts at zero when the account is liquidated, so it
         could only shield the account (the dust shield). Cash paid into the
         insurance fund repays an open deficit first.
    """
    info: TokenInfo = self._token_info(token)
    if account == constants.INSURANCE:
        assert info.asset == CASH, "ledger: insurance holds cash only"
    else:
        self._check_authorized(account)
    if info.asset != CASH:
        ok: bool = False
        p: uint256 = 0
        p, ok = self._asset_price(info.asset, self.asset_word[info.asset])
        assert ok, "oracle: invalid price"
    wad: uint256 = self._to_wad(info, amount)
    caps: uint256 = self.token_caps[token]
    assert (
        info.total + wad <= caps & constants.MAX_CAP
    ), "ledger: deposit cap exceeded"
    balance: uint256 = 0
    if info.asset == CASH:
        balance = convert(max(self.cash[account], 0), uint256)
    else:
        balance = self.collateral[account][info.asset]
    assert balance + wad <= caps >> 128, "ledger: account cap exceeded"

    # The one interaction before the effects: the balance difference is how
    # a fee-on-transfer token is caught. The nonreentrant lock covers it.
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(
        msg.sender, self, amount, default_return_value=True
    ), "ledger: transfer failed"
    received: uint256 = staticcall IERC20(token).balanceOf(self) - before
    assert received == amount, "ledger: received amount differs"

    self._set_total(token, info, info.total + wad)
    if account == constants.INSURANCE:
        self._credit_insurance(account, wad)
    elif info.asset == CASH:
        self._set_cash(account, self.cash[account] + convert(wad, int256))
    else:
        self._write_collateral(
            account, info.asset, self.collateral[account][info.asset] + wad
        )
    log Deposit(account=account, token=token, amount=amount)
    self._log_state(account, info.asset)


@external
@nonreentrant
def withdraw(account: uint256, token: address, amount: uint256):
    """
    @notice Withdraw `amount` (token units) to the account's owner. The
            account must meet IM afterwards with a valid price for every asset
            it is exposed to. Cash cannot be withdrawn below zero. While a
            deficit is open, a cash withdrawal pays out `amount` less its
            pro-rata share of the deficit (see `_deficit_share`); the event
            says what was paid. Caller: the owner or an operator. Stopped by
            `paused`.
    """
    assert not self._paused(), "ledger: paused"
    self._check_authorized(account)
    info: TokenInfo = self._token_info(token)
    wad: uint256 = self._to_wad(info, amount)
    ov: Override = self._debit(account, info.asset, wad)
    self._require_initial_margin(account, ov, False)

    paid: uint256 = amount
    paid_wad: uint256 = wad
    if info.asset == CASH and self.deficit != 0:
        kept: uint256 = 0
        paid_wad, kept = self._deficit_share(account, info, wad)
        paid = paid_wad // info.scale_up * info.scale_down
        # kept < scale_up <= 10**18 and ov.cash >= 0 after the debit: no overflow.
        ov.cash += convert(kept, int256)
    self._set_total(token, info, info.total - paid_wad)
    self._apply(account, ov)
    receiver: address = self._owner_of(account)
    if paid != 0:
        assert extcall IERC20(token).transfer(
            receiver, paid, default_return_value=True
        ), "ledger: transfer failed"
    log Withdraw(account=account, token=token, amount=paid, receiver=receiver)
    self._log_state(account, info.asset)


@external
@nonreentrant
def transfer(
    source: uint256, destination: uint256, token: address, amount: uint256
):
    """
    @notice Move collateral or cash between two sub-accounts of one owner.
            The source must meet IM afterwards. Caller: the owner or an
            operator of the source.
    """
    self._check_authorized(source)
    assert source != destination, "ledger: same account"
    assert self._owner_of(source) == self._owner_of(
        destination
    ), "ledger: different owners"
    info: TokenInfo = self._token_info(token)
    wad: uint256 = self._to_wad(info, amount)
    ov: Override = self._debit(source, info.asset, wad)
    self._require_initial_margin(source, ov, False)

    received: uint256 = 0
    if info.asset == CASH:
        received = convert(max(self.cash[destination], 0), uint256)
    else:
        received = self.collateral[destination][info.asset]
    assert (
        received + wad <= self.token_caps[token] >> 128
    ), "ledger: account cap exceeded"

    self._apply(source, ov)
    if info.asset == CASH:
        self._set_cash(
            destination, self.cash[destination] + convert(wad, int256)
        )
    else:
        self._write_collateral(destination, info.asset, received + wad)
    log Transfer(
        source=source, destination=destination, token=token, amount=amount
    )
    self._log_state(source, info.asset)
    self._log_state(destination, info.asset)


# ------------------------------------------------------------------ views


@external
@view
def im_multiplier() -> uint256:
    """
    @notice IM / MM as WAD (>= WAD).
    """
    return self.risk_word & IM_MASK


@external
@view
def paused() -> bool:
    """
    @notice True while withdrawals and risk-increasing fills are stopped.
    """
    return self._paused()


@external
@pure
def account_id(owner: address, sub_id: uint256) -> uint256:
    """
    @notice The account id of `owner`'s sub-account `sub_id` (< 2**96).
    """
    return self._account_id(owner, sub_id)


@external
@view
def equity(account: uint256) -> int256:
    """
    @notice Account equity in cash (WAD), rounded down. Reverts when a price
            the account depends on is invalid.
    """
    m: Margin = self._strict_margin(account)
    return m.equity


@external
@view
def margin(account: uint256) -> (int256, uint256, uint256):
    """
    @notice (equity, MM, IM) in cash (WAD), in the order of the `Margin`
            struct: equity rounded down, MM and IM rounded up. Reverts when
            a price the account depends on is invalid.
    """
    m: Margin = self._strict_margin(account)
    return m.equity, m.mm, m.im


@external
@view
def health(account: uint256) -> int256:
    """
    @notice E - MM (WAD); negative means liquidatable. Reverts when a price
            the account depends on is invalid.
    """
    m: Margin = self._strict_margin(account)
    return m.equity - convert(m.mm, int256)


@external
@view
def position(account: uint256, asset: uint256) -> (int256, int256):
    """
    @notice (size, open_notional) of a perp position, WAD.
    """
    return fixed_math._unpack_position(self.position_word[account][asset])


@external
@view
def price(asset: uint256) -> (uint256, bool):
    """
    @notice (oracle price in WAD, valid) of a listed asset.
    """
    self._check_listed(asset)
    return self._asset_price(asset, self.asset_word[asset])


@external
@view
def round_price(asset: uint256, round_id: uint256) -> (uint256, uint256):
    """
    @notice (answer in WAD, updatedAt) of round `round_id` of a listed
            asset's feed (for a vault share, its underlying's feed); (0, 0)
            when the feed cannot answer for that round, price 0 for an
            incomplete round or an answer a live read would refuse
            (`oracle._read_round`).
    """
    self._check_listed(asset)
    word: uint256 = self.asset_word[asset]
    return oracle._read_round(
        convert(word & (2**FEED_BITS - 1), address),
        round_id,
        (word >> FEED_DECIMALS_SHIFT) & 255,
    )


@external
@view
def liquidation_price(asset: uint256) -> uint256:
    """
    @notice The price (WAD) a liquidation uses for a listed asset: its feed's
            when valid, else the guardian's live fallback, else 0 (collateral
            then counts at zero; a perp blocks the account's liquidation).
    """
    self._check_listed(asset)
    return self._liquidation_price(asset, self.asset_word[asset])


@external
@view
def funding_index(market: uint256) -> int256:
    """
    @notice A market's funding index now (WAD cash per WAD unit of size): the
            stored index moved on at the rate in force with the last reported
            price, as every margin view values it.
    """
    self._check_listed(market)
    p: uint256 = 0
    ok: bool = False
    p, ok = self._price(self.asset_word[market])
    return self._index_at(self.funding_word[market], p)


# --------------------------------------------------------------- internal


@internal
@pure
def _account_id(owner: address, sub_id: uint256) -> uint256:
    assert sub_id <= constants.SUB_MASK, "ledger: sub-account id too large"
    return (convert(owner, uint256) << constants.SUB_BITS) | sub_id


@internal
@pure
def _owner_of(account: uint256) -> address:
    return convert(account >> constants.SUB_BITS, address)


@internal
@view
def _check_authorized(account: uint256):
    assert (
        self._owner_of(account) == msg.sender
        or self.operators[account][msg.sender]
    ), "ledger: not owner or operator"


@internal
@view
def _paused() -> bool:
    return self.risk_word & PAUSED_BIT != 0


@internal
def _check_risk_admin():
    """
    @dev The owner or the risk manager. Anyone else gets the owner check's
         revert string.
    """
    if msg.sender != self.risk_manager:
        ownable._check_owner()


@internal
@view
def _check_listed(asset: uint256):
    assert (
        self.asset_word[asset] >> FLAGS_SHIFT
    ) & FLAG_LISTED != 0, "ledger: asset not listed"


@internal
@pure
def _is_perp(word: uint256) -> bool:
    return (word >> FLAGS_SHIFT) & FLAG_PERP != 0


@internal
@view
def _token_info(token: address) -> TokenInfo:
    word: uint256 = self.token_word[token]
    assert word & 1 != 0, "ledger: token not listed"
    asset: uint256 = (word >> TOKEN_ASSET_SHIFT) & 255
    if asset == CASH_ID:
        asset = CASH
    decimals: uint256 = (word >> TOKEN_DECIMALS_SHIFT) & 255
    up: uint256 = 1
    down: uint256 = 1
    if decimals < 18:
        up = 10**(18 - decimals)
    elif decimals > 18:
        down = 10**(decimals - 18)
    return TokenInfo(
        asset=asset,
        scale_up=up,
        scale_down=down,
        total=word >> TOKEN_TOTAL_SHIFT,
        word=word,
    )


@internal
def _set_total(token: address, info: TokenInfo, total: uint256):
    """
    @dev total <= deposit cap <= MAX_CAP on the way up; on the way down it
         only shrinks, so it always fits its 128 bits.
    """
    self.token_word[token] = (info.word & (2**TOKEN_TOTAL_SHIFT - 1)) | (
        total << TOKEN_TOTAL_SHIFT
    )


@internal
def _set_caps(token: address, deposit_cap: uint256, account_cap: uint256):
    assert (
        deposit_cap <= constants.MAX_CAP and account_cap <= constants.MAX_CAP
    ), "ledger: cap too large"
    self.token_caps[token] = deposit_cap | (account_cap << 128)
    log CapsSet(token=token, deposit_cap=deposit_cap, account_cap=account_cap)


@internal
def _deficit_share(
    account: uint256, info: TokenInfo, wad: uint256
) -> (uint256, uint256):
    """
    @dev The deficit rule for a cash withdrawal of `wad`. Accounts' net cash
         (cash - open notional; positions at mark net to zero across
         accounts) sums to C = tokens held + deficit, of which only the
         tokens exist: each WAD of claim is backed by (C - deficit) / C. The
         withdrawal leaves ceil(wad * deficit / C), rounded up to the token's
         precision, behind to shrink the deficit; the ratio is the same for
         whoever leaves first or last: no run to the door. What the rounding
         to whole token units leaves behind beyond the deficit stays the
         account's (else it would leave every claim while the tokens stay:
         `held + deficit == sum of net cash` would break). Returns (WAD paid,
         WAD kept by the account).
    """
    deficit: uint256 = self.deficit
    claims: uint256 = info.total + deficit
    share: uint256 = (wad * deficit + claims - 1) // claims
    # What is paid is a whole number of token units.
    paid: uint256 = (wad - share) // info.scale_up * info.scale_up
    left: uint256 = min(wad - paid, deficit)
    self.deficit = deficit - left
    log DeficitShared(account=account, amount=left, deficit=deficit - left)
    return paid, wad - paid - left


@internal
@pure
def _to_wad(info: TokenInfo, amount: uint256) -> uint256:
    """
    @dev Token units to WAD. Exact: for tokens with more than 18 decimals an
         amount that is not a whole number of WAD units is refused rather than
         rounded, so nothing is ever lost in conversion.
    """
    assert amount != 0, "ledger: zero amount"
    assert amount % info.scale_down == 0, "ledger: amount below precision"
    return amount // info.scale_down * info.scale_up


@internal
@view
def _price(word: uint256) -> (uint256, bool):
    return oracle._read(
        convert(word & (2**FEED_BITS - 1), address),
        (word >> HEARTBEAT_SHIFT) & (2**32 - 1),
        (word >> FEED_DECIMALS_SHIFT) & 255,
    )


@internal
@view
def _asset_price(asset: uint256, word: uint256) -> (uint256, bool):
    """
    @dev The price of one whole unit of the asset (WAD) and its validity:
         the feed's, or for vault shares the feed's (the underlying's)
         times the capped rate, rounded down. A vault without a rate
         (reverts, zero, a jump) has no price: price 0, invalid.
    """
    p: uint256 = 0
    ok: bool = False
    p, ok = self._price(word)
    if word & VAULT_BIT != 0:
        p, ok = self._vault_price(asset, word, p, ok)
    return p, ok


@internal
@view
def _vault_price(
    asset: uint256, word: uint256, feed_price: uint256, feed_ok: bool
) -> (uint256, bool):
    """
    @dev A vault share's price from its underlying's feed price.
    """
    rate: uint256 = self._read_vault_rate(
        self.asset_token[asset], word, self.vault_word[asset]
    )
    # feed_price <= MAX_PRICE = 2**100 and rate <= cap < 2**145 (see
    # _rate_cap): the product cannot overflow.
    p: uint256 = feed_price * rate // constants.WAD
    if p == 0 or p > constants.MAX_PRICE:
        return 0, False
    return p, feed_ok


@internal
@view
def _read_vault_rate(vault: address, word: uint256, vw: uint256) -> uint256:
    """
    @dev The vault's `convertToAssets(one whole share)` as WAD of underlying,
         rounded down, capped at `_rate_cap`; 0 when the vault reverts,
         answers zero or more than 2**128 units, or jumps more than
         VAULT_JUMP_BPS above the cap. No floor: a rate that falls
         (slashing, a loss) is used as it is, at once.
    """
    rate: uint256 = self._vault_rate_uncapped(
        vault, word, (vw >> UNDERLYING_DECIMALS_SHIFT) & 255
    )
    cap: uint256 = self._rate_cap(vw, block.timestamp)
    if rate <= cap:
        return rate
    # rate < 2**188 and cap < 2**145: neither product overflows.
    if rate * constants.BPS > cap * (constants.BPS + constants.VAULT_JUMP_BPS):
        return 0
    return cap


@internal
@view
def _vault_rate_uncapped(
    vault: address, word: uint256, decimals: uint256
) -> uint256:
    """
    @dev `convertToAssets(one whole share)` (the share token's decimals are
         the asset word's unit) as WAD of underlying, rounded down; 0 when
         the vault reverts or answers zero or more than 2**128 units.
    """
    assets: uint256 = 0
    answered: bool = False
    assets, answered = oracle._read_rate(vault, 10**(word >> UNIT_SHIFT))
    if not answered or assets > constants.MAX_CAP:
        return 0
    if decimals < 18:
        return assets * 10**(18 - decimals)
    return assets // 10**(decimals - 18)


@internal
@pure
def _rate_cap(vw: uint256, at: uint256) -> uint256:
    """
    @dev ratio * (1 + growth * (at - t0) / year), rounded down (against the
         account). t0 <= now always (a snapshot is never in the future).
         Bounds: ratio < 2**128, growth <= 10**4, at - t0 < 2**40 until the
         year 36812, so the cap is below 2**145.
    """
    ratio: uint256 = vw & (2**RATIO_BITS - 1)
    t0: uint256 = (vw >> SNAPSHOT_TIME_SHIFT) & (2**64 - 1)
    growth: uint256 = (vw >> GROWTH_SHIFT) & 65535
    if at <= t0:
        return ratio
    return ratio + ratio * growth * (at - t0) // (
        constants.BPS * constants.YEAR
    )


@internal
def _write_snapshot(
    asset: uint256,
    ratio: uint256,
    timestamp: uint256,
    max_growth_bps: uint256,
    decimals: uint256,
):
    self.vault_word[asset] = (
        ratio
        | (timestamp << SNAPSHOT_TIME_SHIFT)
        | (max_growth_bps << GROWTH_SHIFT)
        | (decimals << UNDERLYING_DECIMALS_SHIFT)
    )
    log VaultSnapshotSet(
        asset=asset,
        ratio=ratio,
        timestamp=timestamp,
        max_growth_bps=max_growth_bps,
        by=msg.sender,
    )


@internal
def _list_token(
    token: address, asset: uint256, deposit_cap: uint256, account_cap: uint256
) -> uint256:
    assert self.token_word[token] == 0, "ledger: token already listed"
    decimals: uint256 = convert(
        staticcall IERC20Detailed(token).decimals(), uint256
    )
    assert (
        decimals <= constants.MAX_TOKEN_DECIMALS
    ), "ledger: bad token decimals"
    asset_id: uint256 = asset
    if asset == CASH:
        asset_id = CASH_ID
    self.token_word[token] = (
        1 | (asset_id << TOKEN_ASSET_SHIFT) | (decimals << TOKEN_DECIMALS_SHIFT)
    )
    self._set_caps(token, deposit_cap, account_cap)
    return decimals


@internal
def _set_feed(asset: uint256, feed: address, heartbeat: uint256):
    assert feed != empty(address), "ledger: zero feed"
    assert (
        heartbeat != 0 and heartbeat <= constants.MAX_HEARTBEAT
    ), "ledger: bad heartbeat"
    decimals: uint256 = convert(
        staticcall IAggregatorV3(feed).decimals(), uint256
    )
    assert decimals <= constants.MAX_FEED_DECIMALS, "ledger: bad feed decimals"
    word: uint256 = self.asset_word[asset]
    word &= ~(2**FLOOR_SHIFT - 1)
    word |= (
        convert(feed, uint256)
        | (heartbeat << HEARTBEAT_SHIFT)
        | (decimals << FEED_DECIMALS_SHIFT)
    )
    self.asset_word[asset] = word
    if asset == constants.QUOTE_ASSET:
        self.risk_word |= QUOTE_FEED_BIT
    log FeedSet(
        asset=asset, feed=feed, heartbeat=heartbeat, feed_decimals=decimals
    )


@internal
def _set_asset_risk(asset: uint256, floor_bps: uint256, haircut_bps: uint256):
    assert floor_bps <= constants.BPS, "ledger: floor rate above 100%"
    assert haircut_bps < constants.BPS, "ledger: haircut must be below 100%"
    word: uint256 = self.asset_word[asset]
    word &= ~((2**32 - 1) << FLOOR_SHIFT)
    word |= (floor_bps << FLOOR_SHIFT) | (haircut_bps << HAIRCUT_SHIFT)
    self.asset_word[asset] = word
    log AssetRiskSet(asset=asset, floor_bps=floor_bps, haircut_bps=haircut_bps)


@internal
@pure
def _pack_shocks(
    shocks_bps: int256[constants.MAX_SCENARIOS],
) -> uint256[constants.SHOCK_WORDS]:
    words: uint256[constants.SHOCK_WORDS] = empty(
        uint256[constants.SHOCK_WORDS]
    )
    for k: uint256 in range(constants.MAX_SCENARIOS):
        s: int256 = shocks_bps[k]
        assert (
            s >= constants.MIN_SHOCK_BPS and s <= 32767
        ), "ledger: shock out of range"
        if s < 0:
            s += 65536
        words[k // constants.SHOCKS_PER_WORD] |= convert(s, uint256) << (
            16 * (k % constants.SHOCKS_PER_WORD)
        )
    return words


@internal
def _set_shock_words(asset: uint256, words: uint256[constants.SHOCK_WORDS]):
    self.shock_word[asset] = words
    log ShocksSet(asset=asset, words=words)


@internal
def _set_im_multiplier(im_multiplier: uint256):
    assert (
        im_multiplier >= constants.WAD
        and im_multiplier <= constants.MAX_IM_MULTIPLIER
    ), "ledger: bad IM multiplier"
    self.risk_word = (self.risk_word & ~IM_MASK) | im_multiplier
    log ImMultiplierSet(im_multiplier=im_multiplier)


@internal
def _set_price_band(price_band: uint256):
    assert (
        price_band != 0 and price_band <= constants.MAX_PRICE_BAND
    ), "ledger: bad price band"
    self.price_band = price_band
    log PriceBandSet(price_band=price_band)


@internal
def _mark_options(account: uint256, holds: bool):
    """
    @dev Record whether the account holds option legs (OPTIONS_BIT).
    """
    if holds:
        self.account_assets[account] |= OPTIONS_BIT
    else:
        self.account_assets[account] &= ~OPTIONS_BIT


@internal
@view
def _margin(account: uint256, ov: Override, liq: bool) -> Margin:
    """
    @dev The margin model, exact in int256 with one rounding per quantity,
         against the account. `ov` replaces one asset's collateral and
         position and the cash balance, so an action is checked before its
         effects are written (`ov.asset == NO_ASSET`: cash only). With
         `ov.fraction` the account is valued after a liquidation moved that
         fraction of every balance (fixed_math._slice), exactly as
         liquidation.liquidate_slice writes it.
         `liq` selects the liquidation valuation (`_liquidation_price`): a
         perp needs its feed or a live fallback price; collateral without
         either counts at zero and is never moved (`unpriced`). Otherwise
         every exposed asset needs a valid price for `prices_ok`, and an
         invalid one is still reported (the risk-reducing rule compares
         before and after at the last reported prices).
         Bounds: |coll + size| < 2**129 (collateral <= MAX_CAP, int128
         positions), price <= MAX_PRICE = 2**100, |shock| <= 2**15, so
         |exposure * shock| < 2**244 and a sum over 32 assets < 2**249: the
         unchecked scenario arithmetic below cannot overflow int256.
    """
    bitmap: uint256 = self.account_assets[account]
    options: bool = bitmap >= OPTIONS_BIT or ov.asset == OPTION_TRADE
    bitmap &= OPTIONS_BIT - 1
    cash: int256 = self.cash[account]
    if ov.active:
        cash = ov.cash
        if ov.asset < constants.MAX_ASSETS:
            bitmap |= 3 << (2 * ov.asset)
    value_num: int256 = 0  # sum(coll*p*(BPS-h) + size*p*BPS), WAD*WAD*BPS
    floor_num: int256 = 0  # sum((coll + |size|) * p * floor_bps)
    notional: int256 = 0  # sum(open_notional), WAD
    losses: int256[constants.MAX_SCENARIOS] = empty(
        int256[constants.MAX_SCENARIOS]
    )
    prices_ok: bool = True
    unpriced: bool = False
    wide: bool = False  # an exposed asset has a non-zero second shock word
    slice_flow: int256 = 0
    funding: int256 = 0  # unsettled funding the positions owe, WAD

    for a: uint256 in range(constants.MAX_ASSETS):
        bits: uint256 = bitmap >> (2 * a)
        if bits == 0:
            break
        if bits & 3 == 0:
            continue
        coll: int256 = 0
        pos: uint256 = 0
        if ov.active and a == ov.asset:
            coll = convert(ov.collateral, int256)
            pos = ov.position
        else:
            if bits & 1 != 0:
                coll = convert(self.collateral[account][a], int256)
            if bits & 2 != 0:
                pos = self.position_word[account][a]
        size: int256 = 0
        on: int256 = 0
        size, on = fixed_math._unpack_position(pos)
        if coll == 0 and size == 0:
            continue  # a flat position has zero open notional

        word: uint256 = self.asset_word[a]
        p: uint256 = 0
        ok: bool = False
        if liq:
            p = self._liquidation_price(a, word)
            ok = p != 0 or size == 0
            unpriced = unpriced or p == 0
        else:
            # _asset_price inlined: the hot loop pays no extra call for a token.
            p, ok = self._price(word)
            if word & VAULT_BIT != 0:
                p, ok = self._vault_price(a, word, p, ok)
        prices_ok = prices_ok and ok
        price: int256 = convert(p, int256)
        haircut: int256 = convert((word >> HAIRCUT_SHIFT) & 65535, int256)
        floor_bps: int256 = convert((word >> FLOOR_SHIFT) & 65535, int256)
        if size != 0 and word & FUNDING_BIT != 0:
            # Funding since the position's snapshot, on its size before any
            # slice (a liquidation settles it first), at the index now. A
            # market whose funding was never on has every word at 0.
            funding_word: uint256 = self.funding_word[a]
            snap: int256 = 0
            if ov.active and a == ov.asset:
                snap = ov.funding
            else:
                snap = self.funding_snap[account][a]
            # _funding_owed inlined (same bounds): the hot loop pays no
            # extra call per market.
            owed: int256 = unsafe_mul(
                size, unsafe_sub(self._index_at(funding_word, p), snap)
            )
            if owed > 0:
                owed = unsafe_div(owed + constants.IWAD - 1, constants.IWAD)
            else:
                owed = unsafe_div(owed, constants.IWAD)
            funding = unsafe_add(funding, owed)  # each < 2**195, 32 at most
        if ov.fraction != 0:
            moved_coll: uint256 = 0
            moved: int256 = 0
            flow: int256 = 0
            pay: uint256 = 0
            moved_coll, moved, flow, pay = fixed_math._slice(
                convert(coll, uint256),
                size,
                ov.fraction,
                p,
                convert(haircut, uint256),
                word >> UNIT_SHIFT,
            )
            coll -= convert(moved_coll, int256)
            size, on, cash = fixed_math._apply_trade(
                size, on, cash, -moved, flow
            )
            cash += convert(pay, int256)
            slice_flow += flow + convert(pay, int256)
        notional += on

        value_num += (
            coll * (constants.IBPS - haircut) + size * constants.IBPS
        ) * price
        floor_num += (coll + abs(size)) * price * floor_bps
        exposure: int256 = (coll + size) * price
        if exposure != 0:
            # Scenario k is slot k % 16 of word k // 16, one loop per word
            # (written out: the index stays the loop's). An all-zero word
            # moves nothing and is skipped; K <= 16 leaves the second so.
            shocks: uint256 = self.shock_word[a][0]
            if shocks != 0:
                for k: uint256 in range(constants.SHOCKS_PER_WORD):
                    # The low int16 of the word, sign-extended
                    # (fixed_math._shock with k = 0), then the next one moves
                    # down. Unchecked: bounded as in the docstring.
                    shock: int256 = (
                        convert(convert(shocks << 240, bytes32), int256) >> 240
                    )
                    shocks = shocks >> 16
                    losses[k] = unsafe_sub(
                        losses[k], unsafe_mul(exposure, shock)
                    )
            shocks = self.shock_word[a][1]
            if shocks != 0:
                wide = True
                for k: uint256 in range(
                    constants.SHOCKS_PER_WORD, constants.MAX_SCENARIOS
                ):
                    # As above, scenarios 16..31.
                    shock: int256 = (
                        convert(convert(shocks << 240, bytes32), int256) >> 240
                    )
                    shocks = shocks >> 16
                    losses[k] = unsafe_sub(
                        losses[k], unsafe_mul(exposure, shock)
                    )
    worst: int256 = (
        floor_num  # ceil is monotonic: round the largest numerator once
    )
    if options:
        # The option legs (OptionBook.option_margin) join the linear legs'
        # numerators (WAD * WAD * BPS): the book adds their mark value
        # (rounded down) to `value_num`, and returns the worst of (linear +
        # option loss) over the scenarios and of (floor + short-option
        # minimum), rounded up, and whether its prices and vols were valid.
        # `ov` carries a trade being checked (asset OPTION_TRADE); under a
        # liquidation slice it also returns the cash the liquidator pays
        # for the legs' moved part, which joins `flow`.
        option_flow: int256 = 0
        value_num, worst, prices_ok, option_flow = staticcall IOptionBook(
            self.option_book
        ).option_margin(
            account, liq, ov, value_num, floor_num, losses, prices_ok
        )
        slice_flow += option_flow
    else:
        for k: uint256 in range(constants.MAX_SCENARIOS):
            if k == constants.SHOCKS_PER_WORD and not wide:
                break  # no exposed asset has a second word: all zero
            worst = max(worst, losses[k])
    mm: uint256 = convert(
        max(fixed_math._ceil_div(worst, constants.WAD_BPS), 0), uint256
    )
    risk: uint256 = self.risk_word
    im: uint256 = convert(
        fixed_math._ceil_div(
            convert(mm * (risk & IM_MASK), int256), constants.IWAD
        ),
        uint256,
    )
    if cash > 0 and risk & QUOTE_FEED_BIT != 0:
        # The quote's peg-loss term: IM only (liquidation never waits on it).
        peg: uint256 = 0
        peg_ok: bool = False
        peg, peg_ok = self._peg_margin(cash)
        im += peg
        prices_ok = prices_ok and (peg_ok or liq)
    equity: int256 = (
        cash
        - funding
        - notional
        + fixed_math._floor_div(value_num, constants.WAD_BPS)
    )
    return Margin(
        equity=equity,
        mm=mm,
        im=im,
        prices_ok=prices_ok,
        flow=slice_flow,
        unpriced=unpriced,
    )


@internal
@pure
def _to_word64(x: int256) -> uint256:
    """
    @dev x (|x| <= MAX_FUNDING_CAP < 2**63) as a 64-bit two's complement field.
    """
    if x < 0:
        return convert(x + 2**64, uint256)
    return convert(x, uint256)


@internal
@pure
def _from_word64(w: uint256) -> int256:
    """
    @dev The int64 in the low 64 bits of w.
    """
    x: int256 = convert(w & (2**64 - 1), int256)
    if x >= 2**63:
        x -= 2**64
    return x


@internal
@view
def _index_at(word: uint256, price: uint256) -> int256:
    """
    @dev A market's funding index now: the stored one moved on at the rate in
         force, with `price` (WAD), rounded to -inf:
           index + floor(rate * price * (now - last) / (3600 * WAD)).
         Bounds: |rate| <= 2**54, price <= 2**100, elapsed < 2**64.
    """
    # The word's bits as int256: arithmetic shifts sign-extend the int128
    # index (low bits) and the int64 rate (high bits) without a call.
    w: int256 = convert(convert(word, bytes32), int256)
    index: int256 = (w << 128) >> 128
    rate: int256 = w >> 192
    if rate == 0:
        return index
    # Unchecked: the word's time is a past block's (elapsed >= 0, < 2**64),
    # |rate| < 2**63 (int64) and every price is at most MAX_PRICE = 2**100
    # (oracle, fallback and vault reads refuse more), so |num| < 2**227;
    # |q| < 2**255 / constants.HOUR_WAD < 2**184 and |index| <= 2**127.
    elapsed: uint256 = unsafe_sub(
        block.timestamp, (word >> 128) & (2**64 - 1)
    )
    num: int256 = unsafe_mul(rate, convert(unsafe_mul(price, elapsed), int256))
    q: int256 = unsafe_div(num, constants.HOUR_WAD)  # truncated towards zero
    if num < 0 and unsafe_mul(q, constants.HOUR_WAD) != num:
        q = unsafe_sub(q, 1)  # to -inf
    return unsafe_add(index, q)


@internal
@pure
def _funding_owed(size: int256, index: int256, snap: int256) -> int256:
    """
    @dev Funding a position owes since its snapshot (negative: is owed),
         rounded up, against the account: payers pay the ceiling and
         receivers get the floor, so what is paid covers what is received.
    """
    # Unchecked: |size| < 2**127 and |index - snap| < 2**128 (both int128),
    # so the product is below 2**255. `//` truncates towards zero: the
    # ceiling of a negative quotient.
    owed: int256 = unsafe_mul(size, unsafe_sub(index, snap))
    if owed > 0:
        return unsafe_div(owed + constants.IWAD - 1, constants.IWAD)
    return unsafe_div(owed, constants.IWAD)


@internal
@view
def _next_rate(market: uint256, premium: uint256) -> int256:
    """
    @dev The hourly rate from a premium window (premium_word layout):
           clamp(avg_premium / convergence + interest, -cap, cap)
         with avg_premium = sum(premium * |size|) / sum(|size|) (0 without
         fills), divisions truncating towards zero.
    """
    params: uint256 = self.funding_params[market]
    cap: int256 = convert(params & (2**64 - 1), int256)
    if cap == 0:
        return 0
    weight: uint256 = (premium >> 104) & constants.MAX_PREMIUM_WEIGHT
    avg: int256 = 0
    if weight != 0:
        num: int256 = convert(premium & (2**104 - 1), int256)
        if num >= 2**103:
            num -= 2**104
        avg = num * constants.IWAD // convert(weight, int256)
    rate: int256 = avg // convert(params >> 128, int256) + self._from_word64(
        params >> 64
    )
    return max(min(rate, cap), -cap)


@internal
def _accrue(
    market: uint256, price: uint256, premium: int256, weight: uint256
) -> int256:
    """
    @dev Move the market's index to now at the rate in force (`_index_at`);
         at the first touch in a new hour, set the rate from the premium
         window (`_next_rate`) and open a window for this hour; then add a
         fill's sample: `premium` (WAD, (fill - oracle) / oracle) weighted
         by `weight` (|size|, WAD; 0: not a fill). A window that would pass
         MAX_PREMIUM_WEIGHT takes no more samples that hour. Returns the
         index now.
    """
    if self.asset_word[market] & FUNDING_BIT == 0:
        return 0  # funding never on: every word is 0
    word: uint256 = self.funding_word[market]
    rate: int256 = self._from_word64(word >> 192)
    if rate == 0 and self.funding_params[market] & (2**64 - 1) == 0:
        # Funding off (a zero cap) and no rate left in force: nothing moves.
        return fixed_math._from_word128(word & (2**128 - 1))
    index: int256 = self._index_at(word, price)
    window: uint256 = self.premium_word[market]
    new_window: uint256 = window
    hour: uint256 = block.timestamp // constants.HOUR
    if window >> 208 != hour:
        rate = self._next_rate(market, window)
        new_window = hour << 208
    if weight != 0:
        total: uint256 = (
            (new_window >> 104) & constants.MAX_PREMIUM_WEIGHT
        ) + weight
        if total <= constants.MAX_PREMIUM_WEIGHT:
            num: int256 = convert(new_window & (2**104 - 1), int256)
            if num >= 2**103:
                num -= 2**104
            # |premium| <= price band (20%): |num| < 2**104 / 5.
            num += premium * convert(weight, int256) // constants.IWAD
            if num < 0:
                num += 2**104
            new_window = (
                (hour << 208) | (total << 104) | convert(num, uint256)
            )
    if new_window != window:
        self.premium_word[market] = new_window
    new_word: uint256 = (
        (self._to_word64(rate) << 192)
        | (block.timestamp << 128)
        | fixed_math._to_word128(index)
    )
    if new_word != word:
        self.funding_word[market] = new_word
        # Also when only the time moved: a reader's word is then exact.
        log Funding(market=market, rate=rate, index=index)
    return index


@internal
def _set_funding_snap(
    account: uint256, market: uint256, index: int256, paid: int256
):
    """
    @dev Record that the position's funding up to `index` is in its cash
         (`paid` of it just now).
    """
    if self.asset_word[market] & FUNDING_BIT == 0:
        return  # funding never on: index and snapshot are 0
    if self.funding_snap[account][market] != index:
        self.funding_snap[account][market] = index
        log FundingSettled(
            account=account, market=market, paid=paid, index=index
        )


@internal
def _settle_owed(
    account: uint256, market: uint256, size: int256, index: int256
) -> int256:
    """
    @dev Settle the funding `account`'s position of `size` in `market` owes
         up to `index` (the index now): move its snapshot and return what it
         paid (the caller takes it off cash). Reads nothing in a market
         where funding was never on.
    """
    if self.asset_word[market] & FUNDING_BIT == 0:
        return 0
    owed: int256 = 0
    if size != 0:
        owed = self._funding_owed(
            size, index, self.funding_snap[account][market]
        )
    self._set_funding_snap(account, market, index, owed)
    return owed


@internal
@view
def _peg_margin(cash: int256) -> (uint256, bool):
    """
    @dev The IM a positive cash balance adds when the quote asset has a
         feed: cash * (max(1 - q, 0) + peg_rate), rounded up (against the
         account), where q is the quote's feed price (USD per token, WAD) as
         last reported and peg_rate the quote word's floor bps (the
         standing depeg scenario). A feed that answers nothing (price 0)
         adds no live term. Returns (term, feed valid): the caller blocks
         risk-increasing actions on an invalid feed, never liquidations.
         Bounds: rate <= WAD * BPS + WAD * BPS < 2**76 and cash < 2**170
         (deposits <= MAX_CAP plus realised PnL), so the product fits.
    """
    word: uint256 = self.asset_word[constants.QUOTE_ASSET]
    q: uint256 = 0
    ok: bool = False
    q, ok = self._price(word)
    rate: uint256 = ((word >> FLOOR_SHIFT) & 65535) * constants.WAD
    if q != 0 and q < constants.WAD:
        rate += (constants.WAD - q) * constants.BPS
    return (
        convert(
            fixed_math._ceil_div(
                cash * convert(rate, int256), constants.WAD_BPS
            ),
            uint256,
        ),
        ok,
    )


@internal
@view
def _liquidation_price(asset: uint256, word: uint256) -> uint256:
    """
    @dev The price a liquidation uses: the feed's when valid, else a live
         fallback price (`set_fallback_price`), else 0 (no price).
    """
    p: uint256 = 0
    ok: bool = False
    p, ok = self._price(word)
    if word & VAULT_BIT != 0:
        p, ok = self._vault_price(asset, word, p, ok)
    if ok:
        return p
    fallback: uint256 = self.fallback_price[asset]
    if fallback >> 128 < block.timestamp:
        return 0  # none set, or expired
    return fallback & (2**128 - 1)


@internal
@view
def _strict_margin(account: uint256) -> Margin:
    m: Margin = self._margin(account, empty(Override), False)
    assert m.prices_ok, "oracle: invalid price"
    return m


@internal
@view
def _require_initial_margin(account: uint256, ov: Override, liq: bool):
    """
    @dev The check of every risk-increasing action: valid prices for every
         exposed asset, then E >= IM, both on the state after the action.
         `liq`: a liquidator's account after taking a slice, valued as a
         liquidation values it (a dead feed of the liquidator's own
         collateral counts at zero rather than blocking the liquidation).
    """
    m: Margin = self._margin(account, ov, liq)
    assert m.prices_ok, "oracle: invalid price"
    assert m.equity >= convert(m.im, int256), "margin: below initial margin"


@internal
def _credit_insurance(account: uint256, wad: uint256):
    """
    @dev Cash paid to the insurance fund (penalty fees, deposits into account
         0) repays an open deficit first; `account` is who paid it. The
         caller logs the fund's AccountState.
    """
    deficit: uint256 = self.deficit
    repaid: uint256 = min(wad, deficit)
    if repaid != 0:
        self.deficit = deficit - repaid
        log DeficitShared(
            account=account, amount=repaid, deficit=deficit - repaid
        )
    if wad != repaid:
        self._set_cash(
            constants.INSURANCE,
            self.cash[constants.INSURANCE] + convert(wad - repaid, int256),
        )


@internal
@view
def _debit(account: uint256, asset: uint256, wad: uint256) -> Override:
    """
    @dev The account after removing `wad` of `asset` (or cash).
    """
    cash: int256 = self.cash[account]
    if asset == CASH:
        assert cash >= convert(wad, int256), "ledger: insufficient cash"
        return Override(
            active=True,
            asset=NO_ASSET,
            collateral=0,
            position=0,
            cash=cash - convert(wad, int256),
            fraction=0,
            funding=0,
        )
    held: uint256 = self.collateral[account][asset]
    assert held >= wad, "ledger: insufficient collateral"
    pos: uint256 = self._stored_position(account, asset)
    snap: int256 = 0
    if pos != 0:
        snap = self.funding_snap[account][asset]
    return Override(
        active=True,
        asset=asset,
        collateral=held - wad,
        position=pos,
        cash=cash,
        fraction=0,
        funding=snap,
    )


@internal
@view
def _stored_position(account: uint256, asset: uint256) -> uint256:
    """
    @dev The position word, read only when the account's bitmap says it is
         non-zero (saves a cold SLOAD on the common path).
    """
    if (self.account_assets[account] >> (2 * asset)) & 2 == 0:
        return 0
    return self.position_word[account][asset]


@internal
@view
def _stored_collateral(account: uint256, asset: uint256) -> uint256:
    if (self.account_assets[account] >> (2 * asset)) & 1 == 0:
        return 0
    return self.collateral[account][asset]


@internal
def _apply(account: uint256, ov: Override):
    """
    @dev Write an override to storage.
    """
    self._set_cash(account, ov.cash)
    if ov.asset < constants.MAX_ASSETS:
        self._write_collateral(account, ov.asset, ov.collateral)
        self._write_position(account, ov.asset, ov.position)


@internal
def _set_cash(account: uint256, new: int256):
    """
    @dev Write a cash balance and keep `debt` the sum of the negative ones.
    """
    old: int256 = self.cash[account]
    self.cash[account] = new
    if old < 0 or new < 0:
        self.debt = (
            self.debt
            + convert(max(-new, 0), uint256)
            - convert(max(-old, 0), uint256)
        )


@internal
def _write_collateral(account: uint256, asset: uint256, amount: uint256):
    if self.collateral[account][asset] == amount:
        return
    self.collateral[account][asset] = amount
    bit: uint256 = 1 << (2 * asset)
    if amount == 0:
        self.account_assets[account] &= ~bit
    else:
        self.account_assets[account] |= bit


@internal
def _write_position(account: uint256, asset: uint256, word: uint256):
    if self.position_word[account][asset] == word:
        return
    self.position_word[account][asset] = word
    bit: uint256 = 2 << (2 * asset)
    if word == 0:
        self.account_assets[account] &= ~bit
    else:
        self.account_assets[account] |= bit


@internal
def _log_state(account: uint256, asset: uint256):
    """
    @dev Absolute (not delta) state of the touched asset and of cash, so a
         reader rebuilds every account from logs alone, idempotently.
    """
    if asset == CASH:
        log AccountState(
            account=account,
            asset=CASH,
            cash=self.cash[account],
            collateral=0,
            size=0,
            open_notional=0,
        )
        return
    size: int256 = 0
    on: int256 = 0
    size, on = fixed_math._unpack_position(self.position_word[account][asset])
    log AccountState(
        account=account,
        asset=asset,
        cash=self.cash[account],
        collateral=self.collateral[account][asset],
        size=size,
        open_notional=on,
    )
