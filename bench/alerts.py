"""The alerting benchmarks (issue 18, docs/alerts.md):

- `evaluation(total)`: every enabled rule evaluated over `total` devices (the console bench's
  padded fleet), with a realistic mix of devices in alert (10% offline, 5% battery low, 3% storage
  low, 1% hot, 2% clock drift, 20% on an old patch); the first cycle opens and fires the alerts,
  the following ones change nothing. Goal: every cycle ≤ 1 s.
- `offline_scenario(...)` (bench/run.py): 10% of a heartbeating simulated fleet stops at once;
  one grouped notification per channel (e-mail through a local SMTP server, a webhook receiver)."""

import contextlib
import statistics
import time
from datetime import date, timedelta


def _mix() -> None:
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("""
            WITH ranked AS (SELECT device_id, row_number() OVER (ORDER BY device_id) AS n FROM devices_devicestatus)
            UPDATE devices_devicestatus s SET
              online = (r.n %% 10 <> 0),
              last_seen = CASE WHEN r.n %% 10 = 0 THEN %s ELSE %s END,
              battery_pct = CASE WHEN r.n %% 20 = 1 THEN 5 ELSE 80 END, charging = false,
              storage_total_mb = 32000, storage_free_mb = CASE WHEN r.n %% 33 = 2 THEN 1000 ELSE 20000 END,
              battery_temp_c = CASE WHEN r.n %% 100 = 3 THEN 50 ELSE 31 END,
              clock_drift_s = CASE WHEN r.n %% 50 = 4 THEN 900 ELSE 1 END,
              security_patch = CASE WHEN r.n %% 5 = 0 THEN %s::date ELSE %s::date END
            FROM ranked r WHERE r.device_id = s.device_id
        """, [now - timedelta(minutes=30), now, date(2025, 1, 5), now.date() - timedelta(days=20)])
        cursor.execute("ANALYZE devices_devicestatus")


def evaluation(total: int, cycles: int = 5, *, alone=contextlib.nullcontext) -> dict:
    """Seconds per evaluation cycle of every enabled rule (in this process, on the bench's
    PostgreSQL). `alone()`: a context in which no other process evaluates (bench/run.py pauses
    Celery there: the sweep, and the look-again timers of the offline scenario's silent devices,
    would evaluate the same rules meanwhile, the rule lock making this cycle wait for theirs).
    Returns {"devices", "rules", "first_s", "median_s", "max_s", "fired"}."""
    from django.db.models import Case, When

    from devices.models import Device

    # Exactly `total` devices (the goal's fleet): a full run's later areas enrolled 6,000 more,
    # set aside (marked deleted) for the measurement, the padded ones kept.
    ordered = Device.objects.active().order_by(Case(When(hardware_id__startswith="pad-", then=0), default=1), "hardware_id")
    aside = set_aside(list(ordered.values_list("pk", flat=True)[total:]))
    try:
        with alone():
            return _cycles(cycles)
    finally:
        bring_back(aside)


def _cycles(cycles: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from devices.models import Device
    from mdm.alerts import services
    from mdm.alerts.models import Alert, AlertRule

    Alert.objects.all().delete()
    _mix()
    # The evaluation as shipped: hold times count from the first cycle (which opens the alerts
    # and fires those without one); an hour later the held ones fire; then cycles that change
    # nothing, as most do.
    start = timezone.now()
    t = time.perf_counter()
    first = services.run_cycle(start)
    first_s = time.perf_counter() - t
    with connection.cursor() as cursor:  # the same devices still reporting (or not) an hour on
        cursor.execute("UPDATE devices_devicestatus SET last_seen = last_seen + interval '1 hour'")
    t = time.perf_counter()
    fired = services.run_cycle(start + timedelta(hours=1))
    fire_s = time.perf_counter() - t
    steady = []
    for i in range(cycles):
        t = time.perf_counter()
        services.run_cycle(start + timedelta(hours=1, seconds=5 * (i + 1)))
        steady.append(time.perf_counter() - t)
    return {"devices": Device.objects.active().count(), "rules": AlertRule.objects.filter(enabled=True).count(),
            "open_s": round(first_s, 3), "fire_s": round(fire_s, 3), "median_s": round(statistics.median(steady), 3),
            "max_s": round(max([first_s, fire_s, *steady]), 3), "opened": first["opened"], "fired": fired["fired"]}


SMTP_PORT = 8925
OFFLINE_MINUTES = 1  # the seeded rule says 10; the bench does not wait that long
CAP_PCT = 2  # of the active fleet per window: below the 10% that goes offline, so the cap must bite


class Mailbox:
    """The bench's SMTP server (aiosmtpd): the server processes send through it (EMAIL_URL)."""

    def __init__(self, port: int = SMTP_PORT):
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[float, str]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        self.messages.append((time.monotonic(), str(message_from_bytes(envelope.content)["Subject"])))
        return "250 OK"

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def email_url(port: int = SMTP_PORT) -> str:
    return f"smtp://127.0.0.1:{port}"


def _arm(webhook_url: str) -> dict:
    """The offline rule as shipped but for its minutes, told by e-mail (the admins) and a
    webhook, with a remediation capped at CAP_PCT% of the fleet per window."""
    from accounts.models import User
    from mdm.alerts import services
    from mdm.alerts.models import AlertRule

    admin = User.objects.filter(is_superuser=True).first()
    hook = services.create_webhook(actor=admin, name="bench", url=webhook_url, secret="bench-webhook-secret")
    rule = AlertRule.objects.get(seed_key="device_offline")
    services.update_rule(actor=admin, rule=rule, data={
        "params": {"minutes": OFFLINE_MINUTES},
        "notify": {"admins": True, "webhooks": [str(hook.pk)]},
        "remediation": {"type": "reboot", "max_fleet_pct": CAP_PCT}})
    return {"rule": str(rule.pk)}


async def offline_scenario(fleet, fraction: float = 0.1, settle_s: float = 20, timeout_s: float = 180) -> dict:
    """Every device heartbeats; then `fraction` of them stop at once (t0). Measured: the offline
    rule's notifications per channel (exactly one each is the goal), when they came (from t0
    and from the moment the last stopped device had been silent OFFLINE_MINUTES), how many
    devices the one notification lists, and the remediation runs against their cap."""
    import asyncio
    import json

    from asgiref.sync import sync_to_async

    from devices.models import Device, DeviceStatus
    from mdm.alerts.models import Notification, RemediationRun
    from tests.webhook_receiver import Receiver

    with Mailbox() as mailbox, Receiver() as receiver:
        armed = await sync_to_async(_arm)(receiver.url)
        fleet.stop_at = time.monotonic() + 3600
        devices = [d for d in fleet.devices if d.device_id]
        tasks = {d.device_id: asyncio.create_task(fleet.heartbeat_loop(d)) for d in devices}
        await asyncio.sleep(settle_s)
        stopped = [d.device_id for d in devices[:: int(1 / fraction)]]
        t0 = time.monotonic()
        for device_id in stopped:
            tasks[device_id].cancel()

        def offline_mail():
            return [(t, s) for t, s in mailbox.messages if "offline" in s and "resolved" not in s]

        def offline_hooks():
            return [r for r in receiver.requests if json.loads(r[1]).get("rule", {}).get("kind") == "device_offline"]

        while time.monotonic() - t0 < timeout_s and not (offline_mail() and offline_hooks()):
            await asyncio.sleep(0.5)
        first = time.monotonic() - t0
        await asyncio.sleep(30)  # a second notification would come within this
        fleet.stop_at = time.monotonic()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

        def server_side():
            last_seen = max(DeviceStatus.objects.filter(device_id__in=stopped).values_list("last_seen", flat=True))
            sent = list(Notification.objects.filter(rule_id=armed["rule"], event="fired", state="sent"))
            runs = RemediationRun.objects.filter(rule_id=armed["rule"])
            # issued: sent to the device (a stopped device's simulator still answers pushes, so some succeed)
            return (last_seen, [(n.sent_at, n.alerts.count()) for n in sent],
                    runs.filter(state__in=("issued", "succeeded", "failed")).count(),
                    runs.filter(state="skipped").count(), Device.objects.active().count())

        last_seen, sent, issued, skipped, active = await sync_to_async(server_side)()
    from django.utils import timezone

    threshold_wall = last_seen.timestamp() + OFFLINE_MINUTES * 60  # the last stopped device crossed
    mails, hooks = offline_mail(), offline_hooks()
    first_wall = min((n for n, _ in sent), default=None)
    return {
        "devices": len(devices), "stopped": len(stopped), "offline_minutes": OFFLINE_MINUTES,
        "emails": len(mails), "webhook_calls": len(hooks), "notifications": len(sent),
        "listed": sent[0][1] if sent else 0,
        "first_after_t0_s": round(first, 1),
        "after_threshold_s": round(first_wall.timestamp() - threshold_wall, 1) if first_wall else None,
        "remediation_issued": issued, "remediation_skipped": skipped,
        "active_devices": active, "remediation_cap": max(1, int(active * CAP_PCT / 100)),
        "now": timezone.now().isoformat(),
    }


def set_aside(ids: list) -> list:
    """These devices out of the measured fleet: marked deleted, as an admin's delete does but
    without its purge (bring_back undoes it). Returns the ids."""
    from django.utils import timezone

    from devices.models import Device

    Device.objects.filter(pk__in=ids).update(deleted_at=timezone.now())
    return ids


def only_fleet(keep_prefix: str) -> list:
    """The fleet as the scenario's own: every other device (the full run's earlier areas left
    20,000 padded and 6,000 silent simulated ones) set aside, and no alert or notification left
    from before. Returns the ids set aside."""
    from devices.models import Device
    from mdm.alerts.models import Alert, Notification

    ids = set_aside(list(Device.objects.active().exclude(hardware_id__startswith=f"{keep_prefix}-").values_list("pk", flat=True)))
    Notification.objects.all().delete()
    Alert.objects.all().delete()
    return ids


def bring_back(ids: list) -> None:
    from devices.models import Device

    Device.objects.filter(pk__in=ids).update(deleted_at=None)


async def run_offline(*, base_url: str, standin_url: str, enroll_key: str, devices: int) -> dict:
    """A fleet of its own (hardware ids `alr-`), enrolled, then the offline scenario with the
    other devices set aside (they would be offline too, and the goal is about these)."""
    from asgiref.sync import sync_to_async

    from loadtest.simulator import Fleet

    fleet = Fleet(base_url=base_url, enroll_key=enroll_key, devices=devices, interval=10, duration=900,
                  hardware_prefix="alr", enroll_concurrency=devices, push_url=standin_url, failure_rate=0.0,
                  max_connections=1000, owns_process=True)
    async with fleet:
        await fleet.register_push_tokens()
        await fleet.enroll_all()
        aside = await sync_to_async(only_fleet)("alr")
        try:
            consumer = fleet.spawn(fleet.consume_pushes())
            out = await offline_scenario(fleet)
            consumer.cancel()
        finally:
            await sync_to_async(bring_back)(aside)
        out["set_aside"] = len(aside)
    print(f"alerts: {out}", flush=True)
    return out


def rows(results: dict) -> list:
    out = []
    r = results.get("alerts_eval")
    if r:
        out.append(("Alert evaluation, every rule over %d devices" % r["devices"], "≤ 1 s per cycle",
                    f"{r['median_s'] * 1000:.0f} ms per cycle (opening {r['opened']}: {r['open_s'] * 1000:.0f} ms, "
                    f"firing {r['fired']}: {r['fire_s'] * 1000:.0f} ms)", r["max_s"] <= 1.0))
    o = results.get("alerts_offline")
    if o:
        one_each = o["emails"] == 1 and o["webhook_calls"] == 1 and o["listed"] == o["stopped"]
        out.append((f"{o['stopped']} of {o['devices']} devices offline at once", "one notification per channel, ≤ hold + 5 s",
                    f"{o['emails']} e-mail, {o['webhook_calls']} webhook call listing {o['listed']} devices, "
                    f"{o['after_threshold_s']} s after the last crossed {o['offline_minutes']} min",
                    one_each and (o["after_threshold_s"] or 99) <= 5))
        out.append((f"Remediation cap ({CAP_PCT}% of the {o['active_devices']:,} active devices per window)",
                    "issued ≤ cap", f"{o['remediation_issued']} issued, {o['remediation_skipped']} held back (cap {o['remediation_cap']})",
                    o["remediation_issued"] <= o["remediation_cap"]))
    return out


if __name__ == "__main__":  # python bench/alerts.py <devices>: against DATABASE_URL, after migrate
    import os
    import sys

    import django

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
    django.setup()
    from devices.models import Device, DeviceStatus

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    have = Device.objects.count()
    made = Device.objects.bulk_create([Device(hardware_id=f"pad-{i:06d}") for i in range(have, total)], batch_size=2000)
    DeviceStatus.objects.bulk_create([DeviceStatus(device=d) for d in made], batch_size=2000)
    print(evaluation(total))
