"""Notifications end to end: one grouped e-mail through a real SMTP server and one signed
webhook call per group, retries with backoff, quiet alerts, maintenance windows, preferences."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from devices.models import DeviceStatus
from devices.tests.factories import DeviceFactory, DeviceGroupFactory
from mdm.alerts import delivery, services, tasks
from mdm.alerts.models import Alert, AlertRule, MaintenanceWindow, Notification, NotificationPreference, WebhookDelivery
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SECRET = "whsec-test-0123456789"


@pytest.fixture
def offline_rule():
    AlertRule.objects.exclude(kind="device_offline").update(enabled=False)
    return AlertRule.objects.get(seed_key="device_offline")


@pytest.fixture
def lobby_offline(offline_rule):
    lobby = DeviceGroupFactory(name="Lobby")
    devices = [DeviceFactory(group=lobby, alias=f"kiosk-{i:02d}") for i in range(37)]
    DeviceStatus.objects.filter(device__in=devices).update(online=False, last_seen=T0 - timedelta(minutes=11))
    return devices


def run(at):
    with time_machine.travel(at, tick=False):
        services.run_cycle(timezone.now())
        return tasks.send_due()


def test_37_devices_offline_make_one_email_per_admin_listing_them(admin_user, operator_user, smtp, lobby_offline):
    run(T0)
    assert run(T0 + timedelta(seconds=5)) == 0  # the group window is still open
    assert run(T0 + timedelta(seconds=10)) == 1
    (rcpts, mail), = smtp.wait_for(1)
    assert rcpts == [admin_user.email]  # seeded rules tell the admins, not operators
    assert mail["Subject"] == "[warning] 37 devices in group Lobby: offline for 10 min"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk() if not p.is_multipart()}
    assert "kiosk-00" in parts["text/plain"] and "kiosk-36" in parts["text/plain"]
    assert "http://console.example/alerts/" in parts["text/html"]
    assert Notification.objects.get().state == "sent"


def test_acknowledged_and_snoozed_alerts_stay_quiet(admin_user, smtp, lobby_offline):
    run(T0)
    alerts = list(Alert.objects.all())
    with time_machine.travel(T0 + timedelta(seconds=2), tick=False):
        for a in alerts[:36]:
            services.acknowledge(actor=admin_user, alert=a)
        services.snooze(actor=admin_user, alert=alerts[36], minutes=60)
    assert run(T0 + timedelta(seconds=10)) == 1
    n = Notification.objects.get()
    assert n.state == "suppressed" and smtp.messages == []
    assert n.detail["suppressed"] == {"acknowledged, snoozed or no longer firing": 37}


def test_a_maintenance_window_of_the_group_holds_notifications(admin_user, smtp, lobby_offline):
    MaintenanceWindow.objects.create(group=lobby_offline[0].group, starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(hours=1))
    run(T0)
    run(T0 + timedelta(seconds=10))
    assert Notification.objects.get().state == "suppressed"
    assert smtp.messages == []


def test_a_user_who_muted_the_rule_is_not_told(admin_user, smtp, lobby_offline, offline_rule):
    pref = NotificationPreference.objects.create(user=admin_user)
    pref.muted_rules.add(offline_rule)
    run(T0)
    run(T0 + timedelta(seconds=10))
    assert Notification.objects.get().detail["suppressed"] == {"nobody to tell (no recipients, preferences)": 37}


def test_the_webhook_gets_one_signed_call_per_group_and_retries_until_it_answers(admin_user, lobby_offline, offline_rule, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with Receiver(statuses=(500, 503, 200)) as receiver:
        hook = services.create_webhook(actor=admin_user, name="pager", url=receiver.url, secret=SECRET)
        offline_rule.notify = {"admins": False, "webhooks": [str(hook.pk)]}
        offline_rule.save()
        run(T0)
        run(T0 + timedelta(seconds=10))
        d = WebhookDelivery.objects.get()
        assert (d.state, d.attempts, d.last_status) == ("pending", 1, 500)
        # not due again before its backoff
        first = T0 + timedelta(seconds=10)
        assert d.next_attempt_at == first + timedelta(seconds=10)
        assert delivery.attempt(d.pk, now=first + timedelta(seconds=5)) == "not due"
        assert delivery.attempt(d.pk, now=first + timedelta(seconds=10)) == "HTTP 503"
        assert delivery.attempt(d.pk, now=first + timedelta(seconds=70)) == "ok"
        d.refresh_from_db()
        assert (d.state, d.attempts, d.last_status) == ("succeeded", 3, 200)
        assert len(receiver.requests) == 3
        headers, body = receiver.requests[-1]
    timestamp = headers["X-MDM-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-MDM-Signature"] == f"sha256={expected}"
    sent = json.loads(body)
    assert sent["event"] == "fired" and sent["count"] == 37 and len(sent["alerts"]) == 37
    assert sent["rule"]["kind"] == "device_offline"


def test_a_webhook_that_never_answers_is_given_up_and_logged(admin_user, settings):
    with Receiver(statuses=(500,)) as receiver:
        hook = services.create_webhook(actor=admin_user, name="dead", url=receiver.url, secret=SECRET)
        (d,) = delivery.queue_webhooks(None, [hook], delivery.test_payload(hook), timezone.now(), is_test=True)
        later = timezone.now()
        for wait in (0, 11, 61, 301, 1801):
            later += timedelta(seconds=wait)
            delivery.attempt(d.pk, now=later)
    d.refresh_from_db()
    assert (d.state, d.attempts, d.last_error) == ("failed", 5, "HTTP 500")


def test_resolving_tells_those_who_were_told_it_fired(admin_user, smtp, lobby_offline):
    run(T0)
    run(T0 + timedelta(seconds=10))
    DeviceStatus.objects.filter(device__in=lobby_offline).update(online=True, last_seen=T0 + timedelta(seconds=20))
    run(T0 + timedelta(seconds=20))
    run(T0 + timedelta(seconds=30))
    mails = smtp.wait_for(2)
    assert [m["Subject"] for _, m in mails] == [
        "[warning] 37 devices in group Lobby: offline for 10 min",
        "[warning] resolved: 37 devices in group Lobby: offline for 10 min",
    ]


def test_an_smtp_server_that_is_away_keeps_the_error_and_the_mail_goes_when_it_is_back(admin_user, lobby_offline, settings):
    from unittest import mock

    from tests.live import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    run(T0)
    with mock.patch.object(tasks.send_notification_email, "retry", side_effect=RuntimeError("retry scheduled")):
        with pytest.raises(RuntimeError, match="retry scheduled"):
            run(T0 + timedelta(seconds=10))
    n = Notification.objects.get()
    assert n.state == "sent" and n.recipients == [admin_user.email]
    assert n.detail["email_error"].startswith("ConnectionRefusedError")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    assert tasks.send_notification_email(str(n.pk)) == 1  # the retry, the server back
    assert [m.subject for m in mail.outbox] == ["[warning] 37 devices in group Lobby: offline for 10 min"]
    n.refresh_from_db()
    assert n.detail["email_error"] == ""
