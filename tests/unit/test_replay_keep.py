"""The replay's keeper loop for one oracle round (``replay._keep``), on scripted ticks."""

from types import SimpleNamespace

import numpy as np

from offchain_risk.keeper.keeper import TickResult
from offchain_risk.keeper.liquidator import Action
from offchain_risk.keeper.scanner import Candidate, ScanResult
from offchain_risk.replay.replay import _keep


def _tick(head: int, below: list[int], outcomes: dict[int, str]) -> TickResult:
    scan = ScanResult(
        accounts=10,
        flagged=len(below),
        confirmed=[Candidate(a, 0, 1) for a in below],
        false_positives=0,
        blocked=0,
        numpy_ms=0.0,
        chain_ms=0.0,
    )
    return TickResult(head, scan=scan, actions=[Action(a, o) for a, o in outcomes.items()])


def _venue(ticks: list[TickResult]) -> SimpleNamespace:
    script = iter(ticks)
    keeper = SimpleNamespace(tick=lambda: next(script))
    return SimpleNamespace(keeper=keeper, tick_errors=[], risk_updates=[], outcomes={}, shocks=[])


def test_keep__liquidations_in_flight__ticks_on_until_the_scan_is_clean():
    """Regression: a tick whose only actions were liquidations still in flight (sent, not
    yet mined) ended the round, reported as not cleared although the keeper's work was
    under way; it now ticks on (within ``max_ticks``)."""
    v = _venue(
        [
            _tick(1, [7, 8], {7: "sent", 8: "sent"}),
            _tick(2, [8], {8: "in_flight"}),
            _tick(3, [], {}),
        ]
    )
    path = SimpleNamespace(times=np.array(["2021-12-04T06:00"], dtype="datetime64[s]"))
    _keep(v, 0, path, 8, 0.0)
    [shock] = v.shocks
    assert (shock.hit, shock.liquidations, shock.ticks, shock.cleared) == (2, 2, 3, True)
    assert v.outcomes == {"sent": 2, "in_flight": 1}


def test_keep__nothing_sent_nothing_in_flight__round_ends_not_cleared():
    v = _venue([_tick(1, [7], {7: "simulation_failed"}), _tick(2, [], {})])
    path = SimpleNamespace(times=np.array(["2021-12-04T06:00"], dtype="datetime64[s]"))
    _keep(v, 0, path, 8, 0.0)
    [shock] = v.shocks
    assert (shock.ticks, shock.cleared) == (1, False)
