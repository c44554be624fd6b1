"""The server interceptor every GoChat call passes through: database connection hygiene,
authentication, and the mapping of domain errors to statuses.

LogicService calls carry a user's JWT access token (`authorization: Bearer <access>`),
except Login, which issues one. RepoService is internal: it takes the shared
GRPC_SERVICE_TOKEN. Health checking and reflection pass through untouched.
"""
from __future__ import annotations

import contextvars
import hmac
import logging
from collections.abc import Callable
from typing import Any

import grpc
from django.conf import settings
from django.db import close_old_connections

from gochat_site import errors
from messaging.grpc import errors as grpc_errors

logger = logging.getLogger(__name__)

LOGIC_PREFIX = "/gochat.v1.LogicService/"
REPO_PREFIX = "/gochat.v1.RepoService/"
PUBLIC_METHODS = frozenset({LOGIC_PREFIX + "Login"})

# The authenticated user of the call being served. Set in the handler's own thread, so
# concurrent calls on other pool threads never see each other's user.
_current_user_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("grpc_user_id", default=None)


def current_user_id() -> int:
    """The id of the user whose token authenticated this LogicService call."""
    user_id = _current_user_id.get()
    if user_id is None:
        raise errors.Unauthorized()
    return user_id


def _bearer(metadata: tuple[tuple[str, Any], ...] | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise errors.Unauthorized("authorization must be 'Bearer <token>'")
    raise errors.Unauthorized("missing authorization metadata")


def _user_from_access_token(token: str) -> int:
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

    auth = JWTAuthentication()
    try:
        # get_user also refuses inactive users and tokens of deleted ones.
        return auth.get_user(auth.get_validated_token(token)).id
    except (InvalidToken, AuthenticationFailed):
        raise errors.Unauthorized("token is invalid or expired") from None


def _check_service_token(token: str) -> None:
    expected = settings.GRPC_SERVICE_TOKEN
    if not expected:
        raise errors.Unauthorized("RepoService is disabled: GRPC_SERVICE_TOKEN is not set")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise errors.Unauthorized("invalid service token")


def _authenticate(method: str, metadata: tuple[tuple[str, Any], ...] | None) -> int | None:
    if method in PUBLIC_METHODS:
        return None
    if method.startswith(REPO_PREFIX):
        _check_service_token(_bearer(metadata))
        return None
    return _user_from_access_token(_bearer(metadata))


def _guard(method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        # Pool threads outlive calls: drop connections that broke or aged out before
        # use, and hand ours back (to the psycopg pool) after.
        close_old_connections()
        token = None
        try:
            token = _current_user_id.set(_authenticate(method, context.invocation_metadata()))
            return behavior(request, context)
        except errors.GoChatError as exc:
            logger.info("grpc_call_refused", extra={"method": method, "code": exc.code, "reason": exc.message})
            grpc_errors.abort(context, exc)
        except Exception:
            logger.exception("grpc_unhandled_error", extra={"method": method})
            grpc_errors.abort(context, errors.GoChatError("internal error"))
        finally:
            if token is not None:
                _current_user_id.reset(token)
            close_old_connections()

    return guarded


class GoChatInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or handler.unary_unary is None:
            return handler
        if not (method.startswith(LOGIC_PREFIX) or method.startswith(REPO_PREFIX)):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _guard(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
