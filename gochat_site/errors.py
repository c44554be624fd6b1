"""The domain exception hierarchy shared by every app, with the error codes of DESIGN §4.

Services raise these; REST (gochat_site.api_errors), WebSocket (messaging.gateway.protocol)
and gRPC each map them to their wire format in exactly one place.
"""
from __future__ import annotations

from typing import Any

INVALID_PARAMS = 1001
UNAUTHORIZED = 1002
NOT_FOUND = 1003
INTERNAL = 1004
FORBIDDEN = 1005
RATE_LIMITED = 1006
CONFLICT = 1007


class GoChatError(Exception):
    code: int = INTERNAL
    default_message: str = "internal error"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidParams(GoChatError):
    code = INVALID_PARAMS
    default_message = "invalid parameters"


class Unauthorized(GoChatError):
    code = UNAUTHORIZED
    default_message = "authentication required"


class NotFound(GoChatError):
    code = NOT_FOUND
    default_message = "not found"


class PermissionDenied(GoChatError):
    code = FORBIDDEN
    default_message = "forbidden"


class NotAMember(PermissionDenied):
    default_message = "not a member of this conversation"


class RateLimited(GoChatError):
    code = RATE_LIMITED
    default_message = "rate limited"


class Conflict(GoChatError):
    code = CONFLICT
    default_message = "conflict"
