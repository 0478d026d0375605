"""The console's policy pages (docs/policies.md "In the console"): who reads and who writes (as
the admin API: admins), the per-item editor with its errors beside the fields and its warnings,
versions and their differences, assignment with a dry run, unassignment, and the audit trail."""

import re

import pytest

from commands import services as command_services
from commands.policies import forms as policy_forms
from commands.policies import reports
from commands.policies import services as policies
from commands.policies.models import Policy, PolicyAssignment, PolicyVersion
from commands.tests.conftest import make_device
from devices.models import InstalledApp
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
KIOSK = {"kiosk": {"package": "com.example.kiosk"}}


def make(admin, name="Kiosks", items=None):
    return policies.create_policy(actor=admin, name=name, items=items or KIOSK)


def form(**fields) -> dict:
    """An editor POST: `item` lists the items turned on; every other field as the form sends it."""
    data = {"name": "Kiosks", "description": "", "item": [], "kiosk_lock_task": "on", "kiosk_relaunch": "on"}
    data.update(fields)
    return data


@pytest.fixture
def policy(admin_user):
    return make(admin_user)


# --- who may do what ------------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_sign_in_from_every_page_and_action(client, policy):
    for path in ["/commands/policies/", "/commands/policies/new/", f"/commands/policies/{policy.pk}/",
                 f"/commands/policies/{policy.pk}/edit/", f"/commands/policies/{policy.pk}/diff/?from=1&to=2"]:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login" in response["Location"], path
    for path in ["/commands/policies/new/", f"/commands/policies/{policy.pk}/edit/", f"/commands/policies/{policy.pk}/assign/",
                 f"/commands/policies/{policy.pk}/unassign/"]:
        response = client.post(path, form(item=["kiosk"], kiosk_package="com.example.other"))
        assert response.status_code == 302 and "/accounts/login" in response["Location"], path
    assert Policy.objects.count() == 1 and PolicyVersion.objects.count() == 1


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_read_but_only_admins_change_or_assign(client, policy, role, viewer_user, operator_user):
    client.force_login(viewer_user if role == "viewer" else operator_user)
    make_device(group="shops")
    for path in ["/commands/policies/", f"/commands/policies/{policy.pk}/"]:
        page = client.get(path)
        assert page.status_code == 200 and "Kiosks" in page.content.decode(), path
        assert "/edit/" not in page.content.decode() and 'id="assign-form"' not in page.content.decode()
    assert client.get("/commands/policies/new/").status_code == 403
    assert client.get(f"/commands/policies/{policy.pk}/edit/").status_code == 403
    assert client.post("/commands/policies/new/", form(name="Other", item=["kiosk"], kiosk_package="com.example.a")).status_code == 403
    assert client.post(f"/commands/policies/{policy.pk}/edit/", form(item=["kiosk"], kiosk_package="com.example.b")).status_code == 403
    assert client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "group", "group": "shops"}).status_code == 403
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "fleet_default"}).status_code == 403
    assert Policy.objects.count() == 1 and PolicyVersion.objects.count() == 1 and not PolicyAssignment.objects.exists()


def test_the_commands_pages_link_to_the_policies(console_for, viewer_user):
    assert 'href="/commands/policies/"' in console_for(viewer_user).get("/commands/").content.decode()


def test_an_unknown_policy_is_a_404(console_for, admin_user):
    client = console_for(admin_user)
    missing = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert client.get(f"/commands/policies/{missing}/").status_code == 404
    assert client.post(f"/commands/policies/{missing}/assign/", {"target_kind": "all"}).status_code == 404


# --- the list -------------------------------------------------------------------------------------

def test_the_list_shows_version_assignment_devices_and_their_compliance(console_for, viewer_user, admin_user, policy):
    sims = [make_device(group="shops") for _ in range(3)]
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    make(admin_user, name="Unused", items={"restrictions": ["no_factory_reset"]})
    policies.record_policy_status(device_id=sims[0].id, version=policy.version, items={"kiosk": {"state": "applied"}})
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    html = console_for(viewer_user).get("/commands/policies/").content.decode()
    row = re.search(rf'<tr id="policy-{policy.pk}">(.*?)</tr>', html, re.S)[1]
    assert f"v{policy.version}" in row and "shops" in row and 'data-devices="3"' in row
    assert "1 compliant" in row and "2 not" in row
    assert "not assigned" in html  # the unused one


def test_the_list_holds_a_fixed_number_of_queries(console_for, admin_user, django_assert_max_num_queries):
    client = console_for(admin_user)
    for i in range(2):
        make(admin_user, name=f"p{i}")
    client.get("/commands/policies/")
    with django_assert_max_num_queries(8) as few:
        client.get("/commands/policies/")
    for i in range(2, 25):
        policy = make(admin_user, name=f"p{i}")
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": make_device(group=f"g{i}").device.group.name})
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/commands/policies/").content.decode().count('<tr id="policy-') == 25


# --- the editor -----------------------------------------------------------------------------------

def test_an_admin_creates_a_policy_from_the_item_forms_and_it_is_audited(console_for, admin_user):
    client = console_for(admin_user)
    page = client.get("/commands/policies/new/")
    assert page.status_code == 200 and 'name="kiosk_package"' in page.content.decode() and 'name="freeze_start"' in page.content.decode()
    response = client.post("/commands/policies/new/", form(
        item=["kiosk", "system_update", "restrictions"], kiosk_package="com.example.kiosk", kiosk_activity=".Main",
        update_type="windowed", window_start="02:00", window_end="04:30", freeze_start=["12-01", ""], freeze_end=["12-31", ""],
        restriction=["no_factory_reset", "no_usb_file_transfer"]), **HX)
    policy = Policy.objects.get()
    assert response.status_code == 204 and response["HX-Redirect"] == f"/commands/policies/{policy.pk}/"
    assert policy.current.items == {
        "kiosk": {"package": "com.example.kiosk", "activity": ".Main", "lock_task": True, "relaunch": True, "status_bar": False},
        "system_update": {"type": "windowed", "window_start_min": 120, "window_end_min": 270,
                          "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
        "restrictions": ["no_factory_reset", "no_usb_file_transfer"]}
    event = AuditEvent.objects.get(action="policy.create")
    assert event.target_id == str(policy.pk) and event.actor == admin_user
    assert "policy.create" in client.get("/audit/").content.decode()
    detail = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert "Install in a daily window 02:00–04:30" in detail and "Freeze 12-01 to 12-31 (31 days)" in detail
    assert "policy.create" in detail  # the policy's own history


def test_a_freeze_period_over_90_days_is_a_422_with_the_error_beside_its_row(console_for, admin_user):
    response = console_for(admin_user).post("/commands/policies/new/", form(
        item=["system_update"], update_type="automatic", freeze_start=["", "06-01"], freeze_end=["", "09-30"]), **HX)
    html = response.content.decode()
    assert response.status_code == 422 and not Policy.objects.exists()
    row = re.search(r'<div class="freeze-row invalid" id="freeze-row-1">(.*?)</div>', html, re.S)
    assert row and "06-01 to 09-30 is 122 days; a freeze period lasts at most 90 days." in row[1]
    assert 'id="freeze-row-0"' in html and '<div class="freeze-row" id="freeze-row-0">' in html
    assert 'value="06-01"' in html  # what was typed stays


def test_freeze_periods_too_close_together_are_shown_above_the_rows(console_for, admin_user):
    response = console_for(admin_user).post("/commands/policies/new/", form(
        item=["system_update"], update_type="automatic", freeze_start=["01-01", "02-15"], freeze_end=["01-31", "02-20"]), **HX)
    errors = re.search(r'<div id="freeze-errors">(.*?)</div>', response.content.decode(), re.S)[1]
    assert response.status_code == 422 and "Android needs at least 60 days between freeze periods" in errors


def test_every_item_shows_its_own_error_in_the_users_terms(console_for, admin_user):
    int_field = next(f for f in policy_forms.setting_fields() if f["kind"] == "int")
    response = console_for(admin_user).post("/commands/policies/new/", form(
        item=["kiosk", "system_update", "settings", "shell_allowlist"], kiosk_package="not a package",
        update_type="windowed", window_start="25:00", window_end="04:00",
        **{f"setting_{int_field['key']}": "ten"}, shell_mode="explicit", shell_lines="getprop\nrm -rf /"), **HX)
    html = response.content.decode()
    assert response.status_code == 422 and not Policy.objects.exists()
    assert "A package name like com.example.kiosk is required." in html
    assert "A time of day as HH:MM, from 00:00 to 23:59." in html and "1439" not in html
    assert f"A whole number from {int_field['min']:,} to {int_field['max']:,}." in html
    assert "Line 2, “rm -rf /”: not a read-only diagnostic the agent can run" in html
    assert "items." not in html  # no field codes


def test_a_name_already_taken_is_shown_beside_the_name(console_for, admin_user, policy):
    response = console_for(admin_user).post("/commands/policies/new/", form(item=["kiosk"], kiosk_package="com.example.x"), **HX)
    assert response.status_code == 422 and "A policy with this name exists" in response.content.decode()
    assert Policy.objects.count() == 1


def test_wifi_comes_from_stored_configs_and_its_password_is_never_shown(console_for, admin_user):
    config = command_services.create_wifi_config(actor=admin_user, name="Shop", ssid="shop-net", password="hunter22-pass")
    client = console_for(admin_user)
    assert "shop-net" in client.get("/commands/policies/new/").content.decode()
    client.post("/commands/policies/new/", form(item=["wifi"], wifi=[str(config.pk)]), **HX)
    policy = Policy.objects.get()
    assert policy.current.items["wifi"][0]["ssid"] == "shop-net"
    detail = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert "shop-net (wpa2), password ***" in detail and "hunter22-pass" not in detail
    assert "hunter22-pass" not in client.get(f"/commands/policies/{policy.pk}/edit/").content.decode()


def test_the_shell_allowlist_can_be_the_consoles(console_for, admin_user):
    console_for(admin_user).post("/commands/policies/new/", form(item=["shell_allowlist"], shell_mode="console"), **HX)
    version = Policy.objects.get().current
    assert version.sources == {"shell_allowlist": "console"} and ["getprop"] in version.items["shell_allowlist"]


def test_a_kiosk_app_no_device_has_is_a_warning_that_does_not_block(console_for, admin_user):
    client = console_for(admin_user)
    client.post("/commands/policies/new/", form(item=["kiosk"], kiosk_package="com.example.nowhere"), **HX)
    policy = Policy.objects.get()
    page = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert "No device reports com.example.nowhere in its inventory" in page
    InstalledApp.objects.create(device=make_device().device, package="com.example.nowhere", version_code=1)
    assert "No device reports" not in client.get(f"/commands/policies/{policy.pk}/").content.decode()


def test_editing_makes_a_new_version_and_an_item_can_be_removed(console_for, admin_user):
    client = console_for(admin_user)
    policy = make(admin_user, items={**KIOSK, "restrictions": ["no_factory_reset"], "system_update": {
        "type": "postpone", "freeze_periods": [{"start": "12-20", "end": "01-05"}]}})
    first = policy.version
    page = client.get(f"/commands/policies/{policy.pk}/edit/").content.decode()
    assert 'value="com.example.kiosk"' in page and 'value="12-20"' in page and 'value="no_factory_reset" checked' in page
    response = client.post(f"/commands/policies/{policy.pk}/edit/", form(
        item=["kiosk", "system_update"], kiosk_package="com.example.kiosk2", update_type="postpone",
        freeze_start=["12-20"], freeze_end=["01-05"]), **HX)
    policy.refresh_from_db()
    assert response.status_code == 204 and policy.version > first and policy.name == "Kiosks"
    assert set(policy.current.items) == {"kiosk", "system_update"}
    event = AuditEvent.objects.get(action="policy.update")
    assert event.data["diff"] == {"added": [], "removed": ["restrictions"], "changed": ["kiosk"]}


def test_saving_without_a_change_makes_no_version(console_for, admin_user, policy):
    client = console_for(admin_user)
    response = client.post(f"/commands/policies/{policy.pk}/edit/", form(item=["kiosk"], kiosk_package="com.example.kiosk"), **HX)
    assert response.status_code == 204 and PolicyVersion.objects.count() == 1
    assert "Nothing changed" in client.get(f"/commands/policies/{policy.pk}/").content.decode()


def test_a_form_posted_without_htmx_redirects_or_shows_the_whole_page(console_for, admin_user):
    client = console_for(admin_user)
    bad = client.post("/commands/policies/new/", form(item=["kiosk"], kiosk_package=""))
    assert bad.status_code == 422 and "<html" in bad.content.decode()
    good = client.post("/commands/policies/new/", form(item=["kiosk"], kiosk_package="com.example.kiosk"))
    assert good.status_code == 302 and good["Location"] == f"/commands/policies/{Policy.objects.get().pk}/"


# --- versions and their differences ----------------------------------------------------------------

def test_any_two_versions_are_compared_item_by_item(console_for, viewer_user, admin_user):
    config = command_services.create_wifi_config(actor=admin_user, name="Shop", ssid="shop-net", password="hunter22-pass")
    policy = make(admin_user, items={**KIOSK, "restrictions": ["no_factory_reset"]})
    v1 = policy.version
    policies.update_policy(actor=admin_user, policy=policy, items={**KIOSK, "wifi": [str(config.pk)]})
    policies.update_policy(actor=admin_user, policy=policy, items={"kiosk": {"package": "com.example.new"}})
    policy.refresh_from_db()
    client = console_for(viewer_user)
    detail = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert detail.count('<tr id="version-') == 3 and "− wifi" in detail
    html = client.get(f"/commands/policies/{policy.pk}/diff/?from={v1}&to={policy.version}", **HX).content.decode()
    assert html.startswith('<section id="policy-diff"')
    kiosk = re.search(r'id="diff-kiosk">(.*?)</div>', html, re.S)[1]
    assert "changed" in kiosk and "App com.example.kiosk" in kiosk and "App com.example.new" in kiosk
    assert "removed" in re.search(r'id="diff-restrictions">(.*?)</div>', html, re.S)[1]
    middle = PolicyVersion.objects.filter(policy=policy).order_by("id")[1].pk
    masked = client.get(f"/commands/policies/{policy.pk}/diff/?from={v1}&to={middle}").content.decode()
    assert "password ***" in masked and "hunter22-pass" not in masked and "<html" in masked


def test_a_version_of_another_policy_or_a_bad_number_is_a_404(console_for, viewer_user, admin_user, policy):
    other = make(admin_user, name="Other")
    client = console_for(viewer_user)
    assert client.get(f"/commands/policies/{policy.pk}/diff/?from={other.version}&to={policy.version}").status_code == 404
    assert client.get(f"/commands/policies/{policy.pk}/diff/?from=abc&to={policy.version}").status_code == 404
    assert client.get(f"/commands/policies/{policy.pk}/diff/").status_code == 404


# --- assignment -----------------------------------------------------------------------------------

def test_assigning_shows_a_dry_run_count_first_and_then_assigns(console_for, admin_user, policy):
    for _ in range(3):
        make_device(group="shops")
    make_device(group="office")
    client = console_for(admin_user)
    preview = client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "group", "group": "shops", "preview": "1"}, **HX)
    html = preview.content.decode()
    assert preview.status_code == 200 and 'id="assign-count">3<' in html and "Confirm: assign to group shops" in html
    assert not PolicyAssignment.objects.exists()
    done = client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "group", "group": "shops"}, **HX)
    assert done.status_code == 204 and done["HX-Redirect"] == f"/commands/policies/{policy.pk}/"
    assert PolicyAssignment.objects.get().group.name == "shops"
    page = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert "assigned to group shops: 3 devices selected, 3 changed" in page
    assert AuditEvent.objects.get(action="policy.assign").data["target"] == {"group": "shops"}


def test_a_bad_target_is_a_422_with_the_reason(console_for, admin_user, policy):
    client = console_for(admin_user)
    response = client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "group", "group": "nowhere", "preview": "1"}, **HX)
    assert response.status_code == 422 and "No group named" in response.content.decode()
    empty = client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "tags"}, **HX)
    assert empty.status_code == 422 and "tag names" in empty.content.decode()
    assert not PolicyAssignment.objects.exists()


def test_the_fleet_default_and_device_assignments_are_assigned_and_unassigned(console_for, admin_user, policy):
    sims = [make_device(tags=["front"]) for _ in range(2)]
    client = console_for(admin_user)
    client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "all"}, **HX)
    client.post(f"/commands/policies/{policy.pk}/assign/", {"target_kind": "tags", "tags": ["front"]}, **HX)
    assert PolicyAssignment.objects.filter(fleet_default=True).exists()
    assert PolicyAssignment.objects.filter(device__isnull=False).count() == 2
    page = client.get(f"/commands/policies/{policy.pk}/").content.decode()
    assert "fleet default" in page and "2 devices of their own" in page
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "devices"}, **HX).status_code == 204
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "fleet_default"}, **HX).status_code == 204
    assert not PolicyAssignment.objects.exists()
    assert AuditEvent.objects.filter(action="policy.unassign").count() == 2
    assert sims  # every device fell back to no policy
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "devices"}).status_code == 400
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "everything"}).status_code == 400


def test_unassigning_a_group(console_for, admin_user, policy):
    make_device(group="shops")
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    client = console_for(admin_user)
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "group", "group": "shops"}, **HX).status_code == 204
    assert not PolicyAssignment.objects.exists()
    assert client.post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "group", "group": "nowhere"}).status_code == 400


# --- compliance on the policy's page ----------------------------------------------------------------

def test_the_policy_page_counts_its_devices_and_says_why_one_is_not_compliant(console_for, viewer_user, admin_user, policy):
    good, bad, silent = make_device(group="shops"), make_device(group="shops", alias="till-2"), make_device(group="shops")
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    policies.record_policy_status(device_id=good.id, version=policy.version, items={"kiosk": {"state": "applied"}})
    policies.record_policy_status(device_id=bad.id, version=policy.version,
                                  items={"kiosk": {"state": "failed", "reason": "package not installed"}})
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    html = console_for(viewer_user).get(f"/commands/policies/{policy.pk}/").content.decode()
    assert 'id="policy-compliant">1<' in html and 'id="policy-non-compliant">2<' in html
    table = re.search(r'id="non-compliant-devices">(.*?)</table>', html, re.S)[1]
    assert "till-2" in table and "kiosk: failed" in table and "package not installed" in table
    assert "has not reported yet" in table and silent


# --- the device page's policy section (commands' template tag) --------------------------------------

def test_the_device_page_shows_its_policy_and_why_it_is_not_compliant_item_by_item(console_for, viewer_user, admin_user):
    policy = make(admin_user, items={**KIOSK, "restrictions": ["no_factory_reset"]})
    sim = make_device(group="shops")
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    client = console_for(viewer_user)
    html = client.get(f"/devices/{sim.id}/").content.decode()
    assert f'href="/commands/policies/{policy.pk}/" id="device-policy-name">Kiosks<' in html
    assert "has not reported on its policy yet" in html
    policies.record_policy_status(device_id=sim.id, version=policy.version, items={
        "kiosk": {"state": "failed", "reason": "com.example.kiosk is not installed"}, "restrictions": {"state": "applied"},
        "camera": {"state": "unsupported"}})
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    html = client.get(f"/devices/{sim.id}/").content.decode()
    assert f"v{policy.version}" in re.search(r'id="device-applied-version">(.*?)</dd>', html, re.S)[1]
    assert 'id="device-compliance">not compliant<' in html and "1 item of the current version is not applied" in html
    kiosk = re.search(r'id="device-item-kiosk">(.*?)</tr>', html, re.S)[1]
    assert "item-failed" in kiosk and "com.example.kiosk is not installed" in kiosk
    assert "item-applied" in re.search(r'id="device-item-restrictions">(.*?)</tr>', html, re.S)[1]
    assert "camera <small>(not in this version)</small>" in html


def test_the_device_page_says_when_the_device_reported_an_older_version(console_for, viewer_user, admin_user):
    policy = make(admin_user)
    sim = make_device()
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    old = policy.version
    policies.record_policy_status(device_id=sim.id, version=old, items={"kiosk": {"state": "applied"}})
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    assert 'id="device-compliance">compliant<' in console_for(viewer_user).get(f"/devices/{sim.id}/").content.decode()
    policies.update_policy(actor=admin_user, policy=policy, items={"kiosk": {"package": "com.example.next"}})
    policy.refresh_from_db()
    html = console_for(viewer_user).get(f"/devices/{sim.id}/").content.decode()
    assert f"last reported version {old}; it has not reported the current version {policy.version} yet" in html
    assert "waiting for a report" in html


# --- bad input: a 4xx that says what, never a 5xx ---------------------------------------------------

@pytest.mark.parametrize("fields", [
    {"name": "a\x00b", "item": ["kiosk"], "kiosk_package": "com.example.k"},
    {"name": "ok", "description": "x\x00", "item": ["kiosk"], "kiosk_package": "com.example.k"},
    {"name": "x" * 5000, "item": ["kiosk"], "kiosk_package": "com.example.k"},
    {"name": "ok", "item": ["kiosk"], "kiosk_package": "com.example.k", "kiosk_activity": "\x00"},
    {"name": "ok", "item": ["settings"], "setting_time_zone": "Europe/\x00"},
    {"name": "ok", "item": ["apps"], "apps_required": ["\x00"], "apps_blocked": "\x00"},
    {"name": "ok", "item": ["wifi"], "wifi": ["\x00"]},
    {"name": "ok", "item": ["shell_allowlist"], "shell_lines": "getprop \x00"},
    {"name": "ok", "item": ["system_update"], "update_type": "windowed", "window_start": "\x00", "freeze_start": ["\x00"], "freeze_end": ["1"]},
    {"name": "ok", "item": ["system_update"], "update_type": "sometimes"},
])
def test_a_bad_editor_field_is_a_422(console_for, admin_user, fields):
    response = console_for(admin_user).post("/commands/policies/new/", fields, **HX)
    assert response.status_code == 422 and 'class="error' in response.content.decode() and not Policy.objects.exists()


@pytest.mark.parametrize("data", [
    {"target_kind": "group", "group": "a\x00b", "preview": "1"},
    {"target_kind": "tags", "tags": ["a\x00"]},
    {"target_kind": "device_ids", "device_ids": "x\x00"},
    {"target_kind": "filter", "filter_q": "x\x00", "preview": "1"},
])
def test_a_bad_target_with_a_nul_is_a_422(console_for, admin_user, policy, data):
    make_device(group="lobby")
    response = console_for(admin_user).post(f"/commands/policies/{policy.pk}/assign/", data, **HX)
    assert response.status_code == 422 and not PolicyAssignment.objects.exists()
    assert console_for(admin_user).post(f"/commands/policies/{policy.pk}/unassign/", {"kind": "group", "group": "a\x00"}).status_code == 400
