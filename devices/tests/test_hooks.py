"""The devices app's hook points (devices.hooks) on their own: what they answer before an app
above registers, and how registrations behave. commands/ registering its implementations is
tested in commands/tests/test_device_hooks.py."""

from devices.hooks import UNREAD, Event, Hook


def test_a_hook_answers_with_its_default_until_an_implementation_is_registered():
    hook = Hook("answer", lambda *, n: n + 1)
    assert hook(n=1) == 2
    hook.register(lambda *, n: n * 10)
    assert hook(n=1) == 10


def test_the_heartbeats_default_is_an_answer_without_commands():
    from devices import hooks

    default = Hook("heartbeat_answer", hooks._no_commands)
    assert default(device_id="d", kids=["k1"], marker=UNREAD) == {"commands": [], "more_commands": False, "cancelled": []}


def test_an_event_tells_every_receiver_in_order_and_connects_each_once():
    told = []
    event = Event("device_deleted")
    first = event.connect(lambda *, device_id: told.append(("first", device_id)) or 1)
    event.connect(lambda *, device_id: told.append(("second", device_id)) or 2)
    event.connect(first)
    assert event.send(device_id="d1") == [1, 2]
    assert told == [("first", "d1"), ("second", "d1")]


def test_an_event_without_receivers_tells_nobody():
    assert Event("device_purge").send(device_id="d1", batch_size=10) == []
