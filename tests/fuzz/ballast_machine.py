"""The stateful fuzz model of Ballast: random users, keepers, oracles and risk signers
against the real Vyper sources on revm (revm_env.py; `FUZZ_BACKEND=boa` runs it in
titanoboa, for traces), with the invariants checked every INVARIANT_EVERY steps and after
the last.

`BallastMachine` is a hypothesis `RuleBasedStateMachine`. Its rules are the actions of the
protocol (deposit, withdraw, sub-account transfer, signed-order fill and partial fill,
cancel, oracle moves including stale rounds, crashes and a pumped thin asset, time, funding
switched on, changed or off by the owner and settled by anyone as time passes, signed
risk updates valid and invalid and chained inside one window, ramp pokes, liquidation with
any fraction, a keeper pass, insolvency, vault shares' rate moved by donations, slashings and
outages and their cap moved by signed snapshots; hostile tokens in `HostileMachine`'s runs;
and in `OptionsMachine`'s runs options: calls and puts on ETH and BTC at two expiries
bought, sold, unwound and filled again through the order book, vol curves signed 2 of 3 and
moved (ATM up or down, skew, refit) or refused (stale, replayed, below the threshold), an
underlying squeezed against a writer, the clock past an expiry, the settlement price recorded
and expired legs settled into cash). Each option trade's outcome is predicted before the
call: refused exactly when and why the engine must (the option book's rules, each side's IM
on the twin's strict valuation with every price and vol valid, else risk-reducing, the
debt cap), and then nothing moves. Its invariants, one `@invariant` each so a failure
names the property (the rule-level checks below run inside the rules):

* funding: what settlements took from payers covers what they credited to receivers, the
  difference (the rounding dust, under 1 wei a settlement) always the protocol's;
* conservation, per token: for the cash token
  ``balanceOf(engine) * 10**12 + deficit == sum over accounts of (cash - open notional) +
  funding paid`` (the insurance fund, account 0, included; fees are part of it; funding
  paid: what funding settlements took from cash net of what they credited), and for each collateral
  token ``balanceOf(engine) * scale == sum of balances``; the engine's recorded totals equal
  what it holds; positions net to zero per market and open interest is the sum of longs;
  option premiums and the legs' price in a liquidation move between balances, zero-sum;
  settling expired legs credits what the legs still held will pay (``- option settlements
  paid`` on the right); per option instrument the legs net to zero with what was settled,
  and the book's open interest per underlying and expiry is the sum of its long legs;
* option settlement: per recorded expiry, what settlements credited plus what the legs
  still held will pay is ``sum(size * intrinsic)`` over every leg (zero) less the rounding
  dust, under 1 wei a leg, always the protocol's; settling moves no equity; a settlement
  price is recorded once, never before the expiry or without a valid price, from the
  feed's first valid round at or after the expiry as its history says (the round a keeper
  finds with `offchain_risk.chain.settlement_round`; a later or earlier one is refused);
* every successful risk-increasing action left its account at or above IM (a fill side
  may instead pass the risk-reducing rule: MM strictly lower, health not lower);
* a liquidation never leaves a solvent account worse in health ratio ``E / MM`` than
  before minus the discount paid, and matches the numpy twin's preview to the wei (with
  option legs: the same plan over the valuation with the legs joined, `_option_preview`);
* nothing is liquidatable after a full keeper pass (but a book larger than any capital the
  deposit caps admit, of which the pass takes the slice that capital carries);
* the deficit equals the sum of uncovered holes (each write-off predicted by the twin, less
  what insurance fees and withdrawal haircuts paid back);
* every signed parameter stays in the governor's bounds; invalid updates move nothing;
* no sequence of signed updates (chained inside one window, planned or raw) or ramp pokes
  moves a governed value past its budget for the window;
* views (`healths`, `Lens.account_state`) never revert on a listed account;
* the vault share's price is the twin's (`RateCap`: the rate capped, cut or an outage) at
  every price re-read, and a signed snapshot is installed exactly when the twin's
  `RateCap.rebased` accepts it (else refused with its reason, nothing moved);
* the contract and the numpy twin (`margin_exact`, with the unsettled funding of
  `offchain_risk.models.funding`: each market's words stepped at every touch, each
  position's snapshot; for an account holding options the legs joined by
  `offchain_risk.models.options.option_margin_exact` at the model's vol curves and
  settlement prices) agree to the wei on equity, MM, IM and `prices_ok`,
  on the accounts a step touched, and on every account every SWEEP_EVERY steps (when the
  accounts the model believes untouched must not have moved);
* every account whose liquidation the written policy allows can be liquidated by a
  well-funded liquidator (funded as far as the deposit caps admit: past them, the slice its
  capital carries), option legs included and whatever the vol feed's staleness (a stale vol
  blocks risk-increasing option trades, never a liquidation); it pays the slice's price and
  takes the legs as the twin says (`option_slice_exact`).

Balances are re-read for the accounts a step touched (every account on a sweep); margins
(one `healths` call) for those, and for every account when a step moved a price, a
parameter or the clock, which move margins but no balance; parameters after the steps that
can change them. The invariants over balances run when balances were re-read (and after
every sweep), the bounds when parameters were, the liquidation proof once per state: what
they check cannot move otherwise. A new rule (a product, a market feature) marks the
accounts it touches in `self.dirty` (or sets `prices_dirty` / `params_dirty`) and the
invariants follow; a rule that moves balances without a user action (funding, a vault's
rate) marks the accounts it moves.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
from boa_stack import CONTRACTS, BoaChain, BoaStack, deploy
from eth_abi import decode as abi_decode
from eth_account import Account
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from option_stack import (
    SHORT_MIN_BPS,
    VOL_SHOCK,
    RoundReader,
    sign_digest,
    signed_vol_update,
    vol_domain,
)
from option_stack import install as install_options
from revm_env import Revert, RevmEnv

from offchain_risk import devnet
from offchain_risk.keeper.signer import (
    FLOOR,
    SLOTS,
    AssetBounds,
    ChainView,
    GlobalBounds,
    Limits,
    ParamSet,
    RiskSigner,
    update_tuple,
)
from offchain_risk.keeper.snapshots import snapshot_args, snapshot_message
from offchain_risk.keeper.vol_signer import MAX_SKEW, VolCurve, curve_vol
from offchain_risk.models.funding import FundingParams, MarketFunding, owed, owed_exact, premium_of
from offchain_risk.models.liquidation import (
    LiquidationPolicy,
    Preview,
    is_liquidatable,
    plan,
    preview,
    slice_accounts,
)
from offchain_risk.models.margin import (
    MarginResult,
    QuotePeg,
    RiskParams,
    margin_exact,
    margin_numerators,
    peg_margin,
)
from offchain_risk.models.options import (
    OptionLeg,
    instrument_id,
    option_margin_exact,
    option_slice_exact,
    price_exact,
)
from offchain_risk.models.vault import VAULT_CLASSES, RateCap
from offchain_risk.units import (
    DAY,
    HOUR,
    MAX_FUNDING_CAP,
    MAX_FUNDING_CONVERGENCE,
    MAX_OPTION_LEGS,
    MAX_RATE_GROWTH_BPS,
    MAX_SCENARIOS,
    QUOTE_ASSET,
    SHOCK_WORDS,
    WAD_BPS,
)

WAD = 10**18
BPS = 10**4
N_ASSETS = 4
ETH, BTC, SOL, LINK = range(N_ASSETS)
# ERC-4626 shares over WETH (MockVault), listed after the markets as collateral only, priced
# at the ETH feed times the capped rate; the book's assets are the markets and the shares.
VAULT = N_ASSETS
ASSETS = N_ASSETS + 1
VAULT_CLASS = VAULT_CLASSES["liquid_staking"]
FEED_UNIT = 10**10  # 8-decimal feeds
CASH_SCALE = 10**12  # USDC has 6 decimals
INSURANCE = 0
HEARTBEAT = 86_400
MAX_PRICE = 2**100  # constants.MAX_PRICE: the largest price (WAD) the engine accepts
# HostileAggregator's modes whose reads answer (live, and stuck: its rounds as written).
FEED_LIVE, FEED_STUCK = 0, 2
SETTLE_LOOKBACK = 8  # OptionBook.SETTLE_LOOKBACK: rounds record_settlement walks back
# Risk-governor rules are ~50x a user action in py-evm: offered on one step in GOV_EVERY.
GOV_EVERY = 6
# The EVM the model runs on: "revm" (pyrevm, for volume) or "boa" (titanoboa, for traces).
BACKEND = os.environ.get("FUZZ_BACKEND", "revm")
SCALE = {-1: CASH_SCALE, ETH: 1, BTC: 10**10, VAULT: 1}  # token units -> WAD
# Traders: (role, sub-account); a role is one owner key. The liquidator's desk is funded deep.
TRADERS = (("trader", 0), ("trader", 1), ("maker", 0), ("maker", 1), ("taker", 0))
DESK = ("liquidator", 0)
# Revert messages a rule may meet; anything else fails the run.
USER_ERRORS = (
    "margin: below initial margin",
    "oracle: invalid price",
    "ledger: insufficient cash",
    "ledger: insufficient collateral",
    "settlement: price outside band",
    "settlement: debt cap",
    "settlement: open interest cap",
    "trading: overfill",
    "trading: nonce cancelled",
)
# Options: an OptionBook over a VolFeed signed 2 of 3 (`_list_options`), calls and puts on
# ETH and BTC at OPTION_STRIKES (USD) and two expiries, the first a day and a half after
# the stack's clock, the second a week later (`expiry` takes the clock past them).
OPTION_UNDERLYINGS = (ETH, BTC)
OPTION_STRIKES = {ETH: (1_800, 2_200), BTC: (54_000, 66_000)}
ATM_VOL = {ETH: 60 * WAD // 100, BTC: 50 * WAD // 100}  # the curves' first ATM vols
# Long open interest cap per underlying and expiry (WAD units): a few trades reach it.
OPTION_OI_CAP = {ETH: 40 * WAD, BTC: 3 * WAD // 2}
# Seconds a vol curve stays valid: most `wait`s outlast it, so trades meet stale vols.
VOL_HEARTBEAT = 2 * HOUR
VOL_SIGNERS, VOL_THRESHOLD = 3, 2
EXPIRY_TIME = 8 * HOUR  # expiries at 08:00 UTC
OPTIONS_BIT = 1 << 255  # of `account_assets`: the account holds option legs
MAX_OPTION_SIZE = 2**100  # OptionBook's largest |size| of a trade or a leg (WAD)
# Refusals of the option rules, each predicted by the model before the call.
OPTION_ERRORS = (
    "options: expired",
    "options: size too large",
    "options: premium out of range",
    "options: too many legs",
    "options: open interest cap",
    "options: not expired",
    "options: already recorded",
    "options: nothing to settle",
    "options: bad round",
    "options: round not after expiry",
    "options: not the first round",
    "options: round unreadable",
)


ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


def revert_reason(err: Exception) -> str:
    """The known revert string a boa error carries, else the error's tail. Read from the
    revert data itself: titanoboa's printed trace cannot format a call through the engine's
    delegatecall fallback (deposit, withdraw, transfer), and its last frame may be a feed
    call that failed inside a gas-capped read, which the engine caught."""
    output = getattr(getattr(err, "call_trace", None), "output", b"") or b""
    if isinstance(err, Revert):
        text = err.reason
    elif output[:4] == ERROR_SELECTOR:
        (text,) = abi_decode(["string"], output[4:])
    else:
        text = str(err)
    for known in (
        *USER_ERRORS,
        *OPTION_ERRORS,
        "liquidations: account is healthy",
        "liquidations: nothing to liquidate",
        "liquidations: cost above max_cost",
    ):
        if known in text:
            return known
    return text[-400:]


@dataclass
class Stack:
    """The devnet listing plus what the fuzz model adds: hostile-capable feeds on every
    market and a 2-of-3 RiskGovernor installed as risk manager."""

    s: BoaStack
    chain: Any  # BoaChain or RevmEnv: deployments, snapshots, the clock, `Error`
    feeds: dict[int, object]
    governor: object
    signers: list
    relayer: str
    accounts: list[int]  # INSURANCE, traders..., desk
    owners: dict[int, str]  # account -> owner address
    desk: int
    tokens: dict[int, object]  # asset -> collateral token (VAULT: the shares); -1 -> cash
    quote_feed: object  # the quote (cash) asset's feed, on slot QUOTE_ASSET
    underlying: object  # the vault's underlying token (WETH)
    snapshots: object  # RateSnapshots: the signed moves of the vault's rate cap
    options: OptionMarkets  # the option book, its vol feed and what is listed
    # Hostile runs: kind -> (token, its feed) of the tokens no deposit may credit.
    refused: dict[str, tuple[object, object]] = field(default_factory=dict)


@dataclass
class OptionMarkets:
    """A stack's option book over its vol feed: the feed's signers, the two expiries, the
    listed instruments and the curves published at listing."""

    book: Any
    feed: Any
    keys: list  # the vol feed's signers (eth_account keys)
    domain: Any  # the feed's EIP-712 domain
    expiries: tuple[int, int]
    instruments: tuple[int, ...]  # listed ids
    # (underlying, expiry) -> (atm vol, skew, curvature, forward, observed at)
    curves: dict[tuple[int, int], tuple[int, int, int, int, int]]


def _arity(fn: Any) -> int:
    """How many positional arguments a contract function takes (revm_env's or titanoboa's)."""
    by_arity = getattr(fn, "by_arity", None)
    return max(by_arity) if by_arity else fn.func_t.n_positional_args


def instrument(id: int) -> tuple[int, int, int, bool]:
    """(underlying, expiry, strike, is_call) of an option id (`OptionBook._instrument`)."""
    return (id >> 1) & 255, (id >> 9) & (2**40 - 1), (id >> 49) & (2**101 - 1), bool(id & 1)


def intrinsic(is_call: bool, strike: int, price: int) -> int:
    """Per unit, WAD: what a call or put struck at `strike` pays at `price`."""
    return max(price - strike, 0) if is_call else max(strike - price, 0)


_STACKS: dict[tuple[str, bool], Stack] = {}

# Hostile runs (`HostileMachine`): ETH's and BTC's collateral tokens are a re-entrant and a
# blocklisting token (contracts/test/), and a fee-on-transfer and a false-returning token
# are listed as collateral-only assets after the markets (HostileToken's modes), each with
# the clear error that must refuse its every deposit.
HOSTILE_COLLATERAL = {ETH: "test/ReentrantToken.vy", BTC: "test/BlocklistToken.vy"}
REFUSED_TOKENS = {
    "fee-on-transfer": (1, "ledger: received amount differs"),
    "false-returning": (2, "ledger: transfer failed"),
}


def new_chain(backend: str) -> Any:
    """The EVM of `backend`, its clock at a midnight (UTC): the governor's hourly buckets,
    and with them which rules are due, then do not depend on the wall clock, so a
    derandomised run draws the same examples on every machine."""
    if backend == "revm":
        return RevmEnv(timestamp=1_767_225_600)  # 2026-01-01
    if backend != "boa":
        raise ValueError(f"FUZZ_BACKEND must be revm or boa, not {backend!r}")
    import boa

    boa.env.enable_fast_mode()
    chain = BoaChain()
    # The next midnight: forward only, so other tests' feeds stay in the past.
    chain.timestamp = -(-chain.timestamp // 86_400) * 86_400
    return chain


def stack(backend: str | None = None, hostile: bool = False) -> Stack:
    """Deploy once per process, backend and kind of run (compiling takes seconds); each
    example runs in an anchor. `hostile`: the hostile tokens listed (HOSTILE_COLLATERAL,
    REFUSED_TOKENS)."""
    backend = backend or BACKEND
    if (backend, hostile) in _STACKS:
        return _STACKS[backend, hostile]
    chain = new_chain(backend)
    s = deploy(chain, HOSTILE_COLLATERAL if hostile else None)
    feeds = {}
    for asset, spec in enumerate(devnet.MARKETS):
        feeds[asset] = chain.load(
            CONTRACTS / "test/HostileAggregator.vy", 8, int(spec.price_usd * 10**8)
        )
        s.admin.set_feed(asset, feeds[asset].address, HEARTBEAT)
    # The quote asset's feed, at par: positive cash adds the peg-loss term to IM when it
    # reports below 1 (`depeg_quote`).
    quote_feed = chain.load(CONTRACTS / "test/HostileAggregator.vy", 8, 10**8)
    s.admin.set_feed(QUOTE_ASSET, quote_feed.address, HEARTBEAT)
    vault, underlying = _list_vault(chain, s, feeds[ETH])
    refused = {}
    for kind, (mode, _) in REFUSED_TOKENS.items() if hostile else ():
        token = chain.load(CONTRACTS / "test/HostileToken.vy", mode, 18)
        feed = chain.load(CONTRACTS / "test/MockAggregator.vy", 8, 100 * 10**8)
        asset = s.engine.num_assets()
        s.admin.list_asset(
            token.address, feed.address, HEARTBEAT, 500, 1_000, 10**12 * WAD, 10**12 * WAD,
            False, 0,
        )  # fmt: skip
        s.admin.set_shocks(asset, [-3_000, 3_000] + [0] * (MAX_SCENARIOS - 2))
        refused[kind] = (token, feed)
    keys = [Account.from_key((0xB0 + i).to_bytes(32, "big")) for i in range(3)]  # risk signers
    for k in keys:
        s.keys[f"signer{k.address}"] = k
    relayer = s.actor("relayer")
    governor = chain.load(
        CONTRACTS / "RiskGovernor.vy",
        s.engine.address,
        s.liquidations.address,
        [k.address for k in keys],
        2,
        devnet.GOVERNOR_LIMITS,
    )
    for asset, spec in enumerate(devnet.MARKETS):
        governor.set_asset_bounds(asset, devnet.asset_bounds(spec))
    governor.set_global_bounds(devnet.GLOBAL_BOUNDS)
    s.admin.set_risk_manager(governor.address)
    s.liquidations.set_risk_manager(governor.address)
    snapshots = chain.load(CONTRACTS / "RateSnapshots.vy", s.engine.address, governor.address)
    s.admin.set_snapshot_manager(snapshots.address)
    # Sixty days on, every feed answering afresh: signed snapshots of the vault's rate (at
    # least seven days old, newer than the listing's) can be installed from the first step.
    chain.time_travel(60 * DAY)
    for feed in (*feeds.values(), quote_feed):
        feed.set_price(feed.answer())
    options = _list_options(chain, s)
    if isinstance(chain, BoaChain):
        chain.register(s.engine)

    owners = {INSURANCE: devnet.ZERO_ADDRESS}
    accounts = [INSURANCE]
    for name, sub in (*TRADERS, DESK):
        who = s.actor(name)
        acct = s.account(who, sub)
        accounts.append(acct)
        owners[acct] = who
        for token in (s.cash, *s.tokens.values(), vault):
            token.approve(s.engine.address, 2**255, sender=who)
    desk = accounts[-1]
    _fund(s, owners[desk], desk, s.cash, 10**9 * 10**6)
    # Every trader starts with cash and some ETH, so that fills pass IM from the start.
    for acct in accounts[1:-1]:
        _fund(s, owners[acct], acct, s.cash, 20_000 * 10**6)
        _fund(s, owners[acct], acct, s.tokens[ETH], 2 * 10**18)
    _fund(s, s.owner, INSURANCE, s.cash, 10_000 * 10**6)
    _STACKS[backend, hostile] = Stack(
        s=s,
        chain=chain,
        feeds=feeds,
        governor=governor,
        signers=keys,
        relayer=relayer,
        accounts=accounts,
        owners=owners,
        desk=desk,
        tokens={-1: s.cash, **s.tokens, VAULT: vault},
        quote_feed=quote_feed,
        refused=refused,
        underlying=underlying,
        snapshots=snapshots,
        options=options,
    )
    return _STACKS[backend, hostile]


def _list_options(chain: Any, s: BoaStack) -> OptionMarkets:
    """Install an option book over a vol feed signed VOL_THRESHOLD of VOL_SIGNERS, publish
    a curve for each underlying and expiry (fitted at the listing price) and list a call
    and a put at every strike of OPTION_STRIKES on both expiries."""
    keys = [Account.from_key((0xD0 + i).to_bytes(32, "big")) for i in range(VOL_SIGNERS)]
    feed, book = install_options(chain, s, [k.address for k in keys], VOL_THRESHOLD, VOL_HEARTBEAT)
    domain = vol_domain(feed)
    now = chain.timestamp
    near = (now // DAY + 1) * DAY + EXPIRY_TIME
    expiries = (near, near + 7 * DAY)
    curves = {}
    for u in OPTION_UNDERLYINGS:
        forward = int(devnet.MARKETS[u].price_usd) * WAD
        for expiry in expiries:
            book.set_oi_cap(u, expiry, OPTION_OI_CAP[u])
            curve = (ATM_VOL[u], -WAD // 10, WAD // 10, forward, now)
            update, sigs = signed_vol_update(
                domain,
                keys[:VOL_THRESHOLD],
                underlying=u,
                expiry=expiry,
                atm_vol=curve[0],
                skew=curve[1],
                curvature=curve[2],
                forward=curve[3],
                observed_at=now,
                nonce=feed.next_nonce(),
            )
            feed.submit(update, sigs)
            curves[(u, expiry)] = curve
    ids = []
    for u in OPTION_UNDERLYINGS:
        for expiry in expiries:
            for strike in OPTION_STRIKES[u]:
                for is_call in (True, False):
                    book.list_option(u, expiry, strike * WAD, is_call)
                    ids.append(instrument_id(u, expiry, strike * WAD, is_call))
    assert all(book.listed(i) for i in ids)
    return OptionMarkets(book, feed, keys, domain, expiries, tuple(ids), curves)


def _list_vault(chain: Any, s: BoaStack, eth_feed) -> tuple[Any, Any]:
    """List WETH vault shares (MockVault, 105 WETH for 100 shares: a rate of 1.05) as
    asset VAULT, as `devnet.list_vault` lists them: ETH's feed, floor and shocks, the
    liquid-staking class's haircut and growth cap, the cap's snapshot the rate at listing."""
    underlying = chain.load(CONTRACTS / "test/MockToken.vy", "Wrapped Ether", "WETH", 18)
    vault = chain.load(CONTRACTS / "test/MockVault.vy", "Staked WETH", "sWETH", underlying.address)
    underlying.mint(s.owner, 105 * WAD)
    underlying.approve(vault.address, 100 * WAD)
    vault.deposit(100 * WAD, s.owner)
    underlying.transfer(vault.address, 5 * WAD)
    assert s.engine.num_assets() == VAULT
    s.admin.list_asset(
        vault.address, eth_feed.address, HEARTBEAT, devnet.MARKETS[ETH].floor_bps,
        VAULT_CLASS.haircut_bps, 10**12 * WAD, 10**12 * WAD, False, 0,
    )  # fmt: skip
    s.admin.set_shock_words(VAULT, [s.engine.shock_word(ETH, w) for w in range(SHOCK_WORDS)])
    s.funding.list_vault(VAULT, VAULT_CLASS.max_growth_bps)
    return vault, underlying


def _fund(s: BoaStack, who: str, account: int, token, amount: int) -> None:
    token.mint(who, amount)
    token.approve(s.engine.address, 2**255, sender=who)
    s.admin.deposit(account, token.address, amount, sender=who)


class LocalRiskSigner(RiskSigner):
    """The keeper's RiskSigner reading the governor in process (titanoboa or revm) and
    signing with local keys (the Ape-specific parts of RiskSigner replaced, the planning
    kept). `chain` gives the block clock."""

    def __init__(self, chain: Any, *args: Any) -> None:
        super().__init__(*args)
        self.chain = chain
        self._domain = None

    def domain(self):
        if self._domain is None:  # constant for a deployed governor
            self._domain = super().domain()
        return self._domain

    def view(self, assets) -> ChainView:
        g = self.governor
        return ChainView.from_views(
            nonce=g.next_nonce(),
            timestamp=self.chain.timestamp,
            limits=Limits(*g.limits()),
            bounds=[AssetBounds(*g.asset_bounds(int(a))) for a in assets],
            global_bounds=GlobalBounds(*g.global_bounds()),
            asset_views=[g.asset_view(int(a)) for a in assets],
            global_view=g.global_view(),
        )

    def sign(self, message) -> list[bytes]:
        signable = message.signable_message
        sigs = []
        for key in self.signers:
            raw = key.sign_message(signable)
            sig = raw.r.to_bytes(32, "big") + raw.s.to_bytes(32, "big") + bytes([raw.v])
            sigs.append((int(key.address, 16), sig))
        return [sig for _, sig in sorted(sigs)]

    def submit(self, message, signatures):
        return self.governor.submit(update_tuple(message), signatures, sender=self.relayer)


@dataclass
class Snapshot:
    """Balances of one account: cash, (ASSETS,) collateral, size, open notional, and its
    option legs, (instrument, signed size) by instrument."""

    cash: int
    coll: tuple[int, ...]
    size: tuple[int, ...]
    on: tuple[int, ...]
    legs: tuple[tuple[int, int], ...] = ()


@dataclass
class MarginRow:
    """One account's `healths` row (the liquidation valuation)."""

    equity: int
    mm: int
    im: int
    prices_ok: bool
    unpriced: bool

    @classmethod
    def of(cls, row) -> MarginRow:
        equity, mm, im, prices_ok, _, unpriced = row
        return cls(equity, mm, im, prices_ok, unpriced)

    @cached_property
    def liquidatable(self) -> bool:
        """The written policy's verdict (read by several preconditions and invariants a
        step: computed once per row)."""
        return bool(is_liquidatable(self.equity, self.mm, self.prices_ok, self.unpriced))


# The profile this process runs: quick (`make test`) or long (`make fuzz`); see PROFILES.
PROFILE = os.environ.get("FUZZ_PROFILE", "quick")
# The invariants run after one step in INVARIANT_EVERY, and after the last step of every
# example (teardown). The long campaign (`FUZZ_PROFILE=long`, `make fuzz`) checks after every
# step: the twin against the contract on the accounts each step touched, and a property
# broken and restored within a few steps is caught. The quick profile in `make test` checks
# after one step in 4: what the invariants check accumulates in between (the accounts
# touched, the parameters read, the liquidation proof's state), so no account or update
# escapes a check, and what is lost is the states between two checks; a step then costs about
# three quarters of its CPU time (1.22 against 1.63 ms, benchmarks/RESULTS.md), which buys
# the quick profile's 50,000 steps inside `make test`'s budget. The rules that need the book
# fresh re-read it themselves (`_refresh` is idempotent). A failure names its invariant and
# the steps since the last passing check (the failing step is one of them; hypothesis then
# shrinks the example).
INVARIANT_EVERY = int(os.environ.get("FUZZ_INVARIANT_EVERY", "1" if PROFILE == "long" else "4"))
# The twin against the contract on every account, and accounts no step touched re-read, once
# in about 10 steps (rounded up to a check; besides after every price, parameter or clock
# move, which re-reads all): a sweep costs about a step's time on revm (7 accounts x 6 reads,
# `healths` and the twin), and every example (100 steps) gets 8 to 10 sweeps.
SWEEP_EVERY = -(-10 // INVARIANT_EVERY) * INVARIANT_EVERY
# The invariants over balances (held tokens, deficit, positions): due when a step re-read one.
BALANCE_INVARIANTS = frozenset(
    {"cash", "collateral", "deficit", "positions", "funding", "settlement"}
)

# The backstop liquidator's cash beyond what an account's take needs (token units).
RESCUE_BASE = 10**11 * 10**6

# Distinct states: a coarse signature of the whole book (see BallastMachine.signature).
STATES: set[tuple] = set()
STEPS = [0]
# What the steps did (successful actions and refusals by reason), for the benchmark.
STATS: Counter = Counter()


class BallastMachine(RuleBasedStateMachine):
    HOSTILE = False  # the stack with the hostile tokens listed (`HostileMachine`)

    def __init__(self) -> None:
        super().__init__()
        self.k = stack(hostile=self.HOSTILE)
        self.s = self.k.s
        self.chain = self.k.chain
        self._anchor = self.chain.anchor()
        self._anchor.__enter__()
        try:
            self._setup()
        except BaseException:
            self._anchor.__exit__(None, None, None)
            raise

    def _setup(self) -> None:
        self.steps = 0  # rules run
        self.checked = 0  # the step after which the invariants last passed
        self._started = False  # hypothesis's first check_invariants follows __init__
        self.nonce = 0
        self.orders: list[tuple[tuple, bytes, int]] = []  # (order, signature, maker account)
        self.signer = LocalRiskSigner(
            self.chain,
            self.k.governor,
            self.s.engine,
            self.s.liquidations,
            self.k.signers[:2],
            self.k.relayer,
        )
        # What the deficit must be: holes the insurance fund did not cover, less paid back.
        self.expected_deficit = 0
        self.dirty: set[int] = set(self.k.accounts)
        self.unchecked: set[int] = set()  # re-read, not yet compared with the twin
        # Invariants with something new to check (`_due`); `version` counts the re-reads,
        # `proven` is the version at which every due account was last shown liquidatable.
        self.pending: set[str] = {*BALANCE_INVARIANTS, "bounds"}
        # Governed values read since the window-budget invariant last ran, (time, values);
        # the record of the governor's current bucket as the model saw it.
        self.governed_seen: list[tuple[int, tuple]] = []
        self.limits = Limits(*self.k.governor.limits())
        self.bucket: int | None = None
        self.held: tuple | None = None  # the values last seen
        self.version = 0
        self.proven = -1
        self.params_dirty = True
        self.prices_dirty = True
        self.book: dict[int, Snapshot] = {}
        self.margins: dict[int, MarginRow] = {}
        # Funding, stepped by the twin at every touch the contract makes (never read back):
        # each market's words, each position's snapshot, and what settlements moved.
        self.markets = [MarketFunding() for _ in range(N_ASSETS)]
        self.snaps: dict[tuple[int, int], int] = {}  # (account, market) -> index settled to
        self.funding_paid = 0  # sum of what settlements took from cash (received: < 0)
        self.funding_dust = 0  # sum(paid * WAD - size * (index - snap)), WAD * WAD units
        self.settlements = 0
        self.funding_on = False  # a cap was ever set: until then every funding word is 0
        # The vault's rate cap, stepped by the twin at every snapshot the engine installs.
        self.vault_cap = RateCap.from_word(self.s.funding.vault_word(VAULT))
        self.vault_mode = 0  # MockVault's mode, as `vault_moves` last set it
        # Options: the vol curves as the model published them (the twin's vols), the
        # settlement prices recorded, the orders signed, and what settling expired legs
        # moved: the cash credited (net), the rounding dust kept (WAD * WAD units, one
        # floor per leg), the legs settled and each instrument's size settled.
        self.curves = dict(self.k.options.curves)
        self.settled: dict[tuple[int, int], int] = {}
        self.option_orders: list[tuple[tuple, bytes, int]] = []
        self.option_paid = 0
        self.settle_dust = 0
        self.settled_legs = 0
        self.settled_size: Counter = Counter()
        self._refresh()

    def teardown(self) -> None:
        """The invariants once more after the example's last step when it ended between two
        checks (and not on a failure: `sys.exc_info()` is the one propagating), then the
        example's snapshot is rolled back."""
        try:
            if self.steps > self.checked and sys.exc_info()[0] is None:
                self.check_all()
        finally:
            self._anchor.__exit__(None, None, None)

    def check_invariants(self, *args: Any, **kwargs: Any) -> None:
        """hypothesis calls this after __init__ and after every step: every invariant runs
        after one step in INVARIANT_EVERY (and at teardown)."""
        if self._started:
            self.steps += 1
            STEPS[0] += 1
        self._started = True
        if self.steps % INVARIANT_EVERY == 0:
            self.check_all()

    def check_all(self) -> None:
        """Every invariant, in hypothesis's order; a failure names the invariant and the
        steps that may have broken it."""
        for inv in self.invariants:
            try:
                inv.function(self)
            except AssertionError as err:
                err.add_note(
                    f"invariant {inv.function.__name__} failed after step {self.steps} "
                    f"(checked every {INVARIANT_EVERY} steps and at the end); every invariant "
                    f"held after step {self.checked}: the failing step is one of "
                    f"{self.checked + 1}..{self.steps}"
                )
                raise
        self.checked = self.steps

    # ------------------------------------------------------------------ reads

    def _snapshot(self, account: int) -> Snapshot:
        e = self.s.engine
        bitmap = e.account_assets(account)
        options, bitmap = bitmap & OPTIONS_BIT, bitmap & (OPTIONS_BIT - 1)
        # Nothing beyond the markets: a refused token (hostile runs) is never credited.
        assert bitmap >> (2 * ASSETS) == 0, f"account {account} holds assets {bitmap:#x}"
        coll, size, on = [0] * ASSETS, [0] * ASSETS, [0] * ASSETS
        for a in range(ASSETS):
            if bitmap >> (2 * a) & 1:
                coll[a] = e.collateral(account, a)
            if bitmap >> (2 * a + 1) & 1:
                size[a], on[a] = e.position(account, a)
        legs: tuple[tuple[int, int], ...] = ()
        if options:
            book = self.k.options.book
            legs = tuple(sorted((i, book.size(account, i)) for i in book.account_legs(account)))
            # The engine's bit is set exactly while the book holds a leg.
            assert legs and all(s for _, s in legs), (account, legs)
        return Snapshot(e.cash(account), tuple(coll), tuple(size), tuple(on), legs)

    def _read_params(self) -> None:
        s = self.s
        shocks, floors, haircuts = [], [], []
        for a in range(ASSETS):
            shocks.append(list(s.lens.shocks(a)))
            cfg = s.lens.asset_config(a)
            floors.append(cfg.floor_bps)
            haircuts.append(cfg.haircut_bps)
        self.params = RiskParams(
            floor_bps=np.array(floors, dtype=np.int64),
            haircut_bps=np.array(haircuts, dtype=np.int64),
            shocks_bps=np.array(shocks, dtype=np.int64),
            im_multiplier_wad=s.engine.im_multiplier(),
        )
        liq = s.liquidations
        self.policy = LiquidationPolicy(
            min_discount=liq.min_discount(),
            max_discount=liq.max_discount(),
            insurance_share=liq.insurance_share(),
            target_buffer=liq.target_buffer(),
            close_cap=liq.close_cap(),
            critical_health=liq.critical_health(),
            dust_margin=liq.dust_margin(),
            min_bounty=liq.min_bounty(),
        )
        self.peg_bps = s.lens.asset_config(QUOTE_ASSET).floor_bps  # the standing peg rate
        self.decimals = np.array(
            [spec.token[2] if spec.token else 18 for spec in devnet.MARKETS] + [18],
            dtype=np.int64,
        )
        self.governed_seen.append((self.chain.timestamp, self._governed_values()))

    def _governed_values(self) -> tuple:
        """(shocks (N_ASSETS, K), floor and haircut (N_ASSETS, 2), [IM, min and max
        discount]) as last read: what the governor's per-window budget bounds."""
        p, policy = self.params, self.policy
        fh = np.stack([p.floor_bps, p.haircut_bps], axis=1)
        return (
            p.shocks_bps.copy(),
            fh,
            [p.im_multiplier_wad, policy.min_discount, policy.max_discount],
        )

    def _refresh(self, sweep: bool = False) -> None:
        """Re-read what the last step may have changed and check the views. A price, a
        parameter or the clock moves margins, not balances: every account's `healths` row
        is re-read (one call) and goes to the twin, balances only for the accounts a step
        touched. `sweep`: every account's balances, and those the model believes no step
        touched must not have moved."""
        revalue: set[int] = set()
        if self.params_dirty:
            self._read_params()
            self.pending.add("bounds")
        if self.prices_dirty:
            # (liquidation price, feed valid) and the feed's reported price (stale or not):
            # the liquidation valuation and the strict one of the risk-reducing rule.
            e, f = self.s.engine, self.s.funding
            reported = [e.price(a) for a in range(ASSETS)]
            # A valid price is the liquidation price (`ledger._liquidation_price`); only an
            # invalid one needs the view (a live fallback, or 0).
            self.prices = [
                (p if ok else f.liquidation_price(a), ok) for a, (p, ok) in enumerate(reported)
            ]
            self.reported = [p for p, _ in reported]
            # The share's price is the twin's (`RateCap`) from the vault's rate and ETH's.
            rate = self._vault_assets()
            twin = self.vault_cap.price(self.reported[ETH], rate, self.chain.timestamp)
            assert self.reported[VAULT] == twin, ("vault share price", self.reported, rate)
            # The quote as last reported, stale or not (IM's peg-loss term reads it so).
            q, self.quote_ok = e.price(QUOTE_ASSET)
            self.quote = QuotePeg(q, self.peg_bps)
        if self.params_dirty or self.prices_dirty or sweep:
            revalue = set(self.k.accounts)
        untouched = set(self.k.accounts) - self.dirty if sweep else set()
        if sweep:
            self.dirty = set(self.k.accounts)
        self.params_dirty = self.prices_dirty = False
        for acct in sorted(self.dirty):
            snap = self._snapshot(acct)
            if acct in untouched and acct in self.book:
                assert snap == self.book[acct], f"account {acct} moved outside the model"
            self.book[acct] = snap
        if self.dirty:
            self.pending |= BALANCE_INVARIANTS  # balances moved: conservation is due
        revalue |= self.dirty
        self.dirty = set()
        if not revalue:
            return
        self.version += 1
        accounts = sorted(revalue)
        # Views never revert on a listed account, whatever its feeds do.
        rows = self.s.engine.healths(accounts)
        for acct, row in zip(accounts, rows, strict=True):
            self.margins[acct] = MarginRow.of(row)
        if self.version % 16 == 0:
            view = self.s.lens.account_state(accounts[-1])
            assert (view.equity, view.mm) == (rows[-1][0], rows[-1][1])
        self.unchecked |= revalue

    def _vault_assets(self) -> int | None:
        """What the vault answers the engine's `convertToAssets(one share)` with: None when
        it reverts or burns the read's gas (MockVault's modes 1 and 3)."""
        mode = self.vault_mode
        return (
            None
            if mode in (1, 3)
            else 0
            if mode == 2
            else self.k.tokens[VAULT].convertToAssets(WAD)
        )

    def _due(self, name: str) -> bool:
        """Whether the invariant `name` has something new to check: balances (or, for
        "bounds", parameters) were re-read since it last ran. What it checks cannot move
        otherwise, and a sweep re-reads everything every SWEEP_EVERY steps."""
        if name not in self.pending:
            return False
        self.pending.discard(name)
        return True

    def _twin(self, accounts: list[int]) -> tuple[MarginResult, list[bool]]:
        """The liquidation valuation (`healths`) of `accounts` as the model holds them."""
        snaps = [self.book[a] for a in accounts]
        return self._valuation(accounts, snaps, [p for p, _ in self.prices], True)

    def _valuation(
        self, accounts: list[int], snaps: list[Snapshot], prices: list[int], liq: bool
    ) -> tuple[MarginResult, list[bool]]:
        """`ledger._margin` of `snaps` (the balances of `accounts`) at `prices`: the
        liquidation valuation (`liq`: liquidation prices, vols not required) or the strict
        one (the feeds' reported prices, every price and vol valid for `prices_ok`). The
        numpy twin (`margin_exact`, with the unsettled funding) for the linear legs; an
        account holding options joins its legs as the book does (`option_margin_exact`
        over the same numerators) and takes the engine's roundings after. Returns the
        margins and each account's `prices_ok`."""
        owed = self._owed(accounts, snaps, prices)
        linear = margin_exact(
            np.array([x.cash for x in snaps], dtype=object),
            np.array([x.coll for x in snaps], dtype=object),
            np.array([x.size for x in snaps], dtype=object),
            np.array([x.on for x in snaps], dtype=object),
            np.array(prices, dtype=object),
            self.params,
            self.quote,
            funding_owed=owed,
        )
        rows = [list(linear.equity), list(linear.mm), list(linear.im)]
        oks = []
        for n, snap in enumerate(snaps):
            if liq:  # a perp needs a liquidation price; collateral without one counts 0
                ok = all(prices[a] != 0 for a in range(ASSETS) if snap.size[a])
            else:
                ok = all(self.prices[a][1] for a in range(ASSETS) if snap.coll[a] or snap.size[a])
            if snap.legs:
                value_num, floor_num, losses = margin_numerators(
                    [snap.coll], [snap.size], prices, self.params
                )
                value, worst, ok, _ = option_margin_exact(
                    self._legs(snap, liq),
                    self.chain.timestamp,
                    liq,
                    int(value_num[0]),
                    int(floor_num[0]),
                    [int(x) for x in losses[0]],
                    ok,
                )
                mm = max(-(-worst // WAD_BPS), 0)
                rows[0][n] = snap.cash - int(owed[n]) - sum(snap.on) + value // WAD_BPS
                rows[1][n] = mm
                rows[2][n] = -(-mm * self.params.im_multiplier_wad // WAD) + int(
                    peg_margin(np.array([snap.cash], dtype=object), self.quote)[0]
                )
            # (and the quote's feed, for positive cash: IM's peg-loss term reads it)
            oks.append(ok and (liq or snap.cash <= 0 or self.quote_ok))
        result = MarginResult(*(np.array(r, dtype=object) for r in rows))
        return result, oks

    def _vol(self, u: int, expiry: int, strike: int) -> tuple[int, bool]:
        """`VolFeed.vol` from the model's curves (`curve_vol`, to the wei) and heartbeat."""
        atm, skew, curvature, forward, observed = self.curves[(u, expiry)]
        vol = curve_vol(atm, skew, curvature, forward, strike)
        if vol is None:  # a strike outside the curve's pricing domain
            return 0, False
        now = self.chain.timestamp
        return vol, expiry > now and observed <= now and now - observed <= VOL_HEARTBEAT

    def _legs(self, snap: Snapshot, liq: bool) -> list[OptionLeg]:
        """`snap`'s option legs as `OptionBook._leg` sees them, at the liquidation prices
        (`liq`) or the reported ones."""
        out = []
        for id, size in snap.legs:
            u, expiry, strike, is_call = instrument(id)
            vol, vol_ok = self._vol(u, expiry, strike)
            out.append(
                OptionLeg(
                    size=size,
                    expiry=expiry,
                    strike=strike,
                    is_call=is_call,
                    forward=self.prices[u][0] if liq else self.reported[u],
                    price_ok=self.prices[u][1],
                    vol=vol,
                    vol_ok=vol_ok,
                    settlement=self.settled.get((u, expiry), 0),
                    shocks=tuple(int(x) for x in self.params.shocks_bps[u]),
                    vol_shock=VOL_SHOCK,
                    short_min_bps=SHORT_MIN_BPS,
                )
            )
        return out

    def _owed(self, accounts: list[int], snaps: list[Snapshot], prices: list[int]):
        """Unsettled funding per account (the twin's `owed_exact`): each market's index
        moved on to now with `prices` (the valuation's), each position's snapshot."""
        now = self.chain.timestamp
        index = [self.markets[m].index_at(prices[m], now) for m in range(N_ASSETS)]
        snapshots = [[self.snaps.get((a, m), 0) for m in range(N_ASSETS)] for a in accounts]
        return owed_exact([x.size[:N_ASSETS] for x in snaps], snapshots, index)

    def _touch(self, market: int, price: int, sides: dict[int, int], premium: int = 0, weight=0):
        """A touch of `market` (fill, liquidation slice, `settle_funding`): the twin's index
        moves to now with `price`, and each account of `sides` (account -> its size before)
        settles its funding into cash at that index."""
        index = self.markets[market].accrue(self.chain.timestamp, price, premium, weight)
        for acct, size in sides.items():
            exact = size * (index - self.snaps.get((acct, market), 0))
            paid = owed(size, index, self.snaps.get((acct, market), 0))
            self.funding_paid += paid
            if paid:
                STATS["funding settled into cash"] += 1
            self.funding_dust += paid * WAD - exact
            self.settlements += 1
            self.snaps[(acct, market)] = index

    def _price(self, asset: int) -> int:
        """The feed's current answer in WAD (0 when it answers <= 0)."""
        return max(self.k.feeds[asset].answer(), 0) * FEED_UNIT

    def _strict(
        self, accounts: tuple[int, ...], *snaps: Snapshot
    ) -> tuple[MarginResult, list[bool]]:
        """The twin at the feeds' reported prices, stale or not: the valuation of the fill's
        risk-reducing rule (settlement._check_fill), with each side's `prices_ok`."""
        return self._valuation(list(accounts), list(snaps), self.reported, False)

    def _state(self, *accounts: int) -> tuple:
        """What must not move when an action on `accounts` is refused."""
        e = self.s.engine
        return (
            tuple((a, self._snapshot(a)) for a in accounts),
            e.deficit(),
            tuple(t.balanceOf(e.address) for t in self.k.tokens.values()),
        )

    def _option_state(self, *accounts: int, pairs: tuple | None = None) -> tuple:
        """`_state` and the option book's words of the (underlying, expiry) `pairs` (every
        one by default): open interest and settlement price."""
        opt = self.k.options
        if pairs is None:
            pairs = tuple((u, x) for u in OPTION_UNDERLYINGS for x in opt.expiries)
        words = tuple(
            (opt.book.open_interest(u, x), opt.book.settlement_price(u, x)) for u, x in pairs
        )
        return (*self._state(*accounts), words)

    def _refused(self, before: tuple, reason: str, allowed: tuple[str, ...], state=None) -> None:
        STATS[f"refused: {reason}"] += 1
        assert reason in allowed, reason
        accounts = [a for a, _ in before[0]]
        after = (state or self._state)(*accounts)
        assert after == before, f"state moved on a refused action ({reason})"

    # ------------------------------------------------------------------ rules

    accounts = st.sampled_from(range(1, len(TRADERS) + 1))
    token_ids = st.sampled_from((-1, ETH, BTC, VAULT))

    def _acct(self, i: int) -> int:
        return self.k.accounts[i]

    def _units(self, token_id: int, frac: float) -> int:
        """An amount in token units: frac of a few thousand dollars' worth."""
        if token_id == -1:
            return max(int(frac * 20_000 * 10**6), 1)
        if token_id in (ETH, VAULT):
            return max(int(frac * 10 * 10**18), 1)
        return max(int(frac * 0.3 * 10**8), 1)

    @rule(i=accounts, token_id=token_ids, frac=st.floats(0.0001, 1.0))
    def deposit(self, i, token_id, frac):
        acct, who = self._acct(i), self.k.owners[self._acct(i)]
        amount = self._units(token_id, frac)
        self._deposit(acct, who, token_id, amount)

    @rule(i=accounts, token_id=st.sampled_from((ETH, BTC, VAULT)))
    def deposit_dust(self, i, token_id):
        """One base unit of a collateral token: the dust shield's opening move."""
        acct = self._acct(i)
        self._deposit(acct, self.k.owners[acct], token_id, 1)

    def _deposit(self, acct: int, who: str, token_id: int, amount: int) -> None:
        token = self._mint(token_id, who, amount)
        before = self._state(acct)
        try:
            with self._token_moves(token_id):
                self.s.admin.deposit(acct, token.address, amount, sender=who)
        except self.chain.Error as err:
            # Collateral needs a valid price of its own asset.
            allowed = ("oracle: invalid price", *self._token_errors(token_id, who))
            self._refused(before, revert_reason(err), allowed)
            return
        STATS["deposit" + (" of vault shares" if token_id == VAULT else "")] += 1
        self.dirty.add(acct)

    @rule(amount=st.integers(1, 5_000 * 10**6))
    def deposit_insurance(self, amount):
        self.s.cash.mint(self.s.owner, amount)
        self.s.cash.approve(self.s.engine.address, amount)
        deficit = self.s.engine.deficit()
        self.s.admin.deposit(INSURANCE, self.s.cash.address, amount)
        # A top-up repays an open deficit first.
        self.expected_deficit -= min(amount * CASH_SCALE, deficit)
        self.dirty.add(INSURANCE)

    @rule(i=accounts, token_id=token_ids, frac=st.floats(0.0001, 1.5))
    def withdraw(self, i, token_id, frac):
        self._refresh()  # the book as it is (the invariants may not have run since)
        acct = self._acct(i)
        who = self.k.owners[acct]
        token = self.k.tokens[token_id]
        snap = self.book[acct]
        held = snap.cash if token_id == -1 else snap.coll[token_id]
        scale = SCALE[token_id]
        amount = max(int(max(held, 0) // scale * frac), 1)
        before = self._state(acct)
        wallet = token.balanceOf(who)
        deficit = before[1]
        try:
            with self._token_moves(token_id):
                self.s.admin.withdraw(acct, token.address, amount, sender=who)
        except self.chain.Error as err:
            allowed = USER_ERRORS + self._token_errors(token_id, who)
            self._refused(before, revert_reason(err), allowed)
            return
        wad = amount * scale
        paid = amount
        if token_id == -1 and deficit:
            total = before[2][0] * CASH_SCALE
            share = -((-wad * deficit) // (total + deficit))
            paid_wad = (wad - share) // CASH_SCALE * CASH_SCALE
            self.expected_deficit -= min(wad - paid_wad, deficit)
            paid = paid_wad // CASH_SCALE
        assert token.balanceOf(who) - wallet == paid
        STATS["withdraw" + (" under deficit" if deficit and token_id == -1 else "")] += 1
        self._require_im(acct)
        self.dirty.add(acct)

    @rule(i=accounts, j=accounts, token_id=token_ids, frac=st.floats(0.0001, 1.5))
    def transfer(self, i, j, token_id, frac):
        src, dst = self._acct(i), self._acct(j)
        if src == dst or self.k.owners[src] != self.k.owners[dst]:
            return
        token = self.k.tokens[token_id]
        self._refresh()
        snap = self.book[src]
        held = snap.cash if token_id == -1 else snap.coll[token_id]
        scale = SCALE[token_id]
        amount = max(int(max(held, 0) // scale * frac), 1)
        before = self._state(src, dst)
        try:
            self.s.admin.transfer(src, dst, token.address, amount, sender=self.k.owners[src])
        except self.chain.Error as err:
            self._refused(before, revert_reason(err), USER_ERRORS)
            return
        self._require_im(src)
        STATS["transfer"] += 1
        self.dirty |= {src, dst}

    def _mint(self, token_id: int, who: str, amount: int):
        """`amount` of `token_id`'s token minted to `who`; vault shares are minted by the
        vault against WETH minted to `who` first. Returns the token."""
        token = self.k.tokens[token_id]
        if token_id != VAULT:
            token.mint(who, amount)
            return token
        assets = token.previewMint(amount)
        self.k.underlying.mint(who, assets)
        self.k.underlying.approve(token.address, assets, sender=who)
        token.mint(amount, who, sender=who)
        # The vault rounds a mint up in its own favour: the rate, and the share's price
        # with it, may move (test_regression_minting_vault_shares_moves_their_price).
        self.prices_dirty = True
        return token

    def _token_moves(self, token_id: int) -> AbstractContextManager:
        """Around a deposit or withdrawal that moves `token_id`'s tokens (`HostileMachine`
        watches its re-entrant token there)."""
        return nullcontext()

    def _token_errors(self, token_id: int, who: str) -> tuple[str, ...]:
        """Errors of `token_id`'s own that may refuse moving it for `who` (`HostileMachine`:
        a blocklisted sender or receiver)."""
        return ()

    def _require_im(self, acct: int) -> None:
        """A risk-increasing action succeeded: the account meets IM with valid prices."""
        equity, mm, im, ok, _, _ = self.s.engine.healths([acct])[0]
        assert ok and equity >= im, (equity, mm, im)

    @rule(
        m=accounts,
        t=accounts,
        market=st.sampled_from(range(N_ASSETS)),
        notional=st.integers(-60_000, 60_000),
        offset_bps=st.integers(-600, 600),
        part=st.floats(0.1, 1.0),
    )
    def fill(self, m, t, market, notional, offset_bps, part):
        maker, taker = self._acct(m), self._acct(t)
        price = self._price(market)
        if maker == taker or notional == 0 or price == 0:
            return
        fill_price = price * (BPS + offset_bps) // BPS // FEED_UNIT * FEED_UNIT
        size = notional * WAD * WAD // price
        if size == 0 or fill_price == 0:
            return
        self.nonce += 1
        maker_who = self.k.owners[maker]
        order, sig = self.s.sign_order(
            maker_who,
            owner=maker_who,
            subaccount=maker & (2**96 - 1),
            market=market,
            size=size,
            price=fill_price,
            nonce=self.nonce,
            expiry=2**40,
        )
        self.orders.append((order, sig, maker))
        self._fill(order, sig, maker, taker, max(int(abs(size) * part), 1))

    @precondition(lambda self: self.orders)
    @rule(k=st.integers(0, 10**6), t=accounts, part=st.floats(0.05, 1.0))
    def fill_again(self, k, t, part):
        """Fill (part of) an earlier order: partial fills, overfills, cancelled nonces."""
        order, sig, maker = self.orders[k % len(self.orders)]
        taker = self._acct(t)
        if taker == maker:
            return
        self._fill(order, sig, maker, taker, max(int(abs(order[3]) * part), 1))

    def _fill(self, order, sig, maker: int, taker: int, amount: int) -> None:
        self._refresh()  # the strict valuation before the fill, of the book as it is
        before = self._state(maker, taker)
        strict_before, _ = self._strict((maker, taker), self.book[maker], self.book[taker])
        try:
            self.s.book.fill(order, sig, amount, taker, sender=self.k.owners[taker])
        except self.chain.Error as err:
            self._refused(before, revert_reason(err), USER_ERRORS)
            return
        rows = self.s.engine.healths([maker, taker])
        snaps = (self._snapshot(maker), self._snapshot(taker))
        # The fill accrued its market at the oracle, sampled its premium weighted by its
        # size, and settled both sides' funding before their positions moved.
        market, oracle = order[2], self.reported[order[2]]
        moved = snaps[0].size[market] - self.book[maker].size[market]
        self._touch(
            market,
            oracle,
            {maker: self.book[maker].size[market], taker: self.book[taker].size[market]},
            premium_of(order[4], oracle),
            abs(moved),
        )
        strict_after, oks = self._strict((maker, taker), *snaps)
        for n in range(2):
            e0, mm0 = int(strict_before.equity[n]), int(strict_before.mm[n])
            equity, mm = int(strict_after.equity[n]), int(strict_after.mm[n])
            im = int(strict_after.im[n])
            meets_im = oks[n] and equity >= im
            reduces = mm < mm0 and equity - mm >= e0 - mm0 and equity >= min(e0 - 1, 0)
            assert meets_im or reduces, (n, rows, equity, mm, im, e0, mm0)
            STATS["fill side at IM" if meets_im else "fill side risk-reducing"] += 1
        self.dirty |= {maker, taker}

    @precondition(lambda self: self.orders)
    @rule(k=st.integers(0, 10**6))
    def cancel(self, k):
        order, _, maker = self.orders[k % len(self.orders)]
        book, nonce = self.s.book, order[5]
        if book.filled(maker, nonce) == 2**256 - 1:
            try:
                book.cancel(maker, nonce, sender=self.k.owners[maker])
            except self.chain.Error as err:
                assert "trading: nonce cancelled" in str(err)
                return
            raise AssertionError("a nonce was cancelled twice")
        book.cancel(maker, nonce, sender=self.k.owners[maker])
        assert book.filled(maker, nonce) == 2**256 - 1

    # -- oracles and time

    @rule(asset=st.sampled_from(range(N_ASSETS)), bps=st.integers(-2_000, 2_000))
    def move_price(self, asset, bps):
        price = self._price(asset) or int(devnet.MARKETS[asset].price_usd * WAD)
        answer = max(price * (BPS + bps) // BPS // FEED_UNIT, 1)
        self.k.feeds[asset].set_price(answer)
        self.prices_dirty = True

    @rule(asset=st.sampled_from(range(N_ASSETS)), keep_bps=st.integers(500, 7_000))
    def crash(self, asset, keep_bps):
        price = self._price(asset) or int(devnet.MARKETS[asset].price_usd * WAD)
        self.k.feeds[asset].set_price(max(price * keep_bps // BPS // FEED_UNIT, 1))
        self.prices_dirty = True

    @rule(times=st.integers(2, 10))
    def pump_thin_asset(self, times):
        """Mango: pump LINK (the thinnest market) then try to take value out against it."""
        price = self._price(LINK) or 15 * WAD
        self.k.feeds[LINK].set_price(price * times // FEED_UNIT)
        self.prices_dirty = True

    @rule(asset=st.sampled_from(range(N_ASSETS)), age=st.integers(1, 3 * HEARTBEAT))
    def stale_round(self, asset, age):
        now = self.chain.timestamp
        feed = self.k.feeds[asset]
        rid = feed.round_id() + 1
        answer = feed.answer()
        feed.set_round(answer, max(now - HEARTBEAT - age, 1), rid, rid)
        self.prices_dirty = True

    @rule(asset=st.sampled_from(range(N_ASSETS)))
    def fresh_round(self, asset):
        feed = self.k.feeds[asset]
        feed.set_price(max(feed.answer(), 1))
        self.prices_dirty = True

    @rule(
        asset=st.sampled_from(range(N_ASSETS)),
        kind=st.sampled_from(("zero", "reverting", "gas_eating", "malformed", "recover")),
    )
    def feed_outage(self, asset, kind):
        """A feed answers zero, reverts, eats its gas or answers garbage; or recovers."""
        feed = self.k.feeds[asset]
        if kind == "recover":
            feed.set_mode(0)
            feed.set_price(max(feed.answer(), 0) or int(devnet.MARKETS[asset].price_usd * 10**8))
        elif kind == "zero":
            feed.set_mode(0)
            feed.set_price(0)
        else:
            feed.set_mode({"reverting": 1, "gas_eating": 3, "malformed": 4}[kind])
        STATS[f"feed {kind}"] += 1
        self.prices_dirty = True

    @rule(asset=st.sampled_from(range(N_ASSETS)), life=st.integers(0, 3_600))
    def fallback_price(self, asset, life):
        """The guardian's short-lived price for liquidations while a feed is out."""
        price = self._price(asset) or int(devnet.MARKETS[asset].price_usd * WAD)
        if life and price > MAX_PRICE:  # a feed pumped past what the engine represents
            before = self._governed(), self.s.funding.fallback_price(asset)
            try:
                self.s.admin.set_fallback_price(asset, price, life)
            except self.chain.Error as err:
                assert "ledger: bad fallback price" in revert_reason(err)
                assert (self._governed(), self.s.funding.fallback_price(asset)) == before
                STATS["refused: ledger: bad fallback price"] += 1
                return
            raise AssertionError("a fallback price above MAX_PRICE was accepted")
        self.s.admin.set_fallback_price(asset, price, life)
        self.prices_dirty = True

    @rule(bps=st.integers(-2_000, 300))
    def depeg_quote(self, bps):
        """The quote asset's feed reports `bps` off par (a depeg, or back at or above par):
        every account with positive cash owes `cash * (1 - q)` more IM (nothing above par),
        and the twin follows; liquidations never read it."""
        self.k.quote_feed.set_price(max(10**8 * (BPS + bps) // BPS, 1))
        STATS["quote " + ("below par" if bps < 0 else "at or above par")] += 1
        self.prices_dirty = True

    # -- vault shares

    @rule(
        kind=st.sampled_from(("donation", "slashing", "revert", "zero", "gas_eating", "recover")),
        permille=st.integers(1, 250),
    )
    def vault_moves(self, kind, permille):
        """The vault's rate moves: a donation of `permille` of its assets lifts it (below
        the cap as it is, up to VAULT_JUMP_BPS above it cut to the cap, beyond that an
        outage); a slashing lowers it, used as it is; or the vault reverts, answers zero or
        eats the read's gas (the shares count at zero for liquidations), or recovers. The
        share price must be the twin's (`_refresh`)."""
        vault = self.k.tokens[VAULT]
        if kind in ("donation", "slashing"):
            amount = vault.totalAssets() * permille // 1_000
            if kind == "donation":  # a plain transfer of the underlying into the vault
                self.k.underlying.mint(vault.address, amount)
            else:
                vault.slash(amount, self.s.owner)
        else:
            self.vault_mode = {"recover": 0, "revert": 1, "zero": 2, "gas_eating": 3}[kind]
            vault.set_mode(self.vault_mode)
        now = self.chain.timestamp
        rate = self.vault_cap.normalise(self._vault_assets())
        priced = self.vault_cap.rate(self._vault_assets(), now)
        band = (
            "none" if not rate
            else "an outage past the jump" if not priced
            else "cut to the cap" if priced < rate
            else "below the cap"
        )  # fmt: skip
        STATS[f"vault {kind}: rate {band}"] += 1
        self.prices_dirty = True

    @rule(
        when=st.integers(-1, 60),
        bps=st.integers(-3_000, 300),
        growth=st.integers(0, MAX_RATE_GROWTH_BPS + 1_000),
    )
    def vault_snapshot(self, when, bps, growth):
        """The risk signers move the vault's rate-cap snapshot (`RateSnapshots`): taken
        `when` sixtieths of the way from the current snapshot to now (-1: a day before the
        current one), a ratio `bps` off the cap in force then, with a new yearly growth. The
        engine installs it exactly when the twin (`RateCap.rebased`) does, and refuses it
        with the twin's reason otherwise, moving nothing."""
        now, cap = self.chain.timestamp, self.vault_cap
        at = cap.snapshot_time + (now - cap.snapshot_time) * when // 60 if when >= 0 else 0
        at = at or cap.snapshot_time - DAY
        ratio = max(cap.cap(at) * (BPS + bps) // BPS, 1)
        try:
            expected, why = cap.rebased(ratio, at, growth, now), None
        except ValueError as err:
            expected, why = None, str(err)
        message = snapshot_message(self.k.snapshots, VAULT, ratio, at, growth, now + 600)
        word = self.s.funding.vault_word(VAULT)
        try:
            self.k.snapshots.submit(
                snapshot_args(message), self.signer.sign(message), sender=self.k.relayer
            )
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert reason == why, (reason, why)
            assert self.s.funding.vault_word(VAULT) == word
            STATS[f"refused: {reason}"] += 1
            return
        assert expected is not None, f"a snapshot the twin refuses was installed ({why})"
        self.vault_cap = expected
        assert RateCap.from_word(self.s.funding.vault_word(VAULT)) == expected
        STATS["vault snapshot installed"] += 1
        self.prices_dirty = True

    # -- options
    #
    # Option trades go through the order book as perps do, the order naming the instrument;
    # the model predicts every refusal's reason (the order book's, the option book's, each
    # side's margin rule on the twin's strict valuation, the debt cap) and that nothing
    # moves on one, and on success the premium, the legs and the open interest.

    def _key_name(self, who: str) -> str:
        """The name `BoaStack.keys` holds `who`'s key under."""
        return next(name for name, key in self.s.keys.items() if key.address == who)

    def _premium(self, id: int, offset_bps: int) -> int:
        """The twin's Black-76 value of one unit of `id` at the feed's price and the model's
        vol (its intrinsic value once expired, or outside the pricing domain),
        `offset_bps` off."""
        u, expiry, strike, is_call = instrument(id)
        f, now = self._price(u), self.chain.timestamp
        fair = intrinsic(is_call, strike, f)
        if expiry > now:
            vol = self._vol(u, expiry, strike)[0] or ATM_VOL[u]
            try:
                fair = price_exact(f, strike, vol, expiry - now, is_call, False)
            except ValueError:  # outside Black-76's domain
                pass
        return max(fair * (BPS + offset_bps) // BPS, 0)

    @staticmethod
    def _with_leg(legs: tuple[tuple[int, int], ...], id: int, d: int):
        """`legs` with `d` added to the leg of `id` (opened, grown, cut or closed)."""
        held = dict(legs)
        held[id] = held.get(id, 0) + d
        return tuple(sorted((i, s) for i, s in held.items() if s))

    def _trade_option(self, order, sig, maker: int, taker: int, amount: int) -> None:
        """The taker fills `amount` of the maker's signed option order: refused exactly when
        and why `_option_refusal` says, nothing moving; else the premium, the legs and the
        open interest move as the model says."""
        self._refresh()  # the twin's valuation before the trade, of the book as it is
        id, premium = order[2], order[4]
        maker_size = amount if order[3] > 0 else -amount
        overfill = self.s.book.filled(maker, order[5]) + amount > abs(order[3])
        expected = self._option_refusal(maker, taker, id, maker_size, premium, overfill)
        u, expiry, _, is_call = instrument(id)

        def state(*accounts: int) -> tuple:
            return self._option_state(*accounts, pairs=((u, expiry),))

        before = state(maker, taker)
        try:
            self.s.book.fill(order, sig, amount, taker, sender=self.k.owners[taker])
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert reason == expected, f"option trade refused ({reason}), expected: {expected}"
            self._refused(before, reason, (reason,), state)
            STATS[f"option trade refused: {reason}"] += 1
            return
        assert expected is None, f"an option trade went through, expected: {expected}"
        # The premium moved between the sides, zero-sum; the legs by the size; open
        # interest by the change in the two sides' long legs.
        quote = abs(maker_size) * premium // WAD
        flow = -quote if maker_size > 0 else quote
        grew = 0
        for acct, d, paid in ((maker, maker_size, flow), (taker, -maker_size, -flow)):
            old, new = self.book[acct], self._snapshot(acct)
            assert (new.cash, new.legs) == (old.cash + paid, self._with_leg(old.legs, id, d))
            assert (new.coll, new.size, new.on) == (old.coll, old.size, old.on)
            held = dict(old.legs).get(id, 0)
            grew += max(held + d, 0) - max(held, 0)
        assert self.k.options.book.open_interest(u, expiry) == before[3][0][0] + grew
        kind = "call" if is_call else "put"
        STATS[f"option trade: {kind}, maker {'buys' if maker_size > 0 else 'sells'}"] += 1
        self.dirty |= {maker, taker}

    def _option_refusal(
        self, maker: int, taker: int, id: int, maker_size: int, premium: int, overfill: bool
    ) -> str | None:
        """Why the engine must refuse the option trade, in the order it checks (None: it
        must go through): the order book's fill, `OptionBook.check_trade` (live, premium
        within the option's bound, a free leg slot, open interest under its cap), then each
        side's `settlement._check_fill` on the twin's strict valuation (IM with every price
        and vol valid, else risk-reducing), then the debt cap."""
        if overfill:
            return "trading: overfill"
        u, expiry, strike, is_call = instrument(id)
        if expiry <= self.chain.timestamp:
            return "options: expired"
        if abs(maker_size) > MAX_OPTION_SIZE:
            return "options: size too large"
        if premium > (2 * self.reported[u] if is_call else strike):
            return "options: premium out of range"
        accts = (maker, taker)
        olds = [self.book[a] for a in accts]
        held = [dict(x.legs).get(id, 0) for x in olds]
        deltas = (maker_size, -maker_size)
        for h, x, d in zip(held, olds, deltas, strict=True):
            if h == 0 and len(x.legs) >= MAX_OPTION_LEGS:
                return "options: too many legs"
            if abs(h + d) > MAX_OPTION_SIZE:
                return "options: size too large"
        grow = sum(max(h + d, 0) - max(h, 0) for h, d in zip(held, deltas, strict=True))
        oi = self.k.options.book.open_interest(u, expiry)
        if grow > 0 and oi + grow > OPTION_OI_CAP[u]:
            return "options: open interest cap"
        quote = abs(maker_size) * premium // WAD
        flows = (-quote, quote) if maker_size > 0 else (quote, -quote)
        news = [
            replace(x, cash=x.cash + f, legs=self._with_leg(x.legs, id, d))
            for x, d, f in zip(olds, deltas, flows, strict=True)
        ]
        after, oks = self._strict(accts, *news)
        counted = exempt = 0
        for n in range(2):
            e1, mm1, im1 = int(after.equity[n]), int(after.mm[n]), int(after.im[n])
            meets_im = oks[n] and e1 >= im1
            cash, new = olds[n].cash, news[n].cash
            borrows = min(cash, 0) - new if new < 0 and new < cash else 0
            if meets_im and borrows == 0:
                STATS["option trade side at IM"] += 1
                continue
            # (the valuation before, as the engine reads it: only for the risk-reducing rule)
            before, _ = self._strict(accts[n : n + 1], olds[n])
            e0, mm0 = int(before.equity[0]), int(before.mm[0])
            if mm1 < mm0 and e1 - mm1 >= e0 - mm0 and e1 >= min(e0 - 1, 0):
                STATS["option trade side risk-reducing"] += 1
                part = min(borrows, max(e0 - e1 - 1, 0))
            elif not meets_im:
                return "margin: below initial margin" if oks[n] else "oracle: invalid price"
            else:
                part = borrows
            counted, exempt = counted + part, exempt + borrows - part
        if counted:
            debt = self.s.funding.debt() + sum(max(-x.cash, 0) for x in news)
            debt -= sum(max(-x.cash, 0) for x in olds)
            if debt - exempt > self.s.funding.debt_cap():
                return "settlement: debt cap"
        return None

    # The vol feed: signed curves (VOL_THRESHOLD of the signers), published by the model's
    # rules only, so the twin's vols are the model's curves (`_vol`).

    def _publish_vol(
        self, u: int, expiry: int, curve: tuple, observed_at: int, keys: list
    ) -> str | None:
        """The signers `keys` sign the curve (atm vol, skew, curvature, forward) of
        (`u`, `expiry`) observed at `observed_at`, and a relayer submits it. The feed takes it
        exactly when the keeper's checks of its rules (`VolCurve.check`) and the threshold
        pass; otherwise it refuses with their reason and nothing moves. Returns the reason
        (None: published, and the model's curve follows)."""
        opt = self.k.options
        now, last = self.chain.timestamp, self.curves[(u, expiry)][4]
        try:
            VolCurve(u, expiry, *curve).check(now, VOL_HEARTBEAT, observed_at, last)
            expected = None if len(keys) >= VOL_THRESHOLD else "volfeed: below threshold"
        except ValueError as err:
            expected = str(err)
        nonce = opt.feed.next_nonce()
        update = (u, expiry, *curve, observed_at, nonce, 2**40)
        # Signed over the feed's own digest: a few milliseconds a step less than encoding
        # the typed data in Python (`_list_options` publishes through the keeper's
        # encoding, which the feed accepts: the two agree).
        sigs = sign_digest(keys, opt.feed.update_digest(update))
        before = tuple(opt.feed.curve(u, expiry)), nonce
        try:
            opt.feed.submit(update, sigs, sender=self.k.relayer)
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert reason == expected, (reason, expected)
            assert (tuple(opt.feed.curve(u, expiry)), opt.feed.next_nonce()) == before
            STATS[f"refused: {reason}"] += 1
            return reason
        assert expected is None, f"the vol feed took a curve its rules refuse ({expected})"
        self.curves[(u, expiry)] = (*curve, observed_at)
        assert tuple(opt.feed.curve(u, expiry)) == self.curves[(u, expiry)]
        self.prices_dirty = True  # every leg of the expiry is valued afresh
        return None

    def _tick(self) -> None:
        """A block later: the next curve is newer than one published at this second."""
        self.chain.time_travel(1)
        self.prices_dirty = True

    def _fresh_vol(self, u: int, expiry: int) -> None:
        """The expiry's curve published again as it is, observed now (when still live and
        not observed this very second)."""
        now = self.chain.timestamp
        if expiry <= now or self.curves[(u, expiry)][4] >= now:
            return
        curve = self.curves[(u, expiry)][:4]
        assert self._publish_vol(u, expiry, curve, now, self.k.options.keys[:VOL_THRESHOLD]) is None

    def _squeeze(self, u: int, bps: int) -> None:
        """The underlying of a trader's live short option (on `u` when there is one) moves
        against it: up `bps` under a short call, down to BPS / (BPS + bps) of itself under a
        short put (the road to liquidating option books). The feed answers afresh."""
        self._refresh()
        now = self.chain.timestamp
        shorts = [
            id
            for a in self.k.accounts[1:-1]
            for id, s in self.book[a].legs
            if s < 0 and instrument(id)[1] > now
        ]
        shorts = [id for id in shorts if instrument(id)[0] == u] or shorts
        if not shorts:
            STATS["writer squeeze: no short option"] += 1
            return
        u, _, _, is_call = instrument(shorts[bps % len(shorts)])
        price = self._price(u) or int(devnet.MARKETS[u].price_usd * WAD)
        moved = price * (BPS + bps) // BPS if is_call else price * BPS // (BPS + bps)
        self.k.feeds[u].set_price(max(moved // FEED_UNIT, 1))
        STATS["writer squeeze"] += 1
        self.prices_dirty = True

    # Expiry: the clock passes an expiry, the settlement price is recorded (through
    # `_record_settlement` only) and anyone settles an account's expired legs into cash.

    def _pass_expiry(self, extra: int, keepers: bool) -> None:
        """The clock passes the next expiry by `extra` seconds. `keepers`: the feeds answer
        afresh, the settlement prices of every passed expiry are recorded, every account's
        expired legs settled and the live expiries' curves published again; else everything
        is as stale as the jump left it (the price feeds' heartbeat is a day, the first
        expiry a day and a half away)."""
        now = self.chain.timestamp
        live = [x for x in self.k.options.expiries if x > now]
        if not live:
            STATS["expiry: none left"] += 1
            return
        self.chain.time_travel(live[0] - now + extra)
        self.prices_dirty = True
        STATS["expiry passed" + (" (keepers on time)" if keepers else "")] += 1
        if not keepers:
            return
        for feed in (*self.k.feeds.values(), self.k.quote_feed):
            feed.set_price(feed.answer())
        for u in OPTION_UNDERLYINGS:
            for expiry in self.k.options.expiries:
                if expiry <= self.chain.timestamp and (u, expiry) not in self.settled:
                    self._record_settlement(u, expiry)
                self._fresh_vol(u, expiry)
        self._refresh()
        for acct in self.k.accounts[1:]:
            if self._due_legs(self.book[acct]):
                self._settle_account(acct)

    def _due_legs(self, snap: Snapshot) -> list[tuple[int, int]]:
        """`snap`'s expired legs whose settlement price is recorded: what
        `settle_expired` settles."""
        now, out = self.chain.timestamp, []
        for leg in snap.legs:
            u, expiry = instrument(leg[0])[:2]
            if expiry <= now and (u, expiry) in self.settled:
                out.append(leg)
        return out

    def _record_settlement(self, underlying: int, expiry: int, nudge: int = 0) -> bool:
        """The one place the model records a settlement price (`OptionBook.record_settlement`):
        the model's expected price or refusal, the call, and the checks. Once, at or after the
        expiry: refused before it ("options: not expired") or a second time, moving nothing.
        The price, by the book's signature:

        * `record_settlement(underlying, expiry)`: the underlying's valid oracle price now
          (else "oracle: invalid price");
        * `record_settlement(underlying, expiry, round_id)`: the round a keeper names, the
          feed's first valid round at or after the expiry (`_settlement_round`; `nudge`
          rounds off it: a caller naming a later or an earlier one), else its latest; the
          outcome predicted from the feed's history as written (`_settlement_outcome`).

        Returns whether it was recorded."""
        self._refresh()
        book, now = self.k.options.book, self.chain.timestamp
        args: tuple[int, ...] = (underlying, expiry)
        first = None
        if _arity(book.record_settlement) == 2:
            price, ok = self.reported[underlying], self.prices[underlying][1]
            expected = None if ok else "oracle: invalid price"
        else:
            history = self._feed_history(underlying)
            first = self._settlement_round(underlying, expiry, history)
            named = (
                max(first + nudge, 0) if first is not None else self.k.feeds[underlying].round_id()
            )
            args += (named,)
            # The engine reads a past round as the model does (`oracle._read_round`).
            read = tuple(self.s.funding.round_price(underlying, named))
            assert read == self._round_price(underlying, history, named), (named, read)
            expected, price = self._settlement_outcome(underlying, history, expiry, named)
            if first is not None and named == first and expected is not None:
                # The first valid round is accepted but for a price the engine cannot
                # represent (a feed pumped past MAX_PRICE).
                assert expected == "options: bad round", (expected, named)
                assert history[named][0] * FEED_UNIT > MAX_PRICE, history[named]
        if expiry > now:
            expected = "options: not expired"
        elif (underlying, expiry) in self.settled:
            expected = "options: already recorded"
        pairs = ((underlying, expiry),)
        before = self._option_state(pairs=pairs)
        try:
            book.record_settlement(*args)
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert reason == expected, (reason, expected)
            assert self._option_state(pairs=pairs) == before
            STATS[f"refused: {reason}"] += 1
            return False
        assert expected is None, f"a settlement price was recorded, expected: {expected}"
        assert book.settlement_price(underlying, expiry) == price
        self.settled[(underlying, expiry)] = price
        # Expired legs are marked at the settlement price from now on, not the oracle's.
        self.prices_dirty = True
        STATS["settlement price recorded"] += 1
        if first is not None:
            STATS["settlement price recorded, from the feed's history"] += 1
            if args[2] != self.k.feeds[underlying].round_id():
                STATS["settlement price recorded, from a round before the latest"] += 1
        return True

    def _feed_history(self, underlying: int) -> dict[int, tuple[int, int, int]] | None:
        """Every round the underlying's feed (HostileAggregator) wrote, as written (its
        `rounds` storage, whatever its mode): round id -> (answer, updatedAt,
        answeredInRound), ids 1 to the latest; None while its reads fail (reverting,
        gas-eating or malformed: `getRoundData` too), when every round reads as none."""
        feed = self.k.feeds[underlying]
        if feed.mode() not in (FEED_LIVE, FEED_STUCK):
            return None
        history = {}
        for r in range(1, feed.round_id() + 1):
            answer, updated_at, answered, stored = feed.rounds(r)
            if stored:
                history[r] = (answer, updated_at, answered)
        return history

    @staticmethod
    def _round_price(underlying: int, history: dict | None, round_id: int) -> tuple[int, int]:
        """`round_price(underlying, round_id)` by the model (`oracle._read_round`): (0, 0)
        for a round the feed cannot answer, price 0 for an incomplete round or an answer
        out of the engine's range, else (price, updatedAt)."""
        if history is None or round_id not in history:
            return 0, 0
        answer, updated_at, answered = history[round_id]
        if answered < round_id or answer <= 0 or answer * FEED_UNIT > MAX_PRICE:
            return 0, updated_at
        return answer * FEED_UNIT, updated_at

    def _settlement_outcome(
        self, underlying: int, history: dict | None, expiry: int, round_id: int
    ) -> tuple[str | None, int]:
        """(refusal or None, price) of `record_settlement(underlying, expiry, round_id)` at or
        after the expiry, by the feed's history: the round must have a price, be updated at or
        after the expiry (and not in the future), and every round before it back to the first
        one updated before the expiry (SETTLE_LOOKBACK at most, or to round 1) must have
        none."""
        price, at = self._round_price(underlying, history, round_id)
        if price == 0:
            return "options: bad round", 0
        if not expiry <= at <= self.chain.timestamp:
            return "options: round not after expiry", 0
        r = round_id
        for _ in range(SETTLE_LOOKBACK):
            if r & (2**64 - 1) <= 1:
                break
            r -= 1
            q, t = self._round_price(underlying, history, r)
            if t == 0:
                return "options: round unreadable", 0
            if t < expiry:
                break
            if q != 0:
                return "options: not the first round", 0
        return None, price

    def _settlement_round(self, underlying: int, expiry: int, history: dict | None) -> int | None:
        """The round a keeper names to `record_settlement`: the feed's first valid round at or
        after the expiry, found as `offchain_risk.chain.settlement_round` finds it (walking
        back from the latest round through `getRoundData`, `RoundReader`), and checked against
        the model's own scan of the feed's history: after the last round updated before the
        expiry, the first with a positive answer and complete. None when there is no such
        round (yet), or the feed's reads fail."""
        if history is None:
            return None
        from offchain_risk.chain import settlement_round

        try:
            picked = settlement_round(RoundReader(self.k.feeds[underlying]), expiry)
        except ValueError:
            picked = None
        latest = self.k.feeds[underlying].round_id()
        first = None
        if history[latest][1] >= expiry:
            before = [r for r, (_, t, _) in history.items() if t < expiry]
            first = next(
                (
                    r
                    for r in range(max(before, default=0) + 1, latest + 1)
                    if history[r][0] > 0 and history[r][2] >= r
                ),
                None,
            )
        assert picked == first, (picked, first, history)
        return first

    def _settle_expired(self, i: int) -> None:
        """Anyone settles an account's expired legs whose settlement price is recorded
        (mostly an account holding some, one time in four any account, the desk included):
        each leg pays `floor(size * intrinsic)` into cash and is removed, open interest
        falls by the longs, and equity does not move (the legs were valued at exactly that).
        Refused, moving nothing, when there is nothing to settle (before the expiry, before
        the price is recorded, or a second time)."""
        self._refresh()
        now = self.chain.timestamp
        accounts = self.k.accounts[1:]
        holders = [
            a for a in accounts if any(instrument(x)[1] <= now for x, _ in self.book[a].legs)
        ]
        pool = holders if holders and i % 4 else accounts
        self._settle_account(pool[i % len(pool)])

    def _settle_account(self, acct: int) -> None:
        """`settle_expired(acct)`, its outcome predicted (`_settle_expired`)."""
        self._refresh()
        snap, equity = self.book[acct], self.margins[acct].equity
        legs = self._due_legs(snap)
        pairs = tuple(sorted({instrument(i)[:2] for i, _ in snap.legs}))

        def state(*accounts: int) -> tuple:
            return self._option_state(*accounts, pairs=pairs)

        before = state(acct)
        try:
            self.k.options.book.settle_expired(acct, sender=self.k.relayer)
        except self.chain.Error as err:
            self._refused(before, revert_reason(err), ("options: nothing to settle",), state)
            assert not legs, legs
            return
        assert legs, "expired legs settled without a recorded price"
        amount = dust = 0
        for id, s in legs:
            u, expiry, strike, is_call = instrument(id)
            exact = s * intrinsic(is_call, strike, self.settled[u, expiry])
            amount += exact // WAD  # rounded down, against the account
            dust += exact - exact // WAD * WAD
            self.settled_size[id] += s
        after = self._snapshot(acct)
        kept = tuple(x for x in snap.legs if x not in legs)
        assert (after.cash, after.legs) == (snap.cash + amount, kept), (after, snap, amount)
        assert self.s.engine.healths([acct])[0][0] == equity, "settling expired legs moved equity"
        self.option_paid += amount
        self.settle_dust += dust
        self.settled_legs += len(legs)
        STATS["expired legs settled" + (" (in the money)" if amount else "")] += 1
        STATS["option legs settled"] += len(legs)
        self.dirty.add(acct)

    # -- time (and what accrues with it)
    #
    # A rule that moves balances with the clock goes here: it moves the clock or the accrual,
    # marks every account whose balance it moves in `self.dirty` (or sets `prices_dirty` when
    # it moves margins only), and extends `_twin` / `_strict` with the twin's term; the
    # invariants, the sweep and the liquidation proof then follow it. Funding: the clock moves
    # equity (`_owed`, at the valuation's prices), a touch (`_touch`: a fill, a liquidation
    # slice, `settle_funding`) moves cash.

    @rule(seconds=st.integers(1, 8 * 3_600))
    def wait(self, seconds):
        self.chain.time_travel(seconds)
        self.prices_dirty = True

    @rule(
        market=st.sampled_from(range(N_ASSETS)),
        hours=st.integers(0, MAX_FUNDING_CONVERGENCE + 1),
        interest=st.integers(-MAX_FUNDING_CAP, MAX_FUNDING_CAP),
        cap=st.integers(0, MAX_FUNDING_CAP + MAX_FUNDING_CAP // 8),
    )
    def set_funding(self, market, hours, interest, cap):
        """The owner switches a market's funding on (a non-zero cap), changes it or stops it
        (a zero cap); parameters out of bounds are refused and move nothing."""
        f = self.s.funding
        before = f.funding_params(market), f.funding_word(market)
        try:
            f.set_funding_params(market, hours, interest, cap)
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert before == (f.funding_params(market), f.funding_word(market)), reason
            assert not (1 <= hours <= MAX_FUNDING_CONVERGENCE and cap <= MAX_FUNDING_CAP), reason
            STATS["refused: funding params"] += 1
            return
        assert 1 <= hours <= MAX_FUNDING_CONVERGENCE and cap <= MAX_FUNDING_CAP
        # New parameters apply from the next hourly rate: the rate in force stays.
        self.markets[market].params_word = FundingParams(hours, interest, cap).pack()
        self.funding_on = self.funding_on or cap != 0
        assert f.funding_params(market) == self.markets[market].params_word
        STATS["funding " + ("on" if cap else "off")] += 1

    @rule(
        seconds=st.integers(1, 3 * HOUR),
        i=st.sampled_from(range(len(TRADERS) + 2)),
        market=st.sampled_from(range(N_ASSETS)),
    )
    def accrue_and_settle(self, seconds, i, market):
        """Time passes with funding accruing at the rate in force (equity moves, cash not),
        then anyone settles one position's funding into its cash: the first touch of an
        hour sets the next rate from the fills' premiums. Equity does not move; without a
        valid price the settlement is refused and moves nothing."""
        self.chain.time_travel(seconds)
        self.prices_dirty = True
        self._refresh()
        # Mostly a position in the market (a flat account's settlement only moves its
        # snapshot), one time in four any account.
        holders = [a for a in self.k.accounts if self.book[a].size[market]]
        pool = holders if holders and i % 4 else self.k.accounts
        acct = pool[i % len(pool)]
        price, ok = self.reported[market], self.prices[market][1]
        before = self._state(acct)
        word = self.s.funding.funding_word(market)
        try:
            self.s.funding.settle_funding(acct, market, sender=self.k.relayer)
        except self.chain.Error as err:
            self._refused(before, revert_reason(err), ("oracle: invalid price",))
            assert self.s.funding.funding_word(market) == word
            assert not ok
            return
        assert ok
        self._touch(market, price, {acct: self.book[acct].size[market]})
        assert self.s.funding.funding_word(market) == self.markets[market].funding_word
        row = self.s.engine.healths([acct])[0]
        assert row[0] == self.margins[acct].equity, "settling funding moved equity"
        STATS["funding settled" + (" (a position)" if self.book[acct].size[market] else "")] += 1
        self.dirty.add(acct)

    @rule(i=accounts, depth=st.integers(1, 5_000))
    def push_insolvent(self, i, depth):
        """Move one market so that an account's equity is `depth` dollars below zero."""
        self._refresh()
        traders = [a for a in self.k.accounts[1:-1] if any(self.book[a].size)]
        if not traders:
            STATS["push insolvent: no position"] += 1
            return
        acct = traders[i % len(traders)]
        snap = self.book[acct]
        exposed = [a for a in range(N_ASSETS) if snap.size[a] != 0]
        if not exposed:
            STATS["push insolvent: no position"] += 1
            return
        a = exposed[0]
        m = self.margins[acct]
        # Equity is linear in the price of `a`: dE/dp = (coll * (1 - h) + size).
        slope = (snap.coll[a] * (BPS - int(self.params.haircut_bps[a])) + snap.size[a] * BPS) // BPS
        if slope == 0:
            return
        target = -depth * WAD
        price = self._price(a) + (target - m.equity) * WAD // slope
        if price <= FEED_UNIT or price > 10**12 * WAD:
            return
        self.k.feeds[a].set_price(price // FEED_UNIT)
        STATS["push insolvent"] += 1
        self.prices_dirty = True

    # -- liquidation

    @rule(i=accounts, fraction=st.integers(1, WAD))
    def liquidate(self, i, fraction):
        acct = self._acct(i)
        self._liquidate(acct, fraction)

    def _liquidate(self, acct: int, fraction: int) -> bool:
        # Re-read what an earlier liquidation of the same keeper pass moved: the fund that
        # covers this one's hole, and the account itself.
        self._refresh()
        m = self.margins[acct]
        before = self._state(acct, self.k.desk, INSURANCE)
        desk_who = self.k.owners[self.k.desk]
        if not m.liquidatable:
            try:
                self.s.liquidations.liquidate(
                    acct, self.k.desk, fraction, 2**255 - 1, sender=desk_who
                )
            except self.chain.Error as err:
                # (below zero with MM 0 and only unpriced collateral: the policy waits)
                allowed = (
                    "liquidations: account is healthy",
                    "liquidations: nothing to liquidate",
                    "oracle: invalid price",
                )
                self._refused(before, revert_reason(err), allowed)
                return False
            raise AssertionError("a healthy account was liquidated")
        snap = self.book[acct]
        want = self._preview(acct, snap, fraction)
        fund = self.book[INSURANCE].cash
        deficit = before[1]
        # The keeper's preview view equals the twin's, to the wei; the desk bounds what it
        # pays by exactly the preview's cost (no slack: the cost is exact, option legs
        # included, so a preview one wei short would refuse the liquidation).
        pv = self.s.liquidations.liquidation_preview(acct, fraction)
        assert self._preview_fields(pv) == self._preview_fields(want), (pv, want)
        try:
            self.s.liquidations.liquidate(acct, self.k.desk, fraction, pv.cost, sender=desk_who)
        except self.chain.Error as err:
            # Only the desk's own IM may refuse a due liquidation: below IM, or a perp or an
            # option leg of its own without a liquidation price (its IM cannot be valued); or
            # the desk has no free leg slot for an instrument of the account's.
            allowed = ("margin: below initial margin",)
            if self._desk_unpriced():
                allowed += ("oracle: invalid price",)
            if self._desk_full(acct):
                allowed += ("options: too many legs",)
            self._refused(before, revert_reason(err), allowed)
            return False
        (equity, mm, _, _, _, _), desk_row = self.s.engine.healths([acct, self.k.desk])
        assert (equity, mm) == (int(want.equity_after[0]), int(want.mm_after[0]))
        # Each market the slice moved accrued at the liquidation price and settled both
        # sides' funding before the slice.
        desk_before = self.book[self.k.desk]
        after = self._snapshot(acct) if self.funding_on else snap
        for a in range(N_ASSETS):
            if after.size[a] != snap.size[a]:
                sides = {acct: snap.size[a], self.k.desk: desk_before.size[a]}
                self._touch(a, self.prices[a][0], sides)
        # The liquidator took on risk: it meets IM with valid prices.
        assert desk_row[3] and desk_row[0] >= desk_row[2], desk_row
        # The waterfall, predicted: the fund takes the fee and pays the slice's share of a
        # hole and the bounty, netted; net income repays the deficit first, a net payment
        # comes from the fund while it lasts and the rest is deficit.
        f, fee = int(want.fraction[0]), int(want.fee[0])
        hole, bounty = int(want.hole[0]), int(want.bounty[0])
        if fee >= hole + bounty:
            repaid = min(fee - hole - bounty, deficit)
            self.expected_deficit -= repaid
        else:
            due = hole + bounty - fee
            covered = min(due, max(fund, 0))
            self.expected_deficit += due - covered
        # A solvent account's health ratio falls by at most the discount paid.
        if m.equity >= 0 and m.mm > 0:
            d = int(want.discount[0])
            if mm == 0:
                assert equity >= 0
            else:
                # E'/MM' >= E/MM - d  <=>  E' * MM * WAD >= (E * WAD - d * MM) * MM'
                assert equity * m.mm * WAD >= (m.equity * WAD - d * m.mm) * mm
        STATS["liquidation" + (" (full)" if f == WAD else "")] += 1
        if snap.legs:
            STATS["liquidation of option legs"] += 1
            if not all(ok for *_, ok in self._vols(snap)):
                STATS["liquidation of option legs, vols stale"] += 1
        if hole:
            STATS["bad debt"] += 1
        self.dirty |= {acct, self.k.desk, INSURANCE}
        return True

    def _desk_unpriced(self) -> bool:
        """The desk holds a perp, or an option leg, whose feed (the underlying's) has no
        price and no live fallback: its own IM check (liquidation valuation) refuses every
        slice until the price returns."""
        desk = self.book[self.k.desk]
        return any(desk.size[a] != 0 and self.prices[a][0] == 0 for a in range(N_ASSETS)) or any(
            self.prices[instrument(i)[0]][0] == 0 for i, _ in desk.legs
        )

    def _desk_full(self, acct: int) -> bool:
        """The desk's legs and `acct`'s span more instruments than an account may hold
        (MAX_OPTION_LEGS): `liquidate_legs` may find no free slot for one of them."""
        legs = {i for i, _ in self.book[self.k.desk].legs} | {i for i, _ in self.book[acct].legs}
        return len(legs) > MAX_OPTION_LEGS

    def _vols(self, snap: Snapshot) -> list[tuple[int, bool]]:
        """(vol, valid) of each of `snap`'s legs, as the feed answers."""
        return [self._vol(*instrument(i)[:3]) for i, _ in snap.legs]

    @staticmethod
    def _preview_fields(preview) -> tuple[int, ...]:
        """What a preview (the contract's struct, or the twin's one-account `Preview`) says a
        liquidation does: fraction, penalty split, bounty, hole, cost and the state after."""
        fields = ("fraction", "penalty", "fee", "bounty", "hole", "cost", "equity_after")
        out = [getattr(preview, f) for f in (*fields, "mm_after")]
        return tuple(int(x) if isinstance(x, int) else int(x[0]) for x in out)

    def _preview(self, acct: int, snap: Snapshot, fraction: int) -> Preview:
        """`Liquidations.liquidation_preview(acct, fraction)` by the twin. The plan values
        the account with its unsettled funding (as if settled: settling moves no equity).
        Without option legs: `models.liquidation.preview`; with them, the same plan over the
        valuation with the legs joined (`_option_preview`)."""
        prices = [p for p, _ in self.prices]
        due = int(self._owed([acct], [snap], prices)[0])
        if snap.legs:
            return self._option_preview(snap, due, prices, fraction)
        arrays = (
            np.array([snap.cash - due], dtype=object),
            np.array([snap.coll], dtype=object),
            np.array([snap.size], dtype=object),
            np.array([snap.on], dtype=object),
        )
        return preview(
            *arrays,
            np.array(prices, dtype=object),
            self.params,
            self.policy,
            requested=fraction,
            decimals=self.decimals,
        )

    def _option_preview(self, snap: Snapshot, due: int, prices: list[int], requested: int):
        """`models.liquidation.preview`'s plan for one account holding option legs (a
        liquidatable one: the caller checked), the account valued before and after the slice
        as `ledger._margin` values it under `Override.fraction`: the linear balances sliced
        (`slice_accounts`), each leg's moved part at what `liquidate_legs` pays for it
        (`option_margin_exact`'s `fraction`). Its `cost` is the preview's: what the
        liquidator pays for the slice's collateral, perps and option legs (the legs at the
        account's mark, as `liquidate_legs` pays them: `option_margin_exact`'s flow) less
        its reward."""
        p, now = self.policy, self.chain.timestamp
        legs = self._legs(snap, True)

        def margin(fraction: int) -> tuple[int, int, int]:
            """(equity, MM, flow) after a slice of `fraction`, before the penalty; the flow
            the cash the account receives for the slice, its option legs included."""
            cash, coll, size, on, flow = slice_accounts(
                [snap.cash - due],
                [snap.coll],
                [snap.size],
                [snap.on],
                prices,
                self.params.haircut_bps,
                [fraction],
                self.decimals,
            )
            value_num, floor_num, losses = margin_numerators(coll, size, prices, self.params)
            value, worst, _, legs_flow = option_margin_exact(
                legs,
                now,
                True,
                int(value_num[0]),
                int(floor_num[0]),
                [int(x) for x in losses[0]],
                True,
                fraction,
            )
            equity = int(cash[0]) - sum(int(x) for x in on[0]) + value // WAD_BPS
            return equity, max(-(-worst // WAD_BPS), 0), int(flow[0]) + legs_flow

        e, mm, _ = margin(0)
        unpriced = any(snap.coll[a] and prices[a] == 0 for a in range(ASSETS))

        def one(x):
            return np.array([x], dtype=object)

        planned = plan(one(e), one(mm), p, one(requested), np.array([False]), np.array([True]))
        f, allowed, discount, penalty, fee, bounty, reward = (int(x[0]) for x in planned)
        equity_after, mm_after, flow = margin(f)
        equity_after -= penalty
        hole = -e * f // WAD if e < 0 and not unpriced else 0
        if f == WAD and not unpriced and equity_after + hole < 0:
            hole = -equity_after
        return Preview(
            liquidatable=np.array([True]),
            fraction=one(f),
            allowed=one(allowed),
            discount=one(discount),
            penalty=one(penalty),
            reward=one(reward),
            fee=one(fee),
            bounty=one(bounty),
            hole=one(hole),
            cost=one(flow - reward),
            equity_before=one(e),
            mm_before=one(mm),
            equity_after=one(equity_after + hole),
            mm_after=one(mm_after),
        )

    def _recapitalise_desk(self, acct: int) -> int:
        """Deposit enough cash for the desk to meet IM after taking all of `acct`: its own
        IM shortfall plus twice the account's IM (a position adds at most its own worst
        scenario loss to a portfolio's) plus what the take costs; but no more than the cash
        token's deposit caps let it bring. Cash carries IM of its own (the quote's peg-loss
        term, `ledger._peg_margin`: `rate` per unit below par or at a standing peg rate), so
        a unit deposited meets `1 - rate` of the need. Returns the fraction (WAD) of `acct`
        the desk's capital then carries: all of it, or, past the caps, the share of the take
        left once the desk's own shortfall is met (0: none)."""
        desk = self.k.desk
        equity, _, im, _, _, _ = self.s.engine.healths([desk])[0]
        cost = self.s.liquidations.liquidation_preview(acct, WAD).cost
        shortfall = max(im - equity, 0)
        take = 2 * self.margins[acct].im + max(cost, 0)
        keep = WAD_BPS - self.quote.rate  # of each unit of cash, what meets IM (WAD * BPS)
        if keep <= 0:  # the quote at zero: no cash meets IM
            STATS["desk not recapitalised: the quote is worthless"] += 1
            return 0
        amount = -(-(shortfall + take) * WAD_BPS // keep) // CASH_SCALE + 1
        room = self._cash_room(desk)
        fraction = WAD
        if amount > room:
            amount = room
            brought = room * CASH_SCALE * keep // WAD_BPS
            fraction = WAD * max(brought - shortfall, 0) // max(take, 1)
            STATS["desk recapitalised up to the deposit caps"] += 1
        if amount:
            _fund(self.s, self.k.owners[desk], desk, self.s.cash, amount)
            self.dirty.add(desk)
        STATS["desk recapitalised"] += 1
        return min(fraction, WAD)

    # (The margins as last re-read: a keeper pass offered on a stale row re-reads and finds
    # nothing due; one not yet offered is after the next re-read.)
    @precondition(lambda self: any(self.margins[a].liquidatable for a in self.k.accounts[1:-1]))
    @rule()
    def keeper_pass(self):
        """Liquidate everything liquidatable; afterwards nothing is."""
        self._refresh()
        if self._desk_unpriced():
            # No cash fixes the desk's own dead perp; a clean liquidator can still take every
            # due account (the invariant `liquidatable_accounts_can_be_liquidated`).
            STATS["keeper pass, desk unpriced"] += 1
            return
        traders = self.k.accounts[1:-1]
        capped: set[int] = set()  # accounts larger than any capital the caps admit
        for _ in range(12):
            due = [a for a in traders if self.margins[a].liquidatable and a not in capped]
            if not due:
                break
            for acct in due:
                if self._desk_full(acct):
                    # The desk's leg slots may not take this book's instruments: another
                    # of the keeper's accounts would (`_rescue` shows a fresh one can).
                    STATS["keeper pass, desk's leg slots full"] += 1
                    capped.add(acct)
                    continue
                if not self._liquidate(acct, WAD):
                    # Refused for the desk's own IM (a desk short a pumped asset can be
                    # bankrupt itself): a keeper brings capital and tries again, taking the
                    # slice that capital carries when the deposit caps stop it short.
                    fraction = self._recapitalise_desk(acct)
                    if fraction < WAD:
                        capped.add(acct)
                    if fraction:
                        assert self._liquidate(acct, fraction), "the desk could not take a slice"
                row = self.s.engine.healths([acct])[0]
                self.margins[acct] = MarginRow.of(row)
        rows = self.s.engine.healths(traders)
        # (Below zero with MM 0 and only unpriced collateral left, the policy waits for a price:
        # `is_liquidatable`'s "something to do". A book past every deposit the caps admit is
        # left to `liquidatable_accounts_can_be_liquidated`, which shows a slice goes through.)
        left = [a for a, row in zip(traders, rows, strict=True) if MarginRow.of(row).liquidatable]
        assert set(left) <= capped, rows
        STATS["keeper pass"] += 1

    # -- signed risk updates

    def _governance_due(self) -> bool:
        return self.steps % GOV_EVERY == 0

    @precondition(_governance_due)
    @rule(
        assets=st.sets(st.sampled_from(range(N_ASSETS)), min_size=1, max_size=N_ASSETS),
        moves=st.lists(st.integers(-3_000, 3_000), min_size=SLOTS, max_size=SLOTS),
        im_bps=st.integers(-5_000, 5_000),
        discount_bps=st.integers(-500, 500),
    )
    def signed_update(self, assets, moves, im_bps, discount_bps):
        assets = np.array(sorted(assets))
        view = self.signer.view(assets)
        values = view.current.copy()
        values = values + np.array(moves, dtype=np.int64)[None, :]
        values[:, FLOOR:] = np.maximum(values[:, FLOOR:], 0)
        g = [int(x) for x in view.global_current]
        target = ParamSet.from_values(
            assets,
            values,
            [
                max(g[0] + g[0] * im_bps // BPS, WAD),
                max(g[1] + discount_bps * WAD // BPS // 10, 1),
                max(g[2] + discount_bps * WAD // BPS // 10, 1),
            ],
        )
        try:
            plan = self.signer.plan(target, view)
        except ValueError:
            return
        deadline = view.timestamp + 600
        message = self.signer.message(plan.signed, view.nonce, deadline)
        self.signer.submit(message, self.signer.sign(message))
        STATS["signed update"] += 1
        self.params_dirty = True
        self._refresh()
        np.testing.assert_array_equal(
            self.params.shocks_bps[assets], plan.applied[:, :MAX_SCENARIOS]
        )

    @precondition(_governance_due)
    @rule(
        kind=st.sampled_from(
            (
                "bad nonce",
                "expired",
                "one signature",
                "unsorted",
                "outsider",
                "signer relays",
                "floor above bound",
                "tampered",
            )
        ),
        asset=st.sampled_from(range(N_ASSETS)),
    )
    def invalid_update(self, kind, asset):
        assets = np.array([asset])
        view = self.signer.view(assets)
        signed = ParamSet.from_values(assets, view.current, [int(x) for x in view.global_current])
        nonce, deadline = view.nonce, view.timestamp + 600
        if kind == "bad nonce":
            nonce += 1
        if kind == "expired":
            deadline = view.timestamp - 1
        if kind == "floor above bound":
            values = view.current.copy()
            values[0, FLOOR] = view.bounds[0].floor_max + 1
            signed = ParamSet.from_values(assets, values, [int(x) for x in view.global_current])
        message = self.signer.message(signed, nonce, deadline)
        sigs = self.signer.sign(message)
        relayer = self.k.relayer
        expected = {
            "bad nonce": "governor: bad nonce",
            "expired": "governor: expired",
            "one signature": "governor: below threshold",
            "unsorted": "governor: signers not sorted",
            "outsider": "governor: not a signer",
            "signer relays": "governor: signer cannot relay",
            "floor above bound": "governor: floor out of bounds",
            "tampered": "governor: not a signer",
        }[kind]
        if kind == "one signature":
            sigs = sigs[:1]
        if kind == "unsorted":
            sigs = sigs[::-1]
        if kind == "outsider":
            outsider = LocalRiskSigner(
                self.chain,
                self.k.governor,
                None,
                None,
                [self.k.signers[0], Account.from_key(b"\x11" * 32)],
                relayer,
            )
            sigs = outsider.sign(message)
        if kind == "signer relays":
            relayer = self.k.signers[0].address
        if kind == "tampered":
            message = self.signer.message(signed, nonce, deadline)
            message.im_multiplier = message.im_multiplier + 1
        governed = self._governed()
        try:
            self.k.governor.submit(update_tuple(message), sigs, sender=relayer)
        except self.chain.Error as err:
            assert expected in str(err), (kind, str(err)[-300:])
            assert self._governed() == governed
            STATS["invalid update refused"] += 1
            return
        raise AssertionError(f"invalid update ({kind}) accepted")

    def _governed(self) -> tuple:
        e, g = self.s.engine, self.k.governor
        return (
            g.next_nonce(),
            e.im_multiplier(),
            self.s.liquidations.min_discount(),
            self.s.liquidations.max_discount(),
            tuple(e.shock_word(a, w) for a in range(N_ASSETS) for w in range(SHOCK_WORDS)),
            tuple(e.asset_word(a) for a in range(N_ASSETS)),
        )

    @precondition(_governance_due)
    @rule(asset=st.sampled_from(range(N_ASSETS)))
    def poke(self, asset):
        if self.k.governor.asset_view(asset)[7] == 0:  # ramp_end
            governed = self._governed()
            try:
                self.k.governor.poke(asset)
            except self.chain.Error as err:
                assert "governor: no ramp" in str(err)
                assert self._governed() == governed
                return
            raise AssertionError("poke without a ramp succeeded")
        self.k.governor.poke(asset)
        STATS["poke"] += 1
        self.params_dirty = True

    @precondition(_governance_due)
    @rule(
        asset=st.sampled_from(range(N_ASSETS)),
        direction=st.sampled_from((-1, 1)),
        bps=st.integers(1, 3_000),
        count=st.integers(2, 4),
        gap=st.integers(0, 900),
        planned=st.booleans(),
    )
    def chained_updates(self, asset, direction, bps, count, gap, planned):
        """Signed updates back to back, `gap` seconds apart (mostly inside one window), each
        pushing every value of `asset` and the globals the same way: as the signer plans
        them (the furthest step the governor accepts) or raw, as compromised signers would
        sign them. A raw update the governor refuses moves nothing; what goes through, over
        the whole chain, stays within the window's budget
        (`updates_stay_within_window_budget`)."""
        assets = np.array([asset])
        for _ in range(count):
            view = self.signer.view(assets)
            values = view.current.copy()
            values[:, :MAX_SCENARIOS] += direction * bps
            values[:, FLOOR:] = np.maximum(values[:, FLOOR:] + direction * (bps // 10), 0)
            g = [int(x) for x in view.global_current]
            g = [max(x + direction * x * bps // BPS // 10, 1) for x in g]
            g[2] = max(g[2], g[1])
            try:
                target = ParamSet.from_values(assets, values, g)
                signed = self.signer.plan(target, view).signed if planned else target
            except ValueError:  # no acceptable update, or out of any signable range
                STATS["chained update: nothing to sign"] += 1
                break
            message = self.signer.message(signed, view.nonce, view.timestamp + 600)
            governed = self._governed()
            try:
                self.signer.submit(message, self.signer.sign(message))
            except self.chain.Error as err:
                reason = revert_reason(err)
                assert not planned, f"a planned update was refused: {reason}"
                assert reason.startswith("governor: "), reason
                assert self._governed() == governed
                STATS["chained update refused"] += 1
                break
            STATS["chained update" + (" (planned)" if planned else " (raw)")] += 1
            self._read_params()  # every value held is seen by the budget invariant
            self.params_dirty = True
            if gap:
                self.chain.time_travel(gap)
                self.prices_dirty = True

    # ------------------------------------------------------------- invariants

    # Each invariant re-reads what the step changed first (`_refresh` is idempotent), so
    # they hold in any order hypothesis runs them; a failure names the property.

    @invariant()
    def twin_agrees_with_contract(self):
        """The numpy twin (`margin_exact`) and the contract agree to the wei on equity, MM
        and IM: on the accounts the step touched (all of them after a price, parameter or
        clock move), and on every account every SWEEP_EVERY steps, when accounts the model
        believes untouched are re-read and must not have moved."""
        self._refresh(sweep=self.steps % SWEEP_EVERY == 0)
        accounts = sorted(self.unchecked)
        self.unchecked = set()
        if accounts:
            twin, oks = self._twin(accounts)
            for n, acct in enumerate(accounts):
                row = self.margins[acct]
                assert (row.equity, row.mm, row.im, row.prices_ok) == (
                    int(twin.equity[n]),
                    int(twin.mm[n]),
                    int(twin.im[n]),
                    oks[n],
                ), (acct, row, twin.equity[n], twin.mm[n], twin.im[n], oks[n])
                if self.book[acct].legs:
                    STATS["twin agrees with options"] += 1
        STATES.add(self.signature())

    @invariant()
    def funding_is_conserved(self):
        """What funding settlements took from payers' cash covers what they credited to
        receivers, the difference the rounding dust, always to the protocol: the exact
        amounts `size * (index - snapshot)` of all settlements sum to `sum(size * snapshot)`
        over the open positions (sizes net to zero in every market, and both sides of a
        trade settle to one index), each settlement pays the ceiling of its amount, so the
        net taken is that sum plus under 1 wei a settlement, which stays in the engine as
        tokens no cash balance claims (`cash_is_conserved`). Twin-side: the model's snapshots
        are those `twin_agrees_with_contract` checks the equity of to the wei."""
        self._refresh()
        if not self._due("funding"):
            return
        net = sum(
            self.book[a].size[m] * self.snaps.get((a, m), 0)
            for a in self.k.accounts
            for m in range(N_ASSETS)
        )
        assert self.funding_paid * WAD - net == self.funding_dust
        assert 0 <= self.funding_dust < max(self.settlements, 1) * WAD, self.funding_dust

    @invariant()
    def deficit_is_the_uncovered_holes(self):
        """The deficit equals the holes the insurance fund did not cover, less what fees,
        top-ups and withdrawal haircuts paid back."""
        # Equal, not `>=`, with funding: its rounding dust never reaches the deficit. Only a
        # liquidation's waterfall moves the deficit, from a hole valued with the unsettled
        # funding (the twin's preview, to the wei), and settling moves no equity; the dust
        # stays in the engine as tokens no balance claims, in `cash_is_conserved`.
        self._refresh()
        if self._due("deficit"):
            assert self.s.engine.deficit() == self.expected_deficit

    @invariant()
    def cash_is_conserved(self):
        """`balanceOf(engine) * 10**12 + deficit == sum(cash - open notional) + funding
        paid - option settlements paid` over every account (the insurance fund included):
        what funding settlements took from cash net of what they credited
        (`funding_is_conserved`) is held by the engine and claimed by no balance; what
        settling expired option legs credited net (`option_settlement_is_conserved`: at most
        zero once every leg of an expiry is settled) is claimed by balances and not (yet)
        paid by the other side; option premiums and the legs' price in a liquidation move
        between balances, zero-sum. And the engine's recorded total is what it holds."""
        self._refresh()
        if not self._due("cash"):
            return
        e = self.s.engine
        claims = sum(self.book[a].cash - sum(self.book[a].on) for a in self.k.accounts)
        held = self.s.cash.balanceOf(e.address)
        deficit = e.deficit()
        paid = self.funding_paid - self.option_paid
        assert held * CASH_SCALE + deficit == claims + paid, (held, deficit, claims, paid)
        assert e.token_word(self.s.cash.address) >> 128 == held * CASH_SCALE

    @invariant()
    def option_settlement_is_conserved(self):
        """Expired legs settle against each other: per recorded expiry a leg of size s pays
        `floor(s * intrinsic / WAD)` into cash, so what settlements credited (net) plus
        what the legs still held will pay is the exact `sum(s * intrinsic)` over every leg
        (zero: each instrument's sizes net to zero, `positions_net_to_zero`) less the
        rounding dust, under 1 wei a leg settled, always the protocol's."""
        self._refresh()
        if not self._due("settlement"):
            return
        pending = 0
        for a in self.k.accounts:
            for i, s in self.book[a].legs:
                u, expiry, strike, is_call = instrument(i)
                if (u, expiry) in self.settled:
                    pending += s * intrinsic(is_call, strike, self.settled[u, expiry])
        assert self.option_paid * WAD + pending == -self.settle_dust, (self.option_paid, pending)
        assert 0 <= self.settle_dust < max(self.settled_legs, 1) * WAD, self.settle_dust

    @invariant()
    def collateral_is_conserved(self):
        """Per collateral token: what the engine holds is the sum of the balances it
        credits, and its recorded total."""
        self._refresh()
        if not self._due("collateral"):
            return
        e = self.s.engine
        for a, scale in ((ETH, 1), (BTC, 10**10), (VAULT, 1)):
            token = self.k.tokens[a]
            held = token.balanceOf(e.address)
            assert held * scale == sum(self.book[x].coll[a] for x in self.k.accounts), a
            assert e.token_word(token.address) >> 128 == held * scale, a
        # A token no deposit may credit (hostile runs): held by nobody, none in the engine
        # (`_snapshot` shows no account holds its asset).
        for kind, (token, _) in self.k.refused.items():
            assert token.balanceOf(e.address) == 0 == e.token_word(token.address) >> 128, kind

    @invariant()
    def positions_net_to_zero(self):
        """Per market: sizes sum to zero and open interest is the sum of the longs."""
        self._refresh()
        if not self._due("positions"):
            return
        for a in range(N_ASSETS):
            sizes = [self.book[x].size[a] for x in self.k.accounts]
            assert sum(sizes) == 0, a
            assert self.s.engine.open_interest(a) == sum(s for s in sizes if s > 0), a
        # Options: each instrument's legs net to zero with what was settled of it; the book's
        # open interest per underlying and expiry is the sum of the long legs.
        held: Counter = Counter(self.settled_size)
        longs: Counter = Counter()
        for x in self.k.accounts:
            for i, s in self.book[x].legs:
                held[i] += s
                longs[instrument(i)[:2]] += max(s, 0)
        assert not +held and not -held, held
        opt = self.k.options
        for u in OPTION_UNDERLYINGS:
            for expiry in opt.expiries:
                assert opt.book.open_interest(u, expiry) == longs[u, expiry], (u, expiry)

    @invariant()
    def parameters_within_bounds(self):
        """Every signed parameter within the governor's bounds."""
        self._refresh()
        if self._due("bounds"):
            self._check_bounds()

    @invariant()
    def liquidatable_accounts_can_be_liquidated(self):
        """The one property: every account whose liquidation the written policy allows can
        be liquidated, whatever it holds (dust of a dead-feed asset, a reverting feed), by a
        well-funded liquidator. Each account is tried by a fresh liquidator in an anchor of
        its own, so the model's state does not move (`_rescue`)."""
        self._refresh()
        due = [a for a in self.k.accounts[1:-1] if self.margins[a].liquidatable]
        if not due or self.proven == self.version:  # proven on this very state already
            return
        self.proven = self.version
        for acct in due:
            with self.chain.anchor():
                self._rescue(acct)
            if self.book[acct].legs:
                STATS["liquidatable, proven, with option legs"] += 1
                if not all(ok for _, ok in self._vols(self.book[acct])):
                    STATS["liquidatable, proven, with option legs and stale vols"] += 1
        STATS["liquidatable, proven"] += len(due)

    def _rescue(self, acct: int) -> None:
        """A liquidator with nothing but cash takes all of `acct`: funded with RESCUE_BASE
        and twice the account's IM plus what the take costs (as `_recapitalise_desk`), so a
        pumped price cannot outgrow a fixed deposit; but no more than the cash token's
        deposit caps let it bring. When the caps are short of that (prices pumped until one
        book's IM outgrows every deposit the engine accepts), it asks for the fraction of
        the account its capital carries instead, and that slice must go through."""
        who = self.s.actor("rescuer")
        rescuer = self.s.account(who, 0)
        # (the preview's cost includes the option legs' price, `_option_preview`)
        cost = self.s.liquidations.liquidation_preview(acct, WAD).cost
        need = RESCUE_BASE + (2 * self.margins[acct].im + max(cost, 0)) // CASH_SCALE + 1
        amount = min(need, self._cash_room(rescuer))
        fraction = WAD if amount == need else WAD * amount // need
        if fraction == 0:  # the caps are full: no liquidator can bring anything
            STATS["liquidatable, deposit caps full"] += 1
            return
        if fraction < WAD:
            STATS["liquidatable, a slice under the deposit caps"] += 1
        self.s.cash.mint(who, amount)
        self.s.cash.approve(self.s.engine.address, amount, sender=who)
        self.s.admin.deposit(rescuer, self.s.cash.address, amount, sender=who)
        # The preview equals the twin's (`_preview`; with option legs `_option_preview`), and
        # its cost is the bound to the wei: one wei below it is refused, moving nothing, and
        # exactly it goes through.
        want = self._preview(acct, self.book[acct], fraction)
        pv = self.s.liquidations.liquidation_preview(acct, fraction)
        assert self._preview_fields(pv) == self._preview_fields(want), (pv, want)
        before = self._state(acct, rescuer, INSURANCE)
        try:
            self.s.liquidations.liquidate(acct, rescuer, fraction, pv.cost - 1, sender=who)
        except self.chain.Error as err:
            self._refused(before, revert_reason(err), ("liquidations: cost above max_cost",))
        else:
            raise AssertionError(f"liquidated for more than the preview's cost {pv.cost}")
        try:
            self.s.liquidations.liquidate(acct, rescuer, fraction, pv.cost, sender=who)
        except self.chain.Error as err:
            raise AssertionError(f"{acct} could not be liquidated: {err}") from err
        if self.book[acct].legs:
            # The liquidator (cash only: no funding of its own) paid the preview's cost to
            # the wei: the slice's collateral and perps less its reward (in equity: a perp's
            # price goes to its open notional), and the legs it took at the account's mark
            # (in cash).
            f = int(want.fraction[0])
            legs = option_slice_exact(self._legs(self.book[acct], True), self.chain.timestamp, f)
            took = self._snapshot(rescuer)
            paid = amount * CASH_SCALE - took.cash + sum(took.on)
            assert paid == int(want.cost[0]) == pv.cost, (paid, want.cost, pv.cost, legs)
            held = dict(took.legs)
            assert [held.get(i, 0) for i, _ in self.book[acct].legs] == legs[1]

    def _cash_room(self, acct: int) -> int:
        """Cash (token units) `acct` may still deposit: the least of what the cash token's
        deposit cap and its per-account cap leave."""
        view = self.s.lens.tokens(self.s.cash.address)
        held = max(self.s.engine.cash(acct), 0)
        room = min(view.deposit_cap - view.total, view.account_cap - held)
        return max(room, 0) // CASH_SCALE

    @invariant()
    def updates_stay_within_window_budget(self):
        """No sequence of signed updates or ramp pokes moves a governed value past its
        budget for one bucket of the governor's window: each shock slot spans at most
        `max(floor(m0 * window_rate), 1)` bps (m0: the asset's largest |shock| when the
        bucket began); a floor rate or haircut rises to at most the lowest held plus
        `mm_step_bps` (or stays); it, the IM multiplier and the discounts fall no lower than
        the highest held less `max(floor(highest * window_rate), 1)`. Every value held is
        seen: each re-read of the parameters is checked in order."""
        self._refresh()
        seen, self.governed_seen = self.governed_seen, []
        for timestamp, values in seen:
            self._check_window(timestamp, values)

    def _check_window(self, timestamp: int, values: tuple) -> None:
        lim = self.limits
        bucket = timestamp // lim.window
        shocks, fh, globals_ = values
        if bucket != self.bucket:  # a new bucket begins from what was held
            start = self.held or values
            self.bucket = bucket
            self.m0 = np.abs(start[0]).max(axis=1)
            self.lo = [start[0].copy(), start[1].copy(), list(start[2])]
            self.hi = [start[0].copy(), start[1].copy(), list(start[2])]
        prev = self.held or values

        def allowance(ref: int) -> int:
            return max(abs(int(ref)) * lim.window_rate // WAD, 1)

        lo_s = np.minimum(self.lo[0], shocks)
        hi_s = np.maximum(self.hi[0], shocks)
        for a in range(N_ASSETS):
            span = int((hi_s[a] - lo_s[a]).max())
            assert span <= allowance(self.m0[a]), ("shock span", a, span, self.m0[a])
        for a in range(N_ASSETS):
            for j, name in enumerate(("floor", "haircut")):
                new, old = int(fh[a, j]), int(prev[1][a, j])
                lo, hi = int(self.lo[1][a, j]), int(self.hi[1][a, j])
                assert new <= max(lo + lim.mm_step_bps, old), (name, a, old, new, lo)
                assert new >= old or new >= hi - allowance(hi), (name, a, old, new, hi)
        for i, name in enumerate(("im_multiplier", "min_discount", "max_discount")):
            new, old, hi = globals_[i], prev[2][i], self.hi[2][i]
            assert new >= old or new >= hi - allowance(hi), (name, old, new, hi)
        self.lo = [
            lo_s,
            np.minimum(self.lo[1], fh),
            [min(x, y) for x, y in zip(self.lo[2], globals_, strict=True)],
        ]
        self.hi = [
            hi_s,
            np.maximum(self.hi[1], fh),
            [max(x, y) for x, y in zip(self.hi[2], globals_, strict=True)],
        ]
        self.held = values

    def _check_bounds(self) -> None:
        p = self.params
        for a, spec in enumerate(devnet.MARKETS):
            fmin, fmax, hmin, hmax, dmax, umax, dmin, umin = devnet.asset_bounds(spec)
            shocks = p.shocks_bps[a]
            assert fmin <= p.floor_bps[a] <= fmax and hmin <= p.haircut_bps[a] <= hmax
            assert shocks.min() >= -dmax and shocks.max() <= umax
            assert shocks.min() <= -dmin and shocks.max() >= umin
        im_min, im_max, dmin_lo, dmin_hi, dmax_lo, dmax_hi = devnet.GLOBAL_BOUNDS
        # The deployment's IM (1.5) lies inside its bounds from the start.
        assert im_min <= p.im_multiplier_wad <= im_max
        assert dmin_lo <= self.policy.min_discount <= dmin_hi
        assert dmax_lo <= self.policy.max_discount <= dmax_hi
        assert self.policy.min_discount <= self.policy.max_discount

    def signature(self) -> tuple:
        """A coarse picture of the book: per trader, the sign of its cash, which markets it
        holds long / short, which collateral, and its health band (above IM, between MM
        and IM, liquidatable, insolvent); plus whether a deficit is open and which prices
        are valid."""
        out = []
        for acct in self.k.accounts[1:-1]:
            snap, m = self.book[acct], self.margins[acct]
            band = 0 if m.equity >= m.im else 1 if m.equity >= m.mm else 2 if m.equity >= 0 else 3
            out.append(
                (
                    (snap.cash > 0) - (snap.cash < 0),
                    tuple((s > 0) - (s < 0) for s in snap.size),
                    (snap.coll[ETH] > 0, snap.coll[BTC] > 0, snap.coll[VAULT] > 0),
                    tuple(sorted({(s > 0) - (s < 0) for _, s in snap.legs})),
                    band,
                )
            )
        return (tuple(out), self.expected_deficit > 0, tuple(ok for _, ok in self.prices))


class OptionsMachine(BallastMachine):
    """The machine with option rules: calls and puts traded, unwound and filled again
    through the order book (`trade_option`), vol curves moved and refused and writers
    squeezed (`move_vol`), expiries passed, settlement prices recorded and expired legs
    settled (`expiry`). Every rule and invariant of the machine runs on top (the option
    invariants hold trivially in `BallastMachine`'s runs, where no account holds a leg).
    Its own class so that the examples without options draw their steps as before (same
    rules, same derandomised examples), and the costlier examples with options are a
    budgeted share of a run (`mix`)."""

    @rule(
        kind=st.sampled_from(("open", "open", "close", "again")),
        m=BallastMachine.accounts,
        t=BallastMachine.accounts,
        k=st.integers(0, 10**6),
        notional=st.integers(-80_000, 80_000),
        offset_bps=st.integers(-3_000, 3_000),
        part=st.floats(0.05, 1.0),
        fresh=st.booleans(),
    )
    def trade_option(self, kind, m, t, k, notional, offset_bps, part, fresh):
        """An option trade through the order book, the order naming the instrument, a taker
        (trader `t`) filling `part` of it:

        * open: a maker (trader `m`) signs an order to buy (notional > 0) or sell a listed
          call or put, about `notional` dollars of the underlying, at the twin's fair
          premium `offset_bps` off;
        * close: a holder of legs (a trader, or the desk, which inherits legs from the
          liquidations it takes) signs an order unwinding `part` of one of them: risk-
          reducing for it, so it may go through below IM or with stale vols;
        * again: an earlier order is filled (again): partial fills, overfills, an order
          signed before a vol move, a price move or an expiry.

        `fresh`: the vol signers first publish the instrument's curve afresh (as a keeper
        keeps it within its heartbeat)."""
        taker = self._acct(t)
        if kind == "again":
            if not self.option_orders:
                return
            order, sig, maker = self.option_orders[k % len(self.option_orders)]
            amount = max(int(abs(order[3]) * part), 1)
        else:
            if kind == "open":
                maker = self._acct(m)
                id = self.k.options.instruments[k % len(self.k.options.instruments)]
                u = instrument(id)[0]
                price = self._price(u) or int(devnet.MARKETS[u].price_usd * WAD)
                size = notional * WAD * WAD // price
            else:
                self._refresh()  # the legs as they are
                holders = [a for a in self.k.accounts[1:] if self.book[a].legs]
                if not holders:
                    return
                maker = holders[k % len(holders)]
                legs = self.book[maker].legs
                id, held = legs[k // len(holders) % len(legs)]
                size = -max(int(abs(held) * part), 1) * (1 if held > 0 else -1)
            if size == 0:
                return
            amount = abs(size) if kind == "close" else max(int(abs(size) * part), 1)
            self.nonce += 1
            maker_who = self.k.owners[maker]
            order = (maker_who, maker & (2**96 - 1), id, size, self._premium(id, offset_bps))
            order = (*order, self.nonce, 2**40)
            # Signed over the book's own digest (`order_digest`), as `_publish_vol` signs
            # curves: the perp fills sign through the typed-data encoding, which the book
            # accepts.
            digest = self.s.book.order_digest(order)
            (sig,) = sign_digest([self.s.keys[self._key_name(maker_who)]], digest)
            self.option_orders.append((order, sig, maker))
        if maker == taker:
            return
        if fresh:
            self._fresh_vol(*instrument(order[2])[:2])
        STATS[f"option trade offered: {kind}"] += 1
        self._trade_option(order, sig, maker, taker, amount)

    @rule(
        u=st.sampled_from(OPTION_UNDERLYINGS),
        e=st.integers(0, 1),
        kind=st.sampled_from(
            (
                "atm up",
                "atm down",
                "skew",
                "refit",
                "stale",
                "replay",
                "one signature",
                "writer squeeze",
            )
        ),
        bps=st.integers(100, 6_000),
        skew=st.integers(-MAX_SKEW // 4, MAX_SKEW // 4),
        signers=st.sampled_from(((0, 1), (0, 2), (1, 2), (0, 1, 2))),
        desk=st.booleans(),
    )
    def move_vol(self, u, e, kind, bps, skew, signers, desk):
        """The vol signers move a curve (`signers`, at least the threshold of them): its ATM
        vol up or down by `bps`, a new skew, or refitted at the underlying's price now (new
        forward and curvature); or a relayer submits a curve the feed must refuse: observed
        past the heartbeat, not newer than the one held, or signed below the threshold.
        Every leg of the expiry is valued anew. Or ("writer squeeze") the underlying of a
        trader's live short option moves hard against it (`_squeeze`), and with `desk` the
        desk then takes a slice (`bps` / 6,000 of the book, or all of it) of every option
        book the squeeze left liquidatable."""
        if kind == "writer squeeze":
            self._squeeze(u, bps * 5 // 2)
            if desk:
                self._refresh()
                for acct in self.k.accounts[1:-1]:
                    if self.book[acct].legs and self.margins[acct].liquidatable:
                        self._liquidate(acct, max(WAD * bps // 6_000, 1))
            return
        expiry = self.k.options.expiries[e]
        atm, old_skew, curvature, forward, observed = self.curves[(u, expiry)]
        if kind == "atm up":
            atm = atm * (BPS + bps) // BPS
        elif kind == "atm down":
            atm = atm * (BPS - bps) // BPS
        elif kind == "skew":
            old_skew = skew
        elif kind == "refit":
            forward, curvature = self._price(u), abs(skew) // 2
        if kind not in ("stale", "replay") and observed >= self.chain.timestamp:
            self._tick()
        now = self.chain.timestamp
        observed_at = {"stale": max(now - VOL_HEARTBEAT - bps, 0), "replay": observed}.get(
            kind, now
        )
        keys = self.k.options.keys
        keys = keys[:1] if kind == "one signature" else [keys[i] for i in signers]
        reason = self._publish_vol(
            u, expiry, (atm, old_skew, curvature, forward), observed_at, keys
        )
        STATS[f"vol {kind}" + (" published" if reason is None else " refused")] += 1

    @rule(
        kind=st.sampled_from(("pass", "record", "settle")),
        u=st.sampled_from(OPTION_UNDERLYINGS),
        e=st.integers(0, 1),
        extra=st.integers(0, 3 * HOUR),
        keepers=st.booleans(),
        i=st.integers(0, 10**6),
    )
    def expiry(self, kind, u, e, extra, keepers, i):
        """The clock passes the next expiry ("pass", `_pass_expiry`; from step 20, before
        which it settles: an expiry passed early would leave most of the example's option
        trades refused as expired); anyone records the settlement price of `u` at expiry
        `e` ("record"), naming the feed's first valid round after the expiry, or one time in
        four the round after it and one in four the round before (`_record_settlement`'s
        `nudge`): refused before the expiry, without a valid round, for a round not the first,
        or when already recorded; or anyone settles an account's expired legs ("settle",
        `_settle_expired`)."""
        if kind == "pass" and self.steps >= 20:
            self._pass_expiry(extra, keepers)
        elif kind == "record":
            self._record_settlement(u, self.k.options.expiries[e], nudge=(0, 0, 1, -1)[i % 4])
        else:
            self._settle_expired(i)


class HostileMachine(BallastMachine):
    """The machine with hostile tokens listed (`stack(hostile=True)`): ETH's collateral
    token calls back into the engine on every transfer once armed, BTC's has an issuer's
    blocklist, and a fee-on-transfer and a false-returning token are listed. Every rule and
    invariant of the machine runs on top, and:

    * a call back from the re-entrant token never gets into the engine (`reentered` stays
      False), though the same call back from a transfer outside the engine goes through
      (shown in an anchor before each move of the token);
    * a blocklisted owner (or the engine itself) cannot move the blocklisting token in or
      out, with the token's clear error and nothing moved; nobody else is affected, and a
      liquidation moves claims, not tokens, so every liquidation the policy allows still
      goes through (the liquidator, the desk or the engine blocked:
      `liquidatable_accounts_can_be_liquidated`, `keeper_pass`);
    * every deposit of the fee-on-transfer or the false-returning token is refused with its
      clear error and nothing moves: no account holds them, the engine holds none
      (`collateral_is_conserved`, per token, with the hostile ETH and BTC tokens).
    """

    HOSTILE = True
    # Whose address the BTC token's issuer may freeze: an owner, the desk's, the backstop
    # liquidator's, the engine's.
    FROZEN = ("trader", "maker", "taker", "liquidator", "rescuer", "engine")

    def _setup(self) -> None:
        super()._setup()
        self.blocked: set[str] = set()  # addresses the BTC token's issuer froze
        self.payload: bytes | None = None  # what the re-entrant token calls back with

    def _address(self, role: str) -> str:
        return self.s.engine.address if role == "engine" else self.s.actor(role)

    @rule(
        armed=st.booleans(),
        i=BallastMachine.accounts,
        market=st.sampled_from(range(N_ASSETS)),
        frac=st.floats(0.0001, 1.0),
    )
    def arm_reentry(self, armed, i, market, frac):
        """Arm ETH's token to call the engine back inside every later transfer with a call
        anyone may make, settling an account's funding (in a market with a valid price when
        there is one), or disarm it. Then an owner deposits ETH (the withdrawals of later
        steps call back too)."""
        token = self.k.tokens[ETH]
        if not armed:
            token.arm(devnet.ZERO_ADDRESS, b"")
            self.payload = None
            return
        self._refresh()
        valid = [m for m in range(N_ASSETS) if self.prices[m][1]] or [market]
        market = valid[market % len(valid)]
        acct = self._acct(i)
        self.payload = self.s.funding.settle_funding.prepare_calldata(acct, market)
        token.arm(self.s.engine.address, self.payload)
        STATS["re-entrant token armed"] += 1
        self._deposit(acct, self.k.owners[acct], ETH, self._units(ETH, frac))

    @contextmanager
    def _token_moves(self, token_id: int) -> Iterator[None]:
        token = self.k.tokens[ETH]
        if token_id != ETH or self.payload is None:
            yield
            return
        # The same call back from a transfer outside the engine goes through (unless it
        # settles without a valid price): only the engine's lock can stop it inside.
        with self.chain.anchor():
            token.transfer(self.chain.eoa, 0, sender=self.chain.eoa)
            alone = "goes through" if token.reentered() else "fails"
        attempts = token.attempts()
        try:
            yield
        finally:
            assert not token.reentered(), "a call back from the token re-entered the engine"
        if token.attempts() > attempts:
            STATS[f"re-entry refused by the lock (outside the engine the call {alone})"] += 1

    @rule(role=st.sampled_from(FROZEN), frozen=st.booleans())
    def issuer_blocklists(self, role, frozen):
        """BTC's issuer freezes an address, or lets it go."""
        who = self._address(role)
        self.k.tokens[BTC].set_blocked(who, frozen)
        if frozen:
            self.blocked.add(who)
        else:
            self.blocked.discard(who)
        STATS[f"blocklist: {role} {'frozen' if frozen else 'released'}"] += 1

    def _token_errors(self, token_id: int, who: str) -> tuple[str, ...]:
        if token_id == BTC and self.blocked & {who, self.s.engine.address}:
            return ("blocklist: sender blocked", "blocklist: receiver blocked")
        return ()

    @rule(
        i=BallastMachine.accounts,
        kind=st.sampled_from(tuple(REFUSED_TOKENS)),
        frac=st.floats(0.0001, 1.0),
    )
    def deposit_refused_token(self, i, kind, frac):
        """A deposit of the fee-on-transfer or the false-returning token is refused with its
        clear error, whatever the amount; no balance, wallet or engine holding moves."""
        acct = self._acct(i)
        who = self.k.owners[acct]
        token, feed = self.k.refused[kind]
        feed.set_price(100 * 10**8)  # a fresh price: the refusal is the token's
        amount = max(int(frac * 10 * WAD), 1)
        token.mint(who, amount)
        token.approve(self.s.engine.address, amount, sender=who)
        e = self.s.engine.address
        before = self._state(acct), token.balanceOf(who), token.balanceOf(e)
        try:
            self.s.admin.deposit(acct, token.address, amount, sender=who)
        except self.chain.Error as err:
            reason = revert_reason(err)
            assert reason == REFUSED_TOKENS[kind][1], (kind, reason)
            assert (self._state(acct), token.balanceOf(who), token.balanceOf(e)) == before
            STATS[f"refused: {kind} deposit"] += 1
            return
        raise AssertionError(f"a deposit of the {kind} token was credited")


# (examples, steps per example), each run as `mix` runs them. quick: `make test`
# (tests/fuzz/test_stateful.py), derandomised: 500 examples, about 51,600 steps (20,600 at
# 200 examples, the finding met at 520 of them before is
# test_regression_liquidator_holding_unpriced_perp_is_refused); long: `make fuzz`, per process
# (two run at once), 2 x 2,500 examples, about 2 x 270,000 steps.
# Their times at the measured rates: benchmarks/RESULTS.md (`python -m benchmarks --fuzz`).
PROFILES = {
    "quick": (int(os.environ.get("FUZZ_QUICK_EXAMPLES", "500")), 100),
    "long": (int(os.environ.get("FUZZ_LONG_EXAMPLES", "2500")), 100),
}


def mix(examples: int) -> list[tuple[type, int]]:
    """The machines a profile of ``examples`` runs, with their examples: one in four with
    options (OptionsMachine: an example with options costs about 1.5 without, its legs valued
    on chain and in the twin at every re-read), the rest BallastMachine's, and the hostile
    runs (HostileMachine) beside them, one in eight more. tests/fuzz/test_stateful.py runs
    this mix, and the throughput benchmark measures it."""
    options = max(examples // 4, 1)
    return [
        (BallastMachine, examples - options),
        (OptionsMachine, options),
        (HostileMachine, max(examples // 8, 1)),
    ]
