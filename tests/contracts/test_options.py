"""Options on the devnet (anvil): an option book installed with `devnet.deploy_option_book`
over a signed vol feed, calls traded through the order book, margined, liquidated and
settled at expiry, each step against the numbers it must move.

The twin to the wei, the coverage of full revaluation and every refusal are in
tests/fuzz (titanoboa and revm); this module shows the same contracts doing the whole
life of an option book on a node, as a user would meet them.
"""

import pytest
from conftest import ETH, PRICES, USDC, WAD, acct, set_price

from offchain_risk import devnet
from offchain_risk.chain import settlement_round
from offchain_risk.keeper.keeper import Keeper
from offchain_risk.keeper.liquidator import LiquidatorConfig
from offchain_risk.keeper.rpc import Contracts
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import LocalSigner, TxManager
from offchain_risk.keeper.vol_signer import EXPIRY_TIME, VolCurve, VolSigner
from offchain_risk.models.options import price_exact
from offchain_risk.units import DAY

STRIKE = 2_200 * WAD  # about 10% above the devnet's ETH price
SIZE = 10 * WAD  # calls
GRID = {ETH: (100 * WAD, 15 * WAD // 100, 50)}  # strike step, vol shock, short minimum


@pytest.fixture(scope="module")
def vol_signer(project, deployment, owner, accounts):
    signers = sorted(accounts[6:8], key=lambda a: int(str(a), 16))
    feed = devnet.deploy_vol_feed(project, owner, signers, 2, {ETH: 86_400})
    return VolSigner(feed, signers, accounts[8])


@pytest.fixture(scope="module")
def options(project, deployment, owner, vol_signer):
    return devnet.deploy_option_book(project, deployment, owner, vol_signer.feed, GRID)


@pytest.fixture
def call(options, vol_signer, owner, chain):
    """An ETH call struck at 2,200 expiring at 08:00 UTC about a week ahead, with a curve."""
    expiry = (chain.pending_timestamp // DAY + 7) * DAY + EXPIRY_TIME
    vol_signer.publish(VolCurve(ETH, expiry, 60 * WAD // 100, 0, 0, 2_000 * WAD))
    options.set_oi_cap(ETH, expiry, 1_000 * WAD, sender=owner)
    options.list_option(ETH, expiry, STRIKE, True, sender=owner)
    return options.instrument_id(ETH, expiry, STRIKE, True), expiry


@pytest.fixture(scope="module")
def keeper(accounts):
    return accounts[5]


@pytest.fixture
def sides(chain, fund, usdc, maker, trader, keeper):
    """The maker, the trader and the keeper funded: (the trader's account, which sells the
    calls, the maker's, which buys them, the keeper's, the block before the deposits)."""
    start = chain.blocks.head.number
    fund(maker, usdc, 100_000 * USDC)
    fund(trader, usdc, 4_000 * USDC)
    fund(keeper, usdc, 1_000_000 * USDC)
    return acct(trader), acct(maker), acct(keeper), start


def test_option_book__trade_margin_liquidate_settle(
    engine,
    liquidations,
    options,
    call,
    sides,
    trade,
    maker,
    trader,
    keeper,
    feeds,
    owner,
    chain,
):
    instrument, expiry = call
    seller, buyer, liq, _ = sides

    # Trade: the trader sells 10 calls to the maker at $45; the premium moves in cash.
    cash0 = engine.cash(seller), engine.cash(buyer)
    trade(instrument, SIZE, 45, maker_acc=maker, taker_acc=trader)
    assert options.size(buyer, instrument) == SIZE
    assert options.size(seller, instrument) == -SIZE
    assert engine.cash(seller) - cash0[0] == 450 * WAD
    assert engine.cash(buyer) - cash0[1] == -450 * WAD
    assert options.open_interest(ETH, expiry) == SIZE

    # Margin: the short call's mark is its Black-76 value rounded against the holder.
    tau = expiry - chain.pending_timestamp
    equity, mm, im = engine.margin(seller)
    assert mm > 0 and im > mm and equity > im
    mark = price_exact(2_000 * WAD, STRIKE, 60 * WAD // 100, tau, True, True)
    assert 0 < mark < 45 * WAD  # sold above its value: equity above the cash paid in

    # A 15% rally puts the short below maintenance; the keeper takes the calls over.
    set_price(feeds, owner, ETH, PRICES["ETH"] * 1.15)
    equity, mm, _ = engine.margin(seller)
    assert equity < mm
    liquidations.liquidate(seller, liq, WAD, 10**30, sender=keeper)
    left = options.size(seller, instrument)
    assert -SIZE < left <= 0
    assert options.size(liq, instrument) == -SIZE - left  # the keeper holds the rest short
    equity_after, mm_after, _ = engine.margin(seller)
    assert mm_after < mm

    # Expiry: anyone records the settlement price and settles each side's leg to cash.
    chain.pending_timestamp = expiry + 60
    set_price(feeds, owner, ETH, 2_300)
    options.record_settlement(ETH, expiry, settlement_round(feeds[ETH], expiry), sender=keeper)
    assert options.settlement_price(ETH, expiry) == 2_300 * WAD
    cash_buyer = engine.cash(buyer)
    options.settle_expired(buyer, sender=keeper)
    assert engine.cash(buyer) - cash_buyer == SIZE * 100  # (2,300 - 2,200) per call, WAD
    assert options.size(buyer, instrument) == 0
    assert list(options.account_legs(buyer)) == []
    cash_keeper = engine.cash(liq)
    options.settle_expired(liq, sender=keeper)
    assert engine.cash(liq) - cash_keeper == (-SIZE - left) * 100
    assert options.open_interest(ETH, expiry) == 0


def test_keeper__short_calls_after_a_rally__found_by_the_chain_and_liquidated(
    project,
    deployment,
    engine,
    options,
    call,
    sides,
    trade,
    maker,
    trader,
    keeper,
    feeds,
    owner,
    chain,
    tmp_path,
):
    """The keeper indexes the option book's legs (the book found through the engine) and
    asks the chain about every holder each block: quiet, nothing is sent; after a rally the
    seller of the calls, which its own twins value as cash alone, is liquidated until it is
    back above MM, and the keeper's account holds the calls it took."""
    instrument, _ = call
    seller, buyer, liq, start = sides
    trade(instrument, SIZE, 45, maker_acc=maker, taker_acc=trader)
    d = deployment
    c = Contracts.from_project(
        project, chain.provider.web3, d.engine.address, d.liquidations.address, d.lens.address
    )
    store = Store(tmp_path / "k.db")
    tx = TxManager(c.w3, LocalSigner(keeper.private_key), store)
    bot = Keeper(
        c, store, LiquidatorConfig(account=liq), tx=tx, sender=str(keeper), start_block=start
    )

    quiet = bot.tick()
    assert bot.indexer.option_book == options.address
    assert bot.book.options == {seller, buyer}
    assert quiet.scan.options == 2 and quiet.scan.confirmed == [] and quiet.actions == []

    set_price(feeds, owner, ETH, PRICES["ETH"] * 1.15)
    equity, mm, _ = engine.margin(seller)
    assert equity < mm
    for _ in range(5):
        chain.mine()
        bot.tick()
        if engine.margin(seller)[0] >= engine.margin(seller)[1]:
            break
    else:
        raise AssertionError("the seller was never restored")
    taken = options.size(liq, instrument)
    assert taken < 0 and options.size(seller, instrument) == -SIZE - taken
    chain.mine()
    after = bot.tick()
    assert [t.status for t in store.txs()] == ["confirmed"]  # one slice restored it
    assert bot.book.options == {seller, buyer, liq}  # the keeper's own account holds calls
    assert after.scan.options == 3 and after.scan.confirmed == [] and after.actions == []
