"""The sizing pieces (issue 20, docs/performance.md "Sizing"), measured on this machine with no
server running, in the bench's own PostgreSQL database and Redis (`bench/run.py --sizing-only`):

- the heartbeat's write through the shipped path (the token check, state merge, history sample
  and dirty mark in one Lua call: devices.services.heartbeat._write_status_redis; the answer's
  own cost is the cost model's), for `devices` devices, each heartbeating once;
- Redis memory per device after that (state, dirty mark, history sample queued; the token entry
  and inventory hash, written before, not counted);
- the flush with every one of those states pending at once (devices.services.flush_heartbeats,
  what the worker's one-second beat runs): its time, rows per second, batches;
- PostgreSQL bytes per status row and per history sample (the sample's partition, indexes
  included), and from them a day of 10 s history for 2,000 / 20,000 / 200,000 devices (computed
  from the measured bytes per sample, said so in the output)."""

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HEARTBEAT = {"battery_pct": 77, "charging": False, "network_type": "wifi", "mem_avail_mb": 1800,
             "storage_free_mb": 20000, "storage_total_mb": 32000, "foreground_app": "com.example.kiosk"}
SAMPLES_PER_DAY = 86400 // 10


def _used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def _relation_bytes(cursor, name: str) -> int:
    cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [name])
    return int(cursor.fetchone()[0])


def measure(devices: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from devices import partitions, telemetry, tokens, writebehind
    from devices.models import Device, DeviceStatus
    from devices.services import flush_heartbeats
    from devices.services.heartbeat import _write_status_redis
    from mdm import redis_client
    from mdm.models import FleetSettings

    client = redis_client.client()
    out: dict = {"devices": devices}

    t = time.perf_counter()
    made = Device.objects.bulk_create(
        [Device(hardware_id=f"size-{i:07d}", model="SimTab 10", manufacturer="Simulated", android_version="14")
         for i in range(devices)], batch_size=5000)
    DeviceStatus.objects.bulk_create([DeviceStatus(device=d) for d in made], batch_size=5000)
    out["rows_made_s"] = round(time.perf_counter() - t, 1)

    # Each device's token as the cache holds it after its first use (the bcrypt check is the
    # enrollment-time cost, not the steady one).
    secrets, pipe = [], client.pipeline(transaction=False)
    for device in made:
        token_id, secret = uuid.uuid4().hex[:16], uuid.uuid4().hex
        pipe.set(tokens.cache_key(token_id), f"{device.pk}:{tokens.digest(secret)}", ex=3600)
        # and its inventory hash, as Redis holds it after the device's first heartbeat (that one
        # reads it from PostgreSQL once): the steady heartbeat is measured, not the first
        pipe.set(writebehind.inventory_key(device.pk), "", ex=writebehind.INV_TTL_S)
        secrets.append(f"{token_id}.{secret}")
    pipe.execute()
    client.delete(*[writebehind._key(name) for name in ("dirty", "hist", "bad")])
    before = _used_memory(client)

    values, _ = telemetry.clean(dict(HEARTBEAT))
    fleet = FleetSettings.current()
    partitions.ensure_partitions()
    cpu, wall = time.process_time(), time.perf_counter()
    for token in secrets:
        if _write_status_redis(token, values, timezone.now(), None, 0, fleet) is None:
            raise SystemExit("a heartbeat was refused: the token entries are not what devices.tokens reads")
    out["heartbeat_cpu_us"] = round((time.process_time() - cpu) / devices * 1e6)
    out["heartbeat_wall_us"] = round((time.perf_counter() - wall) / devices * 1e6)
    after = _used_memory(client)
    out["redis_bytes_per_device"] = round((after - before) / devices)
    out["redis_state_bytes"] = client.memory_usage(writebehind.state_key(made[0].pk))
    out["pending"] = client.scard(writebehind._key("dirty"))

    cpu, wall = time.process_time(), time.perf_counter()
    written = flush_heartbeats()
    flush_s = time.perf_counter() - wall
    batches = max(1, -(-written // writebehind.FLUSH_BATCH))  # every batch but the last full
    out.update(flushed=written, flush_s=round(flush_s, 2), flush_cpu_s=round(time.process_time() - cpu, 2),
               flush_rows_per_s=round(written / flush_s), batches=batches, batch_ms=round(flush_s / batches * 1000))
    out["left_pending"] = client.scard(writebehind._key("dirty"))

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE devices_devicestatus")
        cursor.execute("SELECT count(*) FROM devices_heartbeatsample")
        samples = table_rows = int(cursor.fetchone()[0])
        table = "devices_heartbeatsample"
        if partitions.is_partitioned():  # the day's partition holding the samples, by its own rows
            fullest = max(partitions.list_partitions(with_counts=True), key=lambda p: p.rows, default=None)
            if fullest is not None:
                table, table_rows = fullest.name, fullest.rows
        sample_bytes = _relation_bytes(cursor, table) / max(table_rows, 1)
        status_bytes = _relation_bytes(cursor, "devices_devicestatus") / devices
    out.update(samples=samples, sample_bytes=round(sample_bytes), status_row_bytes=round(status_bytes))
    out["history_gb_per_day"] = {n: round(n * SAMPLES_PER_DAY * sample_bytes / 1e9, 1) for n in (2000, 20000, 200000)}
    return out


def rows(r: dict) -> list[tuple[str, str]]:
    return [
        ("heartbeat write, in-process CPU (the Lua call and its preparation, token cached)", f"{r['heartbeat_cpu_us']} µs ({r['heartbeat_wall_us']} µs wall)"),
        ("Redis memory per device written by a heartbeat (state, dirty mark, queued sample)", f"{r['redis_bytes_per_device']} bytes (the state key alone {r['redis_state_bytes']})"),
        (f"flush with {r['pending']:,} device states pending", f"{r['flush_s']} s = {r['flush_rows_per_s']:,} states/s "
         f"(+ {r['samples']:,} history samples), {r['batches']} batches of ≤ 5,000 at {r['batch_ms']} ms, {r['flush_cpu_s']} s CPU in the worker's process; {r['left_pending']} left"),
        ("PostgreSQL per device status row / per history sample (indexes included)", f"{r['status_row_bytes']} / {r['sample_bytes']} bytes"),
        ("a day of 10 s history (computed: 8,640 samples x measured bytes)",
         " / ".join(f"{int(n):,} devices {gb} GB" for n, gb in r["history_gb_per_day"].items())),
    ]


def write_report(results_dir: Path, measured: dict, machine: str) -> Path:
    """bench/results/<date>-sizing.md: the pieces and the raw figures."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = results_dir / f"{day}-sizing.md"
    lines = [f"# Sizing pieces, {day}", "",
             f"`make bench BENCH_ARGS=--sizing-only` (bench/sizing.py) on {machine}. No server running: the shipped",
             "heartbeat write and flush called in one process against the bench's own PostgreSQL database and Redis,",
             f"{measured['devices']:,} devices, each heartbeating once with its token and inventory hash already in Redis (the",
             "steady case), then the flush with every one of their states pending at once. Read with docs/performance.md, \"Sizing\".",
             "", "| piece | measured |", "| --- | --- |", *[f"| {a} | {b} |" for a, b in rows(measured)],
             "", "## Raw figures", "```json", json.dumps(measured, indent=2), "```"]
    path.write_text("\n".join(lines) + "\n")
    return path
