"""The one place gRPC statuses come from GoChat errors (DESIGN §4).

The GoChat code travels in the trailing metadata key `gochat-error-code`, the error
details (field errors) as JSON in `gochat-error-details`, so clients can branch on the
same codes as the REST and WebSocket APIs.
"""
from __future__ import annotations

import json

import grpc

from gochat_site import errors

CODE_KEY = "gochat-error-code"
DETAILS_KEY = "gochat-error-details"

STATUS_BY_CODE: dict[int, grpc.StatusCode] = {
    errors.INVALID_PARAMS: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    errors.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    errors.INTERNAL: grpc.StatusCode.INTERNAL,
    errors.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    errors.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
}


def status_for(exc: errors.GoChatError) -> grpc.StatusCode:
    return STATUS_BY_CODE.get(exc.code, grpc.StatusCode.INTERNAL)


def abort(context: grpc.ServicerContext, exc: errors.GoChatError) -> None:
    """End the call with the status of `exc`; raises, like context.abort()."""
    context.set_trailing_metadata(
        ((CODE_KEY, str(exc.code)), (DETAILS_KEY, json.dumps(exc.details, default=str)))
    )
    context.abort(status_for(exc), exc.message)
