"""Every stock command preset, end to end: issued from the console as an operator issues it, run
by the headless Java agent (which answers as an Android 14 device answers an app's uid), and the
result the server records is the one a real device gives. The stock presets that changed a
device through the shell were archived by commands migration 0006 (the policy's items and the
typed commands replaced them): the console no longer offers them, and their argv, even on an
allowlist an admin widened, is rejected by the device's own read-only list.

A preset added to the seeds without an expectation here fails
test_every_seeded_preset_has_an_end_to_end_expectation."""

import re
import time
from dataclasses import dataclass

import httpx
import pytest

from commands.models import Preset
from conftest import PASSWORD
from tests.test_agent_end_to_end import Agent, _issue, agents, fleet_ready  # noqa: F401 (fixtures)


@dataclass(frozen=True)
class Expect:
    state: str
    output: str = ""  # a substring of the recorded output
    reason: str = ""  # for rejected: the protocol's reason


# The presets the console offers, and what a device answers to each.
LIVE = {
    "Ping": Expect("succeeded", output="pong"),
    # A real device goes down; the agent reports succeeded after the boot (uptime restarted).
    "Reboot": Expect("succeeded"),
    # The headless device has com.example.kiosk installed; one without it fails ("no launchable activity").
    "Launch kiosk app": Expect("succeeded", output="launched com.example.kiosk"),
    # getprop lists the properties untrusted_app may read, the patch level and the time zone among them.
    "Device properties": Expect("succeeded", output="[ro.build.version.security_patch]: [2024-06-05]"),
    # statvfs of the app's mounts; those it cannot stat are left out, and df exits 0.
    "Storage usage": Expect("succeeded", output=" /data\n"),
    # sysinfo(2), not /proc/uptime (denied to apps since Android 8).
    "Uptime": Expect("succeeded", output="load average:"),
    "Kernel version": Expect("succeeded", output="Linux localhost 5.15"),
}

# Archived by migration 0006, with what replaced each; their argv as the device would get it.
ARCHIVED = {
    "OS update: check now": ["am", "start", "-a", "android.settings.SYSTEM_UPDATE_SETTINGS"],
    "Keep screen on while charging": ["settings", "put", "global", "stay_on_while_plugged_in", "7"],
    "Screen timeout 10 min": ["settings", "put", "system", "screen_off_timeout", "600000"],
    "Battery report": ["dumpsys", "battery"],
}


def _seed_as_a_fresh_install():
    """The commands app's data migrations run again, in order, with the current models: the stock
    presets and the default allowlist as a fresh install has them. Each is idempotent, and a live
    test's flush has emptied what they seeded when an earlier test in the session ran one."""
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations import RunPython

    loader = MigrationLoader(connection)
    (leaf,) = loader.graph.leaf_nodes("commands")
    for key in loader.graph.forwards_plan(leaf):
        if key[0] == "commands":
            for operation in loader.disk_migrations[key].operations:
                if isinstance(operation, RunPython):
                    operation.code(apps, None)


@pytest.mark.django_db
def test_every_seeded_preset_has_an_end_to_end_expectation():
    _seed_as_a_fresh_install()
    latest = Preset.objects.filter(is_latest=True)
    assert sorted(latest.filter(archived=False).values_list("name", flat=True)) == sorted(LIVE)
    assert sorted(latest.filter(archived=True).values_list("name", flat=True)) == sorted(ARCHIVED)
    for preset in latest.filter(archived=True, type="shell"):
        assert preset.params["argv"] == ARCHIVED[preset.name]


class Console:
    """An operator's signed-in browser session, without the browser: the console's own forms."""

    def __init__(self, base_url: str, username: str):
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
        page = self.client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        signed_in = self.client.post("/accounts/login/", data={
            "csrfmiddlewaretoken": token, "username": username, "password": PASSWORD})
        assert signed_in.status_code == 302, signed_in.text

    def issue_preset(self, preset: Preset, device_id: str) -> httpx.Response:
        """What the composer posts for "A preset", targeted at one device by id (htmx, with the
        CSRF header base.html sets)."""
        self.client.get("/commands/new/")
        return self.client.post("/commands/new/issue/", headers={
            "HX-Request": "true", "X-CSRFToken": self.client.cookies["csrftoken"]}, data={
            "source": "preset", "preset": str(preset.pk), "target_kind": "device_ids", "device_ids": device_id,
            "expires_in_min": "60"})

    def close(self):
        self.client.close()


@pytest.fixture
def console(fleet_ready, operator_user):
    server, _, _ = fleet_ready
    session = Console(server.url, operator_user.username)
    yield session
    session.close()


def _final_delivery(server, headers, command_id, timeout: float = 30.0) -> dict:
    """The delivery once final (a result answered from Redis reaches PostgreSQL with the next
    one-second flush, commands.results)."""
    deadline = time.monotonic() + timeout
    while True:
        (delivery,) = httpx.get(f"{server.url}/api/v1/commands/{command_id}", headers=headers).json()["deliveries"]
        if delivery["state"] in ("succeeded", "failed", "rejected", "expired", "cancelled") or time.monotonic() > deadline:
            return delivery
        time.sleep(0.2)


def _started_agent(server, key, agents, tmp_path) -> tuple[Agent, str]:
    agent = Agent(server.url, key, tmp_path / "state")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)
    return agent, device_id


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LIVE))
def test_a_stock_preset_issued_from_the_console_gives_what_a_device_gives(name, fleet_ready, console, agents, tmp_path):
    server, key, headers = fleet_ready
    _seed_as_a_fresh_install()
    preset = Preset.objects.get(name=name, is_latest=True, archived=False)
    agent, device_id = _started_agent(server, key, agents, tmp_path)

    issued = console.issue_preset(preset, device_id)
    assert issued.status_code == 204, issued.text
    command_id = re.fullmatch(r"/commands/([0-9a-f-]{36})/", issued.headers["HX-Redirect"])[1]

    ran = agent.wait_for(lambda e: e["event"] == "command_verified" and e["id"] == command_id, timeout=30)
    assert ran["type"] == preset.type
    expect = LIVE[name]
    delivery = _final_delivery(server, headers, command_id)
    assert delivery["state"] == expect.state, delivery
    assert expect.output in (delivery["output"] or ""), delivery
    if expect.reason:
        assert delivery["reason"] == expect.reason
    detail = httpx.get(f"{server.url}/api/v1/commands/{command_id}", headers=headers).json()
    assert (detail["preset"], detail["preset_version"], detail["type"]) == (name, preset.version, preset.type)
    assert detail["params"] == preset.params


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHIVED))
def test_an_archived_preset_is_not_offered_and_its_argv_is_rejected_by_the_device(name, fleet_ready, console, agents,
                                                                                tmp_path):
    from commands.models import Command
    from commands.services.shell_allowlist import create_allow_rule

    server, key, headers = fleet_ready
    _seed_as_a_fresh_install()
    preset = Preset.objects.get(name=name, is_latest=True, archived=True)
    agent, device_id = _started_agent(server, key, agents, tmp_path)

    refused = console.issue_preset(preset, device_id)
    assert "Choose a preset." in refused.text
    assert not Command.objects.exists()

    # An admin may still put the argv on the server's allowlist; the device keeps its own list.
    argv = ARCHIVED[name]
    create_allow_rule(actor=None, argv_prefix=argv, description="widened by an admin")
    command_id = _issue(server, headers, device_id, "shell", {"argv": argv})
    executed = agent.wait_for(lambda e: e["event"] == "command_executed" and e["id"] == command_id, timeout=30)
    assert (executed["status"], executed["reason"]) == ("rejected", "not_allowed")
    delivery = _final_delivery(server, headers, command_id)
    assert (delivery["state"], delivery["reason"]) == ("rejected", "not_allowed"), delivery
    assert not delivery["output"]  # refused before it ran: nothing of Android's answer
