"""The simulated device's APK download and install against a scripted peer (an aiohttp server in
the test), for what the real server does not do on demand: redirects to another origin, a range
ignored, corrupted bytes, refusals, and the download concurrency cap."""

import asyncio
import contextlib
import hashlib
import os

import pytest
from aiohttp import web

from loadtest.simulator import Fleet
from loadtest.simulator.installer import apk_spec

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
APK_ID = "0f0e0d0c-0000-4000-8000-000000000001"
TOKEN = {"Authorization": "Device t.secret"}


class ApkPeer:
    """Serves DATA as the download endpoint does (ETag, X-Checksum-SHA256, Range with If-Range),
    scripted: `statuses` answered first, `corrupt` whole answers with one byte flipped,
    `ignore_range` (always the whole file), `redirect` (a 302 there; `redirect_once`), `hold` (each
    answer waits on it, to count transfers in flight)."""

    def __init__(self, *, statuses=(), corrupt=0, ignore_range=False, redirect=None, hold=None):
        self.statuses, self.corrupt, self.ignore_range = list(statuses), corrupt, ignore_range
        self.redirect, self.redirect_once, self.hold = redirect, False, hold
        self.requests: list[dict] = []
        self.inventories: list[dict] = []
        self.in_flight = self.max_in_flight = 0

    async def download(self, request):
        self.requests.append(dict(request.headers))
        if self.statuses:
            status = self.statuses.pop(0)
            return web.json_response({"detail": "scripted", "code": "not_found" if status == 404 else "busy"},
                                     status=status, headers={"Retry-After": "0"})
        if self.redirect:
            target = self.redirect
            if self.redirect_once:
                self.redirect = None
            raise web.HTTPFound(target)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            return self._bytes(request)
        finally:
            self.in_flight -= 1

    def _bytes(self, request):
        data = DATA
        if self.corrupt:
            self.corrupt -= 1
            data = bytes([DATA[0] ^ 1]) + DATA[1:]
        headers = {"ETag": f'"{SHA}"', "X-Checksum-SHA256": SHA, "Accept-Ranges": "bytes"}
        range_header, if_range = request.headers.get("Range"), request.headers.get("If-Range")
        if range_header and not self.ignore_range and if_range in (None, f'"{SHA}"'):
            first = int(range_header.split("=")[1].rstrip("-"))
            headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
            return web.Response(body=data[first:], status=206, headers=headers)
        return web.Response(body=data, headers=headers)

    async def inventory(self, request):
        self.inventories.append(await request.json())
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def serve(peer: ApkPeer):
    app = web.Application()
    app.router.add_get("/api/v1/device/apks/{apk_id}/download", peer.download)
    app.router.add_put("/api/v1/device/inventory", peer.inventory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


def payload(command_id="c-1", **params):
    return {"id": command_id, "type": "install_apk",
            "params": {"apk_id": APK_ID, "package": "com.example.big", "version_code": 7, "sha256": SHA, "size": len(DATA),
                       **params}}


@contextlib.asynccontextmanager
async def fleet_against(url: str, devices: int = 1, **kwargs):
    async with Fleet(base_url=url, enroll_key="unused", devices=devices, exec_scale=0.0, **kwargs) as fleet:
        for i, device in enumerate(fleet.devices):
            device.device_id, device.headers = f"device-{i}", TOKEN
        yield fleet


async def test_a_cut_download_resumes_by_range_with_if_range_and_the_hash_goes_on():
    peer = ApkPeer()
    async with serve(peer) as url, fleet_against(url, download_cut_rate=1.0) as fleet:
        result = await fleet.installer.run(fleet.devices[0], payload())
    assert result == {"status": "succeeded", "exit_code": 0, "output": "installed com.example.big version code 7"}
    first, resumed = peer.requests
    assert "Range" not in first
    assert resumed["Range"].startswith("bytes=") and resumed["Range"] != "bytes=0-"
    assert resumed["If-Range"] == f'"{SHA}"'
    (download,) = fleet.installer.downloads
    assert download["sha256"] == SHA and download["resumes"] == 1 and download["restarts"] == 0
    (inventory,) = peer.inventories
    assert {"package": "com.example.big", "version_name": "7", "version_code": 7, "system": False,
            "enabled": True} in inventory["apps"]


async def test_a_server_that_ignores_the_range_gets_the_whole_file_hashed_from_zero():
    peer = ApkPeer(ignore_range=True)
    async with serve(peer) as url, fleet_against(url, download_cut_rate=1.0) as fleet:
        result = await fleet.installer.run(fleet.devices[0], payload())
    assert result["status"] == "succeeded"
    assert fleet.stats.counters["apk_restarted"] == 1 and fleet.stats.counters["apk_resumed"] == 0
    assert fleet.installer.downloads[0]["sha256"] == SHA


async def test_a_redirect_to_another_origin_is_followed_without_the_token():
    store = ApkPeer()
    async with serve(store) as store_url:
        front = ApkPeer(redirect=f"{store_url.replace('127.0.0.1', 'localhost')}/api/v1/device/apks/{APK_ID}/download?X-Sig=a%2Fb")
        async with serve(front) as url, fleet_against(url) as fleet:
            result = await fleet.installer.run(fleet.devices[0], payload())
    assert result["status"] == "succeeded"
    assert front.requests[0]["Authorization"] == TOKEN["Authorization"]
    assert "Authorization" not in store.requests[0]


async def test_a_redirect_within_the_origin_keeps_the_token():
    peer = ApkPeer()
    async with serve(peer) as url, fleet_against(url) as fleet:
        peer.redirect, peer.redirect_once = f"{url}/api/v1/device/apks/{APK_ID}/download?again=1", True
        result = await fleet.installer.run(fleet.devices[0], payload())
    assert result["status"] == "succeeded"
    assert len(peer.requests) == 2 and all(r["Authorization"] == TOKEN["Authorization"] for r in peer.requests)


async def test_corrupted_bytes_start_the_download_over_once_and_then_install():
    peer = ApkPeer(corrupt=1)
    async with serve(peer) as url, fleet_against(url) as fleet:
        result = await fleet.installer.run(fleet.devices[0], payload())
    assert result["status"] == "succeeded"
    assert len(peer.requests) == 2 and "Range" not in peer.requests[1]  # from byte 0
    counters = fleet.stats.counters
    assert counters["apk_checksum_mismatch"] == 1 and counters["apk_checksum_ok"] == 1


async def test_bytes_corrupted_twice_fail_the_install_without_installing():
    peer = ApkPeer(corrupt=5)
    async with serve(peer) as url, fleet_against(url) as fleet:
        result = await fleet.installer.run(fleet.devices[0], payload())
        device = fleet.devices[0]
    assert result["status"] == "failed" and result["error"].startswith("download rejected: sha256 ")
    assert len(peer.requests) == 2
    assert "com.example.big" not in device.installed and peer.inventories == []


async def test_a_refused_download_fails_and_a_busy_one_is_retried():
    refused, busy = ApkPeer(statuses=[404]), ApkPeer(statuses=[503, 429])
    async with serve(refused) as url, fleet_against(url) as fleet:
        assert await fleet.installer.run(fleet.devices[0], payload()) == {
            "status": "failed", "exit_code": 1, "error": "download failed: HTTP 404 not_found"}
    async with serve(busy) as url, fleet_against(url) as fleet:
        assert (await fleet.installer.run(fleet.devices[0], payload()))["status"] == "succeeded"
    assert len(busy.requests) == 3


@pytest.mark.parametrize("change", [{"sha256": "abc"}, {"version_code": "7"}, {"size": -1}, {"apk_id": ""}, {"package": None}])
def test_bad_params_are_refused_before_any_download(change):
    with pytest.raises(ValueError):
        apk_spec(payload(**change)["params"])


async def test_no_more_downloads_run_at_once_than_the_cap():
    hold = asyncio.Event()
    peer = ApkPeer(hold=hold)
    async with serve(peer) as url, fleet_against(url, devices=6, download_concurrency=2) as fleet:
        installs = [asyncio.create_task(fleet.installer.run(d, payload(f"c-{d.index}"))) for d in fleet.devices]
        while len(peer.requests) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the others would have arrived by now were they let through
        assert len(peer.requests) == 2
        hold.set()
        results = await asyncio.gather(*installs)
    assert [r["status"] for r in results] == ["succeeded"] * 6
    assert peer.max_in_flight == 2 and len(peer.requests) == 6
