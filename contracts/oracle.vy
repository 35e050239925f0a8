# pragma version ~=0.4.3
"""
@title Chainlink-style price reads, normalised to WAD
@notice Stateless. A read never reverts on a bad answer: it returns the
        price with a validity flag, so that views can still show an account
        while a feed is down and every risk-increasing action can refuse to
        act on it (`ledger._require_prices`).
@custom:security A price is valid iff answer > 0, 0 < updatedAt <= now,
        now - updatedAt <= heartbeat and answeredInRound >= roundId. A
        non-positive answer or a price above `constants.MAX_PRICE` yields
        price 0. The feed is called with at most `FEED_GAS` gas and its
        answer is read from raw return data: a feed that reverts, runs out of
        gas or answers malformed data reads as invalid (price 0) and never
        reverts the caller, so one dead feed cannot stop a batch view or a
        liquidation. The caller must hold enough gas to give the feed its
        full allowance (else "oracle: out of gas"), so no caller can starve a
        live feed into reading as dead.
"""

import constants

# Gas a feed may use per read: a cold Chainlink proxy and aggregator read
# takes 15k to 25k; a feed that needs more counts as dead.
FEED_GAS: constant(uint256) = 50_000
# The gas a caller must hold before a read: the call forwards at most 63/64
# of what is left (EIP-150), so this guarantees the feed its full FEED_GAS.
FEED_GAS_RESERVE: constant(uint256) = FEED_GAS * 64 // 63 + 2_000


@internal
@view
def _read(
    feed: address, heartbeat: uint256, feed_decimals: uint256
) -> (uint256, bool):
    """
    @dev (price in WAD, valid). Scaling down for feeds with more than 18
         decimals rounds towards zero; no listed feed has that many.
    """
    assert msg.gas >= FEED_GAS_RESERVE, "oracle: out of gas"
    ok: bool = False
    data: Bytes[160] = b""
    ok, data = raw_call(
        feed,
        method_id("latestRoundData()"),
        max_outsize=160,
        gas=FEED_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(data) != 160:
        return 0, False
    # Decoded as full words, which cannot fail: a uint80 field out of range
    # is read as is and compared as a uint256 (a bad round id only makes the
    # answer stale, never valid).
    round_id: uint256 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint256 = 0
    (round_id, answer, started_at, updated_at, answered_in_round) = abi_decode(
        data, (uint256, int256, uint256, uint256, uint256)
    )
    if answer <= 0:
        return 0, False
    price: uint256 = convert(answer, uint256)
    if feed_decimals < 18:
        # Scaling up only raises the price, so an answer already above the
        # bound is invalid; checked first, the product stays below 2**160
        # and cannot overflow (a huge answer must read as invalid, never
        # revert the caller).
        if price > constants.MAX_PRICE:
            return 0, False
        price *= 10**(18 - feed_decimals)
    elif feed_decimals > 18:
        price //= 10**(feed_decimals - 18)
    if price == 0 or price > constants.MAX_PRICE:
        # 0: a positive answer below one WAD unit after scaling down.
        return 0, False
    valid: bool = (
        updated_at != 0
        and updated_at <= block.timestamp
        and block.timestamp - updated_at <= heartbeat
        and answered_in_round >= round_id
    )
    return price, valid


@internal
@view
def _read_round(
    feed: address, round_id: uint256, feed_decimals: uint256
) -> (uint256, uint256):
    """
    @dev (price in WAD, updatedAt) of the feed's round `round_id`
         (`getRoundData`), read like `_read`: (0, 0) when the call
         fails or answers malformed data or another round; price 0 for an
         incomplete round (answeredInRound < roundId) or an answer `_scaled`
         refuses. No heartbeat: a past round is judged by its time alone.
    """
    assert msg.gas >= FEED_GAS_RESERVE, "oracle: out of gas"
    ok: bool = False
    data: Bytes[160] = b""
    ok, data = raw_call(
        feed,
        abi_encode(round_id, method_id=method_id("getRoundData(uint80)")),
        max_outsize=160,
        gas=FEED_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(data) != 160:
        return 0, 0
    rid: uint256 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint256 = 0
    (rid, answer, started_at, updated_at, answered_in_round) = abi_decode(
        data, (uint256, int256, uint256, uint256, uint256)
    )
    if rid != round_id:
        return 0, 0
    if answered_in_round < rid:
        return 0, updated_at
    return self._scaled(answer, feed_decimals), updated_at


@internal
@pure
def _scaled(answer: int256, feed_decimals: uint256) -> uint256:
    """
    @dev A feed answer in WAD, 0 when it is non-positive, below one WAD unit
         after scaling or above `constants.MAX_PRICE`: the steps `_read`
         takes inline (it is on every margin computation's path, where a
         call would cost about 120 gas a read). Scaling down for
         feeds with more than 18 decimals rounds towards zero; no listed
         feed has that many.
    """
    if answer <= 0:
        return 0
    price: uint256 = convert(answer, uint256)
    if feed_decimals < 18:
        # Scaling up only raises the price, so an answer already above the
        # bound is invalid; checked first, the product stays below 2**160
        # and cannot overflow (a huge answer must read as invalid, never
        # revert the caller).
        if price > constants.MAX_PRICE:
            return 0
        price *= 10**(18 - feed_decimals)
    elif feed_decimals > 18:
        price //= 10**(feed_decimals - 18)
    if price > constants.MAX_PRICE:
        return 0
    return price


@internal
@view
def _read_rate(vault: address, shares: uint256) -> (uint256, bool):
    """
    @dev (assets, answered) of an ERC-4626 vault's `convertToAssets(shares)`,
         called with at most `FEED_GAS` gas like a feed: a vault that
         reverts, eats its gas or answers malformed data reads as not
         answered and never reverts the caller.
    """
    assert msg.gas >= FEED_GAS_RESERVE, "oracle: out of gas"
    ok: bool = False
    data: Bytes[32] = b""
    ok, data = raw_call(
        vault,
        abi_encode(shares, method_id=method_id("convertToAssets(uint256)")),
        max_outsize=32,
        gas=FEED_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok or len(data) != 32:
        return 0, False
    return abi_decode(data, uint256), True
