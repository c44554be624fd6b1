"""Answers /healthz, /readyz and /metrics before any middleware validates the Host
header. kubelet probes and Prometheus address a pod by its IP (Host: 10.1.2.3:8000),
which a narrowed ALLOWED_HOSTS refuses with 400; these three paths serve no user data
and set no cookies, so host validation protects nothing on them. Every other path goes
through the full middleware chain unchanged."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse


def _views() -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    from gochat_site import health, metrics

    return {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics.metrics_view}


class ProbePathsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.views = _views()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        view = self.views.get(request.path_info) if request.method in {"GET", "HEAD"} else None
        return view(request) if view is not None else self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info) if request.method in {"GET", "HEAD"} else None
        if view is None:
            return await self.get_response(request)
        if view.__name__ == "healthz":
            return view(request)  # no I/O: no thread hop
        return await sync_to_async(view, thread_sensitive=True)(request)
