"""Reads of the enrollment app that more than one view needs."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from commands.policies.models import Policy, PolicyAssignment
from devices.models import Device, DeviceStatus, InstalledApp
from enrollment import conf
from enrollment.models import EnrollmentKey, ReenrollRequest, hash_key
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


# --- What the QR builder and the one-liner tell about a key, and offer as kiosk apps ----------


@dataclass(frozen=True)
class KeyLookup:
    """A key typed into the QR builder or the one-liner: which key it is, and the policy a device
    enrolling with it gets. `key` None: no key has that hash."""

    key: EnrollmentKey | None
    state: str = ""
    policy: Policy | None = None
    via: str = ""  # "group" (the pinned group's assignment) or "fleet_default"; "" with no policy


def lookup_key(raw: str, *, now: datetime) -> KeyLookup | None:
    """None for a blank value. Keys are stored hashed, so only the exact key finds its row (one
    unique-index probe)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        digest = hash_key(raw)
    except UnicodeEncodeError:  # a lone surrogate: no key holds one
        return KeyLookup(key=None)
    key = EnrollmentKey.objects.select_related("group").prefetch_related("tags").filter(key_hash=digest).first() if len(raw) <= 200 else None
    if key is None:
        return KeyLookup(key=None)
    policy, via = policy_for_key(key)
    return KeyLookup(key=key, state=key.state(now), policy=policy, via=via)


def policy_for_key(key: EnrollmentKey) -> tuple[Policy | None, str]:
    """The policy of a device that enrolls with `key` (docs/policies.md "Precedence"): a new
    device has no assignment of its own, so its group's (the group the key pins), else the fleet
    default, else none. One query on the assignments' unique indexes (group, the partial one of
    the fleet default). Tag and filter assignments are snapshots of the devices they selected,
    so a device enrolling later never has one."""
    wanted = Q(fleet_default=True) | Q(group_id=key.group_id) if key.group_id else Q(fleet_default=True)
    # False sorts first: the group's assignment wins over the fleet default.
    row = PolicyAssignment.objects.filter(wanted).select_related("policy").order_by("fleet_default").first()
    if row is None:
        return None, ""
    return row.policy, "fleet_default" if row.fleet_default else "group"


# The APK registry's packages: apks/ sits above enrollment/, so it registers a provider at
# start-up (apks.apps). provider() -> iterable of package names.
_registry_packages = None
INVENTORY_SAMPLE = 200  # devices whose inventories the kiosk choices come from
KIOSK_CHOICES = 300


def register_registry_packages(provider) -> None:
    global _registry_packages
    _registry_packages = provider


def registry_packages() -> set[str]:
    return set(_registry_packages()) if _registry_packages else set()


def kiosk_packages(registry: set[str] | None = None) -> list[tuple[str, str]]:
    """The kiosk field's choices, as (package, where it was seen): the APK registry's packages and
    the user apps in the inventories of the most recently enrolled devices (a sample: a fleet of
    20,000 devices holds millions of inventory rows, and an app meant for kiosks is on many of
    them), without the agent itself."""
    registry = registry_packages() if registry is None else registry
    recent = Device.objects.active().order_by("-last_enrolled_at").values("pk")[:INVENTORY_SAMPLE]
    seen = set(InstalledApp.objects.filter(device_id__in=recent, system=False)
               .values_list("package", flat=True).distinct()[:KIOSK_CHOICES])
    where = {}
    for package in sorted(registry | seen):
        if package == conf.get("AGENT_PACKAGE"):
            continue
        where[package] = ", ".join(label for label, found in (("APK registry", package in registry), ("on devices", package in seen)) if found)
    return list(where.items())[:KIOSK_CHOICES]
