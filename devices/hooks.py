"""Where the devices app calls the apps above it without importing them (docs/ARCHITECTURE.md,
"Hooks for upward calls").

devices/ sits below commands/ in the layer order, yet a heartbeat's answer carries the device's
commands, and a device deleted or purged takes its deliveries and keys with it. So devices/
declares here what it needs, as functions with the contract in their signature, and the app above
registers its implementation at start-up (commands/: CommandsConfig.ready). Until one is
registered, each hook answers as a fleet without that app would: no commands, nothing else to
cancel or purge.

The heartbeat's hooks add no Redis round trip: the write-behind's one Lua call
(devices.writebehind) reads the device's command marker under `marker_prefix()` and its policy
version under `policy_prefix()` together with the token check and the telemetry, and hands the
values to `heartbeat_answer` as `marker` and to `policy_version` as `cached`. Each is
one plain call to the implementation, as the direct call it replaces was."""

from collections.abc import Callable

from django.conf import settings

# `marker` when the heartbeat did not read the device's marker itself (no write-behind): the
# implementation reads it.
UNREAD = object()


def _no_commands(*, device_id, kids, marker=UNREAD, keyset_raw=UNREAD) -> dict:
    return {"commands": [], "more_commands": False, "cancelled": []}


def _no_marker_expected(kids) -> str | None:
    return None


def _unwritten_marker_prefix() -> str:
    return f"{settings.CACHE_PREFIX}:nomarker:"


def _no_policy(*, device_id, cached=UNREAD) -> int:
    return 0


def _unwritten_policy_prefix() -> str:
    return f"{settings.CACHE_PREFIX}:nopolicy:"


# One implementation each (the last registered), or the default until one is.
implementations: dict[str, Callable] = {
    "heartbeat_answer": _no_commands, "marker_prefix": _unwritten_marker_prefix,
    "marker_expected": _no_marker_expected,
    "policy_version": _no_policy, "policy_prefix": _unwritten_policy_prefix,
}
# Any number of receivers each, told in registration order.
receivers: dict[str, list[Callable]] = {"device_deleted": [], "device_purge": [], "devices_regrouped": []}


def register(hook: str, implementation: Callable) -> Callable:
    """Install an implementation of a hook point, or add a receiver to an event (once)."""
    if hook in implementations:
        implementations[hook] = implementation
    elif hook in receivers:
        if implementation not in receivers[hook]:
            receivers[hook].append(implementation)
    else:
        raise LookupError(f"devices.hooks has no hook point {hook!r}")
    return implementation


def heartbeat_answer(*, device_id: str, kids, marker=UNREAD, keyset_raw=UNREAD) -> dict:
    """Every heartbeat, after the status write, on the hot path: the commands part of the answer,
    {"commands": [ENVELOPE...], "more_commands": bool, "cancelled": [ids]}, plus "command_keys"
    when `kids` is absent, invalid or not the server's set for the device (PROTOCOL.md). `marker`:
    the raw marker the heartbeat's own Redis call read, or UNREAD; `keyset_raw`: the raw keyset it read
    beside a clean marker that `kids` do not match (None: none cached), or UNREAD."""
    return implementations["heartbeat_answer"](device_id=device_id, kids=kids, marker=marker, keyset_raw=keyset_raw)


def marker_expected(kids) -> str | None:
    """The marker value a device sending these `kids` needs no keys for, or None: the heartbeat's
    Lua call reads the cached keyset in the same round trip when the marker is another clean one."""
    return implementations["marker_expected"](kids)


def marker_prefix() -> str:
    """The Redis key prefix of the per-device marker the heartbeat's Lua call reads (prefix +
    device id) and passes to heartbeat_answer. The default names keys nobody writes."""
    return implementations["marker_prefix"]()


def policy_version(*, device_id: str, cached=UNREAD) -> int:
    """Every heartbeat, on the hot path: the device's current policy version (PROTOCOL.md v1.1
    `policy_version`, 0 for none). `cached`: the raw value the heartbeat's own Redis call read
    under `policy_prefix()` (None when absent), or UNREAD."""
    return implementations["policy_version"](device_id=device_id, cached=cached)


def policy_prefix() -> str:
    """The Redis key prefix of the per-device policy version the heartbeat's Lua call reads (prefix
    + device id) and passes to policy_version. The default names keys nobody writes."""
    return implementations["policy_prefix"]()


def devices_regrouped(*, device_ids: list) -> None:
    """Inside the transaction that moved these devices to another group (or out of one): the
    policy channel re-resolves their policy (a group may carry one)."""
    for receiver in receivers["devices_regrouped"]:
        receiver(device_ids=device_ids)


def device_deleted(*, device_id: str) -> None:
    """Inside the deletion's transaction, once per device."""
    for receiver in receivers["device_deleted"]:
        receiver(device_id=device_id)


def device_purge(*, device_id: str, batch_size: int) -> int:
    """A deleted device's purge, after its history and inventory are gone: each receiver deletes up
    to batch_size of the rows it keeps for the device and returns how many. The purge repeats
    until this returns 0."""
    return sum(receiver(device_id=device_id, batch_size=batch_size) for receiver in receivers["device_purge"])
