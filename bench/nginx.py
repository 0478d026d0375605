"""nginx in front of the bench's web, sync and console, as docker-compose's `proxy` is in front of them: the server
block of the shipped deploy/nginx.conf (its APK download location answering the web's
X-Accel-Redirect, its proxy to granian, its log format), changed only where this machine differs,
each change checked to apply so that a reshaped deploy/nginx.conf stops the bench instead of
being measured half-applied:
- plain HTTP on a loopback port (no certificate here), so no `ssl_*` and no `http2` (Debian's
  nginx 1.22 predates `http2 on;`);
- the upstreams on 127.0.0.1 (the bench's three granian services; no daphne);
- the media volume is the bench's media directory; the logs are the bench's;
- no port-80 redirect server.
The main context is the nginx image's (worker_processes auto), except worker_connections: 4,096
instead of 1,024, because the simulator keeps up to 1,000 idle keep-alive connections open (phones
close theirs between heartbeats).
Installed from apt when missing (idempotent: nothing happens when `nginx` is on PATH)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_CONF = ROOT / "deploy" / "nginx.conf"
# deploy/nginx.conf's split of the device protocol between two planes, for a simulator that calls
# the planes directly (no proxy hop in the device figures): these path prefixes go to `sync`, the
# rest of /api/v1/device/ to `web` (mdm/tests/test_nginx_routing.py holds the proxy to it).
SYNC_PREFIXES = ("/api/v1/device/policy",)

MAIN = """worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{site}
}}
"""


def ensure_installed() -> tuple[str | None, str]:
    """(path to nginx, "") or (None, why not). Installs Debian's nginx when missing; Debian's
    policy-rc.d in containers (or none) decides whether the package's own service starts: the
    bench never uses it, it runs its own nginx with its own configuration and port."""
    found = shutil.which("nginx") or (shutil.which("nginx", path="/usr/sbin:/sbin"))
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, "nginx is not installed and installing it needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return None, f"{' '.join(argv)} failed: {done.stderr.strip()[-200:]}"
    found = shutil.which("nginx", path="/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    return (found, "") if found else (None, "apt-get installed nginx but no nginx binary was found")


def _replace(text: str, pattern: str, replacement: str, *, count: int = 0, flags: int = re.M) -> str:
    new, n = re.subn(pattern, replacement, text, count=count, flags=flags)
    if n == 0:
        raise SystemExit(f"bench/nginx.py: deploy/nginx.conf no longer has {pattern!r}; update the bench's adaptation")
    return new


def site_config(*, port: int, web_port: int, sync_port: int, console_port: int, media_dir: Path, work: Path) -> str:
    """deploy/nginx.conf adapted to this machine (see the module's docstring)."""
    text = DEPLOY_CONF.read_text()
    text = _replace(text, r"^upstream web \{ server web:8000;", f"upstream web {{ server 127.0.0.1:{web_port};")
    text = _replace(text, r"^upstream sync \{ server sync:8000;", f"upstream sync {{ server 127.0.0.1:{sync_port};")
    text = _replace(text, r"^upstream console \{ server console:8000;", f"upstream console {{ server 127.0.0.1:{console_port};")
    text = _replace(text, r"^upstream ws \{ server ws:8001; \}", "upstream ws { server 127.0.0.1:9; }  # unused here")
    # The port-80 server only redirects to https: dropped.
    text = _replace(text, r"^# Plain HTTP: only a redirect.*?^server \{\n    listen 80;.*?\n\}\n", "", flags=re.M | re.S)
    text = _replace(text, r"^    listen 443 ssl;\n    listen \[::\]:443 ssl;\n", f"    listen 127.0.0.1:{port};\n")
    text = _replace(text, r"^    http2 on;\n", "")
    text = _replace(text, r"^    ssl_[a-z_]+ .*\n", "")
    text = _replace(text, r"access_log /var/log/nginx/access\.log mdm;", f"access_log {work}/access.log mdm;")
    text = _replace(text, r"alias /data/media/;", f"alias {media_dir}/;")
    return text


def write_config(*, port: int, web_port: int, sync_port: int, console_port: int, media_dir: Path, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    site = site_config(port=port, web_port=web_port, sync_port=sync_port, console_port=console_port, media_dir=media_dir,
                       work=work)
    path = work / "nginx.conf"
    path.write_text(MAIN.format(work=work, site="\n".join("    " + line if line else line for line in site.splitlines())))
    return path


def argv(binary: str, conf: Path, work: Path) -> list[str]:
    """In the foreground (the bench's process group stops it), with its own prefix and config."""
    return [binary, "-p", str(work), "-c", str(conf), "-g", "daemon off;"]


def check(binary: str, conf: Path, work: Path) -> None:
    done = subprocess.run([binary, "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the bench's nginx configuration does not load:\n{done.stderr}")
