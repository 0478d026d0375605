"""The policy's `apps` item from the APK registry (the resolver apks registers with
commands.policies.items at start-up) and the download rule it opens: a device may download a
release its current policy requires (apks.downloads.policy_requires), and retention keeps it."""

import json

import pytest

from apks.downloads import may_download, policy_requires
from apks.services.retention import protected_releases
from commands.params import ParamsError
from commands.policies import services as policies

pytestmark = pytest.mark.django_db


def test_required_apps_are_taken_from_the_release(admin_user, release):
    policy = policies.create_policy(actor=admin_user, name="apps", items={
        "apps": {"required": [{"apk_id": str(release.id)}], "blocked": ["com.example.games"]}})
    assert policy.current.items["apps"] == {
        "required": [{"package": release.package, "apk_id": str(release.id), "version_code": release.version_code,
                      "sha256": release.sha256, "size": release.size}],
        "blocked": ["com.example.games"]}


def test_an_unknown_release_or_a_required_package_also_blocked_is_refused(admin_user, release):
    with pytest.raises(ParamsError) as caught:
        policies.create_policy(actor=admin_user, name="x", items={"apps": {"required": ["7c9e6679-7425-40de-944b-e07fc1f90ae7"]}})
    assert "items.apps.required[0].apk_id" in caught.value.errors
    with pytest.raises(ParamsError) as caught:
        policies.create_policy(actor=admin_user, name="y", items={"apps": {"required": [str(release.id)], "blocked": [release.package]}})
    assert "items.apps.blocked[0]" in caught.value.errors


def test_a_device_whose_policy_requires_the_release_may_download_it(client, admin_user, release, enrolled_device, other_enrolled_device):
    device = enrolled_device.device
    assert not policy_requires(device_id=device.pk, release=release)
    assert client.get(f"/api/v1/device/apks/{release.id}/download", **enrolled_device.auth).status_code == 404
    policy = policies.create_policy(actor=admin_user, name="apps", items={"apps": {"required": [str(release.id)]}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [str(device.pk)]})
    assert policy_requires(device_id=device.pk, release=release) and may_download(device_id=device.pk, release=release)
    assert client.get(f"/api/v1/device/apks/{release.id}/download", **enrolled_device.auth).status_code == 200
    # Another device, without that policy, still may not.
    assert client.get(f"/api/v1/device/apks/{release.id}/download", **other_enrolled_device.auth).status_code == 404
    # The device's pulled policy names the release, and retention keeps it.
    document = json.loads(client.get("/api/v1/device/policy", **enrolled_device.auth).json()["policy"])
    assert document["items"]["apps"]["required"][0]["apk_id"] == str(release.id)
    assert str(release.id) in protected_releases()
