"""Alerting's data: rules (data an admin edits), alerts (one open per rule and subject), their
timeline, grouped notifications, webhook endpoints and their delivery log, maintenance windows,
per-user preferences and remediation runs (docs/alerts.md)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertRule(models.Model):
    """A condition (`kind` + `params`), a scope over devices, a severity, hold and clear times,
    who is told and an optional remediation. Seeded rules carry `seed_key` so a re-seed never
    duplicates or overwrites what an admin changed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=40, db_index=True)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    params = models.JSONField(default=dict, blank=True)
    # A command target spec (commands.targeting: all, group, tags, filter); device kinds only.
    scope = models.JSONField(default=dict, blank=True)
    hold_s = models.PositiveIntegerField(default=0, help_text="The condition holds this long before the alert fires.")
    clear_s = models.PositiveIntegerField(default=60, help_text="The condition is clear this long before the alert resolves.")
    # {"admins": bool, "users": [user ids], "emails": [addresses], "webhooks": [endpoint ids]}
    notify = models.JSONField(default=dict, blank=True)
    # {"type": ..., "params": {...}} or {"preset": name}, with guardrails, or {}; see remediation/rules.py
    remediation = models.JSONField(default=dict, blank=True)
    remediation_dry_run = models.BooleanField(default=False)
    quiet = models.BooleanField(default=False, help_text="Remediate without notifying unless remediation fails.")
    # Remediation stopped itself (too many of its runs failed) and stays off until an admin resumes
    # it; the auto-stop then counts only runs finished after the resume (remediation/runs.py).
    remediation_stopped_at = models.DateTimeField(null=True, blank=True)
    remediation_stopped_reason = models.CharField(max_length=300, blank=True)
    remediation_resumed_at = models.DateTimeField(null=True, blank=True)
    # The evaluation of this rule fails (mdm.alerts.evaluate.evaluate_all): since when, and the
    # last error in one line. Cleared by the next evaluation that succeeds; the built-in rule
    # `server_rule_failing` tells the admins of a rule failing for its hold time.
    failing_since = models.DateTimeField(null=True, blank=True)
    failure = models.CharField(max_length=300, blank=True)
    seed_key = models.CharField(max_length=40, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Alert(models.Model):
    """One rule firing for one subject (a device, a command, a rollout, the server). At most one
    is open (pending, firing) per rule and subject; a resolved one re-opened within the flapping
    window is the same row, so flapping folds into one alert."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # the condition holds, not yet for hold_s
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    OPEN_STATES = (State.PENDING, State.FIRING)

    class Subject(models.TextChoices):
        DEVICE = "device", "Device"
        COMMAND = "command", "Command"
        ROLLOUT = "rollout", "Rollout"
        SERVER = "server", "Server"
        RULE = "rule", "Alert rule"  # an alert rule whose evaluation fails (server_rule_failing)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    subject_type = models.CharField(max_length=10, choices=Subject.choices)
    subject_id = models.CharField(max_length=64)
    subject_label = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    value = models.JSONField(null=True, blank=True)  # what the condition saw last (e.g. battery 7)
    since = models.DateTimeField()  # the condition started holding
    fired_at = models.DateTimeField(null=True, blank=True)
    clear_since = models.DateTimeField(null=True, blank=True)  # firing, condition clear since
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_remediation = models.BooleanField(default=False)
    fire_count = models.PositiveIntegerField(default=0)
    flapping = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)
    group_name = models.CharField(max_length=100, blank=True)  # the device's group when it fired
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-fired_at", "-since"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject_type", "subject_id"],
                condition=Q(state__in=["pending", "firing"]),
                name="alert_one_open_per_rule_subject",
            )
        ]
        indexes = [
            models.Index(fields=["state", "-fired_at"], name="alert_state_fired_idx"),
            models.Index(fields=["subject_type", "subject_id", "-since"], name="alert_subject_idx"),
            models.Index(fields=["rule", "state"], name="alert_rule_state_idx"),
        ]

    def __str__(self):
        return f"{self.rule.name}: {self.subject_label or self.subject_id} ({self.state})"

    def is_quiet(self, now) -> bool:
        """Acknowledged or snoozed: no further notifications for this alert."""
        return self.acknowledged_at is not None or (self.snoozed_until is not None and self.snoozed_until > now)


class AlertEvent(models.Model):
    """An alert's timeline: pending, fired, notified, acknowledged, snoozed, remediation tried and
    its result, escalated, flapping, resolved."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["alert", "at"], name="alertevent_alert_at_idx")]


class Notification(models.Model):
    """One message per rule, event and group window ("37 devices in group Lobby offline"), sent
    to every recipient by e-mail and to every webhook; the alerts it covers are listed."""

    class Event(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"
        ESCALATED = "escalated", "Remediation failed"
        DIGEST = "digest", "Digest"

    class State(models.TextChoices):
        COLLECTING = "collecting", "Collecting"  # inside its group window
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SUPPRESSED = "suppressed", "Suppressed"  # nobody to tell (quiet, maintenance, preferences)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=10, choices=Event.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.COLLECTING, db_index=True)
    alerts = models.ManyToManyField(Alert, related_name="notifications", blank=True)
    created_at = models.DateTimeField()
    send_after = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    recipients = models.JSONField(default=list, blank=True)  # e-mail addresses it went to
    detail = models.JSONField(default=dict, blank=True)  # why suppressed, errors, counts

    class Meta:
        ordering = ["-created_at"]


class WebhookEndpoint(models.Model):
    """A URL told of every notification of the rules that name it (or all, when `all_rules`),
    as JSON signed with HMAC-SHA256 under its own secret (encrypted at rest)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.TextField()  # Fernet (mdm field encryption), never shown after creation
    enabled = models.BooleanField(default=True)
    all_rules = models.BooleanField(default=False, help_text="Told of every rule's notifications, not only of rules naming it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class WebhookDelivery(models.Model):
    """One notification to one endpoint: attempts with backoff, the last status and error."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"  # gave up after the last attempt

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries")
    is_test = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class MaintenanceWindow(models.Model):
    """No notifications for devices of `group` (or the whole fleet, group empty) between the two
    times: devices are expected to be down. Alerts still open and resolve; they are marked."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    group = models.ForeignKey("devices.DeviceGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at"], name="maintenance_ends_idx")]


class NotificationPreference(models.Model):
    """What reaches one user by e-mail: a minimum severity, and rules muted for them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="alert_preference")
    email_enabled = models.BooleanField(default=True)
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    muted_rules = models.ManyToManyField(AlertRule, blank=True, related_name="+")


class RemediationRun(models.Model):
    """A remediation tried (or, in dry-run, only recorded) for the alerts of one rule: the
    command it issued and what became of it."""

    class State(models.TextChoices):
        DRY_RUN = "dry_run", "Dry run (not sent)"
        ISSUED = "issued", "Issued"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped by a guardrail"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="remediation_runs")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="remediation_runs")
    device_id = models.UUIDField(null=True, blank=True, db_index=True)
    command_id = models.UUIDField(null=True, blank=True, db_index=True)
    action = models.CharField(max_length=32, blank=True)  # the command type, or sync_policy
    state = models.CharField(max_length=10, choices=State.choices)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["rule", "at"], name="remediation_rule_at_idx"),
            # The results pass reads the issued runs at every cycle: only the few in flight.
            models.Index(fields=["at"], name="remediation_issued_idx", condition=Q(state="issued")),
        ]
