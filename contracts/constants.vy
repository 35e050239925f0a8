# pragma version ~=0.4.3
"""
@title Ballast constants
@notice Fixed-point units, bounds and sentinels shared by every module.
        WAD = 10**18 is "1.0"; bps = 10**4 is "100%".
"""

WAD: constant(uint256) = 10**18
IWAD: constant(int256) = 10**18
BPS: constant(uint256) = 10**4
IBPS: constant(int256) = 10**4
# WAD * BPS: the divisor of a (units * price * bps) product.
WAD_BPS: constant(int256) = 10**22

# Assets are numbered 0..MAX_ASSETS-1; an account's active set is a bitmap in one word.
MAX_ASSETS: constant(uint256) = 32
# The quote (cash) asset's slot in the per-asset words: its USD feed
# (`set_feed`) and its standing peg-loss rate (the floor bps of
# `set_asset_risk`). Listed at construction, without a feed (cash at par).
QUOTE_ASSET: constant(uint256) = MAX_ASSETS
# Joint scenarios per asset, int16 bps packed 16 to a storage word, in
# SHOCK_WORDS words: scenario k is slot k % 16 of word k // 16.
MAX_SCENARIOS: constant(uint256) = 32
SHOCKS_PER_WORD: constant(uint256) = 16
SHOCK_WORDS: constant(uint256) = 2
# A scenario shock is a relative price move: -100% .. +327.67%.
MIN_SHOCK_BPS: constant(int256) = -10000

# Sub-account ids live in the low 96 bits of an account id; the owner in the high 160.
SUB_BITS: constant(uint256) = 96
SUB_MASK: constant(uint256) = 2**96 - 1

# The insurance fund is the cash balance of account 0 (owner address 0, which
# no one can sign for): deposits into it are open to anyone, nothing leaves it
# except to cover bad debt.
INSURANCE: constant(uint256) = 0

# Accounts per `healths` batch.
MAX_BATCH: constant(uint256) = 100

# Fill-counter value of a cancelled order nonce.
NONCE_CANCELLED: constant(uint256) = max_value(uint256)

# A price above this (WAD) is treated as invalid: it bounds every margin product
# (units < 2**129, price < 2**100, bps < 2**15) so the scenario sums cannot overflow.
MAX_PRICE: constant(uint256) = 2**100

# Deposit caps and token totals are uint128 (packed two to a word).
MAX_CAP: constant(uint256) = 2**128 - 1

# Admin bounds.
MAX_HEARTBEAT: constant(uint256) = 7 * 86400
MAX_FEED_DECIMALS: constant(uint256) = 36
MAX_TOKEN_DECIMALS: constant(uint256) = 36
MAX_PRICE_BAND: constant(uint256) = WAD // 5
MAX_IM_MULTIPLIER: constant(uint256) = 10 * WAD
# Longest life of a guardian's fallback price (liquidations only).
MAX_FALLBACK_LIFE: constant(uint256) = 3600

# Options: the domain the Black-76 pricing module (`black76.vy`) accepts; it
# refuses anything outside it. Vol is annualised, WAD ("100% = 10**18").
YEAR: constant(uint256) = 365 * 86400
MIN_VOL: constant(uint256) = 10**16
MAX_VOL: constant(uint256) = 5 * 10**18
# Time to expiry, seconds: 1 s .. 4 years.
MAX_OPTION_TIME: constant(uint256) = 4 * YEAR
# Forward and strike, WAD: 1e-9 .. MAX_PRICE; forward / strike within 1e-4 .. 1e4.
MIN_OPTION_PRICE: constant(uint256) = 10**9
MIN_MONEYNESS: constant(uint256) = 10**14
MAX_MONEYNESS: constant(uint256) = 10**22
# Vault shares (ERC-4626) as collateral: the exchange rate is capped as
# Aave's CAPO does it, from a snapshot ratio growing at most
# `max_growth_bps` a year. A snapshot must be at least this old when it is
# installed, so a rate pushed up in the last days is never the base.
MIN_SNAPSHOT_DELAY: constant(uint256) = 7 * 86400
# Highest yearly growth a listing or snapshot may allow (100%).
MAX_RATE_GROWTH_BPS: constant(uint256) = 10000
# A rate more than this above its cap is not capped but read as an outage
# (a donation or a manipulated vault): no price until it comes back.
VAULT_JUMP_BPS: constant(uint256) = 1000
# Option expiries lie on a daily grid at 08:00 UTC (the vol feed's and the
# option book's), seconds.
DAY: constant(uint256) = 86400
EXPIRY_TIME: constant(uint256) = 8 * 3600
# An option instrument id has this bit set (below it: the engine's asset ids),
# so one signed-order venue trades perps and options alike:
#   id = OPTION_ID | strike << 49 | expiry << 9 | underlying << 1 | is_call
OPTION_ID: constant(uint256) = 1 << 255
# Option legs (distinct instruments) one account may hold.
MAX_OPTION_LEGS: constant(uint256) = 16
# Funding (docs/ARCHITECTURE.md#funding). Rates are WAD fractions of the
# oracle price per hour; the index is WAD cash per WAD unit of size.
HOUR: constant(uint256) = 3600
# HOUR * WAD as an int256: the funding index's divisor (rate * price * dt).
HOUR_WAD: constant(int256) = 3600 * IWAD
# Most a market's hourly rate may be capped at: 1% of the price per hour.
MAX_FUNDING_CAP: constant(uint256) = WAD // 100
# Longest convergence period, hours (a premium is paid off over this many).
MAX_FUNDING_CONVERGENCE: constant(uint256) = 168
# The premium accumulator's weight (sum of |size| in an hour, WAD) is uint104.
MAX_PREMIUM_WEIGHT: constant(uint256) = 2**104 - 1
