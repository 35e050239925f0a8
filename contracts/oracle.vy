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
        price 0. A feed that reverts makes the read revert: Ballast never
        substitutes a price of its own.
"""

from interfaces import IAggregatorV3

import constants


@internal
@view
def _read(
    feed: address, heartbeat: uint256, feed_decimals: uint256
) -> (uint256, bool):
    """
    @dev (price in WAD, valid). Scaling down for feeds with more than 18
         decimals rounds towards zero; no listed feed has that many.
    """
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint80 = 0
    (
        round_id, answer, started_at, updated_at, answered_in_round
    ) = staticcall IAggregatorV3(feed).latestRoundData()
    if answer <= 0:
        return 0, False
    price: uint256 = convert(answer, uint256)
    if feed_decimals < 18:
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
