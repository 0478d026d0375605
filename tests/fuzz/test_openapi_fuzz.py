"""schemathesis over the app's own OpenAPI schema (GET /api/schema/, fetched with an admin's
credentials), every operation called as an admin, in process through the production WSGI
application (tests/fuzz/harness.py says why). Three kinds of case per operation:
- schemathesis' positive cases (data that fits the schema) and negative cases (data that does not),
  with path parameters as generated, or pointing at objects that exist (so a PATCH reaches the
  object, not a 404);
- hostile cases of ours (tests/fuzz/strategies.py): NUL, lone surrogates, huge and non-finite numbers
  in every declared query parameter, and hostile bodies (deep nesting, invalid UTF-8, 1e309, ...).
The run ends as every fuzz run ends: no answer ≥ 500, every refusal a 4xx with {detail, code}, the
write-behind queues drained to zero, a well-behaved device's heartbeat in the admin API within 2 s.

At least FUZZ_EXAMPLES cases in all (200 in `make test`, 10,000 in `make fuzz`), seeded by FUZZ_SEED."""

import math
import time
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.fuzz import harness
from tests.fuzz import strategies as s

SCHEMA_PATH = "/api/schema/"
# Operations are fuzzed reads first and deletions last, so the objects the others point at live
# as long as possible.
METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


def _known_objects(fleet) -> dict:
    """Objects that exist, by the collection in their path (/api/v1/<collection>/{id}/...), made
    through the admin API with ordinary bodies."""
    http, headers = fleet.http, fleet.admin_headers

    def made(path, body, key="id"):
        answer = http.post(path, json=body, headers=headers)
        return answer.json().get(key) if answer.status_code == 201 else None

    known = {
        "devices": fleet.device_id,
        "commands": fleet.known_command,
        "groups": made("/api/v1/groups/", {"name": "fuzz-group"}),
        "tags": made("/api/v1/tags/", {"name": "fuzz-tag"}, key="name"),
        "wifi-configs": made("/api/v1/wifi-configs/", {"name": "fuzz-wifi", "ssid": "Depot", "security": "wpa2", "password": "fuzz-pass-1"}),
        "command-presets": made("/api/v1/command-presets/", {"name": "fuzz-preset", "type": "ping", "params": {}}),
        "shell-allowlist": made("/api/v1/shell-allowlist/", {"argv_prefix": ["dumpsys", "battery"]}),
        "enrollment-keys": made("/api/v1/enrollment-keys/", {"name": "fuzz-key-2"}),
        "policies": made("/api/v1/policies/", {"name": "fuzz-policy", "items": {"kiosk": {"package": "com.example.kiosk"}}}),
    }
    users = http.get("/api/v1/users/", headers=headers)
    if users.status_code == 200:
        rows = users.json().get("results", users.json()) if isinstance(users.json(), dict) else users.json()
        others = [u for u in rows if isinstance(u, dict) and u.get("username") != "fuzz-admin"]
        known["users"] = others[0].get("id") if others else None
    return {k: v for k, v in known.items() if v is not None}


def _as_httpx(response) -> httpx.Response:
    headers = [(k, v) for k, values in response.headers.items() for v in (values if isinstance(values, list) else [values])]
    return httpx.Response(response.status_code, headers=headers, content=response.content)


def _fixed_path(operation, known: dict) -> dict | None:
    names = [p.name for p in operation.path_parameters]
    collection = operation.path.strip("/").split("/")[2] if operation.path.count("/") > 3 else None
    if len(names) == 1 and collection in known:
        return {names[0]: str(known[collection])}
    return None


@pytest.mark.slow
def test_no_admin_api_input_breaks_the_server_or_the_write_behind(fleet):
    from commands import services

    fleet.known_command = str(services.issue_command(actor=None, type="ping", params={},
                                                     target={"device_ids": [fleet.device_id]}).command.pk)
    app = harness.wsgi_application()
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, app, headers=dict(fleet.admin_headers))
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda o: (METHOD_ORDER.get(o.method.lower(), 9), o.path))
    known = _known_objects(fleet)
    tally = harness.Tally(surface=f"OpenAPI schema ({len(operations)} operations, as an admin)")
    started = time.monotonic()
    # Per operation: positive and negative, each with generated and (where there are) existing path
    # parameters; and the hostile pass below tops the total up to FUZZ_EXAMPLES at least.
    per_run = max(2, math.ceil(harness.EXAMPLES / (len(operations) * 3)))

    with harness.ExceptionLog() as log:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fixed = _fixed_path(operation, known)
                for path_parameters in ([None, fixed] if fixed and mode is GenerationMode.POSITIVE else [None]):
                    _run_schemathesis(operation, mode, path_parameters, per_run, fleet, tally, log)
        _run_hostile(operations, known, max(harness.EXAMPLES // 4, harness.EXAMPLES - tally.cases), fleet, tally, log)
        harness.drain(tally)
        _well_behaved_device_shows(fleet, tally)
    tally.seconds = time.monotonic() - started
    harness.SUMMARIES.append(tally.summary())
    assert tally.ok, tally.summary()


def _run_schemathesis(operation, mode, path_parameters, examples, fleet, tally, log) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(harness.SEED)
    @given(case=strategy)
    def one_case(case):
        tally.cases += 1
        response = case.call(headers=dict(fleet.admin_headers))
        described = f"[{mode.value}] {case.method.upper()} {case.formatted_path} query={case.query!r} body={_short(case.body)}"
        tally.record(described, _as_httpx(response), log.take(), where=operation.label)
        harness.beat(tally, after=described)

    one_case()


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _run_hostile(operations, known, examples, fleet, tally, log) -> None:
    """Hostile values where schemathesis' generators do not go: every declared query parameter
    and the body, from tests/fuzz/strategies.py."""
    ids = st.one_of(st.sampled_from([str(v) for v in known.values()] or ["1"]), st.sampled_from(["0", "-1", "1e309", "%00", "x" * 300]),
                    st.uuids().map(str))
    case = st.tuples(st.sampled_from(operations), st.data())

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(harness.SEED)
    @given(case=case)
    def one_case(case):
        operation, data = case
        path = operation.path
        for parameter in operation.path_parameters:
            path = path.replace("{" + parameter.name + "}", data.draw(ids))
        query = {p.name: data.draw(st.one_of(s.hostile_text, s.huge_numbers.map(_literal), st.integers().map(str)))
                 for p in operation.query if data.draw(st.booleans())}
        method = operation.method.upper()
        body = s.encode(data.draw(s.bodies(s.json_values))) if method in ("POST", "PUT", "PATCH") else None
        if query:  # percent-encoded here: a lone surrogate goes as the bytes UTF-8 would give it; each
            # value cut to 1,000 code points (a URL of many kilobytes is refused before any server)
            path += "?" + "&".join(f"{quote(k)}={quote(v[:1000].encode('utf-8', 'surrogatepass'), safe='')}" for k, v in query.items())
        request = harness.Request(method, path, {**fleet.admin_headers, "Content-Type": "application/json"}, body)
        tally.cases += 1
        response = fleet.http.request(method, path, content=body, headers=request.headers)
        tally.record(f"[hostile] {request.describe()}", response, log.take(), where=operation.label)
        harness.beat(tally, after=request.describe())

    one_case()


def _literal(value) -> str:
    return value.text if isinstance(value, s.Raw) else str(value)


def _well_behaved_device_shows(fleet, tally) -> None:
    """With a device and an admin made after the run: the fuzzing admin may have demoted itself
    (POST /api/v1/users/{id}/role/) and deleted any device the run knew."""
    from accounts.tokens import RefreshToken  # with the credential stamp the API checks

    from accounts.tests.factories import UserFactory
    from devices.tests.factories import enroll_for_test

    checker = UserFactory(username="fuzz-checker", role="admin")
    well = enroll_for_test(hardware_id="well-behaved-device")
    harness.well_behaved_device_shows(tally, fleet.http, device_id=str(well.device.pk), device_token=well.token,
                                      admin_headers={"Authorization": f"Bearer {RefreshToken.for_user(checker).access_token}"})
