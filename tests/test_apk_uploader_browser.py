"""The APK uploader (static/apks/uploader.js, built from apks/uploader) in Debian's Chromium against
a real daphne, the real tus endpoint and the real parser, under the console's CSP: an upload cut
off mid-way is retried with backoff, waits while the browser is offline, survives a reload and
resumes from the server's offset (same bytes stored), and its release is listed on the page; a
refusal is shown with the server's words and a signer change is confirmed; no CSP violation."""

import base64
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from conftest import PASSWORD
from tests.live import LiveServer, env_for_test_database, save_screenshot
from tests.test_csp_browser import Watcher, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "apks"
CHUNK = 64 * 1024
# Set before the deferred bundle reads its mount point's data attributes: small chunks, so an APK
# of 1 MiB takes 17 PATCHes (the page's default is 5 MB).
SMALL_CHUNKS = f"""
new MutationObserver((_, observer) => {{
  const mount = document.getElementById("apk-uploader");
  if (mount) {{ mount.dataset.chunkSize = "{CHUNK}"; observer.disconnect(); }}
}}).observe(document, {{childList: true, subtree: true}});
"""


@pytest.fixture
def server(transactional_db, settings, tmp_path):
    """daphne with its own stored files and staged uploads under tmp_path; tasks run inline."""
    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "true",
           "STORAGE_URL": f"file://{tmp_path / 'media'}", "APK_UPLOAD_DIR": str(tmp_path / "uploads")}
    live = LiveServer(env, log_path=tmp_path / "live-server.log")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def big_apk(tmp_path) -> Path:
    """A real signed APK of about 1 MiB (16 chunks of 64 KiB), built by the fixtures' script."""
    out = tmp_path / "field-app-big.apk"
    subprocess.run(["bash", str(FIXTURES / "build.sh"), "big", str(out), "1", "4242"], check=True, capture_output=True)
    return out


@pytest.fixture
def admin(transactional_db):
    return UserFactory(username="ada-admin", role="admin", password=PASSWORD, is_staff=True, is_superuser=True)


DATA_TRANSFER = """(files) => {
  const transfer = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name));
  }
  return transfer;
}"""


def drop(page, *paths: Path):
    """Drag the files over the drop zone and drop them, as a file manager would."""
    files = [[p.name, base64.b64encode(p.read_bytes()).decode()] for p in paths]
    transfer = page.evaluate_handle(DATA_TRANSFER, files)
    zone = page.locator("#apk-uploader .drop-zone")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bdragging\b"))
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bdragging\b"))


def open_apk_page(page, url):
    page.goto(url + "/apks/")
    expect(page.locator("#apk-uploader input[type=file]")).to_be_visible()


class Uploads:
    """The tus requests the page sends (method, offset header), and PATCHes cut off on demand."""

    def __init__(self, page):
        self.requests = []
        self.pass_patches = None  # None: all go through; N: the first N go, the rest are cut off
        page.on("request", self._seen)
        page.route("**/api/v1/uploads/**", self._route)

    def _seen(self, request):
        if "/api/v1/uploads/" in request.url and not request.url.endswith(("/result", "/confirm-signer")):
            self.requests.append((request.method, request.headers.get("upload-offset")))

    def _route(self, route):
        if route.request.method == "PATCH" and self.pass_patches is not None:
            if self.pass_patches <= 0:
                route.abort("internetdisconnected")
                return
            self.pass_patches -= 1
        route.continue_()

    def methods(self, since=0):
        return [method for method, _ in self.requests[since:]]


def test_an_upload_cut_off_resumes_after_a_reload_and_its_release_is_listed(server, admin, big_apk, page):
    from apks.models import Release

    url = server.url
    watcher = Watcher(page)
    page.add_init_script(SMALL_CHUNKS)
    sign_in(page, url, "ada-admin")
    open_apk_page(page, url)
    uploads = Uploads(page)

    # Four chunks get through, then the connection is cut: the uploader retries with backoff.
    uploads.pass_patches = 4
    page.select_option("#apk-uploader select[name=channel]", "beta")
    page.fill("#apk-uploader textarea[name=notes]", "Cut off, then resumed")
    page.set_input_files("#apk-uploader input[type=file]", str(big_apk))
    item = page.locator("#apk-uploader li.upload").filter(has_text=big_apk.name)
    expect(item.locator(".upload-status")).to_contain_text(re.compile(r"Retrying in \d+ s \(attempt \d+ of 10\)"))
    assert uploads.methods()[:5] == ["POST", "PATCH", "PATCH", "PATCH", "PATCH"]

    # Offline: the upload waits, spending no attempt, and goes on (here: into the cut) when back.
    page.context.set_offline(True)
    expect(item).to_have_class(re.compile(r"\bupload-offline\b"))
    expect(page.locator("#apk-uploader [role=status]")).to_contain_text("Offline")
    page.context.set_offline(False)
    expect(item).to_have_class(re.compile(r"\bupload-(uploading|retrying)\b"))

    # A reload loses the page's state; the browser keeps the upload's URL, and the page lists it.
    page.reload()
    expect(page.locator("#apk-uploader .unfinished")).to_contain_text(big_apk.name)
    uploads.pass_patches = None
    before = len(uploads.requests)
    page.set_input_files("#apk-uploader input[type=file]", str(big_apk))
    item = page.locator("#apk-uploader li.upload").filter(has_text=big_apk.name)
    expect(item).to_have_class(re.compile(r"\bupload-done\b"), timeout=60_000)

    # Resumed, not restarted: a HEAD for the offset, then PATCHes from the fifth chunk on.
    after = uploads.requests[before:]
    assert after[0] == ("HEAD", None)
    assert "POST" not in [method for method, _ in after]
    assert after[1] == ("PATCH", str(4 * CHUNK))
    expect(page.locator("#apk-uploader .unfinished")).to_have_count(0)

    # The parsed metadata, the same bytes stored, and the release in the page's list.
    release = Release.objects.get()
    assert release.sha256 == hashlib.sha256(big_apk.read_bytes()).hexdigest()
    assert release.version_code == 4242 and release.channel == "beta"
    details = item.locator(".release-details")
    expect(details).to_contain_text("dev.mdm.bench")
    expect(details).to_contain_text("code 4242")
    expect(details).to_contain_text(release.sha256)
    expect(page.locator("#apk-uploader [role=status]")).to_contain_text("version code 4242")
    expect(page.locator("#release-list")).to_contain_text("dev.mdm.bench")  # refreshed on "apk-uploaded"

    assert watcher.problems() == []


def test_a_refusal_is_shown_and_a_signer_change_is_confirmed(server, admin, page, tmp_path):
    from apks.models import Release

    url = server.url
    watcher = Watcher(page)
    sign_in(page, url, "ada-admin")
    open_apk_page(page, url)
    chooser = page.locator("#apk-uploader input[type=file]")

    # Two files dropped at once: the APK is released, the other is refused in the browser.
    drop(page, FIXTURES / "app-v10.apk", FIXTURES / "build.sh")
    first = page.locator("#apk-uploader li.upload").filter(has_text="app-v10.apk")
    expect(first).to_have_class(re.compile(r"\bupload-done\b"), timeout=30_000)
    expect(first.locator(".release-details")).to_contain_text("com.example.fieldapp")
    expect(page.locator("#apk-uploader li.upload").filter(has_text="build.sh")).to_contain_text("only .apk files")

    # The same version again: refused, with the server's detail.
    first.get_by_role("button", name="Dismiss app-v10.apk").click()
    chooser.set_input_files(str(FIXTURES / "app-v10.apk"))
    again = page.locator("#apk-uploader li.upload").filter(has_text="app-v10.apk")
    expect(again).to_have_class(re.compile(r"\bupload-refused\b"), timeout=30_000)
    expect(again.locator(".upload-refusal")).to_contain_text(re.compile(r"version", re.I))
    expect(again.get_by_role("button", name="Confirm signer change")).to_have_count(0)
    expect(page.locator("#apk-uploader [role=status]")).to_contain_text("app-v10.apk refused")

    # Another signer: refused until an admin confirms, then released.
    chooser.set_input_files(str(FIXTURES / "app-v13-signer-b.apk"))
    signer = page.locator("#apk-uploader li.upload").filter(has_text="app-v13-signer-b.apk")
    expect(signer).to_have_class(re.compile(r"\bupload-refused\b"), timeout=30_000)
    signer.get_by_role("button", name="Confirm signer change").click()
    expect(signer).to_have_class(re.compile(r"\bupload-done\b"), timeout=30_000)
    expect(signer.locator(".release-details")).to_contain_text("code 13")
    assert sorted(Release.objects.values_list("version_code", flat=True)) == [10, 13]
    expect(page.locator("#release-list")).to_contain_text("1.3")  # refreshed on "apk-uploaded"
    save_screenshot(page, tmp_path, "apk-uploader.png")


    assert watcher.problems() == []


def test_the_drop_zone_is_a_real_file_input_reached_by_the_keyboard(server, admin, page):
    url = server.url
    # Listening from the start turns on Chromium's file-chooser interception before any key is
    # pressed (enabled only by expect_file_chooser, it can come after the press).
    choosers = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    sign_in(page, url, "ada-admin")
    open_apk_page(page, url)
    chooser = page.locator("#apk-uploader input[type=file]")
    expect(chooser).to_have_attribute("multiple", "")
    expect(page.get_by_label("Drop APK files here, or choose them")).to_have_count(1)
    page.locator("#apk-uploader select[name=channel]").focus()
    for _ in range(5):
        if page.evaluate("document.activeElement && document.activeElement.type") == "file":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement && document.activeElement.type") == "file"
    status = page.locator("#apk-uploader [role=status]")
    expect(status).to_have_attribute("aria-live", "polite")
    # Enter on the focused input opens the file chooser (the page gets the chooser event).
    with page.expect_file_chooser() as chooser_info:
        page.keyboard.press("Enter")
    assert chooser_info.value.is_multiple()
    assert chooser_info.value.element.evaluate("(input) => input.closest('#apk-uploader') !== null")
