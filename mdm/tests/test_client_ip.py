"""The client IP (mdm.clientip): X-Forwarded-For believed only as far as trusted proxies wrote it,
and the same answer in audit, rate limits, lockout and the request log."""

import ipaddress

from django.test import RequestFactory
from django_ratelimit.core import get_usage
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from mdm import audit
from mdm.clientip import client_ip, parse_networks, resolve
from mdm.models import AuditEvent

PROXIES = parse_networks(["172.30.14.0/24", "10.0.0.0/8", "fd00::/8"])
NGINX = "172.30.14.2"

public_v4 = st.integers(min_value=int(ipaddress.IPv4Address("1.0.0.0")), max_value=int(ipaddress.IPv4Address("9.255.255.255"))).map(
    lambda n: str(ipaddress.IPv4Address(n))
)
public_v6 = st.integers(min_value=int(ipaddress.IPv6Address("2001:db8::")), max_value=int(ipaddress.IPv6Address("2001:db8::ffff:ffff"))).map(
    lambda n: str(ipaddress.IPv6Address(n))
)
public_ip = public_v4 | public_v6
trusted_ip = st.sampled_from([NGINX, "10.1.2.3", "10.200.0.9", "fd00::5", "172.30.14.250"])
# Whatever a client can put in a header: text of any kind, commas, spaces, fake addresses.
header_junk = st.lists(st.one_of(st.text(max_size=40), public_ip, trusted_ip, st.just("unknown"), st.just("")), max_size=8).map(",".join)


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client():
    assert resolve("198.51.100.7", "203.0.113.9", PROXIES) == "198.51.100.7"


def test_behind_the_trusted_proxy_the_client_is_the_address_it_appended():
    assert resolve(NGINX, "203.0.113.9", PROXIES) == "203.0.113.9"


def test_what_the_client_wrote_left_of_the_proxys_entry_is_ignored():
    assert resolve(NGINX, "1.1.1.1, 10.9.9.9, 203.0.113.9", PROXIES) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked_right_to_left():
    assert resolve(NGINX, "1.1.1.1, 203.0.113.9, 10.0.0.4, 10.0.0.3", PROXIES) == "203.0.113.9"


def test_with_no_trusted_proxies_the_header_means_nothing():
    assert resolve(NGINX, "203.0.113.9", ()) == NGINX


def test_ipv4_mapped_and_bracketed_forms_are_read_as_addresses():
    assert resolve("::ffff:172.30.14.2", "[2001:db8::7]", PROXIES) == "2001:db8::7"


def test_a_bad_entry_stops_the_walk_at_the_last_address_a_proxy_vouched_for():
    assert resolve(NGINX, "203.0.113.9:4711, 10.0.0.4", PROXIES) == "10.0.0.4"


def test_no_usable_peer_address_gives_none():
    assert resolve("", "203.0.113.9", PROXIES) is None
    assert resolve("not-an-ip", None, PROXIES) is None


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(peer=public_ip, forwarded=header_junk)
def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(peer, forwarded):
    assert resolve(peer, forwarded, PROXIES) == str(ipaddress.ip_address(peer))


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(junk=header_junk, client=public_ip, hops=st.lists(trusted_ip, max_size=3), peer=trusted_ip)
def test_behind_trusted_proxies_the_client_is_found_whatever_it_prepends(junk, client, hops, peer):
    forwarded = ", ".join([junk, client, *hops]) if junk else ", ".join([client, *hops])
    assert resolve(peer, forwarded, PROXIES) == str(ipaddress.ip_address(client))


@hsettings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(peer=st.one_of(st.text(max_size=60), public_ip, trusted_ip), forwarded=st.one_of(st.none(), st.text(max_size=200), header_junk))
def test_any_input_gives_an_address_or_none_and_never_raises(peer, forwarded):
    result = resolve(peer, forwarded, PROXIES)
    assert result is None or ipaddress.ip_address(result)


def test_a_very_long_header_is_read_from_its_right_end_only():
    forwarded = "9.9.9.9," * 100_000 + "203.0.113.9"
    assert resolve(NGINX, forwarded, PROXIES) == "203.0.113.9"


def test_client_ip_reads_the_setting(settings):
    request = RequestFactory().get("/", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.9")
    settings.TRUSTED_PROXIES = []
    assert client_ip(request) == NGINX
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.9")) == "203.0.113.9"


def test_audit_records_the_client_behind_the_proxy_not_the_proxy(console_for, admin_user, viewer_user, settings):
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    console = console_for(admin_user)
    console.post(f"/accounts/users/{viewer_user.pk}/role/", {"role": "operator"}, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert AuditEvent.objects.get(action="user.set_role").ip == "203.0.113.9"
    assert audit.client_ip is client_ip


def test_per_ip_rate_limits_count_each_client_behind_the_proxy_apart(settings, db):
    """django-ratelimit's key="ip" (the enrollment endpoint's per-IP limit uses it) is the client."""
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]

    def count(client):
        request = RequestFactory().post("/", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=client)
        return get_usage(request, group="test-ip", key="ip", rate="100/h", increment=True)["count"]

    assert [count("203.0.113.9"), count("203.0.113.9"), count("198.51.100.1")] == [1, 2, 1]


def test_a_spoofed_header_from_an_untrusted_peer_shares_that_peers_bucket(settings, db):
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]

    def count(spoof):
        request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.66", HTTP_X_FORWARDED_FOR=spoof)
        return get_usage(request, group="test-spoof", key="ip", rate="100/h", increment=True)["count"]

    assert [count("1.1.1.1"), count("2.2.2.2"), count("3.3.3.3")] == [1, 2, 3]


def test_behind_nginx_the_enrollment_limit_is_per_client_not_one_global_bucket(client, settings, db):
    """Issue 14, finding 5: every client was the proxy's address, so one NAT'd site could use up
    the per-IP enrollment limit of the whole fleet."""
    import json

    from enrollment import services as enrollment_services

    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    settings.ENROLL_RATE_LIMIT = "1/m"
    key = enrollment_services.create_enrollment_key(actor=None, name="site").raw

    def enroll(hardware_id, forwarded_for):
        return client.post("/api/v1/enroll", data=json.dumps({"hardware_id": hardware_id}), content_type="application/json",
                           HTTP_X_ADMIN_KEY=key, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    assert enroll("HW-A1", "203.0.113.9") == 201
    assert enroll("HW-A2", "203.0.113.9") == 429
    assert enroll("HW-B1", "198.51.100.1") == 201
    # A client forging the header gains nothing: nginx appends the address it saw.
    assert enroll("HW-A3", "198.51.100.77, 203.0.113.9") == 429
