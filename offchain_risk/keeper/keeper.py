"""The keeper: follow transactions -> index -> scan -> liquidate (-> risk update) (-> vol
surfaces) per block.

:class:`Keeper` wires the plain parts and runs one block with :meth:`Keeper.tick`, which
returns what it did. :meth:`Keeper.run` is the plain-Python loop (polling the head,
backing off while the endpoint fails, stopping cleanly on SIGINT / SIGTERM); the Silverback
bot in ``offchain_risk/keeper/bot.py`` calls ``tick`` from its block handler instead.

With a ``vol_updater`` (:class:`~offchain_risk.keeper.vol_updater.VolUpdater` submitting
through the keeper's own transaction manager), a tick ends by publishing the vol surfaces
when they are due on the chain's clock (hourly), priced at the oracle prices the scan read.
It runs after the liquidations and is isolated from them: a refused surface or any failure
of the vol path is logged and counted, never lost liquidations or a failed tick.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from offchain_risk.keeper.indexer import Book, Indexer, IndexResult
from offchain_risk.keeper.liquidator import KIND, Action, Liquidator, LiquidatorConfig
from offchain_risk.keeper.metrics import Metrics
from offchain_risk.keeper.rpc import RPC_ERRORS, Contracts
from offchain_risk.keeper.scanner import Scanner, ScanResult
from offchain_risk.keeper.store import Store
from offchain_risk.keeper.txs import GasPolicy, NonceSource, PollResult, TxManager, signer_for
from offchain_risk.keeper.vol_signer import VOL_KIND
from offchain_risk.keeper.workers import Claims, Partition
from offchain_risk.units import WAD

log = logging.getLogger("ballast.keeper")
STATUS_KEY = "status"  # store meta: the last tick's state (offchain_risk.keeper.status)


@dataclass(frozen=True)
class TickResult:
    head: int
    index: IndexResult | None = None
    poll: PollResult | None = None
    scan: ScanResult | None = None
    actions: list[Action] = field(default_factory=list)
    risk_update: Any = None
    error: str | None = None
    vol: list | None = None  # the vol updater's results, when it ran this tick

    def sent(self) -> list[Action]:
        return [a for a in self.actions if a.outcome == "sent"]

    def summary(self) -> dict:
        out: dict[str, Any] = {"head": self.head}
        if self.error:
            out["error"] = self.error
        if self.scan is not None:
            out |= {
                "accounts": self.scan.accounts,
                "at_risk": len(self.scan.confirmed),
                "scan_ms": round(self.scan.total_ms, 2),
            }
            if self.scan.excluded or self.scan.blocked:
                out |= {"excluded": self.scan.excluded, "blocked": self.scan.blocked}
        outcomes: dict[str, int] = {}
        for a in self.actions:
            outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
        if outcomes:
            out["actions"] = outcomes
        if self.vol is not None:
            out["vol_published"] = sum(1 for r in self.vol if r.ok)
            out["vol_refused"] = sum(1 for r in self.vol if not r.ok)
        if self.poll is not None:
            out["confirmed"] = len(self.poll.confirmed)
            out["failed"] = len(self.poll.failed)
            out["bumped"] = len(self.poll.bumped)
        return out


class Keeper:
    """One keeper over one deployment. ``tx`` None is a dry run (nothing is signed)."""

    def __init__(
        self,
        contracts: Contracts,
        store: Store,
        liquidator_config: LiquidatorConfig,
        *,
        tx: TxManager | None = None,
        sender: str | None = None,
        start_block: int = 0,
        chunk: int = 2_000,
        lookback: int = 8,
        risk_updater: Any = None,
        metrics: Metrics | None = None,
        confirm: str = "twin",
        claims: Claims | None = None,
        vol_updater: Any = None,
    ):
        """``confirm``: how flagged accounts are decided (:class:`Scanner`); ``claims``:
        shared with other workers (:mod:`~offchain_risk.keeper.workers`); ``vol_updater``:
        publishes vol surfaces through ``tx`` (see the module doc)."""
        self.c = contracts
        self.store = store
        self.metrics = metrics or Metrics()
        store.bind(contracts.w3.eth.chain_id, contracts.engine.address)
        n_assets = contracts.engine.functions.num_assets().call()
        self.book = Book(n_assets)
        self.indexer = Indexer(
            contracts.w3,
            contracts.engine.address,
            store,
            self.book,
            start_block=start_block,
            chunk=chunk,
            lookback=lookback,
        )
        self.scanner = Scanner(contracts, self.book, confirm=confirm)
        self.tx = tx
        self.claims = claims
        self.liquidator = Liquidator(contracts, liquidator_config, tx, sender=sender, claims=claims)
        self.risk_updater = risk_updater
        self.vol_updater = vol_updater
        self._stop = threading.Event()

    @classmethod
    def from_manifest(
        cls,
        project: Any,
        w3: Any,
        manifest: dict,
        store: Store,
        *,
        account: Any = None,
        liquidator_sub: int = 0,
        dry_run_sender: str | None = None,
        gas: GasPolicy | None = None,
        nonces: NonceSource | None = None,
        max_per_tick: int = LiquidatorConfig.max_per_tick,
        **kwargs: Any,
    ) -> Keeper:
        """A keeper on the deployment a manifest names (``ape run deploy`` wrote it; see
        :func:`offchain_risk.deploy.load_manifest`): signing with the Ape ``account``, or a
        dry run from ``dry_run_sender``. A manifest of another chain is refused.
        ``nonces``: the source shared with other senders from the account's key;
        ``max_per_tick``: liquidations sent per tick."""
        from offchain_risk.chain import account_id

        c = Contracts.from_manifest(project, w3, manifest)
        owner = str(account.address) if account is not None else dry_run_sender
        if owner is None:
            raise ValueError("a dry run needs dry_run_sender: the address to simulate from")
        config = kwargs.pop("liquidator_config", None) or LiquidatorConfig(
            account=account_id(owner, liquidator_sub), max_per_tick=max_per_tick
        )
        tx = None
        if account is not None:
            tx = TxManager(w3, signer_for(account), store, gas, nonces=nonces)
        kwargs.setdefault("start_block", int(manifest.get("block", 0)))
        return cls(c, store, config, tx=tx, sender=owner, **kwargs)

    # ------------------------------------------------------------------ one block

    def tick(self, partition: Partition | None = None) -> TickResult:
        """Index, follow sent transactions, scan and liquidate for the current head; with a
        ``partition``, scan and liquidate only its accounts (every worker indexes all)."""
        m = self.metrics
        head = -1
        try:
            head = self.c.w3.eth.block_number
            # Settle sent transactions first, then index at least to the block of every one
            # settled: the node may mine one after `head` was read (anvil mines an automined
            # transaction after the send returns). A book short of it would still show its
            # account below MM, no longer in flight, and its preview would revert.
            poll = self.tx.poll(head) if self.tx is not None else None
            settled = [] if poll is None else [*poll.confirmed, *poll.failed]
            index = self.indexer.sync(max([head, *(t.mined_block or 0 for t in settled)]))
            if poll is not None and self.claims is not None:
                for t in (*poll.confirmed, *poll.failed, *poll.dropped):
                    if t.kind == KIND and t.account is not None:
                        self.claims.release(t.account)
            scan, market = self.scanner.scan(block=index.head, partition=partition)
            actions = self.liquidator.run(scan.confirmed, market)
            risk = None
            if self.risk_updater is not None and self.risk_updater.due(market):
                risk = self.risk_updater.run(market)
                if risk is not None and getattr(risk, "landed", False):
                    m.risk_updates.inc()
        except RPC_ERRORS as exc:
            m.rpc_errors.inc()
            m.healthy.set(0)
            log.warning("tick lost to the RPC endpoint: %s", exc)
            error = f"{type(exc).__name__}: {exc}"
            self._write_status(error=error)
            return TickResult(head, error=error)
        m.accounts_indexed.set(len(self.book))
        m.at_risk.set(len(scan.confirmed))
        self._asset_alerts(scan, market)
        m.scan_ms.observe(scan.total_ms)
        m.head_lag.set(max(0, self.c.w3.eth.block_number - index.head))
        if poll is not None:
            m.confirmed.inc(sum(1 for t in poll.confirmed if t.kind == KIND))
            m.failed.inc(sum(1 for t in poll.failed if t.kind == KIND))
            m.bumped.inc(len(poll.bumped))
        m.sent.inc(sum(1 for a in actions if a.outcome == "sent"))
        m.failed.inc(sum(1 for a in actions if a.outcome == "send_failed"))
        m.sim_failed.inc(sum(1 for a in actions if a.outcome == "simulation_failed"))
        if self.tx is not None:
            m.signer_balance.labels(self.tx.address).set(self.c.w3.eth.get_balance(self.tx.address))
        if poll is not None:
            for t in poll.failed:
                if t.kind == VOL_KIND:
                    m.vol_refused.labels(check="chain").inc()
                    log.warning("vol update reverted on chain: %s nonce=%d", t.hash, t.nonce)
        vol = self._vol_update(market)
        m.last_tick.set(time.time())
        m.healthy.set(1)
        result = TickResult(head, index, poll, scan, actions, risk, vol=vol)
        self._write_status(result)
        log.info("tick %d", head, extra={"fields": result.summary()})
        return result

    def _vol_update(self, market: Any) -> list | None:
        """Publish the vol surfaces when due on the chain's clock, forwards at the oracle
        prices of ``market``; any failure is logged and counted, never raised."""
        if self.vol_updater is None:
            return None
        try:
            now = int(self.c.w3.eth.get_block("latest")["timestamp"])
            if not self.vol_updater.due(now):
                return None
            forwards = {
                u: int(market.prices_wad[u]) / WAD
                for u in self.vol_updater.fitters
                if u < market.n_assets and market.price_ok[u]
            }
            return self.vol_updater.run(forwards, now)
        except Exception as exc:  # the vol path never stops the keeper
            self.metrics.vol_refused.labels(check="error").inc()
            log.warning("vol update failed: %s: %s", type(exc).__name__, exc)
            return None

    def _write_status(self, result: TickResult | None = None, error: str | None = None) -> None:
        """The last tick's state in the store's meta (``status``), for ``keeper-status``:
        head lag, accounts, at-risk, in flight, signer balance, last error."""
        prev = json.loads(self.store.get_meta(STATUS_KEY) or "{}")
        now = time.time()
        status = dict(prev, time=now)
        if error is not None:
            status |= {"last_error": error, "last_error_time": now, "healthy": False}
        if result is not None and result.scan is not None:
            m = self.metrics
            status |= {
                "head": result.head,
                "indexed": result.index.head,
                "head_lag": int(m.value("keeper_head_lag_blocks")),
                "accounts": result.scan.accounts,
                "at_risk": len(result.scan.confirmed),
                "blocked": result.scan.blocked,
                "excluded": result.scan.excluded,
                "failed_assets": list(result.scan.failed_assets),
                "unpriced_assets": list(result.scan.unpriced_assets),
                "in_flight": len(self.tx.in_flight(KIND)) if self.tx is not None else 0,
                "signer": self.tx.address if self.tx is not None else None,
                "signer_balance_wei": (
                    int(m.value("keeper_signer_balance_wei", {"address": self.tx.address}))
                    if self.tx is not None
                    else None
                ),
                "scan_ms": round(result.scan.total_ms, 1),
                "healthy": True,
            }
        self.store.set_meta(STATUS_KEY, json.dumps(status))

    def _asset_alerts(self, scan: ScanResult, market: Any) -> None:
        """Metrics and one alert line per block while an asset's reads fail or it has no
        liquidation price; the accounts exposed to it are left out, the others proceed."""
        m = self.metrics
        m.excluded.set(scan.excluded)
        m.blocked.set(scan.blocked)
        m.market_read_failures.inc(len(scan.failed_assets))
        for a in range(market.n_assets):
            state = 2 if a in market.failed else (0 if market.price_ok[a] else 1)
            m.asset_state.labels(str(a)).set(state)
        if scan.failed_assets or scan.unpriced_assets:
            log.warning(
                "alert: assets %s unreadable, %s without a liquidation price: %d accounts "
                "left out, %d liquidatable blocked",
                list(scan.failed_assets),
                list(scan.unpriced_assets),
                scan.excluded,
                scan.blocked,
                extra={
                    "fields": {
                        "alert": "asset_unpriced",
                        "failed_assets": list(scan.failed_assets),
                        "unpriced_assets": list(scan.unpriced_assets),
                        "excluded": scan.excluded,
                        "blocked": scan.blocked,
                        "reasons": {str(a): r for a, r in market.failed.items()},
                    }
                },
            )

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        """Finish the current tick and leave :meth:`run`."""
        self._stop.set()

    def run(self, poll_interval: float = 1.0, max_backoff: float = 30.0) -> None:
        """Tick on every new block until :meth:`stop` (or SIGINT / SIGTERM)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.stop())
        last_head, backoff = None, poll_interval
        while not self._stop.is_set():
            try:
                head = self.c.w3.eth.block_number
            except RPC_ERRORS as exc:
                self.metrics.rpc_errors.inc()
                log.warning("endpoint unreachable (%s); retry in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, max_backoff)
                continue
            if head != last_head:
                try:
                    result = self.tick()
                except Exception:  # a bug or a contract surprise: loud, and retried
                    log.exception("tick at block %d failed", head)
                    self.metrics.healthy.set(0)
                    self._stop.wait(backoff)
                    backoff = min(2 * backoff, max_backoff)
                    continue
                if result.error is None:
                    last_head, backoff = head, poll_interval
                else:
                    self._stop.wait(backoff)
                    backoff = min(2 * backoff, max_backoff)
                    continue
            self._stop.wait(poll_interval)
        log.info("keeper stopped at block %s", last_head)
        self.store.close()
