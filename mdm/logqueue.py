"""A log handler that never makes a request wait for a write (docs/performance.md "The request
log"). Records go onto an in-process queue as they are; one thread per process formats them
(JSON) and writes them to stderr (as logging.StreamHandler does). A request thread therefore holds no handler lock across a
write to a slow pipe (a container runtime's log driver, a terminal), and spends no time in the
JSON formatter.

The listener starts lazily in each process that logs (WSGI servers fork after importing the
settings, and a thread does not survive a fork), and is flushed at exit."""

import atexit
import logging
import os
import queue
import sys
from logging.handlers import QueueHandler, QueueListener


class QueuedStreamHandler(QueueHandler):
    def __init__(self, stream=None):
        super().__init__(queue.SimpleQueue())
        self.target = logging.StreamHandler(stream or sys.stderr)
        self._listener: QueueListener | None = None
        self._pid = None

    def setFormatter(self, fmt):  # the listener's thread formats
        self.target.setFormatter(fmt)

    def prepare(self, record):
        # In-process queue: the record needs no pickling, and formatting waits for the thread.
        return record

    def _start(self) -> None:
        self.queue = queue.SimpleQueue()  # a forked child's copy of the parent's queue is not its own
        self._listener = QueueListener(self.queue, self.target, respect_handler_level=False)
        self._listener.start()
        self._pid = os.getpid()
        atexit.register(self.flush_and_stop)

    def emit(self, record):
        if self._pid != os.getpid():
            self._start()
        super().emit(record)

    def flush_and_stop(self) -> None:
        if self._listener is not None and self._pid == os.getpid():
            self._listener.stop()  # drains the queue first
            self._listener = None
            self._pid = None
        try:
            self.target.flush()
        except ValueError:  # its stream was closed already (at exit, by its owner)
            pass

    def close(self):
        self.flush_and_stop()
        atexit.unregister(self.flush_and_stop)
        super().close()
