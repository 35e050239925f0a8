# pragma version ~=0.4.3
"""
@title Ballast engine configuration: the owner's setters and token moves
@notice The owner-only setters of the engine (listing, feeds, risk
        parameters, caps, venues, the liquidation policy, fallback prices,
        the vault-share rate-cap snapshots), the account actions that move
        tokens in and out (deposit, withdraw, transfer between sub-accounts)
        and `set_operator`. MarginEngine runs them by
        delegatecall from its fallback, so they read and write the engine's
        storage, hold the engine's reentrancy lock and see the engine as
        `self`: this contract initializes the same modules in the same
        order, hence the same storage layout (a test compares the two
        layouts). Split out to keep the core under the EIP-170 size limit
        with room for funding and options; the engine's address answers both
        ABIs.
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
    ledger.set_shock_words,
    ledger.set_debt_cap,
    ledger.set_im_multiplier,
    ledger.set_price_band,
    ledger.set_paused,
    ledger.set_fallback_price,
    ledger.set_guardian,
    ledger.set_risk_manager,
    ledger.set_snapshot_manager,
    ledger.set_vault_snapshot,
    ledger.set_operator,
    settlement.set_venue,
    liquidation.set_liquidator,
)


# The funding setter, settlement and views (FundingConfig.vy), run by
# delegatecall from the fallback against the engine's storage.
FUNDING: immutable(address)


@deploy
def __init__(cash_token: address, funding: address):
    """
    @param cash_token Any listed-able token: the constructor of the ledger
           module needs one; this contract's own storage is never used.
    @param funding The FundingConfig deployment (same storage layout).
    """
    assert funding.is_contract, "engine: funding is not a contract"
    FUNDING = funding
    ownable.__init__()
    ownable_2step.__init__()
    ledger.__init__(cash_token, 0, 0, constants.WAD, constants.MAX_PRICE_BAND)


@external
@raw_return
def __default__() -> Bytes[192]:
    """
    @notice Any other call is one of FundingConfig's functions (funding,
            options, moved views): run it from FundingConfig against the
            same (the engine's) storage and return its result as is (at
            most six words). Unknown selectors revert there with "engine:
            unknown function".
    """
    return raw_call(FUNDING, msg.data, max_outsize=192, is_delegate_call=True)
