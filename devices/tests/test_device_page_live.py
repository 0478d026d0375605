"""The device page is live on every heartbeat while someone has it open (its last seen, memory and
foreground app change with each one), while the list still hears only of visible changes (online,
battery, charging): the heartbeat marks an unchanged device only when its page is watched. Both
heartbeat paths (the write-behind's Lua call and PostgreSQL's statement). And the charts open on a
range that fits the device's data."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices import live, services
from devices.models import Device, HeartbeatSample
from mdm import realtime

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["write-behind", "postgresql"])
def heartbeat_path(request, settings):
    settings.HEARTBEAT_WRITE_BEHIND = request.param == "write-behind"
    return request.param


@pytest.fixture
def page_open(enrolled_device):
    topic = live.page_topic(enrolled_device.device.pk)
    realtime.watch([topic])
    yield topic
    realtime.watch([topic], -1)


def _settle(beat, enrolled_device):
    beat(enrolled_device, battery_pct=80, charging=False, mem_avail_mb=1500, mem_total_mb=4000)  # came online: marked
    live.take_dirty()


def test_an_unchanged_heartbeat_marks_a_device_whose_page_is_open(beat, enrolled_device, page_open, heartbeat_path):
    _settle(beat, enrolled_device)
    beat(enrolled_device, battery_pct=80, charging=False, mem_avail_mb=900, foreground_app="com.example.pos")
    assert live.take_dirty() == [str(enrolled_device.device.pk)]


def test_an_unchanged_heartbeat_of_a_device_nobody_watches_marks_nothing(beat, enrolled_device, heartbeat_path):
    _settle(beat, enrolled_device)
    beat(enrolled_device, battery_pct=80, charging=False, mem_avail_mb=900)
    assert live.take_dirty() == []


def test_the_open_page_gets_the_new_memory_and_foreground_app(beat, enrolled_device, page_open, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    _settle(beat, enrolled_device)
    sent = []
    monkeypatch.setattr(realtime, "send_many_now", sent.extend)
    beat(enrolled_device, battery_pct=80, charging=False, mem_avail_mb=900, foreground_app="com.example.pos")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.broadcast_status_changes() == 1
    [(topic, html)] = sent  # the list is not open: nothing for it
    assert topic == page_open
    assert 'id="device-status" class="status-grid" hx-swap-oob="true"' in html
    assert "900 MB free of 4000 MB" in html and "com.example.pos" in html and "last seen just now" in html


# --- the charts' range ------------------------------------------------------------------------


def _samples(device, minutes):
    now = timezone.now()
    HeartbeatSample.objects.bulk_create(
        [HeartbeatSample(device=device, at=now - timedelta(minutes=m), battery_pct=50, mem_avail_mb=1000) for m in minutes])


def test_a_device_enrolled_two_hours_ago_opens_on_its_lifetime(console_for, viewer_user, device_in_group_a):
    Device.objects.filter(pk=device_in_group_a.pk).update(enrolled_at=timezone.now() - timedelta(hours=2))
    _samples(device_in_group_a, range(1, 120))
    html = console_for(viewer_user).get(f"/devices/{device_in_group_a.pk}/").content.decode()
    assert 'aria-current="true">Since enrolled<' in html
    assert "119 samples" in html
    # The line starts at the chart's left edge (x = 40, the axis) rather than 23/24 of the way along.
    polyline = html.split('<polyline', 1)[1]
    first_x = float(polyline.split('points="', 1)[1].split(",", 1)[0])
    assert first_x < 60


def test_an_older_device_opens_on_a_day_and_keeps_its_lifetime_offered_for_a_week(console_for, viewer_user, device_in_group_a):
    Device.objects.filter(pk=device_in_group_a.pk).update(enrolled_at=timezone.now() - timedelta(days=3))
    client = console_for(viewer_user)
    html = client.get(f"/devices/{device_in_group_a.pk}/").content.decode()
    assert 'href="?hours=24" hx-get="?hours=24" hx-target="#device-charts" hx-swap="outerHTML" aria-current="true"' in html
    assert "Since enrolled" in html
    life = client.get(f"/devices/{device_in_group_a.pk}/?hours=life", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="device-charts")
    assert 'aria-current="true">Since enrolled<' in life.content.decode()
    Device.objects.filter(pk=device_in_group_a.pk).update(enrolled_at=timezone.now() - timedelta(days=30))
    html = client.get(f"/devices/{device_in_group_a.pk}/?hours=life").content.decode()
    assert "Since enrolled" not in html and 'hx-get="?hours=24" hx-target="#device-charts" hx-swap="outerHTML" aria-current="true"' in html


def test_a_device_enrolled_a_minute_ago_gets_an_hour_wide_chart(console_for, viewer_user, device_in_group_a):
    _samples(device_in_group_a, [0])
    html = console_for(viewer_user).get(f"/devices/{device_in_group_a.pk}/").content.decode()
    assert 'aria-current="true">Since enrolled<' in html and "1 sample " in html
