"""The console's re-enrollment requests (PROTOCOL.md v1.1): the list with approve and deny for
admins, the navigation's pending count, the device page's open requests, and the fleet setting
saying what `allowed` permits. Server-rendered, escaped, no inline script."""

import re
from html.parser import HTMLParser

import pytest

from devices.models import Device
from devices.tests.factories import DeviceFactory
from enrollment.models import ReenrollRequest
from enrollment.services import enroll as enroll_services
from enrollment.services.reenroll import approve_reenroll_request
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def ask(key):
    def open_request(hardware_id: str = "HW-ASK", model: str = "Pixel 8") -> ReenrollRequest:
        device = Device.objects.filter(hardware_id=hardware_id).first() or DeviceFactory(hardware_id=hardware_id, alias="dock-7")
        with pytest.raises(enroll_services.EnrollRefused) as refused:
            enroll_services.enroll_device(raw_key=key, hardware_id=device.hardware_id, info={"model": model}, ip="198.51.100.4")
        return ReenrollRequest.objects.get(pk=refused.value.extra["reenroll_request"])

    return open_request


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inline = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.inline.append("<script> without src")
        self.inline += [f"{tag} {name}=" for name in names if name.startswith("on")]


def _no_inline_script(html: str) -> None:
    """What the coming strict CSP (script-src 'self') would block: inline scripts and handlers."""
    tags = _Tags()
    tags.feed(html)
    assert tags.inline == []


def test_an_admin_sees_pending_requests_with_what_to_decide_on(console_for, admin_user, ask):
    request = ask(model="Galaxy Tab")
    html = console_for(admin_user).get("/enrollment/reenroll-requests/").content.decode()
    row = html[html.index(f'id="reenroll-{request.pk}"'):]
    for shown in ("dock-7", "HW-ASK", "198.51.100.4", "bench", "Galaxy Tab", "pending", ">Approve<", ">Deny<"):
        assert shown in row[: row.index("</tr>")], shown
    _no_inline_script(html)


def test_approving_answers_the_row_and_the_navigation_count(console_for, admin_user, ask):
    request, other = ask("HW-1"), ask("HW-2")
    response = console_for(admin_user).post(f"/enrollment/reenroll-requests/{request.pk}/approve/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="reenroll-{request.pk}"')  # the row first: htmx parses it in table context
    assert "approved" in html and ">Withdraw<" in html and ">Approve<" not in html
    count = re.search(r'<span id="reenroll-pending-count"[^>]*hx-swap-oob="true"[^>]*>(\d*)</span>', html)
    assert count and count.group(1) == "1"
    request.refresh_from_db()
    assert request.state == "approved" and request.decided_by == admin_user
    assert AuditEvent.objects.get(action="reenroll_request.approve").ip == "127.0.0.1"
    assert other.state == "pending"


def test_denying_and_a_decision_that_is_too_late(console_for, admin_user, ask):
    request = ask()
    console = console_for(admin_user)
    assert "denied" in console.post(f"/enrollment/reenroll-requests/{request.pk}/deny/").content.decode()
    late = console.post(f"/enrollment/reenroll-requests/{request.pk}/approve/")
    assert late.status_code == 409 and "only a pending request can be approved" in late.content.decode()
    request.refresh_from_db()
    assert request.state == "denied"


def test_the_state_tabs_show_decided_requests(console_for, admin_user, ask):
    request = ask()
    approve_reenroll_request(actor=admin_user, request_id=request.pk)
    console = console_for(admin_user)
    assert f"reenroll-{request.pk}" not in console.get("/enrollment/reenroll-requests/").content.decode()
    assert f"reenroll-{request.pk}" in console.get("/enrollment/reenroll-requests/?state=approved").content.decode()
    assert console.get("/enrollment/reenroll-requests/?state=nonsense").status_code == 200  # falls back to pending


def test_the_navigation_links_admins_to_the_requests_and_loads_the_pending_count(console_for, admin_user, operator_user, ask):
    ask("HW-1"), ask("HW-2")
    html = console_for(admin_user).get("/").content.decode()
    assert 'href="/enrollment/reenroll-requests/"' in html
    assert 'hx-get="/enrollment/reenroll-requests/count/"' in html
    count = console_for(admin_user).get("/enrollment/reenroll-requests/count/").content.decode()
    assert re.search(r'id="reenroll-pending-count"[^>]*>2</span>', count)
    assert "reenroll-requests" not in console_for(operator_user).get("/").content.decode()


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_lower_roles_neither_see_nor_decide(client, operator_user, viewer_user, ask, role):
    request = ask()
    client.force_login(operator_user if role == "operator" else viewer_user)
    for response in (
        client.get("/enrollment/reenroll-requests/"),
        client.get("/enrollment/reenroll-requests/count/"),
        client.post(f"/enrollment/reenroll-requests/{request.pk}/approve/"),
        client.post(f"/enrollment/reenroll-requests/{request.pk}/deny/"),
    ):
        assert response.status_code == 403
    request.refresh_from_db()
    assert request.state == "pending"


def test_anonymous_visitors_are_sent_to_sign_in(client, ask):
    request = ask()
    assert client.get("/enrollment/reenroll-requests/").status_code == 302
    assert client.post(f"/enrollment/reenroll-requests/{request.pk}/approve/").status_code == 302
    request.refresh_from_db()
    assert request.state == "pending"


def test_the_device_page_shows_its_open_requests(console_for, admin_user, viewer_user, ask):
    request = ask()
    device_url = f"/devices/{request.device_id}/"
    html = console_for(admin_user).get(device_url).content.decode()
    assert "Re-enrollment requests" in html and f'id="reenroll-{request.pk}"' in html and ">Approve<" in html
    _no_inline_script(html)
    viewer_html = console_for(viewer_user).get(device_url).content.decode()
    assert "Re-enrollment requests" in viewer_html and "198.51.100.4" in viewer_html
    assert ">Approve<" not in viewer_html and "/approve/" not in viewer_html


def test_a_device_without_open_requests_shows_none(console_for, admin_user, ask):
    request = ask()
    approve_reenroll_request(actor=admin_user, request_id=request.pk)
    ReenrollRequest.objects.filter(pk=request.pk).update(state="used")
    html = console_for(admin_user).get(f"/devices/{request.device_id}/").content.decode()
    assert "Re-enrollment requests" not in html


def test_what_a_device_sent_is_escaped_everywhere(console_for, admin_user, ask):
    request = ask(model=HOSTILE)
    console = console_for(admin_user)
    pages = [
        console.get("/enrollment/reenroll-requests/").content.decode(),
        console.get(f"/devices/{request.device_id}/").content.decode(),
        console.post(f"/enrollment/reenroll-requests/{request.pk}/approve/").content.decode(),
    ]
    for html in pages:
        assert HOSTILE not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
        _no_inline_script(html)


def test_the_fleet_settings_say_what_allowed_permits(console_for, viewer_user):
    html = console_for(viewer_user).get("/settings/").content.decode()
    assert "Allowed with any enrollment key" in html
    assert "take that device over" in html and "Wi-Fi" in html and "serial number" in html
    assert 'value="approval" selected' in html  # the default since v1.1
