"""A deleted device's data purged in short batches by a worker (devices.tasks.purge_device)."""

import uuid

from django.db import connection
from django.utils import timezone

from devices import hooks
from devices.models import Device, HeartbeatSample, InstalledApp

PURGE_BATCH = 5000


def purge_device_data(*, device_id: str, batch_size: int = PURGE_BATCH) -> int:
    """One batch of a deleted device's purge: history first, then inventory, then what the apps
    above keep for it (devices.hooks.device_purge: deliveries and keys).
    Returns the rows deleted (0 when nothing is left, and then the device is marked purged).
    Short statements on the deleted device's own rows only: the heartbeat path never waits."""
    if not Device.objects.filter(id=device_id, deleted_at__isnull=False).exists():
        return 0  # restored meanwhile, or gone
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """DELETE FROM devices_heartbeatsample WHERE (device_id, at) IN (
                       SELECT device_id, at FROM devices_heartbeatsample WHERE device_id = %s LIMIT %s)""",
                [uuid.UUID(str(device_id)), batch_size],
            )
            deleted = cursor.rowcount
    else:
        ats = list(HeartbeatSample.objects.filter(device_id=device_id).values_list("at", flat=True)[:batch_size])
        deleted = HeartbeatSample.objects.filter(device_id=device_id, at__in=ats).delete()[0] if ats else 0
    if deleted:
        return deleted
    app_ids = list(InstalledApp.objects.filter(device_id=device_id).values_list("id", flat=True)[:batch_size])
    if app_ids:
        return InstalledApp.objects.filter(id__in=app_ids).delete()[0]
    deleted = hooks.device_purge(device_id=str(device_id), batch_size=batch_size)
    if deleted:
        return deleted
    Device.objects.filter(id=device_id, deleted_at__isnull=False, purged_at__isnull=True).update(
        purged_at=timezone.now()
    )
    return 0
