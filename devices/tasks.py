"""Celery tasks of this app: thin, take ids, claim with a conditional update, call a service."""

from celery import shared_task

from devices import partitions, services
from mdm.nudge import nudge

PURGE_BATCHES_PER_RUN = 20


@shared_task
def sweep_offline() -> int:
    return len(services.sweep_offline())


@shared_task(ignore_result=True, expires=5)
def flush_heartbeats() -> int:
    written = services.flush_heartbeats()
    if written:
        nudge("devices")
    return written


@shared_task
def flush_live_updates() -> int:
    """One flush of at most live.MAX_PER_FLUSH devices; a fuller backlog (an enrollment storm
    brings thousands online at once) goes on in the next flush rather than waiting for the beat."""
    from devices import live

    sent = services.broadcast_status_changes()
    if sent >= live.MAX_PER_FLUSH and live.pending_count():
        flush_live_updates.apply_async(countdown=live.FLUSH_DELAY_S)
    return sent


@shared_task
def maintain_partitions() -> dict:
    return partitions.maintain()


@shared_task(acks_late=True)
def purge_device(device_id: str) -> int:
    """Purge a deleted device in batches; re-enqueues itself while rows remain so one big device
    never holds a worker for long. Each batch re-checks that the device is still deleted."""
    total = 0
    for _ in range(PURGE_BATCHES_PER_RUN):
        deleted = services.purge_device_data(device_id=device_id)
        if not deleted:
            return total
        total += deleted
    purge_device.delay(device_id)
    return total
