# pragma version ~=0.4.3
"""
@title ERC20 that misbehaves on purpose, for tests
@notice mode 1: charges a 1% fee on every transfer (fee-on-transfer);
        mode 2: returns False from transfer / transferFrom and moves nothing.
"""

MODE_FEE: constant(uint256) = 1
MODE_FALSE: constant(uint256) = 2

name: public(String[25])
symbol: public(String[5])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# Which misbehaviour.
mode: public(uint256)


@deploy
def __init__(mode: uint256, decimals: uint8):
    self.name = "Hostile"
    self.symbol = "HOST"
    self.decimals = decimals
    self.mode = mode


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
    return self._move(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.mode == MODE_FALSE:
        return False
    self.allowance[owner][msg.sender] -= amount
    return self._move(owner, to, amount)


@internal
def _move(owner: address, to: address, amount: uint256) -> bool:
    if self.mode == MODE_FALSE:
        return False
    fee: uint256 = 0
    if self.mode == MODE_FEE:
        fee = amount // 100
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
    self.totalSupply -= fee
    return True
