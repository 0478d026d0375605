"""Protocol v1.1 on the device's command endpoints (PROTOCOL.md "Text"): a result whose text
breaks the rules is a 400 `invalid` naming the field, and nothing of it is stored or queued;
`output` alone is truncated and flagged past 64 KiB, as in v1; the pull's `limit` never 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import results, services
from commands.models import Delivery
from commands.tests.test_result_writebehind import delivery, pushed_phone, queued
from mdm import deadletters

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(sim_device):
    device = sim_device()
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}).command
    return device, command


BAD_TEXT = {"nul": "ok\x00then", "lone-surrogate": "x\ud800", "lone-low": "\udc00"}


@pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
@pytest.mark.parametrize("field", ["output", "error", "reason"])
def test_a_nul_or_lone_surrogate_in_a_result_is_400_naming_the_field(issued, field, bad):
    device, command = issued
    response = device.report(str(command.pk), "failed", exit_code=1, **{field: bad})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == [field]
    assert "\x00" not in body["detail"] and bad not in response.content.decode("utf-8", "replace")
    assert Delivery.objects.get(command=command).state == "queued"  # nothing stored


@pytest.mark.parametrize("bad", BAD_TEXT.values(), ids=BAD_TEXT.keys())
def test_a_bad_text_is_never_queued_for_the_write_behind(fcm_standin, bad):
    device, command = pushed_phone(fcm_standin)
    assert device.report(str(command.pk), "succeeded", exit_code=0, output=bad).status_code == 400
    assert queued() == 0 and delivery(command).state == "sent"
    assert device.report(str(command.pk), "succeeded", exit_code=0, output="clean").json()["status"] == "succeeded"
    results.flush()
    assert delivery(command).output == "clean"


@pytest.mark.parametrize("field, limit", [("error", 4096), ("reason", 256)])
def test_error_and_reason_have_the_protocols_lengths(issued, field, limit):
    device, command = issued
    assert device.report(str(command.pk), "running", **{field: "é" * (limit + 1)}).json()["fields"] == {
        field: [f"At most {limit} characters."]}
    assert device.report(str(command.pk), "failed", **{field: "é" * limit}).status_code == 200


def test_output_past_64_kib_is_truncated_and_flagged_not_refused(issued):
    device, command = issued
    response = device.report(str(command.pk), "succeeded", exit_code=0, output="a" * (64 * 1024 + 1))
    assert response.status_code == 200
    row = Delivery.objects.get(command=command)
    assert row.output_truncated is True and len(row.output) == 64 * 1024


@pytest.mark.parametrize("body", [
    {"status": ["succeeded"]},
    {"status": {"s": 1}},
    {"status": "rejected", "reason": ["expired"]},
    {"status": "failed", "exit_code": 2**31},
    {"status": "failed", "output": 5},
])
def test_wrongly_typed_values_are_400_never_500(issued, body):
    device, command = issued
    response = device.client().post(f"/api/v1/device/commands/{command.pk}/result", data=json.dumps(body),
                                     content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("raw", [
    json.dumps({"status": "succeeded"}).encode("utf-16"),
    b'{"status": "failed", "output": "\xed\xa0\x80"}',
    b'{"status": "failed", "output": "\xff"}',
])
def test_a_result_body_that_is_not_utf_8_is_400(issued, raw):
    device, command = issued
    response = device.client().post(f"/api/v1/device/commands/{command.pk}/result", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert Delivery.objects.get(command=command).state == "queued"


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30) | st.integers().map(str))
def test_the_pull_answers_any_limit_with_200_or_a_400_naming_it(issued, limit):
    device, _ = issued
    response = device.client().get("/api/v1/device/commands", {"limit": limit})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["code"] == "invalid" and list(response.json()["fields"]) == ["limit"]
    else:
        assert len(response.json()["commands"]) <= services.PULL_LIMIT_MAX


def test_nothing_bad_is_ever_set_aside_because_the_edge_refused_it(issued):
    device, command = issued
    for field in ("output", "error", "reason"):
        device.report(str(command.pk), "failed", **{field: "\x00"})
    results.flush_all()
    assert deadletters.count() == 0
