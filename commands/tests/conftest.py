"""Fixtures of the commands tests: simulated devices made straight through the ORM (Device +
DeviceStatus rows, a real device token from devices.tokens.issue(), command keys from the
enrollment hook) and their side of the protocol (the reference verifier)."""

import itertools
import json
from dataclasses import dataclass, field

import pytest
from django.test import Client

from commands import live, signing
from commands.device_hooks import keys_on_enroll
from devices import tokens
from devices.models import Device, DeviceGroup, DeviceStatus, Tag

_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def _live_updates_inline(monkeypatch):
    # No flusher thread inside the test process: live updates render inline after commit.
    monkeypatch.setattr(live, "SYNC", True)
    # Cheap bcrypt for the hundreds of device tokens some tests make (verification works the same).
    monkeypatch.setattr(tokens, "BCRYPT_ROUNDS", 4)


@dataclass
class SimDevice:
    """A device as the tests drive it: its row, its token and the keys it holds."""

    device: Device
    token: str
    keys: dict = field(default_factory=dict)
    seen: set = field(default_factory=set)

    @property
    def id(self) -> str:
        return str(self.device.pk)

    @property
    def kids(self) -> list[str]:
        return sorted(self.keys)

    def take_keys(self, command_keys) -> None:
        self.keys = signing.keyring(command_keys)

    def verify(self, envelope: dict, server_now: int) -> dict:
        return signing.verify(envelope, self.keys, device_id=self.id, server_now=server_now)

    def client(self) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Device {self.token}")

    def pull(self, limit: int | None = None) -> dict:
        path = "/api/v1/device/commands" + (f"?limit={limit}" if limit else "")
        response = self.client().get(path)
        assert response.status_code == 200, response.content
        return response.json()

    def report(self, command_id: str, status: str, **extra):
        return self.client().post(
            f"/api/v1/device/commands/{command_id}/result",
            data=json.dumps({"status": status, **extra}),
            content_type="application/json",
        )


def make_device(*, group: str | None = None, tags=(), fcm_token: str = "", enroll_keys: bool = True, **fields) -> SimDevice:
    n = next(_serial)
    issued = tokens.issue()
    device = Device.objects.create(
        hardware_id=fields.pop("hardware_id", f"HW-{n:06d}"),
        model=fields.pop("model", "Pixel Test"),
        manufacturer=fields.pop("manufacturer", "Google"),
        group=DeviceGroup.objects.get_or_create(name=group)[0] if group else None,
        token_id=issued.token_id,
        token_hash=issued.token_hash,
        fcm_token=fcm_token,
        **fields,
    )
    DeviceStatus.objects.create(device=device)
    for name in tags:
        device.tags.add(Tag.objects.get_or_create(name=name)[0])
    sim = SimDevice(device=device, token=issued.token)
    if enroll_keys:
        sim.take_keys(keys_on_enroll(device=device, reenrolled=False))
    return sim


@pytest.fixture
def sim_device(db):
    return make_device


@pytest.fixture
def device(db) -> SimDevice:
    return make_device()


# --- the FCM stand-in ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fcm_standin_server(tmp_path_factory):
    """One stand-in process for the session (python -m loadtest.fcm_standin), reset per test."""
    import subprocess
    import sys
    import time as _time

    import httpx

    from loadtest.fcm_standin import StandinClient
    from tests.live import ROOT, free_port

    port = free_port()
    creds = tmp_path_factory.mktemp("fcm") / "service-account.json"
    log = open(creds.parent / "standin.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.fcm_standin", "--port", str(port), "--project-id", "mdm-test",
         "--write-credentials", str(creds)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = _time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200 and creds.exists():
                break
        except httpx.HTTPError:
            pass
        if _time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("FCM stand-in did not start")
        _time.sleep(0.1)
    client = StandinClient(base)
    client.base = base
    client.credentials_file = str(creds)
    client.send_url = f"{base}/v1/projects/mdm-test/messages:send"
    yield client
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def fcm_standin(fcm_standin_server, settings):
    """FCM switched on and pointed at the stand-in (the two overrides of mdm/fcm.py)."""
    from mdm import fcm

    fcm_standin_server.reset()
    settings.FCM_ENABLED = True
    settings.FCM_CREDENTIALS_FILE = fcm_standin_server.credentials_file
    settings.FCM_PROJECT_ID = ""
    settings.FCM_SEND_URL = fcm_standin_server.send_url
    fcm.reset()
    yield fcm_standin_server
    fcm.reset()


def standin_env(standin) -> dict:
    return {"FCM_ENABLED": "true", "FCM_CREDENTIALS_FILE": standin.credentials_file, "FCM_SEND_URL": standin.send_url}
