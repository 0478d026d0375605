"""How deliveries end other than by a device's report: an operator's cancel, a device re-enrolled
or deleted (every non-final delivery cancelled), expiry, and the purge of a deleted device's rows
(its results stay).
Each flushes the result write-behind first (commands.results), so a report the device was already
answered for lands before the sweep decides."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from commands import live, markers, results
from commands.models import NON_FINAL_STATES, PENDING_STATES, Command, Delivery, DeliveryState, DeviceKey
from mdm import audit
from mdm.metrics import DELIVERIES, count_on_commit

S = DeliveryState
STUCK_GRACE = timedelta(days=1)


def cancel_command(*, actor, command: Command, ip: str | None = None, now: datetime | None = None) -> int:
    """Cancel every delivery not yet started. Ones the device may hold (sent, received) ride
    back in its next heartbeat's `cancelled`; running ones finish and report."""
    results.flush_all()  # reports the devices were already answered for land first (commands.results)
    return _cancel_command(actor=actor, command=command, ip=ip, now=now or timezone.now())


@transaction.atomic
def _cancel_command(*, actor, command: Command, ip: str | None, now: datetime) -> int:
    locked = Command.objects.select_for_update().get(pk=command.pk)
    if locked.cancelled_at is None:
        locked.cancelled_at = now
        locked.save(update_fields=["cancelled_at"])
    command.cancelled_at = locked.cancelled_at
    held = Delivery.objects.filter(command=command, state__in=[S.SENT, S.RECEIVED])
    notify_devices = list(held.values_list("device_id", flat=True))
    n_held = held.update(state=S.CANCELLED, finished_at=now, reason="cancelled", notify_cancel=True)
    n_queued = Delivery.objects.filter(command=command, state=S.QUEUED).update(
        state=S.CANCELLED, finished_at=now, reason="cancelled"
    )
    markers.dirty_on_commit(notify_devices)
    count_on_commit(DELIVERIES, S.CANCELLED, n_held + n_queued)
    audit.record(actor=actor, action="command.cancel", target=("command", str(command.pk)),
                 data={"cancelled": n_held + n_queued}, ip=ip)
    live.changed_on_commit([command.pk])
    return n_held + n_queued


def cancel_device_deliveries(*, device_id, reason: str, now: datetime | None = None) -> int:
    """Re-enrollment or deletion: every non-final delivery of the device ends `cancelled`."""
    now = now or timezone.now()
    results.flush_all()  # as cancel_command
    with transaction.atomic():
        qs = Delivery.objects.filter(device_id=device_id, state__in=NON_FINAL_STATES)
        command_ids = set(qs.values_list("command_id", flat=True))
        n = qs.update(state=S.CANCELLED, finished_at=now, reason=reason, notify_cancel=False)
        count_on_commit(DELIVERIES, S.CANCELLED, n)
        live.changed_on_commit(command_ids)
    return n


def expire_deliveries(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Queued or sent deliveries past `expires_at` end `expired`; received or running ones (the
    device took them and never reported) a day later."""
    now = now or timezone.now()
    results.flush_all()  # as cancel_command
    total = 0
    for states, cutoff in ((PENDING_STATES, now), ((S.RECEIVED, S.RUNNING), now - STUCK_GRACE)):
        while True:
            with transaction.atomic():
                rows = list(
                    Delivery.objects.filter(state__in=states, expires_at__lte=cutoff).values_list("pk", "command_id")[:batch_size]
                )
                if not rows:
                    break
                n = Delivery.objects.filter(pk__in=[r[0] for r in rows], state__in=states).update(
                    state=S.EXPIRED, finished_at=now, reason="expired"
                )
                total += n
                count_on_commit(DELIVERIES, S.EXPIRED, n)
                live.changed_on_commit({r[1] for r in rows})
            if len(rows) < batch_size:
                break
    return total


def purge_device_rows(*, device_id, batch_size: int) -> int:
    """A deleted device's purge: its deliveries stay, as commands' history (each command's
    results still add up to the devices it was sent to; the device shows as deleted), without
    what the device printed (output); its keys go. Returns the rows touched (0 when done)."""
    ids = list(Delivery.objects.filter(device_id=device_id).exclude(output="").values_list("pk", flat=True)[:batch_size])
    if ids:
        return Delivery.objects.filter(pk__in=ids).update(output="", output_truncated=False)
    deleted, _ = DeviceKey.objects.filter(device_id=device_id).delete()
    return deleted

