"""A real server process for tests that need one (browsers, WebSockets, the agent, storms):
daphne serving mdm.asgi against the test database, started and stopped by a fixture."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, env: dict, port: int | None = None, log_path: Path | None = None, wsgi: bool = False):
        """wsgi: serve with granian (the production `web` server, which streams request bodies
        to the app) instead of daphne (which reads a whole body before the view runs)."""
        self.wsgi = wsgi
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}"}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "LiveServer":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        bin_dir = Path(sys.executable).parent
        argv = ([str(bin_dir / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                 "--blocking-threads", "4", "mdm.wsgi:application"] if self.wsgi
                else [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "mdm.asgi:application"])
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"live server exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("live server did not become healthy in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def env_for_test_database(settings) -> dict:
    """Environment that points a child process at the database this test runs against."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {"DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL, "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY}


DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


def save_screenshot(page, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    """Always taken (the page must render); copied over docs/screenshots/ only with
    UPDATE_SCREENSHOTS=1, so an ordinary test run leaves the committed images alone."""
    import shutil

    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / name)
    return path
