# pragma version ~=0.4.3
"""
@title ERC-4626 vault for devnets and tests
@notice snekmate's ERC-4626 over a test token, with a switch that makes
        `convertToAssets` misbehave (revert, answer zero, burn its gas) and a
        `slash` that takes underlying out of the vault (a staking loss: the
        rate falls). A donation is a plain transfer of the underlying into it.
"""

from ethereum.ercs import IERC20
from snekmate.extensions import erc4626

initializes: erc4626

exports: (
    erc4626.totalSupply,
    erc4626.balanceOf,
    erc4626.transfer,
    erc4626.transferFrom,
    erc4626.approve,
    erc4626.allowance,
    erc4626.name,
    erc4626.symbol,
    erc4626.decimals,
    erc4626.asset,
    erc4626.totalAssets,
    erc4626.convertToShares,
    erc4626.maxDeposit,
    erc4626.previewDeposit,
    erc4626.deposit,
    erc4626.maxMint,
    erc4626.previewMint,
    erc4626.mint,
    erc4626.maxWithdraw,
    erc4626.previewWithdraw,
    erc4626.withdraw,
    erc4626.maxRedeem,
    erc4626.previewRedeem,
    erc4626.redeem,
)

MODE_NORMAL: constant(uint256) = 0
MODE_REVERT: constant(uint256) = 1
MODE_ZERO: constant(uint256) = 2
MODE_BURN_GAS: constant(uint256) = 3

# Who may switch the mode and slash: the deployer.
admin: public(address)
# How `convertToAssets` answers (MODE_*).
mode: public(uint256)


@deploy
def __init__(name: String[25], symbol: String[5], underlying: IERC20):
    self.admin = msg.sender
    erc4626.__init__(name, symbol, underlying, 0, name, "1")


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice ERC-4626 `convertToAssets`, or the configured misbehaviour.
    """
    mode: uint256 = self.mode
    if mode == MODE_REVERT:
        raise "vault: down"
    if mode == MODE_ZERO:
        return 0
    if mode == MODE_BURN_GAS:
        x: bytes32 = empty(bytes32)
        for i: uint256 in range(100_000):
            x = keccak256(x)
        return convert(x, uint256)
    return erc4626._convert_to_assets(shares, False)


@external
def set_mode(mode: uint256):
    """
    @notice Switch `convertToAssets` (tests only).
    """
    assert msg.sender == self.admin, "vault: admin only"
    self.mode = mode


@external
def slash(amount: uint256, to: address):
    """
    @notice Move `amount` of the underlying out of the vault: every share is
            worth less at once (tests only).
    """
    assert msg.sender == self.admin, "vault: admin only"
    assert extcall IERC20(erc4626.asset).transfer(to, amount)
