"""The audit log's CSV export: the page's filters, newest first, streamed in batches, at most
audit_filters.CSV_CAP rows (stated in the X-Row-Cap header and on the page), spreadsheet formulas
defused; admins and operators only."""

import csv
import io
import json

import pytest

from mdm import audit_filters
from mdm.tests.audit_helpers import days_ago, event

URL = "/audit/export.csv"


def rows_of(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def console(console_for, admin_user):
    return console_for(admin_user)


def test_outsiders_and_viewers_get_no_csv(client, console_for, viewer_user, operator_user):
    event(action="policy.create")
    anonymous = client.get(URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert console_for(viewer_user).get(URL).status_code == 403
    assert console_for(operator_user).get(URL).status_code == 200


def test_the_csv_holds_the_filtered_events_newest_first_with_their_data_as_json(console, admin_user):
    event(actor=admin_user, action="policy.create", target=("policy", "p-1"), data={"name": "Kiosk", "password": "x"}, ip="10.0.0.7", at=days_ago(2))
    event(actor=admin_user, action="policy.update", target=("policy", "p-1"), data={"name": {"from": "Kiosk", "to": "Lobby"}}, at=days_ago(1))
    event(actor="device:abc", action="device.enroll", target=("device", "abc"))

    response = console.get(URL, {"action": "policy."})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert (response["X-Row-Cap"], response["X-Rows-Truncated"]) == ("100000", "false")
    rows = rows_of(response)
    assert [r["action"] for r in rows] == ["policy.update", "policy.create"]
    assert list(rows[0]) == ["at", "actor", "action", "target_type", "target_id", "ip", "data"]
    oldest = rows[1]
    assert (oldest["actor"], oldest["target_type"], oldest["target_id"], oldest["ip"]) == ("user:alice-admin", "policy", "p-1", "10.0.0.7")
    assert json.loads(oldest["data"]) == {"name": "Kiosk", "password": "***"}
    assert oldest["at"].endswith("+00:00") and oldest["at"] < rows[0]["at"]


def test_the_export_is_fetched_in_batches_and_stops_at_the_cap(console, monkeypatch):
    monkeypatch.setattr(audit_filters, "CSV_BATCH", 3)
    monkeypatch.setattr(audit_filters, "CSV_CAP", 7)
    same = days_ago(1)
    made = [event(action=f"e.{i}", at=same if i < 5 else days_ago(1 - i / 100)) for i in range(10)]
    response = console.get(URL)
    rows = rows_of(response)
    assert (response["X-Row-Cap"], response["X-Rows-Truncated"]) == ("7", "true")
    assert len(rows) == 7 and len({(r["at"], r["action"]) for r in rows}) == 7  # none twice across batches
    newest = sorted(made, key=lambda e: (e.at, e.pk), reverse=True)[:7]
    assert [r["action"] for r in rows] == [e.action for e in newest]


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_defused(console):
    event(actor="+cmd|' /C calc'!A0", action="device.report", target=("device", "=HYPERLINK(\"http://evil\")"), data={"n": 1})
    (row,) = rows_of(console.get(URL))
    assert row["actor"] == "'+cmd|' /C calc'!A0" and row["target_id"] == "'=HYPERLINK(\"http://evil\")"
    assert row["action"] == "device.report" and row["data"] == '{"n":1}'  # the others as they are


def test_bad_filters_are_a_400_that_says_which_not_an_export_of_everything(console):
    event(action="policy.create")
    response = console.get(URL, {"since": "last week"})
    assert response.status_code == 400
    assert response.content.decode() == "From: Enter a valid date/time."


def test_the_page_states_the_cap_next_to_the_export_link(console):
    event(action="policy.create")
    assert "Export CSV (newest 100,000 at most)" in console.get("/audit/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_rows_are_streamed_by_an_async_iterator(async_client, admin_user):
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(event)(action="policy.create", data={"name": "Kiosk"})
    await async_client.aforce_login(admin_user)
    response = await async_client.get(URL)
    assert response.status_code == 200 and response.is_async
    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["action"] == "policy.create"
    await sync_to_async(connections.close_all)()  # the sync thread's connection, before the test database goes
