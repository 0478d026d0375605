import hashlib
import uuid
from datetime import datetime

from django.conf import settings
from django.db import models

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
