"""The shipped set-up serves APK downloads from nginx (X-Accel-Redirect), never through a web
worker, and stages uploads where the worker that parses them can read them."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()


def _location(prefix: str) -> str:
    match = re.search(r"location " + re.escape(prefix) + r" \{(.*?)\n *\}", NGINX, re.S)
    assert match, f"no location {prefix} in deploy/nginx.conf"
    return match.group(1)


def test_the_download_location_is_internal_and_points_at_the_media_volume():
    env = COMPOSE["x-app"]["environment"]
    prefix = env["APK_ACCEL_REDIRECT_PREFIX"]
    block = _location(prefix)
    assert "internal;" in block
    media = env["STORAGE_URL"].split("file://")[-1].rstrip("}").rstrip("/")
    assert f"alias {media}/;" in block
    assert "$upstream_http_x_checksum_sha256" in block and "$upstream_http_etag" in block


def test_the_proxy_mounts_the_media_volume_read_only():
    assert "media:/data/media:ro" in [v.split("   ")[0].strip() for v in COMPOSE["services"]["proxy"]["volumes"]]


def test_uploads_are_staged_on_a_volume_every_app_container_shares():
    env = COMPOSE["x-app"]["environment"]
    assert f"uploads:{env['APK_UPLOAD_DIR']}" in COMPOSE["x-app"]["volumes"]
    assert "uploads" in COMPOSE["volumes"]


def test_upload_bodies_are_not_buffered_by_nginx():
    assert "proxy_request_buffering off;" in _location("/api/v1/uploads/")
