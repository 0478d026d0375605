"""What the console's forms answer to a bad value, without a browser (tests/test_forms_browser.py
shows it on screen): a 422 holding the form again (the partial, for htmx) with the message beside
the field it is about, once, in the user's terms and units; nothing changes. And the answers that
are the same values written right."""

import re

import pytest

from commands.models import Preset, ShellAllowRule, WifiConfig
from devices.models import DeviceGroup
from mdm.models import AuditEvent, FleetSettings

HTMX = {"HTTP_HX_REQUEST": "true"}


def beside(html: str, name: str) -> list[str]:
    """The error messages in the <label> (or fieldset) that holds the input named `name`."""
    for box in re.findall(r"<(?:label|fieldset)\b.*?</(?:label|fieldset)>", html, re.S):
        if re.search(rf'name="{name}"', box):
            return re.findall(r'<small class="error" role="alert">(.*?)</small>', box, re.S)
    return []


# --- the settings drawer: the expiry in minutes, as in the composer ----------------------------
SETTINGS = {"heartbeat_interval_s": "30", "offline_after_s": "", "history_retention_days": "30",
            "default_command_expiry_min": "60", "reenroll_policy": "approval", "audit_retention_days": "365"}


def test_the_settings_drawer_shows_the_command_expiry_in_minutes_and_saves_seconds(console_for, admin_user):
    client = console_for(admin_user)
    html = client.get("/settings/").content.decode()
    assert 'name="default_command_expiry_min"' in html and 'value="60"' in html and "Default command expiry (minutes)" in html
    assert client.post("/settings/", {**SETTINGS, "default_command_expiry_min": "90"}, **HTMX).status_code == 200
    FleetSettings.forget_cached()
    assert FleetSettings.current().default_command_expiry_s == 5400
    change = AuditEvent.objects.get(action="fleet_settings.update").data
    assert change == {"default_command_expiry_s": {"from": 3600, "to": 5400}}


def test_saving_another_setting_keeps_an_expiry_that_is_not_whole_minutes(console_for, admin_user):
    FleetSettings.objects.update_or_create(pk=1, defaults={"default_command_expiry_s": 90})  # set through the admin or a script
    FleetSettings.forget_cached()
    client = console_for(admin_user)
    assert 'value="2"' in client.get("/settings/").content.decode()  # 90 s shown as 2 minutes
    client.post("/settings/", {**SETTINGS, "default_command_expiry_min": "2", "heartbeat_interval_s": "20"}, **HTMX)
    FleetSettings.forget_cached()
    assert (FleetSettings.current().default_command_expiry_s, FleetSettings.current().heartbeat_interval_s) == (90, 20)


@pytest.mark.parametrize("name,value,message", [
    ("default_command_expiry_min", "0", "Between 1 minute and 30 days (43,200 minutes)."),
    ("default_command_expiry_min", "soon", "Between 1 minute and 30 days (43,200 minutes)."),
    ("heartbeat_interval_s", "-30", "Between 10 and 3600 seconds."),
    ("offline_after_s", "99999999", "Between 10 seconds and 7 days (604,800 seconds)."),
    ("history_retention_days", "0", "Between 1 and 3650 days."),
])
def test_a_setting_out_of_range_is_said_in_its_unit_beside_it(console_for, admin_user, name, value, message):
    response = console_for(admin_user).post("/settings/", {**SETTINGS, name: value}, **HTMX)
    assert response.status_code == 422
    assert beside(response.content.decode(), name) == [message]
    assert not AuditEvent.objects.exists()


# --- enrollment ----------------------------------------------------------------------------------
def test_a_key_lifetime_out_of_range_is_said_in_days(console_for, admin_user):
    response = console_for(admin_user).post("/enrollment/keys/", {"name": "Shop", "expires_in_days": "9999"}, **HTMX)
    assert response.status_code == 422
    assert beside(response.content.decode(), "expires_in_days") == ["A whole number from 1 to 3,650 days."]


# --- devices -------------------------------------------------------------------------------------
@pytest.mark.parametrize("tags,message", [
    ("lobby, !!!", "A tag needs a letter or a digit: “!!!”."),
    (", ".join(f"t{i}" for i in range(51)), "At most 50 tags (this has 51)."),
    ("x" * 70, "A tag has at most 64 characters: “xxxxxxxxxxxxxxxxxxxx…”."),
])
def test_a_tag_that_cannot_be_kept_as_typed_is_refused_not_dropped(console_for, operator_user, device_in_group_a, tags, message):
    response = console_for(operator_user).post(f"/devices/{device_in_group_a.pk}/", {"alias": "x", "tags": tags}, **HTMX)
    assert response.status_code == 422 and beside(response.content.decode(), "tags") == [message]
    device_in_group_a.refresh_from_db()
    assert device_in_group_a.alias == "scanner-a1"


def test_a_taken_group_name_is_said_in_place_and_a_new_one_goes_back_to_the_list(console_for, operator_user, group_a):
    client = console_for(operator_user)
    taken = client.post("/devices/groups/", {"name": "warehouse-a"}, **HTMX)
    assert taken.status_code == 422 and taken.content.decode().lstrip().startswith('<form id="group-form"')
    assert beside(taken.content.decode(), "name") == ["A group with this name exists."]
    made = client.post("/devices/groups/", {"name": "docks"}, **HTMX)
    assert made.status_code == 204 and made["HX-Redirect"] == "/devices/groups/"
    assert DeviceGroup.objects.filter(name="docks").exists()


def test_a_battery_filter_past_100_percent_is_refused(viewer_api, db):
    response = viewer_api.get("/api/v1/devices", {"battery_below": "500"})
    assert response.status_code == 400 and response.json()["fields"]["battery_below"] == ["A percentage from 0 to 100."]
    assert viewer_api.get("/api/v1/devices", {"battery_below": "100"}).status_code == 200


# --- accounts ------------------------------------------------------------------------------------
def test_an_api_key_form_with_errors_swaps_in_place_with_the_list(console_for, admin_user):
    response = console_for(admin_user).post("/accounts/api-keys/", {"name": "CI", "scopes": ["apk:upload"], "expires_in_days": "0"},
                                            **HTMX)
    html = response.content.decode()
    assert response.status_code == 422  # was a 400, which htmx does not swap: nothing on screen changed
    assert html.lstrip().startswith('<div id="api-keys">') and "No API keys yet." in html
    assert beside(html, "expires_in_days") == ["A whole number from 1 to 3,650 days."]


def test_profile_and_password_forms_answer_in_place(console_for, viewer_user):
    client = console_for(viewer_user)
    bad = client.post("/accounts/profile/", {"email": "not-an-address"}, **HTMX)
    assert bad.status_code == 422 and bad.content.decode().lstrip().startswith('<form id="profile-form"')
    assert beside(bad.content.decode(), "email") == ["Enter a valid email address."]
    good = client.post("/accounts/profile/", {"first_name": "Vera", "email": "vera@new.test"}, **HTMX)
    assert good.status_code == 204 and good["HX-Redirect"] == "/accounts/profile/"
    wrong = client.post("/accounts/password/", {"old_password": "nope", "new_password1": "a-Long-new-passphrase-42",
                                                 "new_password2": "a-Long-new-passphrase-42"}, **HTMX)
    assert wrong.status_code == 422 and "Your old password was entered incorrectly" in beside(wrong.content.decode(), "old_password")[0]
    # Without htmx (no script): the page again, with the same message.
    assert client.post("/accounts/profile/", {"email": "not-an-address"}).status_code == 422


# --- commands: Wi-Fi, the allowlist, presets -----------------------------------------------------
def test_a_wifi_error_stands_once_beside_its_field(console_for, operator_user):
    response = console_for(operator_user).post("/commands/wifi/", {"name": "Lobby", "ssid": "Lobby-5G", "security": "wpa2",
                                                                    "password": "short"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 422 and html.lstrip().startswith('<form id="wifi-form"')
    assert beside(html, "password") == ["WPA passwords have 8-63 characters."]
    assert html.count("WPA passwords") == 1 and "password:" not in html  # it was shown twice, after its field code
    assert not WifiConfig.objects.exists()


def test_a_wifi_config_saved_goes_back_to_the_list(console_for, operator_user):
    response = console_for(operator_user).post("/commands/wifi/", {"name": "Lobby", "ssid": "Lobby-5G", "security": "open"}, **HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == "/commands/wifi/"
    assert "Saved the Wi-Fi configuration “Lobby”." in console_for(operator_user).get("/commands/wifi/").content.decode()


def test_pushing_a_wifi_config_to_an_empty_group_says_so_beside_the_button(console_for, operator_user, admin_user):
    from commands.services import create_wifi_config

    config = create_wifi_config(actor=admin_user, name="Shelf", ssid="Shelf", security="open",
                                group=DeviceGroup.objects.create(name="empty-shelf"))
    response = console_for(operator_user).post(f"/commands/wifi/{config.pk}/push/", **HTMX)
    assert response.status_code == 422  # was a 400 text htmx did not show
    assert '<small class="error" role="alert">No device in group empty-shelf to send it to.</small>' in response.content.decode()


def test_an_interpreter_prefix_is_refused_in_words_not_a_repr(console_for, admin_user):
    before = ShellAllowRule.objects.count()
    response = console_for(admin_user).post("/commands/allowlist/", {"argv_prefix": "sh"}, **HTMX)
    assert response.status_code == 422
    assert beside(response.content.decode(), "argv_prefix") == ["“sh” would allow any command: allow the commands themselves."]
    assert ShellAllowRule.objects.count() == before


def test_a_preset_whose_params_a_check_refuses_is_said_beside_the_params(console_for, operator_user):
    client = console_for(operator_user)
    bad = client.post("/commands/presets/", {"name": "Launch", "type": "launch_app", "params": '{"package": "nope"}'}, **HTMX)
    assert bad.status_code == 422
    assert beside(bad.content.decode(), "params") == ["A package name like com.example.app is required."]
    assert not Preset.objects.filter(name="Launch").exists()


# --- APKs: the rollback's box --------------------------------------------------------------------
@pytest.fixture
def rollout(admin_user, tmp_path, settings):
    import shutil
    from pathlib import Path

    from apks.services import deploy, releases
    from devices.models import InstalledApp
    from devices.tests.factories import DeviceFactory

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}
    uploader = releases.Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)
    made = []
    for name in ("app-v10", "app-v11"):
        copy = tmp_path / f"{name}.apk"
        shutil.copyfile(Path(__file__).parent / "fixtures" / "apks" / f"{name}.apk", copy)
        made.append(releases.create_release(path=copy, uploader=uploader))
    InstalledApp.objects.create(device=DeviceFactory(), package=made[1].package, version_code=10)
    return deploy.deploy_release(actor=admin_user, release=made[1], target={"all": True}, rollout={"waves": [100]}).rollout


def test_a_rollback_without_its_box_ticked_asks_for_it_beside_the_box(console_for, admin_user, rollout):
    response = console_for(admin_user).post(f"/apks/rollouts/{rollout.pk}/rollback/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    assert beside(html, "confirm_data_loss") == ["Tick the box first: rolling back uninstalls the app, so its data on those "
                                                 "devices is lost."]
    assert "confirm_data_loss:" not in html  # the API's words
    rollout.refresh_from_db()
    assert rollout.state != "rolled_back"


# --- alert rules: every bound as people write it ------------------------------------------------
@pytest.mark.parametrize("kind,name,value,message", [
    ("battery_low", "param_percent", "500", "Battery under (%): a whole number from 1 to 100."),
    ("server_push_failures", "param_count", "2000000", "Failed pushes (count): a whole number from 1 to 1,000,000."),
    ("server_queue_depth", "param_count", "0", "Queued tasks over: a whole number from 1 to 10,000,000."),
])
def test_an_alert_threshold_out_of_range_is_refused_with_its_range(console_for, admin_user, kind, name, value, message):
    from mdm.alerts.forms import RuleForm

    form = RuleForm(kind=kind)
    data = {**{k: v for k, v in form.initial.items() if v is not None}, name: value, "notify_admins": "on", "enabled": "on"}
    response = console_for(admin_user).post(f"/alerts/rules/new/?kind={kind}", data, **HTMX)
    assert response.status_code == 422
    assert beside(response.content.decode(), name) == [message]  # 1e+06, as :g wrote it, is no number for people
