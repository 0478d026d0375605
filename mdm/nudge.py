"""'Evaluate soon': the heartbeat and result flushes tell alerting that data landed, so a rule
sees a bad envelope or a failing command within about a second rather than at the next periodic
sweep (docs/alerts.md). Platform plumbing: the flushes sit below alerting and must not import it,
so the nudge names the task and never waits for it.

Debounced per family ("devices", "commands") with one Redis SET NX per flush: at most one
evaluation every ALERT_NUDGE_S per family, whatever the heartbeat rate. Without Redis (the
embedded default) it does nothing: the in-process sweep runs every ALERT_SWEEP_S there."""

import logging

from celery import current_app
from django.conf import settings

from mdm import redis_client

logger = logging.getLogger(__name__)
TASK = "mdm.alerts.tasks.evaluate_family"


def nudge(family: str) -> bool:
    client = redis_client.client()
    if client is None:
        return False
    try:
        if not client.set(f"{settings.CACHE_PREFIX}:alerts:nudge:{family}", "1", nx=True,
                          px=int(getattr(settings, "ALERT_NUDGE_S", 2) * 1000)):
            return False
        current_app.send_task(TASK, args=[family], expires=10)
        return True
    except Exception:  # a lost nudge costs one sweep interval, never a flush
        logger.exception("could not nudge alert evaluation")
        return False
