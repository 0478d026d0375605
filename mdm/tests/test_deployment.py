"""docker-compose.yml cannot run here (no Docker engine); these keep it honest: every command
points at something that exists in this repo and uses only flags its program knows."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = [name for name, svc in COMPOSE["services"].items() if svc.get("image") == "mdm:latest"]


def _module_file(dotted: str) -> bool:
    return (ROOT / (dotted.replace(".", "/") + ".py")).exists() or importlib.util.find_spec(dotted) is not None


def test_compose_has_the_production_processes():
    assert {"postgres", "redis", "web", "sync", "console", "ws", "worker", "dispatcher", "beat", "migrate", "proxy"} <= set(COMPOSE["services"])


def test_every_queue_a_task_is_routed_to_has_a_worker():
    from django.conf import settings

    def queues(service):
        command = COMPOSE["services"][service]["command"]
        return set(command[command.index("--queues") + 1].split(","))

    consumed = set().union(*(queues(n) for n, svc in COMPOSE["services"].items() if "worker" in svc.get("command", [])[:4]))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {"celery"}
    assert routed <= consumed
    assert queues("dispatcher") == {"push"} and "push" not in queues("worker")
    assert {"pgdata", "redisdata", "media"} <= set(COMPOSE["volumes"])
    assert (ROOT / "Dockerfile").exists()


@pytest.mark.parametrize("name", [n for n in COMPOSE["services"] if n not in ("migrate", "beat")])
def test_every_long_running_service_has_a_health_check(name):
    assert COMPOSE["services"][name].get("healthcheck", {}).get("test")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_command_points_at_code_in_this_repo(name):
    command = COMPOSE["services"][name]["command"]
    program, args = command[0], command[1:]
    assert (VENV_BIN / program).exists() or program == "python", f"{program} is not installed by requirements.txt"
    for arg in args:
        if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+:[a-z_]+", arg):  # module:attribute
            module, attribute = arg.split(":")
            assert _module_file(module), arg
            assert attribute in (ROOT / (module.replace(".", "/") + ".py")).read_text()
        if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+:[A-Za-z_]+", arg) and "schedulers" in arg:
            assert _module_file(arg.split(":")[0]), arg
    if "-A" in args:
        assert (ROOT / args[args.index("-A") + 1] / "celery.py").exists()
    if "manage.py" in args:
        assert (ROOT / "manage.py").exists()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_flag_is_one_its_program_knows(name):
    command = COMPOSE["services"][name]["command"]
    if command[0] == "python":
        return
    subcommand = [a for a in command[1:4] if a in ("worker", "beat")]
    base = [str(VENV_BIN / command[0])] + (["-A", "mdm"] if command[0] == "celery" else []) + subcommand
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mdm.settings"}
    helptext = subprocess.run(base + ["--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    for flag in (a for a in command if a.startswith("--")):
        assert flag in helptext, f"{name}: {flag} unknown to {command[0]}"


def test_bind_mounts_exist():
    for svc in COMPOSE["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_check_deploy_passes_with_production_values(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DJANGO_SETTINGS_MODULE": "mdm.settings",
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "Zq8$Lm2!vR7#pW4^nX9&bT3*" + "j" * 20,
        "ALLOWED_HOSTS": "mdm.example.com",
        "SECURE_SSL": "true",
        "PUBLIC_BASE_URL": "https://mdm.example.com",
        "MDM_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_every_model_change_has_its_migration(db):
    """`migrate` in a deployment builds what the migrations say, not what the models say: a model
    change committed without its migration would pass every test that creates rows through the
    ORM and fail on the first upgrade."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}")
    assert "No changes detected" in out.getvalue()


def test_createsuperuser_noinput_uses_the_standard_variables(settings, transactional_db):
    from tests.live import env_for_test_database

    env = {
        **os.environ,
        **env_for_test_database(settings),
        "DJANGO_SUPERUSER_USERNAME": "root-admin",
        "DJANGO_SUPERUSER_EMAIL": "root@example.test",
        "DJANGO_SUPERUSER_PASSWORD": "a-long-Passphrase-1",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    from accounts.models import User

    user = User.objects.get(username="root-admin")
    assert user.is_superuser and user.check_password("a-long-Passphrase-1") and user.effective_role == "admin"


def test_ensure_admin_creates_the_first_admin_once(db, capsys, settings, tmp_path):
    from django.core.management import call_command

    from accounts.models import User

    settings.VAR_DIR = tmp_path
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "username: admin" in first
    password = re.search(r"password: (\S+)", first).group(1)
    assert User.objects.get(username="admin").check_password(password)
    call_command("ensure_admin")
    again = capsys.readouterr().out
    assert "existing account" in again and str(tmp_path / "initial-admin.txt") in again  # where its password is
    assert User.objects.count() == 1


@pytest.mark.live
def test_the_web_command_keeps_answering_with_a_fleet_of_keep_alive_connections_open(tmp_path):
    """granian's --backpressure caps the connections a worker accepts, idle keep-alives included.
    Its default (backlog/workers = 512 per worker) left a new connection unanswered for ~55 s
    once the bench fleet held 1,000 keep-alives open. With 1,500 held open, the shipped command
    must still answer a newcomer (a device enrolling, an admin's POST)."""
    import resource
    import socket
    import time

    from tests.live import free_port

    resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2)
    port = free_port()
    command = list(COMPOSE["services"]["web"]["command"])
    command[0] = str(VENV_BIN / command[0])
    command[command.index("--host") + 1], command[command.index("--port") + 1] = "127.0.0.1", str(port)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"MDM_VAR_DIR": str(tmp_path), "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "mdm.settings"})
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def ask(sock):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]

    held = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                    if ask(probe).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "granian did not start"
                time.sleep(0.3)
        for _ in range(1500):  # keep-alive connections, each served once and then left open
            # 10 s per answer: past the cap a connection waits for a slot (~30-55 s here).
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(sock)
            sock.sendall(request)
        for sock in held:
            assert ask(sock).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as newcomer:
            newcomer.settimeout(10)  # the default configuration does not answer within a minute
            assert ask(newcomer).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


def test_the_app_trusts_forwarded_for_only_from_the_compose_network():
    """Behind nginx every client would otherwise be the proxy's address (issue 14): one rate-limit
    bucket for everyone and the proxy's IP in the audit log."""
    import ipaddress

    trusted = COMPOSE["x-app"]["environment"]["TRUSTED_PROXIES"]
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    default = lambda value: re.fullmatch(r"\$\{\w+:-(.+)\}", value).group(1)  # noqa: E731
    assert ipaddress.ip_network(default(trusted)) == ipaddress.ip_network(default(subnet))
    assert not ipaddress.ip_network(default(trusted)).is_global
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert nginx.count("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") == 2
    assert "access_log /var/log/nginx/access.log mdm;" in nginx and "$request " not in nginx
