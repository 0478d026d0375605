"""The shipped proxy (deploy/nginx.conf, run by a real nginx with only the bench's machine
adaptations, bench/nginx.py) sends every device endpoint of the URL tree to the device plane
(`web`), but the policy fetch and report to the desired-state plane (`sync`), and everything else
to the people plane (`console`): neither an admin's fleet-wide request nor the fleet's answer to a
policy change runs in a process that serves heartbeats (docs/performance.md, "A third plane").
bench/nginx.py's SYNC_PREFIXES, the split the benchmark's simulator makes itself, is checked
against the proxy's here too."""

import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from bench import nginx
from tests.live import free_port
from tests.urlwalk import all_routes


def _upstream(name: str) -> ThreadingHTTPServer:
    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    assert binary, "nginx is installed by `make test` (scripts/test-services.sh)"
    web, sync, console = _upstream("web"), _upstream("sync"), _upstream("console")
    work = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = nginx.write_config(port=port, web_port=web.server_address[1], sync_port=sync.server_address[1],
                              console_port=console.server_address[1], media_dir=work / "media", work=work)
    nginx.check(binary, conf, work)
    proc = subprocess.Popen(nginx.argv(binary, conf, work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.get("/healthz")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
    yield client
    proc.terminate()
    proc.wait(timeout=10)
    for upstream in (web, sync, console):
        upstream.shutdown()


ROUTES = sorted(path for path, _ in all_routes())
DEVICE = [p for p in ROUTES if p.startswith("/api/v1/device/") or p == "/api/v1/enroll"]
SYNC = [p for p in DEVICE if p.startswith(nginx.SYNC_PREFIXES)]


def test_the_url_tree_has_the_device_protocol():
    assert "/api/v1/enroll" in DEVICE and "/api/v1/device/heartbeat" in DEVICE and len(DEVICE) >= 8
    assert {"/api/v1/device/policy", "/api/v1/device/policy/status"} <= set(SYNC)
    assert all(p.rstrip("/") in ("/api/v1/device/policy", "/api/v1/device/policy/status") for p in SYNC)


@pytest.mark.parametrize("path", [p for p in DEVICE if p not in SYNC])
def test_every_device_endpoint_goes_to_the_device_plane(front, path):
    for method in ("GET", "POST", "PUT"):
        assert front.request(method, path, content=b"{}").text == "web", (method, path)


@pytest.mark.parametrize("path", SYNC)
def test_the_policy_channel_goes_to_the_desired_state_plane(front, path):
    for method in ("GET", "PUT"):
        assert front.request(method, path, content=b"{}").text == "sync", (method, path)


@pytest.mark.parametrize("path", ["/api/v1/device/polic", "/api/v1/device/heartbeat/policy", "/api/v1/policies",
                                  "/api/v1/policies/x/assign"])
def test_policy_look_alikes_stay_where_they_were(front, path):
    assert front.put(path, content=b"{}").text == ("web" if path.startswith("/api/v1/device/") else "console")


@pytest.mark.parametrize("path", [p for p in ROUTES if p not in DEVICE])
def test_every_other_route_goes_to_the_people_plane(front, path):
    assert front.get(path).text == "console", path


@pytest.mark.parametrize("path", ["/", "/api/v1/devices", "/api/v1/devices/3f0e5a52-8c5e-4b1f-9d0a-0c1e2f3a4b5c",
                                  "/api/v1/enroll/", "/api/v1/enrollment-keys", "/api/v1/uploads/abc",
                                  "/api/v1/policies/x/assign", "/api/v1/commands"])
def test_look_alike_paths_stay_with_the_people_plane(front, path):
    assert front.post(path, content=b"{}").text == "console"
