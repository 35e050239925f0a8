# pragma version ~=0.4.3
"""
@title Fixed-point helpers with an explicit rounding direction
@notice Stateless. Every margin quantity in Ballast is computed exactly in
        int256 and rounded once, against the account: equity down, losses and
        margin up. The numpy twin (`offchain_risk.models.margin`) uses the same
        helpers on Python ints.
"""

import constants


@internal
@pure
def _floor_div(x: int256, d: int256) -> int256:
    """
    @dev Division rounding towards negative infinity, for d > 0.
         EVM `sdiv` truncates towards zero, so a negative x with a remainder
         is one too high.
    """
    q: int256 = x // d
    if x < 0 and q * d != x:
        q -= 1
    return q


@internal
@pure
def _ceil_div(x: int256, d: int256) -> int256:
    """
    @dev Division rounding towards positive infinity, for d > 0.
    """
    return -self._floor_div(-x, d)


@internal
@pure
def _shock(word: uint256, k: uint256) -> int256:
    """
    @dev The k-th int16 (two's complement) of a packed shock word, in bps:
         shift it to the top of the word, reinterpret the bits as int256 and
         shift back arithmetically, which sign-extends.
    """
    return convert(convert(word << (240 - 16 * k), bytes32), int256) >> 240


@internal
@pure
def _to_word128(x: int256) -> uint256:
    """
    @dev x as a 128-bit two's complement field; reverts outside int128.
    """
    assert x >= -(2**127) and x < 2**127, "math: int128 overflow"
    if x < 0:
        return convert(x + 2**128, uint256)
    return convert(x, uint256)


@internal
@pure
def _from_word128(w: uint256) -> int256:
    """
    @dev Inverse of `_to_word128` for w < 2**128.
    """
    x: int256 = convert(w, int256)
    if x >= 2**127:
        x -= 2**128
    return x


@internal
@pure
def _pack_position(size: int256, open_notional: int256) -> uint256:
    """
    @dev A perp position in one word: size in the low 128 bits, open notional
         in the high 128, both two's complement. Out-of-range values revert, so
         a position that does not fit can never be stored.
    """
    return (self._to_word128(open_notional) << 128) | self._to_word128(size)


@internal
@pure
def _unpack_position(word: uint256) -> (int256, int256):
    """
    @dev Inverse of `_pack_position`: (size, open_notional).
    """
    return self._from_word128(word & (2**128 - 1)), self._from_word128(
        word >> 128
    )


@internal
@pure
def _apply_trade(
    size: int256, on: int256, cash: int256, d_size: int256, flow: int256
) -> (int256, int256, int256):
    """
    @dev Position accounting of a trade of `d_size` for the cash flow `flow`
         (paid when negative): the new (size, open_notional, cash). Integer
         division truncates towards zero. cash - open_notional moves by
         exactly `flow` whatever the truncation, so equity
         (cash - on + size * price) changes by d_size * price - flow:
           extend:  on -= flow
           reduce:  removed = on * |d| / |s|; on -= removed;
                    cash += flow - removed
           flip:    close |s| for flow * |s| / |d|, open the rest
    """
    if size == 0 or (size > 0) == (d_size > 0):
        return size + d_size, on - flow, cash
    if abs(d_size) <= abs(size):
        removed: int256 = on * abs(d_size) // abs(size)
        return size + d_size, on - removed, cash + flow - removed
    close_flow: int256 = flow * abs(size) // abs(d_size)
    return size + d_size, -(flow - close_flow), cash + close_flow - on


@internal
@pure
def _long(word: uint256) -> int256:
    """
    @dev The long size of a packed position (0 when short or flat).
    """
    return max(self._from_word128(word & (2**128 - 1)), 0)


@internal
@pure
def _slice(
    coll: uint256,
    size: int256,
    fraction: uint256,
    price: uint256,
    haircut_bps: uint256,
    decimals: uint256,
) -> (uint256, int256, int256, uint256):
    """
    @dev The slice `fraction` (WAD) of one asset that a liquidation moves:
         (collateral moved, size moved, perp cash flow to the liquidatee,
         collateral payment to the liquidatee). Amounts round towards zero,
         so the liquidatee never gives more than `fraction`, and exactly all
         at `fraction == WAD`. Collateral moves in whole units of its token
         (`decimals`), so neither side is left a remainder it cannot
         withdraw (balances are whole units: deposits and withdrawals are),
         and not at all without a price (`price == 0`: it stays). The perp
         moves at the oracle price and the collateral at its haircut value
         `p * (1 - h)`: both are the prices the margin model values them at,
         so the transfer leaves both sides' equity unchanged except for the
         rounding, which favours the liquidatee (it receives ceil, pays
         floor).
    """
    moved_coll: uint256 = 0
    if price != 0:
        moved_coll = coll * fraction // constants.WAD
        if decimals < 18:
            unit: uint256 = 10**(18 - decimals)
            moved_coll = moved_coll // unit * unit
    moved: int256 = (
        size * convert(fraction, int256) // constants.IWAD
    )  # signed `//` truncates towards zero, like the EVM's sdiv
    flow: int256 = 0
    if moved > 0:
        flow = convert(
            (
                convert(moved, uint256) * price + constants.WAD - 1
            ) // constants.WAD,
            int256,
        )
    elif moved < 0:
        flow = -convert(
            convert(-moved, uint256) * price // constants.WAD, int256
        )
    pay: uint256 = (
        moved_coll * price * (constants.BPS - haircut_bps)
        + convert(constants.WAD_BPS, uint256)
        - 1
    ) // convert(constants.WAD_BPS, uint256)
    return moved_coll, moved, flow, pay
