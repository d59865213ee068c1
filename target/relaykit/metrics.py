"""Prometheus metrics of `relaykit start` (METRICS_PORT; off by default).

Everything here is a no-op until `serve()` runs, so any layer may call the recording
functions unconditionally (the daemon, the Postfix log reader, a token refresher):

  delivery(nexthop, status)  one Postfix delivery status line (sent, deferred, bounced...)
  reload(result)             a re-apply of the configuration: applied, unchanged, refused, failed
  token_refresh(relay, ok)   an OAuth2 (XOAUTH2) access token refresh: the hook for it

prometheus_client is imported only by `serve()` (test_layers.LAZY): `setup` and
`relaykit configure` never load it. Queue sizes are read at scrape time through the
callable the daemon passes (postqueue -j), so they are never stale and cost nothing
between scrapes.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable

_metrics: dict | None = None  # name -> metric, once serving
_lock = threading.Lock()

QUEUES = ("incoming", "active", "deferred", "hold", "maildrop")


def enabled() -> bool:
    return _metrics is not None


def serve(port: int, address: str, *, version: str, postfix_version: str,
          queue: Callable[[], Iterable[dict]]) -> None:
    """Start the /metrics HTTP endpoint in a daemon thread. `queue()` returns Postfix's
    queue as `postqueue -j` objects (queue_name, arrival_time, ...)."""
    global _metrics
    import prometheus_client as prom  # ~40 ms: only `relaykit start` with METRICS_PORT
    from prometheus_client.core import GaugeMetricFamily

    prom.disable_created_metrics()  # no *_created series: noise for every counter
    registry = prom.CollectorRegistry()
    metrics = {
        "deliveries": prom.Counter(
            "relaykit_deliveries", "Postfix delivery attempts by relay next hop and result (one per "
            "recipient and attempt, from Postfix's log lines status=sent/deferred/bounced/...)",
            ["nexthop", "status"], registry=registry),
        "reloads": prom.Counter(
            "relaykit_reloads", "Re-applications of the configuration by result: applied, unchanged, "
            "refused (invalid configuration, the last good one stays), failed", ["result"], registry=registry),
        "last_good": prom.Gauge(
            "relaykit_last_good_config_timestamp_seconds",
            "When the configuration Postfix runs on was applied (Unix time)", registry=registry),
        "valid": prom.Gauge(
            "relaykit_config_last_reload_successful",
            "1 if the last configuration read was valid and applied, 0 if it was refused", registry=registry),
        "tokens": prom.Counter(
            "relaykit_token_refreshes", "OAuth2 access token refreshes by relay and result (ok, failed)",
            ["relay", "result"], registry=registry),
        "log_dropped": prom.Counter(
            "relaykit_log_lines_dropped", "Postfix log lines not written because stdout was too slow "
            "(counted and parsed all the same)", registry=registry),
    }
    prom.Info("relaykit_build", "relaykit's build", registry=registry).info(
        {"version": version, "postfix_version": postfix_version, "python_version": _python()})

    class QueueCollector:
        def collect(self):
            sizes = GaugeMetricFamily("relaykit_queue_messages", "Messages in Postfix's queues now",
                                      labels=["queue"])
            oldest = GaugeMetricFamily("relaykit_queue_oldest_deferred_age_seconds",
                                       "Age of the oldest message in the deferred queue (0 when it is empty)")
            up = GaugeMetricFamily("relaykit_queue_up", "1 if Postfix's queue could be read (postqueue -j)")
            counts = dict.fromkeys(QUEUES, 0)
            first = None
            try:
                for message in queue():
                    name = message.get("queue_name", "unknown")
                    counts[name] = counts.get(name, 0) + 1
                    if name == "deferred":
                        arrival = message.get("arrival_time") or 0
                        first = arrival if first is None else min(first, arrival)
                up.add_metric([], 1)
            except Exception:  # Postfix stopped, postqueue failed: say so, do not break the scrape
                up.add_metric([], 0)
            for name, count in counts.items():
                sizes.add_metric([name], count)
            oldest.add_metric([], max(0.0, time.time() - first) if first else 0.0)
            yield from (sizes, oldest, up)

    registry.register(QueueCollector())
    prom.start_http_server(port, addr=address, registry=registry)
    with _lock:
        _metrics = metrics


def _python() -> str:
    return ".".join(str(part) for part in sys.version_info[:3])


def delivery(nexthop: str, status: str) -> None:
    if _metrics:
        _metrics["deliveries"].labels(nexthop, status).inc()


def reload(result: str) -> None:
    """result: applied, unchanged, refused or failed. `applied` (and the start) also set
    the time of the last good configuration."""
    if not _metrics:
        return
    _metrics["reloads"].labels(result).inc()
    if result in ("applied", "unchanged"):
        _metrics["valid"].set(1)
    elif result == "refused":
        _metrics["valid"].set(0)
    if result == "applied":
        _metrics["last_good"].set_to_current_time()


def configured() -> None:
    """The configuration `relaykit start` began with was applied."""
    if _metrics:
        _metrics["valid"].set(1)
        _metrics["last_good"].set_to_current_time()


def token_refresh(relay: str, ok: bool) -> None:
    """For the XOAUTH2 token refresher: call after each refresh attempt of `relay`'s token."""
    if _metrics:
        _metrics["tokens"].labels(relay, "ok" if ok else "failed").inc()


def log_lines_dropped(count: int) -> None:
    if _metrics:
        _metrics["log_dropped"].inc(count)
