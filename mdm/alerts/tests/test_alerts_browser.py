"""The alerts page in a real browser (Debian's Chromium) against a real server whose embedded
scheduler evaluates the rules: 20 simulated devices (loadtest.simulator, the protocol over HTTP)
enroll and heartbeat, then go dark, and their alerts appear without a reload; an operator
acknowledges one and it leaves the Open tab, live too."""

import asyncio
import threading
import time

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]

FLEET = 20


@pytest.fixture
def offline_rule(transactional_db):
    from mdm.alerts import seeds
    from mdm.alerts.models import AlertRule

    seeds.seed(AlertRule)  # a transactional test starts from flushed tables
    AlertRule.objects.exclude(kind="device_offline").update(enabled=False)
    AlertRule.objects.filter(kind="device_offline").update(params={"minutes": 1})  # the shortest a rule takes
    return AlertRule.objects.get(kind="device_offline")


class SimulatedLobby:
    """FLEET simulated agents heartbeating every 5 s in a thread of their own (Playwright's sync
    API holds this thread's event loop), until `go_dark()`: then they stop, as devices whose
    power or network went."""

    def __init__(self, url: str, enroll_key: str):
        self.url, self.enroll_key = url, enroll_key
        self.dark = threading.Event()
        self.enrolled = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from loadtest.simulator import Fleet

        async def go():
            async with Fleet(base_url=self.url, enroll_key=self.enroll_key, devices=FLEET, interval=5, duration=600,
                             hardware_prefix="lobby") as fleet:
                await fleet.enroll_all()
                fleet.stop_at = time.monotonic() + 600
                beating = [asyncio.create_task(fleet.heartbeat_loop(d)) for d in fleet.devices if d.device_id]
                self.enrolled.set()
                while not self.dark.is_set():
                    await asyncio.sleep(0.2)
                for task in beating:
                    task.cancel()
                await asyncio.gather(*beating, return_exceptions=True)

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self.enrolled.set()

    def go_dark(self):
        self.dark.set()
        self.thread.join(timeout=30)


def test_alerts_appear_live_when_20_simulated_devices_go_offline(live_server_proc, page, offline_rule, admin_user):
    from devices.models import DeviceStatus
    from enrollment.services.keys import create_enrollment_key
    from mdm.alerts.models import Alert

    UserFactory(username="oscar-operator", role="operator", password=PASSWORD)
    url = live_server_proc.url
    lobby = SimulatedLobby(url, create_enrollment_key(actor=admin_user, name="lobby").raw)
    lobby.thread.start()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", "oscar-operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.goto(url + "/alerts/")
    page.locator("#live-indicator.on").wait_for()  # the WebSocket is open, joined to "alerts"
    assert lobby.enrolled.wait(60) and lobby.error is None, lobby.error
    deadline = time.monotonic() + 30  # every device's heartbeats reached PostgreSQL (the 1 s flush)
    while DeviceStatus.objects.filter(device__hardware_id__startswith="lobby-", online=True).count() < FLEET:
        assert time.monotonic() < deadline, "the simulated devices never all came online"
        time.sleep(0.5)
    assert page.locator("tr.alert-row").count() == 0
    page.evaluate("window.__sameDocument = true")

    lobby.go_dark()
    assert lobby.error is None, lobby.error
    # A minute of silence, then the scheduler's look at the next crossing (or its 5 s sweep):
    # the rows come over the WebSocket.
    page.locator("tr.alert-row").nth(FLEET - 1).wait_for(timeout=120_000)
    assert page.locator("tr.alert-row").count() == FLEET
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert Alert.objects.filter(rule=offline_rule, state="firing").count() == FLEET
    assert set(Alert.objects.values_list("subject_label", flat=True)) == {f"lobby-{i:06d}" for i in range(FLEET)}
    expect(page.locator("#tab-open .tab-count")).to_have_text(str(FLEET))
    expect(page.locator("#alerts-open-count")).to_have_text(str(FLEET))  # the navigation's count, live too

    first = Alert.objects.order_by("subject_label").first()
    page.click(f"#alert-row-{first.pk} button:has-text('Acknowledge')")
    # The acknowledge's broadcast refreshes the list: the alert leaves the Open tab, and the count drops.
    page.locator(f"#alert-row-{first.pk}").wait_for(state="detached", timeout=15_000)
    expect(page.locator("tr.alert-row")).to_have_count(FLEET - 1)
    expect(page.locator("#alerts-open-count")).to_have_text(str(FLEET - 1))
    first.refresh_from_db()
    assert first.acknowledged_by.username == "oscar-operator"
    page.click("#tab-acknowledged")
    expect(page.locator(f"#alert-row-{first.pk}")).to_contain_text("acknowledged by oscar-operator")
    assert "tab=acknowledged" in page.url
    assert not [e for e in errors if "Content Security Policy" in e or "htmx" in e.lower()], errors


def test_a_rule_form_answered_with_errors_is_swapped_in_place_then_saved(live_server_proc, page, offline_rule):
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
