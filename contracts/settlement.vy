# pragma version ~=0.4.3
"""
@title Ballast settlement: the one way positions change by trading
@notice Venues (the signed-order book, later others) match traders; the
        engine settles what they matched. `settle` is the core's rules for
        every trade whatever the venue: the price lies within `price_band` of
        a valid oracle price (self-trade PnL pumping, Mango 2022), open
        interest stays under its cap, and both sides meet IM after the trade
        unless it lowers their MM without lowering their health. Settlement
        moves cash peer-to-peer, exactly zero-sum.
@custom:security Only venues the owner registered may call `settle`; a venue
        must check that both accounts consented (the book: the maker's
        signature and the taker's call). Removing a venue stops it at once;
        `ledger.paused` stops every fill that is not risk-reducing for both
        sides.
"""

from snekmate.auth import ownable

import constants
import fixed_math
import ledger

uses: ownable
uses: ledger


# What the engine asks of the option book (OptionBook.vy) around a trade.
interface IOptionBook:
    def check_trade(
        maker: uint256,
        taker: uint256,
        instrument: uint256,
        maker_size: int256,
        price: uint256,
    ) -> bool: view
    def apply_trade(
        maker: uint256, taker: uint256, instrument: uint256, maker_size: int256
    ) -> (bool, bool): nonpayable


# Venues allowed to call `settle`.
venues: public(HashMap[address, bool])


event OptionBookSet:
    book: indexed(address)


event VenueSet:
    venue: indexed(address)
    allowed: bool


event Fill:
    maker: indexed(uint256)
    taker: indexed(uint256)
    market: indexed(uint256)
    venue: address
    maker_size: int256  # signed size change of the maker
    price: uint256
    quote: uint256  # cash moved, WAD


@external
def set_venue(venue: address, allowed: bool):
    """
    @notice Allow or stop a venue. Owner only.
    """
    ownable._check_owner()
    assert venue != empty(address), "settlement: zero venue"
    self.venues[venue] = allowed
    log VenueSet(venue=venue, allowed=allowed)


@external
def set_option_book(book: address):
    """
    @notice Install the option book (OptionBook.vy), once. Owner only.
    """
    ownable._check_owner()
    assert book.is_contract, "settlement: book is not a contract"
    assert ledger.option_book == empty(address), "settlement: book already set"
    ledger.option_book = book
    log OptionBookSet(book=book)


@external
@nonreentrant
def settle(
    maker: uint256,
    taker: uint256,
    market: uint256,
    maker_size: int256,
    price: uint256,
):
    """
    @notice Settle a matched trade: `maker` changes its position in `market`
            by `maker_size` (WAD, signed), `taker` by the opposite, at
            `price` (WAD cash per unit). Venues only. Perp markets only
            (an option instrument: `settle_option`).
    """
    assert self.venues[msg.sender], "settlement: not a venue"
    assert maker_size != 0, "settlement: zero size"
    assert maker != taker, "settlement: self trade"
    oracle_price: uint256 = self._check_price(market, price)
    # Funding: the index moves to now and the fill samples the premium of
    # its price over the oracle's, weighted by its size; each side's funding
    # is settled into its cash before its position changes (_trade).
    premium: int256 = (
        (convert(price, int256) - convert(oracle_price, int256))
        * constants.IWAD // convert(oracle_price, int256)
    )
    index: int256 = ledger._accrue(
        market, oracle_price, premium, convert(abs(maker_size), uint256)
    )
    # One quote amount for both sides keeps settlement exactly zero-sum; the
    # rounding (down) moves < 1 wei between the two parties, never to or from
    # the protocol.
    quote: int256 = convert(
        convert(abs(maker_size), uint256) * price // constants.WAD, int256
    )
    maker_flow: int256 = quote
    if maker_size > 0:
        maker_flow = -quote
    maker_ov: ledger.Override = empty(ledger.Override)
    maker_paid: int256 = 0
    maker_ov, maker_paid = self._trade(
        maker, market, maker_size, maker_flow, index
    )
    taker_ov: ledger.Override = empty(ledger.Override)
    taker_paid: int256 = 0
    taker_ov, taker_paid = self._trade(
        taker, market, -maker_size, -maker_flow, index
    )
    self._check_open_interest(market, maker, maker_ov, taker, taker_ov)
    # A side that takes its cash further below zero borrows other
    # depositors' cash: bounded by the debt cap, except what a risk-reducing
    # fill realises of a loss the account already had (see _check_fill).
    maker_borrows: uint256 = 0
    maker_counted: uint256 = 0
    maker_borrows, maker_counted = self._check_fill(maker, maker_ov)
    taker_borrows: uint256 = 0
    taker_counted: uint256 = 0
    taker_borrows, taker_counted = self._check_fill(taker, taker_ov)

    ledger._apply(maker, maker_ov)
    ledger._apply(taker, taker_ov)
    ledger._set_funding_snap(maker, market, index, maker_paid)
    ledger._set_funding_snap(taker, market, index, taker_paid)
    if maker_counted + taker_counted != 0:
        exempt: uint256 = (maker_borrows - maker_counted) + (
            taker_borrows - taker_counted
        )
        assert ledger.debt - exempt <= ledger.debt_cap, "settlement: debt cap"
    log Fill(
        maker=maker,
        taker=taker,
        market=market,
        venue=msg.sender,
        maker_size=maker_size,
        price=price,
        quote=convert(quote, uint256),
    )
    ledger._log_state(maker, market)
    ledger._log_state(taker, market)


@external
@nonreentrant
def settle_option(
    maker: uint256,
    taker: uint256,
    instrument: uint256,
    maker_size: int256,
    price: uint256,
):
    """
    @notice Settle a matched option trade: `maker` changes its leg of
            `instrument` (an OptionBook id) by `maker_size` (WAD, signed),
            `taker` by the opposite, for a premium of `price` (WAD cash per
            unit). Venues only. The option book checks the instrument
            (listed, live, premium in range, legs, open interest) and, once
            both sides passed the margin rule with the leg changed, records
            the legs. Option legs carry no funding.
    """
    maker_flow: int256 = self._check_match(maker, taker, maker_size, price)
    assert instrument >= constants.OPTION_ID, "settlement: not an option"
    book: address = ledger.option_book
    assert staticcall IOptionBook(book).check_trade(
        maker, taker, instrument, maker_size, price
    ), "settlement: option trade refused"
    self._check_and_apply(
        maker,
        self._option_trade(maker, instrument, maker_size, maker_flow),
        taker,
        self._option_trade(taker, instrument, -maker_size, -maker_flow),
    )
    # The trusted book (owner-installed once) records the legs; this
    # engine's lock is held throughout.
    maker_holds: bool = False
    taker_holds: bool = False
    maker_holds, taker_holds = extcall IOptionBook(book).apply_trade(
        maker, taker, instrument, maker_size
    )
    ledger._mark_options(maker, maker_holds)
    ledger._mark_options(taker, taker_holds)
    self._log_fill(
        maker, taker, instrument, maker_size, price, maker_flow, ledger.CASH
    )


@external
@nonreentrant
def settle_option_cash(account: uint256, amount: int256, holds: bool):
    """
    @notice Pay an expired option's settlement value into (or out of) the
            account's cash, and record whether it still holds option legs.
            Option book only. No margin check: the legs were already valued
            at this amount (OptionBook.option_margin), so equity is unchanged.
    """
    assert msg.sender == ledger.option_book, "settlement: not the option book"
    ledger._set_cash(account, ledger.cash[account] + amount)
    ledger._mark_options(account, holds)
    ledger._log_state(account, ledger.CASH)


@external
@view
def is_authorized(account: uint256, caller: address) -> bool:
    """
    @notice Whether `caller` is the account's owner or one of its operators.
    """
    return (
        ledger._owner_of(account) == caller or ledger.operators[account][caller]
    )


@external
@view
def margin_after_trade(
    account: uint256, market: uint256, size: int256, price: uint256
) -> ledger.Margin:
    """
    @notice Preview: the account's margin if it traded `size` (signed, WAD) of
            `market` at `price`. Does not check authorisation or the band.
    """
    ledger._check_listed(market)
    word: uint256 = ledger.asset_word[market]
    assert ledger._is_perp(word), "settlement: not a perp market"
    p: uint256 = 0
    ok: bool = False
    p, ok = ledger._price(word)
    quote: int256 = convert(
        convert(abs(size), uint256) * price // constants.WAD, int256
    )
    flow: int256 = quote
    if size > 0:
        flow = -quote
    ov: ledger.Override = empty(ledger.Override)
    paid: int256 = 0
    ov, paid = self._trade(
        account,
        market,
        size,
        flow,
        ledger._index_at(ledger.funding_word[market], p),
    )
    return ledger._margin(account, ov, False)


@internal
@view
def _check_price(market: uint256, price: uint256) -> uint256:
    """
    @dev The oracle price, valid, with `price` within the band of it.
    """
    word: uint256 = ledger.asset_word[market]
    assert ledger._is_perp(word), "settlement: not a perp market"
    oracle_price: uint256 = 0
    ok: bool = False
    oracle_price, ok = ledger._price(word)
    assert ok, "oracle: invalid price"
    distance: uint256 = max(price, oracle_price) - min(price, oracle_price)
    assert (
        distance * constants.WAD <= ledger.price_band * oracle_price
    ), "settlement: price outside band"
    return oracle_price


@internal
@view
def _trade(
    account: uint256,
    market: uint256,
    d_size: int256,
    flow: int256,
    index: int256,
) -> (ledger.Override, int256):
    """
    @dev The account after settling its funding up to `index` (the market's
         index now) and trading `d_size` for the cash flow `flow` (paid
         when negative); see fixed_math._apply_trade. Also returns the
         funding paid.
    """
    size: int256 = 0
    on: int256 = 0
    size, on = fixed_math._unpack_position(
        ledger._stored_position(account, market)
    )
    paid: int256 = 0
    if size != 0 and ledger.asset_word[market] & ledger.FUNDING_BIT != 0:
        paid = ledger._funding_owed(
            size, index, ledger.funding_snap[account][market]
        )
    cash: int256 = 0
    size, on, cash = fixed_math._apply_trade(
        size, on, ledger.cash[account] - paid, d_size, flow
    )
    return (
        ledger.Override(
            active=True,
            asset=market,
            collateral=ledger._stored_collateral(account, market),
            position=fixed_math._pack_position(size, on),
            cash=cash,
            fraction=0,
            funding=index,
        ),
        paid,
    )


@internal
@view
def _check_match(
    maker: uint256, taker: uint256, maker_size: int256, price: uint256
) -> int256:
    """
    @dev Check a venue's match and return the maker's cash flow (paid when
         negative). `settle_option`'s steps; `settle` keeps the same steps
         inline, so that a perp fill pays no internal calls (435 gas). One quote amount for both sides keeps settlement exactly
         zero-sum; the rounding (down) moves < 1 wei between the two
         parties, never to or from the protocol.
    """
    assert self.venues[msg.sender], "settlement: not a venue"
    assert maker_size != 0, "settlement: zero size"
    assert maker != taker, "settlement: self trade"
    quote: int256 = convert(
        convert(abs(maker_size), uint256) * price // constants.WAD, int256
    )
    if maker_size > 0:
        return -quote
    return quote


@internal
@view
def _option_trade(
    account: uint256, instrument: uint256, d_size: int256, flow: int256
) -> ledger.Override:
    """
    @dev The account after trading `d_size` of an option instrument for the
         cash flow `flow`: the Override OPTION_TRADE (the book's
         option_margin applies it to the legs).
    """
    return ledger.Override(
        active=True,
        asset=ledger.OPTION_TRADE,
        collateral=instrument,
        position=convert(convert(d_size, bytes32), uint256),
        cash=ledger.cash[account] + flow,
        fraction=0,
        funding=0,
    )


@internal
def _check_and_apply(
    maker: uint256,
    maker_ov: ledger.Override,
    taker: uint256,
    taker_ov: ledger.Override,
):
    """
    @dev Both sides pass the margin rule (_check_fill), then their overrides
         are written. A side that takes its cash further below zero borrows
         other depositors' cash: bounded by the debt cap, except what a
         risk-reducing fill realises of a loss the account already had.
    """
    maker_borrows: uint256 = 0
    maker_counted: uint256 = 0
    maker_borrows, maker_counted = self._check_fill(maker, maker_ov)
    taker_borrows: uint256 = 0
    taker_counted: uint256 = 0
    taker_borrows, taker_counted = self._check_fill(taker, taker_ov)

    ledger._apply(maker, maker_ov)
    ledger._apply(taker, taker_ov)
    if maker_counted + taker_counted != 0:
        exempt: uint256 = (maker_borrows - maker_counted) + (
            taker_borrows - taker_counted
        )
        assert ledger.debt - exempt <= ledger.debt_cap, "settlement: debt cap"


@internal
def _log_fill(
    maker: uint256,
    taker: uint256,
    market: uint256,
    maker_size: int256,
    price: uint256,
    maker_flow: int256,
    logged: uint256,
):
    """
    @dev The Fill log and both sides' account states (`logged`: the asset
         whose state the AccountState logs carry).
    """
    log Fill(
        maker=maker,
        taker=taker,
        market=market,
        venue=msg.sender,
        maker_size=maker_size,
        price=price,
        quote=convert(abs(maker_flow), uint256),
    )
    ledger._log_state(maker, logged)
    ledger._log_state(taker, logged)


@internal
def _check_open_interest(
    market: uint256,
    maker: uint256,
    maker_ov: ledger.Override,
    taker: uint256,
    taker_ov: ledger.Override,
):
    """
    @dev Long open interest moves by the change in the two sides' long sizes.
    """
    before: int256 = fixed_math._long(
        ledger._stored_position(maker, market)
    ) + fixed_math._long(ledger._stored_position(taker, market))
    after: int256 = fixed_math._long(maker_ov.position) + fixed_math._long(
        taker_ov.position
    )
    oi: uint256 = ledger.open_interest[market]
    if after > before:
        oi += convert(after - before, uint256)
        assert oi <= ledger.oi_cap[market], "settlement: open interest cap"
    else:
        oi -= convert(before - after, uint256)
    ledger.open_interest[market] = oi


@internal
@view
def _check_fill(account: uint256, ov: ledger.Override) -> (uint256, uint256):
    """
    @dev A side must meet IM with valid prices after the fill, or the fill
         must be risk-reducing for it: MM strictly lower, health (E - MM) not
         lower than before, and equity not pushed below zero (nor lowered
         when already negative). The rule lets an account below IM always
         de-risk at the oracle price without handing its losses to the
         protocol. The comparison uses the last reported prices, stale or not,
         so a dead feed of another asset does not freeze de-risking; an asset
         whose feed answers <= 0 counts at 0 on both sides of it.
         While `ledger.paused`, meeting IM is not enough: only risk-reducing
         fills pass (the guardian's stop on new risk).
         Borrowing: a fill that takes the side's cash further below zero
         borrows depositors' cash, and that counts against the debt cap. A
         risk-reducing fill only realises a loss the account already had
         (its equity held it): only the equity it gives away on top (a price
         worse than the oracle's) counts, so a full cap never traps an
         account closing at the oracle price, while round trips at the band
         edges (the self-trade that borrows without bound) still count.
    @return (new debt of the side, the part of it counted against the cap).
    """
    after: ledger.Margin = ledger._margin(account, ov, False)
    meets_im: bool = (
        not ledger._paused()
        and after.prices_ok
        and after.equity >= convert(after.im, int256)
    )
    cash: int256 = ledger.cash[account]
    borrows: uint256 = 0
    if ov.cash < 0 and ov.cash < cash:
        borrows = convert(min(cash, 0) - ov.cash, uint256)
    if meets_im and borrows == 0:
        return 0, 0
    before: ledger.Margin = ledger._margin(
        account, empty(ledger.Override), False
    )
    # ... and an account may not give equity away below zero (or, when
    # already underwater, at all: 1 wei of slack for the quote's rounding),
    # since that loss would be the protocol's.
    reduces: bool = (
        after.mm < before.mm
        and after.equity - convert(after.mm, int256)
        >= before.equity - convert(before.mm, int256)
        and after.equity >= min(before.equity - 1, 0)
    )
    if reduces:
        # 1 wei of slack: the quote's rounding down.
        given: int256 = max(before.equity - after.equity - 1, 0)
        return borrows, min(borrows, convert(given, uint256))
    if not meets_im:
        assert not ledger._paused(), "ledger: paused"
        assert after.prices_ok, "oracle: invalid price"
        raise "margin: below initial margin"
    return borrows, borrows
