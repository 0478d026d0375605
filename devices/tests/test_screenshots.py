"""Screenshots of the devices list, a device's detail and the enrollment page for the docs
(docs/screenshots/). Opt-in: MDM_SCREENSHOTS=1 pytest devices/tests/test_screenshots.py"""

import functools
import http.server
import math
import random
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from devices.models import Device, DeviceStatus, HeartbeatSample, InstalledApp, Tag
from devices.tests.factories import DeviceGroupFactory
from devices.tests.test_live_console import signed_in
from enrollment import services as enrollment_services
from tests.live import LiveServer, env_for_test_database, save_screenshot

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
]

MODELS = [("Zebra", "TC52", "11"), ("Samsung", "Galaxy Tab Active4 Pro", "14"), ("Google", "Pixel 7a", "14"), ("Honeywell", "CT45", "12"), ("Lenovo", "Tab M10", "13")]
APPS = ["com.example.kiosk", "com.example.scanner", "com.android.chrome", "com.google.android.gms", "com.android.settings", "com.example.inventory", "com.android.vending", "com.example.timeclock"]


def _fleet():
    rng = random.Random(7)
    now = timezone.now()
    groups = [DeviceGroupFactory(name=n) for n in ("warehouse-berlin", "stores-north", "lobby-kiosks")]
    tags = [Tag.objects.get_or_create(name=n)[0] for n in ("rugged", "scanner", "kiosk", "pilot")]
    devices = []
    for i in range(28):
        maker, model, android = MODELS[i % len(MODELS)]
        group = groups[i % 3]
        alias = {0: "dock", 1: "store", 2: "lobby"}[i % 3] + f"-{i + 1:02d}"
        device = Device.objects.create(
            hardware_id=f"R58N{rng.randrange(10**7):07d}", serial=f"SN{i:05d}", model=model, manufacturer=maker,
            android_version=android, sdk_int=30 + int(android) - 11, agent_version="1.4.2", alias=alias, group=group,
            enrolled_with="Berlin rollout", enrolled_at=now - timedelta(days=40 - i),
        )
        device.tags.set([tags[i % 4]] + ([tags[1]] if i % 5 == 0 else []))
        online = i % 7 != 3
        DeviceStatus.objects.create(
            device=device, online=online, last_seen=now - timedelta(seconds=rng.randrange(5, 40) if online else rng.randrange(900, 90000)),
            battery_pct=rng.choice([92, 88, 76, 64, 55, 43, 31, 18, 12, 97, 100]), charging=i % 4 == 0,
            battery_temp_c=round(rng.uniform(24, 38), 1), mem_total_mb=4096, mem_avail_mb=rng.randrange(900, 2600),
            storage_total_mb=65536, storage_free_mb=rng.randrange(8000, 40000), network_type="wifi" if i % 6 else "cellular",
            wifi_ssid="Warehouse-5G" if i % 6 else None, wifi_rssi=-rng.randrange(45, 80), ip_address=f"10.20.{i // 10}.{10 + i}",
            foreground_app=rng.choice(APPS[:3]), uptime_s=rng.randrange(3600, 900000), agent_version="1.4.2",
            clock_drift_s=rng.choice([0, 1, -2, 3]), bad_envelopes_total=0,
        )
        devices.append(device)
    hero = devices[0]
    DeviceStatus.objects.filter(device=hero).update(battery_pct=71, charging=False, clock_drift_s=-4, bad_envelopes_total=2, last_bad_envelope_at=now - timedelta(hours=3), online=True, last_seen=now - timedelta(seconds=8))
    samples, at = [], now - timedelta(hours=24)
    while at <= now:
        hours = (now - at).total_seconds() / 3600
        phase = (24 - hours) % 12
        battery = 100 - phase * 7 if phase < 10 else 30 + (phase - 10) * 35
        gap = 14.5 < hours < 15.5  # an offline stretch
        if not gap:
            mem = 2400 - 600 * math.sin(hours / 2.3) - rng.randrange(0, 120)
            samples.append(HeartbeatSample(device=hero, at=at, battery_pct=max(0, min(100, round(battery))), mem_avail_mb=round(mem), network_type="wifi", wifi_rssi=-55))
        at += timedelta(seconds=60)
    HeartbeatSample.objects.bulk_create(samples, batch_size=2000)
    InstalledApp.objects.bulk_create([InstalledApp(device=hero, package=p, version_name=f"{3 + i}.{i}.0", version_code=300 + i, system=p.startswith("com.android") or "gms" in p) for i, p in enumerate(APPS)])
    return hero


@pytest.fixture
def server(transactional_db, settings, tmp_path):
    # The QR builder downloads the APK from the loopback fixture server below: allowed here, as an
    # operator allows an intranet APK server (refused by default: enrollment/tests/test_qr_ssrf.py).
    live = LiveServer({**env_for_test_database(settings), "QR_APK_ALLOWED_NETWORKS": "127.0.0.0/8"},
                      log_path=tmp_path / "live-server.log")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def apk_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT / "tests" / "fixtures" / "apks"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_take_screenshots(server, page, client, admin_user, apk_server, tmp_path):
    import importlib

    from django.apps import apps

    importlib.import_module("enrollment.migrations.0002_seed_presets").seed(apps, None)  # flushed by transactional tests
    hero = _fleet()
    key = enrollment_services.create_enrollment_key(actor=admin_user, name="Berlin rollout", max_uses=500, expires_at=timezone.now() + timedelta(days=30)).raw
    enrollment_services.create_enrollment_key(actor=admin_user, name="Store pilot", max_uses=20)
    signed_in(page, server, client, admin_user)

    page.goto(server.url + "/devices/?sort=alias")
    page.locator("#live-indicator.on").wait_for()
    save_screenshot(page, tmp_path, "devices.png", full_page=False)

    page.goto(server.url + f"/devices/{hero.pk}/")
    page.locator("svg.chart polyline").first.wait_for()
    save_screenshot(page, tmp_path, "device-detail.png")

    page.goto(server.url + "/enrollment/")
    qr = page.locator("#qr-builder")
    qr.locator('input[name="enroll_key"]').fill(key)
    qr.locator('input[name="server_url"]').fill("https://mdm.example.com")
    qr.locator('input[name="apk_url"]').fill(f"{apk_server}/agent-test.apk")
    qr.locator("button[type=submit]").click()
    page.locator("#qr-result svg").wait_for()
    save_screenshot(page, tmp_path, "enrollment.png")
