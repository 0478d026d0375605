"""The install fan-out figure (`make bench`; alone: `bench/run.py --install-only`).

A release of BENCH_INSTALL_MB (20) MB, a valid signed APK built by tests/fixtures/apks/build.sh
big and created through apks.services as an upload would; a fleet of simulated devices (the
simulator's real install_apk: streamed download, SHA-256, install, inventory, report) enrolled and
heartbeating; one install_apk to all of them through the admin API, with BENCH_INSTALL_CUT_RATE
(10%) of the downloads cut after a random number of bytes and resumed with Range after a backoff,
at most BENCH_INSTALL_CONCURRENCY (200) transfers at once. Measured from the API call: when 99%
and 100% of the devices had the whole file with the right SHA-256, when every result was
acknowledged and when PostgreSQL held them all; the web processes' RSS sampled every 0.2 s (and
nginx's, when it serves the files); and every completed download's SHA-256 against the file built.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx

INSTALL_MB = int(os.environ.get("BENCH_INSTALL_MB", "20"))
CUT_RATE = float(os.environ.get("BENCH_INSTALL_CUT_RATE", "0.1"))
CONCURRENCY = int(os.environ.get("BENCH_INSTALL_CONCURRENCY", "200"))
EXEC_SCALE = float(os.environ.get("BENCH_EXEC_SCALE", "0.5"))
DEADLINE_S = float(os.environ.get("BENCH_INSTALL_DEADLINE_S", "1200"))
# Every device's first two heartbeats (10 s interval) are in: keys acknowledged, the cold first
# beats (token cache, key set) over, as the other fleet figures' warm-up.
WARM_S = 20
GOAL_WEB_RSS_MB = 300


def build_release(*, root: Path, work: Path, size_mb: int = INSTALL_MB):
    """(release, sha256 of the file as built here)."""
    from accounts.models import User
    from apks.services import releases

    apk = work / f"bench-install-{size_mb}mb.apk"
    subprocess.run(["bash", str(root / "tests" / "fixtures" / "apks" / "build.sh"), "big", str(apk), str(size_mb),
                    str(int(time.time()) + 1)], check=True, capture_output=True)
    digest = hashlib.sha256()
    with open(apk, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    admin = User.objects.get(username="bench-admin")
    release = releases.create_release(path=apk, uploader=releases.Uploader(actor=admin, user=admin, via="console", is_admin=True))
    apk.unlink()
    return release, digest.hexdigest()


class RssSampler(threading.Thread):
    """Peak RSS per process of each named process tree, every 0.2 s, from a thread: the fleet's
    event loop is busiest exactly when the peak happens."""

    def __init__(self, pids: dict[str, int | None], rss_of):
        super().__init__(daemon=True)
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.rss_of = rss_of
        self.before = {name: max(rss_of(pid).values(), default=0.0) for name, pid in self.pids.items()}
        self.peak = dict(self.before)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], max(self.rss_of(pid).values(), default=0.0))
            time.sleep(0.2)

    def stop(self):
        self.done.set()
        self.join()


def cpu_s_of_tree(pid: int | None, children: bool = True) -> float:
    """User + system CPU seconds of a process (and its children) so far (/proc, clock ticks)."""
    if not pid:
        return 0.0
    pids = [pid]
    if children:
        pids += [int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def at_fraction(times: list[float], target: int, fraction: float):
    n = int(round(target * fraction))
    return round(times[n - 1], 2) if n and len(times) >= n else None


async def fan_out(*, front_url: str, admin_url: str, standin_url: str, jwt: str, enroll_key: str, devices: int, release, sha256: str,
                  web_pid: int, nginx_pid: int | None, rss_of, served_by: str) -> dict:
    from loadtest.simulator import Fleet, Stats

    fleet = Fleet(base_url=front_url, enroll_key=enroll_key, devices=devices, interval=10, duration=DEADLINE_S + 600,
                  hardware_prefix="inst", enroll_concurrency=devices, push_url=standin_url, failure_rate=0.0,
                  exec_scale=EXEC_SCALE, max_connections=1000, owns_process=True,
                  download_cut_rate=CUT_RATE, download_concurrency=CONCURRENCY)
    headers = {"Authorization": f"Bearer {jwt}"}
    async with fleet:
        await fleet.register_push_tokens()
        enroll_s = await fleet.enroll_all()
        consumer = fleet.spawn(fleet.consume_pushes())
        loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices if d.device_id))
        await asyncio.sleep(WARM_S)
        fleet.stats, fleet.events[:] = Stats(), []
        sampler = RssSampler({"web": web_pid, "nginx": nginx_pid}, rss_of)
        sampler.start()
        cpu_before = {"simulator": cpu_s_of_tree(os.getpid(), children=False), "web": cpu_s_of_tree(web_pid), "nginx": cpu_s_of_tree(nginx_pid)}
        t0 = time.monotonic()
        async with httpx.AsyncClient(base_url=admin_url, headers=headers, timeout=120) as admin:
            answer = await admin.post("/api/v1/commands", json={
                "type": "install_apk", "params": {"apk_id": str(release.id)}, "expires_in_s": 3600,
                "target": {"device_ids": [d.device_id for d in fleet.devices if d.device_id]}})
            api_s = time.monotonic() - t0
            assert answer.status_code == 201, answer.text
            command_id, target = answer.json()["id"], answer.json()["target_count"]
            print(f"install fan-out: {target} devices, answered after {api_s:.2f} s", flush=True)

            def first(kind: str) -> list[float]:
                seen: dict[str, float] = {}
                for t, event, who in fleet.events:
                    if event == kind and who not in seen:
                        seen[who] = t - t0
                return sorted(seen.values())

            next_print = 10.0
            while time.monotonic() - t0 < DEADLINE_S and len(first("acked")) < target:
                await asyncio.sleep(0.5)
                if time.monotonic() - t0 >= next_print:
                    next_print += 10
                    print(f"  {time.monotonic() - t0:.0f} s: downloaded {len(first('downloaded'))}, acked {len(first('acked'))}"
                          f" of {target}", flush=True)
            acked = first("acked")
            # Where the cores went until the last result was acknowledged (the simulator hashes
            # every byte it receives: it is the phones' CPU, here on the server's two cores).
            cpu = {name: round(cpu_s_of_tree(pid, children=name != "simulator") - cpu_before[name], 1)
                   for name, pid in (("simulator", os.getpid()), ("web", web_pid), ("nginx", nginx_pid))}
            recorded_s, counters = None, {}
            while time.monotonic() - t0 < DEADLINE_S + 60:
                counters = (await admin.get(f"/api/v1/commands/{command_id}")).json()["counters"]
                if counters["done"] >= target:
                    recorded_s = round(time.monotonic() - t0, 2)
                    break
                await asyncio.sleep(0.2)
        sampler.stop()
        fleet.stop_at = time.monotonic()
        await loops
        consumer.cancel()
    downloaded, c = first("downloaded"), fleet.stats.counters
    downloads = fleet.installer.downloads
    total_bytes = c.get("apk_bytes", 0)
    out = {
        "size_mb": round(release.size / 1e6, 1), "devices": devices, "enrolled": len(fleet.by_id),
        "enroll_s": round(enroll_s, 1), "targets": target, "served_by": served_by, "api_answer_s": round(api_s, 2),
        "downloaded_99_s": at_fraction(downloaded, target, 0.99), "downloaded_100_s": at_fraction(downloaded, target, 1.0),
        "acked_100_s": at_fraction(acked, target, 1.0), "recorded_100_s": recorded_s,
        "succeeded": counters.get("succeeded", 0), "failed": counters.get("failed", 0), "done": counters.get("done", 0),
        "cut_rate": CUT_RATE, "concurrency": CONCURRENCY,
        "cut": c.get("apk_download_cut", 0), "resumed": c.get("apk_resumed", 0), "restarted": c.get("apk_restarted", 0),
        "interrupted": c.get("apk_download_interrupted", 0),
        "checksum_ok": c.get("apk_checksum_ok", 0), "checksum_mismatch": c.get("apk_checksum_mismatch", 0),
        "installed": c.get("apk_installed", 0), "download_failed": c.get("apk_download_failed", 0),
        "sha256_ok": len(downloads) == target and all(d["sha256"] == sha256 == release.sha256 for d in downloads),
        "gb_received": round(total_bytes / 1e9, 2),
        "throughput_mb_s": round(total_bytes / 1e6 / downloaded[-1], 1) if downloaded else None,
        "web_rss_before_mb": round(sampler.before.get("web", 0), 1), "web_rss_peak_mb": round(sampler.peak.get("web", 0), 1),
        "nginx_rss_peak_mb": round(sampler.peak["nginx"], 1) if "nginx" in sampler.peak else None,
        "download_statuses": fleet.stats.summary()["endpoints"].get("download", {}).get("statuses", {}),
        "client_lag_p99_ms": fleet.stats.summary()["client_lag_p99_ms"],
        # The fleet's other traffic meanwhile: what downloads served by the web would hold up.
        **{f"{endpoint}_{p}": fleet.stats.summary()["endpoints"].get(endpoint, {}).get(p)
           for endpoint in ("heartbeat", "result") for p in ("p50_ms", "p99_ms")},
        "cpu_s_until_acked": cpu,
    }
    print(f"install: {out}", flush=True)
    return out


def rows(results: dict) -> list:
    i = results.get("install")
    if not i:
        return []
    ok = (i["sha256_ok"] and i["checksum_mismatch"] == 0 and i["succeeded"] == i["targets"] and i["recorded_100_s"] is not None
          and i["web_rss_peak_mb"] <= GOAL_WEB_RSS_MB)
    nginx = f", nginx peak {i['nginx_rss_peak_mb']} MB" if i.get("nginx_rss_peak_mb") is not None else ""
    return [(f"APK install fan-out, {i['size_mb']} MB to {i['targets']:,} devices, {i['cut_rate']:.0%} of downloads cut",
             f"web process RSS ≤ {GOAL_WEB_RSS_MB} MB, every download's SHA-256 right, all succeeded in PostgreSQL",
             f"99% downloaded {i['downloaded_99_s']} s, 100% {i['downloaded_100_s']} s, 100% acked {i['acked_100_s']} s, "
             f"all in PostgreSQL after {i['recorded_100_s']} s ({i['succeeded']} succeeded, {i['failed']} failed); "
             f"{i['cut']} cut: {i['resumed']} resumed by Range, {i['restarted']} sent whole again; "
             f"sha256 {'ok' if i['sha256_ok'] else 'WRONG'} ({i['checksum_ok']} checked, {i['checksum_mismatch']} mismatches); "
             f"{i['gb_received']} GB at {i['throughput_mb_s']} MB/s; served by {i['served_by']}; "
             f"web RSS {i['web_rss_before_mb']} -> peak {i['web_rss_peak_mb']} MB per process{nginx}; CPU until acked: "
             + ", ".join(f"{k} {v} s" for k, v in i["cpu_s_until_acked"].items()),
             ok)]
