"""The fleet simulator's own device-side behaviour, against a scripted peer (an aiohttp server
in the test) so each rule can be provoked exactly. The smoke test against the real server is
tests/test_simulator_smoke.py."""

import asyncio
import base64
import contextlib
import json

import pytest
from aiohttp import web

from commands.signing import make_envelope
from commands.vectors import VECTOR_FILE
from loadtest.simulator import BadEnvelope, Fleet, Rejected, backoff_delay, verify_envelope

PROTOCOL_KEY = base64.b64decode("Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I=")
PROTOCOL_PAYLOAD = (
    '{"id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","device_id":"3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c","seq":17,'
    '"type":"launch_app","params":{"package":"com.example.kiosk"},"issued_at":1764086400,"expires_at":1764090000}'
)
PROTOCOL_SIG = "a530b5c665335a6b529f1eecaa509bfc5bcb08e9e8e2a4afee7d855e882c9de8"
DEVICE = "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c"


def test_the_protocol_md_vector_verifies():
    env = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": PROTOCOL_SIG}
    payload = verify_envelope(env, {"k1": PROTOCOL_KEY}, device_id=DEVICE, server_now=1764086400)
    assert payload["params"] == {"package": "com.example.kiosk"}
    assert verify_envelope({**env, "sig": PROTOCOL_SIG.upper()}, {"k1": PROTOCOL_KEY}, device_id=DEVICE, server_now=1764086400)


@pytest.mark.parametrize(
    "change",
    [
        {"payload": PROTOCOL_PAYLOAD.replace("kiosk", "kiosx")},
        {"kid": "k9"},
        {"sig": PROTOCOL_SIG[:-2]},
        {"sig": "zz" + PROTOCOL_SIG[2:]},
    ],
)
def test_tampered_or_unknown_key_envelopes_are_bad(change):
    env = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": PROTOCOL_SIG, **change}
    with pytest.raises(BadEnvelope):
        verify_envelope(env, {"k1": PROTOCOL_KEY}, device_id=DEVICE, server_now=1764086400)


def test_past_expiry_plus_grace_is_rejected_as_expired():
    env = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": PROTOCOL_SIG}
    with pytest.raises(Rejected) as caught:
        verify_envelope(env, {"k1": PROTOCOL_KEY}, device_id=DEVICE, server_now=1764090200)
    assert caught.value.reason == "expired"


def test_every_vector_of_the_shared_file_agrees():
    data = json.loads(VECTOR_FILE.read_text())
    keys = {k["kid"]: base64.b64decode(k["key"]) for k in data["keys"]}
    for v in data["vectors"]:
        try:
            verify_envelope(v["envelope"], keys, device_id=v["device_id"], server_now=v["server_time"])
            outcome = ("valid", None)
        except BadEnvelope:
            outcome = ("bad_signature" if v["envelope"]["kid"] in keys else "unknown_kid", None)
        except Rejected as r:
            outcome = ("rejected", r.reason)
        assert outcome == (v["expect"], v["reason"]), v["name"]


def test_backoff_honours_retry_after_as_a_floor_with_jitter():
    delays = [backoff_delay(0, retry_after=4) for _ in range(200)]
    assert min(delays) >= 4 and max(delays) <= 6
    assert len({round(d, 3) for d in delays}) > 50  # jittered, not lockstep
    assert all(0 <= backoff_delay(10) <= 30 for _ in range(100))


# --- against a scripted peer ------------------------------------------------------------------
KEY = b"k" * 32
DEVICE_ID = "11111111-1111-4111-8111-111111111111"


class Peer:
    """Answers like the server would, scripted per test; records what the device did."""

    def __init__(self, enroll_script=(), commands=()):
        self.enroll_script = list(enroll_script)
        self.commands = list(commands)
        self.results: list[tuple[str, dict]] = []
        self.enroll_calls = 0
        self.result_delay = 0.0

    async def enroll(self, request):
        self.enroll_calls += 1
        if self.enroll_script:
            status, retry_after = self.enroll_script.pop(0)
            return web.json_response({"detail": "busy", "code": "busy"}, status=status, headers={"Retry-After": str(retry_after)})
        return web.json_response(
            {"device_id": DEVICE_ID, "device_token": "t.s", "heartbeat_interval_s": 1,
             "command_keys": [{"kid": "k1", "key": base64.b64encode(KEY).decode()}], "server_time": 1764086400},
            status=201,
        )

    async def heartbeat(self, request):
        commands, self.commands = self.commands, []
        return web.json_response({"server_time": 1764086400, "heartbeat_interval_s": 1, "commands": commands,
                                  "more_commands": False, "cancelled": [], "inventory_requested": False, "ignored_fields": []})

    async def pull(self, request):
        return web.json_response({"commands": [], "more": False})

    async def result(self, request):
        self.results.append((request.match_info["cid"], await request.json()))
        await asyncio.sleep(self.result_delay)
        return web.json_response({"status": "succeeded"})


async def _serve(peer: Peer):
    app = web.Application()
    app.router.add_post("/api/v1/enroll", peer.enroll)
    app.router.add_post("/api/v1/device/heartbeat", peer.heartbeat)
    app.router.add_get("/api/v1/device/commands", peer.pull)
    app.router.add_post("/api/v1/device/commands/{cid}/result", peer.result)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def _envelope(seq: int, command_id: str, **payload):
    body = {"id": command_id, "device_id": DEVICE_ID, "seq": seq, "type": "ping", "params": {},
            "issued_at": 1764086400, "expires_at": 1764090000, **payload}
    return make_envelope(payload=body, kid="k1", key=KEY)


async def test_enrollment_backs_off_on_503_and_429_then_succeeds(monkeypatch):
    peer = Peer(enroll_script=[(503, 0), (429, 0)])
    runner, url = await _serve(peer)
    sleeps = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds):
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    try:
        async with Fleet(base_url=url, enroll_key="key", devices=1, duration=5) as fleet:
            await fleet.enroll_all()
    finally:
        monkeypatch.setattr(asyncio, "sleep", real_sleep)
        await runner.cleanup()
    assert peer.enroll_calls == 3
    assert fleet.enroll_retries == 2 and fleet.enroll_failures == 0
    assert fleet.devices[0].device_id == DEVICE_ID
    assert len(sleeps) == 2


async def _beat_once_then(peer: Peer, then) -> Fleet:
    """One device enrolls against the peer and heartbeats once (taking the peer's commands); then
    `then(fleet, device)` runs before the fleet closes."""
    runner, url = await _serve(peer)
    try:
        async with Fleet(base_url=url, enroll_key="key", devices=1, duration=5, failure_rate=0.0, exec_scale=0.01) as fleet:
            await fleet.enroll_all()
            device = fleet.devices[0]
            await fleet.heartbeat(device, scheduled=asyncio.get_running_loop().time())
            await then(fleet, device)
    finally:
        await runner.cleanup()
    return fleet


async def test_a_replayed_envelope_runs_once_and_its_held_result_is_posted_again():
    envelope = _envelope(1, "aaaaaaaa-0000-4000-8000-000000000001")
    peer = Peer(commands=[envelope])

    async def push_it_again(fleet, device):
        await asyncio.wait_for(device.runner, 5)
        fleet.accept_envelopes(device, [envelope], channel="push")  # the same command again, by push
        await asyncio.sleep(0.2)

    fleet = await _beat_once_then(peer, push_it_again)
    assert fleet.stats.counters["received_heartbeat"] == 1
    assert fleet.stats.counters["duplicates"] == 1
    assert [r[1]["status"] for r in peer.results] == ["succeeded", "succeeded"]  # re-posted, not re-run
    assert fleet.stats.counters["acked_succeeded"] == 2


async def test_a_copy_arriving_while_the_result_is_still_being_posted_adds_no_second_post():
    envelope = _envelope(1, "aaaaaaaa-0000-4000-8000-000000000004")
    peer = Peer(commands=[envelope])
    peer.result_delay = 0.5

    async def push_it_while_reporting(fleet, device):
        while not peer.results:  # executed; its result is on the wire
            await asyncio.sleep(0.01)
        fleet.accept_envelopes(device, [envelope], channel="push")  # the push copy lands now
        await asyncio.wait_for(device.runner, 5)
        await asyncio.sleep(0.1)

    fleet = await _beat_once_then(peer, push_it_while_reporting)
    assert fleet.stats.counters["duplicates"] == 1
    assert len(peer.results) == 1 and fleet.stats.counters["acked_succeeded"] == 1


async def test_a_bad_signature_is_counted_never_reported_and_sent_in_the_next_heartbeat():
    forged = {**_envelope(1, "aaaaaaaa-0000-4000-8000-000000000002"), "sig": "00" * 32}
    wrong_device = _envelope(2, "aaaaaaaa-0000-4000-8000-000000000003", device_id="22222222-2222-4222-8222-222222222222")
    peer = Peer(commands=[forged, wrong_device])
    runner, url = await _serve(peer)
    try:
        async with Fleet(base_url=url, enroll_key="key", devices=1, duration=5) as fleet:
            await fleet.enroll_all()
            device = fleet.devices[0]
            await fleet.heartbeat(device, scheduled=asyncio.get_running_loop().time())
            await asyncio.sleep(0.2)
            assert device.bad_envelopes == 1
            assert device.telemetry(fleet.rng)["bad_envelopes"] == 1
    finally:
        await runner.cleanup()
    assert peer.results == [("aaaaaaaa-0000-4000-8000-000000000003", {"status": "rejected", "reason": "wrong_device"})]


# --- re-enrollment waiting for an admin (PROTOCOL.md v1.1) ---------------------------------------
class ReenrollPeer(Peer):
    """A server that knows the device: without its current token the enroll is answered 409 with
    a request id, the same one while it is pending, the next of `ids` when the enroll carries no
    id or a spent one; an id in `approved` lets it in."""

    def __init__(self, ids, approved=(), current_token="t.current"):
        super().__init__()
        self.ids, self.approved, self.current_token = list(ids), set(approved), current_token
        self.spent: set[str] = set()
        self.pending: str | None = None
        self.seen: list[tuple[float, dict, str | None]] = []

    async def enroll(self, request):
        body = await request.json()
        auth = request.headers.get("Authorization")
        self.seen.append((asyncio.get_running_loop().time(), body, auth))
        if auth == f"Device {self.current_token}" or body.get("reenroll_request") in self.approved:
            return await super().enroll(request)
        if self.pending is None or body.get("reenroll_request") != self.pending or self.pending in self.spent:
            self.pending = self.ids.pop(0)
        return web.json_response({"detail": "needs an admin", "code": "reenroll_needs_approval",
                                  "reenroll_request": self.pending}, status=409)


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _enroll_against(peer, **fleet_kwargs):
    """A one-device fleet enrolling against the peer (refused floor 0.2 s); yields the fleet, its
    device and the enrolling task."""
    runner, url = await _serve(peer)
    try:
        async with Fleet(base_url=url, enroll_key="key", devices=1, duration=10, refused_retry_s=0.2, **fleet_kwargs) as fleet:
            device = fleet.devices[0]
            enrolling = asyncio.create_task(fleet.enroll(device, asyncio.Semaphore(1)))
            yield fleet, device, enrolling
    finally:
        await runner.cleanup()


async def test_a_known_device_without_its_token_waits_repeating_its_request_id_until_approved():
    peer = ReenrollPeer(ids=["req-1"])
    async with _enroll_against(peer) as (fleet, device, enrolling):
        await _until(lambda: len(peer.seen) >= 3)  # asked, and repeated twice with the same id while pending
        assert device.reenroll_request == "req-1" and device.device_id is None
        peer.approved.add("req-1")
        assert await asyncio.wait_for(enrolling, 5) is True
    bodies = [body for _, body, _ in peer.seen]
    assert "reenroll_request" not in bodies[0]
    assert all(body["reenroll_request"] == "req-1" for body in bodies[1:])
    times = [t for t, _, _ in peer.seen]
    assert all(later - earlier >= 0.2 for earlier, later in zip(times, times[1:]))  # the floor: no tight loop
    assert device.device_id == DEVICE_ID and device.reenroll_request is None
    assert fleet.stats.counters["reenroll_requests"] == 1 and fleet.stats.counters["reenroll_waits"] >= 2


async def test_a_new_id_in_a_later_409_replaces_the_spent_one():
    peer = ReenrollPeer(ids=["req-1", "req-2"])
    async with _enroll_against(peer) as (fleet, device, enrolling):
        await _until(lambda: device.reenroll_request == "req-1")
        peer.spent.add("req-1")  # an admin denied it: the next repeat gets a new id
        await _until(lambda: device.reenroll_request == "req-2")
        peer.approved.add("req-2")
        assert await asyncio.wait_for(enrolling, 5) is True
    assert peer.seen[-1][1]["reenroll_request"] == "req-2"
    assert fleet.stats.counters["reenroll_requests"] == 2


async def test_a_device_holding_a_token_sends_it_and_its_request_id():
    peer = ReenrollPeer(ids=["req-1"], approved={"req-1"})
    async with _enroll_against(peer) as (fleet, device, enrolling):
        device.token = "t.revoked"  # e.g. its token was refused: re-enrolling after token_invalid
        device.reenroll_request = "req-1"
        assert await asyncio.wait_for(enrolling, 5) is True
    (only,) = peer.seen
    assert only[2] == "Device t.revoked" and only[1]["reenroll_request"] == "req-1"


async def test_a_current_token_re_keys_without_an_admin():
    peer = ReenrollPeer(ids=["req-1"])
    async with _enroll_against(peer) as (fleet, device, enrolling):
        device.token = "t.current"
        assert await asyncio.wait_for(enrolling, 5) is True
    assert len(peer.seen) == 1 and "reenroll_request" not in peer.seen[0][1]


async def test_routes_send_their_paths_to_another_plane_and_the_rest_to_the_base_url():
    """What nginx does in front of the planes (bench/nginx.py SYNC_PREFIXES): the benchmark's
    simulator calls `web` and `sync` directly, so it splits the paths itself."""
    peer = Peer()
    runner, url = await _serve(peer)
    seen = []

    async def policy(request):
        seen.append((request.method, request.path, request.headers.get("Authorization")))
        return web.json_response({"plane": "sync"})

    other = web.Application()
    other.router.add_get("/api/v1/device/policy", policy)
    other_runner = web.AppRunner(other)
    await other_runner.setup()
    site = web.TCPSite(other_runner, "127.0.0.1", 0)
    await site.start()
    other_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
    try:
        async with Fleet(base_url=url, routes=[("/api/v1/device/policy", other_url)], enroll_key="key", devices=1,
                         duration=5) as fleet:
            await fleet.enroll_all()
            device = fleet.devices[0]
            status, data, _ = await fleet.call("policy", "GET", "/api/v1/device/policy", device=device)
            pulled, _, _ = await fleet.call("commands", "GET", "/api/v1/device/commands", device=device)
    finally:
        await runner.cleanup()
        await other_runner.cleanup()
    assert (status, data) == (200, {"plane": "sync"})
    assert seen == [("GET", "/api/v1/device/policy", device.headers["Authorization"])]
    assert pulled == 200 and peer.enroll_calls == 1  # the rest stayed with the base URL
