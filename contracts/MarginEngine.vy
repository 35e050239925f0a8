# pragma version ~=0.4.3
"""
@title Ballast margin engine
@notice The core: multi-asset collateral in numbered sub-accounts, linear
        perpetuals settled for registered venues (OrderBook.vy: EIP-712
        signed maker orders), and joint-scenario portfolio margin
        (MM = max(worst scenario loss, floor), IM = MM * multiplier), and
        the core of liquidation: slice transfers for the registered policy
        (Liquidations.vy), the insurance fund and the bad-debt deficit.
        See docs/ARCHITECTURE.md.
@custom:security Ownership is two-step (snekmate `ownable_2step`). The owner
        lists assets, feeds, venues, risk parameters and caps. It has no
        function that moves user funds, but a feed or venue it installs
        prices and matches trades, so the owner must be a timelocked
        multisig. To stop new risk in an asset set its caps to zero; to stop
        a venue, `set_venue(venue, False)`.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

import ledger
import liquidation
import settlement

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: ledger[ownable := ownable]
initializes: settlement[ledger := ledger, ownable := ownable]
initializes: liquidation[ledger := ledger, ownable := ownable]

exports: (
    ownable_2step.owner,
    # Owner setters, ownership transfer and the token-moving account
    # actions (deposit, withdraw, transfer) run in MarginConfig.vy; option
    # fills, funding and the plain views not listed here in FundingConfig.vy
    # behind it; both by delegatecall (__default__).
    ledger.im_multiplier,
    ledger.num_assets,
    ledger.asset_word,
    ledger.shock_word,
    ledger.open_interest,
    ledger.token_word,
    ledger.account_assets,
    ledger.cash,
    ledger.deficit,
    ledger.collateral,
    ledger.operators,
    ledger.account_id,
    ledger.margin,
    ledger.position,
    ledger.price,
    settlement.settle,
    settlement.is_authorized,
    liquidation.liquidate_slice,
    liquidation.liquidation_margin,
    liquidation.healths,
)

# The owner's setters (MarginConfig.vy), run against this storage.
CONFIG: public(immutable(address))


@deploy
def __init__(
    config: address,
    cash_token: address,
    cash_deposit_cap: uint256,
    cash_account_cap: uint256,
    im_multiplier: uint256,
    price_band: uint256,
):
    """
    @param config The MarginConfig deployment (same storage layout).
    @param cash_token The quote token (a USD stablecoin), at par until it
           has a feed of its own (`set_feed(constants.QUOTE_ASSET, ...)`).
    @param cash_deposit_cap Cap on all cash deposits, WAD.
    @param cash_account_cap Cap on one account's cash deposits, WAD.
    @param im_multiplier IM / MM, WAD, in [1, 10].
    @param price_band Max fill distance from the oracle, WAD, <= 20%.
    """
    assert config.is_contract, "engine: config is not a contract"
    CONFIG = config
    ownable.__init__()
    ownable_2step.__init__()
    ledger.__init__(
        cash_token,
        cash_deposit_cap,
        cash_account_cap,
        im_multiplier,
        price_band,
    )


@external
@raw_return
def __default__() -> Bytes[192]:
    """
    @notice Any other call is one of the owner's setters, an account's
            deposit, withdrawal or transfer, an option fill or one of the
            views moved out of the core: run it from MarginConfig against
            this contract's storage, with this contract's address, caller
            and reentrancy lock, and return its result as is (at most six
            words: `margin_after_trade`'s Margin). Unknown selectors revert
            there with "engine: unknown function".
    """
    return raw_call(CONFIG, msg.data, max_outsize=192, is_delegate_call=True)
