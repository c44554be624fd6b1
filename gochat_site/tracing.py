"""Trace ids: one per WebSocket frame or HTTP request, carried through Kafka headers and
envelopes, the logic loop and Celery task headers, and stamped on every JSON log line
(gochat_site.logging reads the same context variable).

An incoming `X-Request-ID` (a proxy's) or W3C `traceparent` is kept, so a request can be
followed from the edge; anything else gets a new 32-hex id.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from gochat_site.logging import trace_id_var

TRACE_HEADER = "trace_id"  # Kafka and Celery header name (DESIGN §3)
RESPONSE_HEADER = "X-Request-ID"
# Ids we accept from outside: short, printable, no spaces (they land in logs and headers).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
# traceparent: version-traceid-parentid-flags; the 32-hex trace id is the part we keep.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_trace_id() -> str:
    """The trace id of the work in progress ('' outside any)."""
    return trace_id_var.get()


def incoming_trace_id(*, request_id: str | None, traceparent: str | None) -> str:
    """The caller's trace id when it sent a usable one, else a new id."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and match.group(1) != "0" * 32:
            return match.group(1)
    if request_id and _SAFE_ID.match(request_id.strip()):
        return request_id.strip()
    return new_trace_id()


@contextmanager
def bind(trace_id: str) -> Iterator[str]:
    """Make `trace_id` the current one inside the block (a new one when empty)."""
    trace_id = trace_id or new_trace_id()
    token = trace_id_var.set(trace_id)
    try:
        yield trace_id
    finally:
        trace_id_var.reset(token)


class TraceIdMiddleware:
    """Start the trace of an HTTP request and echo its id in `X-Request-ID`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def _trace_id(self, request: HttpRequest) -> str:
        return incoming_trace_id(
            request_id=request.headers.get("X-Request-ID"), traceparent=request.headers.get("traceparent")
        )

    def __call__(self, request: HttpRequest):  # noqa: ANN204 - sync or coroutine by get_response
        if self._async:
            return self.__acall__(request)
        with bind(self._trace_id(request)) as trace_id:
            response = self.get_response(request)
        response[RESPONSE_HEADER] = trace_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        with bind(self._trace_id(request)) as trace_id:
            response = await self.get_response(request)  # type: ignore[misc]
        response[RESPONSE_HEADER] = trace_id
        return response


# --- Celery: the trace id travels in a task header --------------------------------------------
_task_tokens: dict[str, object] = {}


def _before_publish(headers: dict | None = None, **_: object) -> None:
    trace_id = trace_id_var.get()
    if headers is not None and trace_id and TRACE_HEADER not in headers:
        headers[TRACE_HEADER] = trace_id


def _task_trace_id(task: object) -> str:
    request = getattr(task, "request", None)
    if request is None:
        return ""
    # Protocol 2 puts custom headers on the request itself; some paths nest them.
    value = getattr(request, TRACE_HEADER, None) or (getattr(request, "headers", None) or {}).get(TRACE_HEADER)
    return str(value or "")


def _prerun(task_id: str | None = None, task: object = None, kwargs: dict | None = None, **_: object) -> None:
    # An eager task runs inside its caller's trace: keep that one when no header came.
    trace_id = _task_trace_id(task) or str((kwargs or {}).get("trace_id") or "") or trace_id_var.get()
    _task_tokens[task_id or ""] = trace_id_var.set(trace_id or new_trace_id())


def _postrun(task_id: str | None = None, **_: object) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        try:
            trace_id_var.reset(token)  # type: ignore[arg-type]
        except ValueError:
            # Set in another context (a worker thread pool): nothing to restore there.
            trace_id_var.set("")


def connect_celery_signals() -> None:
    """Propagate trace ids through Celery (called by gochat_site.celery at import)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_before_publish, dispatch_uid="gochat.tracing.publish", weak=False)
    task_prerun.connect(_prerun, dispatch_uid="gochat.tracing.prerun", weak=False)
    task_postrun.connect(_postrun, dispatch_uid="gochat.tracing.postrun", weak=False)
