"""Admin API for presets, the shell allowlist and Wi-Fi configs, with outsider tests for
every endpoint of this app."""

import uuid

import pytest

from commands.models import Command, Preset, ShellAllowRule, WifiConfig
from commands.tests.conftest import make_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_presets_are_listed_created_and_versioned(operator_api, viewer_api):
    listed = viewer_api.get("/api/v1/command-presets").json()["results"]
    assert {"Reboot", "Launch kiosk app", "Device properties", "Storage usage"} <= {p["name"] for p in listed}
    # The stock presets that cannot work as the agent's user are archived (commands migration 0006).
    assert not {"OS update: check now", "Keep screen on while charging", "Battery report"} & {p["name"] for p in listed}
    created = operator_api.post("/api/v1/command-presets", {"name": "Battery", "type": "shell", "params": {"argv": ["uptime"]}}, format="json")
    assert created.status_code == 201 and created.json()["version"] == 1
    updated = operator_api.patch(f"/api/v1/command-presets/{created.json()['id']}", {"params": {"argv": ["getprop"]}}, format="json")
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert Preset.objects.filter(name="Battery").count() == 2
    refused = operator_api.post("/api/v1/command-presets", {"name": "Nope", "type": "shell", "params": {"argv": ["reboot"]}}, format="json")
    assert refused.status_code == 400 and "shell allowlist" in refused.json()["detail"]


def test_a_command_from_a_preset_records_name_and_version(operator_api):
    make_device()
    response = operator_api.post("/api/v1/commands", {"preset": "Reboot", "target": {"all": True}}, format="json")
    assert response.status_code == 201
    command = Command.objects.get(pk=response.json()["id"])
    assert (command.type, command.preset.name, command.preset_version) == ("reboot", "Reboot", 1)
    assert operator_api.post("/api/v1/commands", {"preset": "Nope", "target": {"all": True}}, format="json").status_code == 400


def test_the_allowlist_is_read_by_all_and_edited_by_admins_with_audit(admin_api, operator_api, viewer_api):
    assert viewer_api.get("/api/v1/shell-allowlist").status_code == 200
    body = {"argv_prefix": ["cmd", "statusbar", "collapse"], "description": "Collapse"}
    assert operator_api.post("/api/v1/shell-allowlist", body, format="json").status_code == 403
    created = admin_api.post("/api/v1/shell-allowlist", body, format="json")
    assert created.status_code == 201
    rule_id = created.json()["id"]
    assert admin_api.patch(f"/api/v1/shell-allowlist/{rule_id}", {"enabled": False}, format="json").json()["enabled"] is False
    assert admin_api.delete(f"/api/v1/shell-allowlist/{rule_id}").status_code == 204
    assert AuditEvent.objects.filter(target_id=rule_id).count() == 3
    for bad in ({"argv_prefix": "pm list"}, {"argv_prefix": []}, {"argv_prefix": ["sh", "-c"]}):
        assert admin_api.post("/api/v1/shell-allowlist", bad, format="json").status_code == 400


def test_an_allowlist_change_takes_effect_for_the_next_command(admin_api, operator_api):
    make_device()
    body = {"type": "shell", "params": {"argv": ["cmd", "statusbar", "collapse"]}, "target": {"all": True}}
    assert operator_api.post("/api/v1/commands", body, format="json").status_code == 400
    admin_api.post("/api/v1/shell-allowlist", {"argv_prefix": ["cmd", "statusbar"]}, format="json")
    assert operator_api.post("/api/v1/commands", body, format="json").status_code == 201
    ShellAllowRule.objects.filter(argv_prefix=["getprop"]).update(enabled=False)
    body["params"] = {"argv": ["getprop"]}
    assert operator_api.post("/api/v1/commands", body, format="json").status_code == 400


def test_wifi_configs_hide_the_password_and_push_a_secret_pull_only_command(operator_api, viewer_api):
    device = make_device(group="lobby", fcm_token="tok")
    created = operator_api.post(
        "/api/v1/wifi-configs",
        {"name": "Lobby", "ssid": "Lobby-5G", "security": "wpa2", "password": "correct-horse", "group": "lobby"},
        format="json",
    )
    assert created.status_code == 201 and created.json()["password"] == "***"
    config_id = created.json()["id"]
    assert "correct-horse" not in viewer_api.get(f"/api/v1/wifi-configs/{config_id}").content.decode()
    kept = operator_api.patch(f"/api/v1/wifi-configs/{config_id}", {"hidden": True}, format="json")
    assert kept.status_code == 200 and WifiConfig.objects.get().decrypted_password() == "correct-horse"
    assert viewer_api.post(f"/api/v1/wifi-configs/{config_id}/push").status_code == 403
    pushed = operator_api.post(f"/api/v1/wifi-configs/{config_id}/push")
    assert pushed.status_code == 201 and pushed.json()["target_count"] == 1
    command = Command.objects.get()
    assert command.is_secret and command.masked_params()["password"] == "***"
    assert command.deliveries.get().push_status == "skipped"  # FCM is off here; see test_dispatch for the sync tickle
    import json
    import time

    envelope = device.pull()["commands"][0]
    params = device.verify(envelope, server_now=int(time.time()))["params"]
    assert params == {"ssid": "Lobby-5G", "security": "wpa2", "password": "correct-horse", "hidden": True}
    assert json.loads(envelope["payload"])["type"] == "wifi_configure"
    bad = operator_api.post("/api/v1/wifi-configs", {"name": "X", "ssid": "X", "security": "wpa2", "password": "short"}, format="json")
    assert bad.status_code == 400


ENDPOINTS = [
    ("get", "/api/v1/commands"),
    ("post", "/api/v1/commands"),
    ("get", "/api/v1/commands/{command}"),
    ("post", "/api/v1/commands/{command}/cancel"),
    ("get", "/api/v1/command-presets"),
    ("post", "/api/v1/command-presets"),
    ("get", "/api/v1/command-presets/{preset}"),
    ("patch", "/api/v1/command-presets/{preset}"),
    ("delete", "/api/v1/command-presets/{preset}"),
    ("get", "/api/v1/shell-allowlist"),
    ("post", "/api/v1/shell-allowlist"),
    ("patch", "/api/v1/shell-allowlist/{rule}"),
    ("delete", "/api/v1/shell-allowlist/{rule}"),
    ("get", "/api/v1/wifi-configs"),
    ("post", "/api/v1/wifi-configs"),
    ("get", "/api/v1/wifi-configs/{wifi}"),
    ("patch", "/api/v1/wifi-configs/{wifi}"),
    ("delete", "/api/v1/wifi-configs/{wifi}"),
    ("post", "/api/v1/wifi-configs/{wifi}/push"),
]
WRITES = {"post", "patch", "delete"}


@pytest.fixture
def objects(db):
    make_device()
    from commands import services

    return {
        "command": services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command.pk,
        "preset": Preset.objects.get(name="Reboot").pk,
        "rule": ShellAllowRule.objects.get(argv_prefix=["getprop"]).pk,
        "wifi": services.create_wifi_config(actor=None, name="W", ssid="W", security="open").pk,
    }


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_anonymous_callers_are_refused_401_on_every_endpoint(anon_api, objects, method, path):
    response = getattr(anon_api, method)(path.format(**objects), {}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method,path", [e for e in ENDPOINTS if e[0] in WRITES])
def test_viewers_are_refused_403_on_every_write(viewer_api, objects, method, path):
    response = getattr(viewer_api, method)(path.format(**objects), {}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("method,path", [e for e in ENDPOINTS if e[0] in WRITES and "shell-allowlist" in e[1]])
def test_operators_are_refused_403_on_allowlist_writes(operator_api, objects, method, path):
    assert getattr(operator_api, method)(path.format(**objects), {}, format="json").status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/commands/{id}", "/api/v1/command-presets/{id}", "/api/v1/wifi-configs/{id}"])
def test_unknown_ids_are_404(viewer_api, path):
    assert viewer_api.get(path.format(id=uuid.uuid4())).status_code == 404
    assert viewer_api.get(path.format(id="not-a-uuid")).status_code == 404
