from datetime import timedelta

from celery import shared_task

from mdm.embedded import run_due

calls = []


@shared_task(name="mdm.tests.record_call")
def record_call(tag):
    calls.append(tag)


def test_periodic_jobs_run_on_their_interval_in_process():
    calls.clear()
    schedule = {
        "fast": {"task": "mdm.tests.record_call", "schedule": timedelta(seconds=10), "args": ("fast",)},
        "slow": {"task": "mdm.tests.record_call", "schedule": 3600.0, "args": ("slow",)},
    }
    next_run: dict = {}
    assert run_due(schedule, next_run, now=0.0) == []  # first runs are staggered a little after start
    assert run_due(schedule, next_run, now=5.0) == ["mdm.tests.record_call", "mdm.tests.record_call"]
    assert run_due(schedule, next_run, now=14.0) == []
    assert run_due(schedule, next_run, now=15.0) == ["mdm.tests.record_call"]
    assert calls == ["fast", "slow", "fast"]


def test_a_failing_job_does_not_stop_the_others():
    calls.clear()
    schedule = {
        "broken": {"task": "mdm.tests.record_call", "schedule": 1.0, "args": ()},  # missing argument
        "fine": {"task": "mdm.tests.record_call", "schedule": 1.0, "args": ("fine",)},
    }
    assert run_due(schedule, {}, now=100.0) == []
    ran = run_due(schedule, {"broken": 0.0, "fine": 0.0}, now=100.0)
    assert ran == ["mdm.tests.record_call"]
    assert calls == ["fine"]


def test_every_beat_entry_names_a_registered_task():
    from mdm.celery import app

    app.loader.import_default_modules()
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in app.tasks, name
