"""mdm.sql.copy_rows: rows inserted by COPY read back as the ORM would have written them."""

import uuid
from datetime import UTC, datetime

import pytest

from mdm import sql
from mdm.alerts.models import Alert, AlertEvent, AlertRule

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_copied_rows_get_the_field_defaults_json_and_null_as_the_orm_writes_them():
    rule = AlertRule.objects.first()
    ids = [uuid.uuid4(), uuid.uuid4()]
    rows = [(ids[0], rule.pk, "device", "a", "firing", "warning", {"battery": 7, "text": "tab\there"}, T0),
            (ids[1], rule.pk, "device", "b", "pending", "warning", None, T0)]
    assert sql.copy_rows(Alert, ["id", "rule_id", "subject_type", "subject_id", "state", "severity", "value", "since"],
                         rows) == 2
    first, second = Alert.objects.get(pk=ids[0]), Alert.objects.get(pk=ids[1])
    assert first.value == {"battery": 7, "text": "tab\there"}
    assert Alert.objects.filter(pk=ids[1], value__isnull=True).exists() and second.value is None
    assert (first.fire_count, first.flapping, first.resolved_by_remediation, first.subject_label) == (0, False, False, "")
    assert first.updated_at is not None


def test_an_auto_id_comes_from_its_sequence_and_nothing_is_written_for_no_rows():
    rule = AlertRule.objects.first()
    alert = Alert.objects.create(rule=rule, subject_type="device", subject_id="x", severity="info", since=T0)
    assert sql.copy_rows(AlertEvent, ["alert_id", "at", "kind", "detail"], []) == 0
    sql.copy_rows(AlertEvent, ["alert_id", "at", "kind", "detail"], [(alert.pk, T0, "fired", {}), (alert.pk, T0, "x", {"a": [1]})])
    events = list(AlertEvent.objects.filter(alert=alert).order_by("id"))
    assert [e.kind for e in events] == ["fired", "x"] and events[1].detail == {"a": [1]}
    assert events[0].id < events[1].id
