"""The alerts page in a real browser (Debian's Chromium) against a real server whose embedded
scheduler evaluates the rules: 20 devices go offline and their alerts appear without a reload;
an operator acknowledges one and it leaves the Open tab, live too."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def lobby(transactional_db):
    from devices.models import DeviceStatus
    from devices.tests.factories import DeviceFactory, DeviceGroupFactory
    from mdm.alerts import seeds
    from mdm.alerts.models import AlertRule

    seeds.seed(AlertRule)  # a transactional test starts from flushed tables
    AlertRule.objects.exclude(kind="device_offline").update(enabled=False)
    group = DeviceGroupFactory(name="Lobby")
    devices = [DeviceFactory(group=group, alias=f"kiosk-{i:02d}") for i in range(20)]
    DeviceStatus.objects.filter(device__in=devices).update(online=True, last_seen=timezone.now())
    return devices


def test_alerts_appear_live_when_20_devices_go_offline(live_server_proc, page, lobby):
    from devices.models import DeviceStatus
    from mdm.alerts.models import Alert

    UserFactory(username="oscar-operator", role="operator", password=PASSWORD)
    url = live_server_proc.url
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", "oscar-operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.goto(url + "/alerts/")
    page.locator("#live-indicator.on").wait_for()  # the WebSocket is open, joined to "alerts"
    assert page.locator("tr.alert-row").count() == 0
    page.evaluate("window.__sameDocument = true")

    DeviceStatus.objects.filter(device__in=lobby).update(online=False, last_seen=timezone.now() - timedelta(minutes=11))
    # The server's scheduler evaluates every ALERT_SWEEP_S (5 s): the rows come over the WebSocket.
    page.locator("tr.alert-row").nth(19).wait_for(timeout=30_000)
    assert page.locator("tr.alert-row").count() == 20
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert Alert.objects.filter(state="firing").count() == 20
    expect(page.locator("#tab-open .tab-count")).to_have_text("20")
    expect(page.locator("#alerts-open-count")).to_have_text("20")  # the navigation's count, live too

    first = Alert.objects.order_by("subject_label").first()
    page.click(f"#alert-row-{first.pk} button:has-text('Acknowledge')")
    # The acknowledge's broadcast refreshes the list: the alert leaves the Open tab, and the count drops.
    page.locator(f"#alert-row-{first.pk}").wait_for(state="detached", timeout=15_000)
    expect(page.locator("tr.alert-row")).to_have_count(19)
    expect(page.locator("#alerts-open-count")).to_have_text("19")
    first.refresh_from_db()
    assert first.acknowledged_by.username == "oscar-operator"
    page.click("#tab-acknowledged")
    expect(page.locator(f"#alert-row-{first.pk}")).to_contain_text("acknowledged by oscar-operator")
    assert "tab=acknowledged" in page.url
    assert not [e for e in errors if "Content Security Policy" in e or "htmx" in e.lower()], errors


def test_a_rule_form_answered_with_errors_is_swapped_in_place_then_saved(live_server_proc, page, lobby):
    from mdm.alerts.models import AlertRule

    UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    url = live_server_proc.url
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", "ada-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.goto(url + "/alerts/rules/new/")
    page.select_option("#kind-select", "battery_low")
    page.locator("#rule-form input[name=param_percent]").wait_for()  # the kind's own fields
    page.fill("#rule-form input[name=name]", "Device offline")  # taken by the seeded rule
    page.fill("#rule-form input[name=param_percent]", "25")
    page.fill("#rule-form input[name=hold]", "3")
    page.select_option("#rule-form select[name=hold_unit]", "min")
    page.click("#rule-form button[type=submit]")
    page.locator("#rule-form small.error", has_text="A rule with this name exists.").wait_for()  # the 422, in place
    assert page.input_value("#rule-form input[name=param_percent]") == "25"  # what was typed is kept
    page.fill("#rule-form input[name=name]", "Lobby battery")
    page.click("#rule-form button[type=submit]")
    page.wait_for_url(url + "/alerts/rules/")
    assert "Saved the rule “Lobby battery”." in page.inner_text(".messages")
    rule = AlertRule.objects.get(name="Lobby battery")
    assert (rule.kind, rule.params, rule.hold_s) == ("battery_low", {"percent": 25}, 180)
