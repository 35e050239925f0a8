# pragma version ~=0.4.3
"""
@title Ballast order book: EIP-712 signed maker orders filled by takers
@notice A maker signs an order (owner, sub-account, market, signed size,
        price, nonce, expiry); an authorised taker fills all or part of it
        at the order's price. The engine settles each fill under its own
        rules (price band, open interest, margin): see settlement.vy.
@custom:security Replay: the EIP-712 domain binds chain id and this book's
        address. A nonce belongs to the first order filled under it: its fill
        record keeps that order's digest, so another order signed with the
        same nonce can never be filled (to amend, cancel and re-sign with a
        new nonce), and a cancelled nonce is dead for good.
        Signatures: 65 bytes, low-s (snekmate ecdsa). The owner of the engine
        stops this venue with `set_venue(book, False)`.
"""

from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

from interfaces import IMarginEngine

import constants

initializes: eip712

exports: eip712.eip712Domain

LOW_128: constant(uint256) = 2**128 - 1
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(address owner,uint256 subaccount,uint256 market,int256 size,uint256 price,uint256 nonce,uint256 expiry)"
)


struct Order:
    owner: address
    subaccount: uint256
    market: uint256
    size: int256  # maker's signed size: > 0 buys, < 0 sells
    price: uint256  # WAD cash per unit; the fill price
    nonce: uint256
    expiry: uint256  # unix seconds, inclusive


# The engine that settles the fills.
engine: public(immutable(IMarginEngine))
# Per (maker account, nonce): the high 128 bits of the digest of the order
# that owns the nonce | the size filled (WAD, low 128 bits); NONCE_CANCELLED
# once cancelled.
fills: HashMap[uint256, HashMap[uint256, uint256]]


event OrderFilled:
    maker: indexed(uint256)
    nonce: indexed(uint256)
    taker: indexed(uint256)
    amount: uint256
    filled: uint256


event OrderCancelled:
    account: indexed(uint256)
    nonce: indexed(uint256)


@deploy
def __init__(engine_: IMarginEngine):
    """
    @param engine_ The engine that settles this book's fills.
    """
    eip712.__init__("Ballast", "1")
    engine = engine_


@external
@nonreentrant
def fill(order: Order, signature: Bytes[65], amount: uint256, taker: uint256):
    """
    @notice Fill `amount` (WAD units, unsigned) of a signed maker order; the
            taker account takes the opposite side. Caller: the taker
            account's owner or operator.
    """
    assert staticcall engine.is_authorized(
        taker, msg.sender
    ), "ledger: not owner or operator"
    maker: uint256 = staticcall engine.account_id(order.owner, order.subaccount)
    assert amount != 0, "trading: zero amount"
    assert order.size != 0, "trading: zero size order"
    assert block.timestamp <= order.expiry, "trading: order expired"
    assert maker != taker, "trading: self trade"
    digest: bytes32 = self._digest(order)
    self._check_signature(order, digest, signature, maker)
    word: uint256 = self.fills[maker][order.nonce]
    assert word != constants.NONCE_CANCELLED, "trading: nonce cancelled"
    tag: uint256 = convert(digest, uint256) & ~LOW_128
    assert (
        word == 0 or word & ~LOW_128 == tag
    ), "trading: nonce used by another order"
    done: uint256 = word & LOW_128
    assert done + amount <= convert(
        abs(order.size), uint256
    ), "trading: overfill"
    assert done + amount <= LOW_128, "trading: size too large"

    self.fills[maker][order.nonce] = tag | (done + amount)
    maker_size: int256 = convert(amount, int256)
    if order.size < 0:
        maker_size = -maker_size
    log OrderFilled(
        maker=maker,
        nonce=order.nonce,
        taker=taker,
        amount=amount,
        filled=done + amount,
    )
    if order.market >= constants.OPTION_ID:  # an option instrument
        extcall engine.settle_option(
            maker, taker, order.market, maker_size, order.price
        )
    else:
        extcall engine.settle(
            maker, taker, order.market, maker_size, order.price
        )


@external
def cancel(account: uint256, nonce: uint256):
    """
    @notice Cancel every order of `account` signed with `nonce`, filled or
            not. Caller: the account's owner or operator.
    """
    assert staticcall engine.is_authorized(
        account, msg.sender
    ), "ledger: not owner or operator"
    assert (
        self.fills[account][nonce] != constants.NONCE_CANCELLED
    ), "trading: nonce cancelled"
    self.fills[account][nonce] = constants.NONCE_CANCELLED
    log OrderCancelled(account=account, nonce=nonce)


@external
@view
def filled(account: uint256, nonce: uint256) -> uint256:
    """
    @notice Size filled (WAD) under the account's nonce, or 2**256 - 1 once
            the nonce is cancelled.
    """
    word: uint256 = self.fills[account][nonce]
    if word == constants.NONCE_CANCELLED:
        return word
    return word & LOW_128


@external
@view
def order_digest(order: Order) -> bytes32:
    """
    @notice The EIP-712 digest a maker signs for `order`.
    """
    return self._digest(order)


@internal
@view
def _digest(order: Order) -> bytes32:
    return eip712._hash_typed_data_v4(
        keccak256(
            abi_encode(
                ORDER_TYPEHASH,
                order.owner,
                order.subaccount,
                order.market,
                order.size,
                order.price,
                order.nonce,
                order.expiry,
            )
        )
    )


@internal
@view
def _check_signature(
    order: Order, digest: bytes32, signature: Bytes[65], maker: uint256
):
    assert len(signature) == 65, "trading: bad signature length"
    signer: address = ecdsa._recover_sig(digest, signature)
    assert signer == order.owner or staticcall engine.operators(
        maker, signer
    ), "trading: bad signature"
