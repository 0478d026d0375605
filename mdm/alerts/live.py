"""Live alerts in the console (mdm.realtime), after an alert fires, resolves, is acknowledged or
snoozed, on commit and only for pages someone has open:

- topic `fleet` (every console page): the open count, swapped into the navigation's badge and
  the dashboard's card (`.alerts-open-count`);
- topic `alerts` (the alerts list and an alert's page): a refresh element that, once swapped in,
  reloads the page's `#alerts-live` part from the page's own URL, so each page keeps its tab,
  filters and page number (one broadcast serves them all);
- topic `device.<uuid>` of each device concerned: the same for the device page's alerts section.
"""

import logging

from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from mdm import realtime

logger = logging.getLogger(__name__)


def alerts_changed_on_commit(alert_ids=()) -> None:
    ids = [str(i) for i in alert_ids]
    transaction.on_commit(lambda: send(ids))


def send(alert_ids: list[str]) -> None:
    from mdm.alerts import selectors
    from mdm.alerts.models import Alert

    try:
        messages = []
        pages = realtime.watched(["fleet", "alerts"])
        if "fleet" in pages:
            messages.append(("fleet", render_to_string("alerts/_open_count.html", {"open_count": selectors.open_count()})))
        if "alerts" in pages:
            messages.append(("alerts", render_to_string("alerts/_refresh.html", {
                "id": "alerts-refresh", "url": "", "target": "alerts-live"})))
        if alert_ids:
            devices = set(Alert.objects.filter(pk__in=alert_ids, subject_type=Alert.Subject.DEVICE)
                          .values_list("subject_id", flat=True))
            for topic in sorted(realtime.watched([f"device.{d}" for d in devices])):
                device_id = topic.removeprefix("device.")
                messages.append((topic, render_to_string("alerts/_refresh.html", {
                    "id": "device-alerts-refresh", "url": reverse("alerts:device_alerts", args=[device_id]),
                    "target": "device-alerts"})))
        realtime.send_many_now(messages)
    except Exception:  # a lost live update must never fail the change that caused it
        logger.exception("live alerts update failed")
