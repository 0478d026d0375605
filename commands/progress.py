"""A command's progress as the console shows it: its deliveries split into succeeded, failed,
expired, cancelled and pending, adding up to the devices it was issued to, and the status that
follows (a command with failures never reads plain "finished"; one cancelled before any device
ran it never reads "done"). Pure: computed from selectors.counters_for's counts."""

from dataclasses import dataclass

# (bucket, label) in the order the bar and the sentences list them.
BUCKETS = (
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("expired", "expired"),
    ("cancelled", "cancelled"),
    ("pending", "pending"),
    ("gone", "deleted before results were kept"),
)


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    n: int
    x: float  # percent of the bar's width
    width: float


@dataclass(frozen=True)
class Progress:
    succeeded: int = 0
    failed: int = 0  # failed or rejected by the device
    expired: int = 0
    cancelled: int = 0
    pending: int = 0  # queued, sent, received or running
    running: int = 0  # of pending: received or running
    gone: int = 0  # deliveries of devices deleted (and purged) before results were kept
    is_cancelled: bool = False

    @classmethod
    def of(cls, counters: dict, *, target_count: int | None = None, cancelled: bool = False) -> "Progress":
        c = counters or {}
        total = c.get("total", 0)
        return cls(
            succeeded=c.get("succeeded", 0),
            failed=c.get("failed", 0) + c.get("rejected", 0),
            expired=c.get("expired", 0),
            cancelled=c.get("cancelled", 0),
            pending=sum(c.get(s, 0) for s in ("queued", "sent", "received", "running")),
            running=c.get("received", 0) + c.get("running", 0),
            gone=max((target_count or 0) - total, 0),
            is_cancelled=cancelled,
        )

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.expired + self.cancelled + self.pending + self.gone

    @property
    def retryable(self) -> int:
        """Deliveries "retry failed" would send again (to those of their devices not deleted)."""
        return self.failed + self.expired

    @property
    def can_cancel(self) -> bool:
        return not self.is_cancelled and self.pending > 0

    @property
    def actions_key(self) -> str:
        """Which of the page's buttons apply (cancel, retry): the page refetches its buttons when
        a live update changes this."""
        return ",".join(k for k, on in (("cancel", self.can_cancel), ("retry", self.retryable > 0)) if on) or "none"

    @property
    def status(self) -> str:
        if self.is_cancelled:
            return f"cancelled, {self.pending} still running" if self.pending else "cancelled"
        if self.pending:
            return "active"
        bad = [f"{n} {label}" for n, label in ((self.failed, "failed"), (self.expired, "expired")) if n]
        return "finished with " + ", ".join(bad) if bad else "finished"

    @property
    def status_class(self) -> str:
        """The badge's class (static/css: succeeded green, failed red, running blue, grey)."""
        if self.is_cancelled:
            return "cancelled"
        if self.pending:
            return "running"
        if self.failed:
            return "failed"
        return "expired" if self.expired else "succeeded"

    @property
    def summary(self) -> str:
        """"28 of 30 succeeded · 2 failed": every state there is, adding up to the total."""
        parts = [f"{self.succeeded} of {self.total} succeeded"]
        parts += [f"{getattr(self, key)} {label}" for key, label in BUCKETS[1:] if getattr(self, key)]
        return " · ".join(parts)

    @property
    def segments(self) -> list[Segment]:
        """The bar's parts, in percent of its width (none when there is nothing to show)."""
        out, x = [], 0.0
        total = self.total
        for key, label in BUCKETS:
            n = getattr(self, key)
            if n and total:
                width = 100 * n / total
                out.append(Segment(key=key, label=label, n=n, x=round(x, 3), width=round(width, 3)))
                x += width
        return out
