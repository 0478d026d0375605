"""The commands pages answer bad input with a 422 and messages in the console's terms: labels, not
field codes (`argv:`, `target:`, `expires_in_s:`), minutes where the field is in minutes, no
Python lists, and each message once."""

import pytest

from commands import forms
from commands.models import Command, WifiConfig
from commands.params import ParamsError
from commands.tests.conftest import make_device

pytestmark = pytest.mark.django_db
CODES = ("argv:", "target:", "expires_in_s", "filter.", "password:", "['", "[&#x27;")


def compose(client, **fields):
    form = {"source": "type", "type": "ping", "target_kind": "all", "expires_in_min": "60", **fields}
    response = client.post("/commands/new/preview/", form, HTTP_HX_REQUEST="true")
    return response.status_code, response.content.decode()


def assert_user_terms(html: str) -> None:
    for code in CODES:
        assert code not in html, code


def test_a_lifetime_out_of_range_is_answered_in_minutes(console_for, operator_user):
    make_device()
    status, html = compose(console_for(operator_user), expires_in_min="0")
    assert status == 422 and "Expires after: Minutes, a number from 1 to 43,200 (30 days)." in html
    assert_user_terms(html)


def test_the_services_lifetime_in_seconds_reads_in_minutes_on_a_page():
    exc = ParamsError({"expires_in_s": ["An integer from 1 to 2592000 (30 days)."]})
    assert forms.params_errors(exc) == ["Expires after: Minutes, a number from 1 to 43,200 (30 days)."]


def test_a_refused_shell_command_reads_as_a_command_line_not_a_python_list(console_for, operator_user):
    make_device()
    status, html = compose(console_for(operator_user), type="shell", argv="rm -rf /")
    assert status == 422
    assert "Command line: Refused by the shell allowlist: rm -rf / does not start with an allowed prefix (allowed: " in html
    assert_user_terms(html)


def test_target_errors_stand_alone_and_filter_errors_name_the_filter(console_for, operator_user):
    make_device(group="lobby")
    client = console_for(operator_user)
    status, html = compose(client, target_kind="filter", filter_battery_below="lots")
    assert status == 422 and "Battery below %: " in html
    assert_user_terms(html)
    status, html = compose(client, target_kind="filter", filter_q="nothing-matches-this")
    assert status == 200 and 'id="dry-run-count">0<' in html  # a dry run of none is an answer, not an error
    response = client.post("/commands/new/issue/", {"source": "type", "type": "ping", "target_kind": "filter",
                                                    "filter_q": "nothing-matches-this"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "<li>The target matches no device.</li>" in response.content.decode()
    assert Command.objects.count() == 0


def test_the_same_message_is_listed_once():
    exc = ParamsError({"target": ["The target matches no device.", "The target matches no device."]})
    assert forms.params_errors(exc) == ["The target matches no device."]


def test_a_wifi_error_is_shown_once_beside_its_field(console_for, operator_user):
    response = console_for(operator_user).post("/commands/wifi/", {"name": "Lobby", "ssid": "Lobby", "security": "wpa2",
                                                                   "password": "short"})
    html = response.content.decode()
    assert response.status_code == 422 and html.count("WPA passwords have 8-63 characters.") == 1
    field = html[html.index('name="password"') - 600 : html.index('name="password"') + 300]
    assert "WPA passwords have 8-63 characters." in field
    assert_user_terms(html)
    assert not WifiConfig.objects.exists()


def test_a_wifi_name_taken_is_shown_once(console_for, operator_user):
    client = console_for(operator_user)
    client.post("/commands/wifi/", {"name": "Lobby", "ssid": "Lobby", "security": "open"})
    # Saving under a taken name updates it; a duplicate only arises from the service: call it twice.
    from commands import services

    with pytest.raises(ParamsError) as caught:
        services.create_wifi_config(actor=operator_user, name="Lobby", ssid="x", security="open", password="", hidden=False,
                                    group=None)
    form = forms.WifiForm({"name": "Lobby", "ssid": "x", "security": "open"})
    assert form.is_valid()
    form.add_service_errors(caught.value.errors)  # what the Wi-Fi view does with a service's refusal
    assert form.errors == {"name": ["A Wi-Fi config with this name exists."]}


def test_pushing_wifi_to_a_group_without_devices_says_why_in_place(console_for, operator_user):
    from devices.models import DeviceGroup

    client = console_for(operator_user)
    client.post("/commands/wifi/", {"name": "Empty", "ssid": "Nobody", "security": "open",
                                    "group": DeviceGroup.objects.create(name="empty").name})
    config = WifiConfig.objects.get()
    response = client.post(f"/commands/wifi/{config.pk}/push/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    # the row's push form again, with the reason beside its button (hx-target="this")
    assert response.status_code == 422 and html.startswith('<form class="inline-form"')
    assert "No device in group empty to send it to." in html and html.count('class="error"') == 1
    assert_user_terms(html)


def test_a_preset_the_allowlist_refuses_is_explained_once_in_the_consoles_terms(console_for, operator_user):
    response = console_for(operator_user).post("/commands/presets/", {"name": "Bad", "type": "shell",
                                                                      "params": '{"argv": ["reboot"]}'})
    html = response.content.decode()
    assert response.status_code == 422 and html.count("Refused by the shell allowlist") == 1
    # beside its field (templates/_field.html), so without the field's name in front
    assert '<small class="error" role="alert">Refused by the shell allowlist: reboot does not start' in html
    assert_user_terms(html)


def test_a_commands_params_read_as_words_and_a_command_line(console_for, viewer_user):
    from commands import services
    from commands.models import ShellAllowRule

    make_device()
    ShellAllowRule.objects.create(argv_prefix=["getprop"])
    command = services.issue_command(actor=None, type="shell", params={"argv": ["getprop", "ro.product.model"]},
                                     target={"all": True}).command
    html = console_for(viewer_user).get(f"/commands/{command.pk}/").content.decode()
    assert "Params: <code class=\"argv\">Command line: getprop ro.product.model</code>" in html
    assert_user_terms(html)


def test_the_composer_labels_the_shell_field_as_its_messages_do(console_for, operator_user):
    html = console_for(operator_user).get("/commands/new/params/?type=shell").content.decode()
    assert "Command line" in html and ">argv" not in html
