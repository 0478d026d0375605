"""A device's app inventory: its hash (PROTOCOL.md) and the list replaced as a whole."""

import hashlib

from django.db import transaction
from django.utils import timezone

from devices import writebehind
from devices.models import DeviceStatus, InstalledApp

MAX_INVENTORY_APPS = 5000


def apps_hash(apps: list[dict]) -> str:
    """PROTOCOL.md: SHA-256 of the lines `package\\tversion_code\\tenabled\\n`, sorted by bytes."""
    lines = sorted(
        f"{a['package']}\t{a.get('version_code') if a.get('version_code') is not None else ''}\t"
        f"{'true' if a.get('enabled', True) else 'false'}\n".encode()
        for a in apps
    )
    return hashlib.sha256(b"".join(lines)).hexdigest()


@transaction.atomic
def replace_inventory(*, device_id: str, apps: list[dict]) -> int:
    """Replace the device's app list (already validated). Returns the number of apps stored."""
    now = timezone.now()
    InstalledApp.objects.filter(device_id=device_id).delete()
    InstalledApp.objects.bulk_create(
        [
            InstalledApp(
                device_id=device_id,
                package=a["package"],
                version_name=a.get("version_name") or "",
                version_code=a.get("version_code"),
                system=a.get("system", False),
                enabled=a.get("enabled", True),
            )
            for a in apps
        ],
        batch_size=1000,
    )
    digest = apps_hash(apps)
    updated = DeviceStatus.objects.filter(device_id=device_id).update(inventory_hash=digest, inventory_at=now)
    if not updated:
        DeviceStatus.objects.create(device_id=device_id, inventory_hash=digest, inventory_at=now)
    if writebehind.enabled():
        # Forget the old hash now (a heartbeat meanwhile reads the database), remember the new one
        # once it is committed.
        writebehind.forget_inventory_hash(device_id)
        transaction.on_commit(lambda: writebehind.remember_inventory_hash(device_id, digest))
    return len(apps)
