"""One FilterSet for the console's device list, the API's list and command targeting."""

from datetime import timedelta

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.db.models import Q
from django.utils import timezone

from devices import compliance
from devices.models import Device

# Bounds that keep every value a timedelta and a database column can hold: an unbounded number
# (`seen_within_s=1e20`) overflowed timedelta (a 500) and one past numeric's range failed in
# PostgreSQL. Out of bounds is a form error: ignored by the console, a 400 from the API.
MAX_AGE_S = 10 * 365 * 86400  # ten years
PERCENT = "A percentage from 0 to 100."
BATTERY = {"min_value": 0, "max_value": 100, "error_messages": {"invalid": PERCENT, "min_value": PERCENT, "max_value": PERCENT}}


class StrictBooleanField(forms.Field):
    """true/false (also 1/0 and JSON booleans, as a command target's filter gives them); anything
    else is an error, not an ignored filter (NullBooleanField reads "perhaps" as no filter)."""

    TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError("true or false.")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


def _age(**kwargs):
    return django_filters.NumberFilter(min_value=0, max_value=MAX_AGE_S, **kwargs)


class DeviceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    group = django_filters.CharFilter(field_name="group__name", label="Group")
    tag = django_filters.CharFilter(field_name="tags__name", label="Tag")
    status = django_filters.ChoiceFilter(
        choices=[("online", "Online"), ("offline", "Offline")], method="filter_status", label="Status"
    )
    battery_below = django_filters.NumberFilter(field_name="status__battery_pct", lookup_expr="lt", label="Battery below %", **BATTERY)
    battery_above = django_filters.NumberFilter(field_name="status__battery_pct", lookup_expr="gt", label="Battery above %", **BATTERY)
    android_version = django_filters.CharFilter(field_name="android_version", label="Android version")
    os_version = django_filters.CharFilter(field_name="status__os_version", label="OS version")
    patch_older_than_days = django_filters.NumberFilter(
        min_value=0, max_value=MAX_AGE_S // 86400, method="filter_patch_older_than", label="Security patch older than (days)")
    compliant = StrictBooleanFilter(method="filter_compliant", label="Policy compliant")
    seen_within_s = _age(method="filter_seen_within", label="Seen within (s)")
    not_seen_for_s = _age(method="filter_not_seen_for", label="Not seen for (s)")
    sort = django_filters.OrderingFilter(
        fields=(
            ("hardware_id", "hardware_id"),
            ("alias", "alias"),
            ("model", "model"),
            ("android_version", "android_version"),
            ("group__name", "group"),
            ("status__battery_pct", "battery"),
            ("status__last_seen", "last_seen"),
            ("status__online", "online"),
            ("enrolled_at", "enrolled_at"),
        ),
        label="Sort",
    )

    class Meta:
        model = Device
        fields = ["q", "group", "tag", "status", "battery_below", "battery_above", "android_version", "os_version",
                  "patch_older_than_days", "compliant"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(hardware_id__icontains=value)
            | Q(alias__icontains=value)
            | Q(serial__icontains=value)
            | Q(model__icontains=value)
            | Q(status__foreground_app__icontains=value)
        )

    def filter_status(self, queryset, name, value):
        return queryset.filter(status__online=(value == "online"))

    def filter_seen_within(self, queryset, name, value):
        return queryset.filter(status__last_seen__gte=timezone.now() - timedelta(seconds=float(value)))

    def filter_not_seen_for(self, queryset, name, value):
        cutoff = timezone.now() - timedelta(seconds=float(value))
        return queryset.filter(Q(status__last_seen__lt=cutoff) | Q(status__last_seen__isnull=True))

    def filter_patch_older_than(self, queryset, name, value):
        """Devices whose reported security patch (v1.1 heartbeat `security_patch`) is older than
        N days; devices that never reported one are not counted as either."""
        cutoff = timezone.localdate() - timedelta(days=int(value))
        return queryset.filter(status__security_patch__lt=cutoff)

    def filter_compliant(self, queryset, name, value):
        """true: the device holds its current policy version with every item applied; false: it
        has a policy and does not (devices without a policy are neither)."""
        if value:
            return queryset.filter(compliance.compliant_q())
        return queryset.filter(compliance.has_policy_q()).exclude(compliance.compliant_q())
