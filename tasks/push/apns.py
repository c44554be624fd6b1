"""Apple Push Notification service over HTTP/2 with token (JWT) authentication.

The provider token is an ES256 JWT signed with the team's .p8 key; Apple rejects one
refreshed more often than every 20 minutes and one older than an hour, so it is reused
for 50 minutes.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import jwt

from tasks.push.base import Notification, Outcome, Status, parse_retry_after

logger = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 50 * 60
# Reasons that mean the token will never work again (Apple's documented 400/410 reasons).
_DEAD_TOKEN_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
# Our provider token was refused: mint a new one and try again.
_STALE_AUTH_REASONS = {"ExpiredProviderToken", "InvalidProviderToken"}


class ApnsProvider:
    platform = "apns"

    def __init__(self, *, key_id: str, team_id: str, topic: str, private_key: str, url: str) -> None:
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self._private_key = private_key
        self.url = url.rstrip("/")
        # APNs speaks only HTTP/2; without HTTP/1.1 httpx negotiates h2 by ALPN over TLS
        # (and uses h2 prior knowledge on a plain-text test server).
        self._client = httpx.Client(http1=False, http2=True, timeout=10.0)
        self._lock = threading.Lock()
        self._jwt: str | None = None
        self._jwt_issued_at = 0.0

    def provider_token(self) -> str:
        with self._lock:
            now = time.time()
            if self._jwt is None or now - self._jwt_issued_at >= TOKEN_LIFETIME_SECONDS:
                self._jwt = jwt.encode(
                    {"iss": self.team_id, "iat": int(now)},
                    self._private_key,
                    algorithm="ES256",
                    headers={"kid": self.key_id},
                )
                self._jwt_issued_at = now
            return self._jwt

    def _forget_token(self) -> None:
        with self._lock:
            self._jwt = None

    def send(self, token: str, notification: Notification) -> Outcome:
        payload = {
            "aps": {
                "alert": {"title": notification.title, "body": notification.body},
                "sound": "default",
                "thread-id": notification.collapse_id,
            },
            **notification.data,
        }
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-collapse-id": notification.collapse_id[:64],
            # Keep trying for a day if the device is off: the user should still hear of it.
            "apns-expiration": str(int(time.time()) + 86400),
        }
        try:
            response = self._client.post(f"{self.url}/3/device/{token}", content=json.dumps(payload), headers=headers)
        except httpx.TransportError as exc:
            return Outcome(Status.RETRY, reason=type(exc).__name__)
        if response.status_code == 200:
            return Outcome(Status.SENT, http_status=200)
        reason = _reason(response)
        status = response.status_code
        if status == 410 or (status == 400 and reason in _DEAD_TOKEN_REASONS):
            return Outcome(Status.INVALID_TOKEN, reason=reason, http_status=status)
        if status == 403 and reason in _STALE_AUTH_REASONS:
            self._forget_token()
            return Outcome(Status.RETRY, reason=reason, http_status=status)
        if status == 429 or status >= 500:
            return Outcome(
                Status.RETRY, reason=reason, http_status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return Outcome(Status.FAILED, reason=reason, http_status=status)

    def close(self) -> None:
        self._client.close()


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except ValueError:
        return ""
