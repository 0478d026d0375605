"""Live command progress is rendered only for pages someone has open (mdm.realtime.watched)."""

import uuid

from commands import live
from mdm import realtime


def test_a_command_nobody_watches_costs_no_rendering(monkeypatch):
    rendered, history = [], []
    monkeypatch.setattr(live, "render_updates", lambda cid, pks: rendered.append(cid) or ["<p>x</p>"])
    monkeypatch.setattr(live, "_send_history_row", lambda cid, created=False: history.append(cid))
    monkeypatch.setattr(realtime, "send_now", lambda topic, html: None)
    command_id = str(uuid.uuid4())
    live.flush_command(command_id, {1, 2})
    assert rendered == [] and history == []
    realtime.watch([f"command.{command_id}"])
    live.flush_command(command_id, {1, 2})
    assert rendered == [command_id] and history == []
    realtime.watch(["commands"])
    live.flush_command(command_id, {1})
    assert history == [command_id]
    realtime.watch([f"command.{command_id}", "commands"], -1)
    live.flush_command(command_id, {1})
    assert rendered == [command_id, command_id] and history == [command_id]
