"""End to end with a real Celery worker process and the FCM stand-in: a command to 200 devices
reaches every one by push, each result lands, and killing the worker mid-dispatch loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commands import services
from commands.models import Command, Delivery
from commands.tests.conftest import make_device, standin_env
from tests.live import ROOT, env_for_test_database

pytestmark = [pytest.mark.slow, pytest.mark.live]


class Worker:
    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.proc = None

    def start(self) -> "Worker":
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "mdm", "worker", "-Q", "celery,push", "-l", "info", "-c", "2",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "ready." not in self.log.read_text(errors="ignore"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and its pool children, no goodbye
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def worker_factory(transactional_db, settings, fcm_standin, tmp_path):
    workers = []

    def make(**extra_env) -> Worker:
        env = {**os.environ, **env_for_test_database(settings), **standin_env(fcm_standin), **extra_env}
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    yield make
    for worker in workers:
        worker.stop()


def fleet(standin, n):
    devices = [make_device(fcm_token=f"tok-{i:04d}-{time.monotonic_ns()}") for i in range(n)]
    standin.register([d.device.fcm_token for d in devices])
    return devices


def play_devices(standin, devices, command_id: str, timeout: float = 90.0) -> dict:
    """Be the devices: take pushes from the stand-in, verify each envelope with that device's
    keys, drop duplicates by id (rule 3), report each command once through the device API."""
    by_token = {d.device.fcm_token: d for d in devices}
    reported, pushes, cursor = set(), 0, 0
    deadline = time.monotonic() + timeout
    while len(reported) < len(devices) and time.monotonic() < deadline:
        batch = standin.messages(after=cursor, wait=2)
        cursor = batch["last"]
        for record in batch["messages"]:
            device = by_token[record["token"]]
            data = record["message"]["data"]
            assert data["kind"] == "command"
            pushes += 1
            payload = device.verify(json.loads(data["envelope"]), server_now=int(time.time()))
            assert payload["device_id"] == device.id and payload["id"] == command_id
            if payload["id"] in device.seen:
                continue  # a duplicate push: harmless
            device.seen.add(payload["id"])
            response = device.report(payload["id"], "succeeded", exit_code=0, output="pong")
            assert response.status_code == 200
            reported.add(device.id)
    return {"reported": reported, "pushes": pushes}


def test_a_command_to_200_devices_reaches_every_one_by_push_and_every_result_lands(worker_factory, fcm_standin):
    devices = fleet(fcm_standin, 200)
    worker_factory()
    started = time.monotonic()
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    outcome = play_devices(fcm_standin, devices, str(command.pk))
    elapsed = time.monotonic() - started
    assert outcome["reported"] == {d.id for d in devices}
    tokens = {m["token"] for m in fcm_standin.messages()["messages"]}
    assert tokens == {d.device.fcm_token for d in devices}
    counters = services.counters_for([command.pk])[command.pk]
    assert counters["succeeded"] == 200 and counters["total"] == 200
    assert set(Delivery.objects.filter(command=command).values_list("channel", flat=True)) == {"push"}
    print(f"\n200 devices: pushed, verified and reported in {elapsed:.1f} s ({outcome['pushes']} pushes)")


def test_killing_the_worker_mid_dispatch_still_delivers_every_delivery_once_per_device(worker_factory, fcm_standin):
    devices = fleet(fcm_standin, 200)
    fcm_standin.config(latency_ms=400)
    first = worker_factory(MDM_FCM_BATCH_SIZE="25")
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    # Wait until a couple of batches have gone out, then kill the worker while it pushes.
    deadline = time.monotonic() + 30
    while fcm_standin.stats().get("requests", 0) < 60:
        assert time.monotonic() < deadline, "dispatch never started"
        time.sleep(0.05)
    first.kill()
    stranded = Delivery.objects.filter(command=command, state="queued").count()
    assert 0 < stranded < 200, "the kill should land mid-dispatch"
    fcm_standin.config(latency_ms=0)
    worker_factory()
    # Beat's safety net (commands.tasks.resume_dispatch, every minute, claims stale after
    # 2 minutes), run at once here with the stale age at zero: the killed worker is gone.
    from commands.tasks import resume_dispatch

    resume_dispatch.delay(0)
    outcome = play_devices(fcm_standin, devices, str(command.pk))
    assert outcome["reported"] == {d.id for d in devices}, f"lost: {200 - len(outcome['reported'])}"
    rows = list(Delivery.objects.filter(command=command).values_list("device_id", "state"))
    assert len(rows) == 200 and len({r[0] for r in rows}) == 200
    assert {r[1] for r in rows} == {"succeeded"}
    assert Command.objects.count() == 1
    print(f"\nkill mid-dispatch: {stranded} deliveries stranded, {outcome['pushes']} pushes for 200 devices "
          f"({outcome['pushes'] - 200} harmless duplicates)")
