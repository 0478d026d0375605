""""Retry failed": a command issued again, through the issue service (new deliveries, new seqs,
new signed envelopes), to the devices that failed, refused or never got it in time; the same
type and params (secrets included), preset and lifetime. Devices deleted since are skipped."""

import uuid
from datetime import datetime

from django.db import transaction

from commands import results, selectors
from commands.models import Command
from commands.params import ParamsError
from commands.services.issuing import MAX_EXPIRES_IN_S, Issued, issue_command, request_fingerprint
from mdm import audit


def retry_key(command: Command, dry_run_key: str) -> str:
    """The Idempotency-Key of a retry: one per dry run, so a double-click on its confirm issues
    once, and a later retry (after a new dry run) is a new command. ParamsError without one."""
    try:
        key = uuid.UUID(str(dry_run_key))
    except ValueError:
        raise ParamsError({"retry": ["Count the devices to retry first (dry run), then confirm."]}) from None
    return f"retry:{command.pk}:{key}"


def retry_failed(*, actor, command: Command, dry_run_key: str, ip: str | None = None, now: datetime | None = None) -> Issued:
    """Issue `command` again to its failed, rejected and expired devices that are not deleted.
    Raises ParamsError when none is left or the command no longer validates (a release or an
    allowlist rule removed since)."""
    key = retry_key(command, dry_run_key)
    results.flush_all()  # reports the devices were already answered for land first (commands.results)
    device_ids = selectors.retry_device_ids(command.pk)
    if not device_ids:
        raise ParamsError({"retry": ["No device is left to retry: none failed or expired, or they were deleted."]})
    lifetime = round((command.expires_at - command.created_at).total_seconds())
    with transaction.atomic():
        issued = issue_command(
            actor=actor,
            type=command.type,
            params=command.full_params(),
            target={"device_ids": [str(d) for d in device_ids]},
            expires_in_s=min(max(lifetime, 1), MAX_EXPIRES_IN_S),
            idempotency_key=key,
            request_hash=request_fingerprint({"retry_of": str(command.pk)}),
            preset=command.preset,
            wifi_config=command.wifi_config,
            retry_of=command,
            ip=ip,
            now=now,
        )
        if issued.created:
            audit.record(actor=actor, action="command.retry", target=("command", str(command.pk)),
                         data={"retry": str(issued.command.pk), "devices": len(device_ids)}, ip=ip)
    return issued
