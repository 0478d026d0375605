"""Crafted input never gives a 500 (issue 14, finding 7): numbers past what a timedelta, a float or
a database column holds, in the device filters (console, API, command targeting), the composer's
expiry and the command history's dates; JSON nested deeper than the parser allows, to every DRF
endpoint (the unauthenticated token endpoint included). The API answers 400 {detail, code}
(+ fields); the console shows the page or its form error."""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mdm.parsers import MAX_JSON_DEPTH, json_depth
from tests.urlwalk import all_routes

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Numbers as people and attackers type them: huge, tiny, signed, hex, non-finite, other digits.
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.sampled_from(["1e20", "1e309", "-1e309", "1E+999999", "nan", "NaN", "inf", "-Infinity", "0x10", "²", "٣", "1_000",
                     " 5 ", "", "-0", "9" * 5000, "1e-999999", "5.", ".5", "+5"]),
    st.text(max_size=12),
)
DEVICE_FILTERS = ("seen_within_s", "not_seen_for_s", "battery_below", "battery_above")


def _is_error_shape(response) -> bool:
    body = response.json()
    return isinstance(body.get("detail"), str) and isinstance(body.get("code"), str)


@FUZZ
@given(name=st.sampled_from(DEVICE_FILTERS), value=numbers)
@example(name="seen_within_s", value="1e20")
@example(name="not_seen_for_s", value="1e20")
@example(name="battery_below", value="1E+999999")
def test_device_filters_never_fail_on_a_crafted_number(client, admin_user, viewer_api, name, value):
    client.force_login(admin_user)
    assert client.get("/devices/", {name: value}).status_code == 200
    assert client.get("/devices/", {name: value}, HTTP_HX_REQUEST="true").status_code == 200
    api = viewer_api.get("/api/v1/devices", {name: value})
    assert api.status_code in (200, 400), (name, value, api.status_code)
    if api.status_code == 400:
        assert _is_error_shape(api) and name in api.json()["fields"]


def test_an_out_of_range_age_is_a_400_naming_the_field(viewer_api, db):
    response = viewer_api.get("/api/v1/devices", {"seen_within_s": "1e20"})
    assert response.status_code == 400 and response.json()["code"] == "invalid" and "seen_within_s" in response.json()["fields"]
    assert viewer_api.get("/api/v1/devices", {"seen_within_s": "3600"}).status_code == 200


@FUZZ
@given(name=st.sampled_from(DEVICE_FILTERS), value=numbers)
@example(name="seen_within_s", value="1e20")
def test_a_command_targeting_a_crafted_filter_is_refused_cleanly(operator_api, name, value):
    body = {"type": "ping", "target": {"filter": {name: value}}, "dry_run": True}
    response = operator_api.post("/api/v1/commands", body, format="json")
    assert response.status_code in (200, 400), (name, value, response.status_code)
    if response.status_code == 400:
        assert _is_error_shape(response)


@FUZZ
@given(value=numbers)
@example(value="1e309")
@example(value="nan")
def test_the_composer_expiry_never_fails_on_a_crafted_number(client, operator_user, value):
    client.force_login(operator_user)
    response = client.post("/commands/new/preview/", {"source": "type", "type": "ping", "target_kind": "all", "expires_in_min": value})
    # 200: a preview; 422: the form answered with its errors in place (htmx swaps 4xx form answers)
    assert response.status_code in (200, 422)
    body = response.content.decode()
    if response.status_code == 422 or "Not sent." in body:
        assert "a number from 1 to 43,200 (30 days)" in body


def test_an_expiry_past_30_days_is_explained_in_minutes(client, operator_user):
    client.force_login(operator_user)
    body = client.post("/commands/new/preview/", {"source": "type", "type": "ping", "target_kind": "all",
                                                  "expires_in_min": "1e309"}).content.decode()
    assert "Not sent." in body and "a number from 1 to 43,200 (30 days)" in body


datetimes = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31", "0001-01-01T00:00:00Z",
                     "2026-02-30", "2026-01-01T25:00", "1e309", "+275760-09-13T00:00:00Z"]),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=30),
)


@FUZZ
@given(name=st.sampled_from(["created_after", "created_before"]), value=datetimes)
@example(name="created_after", value="9999-12-31T23:59:59-23:59")
@example(name="created_before", value="0001-01-01T00:00:00+23:59")
def test_the_command_history_filters_never_fail_on_a_crafted_date(client, viewer_user, viewer_api, name, value):
    client.force_login(viewer_user)
    assert client.get("/commands/", {name: value}).status_code == 200
    api = viewer_api.get("/api/v1/commands", {name: value})
    assert api.status_code in (200, 400), (name, value, api.status_code)
    if api.status_code == 400:
        assert _is_error_shape(api)


# --- nested JSON ---------------------------------------------------------------------------------

def _reference_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('[]{}"\\ab,:\n\u00e9'), max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\x', max_size=4), children, max_size=3),
    max_leaves=25,
)


@settings(max_examples=300)
@given(value=json_values, ensure_ascii=st.booleans())
def test_json_depth_counts_nesting_and_ignores_brackets_in_strings(value, ensure_ascii):
    assert json_depth(json.dumps(value, ensure_ascii=ensure_ascii).encode()) == _reference_depth(value)


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[" + b"1" + b"]" + b"}" * (depth - 1)


DRF_PATHS = sorted({p for p, _ in all_routes() if p.startswith("/api/") and not p.startswith(("/api/v1/device/", "/api/schema", "/api/docs"))
                    and p != "/api/v1/enroll"})


@pytest.mark.parametrize("path", DRF_PATHS)
def test_deeply_nested_json_is_a_400_on_every_drf_endpoint(admin_api, path):
    body = b"[" * 100_000 + b"]" * 100_000
    for method in ("post", "put", "patch"):
        response = getattr(admin_api, method)(path, body, content_type="application/json")
        assert response.status_code < 500, (method, path, response.status_code)
        if response.status_code == 400:
            assert response.json() == {"detail": f"JSON nested deeper than {MAX_JSON_DEPTH} levels.", "code": "invalid"}


def test_the_unauthenticated_token_endpoint_refuses_nested_json(anon_api, db):
    for body in (b"[" * 100_000 + b"]" * 100_000, _nested(MAX_JSON_DEPTH + 1), b'{"username":' * 50_000):
        response = anon_api.post("/api/v1/auth/token", body, content_type="application/json")
        assert response.status_code == 400
        assert _is_error_shape(response) and response.json()["code"] == "invalid"


def test_json_at_the_depth_limit_is_parsed(admin_api, anon_api, db):
    response = anon_api.post("/api/v1/auth/token", _nested(MAX_JSON_DEPTH), content_type="application/json")
    assert response.status_code in (400, 401) and "nested" not in response.json()["detail"]
    response = anon_api.post("/api/v1/auth/token", _nested(MAX_JSON_DEPTH + 1), content_type="application/json")
    assert response.status_code == 400 and "nested" in response.json()["detail"]


@FUZZ
@given(raw=st.lists(numbers, max_size=4).map(",".join))
@example(raw="²")
@example(raw="9" * 30)
def test_the_provisioning_script_never_fails_on_crafted_preset_ids(client, db, raw):
    from enrollment.services import create_enrollment_key

    key = create_enrollment_key(actor=None, name="fuzz").raw
    response = client.get("/enrollment/provision.sh", {"apk_url": "https://example.com/a.apk", "bloatware": raw, "tweaks": raw},
                          HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("method", ["get", "delete", "patch"])
def test_a_nul_in_any_path_segment_is_a_404_on_every_route(client, admin_user, method):
    """Found by `make fuzz` (DELETE /api/v1/tags/%00/ was a 500: the lookup reached PostgreSQL). Every
    route whose path has a segment, the segment replaced by a NUL, answers 404 (JSON under /api/)."""
    client.force_login(admin_user)
    checked = 0
    for path, _name in all_routes():
        if path.count("/") < 3 or path.startswith("/static/"):
            continue
        head, _, tail = path.rstrip("/").rpartition("/")
        crafted = f"{head}/%00{tail}" + ("/" if path.endswith("/") else "")
        response = getattr(client, method)(crafted)
        assert response.status_code == 404, (method, crafted, response.status_code)
        if crafted.startswith("/api/"):
            assert _is_error_shape(response), crafted
        checked += 1
    assert checked > 30
