"""The depeg study on the real 2023-03 window (skips without ../shared/data)."""

import pytest

from offchain_risk.backtest.depeg import run_depeg_study
from offchain_risk.data.loaders import DataNotFoundError, resolve_data_dir


@pytest.fixture(scope="module")
def study():
    try:
        resolve_data_dir()
    except DataNotFoundError as exc:
        pytest.skip(f"market data not available: {exc}")
    return run_depeg_study(n_random=100)


def test_depeg_study__usdc_low__a_higher_rate_hides_less(study):
    assert study.worst_quote == pytest.approx(0.8774, abs=1e-4)
    assert str(study.worst_hour).startswith("2023-03-11")
    rows = study.rows
    assert rows[0].peg_rate_bps == 0 and rows[0].extra_cash_share == 0
    assert rows[0].hidden_books > 0  # at par the engine misses books short in USD
    shortfalls = [r.hidden_shortfall_usd for r in rows]
    assert shortfalls == sorted(shortfalls, reverse=True) and shortfalls[-1] < shortfalls[0]
    # cash = IM / (1 - r): the extra cash share is r / (1 - r)
    for r in rows:
        assert r.extra_cash_share == pytest.approx(r.peg_rate_bps / (10_000 - r.peg_rate_bps))
    assert "peg rate" in study.summary()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2023-03-14", "end": "2023-03-09"}, "bad window"),
        ({"peg_rates_bps": (10_000,)}, "peg rates"),
    ],
)
def test_depeg_study__bad_input__clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_depeg_study(**kwargs)
