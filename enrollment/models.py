import hashlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

KEY_PREFIX = "mdmk_"


def hash_key(raw: str) -> str:
    """Enrollment keys are 256-bit random strings, so one SHA-256 is enough at rest (no stretching
    needed against guessing) and keeps the lookup a single unique-index probe."""
    return hashlib.sha256(raw.encode()).hexdigest()


class EnrollmentKeyQuerySet(models.QuerySet):
    def usable(self, now: datetime):
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class EnrollmentKey(models.Model):
    """A fleet secret that devices present as `X-Admin-Key` to enroll. Only its hash is kept; the
    key itself is shown once, when created."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters, for recognising a key.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    group = models.ForeignKey(
        "devices.DeviceGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="enrollment_keys"
    )
    tags = models.ManyToManyField("devices.Tag", blank=True, related_name="enrollment_keys")

    objects = EnrollmentKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def is_exhausted(self) -> bool:
        return self.max_uses is not None and self.uses >= self.max_uses

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired(now):
            return "expired"
        if self.is_exhausted:
            return "exhausted"
        return "active"


class BloatwarePreset(models.Model):
    """A named list of packages the adb one-liner removes for user 0 (`pm uninstall --user 0`)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    packages = models.JSONField(default=list, help_text="Package names.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TweakPreset(models.Model):
    """A named set of `settings put <namespace> <key> <value>` lines the one-liner applies."""

    NAMESPACES = ("system", "secure", "global")

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    settings = models.JSONField(default=list, help_text='[{"namespace": "global", "key": "...", "value": "..."}]')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


# PROTOCOL.md v1.1: an approved re-enrollment request is good for 24 h from the approval, once;
# at most the 20 newest requests of a device are kept.
REENROLL_APPROVAL_TTL = timedelta(hours=24)
REENROLL_REQUESTS_KEPT = 20
# What the console and the API list by: the effective states, and all of them.
REENROLL_LIST_STATES = ("pending", "approved", "denied", "used", "expired", "all")


class ReenrollRequestQuerySet(models.QuerySet):
    def in_state(self, state: str, now: datetime):
        """Requests whose effective state (`ReenrollRequest.effective_state`) is `state`."""
        S = ReenrollRequest.State
        fresh = models.Q(decided_at__gt=now - REENROLL_APPROVAL_TTL)
        if state == "approved":
            return self.filter(fresh, state=S.APPROVED)
        if state == "expired":
            return self.filter(state=S.APPROVED).exclude(fresh)
        return self.filter(state=state)

    def listed(self, state: str = "all", now: datetime | None = None):
        """What the console and the API list: requests of devices not deleted, newest first, in
        one of REENROLL_LIST_STATES."""
        listed = self.filter(device__deleted_at__isnull=True).select_related("device", "decided_by")
        if state != "all":
            listed = listed.in_state(state, now or timezone.now())
        return listed.order_by("-created_at", "-pk")

    def open(self, now: datetime):
        """Still able to lead to a re-enrollment: pending, or approved and not yet used or expired."""
        S = ReenrollRequest.State
        return self.filter(
            models.Q(state=S.PENDING) | models.Q(state=S.APPROVED, decided_at__gt=now - REENROLL_APPROVAL_TTL)
        )


class ReenrollRequest(models.Model):
    """A re-enrollment of a known hardware id that carried neither the device's current token nor
    an approved request id (PROTOCOL.md v1.1 rule 2). Its id goes back to the caller in the 409;
    the caller gets the device only by repeating the enroll with that id after an admin approved
    it. What the admin decides on is what the request showed: where it came from and with which key."""

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        USED = "used"

    # The opaque id of the protocol: random (uuid4), so it cannot be guessed from another one.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="reenroll_requests")
    # An approval is bound to the key the request used: the admin approved a request made with it.
    key = models.ForeignKey(EnrollmentKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key_name = models.CharField(max_length=100)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    model = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()
    # The latest repeat carrying this (pending) id: shows the admin that the device still waits.
    last_attempt_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    used_at = models.DateTimeField(null=True, blank=True)

    objects = ReenrollRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["device", "-created_at"], name="reenroll_device_idx"),
            models.Index(fields=["state", "-created_at"], name="reenroll_state_idx"),
        ]

    def __str__(self):
        return f"re-enrollment request {self.pk} ({self.state})"

    def approved_until(self) -> datetime | None:
        if self.state != self.State.APPROVED or self.decided_at is None:
            return None
        return self.decided_at + REENROLL_APPROVAL_TTL

    def effective_state(self, now: datetime) -> str:
        """pending, approved, denied, used, or expired (approved more than 24 h ago, never used)."""
        until = self.approved_until()
        if until is not None and until <= now:
            return "expired"
        return self.state

    def is_usable(self, now: datetime) -> bool:
        return self.effective_state(now) == self.State.APPROVED
