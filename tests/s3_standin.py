"""The S3 stand-in of the tests (DESIGN.md: stand-ins only for FCM/S3, speaking the real wire
protocol): moto in server mode, a real HTTP server speaking S3's REST API on the loopback,
started as a process of its own. boto3 and django-storages reach it exactly as they would
reach S3, MinIO or any S3-compatible store (signature v4, pre-signed URLs)."""

import os
import subprocess
import sys
import time

import httpx

from tests.live import free_port

ACCESS_KEY = "test-only-access-key"
SECRET_KEY = "test-only-secret-key"
REGION = "us-east-1"


class MotoServer:
    def __init__(self, log_path=None):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc = None

    def start(self, timeout: float = 30.0) -> "MotoServer":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def storage_url(self, bucket: str, prefix: str = "mdm") -> str:
        return f"s3://{bucket}/{prefix}?endpoint_url={self.endpoint}&region={REGION}&addressing_style=path"
