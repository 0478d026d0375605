"""A device's page, its commands part (commands.device_views): the commands it received with its
own state of each, paged at a constant query count; quick actions (reboot, lock, relaunch the
kiosk app of its policy, a preset) issued as the composer issues them; who may do what."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commands import services
from commands.models import Command, CommandType, Delivery
from commands.policies import services as policies
from commands.tests.conftest import make_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


def _url(sim, quick=False) -> str:
    return f"/commands/device/{sim.id}/" + ("quick/" if quick else "")


def _issue(*devices, type="ping", **params):
    return services.issue_command(actor=None, type=type, params=params, target={"device_ids": [d.id for d in devices]}).command


def test_the_device_page_loads_its_commands_section(console_for, viewer_user):
    sim = make_device()
    html = console_for(viewer_user).get(f"/devices/{sim.id}/").content.decode()
    assert f'hx-get="/commands/device/{sim.id}/" hx-trigger="load"' in html


def test_it_lists_the_commands_the_device_received_with_its_own_state(console_for, viewer_user):
    here, other = make_device(), make_device()
    both = _issue(here, other, type="launch_app", package="com.example.kiosk")
    mine = _issue(here)
    _issue(other, type="reboot")
    Delivery.objects.filter(command=both, device=here.device).update(state="failed", error="Activity not found", exit_code=1)
    Delivery.objects.filter(command=both, device=other.device).update(state="succeeded")
    html = console_for(viewer_user).get(_url(here)).content.decode()
    assert html.lstrip().startswith('<section id="device-commands"')
    assert "2 received" in html and "Reboot" not in html
    assert html.index(f"/commands/{mine.pk}/") < html.index(f"/commands/{both.pk}/")  # newest first
    assert 'class="badge failed">failed<' in html and "Activity not found" in html and "com.example.kiosk" in html
    assert "succeeded" not in html  # the other device's state is not this one's
    assert 'data-pending="true"' in html  # the ping is still queued: the page refreshes it live


def test_the_history_is_paged_at_a_constant_number_of_queries(console_for, viewer_user, django_assert_max_num_queries):
    sim = make_device()
    client = console_for(viewer_user)
    for _ in range(3):
        _issue(sim)
    client.get(_url(sim))  # the session's first request is not what is measured
    with CaptureQueriesContext(connection) as few:
        client.get(_url(sim))
    for _ in range(22):
        _issue(sim)
    with CaptureQueriesContext(connection) as many:
        first = client.get(_url(sim)).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert first.count('id="device-delivery-') == 20 and "Page 1 of 2" in first
    with django_assert_max_num_queries(len(few.captured_queries)):
        second = client.get(_url(sim) + "?page=2").content.decode()
    assert second.count('id="device-delivery-') == 5 and "← Newer" in second


def test_an_operator_reboots_the_device_with_one_command(console_for, operator_user):
    sim, other = make_device(), make_device()
    response = console_for(operator_user).post(_url(sim, quick=True), {"action": "reboot"}, HTTP_HX_REQUEST="true")
    command = Command.objects.get()
    html = response.content.decode()
    assert response.status_code == 200 and "Reboot sent to" in html and f"/commands/{command.pk}/" in html
    assert (command.type, command.target, command.target_count) == (CommandType.REBOOT, {"device_ids": [sim.id]}, 1)
    assert not Delivery.objects.filter(device=other.device).exists()
    assert AuditEvent.objects.get(action="command.issue").actor == operator_user


def test_lock_is_a_quick_action_too(console_for, operator_user):
    sim = make_device()
    console_for(operator_user).post(_url(sim, quick=True), {"action": "lock"})
    assert Command.objects.get().type == CommandType.LOCK


def test_relaunch_kiosk_is_offered_only_with_a_kiosk_policy_and_launches_its_app(console_for, operator_user, admin_user):
    sim = make_device(group="lobby")
    client = console_for(operator_user)
    assert "Relaunch kiosk" not in client.get(_url(sim)).content.decode()
    refused = client.post(_url(sim, quick=True), {"action": "kiosk"})
    assert refused.status_code == 422 and "This device&#x27;s policy has no kiosk app." in refused.content.decode()
    assert not Command.objects.exists()

    policy = policies.create_policy(actor=admin_user, name="Lobby", items={"kiosk": {"package": "com.example.lobby", "activity": ".Main"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "lobby"})
    assert "Relaunch kiosk" in client.get(_url(sim)).content.decode()
    client.post(_url(sim, quick=True), {"action": "kiosk"})
    command = Command.objects.get()
    assert (command.type, command.params) == (CommandType.LAUNCH_APP, {"package": "com.example.lobby", "activity": ".Main"})


def test_an_operator_sends_a_preset(console_for, operator_user):
    sim = make_device()
    preset = services.create_preset(actor=None, name="Kiosk relaunch", type="launch_app", params={"package": "com.example.kiosk"})
    response = console_for(operator_user).post(_url(sim, quick=True), {"action": "preset", "preset": str(preset.pk)})
    assert response.status_code == 200, response.content.decode()
    command = Command.objects.get()
    assert command.preset == preset and command.params == {"package": "com.example.kiosk"}


@pytest.mark.parametrize("data, message", [({"action": "preset", "preset": "nope"}, "Choose a preset."),
                                           ({"action": "preset"}, "Choose a preset."),
                                           ({"action": "format"}, "Choose reboot, lock, relaunch kiosk or a preset.")])
def test_a_refused_quick_action_says_why_and_sends_nothing(console_for, operator_user, data, message):
    sim = make_device()
    response = console_for(operator_user).post(_url(sim, quick=True), data)
    assert response.status_code == 422 and message in response.content.decode() and "Not sent." in response.content.decode()
    assert not Command.objects.exists()


def test_a_viewer_sees_the_history_without_quick_actions_and_cannot_post_them(console_for, viewer_user, operator_user):
    sim = make_device()
    html = console_for(viewer_user).get(_url(sim)).content.decode()
    assert "No command sent to this device yet." in html and 'id="quick-reboot"' not in html
    assert console_for(viewer_user).post(_url(sim, quick=True), {"action": "reboot"}).status_code == 403
    assert not Command.objects.exists()
    html = console_for(operator_user).get(_url(sim)).content.decode()
    assert 'id="quick-reboot"' in html and 'id="quick-lock"' in html and 'id="quick-preset"' in html


def test_anonymous_visitors_are_sent_to_sign_in(client):
    sim = make_device()
    for response in (client.get(_url(sim)), client.post(_url(sim, quick=True), {"action": "reboot"})):
        assert response.status_code == 302 and "/accounts/login" in response["Location"]
    assert not Command.objects.exists()


def test_an_unknown_or_deleted_device_is_404(console_for, operator_user, admin_user, monkeypatch):
    from devices import services as device_services

    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    gone = make_device()
    device_services.delete_devices(actor=admin_user, device_ids=[gone.device.pk])
    client = console_for(operator_user)
    for sim_id in (gone.id, "00000000-0000-0000-0000-000000000000"):
        assert client.get(f"/commands/device/{sim_id}/").status_code == 404
        assert client.post(f"/commands/device/{sim_id}/quick/", {"action": "reboot"}).status_code == 404
    assert not Command.objects.exists()


def test_quick_actions_take_only_posts(console_for, operator_user):
    assert console_for(operator_user).get(_url(make_device(), quick=True)).status_code == 405
