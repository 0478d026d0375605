"""The devices console: access per role, partial rendering, constant query count, charts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device, DeviceStatus, HeartbeatSample, Tag
from devices.tests.factories import DeviceFactory, DeviceGroupFactory

pytestmark = pytest.mark.django_db


def _fleet(n):
    group = DeviceGroupFactory(name="fleet")
    tags = [Tag.objects.get_or_create(name=f"t{i}")[0] for i in range(3)]
    devices = Device.objects.bulk_create(
        [Device(hardware_id=f"BULK{i:05d}", model="TC52", manufacturer="Zebra", android_version="13", group=group) for i in range(n)]
    )
    DeviceStatus.objects.bulk_create(
        [DeviceStatus(device=d, battery_pct=i % 100, online=i % 2 == 0, last_seen=timezone.now()) for i, d in enumerate(devices)]
    )
    through = Device.tags.through
    through.objects.bulk_create([through(device_id=d.pk, tag_id=tags[i % 3].pk) for i, d in enumerate(devices)])


def _queries_for(console, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert console.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_list_holds_a_constant_number_of_queries_with_10_and_500_devices(console_for, admin_user, django_assert_max_num_queries):
    console = console_for(admin_user)
    _fleet(10)
    small = _queries_for(console, "/devices/")
    Device.objects.all().delete()
    _fleet(500)
    large = _queries_for(console, "/devices/")
    assert small == large
    with django_assert_max_num_queries(16):
        console.get("/devices/?sort=-battery&status=online&page=3")


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/devices/")
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


def test_the_list_shows_devices_to_a_viewer(console_for, viewer_user, device_in_group_a, device_of_other_group):
    html = console_for(viewer_user).get("/devices/").content.decode()
    assert "scanner-a1" in html and "kiosk-b1" in html
    assert 'name="device_ids"' not in html  # no bulk selection below admin
    assert "topics=devices" in html


def test_an_htmx_filter_request_gets_only_the_table(console_for, viewer_user, device_in_group_a, device_of_other_group):
    response = console_for(viewer_user).get("/devices/?group=stores-b", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="device-table">')
    assert "kiosk-b1" in html and "scanner-a1" not in html


def test_live_cells_carry_stable_ids(console_for, admin_user, device_in_group_a):
    html = console_for(admin_user).get("/devices/").content.decode()
    for cell in ("state", "battery", "seen"):
        assert f'id="dev-{device_in_group_a.pk}-{cell}"' in html


def test_the_detail_page_shows_status_charts_and_inventory(console_for, viewer_user, beat, enrolled_device):
    beat(enrolled_device, battery_pct=72, mem_total_mb=4000, mem_avail_mb=1000, bad_envelopes=2, device_time=int(timezone.now().timestamp()) - 300)
    now = timezone.now()
    HeartbeatSample.objects.bulk_create(
        [HeartbeatSample(device=enrolled_device.device, at=now - timedelta(minutes=i), battery_pct=80 - i // 10, mem_avail_mb=1000 + i) for i in range(1, 90)]
    )
    html = console_for(viewer_user).get(f"/devices/{enrolled_device.device.pk}/").content.decode()
    # The drift is the server's clock minus the device's, whole seconds: -300, or -301 when a
    # second boundary passes between the test's clock read and the server's.
    assert "72%" in html and "Bad envelopes" in html and ("-300 s" in html or "-301 s" in html)
    assert html.count("<svg") >= 2 and "<polyline" in html
    assert f"topics=device.{enrolled_device.device.pk}" in html


def test_the_chart_range_is_swapped_as_a_partial(console_for, viewer_user, enrolled_device):
    response = console_for(viewer_user).get(f"/devices/{enrolled_device.device.pk}/?hours=6", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="device-charts")
    assert response.content.decode().lstrip().startswith('<section id="device-charts"')


def test_an_unknown_device_is_404(console_for, viewer_user):
    assert console_for(viewer_user).get("/devices/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_viewer_cannot_edit_an_operator_can(client, viewer_user, operator_user, device_in_group_a, group_b):
    url = f"/devices/{device_in_group_a.pk}/"
    client.force_login(viewer_user)
    assert client.post(url, {"alias": "x"}).status_code == 403
    client.force_login(operator_user)
    response = client.post(url, {"alias": "dock-3", "group": str(group_b.pk), "tags": "rugged, floor 1"})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    device = Device.objects.get(pk=device_in_group_a.pk)
    assert device.alias == "dock-3" and device.group == group_b
    assert sorted(device.tags.values_list("name", flat=True)) == ["floor-1", "rugged"]


def test_only_admins_bulk_delete_from_the_console(client, operator_user, admin_user, device_in_group_a, device_of_other_group, monkeypatch):
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    data = {"device_ids": [str(device_in_group_a.pk), str(device_of_other_group.pk)]}
    client.force_login(operator_user)
    assert client.post("/devices/bulk-delete/", data).status_code == 403
    client.force_login(admin_user)
    response = client.post("/devices/bulk-delete/", data)
    assert response.status_code == 204 and response["HX-Redirect"] == "/devices/"
    assert Device.objects.active().count() == 0


def test_only_admins_see_retired_devices_and_restore_them(client, operator_user, admin_user, device_in_group_a, monkeypatch):
    from devices import services

    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[device_in_group_a.pk])
    client.force_login(operator_user)
    assert client.get("/devices/retired/").status_code == 403
    assert client.post(f"/devices/{device_in_group_a.pk}/restore/").status_code == 403
    client.force_login(admin_user)
    assert device_in_group_a.hardware_id in client.get("/devices/retired/").content.decode()
    assert client.post(f"/devices/{device_in_group_a.pk}/restore/").status_code == 200
    assert Device.objects.active().filter(pk=device_in_group_a.pk).exists()


def test_the_dashboard_counts_are_the_live_partial(console_for, viewer_user, device_in_group_a):
    html = console_for(viewer_user).get("/").content.decode()
    # Its own topic: the devices list's cells have no target on the dashboard (htmx:oobErrorNoTarget).
    assert 'id="fleet-summary"' in html and "topics=dashboard," in html and "devices" not in html.split("topics=")[1].split('"')[0]


def test_groups_page_lists_and_operators_add(client, viewer_user, operator_user, device_in_group_a):
    client.force_login(viewer_user)
    assert "warehouse-a" in client.get("/devices/groups/").content.decode()
    assert client.post("/devices/groups/", {"name": "new"}).status_code == 403
    client.force_login(operator_user)
    assert client.post("/devices/groups/", {"name": "new"}).status_code == 302
