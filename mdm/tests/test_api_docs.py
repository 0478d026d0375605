"""/api/schema/ and /api/docs/ are for signed-in users (JWT or session); Swagger UI is served from
our own static files (drf-spectacular-sidecar), and nothing anywhere loads from a CDN."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/docs/?script="])
def test_an_outsider_gets_neither_the_schema_nor_the_docs(anon_api, db, path):
    response = anon_api.get(path)
    assert response.status_code == 401
    assert b"/api/v1/" not in response.content and b"swagger" not in response.content.lower()


def test_a_jwt_user_reads_the_schema(viewer_api):
    response = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and any(p.startswith("/api/v1/commands") for p in response.json()["paths"])


def test_the_docs_page_loads_swagger_ui_from_static_files_only(client, viewer_user):
    client.force_login(viewer_user)
    page = client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/static/") or s.startswith("/api/docs/") for s in sources), sources
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in sources
    assert "<style" not in page and re.search(r"<script(?![^>]*\bsrc=)", page) is None  # CSP: no inline code
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"/api/schema/" in script.content
    for source in sources:
        if source.startswith("/static/"):
            assert client.get(source).status_code == 200, source


def test_no_template_script_or_setting_loads_anything_from_another_host():
    external = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import\s+url\(["']?(?:https?:)?//|\burl\(["']?https?://""")
    offenders = []
    for base in ("templates", "static/js", "static/css"):
        for path in (ROOT / base).rglob("*"):
            if path.is_file() and path.suffix in (".html", ".js", ".css") and external.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    from django.conf import settings

    assert settings.SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"] == "SIDECAR"
    assert settings.SPECTACULAR_SETTINGS["SWAGGER_UI_FAVICON_HREF"] == "SIDECAR"
