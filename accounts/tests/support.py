"""Helpers for REST tests of every app: the API's error body, and throttle counters."""
from __future__ import annotations

from django.core.cache import cache


def assert_error(response, status: int, code: int) -> dict:
    """The response is the API's error body with this HTTP status and code."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body


def clear_throttle_history() -> None:
    """Forget DRF throttle counters (kept in the cache) so a test starts with a full
    budget; on Redis only the throttle keys, since other keys belong to other tests."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("throttle_*")
    else:
        cache.clear()
