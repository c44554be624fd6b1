"""The one place REST errors get their `{"code", "message", "details"}` body."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from gochat_site import errors

logger = logging.getLogger(__name__)

_STATUS_BY_CODE = {
    errors.INVALID_PARAMS: 400,
    errors.UNAUTHORIZED: 401,
    errors.NOT_FOUND: 404,
    errors.INTERNAL: 500,
    errors.FORBIDDEN: 403,
    errors.RATE_LIMITED: 429,
    errors.CONFLICT: 409,
}


def _body(code: int, message: str, details: Any = None) -> dict[str, Any]:
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        details = {"errors": details}
    return {"code": code, "message": message, "details": details}


def request_limit_error(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """(status, body) for Django's refusals of an oversized or malformed request, raised
    while the body or query string is read: inside a DRF view (exception_handler) or
    outside one (handler400). None for any other exception."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, _body(errors.INVALID_PARAMS, "request body too large", {"max_bytes": limit})
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, _body(errors.INVALID_PARAMS, "too many parameters", {"max_fields": limit})
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return 400, _body(errors.INVALID_PARAMS, "too many files", {"max_files": limit})
    if isinstance(exc, SuspiciousOperation):
        return 400, _body(errors.INVALID_PARAMS, "bad request")
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.GoChatError):
        # A subclass may name its own status (413 for an upload over the limit, still 1001).
        return Response(exc.as_dict(), status=getattr(exc, "http_status", None) or _STATUS_BY_CODE.get(exc.code, 400))
    limited = request_limit_error(exc)
    if limited is not None:
        return Response(limited[1], status=limited[0])
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("api_unhandled_error", extra={"view": str(context.get("view"))})
        return Response(_body(errors.INTERNAL, "internal error"), status=500)

    if isinstance(exc, drf.Throttled):
        body = _body(errors.RATE_LIMITED, "rate limited", {"retry_after": exc.wait})
    elif isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        detail = response.data if isinstance(response.data, dict) else {}
        message = str(detail.get("detail", "authentication required"))
        body = _body(errors.UNAUTHORIZED, message, {k: v for k, v in detail.items() if k != "detail"})
    elif isinstance(exc, drf.PermissionDenied):
        body = _body(errors.FORBIDDEN, str(exc.detail))
    elif isinstance(exc, drf.NotFound):
        body = _body(errors.NOT_FOUND, str(exc.detail))
    elif isinstance(exc, drf.ValidationError):
        body = _body(errors.INVALID_PARAMS, "invalid parameters", exc.detail)
    elif isinstance(exc, (drf.ParseError, drf.UnsupportedMediaType, drf.MethodNotAllowed, drf.NotAcceptable)):
        body = _body(errors.INVALID_PARAMS, str(exc.detail))
    else:
        body = _body(errors.INTERNAL, str(getattr(exc, "detail", "error")))
    response.data = body
    return response


def json_error_view(status: int, code: int, message: str):
    """Django handler400/handler404/handler500 that answer in the API's error body.

    handler400 also receives the request-limit errors raised outside a DRF view (e.g. a
    middleware reading request.POST), so they get the same answer as inside one."""

    def view(request, exception=None):  # noqa: ANN001 - Django handler signature
        limited = request_limit_error(exception) if exception is not None else None
        if limited is not None:
            return JsonResponse(limited[1], status=limited[0])
        return JsonResponse(_body(code, message), status=status)

    return view
