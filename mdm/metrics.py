"""Our own Prometheus metrics, beside django-prometheus's. One module so names stay consistent."""

from django.conf import settings
from django.db import connections, transaction
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

HEARTBEATS = Counter("mdm_heartbeats_total", "Device heartbeats by result", ["result"])
ENROLLMENTS = Counter("mdm_enrollments_total", "Enrollment attempts by result", ["result"])
ENROLL_QUEUE_DEPTH = Gauge("mdm_enroll_queue_depth", "Enrollments admitted and in progress")
DEVICES_ONLINE = Gauge("mdm_devices_online", "Devices online at the last offline sweep")
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
