# pragma version ~=0.4.3
"""
@title Chainlink AggregatorV3-compatible feed that can turn hostile, for tests
@notice Mode 0 answers like MockAggregator; mode 1 reverts on every read;
        mode 2 is stuck: it keeps answering the round it held when it got
        stuck (its `updatedAt` ages until the engine's heartbeat refuses it),
        and `set_price` no longer moves it; mode 3 burns about 5M gas before
        it answers (a feed that eats its caller's gas); mode 4 answers with
        32 bytes instead of five words (malformed). Every round written is
        kept by id for `getRoundData`, as an aggregator keeps its history;
        the modes apply to it as to `latestRoundData` (a stuck feed answers
        its history as stored), and a round never written reverts, as
        MockAggregator's does.
@custom:security Test only; never listed in production deployments.
"""

MODE_LIVE: constant(uint256) = 0
MODE_REVERT: constant(uint256) = 1
MODE_STUCK: constant(uint256) = 2
MODE_BURN: constant(uint256) = 3
MODE_SHORT: constant(uint256) = 4


struct Round:
    answer: int256
    updated_at: uint256
    answered_in_round: uint256
    # Written (a round id never written reverts in `getRoundData`).
    stored: bool


decimals: public(uint8)
# The hostility: MODE_LIVE, MODE_REVERT, MODE_STUCK, MODE_BURN or MODE_SHORT.
mode: public(uint256)
# The current round (answer, updatedAt, roundId, answeredInRound).
answer: public(int256)
updated_at: public(uint256)
round_id: public(uint256)
answered_in_round: public(uint256)
# Every round written, by round id.
rounds: public(HashMap[uint256, Round])


@deploy
def __init__(decimals: uint8, answer: int256):
    self.decimals = decimals
    self._write(answer, block.timestamp, 1, 1)


@external
def set_mode(mode: uint256):
    assert mode <= MODE_SHORT, "aggregator: bad mode"
    self.mode = mode


@external
def set_price(answer: int256):
    """
    @notice A new round at the current time; ignored while stuck.
    """
    if self.mode == MODE_STUCK:
        return
    self._write(answer, block.timestamp, self.round_id + 1, self.round_id + 1)


@external
def set_round(
    answer: int256,
    updated_at: uint256,
    round_id: uint256,
    answered_in_round: uint256,
):
    """
    @notice An arbitrary round (stale, future or inconsistent).
    """
    self._write(answer, updated_at, round_id, answered_in_round)


@external
@view
@raw_return
def latestRoundData() -> Bytes[160]:
    self._hostility()
    if self.mode == MODE_SHORT:
        return abi_encode(self.answer)
    return abi_encode(
        convert(self.round_id, uint80),
        self.answer,
        self.updated_at,
        self.updated_at,
        convert(self.answered_in_round, uint80),
    )


@external
@view
@raw_return
def getRoundData(round_id: uint80) -> Bytes[160]:
    """
    @notice The round `round_id` as written, under the same modes as
            `latestRoundData`; reverts for a round never written.
    """
    self._hostility()
    r: Round = self.rounds[convert(round_id, uint256)]
    assert r.stored, "aggregator: no round"
    if self.mode == MODE_SHORT:
        return abi_encode(r.answer)
    return abi_encode(
        round_id,
        r.answer,
        r.updated_at,
        r.updated_at,
        convert(r.answered_in_round, uint80),
    )


@internal
@view
def _hostility():
    """
    @dev What every read does before it answers: revert (MODE_REVERT) or
         burn about 5M gas (MODE_BURN).
    """
    assert self.mode != MODE_REVERT, "aggregator: down"
    if self.mode == MODE_BURN:
        h: bytes32 = empty(bytes32)
        for i: uint256 in range(100_000):
            h = keccak256(concat(h, convert(i, bytes32)))
        assert h != empty(bytes32)


@internal
def _write(
    answer: int256,
    updated_at: uint256,
    round_id: uint256,
    answered_in_round: uint256,
):
    assert (
        round_id < 2**80 and answered_in_round < 2**80
    ), "aggregator: bad round"
    self.answer = answer
    self.updated_at = updated_at
    self.round_id = round_id
    self.answered_in_round = answered_in_round
    self.rounds[round_id] = Round(
        answer=answer,
        updated_at=updated_at,
        answered_in_round=answered_in_round,
        stored=True,
    )
