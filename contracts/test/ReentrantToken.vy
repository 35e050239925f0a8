# pragma version ~=0.4.3
"""
@title ERC20 that calls back into a target on every transfer, for tests
@notice When armed, `transfer` and `transferFrom` first call `target` with
        `payload` (e.g. the engine's `withdraw` or `deposit`) and record
        whether that inner call succeeded. The engine's reentrancy lock must
        make it fail: `reentered` stays False.
@custom:security Test only; never listed in production deployments.
"""

name: public(String[25])
symbol: public(String[5])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
# The contract called back during a transfer (zero: disarmed).
target: public(address)
# The call made to `target`.
payload: public(Bytes[260])
# Calls back attempted.
attempts: public(uint256)
# True once a call back succeeded (the lock failed).
reentered: public(bool)


@deploy
def __init__(decimals: uint8):
    self.name = "Reentrant"
    self.symbol = "RENT"
    self.decimals = decimals


@external
def arm(target: address, payload: Bytes[260]):
    """
    @notice Call `target` with `payload` on every later transfer.
    """
    self.target = target
    self.payload = payload


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
    self._call_back()
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    self._call_back()
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _call_back():
    if self.target == empty(address):
        return
    self.attempts += 1
    ok: bool = raw_call(self.target, self.payload, revert_on_failure=False)
    if ok:
        self.reentered = True


@internal
def _move(owner: address, to: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
