"""The push side of a simulated device: the FCM stand-in learns the fleet's tokens (as FCM would
from each phone) and hands over what it delivered; each message goes to its device."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from loadtest.simulator.device import SimDevice


class PushConsumer:
    """Mixed into Fleet: needs its session, push_url, stop_at, devices, by_fcm, stats, spawn(),
    accept_envelopes(), pull() and policy_sync_pushed()."""

    async def register_push_tokens(self) -> None:
        """Like a device obtaining its token from FCM: the stand-in learns the fleet's tokens."""
        assert self.session is not None and self.push_url is not None
        tokens = [d.fcm_token for d in self.devices]
        async with self.session.post(f"{self.push_url}/_standin/tokens", json={"tokens": tokens}) as r:
            r.raise_for_status()

    async def consume_pushes(self) -> None:
        """Streams the stand-in's delivered messages (its WebSocket feed, as FCM's persistent
        connection does for a phone) and feeds each to its device. After a (re)connect it first
        catches up by cursor through the long-poll feed, so a dropped stream loses nothing."""
        assert self.push_url is not None
        cursor = 0
        # Its own connection, as a device's FCM channel is: never queued behind the fleet's HTTP calls.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as push_session:
            while time.monotonic() < self.stop_at:
                try:
                    async with push_session.ws_connect(f"{self.push_url}/_standin/ws", heartbeat=30) as ws:
                        while True:  # catch up, page by page, before trusting the stream
                            async with push_session.get(f"{self.push_url}/_standin/messages", params={"after": cursor}) as r:
                                page = await r.json()
                            if not page.get("messages"):
                                break
                            cursor = self._deliver_pushes(page, cursor)
                        async for frame in ws:
                            if frame.type != aiohttp.WSMsgType.TEXT:
                                break
                            record = json.loads(frame.data)
                            if record["n"] > cursor:
                                cursor = self._deliver_pushes({"messages": [record]}, cursor)
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    pass
                await asyncio.sleep(0.5)  # closed or failed: reconnect, not in a tight loop

    def _deliver_pushes(self, data: dict, cursor: int) -> int:
        for record in data.get("messages", []):
            cursor = max(cursor, record["n"])
            device = self.by_fcm.get(record["token"])
            if device is None or device.device_id is None:
                continue
            self.on_push(device, record.get("message", {}).get("data", {}))
        return cursor

    def on_push(self, device: SimDevice, data: dict) -> None:
        self.stats.counters["pushes"] += 1
        if data.get("kind") == "command":
            try:
                envelope = json.loads(data["envelope"])
            except (KeyError, json.JSONDecodeError):
                device.bad_envelopes += 1
                return
            self.accept_envelopes(device, [envelope], channel="push")
        elif data.get("kind") == "sync":
            # The device pulls its commands, and fetches its policy (a policy change sends only this).
            self.spawn(self.pull(device))
            self.policy_sync_pushed(device)
