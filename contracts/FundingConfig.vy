# pragma version ~=0.4.3
"""
@title Ballast funding configuration: parameters, explicit settlement, views
@notice The funding setter (`set_funding_params`), the explicit
        `settle_funding` and the funding getters and `funding_index` view
        of the engine (docs/ARCHITECTURE.md#funding); the option entry
        points (`settle_option` for a venue's option fill, the book's
        `settle_option_cash` at expiry, `set_option_book`); with the plain
        views, the trade preview, ownership transfer and the rarely used
        setter (`list_vault`) moved out of the core and MarginConfig for
        their size. MarginConfig runs them
        by delegatecall from its fallback, itself run by the engine's
        fallback by delegatecall: they read and write the engine's storage,
        hold the engine's reentrancy lock and see the engine as `self`.
        This contract initializes the same modules in the same order, hence
        the same storage layout (a test compares the layouts). Split out
        because the core and MarginConfig have no room left under the size
        reserve.
@custom:security Deployed once and fixed in MarginConfig as an immutable: no
        upgrade path. The setters check the owner (or the risk manager, to
        lower a funding cap) through snekmate `ownable`; msg.sender is
        preserved by both delegatecalls. Calling this contract directly
        changes only its own, unused storage.
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
    # Ownership (two-step), moved out of the core for its room.
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ledger.set_funding_params,
    ledger.lower_funding_cap,
    ledger.settle_funding,
    ledger.funding_word,
    ledger.premium_word,
    ledger.funding_params,
    ledger.funding_snap,
    ledger.funding_index,
    # Views of the other setters' state, moved here for MarginConfig's room
    # (all read through the engine's fallback: kept out of the core's bytecode).
    ledger.vault_rate,
    ledger.vault_cap,
    ledger.vault_word,
    ledger.fallback_price,
    ledger.snapshot_manager,
    ledger.risk_manager,
    ledger.guardian,
    ledger.paused,
    ledger.liquidation_price,
    ledger.round_price,
    ledger.price_band,
    ledger.cash_token,
    ledger.debt,
    ledger.debt_cap,
    ledger.equity,
    ledger.health,
    settlement.venues,
    # Plain views and the trade preview, moved out of the core for the
    # option hook's room (the fallbacks return up to six words).
    ledger.asset_token,
    ledger.oi_cap,
    ledger.token_caps,
    settlement.margin_after_trade,
    liquidation.liquidator,
    # A rarely used owner setter, moved here for MarginConfig's room.
    ledger.list_vault,
    # Options (OptionBook.vy), kept out of the core's bytecode: the
    # book's installation, option fills (a venue calls `settle_option`
    # through the engine's fallbacks) and expiry settlement into cash.
    settlement.set_option_book,
    settlement.settle_option,
    settlement.settle_option_cash,
    ledger.option_book,
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
    @notice A selector neither the engine, MarginConfig nor this contract
            knows (a mistyped setter, say) reverts with a reason instead of
            empty data.
    """
    raise "engine: unknown function"
