"""Local stand-ins for APNs and FCM that follow their documented HTTP contracts.

Each runs a real HTTP server (hypercorn: HTTP/2 for APNs, HTTP/1.1 for FCM and its OAuth
token endpoint) on a free port in a background thread. They verify authentication the
way the real services do (APNs: ES256 provider JWT with kid/iss; FCM: RS256 assertion
exchanged for a bearer token), record every request, and answer with scripted responses.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config


@dataclass
class Recorded:
    method: str
    path: str
    http_version: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Server:
    """An ASGI app served by hypercorn in a thread; subclasses implement handle()."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, then with the default again."""
        self.replies.extend(replies)

    def start(self) -> "_Server":
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake provider did not start")
        return self

    def _run(self) -> None:
        config = Config()
        config.bind = [f"fd://{self._sock.fileno()}"]
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 0.5

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._loop.call_soon(self._ready.set)
            await serve(self._app, config, shutdown_trigger=self._stop.wait)

        asyncio.run(main())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        # hypercorn served the fd:// socket and closed the descriptor itself.
        self._sock.detach()

    async def _app(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        request = Recorded(
            method=scope["method"],
            path=scope["path"],
            http_version=scope["http_version"],
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
        )
        reply = self.handle(request)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def handle(self, request: Recorded) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def _next_reply(self, default: Reply) -> Reply:
        return self.replies.popleft() if self.replies else default


class FakeApns(_Server):
    """POST /3/device/{token} over HTTP/2 only, provider-token authentication."""

    def __init__(self, *, key_id: str = "KEY123ABCD", team_id: str = "TEAM123456", topic: str = "chat.gochat.app") -> None:
        super().__init__()
        self.key_id, self.team_id, self.topic = key_id, team_id, topic
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.private_key_pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.pushes: list[Recorded] = []  # accepted notifications only

    def handle(self, request: Recorded) -> Reply:
        self.requests.append(request)
        if request.http_version != "2":
            return Reply(505, {"reason": "HTTP/2 required"})
        if request.method != "POST" or not request.path.startswith("/3/device/"):
            return Reply(405 if request.method != "POST" else 404, {"reason": "BadPath"})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Reply(403, {"reason": "MissingProviderToken"})
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, self._key.public_key(), algorithms=["ES256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return Reply(403, {"reason": "InvalidProviderToken"})
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return Reply(403, {"reason": "InvalidProviderToken"})
        if time.time() - claims["iat"] > 3600:
            return Reply(403, {"reason": "ExpiredProviderToken"})
        if request.headers.get("apns-topic") != self.topic:
            return Reply(400, {"reason": "TopicDisallowed"})
        if request.headers.get("apns-push-type") not in {"alert", "background"}:
            return Reply(400, {"reason": "InvalidPushType"})
        try:
            payload = request.json()
        except ValueError:
            return Reply(400, {"reason": "PayloadEmpty"})
        if "aps" not in payload:
            return Reply(400, {"reason": "PayloadEmpty"})
        reply = self._next_reply(Reply(200))
        if reply.status == 200:
            self.pushes.append(request)
        return reply

    def device_token(self, request: Recorded) -> str:
        return request.path.rsplit("/", 1)[-1]


# Google's OAuth2 documentation for service accounts: the assertion's `aud` is always this
# URL, wherever the token request is sent (google-auth does the same).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class FakeFcm(_Server):
    """FCM HTTP v1 plus the OAuth2 token endpoint of its service account."""

    def __init__(self, *, project_id: str = "gochat-test") -> None:
        super().__init__()
        self.project_id = project_id
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = f"push@{project_id}.iam.gserviceaccount.com"
        self.token_uri = f"{self.url}/token"
        self.issued_tokens: list[str] = []
        self.pushes: list[Recorded] = []
        self.token_requests = 0

    def service_account(self) -> dict[str, str]:
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "fake-key-1",
            "private_key": self._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "client_email": self.client_email,
            "token_uri": self.token_uri,
        }

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/token":
            return self._token(request)
        self.requests.append(request)
        if request.method != "POST" or request.path != f"/v1/projects/{self.project_id}/messages:send":
            return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such method"}})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued_tokens:
            return Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad credentials"}})
        try:
            message = request.json()["message"]
        except (ValueError, KeyError, TypeError):
            return Reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "no message"}})
        if not message.get("token") or any(not isinstance(v, str) for v in message.get("data", {}).values()):
            return Reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad message"}})
        reply = self._next_reply(Reply(200, {"name": f"projects/{self.project_id}/messages/{len(self.requests)}"}))
        if reply.status == 200:
            self.pushes.append(request)
        return reply

    def _token(self, request: Recorded) -> Reply:
        self.token_requests += 1
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self._key.public_key(), algorithms=["RS256"],
                                audience=GOOGLE_TOKEN_AUDIENCE, options={"require": ["iss", "aud", "iat", "exp"]})
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant"})
        if claims["iss"] != self.client_email or "firebase.messaging" not in claims.get("scope", ""):
            return Reply(400, {"error": "invalid_scope"})
        token = f"ya29.fake-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    @staticmethod
    def unregistered() -> Reply:
        return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
                                     "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                                  "errorCode": "UNREGISTERED"}]}})
