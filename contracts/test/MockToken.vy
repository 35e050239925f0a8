# pragma version ~=0.4.3
"""
@title Mintable ERC20 with configurable decimals, for devnets and tests
@notice snekmate's ERC20; the deployer is owner and minter.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name: String[25], symbol: String[5], decimals: uint8):
    ownable.__init__()
    erc20.__init__(name, symbol, decimals, name, "1")
