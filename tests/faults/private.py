"""Private PostgreSQL and Redis instances for the fault tests, which stop and kill them: the
machine's shared PostgreSQL (5432) and Redis (6379) are never touched.

PostgreSQL: a cluster of its own (initdb into a temporary directory, owned by the `postgres` user
when run as root, since initdb refuses root), on a free port, its socket in that directory.
Redis: `redis-server` on a free port with an append-only file fsynced on every write
(`appendfsync always`): a write Redis acknowledged survives a kill -9, so "lost" in these tests
means lost by the application, not by Redis' own durability settings (docker-compose.yml runs
`--appendonly yes`, fsync every second: there a crash may also drop the last second of writes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

from tests.live import free_port

def _pg_bin() -> Path:
    """PG_BIN, else the newest Debian PostgreSQL installed (/usr/lib/postgresql/<version>/bin)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mdm-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.superuser = "postgres"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_postgres(), *argv], check=True, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def init(self) -> "PrivatePostgres":
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-instructions")
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": 200,
            "shared_buffers": "'128MB'",
            "logging_collector": "off",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("".join(f"\n{k} = {v}" for k, v in settings.items()) + "\n")
        return self

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: what a restart by an operator or an orchestrator does (sessions are ended,
        in-flight transactions rolled back, a clean shutdown checkpoint)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        result = subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"], capture_output=True)
        return result.returncode == 0

    def url(self, database: str, user: str = "mdm", password: str = "mdm") -> str:
        return f"postgres://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.superuser, dbname=database, autocommit=autocommit)

    def execute(self, sql: str, database: str = "postgres") -> None:
        with self.connect(database) as conn:
            conn.execute(sql)

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            try:
                self.stop("immediate")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mdm-faults-redis-"))
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    # Loading the AOF answers LOADING errors first: ping succeeds only once it is done.
                    return
            except redis.RedisError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start ({self.root / 'redis.log'})")
            time.sleep(0.1)

    def kill(self) -> None:
        """kill -9: a crash (no shutdown save); with appendfsync always nothing acknowledged is lost."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
