"""Live rollout progress for the console (mdm.realtime): after a rollout's state changes, its
status partial goes to topic `rollout.<uuid>` and its row to `rollouts`, rendered only when a
page has them open. The running wave's install counters stream on the command's own topic
(commands.live), which the rollout page also joins."""

import logging

from django.db import transaction
from django.template.loader import render_to_string

from mdm import realtime

logger = logging.getLogger(__name__)


def rollout_changed_on_commit(rollout_id) -> None:
    rollout_id = str(rollout_id)
    transaction.on_commit(lambda: send(rollout_id))


def send(rollout_id: str) -> None:
    from apks import selectors

    try:
        open_pages = realtime.watched([f"rollout.{rollout_id}", "rollouts"])
        if not open_pages:
            return
        rollout = selectors.rollout_with_waves(rollout_id)
        if rollout is None:
            return
        if f"rollout.{rollout_id}" in open_pages:
            realtime.send_now(f"rollout.{rollout_id}", render_to_string("apks/_rollout_status.html", {"rollout": rollout, "oob": True}))
        if "rollouts" in open_pages:
            realtime.send_now("rollouts", render_to_string("apks/_rollout_row.html", {"r": rollout, "oob": True}))
    except Exception:  # a lost live update must never fail the change that caused it
        logger.exception("live rollout update failed", extra={"rollout_id": rollout_id})
