"""Server processes freeze their start-up heap out of the cyclic GC (mdm/heap.py); the fleet
simulator tunes the collector only in a process it owns (loadtest.simulator.settle_gc)."""

import asyncio
import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.simulator import GC_THRESHOLDS, Fleet

ROOT = Path(__file__).resolve().parent.parent.parent


def _in_fresh_python(code: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mdm.settings"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


@pytest.mark.parametrize("entry", ["mdm.wsgi", "mdm.asgi"])
def test_the_server_entry_points_freeze_what_start_up_loaded(entry):
    before, after = _in_fresh_python(
        f"import gc; n = gc.get_freeze_count(); import {entry}; print(n, gc.get_freeze_count())").split()
    assert int(before) == 0 and int(after) > 10_000  # Django, the apps and the URL tree


def test_a_celery_worker_process_freezes_after_its_warm_up():
    out = _in_fresh_python("import gc, django; django.setup(); from mdm.celery import _warm_fcm; _warm_fcm(); print(gc.get_freeze_count())")
    assert int(out) > 10_000


def test_settle_gc_freezes_the_fleet_and_spaces_collections_out():
    out = _in_fresh_python("import gc; from loadtest.simulator import settle_gc; settle_gc(); print(gc.get_freeze_count(), *gc.get_threshold())")
    frozen, *thresholds = (int(x) for x in out.split())
    assert frozen > 1_000 and tuple(thresholds) == GC_THRESHOLDS


def test_a_fleet_in_someone_elses_process_leaves_the_collector_alone(live_server_proc):
    from enrollment.services import create_enrollment_key

    thresholds = gc.get_threshold()
    key = create_enrollment_key(actor=None, name="gc").raw

    async def enroll():
        async with Fleet(base_url=live_server_proc.url, enroll_key=key, devices=2, duration=5) as fleet:
            await fleet.enroll_all()
            return len(fleet.by_id)

    assert asyncio.run(enroll()) == 2
    assert gc.get_threshold() == thresholds
