# pragma version ~=0.4.3
"""
@title Ballast margin engine
@notice The core: multi-asset collateral in numbered sub-accounts, linear
        perpetuals settled for registered venues (OrderBook.vy: EIP-712
        signed maker orders), and joint-scenario portfolio margin
        (MM = max(worst scenario loss, floor), IM = MM * multiplier).
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
import settlement

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: ledger[ownable := ownable]
initializes: settlement[ledger := ledger, ownable := ownable]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ledger.__interface__,
    settlement.set_venue,
    settlement.venues,
    settlement.settle,
    settlement.is_authorized,
    settlement.margin_after_trade,
)


@deploy
def __init__(
    cash_token: address,
    cash_deposit_cap: uint256,
    cash_account_cap: uint256,
    im_multiplier: uint256,
    price_band: uint256,
):
    """
    @param cash_token The quote token (a USD stablecoin), valued at 1.
    @param cash_deposit_cap Cap on all cash deposits, WAD.
    @param cash_account_cap Cap on one account's cash deposits, WAD.
    @param im_multiplier IM / MM, WAD, in [1, 10].
    @param price_band Max fill distance from the oracle, WAD, <= 20%.
    """
    ownable.__init__()
    ownable_2step.__init__()
    ledger.__init__(
        cash_token,
        cash_deposit_cap,
        cash_account_cap,
        im_multiplier,
        price_band,
    )
