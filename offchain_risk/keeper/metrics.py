"""Prometheus metrics of the keeper, on a registry of its own, and a health check.

``serve(port)`` exposes ``/metrics`` and ``/health`` (200 while a tick completed within
``max_silence`` seconds, 503 otherwise) from a background thread.
"""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from offchain_risk.models.greeks import GreeksReport


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.accounts_indexed = Gauge(
            "keeper_accounts_indexed", "Accounts in the index", registry=r
        )
        self.at_risk = Gauge(
            "keeper_at_risk", "Liquidatable accounts confirmed on chain", registry=r
        )
        self.sent = Counter("keeper_liquidations_sent", "Liquidations sent", registry=r)
        self.confirmed = Counter("keeper_liquidations_confirmed", "Mined, succeeded", registry=r)
        self.failed = Counter("keeper_liquidations_failed", "Mined reverted or refused", registry=r)
        self.sim_failed = Counter(
            "keeper_simulations_failed", "Liquidations not sent: simulation failed", registry=r
        )
        self.bumped = Counter("keeper_gas_bumps", "Stuck transactions re-sent", registry=r)
        self.scan_ms = Histogram(
            "keeper_scan_ms",
            "Scan time per block (twin + on-chain confirmation), ms",
            buckets=(5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.head_lag = Gauge("keeper_head_lag_blocks", "Chain head - last indexed", registry=r)
        self.signer_balance = Gauge(
            "keeper_signer_balance_wei", "Gas balance of a keeper key", ["address"], registry=r
        )
        self.rpc_errors = Counter("keeper_rpc_errors", "Ticks lost to RPC failures", registry=r)
        self.risk_updates = Counter("keeper_risk_updates", "Signed risk updates landed", registry=r)
        self.vol_updates = Counter("keeper_vol_updates", "Signed vol curves landed", registry=r)
        self.option_greeks = Gauge(
            "keeper_option_greeks",
            "Option Greeks summed by account or venue, underlying and expiry "
            "(delta_usd USD, gamma per USD, vega USD per 1.0 vol, theta USD per year)",
            ["by", "key", "underlying", "expiry", "greek"],
            registry=r,
        )
        self.vol_refused = Counter(
            "keeper_vol_refused",
            "Vol surfaces not published, by the check that refused them",
            ["check"],
            registry=r,
        )
        self.last_tick = Gauge(
            "keeper_last_tick_timestamp", "Unix time of the last tick", registry=r
        )
        self.healthy = Gauge("keeper_healthy", "1 while ticks complete", registry=r)
        self.asset_state = Gauge(
            "keeper_asset_state",
            "Per asset: 0 priced, 1 no liquidation price (perps on it blocked), 2 reads failed",
            ["asset"],
            registry=r,
        )
        self.market_read_failures = Counter(
            "keeper_market_read_failures", "Per-asset market reads that failed", registry=r
        )
        self.excluded = Gauge(
            "keeper_excluded_accounts",
            "Accounts left out of the block: a balance in an asset whose reads failed",
            registry=r,
        )
        self.blocked = Gauge(
            "keeper_blocked_accounts",
            "Liquidatable accounts blocked: a perp on an asset without a liquidation price",
            registry=r,
        )

    def set_option_greeks(self, report: GreeksReport) -> None:
        """Publish a Greeks report, replacing the previous one of its ``by`` (rows that
        disappeared are removed, not left at their last value)."""
        g = self.option_greeks
        for labels in [s.labels for m in g.collect() for s in m.samples]:
            if labels["by"] == report.by:
                g.remove(*(labels[k] for k in ("by", "key", "underlying", "expiry", "greek")))
        for row in report.rows():
            for greek in ("delta_usd", "gamma", "vega", "theta"):
                g.labels(
                    by=report.by,
                    key=str(row[report.by]),
                    underlying=str(row["underlying"]),
                    expiry=str(row["expiry"]),
                    greek=greek,
                ).set(row[greek])

    def value(self, name: str, labels: dict | None = None) -> float:
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else v


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # access logs are not keeper logs
        pass


def serve(metrics: Metrics, port: int, max_silence: float = 60.0, host: str = "127.0.0.1"):
    """Serve ``/metrics`` and ``/health`` in a daemon thread; returns the server."""
    prom = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/health":
            last = metrics.value("keeper_last_tick_timestamp")
            ok = last > 0 and time.time() - last <= max_silence
            start_response("200 OK" if ok else "503 Service Unavailable", [])
            return [b"ok\n" if ok else b"stale\n"]
        return prom(environ, start_response)

    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="keeper-metrics").start()
    return server
