"""The contract between the device side (enrollment, heartbeat, deletion: devices/ and
enrollment/) and commands/. The device side calls only these functions; commands/ owns what
they do (keys, deliveries, envelopes)."""

from commands import services


def keys_on_enroll(*, device, reenrolled: bool) -> list[dict]:
    """Called inside the enrollment transaction. Creates the device's command keys (new ones on
    re-enrollment, which also cancels every non-final delivery with reason `reenrolled`) and
    returns `command_keys` for the answer: [{"kid": ..., "key": base64}]."""
    return services.create_enrollment_keys(device=device, reenrolled=reenrolled)


def heartbeat_answer(*, device_id: str, kids: list | None, marker=services.UNREAD) -> dict:
    """Called on every heartbeat after the status write. Returns the command part of the answer:
    {"commands": [ENVELOPE...], "more_commands": bool, "cancelled": [ids]} plus "command_keys"
    when `kids` is absent, invalid or differs from the server's current set for the device.
    Must be cheap: it runs on the hot path (one Redis GET when there is nothing to do; see
    commands.markers). `marker`: the raw marker value when the caller already read it from Redis
    in its own round trip (devices.writebehind does), saving this one."""
    return services.heartbeat_answer(device_id=device_id, kids=kids, marker=marker)


def on_device_deleted(*, device_id: str) -> None:
    """Called inside the deletion transaction: cancel non-final deliveries (reason `deleted`)."""
    services.cancel_device_deliveries(device_id=device_id, reason="deleted")


def purge_device(*, device_id: str, batch_size: int) -> int:
    """Delete up to batch_size command rows (deliveries) of a deleted device; returns how many
    were deleted (0 when done). Called repeatedly by the purge worker."""
    return services.purge_device_rows(device_id=device_id, batch_size=batch_size)


UNREAD = services.UNREAD


def marker_key(device_id) -> str:
    """The Redis key of the device's "nothing pending" marker, for callers that read it in their
    own round trip (then pass the value to heartbeat_answer)."""
    from commands import markers

    return markers.key(device_id)
