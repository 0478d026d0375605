"""The alerting API's shapes (mdm.alerts.api): what each endpoint answers and takes. Input
serializers check types; the services check meaning (ParamsError, a 400 naming the field)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mdm.alerts.kinds import KINDS
from mdm.alerts.models import Alert, AlertRule, MaintenanceWindow, Notification, RemediationRun, Severity, WebhookDelivery, WebhookEndpoint

WEEK_S = 7 * 86400


# --- rules ---------------------------------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    kind_label = serializers.SerializerMethodField(help_text="The kind in words.")
    condition = serializers.SerializerMethodField(help_text="The condition with this rule's params, in words.")
    builtin = serializers.SerializerMethodField(help_text="Seeded with the installation (editable like any other).")

    class Meta:
        model = AlertRule
        fields = ["id", "name", "kind", "kind_label", "condition", "enabled", "severity", "params", "scope", "hold_s",
                  "clear_s", "notify", "remediation", "remediation_dry_run", "quiet", "builtin", "created_at", "updated_at",
                  "failing_since", "failure"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_kind_label(self, rule) -> str:
        kind = KINDS.get(rule.kind)
        return kind.label if kind else rule.kind

    @extend_schema_field(serializers.CharField())
    def get_condition(self, rule) -> str:
        kind = KINDS.get(rule.kind)
        try:
            return kind.describe(rule.params) if kind else ""
        except (KeyError, TypeError, ValueError):
            return ""

    @extend_schema_field(serializers.BooleanField())
    def get_builtin(self, rule) -> bool:
        return bool(rule.seed_key)


class AlertRuleWriteSerializer(serializers.Serializer):
    """Create: `name` and `kind` (the rest defaults from the kind). Update (PATCH): any of these
    but `kind`."""

    name = serializers.CharField(required=False, max_length=120)
    kind = serializers.ChoiceField(choices=sorted(KINDS), required=False)
    enabled = serializers.BooleanField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    params = serializers.JSONField(required=False, help_text="The kind's params (GET /api/v1/alert-rules/kinds); "
                                   "missing ones take their defaults.")
    scope = serializers.JSONField(required=False, help_text='Device kinds: {"all": true}, {"group": "Lobby"}, '
                                  '{"tags": ["kiosk"]} or {"filter": {...device list filters}}.')
    hold_s = serializers.IntegerField(required=False, min_value=0, max_value=WEEK_S,
                                      help_text="Seconds the condition holds before the alert fires.")
    clear_s = serializers.IntegerField(required=False, min_value=0, max_value=WEEK_S,
                                       help_text="Seconds the condition is clear before the alert resolves.")
    notify = serializers.JSONField(required=False, help_text='{"admins": true, "users": [user ids], "emails": [...], '
                                   '"webhooks": [webhook ids]}')
    remediation = serializers.JSONField(required=False, help_text="See docs/alerts.md, Auto-remediation.")
    remediation_dry_run = serializers.BooleanField(required=False)
    quiet = serializers.BooleanField(required=False, help_text="Remediate without notifying unless remediation fails.")


class KindParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField(help_text="In the user's terms, with its unit.")
    type = serializers.CharField(help_text="integer or number")
    min = serializers.FloatField()
    max = serializers.FloatField()
    default = serializers.FloatField()


class KindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    subject = serializers.CharField(help_text="What one alert of this kind is about: device, command, rollout, server.")
    severity = serializers.CharField(help_text="Default severity.")
    hold_s = serializers.IntegerField(help_text="Default hold time.")
    clear_s = serializers.IntegerField(help_text="Default clear time.")
    condition = serializers.CharField(help_text="The condition with the default params, in words.")
    params = KindParamSerializer(many=True)


def kind_catalogue() -> list[dict]:
    return [{
        "kind": key, "label": k.label, "subject": k.subject, "severity": k.severity, "hold_s": k.hold_s, "clear_s": k.clear_s,
        "condition": k.describe({n: p.default for n, p in k.params.items()}),
        "params": [{"name": n, "label": p.label, "type": "integer" if p.type is int else "number", "min": p.min,
                    "max": p.max, "default": p.default} for n, p in k.params.items()],
    } for key, k in KINDS.items()]


# --- alerts --------------------------------------------------------------------------------------


class RuleBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRule
        fields = ["id", "name", "kind"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    rule = RuleBriefSerializer()
    state = serializers.CharField(help_text="pending (the condition holds, not yet for the hold time), firing, resolved")
    group = serializers.CharField(source="group_name", help_text="The device's group when it fired.")
    acknowledged_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The alert's page in the console.")

    class Meta:
        model = Alert
        fields = ["id", "rule", "subject_type", "subject_id", "subject_label", "group", "state", "severity", "value", "since",
                  "fired_at", "clear_since", "resolved_at", "resolved_by_remediation", "fire_count", "flapping",
                  "acknowledged_at", "acknowledged_by", "snoozed_until", "url"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_acknowledged_by(self, alert) -> str | None:
        return alert.acknowledged_by.get_username() if alert.acknowledged_by else None

    @extend_schema_field(serializers.CharField())
    def get_url(self, alert) -> str:
        return reverse("alerts:detail", args=[alert.pk])


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="pending, fired, reopened, flapping, notified, acknowledged, snoozed, "
                                 "resolved, escalated, remediation, ...")
    text = serializers.CharField(help_text="In words.")
    detail = serializers.DictField()


class NotificationSerializer(serializers.ModelSerializer):
    state = serializers.CharField(help_text="collecting (inside its group window), sending, sent, suppressed (nobody to "
                                  "tell: see detail.suppressed)")
    recipients = serializers.SerializerMethodField(help_text="How many e-mail addresses it went to.")

    class Meta:
        model = Notification
        fields = ["id", "event", "severity", "state", "subject", "created_at", "sent_at", "recipients", "detail"]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField())
    def get_recipients(self, n) -> int:
        return len(n.recipients or [])


class RemediationRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RemediationRun
        fields = ["id", "state", "reason", "device_id", "command_id", "at", "finished_at"]
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    timeline = TimelineEntrySerializer(many=True, source="timeline_entries")
    notifications = NotificationSerializer(many=True, source="notification_list")
    remediation_runs = RemediationRunSerializer(many=True, source="remediation_list")

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "timeline", "notifications", "remediation_runs"]
        read_only_fields = fields


class SnoozeSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=43200, help_text="From 1 minute to 30 days.")


# --- webhooks ------------------------------------------------------------------------------------


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "enabled", "all_rules", "created_at"]
        read_only_fields = fields


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Shown this once: it signs every request (X-MDM-Signature).")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookWriteSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=100)
    url = serializers.CharField(required=False, max_length=500, help_text="http:// or https://")
    secret = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False, write_only=True,
                                   help_text="16 to 200 characters; on create, left out or empty: one is made and answered once. "
                                   "On update: a rotation.")
    enabled = serializers.BooleanField(required=False)
    all_rules = serializers.BooleanField(required=False, help_text="Told of every rule's notifications.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    state = serializers.CharField(help_text="pending (retried with backoff), succeeded, failed (given up)")
    event = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = ["id", "notification", "is_test", "event", "title", "state", "attempts", "next_attempt_at", "last_status",
                  "last_error", "created_at", "finished_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_event(self, d) -> str:
        return str((d.payload or {}).get("event", ""))

    @extend_schema_field(serializers.CharField())
    def get_title(self, d) -> str:
        return str((d.payload or {}).get("title", ""))


class WebhookTestQueuedSerializer(serializers.Serializer):
    delivery = WebhookDeliverySerializer()


# --- maintenance windows and preferences ---------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    group = serializers.SerializerMethodField(help_text="The group's name; null for the whole fleet.")
    created_by = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField(help_text="In force now.")

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "group", "starts_at", "ends_at", "reason", "created_by", "active"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_group(self, w) -> str | None:
        return w.group.name if w.group else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, w) -> str | None:
        return w.created_by.get_username() if w.created_by else None

    @extend_schema_field(serializers.BooleanField())
    def get_active(self, w) -> bool:
        now = self.context["now"]
        return w.starts_at <= now < w.ends_at


class MaintenanceWindowCreateSerializer(serializers.Serializer):
    group = serializers.CharField(required=False, allow_null=True, max_length=100,
                                  help_text="A group's name; left out or null: the whole fleet.")
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField(required=False, help_text="Give this or duration_minutes.")
    duration_minutes = serializers.IntegerField(required=False, min_value=1, max_value=90 * 24 * 60)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class PreferenceSerializer(serializers.Serializer):
    email_enabled = serializers.BooleanField(required=False, help_text="Alert e-mails reach me at all.")
    min_severity = serializers.CharField(required=False, max_length=10,
                                         help_text="info, warning or critical: only alerts of this severity or above reach me.")
    muted_rules = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=1000,
                                        help_text="Ids of rules whose alerts never reach me.")
