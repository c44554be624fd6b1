"""Firebase Cloud Messaging HTTP v1 API.

Authentication is OAuth2 with a service account, done by google-auth
(`google.oauth2.service_account.Credentials`): it signs the RS256 assertion, exchanges it
at the account's token_uri and says when the access token needs a refresh.

Which answers mean "this token is dead" follows Google's FCM error-code reference
(https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode and
https://firebase.google.com/docs/cloud-messaging/error-codes): see `classify_error`.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import httpx
from google.oauth2 import service_account

from tasks.push.base import Notification, Outcome, Status, parse_retry_after

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# The request fields that hold the registration token: a violation there is the token's fault.
TOKEN_FIELDS = {"message.token", "token"}


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
        self._credentials = _credentials(service_account)
        self._auth_request = google.auth.transport.requests.Request()

    def access_token(self) -> str:
        """A valid OAuth2 access token; google-auth refreshes it shortly before expiry."""
        with self._lock:
            if not self._credentials.valid:
                self._credentials.refresh(self._auth_request)
            return str(self._credentials.token)

    def _forget_token(self) -> None:
        with self._lock:
            # A fresh Credentials object has no token, so the next send exchanges again.
            self._credentials = _credentials(self.account)

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
        except google.auth.exceptions.RefreshError as exc:
            # The token endpoint refused the service account (retryable: google-auth
            # already retried a 5xx/429 and gives up; otherwise a bad key or account).
            if getattr(exc, "retryable", False):
                return Outcome(Status.RETRY, reason="token_exchange")
            return Outcome(Status.FAILED, reason="token_exchange")
        except google.auth.exceptions.TransportError as exc:
            return Outcome(Status.RETRY, reason=f"token_exchange:{type(exc).__name__}")
        try:
            response = self._client.post(
                f"{self.url}/v1/projects/{self.account['project_id']}/messages:send",
                json=message,
                headers={"authorization": f"Bearer {bearer}"},
            )
        except httpx.TransportError as exc:
            return Outcome(Status.RETRY, reason=type(exc).__name__)
        status = response.status_code
        if status == 200:
            return Outcome(Status.SENT, http_status=200)
        error = _error_body(response)
        outcome = classify_error(status, error)
        if outcome.reason == "UNAUTHENTICATED" or status == 401:
            self._forget_token()
        if outcome.status is Status.FAILED and outcome.reason == "INVALID_ARGUMENT":
            # Not the token: the payload we built is wrong. Every device would fail the
            # same way, so this is a bug to fix, not a device to forget.
            logger.error(
                "push_fcm_payload_rejected",
                extra={"http_status": status, "error_message": str(error.get("message", ""))[:500],
                       "violations": _field_violations(error)},
            )
        if outcome.status is Status.RETRY:
            return Outcome(outcome.status, reason=outcome.reason, http_status=status,
                           retry_after=parse_retry_after(response.headers.get("retry-after")))
        return outcome

    def close(self) -> None:
        self._client.close()


def _credentials(account: dict[str, Any]) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(account, scopes=[SCOPE])


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in (error.get("details") or []) if isinstance(d, dict)]


def _error_code(error: dict[str, Any]) -> str:
    """FCM's errorCode from an FcmError detail (e.g. UNREGISTERED), else the error status."""
    for detail in _details(error):
        if detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))


def _field_violations(error: dict[str, Any]) -> list[str]:
    return [
        str(v.get("field", ""))
        for d in _details(error)
        if d.get("@type") == BAD_REQUEST_TYPE
        for v in (d.get("fieldViolations") or [])
        if isinstance(v, dict)
    ]


def _points_at_token(error: dict[str, Any]) -> bool:
    """INVALID_ARGUMENT blames the registration token (not the payload) when a BadRequest
    field violation names the token field, or when the FcmError carries no field
    violation and its message speaks of the registration token (Google's documented
    example: "The registration token is not a valid FCM registration token")."""
    violations = _field_violations(error)
    if violations:
        return any(field in TOKEN_FIELDS for field in violations)
    message = str(error.get("message", "")).lower()
    return "registration token" in message


def classify_error(status: int, error: dict[str, Any]) -> Outcome:
    """What a non-200 answer of messages:send means for the device (FCM ErrorCode):

    - UNREGISTERED (404): the app instance is gone -> delete the token;
    - SENDER_ID_MISMATCH (403): the token belongs to another Firebase project's sender,
      so this service account can never reach it -> delete the token;
    - INVALID_ARGUMENT (400): a dead token only when the error points at the token (see
      `_points_at_token`); otherwise our payload is wrong -> keep the token, log;
    - UNAUTHENTICATED (401): our access token -> drop it and retry;
    - QUOTA_EXCEEDED / 429, UNAVAILABLE / INTERNAL / 5xx -> retry (Retry-After honoured);
    - anything else (THIRD_PARTY_AUTH_ERROR: APNs/web push credentials of the project,
      PERMISSION_DENIED, ...) -> a failure of this send; the token is kept.
    """
    code = _error_code(error)
    if status == 404 or code == "UNREGISTERED":
        return Outcome(Status.INVALID_TOKEN, reason=code or "NOT_FOUND", http_status=status)
    if code == "SENDER_ID_MISMATCH":
        return Outcome(Status.INVALID_TOKEN, reason=code, http_status=status)
    if code == "INVALID_ARGUMENT" or (status == 400 and not code):
        if _points_at_token(error):
            return Outcome(Status.INVALID_TOKEN, reason="INVALID_ARGUMENT:token", http_status=status)
        return Outcome(Status.FAILED, reason="INVALID_ARGUMENT", http_status=status)
    if status == 401:
        return Outcome(Status.RETRY, reason=code or "UNAUTHENTICATED", http_status=status)
    if status == 429 or status >= 500:
        return Outcome(Status.RETRY, reason=code, http_status=status)
    return Outcome(Status.FAILED, reason=code, http_status=status)
