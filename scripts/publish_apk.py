#!/usr/bin/env python3
"""Publish a signed APK to an MDM server from CI: a resumable tus 1.0 upload with tuspy (the
pinned client of requirements.txt), authenticated by an API key with the `apk:upload` scope,
then the server's verdict. Exit 0 with the release printed as JSON; 1 when the server refused the
APK (the reason printed: a version code that exists, a changed signer, ...); 2 on bad usage.

    MDM_PUBLISH_API_KEY=mdmk_… scripts/publish_apk.py --server https://mdm.example.com \\
        --channel beta --notes "build 42" app-release.apk

The agent's GitHub workflow runs it for each signed build when the repository has the secrets
MDM_PUBLISH_URL and MDM_PUBLISH_API_KEY (docs/apks.md, "Publishing from CI")."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx
from tusclient import client as tus_client

CHUNK = 5 * 1024 * 1024


def publish(*, server: str, api_key: str, path: Path, channel: str = "", notes: str = "",
            timeout_s: float = 300.0) -> dict:
    """The upload's result body (docs/apks.md): {"state": "done", "release": {...}} or a refusal."""
    headers = {"Authorization": f"Api-Key {api_key}"}
    metadata = {"filename": path.name, **({"channel": channel} if channel else {}), **({"notes": notes} if notes else {})}
    uploader = tus_client.TusClient(server.rstrip("/") + "/api/v1/uploads/", headers=headers).uploader(
        file_path=str(path), chunk_size=CHUNK, metadata=metadata, upload_checksum=True, retries=5, retry_delay=3)
    uploader.upload()
    deadline = time.monotonic() + timeout_s
    while True:  # the server parses the APK in a worker
        result = httpx.get(uploader.url + "/result", headers=headers, timeout=30)
        result.raise_for_status()
        body = result.json()
        if body["state"] in ("done", "refused") or time.monotonic() > deadline:
            return body
        time.sleep(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("apk", type=Path)
    parser.add_argument("--server", default=os.environ.get("MDM_PUBLISH_URL", ""))
    parser.add_argument("--channel", default="")
    parser.add_argument("--notes", default="")
    args = parser.parse_args(argv)
    api_key = os.environ.get("MDM_PUBLISH_API_KEY", "")
    if not args.server or not api_key or not args.apk.is_file():
        print("needs --server (or MDM_PUBLISH_URL), MDM_PUBLISH_API_KEY and an APK file", file=sys.stderr)
        return 2
    body = publish(server=args.server, api_key=api_key, path=args.apk, channel=args.channel, notes=args.notes)
    print(json.dumps(body, indent=2))
    return 0 if body["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
