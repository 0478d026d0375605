import json

import pytest

from enrollment.services import keys as services


@pytest.fixture
def make_key(db):
    """make_key(name=..., max_uses=..., expires_at=..., group=..., tags=...) -> the raw key."""

    def make(name="bench", **kwargs):
        return services.create_enrollment_key(actor=None, name=name, **kwargs).raw

    return make


@pytest.fixture
def key(make_key):
    return make_key()


@pytest.fixture
def enroll(client):
    """enroll(key, hardware_id="HW-1", **fields) -> response (Django test client)."""

    def post(key, hardware_id="HW-1", path="/api/v1/enroll", headers=None, **fields):
        body = {"hardware_id": hardware_id, **fields} if hardware_id is not None else fields
        extra = {"HTTP_X_ADMIN_KEY": key} if key is not None else {}
        extra.update(headers or {})
        return client.post(path, data=json.dumps(body), content_type="application/json", **extra)

    return post


@pytest.fixture
def heartbeat(client):
    def post(token, **fields):
        from devices.services import flush_heartbeats

        response = client.post(
            "/api/v1/device/heartbeat",
            data=json.dumps(fields),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {token}",
        )
        flush_heartbeats()  # what the beat task does every second (devices.writebehind)
        return response

    return post
