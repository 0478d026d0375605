""""Retry failed": after a dry-run count, the same command (type, params, secrets, preset,
lifetime) issued again through the issue service, as a new command with new deliveries and
signed envelopes, to the devices that failed, refused or never got it; operators and admins
only, audited, once per dry run."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from commands import services
from commands.models import Command, Delivery, Preset, ShellAllowRule
from commands.tests.conftest import make_device
from devices import services as device_services
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def outcome(db, monkeypatch):
    """A ping to 6 devices: 2 succeeded, 1 failed, 1 rejected, 1 expired, and 1 failed on a
    device deleted since."""
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    fleet = [make_device(hardware_id=f"RT-{i}") for i in range(6)]
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}, expires_in_s=600).command
    pk = str(command.pk)
    fleet[0].report(pk, "succeeded", exit_code=0)
    fleet[1].report(pk, "succeeded", exit_code=0)
    fleet[2].report(pk, "failed", exit_code=1, error="boom")
    fleet[3].report(pk, "rejected", reason="bad_params")
    fleet[5].report(pk, "failed", exit_code=1)
    services.expire_deliveries(now=timezone.now() + timedelta(minutes=15))  # fleet[4]
    from accounts.tests.factories import UserFactory

    device_services.delete_devices(actor=UserFactory(role="admin"), device_ids=[fleet[5].device.pk])
    return command, fleet


def dry_run(client, command) -> tuple[str, str]:
    response = client.get(f"/commands/{command.pk}/retry/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    return html, re.search(r'name="dry_run_key" value="([0-9a-f-]{36})"', html).group(1)


def test_the_dry_run_counts_the_failed_and_expired_devices_and_skips_deleted_ones(console_for, operator_user, outcome):
    command, fleet = outcome
    html, _ = dry_run(console_for(operator_user), command)
    assert 'id="retry-count">3<' in html and "(2 failed, 1 expired)" in html
    assert "1 deleted device skipped" in html and "expires after 10 minutes" in html
    assert "Confirm: send to 3 devices" in html
    assert Command.objects.count() == 1  # a dry run issues nothing


def test_confirming_issues_the_same_command_to_those_devices_as_a_new_signed_command(console_for, operator_user, outcome):
    command, fleet = outcome
    client = console_for(operator_user)
    _, key = dry_run(client, command)
    response = client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key}, HTTP_HX_REQUEST="true")
    retry = Command.objects.exclude(pk=command.pk).get()
    assert response.status_code == 204 and response["HX-Redirect"] == f"/commands/{retry.pk}/"
    assert (retry.type, retry.params, retry.retry_of_id, retry.target_count) == ("ping", {}, command.pk, 3)
    assert retry.expires_at - retry.created_at == timedelta(seconds=600)
    assert set(Delivery.objects.filter(command=retry).values_list("device_id", flat=True)) == {
        fleet[2].device.pk, fleet[3].device.pk, fleet[4].device.pk}
    # Each device pulls the new command, signed for it, with a new seq.
    for sim in fleet[2:5]:
        payloads = [sim.verify(e, server_now=int(time.time())) for e in sim.pull()["commands"]]
        assert [(p["id"], p["type"], p["device_id"]) for p in payloads] == [(str(retry.pk), "ping", sim.id)]
        old, new = (Delivery.objects.get(command=c, device=sim.device).seq for c in (command, retry))
        assert new > old
    audit = AuditEvent.objects.get(action="command.retry")
    assert (audit.target_id, audit.data) == (str(command.pk), {"retry": str(retry.pk), "devices": 3})
    assert AuditEvent.objects.get(action="command.issue", target_id=str(retry.pk)).data["retry_of"] == str(command.pk)
    # The two pages point at each other.
    assert f'href="/commands/{retry.pk}/" class="retried-as"' in client.get(f"/commands/{command.pk}/").content.decode()
    assert f'href="/commands/{command.pk}/" id="retry-of"' in client.get(f"/commands/{retry.pk}/").content.decode()


def test_a_double_click_on_confirm_issues_once_and_a_new_dry_run_issues_again(console_for, operator_user, outcome):
    command, _ = outcome
    client = console_for(operator_user)
    _, key = dry_run(client, command)
    first = client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key})
    second = client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key})
    assert first["HX-Redirect"] == second["HX-Redirect"] and Command.objects.count() == 2
    assert AuditEvent.objects.filter(action="command.retry").count() == 1
    _, again = dry_run(client, command)
    client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": again})
    assert Command.objects.filter(retry_of=command).count() == 2


def test_a_secret_command_is_retried_with_its_secret_and_never_shows_it(console_for, admin_user):
    sim = make_device()
    params = {"ssid": "Lobby", "security": "wpa2", "password": "hunter2-secret", "hidden": False}
    command = services.issue_command(actor=None, type="wifi_configure", params=params, target={"all": True}).command
    sim.report(str(command.pk), "failed", exit_code=1, error="no such network")
    client = console_for(admin_user)  # admins may retry too
    html, key = dry_run(client, command)
    client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key})
    retry = Command.objects.get(retry_of=command)
    assert retry.is_secret and retry.full_params() == command.full_params() and "password" not in retry.params
    page = client.get(f"/commands/{retry.pk}/").content.decode()
    assert "hunter2-secret" not in page + html
    assert "hunter2-secret" not in str(list(AuditEvent.objects.values_list("data", flat=True)))


def test_a_preset_command_is_retried_from_the_same_preset_version(console_for, operator_user):
    sim = make_device()
    preset = Preset.objects.get(name="Reboot")
    command = services.issue_command(actor=None, preset=preset, target={"all": True}).command
    sim.report(str(command.pk), "failed", exit_code=1)
    client = console_for(operator_user)
    _, key = dry_run(client, command)
    client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key})
    retry = Command.objects.get(retry_of=command)
    assert (retry.type, retry.preset_id, retry.preset_version) == ("reboot", preset.pk, 1)


def test_confirming_without_a_dry_run_is_refused_in_words(console_for, operator_user, outcome):
    command, _ = outcome
    response = console_for(operator_user).post(f"/commands/{command.pk}/retry/", {"dry_run_key": "not-a-key"})
    html = response.content.decode()
    assert response.status_code == 422 and "Count the devices to retry first (dry run), then confirm." in html
    assert "retry:" not in html and Command.objects.count() == 1


def test_a_command_with_nothing_to_retry_says_so(console_for, operator_user):
    sim = make_device()
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    sim.report(str(command.pk), "succeeded", exit_code=0)
    client = console_for(operator_user)
    html = client.get(f"/commands/{command.pk}/retry/").content.decode()
    assert 'id="retry-count">0<' in html and "Confirm" not in html and "No device is left to retry" in html
    response = client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": "6f1c3f7e-6a4b-4c1e-9d55-0c1d7b7a3c11"})
    assert response.status_code == 422 and "No device is left to retry" in response.content.decode()
    assert Command.objects.count() == 1


def test_a_retry_the_allowlist_now_refuses_says_why_in_the_consoles_terms(console_for, operator_user):
    sim = make_device()
    rule = ShellAllowRule.objects.create(argv_prefix=["getprop"], description="test")
    command = services.issue_command(actor=None, type="shell", params={"argv": ["getprop", "ro.serialno"]},
                                     target={"all": True}).command
    sim.report(str(command.pk), "failed", exit_code=1)
    rule.delete()
    ShellAllowRule.objects.all().update(enabled=False)
    client = console_for(operator_user)
    _, key = dry_run(client, command)
    response = client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key})
    html = response.content.decode()
    assert response.status_code == 422
    assert "Command line: Refused by the shell allowlist: getprop ro.serialno does not start with an allowed prefix" in html
    assert "argv:" not in html and "[&#x27;" not in html and "['" not in html


def test_anonymous_users_are_sent_to_sign_in(client, outcome):
    command, _ = outcome
    for response in (client.get(f"/commands/{command.pk}/retry/"), client.post(f"/commands/{command.pk}/retry/")):
        assert response.status_code == 302 and "/accounts/login" in response["Location"]
    assert Command.objects.count() == 1


def test_viewers_can_neither_count_nor_retry_and_see_no_retry_button(console_for, viewer_user, outcome):
    command, _ = outcome
    client = console_for(viewer_user)
    assert client.get(f"/commands/{command.pk}/retry/").status_code == 403
    key = "6f1c3f7e-6a4b-4c1e-9d55-0c1d7b7a3c11"
    assert client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key}).status_code == 403
    assert 'id="retry-failed"' not in client.get(f"/commands/{command.pk}/").content.decode()
    assert Command.objects.count() == 1 and not AuditEvent.objects.filter(action="command.retry").exists()


def test_a_retry_reaches_only_the_commands_own_failed_devices(console_for, operator_user, outcome):
    """Nothing in the request chooses the devices: another device named in it is ignored, and an
    unknown command is a 404."""
    command, fleet = outcome
    outsider = make_device(hardware_id="NOT-TARGETED")
    client = console_for(operator_user)
    _, key = dry_run(client, command)
    client.post(f"/commands/{command.pk}/retry/", {"dry_run_key": key, "device_ids": outsider.id, "target_kind": "all"})
    retry = Command.objects.get(retry_of=command)
    assert not Delivery.objects.filter(command=retry, device=outsider.device).exists() and retry.target_count == 3
    unknown = "/commands/00000000-0000-0000-0000-000000000000/retry/"
    assert client.get(unknown).status_code == 404 and client.post(unknown, {"dry_run_key": key}).status_code == 404
