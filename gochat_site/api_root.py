"""GET /api/v1/: the API root, listing every endpoint (browsable in a browser, JSON to a
client), so the address the README and seed_demo print leads somewhere.

The list is read from the URL patterns themselves, so it cannot drift from them.
docs/api.md documents each endpoint; /api/docs/ is the interactive reference.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.urls import URLPattern, URLResolver
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def _routes(patterns: Iterable[URLPattern | URLResolver], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(name, route) of every endpoint under `patterns`, routes relative to /api/v1/."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif pattern.name:
            yield pattern.name, route


class ApiRootView(APIView):
    """The GoChat REST API, version 1: every endpoint and its address. Most need a
    bearer token from auth/login (see /api/docs/ and docs/api.md)."""

    permission_classes = [AllowAny]
    # Set by urls.py: the patterns mounted under /api/v1/.
    patterns: list[Any] = []

    def get_view_name(self) -> str:
        return "GoChat API v1"

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/api/v1/")
        endpoints = {name: base + route for name, route in _routes(self.patterns)}
        return Response(
            {
                "endpoints": endpoints,
                "docs": request.build_absolute_uri("/api/docs/"),
                "schema": request.build_absolute_uri("/api/schema/"),
            }
        )
