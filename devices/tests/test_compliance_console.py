"""Policy compliance in the devices console: the list's column, filters (compliant, OS version,
security patch age) and counts, the dashboard's fleet compliance, and the device page's OS facts
(its policy section is commands' and tested there, commands/tests/test_policy_console.py)."""

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import compliance
from devices.models import DeviceStatus
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
POLICY = uuid.uuid4()


def device(alias, *, version=0, applied=None, all_applied=False, patch_days=None, os_version="", **status):
    d = DeviceFactory(alias=alias)
    DeviceStatus.objects.filter(device=d).update(
        os_version=os_version, security_patch=(timezone.localdate() - timedelta(days=patch_days)) if patch_days is not None else None,
        **status)
    if version:
        compliance.set_resolved({d.pk: (POLICY, version)})
    if applied is not None:
        compliance.record_report(device_id=d.pk, version=applied, items={}, all_applied=all_applied, now=timezone.now())
    return d


@pytest.fixture
def fleet(db):
    return {"good": device("good", version=7, applied=7, all_applied=True, patch_days=20, os_version="14"),
            "failing": device("failing", version=7, applied=7, all_applied=False, patch_days=200, os_version="13"),
            "behind": device("behind", version=9, applied=7, all_applied=True),
            "none": device("none")}


def row_of(html, d) -> str:
    return re.search(rf'<tr id="device-{d.pk}">(.*?)</tr>', html, re.S)[1]


def test_the_list_shows_each_devices_compliance(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/devices/").content.decode()
    assert "<th>Policy</th>" in html
    assert 'class="badge compliant"' in row_of(html, fleet["good"])
    assert "not compliant" in row_of(html, fleet["failing"]) and "an item is not applied" in row_of(html, fleet["failing"])
    assert "reported version 7, current 9" in row_of(html, fleet["behind"])
    assert "no policy" in row_of(html, fleet["none"])
    assert f"patch {(timezone.localdate() - timedelta(days=20)):%Y-%m-%d}" in row_of(html, fleet["good"])


def test_the_list_counts_non_compliant_devices_and_links_to_them(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/devices/").content.decode()
    assert 'id="compliant-count">1<' in html and 'id="non-compliant-count">2<' in html and 'id="no-policy-count">1<' in html
    assert 'href="/devices/?compliant=false"' in html


@pytest.mark.parametrize("query, shown", [
    ("compliant=true", {"good"}),
    ("compliant=false", {"failing", "behind"}),
    ("patch_older_than_days=90", {"failing"}),
    ("os_version=14", {"good"}),
])
def test_the_list_filters_by_compliance_os_version_and_patch_age(console_for, viewer_user, fleet, query, shown):
    html = console_for(viewer_user).get(f"/devices/?{query}", HTTP_HX_REQUEST="true").content.decode()
    assert {name for name, d in fleet.items() if f'id="device-{d.pk}"' in html} == shown


def test_the_filters_offer_the_reported_os_versions_and_keep_the_choice(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/devices/?compliant=false&patch_older_than_days=90").content.decode()
    assert '<option value="13"' in html and '<option value="14"' in html
    assert '<option value="false" selected>' in html and '<option value="90" selected>' in html


def test_a_bad_filter_value_is_ignored_by_the_console_not_a_500(console_for, viewer_user, fleet):
    assert console_for(viewer_user).get("/devices/?compliant=perhaps&patch_older_than_days=1e20").status_code == 200


def test_the_list_query_count_does_not_grow_with_policy_states(console_for, admin_user):
    client = console_for(admin_user)
    for i in range(3):
        device(f"a{i}", version=5, applied=5, all_applied=True)
    with CaptureQueriesContext(connection) as few:
        client.get("/devices/")
    for i in range(40):
        device(f"b{i}", version=5, applied=4, patch_days=i, os_version=str(10 + i % 5))
    with CaptureQueriesContext(connection) as many:
        client.get("/devices/")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_dashboard_shows_fleet_compliance(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/").content.decode()
    assert 'id="fleet-compliance"' in html and 'id="compliant-count">1<' in html and 'id="non-compliant-count">2<' in html


def test_the_device_page_shows_os_version_patch_level_and_a_pending_update(console_for, viewer_user):
    d = device("till", patch_days=45, os_version="14",
               pending_system_update={"received_at": 1767225600, "security_patch": "2026-01-05"})
    html = console_for(viewer_user).get(f"/devices/{d.pk}/").content.decode()
    os_facts = re.search(r'<dl class="facts" id="device-os">(.*?)</dl>', html, re.S)[1]
    assert "<dd>14</dd>" in os_facts and f"{(timezone.localdate() - timedelta(days=45)):%Y-%m-%d}" in os_facts
    assert "waiting since 2026-01-01 00:00 UTC, patch 2026-01-05" in os_facts
    assert "No policy" in html


def test_a_device_without_reports_says_so(console_for, viewer_user):
    d = device("new")
    html = console_for(viewer_user).get(f"/devices/{d.pk}/").content.decode()
    assert "not reported" in re.search(r'id="device-security-patch">(.*?)</dd>', html, re.S)[1]
    assert "none reported" in re.search(r'id="device-pending-update">(.*?)</dd>', html, re.S)[1]
