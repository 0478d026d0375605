from mdm import audit
from mdm.models import AuditEvent


def test_a_user_action_is_recorded_with_actor_target_data_and_ip(admin_user):
    event = audit.record(actor=admin_user, action="thing.do", target=admin_user, data={"n": 1}, ip="10.0.0.9")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor == admin_user
    assert stored.actor_label == "user:alice-admin"
    assert (stored.target_type, stored.target_id) == ("user", str(admin_user.pk))
    assert stored.data == {"n": 1}
    assert stored.ip == "10.0.0.9"


def test_secrets_never_reach_the_audit_table(db):
    audit.record(
        actor="device:abc",
        action="wifi.push",
        target=("wificonfig", "7"),
        data={"ssid": "Office", "password": "hunter2", "nested": [{"token": "t0ps3cret"}], "empty_password": ""},
    )
    stored = AuditEvent.objects.get()
    assert stored.data == {"ssid": "Office", "password": "***", "nested": [{"token": "***"}], "empty_password": ""}
    assert "hunter2" not in str(stored.data)


def test_system_actions_are_labelled_system(db):
    event = audit.record(actor=None, action="sweep")
    assert event.actor is None and event.actor_label == "system"


def test_the_actor_label_survives_the_user(admin_user):
    audit.record(actor=admin_user, action="x")
    admin_user.delete()
    stored = AuditEvent.objects.get()
    assert stored.actor is None and stored.actor_label == "user:alice-admin"
