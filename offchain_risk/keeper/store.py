"""The keeper's state in SQLite: indexed account events, processed blocks, sent transactions.

One file (``:memory:`` for a throw-away run) holds everything a restarted keeper needs to
resume without double work:

* ``events``: every ``AccountState`` log of the engine, keyed by (block, log index). The
  values in a log are absolute, so an account is rebuilt from its latest log per asset, and
  re-reading a range is harmless.
* ``funding``: every ``Funding`` log (a market's rate and index, with the block's time: the
  market's funding word is its latest one) and ``settled``: every ``FundingSettled`` log (a
  position's funding snapshot is its latest one). Absolute values too.
* ``legs``: every ``OptionPosition`` log of the engine's option book (a leg's new size) and
  every ``OptionSettled`` one (the leg settled to cash: size 0). An account holding a leg is
  decided by the chain (the scanner's twins value perps and collateral only).
* ``blocks``: the hashes of the recent processed blocks, to detect re-organisations.
* ``txs``: every transaction the keeper signed, with its nonce and status, so an account
  with a liquidation in flight is never liquidated again and a restart adopts the pending
  ones instead of sending duplicates.
* ``meta``: the last processed block and the contracts the index belongs to.

256-bit integers are stored as decimal text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    account TEXT NOT NULL,
    asset INTEGER NOT NULL,          -- -1: cash only
    cash TEXT NOT NULL,
    collateral TEXT NOT NULL,
    size TEXT NOT NULL,
    open_notional TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS events_account ON events (account, block, log_index);
CREATE TABLE IF NOT EXISTS funding (
    block INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    market INTEGER NOT NULL,
    rate TEXT NOT NULL,
    idx TEXT NOT NULL,
    timestamp INTEGER NOT NULL,      -- the block's: the time of the accrual
    PRIMARY KEY (block, log_index)
);
CREATE TABLE IF NOT EXISTS settled (
    block INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    account TEXT NOT NULL,
    market INTEGER NOT NULL,
    paid TEXT NOT NULL,              -- funding the position paid (negative: received)
    idx TEXT NOT NULL,               -- the position's new snapshot
    PRIMARY KEY (block, log_index)
);
CREATE TABLE IF NOT EXISTS legs (
    block INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    account TEXT NOT NULL,
    instrument TEXT NOT NULL,
    size TEXT NOT NULL,              -- the leg's size after the log (0: closed or settled)
    PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS legs_account ON legs (account, block, log_index);
CREATE INDEX IF NOT EXISTS funding_market ON funding (market, block, log_index);
CREATE INDEX IF NOT EXISTS settled_account ON settled (account, block, log_index);
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY,
    nonce INTEGER NOT NULL,
    kind TEXT NOT NULL,              -- liquidation | cancel | risk_update
    account TEXT,                    -- the liquidated account
    status TEXT NOT NULL,            -- pending | confirmed | failed | replaced | dropped
    max_fee INTEGER NOT NULL,
    priority_fee INTEGER NOT NULL,
    sent_block INTEGER NOT NULL,
    payload TEXT NOT NULL,           -- hex calldata, to re-sign on a gas bump
    target TEXT NOT NULL,
    gas INTEGER NOT NULL,
    mined_block INTEGER
);
CREATE INDEX IF NOT EXISTS txs_status ON txs (status, nonce);
"""

CASH_ASSET = -1
PENDING = "pending"
CONFIRMED = "confirmed"
FAILED = "failed"
REPLACED = "replaced"
DROPPED = "dropped"


@dataclass(frozen=True)
class AccountEvent:
    """One ``AccountState`` log. ``asset`` is -1 when only cash changed."""

    block: int
    log_index: int
    account: int
    asset: int
    cash: int
    collateral: int
    size: int
    open_notional: int


def pack_funding_word(index: int, timestamp: int, rate: int) -> int:
    """``ledger.funding_word``'s layout (offchain_risk.models.funding): index (int128) |
    time of the last accrual (uint64) | rate in force (int64)."""
    return ((rate % 2**64) << 192) | (timestamp << 128) | (index % 2**128)


@dataclass(frozen=True)
class FundingEvent:
    """One ``Funding`` log: ``market``'s index and the rate in force from ``timestamp`` (the
    block's time, when the contract wrote them)."""

    block: int
    log_index: int
    market: int
    rate: int
    index: int
    timestamp: int

    @property
    def word(self) -> int:
        """The market's ``funding_word`` as the contract packed it (models.funding)."""
        return pack_funding_word(self.index, self.timestamp, self.rate)


@dataclass(frozen=True)
class SettledEvent:
    """One ``FundingSettled`` log: ``account``'s position in ``market`` paid ``paid`` (WAD;
    negative: received) and has its funding settled up to ``index`` (its new snapshot)."""

    block: int
    log_index: int
    account: int
    market: int
    paid: int
    index: int


@dataclass(frozen=True)
class LegEvent:
    """One option leg's new ``size`` (signed WAD units; 0: closed or settled to cash), from
    the option book's ``OptionPosition`` or ``OptionSettled`` log."""

    block: int
    log_index: int
    account: int
    instrument: int
    size: int


@dataclass
class SentTx:
    hash: str
    nonce: int
    kind: str
    account: int | None
    status: str
    max_fee: int
    priority_fee: int
    sent_block: int
    payload: str
    target: str
    gas: int
    mined_block: int | None = None


class Store:
    """SQLite persistence of the keeper (thread-safe for one writer)."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def bind(self, chain_id: int, engine: str) -> None:
        """Tie the file to one engine on one chain; refuse to mix two indexes."""
        want = f"{chain_id}:{engine.lower()}"
        have = self.get_meta("binding")
        if have is None:
            self.set_meta("binding", want)
        elif have != want:
            raise ValueError(f"store {self.path} indexes {have}, not {want}: use another --db path")

    @property
    def last_block(self) -> int | None:
        value = self.get_meta("last_block")
        return None if value is None else int(value)

    # ------------------------------------------------------------------ index

    def commit_range(
        self,
        first_block: int,
        events: Iterable[AccountEvent],
        block_hashes: dict[int, str],
        last_block: int,
        funding: Iterable[FundingEvent] = (),
        settled: Iterable[SettledEvent] = (),
        legs: Iterable[LegEvent] = (),
    ) -> None:
        """Atomically replace everything indexed from ``first_block`` on with ``events``
        (and the funding and option-leg logs), record the block hashes and move
        ``last_block``."""
        funding_rows = [
            (f.block, f.log_index, f.market, str(f.rate), str(f.index), f.timestamp)
            for f in funding
        ]
        settled_rows = [
            (s.block, s.log_index, str(s.account), s.market, str(s.paid), str(s.index))
            for s in settled
        ]
        leg_rows = [
            (g.block, g.log_index, str(g.account), str(g.instrument), str(g.size)) for g in legs
        ]
        rows = [
            (
                e.block,
                e.log_index,
                str(e.account),
                e.asset,
                str(e.cash),
                str(e.collateral),
                str(e.size),
                str(e.open_notional),
            )
            for e in events
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM events WHERE block >= ?", (first_block,))
                self._db.execute("DELETE FROM blocks WHERE number >= ?", (first_block,))
                self._db.execute("DELETE FROM funding WHERE block >= ?", (first_block,))
                self._db.execute("DELETE FROM settled WHERE block >= ?", (first_block,))
                self._db.execute("DELETE FROM legs WHERE block >= ?", (first_block,))
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("INSERT INTO funding VALUES (?, ?, ?, ?, ?, ?)", funding_rows)
                self._db.executemany("INSERT INTO settled VALUES (?, ?, ?, ?, ?, ?)", settled_rows)
                self._db.executemany("INSERT INTO legs VALUES (?, ?, ?, ?, ?)", leg_rows)
                self._db.executemany(
                    "INSERT OR REPLACE INTO blocks VALUES (?, ?)", sorted(block_hashes.items())
                )
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_block', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(last_block),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def prune_blocks(self, below: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blocks WHERE number < ?", (below,))

    def block_hashes(self, first: int) -> dict[int, str]:
        rows = self._db.execute("SELECT number, hash FROM blocks WHERE number >= ?", (first,))
        return dict(rows.fetchall())

    def accounts_since(self, first_block: int) -> set[int]:
        rows = self._db.execute(
            "SELECT DISTINCT account FROM events WHERE block >= ? "
            "UNION SELECT DISTINCT account FROM settled WHERE block >= ? "
            "UNION SELECT DISTINCT account FROM legs WHERE block >= ?",
            (first_block, first_block, first_block),
        )
        return {int(r[0]) for r in rows}

    def events(self, accounts: Iterable[int] | None = None) -> list[AccountEvent]:
        """Events in chain order: all of them, or those of ``accounts``."""
        rows = self._in_order("SELECT * FROM events", accounts)
        return [
            AccountEvent(r[0], r[1], int(r[2]), r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]))
            for r in rows
        ]

    def _in_order(self, select: str, accounts: Iterable[int] | None) -> list[tuple]:
        """The rows of ``select`` (a table's block, log_index first), all of them or those of
        ``accounts``, in chain order."""
        if accounts is None:
            return self._db.execute(select + " ORDER BY block, log_index").fetchall()
        ids = [str(a) for a in accounts]
        rows = []
        for i in range(0, len(ids), 500):  # below SQLite's bound on parameters
            part = ids[i : i + 500]
            rows += self._db.execute(
                f"{select} WHERE account IN ({','.join('?' * len(part))})", part
            ).fetchall()
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def funding_words(self) -> list[FundingEvent]:
        """The latest ``Funding`` log of each market."""
        markets = [r[0] for r in self._db.execute("SELECT DISTINCT market FROM funding")]
        out = []
        for m in sorted(markets):
            r = self._db.execute(
                "SELECT block, log_index, market, rate, idx, timestamp FROM funding "
                "WHERE market = ? ORDER BY block DESC, log_index DESC LIMIT 1",
                (m,),
            ).fetchone()
            out.append(FundingEvent(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5]))
        return out

    def settlements(self, accounts: Iterable[int] | None = None) -> list[SettledEvent]:
        """``FundingSettled`` logs in chain order: all of them, or those of ``accounts``."""
        rows = self._in_order(
            "SELECT block, log_index, account, market, paid, idx FROM settled", accounts
        )
        return [SettledEvent(r[0], r[1], int(r[2]), r[3], int(r[4]), int(r[5])) for r in rows]

    def legs(self, accounts: Iterable[int] | None = None) -> list[LegEvent]:
        """Option-leg logs in chain order: all of them, or those of ``accounts``."""
        rows = self._in_order(
            "SELECT block, log_index, account, instrument, size FROM legs", accounts
        )
        return [LegEvent(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def funding_events(self) -> list[FundingEvent]:
        """Every ``Funding`` log, in chain order: the rate and index paths."""
        rows = self._db.execute(
            "SELECT block, log_index, market, rate, idx, timestamp FROM funding "
            "ORDER BY block, log_index"
        ).fetchall()
        return [FundingEvent(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5]) for r in rows]

    def count_events(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # ------------------------------------------------------------------ txs

    def add_tx(self, tx: SentTx) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO txs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx.hash,
                    tx.nonce,
                    tx.kind,
                    None if tx.account is None else str(tx.account),
                    tx.status,
                    tx.max_fee,
                    tx.priority_fee,
                    tx.sent_block,
                    tx.payload,
                    tx.target,
                    tx.gas,
                    tx.mined_block,
                ),
            )

    def set_status(self, tx_hash: str, status: str, mined_block: int | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE txs SET status = ?, mined_block = ? WHERE hash = ?",
                (status, mined_block, tx_hash),
            )

    def txs_by_hash(self, tx_hash: str) -> list[SentTx]:
        return self.txs(tx_hash=tx_hash)

    def txs(
        self, status: str | None = None, kind: str | None = None, tx_hash: str | None = None
    ) -> list[SentTx]:
        sql, args = "SELECT * FROM txs WHERE 1 = 1", []
        if tx_hash is not None:
            sql += " AND hash = ?"
            args.append(tx_hash)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        rows = self._db.execute(sql + " ORDER BY nonce, sent_block", args).fetchall()
        return [
            SentTx(
                hash=r[0],
                nonce=r[1],
                kind=r[2],
                account=None if r[3] is None else int(r[3]),
                status=r[4],
                max_fee=r[5],
                priority_fee=r[6],
                sent_block=r[7],
                payload=r[8],
                target=r[9],
                gas=r[10],
                mined_block=r[11],
            )
            for r in rows
        ]
