"""Push dispatch: a command's deliveries to devices with an FCM token, in batches claimed by
conditional updates (several dispatch tasks share a big fan-out and never send one twice), each
batch one streamed send_each. What FCM refuses is retried with backoff, forgotten (a dead token)
or left to the pull path, which always works; a pushed envelope becomes the device's cached
heartbeat answer (commands.markers)."""

import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from commands import envelopes, live, markers
from commands.models import Command, Delivery, DeliveryState, DeviceKey
from commands.services.keys import ensure_device_keys
from commands.services.reports import MAX_ERROR_CHARS
from devices.models import Device
from mdm.metrics import DELIVERIES, DISPATCH_LATENCY, FCM_SENDS, count_on_commit

logger = logging.getLogger(__name__)

S = DeliveryState
P = Delivery.Push

RETRYABLE = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "UNKNOWN"})
MAX_PUSH_ATTEMPTS = 6
CLAIM_STALE = timedelta(seconds=120)
# Dispatch tasks started at once for one command (at most one per 500 deliveries).
DISPATCH_PARALLEL = max(1, int(os.environ.get("MDM_DISPATCH_PARALLEL", "4")))


def push_backoff_s(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (2, 4, 8 ... s, at most 5 min), never under Retry-After."""
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
            count_on_commit(DELIVERIES, S.SENT, n)
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
            count_on_commit(DELIVERIES, S.FAILED, moved)
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

