# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title Ballast engine configuration: the owner's setters and token moves
@notice The owner-only setters of the engine (listing, feeds, risk
        parameters, caps, venues, the liquidation policy, fallback prices,
        vault-share listings and their rate-cap snapshots),
        and the account actions that move tokens in and out (deposit,
        withdraw, transfer between sub-accounts). MarginEngine runs them by
        delegatecall from its fallback, so they read and write the engine's
        storage, hold the engine's reentrancy lock and see the engine as
        `self`: this contract initializes the same modules in the same
        order, hence the same storage layout (a test compares the two
        layouts). Split out to keep the core under the EIP-170 size limit
        with room for funding and options; the engine's address answers both
        ABIs. Optimised for size: it carries the whole margin model (for
        withdraw and transfer) and the option book's hook within the 1 KB
        reserve below EIP-170.
@custom:security Deployed once and fixed in the engine as an immutable: no
        upgrade path. Every function here checks the owner through snekmate
        `ownable` (msg.sender is preserved by delegatecall). Calling this
        contract directly changes only its own, unused storage: its own
        listing has only the cash token, with zero caps, so a direct deposit
        reverts.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

import constants
import ledger
import liquidation
import settlement

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: ledger[ownable := ownable]
initializes: settlement[ledger := ledger, ownable := ownable]
initializes: liquidation[ledger := ledger, ownable := ownable]

exports: (
    # The account actions that move tokens (see the header).
    ledger.deposit,
    ledger.withdraw,
    ledger.transfer,
    ledger.list_asset,
    ledger.set_feed,
    ledger.set_asset_risk,
    ledger.set_caps,
    ledger.set_oi_cap,
    ledger.set_shocks,
    ledger.set_shock_word,
    ledger.set_debt_cap,
    ledger.set_im_multiplier,
    ledger.set_price_band,
    ledger.set_risk_manager,
    ledger.set_guardian,
    ledger.set_paused,
    ledger.set_fallback_price,
    ledger.list_vault,
    ledger.set_vault_snapshot,
    ledger.set_snapshot_manager,
    ledger.vault_word,
    ledger.snapshot_manager,
    # Read through the same fallback: kept out of the core's bytecode.
    ledger.risk_manager,
    ledger.guardian,
    ledger.paused,
    ledger.fallback_price,
    settlement.set_venue,
    liquidation.set_liquidator,
)


@deploy
def __init__(cash_token: address):
    """
    @param cash_token Any listed-able token: the constructor of the ledger
           module needs one; this contract's own storage is never used.
    """
    ownable.__init__()
    ownable_2step.__init__()
    ledger.__init__(cash_token, 0, 0, constants.WAD, constants.MAX_PRICE_BAND)


@external
def __default__():
    """
    @notice A selector neither the engine nor this contract knows (a
            mistyped setter, say) reverts with a reason instead of empty
            data.
    """
    raise "engine: unknown function"
