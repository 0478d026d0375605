"""Bulk actions on the devices list's selection: move to group, tag and untag, send a command
(hand-off to the composer), delete; the ticked rows or every device the filter matches. Who may,
what is refused and how, what is audited, and a query count that does not grow with the rows."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.models import Device, DeviceGroup, DeviceStatus, Tag
from devices.tests.factories import DeviceFactory
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


def _ids(*devices) -> list[str]:
    return [str(d.pk) for d in devices]


def _post(client, url, **data):
    return client.post(url, data, HTTP_HX_REQUEST="true")


def _tags(device) -> list[str]:
    return sorted(Device.objects.get(pk=device.pk).tags.values_list("name", flat=True))


# --- move to group --------------------------------------------------------------------------------


def test_an_operator_moves_the_ticked_devices_to_a_group_and_gets_the_list_back(
        console_for, operator_user, device_in_group_a, device_of_other_group, group_b):
    third = DeviceFactory(alias="dock-3")
    response = _post(console_for(operator_user), "/devices/bulk/group/",
                     device_ids=_ids(device_in_group_a, third), group="stores-b", query="sort=alias")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="device-table">') and "Moved 2 devices to stores-b." in html
    assert {d.group.name for d in Device.objects.filter(pk__in=[device_in_group_a.pk, third.pk])} == {"stores-b"}
    # The rows acted on stay ticked, so a tag can follow.
    assert html.count(" checked>") == 2
    events = AuditEvent.objects.filter(action="device.update", target_id=str(device_in_group_a.pk))
    assert [e.data for e in events] == [{"group": {"from": "warehouse-a", "to": "stores-b"}, "bulk": True}]
    assert AuditEvent.objects.get(target_id=str(third.pk)).actor == operator_user


def test_moving_to_no_group_takes_devices_out_of_theirs(console_for, operator_user, device_in_group_a):
    response = _post(console_for(operator_user), "/devices/bulk/group/", device_ids=_ids(device_in_group_a), group="-")
    assert "Moved 1 device out of their group." in response.content.decode()
    assert Device.objects.get(pk=device_in_group_a.pk).group is None


def test_moving_devices_already_there_changes_and_audits_nothing(console_for, operator_user, device_in_group_a):
    response = _post(console_for(operator_user), "/devices/bulk/group/", device_ids=_ids(device_in_group_a), group="warehouse-a")
    assert "Nothing to move: already warehouse-a." in response.content.decode()
    assert not AuditEvent.objects.filter(action="device.update").exists()


def test_a_group_move_tells_the_policy_channel(console_for, operator_user, device_in_group_a, group_b, monkeypatch):
    told = []
    monkeypatch.setattr("devices.hooks.receivers", {"devices_regrouped": [lambda device_ids: told.extend(device_ids)],
                                                    "device_deleted": [], "device_purge": []})
    _post(console_for(operator_user), "/devices/bulk/group/", device_ids=_ids(device_in_group_a), group="stores-b")
    assert told == [device_in_group_a.pk]


def test_all_that_match_the_filter_are_moved_not_only_the_page(console_for, operator_user, group_b):
    DeviceGroup.objects.create(name="lobby")
    lobby = DeviceFactory.create_batch(60, model="Kiosk 10")
    DeviceFactory(model="Scanner")
    response = _post(console_for(operator_user), "/devices/bulk/group/", all_matching="1", query="q=Kiosk&sort=alias&page=2",
                     group="lobby")
    assert "Moved 60 devices to lobby." in response.content.decode()
    assert Device.objects.filter(group__name="lobby").count() == 60 == len(lobby)
    assert Device.objects.get(model="Scanner").group is None


@pytest.mark.parametrize("data, message", [
    ({"group": "stores-b"}, "Select at least one device."),
    ({"device_ids": ["not-a-uuid"], "group": "stores-b"}, "The selection holds something that is not a device; reload the page."),
    ({"device_ids": "DEVICE", "group": ""}, "Choose a group to move the devices to."),
    ({"device_ids": "DEVICE", "group": "nowhere"}, "There is no group named “nowhere”."),
    ({"all_matching": "1", "query": "battery_below=500", "group": "stores-b"},
     "The list's filter is not valid; reload the page and try again."),
])
def test_a_refused_move_says_why_in_the_bulk_bar(console_for, operator_user, device_in_group_a, group_b, data, message):
    if data.get("device_ids") == "DEVICE":
        data["device_ids"] = _ids(device_in_group_a)
    response = _post(console_for(operator_user), "/devices/bulk/group/", **data)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#bulk-message" and response["HX-Reswap"] == "innerHTML"
    assert response.content.decode() == message.replace("'", "&#x27;")
    assert Device.objects.get(pk=device_in_group_a.pk).group.name == "warehouse-a"


def test_a_deleted_device_is_not_part_of_a_selection(console_for, admin_user, operator_user, device_in_group_a, group_b, monkeypatch):
    from devices import services

    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[device_in_group_a.pk])
    response = _post(console_for(operator_user), "/devices/bulk/group/", device_ids=_ids(device_in_group_a), group="stores-b")
    assert response.status_code == 422 and response.content.decode() == "Select at least one device."
    assert Device.objects.get(pk=device_in_group_a.pk).group.name == "warehouse-a"


# --- tags -----------------------------------------------------------------------------------------


def test_an_operator_tags_and_untags_the_selection(console_for, operator_user, device_in_group_a, device_of_other_group):
    console = console_for(operator_user)
    both = _ids(device_in_group_a, device_of_other_group)
    Tag.objects.create(name="rugged").devices.add(device_of_other_group)

    added = _post(console, "/devices/bulk/tags/add/", device_ids=both, tag="Rugged, Floor 1")
    assert "Tagged 2 devices Rugged, Floor 1." in added.content.decode()
    assert _tags(device_in_group_a) == _tags(device_of_other_group) == ["floor-1", "rugged"]
    assert AuditEvent.objects.get(target_id=str(device_of_other_group.pk)).data == {"tags": {"added": ["floor-1"]}, "bulk": True}

    removed = _post(console, "/devices/bulk/tags/remove/", device_ids=both, tag="rugged")
    assert "Took rugged off 2 devices." in removed.content.decode()
    assert _tags(device_in_group_a) == _tags(device_of_other_group) == ["floor-1"]
    assert AuditEvent.objects.filter(data__tags__removed=["rugged"]).count() == 2


@pytest.mark.parametrize("tag, message", [("", "Give a tag name (letters, digits or dashes)."),
                                          ("!!!", "A tag needs a letter or a digit: “!!!”."),
                                          (",".join(f"t{i}" for i in range(51)), "At most 50 tags (this has 51).")])
def test_a_refused_tag_says_why(console_for, operator_user, device_in_group_a, tag, message):
    response = _post(console_for(operator_user), "/devices/bulk/tags/add/", device_ids=_ids(device_in_group_a), tag=tag)
    assert response.status_code == 422 and response.content.decode() == message
    assert not Tag.objects.exists()


# --- send a command: the composer, targeted by what the list shows ---------------------------------


def test_send_command_hands_the_ticked_devices_to_the_composer_by_hardware_id(console_for, operator_user, device_in_group_a,
                                                                               device_of_other_group):
    response = _post(console_for(operator_user), "/devices/bulk/command/", device_ids=_ids(device_of_other_group, device_in_group_a))
    assert response.status_code == 204
    url = urlsplit(response["HX-Redirect"])
    assert url.path == "/commands/new/"
    query = parse_qs(url.query)
    assert query["target_kind"] == ["device_ids"]
    assert query["device_ids"] == ["\n".join(sorted([device_in_group_a.hardware_id, device_of_other_group.hardware_id]))]
    composer = console_for(operator_user).get(response["HX-Redirect"]).content.decode()
    assert 'value="device_ids" checked' in composer and device_in_group_a.hardware_id in composer
    assert str(device_in_group_a.pk) not in composer


def test_send_command_to_all_that_match_hands_over_the_filter(console_for, operator_user, device_in_group_a):
    response = _post(console_for(operator_user), "/devices/bulk/command/", all_matching="1",
                     query="group=warehouse-a&q=scanner&status=offline&sort=-battery&page=3")
    query = parse_qs(urlsplit(response["HX-Redirect"]).query)
    assert query == {"target_kind": ["filter"], "filter_group": ["warehouse-a"], "filter_q": ["scanner"], "filter_status": ["offline"]}
    composer = console_for(operator_user).get(response["HX-Redirect"]).content.decode()
    assert 'value="filter" checked' in composer
    assert '<input type="hidden" name="filter_group" value="warehouse-a">' in composer
    assert '<input name="filter_q" value="scanner">' in composer and '<option value="offline" selected>' in composer


def test_send_command_to_more_ticked_rows_than_a_page_is_refused(console_for, operator_user):
    devices = DeviceFactory.create_batch(51)
    response = _post(console_for(operator_user), "/devices/bulk/command/", device_ids=_ids(*devices))
    assert response.status_code == 422
    assert response.content.decode() == "Tick at most 50 devices, or choose all that match the filter."


# --- delete (admins) ------------------------------------------------------------------------------


def test_an_admin_deletes_all_that_match_and_returns_to_the_filtered_list(console_for, admin_user, device_in_group_a,
                                                                           device_of_other_group, monkeypatch):
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    response = _post(console_for(admin_user), "/devices/bulk-delete/", all_matching="1", query="group=stores-b")
    assert response.status_code == 204 and response["HX-Redirect"] == "/devices/?group=stores-b"
    assert list(Device.objects.active()) == [device_in_group_a]


def test_a_posted_query_with_a_newline_does_not_reach_the_redirect_header(console_for, admin_user, device_in_group_a, monkeypatch):
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    response = _post(console_for(admin_user), "/devices/bulk-delete/", device_ids=_ids(device_in_group_a), query="q=x\r\nSet-Cookie: a=b")
    assert response.status_code == 204 and response["HX-Redirect"] == "/devices/?q=x%0D%0ASet-Cookie%3A+a%3Db"


# --- who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/devices/bulk/group/", "/devices/bulk/tags/add/", "/devices/bulk/tags/remove/",
                                 "/devices/bulk/command/", "/devices/bulk-delete/"])
def test_a_viewer_is_refused_every_bulk_write(console_for, viewer_user, device_in_group_a, group_b, url):
    response = _post(console_for(viewer_user), url, device_ids=_ids(device_in_group_a), group="stores-b", tag="x")
    assert response.status_code == 403
    assert Device.objects.get(pk=device_in_group_a.pk).group.name == "warehouse-a"
    assert not Tag.objects.exists() and Device.objects.active().count() == 1


def test_an_operator_cannot_bulk_delete(console_for, operator_user, device_in_group_a):
    assert _post(console_for(operator_user), "/devices/bulk-delete/", device_ids=_ids(device_in_group_a)).status_code == 403
    assert Device.objects.active().count() == 1


@pytest.mark.parametrize("url", ["/devices/bulk/group/", "/devices/bulk/tags/add/", "/devices/bulk/command/"])
def test_an_anonymous_visitor_is_sent_to_sign_in(client, device_in_group_a, url):
    response = client.post(url, {"device_ids": _ids(device_in_group_a), "group": "warehouse-a"})
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


@pytest.mark.parametrize("url", ["/devices/bulk/group/", "/devices/bulk/tags/add/", "/devices/bulk/command/"])
def test_bulk_actions_take_only_posts(console_for, operator_user, url):
    assert console_for(operator_user).get(url).status_code == 405


def test_a_viewer_sees_no_selection_or_bulk_bar_an_operator_no_delete(console_for, viewer_user, operator_user, device_in_group_a):
    html = console_for(viewer_user).get("/devices/").content.decode()
    assert 'id="bulk-form"' not in html and 'name="device_ids"' not in html
    html = console_for(operator_user).get("/devices/").content.decode()
    assert 'id="bulk-form"' in html and 'name="device_ids"' in html and "Move to group" in html
    assert 'id="bulk-delete"' not in html


# --- cost -----------------------------------------------------------------------------------------


def _fleet(n: int) -> list[str]:
    devices = Device.objects.bulk_create([Device(hardware_id=f"BULK{i:05d}", model="TC52") for i in range(n)])
    DeviceStatus.objects.bulk_create([DeviceStatus(device=d) for d in devices])
    return _ids(*devices)


def _count_queries(client, url, **data) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert _post(client, url, **data).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url, data", [("/devices/bulk/group/", {"group": "stores-b"}),
                                       ("/devices/bulk/tags/add/", {"tag": "rugged, dock"}),
                                       ("/devices/bulk/tags/remove/", {"tag": "rugged"})])
def test_a_bulk_change_costs_the_same_queries_for_21_or_50_devices(console_for, operator_user, group_b, url, data,
                                                                   django_assert_max_num_queries):
    console = console_for(operator_user)
    warm = _fleet(1)  # the session's first request, and the tags' creation, are not what is measured
    _post(console, "/devices/bulk/tags/add/", device_ids=warm, tag="rugged, dock")
    Device.objects.all().delete()
    # 21: past the policy channel's per-device path for a handful (commands.policies.resolve.FEW)
    small = _fleet(21)
    Tag.objects.get(name="rugged").devices.add(*small)
    few = _count_queries(console, url, device_ids=small, **data)
    Device.objects.all().delete()
    large = _fleet(50)
    Tag.objects.get(name="rugged").devices.add(*large)
    assert _count_queries(console, url, device_ids=large, **data) == few
    Device.objects.all().delete()
    many = _fleet(300)
    Tag.objects.get(name="rugged").devices.add(*many)
    with django_assert_max_num_queries(25):
        _post(console, url, all_matching="1", query="q=BULK", **data)
