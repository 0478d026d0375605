from pathlib import Path

from django.apps import apps
from django.contrib import admin

ROOT = Path(__file__).resolve().parents[2]
OUR_APPS = ("mdm", "accounts", "enrollment", "devices", "commands", "apks")


def test_the_openapi_schema_and_docs_are_served_to_a_signed_in_user(client, viewer_user):
    client.force_login(viewer_user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/auth/token" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_every_model_of_ours_is_in_the_django_admin():
    missing = [
        f"{m._meta.app_label}.{m.__name__}"
        for label in OUR_APPS
        for m in apps.get_app_config(label).get_models()
        if m not in admin.site._registry and not m._meta.auto_created
        and m.__name__ not in ("HeartbeatSample",)  # partitioned history: read through device pages
    ]
    assert missing == []


def test_a_superuser_can_open_every_admin_changelist(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.test", "x-Passphrase-1")
    client.force_login(user)
    for model in admin.site._registry:
        if model._meta.app_label in OUR_APPS:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            assert client.get(url).status_code == 200, url


def test_the_protocol_shipped_in_docs_is_the_normative_one():
    shipped = (ROOT / "docs" / "PROTOCOL.md").read_text()
    assert shipped.startswith("# Device protocol v1")
    normative = ROOT.parent / "shared" / "PROTOCOL.md"
    if normative.exists():  # beside every checkout of this workplace, and in CI
        assert shipped == normative.read_text()
