"""One FilterSet for the console's alerts page and the API's alert list. Out-of-range values are
form errors: ignored by the console, a 400 from the API, never a database error."""

import django_filters
from django.db.models import Q

from devices.filters import StrictBooleanFilter
from mdm.alerts.models import Alert, Severity

STATES = [("open", "Open (pending or firing)"), ("pending", "Pending"), ("firing", "Firing"), ("resolved", "Resolved")]


class AlertFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=STATES, method="filter_state", label="State")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, label="Severity")
    rule = django_filters.UUIDFilter(field_name="rule_id", label="Rule id")
    group = django_filters.CharFilter(field_name="group_name", max_length=100, label="Device group (when it fired)")
    subject_type = django_filters.ChoiceFilter(choices=Alert.Subject.choices, label="Subject type")
    subject_id = django_filters.CharFilter(field_name="subject_id", max_length=64, label="Subject id (a device id, ...)")
    flapping = StrictBooleanFilter(field_name="flapping", label="Flapping")
    acknowledged = StrictBooleanFilter(method="filter_acknowledged", label="Acknowledged")
    notification = django_filters.UUIDFilter(field_name="notifications__id", label="Notification id (the alerts it told of)")

    class Meta:
        model = Alert
        fields = ["state", "severity", "rule", "group", "subject_type", "subject_id", "flapping", "acknowledged", "notification"]

    def filter_state(self, queryset, name, value):
        if value == "open":
            return queryset.filter(state__in=Alert.OPEN_STATES)
        return queryset.filter(state=value)

    def filter_acknowledged(self, queryset, name, value):
        return queryset.filter(acknowledged_at__isnull=not value)


# The console's tabs: each a preset of the filters above.
TABS = {
    "open": ("Open", {"state": "firing", "acknowledged": "false"}),
    "acknowledged": ("Acknowledged", {"state": "open", "acknowledged": "true"}),
    "flapping": ("Flapping", {"flapping": "true"}),
    "resolved": ("Resolved", {"state": "resolved"}),
    "all": ("All", {}),
}


def tab_q(tab: str) -> Q:
    """The tab's filter as a Q, for counting every tab in one query."""
    return {
        "open": Q(state=Alert.State.FIRING, acknowledged_at__isnull=True),
        "acknowledged": Q(state__in=Alert.OPEN_STATES, acknowledged_at__isnull=False),
        "flapping": Q(flapping=True),
        "resolved": Q(state=Alert.State.RESOLVED),
        "all": Q(),
    }[tab]
