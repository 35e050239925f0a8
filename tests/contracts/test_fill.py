import ape
import pytest
from conftest import BTC, ETH, SOL, USDC, WAD, acct
from eip712.messages import EIP712Domain
from eth_utils import to_checksum_address

from offchain_risk.chain import Order
from offchain_risk.models.margin import apply_trade

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def order(client, maker):
    """A maker order to buy 10 ETH at 2,000."""
    return client.order(maker, ETH, 10 * WAD, 2000 * WAD, 1, 2**40)


def test_fill__partial_then_rest__positions_cash_oi(
    client, engine, book, funded, order, maker, trader
):
    sig = client.sign(maker, order)
    tx = client.fill(order, sig, 4 * WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), ETH) == (4 * WAD, 8_000 * WAD)
    assert engine.position(acct(trader), ETH) == (-4 * WAD, -8_000 * WAD)
    assert book.filled(acct(maker), 1) == 4 * WAD
    assert engine.open_interest(ETH) == 4 * WAD
    [fill] = tx.events.filter(engine.Fill)
    assert (fill.maker_size, fill.price, fill.quote) == (4 * WAD, 2000 * WAD, 8_000 * WAD)
    client.fill(order, sig, 6 * WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), ETH)[0] == 10 * WAD
    assert book.filled(acct(maker), 1) == 10 * WAD
    assert engine.open_interest(ETH) == 10 * WAD
    assert engine.cash(acct(maker)) == engine.cash(acct(trader)) == 100_000 * WAD


def test_fill__close_and_flip__realises_pnl_exactly(client, engine, funded, trade, maker, trader):
    trade(ETH, 10 * WAD, 2000)  # maker long 10 @ 2000
    trade(ETH, -15 * WAD, 2050)  # maker sells 15 @ 2050: closes 10 (+500), opens -5
    assert engine.position(acct(maker), ETH) == (-5 * WAD, -10_250 * WAD)
    assert engine.cash(acct(maker)) == 100_500 * WAD
    assert engine.cash(acct(trader)) == 99_500 * WAD
    assert engine.open_interest(ETH) == 5 * WAD  # trader is now long 5


def test_fill__odd_amounts__match_twin_accounting(client, engine, funded, trade, maker, trader):
    steps = [(7 * WAD + 3, 1999), (-(2 * WAD + 1), 2011), (-(9 * WAD), 1987), (4 * WAD + 7, 2003)]
    size, on, cash = 0, 0, 100_000 * WAD
    for d, price in steps:
        trade(ETH, d, price)
        quote = abs(d) * price * WAD // WAD
        size, on, cash = apply_trade(size, on, cash, d, -quote if d > 0 else quote)
        assert engine.position(acct(maker), ETH) == (size, on)
        assert engine.cash(acct(maker)) == cash
    # zero-sum: both sides' cash - open_notional move by opposite amounts
    t_size, t_on = engine.position(acct(trader), ETH)
    assert t_size == -size
    assert (engine.cash(acct(trader)) - t_on) + (cash - on) == 200_000 * WAD


def test_fill__same_owner_other_sub_account__allowed(client, engine, usdc, fund, trader):
    fund(trader, usdc, 100_000 * USDC, sub=0)
    fund(trader, usdc, 100_000 * USDC, sub=1)
    order = client.order(trader, ETH, WAD, 2000 * WAD, 1, 2**40, subaccount=1)
    client.fill(order, client.sign(trader, order), WAD, acct(trader, 0), sender=trader)
    assert engine.position(acct(trader, 1), ETH)[0] == WAD
    assert engine.position(acct(trader, 0), ETH)[0] == -WAD


def test_fill__risk_reducing_below_im__allowed(
    client, engine, usdc, fund, feeds, owner, maker, trade, trader
):
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, usdc, 5_400 * USDC)  # exactly IM for a 10 ETH short at 2,000
    trade(ETH, 10 * WAD, 2000)
    feeds[ETH].set_price(2_050 * 10**8, sender=owner)  # now below IM, above MM
    _, mm, im = engine.margin(acct(trader))
    assert mm < engine.equity(acct(trader)) < im
    trade(ETH, -4 * WAD, 2_050)  # trader buys back 4
    assert engine.position(acct(trader), ETH)[0] == -6 * WAD
    with ape.reverts("margin: below initial margin"):
        trade(ETH, 4 * WAD, 2_050)  # adding back to a 10 ETH short is refused


def test_fill__unwinding_a_hedge_below_im__reverts(
    client, engine, usdc, weth, fund, feeds, owner, maker, trade, trader
):
    fund(maker, usdc, 1_000_000 * USDC)
    engine.set_asset_risk(ETH, 100, 7_500, sender=owner)  # WETH counts at 25% in equity
    fund(trader, weth, 10 * WAD)
    trade(ETH, 10 * WAD, 2000)  # trader: 10 WETH collateral, short 10 ETH perp
    _, mm_hedged, _ = engine.margin(acct(trader))
    assert mm_hedged == 400 * WAD  # the floor alone: 1% of 2 x 20,000
    with ape.reverts("margin: below initial margin"):
        trade(ETH, -10 * WAD, 2000)  # buying back leaves 20k naked ETH: IM 6,000 > E 5,000


def test_fill__stale_feed_of_other_asset__reducing_allowed_increasing_refused(
    client, engine, funded, feeds, owner, trade, trader
):
    trade(ETH, 10 * WAD, 2000)
    trade(SOL, 100 * WAD, 150)
    feeds[SOL].set_round(150 * 10**8, 1, 7, 7, sender=owner)
    with ape.reverts("oracle: invalid price"):
        trade(ETH, 1 * WAD, 2000)  # trader adds to the ETH short: refused
    trade(ETH, -5 * WAD, 2000)  # trader reduces it: allowed
    assert engine.position(acct(trader), ETH)[0] == -5 * WAD


def _rejects(client, book, snapshot, order, sig, amount, taker, sender, message, who):
    before = snapshot(*who)
    filled = book.filled(acct(order.owner, order.subaccount), order.nonce)
    with ape.reverts(message):
        client.fill(order, sig, amount, taker, sender=sender)
    assert snapshot(*who) == before
    assert book.filled(acct(order.owner, order.subaccount), order.nonce) == filled


@pytest.fixture
def reject(client, book, snapshot, maker, trader, funded):
    def _reject(order, message, amount=WAD, sig=None, taker=None, sender=None, signer=None):
        sig = sig if sig is not None else client.sign(signer or maker, order)
        _rejects(
            client,
            book,
            snapshot,
            order,
            sig,
            amount,
            taker or acct(trader),
            sender or trader,
            message,
            (maker, trader),
        )

    return _reject


def test_fill__overfill__reverts(client, order, maker, trader, reject):
    client.fill(order, client.sign(maker, order), 8 * WAD, acct(trader), sender=trader)
    reject(order, "trading: overfill", amount=2 * WAD + 1)


def test_fill__reused_nonce__reverts(client, order, maker, trader, reject):
    client.fill(order, client.sign(maker, order), 10 * WAD, acct(trader), sender=trader)
    again = client.order(maker, ETH, 10 * WAD, 2000 * WAD, order.nonce, 2**40)
    reject(again, "trading: overfill")  # the same order: its budget is spent


def test_fill__other_order_on_a_used_nonce__reverts(client, order, maker, trader, reject):
    """Regression: an order re-signed with a used nonce shared the first one's budget, so
    every order ever signed with the nonce stayed fillable at the taker's choice (e.g. sell
    10 @ 2000, "amended" to sell 1 @ 2090: the taker filled the stale 10 @ 2000)."""
    client.fill(order, client.sign(maker, order), 2 * WAD, acct(trader), sender=trader)
    amended = client.order(maker, ETH, 1 * WAD, 2010 * WAD, order.nonce, 2**40)
    reject(amended, "trading: nonce used by another order", amount=WAD)


def test_fill__underwater_account_cannot_give_equity_away(
    client, engine, usdc, fund, feeds, owner, maker, trader, trade, snapshot
):
    """Regression: the risk-reducing rule let an account with E < 0 sell at the band's
    worst price (MM fell more than equity, so health rose) and hand that equity to a
    counterparty: new bad debt for the protocol (long 50 ETH @ 2000, ETH to 1200, sold
    at 1140: E -10k -> -13k)."""
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, usdc, 30_000 * USDC)
    trade(ETH, -50 * WAD, 2000)  # trader long 50 ETH
    feeds[ETH].set_price(1_200 * 10**8, sender=owner)
    assert engine.equity(acct(trader)) < 0
    before = snapshot(maker, trader)
    with ape.reverts("margin: below initial margin"):
        trade(ETH, 50 * WAD, 1_140)  # trader sells at -5%
    assert snapshot(maker, trader) == before
    engine.set_debt_cap(0, sender=owner)  # realising an existing loss is never capped
    trade(ETH, 50 * WAD, 1_200)  # closing at the oracle price stays possible
    assert engine.position(acct(trader), ETH)[0] == 0
    assert engine.equity(acct(trader)) == -10_000 * WAD


def test_fill__realised_losses_beyond_debt_cap__revert(
    client, engine, usdc, weth, fund, owner, maker, trader, trade
):
    """Regression: realised losses against collateral, e.g. an owner's self-trades at the
    band edges, borrowed other depositors' cash without bound (cash went to -80k against
    100 WETH while the other sub-account withdrew the proceeds)."""
    engine.set_debt_cap(1_000 * WAD, sender=owner)
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, weth, 100 * WAD)
    trade(ETH, -10 * WAD, 2_100)  # trader buys 10 @ +5%
    trade(ETH, 5 * WAD, 1_900)  # sells 5 @ -5%: realises -1,000 -> cash -1,000, at the cap
    assert engine.cash(acct(trader)) == -1_000 * WAD
    assert engine.debt() == 1_000 * WAD
    with ape.reverts("settlement: debt cap"):
        trade(ETH, 5 * WAD, 1_900)  # another -1,000
    fund(trader, usdc, 400 * USDC)  # a cash deposit pays the debt down
    assert engine.debt() == 600 * WAD


def test_fill__cancelled_nonce__reverts(book, order, maker, reject):
    book.cancel(acct(maker), order.nonce, sender=maker)
    reject(order, "trading: nonce cancelled")


def test_fill__expired__reverts(client, maker, chain, reject):
    order = client.order(maker, ETH, WAD, 2000 * WAD, 1, chain.pending_timestamp - 1)
    reject(order, "trading: order expired")


def test_fill__zero_amount__reverts(order, reject):
    reject(order, "trading: zero amount", amount=0)


def test_fill__zero_size_order__reverts(client, maker, reject):
    reject(client.order(maker, ETH, 0, 2000 * WAD, 1, 2**40), "trading: zero size order")


def test_fill__self_trade__reverts(order, maker, reject):
    reject(order, "trading: self trade", taker=acct(maker), sender=maker)


def test_fill__wrong_signer__reverts(order, trader, reject):
    reject(order, "trading: bad signature", signer=trader)


def test_fill__tampered_order__reverts(client, order, maker, reject):
    sig = client.sign(maker, order)
    bigger = client.order(maker, ETH, 20 * WAD, 2000 * WAD, 1, 2**40)
    reject(bigger, "trading: bad signature", sig=sig)


@pytest.mark.parametrize("field", ["chainId", "verifyingContract"])
def test_fill__signed_for_other_domain__reverts(client, engine, maker, reject, field):
    domain = client.domain()
    wrong = {
        "name": domain.name,
        "version": domain.version,
        "chainId": domain.chainId,
        "verifyingContract": domain.verifyingContract,
    }
    wrong[field] = 1 if field == "chainId" else to_checksum_address("0x" + "11" * 20)
    order = Order(
        owner=str(maker),
        subaccount=0,
        market=ETH,
        size=WAD,
        price=2000 * WAD,
        nonce=1,
        expiry=2**40,
        eip712_domain=EIP712Domain(**wrong),
    )
    reject(order, "trading: bad signature")


def test_fill__high_s_signature__reverts(client, order, maker, reject):
    sig = client.sign(maker, order)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    malleable = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    reject(order, "ecdsa: invalid signature `s` value", sig=malleable)


def test_fill__short_signature__reverts(client, order, maker, reject):
    reject(order, "trading: bad signature length", sig=client.sign(maker, order)[:64])


@pytest.mark.parametrize("price", [2101, 1899])
def test_fill__outside_price_band__reverts(client, maker, reject, price):
    reject(client.order(maker, ETH, WAD, price * WAD, 1, 2**40), "settlement: price outside band")


def test_fill__band_edge__allowed(client, engine, funded, maker, trader):
    order = client.order(maker, ETH, WAD, 2100 * WAD, 1, 2**40)  # exactly +5%
    client.fill(order, client.sign(maker, order), WAD, acct(trader), sender=trader)
    assert engine.position(acct(maker), ETH) == (WAD, 2100 * WAD)


def test_fill__stale_market_feed__reverts(client, feeds, owner, maker, reject):
    feeds[ETH].set_round(2000 * 10**8, 1, 3, 3, sender=owner)
    reject(client.order(maker, ETH, WAD, 2000 * WAD, 1, 2**40), "oracle: invalid price")


def test_fill__not_a_market__reverts(client, maker, reject):
    reject(client.order(maker, 9, WAD, 2000 * WAD, 1, 2**40), "settlement: not a perp market")


def test_fill__open_interest_cap__reverts(engine, owner, order, reject):
    engine.set_oi_cap(ETH, 5 * WAD, sender=owner)
    reject(order, "settlement: open interest cap", amount=6 * WAD)


def test_fill__taker_below_im__reverts(client, usdc, fund, maker, trader, snapshot, book):
    fund(maker, usdc, 1_000_000 * USDC)
    fund(trader, usdc, 5_399 * USDC)  # IM for short 10 ETH is 5,400
    order = client.order(maker, ETH, 10 * WAD, 2000 * WAD, 1, 2**40)
    _rejects(
        client,
        book,
        snapshot,
        order,
        client.sign(maker, order),
        10 * WAD,
        acct(trader),
        trader,
        "margin: below initial margin",
        (maker, trader),
    )


def test_fill__maker_below_im__reverts(client, usdc, fund, maker, trader, snapshot, book):
    fund(maker, usdc, 1_000 * USDC)
    fund(trader, usdc, 1_000_000 * USDC)
    order = client.order(maker, BTC, WAD, 60_000 * WAD, 1, 2**40)  # IM 60k * 13% * 1.5
    _rejects(
        client,
        book,
        snapshot,
        order,
        client.sign(maker, order),
        WAD,
        acct(trader),
        trader,
        "margin: below initial margin",
        (maker, trader),
    )


def test_fill__stranger_for_taker__reverts(order, stranger, reject):
    reject(order, "ledger: not owner or operator", sender=stranger)


def test_fill__operator_for_taker__allowed(client, engine, funded, order, maker, trader, operator):
    engine.set_operator(0, operator, True, sender=trader)
    client.fill(order, client.sign(maker, order), WAD, acct(trader), sender=operator)
    assert engine.position(acct(trader), ETH)[0] == -WAD
