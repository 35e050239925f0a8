"""Find the liquidatable accounts every block.

The :class:`Scanner` values every indexed account with the float64 twin of the margin model
(one matrix product over ``(n_accounts, n_assets) x (n_assets, 16)``) at the current oracle
prices and risk parameters read from the chain, keeps the accounts whose health is negative
or within a rounding tolerance of it, confirms them with the engine's batched ``healths``
view (the chain's own numbers, 100 accounts per call) and orders the confirmed ones by
shortfall ``MM - E``, largest first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from eth_abi import decode

from offchain_risk.keeper.indexer import Book
from offchain_risk.keeper.rpc import Contracts, decode_output, eth_calls
from offchain_risk.models.liquidation import is_liquidatable
from offchain_risk.models.margin import MAX_SCENARIOS, RiskParams
from offchain_risk.units import WAD, unpack_int16

BATCH = 100  # constants.MAX_BATCH
# Float64 sums of <= 32 products carry a relative error far below 1e-12; anything within
# 1e-9 of MM (or 1e-9 USD) is sent to the chain for the exact answer.
REL_TOL = 1e-9
ABS_TOL = 1e-9


def unpack_shocks(word: int) -> list[int]:
    """The engine's shock word: 16 int16 bps, scenario k in bits 16k..16k+15."""
    return unpack_int16(word, MAX_SCENARIOS)


@dataclass(frozen=True)
class Market:
    """Liquidation prices and risk parameters as the chain holds them now.

    ``prices_wad`` are ``engine.liquidation_price``: the feed's price when valid, else the
    guardian's live fallback, else 0. Collateral at 0 counts at zero, as the chain counts it;
    a perp on an asset at 0 blocks the account's liquidation (``price_ok`` False)."""

    prices_wad: np.ndarray  # (n_assets,) object ints
    price_ok: np.ndarray  # (n_assets,) bool: a liquidation price exists
    params: RiskParams

    @property
    def n_assets(self) -> int:
        return len(self.prices_wad)


def read_market(c: Contracts) -> Market:
    """Liquidation prices (``engine.liquidation_price``) and risk parameters
    (``Lens.asset_config``, ``shock_word``, ``im_multiplier``) of every listed asset, in two
    batched round trips. A dead or reverting feed reads as price 0 (the engine's reads are
    gas-capped and never revert), so it removes only the accounts exposed to it."""
    engine, lens = c.engine, c.lens
    [raw] = eth_calls(c.w3, [(engine.address, engine.encode_abi("num_assets"))])
    n = decode(["uint256"], raw)[0]
    calls = [(engine.address, engine.encode_abi("im_multiplier"))]
    for a in range(n):
        calls += [
            (engine.address, engine.encode_abi("liquidation_price", args=(a,))),
            (lens.address, lens.encode_abi("asset_config", args=(a,))),
            (engine.address, engine.encode_abi("shock_word", args=(a,))),
        ]
    out = eth_calls(c.w3, calls)
    im = decode(["uint256"], out[0])[0]
    prices, ok, floors, haircuts, shocks = [], [], [], [], []
    for a in range(n):
        p = int(decode_output(engine, "liquidation_price", out[1 + 3 * a]))
        cfg = decode_output(lens, "asset_config", out[2 + 3 * a])
        prices.append(p)
        ok.append(p != 0)
        floors.append(int(cfg["floor_bps"]))
        haircuts.append(int(cfg["haircut_bps"]))
        shocks.append(unpack_shocks(decode(["uint256"], out[3 + 3 * a])[0]))
    params = RiskParams(
        floor_bps=np.array(floors, dtype=np.int64),
        haircut_bps=np.array(haircuts, dtype=np.int64),
        shocks_bps=np.array(shocks, dtype=np.int64).reshape(n, MAX_SCENARIOS),
        im_multiplier_wad=int(im),
    )
    return Market(np.array(prices, dtype=object), np.array(ok, dtype=bool), params)


def float_margin(book: Book, market: Market) -> tuple[np.ndarray, np.ndarray]:
    """(equity (n,), mm (n,)) in USD for every indexed account: the float twin."""
    cash, coll, size, on = book.view()
    a = market.n_assets
    coll, size, on = coll[:, :a], size[:, :a], on[:, :a]
    p = np.array([int(x) for x in market.prices_wad], dtype=np.float64) / WAD  # (a,)
    keep = 1.0 - market.params.haircut_bps.astype(np.float64) * 1e-4  # (a,)
    equity = cash - on.sum(axis=1) + (coll * keep + size) @ p  # (n,)
    exposure = (coll + size) * p  # (n, a) USD
    losses = exposure @ (market.params.shocks_bps.astype(np.float64) * -1e-4)  # (n, 16)
    floor = ((coll + np.abs(size)) * p) @ (market.params.floor_bps.astype(np.float64) * 1e-4)
    mm = np.maximum(np.maximum(losses.max(axis=1), floor), 0.0)
    return equity, mm


@dataclass(frozen=True)
class Candidate:
    account: int
    equity: int  # WAD, from the chain
    mm: int

    @property
    def shortfall(self) -> int:
        return self.mm - self.equity


@dataclass(frozen=True)
class ScanResult:
    accounts: int  # indexed
    flagged: int  # by the float twin
    confirmed: list[Candidate]  # liquidatable on chain, largest shortfall first
    false_positives: int  # flagged but healthy on chain (within the tolerance)
    blocked: int  # liquidatable by the twin but a price is invalid
    numpy_ms: float
    chain_ms: float

    @property
    def total_ms(self) -> float:
        return self.numpy_ms + self.chain_ms


class Scanner:
    """Twin-then-chain scan of every indexed account."""

    def __init__(self, contracts: Contracts, book: Book, *, batch: int = BATCH):
        if not 1 <= batch <= BATCH:
            raise ValueError(f"batch must be in [1, {BATCH}]")
        self.c = contracts
        self.book = book
        self.batch = batch

    def flag(self, market: Market) -> tuple[list[int], int]:
        """Accounts the float twin finds at or below MM (within tolerance), and how many
        of those hold a perp on an asset without a liquidation price (not liquidatable
        until its feed or a fallback price returns)."""
        if len(self.book) == 0:
            return [], 0
        equity, mm = float_margin(self.book, market)
        near = equity < mm + REL_TOL * (np.abs(equity) + mm) + ABS_TOL
        near &= mm > 0  # nothing to liquidate without a requirement
        _, coll, size, _ = self.book.view()
        a = market.n_assets
        exposed_bad = (size[:, :a] != 0) & ~market.price_ok
        blocked = near & exposed_bad.any(axis=1)
        rows = np.flatnonzero(near & ~blocked)
        return [self.book.accounts[r] for r in rows], int(blocked.sum())

    def confirm(self, accounts: list[int]) -> list[Candidate]:
        """The chain's (equity, MM) for ``accounts``; the liquidatable ones."""
        engine = self.c.engine
        parts = [accounts[i : i + self.batch] for i in range(0, len(accounts), self.batch)]
        answers = eth_calls(
            self.c.w3, [(engine.address, engine.encode_abi("healths", args=(p,))) for p in parts]
        )
        out = []
        for part, raw in zip(parts, answers, strict=True):
            for account, m in zip(part, decode_output(engine, "healths", raw), strict=True):
                equity, mm = int(m["equity"]), int(m["mm"])
                if is_liquidatable(equity, mm, m["prices_ok"], m["unpriced"]):
                    out.append(Candidate(account, equity, mm))
        out.sort(key=lambda c: c.shortfall, reverse=True)
        return out

    def scan(self, market: Market | None = None) -> tuple[ScanResult, Market]:
        t0 = time.perf_counter()
        if market is None:
            market = read_market(self.c)
        t1 = time.perf_counter()
        flagged, blocked = self.flag(market)
        t2 = time.perf_counter()
        confirmed = self.confirm(flagged)
        t3 = time.perf_counter()
        return (
            ScanResult(
                accounts=len(self.book),
                flagged=len(flagged),
                confirmed=confirmed,
                false_positives=len(flagged) - len(confirmed),
                blocked=blocked,
                numpy_ms=(t2 - t1) * 1e3,
                chain_ms=((t1 - t0) + (t3 - t2)) * 1e3,
            ),
            market,
        )
