"""A server process's start-up heap, frozen out of CPython's cyclic garbage collector.

A process that has loaded Django, the apps, Celery and firebase-admin holds ~190,000 tracked
objects that live as long as it does. The collector's full (generation 2) pass walks all of them:
in the bench's fan-out the four dispatcher processes, which allocate alike, reached that pass in
the same trial and each paused 510-650 ms at once (gc.callbacks, 2026-12-02), the slowest of the
three trials every run. `gc.freeze()` moves what exists now to a permanent generation the
collector never scans; what is allocated later is collected as before. Called once per process,
after start-up (mdm/wsgi.py, mdm/asgi.py, mdm/celery.py's worker_process_init). The price: a
frozen object that later becomes part of an unreachable cycle is never freed, so only what start-up
built (modules, classes, settings, the URL tree) is frozen, never request-time state.
"""

import gc


def freeze() -> int:
    """Collect what start-up left as garbage, then freeze the rest; returns how many objects."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
