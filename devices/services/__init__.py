"""State changes of the devices app (docs/ARCHITECTURE.md: the only place that changes state),
one module per concern:

- `heartbeat`: the hot path (token check, status write, history sample, FCM token) and a
  token's first use;
- `inventory`: a device's app list and its hash;
- `edits`: what the console and the API change (devices one at a time or in bulk, restore,
  groups, tags);
- `sweep`: background work on status (offline sweep, write-behind flush, live broadcasts);
- `purge`: a deleted device's data, in batches.

What the apps above must do with a device (its commands, its deletion) goes through devices.hooks.

Callers outside this package use `from devices import services` and the names below; modules
inside it import each other from the owning module (never from this one), so that importing one
never needs the whole package first."""

from devices.services.edits import (
    create_group,
    create_tag,
    delete_devices,
    delete_group,
    delete_tag,
    move_devices,
    restore_device,
    tag_devices,
    update_device,
    update_group,
)
from devices.services.heartbeat import HISTORY_EVERY_S, mark_token_used, record_heartbeat
from devices.services.inventory import MAX_INVENTORY_APPS, apps_hash, replace_inventory
from devices.services.purge import PURGE_BATCH, purge_device_data
from devices.services.sweep import (
    broadcast_status_changes,
    flush_heartbeats,
    schedule_live_flush,
    schedule_status_broadcast,
    sweep_offline,
)

__all__ = [
    # heartbeat
    "HISTORY_EVERY_S",
    "mark_token_used",
    "record_heartbeat",
    # inventory
    "MAX_INVENTORY_APPS",
    "apps_hash",
    "replace_inventory",
    # edits
    "create_group",
    "create_tag",
    "delete_devices",
    "delete_group",
    "delete_tag",
    "move_devices",
    "restore_device",
    "tag_devices",
    "update_device",
    "update_group",
    # sweep
    "broadcast_status_changes",
    "flush_heartbeats",
    "schedule_live_flush",
    "schedule_status_broadcast",
    "sweep_offline",
    # purge
    "PURGE_BATCH",
    "purge_device_data",
]
