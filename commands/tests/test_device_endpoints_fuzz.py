"""Arbitrary JSON at the device endpoints (issue 14): whatever a device posts to the heartbeat, the
inventory or a command result, the answer is never a 5xx (a refusal is a 4xx with `detail` and
`code`), and after the next flush the write-behind queues are empty, nothing was set aside (the
edge let nothing through that PostgreSQL refuses) and a well-behaved device's heartbeat is in
PostgreSQL.

Seeded and CI-sized here; `MDM_FUZZ_EXAMPLES=10000` runs the long pass."""

import json
import os

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import markers, results, services
from commands.models import DEVICE_STATUSES
from commands.tests.conftest import make_device
from commands.tests.test_dispatch import issue, push
from commands.tests.test_pushed_answer import clean_phone
from devices import services as device_services
from devices import telemetry, tokens, writebehind
from devices.models import DeviceStatus
from mdm import deadletters

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("MDM_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# What PostgreSQL refuses (NUL, lone surrogates) and what tends to break parsers, planted in
# otherwise ordinary text; any code point, surrogates included; and lengths at the limits.
NASTY = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\U0001f600", "é", '"', "\\", "%", "\n", "\u2028", "\ufeff"])
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
TEXT = st.one_of(
    st.builds(lambda before, bad, after: before + bad + after, ANY_TEXT, NASTY, ANY_TEXT),
    ANY_TEXT,
    st.sampled_from(["x" * 256, "x" * 257, "😀" * 4096, "y" * 4097, "2024-02-30", "2024-05-05", "fe80::1%wlan0", "a" * 64 + "\n"]),
)
NUMBERS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.sampled_from([2**31, 2**63, 10_000, 10_001]))
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)


def body(known_keys) -> st.SearchStrategy:
    """JSON objects of the endpoint's own field names (with text-heavy values: text is what
    PostgreSQL refuses) and any others; now and then bytes that are not JSON, or not UTF-8."""
    value = st.one_of(TEXT, st.lists(TEXT, max_size=3), JSON)
    known = st.dictionaries(st.sampled_from(sorted(known_keys)), value, min_size=1, max_size=8)
    objects = st.builds(lambda mine, other: {**other, **mine}, known, st.dictionaries(TEXT, JSON, max_size=3))
    encoded = objects.map(lambda o: json.dumps(o).encode())
    return st.one_of(encoded, encoded, encoded, st.binary(max_size=64))


APP = st.dictionaries(st.sampled_from(["package", "version_name", "version_code", "system", "enabled"]) | TEXT, JSON, max_size=6)
INVENTORY = st.one_of(
    st.fixed_dictionaries({"apps": st.lists(APP, max_size=4)}).map(lambda o: json.dumps(o).encode()),
    body({"apps"}),
)
RESULT = st.one_of(
    st.fixed_dictionaries({"status": st.sampled_from(DEVICE_STATUSES) | JSON},
                          optional={k: JSON for k in ("exit_code", "output", "error", "reason")}).map(lambda o: json.dumps(o).encode()),
    body({"status", "exit_code", "output", "error", "reason"}),
)


@pytest.fixture
def well_behaved(db):
    device = make_device()
    tokens.verify(device.token)
    return device


@pytest.fixture
def fuzzer(db):
    """The device that posts the fuzzed bodies (one per test: hypothesis runs every example in it)."""
    device = make_device()
    tokens.verify(device.token)
    return device


def assert_answer_is_a_protocol_answer(response):
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        payload = response.json()
        assert isinstance(payload["detail"], str) and isinstance(payload["code"], str)


def assert_everything_landed(well_behaved, battery: int):
    Client(HTTP_AUTHORIZATION=f"Device {well_behaved.token}").post(
        "/api/v1/device/heartbeat", data=json.dumps({"battery_pct": battery}), content_type="application/json")
    device_services.flush_heartbeats()
    results.flush_all()
    backlog, result_backlog = writebehind.backlog(), results.backlog()
    assert backlog["dirty_devices"] == backlog["history_samples"] == backlog["claims"] == 0
    assert result_backlog == {"reports": 0, "claims": 0}
    assert deadletters.count() == 0, deadletters.entries()
    assert DeviceStatus.objects.get(device=well_behaved.device).battery_pct == battery


@FUZZ
@given(raw=body(telemetry.FIELDS), battery=st.integers(0, 100))
def test_any_heartbeat_body_is_answered_below_500_and_the_fleet_flushes(well_behaved, fuzzer, raw, battery):
    response = fuzzer.client().post("/api/v1/device/heartbeat", data=raw, content_type="application/json")
    assert_answer_is_a_protocol_answer(response)
    if response.status_code == 200:
        assert set(response.json()["ignored_fields"]) <= set(telemetry.FIELDS)
    assert_everything_landed(well_behaved, battery)


@FUZZ
@given(raw=INVENTORY, battery=st.integers(0, 100))
def test_any_inventory_body_is_answered_below_500(well_behaved, fuzzer, raw, battery):
    response = fuzzer.client().put("/api/v1/device/inventory", data=raw, content_type="application/json")
    assert_answer_is_a_protocol_answer(response)
    assert response.status_code in (204, 400)
    assert_everything_landed(well_behaved, battery)


@pytest.fixture
def pending(fcm_standin):
    """A device and a command of it whose report the write-behind would queue (its marker holds
    the pushed answer); a new command only once a report has ended that."""
    device = clean_phone(fcm_standin)
    tokens.verify(device.token)
    current = {}

    def command():
        if "command" not in current or markers.parse_pushed(markers.read(device.id)) is None:
            if "command" in current:
                services.cancel_command(actor=None, command=current["command"])  # flushes first
            current["command"] = issue([device])
            push(current["command"])
        return current["command"]

    return device, command


@FUZZ
@given(raw=RESULT, target=st.sampled_from(["own", "own", "random", "junk"]), battery=st.integers(0, 100))
def test_any_result_body_is_answered_below_500_and_results_keep_landing(pending, well_behaved, raw, target, battery):
    device, command = pending
    command_id = {"own": str(command().pk), "random": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "junk": "not-a-uuid"}[target]
    response = device.client().post(f"/api/v1/device/commands/{command_id}/result", data=raw, content_type="application/json")
    assert_answer_is_a_protocol_answer(response)
    assert response.status_code in (200, 400, 404)
    assert_everything_landed(well_behaved, battery)
