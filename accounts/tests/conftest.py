"""Helpers for the accounts API tests."""
from __future__ import annotations

import pytest
from django.core.cache import cache


def clear_throttle_history() -> None:
    """Forget DRF throttle counters (kept in the cache) so each test starts with a full
    budget; only the throttle keys on Redis, whose other keys belong to other tests."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("throttle_*")
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    clear_throttle_history()
    yield
    clear_throttle_history()


def assert_error(response, status: int, code: int) -> dict:
    """The response is the API's error body with this HTTP status and code."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body
