"""The console's deploy form (preview, then deploy) and rollout pages, by role."""

import re

import pytest

from apks.models import Rollout
from apks.services import releases
from commands.models import Command
from devices.models import InstalledApp
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def v11(copy_apk, admin_uploader):
    releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)
    release = releases.create_release(path=copy_apk("app-v11"), uploader=admin_uploader)
    for code in (10, 10, 10, 11):
        InstalledApp.objects.create(device=DeviceFactory(), package=release.package, version_code=code)
    return release


FORM = {"target_kind": "all", "versions": ["missing", "older"], "sdk_check": "1"}


def test_an_operator_previews_then_deploys_in_waves(console_for, operator_user, v11):
    client = console_for(operator_user)
    page = client.get(f"/apks/{v11.id}/").content.decode()
    assert 'id="deploy-form"' in page
    preview = client.post(f"/apks/{v11.id}/deploy/", {**FORM, "preview": "1", "staged": "1", "waves": "50%, 100",
                                                       "soak_min": "0", "threshold_pct": "10"}, HTTP_HX_REQUEST="true")
    body = preview.content.decode()
    assert preview.status_code == 200 and '<strong id="deploy-count">3</strong>' in body and "1 run this version" in body
    assert "50%: 2 devices" in body and "100%: 1 device" in body and not Rollout.objects.exists()
    done = client.post(f"/apks/{v11.id}/deploy/", {**FORM, "staged": "1", "waves": "50, 100", "soak_min": "0", "threshold_pct": "10"},
                       HTTP_HX_REQUEST="true")
    rollout = Rollout.objects.get()
    assert done.status_code == 204 and done["HX-Redirect"] == f"/apks/rollouts/{rollout.id}/"
    page = client.get(f"/apks/rollouts/{rollout.id}/").content.decode()
    assert "Running" in page and "Pause" in page and "Roll back" not in page  # rollback is for admins
    assert client.post(f"/apks/rollouts/{rollout.id}/rollback/", {"confirm_data_loss": "1"}).status_code == 403
    paused = client.post(f"/apks/rollouts/{rollout.id}/pause/").content.decode()
    assert "Paused by user:" in paused and Rollout.objects.get().state == "paused"
    assert f"/apks/rollouts/{rollout.id}/" in client.get("/apks/rollouts/").content.decode()


def test_a_plain_deploy_goes_to_the_command(console_for, operator_user, v11):
    done = console_for(operator_user).post(f"/apks/{v11.id}/deploy/", FORM, HTTP_HX_REQUEST="true")
    command = Command.objects.get()
    assert done["HX-Redirect"] == f"/commands/{command.pk}/" and command.target_count == 3


@pytest.mark.parametrize("bad,field,message", [
    ({"waves": "0, 100"}, "waves", "Each a percentage"),
    ({"waves": "10, 50"}, "waves", "The last wave must be 100"),
    ({"soak_min": "nan"}, "soak_min", "A number from 0 to 43,200 minutes (30 days)."),
    ({"threshold_pct": "1e400"}, "threshold_pct", "A percentage from 0 to 100."),
    ({"waves": "x, x"}, "waves", "Each group once."),
])
def test_bad_form_input_is_said_beside_its_field_not_crashed(console_for, operator_user, v11, bad, field, message):
    answer = console_for(operator_user).post(f"/apks/{v11.id}/deploy/", {**FORM, "staged": "1", "waves": "10, 100", "soak_min": "5",
                                                                          "threshold_pct": "5", "preview": "1", **bad})
    body = answer.content.decode()
    assert answer.status_code == 422 and not Rollout.objects.exists()
    slot = re.search(rf'<span id="deploy-{field}-errors" class="field-errors" hx-swap-oob="true">(.*?)</span>', body)
    assert slot and message in slot.group(1) and body.count(message) == 1
    assert "Not previewed." in body and "waves:" not in body and "soak_s" not in body


def test_a_target_error_is_said_above_the_preview_without_field_names(console_for, operator_user, v11):
    answer = console_for(operator_user).post(f"/apks/{v11.id}/deploy/", {**FORM, "target_kind": "device_ids", "device_ids": "nonsense"})
    body = answer.content.decode()
    assert answer.status_code == 422 and "No device has the hardware id or name “nonsense”." in body and "target:" not in body
    assert "Not deployed." in body


def test_a_viewer_sees_rollouts_but_no_deploy_form_and_cannot_post(console_for, viewer_user, operator_user, v11, client):
    from apks.services import deploy

    rollout = deploy.deploy_release(actor=operator_user, release=v11, target={"all": True}, rollout={"waves": [100]}).rollout
    viewer = console_for(viewer_user)
    assert 'id="deploy-form"' not in viewer.get(f"/apks/{v11.id}/").content.decode()
    assert viewer.post(f"/apks/{v11.id}/deploy/", FORM).status_code == 403
    page = viewer.get(f"/apks/rollouts/{rollout.id}/").content.decode()
    assert "Pause" not in page and viewer.post(f"/apks/rollouts/{rollout.id}/pause/").status_code == 403
    viewer.logout()
    assert viewer.get(f"/apks/rollouts/{rollout.id}/").status_code == 302


def test_a_rollout_state_change_reaches_the_open_rollout_pages(operator_user, v11, monkeypatch, django_capture_on_commit_callbacks):
    from apks.services import deploy, rollouts
    from mdm import realtime

    sent = []
    monkeypatch.setattr(realtime, "watched", lambda topics: set(topics))
    monkeypatch.setattr(realtime, "send_now", lambda topic, html: sent.append((topic, html)))
    with django_capture_on_commit_callbacks(execute=True):
        rollout = deploy.deploy_release(actor=operator_user, release=v11, target={"all": True},
                                        rollout={"waves": [50, 100], "soak_s": 60}).rollout
    with django_capture_on_commit_callbacks(execute=True):
        rollouts.pause_rollout(actor=operator_user, rollout_id=rollout.id)
    status = [html for topic, html in sent if topic == f"rollout.{rollout.id}"]
    rows = [html for topic, html in sent if topic == "rollouts"]
    assert status and 'hx-swap-oob="true"' in status[-1] and "Paused by user:" in status[-1]
    assert rows and f'id="rollout-row-{rollout.id}"' in rows[-1] and "Paused" in rows[-1]
