"""PUT /api/v1/device/inventory: replaces the device's app list (PROTOCOL.md)."""

import json

import pytest

from devices.models import DeviceStatus, InstalledApp
from devices.services import apps_hash

pytestmark = pytest.mark.django_db

APPS = [
    {"package": "com.example.kiosk", "version_name": "2.1", "version_code": 21, "system": False, "enabled": True},
    {"package": "com.android.settings", "version_name": "14", "version_code": 34, "system": True, "enabled": False},
]


def put(client, who, body, path="/api/v1/device/inventory"):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.put(path, data=raw, content_type="application/json", **who.auth)


def test_it_replaces_the_app_list_and_answers_204(client, enrolled_device):
    assert put(client, enrolled_device, {"apps": APPS}).status_code == 204
    assert put(client, enrolled_device, {"apps": APPS[:1]}, path="/api/v1/device/inventory/").status_code == 204
    assert list(InstalledApp.objects.filter(device=enrolled_device.device).values_list("package", flat=True)) == ["com.example.kiosk"]


def test_it_stores_every_field(client, enrolled_device):
    put(client, enrolled_device, {"apps": APPS})
    app = InstalledApp.objects.get(device=enrolled_device.device, package="com.android.settings")
    assert (app.version_name, app.version_code, app.system, app.enabled) == ("14", 34, True, False)


def test_it_stores_the_protocol_apps_hash(client, enrolled_device):
    put(client, enrolled_device, {"apps": APPS})
    lines = sorted([b"com.android.settings\t34\tfalse\n", b"com.example.kiosk\t21\ttrue\n"])
    import hashlib

    expected = hashlib.sha256(b"".join(lines)).hexdigest()
    assert apps_hash(APPS) == expected
    assert DeviceStatus.objects.get(device=enrolled_device.device).inventory_hash == expected


def test_an_empty_list_clears_the_inventory(client, enrolled_device):
    put(client, enrolled_device, {"apps": APPS})
    assert put(client, enrolled_device, {"apps": []}).status_code == 204
    assert not InstalledApp.objects.filter(device=enrolled_device.device).exists()


def test_it_only_touches_its_own_device(client, enrolled_device, other_enrolled_device):
    put(client, other_enrolled_device, {"apps": APPS})
    put(client, enrolled_device, {"apps": []})
    assert InstalledApp.objects.filter(device=other_enrolled_device.device).count() == 2


def test_more_than_5000_apps_is_a_400(client, enrolled_device):
    apps = [{"package": f"p{i}"} for i in range(5001)]
    response = put(client, enrolled_device, {"apps": apps})
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_5000_apps_are_fine(client, enrolled_device):
    apps = [{"package": f"com.example.p{i}", "version_code": i} for i in range(5000)]
    assert put(client, enrolled_device, {"apps": apps}).status_code == 204
    assert InstalledApp.objects.filter(device=enrolled_device.device).count() == 5000


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"apps": "all"},
        {"apps": [1]},
        {"apps": [{"version_code": 1}]},
        {"apps": [{"package": ""}]},
        {"apps": [{"package": "a", "version_code": "1"}]},
        {"apps": [{"package": "a", "version_code": -1}]},
        {"apps": [{"package": "a", "enabled": "yes"}]},
        {"apps": [{"package": "a", "system": 1}]},
        {"apps": [{"package": "a", "version_name": 3}]},
    ],
)
def test_a_malformed_list_is_a_400_naming_the_problem(client, enrolled_device, body):
    response = put(client, enrolled_device, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["fields"]


@pytest.mark.parametrize("raw", [b"nope", b"[]"])
def test_a_body_that_is_not_a_json_object_is_400(client, enrolled_device, raw):
    assert put(client, enrolled_device, raw).status_code == 400


def test_a_body_over_one_mebibyte_is_413(client, enrolled_device):
    response = put(client, enrolled_device, {"apps": [{"package": "a" * 200}] * 6000})
    assert response.status_code == 413


def test_without_a_token_it_is_401(client):
    response = client.put("/api/v1/device/inventory", data='{"apps": []}', content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


def test_post_is_405(client, enrolled_device):
    response = client.post("/api/v1/device/inventory", data='{"apps": []}', content_type="application/json", **enrolled_device.auth)
    assert response.status_code == 405
