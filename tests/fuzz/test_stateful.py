"""The stateful fuzz model (ballast_machine.BallastMachine) on revm under the `quick`
profile (`FUZZ_QUICK_EXAMPLES` x 100 steps, ~20,000), one example in four of them the
machine with options (OptionsMachine), and the hostile runs (HostileMachine) beside them.

`FUZZ_PROFILE=long` (make fuzz) runs the long campaign instead; `FUZZ_BACKEND=boa` runs the
model in titanoboa (traces, ~15x slower). The quick profile is
derandomised (the same examples every run); the long one keeps its failing examples in the
hypothesis database (tests/fuzz/.hypothesis, ignored by git) and replays them first. The bugs
found are kept as named regression tests in test_regressions.py.
"""

import dataclasses
from pathlib import Path

import ballast_machine
import pytest
from ballast_machine import (
    ETH,
    PROFILE,
    PROFILES,
    STATS,
    VOL_HEARTBEAT,
    WAD,
    BallastMachine,
    HostileMachine,
    OptionsMachine,
    instrument,
    mix,
)
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from offchain_risk.models.options import instrument_id

EXAMPLES, STEPS = PROFILES[PROFILE]
DATABASE = DirectoryBasedExampleDatabase(Path(__file__).parent / ".hypothesis")


@pytest.fixture(scope="module", autouse=True)
def _deployed(machine_stack, hostile_stack):
    """Deploy outside every example's snapshot (titanoboa's pytest plugin rolls each
    hypothesis example back, which would take a stack deployed inside it along)."""


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=STEPS,
        deadline=None,
        # The quick profile in `make test` explores the same examples on every run (a red CI
        # is reproducible); the long profile draws new ones each time and keeps its failures.
        derandomize=PROFILE == "quick",
        database=None if PROFILE == "quick" else DATABASE,
        suppress_health_check=list(HealthCheck),
    )


# The machine, the machine with option trades, vol moves and expiries (one example in
# four), and the machine with the hostile tokens listed (one run in eight more).
MIX = dict(mix(EXAMPLES))
TestBallast = BallastMachine.TestCase
TestBallast.settings = _settings(MIX[BallastMachine])
TestOptions = OptionsMachine.TestCase
TestOptions.settings = _settings(MIX[OptionsMachine])
TestHostile = HostileMachine.TestCase
TestHostile.settings = _settings(MIX[HostileMachine])


def test_window_budget_invariant_catches_an_overrun(machine_stack):
    """`updates_stay_within_window_budget` is no tautology: a model that believes the
    governor's window rate or MM step a third of what it is sees the chained updates the
    governor accepts as overruns."""
    for field in ("window_rate", "mm_step_bps"):
        machine = BallastMachine()
        try:
            lim = machine.limits
            machine.limits = dataclasses.replace(lim, **{field: getattr(lim, field) // 3})
            with pytest.raises(AssertionError, match="shock span|floor|haircut"):
                for direction in (1, -1):
                    for planned in (True, False):
                        machine.chained_updates(
                            asset=3, direction=direction, bps=3_000, count=4, gap=0,
                            planned=planned,
                        )  # fmt: skip
                        machine.updates_stay_within_window_budget()
        finally:
            machine.teardown()


def test_a_step_after_the_last_check_is_checked_at_the_end(machine_stack):
    """The invariants run every INVARIANT_EVERY steps: a property broken on a step after the
    last check is caught when the example ends, naming the invariant and the steps that may
    have broken it."""
    machine = BallastMachine()
    try:
        machine.check_invariants()  # as hypothesis does after __init__
        machine.deposit_insurance(amount=10**6)
        machine.expected_deficit += 1  # the model now disagrees with the chain
        machine.steps += 1  # the example's last step, ended before its check
    except BaseException:
        machine.teardown()
        raise
    with pytest.raises(AssertionError) as failure:
        machine.teardown()
    notes = "".join(failure.value.__notes__)
    assert "deficit_is_the_uncovered_holes failed after step 1" in notes
    assert "the failing step is one of 1..1" in notes


def test_funding_invariant_catches_rounding_for_the_account(machine_stack, monkeypatch):
    """`funding_is_conserved` is no tautology: a model whose settlements round what a
    position owes down (in the account's favour) sees negative dust, and the cash the
    contract took (the ceiling) no longer balances."""
    machine = BallastMachine()
    try:
        monkeypatch.setattr(
            ballast_machine, "owed", lambda size, index, snap: size * (index - snap) // WAD
        )
        machine.set_funding(market=ETH, hours=1, interest=WAD // 300, cap=WAD // 100)
        machine.fill(m=1, t=3, market=ETH, notional=5_000, offset_bps=100, part=1.0)
        machine._refresh()
        assert machine.book[machine._acct(1)].size[ETH] != 0  # the fill went through
        for i in (1, 3):
            machine.accrue_and_settle(seconds=ballast_machine.HOUR + 7, i=i, market=ETH)
        assert machine.funding_paid != 0
        with pytest.raises(AssertionError):
            machine.funding_is_conserved()
        with pytest.raises(AssertionError):
            machine.cash_is_conserved()
    finally:
        machine.teardown()


def test_hostile_checks_catch_a_reentry(hostile_stack):
    """`HostileMachine`'s re-entry check is no tautology: the armed token's call back, made
    from a transfer the engine's lock does not cover, gets into the engine and fails the
    check (inside a deposit the lock stops it, and the check passes)."""
    machine = HostileMachine()
    try:
        machine.arm_reentry(armed=True, i=1, market=ETH, frac=0.1)
        token, eoa = machine.k.tokens[ETH], machine.chain.eoa
        assert token.attempts() == 1 and not token.reentered()  # the deposit's call back
        with pytest.raises(AssertionError, match="re-entered the engine"):
            with machine._token_moves(ETH):
                token.transfer(eoa, 0, sender=eoa)
    finally:
        machine.teardown()


def _near_call(machine: OptionsMachine, strike_usd: int) -> int:
    """The index (`trade_option`'s `k`) of the ETH call struck at `strike_usd` on the first
    expiry, among the model's listed instruments."""
    opt = machine.k.options
    return opt.instruments.index(instrument_id(ETH, opt.expiries[0], strike_usd * WAD, True))


def test_option_twin_catches_a_wrong_vol(machine_stack):
    """`twin_agrees_with_contract` values option legs at the model's curves: a model whose
    ATM vol is a hundredth of a vol point off the feed's sees the written calls' margin
    differ."""
    machine = OptionsMachine()
    try:
        k = _near_call(machine, 2_200)
        machine.trade_option(
            kind="open", m=1, t=3, k=k, notional=-20_000, offset_bps=0, part=1.0, fresh=True
        )
        machine.check_all()
        assert machine.book[machine._acct(1)].legs  # the trade went through
        key = instrument(machine.k.options.instruments[k])[:2]
        atm, *rest = machine.curves[key]
        machine.curves[key] = (atm + WAD // 10_000, *rest)
        machine.prices_dirty = True
        with pytest.raises(AssertionError):
            machine.twin_agrees_with_contract()
    finally:
        machine.teardown()


def test_option_settlement_invariant_catches_a_wei(machine_stack):
    """Calls written in the money settle after expiry (the keepers record the price), both
    sides; `option_settlement_is_conserved` and `cash_is_conserved` hold, and fail on a
    model that believes settlements credited one wei more."""
    machine = OptionsMachine()
    try:
        k = _near_call(machine, 1_800)
        machine.trade_option(
            kind="open", m=1, t=3, k=k, notional=-10_000, offset_bps=0, part=1.0, fresh=True
        )
        expiry = machine.k.options.expiries[0]
        machine._pass_expiry(extra=60, keepers=True)
        # The keepers recorded the price from the ETH feed's history: its first round after
        # the expiry, the one the keepers pushed, at the ETH price then.
        feed = machine.k.feeds[ETH]
        assert machine.settled[ETH, expiry] == feed.answer() * 10**10 > 1_800 * WAD
        assert STATS["settlement price recorded, from the feed's history"] >= 2  # ETH and BTC
        for i in range(1, 5):  # mostly holders of expired legs: both sides
            machine._settle_expired(i)
        machine.check_all()
        assert machine.settled_legs == 2 and machine.option_paid <= 0  # the dust is kept
        machine.option_paid += 1
        for check in (machine.option_settlement_is_conserved, machine.cash_is_conserved):
            machine.pending |= {"settlement", "cash"}
            with pytest.raises(AssertionError):
                check()
    finally:
        machine.teardown()


def test_stale_vols_block_new_option_risk_not_unwinds_or_liquidation(machine_stack):
    """Past the vol heartbeat, writing more calls is refused ("oracle: invalid price"), both
    sides of an unwind go through as risk-reducing, and once ETH rallies the writer can be
    liquidated by a well-funded liquidator with every vol still stale."""
    machine = OptionsMachine()
    try:
        write = dict(kind="open", m=1, t=3, k=_near_call(machine, 2_200), offset_bps=0, part=1.0)
        machine.trade_option(**write, notional=-40_000, fresh=True)
        writer = machine._acct(1)
        machine._refresh()
        ((id, short),) = machine.book[writer].legs
        machine.wait(seconds=VOL_HEARTBEAT + 1)
        refused = STATS["refused: oracle: invalid price"]
        machine.trade_option(**write, notional=-5_000, fresh=False)
        assert STATS["refused: oracle: invalid price"] == refused + 1
        reducing = STATS["option trade side risk-reducing"]
        machine.trade_option(
            kind="close", m=1, t=3, k=0, notional=0, offset_bps=0, part=0.2, fresh=False
        )
        assert STATS["option trade side risk-reducing"] == reducing + 2
        machine._refresh()
        assert short < machine.book[writer].legs[0][1] < 0  # a fifth bought back
        proven = STATS["liquidatable, proven, with option legs and stale vols"]
        machine.move_vol(
            u=ETH, e=0, kind="writer squeeze", bps=6_000, skew=0, signers=(0, 1), desk=False
        )
        machine.check_all()
        assert machine.margins[writer].liquidatable
        assert STATS["liquidatable, proven, with option legs and stale vols"] == proven + 1
    finally:
        machine.teardown()


def test_option_runs_record_settlement_prices(machine_stack):
    """The random option runs reach the end of an option's life: derandomised examples of
    `OptionsMachine` (the first ten the quick profile's settings draw) record settlement
    prices from the feeds' history (a feed without history once refused every recording).
    Whether they also settle a leg depends on the session's shared stack (about one example
    in twenty-five does): `test_option_settlement_invariant_catches_a_wei` settles both
    sides of a leg every time."""
    from hypothesis.stateful import run_state_machine_as_test

    before = STATS.copy()
    derandomised = settings(_settings(10), derandomize=True, database=None)  # in any profile
    run_state_machine_as_test(OptionsMachine, settings=derandomised)
    ran = STATS - before
    assert ran["settlement price recorded, from the feed's history"] > 0, ran
