"""Assignment precedence, version numbers, the heartbeat's `policy_version` (from Redis, no
query) and the `sync` push after a change (docs/policies.md)."""

import json

import pytest

from commands import tasks
from commands.policies import cache, resolve
from commands.policies import services as policies
from commands.policies.models import Policy
from commands.policies.push import push_sync
from commands.tests.conftest import make_device
from commands.tests.test_dispatch import phones, received
from devices import services as device_services
from devices.models import DeviceGroup, DevicePolicyState

pytestmark = pytest.mark.django_db

KIOSK = {"kiosk": {"package": "com.example.kiosk"}}


def make(admin, name, package="com.example.kiosk"):
    return policies.create_policy(actor=admin, name=name, items={"kiosk": {"package": package}})


def heartbeat(sim, **body) -> dict:
    response = sim.client().post("/api/v1/device/heartbeat", data=json.dumps({"kids": sim.kids, **body}),
                                 content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def pushed(monkeypatch):
    """The device ids each on-commit sync push was asked for."""
    calls = []
    monkeypatch.setattr(tasks.push_policy_sync, "delay", lambda ids: calls.append(sorted(ids)))
    return calls


def test_a_device_assignment_beats_the_group_which_beats_the_fleet_default(admin_user):
    in_group, alone, pinned = make_device(group="shops"), make_device(), make_device(group="shops")
    default, group_policy, own = make(admin_user, "default"), make(admin_user, "group"), make(admin_user, "own")
    policies.assign_policy(actor=admin_user, policy=default, target={"all": True})
    policies.assign_policy(actor=admin_user, policy=group_policy, target={"group": "shops"})
    policies.assign_policy(actor=admin_user, policy=own, target={"device_ids": [pinned.id]})
    assert resolve.current_for_device(alone.id) == (default.pk, default.version)
    assert resolve.current_for_device(in_group.id) == (group_policy.pk, group_policy.version)
    assert resolve.current_for_device(pinned.id) == (own.pk, own.version)
    rows = dict(DevicePolicyState.objects.values_list("device_id", "policy_id"))
    assert {str(k): v for k, v in rows.items()} == {alone.id: default.pk, in_group.id: group_policy.pk, pinned.id: own.pk}


def test_assigning_replaces_the_devices_previous_policy_and_dry_run_counts_without_writing(admin_user, admin_api):
    sim = make_device(tags=["front"])
    first, second = make(admin_user, "first"), make(admin_user, "second")
    policies.assign_policy(actor=admin_user, policy=first, target={"tags": ["front"]})
    dry = admin_api.post(f"/api/v1/policies/{second.pk}/assign", {"target": {"tags": ["front"]}, "dry_run": True}, format="json")
    assert dry.status_code == 200 and dry.json()["target_count"] == 1 and dry.json()["device_ids"] == [sim.id]
    assert resolve.current_for_device(sim.id)[0] == first.pk
    done = admin_api.post(f"/api/v1/policies/{second.pk}/assign", {"target": {"device_ids": [sim.id]}}, format="json")
    assert done.status_code == 200 and done.json()["target_count"] == 1
    assert resolve.current_for_device(sim.id)[0] == second.pk


def test_assigning_to_devices_adds_takes_over_and_keeps_rows(admin_user):
    """A new device gets a row; a device of another policy has its row taken over as new; a device
    already on this policy keeps its row as it was. Its resolved state follows in the same pass."""
    from commands.policies.models import PolicyAssignment

    fresh, other, same = make_device(), make_device(), make_device()
    first, second = make(admin_user, "first"), make(admin_user, "second")
    policies.assign_policy(actor=admin_user, policy=first, target={"device_ids": [other.id]})
    policies.assign_policy(actor=admin_user, policy=second, target={"device_ids": [same.id]})
    before = {str(a.device_id): (a.pk, a.created_at) for a in PolicyAssignment.objects.all()}
    out = policies.assign_policy(actor=admin_user, policy=second, target={"device_ids": [fresh.id, other.id, same.id]})
    assert out == {"target_count": 3, "changed": 2}
    rows = {str(a.device_id): a for a in PolicyAssignment.objects.all()}
    assert {d: a.policy_id for d, a in rows.items()} == {fresh.id: second.pk, other.id: second.pk, same.id: second.pk}
    assert (rows[same.id].pk, rows[same.id].created_at) == before[same.id]
    assert rows[other.id].created_at > before[other.id][1]
    states = {str(d): (p, v) for d, p, v in DevicePolicyState.objects.values_list("device_id", "policy_id", "version")}
    assert states == {d: (second.pk, second.version) for d in (fresh.id, other.id, same.id)}
    # Back to no policy at all: the states say so (a policy id of NULL for every device).
    for policy in (first, second):
        policies.unassign_policy(actor=admin_user, policy=policy, target={"device_ids": [fresh.id, other.id, same.id]})
    assert set(DevicePolicyState.objects.values_list("policy_id", "version")) == {(None, 0)}


def test_versions_are_server_wide_and_only_increase(admin_user):
    a, b = make(admin_user, "a"), make(admin_user, "b")
    before = b.version
    policies.update_policy(actor=admin_user, policy=a, items={"kiosk": {"package": "com.example.new"}})
    a.refresh_from_db()
    assert a.version > before > 0
    sim = make_device()
    policies.assign_policy(actor=admin_user, policy=a, target={"device_ids": [sim.id]})
    held = a.version
    policies.assign_policy(actor=admin_user, policy=b, target={"device_ids": [sim.id]})
    assert resolve.current_for_device(sim.id)[1] == b.version != held  # moved: a number it never held


def test_the_heartbeat_answers_the_current_version_from_redis_without_a_query(
        admin_user, django_assert_num_queries, django_capture_on_commit_callbacks):
    sim = make_device()
    assert heartbeat(sim)["policy_version"] == 0  # read from PostgreSQL, then cached
    policy = make(admin_user, "p")
    with django_capture_on_commit_callbacks() as after_commit:
        policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [sim.id]})
        # Until the change commits, the cached number is still the right answer: nothing is
        # deleted before (a fleet-wide change would send every heartbeat to PostgreSQL).
        assert cache.parse(cache.read(sim.id)) == 0
    for callback in after_commit:
        callback()
    assert cache.parse(cache.read(sim.id)) == policy.version  # replaced after the commit
    with django_assert_num_queries(0):
        answer = heartbeat(sim)
    assert answer["policy_version"] == policy.version
    with django_capture_on_commit_callbacks(execute=True):
        policies.update_policy(actor=admin_user, policy=policy, items={"kiosk": {"package": "com.example.v2"}})
    policy.refresh_from_db()
    with django_assert_num_queries(0):
        assert heartbeat(sim)["policy_version"] == policy.version
    cache.forget_now([sim.id])  # gone from Redis (evicted, flushed): the first heartbeat reads PostgreSQL
    assert heartbeat(sim)["policy_version"] == policy.version
    assert cache.parse(cache.read(sim.id)) == policy.version


def test_a_check_racing_an_edit_never_leaves_a_stale_version():
    token = cache.begin_check("dev-1")
    cache.forget_now(["dev-1"])  # an edit committed while the heartbeat read PostgreSQL
    cache.finish("dev-1", token, 41)
    assert cache.read("dev-1") is None


def test_moving_a_device_to_another_group_moves_its_policy(admin_user, pushed, django_capture_on_commit_callbacks):
    sim = make_device(group="a")
    DeviceGroup.objects.create(name="b")
    policy = make(admin_user, "for b")
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "b"})
    assert heartbeat(sim)["policy_version"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        device_services.update_device(actor=admin_user, device=sim.device, group=DeviceGroup.objects.get(name="b"))
    assert heartbeat(sim)["policy_version"] == policy.version
    assert DevicePolicyState.objects.get(device_id=sim.id).policy_id == policy.pk


def test_deleting_a_group_moves_its_devices_to_the_fleet_default(admin_user, django_capture_on_commit_callbacks):
    sim = make_device(group="gone")
    default, group_policy = make(admin_user, "default"), make(admin_user, "group")
    policies.assign_policy(actor=admin_user, policy=default, target={"all": True})
    policies.assign_policy(actor=admin_user, policy=group_policy, target={"group": "gone"})
    assert heartbeat(sim)["policy_version"] == group_policy.version
    with django_capture_on_commit_callbacks(execute=True):
        device_services.delete_group(actor=admin_user, group=DeviceGroup.objects.get(name="gone"))
    assert heartbeat(sim)["policy_version"] == default.version


def test_an_edit_pushes_sync_to_exactly_the_devices_it_moves(admin_user, pushed, django_capture_on_commit_callbacks):
    on, off = make_device(group="on"), make_device(group="off")
    policy = make(admin_user, "p")
    with django_capture_on_commit_callbacks(execute=True):
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": "on"})
    assert pushed == [[on.id]]
    with django_capture_on_commit_callbacks(execute=True):
        policies.update_policy(actor=admin_user, policy=policy, items={"restrictions": ["no_factory_reset"]})
    assert pushed == [[on.id], [on.id]] and off.id not in pushed[-1]


def test_the_sync_push_is_a_collapsible_data_message_without_the_policy(fcm_standin, admin_user):
    [phone] = phones(fcm_standin)
    assert push_sync(device_ids=[phone.id]) == 1
    [message] = received(fcm_standin, phone)
    assert message["data"] == {"kind": "sync"}
    assert message["android"]["priority"].lower() == "high" and message["android"]["collapse_key"] == "sync"


def test_an_unregistered_token_is_cleared_by_the_sync_push(fcm_standin):
    [phone] = phones(fcm_standin)
    fcm_standin.fail([phone.device.fcm_token], error="UNREGISTERED")
    assert push_sync(device_ids=[phone.id]) == 0
    phone.device.refresh_from_db()
    assert phone.device.fcm_token == ""


def test_a_wifi_config_edit_republishes_the_policies_that_carry_it(admin_user):
    from commands import services

    config = services.create_wifi_config(actor=admin_user, name="Shop", ssid="shop", password="first-pass")
    policy = policies.create_policy(actor=admin_user, name="p", items={"wifi": [str(config.pk)]})
    old = policy.version
    services.update_wifi_config(actor=admin_user, config=config, password="second-pass")
    policy.refresh_from_db()
    assert policy.version > old and policy.current.secret_values() == {str(config.pk): "second-pass"}


def test_unassigning_falls_back_to_the_group_then_the_default_then_none(admin_user, admin_api, viewer_api,
                                                                       django_capture_on_commit_callbacks):
    sim = make_device(group="shops")
    default, group_policy, own = make(admin_user, "default"), make(admin_user, "group"), make(admin_user, "own")
    policies.assign_policy(actor=admin_user, policy=default, target={"all": True})
    policies.assign_policy(actor=admin_user, policy=group_policy, target={"group": "shops"})
    policies.assign_policy(actor=admin_user, policy=own, target={"device_ids": [sim.id]})
    assert viewer_api.post(f"/api/v1/policies/{own.pk}/unassign", {"target": {"device_ids": [sim.id]}}, format="json").status_code == 403
    done = admin_api.post(f"/api/v1/policies/{own.pk}/unassign", {"target": {"device_ids": [sim.id]}}, format="json")
    assert done.status_code == 200 and done.json() == {"target_count": 1, "changed": 1}
    assert heartbeat(sim)["policy_version"] == group_policy.version
    with django_capture_on_commit_callbacks(execute=True):
        policies.unassign_policy(actor=admin_user, policy=group_policy, target={"group": "shops"})
    assert heartbeat(sim)["policy_version"] == default.version
    with django_capture_on_commit_callbacks(execute=True):
        policies.unassign_policy(actor=admin_user, policy=default, target={"all": True})
    assert heartbeat(sim)["policy_version"] == 0
    assert DevicePolicyState.objects.get(device_id=sim.id).version == 0


def test_a_device_enrolled_after_the_fleet_default_is_set_counts_under_it_at_once(admin_user):
    default = make(admin_user, "default")
    policies.assign_policy(actor=admin_user, policy=default, target={"all": True})
    sim = make_device()  # enrolls through commands.device_hooks.keys_on_enroll
    state = DevicePolicyState.objects.get(device_id=sim.id)
    assert (state.policy_id, state.version, state.compliant) == (default.pk, default.version, False)
    assert heartbeat(sim)["policy_version"] == default.version


def test_a_fleet_without_policies_adds_no_row_at_enrollment():
    sim = make_device()
    assert not DevicePolicyState.objects.filter(device_id=sim.id).exists()


def test_a_change_replaces_every_moved_devices_number_in_short_redis_calls(admin_user, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    """Redis runs one command at a time and every heartbeat reads a version key: the replacement
    goes in chunks (commands.policies.cache.CHUNK keys a call), and every chunk is written."""
    monkeypatch.setattr(cache, "CHUNK", 2)
    devices = [make_device(group="shops") for _ in range(5)]
    policy = make(admin_user, "p")
    sizes = []
    chunks = cache._chunks
    monkeypatch.setattr(cache, "_chunks", lambda items: [sizes.append(len(c)) or c for c in chunks(items)])
    with django_capture_on_commit_callbacks(execute=True):
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    assert sizes == [2, 2, 1]
    assert [cache.parse(cache.read(d.id)) for d in devices] == [policy.version] * 5


def test_an_earlier_changes_replacement_landing_last_leaves_the_later_changes_number(
        admin_user, django_capture_on_commit_callbacks):
    """Two changes commit one after the other and their replacements land in the other order (the
    earlier one's stalled). The later change moves the device to a policy of a lower number, so
    only the change numbers, taken under the reconciliation lock, say which write is the later."""
    sim = make_device()
    older, newer = make(admin_user, "older"), make(admin_user, "newer")
    assert older.version < newer.version
    with django_capture_on_commit_callbacks() as first:
        policies.assign_policy(actor=admin_user, policy=newer, target={"device_ids": [sim.id]})
    with django_capture_on_commit_callbacks() as second:
        policies.assign_policy(actor=admin_user, policy=older, target={"device_ids": [sim.id]})
    for callback in second + first:  # the later change's write first, the earlier one's after
        callback()
    assert cache.parse(cache.read(sim.id)) == older.version == resolve.current_for_device(sim.id)[1]
    assert heartbeat(sim)["policy_version"] == older.version


def test_a_changes_write_replaces_a_heartbeats_check_and_its_bare_number(admin_user, django_capture_on_commit_callbacks):
    """A check in flight ('chk:') or the number a check wrote (no change number) is always replaced:
    the check may have read PostgreSQL before the change committed."""
    checking, checked = make_device(), make_device()
    policy = make(admin_user, "p")
    assert cache.begin_check(checking.id).startswith("chk:")
    cache.redis_client.client().set(cache.key(checked.id), "0")
    with django_capture_on_commit_callbacks(execute=True):
        policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [checking.id, checked.id]})
    assert [cache.parse(cache.read(d.id)) for d in (checking, checked)] == [policy.version] * 2
    assert cache.read(checked.id).endswith(b":" + cache.redis_client.client().get(cache.CHANGE_KEY))


def test_a_fleet_wide_change_is_left_to_the_heartbeats_and_a_small_one_is_pushed(admin_user, pushed, settings,
                                                                                 django_capture_on_commit_callbacks):
    settings.POLICY_SYNC_PUSH_MAX = 2
    few, many = [make_device(group="few") for _ in range(2)], [make_device(group="many") for _ in range(3)]
    policy = make(admin_user, "p")
    with django_capture_on_commit_callbacks(execute=True):
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": "few"})
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": "many"})
    assert pushed == [sorted(d.id for d in few)]  # the 3 of "many" learn it from their next heartbeat
    assert {policies.heartbeat_policy_version(device_id=d.id) for d in many} == {policy.version}


def test_a_change_writes_the_new_version_where_the_heartbeats_read_it(admin_user, pushed, django_assert_num_queries,
                                                                      django_capture_on_commit_callbacks):
    """After a fleet-wide change, the moved devices' next heartbeats answer from Redis, not from
    PostgreSQL; a move to no policy leaves the key to the first heartbeat's read."""
    devices = [make_device(group="shops") for _ in range(3)]
    first, policy = make(admin_user, "first"), make(admin_user, "p")
    with django_capture_on_commit_callbacks(execute=True):
        policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    with django_assert_num_queries(0):
        assert {policies.heartbeat_policy_version(device_id=d.id) for d in devices} == {policy.version}
    with django_capture_on_commit_callbacks(execute=True):
        policies.update_policy(actor=admin_user, policy=policy, items={"restrictions": ["no_factory_reset"]})
    newer = Policy.objects.get(pk=policy.pk).version
    assert newer > policy.version
    with django_assert_num_queries(0):
        assert {policies.heartbeat_policy_version(device_id=d.id) for d in devices} == {newer}
    with django_capture_on_commit_callbacks(execute=True):  # to a policy of a lower number: replaced, not kept
        policies.assign_policy(actor=admin_user, policy=first, target={"device_ids": [devices[0].id]})
    assert first.version < newer and cache.parse(cache.read(devices[0].id)) == first.version
    with django_capture_on_commit_callbacks(execute=True):
        policies.unassign_policy(actor=admin_user, policy=first, target={"device_ids": [devices[0].id]})
    assert cache.parse(cache.read(devices[0].id)) == newer
    with django_capture_on_commit_callbacks(execute=True):  # to no policy: 0, still answered from Redis
        policies.unassign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    with django_assert_num_queries(0):
        assert {policies.heartbeat_policy_version(device_id=d.id) for d in devices} == {0}
    assert policies.heartbeat_policy_version(device_id=devices[0].id) == 0
