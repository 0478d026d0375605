"""The benchmarks' baseline: a naive heartbeat view, written the way a first version usually is
(full default middleware, one UPDATE and one INSERT per request, no auth cache, no batching).
Routed only when BENCH_NAIVE_VIEW is set; `make bench` reports our heartbeat against it."""

import json

from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def naive_heartbeat(request):
    data = json.loads(request.body or b"{}")
    device_id = request.headers.get("X-Device-Id", "")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_devicestatus SET battery_pct = %s, last_seen = %s, online = true WHERE device_id = %s",
            [data.get("battery_pct"), now, device_id],
        )
        cursor.execute(
            "INSERT INTO devices_heartbeatsample (device_id, at, battery_pct, network_type) VALUES (%s, %s, %s, %s)",
            [device_id, now, data.get("battery_pct"), data.get("network_type", "")],
        )
    return JsonResponse({"server_time": int(now.timestamp()), "commands": []})
