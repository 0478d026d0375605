import os
from datetime import timedelta

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_process_shutdown, worker_ready
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

app = Celery("mdm")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes Django's connection pool before and after every task in a prefork
# worker (celery 5.7: celery/celery#10554, a fix proposed in #10555), so every task opened new
# PostgreSQL connections: a backend started and its caches warmed for each of the several tasks a
# second the write-behind runs (0.16 cores of PostgreSQL at 2,000 devices @10 s on a slow
# machine, bench/policy_fanout.py's cores). Its own knob turns that off (the fixup then closes
# only every 2 x DB_REUSE_MAX tasks, i.e. never); `_return_connections` below does what Django
# does around a request instead. The fixup still closes what a child inherits at its fork.
app.conf["CELERY_DB_REUSE_MAX"] = 2**62
app.autodiscover_tasks()

# Every periodic job, in one place. Beat (production, django-celery-beat's DatabaseScheduler
# syncs these into its tables) and the embedded scheduler (`make run`) both read this table.
app.conf.beat_schedule = {
    "mdm-prune-audit": {"task": "mdm.tasks.prune_audit", "schedule": timedelta(hours=6)},
    "accounts-flush-expired-tokens": {"task": "accounts.tasks.flush_expired_tokens", "schedule": timedelta(hours=6)},
    # Heartbeats buffered in Redis reach PostgreSQL within a second (devices.writebehind).
    "devices-flush-heartbeats": {"task": "devices.tasks.flush_heartbeats", "schedule": timedelta(seconds=1)},
    "devices-sweep-offline": {"task": "devices.tasks.sweep_offline", "schedule": timedelta(seconds=15)},
    # Safety net for the debounced live flush (a lost task leaves devices marked dirty).
    "devices-flush-live": {"task": "devices.tasks.flush_live_updates", "schedule": timedelta(seconds=10)},
    "devices-partitions": {"task": "devices.tasks.maintain_partitions", "schedule": timedelta(hours=1)},
    # Command results queued in Redis likewise (commands.results).
    "commands-flush-results": {"task": "commands.tasks.flush_results", "schedule": timedelta(seconds=1)},
    # ... and policy status reports (commands.policies.reports).
    "commands-flush-policy-reports": {"task": "commands.tasks.flush_policy_reports", "schedule": timedelta(seconds=1)},
    "commands-expire": {"task": "commands.tasks.expire_deliveries", "schedule": timedelta(seconds=60)},
    "commands-resume-dispatch": {"task": "commands.tasks.resume_dispatch", "schedule": timedelta(seconds=60)},
    "commands-promote-keys": {"task": "commands.tasks.promote_command_keys", "schedule": timedelta(minutes=10)},
    # Abandoned tus uploads (APK_UPLOAD_EXPIRY_S) go with their staged bytes; a parse a dead
    # worker left is tried again.
    "apks-reap-uploads": {"task": "apks.tasks.reap_uploads", "schedule": timedelta(minutes=10)},
    # Releases past APK_KEEP_RELEASES per package and channel, with their files.
    "apks-purge-releases": {"task": "apks.tasks.purge_releases", "schedule": timedelta(hours=1)},
    # Staged rollouts: halt a failing wave, start the next one when a wave has soaked.
    "apks-advance-rollouts": {"task": "apks.tasks.advance_rollouts", "schedule": timedelta(seconds=10)},
    # Alerting: every rule evaluated, due notifications sent; webhook retries; a worker's proof of life.
    "alerts-evaluate": {"task": "mdm.alerts.tasks.evaluate", "schedule": timedelta(seconds=settings.ALERT_SWEEP_S)},
    "alerts-retry-webhooks": {"task": "mdm.alerts.tasks.retry_webhooks", "schedule": timedelta(seconds=10)},
    "alerts-worker-ping": {"task": "mdm.alerts.tasks.worker_ping", "schedule": timedelta(seconds=30)},
}


@worker_process_init.connect
def _warm_fcm(**_):
    """Each worker process builds its FCM app before the first fan-out needs it (mdm.fcm), then
    freezes its start-up heap out of the cyclic GC (mdm.heap)."""
    from mdm import fcm

    fcm.warm_up()
    from mdm import heap

    heap.freeze()  # after the warm-up: Django, Celery and firebase-admin loaded (mdm/heap.py)


@worker_ready.connect
def _serve_metrics(**_):
    """A worker's own /metrics (METRICS_PORT; 0: none), summing its pool processes (mdm.metrics)."""
    if settings.METRICS_PORT:
        from mdm import metrics

        metrics.serve_worker_metrics(settings.METRICS_PORT)


@worker_process_shutdown.connect
def _forget_process(pid=None, **_):
    from mdm import metrics

    metrics.process_exited(pid or os.getpid())


@task_prerun.connect
@task_postrun.connect
def _return_connections(sender=None, **_):
    """Around each task, as Django around each request: connections go back to the pool, and one
    left unusable (PostgreSQL restarted, a failed transaction) or in autocommit off is dropped.
    Not for an eager task (it runs inside its caller, whose transaction it must not touch)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
