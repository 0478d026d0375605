"""GET /api/v1/device/apks/<apk_id>/download as the agent does it (PROTOCOL.md; the agent's
HttpDeviceApi.downloadApk): a 302 followed without the device token when it leaves the base
URL's origin (a pre-signed object-store URL), a cut transfer resumed with Range and If-Range
(the ETag), a 200 where a resume was asked for (the server ignored the range: the file changed,
or nginx compared an If-Range it cannot) taken as the whole file again. A simulated device keeps
no bytes: each one goes into a running SHA-256 as it arrives, so memory stays one chunk per
download whatever the APK's size, and a resume continues the same hash."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
from yarl import URL

from loadtest.simulator.protocol import backoff_delay, retry_after_of

CHUNK = 256 * 1024
MAX_REDIRECTS = 5
# A phone retries a broken download until the command expires; the simulator gives up sooner
# so that a run always ends, with the install failed and saying why.
MAX_ATTEMPTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# No total: a 20 MB APK among 2,000 downloads at once takes longer than any API call; a stalled
# socket is still noticed.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
ACCEPT = "application/vnd.android.package-archive, application/json;q=0.9"


class DownloadFailed(Exception):
    """The file did not arrive (refused, or too many broken attempts): the install fails with this.
    `retryable`: it kept breaking, another try later may get it (a policy's required app waits)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class _Cut(Exception):
    """The simulated network loss: the transfer was dropped after `cut_at` bytes."""


class _Busy(Exception):
    def __init__(self, status: int, retry_after: float | None):
        super().__init__(f"{status}")
        self.retry_after = retry_after


@dataclass
class Transfer:
    """One download's progress. The bytes so far exist only as their running hash."""

    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    have: int = 0
    etag: str | None = None
    checksum_header: str | None = None
    cuts: int = 0
    resumes: int = 0
    restarts: int = 0

    def feed(self, data: bytes) -> None:
        self.digest.update(data)
        self.have += len(data)

    def restart(self) -> None:
        self.digest, self.have = hashlib.sha256(), 0
        self.restarts += 1

    def sha256(self) -> str:
        return self.digest.hexdigest()


def same_origin(url: URL, base: URL) -> bool:
    return (url.scheme.lower(), (url.host or "").lower(), url.port) == (base.scheme.lower(), (base.host or "").lower(), base.port)


def content_range_starts_at(header: str | None, start: int) -> bool:
    """"bytes 1000-1999/2000" starts at 1000."""
    if not header or not header.strip().lower().startswith("bytes "):
        return False
    first = header.strip()[6:].split("-", 1)[0].strip()
    return first.isascii() and first.isdigit() and int(first) == start


class Downloader:
    """Downloads for one fleet: its base URL, download session, stats and rng. `cut_rate` of the
    downloads (chosen at random) are dropped once after a random number of bytes and resumed after
    a backoff; at most `concurrency` transfers run at once (None: no cap)."""

    def __init__(self, fleet, *, cut_rate: float = 0.0, concurrency: int | None = None):
        self.fleet = fleet
        self.cut_rate = cut_rate
        self.gate = asyncio.Semaphore(concurrency) if concurrency else None

    def count(self, name: str, n: int = 1) -> None:
        # Looked up at each count: a benchmark replaces the fleet's Stats between its phases.
        self.fleet.stats.counters[name] += n

    async def fetch(self, device, apk_id: str, size: int, *, may_cut: bool = True) -> Transfer:
        """The whole file, hashed; DownloadFailed when the server refuses it or it keeps breaking."""
        rng = self.fleet.rng
        transfer = Transfer()
        cut_at = rng.randint(1, size - 1) if may_cut and size > 1 and rng.random() < self.cut_rate else None
        last_problem = ""
        for attempt in range(MAX_ATTEMPTS):
            retry_after = None
            try:
                if self.gate is None:
                    done = await self._attempt(device, apk_id, size, transfer, cut_at)
                else:
                    async with self.gate:
                        done = await self._attempt(device, apk_id, size, transfer, cut_at)
                if done:
                    return transfer
                last_problem = "the server did not continue where the download stopped"
                continue  # restarted from 0: at once, the file is there
            except _Cut:
                cut_at = None  # cut once
                transfer.cuts += 1
                self.count("apk_download_cut")
                last_problem = "cut"
            except _Busy as busy:
                retry_after = busy.retry_after
                last_problem = f"busy ({busy})"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.count("apk_download_interrupted")
                last_problem = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(backoff_delay(attempt, retry_after, base=0.2, cap=5.0))
        raise DownloadFailed(f"download failed after {MAX_ATTEMPTS} attempts; last: {last_problem}", retryable=True)

    async def _attempt(self, device, apk_id: str, size: int, transfer: Transfer, cut_at: int | None) -> bool:
        """One request (and its redirects). True: the file is complete; False: go again from 0."""
        base = URL(self.fleet.base_url)
        url = URL(f"{self.fleet.base_url}/api/v1/device/apks/{quote(apk_id, safe='')}/download")
        headers = {"Accept": ACCEPT, "Accept-Encoding": "identity"}
        if transfer.have:
            headers["Range"] = f"bytes={transfer.have}-"
            if transfer.etag:
                headers["If-Range"] = transfer.etag
        started = time.monotonic()
        for _ in range(MAX_REDIRECTS + 1):
            # The device token goes only to the base URL's own origin (PROTOCOL.md).
            auth = device.headers if same_origin(url, base) else {}
            async with self.fleet.download_session.get(url, headers={**headers, **auth}, allow_redirects=False,
                                                       timeout=TIMEOUT, read_bufsize=CHUNK) as response:
                self.fleet.stats.record("download", response.status, time.monotonic() - started, started)
                location = response.headers.get("Location")
                if response.status in REDIRECT_STATUSES and location:
                    url = response.url.join(URL(location, encoded=True))
                    continue
                return await self._body(response, transfer, size, cut_at)
        raise DownloadFailed(f"download failed: more than {MAX_REDIRECTS} redirects")

    async def _body(self, response: aiohttp.ClientResponse, transfer: Transfer, size: int, cut_at: int | None) -> bool:
        if response.status == 416 and transfer.have:
            if transfer.have == size:
                return True  # it was all there; the checksum decides
            transfer.restart()
            self.count("apk_restarted")
            return False
        if response.status in (429, 503):
            raise _Busy(response.status, retry_after_of(response))
        if response.status not in (200, 206):
            try:
                code = (await response.json(content_type=None) or {}).get("code", "")
            except (ValueError, AttributeError, aiohttp.ClientError):
                code = ""
            raise DownloadFailed(f"download failed: HTTP {response.status} {code}".rstrip())
        if response.status == 206:
            if not content_range_starts_at(response.headers.get("Content-Range"), transfer.have):
                transfer.restart()
                self.count("apk_restarted")
                return False
            if transfer.have:
                transfer.resumes += 1
                self.count("apk_resumed")
        elif transfer.have:  # the whole file where a resume was asked for: start the hash over
            transfer.restart()
            self.count("apk_restarted")
        transfer.etag = response.headers.get("ETag") or transfer.etag
        transfer.checksum_header = response.headers.get("X-Checksum-SHA256") or transfer.checksum_header
        expected, received = response.content_length, 0
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                if cut_at is not None and transfer.have + len(chunk) >= cut_at:
                    chunk = chunk[: cut_at - transfer.have]
                    transfer.feed(chunk)
                    received += len(chunk)
                    response.close()  # the connection drops mid-transfer, as when a phone loses its network
                    raise _Cut
                transfer.feed(chunk)
                received += len(chunk)
        finally:
            self.count("apk_bytes", received)
        if expected is not None and received < expected:
            raise aiohttp.ClientPayloadError(f"cut after {received} of {expected} bytes")
        return True
