# pragma version ~=0.4.3
"""
@title Ballast option book: European cash-settled options in the portfolio
@notice Lists calls and puts per (underlying, expiry, strike, kind) on a
        grid (expiries at 08:00 UTC, strikes on a per-underlying step),
        holds each account's option legs (at most MAX_OPTION_LEGS), caps
        open interest per underlying and expiry, and values the legs for the
        engine's margin model (`option_margin`): mark value by Black-76
        (black76.vy) at the signed vol feed's vol (VolFeed.vy), and per joint
        scenario a bound of the full-revaluation loss under the underlying's
        shock and a vol move up and down scaled by sqrt(30 days / max(time to
        expiry, 7 days)): Black-76 at three anchor prices, chords and
        tangents between them (`_leg`); plus a short-option minimum. Orders
        are the order book's (OrderBook.vy): an order whose market is an
        instrument id (constants.OPTION_ID set) settles here through the
        engine (settlement._settle_option). At expiry anyone records the
        settlement price (the answer of the underlying feed's first valid
        round at or after expiry) and settles an account's expired legs to
        cash (`settle_expired`).
@custom:security Only the engine calls `apply_trade`; it checks both sides'
        margin with the trade applied before. A stale or missing vol makes
        `option_margin` report not-ok, which blocks risk-increasing trades
        (the engine's fill rule) and never a liquidation (the liquidation
        valuation ignores vol validity and values a leg without a vol at the
        bound against its holder). To stop new risk: `set_oi_cap(u, e, 0)`.
"""

from snekmate.auth import ownable
from snekmate.utils import math

import black76
import constants
import fixed_math
import ledger

initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership)


interface IEngine:
    def price(asset: uint256) -> (uint256, bool): view
    def liquidation_price(asset: uint256) -> uint256: view
    def shock_word(asset: uint256, w: uint256) -> uint256: view
    def asset_word(asset: uint256) -> uint256: view
    def round_price(asset: uint256, round_id: uint256) -> (
        uint256, uint256
    ): view
    def settle_option_cash(
        account: uint256, amount: int256, holds: bool
    ): nonpayable


interface IVolFeed:
    def vol(underlying: uint256, expiry: uint256, strike: uint256) -> (
        uint256, bool
    ): view


# Vol moves are scaled by (VOL_TENOR / max(time to expiry, VOL_FLOOR))^(1/2).
VOL_TENOR: constant(uint256) = 30 * constants.DAY
VOL_FLOOR: constant(uint256) = 7 * constants.DAY
# Largest |size| of one trade or leg, WAD units of the underlying: keeps every
# product below 2**255 (size * price <= 2**200).
MAX_OPTION_SIZE: constant(uint256) = 2**100
# Rounds `record_settlement` walks back past invalid ones after expiry.
SETTLE_LOOKBACK: constant(uint256) = 8
# Instrument id layout (constants.OPTION_ID | strike << 49 | expiry << 9 |
# underlying << 1 | is_call).
STRIKE_SHIFT: constant(uint256) = 49
EXPIRY_SHIFT: constant(uint256) = 9
UNDERLYING_SHIFT: constant(uint256) = 1
MAX_VOL_SHOCK: constant(uint256) = constants.WAD


struct Instrument:
    underlying: uint256
    expiry: uint256
    strike: uint256
    is_call: bool


# What a valuation reads of an underlying once per call: its price (the
# liquidation price in the liquidation valuation), whether it is valid, its
# packed scenario shocks (engine.shock_word, both words) and the anchors'
# prices: the price moved by the lowest shock (or not at all when none is
# negative) and by the highest (or not at all when none is positive).
# An all-zero second word is a set of K <= 16 scenarios: scenarios 16..31
# are left out (not valued as 16 vol-only moves), as before K = 32.
struct Market:
    price: uint256
    ok: bool
    shocks: uint256[constants.SHOCK_WORDS]
    low: uint256
    high: uint256


struct Grid:
    # Strikes are multiples of this (WAD); 0: the underlying is not listed.
    strike_step: uint256
    # The scenario vol move at 30 days, absolute (WAD: 0.1 = 10 vol points).
    vol_shock: uint256
    # Short-option minimum, bps of the underlying's price per unit short.
    short_min_bps: uint256


# The margin engine that settles trades and calls `option_margin`.
engine: public(immutable(IEngine))
# The signed implied-vol feed.
vol_feed: public(immutable(IVolFeed))
# Per underlying (the engine's asset id): strike grid and risk parameters.
grid: public(HashMap[uint256, Grid])
# Listed instruments (by id).
listed: public(HashMap[uint256, bool])
# Per underlying and expiry: long open interest (WAD) and its cap.
open_interest: public(HashMap[uint256, HashMap[uint256, uint256]])
oi_cap: public(HashMap[uint256, HashMap[uint256, uint256]])
# Per underlying and expiry: the settlement price (WAD), 0 until recorded.
settlement_price: public(HashMap[uint256, HashMap[uint256, uint256]])
# Per account: the instrument ids it holds (non-zero sizes only).
legs: HashMap[uint256, DynArray[uint256, constants.MAX_OPTION_LEGS]]
# Per account and instrument: signed size, WAD units of the underlying.
size: public(HashMap[uint256, HashMap[uint256, int256]])


event GridSet:
    underlying: indexed(uint256)
    strike_step: uint256
    vol_shock: uint256
    short_min_bps: uint256


event OptionListed:
    instrument: indexed(uint256)
    underlying: indexed(uint256)
    expiry: uint256
    strike: uint256
    is_call: bool


event OptionOiCapSet:
    underlying: indexed(uint256)
    expiry: indexed(uint256)
    cap: uint256


event OptionPosition:
    account: indexed(uint256)
    instrument: indexed(uint256)
    size: int256


event SettlementPrice:
    underlying: indexed(uint256)
    expiry: indexed(uint256)
    price: uint256


event OptionSettled:
    account: indexed(uint256)
    instrument: indexed(uint256)
    size: int256
    amount: int256


@deploy
def __init__(engine_: IEngine, vol_feed_: IVolFeed):
    """
    @param engine_ The margin engine (which must install this book).
    @param vol_feed_ The signed implied-vol feed.
    """
    ownable.__init__()
    engine = engine_
    vol_feed = vol_feed_


# ------------------------------------------------------------------ owner


@external
def set_grid(
    underlying: uint256,
    strike_step: uint256,
    vol_shock: uint256,
    short_min_bps: uint256,
):
    """
    @notice Strike grid and risk parameters of an underlying. Owner only.
    """
    ownable._check_owner()
    assert strike_step >= constants.MIN_OPTION_PRICE, "options: bad strike step"
    assert strike_step <= constants.MAX_PRICE, "options: bad strike step"
    assert vol_shock <= MAX_VOL_SHOCK, "options: bad vol shock"
    assert short_min_bps <= constants.BPS, "options: bad short minimum"
    p: uint256 = 0
    ok: bool = False
    p, ok = staticcall engine.price(underlying)  # reverts unless listed
    assert (
        staticcall engine.asset_word(underlying) & ledger.VAULT_BIT == 0
    ), "options: vault underlying"
    self.grid[underlying] = Grid(
        strike_step=strike_step,
        vol_shock=vol_shock,
        short_min_bps=short_min_bps,
    )
    log GridSet(
        underlying=underlying,
        strike_step=strike_step,
        vol_shock=vol_shock,
        short_min_bps=short_min_bps,
    )


@external
def list_option(
    underlying: uint256, expiry: uint256, strike: uint256, is_call: bool
) -> uint256:
    """
    @notice List a call or put on the grid. Owner only.
    @return The instrument id (also `instrument_id(...)`).
    """
    ownable._check_owner()
    step: uint256 = self.grid[underlying].strike_step
    assert step != 0, "options: unknown underlying"
    assert (
        expiry % constants.DAY == constants.EXPIRY_TIME
    ), "options: expiry off grid"
    assert expiry > block.timestamp, "options: expired"
    assert (
        expiry - block.timestamp <= constants.MAX_OPTION_TIME
    ), "options: expiry too far"
    assert strike != 0 and strike % step == 0, "options: strike off grid"
    assert strike <= constants.MAX_PRICE, "options: strike off grid"
    id: uint256 = self._id(underlying, expiry, strike, is_call)
    assert not self.listed[id], "options: already listed"
    self.listed[id] = True
    log OptionListed(
        instrument=id,
        underlying=underlying,
        expiry=expiry,
        strike=strike,
        is_call=is_call,
    )
    return id


@external
def set_oi_cap(underlying: uint256, expiry: uint256, cap: uint256):
    """
    @notice Cap on long open interest (WAD units) per underlying and expiry.
            Owner only; 0 stops new open interest.
    """
    ownable._check_owner()
    self.oi_cap[underlying][expiry] = cap
    log OptionOiCapSet(underlying=underlying, expiry=expiry, cap=cap)


# ------------------------------------------------------------------ anyone


@external
def record_settlement(underlying: uint256, expiry: uint256, round_id: uint256):
    """
    @notice Record the settlement price of (underlying, expiry), once: the
            answer of the underlying feed's first valid round at or after
            expiry, named by `round_id`. The round must be complete, valid
            and updated at or after expiry; walking back, every round before
            it up to the first one updated before expiry must be invalid (at
            most SETTLE_LOOKBACK rounds, or to the start of the feed's
            phase). So no caller chooses the price by choosing when to call.
    """
    assert expiry <= block.timestamp, "options: not expired"
    assert (
        self.settlement_price[underlying][expiry] == 0
    ), "options: already recorded"
    p: uint256 = 0
    t: uint256 = 0
    p, t = staticcall engine.round_price(underlying, round_id)
    assert p != 0, "options: bad round"
    assert (
        t >= expiry and t <= block.timestamp
    ), "options: round not after expiry"
    r: uint256 = round_id
    for _: uint256 in range(SETTLE_LOOKBACK):
        # Chainlink ids are phase << 64 | round: round 1 opens a phase.
        if r & (2**64 - 1) <= 1:
            break
        r -= 1
        q: uint256 = 0
        q, t = staticcall engine.round_price(underlying, r)
        assert t != 0, "options: round unreadable"
        if t < expiry:
            break
        assert q == 0, "options: not the first round"
    self.settlement_price[underlying][expiry] = p
    log SettlementPrice(underlying=underlying, expiry=expiry, price=p)


@external
@nonreentrant
def settle_expired(account: uint256):
    """
    @notice Settle every expired leg of `account` whose settlement price is
            recorded: its value `size * intrinsic` moves to cash (rounded
            down, against the account) and the leg is removed. Anyone.
    """
    legs: DynArray[uint256, constants.MAX_OPTION_LEGS] = self.legs[account]
    kept: DynArray[uint256, constants.MAX_OPTION_LEGS] = []
    amount: int256 = 0
    settled: bool = False
    for id: uint256 in legs:
        o: Instrument = self._instrument(id)
        s_price: uint256 = self.settlement_price[o.underlying][o.expiry]
        if o.expiry > block.timestamp or s_price == 0:
            kept.append(id)
            continue
        s: int256 = self.size[account][id]
        value: int256 = fixed_math._floor_div(
            s * convert(self._intrinsic(o, s_price), int256),
            constants.IWAD,
        )
        amount += value
        settled = True
        self.size[account][id] = 0
        if s > 0:
            self.open_interest[o.underlying][o.expiry] -= convert(s, uint256)
        log OptionSettled(account=account, instrument=id, size=s, amount=value)
    assert settled, "options: nothing to settle"
    self.legs[account] = kept
    extcall engine.settle_option_cash(account, amount, len(kept) != 0)


# ------------------------------------------------------------------ engine


@external
@view
def check_trade(
    maker: uint256,
    taker: uint256,
    instrument: uint256,
    maker_size: int256,
    price: uint256,
) -> bool:
    """
    @notice The instrument-side rules of a trade (reverts when broken):
            listed, not expired, size and premium within bounds, leg count
            and open-interest cap. Called by the engine before settling.
    """
    assert self.listed[instrument], "options: not listed"
    o: Instrument = self._instrument(instrument)
    assert o.expiry > block.timestamp, "options: expired"
    assert (
        convert(abs(maker_size), uint256) <= MAX_OPTION_SIZE
    ), "options: size too large"
    # A premium above the option's upper bound (the strike for a put, the
    # forward for a call) is refused; the call's bound is taken loosely as
    # the oracle price times 2 so a stale feed does not block closing.
    hi: uint256 = o.strike
    if o.is_call:
        p: uint256 = 0
        ok: bool = False
        p, ok = staticcall engine.price(o.underlying)
        hi = 2 * p
    assert price <= hi, "options: premium out of range"
    self._new_size(maker, instrument, maker_size)
    self._new_size(taker, instrument, -maker_size)
    long_before: uint256 = self._long(
        self.size[maker][instrument]
    ) + self._long(self.size[taker][instrument])
    long_after: uint256 = self._long(
        self.size[maker][instrument] + maker_size
    ) + self._long(self.size[taker][instrument] - maker_size)
    if long_after > long_before:
        assert (
            self.open_interest[o.underlying][o.expiry]
            + long_after
            - long_before
            <= self.oi_cap[o.underlying][o.expiry]
        ), "options: open interest cap"
    return True


@external
def apply_trade(
    maker: uint256, taker: uint256, instrument: uint256, maker_size: int256
) -> (bool, bool):
    """
    @notice Record a settled trade's legs and open interest. Engine only.
    @return Whether maker and taker still hold option legs.
    """
    assert msg.sender == engine.address, "options: not the engine"
    o: Instrument = self._instrument(instrument)
    long_before: uint256 = self._long(
        self.size[maker][instrument]
    ) + self._long(self.size[taker][instrument])
    self._set_size(maker, instrument, self.size[maker][instrument] + maker_size)
    self._set_size(taker, instrument, self.size[taker][instrument] - maker_size)
    long_after: uint256 = self._long(self.size[maker][instrument]) + self._long(
        self.size[taker][instrument]
    )
    self.open_interest[o.underlying][o.expiry] = (
        self.open_interest[o.underlying][o.expiry] + long_after - long_before
    )
    return len(self.legs[maker]) != 0, len(self.legs[taker]) != 0


@external
def liquidate_legs(
    account: uint256, liquidator: uint256, fraction: uint256
) -> (int256, bool, bool):
    """
    @notice A liquidation slice's option part: move `fraction` (WAD) of
            every leg of `account` (rounded towards zero, like a perp's) to
            `liquidator`, at the per-unit mark the liquidation valuation gives
            the account's leg (`_leg`), so the transfer leaves the account's
            equity unchanged but for rounding in its favour. Open interest
            only falls (a transfer nets or moves longs, never adds them).
            Engine only (liquidation.liquidate_slice, under its lock, after
            the policy checked the account is below MM).
    @return The cash the liquidator pays the account for the legs (WAD,
            negative: the account pays), and whether account and
            liquidator still hold option legs.
    """
    assert msg.sender == engine.address, "options: not the engine"
    assert fraction <= constants.WAD, "options: bad fraction"
    legs: DynArray[uint256, constants.MAX_OPTION_LEGS] = self.legs[account]
    up: int256[constants.MAX_SCENARIOS] = empty(int256[constants.MAX_SCENARIOS])
    down: int256[constants.MAX_SCENARIOS] = empty(
        int256[constants.MAX_SCENARIOS]
    )
    flow: int256 = 0
    seen: uint256 = 0
    cache: Market[constants.MAX_ASSETS] = empty(Market[constants.MAX_ASSETS])
    for id: uint256 in legs:
        s: int256 = self.size[account][id]
        moved: int256 = s * convert(fraction, int256) // constants.IWAD
        if moved == 0:
            continue
        o: Instrument = self._instrument(id)
        if (seen >> o.underlying) & 1 == 0:
            seen |= 1 << o.underlying
            cache[o.underlying] = self._market(o.underlying, True)
        u: int256 = 0
        m: uint256 = 0
        ok: bool = False
        u, m, ok, up, down = self._leg(
            id, 0, s > 0, True, cache[o.underlying], up, down
        )
        assert ok, "oracle: invalid price"
        flow += self._moved_value(moved, u)
        t: int256 = self.size[liquidator][id]
        self._new_size(liquidator, id, moved)
        self.open_interest[o.underlying][o.expiry] -= (
            self._long(s)
            + self._long(t)
            - self._long(s - moved)
            - self._long(t + moved)
        )
        self._set_size(account, id, s - moved)
        self._set_size(liquidator, id, t + moved)
    return flow, len(self.legs[account]) != 0, len(self.legs[liquidator]) != 0


@external
@view
def option_margin(
    account: uint256,
    liq: bool,
    trade: ledger.Override,
    value_num: int256,
    floor_num: int256,
    losses: int256[constants.MAX_SCENARIOS],
    prices_ok: bool,
) -> (int256, int256, bool, int256):
    """
    @notice The account's option legs joined to the engine's margin model
            (ledger._margin), in its numerators (WAD * WAD * BPS): returns
            `value_num` plus the legs' mark value (rounded down), the worst
            of `floor_num` plus the short-option minimum and of each joint
            scenario's linear loss plus the legs' loss (vol up or down,
            whichever is worse; rounded up), and `prices_ok` and every
            underlying price and vol valid (`liq`: every underlying has a
            liquidation price; vols are not required). `trade` with asset
            ledger.OPTION_TRADE values the account as if the leg
            `trade.collateral` changed by `trade.position` (signed);
            `trade.fraction` (a liquidation slice) values it after
            `liquidate_legs` moved that fraction of every leg: the rest of
            each leg as usual, the moved part at the cash it was paid
            (`_moved_value`), and that cash is returned last (the
            liquidator's payment for the legs, as `liquidate_legs` returns
            it).
    """
    instrument: uint256 = 0
    delta: int256 = 0
    if trade.asset == ledger.OPTION_TRADE:
        instrument = trade.collateral
        delta = convert(convert(trade.position, bytes32), int256)
    value: int256 = 0
    flow: int256 = 0
    short_min: uint256 = 0
    ok: bool = prices_ok
    up: int256[constants.MAX_SCENARIOS] = empty(int256[constants.MAX_SCENARIOS])
    down: int256[constants.MAX_SCENARIOS] = empty(
        int256[constants.MAX_SCENARIOS]
    )
    legs: DynArray[uint256, constants.MAX_OPTION_LEGS + 1] = []
    for id: uint256 in self.legs[account]:
        legs.append(id)
    if delta != 0 and self.size[account][instrument] == 0:
        legs.append(instrument)
    fraction: int256 = convert(trade.fraction, int256)
    seen: uint256 = 0
    cache: Market[constants.MAX_ASSETS] = empty(Market[constants.MAX_ASSETS])
    for id: uint256 in legs:
        s: int256 = self.size[account][id]
        if id == instrument:
            s += delta
        if s == 0:
            continue
        moved: int256 = s * fraction // constants.IWAD  # towards zero
        leg_ok: bool = False
        u: int256 = 0
        m: uint256 = 0
        underlying: uint256 = (id >> UNDERLYING_SHIFT) & 255
        if (seen >> underlying) & 1 == 0:
            seen |= 1 << underlying
            cache[underlying] = self._market(underlying, liq)
        u, m, leg_ok, up, down = self._leg(
            id, s - moved, s > 0, liq, cache[underlying], up, down
        )
        paid: int256 = self._moved_value(moved, u)
        flow += paid
        value += fixed_math._floor_div((s - moved) * u, constants.IWAD) + paid
        short_min += m
        ok = ok and leg_ok
    worst: int256 = floor_num + convert(short_min, int256) * constants.WAD_BPS
    for k: uint256 in range(constants.MAX_SCENARIOS):
        worst = max(
            worst,
            losses[k]
            + fixed_math._ceil_div(max(up[k], down[k]), constants.IWAD)
            * constants.WAD_BPS,
        )
    return value_num + value * constants.WAD_BPS, worst, ok, flow


# ------------------------------------------------------------------ views


@external
@view
def instrument_id(
    underlying: uint256, expiry: uint256, strike: uint256, is_call: bool
) -> uint256:
    """
    @notice The id of (underlying, expiry, strike, kind), listed or not.
    """
    return self._id(underlying, expiry, strike, is_call)


@external
@view
def instrument(id: uint256) -> Instrument:
    """
    @notice The fields of an instrument id.
    """
    return self._instrument(id)


@external
@view
def account_legs(
    account: uint256,
) -> DynArray[uint256, constants.MAX_OPTION_LEGS]:
    """
    @notice The instrument ids the account holds.
    """
    return self.legs[account]


# --------------------------------------------------------------- internal


@internal
@pure
def _id(
    underlying: uint256, expiry: uint256, strike: uint256, is_call: bool
) -> uint256:
    assert underlying < constants.MAX_ASSETS, "options: bad underlying"
    assert expiry < 2**40, "options: expiry off grid"
    assert strike <= constants.MAX_PRICE, "options: strike off grid"
    kind: uint256 = 0
    if is_call:
        kind = 1
    return (
        constants.OPTION_ID
        | strike << STRIKE_SHIFT
        | expiry << EXPIRY_SHIFT
        | underlying << UNDERLYING_SHIFT
        | kind
    )


@internal
@pure
def _instrument(id: uint256) -> Instrument:
    return Instrument(
        underlying=(id >> UNDERLYING_SHIFT) & 255,
        expiry=(id >> EXPIRY_SHIFT) & (2**40 - 1),
        strike=(id >> STRIKE_SHIFT) & (2**101 - 1),
        is_call=id & 1 == 1,
    )


@internal
@view
def _market(u: uint256, liq: bool) -> Market:
    """
    @dev The underlying's market as the engine reports it; a valuation reads
         it once per underlying (`seen`: a bitmap of those read) and caches it.
    """
    f: uint256 = 0
    ok: bool = False
    if liq:
        f = staticcall engine.liquidation_price(u)
        ok = f != 0
    else:
        f, ok = staticcall engine.price(u)
    words: uint256[constants.SHOCK_WORDS] = [
        staticcall engine.shock_word(u, 0),
        staticcall engine.shock_word(u, 1),
    ]
    lo: int256 = 0
    hi: int256 = 0
    for word: uint256 in words:
        shocks: uint256 = word
        for k: uint256 in range(constants.SHOCKS_PER_WORD):
            shock: int256 = (
                convert(convert(shocks << 240, bytes32), int256) >> 240
            )
            shocks = shocks >> 16
            lo = min(lo, shock)
            hi = max(hi, shock)
    return Market(
        price=f,
        ok=ok,
        shocks=words,
        low=self._shocked(f, lo),
        high=self._shocked(f, hi),
    )


@internal
@pure
def _shocked(f: uint256, shock: int256) -> uint256:
    """
    @dev The price `f` moved by `shock` bps (at least MIN_SHOCK_BPS, at most
         int16's 32,767), truncated towards `f`: the scenario price and the
         anchors' alike (the scenario loop in `_leg` inlines it). With
         f <= MAX_PRICE the product is below 2**116 and the result in
         [0, 4.3 f].
    """
    fi: int256 = convert(f, int256)
    return convert(
        unsafe_add(fi, unsafe_div(unsafe_mul(fi, shock), constants.IBPS)),
        uint256,
    )


@internal
@pure
def _long(s: int256) -> uint256:
    return convert(max(s, 0), uint256)


@internal
@pure
def _moved_value(moved: int256, mark: int256) -> int256:
    """
    @dev What a liquidation pays the account for `moved` units marked at
         `mark`: rounded up, in the account's favour (it receives more for
         a long, pays less for a short), like fixed_math._slice for a perp.
    """
    return fixed_math._ceil_div(moved * mark, constants.IWAD)


@internal
@pure
def _intrinsic(o: Instrument, f: uint256) -> uint256:
    if o.is_call:
        return f - min(f, o.strike)
    return o.strike - min(f, o.strike)


@internal
@view
def _new_size(account: uint256, instrument: uint256, d: int256):
    """
    @dev A trade that opens a new leg needs a free leg slot.
    """
    if self.size[account][instrument] == 0:
        assert (
            len(self.legs[account]) < constants.MAX_OPTION_LEGS
        ), "options: too many legs"
    assert (
        abs(self.size[account][instrument] + d)
        <= convert(MAX_OPTION_SIZE, int256)
    ), "options: size too large"


@internal
def _set_size(account: uint256, instrument: uint256, new: int256):
    old: int256 = self.size[account][instrument]
    self.size[account][instrument] = new
    if old == 0 and new != 0:
        self.legs[account].append(instrument)
    elif old != 0 and new == 0:
        legs: DynArray[uint256, constants.MAX_OPTION_LEGS] = self.legs[account]
        kept: DynArray[uint256, constants.MAX_OPTION_LEGS] = []
        for id: uint256 in legs:
            if id != instrument:
                kept.append(id)
        self.legs[account] = kept
    log OptionPosition(account=account, instrument=instrument, size=new)


@internal
@view
def _leg(
    id: uint256,
    s: int256,
    long: bool,
    liq: bool,
    mkt: Market,
    up: int256[constants.MAX_SCENARIOS],
    down: int256[constants.MAX_SCENARIOS],
) -> (
    int256,
    uint256,
    bool,
    int256[constants.MAX_SCENARIOS],
    int256[constants.MAX_SCENARIOS],
):
    """
    @dev One leg of `s` units, a long one when `long` (which picks the mark
         when `s` is 0): (per-unit mark, short-option minimum, ok, `up` and
         `down` plus the leg's losses with vol up and with vol down), the
         mark and minimum WAD, the losses WAD * WAD, unrounded (the sum over
         legs is rounded up once, in `option_margin`); the leg is worth
         `s * mark`, rounded down.
         Expired: marked at intrinsic at the settlement price (or, until
         it is recorded, at the oracle price, not ok), no scenario loss.
         Live: marked at Black-76 rounded against the holder (longs down,
         shorts up, black76._price). Scenario k's per-unit value at the
         shocked price F' and the moved vol is bounded against the holder
         by Black-76 at three anchors (`_anchors`): the price moved by the
         lowest shock, unmoved, and moved by the highest, all at the moved
         vol. A price is convex in F, so between two anchors the chord
         bounds it from above (a short's value, rounded up, at most F' for
         a call or K for a put) and each anchor's tangent from below (a
         long's, less the delta error, at least intrinsic). The loss is
         s * (mark - that): never below full revaluation's.
    """
    o: Instrument = self._instrument(id)
    f: uint256 = mkt.price
    ok: bool = mkt.ok
    if o.expiry <= block.timestamp:
        sp: uint256 = self.settlement_price[o.underlying][o.expiry]
        if sp == 0:
            sp = f
            ok = ok and liq
        return convert(self._intrinsic(o, sp), int256), 0, ok, up, down
    tau: uint256 = o.expiry - block.timestamp
    g: Grid = self.grid[o.underlying]
    short_min: uint256 = 0
    if s < 0:
        short_min = math._ceil_div(
            convert(-s, uint256) * f * g.short_min_bps,
            constants.WAD * constants.BPS,
        )
    vol: uint256 = 0
    vol_ok: bool = False
    vol, vol_ok = staticcall vol_feed.vol(o.underlying, o.expiry, o.strike)
    if not liq:
        ok = ok and vol_ok
    if vol == 0:
        # No curve: value against the holder (a short at the highest vol,
        # a long at the lowest).
        vol = constants.MIN_VOL
        if not long:
            vol = constants.MAX_VOL
    if not self._priced(o, f):
        # Outside the pricing domain the option is worth its intrinsic
        # value to far below a wei per unit; scenarios reprice it so.
        return self._intrinsic_leg(o, s, f, mkt.shocks, short_min, ok, up, down)
    black76._check(f, o.strike, vol, tau)
    sqrt_t: int256 = black76._sqrt_t(tau)
    ln_f: int256 = black76._moneyness(f, o.strike)
    mark: uint256 = 0
    slope: int256 = 0
    mark, slope = black76._price_delta_at(
        f, o.strike, vol, ln_f, sqrt_t, o.is_call, not long
    )
    m: int256 = convert(mark, int256)
    if s == 0:
        return m, short_min, ok, up, down
    # The vol move: vol_shock * sqrt(30 days / max(tau, 7 days)), WAD;
    # upwards at most to the highest vol, downwards to the lowest.
    d: uint256 = (
        g.vol_shock
        * isqrt(
            VOL_TENOR * constants.WAD * constants.WAD // max(tau, VOL_FLOOR)
        ) // constants.WAD
    )
    a_up: int256[6] = empty(int256[6])
    a_down: int256[6] = empty(int256[6])
    a_up, a_down = self._anchors(
        o,
        mkt,
        [
            min(vol + d, constants.MAX_VOL),
            vol - min(d, vol - constants.MIN_VOL),
        ],
        ln_f,
        sqrt_t,
        long,
    )
    # Bounds, stated once: prices and strikes are at most MAX_PRICE = 2**100
    # (engine prices; _priced), so every per-unit value, the gap between
    # two prices and a delta plus DELTA_ERR stay below 2**102, each product
    # below 2**204, and |s| <= 2**100 keeps s times a value gap below 2**203
    # and 16 legs' sum of losses far inside int256.
    fi: int256 = convert(f, int256)
    ki: int256 = convert(o.strike, int256)
    lo: int256 = convert(mkt.low, int256)
    hi: int256 = convert(mkt.high, int256)
    e: int256 = convert(black76.DELTA_ERR, int256)
    shocks: uint256 = mkt.shocks[0]
    for k: uint256 in range(constants.MAX_SCENARIOS):
        if k == constants.SHOCKS_PER_WORD:
            # The second word; all zero: K <= 16 (see Market).
            shocks = mkt.shocks[1]
            if shocks == 0:
                break
        shock: int256 = convert(convert(shocks << 240, bytes32), int256) >> 240
        shocks = shocks >> 16
        # _shocked(f, shock), inlined.
        fn: int256 = unsafe_add(
            fi, unsafe_div(unsafe_mul(fi, shock), constants.IBPS)
        )
        # The anchors around F': (low, unmoved) below F, else (unmoved,
        # high); x = F' - F_0 >= 0, w = F_1 - F_0 >= x.
        i: uint256 = 2
        x: int256 = unsafe_sub(fn, fi)
        w: int256 = unsafe_sub(hi, fi)
        if shock < 0:
            i = 0
            x = unsafe_sub(fn, lo)
            w = unsafe_sub(fi, lo)
        v_up: int256 = a_up[i]
        v_down: int256 = a_down[i]
        if long:
            # The larger tangent less the delta error, at least intrinsic.
            c: int256 = max(unsafe_sub(ki, fn), 0)
            if o.is_call:
                c = max(unsafe_sub(fn, ki), 0)
            v_up = max(
                max(
                    v_up + self._div_down(unsafe_mul(a_up[i + 1] - e, x)),
                    a_up[i + 2]
                    + self._div_down(
                        unsafe_mul(a_up[i + 3] + e, unsafe_sub(x, w))
                    ),
                ),
                c,
            )
            v_down = max(
                max(
                    v_down + self._div_down(unsafe_mul(a_down[i + 1] - e, x)),
                    a_down[i + 2]
                    + self._div_down(
                        unsafe_mul(a_down[i + 3] + e, unsafe_sub(x, w))
                    ),
                ),
                c,
            )
        else:
            # The chord, rounded up, at most F' (call) or K (put).
            if w != 0:
                v_up += self._div_up(unsafe_mul(a_up[i + 2] - v_up, x), w)
                v_down += self._div_up(unsafe_mul(a_down[i + 2] - v_down, x), w)
            cap: int256 = ki
            if o.is_call:
                cap = fn
            v_up = min(v_up, cap)
            v_down = min(v_down, cap)
        up[k] += unsafe_mul(s, m - v_up)
        down[k] += unsafe_mul(s, m - v_down)
    return m, short_min, ok, up, down


@internal
@pure
def _anchors(
    o: Instrument,
    mkt: Market,
    vols: uint256[2],
    ln_f: int256,
    sqrt_t: int256,
    long: bool,
) -> (int256[6], int256[6]):
    """
    @dev Value (rounded against the holder) and delta per unit at the three
         anchor prices (low, unmoved, high), at each of `vols` (up, down),
         WAD: [v_low, delta_low, v, delta, v_high, delta_high] per vol. An
         anchor outside the pricing domain takes its intrinsic value and
         slope. The caller checked the option's inputs at the unmoved price
         (black76._check; the vols lie within the vol domain) and passes
         its ln(F / K) and sqrt(tau / YEAR); each anchor price's logarithm
         serves both vols.
    """
    out: int256[6][2] = empty(int256[6][2])
    # The unmoved anchor first: a side with no shock reuses it.
    for j: uint256 in [1, 0, 2]:
        fa: uint256 = mkt.price
        ln_a: int256 = ln_f
        priced: bool = True
        if j != 1:
            fa = mkt.low
            if j == 2:
                fa = mkt.high
            if fa == mkt.price:
                for i: uint256 in range(2):
                    out[i][2 * j] = out[i][2]
                    out[i][2 * j + 1] = out[i][3]
                continue
            priced = self._priced(o, fa)
            if priced:
                ln_a = black76._moneyness(fa, o.strike)
        for i: uint256 in range(2):
            v: int256 = 0
            delta: int256 = 0
            v, delta = self._anchor(o, fa, priced, vols[i], ln_a, sqrt_t, long)
            out[i][2 * j] = v
            out[i][2 * j + 1] = delta
    return out[0], out[1]


@internal
@pure
def _anchor(
    o: Instrument,
    fa: uint256,
    priced: bool,
    vol: uint256,
    ln_a: int256,
    sqrt_t: int256,
    long: bool,
) -> (int256, int256):
    """
    @dev Value (rounded against the holder) and delta per unit at `fa`
         (`ln_a` = ln(fa / K)); outside the pricing domain (not `priced`)
         the intrinsic value and its slope.
    """
    if priced:
        v: uint256 = 0
        delta: int256 = 0
        v, delta = black76._price_delta_at(
            fa, o.strike, vol, ln_a, sqrt_t, o.is_call, not long
        )
        return convert(v, int256), delta
    if o.is_call and fa > o.strike:
        return convert(fa - o.strike, int256), constants.IWAD
    if not o.is_call and fa < o.strike:
        return convert(o.strike - fa, int256), -constants.IWAD
    return 0, 0


@internal
@pure
def _div_down(x: int256, d: int256 = constants.IWAD) -> int256:
    """
    @dev x / d rounded towards negative infinity, for 0 < d and |x| < 2**254.
    """
    if x >= 0:
        return unsafe_div(x, d)
    return unsafe_div(unsafe_sub(unsafe_add(x, 1), d), d)


@internal
@pure
def _div_up(x: int256, d: int256) -> int256:
    """
    @dev x / d rounded towards positive infinity, for 0 < d and |x| < 2**254.
    """
    if x <= 0:
        return unsafe_div(x, d)
    return unsafe_div(unsafe_add(unsafe_sub(x, 1), d), d)


@internal
@pure
def _priced(o: Instrument, f: uint256) -> bool:
    """
    @dev Whether Black-76 prices the option at `f` (black76._check's price
         domain); outside it the option is worth its intrinsic value.
    """
    return (
        f >= constants.MIN_OPTION_PRICE
        and f <= constants.MAX_PRICE
        and f * constants.WAD >= o.strike * constants.MIN_MONEYNESS
        and f * constants.WAD <= o.strike * constants.MAX_MONEYNESS
    )


@internal
@view
def _intrinsic_leg(
    o: Instrument,
    s: int256,
    f: uint256,
    words: uint256[constants.SHOCK_WORDS],
    short_min: uint256,
    ok: bool,
    up: int256[constants.MAX_SCENARIOS],
    down: int256[constants.MAX_SCENARIOS],
) -> (
    int256,
    uint256,
    bool,
    int256[constants.MAX_SCENARIOS],
    int256[constants.MAX_SCENARIOS],
):
    m: int256 = convert(self._intrinsic(o, f), int256)
    fi: int256 = convert(f, int256)
    ki: int256 = convert(o.strike, int256)
    shocks: uint256 = words[0]
    for k: uint256 in range(constants.MAX_SCENARIOS):
        if k == constants.SHOCKS_PER_WORD:
            # The second word; all zero: K <= 16 (see Market).
            shocks = words[1]
            if shocks == 0:
                break
        shock: int256 = convert(convert(shocks << 240, bytes32), int256) >> 240
        shocks = shocks >> 16
        fn: int256 = fi + fi * shock // constants.IBPS
        v: int256 = max(ki - fn, 0)
        if o.is_call:
            v = max(fn - ki, 0)
        up[k] += s * (m - v)
        down[k] += s * (m - v)
    return m, short_min, ok, up, down
