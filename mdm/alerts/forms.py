"""The console's alerting forms, in the user's terms: a rule's params with their units, hold and
clear times in seconds or minutes, a scope and recipients picked from lists. Each form turns its
fields into the data the service takes (`to_data`) and a service's ParamsError back into field
errors (`add_service_errors`), so the rules are checked in one place."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from devices.models import DeviceGroup, Tag
from mdm.alerts.kinds import KINDS
from mdm.alerts.models import Alert, AlertRule, Severity, WebhookEndpoint
from mdm.formfields import ServiceErrorsMixin, figure

WEEK_S = 7 * 86400
UNITS = [("s", "seconds"), ("min", "minutes")]
SNOOZE_CHOICES = [(15, "15 minutes"), (60, "1 hour"), (240, "4 hours"), (1440, "1 day"), (10080, "1 week")]


def _number(label: str, lo, hi, *, integer=True, **kwargs):
    field = forms.IntegerField if integer else forms.FloatField
    words = f"{label}: a {'whole ' if integer else ''}number from {figure(lo)} to {figure(hi)}."
    formatted = words.replace("%", "%%")  # the bound messages are %-formatted with the limit
    return field(label=label, min_value=lo, max_value=hi, error_messages={
        "required": f"{label}: required.", "invalid": words, "min_value": formatted, "max_value": formatted}, **kwargs)


def _split_seconds(seconds: int) -> tuple[int, str]:
    return (seconds // 60, "min") if seconds and seconds % 60 == 0 else (seconds, "s")


class RuleForm(ServiceErrorsMixin, forms.Form):
    """One rule of one kind: the kind's params (param_<name>), then what every rule has."""

    field_map = {"hold_s": "hold", "clear_s": "clear", "scope": "scope_kind", "notify.emails": "notify_emails",
                 "notify.users": "notify_users", "notify.webhooks": "notify_webhooks", "notify": "notify_admins"}

    name = forms.CharField(max_length=120, error_messages={"required": "Give the rule a name."})
    enabled = forms.BooleanField(required=False, label="Enabled")
    severity = forms.ChoiceField(choices=Severity.choices)
    hold = forms.IntegerField(label="Hold before firing", min_value=0, help_text="How long the condition must hold "
                              "before the alert fires; 0 fires at once.", error_messages={
                                  "required": "Hold before firing: required (0 fires at once).",
                                  "invalid": "Hold before firing: a whole number.", "min_value": "Hold before firing: 0 or more."})
    hold_unit = forms.ChoiceField(choices=UNITS, label="Hold unit", widget=forms.Select(attrs={"aria-label": "Hold unit"}))
    clear = forms.IntegerField(label="Clear before resolving", min_value=0, help_text="How long the condition must be "
                               "gone before the alert resolves.", error_messages={
                                   "required": "Clear before resolving: required (0 resolves at once).",
                                   "invalid": "Clear before resolving: a whole number.",
                                   "min_value": "Clear before resolving: 0 or more."})
    clear_unit = forms.ChoiceField(choices=UNITS, label="Clear unit", widget=forms.Select(attrs={"aria-label": "Clear unit"}))
    scope_kind = forms.ChoiceField(label="Which devices", choices=[("all", "All devices"), ("group", "One group"),
                                                                   ("tags", "Devices with any of these tags")])
    scope_group = forms.ChoiceField(label="Group", required=False)
    scope_tags = forms.MultipleChoiceField(label="Tags", required=False, widget=forms.CheckboxSelectMultiple)
    notify_admins = forms.BooleanField(required=False, label="Every admin with an e-mail address")
    notify_users = forms.MultipleChoiceField(label="These users", required=False, widget=forms.CheckboxSelectMultiple)
    notify_emails = forms.CharField(label="These e-mail addresses", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                    help_text="One per line.")
    notify_webhooks = forms.MultipleChoiceField(label="These webhooks", required=False, widget=forms.CheckboxSelectMultiple)
    quiet = forms.BooleanField(required=False, label="Remediate quietly (tell only when remediation fails)")

    def __init__(self, *args, kind: str, rule: AlertRule | None = None, **kwargs):
        self.kind = KINDS[kind]
        self.rule = rule
        if rule is not None and "data" not in kwargs and not args:
            kwargs["initial"] = self.initial_from(rule)
        elif rule is None and "data" not in kwargs and not args:
            kwargs["initial"] = self.initial_for_kind()
        super().__init__(*args, **kwargs)
        for name, p in self.kind.params.items():
            self.fields[f"param_{name}"] = _number(p.label[:1].upper() + p.label[1:], p.min, p.max, integer=p.type is int)
        if self.is_device_kind:
            self.fields["scope_group"].choices = [("", "—")] + [(g, g) for g in DeviceGroup.objects.order_by("name")
                                                                .values_list("name", flat=True)]
            self.fields["scope_tags"].choices = [(t, t) for t in Tag.objects.order_by("name").values_list("name", flat=True)]
            if rule is not None and "filter" in (rule.scope or {}):
                self.fields["scope_kind"].choices += [("filter", "Keep the filter set through the API")]
        else:
            for name in ("scope_kind", "scope_group", "scope_tags"):
                del self.fields[name]
        User = get_user_model()
        self.fields["notify_users"].choices = [(str(pk), name) for pk, name in User.objects.filter(is_active=True)
                                               .exclude(email="").order_by("username").values_list("pk", "username")]
        self.fields["notify_webhooks"].choices = [(str(pk), name) for pk, name in
                                                  WebhookEndpoint.objects.order_by("name").values_list("pk", "name")]
        if not (rule and rule.remediation):
            del self.fields["quiet"]

    @property
    def is_device_kind(self) -> bool:
        return self.kind.subject == Alert.Subject.DEVICE

    @property
    def condition(self) -> str:
        return self.kind.describe({n: p.default for n, p in self.kind.params.items()} | ((self.rule.params or {}) if self.rule else {}))

    def param_fields(self):
        return [self[f"param_{name}"] for name in self.kind.params]

    def initial_for_kind(self) -> dict:
        k = self.kind
        hold, hold_unit = _split_seconds(k.hold_s)
        clear, clear_unit = _split_seconds(k.clear_s)
        return {"name": k.label, "enabled": True, "severity": k.severity, "hold": hold, "hold_unit": hold_unit,
                "clear": clear, "clear_unit": clear_unit, "scope_kind": "all", "notify_admins": True,
                **{f"param_{n}": p.default for n, p in k.params.items()}}

    def initial_from(self, rule: AlertRule) -> dict:
        hold, hold_unit = _split_seconds(rule.hold_s)
        clear, clear_unit = _split_seconds(rule.clear_s)
        scope = rule.scope or {"all": True}
        notify = rule.notify or {}
        return {"name": rule.name, "enabled": rule.enabled, "severity": rule.severity, "hold": hold, "hold_unit": hold_unit,
                "clear": clear, "clear_unit": clear_unit, "scope_kind": next(iter(scope), "all"),
                "scope_group": scope.get("group", ""), "scope_tags": scope.get("tags", []),
                "notify_admins": bool(notify.get("admins")), "notify_users": notify.get("users", []),
                "notify_emails": "\n".join(notify.get("emails", [])), "notify_webhooks": notify.get("webhooks", []),
                "quiet": rule.quiet, **{f"param_{n}": v for n, v in (rule.params or {}).items()}}

    def clean(self):
        data = super().clean()
        for name in ("hold", "clear"):
            value, unit = data.get(name), data.get(f"{name}_unit")
            if value is None or unit is None:
                continue
            seconds = value * 60 if unit == "min" else value
            if seconds > WEEK_S:
                self.add_error(name, f"{self.fields[name].label}: at most 7 days (10080 minutes, 604800 seconds).")
            data[f"{name}_s"] = seconds
        kind = data.get("scope_kind")
        if kind == "group" and not data.get("scope_group"):
            self.add_error("scope_group", "Pick the group.")
        if kind == "tags" and not data.get("scope_tags"):
            self.add_error("scope_tags", "Pick at least one tag.")
        return data

    def to_data(self) -> dict:
        d = self.cleaned_data
        emails = [line.strip() for line in d["notify_emails"].replace(",", "\n").splitlines() if line.strip()]
        out = {"name": d["name"], "enabled": d["enabled"], "severity": d["severity"], "hold_s": d["hold_s"],
               "clear_s": d["clear_s"], "params": {n: d[f"param_{n}"] for n in self.kind.params},
               "notify": {**((self.rule.notify or {}) if self.rule else {}), "admins": d["notify_admins"],
                          "users": d["notify_users"], "emails": emails, "webhooks": d["notify_webhooks"]}}
        if "quiet" in self.fields:
            out["quiet"] = d["quiet"]
        if self.is_device_kind and d["scope_kind"] != "filter":
            out["scope"] = {"group": d["scope_group"]} if d["scope_kind"] == "group" else \
                {"tags": d["scope_tags"]} if d["scope_kind"] == "tags" else {"all": True}
        if self.rule is None:
            out["kind"] = self.kind.key
        return out


class SnoozeForm(forms.Form):
    minutes = forms.TypedChoiceField(choices=SNOOZE_CHOICES, coerce=int, label="Snooze for",
                                     error_messages={"invalid_choice": "Pick how long to snooze."})


class WebhookForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the webhook a name."})
    url = forms.CharField(label="URL", max_length=500, error_messages={"required": "Give the address it posts to."},
                          widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/…"}))
    secret = forms.CharField(required=False, max_length=200, strip=False,
                             help_text="Signs every request. Leave it empty and one is made for you, shown once.")
    all_rules = forms.BooleanField(required=False, label="Every rule's notifications (not only rules that name it)")
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")


class WebhookEditForm(WebhookForm):
    secret = forms.CharField(required=False, max_length=200, strip=False, label="New secret",
                             help_text="Only to rotate it; leave empty to keep the current one.")


class WindowForm(ServiceErrorsMixin, forms.Form):
    group = forms.ChoiceField(required=False, label="Devices", help_text="Their notifications are held back.")
    starts_at = forms.DateTimeField(required=False, label="Starts", widget=forms.DateTimeInput(
        attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"), help_text="Empty: now.",
        error_messages={"invalid": "Starts: a date and time."})
    duration_minutes = _number("Lasts (minutes)", 1, 90 * 24 * 60, initial=60)
    reason = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [("", "The whole fleet")] + [
            (name, f"Group {name}") for name in DeviceGroup.objects.order_by("name").values_list("name", flat=True)]
        self.fields["starts_at"].label = f"Starts ({timezone.get_current_timezone_name()})"


class PreferencesForm(ServiceErrorsMixin, forms.Form):
    email_enabled = forms.BooleanField(required=False, label="Send me alert e-mails")
    min_severity = forms.ChoiceField(label="Only alerts of at least", choices=[
        ("info", "Info (everything)"), ("warning", "Warning"), ("critical", "Critical")])
    muted_rules = forms.MultipleChoiceField(label="Never about these rules", required=False,
                                            widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["muted_rules"].choices = [(str(pk), name) for pk, name in
                                              AlertRule.objects.order_by("name").values_list("pk", "name")]
