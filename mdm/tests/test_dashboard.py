"""The dashboard: the fleet online over time, its spread over OS, patch, agent versions and battery,
commands and their success rate, open alerts, compliance, a feed without the fleet's chatter, and
first-run guidance for an empty fleet; everyone signed in reads it, in a bounded number of queries."""

import itertools
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from commands.models import Command, Delivery
from devices import fleet_stats
from devices.models import FleetSample
from devices.tests.factories import DeviceFactory
from mdm import audit
from mdm.alerts.models import Alert, AlertRule

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
_seq = itertools.count(1)


def days_ago(n):
    return timezone.localdate() - timedelta(days=n)


def device(alias, *, online=False, battery=None, os_version="", android_version="14", agent="", patch=None):
    return DeviceFactory(alias=alias, android_version=android_version, status__online=online, status__battery_pct=battery,
                         status__os_version=os_version, status__agent_version=agent, status__security_patch=patch)


def command(devices, states, *, days_back=0):
    at = timezone.now() - timedelta(days=days_back)
    c = Command.objects.create(type="ping", target={"all": True}, target_count=len(devices), created_at=at, expires_at=at + timedelta(hours=1))
    for d, state in zip(devices, states):
        Delivery.objects.create(command=c, device=d, seq=next(_seq), state=state, expires_at=c.expires_at, queued_at=at)
    return c


def firing(d, *, kind="device_offline", minutes=3):
    since = timezone.now() - timedelta(minutes=minutes)
    return Alert.objects.create(rule=AlertRule.objects.get(kind=kind), subject_type="device", subject_id=str(d.pk),
                                subject_label=d.alias, state="firing", severity="warning", since=since, fired_at=since)


@pytest.fixture
def fleet(db):
    devices = [
        device("lobby-1", online=True, battery=12, os_version="15", agent="2.1.0", patch=days_ago(10)),
        device("lobby-2", online=True, battery=64, os_version="15", agent="2.1.0", patch=days_ago(60)),
        device("store-1", battery=91, android_version="13", agent="2.0.0", patch=days_ago(200)),
        device("silent", android_version=""),  # enrolled, never reported anything
    ]
    now = timezone.now()
    for minutes, online in ((60, 1), (15, 3), (10, 2), (5, 2)):
        FleetSample.objects.create(at=fleet_stats.bucket_of(now - timedelta(minutes=minutes)), total=4, online=online)
    command(devices, ["succeeded", "succeeded", "failed", "queued"])
    command(devices[:2], ["succeeded", "expired"], days_back=2)
    return devices


def section(html, element_id) -> str:
    match = re.search(rf'<(\w+)[^>]* id="{element_id}".*?</\1>', html, re.S)
    assert match, f"#{element_id} is not on the page"
    return match[0]


def spread_rows(html, element_id) -> list[tuple[str, str, str]]:
    """(label, devices, share) of each row of a spread table."""
    table = section(html, element_id)
    return [(re.sub(r"<[^>]+>", "", label).strip(), n, share)
            for label, n, share in re.findall(r'<th scope="row">(.*?)</th>.*?<td class="num">(\d+)</td><td class="num">(\d+)%</td>', table, re.S)]


def test_it_charts_the_fleet_online_over_the_last_day_with_a_text_alternative(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/").content.decode()
    online = section(html, "fleet-online")
    text = "Devices online over the last 24 hours: 2 of 4 now; lowest 1 ("
    assert f'role="img" aria-label="{text}' in online and f"<figcaption>{text}" in online
    assert "highest 3 (" in online
    # The last three samples and the present, joined up (online and enrolled); the sample an hour
    # ago alone, a dot: no line is drawn across the 45 minutes nothing was recorded.
    assert online.count("<polyline") == 2 and online.count("<circle") == 1
    assert 'aria-current="true">24 hours<' in online


def test_it_spreads_the_fleet_over_os_patch_agent_and_battery(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/").content.decode()
    # The OS version a device reports, else the Android version it enrolled with.
    assert spread_rows(html, "spread-os") == [("15", "2", "50"), ("13", "1", "25"), ("not reported", "1", "25")]
    assert spread_rows(html, "spread-patch") == [("30 days old or newer", "1", "25"), ("31 to 90 days old", "1", "25"),
                                                 ("older than 90 days", "1", "25"), ("not reported", "1", "25")]
    assert spread_rows(html, "spread-agent") == [("2.1.0", "2", "50"), ("2.0.0", "1", "25"), ("not reported", "1", "25")]
    assert spread_rows(html, "spread-battery") == [("below 20%", "1", "25"), ("50 to 79%", "1", "25"),
                                                   ("80% and above", "1", "25"), ("not reported", "1", "25")]
    # Where the devices list has the filter, the row opens exactly those devices.
    assert 'href="/devices/?battery_below=20">below 20%<' in html and 'href="/devices/?patch_older_than_days=90">' in html
    assert '<rect width="50" height="1"/>' in section(html, "spread-os")  # the bar, drawn without a style attribute


def test_a_long_tail_of_versions_is_folded_into_one_row(console_for, viewer_user, db):
    for i in range(fleet_stats.TOP + 3):
        device(f"d{i}", agent=f"1.{i}")
    rows = spread_rows(console_for(viewer_user).get("/").content.decode(), "spread-agent")
    assert len(rows) == fleet_stats.TOP + 1 and rows[-1] == ("other versions", "3", "33")


def test_it_counts_commands_per_day_and_their_success_rate(console_for, viewer_user, fleet):
    html = console_for(viewer_user).get("/").content.decode()
    commands = section(html, "dashboard-commands")
    # 3 of the 5 finished deliveries succeeded (1 failed, 1 expired); the queued one has no outcome yet.
    assert '<strong id="success-rate">60%</strong>' in commands
    assert "Commands issued over the last 7 days: 2; 60% of the 5 finished deliveries succeeded (1 failed, 1 expired); 1 not finished yet." in commands
    today = re.search(rf"<tr><th scope=\"row\">{timezone.localdate():%a %Y-%m-%d}</th>(.*?)</tr>", commands)[1]
    assert re.findall(r"<td>(\d+)</td>", today) == ["1", "2", "1", "0", "0", "1"]
    assert commands.count('<rect class="seg ') == 5  # today: succeeded, failed, pending; two days ago: succeeded, expired


def test_it_lists_the_open_alerts(console_for, viewer_user, fleet):
    alert = firing(fleet[2])
    html = console_for(viewer_user).get("/").content.decode()
    alerts = section(html, "alerts-live")
    assert f'href="/alerts/{alert.pk}/"' in alerts and f'href="/devices/{fleet[2].pk}/">store-1<' in alerts
    assert 'class="n alerts-open-count"' in html and 'id="alerts-refresh"' in html


def test_the_alerts_broadcast_reloads_the_list_alone(console_for, viewer_user, fleet):
    for i, d in enumerate(fleet):
        firing(d, minutes=i)
    client = console_for(viewer_user)
    # What the refresh element of mdm/alerts/live.py asks for: the page's own URL, #alerts-live.
    answer = client.get("/?period=7d", HTTP_HX_TARGET="alerts-live", **HTMX).content.decode()
    assert answer.lstrip().startswith('<div id="alerts-live">') and "<html" not in answer
    assert answer.count("<li>") == 4 and "open alerts</a>" not in answer
    for i, d in enumerate(fleet[:3]):
        firing(d, kind="battery_low", minutes=10 + i)
    answer = client.get("/", HTTP_HX_TARGET="alerts-live", **HTMX).content.decode()
    assert answer.count("<li>") == 5 and '">All 7 open alerts</a>' in answer


def test_the_period_links_answer_the_chart_alone(console_for, viewer_user, fleet):
    client = console_for(viewer_user)
    week = client.get("/?period=7d", HTTP_HX_TARGET="fleet-online", **HTMX).content.decode()
    assert week.lstrip().startswith('<section class="dash-panel dash-wide" id="fleet-online"')
    assert 'aria-current="true">7 days<' in week and "over the last 7 days: 2 of 4 now" in week
    odd = client.get("/?period=forever", HTTP_HX_TARGET="fleet-online", **HTMX).content.decode()
    assert 'aria-current="true">24 hours<' in odd  # an unknown period is the default one, not an error


def test_the_feed_folds_enrollments_and_leaves_out_the_fleets_chatter(console_for, admin_user, fleet):
    policy = uuid.uuid4()
    for i in range(5):
        audit.record(actor="key:Berlin", action="enrollment_key.use", target=("enrollmentkey", "1"),
                     data={"device_id": str(uuid.uuid4()), "reenrolled": i == 0})
    audit.record(actor=None, action="command_keys.promote", target=("devicekey", "*"), data={"devices": 3})
    audit.record(actor=admin_user, action="policy.create", target=("policy", str(policy)), data={"name": "Lobby kiosk"})
    audit.record(actor=admin_user, action="fleet_settings.update", data={"heartbeat_interval_s": {"from": 30, "to": 15}})
    feed = section(console_for(admin_user).get("/").content.decode(), "recent-activity")
    lines = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"<li>(.*?)</li>", feed, re.S)]
    assert lines == ["just now alice-admin changed the fleet settings",
                     "just now alice-admin created a policy · Lobby kiosk",
                     "just now key Berlin 5 devices enrolled (1 again)"]
    assert f'href="/commands/policies/{policy}/">created a policy<' in feed and "enrollment_key" not in feed


def test_viewers_read_the_dashboard_but_not_the_feed(console_for, viewer_user, fleet):
    audit.record(actor="user:ada", action="policy.create", target=("policy", str(uuid.uuid4())), data={"name": "x"})
    response = console_for(viewer_user).get("/")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="fleet-spreads"' in html
    assert 'id="recent-activity"' not in html and "ada" not in html  # it names people, like the audit log viewers cannot open


def test_anonymous_visitors_are_sent_to_sign_in(client, fleet):
    for path in ("/", "/?period=7d"):
        response = client.get(path, HTTP_HX_TARGET="fleet-online", **HTMX)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/", HTTP_HX_TARGET="alerts-live", **HTMX).status_code == 302


def test_its_query_count_does_not_grow_with_the_fleet(console_for, operator_user, fleet, django_assert_max_num_queries):
    client = console_for(operator_user)
    for d in fleet:
        firing(d)
    firing(fleet[0], kind="battery_low")  # as many as the dashboard lists, so it counts them all
    with django_assert_max_num_queries(16) as few:
        client.get("/")
    for i in range(30):
        d = device(f"more-{i}", online=i % 2 == 0, battery=i * 3, os_version=str(10 + i % 7), agent=f"2.{i % 9}", patch=days_ago(i * 9))
        firing(d)
        command([d], ["succeeded"], days_back=i % 7)
        audit.record(actor=operator_user, action="device.update", target=d, data={"alias": {"from": "", "to": d.alias}})
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get("/").content.decode()
    assert ">34<" in section(html, "fleet-summary")


def test_an_empty_fleet_gets_first_run_guidance(console_for, admin_user, viewer_user, db):
    html = console_for(admin_user).get("/").content.decode()
    guide = section(html, "first-run")
    assert "Enroll your first device" in guide
    for anchor in ("#keys", "#qr", "#one-liner"):
        assert f'href="/enrollment/{anchor}"' in guide
    assert 'id="fleet-online"' not in html and 'id="fleet-spreads"' not in html  # nothing to chart yet
    assert 'id="fleet-summary"' in html  # the counts stay, and go live when the first device arrives
    viewer = section(console_for(viewer_user).get("/").content.decode(), "first-run")
    assert "takes an admin" in viewer and "#qr" not in viewer  # the QR builder and the one-liner are admins'
