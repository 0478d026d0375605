"""The Idempotency-Key fingerprint is keyed (issue 14, finding 8): what is stored cannot be
checked against a guessed body (a Wi-Fi password) without the server's secret, and fingerprints
stored before the change answer a retry 409, never with a second command."""

import hashlib
import json

from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from commands import services
from commands.models import Command

URL = "/api/v1/commands"
WIFI = {"type": "wifi_configure", "params": {"ssid": "Depot", "security": "wpa2", "password": "hunter2-depot"},
        "target": {"all": True}}


def _plain_sha256(body) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def test_the_stored_fingerprint_is_not_a_plain_hash_of_the_body(operator_api, enrolled_device):
    response = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-1")
    assert response.status_code == 201, response.content
    stored = Command.objects.get(pk=response.json()["id"]).request_hash
    assert len(stored) == 64 and stored != _plain_sha256(WIFI)
    assert "hunter2" not in stored


def test_the_fingerprint_depends_on_the_secret_key(settings):
    first = services.request_fingerprint(WIFI)
    settings.SECRET_KEY = "another-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
    assert services.request_fingerprint(WIFI) != first


@hsettings(max_examples=200)
@given(body=st.dictionaries(st.text(max_size=10), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                                                               lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                                                               max_leaves=10), max_size=5))
def test_the_fingerprint_is_stable_for_a_body_and_key_order(body):
    reordered = dict(reversed(list(body.items())))
    assert services.request_fingerprint(body) == services.request_fingerprint(reordered)
    assert services.request_fingerprint(body) != _plain_sha256(body)


def test_a_replay_with_the_same_body_still_answers_the_original(operator_api, enrolled_device):
    first = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-2")
    again = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-2")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    changed = operator_api.post(URL, {**WIFI, "params": {**WIFI["params"], "password": "other-pass"}}, format="json",
                                HTTP_IDEMPOTENCY_KEY="wifi-2")
    assert changed.status_code == 409 and changed.json()["code"] == "conflict"


def test_a_fingerprint_stored_before_the_change_answers_a_retry_409_not_a_second_command(operator_api, enrolled_device):
    """What migration 0004 leaves (a blanked fingerprint), and what an unmigrated plain one does."""
    first = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-3").json()["id"]
    for legacy in ("", _plain_sha256(WIFI)):
        Command.objects.filter(pk=first).update(request_hash=legacy)
        retry = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-3")
        assert retry.status_code == 409
    assert Command.objects.count() == 1


def test_the_migration_blanks_plain_fingerprints(operator_api, enrolled_device):
    import importlib

    from django.apps import apps

    forget = importlib.import_module("commands.migrations.0004_forget_plain_request_hashes").forget
    first = operator_api.post(URL, WIFI, format="json", HTTP_IDEMPOTENCY_KEY="wifi-4").json()["id"]
    Command.objects.filter(pk=first).update(request_hash=_plain_sha256(WIFI))
    forget(apps, None)
    assert list(Command.objects.values_list("request_hash", flat=True)) == [""]
