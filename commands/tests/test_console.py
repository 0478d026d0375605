"""The console pages of commands: who sees and does what, the composer's dry run and issue,
presets, the allowlist, Wi-Fi, and the live partials."""

import pytest

from commands import live, services
from commands.models import Command, Preset, ShellAllowRule, WifiConfig
from commands.tests.conftest import make_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

PAGES = ["/commands/", "/commands/presets/", "/commands/allowlist/", "/commands/wifi/"]


@pytest.fixture
def fleet(db):
    return [make_device(group="lobby") for _ in range(3)]


def test_every_page_sends_anonymous_users_to_the_login_page(client, fleet):
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    for path in PAGES + ["/commands/new/", f"/commands/{command.pk}/"]:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login" in response["Location"], path
    for path in ["/commands/new/preview/", "/commands/new/issue/", f"/commands/{command.pk}/cancel/"]:
        assert client.post(path).status_code == 302


def test_viewers_read_the_pages_but_cannot_compose_or_change_anything(console_for, viewer_user, fleet):
    client = console_for(viewer_user)
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    for path in PAGES + [f"/commands/{command.pk}/"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/commands/new/").status_code == 403
    assert client.post("/commands/new/issue/", {"type": "ping", "target_kind": "all"}).status_code == 403
    assert client.post(f"/commands/{command.pk}/cancel/").status_code == 403
    assert client.post("/commands/presets/", {"name": "x", "type": "ping", "params": "{}"}).status_code == 403
    assert client.post("/commands/wifi/", {"name": "x", "ssid": "x", "security": "open"}).status_code == 403
    assert Command.objects.count() == 1


def test_the_commands_nav_link_points_at_the_history(console_for, viewer_user):
    html = console_for(viewer_user).get("/").content.decode()
    assert 'href="/commands/"' in html


def test_the_composer_previews_a_dry_run_and_then_issues(console_for, operator_user, fleet):
    client = console_for(operator_user)
    form = {"source": "type", "type": "launch_app", "package": "com.example.kiosk", "target_kind": "group", "group": "lobby",
            "expires_in_min": "60"}
    preview = client.post("/commands/new/preview/", form, HTTP_HX_REQUEST="true")
    html = preview.content.decode()
    assert preview.status_code == 200 and 'id="dry-run-count">3<' in html and "Confirm: send to 3 devices" in html
    assert Command.objects.count() == 0
    issued = client.post("/commands/new/issue/", form, HTTP_HX_REQUEST="true")
    command = Command.objects.get()
    assert issued["HX-Redirect"] == f"/commands/{command.pk}/"
    assert (command.type, command.params, command.target_count) == ("launch_app", {"package": "com.example.kiosk"}, 3)
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert "ws-connect=\"/ws/console/?topics=command." + str(command.pk) in page
    assert page.count('id="delivery-') == 3


def test_the_composer_shows_why_a_shell_command_is_refused(console_for, operator_user, fleet):
    client = console_for(operator_user)
    response = client.post("/commands/new/preview/", {"source": "type", "type": "shell", "argv": "rm -rf /", "target_kind": "all"})
    assert "shell allowlist" in response.content.decode() and "Confirm" not in response.content.decode()


def test_the_composer_issues_a_preset_and_records_its_version(console_for, operator_user, fleet):
    client = console_for(operator_user)
    preset = Preset.objects.get(name="Reboot")
    client.post("/commands/new/issue/", {"source": "preset", "preset": str(preset.pk), "target_kind": "all"})
    command = Command.objects.get()
    assert (command.type, command.preset_id, command.preset_version) == ("reboot", preset.pk, 1)


def test_saving_a_preset_under_its_name_makes_a_new_version(console_for, operator_user):
    client = console_for(operator_user)
    client.post("/commands/presets/", {"name": "Diag", "type": "shell", "params": '{"argv": ["getprop"]}'})
    client.post("/commands/presets/", {"name": "Diag", "type": "shell", "params": '{"argv": ["df", "-h"]}'})
    versions = list(Preset.objects.filter(name="Diag").order_by("version").values_list("version", "is_latest", "params"))
    assert versions == [(1, False, {"argv": ["getprop"]}), (2, True, {"argv": ["df", "-h"]})]
    refused = client.post("/commands/presets/", {"name": "Bad", "type": "shell", "params": '{"argv": ["reboot"]}'})
    assert refused.status_code == 422 and "shell allowlist" in refused.content.decode()


def test_only_admins_edit_the_allowlist_and_every_change_is_audited(console_for, operator_user, admin_user):
    assert console_for(operator_user).post("/commands/allowlist/", {"argv_prefix": "ls"}).status_code == 403
    client = console_for(admin_user)
    client.post("/commands/allowlist/", {"argv_prefix": "cmd\nstatusbar\ncollapse", "description": "Collapse", "enabled": "on"})
    rule = ShellAllowRule.objects.get(argv_prefix=["cmd", "statusbar", "collapse"])
    client.post(f"/commands/allowlist/{rule.pk}/toggle/")
    client.post(f"/commands/allowlist/{rule.pk}/delete/")
    actions = list(AuditEvent.objects.filter(target_id=str(rule.pk)).order_by("at").values_list("action", flat=True))
    assert actions == ["shell_allowlist.create", "shell_allowlist.update", "shell_allowlist.delete"]
    refused = client.post("/commands/allowlist/", {"argv_prefix": "sh"})
    assert refused.status_code == 422


def test_wifi_passwords_are_encrypted_and_shown_as_stars_everywhere(console_for, operator_user, operator_api, fleet, caplog):
    client = console_for(operator_user)
    client.post("/commands/wifi/", {"name": "Lobby", "ssid": "Lobby-5G", "security": "wpa2", "password": "hunter2-secret", "group": "lobby"})
    config = WifiConfig.objects.get()
    assert "hunter2-secret" not in config.password_encrypted and config.decrypted_password() == "hunter2-secret"
    response = client.post(f"/commands/wifi/{config.pk}/push/")
    command = Command.objects.get()
    assert response["HX-Redirect"] == f"/commands/{command.pk}/"
    assert command.is_secret and "password" not in command.params and "hunter2-secret" not in command.secret_params
    assert command.target_count == 3
    seen = [
        client.get("/commands/wifi/").content.decode(),
        client.get(f"/commands/{command.pk}/").content.decode(),
        operator_api.get(f"/api/v1/commands/{command.pk}").content.decode(),
        operator_api.get("/api/v1/commands").content.decode(),
        operator_api.get("/api/v1/wifi-configs").content.decode(),
        str(list(AuditEvent.objects.values_list("data", flat=True))),
        caplog.text,
    ]
    for text in seen:
        assert "hunter2-secret" not in text
    assert "***" in seen[1] and '"password":"***"' in seen[2].replace(" ", "")
    assert '"password":"***"' in seen[4].replace(" ", "")


def test_the_live_partials_are_the_pages_own_counters_and_rows(fleet):
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    fleet[0].report(str(command.pk), "succeeded", exit_code=0)
    from commands.models import Delivery

    pk = Delivery.objects.get(command=command, device=fleet[0].device).pk
    counters, rows = live.render_updates(str(command.pk), {pk})
    assert 'id="command-counters"' in counters and 'hx-swap-oob="true"' in counters
    assert 'data-counter="succeeded">1<' in counters and 'data-counter="pending">2<' in counters
    assert rows.startswith("<tr") and f'id="delivery-{pk}"' in rows and "state-succeeded" in rows
