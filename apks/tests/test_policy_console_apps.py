"""The console's policy editor offers the APK registry's releases for the `apps` item (the
chooser apks registers with commands.policies.forms at start-up) and saves the one chosen."""

import pytest

from commands.policies.models import Policy

pytestmark = pytest.mark.django_db


def test_the_editor_lists_releases_and_requires_the_chosen_one(console_for, admin_user, release):
    client = console_for(admin_user)
    page = client.get("/commands/policies/new/").content.decode()
    assert release.package in page and f'<option value="{release.id}"' in page
    response = client.post("/commands/policies/new/", {
        "name": "With app", "item": ["apps", "kiosk"], "apps_required": ["", str(release.id)], "apps_blocked": "com.example.games",
        "kiosk_package": release.package, "kiosk_lock_task": "on"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    items = Policy.objects.get().current.items
    assert items["apps"]["required"][0]["apk_id"] == str(release.id) and items["apps"]["blocked"] == ["com.example.games"]
    detail = client.get(f"/commands/policies/{Policy.objects.get().pk}/").content.decode()
    assert f"Required: {release.package} (version code {release.version_code})" in detail
    assert "No device reports" not in detail  # the kiosk app is a required one: it will be installed


def test_a_package_both_required_and_blocked_is_shown_beside_the_blocked_list(console_for, admin_user, release):
    response = console_for(admin_user).post("/commands/policies/new/", {
        "name": "Both", "item": ["apps"], "apps_required": [str(release.id)], "apps_blocked": release.package},
        HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and f"{release.package} is also required." in response.content.decode()
    assert not Policy.objects.exists()
