"""The stateful fuzz model (ballast_machine.BallastMachine) on revm under the `quick`
profile (`FUZZ_QUICK_EXAMPLES` x 100 steps, ~20,000).

`FUZZ_PROFILE=long` (make fuzz) runs the long campaign instead; `FUZZ_BACKEND=boa` runs the
model in titanoboa (traces, ~15x slower). The quick profile is
derandomised (the same examples every run); the long one keeps its failing examples in the
hypothesis database (tests/fuzz/.hypothesis, ignored by git) and replays them first. The bugs
found are kept as named regression tests in test_regressions.py.
"""

import dataclasses
import os
from pathlib import Path

import ballast_machine
import pytest
from ballast_machine import (
    ETH,
    HOSTILE_EXAMPLES,
    PROFILES,
    WAD,
    BallastMachine,
    HostileMachine,
)
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("FUZZ_PROFILE", "quick")
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


TestBallast = BallastMachine.TestCase
TestBallast.settings = _settings(EXAMPLES)
# The same machine with the hostile tokens listed, in one run in eight.
TestHostile = HostileMachine.TestCase
TestHostile.settings = _settings(HOSTILE_EXAMPLES[PROFILE])


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
