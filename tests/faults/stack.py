"""The production set-up on this machine, for the fault tests: the `web` (granian, WSGI), `worker`,
`dispatcher` and `beat` services of docker-compose.yml, each started with the command the compose
file gives it (read from the file, as `make bench` does: bench/run.py), against a private
PostgreSQL and a private Redis (tests/faults/private.py), and the FCM stand-in (loadtest/fcm_standin.py)
in place of Google. Each process runs in a session of its own, so a kill takes it with its children
(granian's and Celery's pool processes), as a container's does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.run import compose_command, compose_web_command
from loadtest.fcm_standin import StandinClient
from tests.faults.private import PrivatePostgres, PrivateRedis
from tests.live import ROOT, free_port

DATABASE = "mdm_faults"
ADMIN = ("faults-admin", "faults-Passphrase-14")
METRICS_TOKEN = "faults-metrics-token-0123456789"
SERVICES = ("standin", "web", "worker", "dispatcher", "beat")
# What each service prints once it serves (Celery workers and beat log it at INFO).
READY_LINES = {"worker": "ready.", "dispatcher": "ready.", "beat": "beat: Starting..."}


class Stack:
    def __init__(self, work: Path):
        self.work = work
        self.pg = PrivatePostgres()
        self.redis = PrivateRedis()
        self.web_port, self.standin_port = free_port(), free_port()
        # The Celery services' own /metrics (compose: METRICS_PORT 9100 in each container).
        self.metrics_ports = {"worker": free_port(), "dispatcher": free_port()}
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.standin_url = f"http://127.0.0.1:{self.standin_port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.starts: dict[str, int] = {}
        self.enroll_key = ""
        self.jwt = ""
        self.standin: StandinClient | None = None
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        self.held: set[str] = set()  # killed or stopped on purpose: not restarted by supervision
        self.exits: list[tuple[str, int]] = []  # services that exited on their own, with their exit code
        self._lock = threading.Lock()

    # --- environment ---------------------------------------------------------------------------
    def env(self, service: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_ALLOW"))}
        env.update({
            "DATABASE_URL": self.pg.url(DATABASE),
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "faults-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "CACHE_PREFIX": "faults",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PUBLIC_BASE_URL": self.base_url,
            "FCM_ENABLED": "true",
            "FCM_CREDENTIALS_FILE": str(self.work / "fcm-standin.json"),
            "FCM_PROJECT_ID": "mdm-standin",
            "FCM_SEND_URL": f"{self.standin_url}/v1/projects/mdm-standin/messages:send",
            "MDM_VAR_DIR": str(self.work / "var"),
            "DJANGO_SETTINGS_MODULE": "mdm.settings",
            # The web's request log is one line per heartbeat; the Celery processes log at INFO
            # (their "ready." line is how the tests know they serve).
            "LOG_LEVEL": "WARNING" if service == "web" else "INFO",
            # The services run as in production: without the dev tools (loadtest/); only the FCM
            # stand-in, one of them, has them.
            "DEV_TOOLS": "1" if service == "standin" else "0",
            "METRICS_TOKEN": METRICS_TOKEN,
            "METRICS_PORT": str(self.metrics_ports.get(service, 0)),
        })
        if service in SERVICES:
            # As compose runs them: each service's processes write their metrics to a directory of
            # its own (a tmpfs there: emptied at each start, see _spawn), scraped with the token.
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir(service))
        return env

    def metrics_dir(self, service: str) -> Path:
        return self.work / "metrics" / service

    def scrape(self, service: str) -> str:
        """GET /metrics of a service with the token, on a new connection (one of web's processes)."""
        url = (self.base_url if service == "web" else f"http://127.0.0.1:{self.metrics_ports[service]}") + "/metrics"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        assert answer.status_code == 200, (service, answer.status_code, answer.text[:200])
        return answer.text

    def argv(self, service: str) -> list[str]:
        if service == "standin":
            return [sys.executable, "-m", "loadtest.fcm_standin", "--port", str(self.standin_port), "--project-id", "mdm-standin",
                    "--write-credentials", str(self.work / "fcm-standin.json")]
        if service == "web":
            return compose_web_command(self.web_port)
        return compose_command(service)

    # --- set-up ---------------------------------------------------------------------------------
    def set_up(self) -> "Stack":
        """The databases, migrations, an admin and an enrollment key, then every service."""
        (self.work / "var").mkdir(parents=True, exist_ok=True)
        self.pg.init().start()
        self.pg.execute("CREATE ROLE mdm LOGIN PASSWORD 'mdm' SUPERUSER")
        self.pg.execute(f"CREATE DATABASE {DATABASE} OWNER mdm")
        self.redis.start()
        self._manage("migrate", "--noinput", "-v", "0")
        created = self._manage("shell", "-c", _SETUP.format(username=ADMIN[0], password=ADMIN[1]))
        self.enroll_key = json.loads(created.strip().splitlines()[-1])["key"]
        for service in SERVICES:  # all at once, then each awaited: they start side by side
            self._spawn(service)
        for service in SERVICES:
            self.wait_ready(service, timeout=120)
        self.standin = StandinClient(self.standin_url, timeout=30)
        answer = self.http.post("/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]})
        answer.raise_for_status()
        self.jwt = answer.json()["access"]
        return self

    def _manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env("setup"), capture_output=True,
                                text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-2000:]}")
        return result.stdout

    def tear_down(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for service in SERVICES:
            self.stop(service)  # waits for each, and kills what does not end in time
        self.http.close()
        self.redis.destroy()
        self.pg.destroy()

    # --- processes ------------------------------------------------------------------------------
    def start(self, service: str, timeout: float = 60) -> None:
        self._spawn(service)
        self.wait_ready(service, timeout)

    def _spawn(self, service: str) -> None:
        shutil.rmtree(self.metrics_dir(service), ignore_errors=True)  # a container's tmpfs starts empty
        self.metrics_dir(service).mkdir(parents=True)
        self.starts[service] = self.starts.get(service, 0) + 1
        log = self.work / f"{service}-{self.starts[service]}.log"
        self.logs[service] = log
        self.procs[service] = subprocess.Popen(self.argv(service), cwd=ROOT, env=self.env(service), stdout=open(log, "ab"),
                                               stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, service: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[service].poll() is not None:
                raise RuntimeError(f"{service} exited with {self.procs[service].returncode}:\n{self.tail(service)}")
            if self._ready(service):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{service} not ready after {timeout:g} s:\n{self.tail(service)}")

    def _ready(self, service: str) -> bool:
        if service in READY_LINES:
            return READY_LINES[service] in self.logs[service].read_text(errors="replace")
        url = self.base_url + "/readyz" if service == "web" else self.standin_url + "/healthz"
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, service: str) -> None:
        """SIGKILL to the service's whole process group: no goodbye, no task acknowledged. It stays
        down until the test starts it again."""
        with self._lock:
            self.held.add(service)
            proc = self.procs.get(service)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def start_again(self, service: str, timeout: float = 60) -> None:
        with self._lock:
            self.held.discard(service)
            self.start(service, timeout)

    @contextmanager
    def supervised(self):
        """docker-compose.yml's `restart: unless-stopped`: a service that exits by itself is started
        again at once (and noted in `exits`); one the test killed stays down until it restarts it."""
        stop = threading.Event()

        def watch():
            while not stop.wait(0.3):
                with self._lock:
                    for service in SERVICES:
                        proc = self.procs.get(service)
                        if service not in self.held and proc is not None and proc.poll() is not None:
                            self.exits.append((service, proc.returncode))
                            self._spawn(service)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            stop.set()
            watcher.join()

    def stop(self, service: str) -> None:
        proc = self.procs.get(service)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(service)

    def alive(self, service: str) -> bool:
        proc = self.procs.get(service)
        return proc is not None and proc.poll() is None

    def tail(self, service: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.logs[service].read_text(errors="replace").splitlines()[-lines:])
        except (KeyError, OSError):
            return "(no log)"

    # --- reading and driving the system ----------------------------------------------------------
    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.http.request(method, path, headers={"Authorization": f"Bearer {self.jwt}"}, **kwargs)

    def issue(self, device_ids: list[str], type: str = "ping", params: dict | None = None) -> str:
        answer = self.admin("POST", "/api/v1/commands", json={"type": type, "params": params or {}, "target": {"device_ids": device_ids}})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.pg.connect(DATABASE) as conn:
            return conn.execute(query, params).fetchall()

    def readyz(self) -> int:
        try:
            return self.http.get("/readyz", timeout=5).status_code
        except httpx.HTTPError:
            return 0


# Run once by `manage.py shell -c` against the private database: an admin for the API, and an
# enrollment key for the fleets the tests enroll (no use cap).
_SETUP = """
import json
from accounts.models import User
from enrollment import services
admin = User.objects.create_superuser("{username}", "faults@example.test", "{password}", role="admin")
print(json.dumps({{"key": services.create_enrollment_key(actor=admin, name="faults").raw}}))
"""
