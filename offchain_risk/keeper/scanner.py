"""Find the liquidatable accounts every block.

The :class:`Scanner` values every indexed account with the float64 twin of the margin model
(one matrix product over ``(n_accounts, n_assets) x (n_assets, 16)``) at the liquidation
prices and risk parameters read from the chain at the indexed head, keeps the accounts whose
health is negative or within a rounding tolerance of it, decides them exactly and orders the
liquidatable ones by shortfall ``MM - E``, largest first.

How flagged accounts are decided (``confirm``):

* ``"twin"`` (default): the exact twin (:func:`~offchain_risk.models.margin.margin_exact`,
  equal to ``ledger._margin`` to the wei) on the indexed balances, at the same block as the
  prices and parameters; only an account the twin cannot decide (a balance in an asset the
  market read does not cover) goes to ``healths``.
* ``"parallel"``: the engine's ``healths`` view (100 accounts per call), the calls spread
  over ``threads`` concurrent JSON-RPC batches.
* ``"chain"``: ``healths`` in one JSON-RPC batch (the node runs the calls one after another).

Whatever decides, the liquidator's preview and simulation run on chain before any send.

Option legs: the twins value perps and collateral only, so an account holding an option leg
(``Book.options``, from the option book's logs) is never flagged by them: the chain decides
it (``healths``) every block, in every mode.

Funding (docs/ARCHITECTURE.md#funding): both twins take each position's unsettled funding
off equity, as ``ledger._margin`` does: ``owed(size, index now, snapshot)`` with the index
moved to the block's time at the liquidation price from the market's indexed funding word
(:func:`funding_index`), the snapshots from the indexed ``FundingSettled`` logs.

Per-asset failure tolerance: an asset whose reads fail (an RPC error, a reverting lens, an
answer that does not decode or is out of range) is marked failed in the :class:`Market`, and
only the accounts with a balance in it leave this block's work (``ScanResult.excluded``);
an asset without a liquidation price (dead, stale or garbage feed and no live fallback)
blocks only the accounts with a perp on it (``ScanResult.blocked``), as the chain does.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from eth_abi import decode

from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.rpc import (
    Contracts,
    RpcError,
    decode_output,
    encode_call,
    eth_calls,
    rpc_batch,
)
from offchain_risk.keeper.workers import Partition
from offchain_risk.models.funding import index_at, owed_exact
from offchain_risk.models.liquidation import is_liquidatable
from offchain_risk.models.margin import (
    MAX_SCENARIOS,
    MAX_SHOCK_BPS,
    MIN_SHOCK_BPS,
    RiskParams,
    margin_exact,
)
from offchain_risk.units import BPS, SHOCK_WORDS, WAD, unpack_shock_words

log = logging.getLogger("ballast.keeper.scanner")

BATCH = 100  # constants.MAX_BATCH
# Float64 sums of <= 32 products carry a relative error far below 1e-12; anything within
# 1e-9 of MM (or 1e-9 USD) is sent to the chain for the exact answer.
REL_TOL = 1e-9
ABS_TOL = 1e-9
CONFIRM_MODES = ("twin", "exact", "parallel", "chain")
MAX_PRICE = 2**100  # ledger: a liquidation price above this is not one the engine returns


def unpack_shocks(words: list[int]) -> list[int]:
    """The engine's two shock words of an asset: 32 int16 bps, scenario k in field k % 16
    of word k // 16."""
    return unpack_shock_words(words)


@dataclass(frozen=True)
class Market:
    """Liquidation prices and risk parameters as the chain holds them at ``block``.

    ``prices_wad`` are ``engine.liquidation_price``: the feed's price when valid, else the
    guardian's live fallback, else 0. Collateral at 0 counts at zero, as the chain counts it;
    a perp on an asset at 0 blocks the account's liquidation (``price_ok`` False).
    ``failed`` maps an asset whose reads failed to the reason: its price and parameters are
    unknown (zeros here), so every account with a balance in it is left out of the block."""

    prices_wad: np.ndarray  # (n_assets,) object ints
    price_ok: np.ndarray  # (n_assets,) bool: a liquidation price exists
    params: RiskParams
    failed: dict[int, str] = field(default_factory=dict)
    block: int | str = "latest"
    timestamp: int = 0  # the block's time: funding accrues to it

    @property
    def n_assets(self) -> int:
        return len(self.prices_wad)

    @property
    def known(self) -> np.ndarray:
        """(n_assets,) bool: the asset's price and parameters were read."""
        return np.array([a not in self.failed for a in range(self.n_assets)], dtype=bool)


def _asset(c: Contracts, raws: list) -> tuple[int, int, int, list[int]]:
    """(price, floor_bps, haircut_bps, shocks) of one asset from its four answers; raises
    ValueError on an error answer or one that does not decode into the engine's ranges."""
    for raw in raws:
        if isinstance(raw, RpcError):
            raise ValueError(f"call failed: {raw}")
    price_raw, cfg_raw, *shock_raws = (bytes.fromhex(r.removeprefix("0x")) for r in raws)
    try:
        price = int(decode_output(c.engine, "liquidation_price", price_raw))
        cfg = decode_output(c.lens, "asset_config", cfg_raw)
        shocks = unpack_shocks([decode(["uint256"], raw)[0] for raw in shock_raws])
    except Exception as exc:  # eth_abi's decoding errors have no common base
        raise ValueError(f"undecodable answer: {exc}") from exc
    floor, haircut = int(cfg["floor_bps"]), int(cfg["haircut_bps"])
    if not 0 <= price <= MAX_PRICE:
        raise ValueError(f"price {price} outside [0, 2**100]")
    if not (0 <= floor <= BPS and 0 <= haircut <= BPS):
        raise ValueError(f"floor {floor} or haircut {haircut} bps outside [0, 10000]")
    if min(shocks) < MIN_SHOCK_BPS or max(shocks) > MAX_SHOCK_BPS:
        raise ValueError("a shock outside [-10000, 32767] bps")
    return price, floor, haircut, shocks


def read_market(c: Contracts, block: int | str = "latest") -> Market:
    """Liquidation prices (``engine.liquidation_price``) and risk parameters
    (``Lens.asset_config``, both ``shock_word``s, ``im_multiplier``) of every listed asset at
    ``block``, in two batched round trips. A dead or reverting feed reads as price 0 (the
    engine's reads are gas-capped and never revert). An asset whose own reads fail is
    recorded in ``Market.failed`` and logged as an alert; the other assets are read as
    usual. Failures of ``num_assets`` or ``im_multiplier`` concern every account and raise."""
    engine, lens = c.engine, c.lens
    tag = block if isinstance(block, str) else hex(block)
    [raw] = eth_calls(c.w3, [(engine.address, encode_call(engine, "num_assets"))], tag)
    n = decode(["uint256"], raw)[0]
    calls = [(engine.address, encode_call(engine, "im_multiplier"))]
    for a in range(n):
        calls += [
            (engine.address, encode_call(engine, "liquidation_price", (a,))),
            (lens.address, encode_call(lens, "asset_config", (a,))),
        ]
        calls += [
            (engine.address, encode_call(engine, "shock_word", (a, w))) for w in range(SHOCK_WORDS)
        ]
    requests = [("eth_call", [{"to": to, "data": data}, tag]) for to, data in calls]
    out = rpc_batch(c.w3, [*requests, ("eth_getBlockByNumber", [tag, False])])
    head = out.pop()
    for answer in (out[0], head):
        if isinstance(answer, RpcError):
            raise answer
    timestamp = head["timestamp"]
    timestamp = int(timestamp, 16) if isinstance(timestamp, str) else int(timestamp)
    im = decode(["uint256"], bytes.fromhex(out[0].removeprefix("0x")))[0]
    prices, ok, floors, haircuts, shocks = [], [], [], [], []
    failed: dict[int, str] = {}
    for a in range(n):
        try:
            per = 2 + SHOCK_WORDS  # answers per asset
            p, floor, haircut, shock = _asset(c, out[1 + per * a : 1 + per * (a + 1)])
        except ValueError as exc:
            failed[a] = str(exc)
            p, floor, haircut, shock = 0, 0, 0, [0] * MAX_SCENARIOS
            log.warning(
                "alert: market read of asset %d failed: %s",
                a,
                exc,
                extra={"fields": {"alert": "market_read_failed", "asset": a, "block": block}},
            )
        prices.append(p)
        ok.append(p != 0 and a not in failed)
        floors.append(floor)
        haircuts.append(haircut)
        shocks.append(shock)
    params = RiskParams(
        floor_bps=np.array(floors, dtype=np.int64),
        haircut_bps=np.array(haircuts, dtype=np.int64),
        shocks_bps=np.array(shocks, dtype=np.int64).reshape(n, MAX_SCENARIOS),
        im_multiplier_wad=int(im),
    )
    return Market(
        np.array(prices, dtype=object),
        np.array(ok, dtype=bool),
        params,
        failed,
        block,
        int(timestamp),
    )


def funding_index(book: Book, market: Market) -> np.ndarray:
    """(n_assets,) Python ints: each market's funding index at ``market.timestamp`` and
    its liquidation price (``ledger._index_at``), from the book's indexed funding words; 0
    where funding never moved. A market without its block's time cannot value a rate in
    force: refused."""
    if market.timestamp == 0 and any(word >> 192 for word in book.funding.values()):
        raise ValueError("a funding rate is in force: the market needs its block's timestamp")
    return np.array(
        [
            index_at(book.funding.get(a, 0), int(market.prices_wad[a]), market.timestamp)
            for a in range(market.n_assets)
        ],
        dtype=object,
    )


CHUNK = 2_048  # rows per pass of the float scan: its work arrays stay in a core's L2 cache


class ScanBuffers:
    """The float scan's work arrays, kept from block to block: reallocated only when the
    book's size or the asset count changes, so a scan of a steady book allocates no ``(n,
    ...)`` array (fresh arrays of that size cost page faults that take longer than the
    arithmetic). The per-scenario work runs over ``CHUNK`` rows at a time in ``(CHUNK,
    ...)`` arrays that stay in cache."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None

    def fit(self, n: int, a: int) -> ScanBuffers:
        if self.shape != (n, a):
            self.shape = (n, a)
            self.equity = np.empty(n)
            self.mm = np.empty(n)
            self.near = np.empty(n, dtype=bool)
            self.flag = np.empty(n, dtype=bool)
            self.tmp = np.empty(n)
            c = min(n, CHUNK)
            self.net = np.empty((c, a))  # collateral + size
            self.gross = np.empty((c, a))  # collateral + |size|
            self.losses = np.empty((MAX_SCENARIOS, c))  # scenario-major: max over rows
        return self


def _loss_weights(market: Market) -> np.ndarray:
    """(k, a): USD lost per unit of net exposure in each of the market's distinct scenarios
    with any non-zero shock (a scenario of zeros loses nothing, which MM's floor at zero
    already covers; equal scenarios lose the same)."""
    p = np.array([int(x) for x in market.prices_wad], dtype=np.float64) / WAD  # (a,)
    shocks = np.asarray(market.params.shocks_bps)  # (a, 16)
    cols = np.unique(shocks[:, shocks.any(axis=0)], axis=1)  # (a, k)
    return np.ascontiguousarray((cols.astype(np.float64) * -1e-4 * p[:, None]).T)


def float_margin(
    book: Book, market: Market, buffers: ScanBuffers | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(equity (n,), mm (n,)) in USD for every indexed account: the float twin, unsettled
    funding taken off equity. With ``buffers`` the results live in them (valid until the next
    scan with the same buffers)."""
    cash, coll, size, on = book.view()
    n, a = len(cash), market.n_assets
    coll, size, on = coll[:, :a], size[:, :a], on[:, :a]
    p = np.array([int(x) for x in market.prices_wad], dtype=np.float64) / WAD  # (a,)
    keep = 1.0 - market.params.haircut_bps.astype(np.float64) * 1e-4  # (a,)
    floor_w = market.params.floor_bps.astype(np.float64) * 1e-4 * p  # (a,)
    loss_w = _loss_weights(market)  # (k, a)
    b = (buffers or ScanBuffers()).fit(n, a)
    equity, mm, k = b.equity, b.mm, len(loss_w)
    ones = np.ones(a)
    index = None  # (a,) USD per unit: each market's funding index now
    if book.funding:
        index = np.array([int(x) for x in funding_index(book, market)], dtype=np.float64) / WAD
    for lo in range(0, n, CHUNK):  # CHUNK rows at a time: every pass over them hits cache
        hi = min(n, lo + CHUNK)
        c, cl, sz = hi - lo, coll[lo:hi], size[lo:hi]
        # E = cash - sum(on) + coll . (p * keep) + size . p
        e, t = equity[lo:hi], b.tmp[lo:hi]
        np.matmul(cl, p * keep, out=e)
        e += np.matmul(sz, p, out=t)
        e += cash[lo:hi]
        e -= np.matmul(on[lo:hi], ones, out=t)
        if index is not None:  # unsettled funding: size x (index - the position's snapshot)
            e -= np.einsum("ij,ij->i", sz, index[None, :] - book.snap[lo:hi, :a])
        # MM = max(worst scenario loss, floor, 0)
        m = np.matmul(
            np.add(np.abs(sz, out=b.gross[:c]), cl, out=b.gross[:c]), floor_w, out=mm[lo:hi]
        )
        if k:
            losses = np.matmul(loss_w, np.add(cl, sz, out=b.net[:c]).T, out=b.losses[:k, :c])
            np.maximum(m, losses.max(axis=0), out=m)
    np.maximum(mm, 0.0, out=mm)
    return equity, mm


@dataclass(frozen=True)
class Candidate:
    account: int
    equity: int  # WAD: the chain's or the exact twin's; the float twin's when not ``exact``
    mm: int
    exact: bool = True

    @property
    def shortfall(self) -> int:
        return self.mm - self.equity


@dataclass(frozen=True)
class ScanResult:
    accounts: int  # indexed
    flagged: int  # by the float twin
    confirmed: list[Candidate]  # liquidatable, largest shortfall first
    false_positives: int  # flagged but not liquidatable (within the tolerance)
    blocked: int  # liquidatable by the twin but a perp's asset has no liquidation price
    numpy_ms: float  # the float scan
    chain_ms: float  # market read + on-chain confirmations
    excluded: int = 0  # accounts with a balance in an asset whose reads failed
    exact_ms: float = 0.0  # the exact twin's decisions
    on_chain: int = 0  # flagged accounts decided by ``healths``
    options: int = 0  # accounts holding option legs (decided by ``healths``, in ``on_chain``)
    failed_assets: tuple[int, ...] = ()
    unpriced_assets: tuple[int, ...] = ()  # read, but no liquidation price

    @property
    def total_ms(self) -> float:
        return self.numpy_ms + self.exact_ms + self.chain_ms


class Scanner:
    """Twin-then-decide scan of every indexed account (see the module's docstring)."""

    def __init__(
        self,
        contracts: Contracts,
        book: Book,
        *,
        batch: int = BATCH,
        confirm: str = "twin",
        threads: int = 4,
    ):
        if not 1 <= batch <= BATCH:
            raise ValueError(f"batch must be in [1, {BATCH}]")
        if confirm not in CONFIRM_MODES:
            raise ValueError(f"confirm must be one of {CONFIRM_MODES}, got {confirm!r}")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.c = contracts
        self.book = book
        self.batch = batch
        self.confirm_mode = confirm
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._flagged_float: tuple[np.ndarray, np.ndarray] | None = None
        self._buffers = ScanBuffers()
        self._masks: dict[Partition, np.ndarray] = {}

    def flag(
        self, market: Market, partition: Partition | None = None
    ) -> tuple[list[int], int, int]:
        """Accounts the float twin finds at or below MM (within tolerance); how many of
        those hold a perp on an asset without a liquidation price (not liquidatable until
        its feed or a fallback price returns); and how many accounts hold a balance in an
        asset whose reads failed (left out of this block, whatever their health). With a
        ``partition``, only its accounts."""
        self._flagged_float = None
        n = len(self.book)
        if n == 0:
            return [], 0, 0
        _, coll, size, _ = self.book.view()
        a = market.n_assets
        equity, mm = float_margin(self.book, market, self._buffers)
        b = self._buffers
        # near: E < MM + REL_TOL (|E| + MM) + ABS_TOL, and MM > 0
        bound = np.abs(equity, out=b.tmp)
        bound += mm
        bound *= REL_TOL
        bound += ABS_TOL
        bound += mm
        near = np.less(equity, bound, out=b.near)
        near &= np.greater(mm, 0.0, out=b.flag)  # nothing to liquidate without a requirement
        if self.book.options:  # the chain decides these (see the module doc)
            near[[self.book.rows[x] for x in self.book.options]] = False
        excluded = None
        if market.failed:
            bad = ~market.known  # (a,)
            excluded = (((coll[:, :a] != 0) | (size[:, :a] != 0)) & bad).any(axis=1)
            near &= ~excluded
        if partition is not None and partition.count > 1:
            mine = self._mine(partition, n)
            near &= mine
            if excluded is not None:
                excluded &= mine
        blocked = 0
        if not market.price_ok.all():
            exposed_bad = ((size[:, :a] != 0) & ~market.price_ok).any(axis=1)
            exposed_bad &= near
            blocked = int(exposed_bad.sum())
            near &= ~exposed_bad
        rows = np.flatnonzero(near)
        self._flagged_float = (equity[rows], mm[rows])  # for decide(): (k,) USD each
        n_excluded = 0 if excluded is None else int(excluded.sum())
        return self.book.ids[rows].tolist(), blocked, n_excluded

    def _mine(self, partition: Partition, n: int) -> np.ndarray:
        """(n,) bool: the rows of ``partition``, kept until the book grows."""
        mask = self._masks.get(partition)
        if mask is None or len(mask) != n:
            mask = self._masks[partition] = partition.mask(self.book.slots[:n])
        return mask

    def decide(
        self,
        accounts: list[int],
        market: Market,
        floats: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[list[Candidate], list[int]]:
        """The twins on the indexed balances: (the liquidatable ones, the accounts they
        cannot decide). With ``floats`` (the float twin's equity and MM of ``accounts``), an
        account below MM by more than the float tolerance is liquidatable without more work
        (the float error is far below it); the exact twin decides the others, exactly when
        the book is indexed to ``market.block``: the same sums and roundings as
        ``ledger._margin`` in the liquidation valuation (collateral at price 0 counts at
        zero; a perp at price 0 blocks). ``accounts`` come from :meth:`flag` (every perp
        priced, MM > 0)."""
        if not accounts:
            return [], []
        a = market.n_assets
        out: list[Candidate] = []
        if floats is not None:
            e, mm = floats
            sure = mm - e > REL_TOL * (np.abs(e) + mm) + ABS_TOL  # (k,)
            if self.book.n_assets > a:  # a balance in an asset the market does not cover
                rows = [self.book.rows[x] for x in accounts]
                _, coll_f, size_f, _ = self.book.view()
                sure &= ~((coll_f[rows, a:] != 0) | (size_f[rows, a:] != 0)).any(axis=1)
            out = [
                Candidate(accounts[i], int(e[i] * WAD), int(mm[i] * WAD), exact=False)
                for i in np.flatnonzero(sure)
            ]
            accounts = [accounts[i] for i in np.flatnonzero(~sure)]
            if not accounts:
                return out, []
        cash, coll, size, on = self.book.exact(accounts)
        # A balance in an asset the market read does not cover: the chain decides.
        beyond = np.zeros(len(accounts), dtype=bool)
        if coll.shape[1] > a:
            beyond = ((coll[:, a:] != 0) | (size[:, a:] != 0)).any(axis=1)
        keep = np.flatnonzero(~beyond)
        undecided = [accounts[i] for i in np.flatnonzero(beyond)]
        if len(keep) == 0:
            return out, undecided
        cash, coll, size, on = cash[keep], coll[keep, :a], size[keep, :a], on[keep, :a]
        exact = margin_exact(cash, coll, size, on, market.prices_wad, market.params)
        equity = exact.equity
        if self.book.funding:  # unsettled funding, to the wei (``ledger._margin``)
            snaps = self.book.snapshots([accounts[i] for i in keep])[:, :a]
            equity = equity - owed_exact(size, snaps, funding_index(self.book, market))
        no_price = np.array([int(p) == 0 for p in market.prices_wad], dtype=bool)  # (a,)
        prices_ok = ~((size != 0) & no_price).any(axis=1)
        unpriced = (((coll != 0) | (size != 0)) & no_price).any(axis=1)
        live = is_liquidatable(equity, exact.mm, prices_ok, unpriced)
        out += [
            Candidate(accounts[keep[i]], int(equity[i]), int(exact.mm[i]))
            for i in np.flatnonzero(live)
        ]
        return out, undecided

    def confirm(
        self, accounts: list[int], block: int | str = "latest", *, threads: int = 1
    ) -> list[Candidate]:
        """The chain's (equity, MM) for ``accounts`` (``healths``, ``batch`` per call); the
        liquidatable ones. ``threads`` > 1 spreads the calls over that many concurrent
        JSON-RPC batches."""
        if not accounts:
            return []
        engine = self.c.engine
        tag = block if isinstance(block, str) else hex(block)
        parts = [accounts[i : i + self.batch] for i in range(0, len(accounts), self.batch)]
        calls = [(engine.address, encode_call(engine, "healths", (p,))) for p in parts]
        lanes = max(1, min(threads, len(calls)))
        if lanes == 1:
            answers = eth_calls(self.c.w3, calls, tag)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="healths")
            step = -(-len(calls) // lanes)
            chunks = [calls[i : i + step] for i in range(0, len(calls), step)]
            answers = [
                raw
                for part in self._pool.map(lambda ch: eth_calls(self.c.w3, ch, tag), chunks)
                for raw in part
            ]
        out = []
        for part, raw in zip(parts, answers, strict=True):
            for account, m in zip(part, decode_output(engine, "healths", raw), strict=True):
                equity, mm = int(m["equity"]), int(m["mm"])
                if is_liquidatable(equity, mm, m["prices_ok"], m["unpriced"]):
                    out.append(Candidate(account, equity, mm))
        return out

    def scan(
        self,
        market: Market | None = None,
        *,
        block: int | str = "latest",
        confirm: str | None = None,
        partition: Partition | None = None,
    ) -> tuple[ScanResult, Market]:
        """One scan at ``block`` (the indexed head: the exact twin needs the book and the
        market of one block). ``confirm`` overrides the scanner's mode for this scan;
        ``partition`` limits it to that partition's accounts."""
        mode = confirm or self.confirm_mode
        if mode not in CONFIRM_MODES:
            raise ValueError(f"confirm must be one of {CONFIRM_MODES}, got {mode!r}")
        t0 = time.perf_counter()
        if market is None:
            market = read_market(self.c, block)
        t1 = time.perf_counter()
        flagged, blocked, excluded = self.flag(market, partition)
        t2 = time.perf_counter()
        if mode == "twin":
            confirmed, ask = self.decide(flagged, market, self._flagged_float)
        elif mode == "exact":
            confirmed, ask = self.decide(flagged, market)
        else:
            confirmed, ask = [], flagged
        holders = sorted(a for a in self.book.options if partition is None or partition.holds(a))
        ask = ask + holders
        t3 = time.perf_counter()
        threads = self.threads if mode == "parallel" else 1
        confirmed += self.confirm(ask, market.block, threads=threads)
        t4 = time.perf_counter()
        confirmed.sort(key=lambda c: c.shortfall, reverse=True)
        return (
            ScanResult(
                accounts=len(self.book),
                flagged=len(flagged) + len(holders),
                confirmed=confirmed,
                false_positives=len(flagged) + len(holders) - len(confirmed),
                blocked=blocked,
                numpy_ms=(t2 - t1) * 1e3,
                chain_ms=((t1 - t0) + (t4 - t3)) * 1e3,
                excluded=excluded,
                exact_ms=(t3 - t2) * 1e3,
                on_chain=len(ask),
                options=len(holders),
                failed_assets=tuple(sorted(market.failed)),
                unpriced_assets=tuple(
                    a
                    for a in range(market.n_assets)
                    if a not in market.failed and not market.price_ok[a]
                ),
            ),
            market,
        )
