"""Our own Prometheus metrics, beside django-prometheus's. One module so names stay consistent.

Every production service runs several processes (granian's workers, Celery's pool), and a scrape
reaches one of them. So the compose file sets PROMETHEUS_MULTIPROC_DIR (a tmpfs per container):
prometheus_client's multiprocess mode, each process writing its values to a file there and a
scrape summing the files (`scrape_registry`). Without it (`make run`: one process) the default
registry answers. The Celery services have no HTTP server of their own: with METRICS_PORT set
they serve /metrics on that port (`serve_worker_metrics`, started by mdm.celery), under the same
rules as the web's (`scrape_allowed`: METRICS_TOKEN or METRICS_ALLOWED_IPS)."""

import hmac
import ipaddress
import logging
import os
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.db import connections, transaction
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

HEARTBEATS = Counter("mdm_heartbeats_total", "Device heartbeats by result", ["result"])
ENROLLMENTS = Counter("mdm_enrollments_total", "Enrollment attempts by result", ["result"])
# Multiprocess modes: the sum over the processes alive; the value the last sweep set, whichever
# worker process ran it.
ENROLL_QUEUE_DEPTH = Gauge("mdm_enroll_queue_depth", "Enrollments admitted and in progress", multiprocess_mode="livesum")
DEVICES_ONLINE = Gauge("mdm_devices_online", "Devices online at the last offline sweep", multiprocess_mode="mostrecent")
COMMANDS_ISSUED = Counter("mdm_commands_issued_total", "Commands issued by type", ["type"])
DELIVERIES = Counter("mdm_deliveries_total", "Delivery state transitions", ["state"])
FCM_SENDS = Counter("mdm_fcm_sends_total", "FCM messages sent by outcome", ["outcome"])
DISPATCH_LATENCY = Histogram(
    "mdm_dispatch_latency_seconds",
    "Command issue to push handed to FCM",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
DEVICE_REQUEST_SECONDS = Histogram(
    "mdm_device_request_seconds",
    "Device API requests served by the WSGI fast path (mdm.fastpath), by endpoint and status",
    ["endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LOGINS = Counter("mdm_logins_total", "Console logins by result", ["result"])
DEAD_LETTERS = Counter(
    "mdm_dead_letters_total",
    "Write-behind entries a flush could not write and set aside (mdm.deadletters), by kind",
    ["kind"],
)
ALERT_RULE_FAILURES = Counter(
    "mdm_alert_rule_failures_total",
    "Evaluations of an alert rule that failed (mdm.alerts.evaluate; the rule is marked failing), by kind",
    ["kind"],
)
WRITEBEHIND_REQUEUED = Counter(
    "mdm_writebehind_requeued_claims_total",
    "Write-behind claims of a flusher that died, put back in the queue by a later flush, by queue",
    ["queue"],
)


def count_on_commit(counter, label: str, n: int = 1) -> None:
    """Count state changes when their transaction commits: a rolled-back one never happened."""
    if n:
        transaction.on_commit(lambda: counter.labels(label).inc(n))


class DatabasePoolCollector:
    """Gauges of Django's psycopg connection pools (min, max, size, available, waiting)."""

    STATS = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting")

    def collect(self):
        families = {s: GaugeMetricFamily(f"mdm_db_{s}", f"psycopg pool {s}", labels=["alias"]) for s in self.STATS}
        for alias, config in settings.DATABASES.items():
            if not config.get("OPTIONS", {}).get("pool"):
                continue
            pool = getattr(connections[alias], "pool", None)
            if pool is None:
                continue
            stats = pool.get_stats()
            for s in self.STATS:
                families[s].add_metric([alias], stats.get(s, 0))
        yield from families.values()


_collector = DatabasePoolCollector()
try:
    REGISTRY.register(_collector)
except ValueError:  # already registered (module reloaded)
    pass


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry():
    """What a scrape answers: every process's values (multiprocess mode), plus the database pool
    gauges of the process answering; else this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_collector)
    return registry


def exposition() -> tuple[bytes, str]:
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST


def scrape_allowed(authorization: str, peer: str) -> bool:
    """METRICS_TOKEN as `Bearer <token>`, or a TCP peer in METRICS_ALLOWED_IPS (never a
    forwarded address: a header is the client's to write)."""
    expected = settings.METRICS_TOKEN
    scheme, _, given = (authorization or "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return True
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def process_exited(pid: int) -> None:
    """A pool process is gone: its `livesum` gauges stop counting (its counters stay summed)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def _worker_app(environ, start_response):
    if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Only GET /metrics here.\n"]
    if not scrape_allowed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", "")):
        if settings.METRICS_TOKEN:
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [b"A bearer token is required.\n"]
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"Metrics are not served to this address.\n"]
    body, content_type = exposition()
    start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every 15 s is not news
        pass


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> WSGIServer:
    """GET /metrics of this Celery service on `port`, in a daemon thread of its main process."""
    server = make_server(host, port, _worker_app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics served on port %s", server.server_port)
    return server
