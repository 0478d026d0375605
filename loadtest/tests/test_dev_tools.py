"""The dev tools as an app: its management commands and the benchmarks' naive view, routed only
when asked for (whether the app is installed at all: mdm/tests/test_settings_from_environment.py)."""

import json
import subprocess
import sys

from django.core.management import get_commands
from django.urls import Resolver404, resolve

from mdm.tests.test_settings_from_environment import PRODUCTION, ROOT, run_python

ROUTED = (
    "import django, json; django.setup(); from django.urls import resolve;"
    "match = resolve('/bench/naive-heartbeat'); print(json.dumps(match.func.__module__ + '.' + match.func.__name__))"
)


def test_the_management_commands_come_from_the_loadtest_app():
    commands = get_commands()
    assert commands["simulate_fleet"] == "loadtest" and commands["fcm_standin"] == "loadtest"


def test_the_naive_view_is_not_routed_unless_asked_for():
    try:
        resolve("/bench/naive-heartbeat")
    except Resolver404:
        return
    raise AssertionError("/bench/naive-heartbeat is routed without BENCH_NAIVE_VIEW")


def test_the_naive_view_is_routed_under_bench_when_asked_for(tmp_path):
    result = run_python(ROUTED, {**PRODUCTION, "DEV_TOOLS": "1", "BENCH_NAIVE_VIEW": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == "loadtest.views.naive_heartbeat"


def test_the_simulator_command_starts_and_explains_itself(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "simulate_fleet", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "MDM_VAR_DIR": str(tmp_path / "var")})
    assert result.returncode == 0, result.stderr
    assert "--enroll-key" in result.stdout
