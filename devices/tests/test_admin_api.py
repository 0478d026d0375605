"""The admin REST API of devices, groups and tags: roles, filters, status shape, actions."""

import pytest

from devices.models import Device, DeviceGroup
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_anonymous_callers_get_401(anon_api, enrolled_device):
    assert anon_api.get("/api/v1/devices").status_code == 401
    assert anon_api.get(f"/api/v1/devices/{enrolled_device.device.pk}").status_code == 401


def test_a_device_token_is_not_an_admin_credential(client, enrolled_device):
    response = client.get("/api/v1/devices", **enrolled_device.auth)
    assert response.status_code == 401


def test_a_viewer_lists_devices_with_their_status(viewer_api, beat, enrolled_device, other_enrolled_device):
    beat(enrolled_device, battery_pct=64, network_type="wifi", kids=["k1"])
    body = viewer_api.get("/api/v1/devices").json()
    assert body["count"] == 2
    mine = next(d for d in body["results"] if d["device_id"] == str(enrolled_device.device.pk))
    assert mine["group"] == "warehouse-a" and mine["alias"] == "scanner-a1"
    assert mine["status"]["battery_pct"] == 64 and mine["status"]["network_type"] == "wifi"
    assert mine["status"]["online"] is True and isinstance(mine["status"]["last_seen"], int)
    assert mine["status"]["kids"] == ["k1"]


def test_the_detail_holds_every_heartbeat_field_under_its_name(viewer_api, beat, enrolled_device):
    from devices.tests.test_heartbeat import FULL

    beat(enrolled_device, **FULL)
    status = viewer_api.get(f"/api/v1/devices/{enrolled_device.device.pk}").json()["status"]
    for name, value in FULL.items():
        if name == "bad_envelopes":
            continue
        assert status[name] == value, name
    assert {"last_seen", "online", "clock_drift_s", "bad_envelopes_total"} <= set(status)


def test_an_unknown_or_deleted_device_is_404(viewer_api, admin_user, enrolled_device):
    from devices import services

    assert viewer_api.get("/api/v1/devices/00000000-0000-0000-0000-000000000000").status_code == 404
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    assert viewer_api.get(f"/api/v1/devices/{enrolled_device.device.pk}").status_code == 404


@pytest.mark.parametrize(
    "query, expected",
    [
        ("group=warehouse-a", ["scanner-a1"]),
        ("group=stores-b", ["kiosk-b1"]),
        ("q=kiosk", ["kiosk-b1"]),
        ("status=online", ["scanner-a1"]),
        ("status=offline", ["kiosk-b1"]),
        ("battery_below=20", ["scanner-a1"]),
        ("sort=-alias", ["scanner-a1", "kiosk-b1"]),
        ("sort=alias", ["kiosk-b1", "scanner-a1"]),
    ],
)
def test_filters_search_and_sort(viewer_api, beat, enrolled_device, other_enrolled_device, query, expected):
    beat(enrolled_device, battery_pct=10)
    results = viewer_api.get(f"/api/v1/devices?{query}").json()["results"]
    assert [d["alias"] for d in results] == expected


def test_the_list_paginates(viewer_api, db):
    for _ in range(55):
        DeviceFactory()
    body = viewer_api.get("/api/v1/devices").json()
    assert body["count"] == 55 and len(body["results"]) == 50 and body["next"]


def test_an_operator_edits_alias_group_and_tags(operator_api, enrolled_device, group_b):
    response = operator_api.patch(
        f"/api/v1/devices/{enrolled_device.device.pk}", {"alias": "dock-7", "group": "stores-b", "tags": ["Floor 2", "rugged"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["alias"] == "dock-7" and response.json()["group"] == "stores-b"
    assert response.json()["tags"] == ["floor-2", "rugged"]


def test_a_viewer_cannot_edit(viewer_api, enrolled_device):
    assert viewer_api.patch(f"/api/v1/devices/{enrolled_device.device.pk}", {"alias": "x"}, format="json").status_code == 403


def test_an_unknown_group_is_a_400(operator_api, enrolled_device):
    response = operator_api.patch(f"/api/v1/devices/{enrolled_device.device.pk}", {"group": "nope"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_only_admins_bulk_delete(admin_api, operator_api, enrolled_device, other_enrolled_device):
    ids = [str(enrolled_device.device.pk), str(other_enrolled_device.device.pk)]
    assert operator_api.post("/api/v1/devices/bulk-delete", {"device_ids": ids}, format="json").status_code == 403
    response = admin_api.post("/api/v1/devices/bulk-delete", {"device_ids": ids}, format="json")
    assert response.status_code == 200 and sorted(response.json()["deleted"]) == sorted(ids)
    assert Device.objects.active().count() == 0


def test_bulk_delete_rejects_bad_ids(admin_api):
    response = admin_api.post("/api/v1/devices/bulk-delete", {"device_ids": ["x"]}, format="json")
    assert response.status_code == 400


def test_an_admin_lists_and_restores_retired_devices(admin_api, operator_api, enrolled_device):
    admin_api.post("/api/v1/devices/bulk-delete", {"device_ids": [str(enrolled_device.device.pk)]}, format="json")
    assert operator_api.get("/api/v1/devices/retired").status_code == 403
    retired = admin_api.get("/api/v1/devices/retired").json()["results"]
    assert [d["device_id"] for d in retired] == [str(enrolled_device.device.pk)]
    assert operator_api.post(f"/api/v1/devices/{enrolled_device.device.pk}/restore").status_code == 403
    assert admin_api.post(f"/api/v1/devices/{enrolled_device.device.pk}/restore").status_code == 200
    assert Device.objects.active().filter(pk=enrolled_device.device.pk).exists()


def test_history_and_apps_of_a_device(viewer_api, beat, client, enrolled_device):
    import json

    beat(enrolled_device, battery_pct=33)
    client.put("/api/v1/device/inventory", data=json.dumps({"apps": [{"package": "com.x", "version_code": 2}]}), content_type="application/json", **enrolled_device.auth)
    history = viewer_api.get(f"/api/v1/devices/{enrolled_device.device.pk}/history?hours=1").json()["results"]
    assert [s["battery_pct"] for s in history] == [33]
    assert viewer_api.get(f"/api/v1/devices/{enrolled_device.device.pk}/history?hours=abc").status_code == 400
    apps = viewer_api.get(f"/api/v1/devices/{enrolled_device.device.pk}/apps").json()["results"]
    assert apps == [{"package": "com.x", "version_name": "", "version_code": 2, "system": False, "enabled": True}]


def test_groups_crud_by_operators_read_by_viewers(operator_api, viewer_api):
    created = operator_api.post("/api/v1/groups", {"name": "dock", "description": "Dock scanners"}, format="json")
    assert created.status_code == 201 and created.json()["device_count"] == 0
    group_id = created.json()["id"]
    assert viewer_api.post("/api/v1/groups", {"name": "x"}, format="json").status_code == 403
    assert [g["name"] for g in viewer_api.get("/api/v1/groups").json()["results"]] == ["dock"]
    assert operator_api.patch(f"/api/v1/groups/{group_id}", {"name": "docks"}, format="json").json()["name"] == "docks"
    assert operator_api.delete(f"/api/v1/groups/{group_id}").status_code == 204
    assert not DeviceGroup.objects.exists()


def test_tags_are_created_and_listed(operator_api, viewer_api):
    assert operator_api.post("/api/v1/tags", {"name": "rugged"}, format="json").status_code == 201
    assert viewer_api.get("/api/v1/tags").json() == [{"name": "rugged"}]
    assert viewer_api.delete("/api/v1/tags/rugged").status_code == 403
    assert operator_api.delete("/api/v1/tags/rugged").status_code == 204


def test_the_openapi_schema_documents_the_device_api(viewer_api):
    schema = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/devices" in schema and "/api/v1/enrollment-keys" in schema


@pytest.mark.parametrize("name", ["lobby\\u0000", "lobby\\ud800"])
def test_a_group_name_no_database_can_hold_is_a_400_not_a_500(admin_api, device_in_group_a, name):
    response = admin_api.patch(f"/api/v1/devices/{device_in_group_a.pk}", data=f'{{"group": "{name}"}}',
                               content_type="application/json")
    assert response.status_code == 400 and "group" in response.json()["fields"]
    device_in_group_a.refresh_from_db()
    assert device_in_group_a.group.name == "warehouse-a"  # nothing lost


@pytest.mark.parametrize("tag", ["lobby\\u0000", "lobby\\ud800", "x" * 65])
def test_a_tag_name_no_database_can_hold_is_a_400_not_a_500(admin_api, device_in_group_a, tag):
    response = admin_api.patch(f"/api/v1/devices/{device_in_group_a.pk}", data=f'{{"tags": ["{tag}"]}}',
                               content_type="application/json")
    assert response.status_code == 400 and "tags" in response.json()["fields"]
