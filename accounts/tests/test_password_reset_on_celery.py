"""The password-reset mail leaves through Celery: the request only queues it, on commit, so a
slow SMTP server never holds the answer; the worker retries SMTP failures; the answer is the same
whether or not an account uses the address."""

from unittest import mock

import pytest
from aiosmtpd.controller import Controller

from accounts import tasks
from tests.live import free_port
from tests.smtp import Inbox

URL = "/accounts/password-reset/"


def test_the_request_queues_the_mail_on_commit_and_sends_nothing_itself(client, viewer_user, capture_on_commit, mailoutbox):
    with mock.patch.object(tasks.send_password_reset_email, "delay") as delay:
        with capture_on_commit(execute=False) as queued:
            response = client.post(URL, {"email": viewer_user.email.upper()})
            assert response.status_code == 302
            delay.assert_not_called()  # nothing handed to the broker, let alone to SMTP, before commit
        assert mailoutbox == []
        assert len(queued) == 1
        queued[0]()
    delay.assert_called_once_with(user_id=str(viewer_user.pk), email=viewer_user.email.upper())


def test_a_known_and_an_unknown_address_get_the_same_answer(client, viewer_user, capture_on_commit):
    with capture_on_commit(execute=False) as queued_known:
        known = client.post(URL, {"email": viewer_user.email})
    with capture_on_commit(execute=False) as queued_unknown:
        unknown = client.post(URL, {"email": "nobody@example.test"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (302, "/accounts/password-reset/sent/")
    assert known.content == unknown.content
    assert (len(queued_known), len(queued_unknown)) == (1, 0)


def test_a_broker_that_is_down_is_answered_like_an_unknown_address(client, viewer_user, capture_on_commit):
    with mock.patch.object(tasks.send_password_reset_email, "delay", side_effect=ConnectionError("broker down")):
        with capture_on_commit(execute=True):
            response = client.post(URL, {"email": viewer_user.email})
    assert (response.status_code, response["Location"]) == (302, "/accounts/password-reset/sent/")


class RefusesFirst(Inbox):
    """An SMTP server that answers its first message with a temporary failure (451)."""

    def __init__(self):
        super().__init__()
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.attempts == 1:
            return "451 Try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp(settings):
    inbox = RefusesFirst()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.PUBLIC_BASE_URL = "http://console.example"
    yield inbox
    controller.stop()


@pytest.fixture
def worker_like_retries(eager_celery):
    """Eager tasks that retry as a worker does (the retry runs at once, its countdown skipped)
    instead of raising Retry to the caller (CELERY_TASK_EAGER_PROPAGATES)."""
    from mdm.celery import app

    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = before


def test_an_smtp_failure_is_retried_and_the_mail_arrives_once(client, viewer_user, flaky_smtp, worker_like_retries, capture_on_commit):
    with capture_on_commit(execute=True):
        assert client.post(URL, {"email": viewer_user.email}).status_code == 302
    (recipients, mail), = flaky_smtp.wait_for(1)
    assert flaky_smtp.attempts == 2
    assert recipients == [viewer_user.email]
    assert "http://console.example/accounts/reset/" in mail.get_payload(decode=True).decode()


def test_the_retry_policy_covers_smtp_and_connection_errors():
    import smtplib

    task = tasks.send_password_reset_email
    assert issubclass(smtplib.SMTPException, task.autoretry_for) and issubclass(ConnectionRefusedError, task.autoretry_for)
    assert task.retry_backoff and task.max_retries >= 3


def test_the_worker_sends_nothing_to_an_account_that_no_longer_matches(viewer_user, mailoutbox):
    asked_for = viewer_user.email
    viewer_user.email = "moved@example.test"
    viewer_user.save(update_fields=["email"])
    assert tasks.send_password_reset_email(user_id=str(viewer_user.pk), email=asked_for) is False

    viewer_user.email, viewer_user.is_active = asked_for, False
    viewer_user.save(update_fields=["email", "is_active"])
    assert tasks.send_password_reset_email(user_id=str(viewer_user.pk), email=asked_for) is False
    assert mailoutbox == []


def test_the_worker_makes_a_link_that_works(client, viewer_user, mailoutbox, settings):
    settings.PUBLIC_BASE_URL = "http://console.example"
    assert tasks.send_password_reset_email(user_id=str(viewer_user.pk), email=viewer_user.email) is True
    (mail,) = mailoutbox
    assert mail.subject == "Reset your MDM password" and mail.to == [viewer_user.email]
    link = mail.body.split("http://console.example", 1)[1].split()[0]
    form_url = client.get(link)["Location"]
    assert client.get(form_url).context["validlink"] is True
