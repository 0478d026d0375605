"""State changes of this app (see STYLE.md: the only place that changes state).

Every delivery transition is a conditional update on `state` (`filter(pk=..., state__in=...)
.update(...)`), so duplicates, retries and late reports never move a delivery backwards and the
first final state wins. Side effects (dispatch, markers, live updates, metrics) run on commit.
"""

import json
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from commands import crypto, envelopes, live, markers, results, targeting
from commands.models import (
    FINAL_STATES,
    NON_FINAL_STATES,
    PENDING_STATES,
    SECRET_PARAMS,
    SECRET_TYPES,
    Command,
    CommandType,
    Delivery,
    DeliveryState,
    DeviceKey,
    Preset,
    ShellAllowRule,
    WifiConfig,
    states_below,
)
from commands.params import ParamsError, validate
from devices import tokens
from devices.models import Device
from mdm import audit, sql
from mdm.metrics import COMMANDS_ISSUED, DELIVERIES, DISPATCH_LATENCY, FCM_SENDS

logger = logging.getLogger(__name__)

S = DeliveryState
P = Delivery.Push
MAX_EXPIRES_IN_S = 2_592_000  # 30 days (PROTOCOL.md)
IDEMPOTENCY_WINDOW = timedelta(hours=24)
HEARTBEAT_LIMIT = 25
PULL_LIMIT_MAX = 100
CANCELLED_LIMIT = 100
MAX_OUTPUT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4096
KEY_LEAD = timedelta(days=1)
STUCK_GRACE = timedelta(days=1)
BATCH = 2000


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used within 24 h for a different request body."""


def _metric_on_commit(counter, label: str, n: int = 1) -> None:
    if n:
        transaction.on_commit(lambda: counter.labels(label).inc(n))


def request_fingerprint(body) -> str:
    """What an Idempotency-Key's replay is compared with. Keyed (HMAC-SHA256 with a key derived
    from SECRET_KEY by Django's salted_hmac): a plain SHA-256 of a body that may hold a Wi-Fi
    password let anyone who reads the table test guesses offline. Hashes stored before this were
    blanked (migration 0004): a retry of such a key within its 24 h answers 409, never twice."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return salted_hmac("mdm.commands.request_fingerprint", canonical, algorithm="sha256").hexdigest()


# --- keys ---------------------------------------------------------------------------------------

def _new_key(device_id, number: int, state: str, now: datetime, activates_at=None) -> DeviceKey:
    return DeviceKey(
        device_id=device_id,
        kid=f"k{number}",
        number=number,
        key_encrypted=crypto.encrypt_bytes(secrets.token_bytes(32)),
        state=state,
        created_at=now,
        activates_at=activates_at,
    )


def _retire(qs, now) -> int:
    return qs.update(state=DeviceKey.State.RETIRED, key_encrypted="", retired_at=now)


def keyset(keys) -> list[dict]:
    """`command_keys` for an answer: the device's live keys, the signing one first."""
    import base64

    order = {DeviceKey.State.CURRENT: 0, DeviceKey.State.NEXT: 1, DeviceKey.State.PREVIOUS: 2}
    live_keys = sorted((k for k in keys if k.state in order), key=lambda k: order[k.state])
    return [{"kid": k.kid, "key": base64.b64encode(k.key).decode()} for k in live_keys]


_LIVE_KEY_STATES = (DeviceKey.State.CURRENT, DeviceKey.State.NEXT, DeviceKey.State.PREVIOUS)
_KEY_COLUMNS = ("id", "device_id", "kid", "number", "key_encrypted", "state", "created_at", "activates_at", "retired_at")
_KEYS = sql.Reader(*((name, DeviceKey, name) for name in _KEY_COLUMNS))


def _live_keys(device_id) -> list[DeviceKey]:
    """One raw SELECT: every heartbeat of a device with work reads its keys (mdm.sql)."""
    rows = _KEYS.rows(
        f"SELECT {', '.join(_KEY_COLUMNS)} FROM {sql.table(DeviceKey)} "
        f"WHERE device_id = %s AND state IN ({sql.placeholders(len(_LIVE_KEY_STATES))})",
        [sql.param(DeviceKey, "device", device_id), *_LIVE_KEY_STATES],
    )
    return [DeviceKey.from_db(connection.alias, _KEY_COLUMNS, [row[name] for name in _KEY_COLUMNS]) for row in rows]


@transaction.atomic
def ensure_device_keys(*, device_id, now: datetime | None = None) -> list[DeviceKey]:
    """The device's live keys, making a current one if it has none (a device enrolled before
    keys existed, or one whose next key was never promoted)."""
    now = now or timezone.now()
    keys = _live_keys(device_id)
    if any(k.state == DeviceKey.State.CURRENT for k in keys):
        return keys
    Device.objects.select_for_update().filter(pk=device_id).values_list("pk").first()
    keys = _live_keys(device_id)
    if any(k.state == DeviceKey.State.CURRENT for k in keys):
        return keys
    nxt = [k for k in keys if k.state == DeviceKey.State.NEXT]
    if nxt:
        DeviceKey.objects.filter(pk=nxt[0].pk).update(state=DeviceKey.State.CURRENT)
    else:
        number = (DeviceKey.objects.filter(device_id=device_id).aggregate(m=Max("number"))["m"] or 0) + 1
        _new_key(device_id, number, DeviceKey.State.CURRENT, now).save()
    markers.dirty_on_commit([device_id])
    return _live_keys(device_id)


def create_enrollment_keys(*, device, reenrolled: bool, now: datetime | None = None) -> list[dict]:
    """A fresh current key (all earlier ones retired); on re-enrollment also cancels every
    non-final delivery (reason `reenrolled`): the device lost what it held."""
    now = now or timezone.now()
    with transaction.atomic():
        _retire(DeviceKey.objects.filter(device_id=device.pk).exclude(state=DeviceKey.State.RETIRED), now)
        number = (DeviceKey.objects.filter(device_id=device.pk).aggregate(m=Max("number"))["m"] or 0) + 1
        key = _new_key(device.pk, number, DeviceKey.State.CURRENT, now)
        key.save()
        if reenrolled:
            cancel_device_deliveries(device_id=device.pk, reason="reenrolled", now=now)
        markers.clean_on_commit(device.pk, markers.kids_key([key.kid]))  # its first heartbeat: one Redis read
    return keyset([key])


@transaction.atomic
def start_key_rotation(*, actor=None, lead: timedelta = KEY_LEAD, device_ids=None, now: datetime | None = None) -> int:
    """Hand every (or the given) device a `next` key that starts signing after `lead` (at least
    a day, PROTOCOL.md). A device still holding a `previous` key loses it: a device holds at
    most two keys, and one that missed a rotation is handed the whole set on its next heartbeat.
    Returns how many devices got a next key (devices that already have one are skipped)."""
    now = now or timezone.now()
    activates = now + lead
    devices = Device.objects.active().order_by("pk")
    if device_ids is not None:
        devices = devices.filter(pk__in=device_ids)
    all_ids = list(devices.values_list("pk", flat=True))
    started = 0
    for start in range(0, len(all_ids), 1000):
        chunk = all_ids[start : start + 1000]
        have_next = set(DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.NEXT).values_list("device_id", flat=True))
        todo = [d for d in chunk if d not in have_next]
        if not todo:
            continue
        _retire(DeviceKey.objects.filter(device_id__in=todo, state=DeviceKey.State.PREVIOUS), now)
        numbers = dict(
            DeviceKey.objects.filter(device_id__in=todo).values("device_id").annotate(m=Max("number")).values_list("device_id", "m")
        )
        DeviceKey.objects.bulk_create(
            [_new_key(d, numbers.get(d, 0) + 1, DeviceKey.State.NEXT, now, activates_at=activates) for d in todo]
        )
        markers.dirty_on_commit(todo)
        started += len(todo)
    audit.record(actor=actor, action="command_keys.rotate", target=("devicekey", "*"),
                 data={"devices": started, "activates_at": activates.isoformat()})
    return started


def promote_due_keys(*, now: datetime | None = None) -> int:
    """next -> current (and current -> previous) for keys whose activation time has come."""
    now = now or timezone.now()
    due = list(
        DeviceKey.objects.filter(state=DeviceKey.State.NEXT, activates_at__lte=now).order_by("device_id").values_list("device_id", flat=True)
    )
    for start in range(0, len(due), 1000):
        chunk = due[start : start + 1000]
        with transaction.atomic():
            _retire(DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.PREVIOUS), now)
            DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.CURRENT).update(state=DeviceKey.State.PREVIOUS)
            DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.NEXT, activates_at__lte=now).update(
                state=DeviceKey.State.CURRENT
            )
            markers.dirty_on_commit(chunk)
    if due:
        audit.record(actor=None, action="command_keys.promote", target=("devicekey", "*"), data={"devices": len(due)})
    return len(due)


def _acknowledge_kids(device_id, kids: list[str], keys: list[DeviceKey], now) -> list[DeviceKey]:
    """The device's kids show it holds the current key: the previous one can go."""
    current = next((k for k in keys if k.state == DeviceKey.State.CURRENT), None)
    previous = [k for k in keys if k.state == DeviceKey.State.PREVIOUS]
    if current is None or not previous or current.kid not in kids:
        return keys
    _retire(DeviceKey.objects.filter(pk__in=[k.pk for k in previous], state=DeviceKey.State.PREVIOUS), now)
    return [k for k in keys if k.state != DeviceKey.State.PREVIOUS]


# --- issuing ------------------------------------------------------------------------------------

def split_params(command_type: str, params: dict) -> tuple[dict, str]:
    """(stored params, encrypted secret params)."""
    secret_names = SECRET_PARAMS.get(command_type, frozenset())
    public = {k: v for k, v in params.items() if k not in secret_names}
    secret = {k: v for k, v in params.items() if k in secret_names}
    return public, (crypto.encrypt_json(secret) if secret else "")


def _claim_seqs(device_ids: list) -> list[tuple]:
    """Take the next seq of each device in bulk: one UPDATE ... RETURNING per batch, locking
    the rows in id order so concurrent commands to overlapping fleets cannot deadlock.
    Returns (device_id, seq, has_fcm_token)."""
    table = connection.ops.quote_name(Device._meta.db_table)
    out = []
    for start in range(0, len(device_ids), BATCH):
        chunk = device_ids[start : start + BATCH]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"WITH locked AS (SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE) "
                    f"UPDATE {table} AS d SET next_seq = d.next_seq + 1 FROM locked WHERE d.id = locked.id "
                    f"RETURNING d.id, d.next_seq - 1, d.fcm_token <> ''",
                    [list(chunk)],
                )
                out.extend(cursor.fetchall())
            else:  # SQLite (embedded): transactions are serialized already
                pk = Device._meta.pk
                values = [pk.get_db_prep_value(d, connection) for d in chunk]
                marks = ",".join(["%s"] * len(values))
                cursor.execute(
                    f"UPDATE {table} SET next_seq = next_seq + 1 WHERE id IN ({marks}) "
                    f"RETURNING id, next_seq - 1, fcm_token <> ''",
                    values,
                )
                out.extend((uuid.UUID(str(r[0])), r[1], bool(r[2])) for r in cursor.fetchall())
    return out


@dataclass
class Issued:
    command: Command
    created: bool = True
    device_ids: list = field(default_factory=list)


def _expiry(expires_in_s) -> int:
    from mdm.models import FleetSettings

    if expires_in_s is None:
        return min(FleetSettings.current().default_command_expiry_s, MAX_EXPIRES_IN_S)
    if isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int) or not 1 <= expires_in_s <= MAX_EXPIRES_IN_S:
        raise ParamsError({"expires_in_s": [f"An integer from 1 to {MAX_EXPIRES_IN_S} (30 days)."]})
    return expires_in_s


def prepare_command(*, type: str, params, target, expires_in_s=None, preset: Preset | None = None) -> dict:
    """Validate everything a command needs without writing: (type, cleaned params, target spec,
    lifetime). Raises ParamsError."""
    if preset is not None:
        merged = {**preset.params, **(params or {})}
        type, params = preset.type, merged
    if not type:
        raise ParamsError({"type": ["This field is required."]})
    cleaned = validate(type, params)
    spec = targeting.normalize(target)
    return {"type": type, "params": cleaned, "target": spec, "expires_in_s": _expiry(expires_in_s)}


def preview_command(*, type: str, params, target, expires_in_s=None, preset=None) -> list:
    """A dry run: the resolved device ids, nothing written."""
    prepared = prepare_command(type=type, params=params, target=target, expires_in_s=expires_in_s, preset=preset)
    return targeting.resolve_ids(prepared["target"])


def issue_command(
    *,
    actor,
    type: str = "",
    params=None,
    target,
    expires_in_s: int | None = None,
    idempotency_key: str = "",
    request_hash: str = "",
    preset: Preset | None = None,
    wifi_config: WifiConfig | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> Issued:
    """Create the command and one delivery per target device, all committed before anything is
    sent; then (on commit) dispatch by FCM when enabled. Raises ParamsError (400) or
    IdempotencyConflict (409)."""
    from mdm import fcm

    now = now or timezone.now()
    issuer = actor if actor is not None and getattr(actor, "pk", None) else None
    if idempotency_key:
        replay = _idempotent_replay(issuer, idempotency_key, request_hash, now)
        if replay is not None:
            return replay
    prepared = prepare_command(type=type, params=params, target=target, expires_in_s=expires_in_s, preset=preset)
    device_ids = targeting.resolve_ids(prepared["target"])
    if not device_ids:
        raise ParamsError({"target": ["The target matches no device."]})
    command_type, cleaned = prepared["type"], prepared["params"]
    public, secret = split_params(command_type, cleaned)
    is_secret = command_type in SECRET_TYPES
    expires_at = now + timedelta(seconds=prepared["expires_in_s"])
    push = fcm.enabled()
    with transaction.atomic():
        command = Command(
            type=command_type,
            params=public,
            secret_params=secret,
            is_secret=is_secret,
            target=prepared["target"],
            target_count=len(device_ids),
            issuer=issuer,
            issuer_label=audit.actor_label(actor),
            created_at=now,
            expires_at=expires_at,
            idempotency_key=idempotency_key,
            request_hash=request_hash if idempotency_key else "",
            preset=preset,
            preset_version=preset.version if preset else None,
            wifi_config=wifi_config,
        )
        try:
            with transaction.atomic():
                command.save(force_insert=True)
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race.
            replay = _idempotent_replay(issuer, idempotency_key, request_hash, now)
            if replay is None:
                raise
            return replay
        rows = [(device_id, seq, P.WAITING if push and has_token else P.SKIPPED, "")
                for device_id, seq, has_token in _claim_seqs(device_ids)]
        claims = _preclaim(rows) if push else []
        _insert_deliveries(Delivery(command=command, expires_at=expires_at, queued_at=now, push_claimed_at=now), rows)
        audit.record(
            actor=actor,
            action="command.issue",
            target=("command", str(command.pk)),
            data={
                "type": command_type,
                "params": command.masked_params(),
                "target": prepared["target"],
                "target_count": len(device_ids),
                "expires_at": expires_at.isoformat(),
                **({"preset": f"{preset.name} v{preset.version}"} if preset else {}),
            },
            ip=ip,
        )
        markers.issued_on_commit(device_ids, command.pk)
        _metric_on_commit(COMMANDS_ISSUED, command_type)
        _metric_on_commit(DELIVERIES, S.QUEUED, len(rows))
        if claims:
            from commands.tasks import dispatch_command

            command_id = str(command.pk)
            transaction.on_commit(lambda: [dispatch_command.apply_async((command_id,), task_id=c) for c in claims])
        live.issued_on_commit(command)
    return Issued(command=command, created=True, device_ids=device_ids)


def _preclaim(rows: list[tuple]) -> list[str]:
    """Big fan-outs are pushed by several dispatch tasks at once (each claims its own batches,
    so they never send a delivery twice): 2,000 devices reach FCM in ~half the time. Each task's
    first batch is claimed here, in the INSERT (its task id as the claim), so the task starts
    sending at once instead of first claiming 500 rows with a locking UPDATE (0.06-0.18 s under
    load, docs/performance.md). Rewrites `rows` in place; returns the task ids to start."""
    from commands.tasks import PUSH_BATCH

    waiting = [i for i, row in enumerate(rows) if row[2] == P.WAITING]
    claims = [str(uuid.uuid4()) for _ in range(min(DISPATCH_PARALLEL, -(-len(waiting) // PUSH_BATCH)))]
    for n, i in enumerate(waiting[: len(claims) * PUSH_BATCH]):
        device_id, seq, _, _ = rows[i]
        rows[i] = (device_id, seq, P.CLAIMED, claims[n // PUSH_BATCH])
    return claims


def _insert_deliveries(template: Delivery, rows: list[tuple]) -> None:
    """Insert a command's deliveries: `template` holds what every row shares, `rows` are
    (device id, seq, push status, push claim). On PostgreSQL one INSERT ... SELECT FROM unnest(...) per
    BATCH: the shared columns bound once, the three that differ as arrays. bulk_create of model
    instances spent two thirds of a 2,000-device issue preparing 44,000 values (cProfile: 0.34 of
    0.52 s), and building the instances another 0.08 s."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_create(
            [Delivery(command=template.command, expires_at=template.expires_at, queued_at=template.queued_at,
                      push_claimed_at=template.push_claimed_at, device_id=device_id, seq=seq, push_status=push_status,
                      push_claim=claim) for device_id, seq, push_status, claim in rows],
            batch_size=BATCH,
        )
        return
    varying = ("device", "seq", "push_status", "push_claim")
    shared = [f for f in Delivery._meta.concrete_fields if not f.primary_key and f.name not in varying]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in shared + [Delivery._meta.get_field(n) for n in varying])
    select = ", ".join(f"%s::{f.db_type(connection)}" for f in shared)
    arrays = ", ".join(f"%s::{Delivery._meta.get_field(n).db_type(connection)}[]" for n in varying[1:])
    statement = (f"INSERT INTO {Delivery._meta.db_table} ({columns}) SELECT {select}, v.device_id, v.seq, v.push_status, v.push_claim "
           f"FROM unnest(%s::uuid[], {arrays}) AS v(device_id, seq, push_status, push_claim)")
    constants = [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in shared]
    for start in range(0, len(rows), BATCH):
        device_ids, seqs, statuses, claims = zip(*rows[start : start + BATCH])
        with connection.cursor() as cursor:
            cursor.execute(statement, [*constants, list(device_ids), list(seqs), list(statuses), list(claims)])


def _idempotent_replay(issuer, key: str, request_hash: str, now) -> Issued | None:
    existing = Command.objects.filter(issuer=issuer, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.created_at < now - IDEMPOTENCY_WINDOW:
        Command.objects.filter(pk=existing.pk, idempotency_key=key).update(idempotency_key="")
        return None
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(key)
    return Issued(command=existing, created=False)


# --- pull path (heartbeat and GET /device/commands) ---------------------------------------------

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
            _metric_on_commit(DELIVERIES, S.SENT, len(moved))
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


def _valid_kids(kids) -> bool:
    return isinstance(kids, list) and len(kids) <= 10 and all(isinstance(k, str) and 0 < len(k) <= 16 for k in kids)


UNREAD = object()


def heartbeat_answer(*, device_id, kids, now: datetime | None = None, marker=UNREAD) -> dict:
    """The command part of a heartbeat answer (see commands.device_hooks). The common case, a
    device with nothing pending and the right keys, is one Redis GET (commands.markers), or none
    when the caller passes the marker it read."""
    valid = _valid_kids(kids)
    raw = markers.read(device_id) if marker is UNREAD else marker
    clean = markers.parse_clean(raw)
    if clean is not None and valid and clean == markers.kids_key(kids):
        return dict(EMPTY_ANSWER, commands=[], cancelled=[])
    now = now or timezone.now()
    pushed = markers.parse_pushed(raw)
    if pushed is not None and valid and pushed.kids == markers.kids_key(kids) and now.timestamp() < pushed.expires_at:
        # A pushed command awaiting its result: the envelope the push carried (commands.markers).
        return dict(EMPTY_ANSWER, commands=[json.loads(pushed.envelope)], cancelled=[])
    token = markers.begin_check(device_id)
    # No transaction: each statement is atomic on its own and every write is conditional, so
    # the read-only common case (a pushed command awaiting its result) is three SELECTs.
    keys = _live_keys(device_id)
    if not any(k.state == DeviceKey.State.CURRENT for k in keys):
        keys = ensure_device_keys(device_id=device_id, now=now)
    if valid:
        keys = _acknowledge_kids(device_id, kids, keys, now)
    current = next(k for k in keys if k.state == DeviceKey.State.CURRENT)
    commands, more = _serve_pending(device_id, current, HEARTBEAT_LIMIT, now)
    cancelled = _take_cancelled(device_id)
    answer = {"commands": commands, "more_commands": more, "cancelled": cancelled}
    server_kids = markers.kids_key(k.kid for k in keys)
    if not valid or markers.kids_key(kids) != server_kids:
        answer["command_keys"] = keyset(keys)
    if not more and not cancelled:
        if not commands:
            markers.finish_clean(device_id, token, server_kids)
        elif len(commands) == 1:  # its next heartbeats are answered from Redis (commands.markers)
            payload, text = json.loads(commands[0]["payload"]), envelopes.to_text(commands[0])
            if payload["type"] not in SECRET_TYPES and envelopes.fits_push(text):  # never a secret in Redis
                markers.finish_pushed(device_id, token, server_kids, payload["expires_at"], payload["id"], text)
    return answer


def pull_commands(*, device_id, limit: int, now: datetime | None = None) -> tuple[list, bool]:
    now = now or timezone.now()
    keys = _live_keys(device_id)  # no transaction, as in heartbeat_answer
    current = next((k for k in keys if k.state == DeviceKey.State.CURRENT), None)
    if current is None:
        keys = ensure_device_keys(device_id=device_id, now=now)
        current = next(k for k in keys if k.state == DeviceKey.State.CURRENT)
    return _serve_pending(device_id, current, min(max(1, limit), PULL_LIMIT_MAX), now)


# --- results ------------------------------------------------------------------------------------

def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


_TIMESTAMP = {S.SENT: "sent_at", S.RECEIVED: "received_at", S.RUNNING: "running_at"}


def final_fields(exit_code, output, error, reason) -> dict:
    """What a final report writes besides its state, cut to the columns' limits (the direct
    write below and the write-behind's queue, commands.results, alike)."""
    fields: dict = {}
    if exit_code is not None:
        fields["exit_code"] = exit_code
    if output:
        fields["output"], fields["output_truncated"] = truncate_utf8(output, MAX_OUTPUT_BYTES)
    if error:
        fields["error"] = error[:MAX_ERROR_CHARS]
    if reason:
        fields["reason"] = reason[:64]
    return fields


@dataclass(frozen=True)
class Reported:
    device_id: str
    state: str | None  # the delivery's state the answer names; None: not this device's command (404)


def report_result(*, token: str, command_id, status: str, exit_code=None, output=None, error=None,
                  reason=None) -> Reported | None:
    """A device's report (validated), authenticated by its token: None for a bad token (401).
    The token check is one Redis call that also queues the report for the write-behind
    (commands.results) when the device's marker proves the delivery pending, or settles the
    marker for record_result's UPDATE (commands.markers.report)."""
    parts = tokens.split(token)
    if parts is None:
        return None
    token_id, secret = parts
    now = timezone.now()
    report = dict(status=status, exit_code=exit_code, output=output, error=error, reason=reason)
    checked = markers.report(
        token_key=tokens.cache_key(token_id), digest=tokens.digest(secret), command_id=command_id,
        status=status, now_s=int(now.timestamp()), results_key=results.key(),
        entry=results.entry(command_id=command_id, now=now, **report) if results.enabled() else "",
    )
    if checked.auth == "invalid":
        return None
    if checked.auth == "unknown":  # not cached yet (or no Redis): bcrypt once, then cached
        device_id = tokens.verify(token)
        if device_id is None:
            return None
        return Reported(device_id, record_result(device_id=device_id, command_id=command_id, now=now, **report))
    if checked.outcome == "queued":
        return Reported(checked.device_id, status)
    if checked.outcome == "sync":
        return Reported(checked.device_id, record_result(device_id=checked.device_id, command_id=command_id, now=now,
                                                         settled=True, **report))
    return Reported(checked.device_id, checked.outcome)  # the final already queued: the first final wins


def flush_results() -> int:
    """The write-behind's queued reports into PostgreSQL (beat, every second; commands.results)."""
    return results.flush()


def record_result(
    *,
    device_id,
    command_id,
    status: str,
    exit_code: int | None = None,
    output: str | None = None,
    error: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    settled: bool = False,
) -> str | None:
    """Apply a device's report (already validated). Returns the delivery's state afterwards, or
    None when the command is not this device's (404). One conditional UPDATE ... RETURNING in
    the common case (forward moves only, first final wins); a report that moves nothing (a
    repeat, a late `running`) then reads the state it found. The command marker is settled
    first (commands.markers), unless the caller's token check did it (`settled`)."""
    now = now or timezone.now()
    if not settled:
        markers.settle_reported(device_id, command_id)
    values = {"state": status}
    if status in FINAL_STATES:
        values.update(finished_at=now, notify_cancel=False, **final_fields(exit_code, output, error, reason))
    else:
        values[_TIMESTAMP[status]] = now
    meta = Delivery._meta
    below = states_below(status)
    statement = (
        f"UPDATE {sql.table(Delivery)} SET {', '.join(f'{meta.get_field(k).column} = %s' for k in values)} "
        f"WHERE command_id = %s AND device_id = %s AND state IN ({sql.placeholders(len(below))}) RETURNING id"
    )
    params = [
        *(meta.get_field(k).get_db_prep_save(v, connection) for k, v in values.items()),
        sql.param(Delivery, "command", command_id),
        sql.param(Delivery, "device", device_id),
        *below,
    ]
    with connection.cursor() as cursor:  # one statement: its own transaction unless the caller has one
        cursor.execute(statement, params)
        moved = cursor.fetchone()
    if moved:
        _metric_on_commit(DELIVERIES, status)
        live.changed_on_commit([command_id], [moved[0]])
        return status
    return Delivery.objects.filter(command_id=command_id, device_id=device_id).values_list("state", flat=True).first()


# --- cancel, expire, device lifecycle ----------------------------------------------------------

def cancel_command(*, actor, command: Command, ip: str | None = None, now: datetime | None = None) -> int:
    """Cancel every delivery not yet started. Ones the device may hold (sent, received) ride
    back in its next heartbeat's `cancelled`; running ones finish and report."""
    results.flush_all()  # reports the devices were already answered for land first (commands.results)
    return _cancel_command(actor=actor, command=command, ip=ip, now=now or timezone.now())


@transaction.atomic
def _cancel_command(*, actor, command: Command, ip: str | None, now: datetime) -> int:
    locked = Command.objects.select_for_update().get(pk=command.pk)
    if locked.cancelled_at is None:
        locked.cancelled_at = now
        locked.save(update_fields=["cancelled_at"])
    command.cancelled_at = locked.cancelled_at
    held = Delivery.objects.filter(command=command, state__in=[S.SENT, S.RECEIVED])
    notify_devices = list(held.values_list("device_id", flat=True))
    n_held = held.update(state=S.CANCELLED, finished_at=now, reason="cancelled", notify_cancel=True)
    n_queued = Delivery.objects.filter(command=command, state=S.QUEUED).update(
        state=S.CANCELLED, finished_at=now, reason="cancelled"
    )
    markers.dirty_on_commit(notify_devices)
    _metric_on_commit(DELIVERIES, S.CANCELLED, n_held + n_queued)
    audit.record(actor=actor, action="command.cancel", target=("command", str(command.pk)),
                 data={"cancelled": n_held + n_queued}, ip=ip)
    live.changed_on_commit([command.pk])
    return n_held + n_queued


def cancel_device_deliveries(*, device_id, reason: str, now: datetime | None = None) -> int:
    """Re-enrollment or deletion: every non-final delivery of the device ends `cancelled`."""
    now = now or timezone.now()
    results.flush_all()  # as cancel_command
    with transaction.atomic():
        qs = Delivery.objects.filter(device_id=device_id, state__in=NON_FINAL_STATES)
        command_ids = set(qs.values_list("command_id", flat=True))
        n = qs.update(state=S.CANCELLED, finished_at=now, reason=reason, notify_cancel=False)
        _metric_on_commit(DELIVERIES, S.CANCELLED, n)
        live.changed_on_commit(command_ids)
    return n


def expire_deliveries(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Queued or sent deliveries past `expires_at` end `expired`; received or running ones (the
    device took them and never reported) a day later."""
    now = now or timezone.now()
    results.flush_all()  # as cancel_command
    total = 0
    for states, cutoff in ((PENDING_STATES, now), ((S.RECEIVED, S.RUNNING), now - STUCK_GRACE)):
        while True:
            with transaction.atomic():
                rows = list(
                    Delivery.objects.filter(state__in=states, expires_at__lte=cutoff).values_list("pk", "command_id")[:batch_size]
                )
                if not rows:
                    break
                n = Delivery.objects.filter(pk__in=[r[0] for r in rows], state__in=states).update(
                    state=S.EXPIRED, finished_at=now, reason="expired"
                )
                total += n
                _metric_on_commit(DELIVERIES, S.EXPIRED, n)
                live.changed_on_commit({r[1] for r in rows})
            if len(rows) < batch_size:
                break
    return total


def purge_device_rows(*, device_id, batch_size: int) -> int:
    ids = list(Delivery.objects.filter(device_id=device_id).values_list("pk", flat=True)[:batch_size])
    if ids:
        Delivery.objects.filter(pk__in=ids).delete()
        return len(ids)
    deleted, _ = DeviceKey.objects.filter(device_id=device_id).delete()
    return deleted


# --- push dispatch ------------------------------------------------------------------------------

RETRYABLE = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "UNKNOWN"})
MAX_PUSH_ATTEMPTS = 6
CLAIM_STALE = timedelta(seconds=120)
# Dispatch tasks started at once for one command (at most one per 500 deliveries).
DISPATCH_PARALLEL = max(1, int(os.environ.get("MDM_DISPATCH_PARALLEL", "4")))


def push_backoff_s(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (2, 4, 8 ... s, at most 5 min), never under Retry-After."""
    import random

    base = min(300.0, 2.0 ** max(1, attempt))
    return max(retry_after or 0.0, base * random.uniform(0.8, 1.2))


@dataclass
class PushReport:
    pushed: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    retry_in_s: float | None = None


def _own_claims(command_id, claim: str, now, stale: timedelta, batch_size: int) -> list[int]:
    """Rows claimed for this task at issue (or by it before a redelivery): a read, no locking
    UPDATE. Whatever their state (one a heartbeat served meanwhile is released by _push_batch),
    but never stale ones: those anyone may take over, so they go through the locking claim."""
    return list(
        Delivery.objects.filter(command_id=command_id, push_status=P.CLAIMED, push_claim=claim, push_claimed_at__gte=now - stale)
        .order_by("pk").values_list("pk", flat=True)[:batch_size]
    )


def _claim_push_batch(command_id, claim: str, now, stale: timedelta, batch_size: int) -> list[int]:
    cond = Q(push_status=P.WAITING) | Q(push_status=P.RETRY, push_after__lte=now) | Q(
        push_status=P.CLAIMED, push_claimed_at__lt=now - stale
    )
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(cond, command_id=command_id, state=S.QUEUED)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(push_status=P.CLAIMED, push_claim=claim, push_claimed_at=now)
    return ids


def push_command(*, command_id, claim: str, batch_size: int = 500, stale: timedelta = CLAIM_STALE) -> PushReport:
    """Claim this command's waiting deliveries in batches (conditional update, skip locked) and
    push each batch with one send_each. A delivery pushed with its envelope becomes `sent`; a
    `sync` tickle (secret command or envelope over 3,500 bytes) leaves it queued for the pull."""
    from mdm import fcm

    report = PushReport()
    command = Command.objects.filter(pk=command_id).first()
    if command is None:
        return report
    if not fcm.enabled():  # switched off since issue: the pull path carries everything
        report.skipped = Delivery.objects.filter(
            command_id=command_id, push_status__in=[P.WAITING, P.RETRY, P.CLAIMED]
        ).update(push_status=P.SKIPPED, push_claim="")
        return report
    # Its own claims first (made for it at issue, or by it before a redelivery), then anyone's
    # waiting, retry-due or stale ones. A batch releases every row it took; an own row seen
    # twice would mean something held it, so the own reads stop there (never a loop).
    handled: set[int] = set()
    own = True
    while True:
        now = timezone.now()
        ids = []
        if own:
            ids = [pk for pk in _own_claims(command_id, claim, now, stale, batch_size) if pk not in handled]
            handled.update(ids)
            own = bool(ids)
        if not ids:
            ids = _claim_push_batch(command_id, claim, now, stale, batch_size)
        if not ids:
            break
        _push_batch(command, ids, claim, report)
    report.retry_in_s = _next_retry_in(command_id)
    return report


def _next_retry_in(command_id) -> float | None:
    first = (
        Delivery.objects.filter(command_id=command_id, state=S.QUEUED, push_status=P.RETRY)
        .order_by("push_after")
        .values_list("push_after", flat=True)
        .first()
    )
    if first is None:
        return None
    return max(0.5, (first - timezone.now()).total_seconds())


def _push_batch(command: Command, ids: list[int], claim: str, report: PushReport) -> None:
    from mdm import fcm

    started = time.perf_counter()
    now = timezone.now()
    rows = list(
        Delivery.objects.filter(pk__in=ids, push_claim=claim, state=S.QUEUED).values(
            "pk", "device_id", "seq", "expires_at", "attempts", "device__fcm_token"
        )
    )
    keys = {k.device_id: k for k in DeviceKey.objects.filter(device_id__in=[r["device_id"] for r in rows], state=DeviceKey.State.CURRENT)}
    reading_done = time.perf_counter()
    params = command.full_params()
    sendable, ready = [], []
    # Claimed rows no longer queued (a heartbeat served them first): nothing to push.
    skipped = sorted(set(ids) - {row["pk"] for row in rows})
    for row in rows:
        if int((row["expires_at"] - now).total_seconds()) <= 0 or not row["device__fcm_token"]:
            skipped.append(row["pk"])
        else:
            ready.append(row)
    if skipped:
        Delivery.objects.filter(pk__in=skipped, push_claim=claim).update(push_status=P.SKIPPED, push_claim="")
        report.skipped += len(skipped)
    if not ready:
        return
    building = 0.0

    unbuilt = []
    texts: dict[int, tuple] = {}  # delivery pk -> (device id, expires_at, envelope text): the cached answers

    late: list[int] = []  # served by a heartbeat while the batch was being sent: not pushed

    def still_queued(rows: list) -> list:
        """A batch goes out over seconds: rows a heartbeat has served since the read are not
        pushed again (the device has them; a second copy would only come back as a repeated
        result). One indexed read per STREAM_CHUNK rows."""
        queued = set(Delivery.objects.filter(pk__in=[r["pk"] for r in rows], state=S.QUEUED).values_list("pk", flat=True))
        late.extend(r["pk"] for r in rows if r["pk"] not in queued)
        return [r for r in rows if r["pk"] in queued]

    def messages():  # built as they are sent (fcm.send_each streams): signing overlaps the network
        for start in range(0, len(ready), fcm.STREAM_CHUNK):
            rows = ready[start : start + fcm.STREAM_CHUNK]
            yield from chunk_messages(still_queued(rows) if start else rows)  # the first chunk was just read

    def chunk_messages(rows):
        nonlocal building
        for row in rows:
            began = time.perf_counter()
            try:
                key = keys.get(row["device_id"])
                if key is None:
                    key = next(k for k in ensure_device_keys(device_id=row["device_id"]) if k.state == DeviceKey.State.CURRENT)
                data = {"kind": "sync"}
                collapse = "sync"
                if not command.is_secret:
                    text = envelopes.to_text(
                        envelopes.build(kid=key.kid, key=key.key, command_id=command.pk, device_id=row["device_id"], seq=row["seq"],
                                        type=command.type, params=params, issued_at=command.created_at, expires_at=row["expires_at"])
                    )
                    if envelopes.fits_push(text):
                        data, collapse = {"kind": "command", "envelope": text}, None
                        texts[row["pk"]] = (row["device_id"], envelopes.unix(row["expires_at"]), text)
            except Exception:
                # Pushes already in flight must still be recorded: this one is retried later.
                logger.exception("push message not built", extra={"command_id": str(command.pk), "delivery": row["pk"]})
                unbuilt.append(row)
                continue
            ttl = int((row["expires_at"] - now).total_seconds())
            sendable.append((row, data["kind"]))
            message = fcm.PushMessage(token=row["device__fcm_token"], data=data, ttl_s=min(ttl, fcm.MAX_TTL_S), collapse_key=collapse)
            building += time.perf_counter() - began
            yield message

    results = fcm.send_each(messages())
    sent = time.perf_counter()
    if late:
        Delivery.objects.filter(pk__in=late, push_claim=claim).update(push_status=P.SKIPPED, push_claim="")
        report.skipped += len(late)
    done = timezone.now()
    groups: dict[str, list] = {"command": [], "sync": [], "failed": [], "invalid": [], "unregistered": []}
    retries: dict[float, list] = {}
    for (row, kind), result in zip(sendable, results):
        FCM_SENDS.labels("ok" if result.ok else result.code.lower()).inc()
        if result.ok:
            groups[kind].append(row["pk"])
            DISPATCH_LATENCY.observe(max(0.0, (done - command.created_at).total_seconds()))
        elif result.code == "UNREGISTERED":
            groups["unregistered"].append((row, result))
        elif result.code == "INVALID_ARGUMENT":
            groups["invalid"].append((row["pk"], result))
        elif result.code in RETRYABLE and row["attempts"] + 1 < MAX_PUSH_ATTEMPTS:
            delay = round(push_backoff_s(row["attempts"] + 1, result.retry_after_s), 1)
            retries.setdefault(delay, []).append(row["pk"])
        else:
            groups["failed"].append(row["pk"])
    for row in unbuilt:
        retries.setdefault(round(push_backoff_s(row["attempts"] + 1), 1), []).append(row["pk"])
    mine = Delivery.objects.filter(push_claim=claim, push_status=P.CLAIMED)
    held = []
    with transaction.atomic():
        if groups["command"]:
            n = mine.filter(pk__in=groups["command"], state=S.QUEUED).update(
                state=S.SENT, sent_at=done, channel=Delivery.Channel.PUSH, push_status=P.PUSHED, push_claim="",
                attempts=F("attempts") + 1,
            )
            _metric_on_commit(DELIVERIES, S.SENT, n)
            # Reported before we got FCM's answer (the device is quick): it still came by push.
            mine.filter(pk__in=groups["command"], channel="").update(
                channel=Delivery.Channel.PUSH, push_status=P.PUSHED, push_claim="", attempts=F("attempts") + 1
            )
            # Cancelled while queued, after we read it: the device now holds it, so it must hear.
            held = list(Delivery.objects.filter(pk__in=groups["command"], state=S.CANCELLED, notify_cancel=False)
                        .values_list("pk", "device_id"))
            if held:
                Delivery.objects.filter(pk__in=[pk for pk, _ in held]).update(notify_cancel=True)
                markers.dirty_on_commit([device_id for _, device_id in held])
            live.changed_on_commit([command.pk])
        ok = groups["command"] + groups["sync"]
        if ok:  # sync tickles, and pushes that a pull overtook
            mine.filter(pk__in=ok).update(push_status=P.PUSHED, push_claim="", attempts=F("attempts") + 1)
        report.pushed += len(ok)
        for delay, pks in retries.items():
            mine.filter(pk__in=pks).update(
                push_status=P.RETRY, push_claim="", push_after=done + timedelta(seconds=delay), attempts=F("attempts") + 1
            )
            report.retry += len(pks)
        if groups["failed"]:
            mine.filter(pk__in=groups["failed"]).update(push_status=P.FAILED, push_claim="", attempts=F("attempts") + 1)
            report.failed += len(groups["failed"])
        for row, result in groups["unregistered"]:
            # FCM says the token is dead: forget it (only if the device still has that token)
            # and leave the delivery to the pull path.
            Device.objects.filter(pk=row["device_id"], fcm_token=row["device__fcm_token"]).update(fcm_token="")
            mine.filter(pk=row["pk"]).update(push_status=P.FAILED, push_claim="", attempts=F("attempts") + 1)
            report.failed += 1
        for pk, result in groups["invalid"]:
            mine.filter(pk=pk).update(push_status=P.FAILED, push_claim="", attempts=F("attempts") + 1)
            moved = Delivery.objects.filter(pk=pk, state=S.QUEUED).update(
                state=S.FAILED, finished_at=done, reason="fcm_invalid_argument", error=f"FCM INVALID_ARGUMENT: {result.detail}"[:MAX_ERROR_CHARS]
            )
            _metric_on_commit(DELIVERIES, S.FAILED, moved)
            report.failed += 1
        if groups["invalid"]:
            live.changed_on_commit([command.pk])
    # Committed: each pushed device's next heartbeats serve this envelope from Redis, unless
    # anything changed for the device since the issue (commands.markers).
    held_pks = {pk for pk, _ in held}
    markers.cache_pushed(command.pk, (texts[pk] for pk in groups["command"] if pk in texts and pk not in held_pks))
    # read_ms: the claimed rows and keys; build_ms: signing and encoding, during the sending;
    # send_ms: from the first message built to FCM's last answer.
    timings = {"n": len(sendable), "read_ms": round((reading_done - started) * 1000), "build_ms": round(building * 1000),
               "send_ms": round((sent - reading_done) * 1000), "record_ms": round((time.perf_counter() - sent) * 1000)}
    logger.info("push batch %s", " ".join(f"{k}={v}" for k, v in timings.items()),
                extra={"command_id": str(command.pk), **timings})


def stalled_push_commands(*, now: datetime | None = None, stale: timedelta = CLAIM_STALE, limit: int = 500) -> list:
    """Commands with pushes nobody is working on: waiting (their task was lost), retry due, or
    claimed by a dispatcher that died."""
    now = now or timezone.now()
    cond = (
        Q(push_status=P.WAITING, queued_at__lt=now - timedelta(seconds=30))
        | Q(push_status=P.RETRY, push_after__lte=now)
        | Q(push_status=P.CLAIMED, push_claimed_at__lt=now - stale)
    )
    return list(
        Delivery.objects.filter(cond, state=S.QUEUED, expires_at__gt=now).values_list("command_id", flat=True).distinct()[:limit]
    )


# --- counters -----------------------------------------------------------------------------------

def counters_for(command_ids) -> dict:
    """{command_id: {state: n, ..., "total": n}} in one grouped query."""
    out: dict = {cid: {s: 0 for s in S.values} | {"total": 0} for cid in command_ids}
    rows = Delivery.objects.filter(command_id__in=list(command_ids)).values("command_id", "state").annotate(n=Count("pk"))
    for row in rows:
        c = out.setdefault(row["command_id"], {s: 0 for s in S.values} | {"total": 0})
        c[row["state"]] = row["n"]
        c["total"] += row["n"]
    for c in out.values():
        c["done"] = sum(c[s] for s in FINAL_STATES)
        c["pending"] = c["total"] - c["done"]
        c["percent"] = round(100 * c["done"] / c["total"]) if c["total"] else 0
    return out


# --- shell allowlist ----------------------------------------------------------------------------

SHELL_INTERPRETERS = frozenset({"sh", "bash", "su", "/system/bin/sh", "/system/bin/su", "/system/xbin/su", "toybox", "busybox"})


def _clean_prefix(argv_prefix) -> list[str]:
    if isinstance(argv_prefix, str):
        raise ParamsError({"argv_prefix": ["An array of strings, not a command string."]})
    if not isinstance(argv_prefix, list) or not argv_prefix or not all(isinstance(a, str) and a for a in argv_prefix):
        raise ParamsError({"argv_prefix": ["A non-empty array of non-empty strings."]})
    if argv_prefix[0] in SHELL_INTERPRETERS:
        raise ParamsError({"argv_prefix": [f"{argv_prefix[0]!r} would allow arbitrary commands; allow the commands themselves."]})
    return argv_prefix


@transaction.atomic
def create_allow_rule(*, actor, argv_prefix, description: str = "", enabled: bool = True, ip=None) -> ShellAllowRule:
    prefix = _clean_prefix(argv_prefix)
    if ShellAllowRule.objects.filter(argv_prefix=prefix).exists():
        raise ParamsError({"argv_prefix": ["This prefix is already allowed."]})
    rule = ShellAllowRule.objects.create(argv_prefix=prefix, description=description[:200], enabled=enabled)
    audit.record(actor=actor, action="shell_allowlist.create", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": prefix, "enabled": enabled}, ip=ip)
    return rule


@transaction.atomic
def update_allow_rule(*, actor, rule: ShellAllowRule, ip=None, **values) -> ShellAllowRule:
    changed = {}
    if "argv_prefix" in values:
        values["argv_prefix"] = _clean_prefix(values["argv_prefix"])
    for name in ("argv_prefix", "description", "enabled"):
        if name in values and getattr(rule, name) != values[name]:
            changed[name] = {"from": getattr(rule, name), "to": values[name]}
            setattr(rule, name, values[name])
    if changed:
        rule.save(update_fields=[*changed, "updated_at"])
        audit.record(actor=actor, action="shell_allowlist.update", target=("shellallowrule", str(rule.pk)), data=changed, ip=ip)
    return rule


@transaction.atomic
def delete_allow_rule(*, actor, rule: ShellAllowRule, ip=None) -> None:
    audit.record(actor=actor, action="shell_allowlist.delete", target=("shellallowrule", str(rule.pk)),
                 data={"argv_prefix": rule.argv_prefix}, ip=ip)
    rule.delete()


# --- presets ------------------------------------------------------------------------------------

def _clean_preset(type: str, params) -> dict:
    if type in SECRET_TYPES:
        raise ParamsError({"type": ["Presets hold no secrets; use a Wi-Fi config for wifi_configure."]})
    return validate(type, params)


@transaction.atomic
def create_preset(*, actor, name: str, type: str, params, description: str = "", category: str = "", ip=None) -> Preset:
    name = (name or "").strip()
    if not name:
        raise ParamsError({"name": ["This field is required."]})
    if Preset.objects.filter(name=name).exists():
        raise ParamsError({"name": ["A preset with this name exists; edit it to make a new version."]})
    preset = Preset.objects.create(
        name=name, version=1, type=type, params=_clean_preset(type, params), description=description,
        category=category, created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit.record(actor=actor, action="preset.create", target=("preset", str(preset.pk)),
                 data={"name": name, "version": 1, "type": type, "params": preset.params}, ip=ip)
    return preset


@transaction.atomic
def update_preset(*, actor, preset: Preset, ip=None, **values) -> Preset:
    """A new version; the old one stays (commands record the version they used)."""
    latest = Preset.objects.select_for_update().get(name=preset.name, is_latest=True)
    type = values.get("type", latest.type)
    params = _clean_preset(type, values.get("params", latest.params))
    Preset.objects.filter(pk=latest.pk).update(is_latest=False)
    new = Preset.objects.create(
        name=latest.name, version=latest.version + 1, type=type, params=params,
        description=values.get("description", latest.description), category=values.get("category", latest.category),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit.record(actor=actor, action="preset.update", target=("preset", str(new.pk)),
                 data={"name": new.name, "version": new.version, "type": type, "params": params}, ip=ip)
    return new


@transaction.atomic
def archive_preset(*, actor, preset: Preset, ip=None) -> None:
    Preset.objects.filter(name=preset.name).update(archived=True)
    audit.record(actor=actor, action="preset.archive", target=("preset", str(preset.pk)), data={"name": preset.name}, ip=ip)


# --- Wi-Fi --------------------------------------------------------------------------------------

def _clean_wifi(values: dict, has_password: bool) -> dict:
    probe = {
        "ssid": values.get("ssid"),
        "security": values.get("security", "wpa2"),
        "password": values.get("password") or ("x" * 8 if has_password and values.get("security", "wpa2") in ("wpa2", "wpa3") else ""),
        "hidden": values.get("hidden", False),
    }
    validate(CommandType.WIFI_CONFIGURE, probe)
    return probe


@transaction.atomic
def create_wifi_config(*, actor, name: str, ssid: str, security: str = "wpa2", password: str = "", hidden: bool = False,
                       group=None, ip=None) -> WifiConfig:
    if not (name or "").strip():
        raise ParamsError({"name": ["This field is required."]})
    if WifiConfig.objects.filter(name=name.strip()).exists():
        raise ParamsError({"name": ["A Wi-Fi config with this name exists."]})
    _clean_wifi({"ssid": ssid, "security": security, "password": password, "hidden": hidden}, False)
    config = WifiConfig.objects.create(
        name=name.strip(), ssid=ssid, security=security, hidden=hidden, group=group,
        password_encrypted=crypto.encrypt_bytes(password.encode()) if password else "",
    )
    audit.record(actor=actor, action="wifi_config.create", target=("wificonfig", str(config.pk)),
                 data={"name": config.name, "ssid": ssid, "security": security, "password": password, "hidden": hidden,
                       "group": group.name if group else None}, ip=ip)
    return config


@transaction.atomic
def update_wifi_config(*, actor, config: WifiConfig, ip=None, **values) -> WifiConfig:
    """`password` None or absent keeps the stored one; "" clears it."""
    merged = {
        "ssid": values.get("ssid", config.ssid),
        "security": values.get("security", config.security),
        "hidden": values.get("hidden", config.hidden),
        "password": values.get("password"),
    }
    keep_password = values.get("password") is None and config.has_password
    _clean_wifi(merged, keep_password)
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            raise ParamsError({"name": ["This field is required."]})
        if WifiConfig.objects.filter(name=values["name"]).exclude(pk=config.pk).exists():
            raise ParamsError({"name": ["A Wi-Fi config with this name exists."]})
    changed = {}
    for name in ("name", "ssid", "security", "hidden", "group"):
        if name in values and getattr(config, name) != values[name]:
            changed[name] = str(values[name]) if name == "group" else values[name]
            setattr(config, name, values[name])
    if values.get("password") is not None:
        config.password_encrypted = crypto.encrypt_bytes(values["password"].encode()) if values["password"] else ""
        changed["password"] = "***" if values["password"] else "(cleared)"
    if changed:
        config.save(update_fields=[*(n for n in changed if n != "password"), *(["password_encrypted"] if "password" in changed else []), "updated_at"])
        audit.record(actor=actor, action="wifi_config.update", target=("wificonfig", str(config.pk)), data=changed, ip=ip)
    return config


@transaction.atomic
def delete_wifi_config(*, actor, config: WifiConfig, ip=None) -> None:
    audit.record(actor=actor, action="wifi_config.delete", target=("wificonfig", str(config.pk)), data={"name": config.name}, ip=ip)
    config.delete()


def push_wifi_config(*, actor, config: WifiConfig, expires_in_s: int | None = None, ip=None) -> Issued:
    """Issue a `wifi_configure` command to the config's group (or every device). Secret, so it
    travels only in heartbeat answers and pulls."""
    issued = issue_command(
        actor=actor,
        type=CommandType.WIFI_CONFIGURE,
        params={"ssid": config.ssid, "security": config.security, "password": config.decrypted_password(), "hidden": config.hidden},
        target={"group": config.group.name} if config.group_id else {"all": True},
        expires_in_s=expires_in_s,
        wifi_config=config,
        ip=ip,
    )
    WifiConfig.objects.filter(pk=config.pk).update(last_pushed_at=issued.command.created_at)
    return issued
