"""The QR builder's APK download cannot reach into the server's own network (issue 14, finding 6,
SSRF): the host is resolved by the server, loopback, private, link-local, multicast, unspecified
and reserved addresses are refused (IPv4 and IPv6, IPv4-mapped, NAT64 and 6to4 forms included),
the connection goes to the address checked (no second lookup of the name: DNS rebinding), every
redirect hop is checked again (at most five), and the download has a size cap and one deadline.

Every server here is on the loopback; addresses elsewhere are refused before any connection,
which `no_connection_off_the_loopback` makes a test failure rather than traffic."""

import asyncio
import functools
import http.server
import ipaddress
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from enrollment import provisioning

pytestmark = pytest.mark.django_db

APK = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks" / "agent-test.apk").read_bytes()
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list  # (path, Host header) of every request, set per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Host")))
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/agent.apk":
            return self._send(200, APK)
        if url.path == "/redirect":  # /redirect?to=URL
            return self._send(302, b"", {"Location": query["to"]})
        if url.path == "/hops":  # /hops?n=N: N redirects, then the APK
            n = int(query["n"])
            return self._send(302, b"", {"Location": f"/hops?n={n - 1}" if n else "/agent.apk"})
        if url.path == "/declared-huge":
            return self._send(200, b"", {"Content-Length": str(10**12)}, body_length=False)
        if url.path == "/endless":  # no Content-Length: close-delimited, never ends by itself
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"PK" * 32768)
            except OSError:
                return
        if url.path == "/drip":  # headers at once, then one byte every 200 ms
            self.send_response(200)
            self.send_header("Content-Length", str(len(APK)))
            self.end_headers()
            try:
                for byte in APK:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                return
        if url.path == "/silent":  # accepts, never answers
            time.sleep(10)
            return
        return self._send(404, b"")

    def _send(self, status, body, headers=None, body_length=True):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


@pytest.fixture
def server():
    seen = []
    handler = type("Recording", (Handler,), {"seen": seen})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.port = httpd.server_address[1]
    httpd.seen = seen
    yield httpd
    httpd.shutdown()


@pytest.fixture(autouse=True)
def no_connection_off_the_loopback(monkeypatch):
    """Any connect to an address off the loopback fails the test before a packet leaves."""
    real = asyncio.base_events.BaseEventLoop.create_connection
    attempts = []

    async def guarded(self, protocol_factory, host=None, port=None, *args, **kwargs):
        attempts.append(host)
        assert host is not None and ipaddress.ip_address(host).is_loopback, f"connection attempted to {host}"
        return await real(self, protocol_factory, host, port, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", guarded)
    return attempts


@pytest.fixture
def allow_127_0_0_1(settings):
    settings.QR_APK_ALLOWED_NETWORKS = "127.0.0.1/32"


def refused(url: str) -> str:
    with pytest.raises(provisioning.ApkFetchError) as caught:
        provisioning.fetch_apk(url)
    return str(caught.value)


# --- the server's own network is refused ---------------------------------------------------------

def test_an_apk_url_on_the_loopback_is_refused_by_default(server, no_connection_off_the_loopback):
    message = refused(f"{server.url}/agent.apk")
    assert message == (
        "The APK URL's host 127.0.0.1 is at 127.0.0.1, a loopback address: the server only downloads APKs from public "
        "addresses (an operator can allow a network with QR_APK_ALLOWED_NETWORKS)."
    )
    assert server.seen == [] and no_connection_off_the_loopback == []


def test_the_qr_builder_form_shows_the_refusal_on_the_apk_url(client, admin_user, server):
    from enrollment.services import create_enrollment_key

    client.force_login(admin_user)
    form = {"enroll_key": create_enrollment_key(actor=None, name="qr").raw, "server_url": "https://mdm.example.com",
            "apk_url": f"http://localhost:{server.port}/agent.apk", "admin_component": "dev.mdm.agent/.AdminReceiver",
            "wifi_security": "WPA"}
    response = client.post("/enrollment/qr/", form)
    assert response.status_code == 422
    body = response.content.decode()
    assert "The APK URL&#x27;s host localhost is at " in body and "a loopback address" in body
    assert server.seen == []


@pytest.mark.parametrize(
    "target, kind",
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/agent.apk", "private"),
        ("http://192.168.1.1/agent.apk", "private"),
        ("http://[fd00::1]/agent.apk", "private"),
        ("http://[fe80::1]/agent.apk", "link-local"),
        ("http://[::ffff:169.254.169.254]/agent.apk", "link-local"),
        ("http://0.0.0.0/agent.apk", "unspecified"),
        ("http://224.0.0.1/agent.apk", "multicast"),
        ("http://240.0.0.1/agent.apk", "reserved"),
        ("http://2130706434/agent.apk", "loopback"),  # 127.0.0.2 (only 127.0.0.1 is allowed here)
        ("http://0x7f.2/agent.apk", "loopback"),
        ("http://[::1]/agent.apk", "loopback"),
    ],
)
def test_a_redirect_into_the_servers_network_is_refused(server, allow_127_0_0_1, no_connection_off_the_loopback, target, kind):
    message = refused(f"{server.url}/redirect?to={target}")
    assert f"The APK URL redirects to {provisioning.httpx.URL(target).host}, which is at " in message
    assert f", a {kind} address: the server only downloads APKs from public addresses" in message
    assert [path for path, _ in server.seen] == [f"/redirect?to={target}"]
    assert set(no_connection_off_the_loopback) == {"127.0.0.1"}


def test_a_redirect_to_another_loopback_address_is_refused_when_only_one_is_allowed(server, allow_127_0_0_1):
    message = refused(f"{server.url}/redirect?to=http://127.0.0.2:{server.port}/agent.apk")
    assert "redirects to 127.0.0.2, which is at 127.0.0.2, a loopback address" in message


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/agent.apk", "gopher://127.0.0.1:6379/_INFO"])
def test_a_redirect_to_another_scheme_is_refused(server, allow_127_0_0_1, target):
    assert refused(f"{server.url}/redirect?to={target}") == "The APK URL redirects to a non-HTTP(S) address."


def test_five_redirects_are_followed_and_a_sixth_is_refused(server, allow_127_0_0_1):
    facts = provisioning.fetch_apk(f"{server.url}/hops?n=4")  # 5 redirects in all
    assert facts.size == len(APK)
    assert refused(f"{server.url}/hops?n=5") == "The APK URL redirects more than 5 times."
    assert len(server.seen) == 5 + 1 + 6


# --- DNS rebinding ---------------------------------------------------------------------------------

def test_the_connection_goes_to_the_address_checked_not_to_a_second_lookup(server, allow_127_0_0_1, monkeypatch):
    """A rebinding name answers a public address to the check and a private one to the client's
    own lookup. Here the check's lookup says 127.0.0.1 (allowed); no other lookup of the name may
    happen, and the request still names the host it was for."""
    looked_up = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    async def checked_lookup(host, port):
        assert host == "apk.rebind.test"
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
    monkeypatch.setattr(provisioning, "resolve", checked_lookup)
    facts = provisioning.fetch_apk(f"http://apk.rebind.test:{server.port}/agent.apk")
    assert facts.size == len(APK)
    assert "apk.rebind.test" not in looked_up
    assert server.seen == [("/agent.apk", f"apk.rebind.test:{server.port}")]


def test_a_name_with_any_refused_address_is_refused(server, allow_127_0_0_1, monkeypatch, no_connection_off_the_loopback):
    async def two_faced(host, port):
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.1.2.3")]

    monkeypatch.setattr(provisioning, "resolve", two_faced)
    assert "is at 10.1.2.3, a private address" in refused(f"http://mixed.test:{server.port}/agent.apk")
    assert server.seen == [] and no_connection_off_the_loopback == []


# --- size cap and deadline -------------------------------------------------------------------------

def test_a_declared_size_over_the_cap_is_refused_before_reading(server, allow_127_0_0_1, settings):
    settings.QR_APK_MAX_BYTES = 64 * 1024
    assert refused(f"{server.url}/declared-huge") == "The APK is larger than 64 KiB."


def test_an_endless_body_is_cut_at_the_cap(server, allow_127_0_0_1, settings):
    settings.QR_APK_MAX_BYTES = 256 * 1024
    started = time.monotonic()
    assert refused(f"{server.url}/endless") == "The APK is larger than 256 KiB."
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("path", ["/drip", "/silent"])
def test_the_whole_download_has_one_deadline(server, allow_127_0_0_1, settings, path):
    settings.QR_APK_TIMEOUT_S = 1.0
    started = time.monotonic()
    assert refused(f"{server.url}{path}") == "The APK did not download within 1 second."
    assert time.monotonic() - started < 3


def test_the_deadline_covers_every_hop(server, allow_127_0_0_1, settings):
    settings.QR_APK_TIMEOUT_S = 1.0
    started = time.monotonic()
    assert "did not download within" in refused(f"{server.url}/redirect?to=/drip")
    assert time.monotonic() - started < 3


# --- every form of an address ------------------------------------------------------------------------

REFUSED_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
                    "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.0.0/24", "::1/128", "fc00::/7", "fe80::/10",
                    "ff00::/8", "::/128", "fec0::/10"]
refused_ips = st.sampled_from(REFUSED_NETWORKS).flatmap(lambda n: st.ip_addresses(network=n))
refused_v4 = st.sampled_from([n for n in REFUSED_NETWORKS if ":" not in n]).flatmap(lambda n: st.ip_addresses(network=n))


@FUZZ
@given(ip=refused_ips)
def test_every_address_of_a_refused_network_is_refused(ip):
    assert provisioning.address_refusal(ip) is not None


@FUZZ
@given(v4=refused_v4, wrap=st.sampled_from(["mapped", "nat64", "6to4"]))
def test_an_ipv6_form_of_a_refused_ipv4_address_is_refused(v4, wrap):
    n = int(v4)
    ip = {"mapped": ipaddress.IPv6Address((0xFFFF << 32) | n), "nat64": ipaddress.IPv6Address((0x64FF9B << 96) | n),
          "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1)}[wrap]
    assert provisioning.address_refusal(ip) is not None, ip


@FUZZ
@given(ip=st.ip_addresses(v=4).filter(lambda a: a.is_global and not a.is_multicast and not a.is_reserved
                                      and a not in ipaddress.ip_network("100.64.0.0/10") and a not in ipaddress.ip_network("192.0.0.0/24")))
@example(ip=ipaddress.ip_address("93.184.216.34"))
def test_a_public_address_is_allowed_in_every_form(ip):
    assert provisioning.address_refusal(ip) is None
    assert provisioning.address_refusal(ipaddress.IPv6Address((0xFFFF << 32) | int(ip))) is None
    assert provisioning.address_refusal(ipaddress.IPv6Address((0x64FF9B << 96) | int(ip))) is None


NOT_A_URL = "The APK URL is not a valid address."


def _spellings(ip: ipaddress.IPv4Address) -> list[str]:
    """How a URL can spell an IPv4 address (all accepted by the C library's resolver)."""
    a, b, c, d = ip.packed
    n = int(ip)
    return [str(ip), str(n), hex(n), f"{a}.{(b << 16) | (c << 8) | d}", f"{a}.{b}.{(c << 8) | d}",
            ".".join(f"0{o:o}" for o in ip.packed), ".".join(hex(o) for o in ip.packed),
            f"[::ffff:{ip}]", f"[::ffff:{(n >> 16):x}:{(n & 0xFFFF):x}]", f"[0:0:0:0:0:ffff:{ip}]"]


@FUZZ
@given(v4=refused_v4, pick=st.integers(0, 9))
@example(v4=ipaddress.ip_address("127.0.0.1"), pick=1)
@example(v4=ipaddress.ip_address("169.254.169.254"), pick=2)
def test_every_spelling_of_a_refused_address_is_refused_before_connecting(v4, pick, no_connection_off_the_loopback):
    host = _spellings(v4)[pick]
    message = refused(f"http://{host}:9/agent.apk")
    # Refused as the address it is, or (zero-padded octets) as no valid URL at all: never fetched.
    assert "address: the server only downloads APKs from public addresses" in message or message == NOT_A_URL, (host, message)
    assert no_connection_off_the_loopback == []


@FUZZ
@given(last=st.integers(1, 254), pick=st.integers(0, 9))
def test_a_loopback_server_in_any_spelling_receives_nothing(server, last, pick):
    host = _spellings(ipaddress.IPv4Address(f"127.0.0.{last}"))[pick]
    message = refused(f"http://{host}:{server.port}/agent.apk")
    assert "a loopback address" in message or message == NOT_A_URL, (host, message)
    assert server.seen == []
