"""The composer's "devices by hardware id or name" target (and the API's device_ids): what the
devices list shows (hardware ids, names) works as well as device ids; what names no device, or
more than one, is refused with a message saying which."""

import pytest

from commands import services, targeting
from commands.models import Command
from commands.params import ParamsError
from commands.tests.conftest import make_device

pytestmark = pytest.mark.django_db


def _refused(target) -> list[str]:
    with pytest.raises(ParamsError) as exc:
        targeting.normalize(target)
    return exc.value.errors["target"]


def test_hardware_ids_names_and_ids_all_name_their_devices():
    by_hardware_id = make_device(hardware_id="R58N12ABCDE")
    by_name = make_device(alias="Front desk")
    by_id = make_device()
    spec = targeting.normalize({"device_ids": ["R58N12ABCDE", " Front desk ", by_id.id, "R58N12ABCDE"]})
    assert spec == {"device_ids": sorted([by_hardware_id.id, by_name.id, by_id.id])}


def test_a_hardware_id_that_looks_like_an_id_without_dashes_stays_a_hardware_id():
    device = make_device(hardware_id="0123456789abcdef0123456789abcdef")
    assert targeting.normalize({"device_ids": ["0123456789abcdef0123456789abcdef"]}) == {"device_ids": [device.id]}


def test_a_hardware_id_wins_over_another_devices_name():
    named = make_device(alias="HW-SHARED")
    owner = make_device(hardware_id="HW-SHARED")
    assert targeting.normalize({"device_ids": ["HW-SHARED"]}) == {"device_ids": [owner.id]} != {"device_ids": [named.id]}


def test_unknown_hardware_ids_or_names_are_named_in_the_refusal():
    make_device(hardware_id="KNOWN-1")
    assert _refused({"device_ids": ["KNOWN-1", "nope", "gone"]}) == ["No device has the hardware id or name “gone”, “nope”."]


def test_a_name_two_devices_share_asks_for_hardware_ids():
    make_device(alias="dock")
    make_device(alias="dock")
    assert _refused({"device_ids": ["dock"]}) == ["More than one device is named “dock”: give their hardware ids."]


def test_a_deleted_device_is_not_found_by_its_hardware_id(admin_user, monkeypatch):
    from devices import services as device_services

    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    gone = make_device(hardware_id="RETIRED-1")
    device_services.delete_devices(actor=admin_user, device_ids=[gone.device.pk])
    assert _refused({"device_ids": ["RETIRED-1"]}) == ["No device has the hardware id or name “RETIRED-1”."]


@pytest.mark.parametrize("values, message", [
    (["a\x00b"], "Each device is a hardware id, name or id (text without NUL or lone surrogates)."),
    ([7], "Each device is a hardware id, name or id (text without NUL or lone surrogates)."),
    (["  ", ""], "Give at least one device: its hardware id, name or id."),
])
def test_text_that_names_nothing_is_refused_before_the_database(values, message):
    assert _refused({"device_ids": values}) == [message]


def test_the_composer_issues_to_the_hardware_ids_the_list_handed_over(console_for, operator_user):
    first, second = make_device(hardware_id="LOBBY-01"), make_device(hardware_id="LOBBY-02")
    make_device(hardware_id="LOBBY-03")
    client = console_for(operator_user)
    form = {"source": "type", "type": "ping", "target_kind": "device_ids", "device_ids": "LOBBY-01\nLOBBY-02\n", "expires_in_min": "60"}
    preview = client.post("/commands/new/preview/", form, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="dry-run-count">2<' in preview and "LOBBY-01" in preview and "LOBBY-03" not in preview
    client.post("/commands/new/issue/", form, HTTP_HX_REQUEST="true")
    command = Command.objects.get()
    assert command.target == {"device_ids": sorted([first.id, second.id])} and command.target_count == 2


def test_the_composer_says_which_hardware_id_it_does_not_know(console_for, operator_user):
    make_device(hardware_id="LOBBY-01")
    form = {"source": "type", "type": "ping", "target_kind": "device_ids", "device_ids": "LOBBY-01, LOBBY-9"}
    html = console_for(operator_user).post("/commands/new/preview/", form, HTTP_HX_REQUEST="true").content.decode()
    assert "No device has the hardware id or name “LOBBY-9”." in html


def test_the_api_takes_hardware_ids_too(operator_api):
    device = make_device(hardware_id="API-HW-1")
    response = operator_api.post("/api/v1/commands", {"type": "ping", "target": {"device_ids": ["API-HW-1"]}}, format="json")
    assert response.status_code == 201, response.content
    assert Command.objects.get().target == {"device_ids": [device.id]}


def test_the_composer_opens_targeted_at_what_the_list_handed_over(console_for, operator_user):
    html = console_for(operator_user).get("/commands/new/?target_kind=device_ids&device_ids=LOBBY-01%0ALOBBY-02").content.decode()
    assert '<input type="radio" name="target_kind" value="device_ids" checked' in html
    assert ">LOBBY-01\nLOBBY-02</textarea>" in html
    html = console_for(operator_user).get("/commands/new/").content.decode()
    assert '<input type="radio" name="target_kind" value="all" checked' in html


def test_an_issued_command_to_a_filter_from_the_list_uses_every_list_filter(console_for, operator_user):
    make_device(group="lobby", alias="kiosk-1")
    make_device(group="office", alias="kiosk-2")
    form = {"source": "type", "type": "ping", "target_kind": "filter", "filter_q": "kiosk", "filter_group": "lobby"}
    issued = services.issue_command(actor=operator_user, type="ping", params={}, target={"filter": {"q": "kiosk", "group": "lobby"}})
    assert issued.command.target_count == 1
    html = console_for(operator_user).post("/commands/new/preview/", form, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="dry-run-count">1<' in html
