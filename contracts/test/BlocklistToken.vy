# pragma version ~=0.4.3
"""
@title ERC20 with an issuer blocklist (as USDC and USDT have), for tests
@notice A transfer to or from a blocked address reverts.
@custom:security Test only; never listed in production deployments.
"""

name: public(String[25])
symbol: public(String[5])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# Addresses the issuer froze.
blocked: public(HashMap[address, bool])


@deploy
def __init__(decimals: uint8):
    self.name = "Blocklist"
    self.symbol = "BLOK"
    self.decimals = decimals


@external
def set_blocked(who: address, blocked: bool):
    self.blocked[who] = blocked


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    assert not self.blocked[owner], "blocklist: sender blocked"
    assert not self.blocked[to], "blocklist: receiver blocked"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
