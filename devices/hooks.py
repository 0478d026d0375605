"""Where the devices app calls the apps above it without importing them (docs/ARCHITECTURE.md,
"Hooks").

devices/ sits below commands/ in the layer order, yet a heartbeat's answer carries the device's
commands, and a device deleted or purged takes its deliveries and keys with it. So devices/
declares here what it needs, and the app above registers its implementation at start-up
(commands/: CommandsConfig.ready). Until one is registered, each hook answers as a fleet without
that app would: no commands, nothing else to cancel or purge.

The heartbeat's hooks add no Redis round trip: the write-behind's one Lua call
(devices.writebehind) reads the device's command marker under `marker_prefix()` together with
the token check and the telemetry, and hands the value to `heartbeat_answer` as `marker`."""

from collections.abc import Callable

from django.conf import settings

# `marker` when the heartbeat did not read the device's marker itself (no write-behind): the
# implementation reads it.
UNREAD = object()


class Hook:
    """A call devices/ makes and one app above implements (the last registration wins)."""

    def __init__(self, name: str, default: Callable):
        self.name = name
        self.implementation = default

    def register(self, implementation: Callable) -> Callable:
        self.implementation = implementation
        return implementation

    def __call__(self, **kwargs):
        return self.implementation(**kwargs)


class Event:
    """Something that happened to a device, told to every receiver, in registration order."""

    def __init__(self, name: str):
        self.name = name
        self.receivers: list[Callable] = []

    def connect(self, receiver: Callable) -> Callable:
        if receiver not in self.receivers:
            self.receivers.append(receiver)
        return receiver

    def send(self, **kwargs) -> list:
        return [receiver(**kwargs) for receiver in self.receivers]


def _no_commands(*, device_id, kids, marker=UNREAD) -> dict:
    return {"commands": [], "more_commands": False, "cancelled": []}


# heartbeat_answer(device_id=str, kids=list | None, marker=bytes | None | UNREAD) -> dict.
# Every heartbeat, after the status write, on the hot path: the commands part of the answer,
# {"commands": [ENVELOPE...], "more_commands": bool, "cancelled": [ids]}, plus "command_keys"
# when `kids` is absent, invalid or not the server's set for the device (PROTOCOL.md).
heartbeat_answer = Hook("heartbeat_answer", _no_commands)

# marker_prefix() -> str. The Redis key prefix of the per-device marker the heartbeat's Lua call
# reads (prefix + device id) and passes to heartbeat_answer. The default names keys nobody writes.
marker_prefix = Hook("marker_prefix", lambda: f"{settings.CACHE_PREFIX}:nomarker:")

# device_deleted.send(device_id=str). Inside the deletion's transaction, once per device.
device_deleted = Event("device_deleted")

# device_purge.send(device_id=str, batch_size=int) -> [int, ...]. A deleted device's purge, after
# its history and inventory are gone: each receiver deletes up to batch_size of the rows it keeps
# for the device and returns how many; the purge repeats until every receiver returns 0.
device_purge = Event("device_purge")
