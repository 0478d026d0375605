"""The console's audit log: who may read it, the filters and search (one FilterSet with the API),
the table partial swapped by htmx, pages by cursor, and the data column readable."""

import base64
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from mdm import views
from mdm.models import AuditEvent
from mdm.tests.audit_helpers import days_ago, event

URL = "/audit/"


def actions_shown(response) -> list[str]:
    return re.findall(r'<td class="action"><a [^>]*>([^<]+)</a></td>', response.content.decode())


@pytest.fixture
def console(console_for, admin_user):
    return console_for(admin_user)


def test_an_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_viewer_is_refused_and_an_operator_reads(console_for, viewer_user, operator_user):
    event(action="policy.create")
    assert console_for(viewer_user).get(URL).status_code == 403
    response = console_for(operator_user).get(URL)
    assert response.status_code == 200
    assert actions_shown(response) == ["policy.create"]


def test_the_navigation_shows_the_audit_log_to_operators_not_to_viewers(console_for, viewer_user, operator_user):
    assert 'href="/audit/"' not in console_for(viewer_user).get("/").content.decode()
    assert 'href="/audit/"' in console_for(operator_user).get("/").content.decode()


def test_it_filters_by_who_by_action_or_prefix_and_by_object(console, admin_user, operator_user):
    event(actor=admin_user, action="policy.create", target=("policy", "p-1"))
    event(actor=operator_user, action="policy.update", target=("policy", "p-2"))
    event(actor="device:abc", action="device.enroll", target=("device", "abc"))

    assert actions_shown(console.get(URL, {"actor": "oscar"})) == ["policy.update"]
    assert actions_shown(console.get(URL, {"actor": "DEVICE:"})) == ["device.enroll"]
    assert actions_shown(console.get(URL, {"action": "policy.create"})) == ["policy.create"]
    assert actions_shown(console.get(URL, {"action": "policy."})) == ["policy.update", "policy.create"]
    assert actions_shown(console.get(URL, {"action": "policy"})) == []  # exact unless it ends in "."
    assert actions_shown(console.get(URL, {"target_type": "policy", "target_id": "p-1"})) == ["policy.create"]


def test_it_filters_by_a_time_range(console):
    event(action="old.thing", at=days_ago(10))
    event(action="middle.thing", at=days_ago(5))
    event(action="new.thing", at=days_ago(1))
    since = days_ago(7).strftime("%Y-%m-%dT%H:%M:%S")
    until = days_ago(2).strftime("%Y-%m-%dT%H:%M")  # what a datetime-local input sends
    assert actions_shown(console.get(URL, {"since": since, "until": until})) == ["middle.thing"]


def test_search_finds_text_in_the_data_and_covers_30_days_before_to_or_now_unless_from_is_set(console):
    event(action="wifi.push", data={"ssid": "Lobby-Guest"}, at=days_ago(2))
    event(action="wifi.push", data={"ssid": "Lobby-Old"}, at=days_ago(45))
    event(action="policy.create", data={"name": "Kiosk"})

    response = console.get(URL, {"q": "lobby"})
    assert actions_shown(response) == ["wifi.push"]
    assert "the search covers the 30 days before now unless From is set" in response.content.decode()
    older = console.get(URL, {"q": "lobby", "since": days_ago(60).strftime("%Y-%m-%dT%H:%M")})
    assert actions_shown(older) == ["wifi.push", "wifi.push"]
    before = console.get(URL, {"q": "lobby", "until": days_ago(40).strftime("%Y-%m-%dT%H:%M")})
    assert actions_shown(before) == ["wifi.push"] and "Lobby-Old" in before.content.decode()
    assert "the search covers the 30 days before To unless From is set" in before.content.decode()
    assert actions_shown(console.get(URL, {"q": "kiosk"})) == ["policy.create"]


def test_an_htmx_filter_swaps_only_the_table_partial(console):
    event(action="policy.create")
    event(action="device.enroll")
    response = console.get(URL, {"action": "device."}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="audit-table">') and "<html" not in html and "audit-filters" not in html
    assert actions_shown(response) == ["device.enroll"]
    # The export link in the swapped partial carries the same filters.
    assert 'href="/audit/export.csv?action=device."' in html


def test_the_full_page_holds_the_filter_form_that_targets_the_partial(console):
    html = console.get(URL).content.decode()
    assert 'hx-target="#audit-table"' in html and 'id="audit-table"' in html
    assert 'name="since"' in html and 'name="until"' in html and 'name="q"' in html


def test_pages_follow_a_cursor_newest_first_with_ties_in_time_neither_lost_nor_repeated(console, monkeypatch):
    monkeypatch.setattr(views, "AUDIT_PAGE_SIZE", 3)
    same = timezone.now() - timedelta(hours=1)
    made = [event(action=f"tie.{i}", at=same) for i in range(4)] + [event(action=f"later.{i}", at=same + timedelta(minutes=i + 1)) for i in range(4)]
    expected = [e.action for e in AuditEvent.objects.order_by("-at", "-id")]
    assert len(expected) == len(made) == 8

    seen, params = [], {}
    for _ in range(5):
        response = console.get(URL, params, HTTP_HX_REQUEST="true")
        seen += actions_shown(response)
        cursor = re.search(r'href="\?cursor=([^"&]+)"', response.content.decode())
        if not cursor:
            break
        params = {"cursor": cursor.group(1)}
    assert seen == expected


def test_a_cursor_it_did_not_make_is_a_422_with_a_way_back(console):
    far = base64.urlsafe_b64encode(f"9999-12-31T23:59:59-23:59|{uuid.uuid4()}".encode()).decode()
    naive = base64.urlsafe_b64encode(f"2026-01-01T00:00:00|{uuid.uuid4()}".encode()).decode()
    for cursor in ("nonsense", "bm90fGEtdXVpZA", "%00", far, naive):
        response = console.get(URL, {"cursor": cursor})
        assert response.status_code == 422  # swapped in place like every form's errors
        assert "This page link is not valid" in response.content.decode()


@pytest.mark.parametrize(
    "params,field,message",
    [
        ({"since": "yesterday"}, "since", "Enter a valid date/time."),
        ({"until": "9999-12-31T23:59:59-23:59"}, "until", "Enter a valid date/time."),
        ({"q": "x" * 201}, "q", "Ensure this value has at most 200 characters"),
        ({"actor": "a\x00b"}, "actor", "Null characters are not allowed."),
    ],
)
def test_bad_filters_are_a_422_that_says_which_beside_the_filter_and_shows_no_rows(console, params, field, message):
    event(action="policy.create")
    response = console.get(URL, params)
    assert response.status_code == 422
    html = response.content.decode()
    slot = re.search(rf'<span id="audit-{field}-errors" class="field-errors">(.*?)</span>', html)
    assert slot and message in slot.group(1) and html.count(message) == 1
    assert actions_shown(response) == []
    # Swapped in place: the table's answer fills the filter's slot out of band, and empties it once right.
    swapped = console.get(URL, params, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(rf'<span id="audit-{field}-errors" class="field-errors" hx-swap-oob="true">.*{re.escape(message)}', swapped)
    fixed = console.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert f'<span id="audit-{field}-errors" class="field-errors" hx-swap-oob="true"></span>' in fixed


def test_the_data_column_reads_as_key_and_value_never_a_python_repr(console):
    event(
        action="fleet_settings.update",
        data={"heartbeat_interval_s": {"from": 30, "to": 20}, "enabled": True, "note": None, "items": {"wifi": ["office"]},
              "target": {"filter": {"battery_below": "20", "status": "online"}}},
    )
    html = console.get(URL).content.decode()
    assert "<dt>heartbeat_interval_s</dt><dd>30 → 20</dd>" in html
    assert "<dt>enabled</dt><dd>yes</dd>" in html and "<dt>note</dt><dd>—</dd>" in html
    assert "<dt>items</dt><dd>wifi: office</dd>" in html
    assert "<pre>filter:\n  battery_below: 20\n  status: online</pre>" in html
    assert "{&#x27;" not in html and "True" not in html and "None" not in html and "&quot;" not in html


def test_the_page_costs_the_same_queries_with_many_events(console, django_assert_max_num_queries, admin_user):
    for i in range(60):
        event(actor=admin_user, action=f"thing.{i % 5}", target=("device", str(i)), data={"n": i}, ip="10.0.0.1")
    # Session, user, the page's one query of events (no COUNT: it grows with the table).
    with django_assert_max_num_queries(4):
        full = console.get(URL, {"actor": "alice", "action": "thing.", "q": "thing"})
    with django_assert_max_num_queries(4):
        partial = console.get(URL, {"action": "thing."}, HTTP_HX_REQUEST="true")
    assert len(actions_shown(full)) == len(actions_shown(partial)) == 50


def test_data_items_read_changes_scalars_and_nested_values_on_an_unsaved_event():
    items = AuditEvent(
        data={"to_group": "lobby", "count": 3, "ids": ["a", "b"], "change": {"from": None, "to": "x"}, "nested": {"a": {"b": 1}},
              "settings": [{"key": "k", "value": "v"}], "none": [], "off": False}
    ).data_items()
    assert items == [
        ("change", "— → x", False),
        ("count", "3", False),
        ("ids", "a, b", False),
        ("nested", "a:\n  b: 1", True),
        ("none", "none", False),
        ("off", "no", False),
        ("settings", "- key: k\n  value: v", True),
        ("to_group", "lobby", False),
    ]
    assert AuditEvent(data=[1, 2]).data_items() == [("", "1, 2", False)]
