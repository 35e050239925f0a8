"""Ballast's units and packed layouts on the Python side, in one place.

``contracts/constants.vy`` is the Vyper side; the names here are the same. Amounts, prices
and ratios are WAD fixed point (``10**18`` is one token, one dollar, 100%); rates packed
into storage words are bps (``10**4`` is 100%); an asset's 32 scenario shocks are int16 bps
in two words (``engine.shock_word(asset, w)``), scenario ``k`` in bits ``16j .. 16j+15`` of
word ``k // 16`` with ``j = k % 16``; an account id is ``owner << 96 | sub_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from numbers import Real

WAD = 10**18
BPS = 10**4
HOUR = 3_600  # seconds
DAY = 24 * HOUR
YEAR = 365 * DAY  # the year vols are annualised over and vault caps grow per
WAD_BPS = WAD * BPS  # a WAD x WAD x bps product back to WAD: one division by 10**22
#: The asset id the engine's ``AccountState`` events and views use for cash.
CASH = 2**256 - 1
INSURANCE = 0  # constants.INSURANCE: the insurance fund's account id
SUB_BITS = 96  # an account id is owner << SUB_BITS | sub_id
SUB_MASK = 2**SUB_BITS - 1
MASK16 = 0xFFFF  # one 16-bit field of a packed word
MAX_SCENARIOS = 32  # joint scenarios (int16 shocks) per asset
SHOCKS_PER_WORD = 16  # int16 shocks per packed word
SHOCK_WORDS = MAX_SCENARIOS // SHOCKS_PER_WORD  # packed words per asset
MAX_ASSETS = 32  # asset ids 0 .. MAX_ASSETS - 1
#: The quote (cash) asset's slot in the engine's per-asset words (its feed, its peg rate).
QUOTE_ASSET = MAX_ASSETS
MAX_PRICE = 2**100  # a price above this (WAD) is invalid
# Options: the domain of the Black-76 pricing module (contracts/black76.vy).
MIN_VOL = 10**16  # 1%, WAD
MAX_VOL = 5 * 10**18  # 500%, WAD
MAX_OPTION_TIME = 4 * YEAR  # seconds to expiry
MIN_OPTION_PRICE = 10**9  # forward and strike, WAD
MIN_MONEYNESS = 10**14  # forward / strike, WAD
MAX_MONEYNESS = 10**22


def to_wad(value: Real | str | Decimal) -> int:
    """``value`` (a decimal number: 1.5, "0.05", 1e12) in WAD, exactly as written in decimal:
    ``to_wad(0.1) == 10**17`` and ``to_wad(1e12) == 10**30``, where ``int(0.1 * 10**18)``
    and ``int(1e12 * 10**18)`` carry the binary float's error. Rounds half to even below
    one wei."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number of units")
    if isinstance(value, int):
        return value * WAD
    exact = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if not exact.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return int((exact * WAD).to_integral_value())


def from_wad(value: int) -> float:
    """A WAD integer as a float (for reports and logs, never for on-chain arithmetic)."""
    return int(value) / WAD


def pack_int16(values: Iterable[int]) -> int:
    """A word of int16 fields, field ``k`` in bits ``16k .. 16k+15`` (two's complement)."""
    word = 0
    for k, v in enumerate(values):
        v = int(v)
        if not -(2**15) <= v < 2**15:
            raise ValueError(f"{v} does not fit in an int16 field")
        word |= (v & MASK16) << (16 * k)
    return word


def unpack_int16(word: int, n: int = SHOCKS_PER_WORD) -> list[int]:
    """The first ``n`` int16 fields of ``word`` (see :func:`pack_int16`)."""
    out = []
    for k in range(n):
        v = (int(word) >> (16 * k)) & MASK16
        out.append(v - 0x10000 if v >= 0x8000 else v)
    return out


def pack_shock_words(shocks_bps: Iterable[int]) -> list[int]:
    """An asset's ``SHOCK_WORDS`` packed words of its (at most ``MAX_SCENARIOS``) shocks,
    the engine's layout: scenario ``k`` in field ``k % 16`` of word ``k // 16``; missing
    scenarios are zero."""
    values = [int(v) for v in shocks_bps]
    if len(values) > MAX_SCENARIOS:
        raise ValueError(f"{len(values)} shocks, at most {MAX_SCENARIOS}")
    return [
        pack_int16(values[w * SHOCKS_PER_WORD : (w + 1) * SHOCKS_PER_WORD])
        for w in range(SHOCK_WORDS)
    ]


def read_shocks(engine: object, asset: int) -> list[int]:
    """The asset's ``MAX_SCENARIOS`` shocks (bps) as ``engine`` holds them: both of its
    ``shock_word(asset, w)`` words, unpacked."""
    return unpack_shock_words(engine.shock_word(asset, w) for w in range(SHOCK_WORDS))


def unpack_shock_words(words: Iterable[int]) -> list[int]:
    """The ``MAX_SCENARIOS`` shocks (bps) of an asset's packed words (see
    :func:`pack_shock_words`)."""
    words = [int(w) for w in words]
    if len(words) != SHOCK_WORDS:
        raise ValueError(f"{len(words)} shock words, expected {SHOCK_WORDS}")
    return [s for w in words for s in unpack_int16(w, SHOCKS_PER_WORD)]


def field16(word: int, shift: int) -> int:
    """The unsigned 16-bit field of ``word`` starting at bit ``shift``."""
    return (int(word) >> shift) & MASK16


def account_id(owner: str | int, sub_id: int = 0) -> int:
    """The engine's account id of ``owner``'s sub-account ``sub_id``."""
    if not 0 <= sub_id <= SUB_MASK:
        raise ValueError(f"sub-account {sub_id} outside [0, 2**{SUB_BITS})")
    owner_int = owner if isinstance(owner, int) else int(str(owner), 16)
    return (owner_int << SUB_BITS) | sub_id


# Vault shares (ERC-4626) as collateral: ``constants.vy`` and ``ledger.vy``'s vault word.
MIN_SNAPSHOT_DELAY = 7 * DAY  # a rate-cap snapshot is at least this old when installed
MAX_RATE_GROWTH_BPS = 10_000  # highest yearly growth a snapshot may allow
VAULT_JUMP_BPS = 1_000  # a rate this far above its cap is an outage, not capped
MAX_CAP = 2**128 - 1  # convertToAssets answers above this read as no rate
RATIO_BITS = 128  # vault word: ratio | time << 128 | growth << 192 | decimals << 208
SNAPSHOT_TIME_SHIFT = 128
GROWTH_SHIFT = 192
UNDERLYING_DECIMALS_SHIFT = 208


def unpack_vault_word(word: int) -> tuple[int, int, int, int]:
    """(ratio WAD, snapshot time, max yearly growth bps, underlying decimals) of a vault
    word (``engine.vault_word(asset)``)."""
    word = int(word)
    return (
        word & (2**RATIO_BITS - 1),
        (word >> SNAPSHOT_TIME_SHIFT) & (2**64 - 1),
        (word >> GROWTH_SHIFT) & MASK16,
        (word >> UNDERLYING_DECIMALS_SHIFT) & 0xFF,
    )


# Options (contracts/constants.vy, OptionBook.vy).
EXPIRY_TIME = 8 * 3600  # expiries at 08:00 UTC
OPTION_ID = (
    1 << 255
)  # bit of an instrument id: OPTION_ID | strike << 49 | expiry << 9 | u << 1 | call
MAX_OPTION_LEGS = 16
NO_ASSET = MAX_ASSETS  # ledger.NO_ASSET: an Override that changes no asset (cash, a slice)
OPTION_TRADE = NO_ASSET + 1  # ledger.OPTION_TRADE: an Override carrying an option trade
VOL_TENOR = 30 * DAY  # vol moves scale with sqrt(VOL_TENOR / max(tau, VOL_FLOOR))
VOL_FLOOR = 7 * DAY
# Funding (contracts/constants.vy, ledger.funding_word / premium_word / funding_params); rates
# are per HOUR, above.
MAX_FUNDING_CAP = WAD // 100  # 1% of the price per hour
MAX_FUNDING_CONVERGENCE = 168  # hours
MAX_PREMIUM_WEIGHT = 2**104 - 1
