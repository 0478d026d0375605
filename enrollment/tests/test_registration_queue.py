"""The registration queue and the IP rate limit: 503 busy / 429 rate_limited with Retry-After,
and nothing half-created."""

import pytest

from devices.models import Device
from enrollment import admission

pytestmark = pytest.mark.django_db


def test_a_full_queue_answers_503_busy_with_retry_after(enroll, key, settings):
    settings.ENROLL_CONCURRENCY = 2
    settings.ENROLL_QUEUE_WAIT_S = 0.0
    held = admission.hold(2)
    response = enroll(key, "HW-Q")
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert int(response["Retry-After"]) >= 1
    assert not Device.objects.filter(hardware_id="HW-Q").exists()
    for token in held:
        admission._release(token)
    assert enroll(key, "HW-Q").status_code == 201


def test_a_slot_is_given_back_after_each_enrollment(enroll, key, settings):
    settings.ENROLL_CONCURRENCY = 1
    settings.ENROLL_QUEUE_WAIT_S = 0.0
    assert [enroll(key, f"HW-{i}").status_code for i in range(3)] == [201, 201, 201]
    assert admission.depth() == 0


def test_a_slot_is_given_back_after_a_refusal(enroll, settings):
    settings.ENROLL_CONCURRENCY = 1
    settings.ENROLL_QUEUE_WAIT_S = 0.0
    assert enroll("bad-key").status_code == 401
    assert admission.depth() == 0


def test_a_stale_holder_frees_its_slot(enroll, key, settings):
    import time

    import time_machine

    settings.ENROLL_CONCURRENCY = 1
    settings.ENROLL_QUEUE_WAIT_S = 0.0
    admission.hold(1)  # a process that died mid-enrollment
    with time_machine.travel(time.time() + admission.STALE_S + 1, tick=False):
        assert enroll(key, "HW-STALE").status_code == 201


def test_too_many_enrollments_from_one_address_answer_429_with_retry_after(enroll, key, settings):
    settings.ENROLL_RATE_LIMIT = "3/m"
    codes = [enroll(key, f"HW-R{i}").status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    response = enroll(key, "HW-R9")
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_rate_limit_is_per_address(enroll, key, settings):
    settings.ENROLL_RATE_LIMIT = "1/m"
    assert enroll(key, "HW-X1").status_code == 201
    assert enroll(key, "HW-X2").status_code == 429
    assert enroll(key, "HW-X3", headers={"REMOTE_ADDR": "10.0.0.9"}).status_code == 201
