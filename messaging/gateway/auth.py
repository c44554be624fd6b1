"""Who is on the other end of a WebSocket: the access JWT from `?token=` or the
`Authorization: Bearer` header, checked before any frame is processed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

# WebSocket close codes of the gateway (docs/realtime.md).
CLOSE_UNAUTHORIZED = 4001  # no token, a bad token, or an unknown/inactive user
CLOSE_TOKEN_EXPIRED = 4002  # refresh the access token, then reconnect
CLOSE_IDLE_TIMEOUT = 4008  # nothing received for WS_IDLE_TIMEOUT_SECONDS
CLOSE_SLOW_CONSUMER = 4010  # WS_MAX_SEND_BUFFER_BYTES queued to a socket that does not read
CLOSE_TOO_MANY_CONNECTIONS = 4029  # the user already holds WS_MAX_CONNECTIONS_PER_USER sockets


@dataclass(frozen=True)
class AuthResult:
    user_id: int | None
    close_code: int = 0
    reason: str = ""
    # Display name at connect time: typing frames name the typer without a query.
    user_name: str = ""


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The query-string token wins (browsers cannot set headers on a WebSocket)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    if tokens and tokens[0]:
        return tokens[0]
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def _active_user_name(user_id: int) -> str | None:
    """The display name of an active user, None if there is none (one query, as the
    existence check it replaces)."""
    row = get_user_model().objects.filter(id=user_id, is_active=True).values_list("username", "nickname").first()
    if row is None:
        return None
    return row[1] or row[0]


async def authenticate(scope: dict[str, Any]) -> AuthResult:
    raw = token_from_scope(scope)
    if raw is None:
        return AuthResult(None, CLOSE_UNAUTHORIZED, "missing token")
    try:
        token = AccessToken(raw)
    except ExpiredTokenError:
        return AuthResult(None, CLOSE_TOKEN_EXPIRED, "token expired")
    except TokenError:
        return AuthResult(None, CLOSE_UNAUTHORIZED, "invalid token")
    try:
        user_id = int(token[api_settings.USER_ID_CLAIM])
    except (KeyError, TypeError, ValueError):
        return AuthResult(None, CLOSE_UNAUTHORIZED, "invalid token")
    name = await database_sync_to_async(_active_user_name)(user_id)
    if name is None:
        return AuthResult(None, CLOSE_UNAUTHORIZED, "unknown or inactive user")
    return AuthResult(user_id, user_name=name)
