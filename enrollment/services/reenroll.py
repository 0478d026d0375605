"""Re-enrollment of a known device (PROTOCOL.md v1.1): the device's current token, an admin's
approval of this very request, or the opt-in `allowed` policy. Requests are opened here, and
approved or denied by admins."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from devices import tokens
from devices.models import Device
from enrollment.models import REENROLL_REQUESTS_KEPT, ReenrollRequest
from mdm import audit
from mdm.models import FleetSettings


@dataclass(frozen=True)
class NeedsApproval:
    """The outcome of an enrollment refused with 409 once its transaction has committed: the
    request it opened (or the pending one it repeated) must outlive the refusal."""

    request_id: uuid.UUID


@dataclass(frozen=True)
class Claim:
    """What a re-enrollment may present to be let in (PROTOCOL.md v1.1 rules 1 and 2)."""

    token: str | None
    request_id: uuid.UUID | None

    def token_digest(self) -> str | None:
        return tokens.digest(self.token) if self.token else None


def parse_request_id(value: str | None) -> uuid.UUID | None:
    """An id that is not one of ours is an unknown id (answered with a new one), not an error."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches no request: "unknown"


def policy_allows_any() -> bool:
    return FleetSettings.current().reenroll_policy == FleetSettings.Reenroll.ALLOWED


def reenroll_allowed_by(device: Device, key, claim: Claim, info: dict, now: datetime, ip) -> str | NeedsApproval:
    """Which v1.1 rule lets this re-enrollment in ("token", "policy" or "request"), or the 409's
    request. Runs with the device row locked, so the token compared is the current one and two
    repeats of one request id cannot both use it."""
    if claim.token and _is_current_token(device, claim.token):
        return "token"
    if policy_allows_any():
        return "policy"
    if claim.request_id is not None:
        request = ReenrollRequest.objects.select_for_update().filter(pk=claim.request_id, device=device, key=key).first()
        if request is not None and request.is_usable(now):
            request.state, request.used_at = ReenrollRequest.State.USED, now
            request.save(update_fields=["state", "used_at"])
            audit.record(
                actor=f"key:{key.name}", action="reenroll_request.use", target=device,
                data={"request": str(request.pk), "key": key.name}, ip=ip,
            )
            return "request"
        if request is not None and request.state == ReenrollRequest.State.PENDING:
            request.last_attempt_at = now
            request.save(update_fields=["last_attempt_at"])
            return NeedsApproval(request.pk)
        # Denied, used, expired, or not this device's and key's: spent, so a new request follows.
    return NeedsApproval(_open_request(device, key, info, now, ip).pk)


def _is_current_token(device: Device, token: str) -> bool:
    """Rule 1: the token of this very device, as it stands now (its row is locked)."""
    parts = tokens.split(token)
    return (
        parts is not None
        and device.token_id is not None
        and parts[0] == device.token_id
        and tokens.verify(token) == str(device.pk)
    )


def _open_request(device: Device, key, info: dict, now: datetime, ip) -> ReenrollRequest:
    request = ReenrollRequest.objects.create(
        device=device,
        key=key,
        key_name=key.name[:100],
        source_ip=ip,
        model=info.get("model", "")[:128],
        created_at=now,
        last_attempt_at=now,
    )
    kept = list(
        ReenrollRequest.objects.filter(device=device).order_by("-created_at", "-pk").values_list("pk", flat=True)[
            :REENROLL_REQUESTS_KEPT
        ]
    )
    ReenrollRequest.objects.filter(device=device).exclude(pk__in=kept).delete()
    audit.record(
        actor=f"key:{key.name}",
        action="reenroll_request.open",
        target=device,
        data={"request": str(request.pk), "key": key.name, "model": request.model},
        ip=ip,
    )
    return request


class ReenrollDecisionRefused(Exception):
    """Approving or denying a request that is past deciding (used, expired; approve after deny)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@transaction.atomic
def approve_reenroll_request(*, actor, request_id, ip: str | None = None) -> ReenrollRequest:
    """An admin lets this very request re-enroll its device: the next enroll carrying its id gets
    the 200, once, within 24 h. Approving an approved request changes nothing."""
    request = ReenrollRequest.objects.select_for_update(of=("self",)).select_related("device").get(pk=request_id)
    now = timezone.now()
    state = request.effective_state(now)
    if state == ReenrollRequest.State.APPROVED:
        return request
    if state != ReenrollRequest.State.PENDING:
        raise ReenrollDecisionRefused(f"This request is {state}; only a pending request can be approved.")
    request.state, request.decided_at, request.decided_by = ReenrollRequest.State.APPROVED, now, actor
    request.save(update_fields=["state", "decided_at", "decided_by"])
    _audit_decision(actor, "reenroll_request.approve", request, ip)
    return request


@transaction.atomic
def deny_reenroll_request(*, actor, request_id, ip: str | None = None) -> ReenrollRequest:
    """An admin refuses this request; an approval not yet used can be withdrawn the same way.
    Denying a denied request changes nothing."""
    request = ReenrollRequest.objects.select_for_update(of=("self",)).select_related("device").get(pk=request_id)
    now = timezone.now()
    state = request.effective_state(now)
    if state == ReenrollRequest.State.DENIED:
        return request
    if state not in (ReenrollRequest.State.PENDING, ReenrollRequest.State.APPROVED):
        raise ReenrollDecisionRefused(f"This request is {state}; only a pending or approved request can be denied.")
    request.state, request.decided_at, request.decided_by = ReenrollRequest.State.DENIED, now, actor
    request.save(update_fields=["state", "decided_at", "decided_by"])
    _audit_decision(actor, "reenroll_request.deny", request, ip)
    return request


def _audit_decision(actor, action: str, request: ReenrollRequest, ip) -> None:
    audit.record(
        actor=actor,
        action=action,
        target=request.device,
        data={
            "request": str(request.pk),
            "hardware_id": request.device.hardware_id,
            "key": request.key_name,
            "source_ip": request.source_ip,
            "model": request.model,
        },
        ip=ip,
    )
