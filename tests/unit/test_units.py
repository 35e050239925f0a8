"""offchain_risk.units: the one Python source of WAD, bps, the cash sentinel and packing."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from offchain_risk import units

CONSTANTS = Path(__file__).resolve().parents[2] / "contracts" / "constants.vy"


def _vyper_constant(name: str) -> str:
    match = re.search(rf"^{name}: constant\(\w+\) = (.+)$", CONSTANTS.read_text(), re.M)
    assert match, f"{name} not in {CONSTANTS}"
    return match.group(1).strip()


@pytest.mark.parametrize(
    "name",
    [
        "WAD",
        "BPS",
        "SUB_BITS",
        "MAX_SCENARIOS",
        "SHOCKS_PER_WORD",
        "SHOCK_WORDS",
        "MAX_ASSETS",
        "QUOTE_ASSET",
        "MAX_PRICE",
        "YEAR",
        "MIN_VOL",
        "MAX_VOL",
        "MAX_OPTION_TIME",
        "MIN_OPTION_PRICE",
        "MIN_MONEYNESS",
        "MAX_MONEYNESS",
    ],
)
def test_units__same_values_as_constants_vy(name):
    # constants.vy literals; a few are written in terms of WAD or YEAR
    env = {"WAD": units.WAD, "YEAR": units.YEAR, "MAX_ASSETS": units.MAX_ASSETS}
    assert eval(_vyper_constant(name), env) == getattr(units, name)


def test_units__cash_sentinel_is_the_max_uint256():
    assert units.CASH == 2**256 - 1
    assert units.WAD_BPS == 10**22


@pytest.mark.parametrize(
    ("value", "wad"),
    [
        (0.1, 10**17),
        (1.2, 12 * 10**17),
        (1e12, 10**30),
        (1e7, 10**25),
        ("0.05", 5 * 10**16),
        (Decimal("2.5"), 25 * 10**17),
        (3, 3 * 10**18),
        (0, 0),
    ],
)
def test_to_wad__decimal_value__exact(value, wad):
    assert units.to_wad(value) == wad


def test_to_wad__not_a_finite_number__clear_error():
    with pytest.raises(ValueError, match="not a finite number"):
        units.to_wad(float("nan"))
    with pytest.raises(TypeError, match="bool"):
        units.to_wad(True)


def test_pack_int16__round_trip_and_layout():
    shocks = [-1500, 1500, -10_000, 32_767, 0, -1]
    word = units.pack_int16(shocks)
    assert units.unpack_int16(word, len(shocks)) == shocks
    assert word & units.MASK16 == (-1500) & 0xFFFF  # scenario 0 in the low bits
    assert units.field16(word, 16) == 1500
    with pytest.raises(ValueError, match="int16"):
        units.pack_int16([40_000])


def test_pack_shock_words__two_words_scenario_k_in_word_k_div_16():
    shocks = list(range(-16, 16))  # 32 scenarios, scenario k = k - 16
    words = units.pack_shock_words(shocks)
    assert len(words) == units.SHOCK_WORDS == 2
    assert units.unpack_int16(words[1], 1) == [0]  # scenario 16 is field 0 of word 1
    assert units.unpack_shock_words(words) == shocks
    assert units.pack_shock_words(shocks[:16]) == [words[0], 0]  # K = 16: word 1 is zero
    with pytest.raises(ValueError, match="at most 32"):
        units.pack_shock_words([0] * 33)


def test_account_id__owner_and_sub__packed_as_the_engine_does():
    owner = "0x" + "ab" * 20
    assert units.account_id(owner, 5) == (int(owner, 16) << 96) | 5
    with pytest.raises(ValueError, match="sub-account"):
        units.account_id(owner, 2**96)
