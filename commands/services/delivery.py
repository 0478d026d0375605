"""The pull path: what a device is handed when it asks (the commands part of every heartbeat
answer, and GET /api/v1/device/commands). The common case, an idle device with the right keys,
is answered from its marker in Redis (commands.markers) without a query; otherwise a few raw
statements (mdm.sql) serve its pending envelopes, lowest seq first, and the cancellations it
must hear of."""

import json
from datetime import datetime

from django.db import connection
from django.utils import timezone

from commands import crypto, envelopes, live, markers
from commands.models import PENDING_STATES, SECRET_TYPES, Command, Delivery, DeliveryState, DeviceKey
from commands.services.keys import acknowledge_kids, ensure_device_keys, keyset, live_keys
from devices.hooks import UNREAD
from mdm import sql
from mdm.metrics import DELIVERIES, count_on_commit

S = DeliveryState
HEARTBEAT_LIMIT = 25
PULL_LIMIT_MAX = 100
CANCELLED_LIMIT = 100


def _envelopes(device_id, rows, key: DeviceKey) -> list[dict]:
    raw_key = key.key
    out = []
    for row in rows:
        params = dict(row["command__params"])
        if row["command__secret_params"]:
            params.update(crypto.decrypt_json(row["command__secret_params"]))
        out.append(
            envelopes.build(
                kid=key.kid,
                key=raw_key,
                command_id=row["command_id"],
                device_id=device_id,
                seq=row["seq"],
                type=row["command__type"],
                params=params,
                issued_at=row["command__created_at"],
                expires_at=row["expires_at"],
            )
        )
    return out


_PENDING = sql.Reader(
    ("pk", Delivery, "id"), ("seq", Delivery, "seq"), ("state", Delivery, "state"), ("expires_at", Delivery, "expires_at"),
    ("command_id", Delivery, "command"), ("command__type", Command, "type"), ("command__params", Command, "params"),
    ("command__secret_params", Command, "secret_params"), ("command__created_at", Command, "created_at"),
)


def _serve_pending(device_id, key: DeviceKey, limit: int, now: datetime) -> tuple[list, bool]:
    """Pending envelopes, lowest seq first, never expired; served queued rows become `sent`
    (channel pull). Raw SQL (mdm.sql): one SELECT, plus one UPDATE when something was queued.
    A queued row served is one this UPDATE moved: a row cancelled meanwhile is not served."""
    rows = _PENDING.rows(
        f"SELECT d.id, d.seq, d.state, d.expires_at, d.command_id, c.type, c.params, c.secret_params, c.created_at "
        f"FROM {sql.table(Delivery)} d INNER JOIN {sql.table(Command)} c ON c.id = d.command_id "
        f"WHERE d.device_id = %s AND d.state IN (%s, %s) AND d.expires_at > %s ORDER BY d.seq LIMIT %s",
        [sql.param(Delivery, "device", device_id), *PENDING_STATES, sql.param(Delivery, "expires_at", now), limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    queued = [r["pk"] for r in rows if r["state"] == S.QUEUED]
    if queued:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {sql.table(Delivery)} SET state = %s, sent_at = %s, channel = %s "
                f"WHERE id IN ({sql.placeholders(len(queued))}) AND state = %s RETURNING id",
                [S.SENT, sql.param(Delivery, "sent_at", now), Delivery.Channel.PULL, *queued, S.QUEUED],
            )
            moved = {pk for (pk,) in cursor.fetchall()}
        rows = [r for r in rows if r["state"] != S.QUEUED or r["pk"] in moved]
        if moved:
            count_on_commit(DELIVERIES, S.SENT, len(moved))
            live.changed_on_commit({r["command_id"] for r in rows if r["pk"] in moved})
    return _envelopes(device_id, rows, key), more


_CANCELLED = sql.Reader(("pk", Delivery, "id"), ("command_id", Delivery, "command"))


def _take_cancelled(device_id) -> list[str]:
    """Cancellations the device must hear of, each once (raw SQL, mdm.sql)."""
    rows = _CANCELLED.rows(
        f"SELECT id, command_id FROM {sql.table(Delivery)} WHERE device_id = %s AND notify_cancel = %s LIMIT %s",
        [sql.param(Delivery, "device", device_id), True, CANCELLED_LIMIT],
    )
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {sql.table(Delivery)} SET notify_cancel = %s WHERE id IN ({sql.placeholders(len(rows))})",
                [False, *(r["pk"] for r in rows)],
            )
    return [str(r["command_id"]) for r in rows]


EMPTY_ANSWER = {"commands": [], "more_commands": False, "cancelled": []}


def heartbeat_answer(*, device_id, kids, now: datetime | None = None, marker=UNREAD, keyset_raw=UNREAD) -> dict:
    """The command part of a heartbeat answer (devices.hooks.heartbeat_answer). The common case, a
    device with nothing pending and the right keys, is one Redis GET (commands.markers), or none
    when the caller passes the marker it read; a clean device with absent or stale `kids` is
    answered its keys from the keyset cached beside the marker (read by the caller's call too)."""
    valid = markers.valid_kids(kids)
    raw = markers.read(device_id) if marker is UNREAD else marker
    clean = markers.parse_clean(raw)
    if clean is not None:
        if valid and clean == markers.kids_key(kids):
            return dict(EMPTY_ANSWER, commands=[], cancelled=[])
        # `kids` absent or stale: the keys from Redis too
        keys = markers.cached_keyset(device_id, clean) if keyset_raw is UNREAD else markers.unseal_keyset(keyset_raw, clean)
        if keys is not None:
            return dict(EMPTY_ANSWER, commands=[], cancelled=[], command_keys=keys)
    now = now or timezone.now()
    pushed = markers.parse_pushed(raw)
    if pushed is not None and valid and pushed.kids == markers.kids_key(kids) and now.timestamp() < pushed.expires_at:
        # A pushed command awaiting its result: the envelope the push carried (commands.markers).
        return dict(EMPTY_ANSWER, commands=[json.loads(pushed.envelope)], cancelled=[])
    token = markers.begin_check(device_id)
    # No transaction: each statement is atomic on its own and every write is conditional, so
    # the read-only common case (a pushed command awaiting its result) is three SELECTs.
    keys = live_keys(device_id)
    if not any(k.state == DeviceKey.State.CURRENT for k in keys):
        keys = ensure_device_keys(device_id=device_id, now=now)
    if valid:
        keys = acknowledge_kids(device_id, kids, keys, now)
    current = next(k for k in keys if k.state == DeviceKey.State.CURRENT)
    commands, more = _serve_pending(device_id, current, HEARTBEAT_LIMIT, now)
    cancelled = _take_cancelled(device_id)
    answer = {"commands": commands, "more_commands": more, "cancelled": cancelled}
    server_kids = markers.kids_key(k.kid for k in keys)
    if not valid or markers.kids_key(kids) != server_kids:
        answer["command_keys"] = keyset(keys)
    if not more and not cancelled:
        if not commands:
            markers.finish_clean(device_id, token, server_kids, answer.get("command_keys") or keyset(keys))
        elif len(commands) == 1:  # its next heartbeats are answered from Redis (commands.markers)
            payload, text = json.loads(commands[0]["payload"]), envelopes.to_text(commands[0])
            if payload["type"] not in SECRET_TYPES and envelopes.fits_push(text):  # never a secret in Redis
                markers.finish_pushed(device_id, token, server_kids, payload["expires_at"], payload["id"], text)
    return answer


def pull_commands(*, device_id, limit: int, now: datetime | None = None) -> tuple[list, bool]:
    now = now or timezone.now()
    keys = live_keys(device_id)  # no transaction, as in heartbeat_answer
    current = next((k for k in keys if k.state == DeviceKey.State.CURRENT), None)
    if current is None:
        keys = ensure_device_keys(device_id=device_id, now=now)
        current = next(k for k in keys if k.state == DeviceKey.State.CURRENT)
    return _serve_pending(device_id, current, min(max(1, limit), PULL_LIMIT_MAX), now)

