import json

import pytest

from devices import live, services


@pytest.fixture(autouse=True)
def _no_pending_live_updates():
    live.clear()
    yield
    live.clear()


@pytest.fixture
def beat(client):
    """beat(enrolled_or_token, **fields) -> response of POST /api/v1/device/heartbeat."""

    def post(who, path="/api/v1/device/heartbeat", raw=None, **fields):
        token = who if isinstance(who, str) else who.token
        response = client.post(
            path,
            data=raw if raw is not None else json.dumps(fields),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {token}",
        )
        # Heartbeats are buffered in Redis (devices.writebehind); what the beat task does every
        # second, do now so the test can read PostgreSQL.
        services.flush_heartbeats()
        return response

    return post
