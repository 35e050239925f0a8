"""The replay's keeper loop for one oracle round (``replay._keep``), on scripted ticks, and
its wait for a tick's batched sends to be mined (``replay._mined``)."""

import time
from types import SimpleNamespace

import numpy as np

from offchain_risk.keeper.keeper import TickResult
from offchain_risk.keeper.liquidator import Action
from offchain_risk.keeper.scanner import Candidate, ScanResult
from offchain_risk.replay.replay import _keep, _mined


class Pool:
    """A node that mines one of the key's pooled transactions per request pair."""

    def __init__(self, pooled: int, latest: int = 5):
        self.latest, self.pending = latest, latest + pooled
        self.requests = 0

    def make_request(self, method, params):
        assert method == "eth_getTransactionCount"
        self.requests += 1
        if params[1] == "latest":
            count = self.latest
            self.latest = min(self.latest + 1, self.pending)  # a block mined meanwhile
            return {"result": hex(count)}
        return {"result": hex(self.pending)}


def _tx(pool):
    return SimpleNamespace(w3=SimpleNamespace(provider=pool), address="0x" + "11" * 20)


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
    keeper = SimpleNamespace(tick=lambda: next(script), tx=_tx(Pool(pooled=0)))
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


def test_regression_replay_batched_sends__next_tick_waits_until_they_are_mined():
    """A tick's liquidations go out in one batch and anvil mines them one block each after
    the batch returns: a tick that followed at once found them in the pool, their accounts
    in flight, and spent the round's ticks waiting (rounds left uncleared in `make demo`)."""
    pool = Pool(pooled=4)
    _mined(_tx(pool))
    assert pool.latest == pool.pending  # every pooled transaction mined before returning


def test_mined__a_transaction_that_never_mines__gives_up_at_the_timeout():
    pool = Pool(pooled=3)
    pool.make_request = lambda method, params: {"result": hex(9 if params[1] == "pending" else 5)}
    t0 = time.monotonic()
    _mined(_tx(pool), timeout=0.05)
    assert 0.05 <= time.monotonic() - t0 < 1.0
