"""The embedded default's stand-in for Celery beat: one daemon thread in the web process that
runs every entry of the beat schedule on its interval, eagerly. Production runs real beat."""

import logging
import threading
import time
from datetime import timedelta

from django.db import close_old_connections

logger = logging.getLogger(__name__)
_started = threading.Event()


def _seconds(schedule) -> float:
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)):
        return float(schedule)
    # crontab schedules: approximate by their remaining-estimate from now.
    return max(60.0, schedule.remaining_estimate(schedule.now()).total_seconds())


def run_due(schedule: dict, next_run: dict, now: float) -> list[str]:
    """Run each entry whose time has come; returns the task names run."""
    from mdm.celery import app

    ran = []
    for name, entry in schedule.items():
        due = next_run.setdefault(name, now + min(_seconds(entry["schedule"]), 5.0))
        if now < due:
            continue
        next_run[name] = now + _seconds(entry["schedule"])
        try:
            app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
            ran.append(entry["task"])
        except Exception:
            logger.exception("embedded periodic job failed", extra={"task": entry["task"]})
        finally:
            close_old_connections()
    return ran


def start_scheduler(tick: float = 1.0) -> None:
    if _started.is_set():
        return
    _started.set()

    def loop():
        from mdm.celery import app

        app.loader.import_default_modules()
        next_run: dict = {}
        while True:
            run_due(app.conf.beat_schedule, next_run, time.monotonic())
            time.sleep(tick)

    threading.Thread(target=loop, name="embedded-scheduler", daemon=True).start()
    logger.info("embedded scheduler started")
