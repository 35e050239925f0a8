# pragma version ~=0.4.3
"""
@title Chainlink AggregatorV3-compatible feed driven by a feeder key
@notice The devnet oracle: the crash replay and tests push prices through it.
        The whole round lives in one storage word, so a read costs one SLOAD
        (a production Chainlink proxy + aggregator read costs more; see
        benchmarks/RESULTS.md); every round pushed is kept by id for
        `getRoundData`, as an aggregator keeps its history.
"""

# Feed decimals, as Chainlink USD feeds: 8.
decimals: public(uint8)
# The key allowed to push rounds.
feeder: public(address)
# answer (int128, two's complement) | updatedAt << 128 (48 bits)
# | roundId << 176 (40 bits) | answeredInRound << 216 (40 bits).
round_word: uint256
# Every round pushed, by round id, in the same layout.
rounds: HashMap[uint256, uint256]


event AnswerUpdated:
    current: indexed(int256)
    round_id: indexed(uint256)
    updated_at: uint256


@deploy
def __init__(decimals: uint8, answer: int256):
    self.decimals = decimals
    self.feeder = msg.sender
    self._write(answer, block.timestamp, 1, 1)


@external
def set_feeder(feeder: address):
    assert msg.sender == self.feeder, "aggregator: not feeder"
    self.feeder = feeder


@external
def set_price(answer: int256):
    """
    @notice Push a new round with `answer` (feed decimals) at the current time.
    """
    assert msg.sender == self.feeder, "aggregator: not feeder"
    round_id: uint256 = ((self.round_word >> 176) & (2**40 - 1)) + 1
    self._write(answer, block.timestamp, round_id, round_id)


@external
def set_round(
    answer: int256,
    updated_at: uint256,
    round_id: uint256,
    answered_in_round: uint256,
):
    """
    @notice Push an arbitrary round (stale, future, or inconsistent ones for tests).
    """
    assert msg.sender == self.feeder, "aggregator: not feeder"
    self._write(answer, updated_at, round_id, answered_in_round)


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    # `_round` inline: the gas benchmarks count this read in every margin().
    w: uint256 = self.round_word
    raw: int256 = convert(w & (2**128 - 1), int256)
    if raw >= 2**127:
        raw -= 2**128
    updated_at: uint256 = (w >> 128) & (2**48 - 1)
    round_id: uint80 = convert((w >> 176) & (2**40 - 1), uint80)
    answered: uint80 = convert(w >> 216, uint80)
    return round_id, raw, updated_at, updated_at, answered


@external
@view
def getRoundData(
    round_id: uint80,
) -> (uint80, int256, uint256, uint256, uint80):
    w: uint256 = self.rounds[convert(round_id, uint256)]
    assert w != 0, "aggregator: no round"
    return self._round(w)


@internal
@pure
def _round(w: uint256) -> (uint80, int256, uint256, uint256, uint80):
    raw: int256 = convert(w & (2**128 - 1), int256)
    if raw >= 2**127:
        raw -= 2**128
    updated_at: uint256 = (w >> 128) & (2**48 - 1)
    round_id: uint80 = convert((w >> 176) & (2**40 - 1), uint80)
    answered: uint80 = convert(w >> 216, uint80)
    return round_id, raw, updated_at, updated_at, answered


@internal
def _write(
    answer: int256,
    updated_at: uint256,
    round_id: uint256,
    answered_in_round: uint256,
):
    assert (
        answer >= -(2**127) and answer < 2**127
    ), "aggregator: answer out of range"
    assert (
        updated_at < 2**48
        and round_id < 2**40
        and answered_in_round < 2**40
    ), "aggregator: round out of range"
    a: int256 = answer
    if a < 0:
        a += 2**128
    w: uint256 = (
        convert(a, uint256)
        | (updated_at << 128)
        | (round_id << 176)
        | (answered_in_round << 216)
    )
    self.round_word = w
    self.rounds[round_id] = w
    log AnswerUpdated(current=answer, round_id=round_id, updated_at=updated_at)
