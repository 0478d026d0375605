"""scripts/publish_apk.py, the agent workflow's publishing step, run as CI runs it against a live
server: the release lands with the channel and notes given; the same version again is refused
with the server's reason and a non-zero exit; without a key it stops before sending anything."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apks.tests.conftest import apk
from apks.tests.test_tus_client import apk_server  # noqa: F401  (the live server fixture)

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "publish_apk.py"


def run(server_url: str, key: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MDM_PUBLISH_URL": server_url, "MDM_PUBLISH_API_KEY": key}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def test_ci_publishes_a_build_and_a_repeat_is_refused(apk_server, admin_user):  # noqa: F811
    from accounts import services
    from apks.models import Release

    key = services.create_api_key(actor=admin_user, name="github", scopes=["apk:upload"]).raw
    done = run(apk_server.url, key, "--channel", "beta", "--notes", "build 42", str(apk("app-v11")))
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    release = Release.objects.get(pk=body["release"]["id"])
    assert (release.version_code, release.channel, release.notes, release.uploaded_via) == (11, "beta", "build 42", "ci")

    again = run(apk_server.url, key, str(apk("app-v11")))
    assert again.returncode == 1 and json.loads(again.stdout)["state"] == "refused"
    assert Release.objects.count() == 1

    assert run(apk_server.url, "", str(apk("app-v11"))).returncode == 2
