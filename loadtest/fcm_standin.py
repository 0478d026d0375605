"""A local stand-in for Firebase Cloud Messaging that speaks the real FCM HTTP v1 wire protocol.

The real service is unreachable in development, tests and benchmarks, so firebase-admin is
pointed here instead (see mdm/fcm.py). What it implements, as Google does:

- `POST /token`: the OAuth2 token endpoint. Accepts the JWT-bearer grant
  (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=<RS256 JWT>`) that
  google-auth makes from a service-account JSON, verifies the signature against the account's
  key, `aud` (Google's token endpoint, as google-auth writes it, or this token_uri) and `exp`, and answers `{"access_token", "expires_in", "token_type"}`.
- `POST /v1/projects/<project>/messages:send` with `Authorization: Bearer <access token>`:
  200 `{"name": "projects/<project>/messages/<n>"}`, or FCM's own error bodies:
  404 NOT_FOUND + FcmError `UNREGISTERED` for a token it does not know, 400 INVALID_ARGUMENT
  (with a google.rpc.BadRequest field violation) for a malformed message, 429
  RESOURCE_EXHAUSTED + `QUOTA_EXCEEDED`, 503 UNAVAILABLE, 500 INTERNAL, 401 UNAUTHENTICATED,
  403 PERMISSION_DENIED + `SENDER_ID_MISMATCH` for another project.

And what it adds, under `/_standin/` (no auth; bind it to localhost):

- `GET  /_standin/credentials`: the service-account JSON (token_uri pointing here).
- `POST /_standin/tokens` `{"tokens": [...]}` registers device tokens (unknown ones get
  UNREGISTERED unless `accept_any_token`); `DELETE` the same body unregisters them.
- `POST /_standin/fail` `{"tokens": [...] | "all": true, "error": "UNREGISTERED" | "QUOTA_EXCEEDED"
  | "UNAVAILABLE" | "INVALID_ARGUMENT" | "INTERNAL", "times": N | null}`: the next N sends to
  those tokens (null: every send) fail with that error; `"error": null` clears.
- `POST /_standin/config` `{"latency_ms": N, "accept_any_token": bool}`.
- `GET  /_standin/messages?token=&after=<n>&limit=&wait=<s>`: delivered messages after cursor
  `n`, oldest first, `{"messages": [{"n", "name", "token", "message", "at"}], "last": n}`; with
  `wait`, a long poll that returns as soon as one arrives. This is how a fleet simulator (or a
  test) plays the devices' side of FCM. `GET /_standin/ws?token=` streams the same as WebSocket
  text frames, and `POST /_standin/webhooks` `{"url"}` makes it POST each message to a URL.
- `GET  /_standin/stats` (counters; `last`: the newest message number, a cursor for `after`),
  `POST /_standin/reset`, `GET /healthz`.

Run: `manage.py fcm_standin --port 9099 --write-credentials var/fcm-standin.json`
(or `python -m loadtest.fcm_standin ...`: it needs no Django).
"""

import argparse
import asyncio
import base64
import json
import logging
import re
import secrets
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mdm.fcm import FCM_ERROR_TYPE  # the wire's name for FCM's error detail (no Django needed)

logger = logging.getLogger("loadtest.fcm_standin")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
MAX_PAYLOAD_BYTES = 4096
TTL_RE = re.compile(r"^\d+(\.\d{1,9})?s$")
ERRORS = {
    # errorCode: (HTTP status, google.rpc status, message)
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def fcm_error_body(code: str, message: str | None = None, field: str | None = None) -> tuple[int, dict]:
    status, rpc_status, default_message = ERRORS[code]
    details = [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
    if code == "INVALID_ARGUMENT" and field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message or default_message}],
            }
        )
    return status, {"error": {"code": status, "message": message or default_message, "status": rpc_status, "details": details}}


class Standin:
    def __init__(self, *, project_id: str = "mdm-standin", base_url: str = "", accept_any_token: bool = False,
                 private_key_pem: bytes | None = None, max_messages: int = 1_000_000):
        self.project_id = project_id
        self.base_url = base_url.rstrip("/")
        if private_key_pem:
            self.private_key = serialization.load_pem_private_key(private_key_pem, password=None)
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.private_key.public_key()
        self.client_email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        self.max_messages = max_messages
        self.accept_any_token = accept_any_token
        self.reset()

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        self.access_tokens: dict[str, float] = {}
        self.registered: set[str] = set()
        self.failures: dict[str, list] = {}  # token or "*" -> [code, remaining or None]
        self.latency_ms = 0
        self.messages: deque = deque(maxlen=self.max_messages)
        self.counter = 0
        self.stats = defaultdict(int)
        self.webhooks: list[str] = []
        self._new_message = asyncio.Event() if self._loop_running() else None
        self._ws: set = set()

    @staticmethod
    def _loop_running() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    def credentials(self) -> dict:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "standin-" + self.project_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000000",
            "auth_uri": f"{self.base_url}/auth",
            "token_uri": f"{self.base_url}/token",
            "auth_provider_x509_cert_url": f"{self.base_url}/certs",
            "client_x509_cert_url": f"{self.base_url}/certs/{self.client_email}",
            "universe_domain": "googleapis.com",
        }

    # --- OAuth2 -----------------------------------------------------------------------------
    def verify_assertion(self, assertion: str) -> str | None:
        """None when the JWT is good, else the reason."""
        try:
            header_b64, payload_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            signature = _b64url_decode(sig_b64)
        except (ValueError, json.JSONDecodeError):
            return "malformed assertion"
        if header.get("alg") != "RS256":
            return "unsupported alg"
        try:
            self.public_key.verify(
                signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("iss") != self.client_email:
            return "Invalid issuer"
        # google-auth always writes Google's own endpoint as the audience, whatever token_uri is.
        if claims.get("aud") not in (f"{self.base_url}/token", GOOGLE_TOKEN_AUDIENCE):
            return "Invalid audience"
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - 30:
            return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
        scope = claims.get("scope", "")
        if "firebase.messaging" not in scope and "cloud-platform" not in scope:
            return "Invalid scope"
        return None

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, status=400)
        problem = self.verify_assertion(form.get("assertion", ""))
        if problem:
            self.stats["token_refused"] += 1
            return web.json_response({"error": "invalid_grant", "error_description": problem}, status=400)
        access = "ya29.standin-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = time.time() + 3600
        self.stats["tokens_issued"] += 1
        return web.json_response({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    # --- messages:send ----------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.access_tokens.get(token) if scheme == "Bearer" else None
        return expiry is not None and expiry > time.time()

    @staticmethod
    def validate_message(body) -> tuple[str, str] | None:
        """(field, problem) for a message FCM would refuse with INVALID_ARGUMENT, else None."""
        if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
            return "message", "Request contains an invalid argument."
        message = body["message"]
        targets = [k for k in ("token", "topic", "condition") if message.get(k)]
        if len(targets) != 1:
            return "message", "Exactly one of token, topic or condition must be specified."
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return "message.data", "Invalid value at 'message.data': values must be strings."
        reserved = {"from", "notification", "message_type"} | {k for k in data if k.startswith(("google.", "gcm."))}
        if set(data) & reserved:
            return "message.data", f"Invalid data payload key: {sorted(set(data) & reserved)[0]}"
        android = message.get("android", {})
        if android:
            if android.get("priority", "normal") not in ("normal", "high", "NORMAL", "HIGH"):
                return "message.android.priority", "Invalid value at 'message.android.priority'."
            ttl = android.get("ttl")
            if ttl is not None and (not isinstance(ttl, str) or not TTL_RE.match(ttl) or float(ttl[:-1]) > 2_419_200):
                return "message.android.ttl", "Invalid value at 'message.android.ttl' (Duration), max 28 days."
        size = len(json.dumps(data, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            return "message", f"Message is too big: data payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES}."
        return None

    def _injected_failure(self, token: str) -> str | None:
        for key in (token, "*"):
            rule = self.failures.get(key)
            if rule is None:
                continue
            code, remaining = rule
            if remaining is not None:
                if remaining <= 0:
                    del self.failures[key]
                    continue
                rule[1] = remaining - 1
            return code
        return None

    def _error(self, code: str, message: str | None = None, field: str | None = None) -> web.Response:
        status, body = fcm_error_body(code, message, field)
        self.stats[f"error_{code}"] += 1
        headers = {"Retry-After": "1"} if code in ("QUOTA_EXCEEDED", "UNAVAILABLE") else None
        return web.json_response(body, status=status, headers=headers)

    async def send(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if not self._authorized(request):
            self.stats["error_UNAUTHENTICATED"] += 1
            return web.json_response(
                {"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}},
                status=401,
            )
        if request.match_info["project"] != self.project_id:
            return self._error("SENDER_ID_MISMATCH")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error("INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = self.validate_message(body)
        if problem:
            return self._error("INVALID_ARGUMENT", problem[1], problem[0])
        message = body["message"]
        token = message.get("token", "")
        injected = self._injected_failure(token)
        if injected:
            return self._error(injected)
        if token and not self.accept_any_token and token not in self.registered:
            return self._error("UNREGISTERED")
        self.counter += 1
        name = f"projects/{self.project_id}/messages/{self.counter}"
        if body.get("validate_only"):
            return web.json_response({"name": f"projects/{self.project_id}/messages/fake_message_id"})
        record = {"n": self.counter, "name": name, "token": token, "message": message, "at": time.time()}
        self.messages.append(record)
        self.stats["delivered"] += 1
        self._notify(record)
        return web.json_response({"name": name})

    def _notify(self, record: dict) -> None:
        if self._new_message is not None:
            self._new_message.set()
            self._new_message = asyncio.Event()
        text = json.dumps(record) if self._ws else ""
        for ws, token in list(self._ws):
            if token in (None, record["token"]):
                asyncio.ensure_future(ws.send_str(text))
        for url in self.webhooks:
            asyncio.ensure_future(self._post_webhook(url, record))

    async def _post_webhook(self, url: str, record: dict) -> None:
        try:
            async with ClientSession(timeout=ClientTimeout(total=5)) as session:
                await session.post(url, json=record)
        except Exception:
            self.stats["webhook_errors"] += 1

    # --- admin ------------------------------------------------------------------------------
    def _select(self, token: str | None, after: int, limit: int) -> list[dict]:
        out = []
        for record in self.messages:
            if record["n"] > after and (token is None or record["token"] == token):
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    async def list_messages(self, request: web.Request) -> web.Response:
        token = request.query.get("token") or None
        try:
            after = int(request.query.get("after", 0))
            limit = min(int(request.query.get("limit", 10_000)), 100_000)
            wait = min(float(request.query.get("wait", 0)), 60.0)
        except ValueError:
            return web.json_response({"detail": "after, limit and wait are numbers"}, status=400)
        deadline = time.monotonic() + wait
        found = self._select(token, after, limit)
        while not found and time.monotonic() < deadline:
            event = self._new_message
            try:
                await asyncio.wait_for(event.wait(), timeout=max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            found = self._select(token, after, limit)
        return web.json_response({"messages": found, "last": found[-1]["n"] if found else after})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        entry = (ws, request.query.get("token") or None)
        self._ws.add(entry)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._ws.discard(entry)
        return ws

    async def admin_tokens(self, request: web.Request) -> web.Response:
        body = await request.json()
        tokens = body.get("tokens", [])
        if request.method == "DELETE":
            self.registered.difference_update(tokens)
        else:
            self.registered.update(tokens)
        return web.json_response({"registered": len(self.registered)})

    async def admin_fail(self, request: web.Request) -> web.Response:
        body = await request.json()
        code = body.get("error")
        if code is not None and code not in ERRORS:
            return web.json_response({"detail": f"error must be one of {sorted(ERRORS)} or null"}, status=400)
        keys = ["*"] if body.get("all") else list(body.get("tokens", []))
        for key in keys:
            if code is None:
                self.failures.pop(key, None)
            else:
                self.failures[key] = [code, body.get("times")]
        return web.json_response({"failing": len(self.failures)})

    async def admin_config(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "latency_ms" in body:
            self.latency_ms = max(0, int(body["latency_ms"]))
        if "accept_any_token" in body:
            self.accept_any_token = bool(body["accept_any_token"])
        return web.json_response({"latency_ms": self.latency_ms, "accept_any_token": self.accept_any_token})

    async def admin_webhooks(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("url"):
            self.webhooks.append(body["url"])
        return web.json_response({"webhooks": self.webhooks})

    async def admin_reset(self, request: web.Request) -> web.Response:
        accept_any = self.accept_any_token
        self.reset()
        self.accept_any_token = accept_any
        return web.json_response({"ok": True})

    async def admin_stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats, "stored": len(self.messages), "registered": len(self.registered),
                                  "last": self.counter})

    async def admin_credentials(self, request: web.Request) -> web.Response:
        return web.json_response(self.credentials())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)

        async def on_startup(_app):
            self._new_message = asyncio.Event()

        app.on_startup.append(on_startup)
        app.router.add_post("/token", self.token)
        app.router.add_post("/v1/projects/{project}/messages:send", self.send)
        app.router.add_get("/_standin/credentials", self.admin_credentials)
        app.router.add_post("/_standin/tokens", self.admin_tokens)
        app.router.add_delete("/_standin/tokens", self.admin_tokens)
        app.router.add_post("/_standin/fail", self.admin_fail)
        app.router.add_post("/_standin/config", self.admin_config)
        app.router.add_get("/_standin/messages", self.list_messages)
        app.router.add_get("/_standin/ws", self.ws)
        app.router.add_post("/_standin/webhooks", self.admin_webhooks)
        app.router.add_get("/_standin/stats", self.admin_stats)
        app.router.add_post("/_standin/reset", self.admin_reset)
        app.router.add_get("/healthz", self.healthz)
        return app


class StandinClient:
    """A small synchronous client of the admin endpoints (tests, the fleet simulator)."""

    def __init__(self, base_url: str, timeout: float = 70.0):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def credentials(self) -> dict:
        return self.http.get("/_standin/credentials").raise_for_status().json()

    def register(self, tokens) -> None:
        self.http.post("/_standin/tokens", json={"tokens": list(tokens)}).raise_for_status()

    def fail(self, tokens=None, *, error: str | None, times: int | None = None) -> None:
        body = {"all": True} if tokens is None else {"tokens": list(tokens)}
        self.http.post("/_standin/fail", json={**body, "error": error, "times": times}).raise_for_status()

    def config(self, **values) -> dict:
        return self.http.post("/_standin/config", json=values).raise_for_status().json()

    def messages(self, *, token: str | None = None, after: int = 0, wait: float = 0, limit: int = 10_000) -> dict:
        params = {"after": after, "wait": wait, "limit": limit}
        if token:
            params["token"] = token
        return self.http.get("/_standin/messages", params=params).raise_for_status().json()

    def stats(self) -> dict:
        return self.http.get("/_standin/stats").raise_for_status().json()

    def reset(self) -> None:
        self.http.post("/_standin/reset").raise_for_status()


def _load_key(path: Path, base_url: str) -> bytes | None:
    """Reuse the key of an existing credentials file for the same token_uri, so clients that
    already read it keep working across stand-in restarts."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("token_uri") == f"{base_url}/token" and data.get("private_key"):
        return data["private_key"].encode()
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="FCM HTTP v1 stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--project-id", default="mdm-standin")
    parser.add_argument("--public-url", default="", help="base URL clients use (default http://host:port)")
    parser.add_argument("--write-credentials", default="", help="write the service-account JSON here")
    parser.add_argument("--accept-any-token", action="store_true", help="deliver to unregistered tokens too")
    args = parser.parse_args(argv)
    base_url = args.public_url or f"http://{args.host}:{args.port}"
    key = _load_key(Path(args.write_credentials), base_url) if args.write_credentials else None
    standin = Standin(project_id=args.project_id, base_url=base_url, accept_any_token=args.accept_any_token, private_key_pem=key)
    if args.write_credentials:
        path = Path(args.write_credentials)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(standin.credentials(), indent=2))
        path.chmod(0o600)
    print(
        f"FCM stand-in on {base_url} (project {args.project_id}); "
        f"FCM_SEND_URL={base_url}/v1/projects/{args.project_id}/messages:send"
        + (f" FCM_CREDENTIALS_FILE={args.write_credentials}" if args.write_credentials else ""),
        flush=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    web.run_app(standin.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
