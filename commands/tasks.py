"""Celery tasks of this app: thin, take ids, claim with a conditional update, call a service.

Dispatch is safe to run twice and to die anywhere: each batch of deliveries is claimed with a
conditional update (skip locked) before it is pushed, a redelivered task re-claims its own
claims, and `resume_dispatch` (beat, every minute) picks up pushes nobody is working on
(a lost task, a killed worker's stale claims, retries whose backoff has run out).
"""

import logging
import os
from datetime import timedelta

from celery import shared_task

from commands import services
from commands.policies import reports
from commands.policies.push import push_sync
from mdm.nudge import nudge

logger = logging.getLogger(__name__)
# Deliveries claimed and pushed per send_each call (FCM allows at most 500). Smaller batches mean
# a killed worker leaves fewer claims to go stale; 500 gives the most throughput.
PUSH_BATCH = max(1, min(500, int(os.environ.get("MDM_FCM_BATCH_SIZE", "500"))))


@shared_task(bind=True, acks_late=True, ignore_result=True)
def dispatch_command(self, command_id: str, stale_after_s: float | None = None) -> dict:
    claim = self.request.id or "eager"
    stale = services.CLAIM_STALE if stale_after_s is None else timedelta(seconds=stale_after_s)
    report = services.push_command(command_id=command_id, claim=claim, stale=stale, batch_size=PUSH_BATCH)
    if report.retry_in_s is not None:
        dispatch_command.apply_async((command_id,), countdown=report.retry_in_s)
    return {"pushed": report.pushed, "failed": report.failed, "retry": report.retry, "skipped": report.skipped}


@shared_task(ignore_result=True)
def resume_dispatch(stale_after_s: float = services.CLAIM_STALE.total_seconds()) -> int:
    command_ids = services.stalled_push_commands(stale=timedelta(seconds=stale_after_s))
    for command_id in command_ids:
        dispatch_command.delay(str(command_id), stale_after_s)
    return len(command_ids)


@shared_task(ignore_result=True)
def flush_results() -> int:
    written = services.flush_results()
    if written:
        nudge("commands")
    return written


@shared_task(ignore_result=True, expires=5)
def flush_policy_reports() -> int:
    written = reports.flush()
    if written:
        nudge("devices")  # compliance rules read what landed
    return written


@shared_task(ignore_result=True)
def expire_deliveries() -> int:
    return services.expire_deliveries()


@shared_task(ignore_result=True)
def promote_command_keys() -> int:
    return services.promote_due_keys()


@shared_task(ignore_result=True)
def push_policy_sync(device_ids: list) -> int:
    """After a policy change commits: the `sync` tickle to the devices it moved (best effort)."""
    return push_sync(device_ids=device_ids)
