"""Protocol v1.1 on the inventory (PROTOCOL.md "Text"; issue 14, finding 7): an app entry whose
text breaks the rules is a 400 `invalid` naming the field, and nothing of the PUT is stored."""

import pytest

from devices.models import DeviceStatus, InstalledApp
from devices.tests.test_inventory import APPS, put
from mdm import deadletters

pytestmark = pytest.mark.django_db

BAD = {"nul": "com.a\x00b", "lone-surrogate": "com.\ud800", "lone-low": "\udfff", "too-long": "p" * 257}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("field", ["package", "version_name"])
def test_finding_7_bad_text_in_an_inventory_entry_is_400_naming_the_field_and_stores_nothing(client, enrolled_device, field, bad):
    assert put(client, enrolled_device, {"apps": APPS}).status_code == 204
    before = DeviceStatus.objects.get(device=enrolled_device.device).inventory_hash
    response = put(client, enrolled_device, {"apps": [*APPS, {**APPS[0], "package": "com.ok", field: bad}]})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == [f"apps[2].{field}"]
    assert body["detail"].startswith(f"apps[2].{field}: ") and "\x00" not in body["detail"]
    assert sorted(InstalledApp.objects.filter(device=enrolled_device.device).values_list("package", flat=True)) == sorted(
        a["package"] for a in APPS)
    assert DeviceStatus.objects.get(device=enrolled_device.device).inventory_hash == before


def test_text_as_long_as_the_protocol_allows_is_stored(client, enrolled_device):
    app = {"package": "p" * 256, "version_name": "é" * 256, "version_code": 1}
    assert put(client, enrolled_device, {"apps": [app]}).status_code == 204
    stored = InstalledApp.objects.get(device=enrolled_device.device)
    assert (stored.package, stored.version_name) == (app["package"], app["version_name"])


@pytest.mark.parametrize("raw", [b'{"apps": [{"package": "\xed\xa0\x80"}]}', '{"apps": []}'.encode("utf-16")],
                         ids=["utf8-surrogate", "utf-16"])
def test_an_inventory_body_that_is_not_utf_8_is_400(client, enrolled_device, raw):
    response = put(client, enrolled_device, raw)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert deadletters.count() == 0
