"""TEMPORARY cost probe (not committed)."""
import json, time, cProfile, pstats, io, os
import pytest
from django.db import connection
from commands import services
from commands.models import Delivery
from commands.tests.conftest import make_device
from mdm.tests.test_fastpath import wsgi

pytestmark = pytest.mark.django_db

HB = json.dumps({"battery_pct": 77, "charging": False, "network_type": "wifi", "mem_avail_mb": 1800, "kids": ["k1"]}).encode()

def cpu(fn, n):
    t = time.process_time()
    for i in range(n): fn(i)
    return (time.process_time() - t) / n * 1e6

def test_probe(settings):
    devs = [make_device(fcm_token=f"t{i}") for i in range(300)]
    for d in devs:
        wsgi("POST", "/api/v1/device/heartbeat", HB, token=d.token)
    idle = cpu(lambda i: wsgi("POST", "/api/v1/device/heartbeat", HB, token=devs[i % 300].token), 900)
    cmd = services.issue_command(actor=None, type="launch_app", params={"package": "com.x"}, target={"all": True}).command
    Delivery.objects.filter(command=cmd).update(state="sent")
    busy = cpu(lambda i: wsgi("POST", "/api/v1/device/heartbeat", HB, token=devs[i % 300].token), 900)
    body = json.dumps({"status": "succeeded", "exit_code": 0, "output": "ok"}).encode()
    res = cpu(lambda i: wsgi("POST", f"/api/v1/device/commands/{cmd.pk}/result", body, token=devs[i % 300].token), 300)
    t = time.process_time(); w = time.perf_counter()
    services.issue_command(actor=None, type="launch_app", params={"package": "com.y"}, target={"all": True})
    issue300 = (time.process_time() - t) * 1e3, (time.perf_counter() - w) * 1e3
    print(f"\nPROBE idle hb {idle:.0f} us, pending hb {busy:.0f} us, result {res:.0f} us, issue300 cpu {issue300[0]:.0f} ms wall {issue300[1]:.0f} ms")
    if os.environ.get("PROBE_PROFILE"):
        Delivery.objects.filter(command=cmd).update(state="sent")
        pr = cProfile.Profile(); pr.enable()
        for i in range(600): wsgi("POST", "/api/v1/device/heartbeat", HB, token=devs[i % 300].token)
        pr.disable(); s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(45); print(s.getvalue()[:9000])
