"""The devices app's hook points (devices.hooks) on their own: what they answer before an app
above registers, and how registrations behave. commands/ registering its implementations is
tested in commands/tests/test_device_hooks.py."""

import pytest

from devices import hooks


@pytest.fixture
def unregistered(monkeypatch):
    """The hook points as a project without commands/ has them."""
    monkeypatch.setattr(hooks, "implementations", {"heartbeat_answer": hooks._no_commands,
                                                   "marker_prefix": hooks._unwritten_marker_prefix})
    monkeypatch.setattr(hooks, "receivers", {"device_deleted": [], "device_purge": []})


def test_without_an_app_above_a_heartbeat_gets_no_commands_and_nothing_is_cancelled_or_purged(unregistered, settings):
    assert hooks.heartbeat_answer(device_id="d", kids=["k1"]) == {"commands": [], "more_commands": False, "cancelled": []}
    assert hooks.marker_prefix() == f"{settings.CACHE_PREFIX}:nomarker:"
    assert hooks.device_deleted(device_id="d") is None
    assert hooks.device_purge(device_id="d", batch_size=10) == 0


def test_a_registered_implementation_gets_the_heartbeats_arguments(unregistered):
    seen = []
    hooks.register("heartbeat_answer", lambda **kw: seen.append(kw) or {"commands": ["e"], "more_commands": False, "cancelled": []})
    assert hooks.heartbeat_answer(device_id="d", kids=None)["commands"] == ["e"]
    assert seen == [{"device_id": "d", "kids": None, "marker": hooks.UNREAD, "keyset_raw": hooks.UNREAD}]


def test_events_tell_every_receiver_once_in_order_and_the_purge_adds_their_counts(unregistered):
    told = []
    first = hooks.register("device_purge", lambda **kw: told.append(("first", kw["device_id"])) or 3)
    hooks.register("device_purge", lambda **kw: told.append(("second", kw["device_id"])) or 2)
    hooks.register("device_purge", first)
    assert hooks.device_purge(device_id="d1", batch_size=5) == 5
    assert told == [("first", "d1"), ("second", "d1")]


def test_a_misspelt_hook_point_is_refused(unregistered):
    with pytest.raises(LookupError):
        hooks.register("device_deletd", lambda **kw: None)
