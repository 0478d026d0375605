"""Honest progress on the console: a command's deliveries split into succeeded, failed, expired,
cancelled and pending, adding up to the devices it was sent to; a status that never reads plain
"finished" with failures, nor "done" for a command cancelled before any device ran it; the cancel
button gone once nothing is left to cancel, in place and over the live channel."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from commands import live, services
from commands.models import Delivery
from commands.progress import Progress
from commands.tests.conftest import make_device

pytestmark = pytest.mark.django_db


def issue(devices, **kwargs):
    return services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [d.id for d in devices]},
                                  **kwargs).command


def bar(html: str, bar_id: str = "command-progress") -> dict:
    """{state: n} of the progress bar's parts."""
    svg = re.search(rf'<svg[^>]*id="{bar_id}".*?</svg>', html, re.S).group(0)
    return {state: int(n) for state, n in re.findall(r'data-state="(\w+)" data-n="(\d+)"', svg)}


def row_bar(html: str) -> dict:
    svg = re.search(r'<svg class="stackbar small".*?</svg>', html, re.S).group(0)
    return {state: int(n) for state, n in re.findall(r'data-state="(\w+)" data-n="(\d+)"', svg)}


# --- the computation -----------------------------------------------------------------------------

def test_every_state_lands_in_one_part_and_the_parts_add_up_to_the_targets():
    counters = {"queued": 1, "sent": 2, "received": 1, "running": 1, "succeeded": 10, "failed": 2, "rejected": 1,
                "expired": 3, "cancelled": 4, "total": 25}
    p = Progress.of(counters, target_count=27)
    assert (p.succeeded, p.failed, p.expired, p.cancelled, p.pending, p.running, p.gone) == (10, 3, 3, 4, 5, 2, 2)
    assert p.total == 27 and sum(s.n for s in p.segments) == 27
    assert abs(sum(s.width for s in p.segments) - 100) < 0.01
    assert p.segments[-1].x + p.segments[-1].width == pytest.approx(100, abs=0.01)
    assert p.summary == "10 of 27 succeeded · 3 failed · 3 expired · 4 cancelled · 5 pending · 2 deleted before results were kept"


def test_failures_and_expiries_are_said_in_the_status_and_only_a_clean_run_is_finished():
    assert (Progress.of({"succeeded": 3, "total": 3}).status, Progress.of({"succeeded": 3, "total": 3}).status_class) == ("finished", "succeeded")
    two_failed = Progress.of({"succeeded": 28, "failed": 1, "rejected": 1, "total": 30})
    assert (two_failed.status, two_failed.status_class) == ("finished with 2 failed", "failed")
    assert Progress.of({"failed": 1, "expired": 2, "total": 3}).status == "finished with 1 failed, 2 expired"
    assert Progress.of({"succeeded": 1, "queued": 1, "total": 2}).status == "active"
    assert Progress.of({"cancelled": 1, "total": 1}, cancelled=True).status == "cancelled"
    assert Progress.of({"cancelled": 1, "running": 1, "total": 2}, cancelled=True).status == "cancelled, 1 still running"


def test_a_command_with_no_deliveries_draws_an_empty_bar():
    p = Progress.of({}, target_count=0)
    assert p.total == 0 and p.segments == [] and p.actions_key == "none"


# --- the pages ---------------------------------------------------------------------------------

def test_a_command_with_two_failures_reads_finished_with_2_failed_not_100_percent_done(console_for, viewer_user):
    fleet = [make_device() for _ in range(5)]
    command = issue(fleet)
    for d in fleet[:3]:
        d.report(str(command.pk), "succeeded", exit_code=0)
    for d in fleet[3:]:
        d.report(str(command.pk), "failed", exit_code=1, error="boom")
    client = console_for(viewer_user)
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert bar(page) == {"succeeded": 3, "failed": 2}
    assert 'id="command-status">finished with 2 failed<' in page and "badge failed" in page
    assert "3 of 5 succeeded · 2 failed" in page
    assert "100%" not in page and "% done" not in page
    history = client.get("/commands/").content.decode()
    assert row_bar(history) == {"succeeded": 3, "failed": 2}
    assert "3 ok · 2 failed" in history and ">finished with 2 failed<" in history
    assert ">finished<" not in history


def test_a_command_cancelled_before_any_device_ran_it_reads_cancelled_not_done(console_for, operator_user):
    command = issue([make_device()])
    client = console_for(operator_user)
    response = client.post(f"/commands/{command.pk}/cancel/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert bar(page) == {"cancelled": 1}
    assert 'id="command-status">cancelled<' in page and "0 of 1 succeeded · 1 cancelled" in page
    assert "done" not in page.split('id="command-counters"')[1].split("</div>\n</div>")[0]
    assert "1 of 1" not in page
    history = client.get("/commands/").content.decode()
    assert row_bar(history) == {"cancelled": 1} and ">cancelled<" in history


def test_expired_deliveries_show_as_expired(console_for, viewer_user):
    fleet = [make_device() for _ in range(2)]
    command = issue(fleet, expires_in_s=60)
    fleet[0].report(str(command.pk), "succeeded", exit_code=0)
    services.expire_deliveries(now=timezone.now() + timedelta(minutes=5))
    page = console_for(viewer_user).get(f"/commands/{command.pk}/").content.decode()
    assert bar(page) == {"succeeded": 1, "expired": 1}
    assert 'id="command-status">finished with 1 expired<' in page and 'data-counter="expired">1<' in page


def test_cancelling_answers_in_place_without_the_cancel_button_and_with_the_new_counts(console_for, operator_user):
    fleet = [make_device() for _ in range(3)]
    command = issue(fleet)
    fleet[0].report(str(command.pk), "succeeded", exit_code=0)
    client = console_for(operator_user)
    assert 'id="cancel-command"' in client.get(f"/commands/{command.pk}/").content.decode()
    response = client.post(f"/commands/{command.pk}/cancel/", {"state": ""}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert html.lstrip().startswith('<div id="command-actions"') and 'id="cancel-command"' not in html
    assert 'id="command-counters" data-actions="none" hx-swap-oob="true"' in html
    assert 'data-counter="cancelled">2<' in html and 'id="command-status">cancelled<' in html
    assert '<tbody id="deliveries-body" hx-swap-oob="true">' in html and html.count("state-cancelled") == 2
    assert 'id="cancel-command"' not in client.get(f"/commands/{command.pk}/").content.decode()


def test_the_cancel_button_goes_when_every_device_has_reported(console_for, operator_user):
    fleet = [make_device() for _ in range(2)]
    command = issue(fleet)
    for d in fleet:
        d.report(str(command.pk), "succeeded", exit_code=0)
    client = console_for(operator_user)
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert 'id="cancel-command"' not in page and 'id="retry-failed"' not in page


def test_a_live_update_says_which_buttons_apply_and_the_buttons_are_fetched_per_user(console_for, operator_user, viewer_user):
    fleet = [make_device() for _ in range(2)]
    command = issue(fleet)
    pk = str(command.pk)
    counters, = live.render_updates(pk, set())
    assert 'data-actions="cancel"' in counters
    fleet[0].report(pk, "succeeded", exit_code=0)
    fleet[1].report(pk, "failed", exit_code=1)
    counters = live.render_updates(pk, set())[0]
    assert 'data-actions="retry"' in counters and 'id="command-status">finished with 1 failed<' in counters
    operator = console_for(operator_user).get(f"/commands/{pk}/actions/").content.decode()
    assert 'data-actions="retry"' in operator and 'id="retry-failed"' in operator and 'id="cancel-command"' not in operator
    viewer = console_for(viewer_user).get(f"/commands/{pk}/actions/").content.decode()
    assert 'data-actions="retry"' in viewer and "<button" not in viewer


def test_the_buttons_partial_needs_a_signed_in_user_and_a_real_command(client, console_for, viewer_user):
    command = issue([make_device()])
    response = client.get(f"/commands/{command.pk}/actions/")
    assert response.status_code == 302 and "/accounts/login" in response["Location"]
    assert console_for(viewer_user).get("/commands/00000000-0000-0000-0000-000000000000/actions/").status_code == 404


def test_the_detail_page_holds_the_live_script(console_for, viewer_user):
    command = issue([make_device()])
    page = console_for(viewer_user).get(f"/commands/{command.pk}/").content.decode()
    assert 'src="/static/js/command.js"' in page and 'data-url="/commands/' in page


def test_the_history_reads_in_a_bounded_number_of_queries(console_for, viewer_user, django_assert_max_num_queries):
    fleet = [make_device() for _ in range(4)]
    for i in range(12):
        command = issue(fleet)
        fleet[i % 4].report(str(command.pk), "failed", exit_code=1)
    client = console_for(viewer_user)
    with django_assert_max_num_queries(8):
        response = client.get("/commands/")
    assert response.content.decode().count('class="stackbar small"') == 12


def test_the_detail_page_reads_in_a_bounded_number_of_queries(console_for, viewer_user, django_assert_max_num_queries):
    fleet = [make_device() for _ in range(25)]
    command = issue(fleet)
    for d in fleet[:5]:
        d.report(str(command.pk), "failed", exit_code=1)
    client = console_for(viewer_user)
    with django_assert_max_num_queries(10):
        page = client.get(f"/commands/{command.pk}/").content.decode()
    assert page.count("<tr id=\"delivery-") == 25 and Delivery.objects.filter(command=command).count() == 25
