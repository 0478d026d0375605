"""Password reset end to end through a real SMTP server (aiosmtpd) listening on localhost. The
mail is queued on commit and sent by a Celery task (run inline here: eager_celery)."""

import re
import time


def test_the_reset_mail_arrives_and_its_link_works_exactly_once(client, viewer_user, smtp, eager_celery, capture_on_commit):
    with capture_on_commit(execute=True):
        response = client.post("/accounts/password-reset/", {"email": viewer_user.email})
    assert response.status_code == 302

    (recipients, mail), = smtp.wait_for(1)
    assert recipients == [viewer_user.email]
    assert mail["Subject"] == "Reset your MDM password"
    body = mail.get_payload(decode=True).decode()
    link = re.search(r"http://console\.example(/accounts/reset/\S+/)", body).group(1)

    # Django swaps the token for a session marker and redirects to the set-password form.
    form_url = client.get(link)["Location"]
    assert client.get(form_url).context["validlink"] is True
    done = client.post(form_url, {"new_password1": "brand-New-passphrase-9", "new_password2": "brand-New-passphrase-9"})
    assert done.status_code == 302
    viewer_user.refresh_from_db()
    assert viewer_user.check_password("brand-New-passphrase-9")

    # The same link again: refused.
    client.logout()
    again = client.get(link, follow=True)
    assert again.context["validlink"] is False
    assert b"already used or has expired" in again.content


def test_a_link_expires(client, viewer_user, smtp, settings, eager_celery, capture_on_commit):
    import time_machine

    with capture_on_commit(execute=True):
        client.post("/accounts/password-reset/", {"email": viewer_user.email})
    (_, mail), = smtp.wait_for(1)
    link = re.search(r"http://console\.example(/accounts/reset/\S+/)", mail.get_payload(decode=True).decode()).group(1)
    with time_machine.travel(time.time() + settings.PASSWORD_RESET_TIMEOUT + 60):
        response = client.get(link, follow=True)
    assert response.context["validlink"] is False


def test_an_unknown_address_sends_nothing_and_reveals_nothing(client, db, smtp, eager_celery, capture_on_commit):
    with capture_on_commit(execute=True) as queued:
        response = client.post("/accounts/password-reset/", {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert queued == []  # no mail queued: nothing can reach the SMTP server later
    assert smtp.messages == []
