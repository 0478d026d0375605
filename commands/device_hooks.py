"""commands/ on a device's life: what enrollment (above commands) calls when a device enrolls,
and commands' side of the devices app's hook points (devices.hooks), registered at start-up by
CommandsConfig.ready(). devices/ never imports this module."""

from commands import markers, services
from commands.policies import cache as policy_cache
from commands.policies import services as policies
from devices import hooks


def keys_on_enroll(*, device, reenrolled: bool) -> list[dict]:
    """Called inside the enrollment transaction. Creates the device's command keys (new ones on
    re-enrollment, which also cancels every non-final delivery with reason `reenrolled`) and
    returns `command_keys` for the answer: [{"kid": ..., "key": base64}]. Resolves the device's
    policy too (its group's or the fleet default), so the devices list counts it at once."""
    policies.on_enrolled(device_id=device.pk)
    return services.create_enrollment_keys(device=device, reenrolled=reenrolled)


def on_device_deleted(*, device_id: str) -> None:
    """devices.hooks.device_deleted, inside the deletion transaction: cancel non-final deliveries
    (reason `deleted`)."""
    services.cancel_device_deliveries(device_id=device_id, reason="deleted")


def purge_device(*, device_id: str, batch_size: int) -> int:
    """devices.hooks.device_purge: up to batch_size command rows of a deleted device: its
    deliveries' output blanked (the deliveries stay: commands' history), then its keys deleted;
    returns how many were touched (0 when done)."""
    return services.purge_device_rows(device_id=device_id, batch_size=batch_size)


def marker_prefix() -> str:
    """devices.hooks.marker_prefix: the heartbeat's Lua call reads the device's "nothing pending"
    marker (commands.markers) in its own round trip and hands it to heartbeat_answer."""
    return markers.PREFIX


def marker_expected(kids) -> str | None:
    """devices.hooks.marker_expected: the clean marker of a device sending these kids; any other
    clean marker makes the heartbeat's Lua call read the keyset cached beside it."""
    return markers.clean_value(kids)


def policy_prefix() -> str:
    """devices.hooks.policy_prefix: the heartbeat's Lua call reads the device's cached policy
    version (commands.policies.cache) in its own round trip and hands it to policy_version."""
    return policy_cache.PREFIX


def register() -> None:
    # services.heartbeat_answer itself, not a wrapper: it runs on every heartbeat.
    hooks.register("heartbeat_answer", services.heartbeat_answer)
    hooks.register("marker_prefix", marker_prefix)
    hooks.register("marker_expected", marker_expected)
    hooks.register("device_deleted", on_device_deleted)
    hooks.register("device_purge", purge_device)
    hooks.register("policy_version", policies.heartbeat_policy_version)
    hooks.register("policy_prefix", policy_prefix)
    hooks.register("devices_regrouped", policies.devices_regrouped)
