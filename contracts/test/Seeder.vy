# pragma version ~=0.4.3
"""
@title Seeder (test only)
@notice Opens many accounts in one transaction for the keeper benchmarks: a
        registered venue that deposits cash into its own sub-accounts and
        settles one perp trade per account against a maker sub-account. Every
        step goes through the engine's own deposit and settle, so the engine
        checks and logs each account as it would for any venue.
@custom:security Never deploy outside a devnet: a venue settles whatever it is
                 told, so the owner must never register this one on a real
                 engine.
"""


interface IEngine:
    def deposit(account: uint256, token: address, amount: uint256): nonpayable
    def settle(
        maker: uint256,
        taker: uint256,
        market: uint256,
        maker_size: int256,
        price: uint256,
    ): nonpayable


interface IERC20:
    def approve(spender: address, amount: uint256) -> bool: nonpayable


MAX_SEED: constant(uint256) = 500

# The engine the accounts are opened on.
engine: public(immutable(IEngine))
# Its cash token, which this contract holds and deposits.
cash_token: public(immutable(address))


@deploy
def __init__(_engine: IEngine, _cash_token: address):
    engine = _engine
    cash_token = _cash_token


@external
def approve_engine(amount: uint256):
    """
    @notice Let the engine pull `amount` cash tokens from this contract.
    """
    assert extcall IERC20(cash_token).approve(
        engine.address, amount
    ), "seeder: approve"


@external
def fund(sub_id: uint256, amount: uint256):
    """
    @notice Deposit `amount` cash token units into sub-account `sub_id`.
    """
    extcall engine.deposit(self._account(sub_id), cash_token, amount)


@external
def seed(
    first_sub: uint256,
    cash: DynArray[uint256, MAX_SEED],
    market: uint256,
    size: int256,
    price: uint256,
    maker_sub: uint256,
):
    """
    @notice Open sub-accounts `first_sub`, `first_sub + 1`, ...: account i
            gets `cash[i]` cash token units and buys `size` (WAD, signed) of
            `market` at `price` from the maker sub-account.
    """
    maker: uint256 = self._account(maker_sub)
    for i: uint256 in range(len(cash), bound=MAX_SEED):
        account: uint256 = self._account(first_sub + i)
        extcall engine.deposit(account, cash_token, cash[i])
        extcall engine.settle(maker, account, market, -size, price)


@internal
@view
def _account(sub_id: uint256) -> uint256:
    return convert(self, uint256) << 96 | sub_id
