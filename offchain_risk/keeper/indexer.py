"""Index the engine's accounts from its ``AccountState``, funding and option-leg logs.

The engine emits the absolute post-state of every touched (account, asset) pair, so the
latest log per pair is the account. Funding (docs/ARCHITECTURE.md#funding) is absolute too:
a market's latest ``Funding(market, rate, index)`` log, with its block's time, is the
market's funding word, and a position's latest ``FundingSettled(account, market, paid,
index)`` log is its snapshot; unsettled funding is then ``models.funding.owed`` at the
index now. The option legs are the engine's option book's (``engine.option_book()``, asked
once, then the engine's ``OptionBookSet(book)`` log while none is installed): an
``OptionPosition(account, instrument, size)`` log is a leg's new
size, an ``OptionSettled`` one a leg settled to cash (size 0). The :class:`Indexer`
backfills in chunks from the last processed block, follows the head, re-reads a look-back
window every pass (a re-organised block is replaced as a whole) and commits each pass to the
:class:`Store` atomically. The :class:`Book` is the in-memory mirror the scanner reads: exact
ints per account and float64 arrays ``(n_accounts, n_assets)`` for the vectorised scan, and
the accounts holding option legs (``options``), which the chain decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eth_abi import decode
from eth_utils import keccak

from offchain_risk.keeper.rpc import RpcError, rpc_batch, rpc_one
from offchain_risk.keeper.store import (
    CASH_ASSET,
    AccountEvent,
    FundingEvent,
    LegEvent,
    SettledEvent,
    Store,
)
from offchain_risk.keeper.workers import slot
from offchain_risk.units import CASH as CASH_SENTINEL
from offchain_risk.units import WAD

log = logging.getLogger("ballast.keeper.indexer")


ACCOUNT_STATE_TOPIC = "0x" + keccak(
    text="AccountState(uint256,uint256,int256,uint256,int256,int256)"
).hex().removeprefix("0x")
_DATA_TYPES = ["uint256", "int256", "uint256", "int256", "int256"]
FUNDING_TOPIC = "0x" + keccak(text="Funding(uint256,int256,int256)").hex().removeprefix("0x")
FUNDING_SETTLED_TOPIC = "0x" + keccak(
    text="FundingSettled(uint256,uint256,int256,int256)"
).hex().removeprefix("0x")
TOPICS = [ACCOUNT_STATE_TOPIC, FUNDING_TOPIC, FUNDING_SETTLED_TOPIC]
OPTION_POSITION_TOPIC = "0x" + keccak(
    text="OptionPosition(uint256,uint256,int256)"
).hex().removeprefix("0x")
OPTION_SETTLED_TOPIC = "0x" + keccak(
    text="OptionSettled(uint256,uint256,int256,int256)"
).hex().removeprefix("0x")
OPTION_TOPICS = [OPTION_POSITION_TOPIC, OPTION_SETTLED_TOPIC]
OPTION_BOOK_SET_TOPIC = "0x" + keccak(text="OptionBookSet(address)").hex().removeprefix("0x")
OPTION_BOOK_CALL = "0x" + keccak(text="option_book()")[:4].hex()


def decode_account_state(raw: Any) -> AccountEvent:
    """An ``AccountState`` log (web3 ``AttributeDict``) as an :class:`AccountEvent`."""
    topics = raw["topics"]
    if len(topics) != 2 or _hex(topics[0]) != ACCOUNT_STATE_TOPIC:
        raise ValueError(f"not an AccountState log: {raw}")
    asset, cash, collateral, size, on = decode(_DATA_TYPES, bytes(raw["data"]))
    return AccountEvent(
        block=int(raw["blockNumber"]),
        log_index=int(raw["logIndex"]),
        account=int.from_bytes(bytes(topics[1]), "big"),
        asset=CASH_ASSET if asset == CASH_SENTINEL else int(asset),
        cash=cash,
        collateral=collateral,
        size=size,
        open_notional=on,
    )


def decode_funding(raw: Any, timestamp: int) -> FundingEvent:
    """A ``Funding`` log of a block at ``timestamp`` as a :class:`FundingEvent`."""
    topics = raw["topics"]
    if len(topics) != 2 or _hex(topics[0]) != FUNDING_TOPIC:
        raise ValueError(f"not a Funding log: {raw}")
    rate, index = decode(["int256", "int256"], bytes(raw["data"]))
    return FundingEvent(
        block=int(raw["blockNumber"]),
        log_index=int(raw["logIndex"]),
        market=int.from_bytes(bytes(topics[1]), "big"),
        rate=rate,
        index=index,
        timestamp=int(timestamp),
    )


def decode_funding_settled(raw: Any) -> SettledEvent:
    """A ``FundingSettled`` log as a :class:`SettledEvent`."""
    topics = raw["topics"]
    if len(topics) != 3 or _hex(topics[0]) != FUNDING_SETTLED_TOPIC:
        raise ValueError(f"not a FundingSettled log: {raw}")
    paid, index = decode(["int256", "int256"], bytes(raw["data"]))
    return SettledEvent(
        block=int(raw["blockNumber"]),
        log_index=int(raw["logIndex"]),
        account=int.from_bytes(bytes(topics[1]), "big"),
        market=int.from_bytes(bytes(topics[2]), "big"),
        paid=paid,
        index=index,
    )


def decode_leg(raw: Any) -> LegEvent:
    """An option book's ``OptionPosition`` (the leg's new size) or ``OptionSettled`` (the
    leg settled to cash: size 0) log as a :class:`LegEvent`."""
    topics = raw["topics"]
    topic = _hex(topics[0]) if topics else ""
    if len(topics) != 3 or topic not in OPTION_TOPICS:
        raise ValueError(f"not an option leg log: {raw}")
    size = 0
    if topic == OPTION_POSITION_TOPIC:
        (size,) = decode(["int256"], bytes(raw["data"]))
    return LegEvent(
        block=int(raw["blockNumber"]),
        log_index=int(raw["logIndex"]),
        account=int.from_bytes(bytes(topics[1]), "big"),
        instrument=int.from_bytes(bytes(topics[2]), "big"),
        size=size,
    )


@dataclass
class Logs:
    """One range of the engine's logs, decoded, each list in chain order."""

    accounts: list[AccountEvent] = field(default_factory=list)
    funding: list[FundingEvent] = field(default_factory=list)
    settled: list[SettledEvent] = field(default_factory=list)
    legs: list[LegEvent] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.accounts) + len(self.funding) + len(self.settled) + len(self.legs)


def _raw_log(r: dict) -> dict:
    """An ``eth_getLogs`` entry (hex strings) in the types the decoders read."""
    return {
        "address": r["address"],
        "blockNumber": int(r["blockNumber"], 16),
        "logIndex": int(r["logIndex"], 16),
        "topics": [bytes.fromhex(t[2:]) for t in r["topics"]],
        "data": bytes.fromhex(r["data"][2:]),
    }


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


@dataclass
class AccountRecord:
    """One account's exact balances (WAD ints): cash, {asset: (collateral, size, on)},
    {market: funding snapshot} (0 where never settled) and {instrument: option leg size}
    (held legs only)."""

    cash: int = 0
    assets: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    snaps: dict[int, int] = field(default_factory=dict)
    legs: dict[int, int] = field(default_factory=dict)


class Book:
    """Every indexed account, exact and as float64 arrays for the scan, and every market's
    funding word (``funding``: market -> ``ledger.funding_word``, 0 when never moved)."""

    def __init__(self, n_assets: int):
        self.n_assets = n_assets
        self.accounts: list[int] = []  # row -> account id
        self.rows: dict[int, int] = {}  # account id -> row
        self.records: dict[int, AccountRecord] = {}
        cap = 1024
        self.cash = np.zeros(cap)  # (cap,) USD
        self.collateral = np.zeros((cap, n_assets))  # (cap, n_assets) token units
        self.size = np.zeros((cap, n_assets))  # (cap, n_assets) signed units
        self.open_notional = np.zeros((cap, n_assets))  # (cap, n_assets) USD
        self.slots = np.zeros(cap, dtype=np.int64)  # (cap,) workers.slot: partitions
        self.snap = np.zeros((cap, n_assets))  # (cap, n_assets) funding snapshots, USD/unit
        self.funding: dict[int, int] = {}
        self.ids = np.zeros(cap, dtype=object)  # (cap,) row -> account id, for fancy indexing
        self.options: set[int] = set()  # accounts holding an option leg

    def __len__(self) -> int:
        return len(self.accounts)

    def _row(self, account: int) -> int:
        row = self.rows.get(account)
        if row is not None:
            return row
        row = len(self.accounts)
        if row == len(self.cash):
            self._grow(2 * row, self.n_assets)
        self.accounts.append(account)
        self.rows[account] = row
        self.slots[row] = slot(account)
        self.ids[row] = account
        self.records[account] = AccountRecord()
        return row

    def _grow(self, cap: int, n_assets: int) -> None:
        def grow(a: np.ndarray) -> np.ndarray:
            if a.ndim == 1:
                out = np.zeros(cap)
                out[: len(a)] = a
            else:
                out = np.zeros((cap, n_assets))
                out[: a.shape[0], : a.shape[1]] = a
            return out

        self.cash = grow(self.cash)
        if cap > len(self.slots):
            slots = np.zeros(cap, dtype=np.int64)
            slots[: len(self.slots)] = self.slots
            self.slots = slots
            ids = np.zeros(cap, dtype=object)
            ids[: len(self.ids)] = self.ids
            self.ids = ids
        self.collateral, self.size, self.open_notional, self.snap = (
            grow(self.collateral),
            grow(self.size),
            grow(self.open_notional),
            grow(self.snap),
        )
        self.n_assets = n_assets

    def ensure_assets(self, n_assets: int) -> None:
        """Widen the arrays when the engine lists a new asset."""
        if n_assets > self.n_assets:
            self._grow(len(self.cash), n_assets)

    def apply(self, e: AccountEvent) -> None:
        row = self._row(e.account)
        rec = self.records[e.account]
        rec.cash = e.cash
        self.cash[row] = e.cash / WAD
        if e.asset == CASH_ASSET:
            return
        if e.asset >= self.n_assets:
            self.ensure_assets(e.asset + 1)
        if e.collateral == 0 and e.size == 0 and e.open_notional == 0:
            rec.assets.pop(e.asset, None)
        else:
            rec.assets[e.asset] = (e.collateral, e.size, e.open_notional)
        self.collateral[row, e.asset] = e.collateral / WAD
        self.size[row, e.asset] = e.size / WAD
        self.open_notional[row, e.asset] = e.open_notional / WAD

    def apply_settled(self, e: SettledEvent) -> None:
        row = self._row(e.account)
        if e.market >= self.n_assets:
            self.ensure_assets(e.market + 1)
        self.records[e.account].snaps[e.market] = e.index
        self.snap[row, e.market] = e.index / WAD

    def apply_leg(self, e: LegEvent) -> None:
        self._row(e.account)
        legs = self.records[e.account].legs
        if e.size == 0:
            legs.pop(e.instrument, None)
        else:
            legs[e.instrument] = e.size
        if legs:
            self.options.add(e.account)
        else:
            self.options.discard(e.account)

    def set_funding(self, events: list[FundingEvent]) -> None:
        """Each market's funding word from its latest ``Funding`` log (in chain order)."""
        for e in events:
            self.funding[e.market] = e.word

    def reset(self, account: int) -> None:
        row = self.rows.get(account)
        if row is None:
            return
        self.records[account] = AccountRecord()
        self.options.discard(account)
        self.cash[row] = 0.0
        self.collateral[row] = 0.0
        self.size[row] = 0.0
        self.open_notional[row] = 0.0
        self.snap[row] = 0.0

    def exact(self, accounts: list[int]) -> tuple[np.ndarray, ...]:
        """(cash (n,), collateral, size, open_notional (n, n_assets)) as Python-int arrays,
        the inputs of the exact twins."""
        n, a = len(accounts), self.n_assets
        cash = np.zeros(n, dtype=object)
        coll, size, on = (np.zeros((n, a), dtype=object) for _ in range(3))
        for i, acc in enumerate(accounts):
            rec = self.records[acc]
            cash[i] = rec.cash
            for asset, (c, s, o) in rec.assets.items():
                coll[i, asset], size[i, asset], on[i, asset] = c, s, o
        return cash, coll, size, on

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Float views of the live rows: cash (n,), collateral, size, on (n, n_assets)."""
        n = len(self.accounts)
        return self.cash[:n], self.collateral[:n], self.size[:n], self.open_notional[:n]

    def snapshots(self, accounts: list[int]) -> np.ndarray:
        """(n, n_assets) Python-int funding snapshots of ``accounts``, beside :meth:`exact`."""
        out = np.zeros((len(accounts), self.n_assets), dtype=object)
        for i, acc in enumerate(accounts):
            for market, index in self.records[acc].snaps.items():
                out[i, market] = index
        return out


@dataclass(frozen=True)
class IndexResult:
    first_block: int  # re-read from here (look-back included)
    head: int
    events: int  # logs read this pass
    reorg_block: int | None  # first block whose hash changed, if any
    touched: int  # accounts rebuilt


class Indexer:
    """Backfill and follow the engine's account logs into a :class:`Store` and a :class:`Book`.

    ``chunk``: blocks per ``eth_getLogs`` call (halved on an RPC range error, down to 1);
    ``lookback``: blocks re-read on every pass, the deepest re-organisation handled exactly;
    ``start_block``: where a fresh store begins (the engine's deployment block).
    """

    def __init__(
        self,
        w3: Any,
        engine: str,
        store: Store,
        book: Book,
        *,
        start_block: int = 0,
        chunk: int = 2_000,
        lookback: int = 8,
    ):
        if chunk < 1 or lookback < 1:
            raise ValueError("chunk and lookback must be >= 1")
        self.w3 = w3
        self.engine = w3.to_checksum_address(engine)
        self._engine_lower = self.engine.lower()
        self.store = store
        self.book = book
        self.start_block = start_block
        self.chunk = chunk
        self.lookback = lookback
        self.option_book: str | None = None  # the engine's, once one is installed
        self._asked = False  # the engine asked for its book (once per process)
        self._loaded = False

    def _find_option_book(self, head: int) -> None:
        """The engine's option book at ``head``, asked on the first pass only (a restart's
        store may be past the installation); later passes watch the engine's
        ``OptionBookSet`` log instead (:meth:`_logs`). Installed once: its legs cannot move
        before it is, so the pass that finds it reads all of them."""
        if self.option_book is not None or self._asked:
            return
        raw = self.w3.eth.call({"to": self.engine, "data": OPTION_BOOK_CALL}, head)
        self._asked = True
        address = decode(["address"], bytes(raw))[0] if len(raw) == 32 else None
        if address is not None and int(address, 16) != 0:
            self.option_book = self.w3.to_checksum_address(address)

    def load(self) -> int:
        """Rebuild the book from the store (after a restart); returns the events replayed."""
        events = self.store.events()
        for e in events:
            self.book.apply(e)
        settled = self.store.settlements()
        for s in settled:
            self.book.apply_settled(s)
        self.book.set_funding(self.store.funding_words())
        legs = self.store.legs()
        for g in legs:
            self.book.apply_leg(g)
        self._loaded = True
        return len(events) + len(settled) + len(legs)

    def _logs(self, first: int, last: int) -> Logs:
        raws: list[Any] = []
        addresses, topics = [self.engine], [*TOPICS, OPTION_BOOK_SET_TOPIC]
        if self.option_book is not None:
            addresses, topics = [self.engine, self.option_book], TOPICS + OPTION_TOPICS
        lo = first
        while lo <= last:
            hi = min(last, lo + self.chunk - 1)
            query = {
                "address": addresses,
                "topics": [topics],
                "fromBlock": hex(lo),
                "toBlock": hex(hi),
            }
            try:
                # Raw JSON-RPC: web3's log formatters cost about 1 ms a log, seconds a block
                # at 100,000 accounts in a liquidation cascade (the look-back re-reads them).
                raw = [_raw_log(r) for r in rpc_one(self.w3, "eth_getLogs", [query])]
            except Exception as exc:  # an RPC's log-range or result-size limit
                if hi == lo or not _is_range_error(exc):
                    raise
                self.chunk = max(1, (hi - lo + 1) // 2)
                log.warning("getLogs %d-%d refused (%s): chunk now %d", lo, hi, exc, self.chunk)
                continue
            raws.extend(raw)
            lo = hi + 1
        out = Logs()
        times: dict[int, int] = {}
        for r in sorted(raws, key=lambda r: (int(r["blockNumber"]), int(r["logIndex"]))):
            topic = _hex(r["topics"][0]) if r["topics"] else ""
            if r["address"].lower() != self._engine_lower:
                if topic in OPTION_TOPICS:  # the option book's: nothing else is asked of it
                    out.legs.append(decode_leg(r))
            elif topic == ACCOUNT_STATE_TOPIC:
                out.accounts.append(decode_account_state(r))
            elif topic == FUNDING_TOPIC:
                n = int(r["blockNumber"])
                if n not in times:  # the accrual's time is its block's
                    times[n] = int(self.w3.eth.get_block(n)["timestamp"])
                out.funding.append(decode_funding(r, times[n]))
            elif topic == FUNDING_SETTLED_TOPIC:
                out.settled.append(decode_funding_settled(r))
            elif topic == OPTION_BOOK_SET_TOPIC and self.option_book is None:
                # Installed inside this range: read it again with the book's legs.
                book = "0x" + bytes(r["topics"][1])[-20:].hex()
                self.option_book = self.w3.to_checksum_address(book)
                return self._logs(first, last)
        return out

    def _hashes(self, first: int, last: int) -> dict[int, str]:
        """The hashes of blocks ``first..last``, in one JSON-RPC batch (one ``get_block``
        each cost a round trip and web3's formatting: about half a quiet block's tick)."""
        numbers = list(range(first, last + 1))
        answers = rpc_batch(self.w3, [("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        out = {}
        for n, block in zip(numbers, answers, strict=True):
            if isinstance(block, RpcError):
                raise block
            if block is None:
                raise ValueError(f"block {n} not found")
            out[n] = _hex(block["hash"])
        return out

    def sync(self, head: int | None = None) -> IndexResult:
        """One pass up to ``head`` (default: the chain's latest block)."""
        if not self._loaded:
            self.load()
        if head is None:
            head = self.w3.eth.block_number
        last = self.store.last_block
        fresh = last is None
        first = self.start_block if fresh else max(self.start_block, last - self.lookback + 1)
        # Hashes of the last 2 x lookback blocks: a changed one is a re-organisation, which is
        # re-read from its first changed block even when that is older than the window.
        hash_lo = max(self.start_block, head - 2 * self.lookback + 1)
        chain_hashes = self._hashes(hash_lo, head)
        stored = self.store.block_hashes(hash_lo)
        changed = [n for n, h in stored.items() if chain_hashes.get(n, h) != h]
        changed += [n for n in stored if n > head]  # the chain got shorter
        reorg_block = min(changed) if changed else None
        if reorg_block is not None:
            first = min(first, reorg_block)
            log.warning("re-organisation from block %d: re-reading", reorg_block)
        if first > head:
            return IndexResult(first, head, 0, reorg_block, 0)
        before = set() if fresh else self.store.accounts_since(first)
        self._find_option_book(head)
        logs = self._logs(first, head)
        events = logs.accounts
        self.store.commit_range(
            first, events, chain_hashes, head, logs.funding, logs.settled, logs.legs
        )
        self.store.prune_blocks(hash_lo)
        if logs.funding or not fresh:
            # The latest word per market (a re-read range may have dropped some).
            self.book.funding.clear()
            self.book.set_funding(self.store.funding_words())
        if fresh:
            for e in events:
                self.book.apply(e)
            for s in logs.settled:
                self.book.apply_settled(s)
            for g in logs.legs:
                self.book.apply_leg(g)
            return IndexResult(first, head, len(logs), reorg_block, len(self.book))
        touched = (
            before
            | {e.account for e in events}
            | {s.account for s in logs.settled}
            | {g.account for g in logs.legs}
        )
        for account in touched:
            self.book.reset(account)
        for e in self.store.events(touched):
            self.book.apply(e)
        for s in self.store.settlements(touched):
            self.book.apply_settled(s)
        for g in self.store.legs(touched):
            self.book.apply_leg(g)
        return IndexResult(first, head, len(logs), reorg_block, len(touched))


def _is_range_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in ("range", "too many", "limit", "exceed", "query returned more than", "timeout")
    )
