# pragma version ~=0.4.3
"""
@title Ballast trading: EIP-712 signed maker orders filled by takers
@notice A maker signs an order (owner, sub-account, market, signed size,
        price, nonce, expiry); any authorised taker fills all or part of it at
        the order's price. Fills settle peer-to-peer in cash.
@custom:security Replay: the EIP-712 domain binds chain id and engine
        address; the fill counter is keyed by (maker account, nonce), so two
        orders signed with one nonce share one size budget (re-signing with a
        nonce amends the order) and a cancelled nonce is dead for good.
        Self-trade PnL pumping (Mango 2022): the fill price must lie within
        `price_band` of a valid oracle price. Both sides must meet IM after a
        fill unless the fill lowers their MM without lowering their health.
"""

from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

import constants
import fixed_math
import ledger

uses: ledger
initializes: eip712

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


# Filled size (WAD, unsigned) per (maker account, nonce); NONCE_CANCELLED once
# cancelled.
filled: public(HashMap[uint256, HashMap[uint256, uint256]])


event Fill:
    maker: indexed(uint256)
    taker: indexed(uint256)
    market: indexed(uint256)
    nonce: uint256
    maker_size: int256  # signed size change of the maker
    price: uint256
    quote: uint256  # cash moved, WAD


event OrderCancelled:
    account: indexed(uint256)
    nonce: indexed(uint256)


@deploy
def __init__():
    eip712.__init__("Ballast", "1")


@external
@nonreentrant
def fill(order: Order, signature: Bytes[65], amount: uint256, taker: uint256):
    """
    @notice Fill `amount` (WAD units, unsigned) of a signed maker order; the
            taker account takes the opposite side. Caller: the taker
            account's owner or operator.
    """
    ledger._check_authorized(taker)
    maker: uint256 = ledger._account_id(order.owner, order.subaccount)
    assert amount != 0, "trading: zero amount"
    assert order.size != 0, "trading: zero size order"
    assert block.timestamp <= order.expiry, "trading: order expired"
    assert maker != taker, "trading: self trade"
    self._check_signature(order, signature, maker)
    done: uint256 = self.filled[maker][order.nonce]
    assert done != constants.NONCE_CANCELLED, "trading: nonce cancelled"
    assert done + amount <= convert(
        abs(order.size), uint256
    ), "trading: overfill"
    self._check_price(order.market, order.price)

    maker_delta: int256 = convert(amount, int256)
    if order.size < 0:
        maker_delta = -maker_delta
    # One quote amount for both sides keeps settlement exactly zero-sum; the
    # rounding (down) moves < 1 wei between the two parties, never to or from
    # the protocol.
    quote: int256 = convert(amount * order.price // constants.WAD, int256)
    maker_flow: int256 = quote
    if maker_delta > 0:
        maker_flow = -quote
    maker_ov: ledger.Override = self._trade(
        maker, order.market, maker_delta, maker_flow
    )
    taker_ov: ledger.Override = self._trade(
        taker, order.market, -maker_delta, -maker_flow
    )
    self._check_open_interest(order.market, maker, maker_ov, taker, taker_ov)
    self._require_fill_margin(maker, maker_ov)
    self._require_fill_margin(taker, taker_ov)

    self.filled[maker][order.nonce] = done + amount
    ledger._apply(maker, maker_ov)
    ledger._apply(taker, taker_ov)
    log Fill(
        maker=maker,
        taker=taker,
        market=order.market,
        nonce=order.nonce,
        maker_size=maker_delta,
        price=order.price,
        quote=convert(quote, uint256),
    )
    ledger._log_state(maker, order.market)
    ledger._log_state(taker, order.market)


@external
def cancel(account: uint256, nonce: uint256):
    """
    @notice Cancel every order of `account` signed with `nonce`, filled or
            not. Caller: the account's owner or operator.
    """
    ledger._check_authorized(account)
    assert (
        self.filled[account][nonce] != constants.NONCE_CANCELLED
    ), "trading: nonce cancelled"
    self.filled[account][nonce] = constants.NONCE_CANCELLED
    log OrderCancelled(account=account, nonce=nonce)


@external
@view
def order_digest(order: Order) -> bytes32:
    """
    @notice The EIP-712 digest a maker signs for `order`.
    """
    return self._digest(order)


@external
@view
def margin_after_trade(
    account: uint256, market: uint256, size: int256, price: uint256
) -> ledger.Margin:
    """
    @notice Preview: the account's margin if it traded `size` (signed, WAD) of
            `market` at `price`. Does not check authorisation or the band.
    """
    ledger._check_listed(market)
    assert ledger._is_perp(
        ledger.asset_word[market]
    ), "trading: not a perp market"
    quote: int256 = convert(
        convert(abs(size), uint256) * price // constants.WAD, int256
    )
    flow: int256 = quote
    if size > 0:
        flow = -quote
    return ledger._margin(account, self._trade(account, market, size, flow))


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
def _check_signature(order: Order, signature: Bytes[65], maker: uint256):
    assert len(signature) == 65, "trading: bad signature length"
    signer: address = ecdsa._recover_sig(self._digest(order), signature)
    assert (
        signer == order.owner or ledger.operators[maker][signer]
    ), "trading: bad signature"


@internal
@view
def _check_price(market: uint256, price: uint256):
    word: uint256 = ledger.asset_word[market]
    assert ledger._is_perp(word), "trading: not a perp market"
    oracle_price: uint256 = 0
    ok: bool = False
    oracle_price, ok = ledger._price(word)
    assert ok, "oracle: invalid price"
    distance: uint256 = max(price, oracle_price) - min(price, oracle_price)
    assert (
        distance * constants.WAD <= ledger.price_band * oracle_price
    ), "trading: price outside band"


@internal
@view
def _trade(
    account: uint256, market: uint256, d_size: int256, flow: int256
) -> ledger.Override:
    """
    @dev The account after trading `d_size` for the cash flow `flow` (paid
         when negative). Integer division truncates towards zero. Accounting
         keeps cash - open_notional moving by exactly the cash flow:
           extend:  open_notional -= flow
           reduce:  removed = on * |d| / |s| (towards zero);
                    on -= removed; cash += flow - removed
           flip:    close |s| for flow * |s| / |d|, open the rest
         so equity (cash - on + size * price) changes by size * price - flow
         whatever the rounding of `removed`.
    """
    cash: int256 = ledger.cash[account]
    size: int256 = 0
    on: int256 = 0
    size, on = fixed_math._unpack_position(
        ledger._stored_position(account, market)
    )
    new_size: int256 = size + d_size
    if size == 0 or (size > 0) == (d_size > 0):
        on -= flow
    elif abs(d_size) <= abs(size):
        removed: int256 = on * abs(d_size) // abs(size)
        on -= removed
        cash += flow - removed
    else:
        close_flow: int256 = flow * abs(size) // abs(d_size)
        cash += close_flow - on
        on = -(flow - close_flow)
    return ledger.Override(
        active=True,
        asset=market,
        collateral=ledger._stored_collateral(account, market),
        position=fixed_math._pack_position(new_size, on),
        cash=cash,
    )


@internal
def _check_open_interest(
    market: uint256,
    maker: uint256,
    maker_ov: ledger.Override,
    taker: uint256,
    taker_ov: ledger.Override,
):
    """
    @dev Long open interest moves by the change in the two sides' long sizes.
    """
    before: int256 = self._long(
        ledger._stored_position(maker, market)
    ) + self._long(ledger._stored_position(taker, market))
    after: int256 = self._long(maker_ov.position) + self._long(
        taker_ov.position
    )
    oi: uint256 = ledger.open_interest[market]
    if after > before:
        oi += convert(after - before, uint256)
        assert oi <= ledger.oi_cap[market], "trading: open interest cap"
    else:
        oi -= convert(before - after, uint256)
    ledger.open_interest[market] = oi


@internal
@pure
def _long(word: uint256) -> int256:
    size: int256 = 0
    on: int256 = 0
    size, on = fixed_math._unpack_position(word)
    return max(size, 0)


@internal
@view
def _require_fill_margin(account: uint256, ov: ledger.Override):
    """
    @dev A side must meet IM with valid prices after the fill, or the fill
         must be risk-reducing for it: MM strictly lower and health (E - MM)
         not lower than before. The second rule lets an account below IM
         always de-risk, and cannot be used to extract value, since its health
         may only rise.
    """
    after: ledger.Margin = ledger._margin(account, ov)
    if after.prices_ok and after.equity >= convert(after.im, int256):
        return
    before: ledger.Margin = ledger._margin(account, empty(ledger.Override))
    reduces: bool = after.mm < before.mm and (
        after.equity - convert(after.mm, int256)
        >= before.equity - convert(before.mm, int256)
    )
    if not reduces:
        assert after.prices_ok, "oracle: invalid price"
        raise "margin: below initial margin"
