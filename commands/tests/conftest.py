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
