"""Deploying a release (POST /api/v1/apks/<id>/deploy): version filters from the inventories, dry
run, one command or a staged rollout; rollouts halting past their threshold, resumed, retried,
rolled back (/api/v1/rollouts/), each by the role allowed to, and audited."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from apks import selectors
from apks.models import Rollout, RolloutDevice
from apks.services import releases, rollouts
from commands.models import Command, Delivery
from commands.params import ParamsError
from commands.services import record_result
from devices.models import InstalledApp
from devices.tests.factories import DeviceFactory
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db
PACKAGE = "com.example.fieldapp"


@pytest.fixture
def v10(copy_apk, admin_uploader):
    return releases.create_release(path=copy_apk("app-v10"), uploader=admin_uploader)


@pytest.fixture
def v11(v10, copy_apk, admin_uploader):
    return releases.create_release(path=copy_apk("app-v11"), uploader=admin_uploader)


def device(code=None, sdk=34, group=None):
    made = DeviceFactory(sdk_int=sdk, group=group)
    if code is not None:
        InstalledApp.objects.create(device=made, package=PACKAGE, version_code=code, version_name=str(code))
    return made


@pytest.fixture
def mixed_fleet(v11):
    return {"missing": device(), "older": device(10), "same": device(11), "newer": device(12),
            "low_sdk": device(sdk=24)}


def deploy(api, release, **body):
    return api.post(f"/api/v1/apks/{release.id}/deploy", {"target": {"all": True}, **body}, format="json")


def report(command_id, devices, status):
    for d in devices:
        record_result(device_id=d, command_id=command_id, status=status,
                      error="simulated" if status == "failed" else None)


# -- selection ------------------------------------------------------------------------------------
def test_the_dry_run_counts_what_the_version_filters_keep(operator_api, v11, mixed_fleet):
    answer = deploy(operator_api, v11, dry_run=True)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert sorted(body["device_ids"]) == sorted(str(mixed_fleet[k].id) for k in ("missing", "older"))
    assert body["matched"] == 5 and body["excluded"] == {"up_to_date": 1, "newer": 1, "sdk_too_low": 1}
    assert deploy(operator_api, v11, dry_run=True, versions=["older"]).json()["target_count"] == 1
    assert deploy(operator_api, v11, dry_run=True, versions=["missing", "same"], sdk_check=False).json()["target_count"] == 3
    assert not Command.objects.exists() and not Rollout.objects.exists()


def test_newer_is_refused_because_android_refuses_a_downgrade(operator_api, v11, mixed_fleet):
    answer = deploy(operator_api, v11, versions=["newer"])
    assert answer.status_code == 400 and "INSTALL_FAILED_VERSION_DOWNGRADE" in str(answer.json())


def test_a_deploy_without_rollout_is_one_install_command_to_the_kept_devices(operator_api, v11, mixed_fleet):
    answer = deploy(operator_api, v11)
    assert answer.status_code == 201, answer.json()
    command = Command.objects.get(pk=answer.json()["command_id"])
    assert command.type == "install_apk" and command.params["apk_id"] == str(v11.id) and command.params["version_code"] == 11
    assert set(Delivery.objects.filter(command=command).values_list("device_id", flat=True)) == \
        {mixed_fleet["missing"].id, mixed_fleet["older"].id}
    event = AuditEvent.objects.get(action="apk.deploy")
    assert event.data["excluded"] == {"up_to_date": 1, "newer": 1, "sdk_too_low": 1} and event.data["devices"] == 2


def test_a_deploy_that_leaves_no_device_says_why(operator_api, v11, mixed_fleet):
    answer = deploy(operator_api, v11, versions=["same"], target={"device_ids": [str(mixed_fleet["older"].id)]})
    assert answer.status_code == 400 and "run an older version" in str(answer.json())


# -- rollouts -------------------------------------------------------------------------------------
@pytest.fixture
def fleet20(v11):
    return [device(10) for _ in range(20)]


def start(api, release, **plan):
    answer = deploy(api, release, rollout={"waves": [10, 50, 100], "soak_s": 600, "threshold_pct": 10, **plan})
    assert answer.status_code == 201, answer.json()
    return Rollout.objects.get(pk=answer.json()["rollout"]["id"])


def wave_devices(rollout, index):
    return list(RolloutDevice.objects.filter(rollout=rollout, wave=index).values_list("device_id", flat=True))


def wave_command(rollout, index):
    """The wave's latest command (a retry's, after one)."""
    return selectors.rollout_with_waves(rollout.pk).wave_list[index].command_ids[-1]


def test_waves_start_after_their_soak_when_the_devices_installed(operator_api, v11, fleet20):
    dry = deploy(operator_api, v11, dry_run=True, rollout={"waves": [10, 50, 100]}).json()
    assert [w["devices"] for w in dry["waves"]] == [2, 8, 10]
    rollout = start(operator_api, v11)
    assert [len(wave_devices(rollout, i)) for i in range(3)] == [2, 8, 10]
    t0 = rollout.waves.get(index=0).started_at
    report(wave_command(rollout, 0), wave_devices(rollout, 0), "succeeded")
    assert rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(seconds=599)) == "running"
    rollout.refresh_from_db()
    assert rollout.current_wave == 0 and "soaking" in rollout.reason
    rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(seconds=600))
    rollout.refresh_from_db()
    assert rollout.current_wave == 1 and rollout.waves.get(index=0).state == "passed"
    second = Command.objects.get(pk=wave_command(rollout, 1))
    assert set(second.deliveries.values_list("device_id", flat=True)) == set(wave_devices(rollout, 1))
    # A wave whose devices have not answered waits, however long it soaked.
    rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(hours=5))
    rollout.refresh_from_db()
    assert rollout.current_wave == 1 and "waiting for" in rollout.reason


def test_a_wave_past_the_threshold_halts_and_an_admin_decides(operator_api, admin_api, v11, fleet20):
    rollout = start(operator_api, v11)
    t0 = timezone.now()
    report(wave_command(rollout, 0), wave_devices(rollout, 0), "succeeded")
    rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(seconds=601))
    rollout.refresh_from_db()
    second = wave_devices(rollout, 1)
    report(wave_command(rollout, 1), second[:1], "failed")  # 1 of 8 = 12.5% > 10%: halts at once, soak or not
    assert rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(seconds=602)) == "halted"
    body = operator_api.get(f"/api/v1/rollouts/{rollout.id}").json()
    assert body["state"] == "halted" and "1 of 8 installs failed (12.5% > 10%)" in body["reason"]
    assert body["waves"][1]["stats"]["failed"] == 1 and body["current_wave"] == 2
    # Halted: the beat does nothing more.
    assert rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(hours=1)) == "halted"
    # Retry the failed: a new command to that one device; the rollout runs again.
    answer = operator_api.post(f"/api/v1/rollouts/{rollout.id}/retry-failed")
    assert answer.status_code == 200 and answer.json()["state"] == "running"
    retry = Command.objects.get(pk=answer.json()["waves"][1]["command_ids"][-1])
    assert list(retry.deliveries.values_list("device_id", flat=True)) == second[:1]
    # Another failure halts it again; an admin resumes past the wave: the last wave starts.
    report(str(retry.pk), second[:1], "failed")
    assert rollouts.advance_rollout(rollout_id=rollout.id, now=t0 + timedelta(hours=1)) == "halted"
    answer = admin_api.post(f"/api/v1/rollouts/{rollout.id}/resume")
    assert answer.status_code == 200 and answer.json()["current_wave"] == 3
    assert [w["state"] for w in answer.json()["waves"]] == ["passed", "accepted", "running"]
    actions = set(AuditEvent.objects.filter(target_id=str(rollout.id)).values_list("action", flat=True))
    assert actions >= {"rollout.create", "rollout.wave_start", "rollout.wave_done", "rollout.halt", "rollout.retried",
                       "rollout.resumed"}


def test_pause_stops_the_next_wave_and_resume_goes_on(operator_api, v11, fleet20):
    rollout = start(operator_api, v11, soak_s=0)
    assert operator_api.post(f"/api/v1/rollouts/{rollout.id}/pause").json()["state"] == "paused"
    report(wave_command(rollout, 0), wave_devices(rollout, 0), "succeeded")
    assert str(rollout.id) not in rollouts.advance_rollouts()  # the beat passes a paused rollout by
    rollout.refresh_from_db()
    assert rollout.state == "paused" and rollout.current_wave == 0
    assert operator_api.post(f"/api/v1/rollouts/{rollout.id}/pause").status_code == 409
    body = operator_api.post(f"/api/v1/rollouts/{rollout.id}/resume").json()
    assert body["state"] == "running" and body["current_wave"] == 2  # soak 0: wave 1 passed at once


def test_the_last_wave_completes_the_rollout(operator_api, v11, fleet20):
    rollout = start(operator_api, v11, soak_s=0, waves=[50, 100])
    for index in (0, 1):
        report(wave_command(rollout, index), wave_devices(rollout, index), "succeeded")
        rollouts.advance_rollout(rollout_id=rollout.id)
    rollout.refresh_from_db()
    assert rollout.state == "completed" and rollout.finished_at is not None


def test_group_waves_take_each_group_in_order(operator_api, v11, group_a, group_b):
    lab = [device(10, group=group_a) for _ in range(2)]
    field = [device(10, group=group_b) for _ in range(3)]
    device(10)  # in no group: left out of a group-wave rollout
    rollout = start(operator_api, v11, waves=[group_a.name, {"group": group_b.name}])
    assert set(wave_devices(rollout, 0)) == {d.id for d in lab} and set(wave_devices(rollout, 1)) == {d.id for d in field}
    assert deploy(operator_api, v11, rollout={"waves": ["no-such-group"]}).status_code == 400


def test_a_device_updated_meanwhile_is_skipped_when_its_wave_starts(operator_api, v11, fleet20):
    rollout = start(operator_api, v11, soak_s=0, waves=[10, 100])
    later = wave_devices(rollout, 1)
    InstalledApp.objects.filter(device_id=later[0], package=PACKAGE).update(version_code=11)
    report(wave_command(rollout, 0), wave_devices(rollout, 0), "succeeded")
    rollouts.advance_rollout(rollout_id=rollout.id)
    command = Command.objects.get(pk=wave_command(rollout, 1))
    assert later[0] not in set(command.deliveries.values_list("device_id", flat=True)) and command.target_count == len(later) - 1
    assert RolloutDevice.objects.get(rollout=rollout, device_id=later[0]).skipped == "not_needed_at_start"


def test_rollback_uninstalls_and_installs_the_previous_release_once_confirmed(operator_api, admin_api, v10, v11, fleet20):
    rollout = start(operator_api, v11, soak_s=0)
    got = wave_devices(rollout, 0)
    report(wave_command(rollout, 0), got, "succeeded")
    rollouts.advance_rollout(rollout_id=rollout.id)
    pending_command = wave_command(rollout, 1)
    assert operator_api.post(f"/api/v1/rollouts/{rollout.id}/rollback", {"confirm_data_loss": True}, format="json").status_code == 403
    refused = admin_api.post(f"/api/v1/rollouts/{rollout.id}/rollback", {}, format="json")
    assert refused.status_code == 400 and "data on those devices is lost" in str(refused.json())
    answer = admin_api.post(f"/api/v1/rollouts/{rollout.id}/rollback", {"confirm_data_loss": True}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["state"] == "rolled_back" and body["previous_release"]["version_code"] == 10
    uninstall, install = (Command.objects.get(pk=c) for c in sorted(body["rollback_command_ids"],
                                                                      key=lambda c: Command.objects.get(pk=c).created_at))
    assert uninstall.type == "uninstall_app" and uninstall.params == {"package": PACKAGE}
    assert install.type == "install_apk" and install.params["apk_id"] == str(v10.id)
    for d in got:  # on each device the uninstall runs first (seq order)
        assert Delivery.objects.get(command=uninstall, device_id=d).seq < Delivery.objects.get(command=install, device_id=d).seq
    assert set(install.deliveries.values_list("device_id", flat=True)) == set(got)
    assert not Delivery.objects.filter(command_id=pending_command, state__in=["queued", "sent"]).exists()
    assert admin_api.post(f"/api/v1/rollouts/{rollout.id}/rollback", {"confirm_data_loss": True}, format="json").status_code == 409


def test_the_agent_is_never_rolled_back(admin_api, operator_api, copy_apk, admin_uploader):
    old = releases.create_release(path=copy_apk("agent-test"), uploader=admin_uploader)
    new = releases.create_release(path=copy_apk("agent-test-v2"), uploader=admin_uploader)
    assert old.package == new.package == "dev.mdm.agent"
    InstalledApp.objects.create(device=DeviceFactory(), package=old.package, version_code=old.version_code)
    rollout = Rollout.objects.get(pk=deploy(operator_api, new, rollout={"waves": [100]}).json()["rollout"]["id"])
    answer = admin_api.post(f"/api/v1/rollouts/{rollout.id}/rollback", {"confirm_data_loss": True}, format="json")
    assert answer.status_code == 400 and "cannot uninstall itself" in str(answer.json())


def test_retention_keeps_what_a_live_rollout_needs(operator_api, v10, v11, fleet20, settings):
    from apks.services.retention import purge_candidates

    start(operator_api, v11)
    assert {r.pk for r in purge_candidates(keep=0)}.isdisjoint({v10.pk, v11.pk})


# -- who may -------------------------------------------------------------------------------------
def test_outsiders_cannot_deploy_or_steer(viewer_api, anon_api, operator_api, admin_user, client, v11, fleet20):
    from accounts import services as accounts

    assert deploy(viewer_api, v11, dry_run=True).status_code == 403
    assert deploy(anon_api, v11, dry_run=True).status_code == 401
    key = accounts.create_api_key(actor=admin_user, name="ci", scopes=["apk:read", "apk:upload"]).raw
    as_key = client.post(f"/api/v1/apks/{v11.id}/deploy", {"target": {"all": True}}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert as_key.status_code == 403
    rollout = start(operator_api, v11)
    assert viewer_api.get(f"/api/v1/rollouts/{rollout.id}").status_code == 200
    for verb in ("pause", "resume", "retry-failed", "rollback"):
        assert viewer_api.post(f"/api/v1/rollouts/{rollout.id}/{verb}").status_code == 403
        assert anon_api.post(f"/api/v1/rollouts/{rollout.id}/{verb}").status_code == 401
    assert anon_api.get("/api/v1/rollouts").status_code == 401
    assert not Command.objects.exclude(pk__in=rollout.waves.values("commands")).exists()


@pytest.mark.parametrize("plan", [
    {"waves": []}, {"waves": [10, 50]}, {"waves": [50, 10, 100]}, {"waves": [0, 100]}, {"waves": [10, "lab"]},
    {"waves": [100], "soak_s": -1}, {"waves": [100], "threshold_pct": 101}, {"waves": [100], "extra": 1},
    {"waves": [True]}, "fast", {"waves": [{"percent": "x"}]}, {"waves": ["a", "a"]}, {"waves": ["lab\u0000"]},
])
def test_a_bad_plan_is_a_400_that_says_what(operator_api, v11, fleet20, plan):
    answer = deploy(operator_api, v11, rollout=plan)
    assert answer.status_code == 400 and "rollout" in str(answer.json())
    assert not Rollout.objects.exists()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
                           max_leaves=20)


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(raw=json_values | st.fixed_dictionaries({"waves": json_values}, optional={"soak_s": json_values, "threshold_pct": json_values}))
def test_any_plan_is_a_plan_or_a_params_error(raw):
    try:
        plan = rollouts.normalize_plan(raw)
    except ParamsError as exc:
        assert exc.errors.get("rollout")
        return
    assert plan["waves"] and 0 <= plan["threshold_pct"] <= 100 and plan["soak_s"] >= 0
