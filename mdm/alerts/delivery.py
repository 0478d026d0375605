"""Sending a notification (docs/alerts.md "Notifications"): one e-mail per recipient (plain text
and HTML, links into the console) through Django's configured backend, and one signed JSON POST
per webhook with retries and a delivery log.

Webhook requests carry `X-MDM-Timestamp` (unix seconds) and `X-MDM-Signature: sha256=<hex>`,
the HMAC-SHA256 under the endpoint's secret of `<timestamp>.<body>` (Stripe's scheme: a receiver
rejects a stale timestamp and so a replay). A 2xx is success; anything else, or no answer within
the timeout, is retried after 10 s, 1 min, 5 min and 30 min, then given up and logged."""

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core import mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from commands import crypto
from mdm.alerts import notify
from mdm.alerts.kinds import KINDS
from mdm.alerts.models import Notification, WebhookDelivery, WebhookEndpoint

RETRY_AFTER_S = (10, 60, 300, 1800)  # after attempts 1..4; the 5th failure gives up
TIMEOUT_S = 10
USER_AGENT = "mdm-alerts/1"


def console_url(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def payload(n: Notification, alerts) -> dict:
    rule = n.rule
    return {
        "notification": str(n.pk),
        "event": n.event,
        "severity": n.severity,
        "title": n.subject,
        "rule": None if rule is None else {"id": str(rule.pk), "name": rule.name, "kind": rule.kind},
        "count": len(alerts),
        "url": console_url(f"/alerts/?notification={n.pk}"),
        "alerts": [{
            "id": str(a.pk), "rule": a.rule.name, "state": a.state, "flapping": a.flapping,
            "subject": {"type": a.subject_type, "id": a.subject_id, "label": a.subject_label, "group": a.group_name},
            "value": a.value, "since": a.since.isoformat(),
            "fired_at": a.fired_at.isoformat() if a.fired_at else None,
            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            "url": console_url(f"/alerts/{a.pk}/"),
        } for a in alerts[:500]],
        "truncated": len(alerts) > 500,
        "sent_at": int(time.time()),
    }


def send_email(n: Notification, alerts, emails: list[str]) -> int:
    context = {"n": n, "alerts": alerts[:200], "more": max(0, len(alerts) - 200), "rule": n.rule,
               "condition": KINDS[n.rule.kind].describe(n.rule.params) if n.rule and n.rule.kind in KINDS else "",
               "alerts_url": console_url("/alerts/"), "base_url": settings.PUBLIC_BASE_URL}
    text = render_to_string("alerts/email.txt", context)
    html = render_to_string("alerts/email.html", context)
    messages = []
    for address in emails:
        m = mail.EmailMultiAlternatives(n.subject, text, settings.DEFAULT_FROM_EMAIL, [address])
        m.attach_alternative(html, "text/html")
        messages.append(m)
    with mail.get_connection() as connection:
        return connection.send_messages(messages) or 0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def queue_webhooks(n: Notification | None, hooks, body: dict, now: datetime, *, is_test=False) -> list[WebhookDelivery]:
    rows = [WebhookDelivery(endpoint=h, notification=n, is_test=is_test, payload=body, created_at=now, next_attempt_at=now)
            for h in hooks]
    return WebhookDelivery.objects.bulk_create(rows)


def attempt(delivery_id, now: datetime | None = None) -> str:
    """One attempt at one webhook delivery, claimed by a conditional update on its schedule so
    that two workers never post it twice at once."""
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, state=WebhookDelivery.State.PENDING,
                                             next_attempt_at__lte=now).update(next_attempt_at=None)
    if not claimed:
        return "not due"
    d = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    body = json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-MDM-Timestamp": str(timestamp),
               "X-MDM-Signature": sign(crypto.decrypt_bytes(d.endpoint.secret).decode(), timestamp, body),
               "X-MDM-Delivery": str(d.pk)}
    status, error = None, ""
    try:
        r = httpx.post(d.endpoint.url, content=body, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
        status = r.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    attempts = d.attempts + 1
    if not error:
        fields = {"state": WebhookDelivery.State.SUCCEEDED, "finished_at": now}
    elif attempts > len(RETRY_AFTER_S):
        fields = {"state": WebhookDelivery.State.FAILED, "finished_at": now}
    else:
        fields = {"next_attempt_at": now + timedelta(seconds=RETRY_AFTER_S[attempts - 1])}
    WebhookDelivery.objects.filter(pk=d.pk).update(attempts=attempts, last_status=status, last_error=error[:300], **fields)
    return "ok" if not error else error


def due_webhooks(now: datetime, limit: int = 200) -> list:
    return list(WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def send(n: Notification, now: datetime) -> dict:
    """Hand one claimed notification to its channels: the e-mail (its own task, retried while
    the SMTP server is away) and one delivery per webhook (retried on their schedule)."""
    alerts, emails, hooks = notify.prepare(n, now)
    if not alerts:
        return {"suppressed": True}
    queued = queue_webhooks(n, hooks, payload(n, alerts), now) if hooks else []
    Notification.objects.filter(pk=n.pk).update(state=Notification.State.SENT, sent_at=timezone.now())
    return {"emails": len(emails), "webhooks": len(queued), "webhook_ids": [d.pk for d in queued]}


def email_notification(notification_id) -> int:
    """The e-mail of a sent notification, to the recipients it recorded, listing the alerts it
    covers. Raises OSError (smtplib's errors among them) for the task to retry."""
    n = Notification.objects.select_related("rule").get(pk=notification_id)
    if not n.recipients:
        return 0
    alerts = list(n.alerts.select_related("rule").order_by("group_name", "subject_label"))
    sent = send_email(n, alerts, n.recipients)
    Notification.objects.filter(pk=n.pk).update(detail={**n.detail, "emailed": sent, "email_error": ""})
    return sent


def test_payload(endpoint: WebhookEndpoint) -> dict:
    return {"event": "test", "title": f"Test from the MDM console to {endpoint.name}", "severity": "info",
            "count": 0, "alerts": [], "sent_at": int(time.time())}


def active_endpoints():
    return WebhookEndpoint.objects.filter(Q(enabled=True))
