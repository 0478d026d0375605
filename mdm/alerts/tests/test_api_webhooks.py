"""/api/v1/webhooks (admins): the secret answered once, never listed; changes; a signed test call
through a local receiver; the delivery log."""

import hashlib
import hmac
import json

import pytest

from commands import crypto
from mdm.alerts import services
from mdm.alerts.models import WebhookDelivery, WebhookEndpoint
from mdm.models import AuditEvent
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

HOOKS = "/api/v1/webhooks"


def test_creating_answers_a_made_secret_once_and_never_again(admin_api):
    response = admin_api.post(HOOKS, {"name": "pager", "url": "https://hooks.example.com/x"}, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    hook = WebhookEndpoint.objects.get()
    assert crypto.decrypt_bytes(hook.secret).decode() == secret and secret not in hook.secret
    listed = admin_api.get(HOOKS).content.decode() + admin_api.get(f"{HOOKS}/{hook.pk}").content.decode()
    assert secret not in listed and '"secret"' not in listed and hook.secret not in listed
    assert secret not in json.dumps(AuditEvent.objects.get(action="webhook.create").data)


def test_a_given_secret_is_kept(admin_api):
    response = admin_api.post(HOOKS, {"name": "slack", "url": "http://127.0.0.1:9/x", "secret": "s" * 16, "all_rules": True},
                              format="json")
    assert response.status_code == 201 and response.json()["secret"] == "s" * 16 and response.json()["all_rules"] is True


@pytest.mark.parametrize("body, field", [
    ({"url": "https://x.example"}, "name"),
    ({"name": "a"}, "url"),
    ({"name": "a", "url": "ftp://x.example/"}, "url"),
    ({"name": "a", "url": "javascript:alert(1)"}, "url"),
    ({"name": "a", "url": "https://x.example", "secret": "short"}, "secret"),
    ({"name": "a\u0000b", "url": "https://x.example"}, "name"),
    ({"name": "a", "url": "https://x.example", "enabled": "sometimes"}, "enabled"),
])
def test_bad_webhooks_are_refused_naming_the_field(admin_api, body, field):
    response = admin_api.post(HOOKS, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_two_webhooks_cannot_share_a_name(admin_api, admin_user):
    services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    response = admin_api.post(HOOKS, {"name": "pager", "url": "https://b.example"}, format="json")
    assert response.status_code == 400 and response.json()["fields"] == {"name": ["A webhook with this name exists."]}


def test_an_admin_changes_rotates_and_deletes_a_webhook(admin_api, admin_user):
    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    response = admin_api.patch(f"{HOOKS}/{hook.pk}", {"enabled": False, "url": "https://b.example", "secret": "y" * 20},
                               format="json")
    assert response.status_code == 200 and "secret" not in response.json()
    hook.refresh_from_db()
    assert (hook.enabled, hook.url, crypto.decrypt_bytes(hook.secret).decode()) == (False, "https://b.example", "y" * 20)
    audit = AuditEvent.objects.get(action="webhook.update")
    assert audit.data["secret_rotated"] is True and "y" * 20 not in json.dumps(audit.data)
    assert admin_api.patch(f"{HOOKS}/{hook.pk}", {"secret": ""}, format="json").status_code == 400
    assert admin_api.delete(f"{HOOKS}/{hook.pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_the_test_button_posts_one_signed_call_and_logs_it(admin_api, capture_on_commit):
    with Receiver(statuses=(200,)) as receiver:
        created = admin_api.post(HOOKS, {"name": "local", "url": receiver.url}, format="json").json()
        assert receiver.requests == []
        with capture_on_commit(execute=True):  # queued on commit, run by the (eager) worker
            response = admin_api.post(f"{HOOKS}/{created['id']}/test")
        assert response.status_code == 202
        assert response.json()["delivery"]["is_test"] is True
        (headers, body), = receiver.requests
    expected = hmac.new(created["secret"].encode(), f"{headers['X-MDM-Timestamp']}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-MDM-Signature"] == f"sha256={expected}"
    assert json.loads(body)["event"] == "test"
    log = admin_api.get(f"{HOOKS}/{created['id']}/deliveries").json()
    assert log["count"] == 1
    (entry,) = log["results"]
    assert (entry["state"], entry["attempts"], entry["last_status"], entry["event"]) == ("succeeded", 1, 200, "test")


def test_a_failing_endpoint_shows_its_error_in_the_log(admin_api, admin_user, capture_on_commit):
    with Receiver(statuses=(503,)) as receiver:
        hook = services.create_webhook(actor=admin_user, name="down", url=receiver.url, secret="x" * 20)
        with capture_on_commit(execute=True):
            admin_api.post(f"{HOOKS}/{hook.pk}/test")
    d = WebhookDelivery.objects.get()
    assert (d.state, d.last_status, d.last_error) == ("pending", 503, "HTTP 503")  # retried later with backoff
    assert admin_api.get(f"{HOOKS}/{hook.pk}/deliveries").json()["results"][0]["last_error"] == "HTTP 503"


def test_webhooks_are_for_admins_only(anon_api, viewer_api, operator_api, admin_user):
    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    assert anon_api.get(HOOKS).status_code == 401
    for caller in (viewer_api, operator_api):
        assert caller.get(HOOKS).status_code == 403
        assert caller.get(f"{HOOKS}/{hook.pk}/deliveries").status_code == 403
        assert caller.post(HOOKS, {"name": "b", "url": "https://b.example"}, format="json").status_code == 403
        assert caller.post(f"{HOOKS}/{hook.pk}/test").status_code == 403
        assert caller.patch(f"{HOOKS}/{hook.pk}", {"enabled": False}, format="json").status_code == 403
        assert caller.delete(f"{HOOKS}/{hook.pk}").status_code == 403
    assert WebhookEndpoint.objects.get().enabled and not WebhookDelivery.objects.exists()


def test_deleting_a_webhook_takes_it_off_the_rules_that_named_it(admin_api, admin_user):
    from mdm.alerts.models import AlertRule

    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    other = services.create_webhook(actor=admin_user, name="chat", url="https://b.example", secret="x" * 20)
    rule = AlertRule.objects.get(seed_key="device_offline")
    services.update_rule(actor=admin_user, rule=rule, data={"notify": {"admins": True, "webhooks": [str(hook.pk), str(other.pk)]}})
    assert admin_api.delete(f"{HOOKS}/{hook.pk}").status_code == 204
    rule.refresh_from_db()
    assert rule.notify["webhooks"] == [str(other.pk)] and rule.notify["admins"] is True
