"""The `sync` push of a policy change (PROTOCOL.md "Push": `{"kind": "sync"}`, collapse key
`sync`): a data-only, high-priority FCM message on which the device pulls. A policy is never
pushed itself (it may hold a secret). Best effort: the next heartbeat's `policy_version` tells
the device anyway, so a failed push is not retried; a token FCM calls UNREGISTERED is cleared,
as the command dispatch does."""

import logging

from devices.models import Device
from mdm import fcm
from mdm.metrics import FCM_SENDS

logger = logging.getLogger(__name__)

# A device offline longer than this learns of the change from its first heartbeat back, which
# comes before anything else it does (PROTOCOL.md "Clock"), so an older tickle is worth nothing.
SYNC_TTL_S = 3600
MESSAGE = {"kind": "sync"}


def push_sync(*, device_ids) -> int:
    """Send the tickle to these devices (those with an FCM token); returns how many FCM took."""
    if not fcm.enabled():
        return 0
    rows = list(Device.objects.active().filter(pk__in=list(device_ids)).exclude(fcm_token="")
                .values_list("pk", "fcm_token"))
    if not rows:
        return 0
    results = fcm.send_each(fcm.PushMessage(token=token, data=dict(MESSAGE), ttl_s=SYNC_TTL_S, collapse_key="sync")
                            for _, token in rows)
    sent = 0
    for (device_id, token), result in zip(rows, results):
        FCM_SENDS.labels("ok" if result.ok else result.code.lower()).inc()
        if result.ok:
            sent += 1
        elif result.code == "UNREGISTERED":
            Device.objects.filter(pk=device_id, fcm_token=token).update(fcm_token="")
    if sent < len(rows):
        logger.info("policy sync push partly failed", extra={"sent": sent, "of": len(rows)})
    return sent
