"""Envelope signatures: the PROTOCOL.md vector, the shared vector file, per-device keys, and
what the reference verifier (the device's rules 1-2) refuses."""

import base64
import json

import pytest

from commands import signing, vectors
from commands.models import DeviceKey

PROTOCOL_KEY = "Z/qDkBDDIoAfb1cekNp8uxgFaUI60G+wcNL9FlKlr1I="
PROTOCOL_PAYLOAD = (
    '{"id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","device_id":"3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c",'
    '"seq":17,"type":"launch_app","params":{"package":"com.example.kiosk"},"issued_at":1764086400,'
    '"expires_at":1764090000}'
)
PROTOCOL_SIG = "a530b5c665335a6b529f1eecaa509bfc5bcb08e9e8e2a4afee7d855e882c9de8"
DEVICE = "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c"
KEYS = {"k1": base64.b64decode(PROTOCOL_KEY)}


def test_the_signer_reproduces_the_protocol_md_signature():
    assert signing.sign(base64.b64decode(PROTOCOL_KEY), PROTOCOL_PAYLOAD) == PROTOCOL_SIG
    payload = json.loads(PROTOCOL_PAYLOAD)
    assert signing.encode_payload(payload) == PROTOCOL_PAYLOAD


def test_the_protocol_md_vector_verifies_in_lower_and_upper_case():
    for sig in (PROTOCOL_SIG, PROTOCOL_SIG.upper()):
        envelope = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": sig}
        assert signing.verify(envelope, KEYS, device_id=DEVICE, server_now=1764086500)["seq"] == 17


def test_a_tampered_payload_is_a_bad_envelope():
    envelope = {"payload": PROTOCOL_PAYLOAD.replace("kiosk", "kiosx"), "kid": "k1", "sig": PROTOCOL_SIG}
    with pytest.raises(signing.BadEnvelope):
        signing.verify(envelope, KEYS, device_id=DEVICE, server_now=1764086500)


def test_an_unknown_kid_is_a_bad_envelope():
    envelope = {"payload": PROTOCOL_PAYLOAD, "kid": "k9", "sig": PROTOCOL_SIG}
    with pytest.raises(signing.BadEnvelope):
        signing.verify(envelope, KEYS, device_id=DEVICE, server_now=1764086500)


def test_past_expiry_plus_grace_is_rejected_as_expired():
    envelope = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": PROTOCOL_SIG}
    with pytest.raises(signing.Rejected) as caught:
        signing.verify(envelope, KEYS, device_id=DEVICE, server_now=1764090200)
    assert caught.value.reason == "expired"


def test_a_verified_envelope_for_another_device_is_rejected_as_wrong_device():
    envelope = {"payload": PROTOCOL_PAYLOAD, "kid": "k1", "sig": PROTOCOL_SIG}
    with pytest.raises(signing.Rejected) as caught:
        signing.verify(envelope, KEYS, device_id="9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d", server_now=1764086500)
    assert caught.value.reason == "wrong_device"


def test_the_committed_vector_file_is_what_the_signer_generates():
    assert vectors.VECTOR_FILE.exists(), "run commands.vectors.write() and commit the file"
    assert vectors.VECTOR_FILE.read_text(encoding="utf-8") == vectors.render()


@pytest.mark.parametrize("vector", vectors.build()["vectors"], ids=lambda v: v["name"])
def test_every_vector_in_the_file_behaves_as_it_says(vector):
    keys = signing.keyring(vectors.build()["keys"])
    run = lambda: signing.verify(vector["envelope"], keys, device_id=vector["device_id"], server_now=vector["server_time"])  # noqa: E731
    if vector["expect"] == "valid":
        run()
    elif vector["expect"] == "rejected":
        with pytest.raises(signing.Rejected) as caught:
            run()
        assert caught.value.reason == vector["reason"]
    else:
        with pytest.raises(signing.BadEnvelope):
            run()


def test_a_key_from_one_device_cannot_sign_for_another(sim_device):
    from commands.services import issue_command

    alice, bob = sim_device(), sim_device()
    issue_command(actor=None, type="ping", params={}, target={"device_ids": [alice.id, bob.id]})
    bob_envelope = bob.pull()["commands"][0]
    payload = json.loads(bob_envelope["payload"])
    assert payload["device_id"] == bob.id
    # Alice's key material, used under Bob's envelope: Bob cannot verify it.
    forged = signing.make_envelope(payload=payload, kid=bob_envelope["kid"], key=next(iter(alice.keys.values())))
    with pytest.raises(signing.BadEnvelope):
        bob.verify(forged, server_now=payload["issued_at"])
    # And Alice's own envelope, replayed to Bob, fails Bob's check too.
    alice_envelope = alice.pull()["commands"][0]
    with pytest.raises((signing.BadEnvelope, signing.Rejected)):
        bob.verify(alice_envelope, server_now=payload["issued_at"])
    assert alice.keys != bob.keys


def test_keys_are_stored_encrypted_and_never_printed(device):
    key = DeviceKey.objects.get(device=device.device, state="current")
    raw = next(iter(device.keys.values()))
    assert base64.b64encode(raw).decode() not in key.key_encrypted
    assert raw.hex() not in key.key_encrypted
    assert key.key == raw
    assert base64.b64encode(raw).decode() not in str(key) + repr(key)
