"""Reads of the enrollment app that more than one view needs."""

from datetime import datetime, timedelta

from devices.models import Device, DeviceStatus
from enrollment.models import EnrollmentKey, ReenrollRequest
from mdm.models import FleetSettings

# A pending re-enrollment request older than this no longer explains why a script is waiting.
PENDING_REQUEST_WINDOW = timedelta(hours=1)


def provisioning_status(*, key: EnrollmentKey, hardware_id: str, now: datetime) -> dict:
    """What GET /enrollment/provision.status answers the provisioning scripts: whether the device
    with this hardware id enrolled with this key and heartbeats. It tells a key holder no more
    than POST /api/v1/enroll with that key would (which they may call anyway), and less: a device
    last enrolled with another key is `not_enrolled`, as is an unknown one, and no id, name or
    telemetry is answered. Read-only: unlike an enroll, asking opens no re-enrollment request."""
    device = Device.objects.filter(hardware_id=hardware_id).only("id", "enrolled_with", "deleted_at").first()
    if device is None:
        return _state("not_enrolled", "Not enrolled yet.")
    waiting = ReenrollRequest.objects.filter(
        device=device, key=key, state=ReenrollRequest.State.PENDING, last_attempt_at__gte=now - PENDING_REQUEST_WINDOW
    ).exists()
    if waiting:
        return _state("waiting_approval", "Enrolled before: its re-enrollment waits for an admin's approval "
                      "(Enrollment → Re-enrollment requests in the console).")
    if device.enrolled_with != key.name[:100]:
        return _state("not_enrolled", "Not enrolled yet.")
    if device.deleted_at is not None:
        return _state("retired", "This device was deleted by an admin and cannot enroll until an admin restores it.")
    last_seen = DeviceStatus.objects.filter(device=device).values_list("last_seen", flat=True).first()
    threshold = timedelta(seconds=FleetSettings.current().offline_threshold_s)
    if last_seen is not None and now - last_seen <= threshold:
        return _state("online", "Enrolled and online.")
    return _state("enrolled", "Enrolled; waiting for its first heartbeat.")


def _state(state: str, detail: str) -> dict:
    return {"state": state, "detail": detail}
