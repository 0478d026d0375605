"""Background work on the fleet's status: the offline sweep (and the dashboard's fleet sample),
the write-behind flush to PostgreSQL, and the coalesced live status broadcasts to the console."""

import logging
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from devices import fleet_stats, live, writebehind
from devices.models import Device, DeviceStatus
from mdm import metrics, realtime
from mdm.models import FleetSettings

logger = logging.getLogger(__name__)


def sweep_offline(*, now: datetime | None = None) -> list[str]:
    """Mark devices offline once they are past the fleet's threshold without a heartbeat.
    The UPDATE re-checks `last_seen`, so a heartbeat landing meanwhile keeps its device online."""
    flush_heartbeats()  # act on every heartbeat received so far, not on the last flush's view
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=FleetSettings.current().offline_threshold_s)
    stale = DeviceStatus.objects.filter(online=True).filter(Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True))
    ids = list(stale.values_list("device_id", flat=True)[:10000])
    if ids:
        DeviceStatus.objects.filter(device_id__in=ids, online=True).filter(
            Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True)
        ).update(online=False)
        if writebehind.enabled():
            # Their buffered state is in the database now; dropping it makes the next heartbeat
            # of each one read as "came back online" (and take a history sample at once).
            writebehind.forget_states(ids)
        schedule_status_broadcast(device_ids=ids)
    fleet = Device.objects.active().aggregate(total=Count("pk"), online=Count("pk", filter=Q(status__online=True)))
    metrics.DEVICES_ONLINE.set(fleet["online"])
    fleet_stats.record_sample(now=now, total=fleet["total"], online=fleet["online"])  # the dashboard's chart
    return [str(i) for i in ids]


def flush_heartbeats() -> int:
    """Write the heartbeats buffered in Redis (devices.writebehind) to PostgreSQL, all of them.
    Returns the device states written; what PostgreSQL refused is in mdm.deadletters."""
    total = 0
    while True:
        flushed = writebehind.flush_batch()
        total += flushed.written
        if not flushed.again:
            return total


def schedule_status_broadcast(*, device_ids) -> None:
    """Coalesce: remember the devices, and make sure one flush runs within about a second."""
    try:
        if live.mark_dirty(device_ids):
            schedule_live_flush()
    except Exception:  # a lost live update must never fail a heartbeat
        logger.exception("could not schedule the live status flush")


def schedule_live_flush() -> None:
    from devices.tasks import flush_live_updates

    try:
        flush_live_updates.apply_async(countdown=live.FLUSH_DELAY_S)
    except Exception:  # a lost live update must never fail a heartbeat
        logger.exception("could not schedule the live status flush")


def broadcast_status_changes() -> int:
    """Send the console the current cells of every device marked dirty since the last flush: one
    message on `devices` (list cells + fleet summary), the summary alone on `dashboard` (which has
    no device cells to swap them into) and one per device page."""
    from devices.selectors import fleet_summary_for_all

    flush_heartbeats()
    ids = live.take_dirty()
    if not ids:
        return 0
    devices = list(Device.objects.filter(id__in=ids, deleted_at__isnull=True).select_related("status"))
    open_pages = realtime.watched(["devices", "dashboard", *(f"device.{device.pk}" for device in devices)])
    fleet = FleetSettings.current()
    messages = []
    summary = fleet_summary_for_all() if {"devices", "dashboard"} & open_pages else None
    if "devices" in open_pages:
        messages.append(("devices", render_to_string("devices/_live_updates.html", {"devices": devices, "summary": summary})))
    if "dashboard" in open_pages:
        messages.append(("dashboard", render_to_string("_fleet_summary.html", {"summary": summary})))
    for device in devices:
        if f"device.{device.pk}" not in open_pages:
            continue  # nobody has this device's page open: nothing to render
        messages.append((
            f"device.{device.pk}",
            render_to_string(
                "devices/_device_status.html", {"device": device, "status": device.status, "oob": True, "fleet": fleet}
            ),
        ))
    realtime.broadcast_many(messages)
    return len(devices)
