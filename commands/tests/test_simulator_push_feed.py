"""The fleet simulator takes its pushes from the FCM stand-in's WebSocket feed, and after a
(re)connect catches up by cursor first: every push reaches its device once, in order."""

import asyncio
import time

from mdm import fcm
from loadtest.simulator import Fleet


def test_pushes_stream_to_their_devices_once_including_those_sent_before_connecting(fcm_standin):
    fleet = Fleet(base_url="http://127.0.0.1:9", enroll_key="unused", devices=3, push_url=fcm_standin.base_url)
    for i, device in enumerate(fleet.devices):
        device.device_id = f"device-{i}"
    fcm_standin.register([d.fcm_token for d in fleet.devices])
    got = []
    fleet.on_push = lambda device, data: got.append((device.index, data["i"]))

    def push(index, i):
        [result] = fcm.send_each([fcm.PushMessage(token=fleet.devices[index].fcm_token, data={"kind": "sync", "i": str(i)}, ttl_s=60)])
        assert result.ok

    push(0, 1)  # before the consumer connects: caught up by cursor

    async def run():
        fleet.stop_at = time.monotonic() + 30
        consumer = asyncio.create_task(fleet.consume_pushes())
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(push, 1, 2)  # while connected: streamed
        await asyncio.to_thread(push, 2, 3)
        while len(got) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # nothing more may arrive (no duplicate from catch-up + stream)
        consumer.cancel()

    asyncio.run(run())
    assert got == [(0, "1"), (1, "2"), (2, "3")]
