"""Firebase Cloud Messaging HTTP v1 API.

Authentication is OAuth2 with a service account: an RS256 JWT assertion signed with the
account's private key is exchanged at its token_uri for an access token, which is reused
until a minute before it expires.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import jwt

from tasks.push.base import Notification, Outcome, Status, parse_retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Refresh this long before the provider's expiry, so a token never dies mid-request.
EXPIRY_MARGIN_SECONDS = 60


class FcmProvider:
    platform = "fcm"

    def __init__(self, *, service_account: dict[str, Any], url: str) -> None:
        missing = [k for k in ("project_id", "private_key", "client_email", "token_uri") if not service_account.get(k)]
        if missing:
            raise ValueError(f"FCM service account file lacks {', '.join(missing)}")
        self.account = service_account
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=10.0)
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0

    def access_token(self) -> str:
        with self._lock:
            if self._access_token is None or time.time() >= self._expires_at:
                self._access_token, self._expires_at = self._exchange()
            return self._access_token

    def _exchange(self) -> tuple[str, float]:
        now = int(time.time())
        headers = {"kid": self.account["private_key_id"]} if self.account.get("private_key_id") else None
        assertion = jwt.encode(
            {
                "iss": self.account["client_email"],
                "scope": SCOPE,
                "aud": self.account["token_uri"],
                "iat": now,
                "exp": now + 3600,
            },
            self.account["private_key"],
            algorithm="RS256",
            headers=headers,
        )
        response = self._client.post(self.account["token_uri"], data={"grant_type": GRANT_TYPE, "assertion": assertion})
        response.raise_for_status()
        body = response.json()
        expires_in = float(body.get("expires_in", 3600))
        return body["access_token"], time.time() + max(0.0, expires_in - EXPIRY_MARGIN_SECONDS)

    def _forget_token(self) -> None:
        with self._lock:
            self._access_token = None

    def send(self, token: str, notification: Notification) -> Outcome:
        message = {
            "message": {
                "token": token,
                "notification": {"title": notification.title, "body": notification.body},
                "data": dict(notification.data),
                "android": {"collapse_key": notification.collapse_id, "priority": "HIGH"},
                "apns": {"headers": {"apns-collapse-id": notification.collapse_id[:64]}},
            }
        }
        try:
            bearer = self.access_token()
            response = self._client.post(
                f"{self.url}/v1/projects/{self.account['project_id']}/messages:send",
                json=message,
                headers={"authorization": f"Bearer {bearer}"},
            )
        except httpx.HTTPStatusError as exc:  # the token exchange itself was refused
            status = exc.response.status_code
            if status == 429 or status >= 500:
                return Outcome(Status.RETRY, reason="token_exchange", http_status=status,
                               retry_after=parse_retry_after(exc.response.headers.get("retry-after")))
            return Outcome(Status.FAILED, reason="token_exchange", http_status=status)
        except httpx.TransportError as exc:
            return Outcome(Status.RETRY, reason=type(exc).__name__)
        status = response.status_code
        if status == 200:
            return Outcome(Status.SENT, http_status=200)
        reason = _error_code(response)
        if status == 404 or reason == "UNREGISTERED":
            return Outcome(Status.INVALID_TOKEN, reason=reason or "NOT_FOUND", http_status=status)
        if status == 401:
            self._forget_token()
            return Outcome(Status.RETRY, reason=reason or "UNAUTHENTICATED", http_status=status)
        if status == 429 or status >= 500:
            return Outcome(
                Status.RETRY, reason=reason, http_status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return Outcome(Status.FAILED, reason=reason, http_status=status)

    def close(self) -> None:
        self._client.close()


def _error_code(response: httpx.Response) -> str:
    """FCM's errorCode from error.details (e.g. UNREGISTERED), else the error status."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))
