"""Celery tasks of alerting: thin, claim their work, call a service."""

import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from mdm import redis_client
from mdm.alerts import delivery, kinds, notify, services


@shared_task(ignore_result=True, expires=10)
def evaluate() -> dict:
    """The periodic sweep (every ALERT_SWEEP_S): every rule, then the notifications due."""
    counts = services.run_cycle()
    counts["sent"] = send_due()
    return counts


FAMILIES = {
    "devices": [k for k, kind in kinds.KINDS.items() if kind.subject == "device"],
    "commands": ["command_failure_rate"],
}


@shared_task(ignore_result=True, expires=10)
def evaluate_family(family: str) -> dict:
    """The flushes' nudge (mdm.nudge): the rules fed by what just landed, at once."""
    if family not in FAMILIES:
        return {}
    counts = services.run_cycle(kinds=FAMILIES[family])
    counts["sent"] = send_due()
    return counts


@shared_task(ignore_result=True, expires=120)
def send_due_notifications() -> int:
    return send_due()


TIMER_MIN_S = 0.5  # timers at most this often per kind


def look_again_at(kind: str, when) -> bool:
    """services.look_again_at (installed by AlertsConfig.ready): evaluate `kind`'s rules at
    `when` (not sooner than TIMER_MIN_S from now). One timer per kind: a later one is not set
    while an earlier one waits (Redis holds its time). Nothing without Redis or with eager tasks
    (the embedded default's in-process sweep runs every ALERT_SWEEP_S)."""
    from celery import current_app

    client = redis_client.client()
    if client is None or current_app.conf.task_always_eager:
        return False
    now = time.time()
    at = max(when.timestamp(), now + TIMER_MIN_S)
    key = f"{settings.CACHE_PREFIX}:alerts:timer:{kind}"
    pending = client.get(key)
    if pending is not None and now < float(pending) <= at:
        return False  # an earlier (or the same) look is already set
    client.set(key, str(at), px=int((at - now) * 1000) + 5000)
    # `expires` counts from now, not from the countdown: a timer minutes ahead must outlive it.
    evaluate_kind.apply_async(args=[kind], countdown=at - now, expires=at - now + 60)
    return True


@shared_task(ignore_result=True)
def evaluate_kind(kind: str) -> dict:
    """A timer's evaluation (look_again_at), then what is due is sent."""
    counts = services.run_cycle(kinds=[kind])
    counts["sent"] = send_due()
    return counts


def send_later(delay_s: float) -> None:
    """notify.send_later (installed by AlertsConfig.ready)."""
    send_due_notifications.apply_async(countdown=delay_s + 0.05)


def send_due() -> int:
    now = timezone.now()
    claimed = notify.claim_due(now)
    for n in claimed:
        send_notification.delay(str(n.pk))
    return len(claimed)


@shared_task(ignore_result=True, acks_late=True)
def send_notification(notification_id: str) -> dict:
    from mdm.alerts.models import Notification

    n = Notification.objects.select_related("rule").filter(pk=notification_id, state=Notification.State.SENDING).first()
    if n is None:
        return {"skipped": True}
    out = delivery.send(n, timezone.now())
    if out.get("emails"):
        send_notification_email.delay(str(n.pk))
    for pk in out.get("webhook_ids", []):
        deliver_webhook.delay(str(pk))
    out.pop("webhook_ids", None)
    return out


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=8)
def send_notification_email(self, notification_id: str) -> int:
    """One notification's e-mail; an SMTP server that is away or refuses is tried again with
    backoff (30 s doubling, at most 30 min apart), and the last error is kept on the notification."""
    from mdm.alerts.models import Notification

    try:
        return delivery.email_notification(notification_id)
    except OSError as exc:  # smtplib.SMTPException is an OSError; so are refused connections
        n = Notification.objects.filter(pk=notification_id).first()
        if n is not None:
            Notification.objects.filter(pk=n.pk).update(detail={**n.detail, "email_error": f"{type(exc).__name__}: {exc}"[:300]})
        raise self.retry(exc=exc, countdown=min(1800, 30 * 2 ** self.request.retries))


@shared_task(ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    return delivery.attempt(delivery_id)


@shared_task(ignore_result=True, expires=10)
def retry_webhooks() -> int:
    due = delivery.due_webhooks(timezone.now())
    for pk in due:
        delivery.attempt(pk)
    return len(due)


@shared_task(ignore_result=True, expires=30)
def worker_ping() -> None:
    """Runs on a worker: the server-health rule's proof that one is alive."""
    client = redis_client.client()
    if client is not None:
        client.set(kinds.worker_seen_key(), str(time.time()), ex=7 * 86400)
