"""Policies (docs/policies.md). Imported by commands.models, so they belong to the commands app."""

import uuid

from django.db import models
from django.db.models import Q

from commands import crypto


class Policy(models.Model):
    """A named policy; `current` is its latest version, the one its devices are given."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    # Set in the same transaction that creates the policy, so never null once committed.
    current = models.ForeignKey("commands.PolicyVersion", null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def version(self) -> int:
        return self.current_id or 0


class PolicyVersion(models.Model):
    """One immutable version of a policy's items. Its primary key is the version number devices
    see: a sequence shared by every policy, so numbers are server-wide and only increase
    (PostgreSQL sequences never hand a number out twice; Django's SQLite AutoField uses
    AUTOINCREMENT, which never reuses one either), and a device moved to another policy sees a
    number it never held. Secret values (Wi-Fi passwords) are only in `secret` (Fernet, keyed
    by the Wi-Fi config id); `items` holds the rest, what the admin API may show."""

    id = models.BigAutoField(primary_key=True)
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    items = models.JSONField(default=dict)
    secret = models.TextField(blank=True)  # crypto.encrypt_json({wifi config id: password})
    # Where an item came from when it was taken from something an operator keeps elsewhere
    # ({"shell_allowlist": "console"}), so that editing that source republishes the policy.
    sources = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.policy_id} v{self.id}"

    def secret_values(self) -> dict:
        return crypto.decrypt_json(self.secret) if self.secret else {}


class PolicyAssignment(models.Model):
    """Who gets a policy: one device, one group, or the fleet default (exactly one of the three).
    A device has at most one policy, by precedence: its own assignment, then its group's, then
    the fleet default (commands.policies.resolve)."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="assignments")
    device = models.OneToOneField("devices.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group = models.OneToOneField("devices.DeviceGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    fleet_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(device__isnull=False, group__isnull=True, fleet_default=False)
                           | Q(device__isnull=True, group__isnull=False, fleet_default=False)
                           | Q(device__isnull=True, group__isnull=True, fleet_default=True)),
                name="policy_assignment_one_target",
            ),
            models.UniqueConstraint(fields=["fleet_default"], condition=Q(fleet_default=True), name="one_fleet_default_policy"),
        ]

    def __str__(self):
        return f"{self.policy_id} -> {self.device_id or self.group_id or 'fleet default'}"
