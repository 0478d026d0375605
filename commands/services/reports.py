"""A device's report of a command (POST /api/v1/device/commands/<id>/result, PROTOCOL.md): the
token check and, when the device's marker proves the delivery pending, the queueing for the
result write-behind (commands.results) in one Redis call; otherwise one conditional UPDATE that
only moves a delivery forward, so repeats and late reports never undo a final state."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from commands import live, markers, results
from commands.models import FINAL_STATES, Delivery, DeliveryState, states_below
from devices import tokens
from mdm import sql
from mdm.metrics import DELIVERIES, count_on_commit

S = DeliveryState
MAX_OUTPUT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 4096


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
        count_on_commit(DELIVERIES, status)
        live.changed_on_commit([command_id], [moved[0]])
        return status
    return Delivery.objects.filter(command_id=command_id, device_id=device_id).values_list("state", flat=True).first()

