"""Conformance of the policy channel's device endpoints (PROTOCOL.md v1.1 "GET
/api/v1/device/policy", "PUT /api/v1/device/policy/status"): signed like an envelope with the
device's own key, version numbers, secrets only on the device's own pull, compliance."""

import json

import pytest
from django.test import Client

from commands import services, signing
from commands.policies import reports
from commands.policies import services as policies
from commands.tests.conftest import make_device
from devices.models import DevicePolicyState
from devices.tests.test_writebehind import count_redis_commands

pytestmark = pytest.mark.django_db


def fetch(sim) -> tuple[dict, dict]:
    response = sim.client().get("/api/v1/device/policy")
    assert response.status_code == 200, response.content
    envelope = response.json()
    return envelope, json.loads(envelope["policy"])


def verified(sim, envelope) -> dict:
    """The device's rule 1: the signature verifies with a key it holds, by kid."""
    key = sim.keys[envelope["kid"]]
    assert signing.sign(key, envelope["policy"]) == envelope["sig"]
    return json.loads(envelope["policy"])


def put_status(sim, body, token=None):
    client = Client(HTTP_AUTHORIZATION=f"Device {token or sim.token}")
    response = client.put("/api/v1/device/policy/status", data=json.dumps(body), content_type="application/json")
    reports.flush_all()  # the 1 s flush of the reports' write-behind (commands.policies.reports)
    return response


@pytest.fixture
def wifi(admin_user):
    return services.create_wifi_config(actor=admin_user, name="Shop", ssid="shop-net", password="hunter22-pass")


def test_a_device_without_a_policy_gets_version_0_and_empty_items_signed_the_same_way():
    sim = make_device()
    envelope, document = fetch(sim)
    assert set(envelope) == {"policy", "kid", "sig"}
    assert verified(sim, envelope) == document
    assert document["device_id"] == sim.id and document["version"] == 0 and document["items"] == {}
    assert isinstance(document["issued_at"], int)


def test_the_policy_is_signed_with_the_devices_own_key_and_carries_the_wifi_password(admin_user, wifi):
    sim, other = make_device(), make_device()
    policy = policies.create_policy(actor=admin_user, name="Shops", items={"kiosk": {"package": "com.example.kiosk"}, "wifi": [str(wifi.pk)]})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    envelope, document = fetch(sim)
    assert verified(sim, envelope)["version"] == policy.version > 0
    assert document["items"]["wifi"] == [{"id": str(wifi.pk), "ssid": "shop-net", "security": "wpa2", "hidden": False,
                                          "password": "hunter22-pass"}]
    # Another device's key does not verify it (keys are per device).
    assert signing.sign(other.keys[envelope["kid"]], envelope["policy"]) != envelope["sig"]
    # The other device, with no policy, sees none of it.
    assert fetch(other)[1]["items"] == {}


def test_a_tampered_policy_fails_the_reference_verifier(admin_user):
    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="Kiosk", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"all": True})
    envelope, _ = fetch(sim)
    forged = dict(envelope, policy=envelope["policy"].replace("com.example.kiosk", "com.example.kiosx"))
    with pytest.raises(signing.BadEnvelope):
        signing.verify({"payload": forged["policy"], "kid": forged["kid"], "sig": forged["sig"]}, sim.keys,
                       device_id=sim.id, server_now=0)


def test_no_token_or_a_wrong_token_is_401():
    sim = make_device()
    assert Client().get("/api/v1/device/policy").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Device nope.nope").get("/api/v1/device/policy").json()["code"] == "token_invalid"
    assert put_status(sim, {"version": 0, "items": {}}, token="nope.nope").status_code == 401


def test_the_paths_work_with_a_trailing_slash_and_refuse_other_methods():
    sim = make_device()
    assert sim.client().get("/api/v1/device/policy/").status_code == 200
    assert sim.client().post("/api/v1/device/policy").status_code == 405
    assert sim.client().get("/api/v1/device/policy/status").status_code == 405


def test_a_report_of_the_current_version_with_every_item_applied_makes_the_device_compliant(admin_user):
    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"},
                                                                        "restrictions": ["no_factory_reset"]})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    version = fetch(sim)[1]["version"]
    response = put_status(sim, {"version": version, "items": {"kiosk": {"state": "applied"},
                                                               "restrictions": {"state": "failed", "reason": "boom"}}})
    assert response.status_code == 204
    state = DevicePolicyState.objects.get(device_id=sim.id)
    assert (state.applied_version, state.compliant) == (version, False)
    assert state.items["restrictions"] == {"state": "failed", "reason": "boom"}
    put_status(sim, {"version": version, "items": {"kiosk": {"state": "applied"}, "restrictions": {"state": "applied"},
                                                   "future_item": {"state": "unsupported"}}})
    assert DevicePolicyState.objects.get(device_id=sim.id).compliant


def test_a_report_of_another_version_is_accepted_but_not_compliant(admin_user):
    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    old = policy.version
    policies.update_policy(actor=admin_user, policy=policy, items={"kiosk": {"package": "com.example.other"}})
    assert put_status(sim, {"version": old, "items": {"kiosk": {"state": "applied"}}}).status_code == 204
    state = DevicePolicyState.objects.get(device_id=sim.id)
    assert state.applied_version == old and state.version > old and not state.compliant


@pytest.mark.parametrize("body, field", [
    ({"version": 1, "items": {"kiosk": {"state": "done"}}}, "items.kiosk.state"),
    ({"version": -1, "items": {}}, "version"),
    ({"version": True, "items": {}}, "version"),
    ({"version": 1, "items": []}, "items"),
    ({"version": 1, "items": {"kiosk": "applied"}}, "items.kiosk"),
    ({"version": 1, "items": {"kiosk": {"state": "failed", "reason": "a\u0000b"}}}, "items.kiosk.reason"),
])
def test_a_bad_report_is_a_400_naming_the_field(body, field):
    sim = make_device()
    response = put_status(sim, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["fields"]


def test_a_body_that_is_not_a_json_object_is_400():
    sim = make_device()
    response = sim.client().put("/api/v1/device/policy/status", data="[1]", content_type="application/json")
    assert response.status_code == 400


def _status_bodies():
    from hypothesis import strategies as st

    from commands.tests.test_device_endpoints_fuzz import JSON, NUMBERS, TEXT, body

    item = st.fixed_dictionaries({"state": st.sampled_from(["applied", "failed", "unsupported", "pending"]) | TEXT},
                                 optional={"reason": TEXT | JSON})
    shaped = st.fixed_dictionaries({"version": NUMBERS | JSON, "items": st.dictionaries(TEXT, item | JSON, max_size=4)})
    return st.one_of(shaped.map(lambda o: json.dumps(o).encode()), body({"version", "items"}))


def test_any_status_report_is_a_204_or_a_4xx_and_never_stores_what_postgresql_refuses(admin_user):
    from hypothesis import given

    from commands.tests.test_device_endpoints_fuzz import FUZZ

    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    client = sim.client()

    @FUZZ
    @given(raw=_status_bodies())
    def run(raw):
        response = client.generic("PUT", "/api/v1/device/policy/status", raw, content_type="application/json")
        assert response.status_code == 204 or 400 <= response.status_code < 500, response.content
        if response.status_code != 204:
            assert {"detail", "code"} <= set(response.json())

    run()
    assert fetch(sim)[1]["version"] == policy.version  # the device still reads its policy


def test_a_fleet_fetching_one_version_costs_no_query_a_fetch_and_none_a_report(admin_user, wifi, django_assert_num_queries):
    """A policy change makes every device fetch and report within an interval: the version comes
    from the heartbeat's Redis cache, the rendered items from a per-process cache of the
    (immutable) version and the signing key from the keyset the heartbeat cached (sealed), so a
    warm fetch touches no database; the report is queued for the flush."""
    sims = [make_device() for _ in range(3)]
    policy = policies.create_policy(actor=admin_user, name="Shops", items={"wifi": [str(wifi.pk)]})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [s.id for s in sims]})
    fetch(sims[0])  # renders the version once in this process
    for sim in sims[1:]:
        assert sim.client().post("/api/v1/device/heartbeat", data="{}", content_type="application/json").status_code == 200
        with django_assert_num_queries(0):  # token, version and signing key from Redis, items rendered
            envelope, document = fetch(sim)
        assert verified(sim, envelope)["items"]["wifi"][0]["password"] == "hunter22-pass"
        with django_assert_num_queries(0):  # queued in Redis for the flush
            assert Client(HTTP_AUTHORIZATION=f"Device {sim.token}").put(
                "/api/v1/device/policy/status", data=json.dumps({"version": policy.version, "items": {"wifi": {"state": "applied"}}}),
                content_type="application/json").status_code == 204
    assert reports.flush_all() == 2  # one statement for the batch
    assert DevicePolicyState.objects.filter(device_id__in=[s.id for s in sims], all_applied=True).count() == 2


def test_after_a_key_rotation_the_fetch_signs_with_the_new_key_not_a_cached_one(admin_user, wifi, capture_on_commit):
    from datetime import timedelta

    from django.utils import timezone

    from commands.models import DeviceKey
    from commands.services import keys as key_services

    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="Shops", items={"wifi": [str(wifi.pk)]})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    sim.client().post("/api/v1/device/heartbeat", data="{}", content_type="application/json")  # caches the keyset
    old_kid = fetch(sim)[0]["kid"]
    with capture_on_commit(execute=True):
        key_services.start_key_rotation(device_ids=[sim.id], lead=timedelta(0))
    with capture_on_commit(execute=True):
        assert key_services.promote_due_keys(now=timezone.now() + timedelta(seconds=1)) == 1
    current = DeviceKey.objects.get(device_id=sim.id, state=DeviceKey.State.CURRENT)
    envelope, _ = fetch(sim)
    assert current.kid != old_kid and envelope["kid"] == current.kid
    assert signing.sign(current.key, envelope["policy"]) == envelope["sig"]


def test_a_device_just_enrolled_fetches_its_first_policy_without_a_query(admin_user, wifi, capture_on_commit,
                                                                         django_assert_num_queries):
    # Enrollment caches the new key beside the clean marker, so the fleet-wide first fetch after
    # an enrollment wave reads no key from PostgreSQL either.
    with capture_on_commit(execute=True):
        sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="Shops", items={"wifi": [str(wifi.pk)]})
    other = make_device()
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id, other.id]})
    fetch(other)  # renders the version once in this process
    sim.client().post("/api/v1/device/heartbeat", data=json.dumps({"kids": sim.kids}), content_type="application/json")
    with django_assert_num_queries(0):
        envelope, document = fetch(sim)
    assert verified(sim, envelope)["version"] == policy.version


def _report(sim, body, token=None):
    return Client(HTTP_AUTHORIZATION=f"Device {token or sim.token}").put(
        "/api/v1/device/policy/status", data=json.dumps(body), content_type="application/json")


def test_a_warm_fetch_and_a_report_are_one_redis_round_trip_each(admin_user, monkeypatch):
    """The token check carries the request's own Redis work (devices.tokens.verify_with): the
    fetch's reads of the cached version, marker and keyset, the report's queueing. A fleet-wide
    change makes every device fetch and report within one interval (docs/performance.md)."""
    sims = [make_device() for _ in range(2)]
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [s.id for s in sims]})
    fetch(sims[0])  # renders the version once in this process
    sim = sims[1]
    assert sim.client().post("/api/v1/device/heartbeat", data=json.dumps({"kids": sim.kids}),
                             content_type="application/json").status_code == 200  # token, marker and keyset cached
    sent = count_redis_commands(monkeypatch)
    envelope, document = fetch(sim)
    assert sent == ["EVALSHA"]
    assert verified(sim, envelope)["version"] == policy.version
    sent.clear()
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "applied"}}}).status_code == 204
    assert sent == ["EVALSHA"]
    assert reports.flush_all() == 1
    assert DevicePolicyState.objects.get(device_id=sim.id).all_applied


def test_a_forged_secret_is_refused_by_the_same_call_and_queues_nothing(admin_user):
    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    fetch(sim)  # token cached, version rendered
    token_id, secret = sim.token.split(".", 1)
    forged = f"{token_id}.{secret[:-2]}xx"
    answer = Client(HTTP_AUTHORIZATION=f"Device {forged}").get("/api/v1/device/policy")
    assert answer.status_code == 401 and answer.json()["code"] == "token_invalid"
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "applied"}}}, token=forged).status_code == 401
    assert reports.flush_all() == 0
    assert not DevicePolicyState.objects.filter(device_id=sim.id, applied_version__isnull=False).exists()


def test_a_report_before_authentication_reads_no_policy_version(admin_user, django_assert_max_num_queries):
    """Judging a report needs its version's item names; a version this process has not rendered is
    read from PostgreSQL only after the token check, so a stranger cannot make the server read
    versions (or push real ones out of its cache)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    unseen = policy.version + 1000
    with CaptureQueriesContext(connection) as queries:
        answer = _report(sim, {"version": unseen, "items": {}}, token="0123456789abcdef.not-the-secret")
    assert answer.status_code == 401
    assert not any("policyversion" in q["sql"] for q in queries.captured_queries), queries.captured_queries
    assert unseen not in policies._NAMES


def test_a_report_of_a_version_this_process_has_not_rendered_is_judged_after_the_check(admin_user, monkeypatch):
    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    policies._rendered.cache_clear()
    policies._NAMES.clear()  # another web process: the device fetched from that one
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "applied"}}}).status_code == 204
    reports.flush_all()
    assert DevicePolicyState.objects.get(device_id=sim.id).all_applied
    policies._NAMES.clear()  # emptied (NAMES_KEPT) while the rendering stays cached: learnt again
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "applied"}}}).status_code == 204
    sent = count_redis_commands(monkeypatch)
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "failed"}}}).status_code == 204
    assert sent == ["EVALSHA"]  # now queued by the check itself, and judged the same
    reports.flush_all()
    assert not DevicePolicyState.objects.get(device_id=sim.id).all_applied


def test_a_token_the_cache_does_not_hold_or_redis_refusing_the_script_falls_back_to_the_plain_check(admin_user,
                                                                                                    monkeypatch):
    import redis

    from devices import tokens

    sim = make_device()
    policy = policies.create_policy(actor=admin_user, name="P", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
    tokens._forget(sim.token.split(".", 1)[0])  # first use, or evicted: bcrypt once, then cached
    assert fetch(sim)[1]["version"] == policy.version
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "applied"}}}).status_code == 204

    class Refusing:
        def __call__(self, **kwargs):
            raise redis.ResponseError("NOSCRIPT, or a Redis that refuses scripts")

    monkeypatch.setattr(tokens, "_checked_script", lambda client: Refusing())
    assert fetch(sim)[1]["version"] == policy.version
    assert _report(sim, {"version": policy.version, "items": {"kiosk": {"state": "failed"}}}).status_code == 204
    reports.flush_all()
    assert not DevicePolicyState.objects.get(device_id=sim.id).all_applied  # the last report, through the plain path
    assert Client(HTTP_AUTHORIZATION="Device nope.nope").get("/api/v1/device/policy").status_code == 401
