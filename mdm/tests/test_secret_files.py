"""The embedded default's secret key and the first admin's password file are never readable by
others, not even for a moment (issue 14, finding 8): created 0o600 whatever the umask, complete
before they have their name, and two processes starting at once agree on one key."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mdm import secretfile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def open_umask():
    """The most permissive umask: a file gets exactly the mode it is created with."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_private_file_is_0600_even_with_an_open_umask(tmp_path, open_umask):
    path = tmp_path / "secret"
    assert secretfile.write_private(path, "s3cret")
    assert _mode(path) == 0o600 and path.read_text() == "s3cret"


def test_there_is_no_moment_when_the_file_is_readable_by_others_or_half_written(tmp_path, open_umask, monkeypatch):
    """Looked at while the bytes are being synced, just before the file gets its name."""
    path = tmp_path / "secret"
    seen = []
    real_fsync = os.fsync

    def watching_fsync(fd):
        real_fsync(fd)
        temps = [p for p in tmp_path.iterdir() if p != path]
        seen.append((path.exists(), [_mode(p) for p in temps]))

    monkeypatch.setattr(os, "fsync", watching_fsync)
    secretfile.write_private(path, "s3cret")
    assert seen == [(False, [0o600])]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_an_existing_file_wins_when_asked_not_to_replace(tmp_path):
    path = tmp_path / "secret"
    assert secretfile.write_private(path, "first", replace=False)
    assert not secretfile.write_private(path, "second", replace=False)
    assert path.read_text() == "first" and list(tmp_path.iterdir()) == [path]


def test_replacing_a_world_readable_file_leaves_a_private_one(tmp_path, open_umask):
    path = tmp_path / "initial-admin.txt"
    path.write_text("old")
    path.chmod(0o644)
    secretfile.write_private(path, "new")
    assert _mode(path) == 0o600 and path.read_text() == "new"


def _embedded_start(var: Path, umask: int = 0) -> subprocess.Popen:
    code = f"import os; os.umask({umask}); import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PYTEST_XDIST_WORKER"}
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, "DJANGO_SETTINGS_MODULE": "mdm.settings", "MDM_VAR_DIR": str(var)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_processes_starting_at_once_agree_on_one_private_secret_key(tmp_path):
    var = tmp_path / "var"
    starts = [_embedded_start(var) for _ in range(6)]
    keys = set()
    for proc in starts:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        keys.add(out.strip().splitlines()[-1])
    assert len(keys) == 1 and (var / "secret_key").read_text().strip() in keys
    assert _mode(var / "secret_key") == 0o600 and _mode(var) == 0o700
    assert sorted(p.name for p in var.iterdir() if p.name.startswith(".")) == []


def test_a_key_file_left_readable_by_an_older_version_is_restricted_at_start(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "secret_key").write_text("an-older-key-0123456789")
    (var / "secret_key").chmod(0o644)
    proc = _embedded_start(var, umask=0o022)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "an-older-key-0123456789" and _mode(var / "secret_key") == 0o600


def test_the_first_admins_password_file_is_private_from_the_start(db, capsys, settings, tmp_path, open_umask, monkeypatch):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path / "var"
    modes = []
    real_fsync = os.fsync

    def watching_fsync(fd):
        real_fsync(fd)
        modes.append(os.fstat(fd).st_mode & 0o777)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    call_command("ensure_admin")
    note = settings.VAR_DIR / "initial-admin.txt"
    password = re.search(r"password: (\S+)", capsys.readouterr().out).group(1)
    assert modes == [0o600] and _mode(note) == 0o600 and f"password: {password}" in note.read_text()
